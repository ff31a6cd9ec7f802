/*
 * cmd_version.c - `tpwallet version [--json]`: the release, the commit it
 * was built from and the libraries it runs on (api/buildinfo.h).
 */
#include "api/buildinfo.h"
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: tpwallet version [--json]\n\n"
		   "Print tpwallet's version, the commit it was built from "
		   "and the versions of the\nlibraries it runs on (--json: "
		   "one JSON object).\n\n"
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

int cmd_version(int argc, char **argv)
{
	struct buildinfo b;
	char libs[512];
	bool json = false;

	for (int i = 1; i < argc; i++) {
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
	buildinfo_get(&b);
	if (json)
		return print_json(&b);
	buildinfo_libs_text(&b, libs, sizeof(libs));
	printf("tpwallet %s (commit %s)\n%s\n", b.version, b.commit, libs);
	return 0;
}
