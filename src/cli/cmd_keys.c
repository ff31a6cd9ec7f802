/*
 * cmd_keys.c - `tpwallet keys`: the server's signing keys, from a client
 * (issue 4).
 *
 *   list    GET /v1/keys              (right keys:read)
 *   rotate  POST /v1/keys/rotate      (right keys:rotate)
 *   jwks    GET /.well-known/jwks.json (public: sent without credential)
 *
 * The answer's JSON is printed as the server sent it.  Credentials as
 * for `tpwallet call` (the administrator's token by default).
 */
#include "cli/cli.h"
#include "crypto/jose.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet keys <subcommand> [options]\n\n"
		"  list    the server's signing keys (GET /v1/keys)\n"
		"  rotate  make a new current signing key; the previous one "
		"keeps\n          verifying for the overlap window "
		"(POST /v1/keys/rotate)\n"
		"  jwks    the public keys as a JWK Set "
		"(GET /.well-known/jwks.json),\n          sent without "
		"credential\n\n"
		"options:\n%s%s\n"
		"Exit 0 on success, 1 when refused or unreachable, 2 on usage "
		"errors.\nSee docs/cli.md and docs/keys.md.\n\n"
		"Example:\n"
		"  tpwallet keys list\n",
		client_usage_common, client_usage_auth);
}

/* One subcommand's --help: what it does, the options, an example (run by
 * tests/e2e/test_cli.py). */
static void sub_usage(FILE *f, const char *name)
{
	static const struct {
		const char *name, *help;
	} helps[] = {
		{"list", "The server's signing keys (GET /v1/keys, right "
			 "keys:read): kid, times, which one\nsigns now."},
		{"rotate",
		 "Make a new current signing key now (POST /v1/keys/rotate, "
		 "right keys:rotate);\nthe previous one keeps verifying for "
		 "the overlap window (docs/keys.md)."},
		{"jwks", "The public keys that still verify, as a JWK Set (GET "
			 "/.well-known/jwks.json),\nsent without credential."},
	};
	size_t i = 0;

	while (i + 1 < sizeof(helps) / sizeof(helps[0]) &&
	       strcmp(helps[i].name, name) != 0)
		i++;
	fprintf(f,
		"usage: tpwallet keys %s [options]\n\n%s\n\noptions:\n%s%s\n"
		"Exit 0 on success, 1 when refused or unreachable, 2 on usage "
		"errors.\n\nExample:\n  tpwallet keys %s\n",
		helps[i].name, helps[i].help, client_usage_common,
		client_usage_auth, helps[i].name);
}

int cmd_keys(int argc, char **argv)
{
	static const struct option opts[] = {
		CLIENT_LONG_OPTIONS,
		CLIENT_AUTH_LONG_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const struct {
		const char *name, *prog, *method, *target;
		bool public_route;
	} subs[] = {
		{"list", "tpwallet keys list", "GET", "/v1/keys", false},
		{"rotate", "tpwallet keys rotate", "POST", "/v1/keys/rotate",
		 false},
		{"jwks", "tpwallet keys jwks", "GET", "/.well-known/jwks.json",
		 true},
	};
	struct client c;
	size_t s;
	int opt, r;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	for (s = 0; s < sizeof(subs) / sizeof(subs[0]); s++)
		if (strcmp(argv[1], subs[s].name) == 0)
			break;
	if (s == sizeof(subs) / sizeof(subs[0])) {
		fprintf(stderr, "tpwallet keys: unknown subcommand '%s'\n",
			argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (jose_init() < 0)
		return EXIT_SOFTWARE;
	client_init(&c, subs[s].prog);
	argc--;
	argv++;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vk:h", opts, NULL)) != -1) {
		if (opt == 'h') {
			sub_usage(stdout, subs[s].name);
			return 0;
		}
		r = client_option(&c, opt, optarg, true);
		if (r < 0)
			return EXIT_USAGE;
		if (r == 0) {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (subs[s].public_route && !c.token_file && !c.key_file &&
	    !c.mandate_file)
		c.no_auth = true;
	/* A POST says its (empty) body is JSON: the server refuses a POST
	 * of any other media type. */
	return client_send(&c, subs[s].method, subs[s].target,
			   strcmp(subs[s].method, "POST") == 0 ? "" : NULL, 0,
			   NULL);
}
