/*
 * cmd_probe.c - `tpwallet probe`: one request as a given client version
 * to the public URL (the gateway's) and the same request to the server
 * directly, and where the two answers differ: refused by the gateway,
 * refused by tpwallet (which rule, which policy version), or served
 * (api/probe.h classifies; docs/cli.md, docs/operations.md "Probes").
 *
 * The credential, when one is wanted, comes from a file (--token-file,
 * mode 0600) or the environment (TPWALLET_PROBE_TOKEN), never from a
 * flag's value; none is sent by default (the administrator's token is
 * not for a gateway).  Exit status: 0 both served, 1 the two disagree,
 * 3 both refused alike, 4 one of them unreachable, 2 usage.
 */
#include "api/probe.h"
#include "cli/cli.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define PROBE_EXIT_DISAGREE    1
#define PROBE_EXIT_REFUSED     3
#define PROBE_EXIT_UNREACHABLE 4

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet probe --client-version PLATFORM/VERSION "
		"[--path PATH]\n"
		"                      [--token-file FILE] [--json] [--server "
		"URL] [--timeout S]\n"
		"                      PUBLIC_URL\n\n"
		"Send GET PATH (default " PROBE_PATH_DEFAULT
		") as that client (X-Client-Version) to\n"
		"PUBLIC_URL (the gateway in front) and to the server directly, "
		"and say\nwho decided each answer: refused_by_gateway (no "
		"Tpwallet-Problem header,\nno tpwallet problem type, no "
		"X-Client-Policy), refused_by_tpwallet (its\ngate's reason "
		"and policy version), served (tpwallet answered and its gate\n"
		"let the client through: a 401 without a credential counts), "
		"or\nunreachable (no HTTP answer within the deadline).\n\n"
		"  --client-version P/V  the client to probe as "
		"(android/3.9.4)\n"
		"  --path PATH           the request target "
		"(default " PROBE_PATH_DEFAULT ")\n"
		"  --token-file FILE     send the bearer token in FILE (mode "
		"0600); or set\n"
		"                        TPWALLET_PROBE_TOKEN; none by "
		"default\n"
		"  --json                one JSON object on stdout\n"
		"  --server URL          the server directly (default "
		"$TPWALLET_SERVER, else\n"
		"                        " CLIENT_SERVER_DEFAULT ")\n"
		"  --timeout S           whole-request deadline per answer "
		"(default 5)\n"
		"  --cacert FILE         CAs for https\n\n"
		"Exit status: 0 both served, 1 the two answers disagree, 2 "
		"usage, 3 both\nrefused alike, 4 one of them unreachable.\n\n"
		"Example (the server as its own public URL; behind a gateway, "
		"give its URL):\n"
		"  tpwallet probe --client-version android/4.2.0 "
		"\"$TPWALLET_SERVER\"\n");
}

struct side {
	const char *label;
	const char *url;
	struct probe_result r;
};

static void print_side(const struct side *s)
{
	const struct probe_result *r = &s->r;

	printf("  %-6s ", s->label);
	client_print_clean(stdout, s->url);
	printf(": %s", probe_verdict_name((enum probe_verdict)r->verdict));
	if (!r->up) {
		printf(" (%s)\n", r->error ? r->error : "no answer");
		return;
	}
	printf(" (HTTP %d", r->status);
	if (r->problem[0])
		printf(" %s", r->problem);
	else if (r->verdict == PROBE_refused_by_gateway)
		printf(", no tpwallet marker: something in front answered");
	if (r->gate[0])
		printf("; gate %s", r->gate);
	if (r->reason[0])
		printf(", rule %s", r->reason);
	if (r->policy_version)
		printf(", policy version %llu",
		       (unsigned long long)r->policy_version);
	printf(")\n");
}

static void json_side(struct wbuf *b, const struct side *s)
{
	wbuf_puts(b, "{\"url\":");
	wbuf_put_json_str(b, s->url, strlen(s->url));
	wbuf_putc(b, ',');
	probe_result_json(b, &s->r);
	wbuf_putc(b, '}');
}

/* The outcome's name, its exit status and a sentence. */
static int outcome(const struct side *pub, const struct side *srv,
		   const char **name, const char **says)
{
	if (pub->r.verdict == PROBE_unreachable ||
	    srv->r.verdict == PROBE_unreachable) {
		*name = "unreachable";
		*says = "cannot compare: an answer did not come";
		return PROBE_EXIT_UNREACHABLE;
	}
	if (pub->r.verdict != srv->r.verdict) {
		*name = "disagreement";
		*says = pub->r.verdict == PROBE_refused_by_gateway
				? "the gateway refuses what the server serves"
				: "the public URL and the server answer "
				  "differently";
		return PROBE_EXIT_DISAGREE;
	}
	if (pub->r.verdict != PROBE_served) {
		*name = "both_refused";
		*says = "both refuse this client";
		return PROBE_EXIT_REFUSED;
	}
	*name = "served";
	*says = "both serve this client";
	return 0;
}

/* The token from --token-file or TPWALLET_PROBE_TOKEN; "" for none. */
static int load_token(const struct client *c, const char *file, char *buf,
		      size_t cap)
{
	size_t len = 0;
	const char *env = getenv("TPWALLET_PROBE_TOKEN");

	buf[0] = '\0';
	if (file)
		return client_read_secret_file(c, "token file", file, true, buf,
					       cap, &len);
	if (env && *env) {
		if (strlen(env) >= cap || strpbrk(env, "\r\n")) {
			fprintf(stderr,
				"%s: TPWALLET_PROBE_TOKEN is too long or "
				"holds a line break\n",
				c->prog);
			return -1;
		}
		memcpy(buf, env, strlen(env) + 1);
	}
	return 0;
}

static int probe_one(const struct client *c, struct side *s, const char *path,
		     const char *client, const char *token)
{
	struct http_client *hc = NULL;
	int ret = probe_client_open(&hc, s->url, 0, c->timeout_s * 1000u,
				    c->ca_file);
	if (ret < 0) {
		fprintf(stderr, "%s: %s: %s\n", c->prog, s->url,
			http_err_desc(ret));
		return EXIT_USAGE;
	}
	(void)probe_send(hc, path, client, token[0] ? token : NULL, NULL,
			 &s->r);
	http_client_close(hc);
	return 0;
}

int cmd_probe(int argc, char **argv)
{
	static const struct option opts[] = {
		CLIENT_LONG_OPTIONS,
		{"client-version", required_argument, NULL, 'V'},
		{"path", required_argument, NULL, 'p'},
		{"token-file", required_argument, NULL, 'T'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct client c;
	const char *client = NULL, *path = PROBE_PATH_DEFAULT,
		   *token_file = NULL;
	bool json = false;
	char token[CLIENT_TOKEN_BYTES_MAX];
	int opt, ret;

	client_init(&c, "tpwallet probe");
	c.timeout_s = PROBE_TOTAL_TIMEOUT_MS / 1000u;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vhj", opts, NULL)) != -1) {
		int r = client_option(&c, opt, optarg, false);
		if (r < 0)
			return EXIT_USAGE;
		if (r > 0)
			continue;
		switch (opt) {
		case 'V': client = optarg; break;
		case 'p': path = optarg; break;
		case 'T': token_file = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || !client) {
		fprintf(stderr,
			"%s: wants --client-version and one "
			"PUBLIC_URL (see --help)\n",
			c.prog);
		return EXIT_USAGE;
	}
	if (!probe_client_valid(client)) {
		fprintf(stderr,
			"%s: --client-version wants PLATFORM/VERSION "
			"(android/3.9.4), not '%s'\n",
			c.prog, client);
		return EXIT_USAGE;
	}
	if (path[0] != '/' || strlen(path) >= HTTP_TARGET_BYTES_MAX ||
	    strpbrk(path, " \t\r\n")) {
		fprintf(stderr, "%s: --path wants /TARGET\n", c.prog);
		return EXIT_USAGE;
	}
	if (load_token(&c, token_file, token, sizeof(token)) != 0)
		return EXIT_USAGE;

	struct side pub = {.label = "public", .url = argv[optind]};
	struct side srv = {.label = "server", .url = c.server};
	ret = probe_one(&c, &pub, path, client, token);
	if (ret == 0)
		ret = probe_one(&c, &srv, path, client, token);
	sodium_memzero(token, sizeof(token));
	if (ret != 0)
		return ret;

	const char *name, *says;
	int exit_status = outcome(&pub, &srv, &name, &says);
	if (json) {
		struct wbuf b = WBUF_INIT((size_t)64 << 10);
		wbuf_puts(&b, "{\"client_version\":");
		wbuf_put_json_str(&b, client, strlen(client));
		wbuf_puts(&b, ",\"path\":");
		wbuf_put_json_str(&b, path, strlen(path));
		wbuf_puts(&b, ",\"public\":");
		json_side(&b, &pub);
		wbuf_puts(&b, ",\"server\":");
		json_side(&b, &srv);
		wbuf_puts(&b, ",\"outcome\":\"");
		wbuf_puts(&b, name);
		wbuf_puts(&b, "\"}");
		if (b.err) {
			wbuf_release(&b);
			fprintf(stderr, "%s: out of memory\n", c.prog);
			return EXIT_SOFTWARE;
		}
		printf("%.*s\n", (int)b.len, b.data);
		wbuf_release(&b);
		return exit_status;
	}
	printf("probe %s: GET ", client);
	client_print_clean(stdout, path);
	printf("\n");
	print_side(&pub);
	print_side(&srv);
	printf("%s: %s\n", name, says);
	return exit_status;
}
