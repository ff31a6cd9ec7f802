/*
 * cmd_version.c - `tpwallet version`: the version and the build's libraries.
 */
#include "cli/cli.h"

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

int cmd_version(int argc, char **argv)
{
	if (argc > 1 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: tpwallet version\n\nPrint tpwallet's version "
		       "and "
		       "the versions of the libraries it runs on.\n\n"
		       "Example:\n"
		       "  tpwallet version\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "tpwallet version: unexpected argument '%s'\n",
			argv[1]);
		return EXIT_USAGE;
	}
	printf("tpwallet %s (libmicrohttpd %s, jansson %s, libsodium %s)\n",
	       TPWALLET_VERSION, MHD_get_version(), jansson_version_str(),
	       sodium_version_string());
	return 0;
}
