/*
 * cmd_tls.c - `tpwallet tls`: the server's TLS certificates, from a
 * client (issue 15; docs/operations.md, "Standby certificate").
 *
 *   switch --to primary|standby   POST /v1/tls/switch (right
 *                                 keys:rotate), {"to": ROLE}
 *
 * In an incident the operator moves new connections to the standby
 * certificate (another CA or key) with one command, and back.  The
 * answer's JSON is printed as the server sent it.  Credentials as for
 * `tpwallet call` (the administrator's token by default).
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
		"usage: tpwallet tls switch --to primary|standby [options]\n\n"
		"  switch  serve the standby certificate, or the primary "
		"again, to new\n          connections (POST /v1/tls/switch, "
		"right keys:rotate); journaled\n          as a tls_switch "
		"entry.  The standby stays until switched back;\n          "
		"the primary lets the certificates' dates decide again.\n\n"
		"options:\n  --to ROLE  primary or standby\n%s%s\n"
		"Exit 0 on success, 1 when refused or unreachable, 2 on usage "
		"errors.\nSee docs/cli.md and docs/operations.md.\n\n"
		"Example:\n"
		"  tpwallet tls switch --to standby\n",
		client_usage_common, client_usage_auth);
}

int cmd_tls(int argc, char **argv)
{
	static const struct option opts[] = {
		CLIENT_LONG_OPTIONS,
		CLIENT_AUTH_LONG_OPTIONS,
		{"to", required_argument, NULL, 'O'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct client c;
	const char *to = NULL;
	int opt, r;

	if ((r = client_subcommand_or_help(argc, argv, usage)) >= 0)
		return r;
	if (strcmp(argv[1], "switch") != 0) {
		fprintf(stderr, "tpwallet tls: unknown subcommand '%s'\n",
			argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (jose_init() < 0)
		return EXIT_SOFTWARE;
	client_init(&c, "tpwallet tls switch");
	argc--;
	argv++;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vk:h", opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == 'O') {
			to = optarg;
			continue;
		}
		r = client_option(&c, opt, optarg, true);
		if (r <= 0) {
			if (r == 0)
				usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !to ||
	    (strcmp(to, "primary") != 0 && strcmp(to, "standby") != 0)) {
		fprintf(stderr,
			"tpwallet tls switch: --to primary or --to standby\n");
		return EXIT_USAGE;
	}
	char body[32];
	snprintf(body, sizeof(body), "{\"to\":\"%s\"}", to);
	return client_send(&c, "POST", "/v1/tls/switch", body, strlen(body),
			   NULL);
}
