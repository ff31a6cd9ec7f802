/*
 * cmd_version.c - `tpwallet version [--json]`: the release, the commit it
 * was built from and the libraries it runs on (api/buildinfo.h).
 */
#include "api/buildinfo.h"
#include "cli/cli.h"
#include "crypto/minisign.h"
#include "log/formats.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: tpwallet version [--json]\n"
		   "       tpwallet version --verify FILE [--signature SIG] "
		   "[--key PUBLIC_KEY]\n\n"
		   "Print tpwallet's version, the commit it was built from "
		   "and the versions of the\nlibraries it runs on (--json: "
		   "one JSON object).\n\n"
		   "--verify checks a release artifact (a new binary, a .deb) "
		   "against its minisign\nsignature (SIG, by default "
		   "FILE.minisig) with the project's public key (KEY,\nby "
		   "default $TPWALLET_RELEASE_PUBLIC_KEY_FILE), before it is "
		   "installed: exit 0\nverified, 1 refused (the reason "
		   "named), 66 a file that cannot be read.\n\n"
		   "Example:\n"
		   "  tpwallet version --json\n");
}

static int print_json(const struct buildinfo *b)
{
	json_t *libs = json_object(), *o = json_object();
	char *text;

	if (!libs || !o)
		goto oom;
	for (unsigned i = 0; i < b->nlibs; i++)
		json_object_set_new(libs, b->libs[i].name,
				    json_string(b->libs[i].version));
	json_object_set_new(o, "version", json_string(b->version));
	json_object_set_new(o, "commit", json_string(b->commit));
	json_object_set_new(o, "libraries", libs);
	libs = NULL;
	/* What this release reads and writes (tpwallet upgrade check). */
	json_t *formats = formats_json();
	if (!formats)
		goto oom;
	json_object_set_new(o, "formats", formats);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		goto oom;
	printf("%s\n", text);
	free(text);
	return 0;
oom:
	json_decref(libs);
	json_decref(o);
	fprintf(stderr, "tpwallet version: out of memory\n");
	return 1;
}

static int verify(const char *file, const char *sig, const char *key)
{
	char detail[PATH_MAX * 2 + MINISIGN_COMMENT_BYTES];

	if (!key || !*key)
		key = getenv("TPWALLET_RELEASE_PUBLIC_KEY_FILE");
	if (!key || !*key) {
		fprintf(stderr, "tpwallet version: --verify needs --key "
				"PUBLIC_KEY (or TPWALLET_RELEASE_PUBLIC_KEY_"
				"FILE): the project's minisign public key, "
				"from docs/releases.md, never from beside "
				"the artifact\n");
		return EXIT_USAGE;
	}
	int r = release_verify(file, sig, key, detail, sizeof(detail));
	if (r == 0) {
		printf("%s\n", detail);
		return 0;
	}
	fprintf(stderr, "tpwallet version: refused: %s\n", detail);
	return r <= MINISIGN_MALFORMED_KEY && r >= MINISIGN_BAD_COMMENT ? 1
									: 66;
}

int cmd_version(int argc, char **argv)
{
	struct buildinfo b;
	char libs[512];
	bool json = false;
	const char *file = NULL, *sig = NULL, *key = NULL;

	for (int i = 1; i < argc; i++) {
		const char **opt = strcmp(argv[i], "--verify") == 0	 ? &file
				   : strcmp(argv[i], "--signature") == 0 ? &sig
				   : strcmp(argv[i], "--key") == 0	 ? &key
									 : NULL;
		if (opt) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				fprintf(stderr,
					"tpwallet version: %s needs a "
					"file\n",
					argv[i]);
				return EXIT_USAGE;
			}
			*opt = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
			continue;
		}
		fprintf(stderr, "tpwallet version: unexpected argument '%s'\n",
			argv[i]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((sig || key) && !file) {
		fprintf(stderr, "tpwallet version: --signature and --key go "
				"with --verify FILE\n");
		return EXIT_USAGE;
	}
	if (file)
		return json ? (fprintf(stderr, "tpwallet version: --json "
					       "and --verify do not go "
					       "together\n"),
			       EXIT_USAGE)
			    : verify(file, sig, key);
	buildinfo_get(&b);
	if (json)
		return print_json(&b);
	buildinfo_libs_text(&b, libs, sizeof(libs));
	printf("tpwallet %s (commit %s)\n%s\n", b.version, b.commit, libs);
	return 0;
}
