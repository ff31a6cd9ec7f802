/*
 * cmd_init.c - `tpwallet init --data DIR`: create a data directory.
 *
 * Creates DIR (mode 0700) with its marker file and an empty journal.
 * Refuses a non-empty directory that is not already a tpwallet one, so a
 * typo cannot scatter files into, say, a home directory.
 */
#include "api/authz.h"
#include "cli/cli.h"
#include "log/datadir.h"
#include "cli/serverkeys.h"
#include "engine/engine.h"
#include "engine/logger.h"
#include "core/strerror.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: tpwallet init [--data DIR] [--config FILE] "
		   "[--kek-file FILE]\n\n"
		   "Create a tpwallet data directory (default ./data, or "
		   "TPWALLET_DATA).\nAn existing data directory is left as "
		   "it is.\n\n"
		   "Example:\n"
		   "  tpwallet init --data wallet-data\n");
}

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"kek-file", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *data = NULL, *config = NULL, *kek_file = NULL;
	struct settings s;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "d:c:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'c': config = optarg; break;
		case 'k': kek_file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tpwallet init: unexpected argument '%s'\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (settings_load(&s, config) < 0)
		return EXIT_USAGE;
	if (data && settings_set(&s, "data", data) < 0)
		return EXIT_USAGE;
	if (kek_file && settings_set(&s, "kek_file", kek_file) < 0)
		return EXIT_USAGE;
	settings_finish(&s);

	bool created;
	char lax[4400];
	if (datadir_prepare(s.data_dir, &created, lax, sizeof(lax)) < 0) {
		fprintf(stderr, "tpwallet: %s\n", lax);
		return EXIT_DATA;
	}
	if (datadir_check_modes(s.data_dir, lax, sizeof(lax)) < 0) {
		fprintf(stderr, "tpwallet init: %s\n", lax);
		return EXIT_DATA;
	}

	/* Opening the engine creates the journal and proves the directory
	 * is usable (or says precisely why not). */
	struct engine *e;
	const char *err = NULL;
	struct engine_options eo = {.data_dir = s.data_dir, .quiet = true};
	int ret = engine_open(&e, &eo, &err);
	if (ret < 0) {
		fprintf(stderr, "tpwallet init: %s: %s (%s)\n", s.data_dir,
			err ? err : "cannot open", tpw_strerror(-ret));
		return EXIT_DATA;
	}
	engine_close(e);
	struct server_keys keys;
	if (server_keys_open(&s, created, &keys) != 0)
		return EXIT_DATA;
	struct api_authz *authz = NULL;
	bool admin_created = false;
	if (server_admin_open(&s, keys.origin, &authz, &admin_created) != 0) {
		server_keys_close(&keys);
		return EXIT_DATA;
	}
	api_authz_close(authz);
	server_keys_close(&keys);
	printf("%s %s\n", created ? "initialised" : "already initialised",
	       s.data_dir);
	printf("administrator: bearer token in %s/admin.token, key in "
	       "%s/admin.jwk (both 0600; docs/authz.md)\n",
	       s.data_dir, s.data_dir);
	return 0;
}
