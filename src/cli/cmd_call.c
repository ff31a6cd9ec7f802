/*
 * cmd_call.c - `tpwallet call`: send one request to a tpwallet server
 * with a credential (issue 4), and what every client command shares:
 * the --server/--data/--timeout options, key and token files, and the
 * request with its Authorization.
 *
 *   tpwallet call [--key KEYFILE --mandate CHAINFILE | --token-file FILE]
 *                 METHOD PATH [BODY | @FILE | -]
 *
 * With a mandate the request carries `Authorization: DPoP <chain>` and a
 * DPoP proof (RFC 9449) signed for this one request by KEYFILE, the last
 * link's delegate; otherwise the administrator's bearer token, by default
 * DATA/admin.token.  The answer's body goes to stdout; a refusal (an RFC
 * 9457 problem) is summarised on stderr as "<status> <title>: <detail>".
 * Exit 0 on a 2xx answer, 1 on any other answer or when the server cannot
 * be reached, 2 on a usage error.  A batch (POST /v1/accounts or
 * /v1/transfers with an array) is answered 200 whatever its events'
 * results, so its exit status reads them: 0 when every event is
 * "created" or "exists", 1 when every event failed, 3 when some did
 * (the count on stderr).
 *
 * Secrets: key files are read into buffers that are wiped, private keys
 * live in jose's locked memory, the token and the Authorization value
 * are wiped after the request; none of them is ever printed, not even
 * in part.
 */
#include "cli/cli.h"
#include "net/http.h"
#include "crypto/b64url.h"
#include "crypto/jose.h"
#include "crypto/mandate.h"
#include "core/strerror.h"
#include "log/fsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define PATH_BYTES_MAX	       4200
#define CALL_EXTRA_HEADERS_MAX 4
#define BATCH_EXIT_SOME	       3 /* some events of a batch failed */

const char client_usage_common[] =
	"  --server URL       the server (default $TPWALLET_SERVER, "
	"else " CLIENT_SERVER_DEFAULT ");\n"
	"                     http:// or https:// (verified)\n"
	"  --cacert FILE      trust the CA certificates in FILE (PEM) for "
	"https,\n"
	"                     instead of the system's (default "
	"$TPWALLET_CACERT)\n"
	"  --cert FILE --cert-key FILE\n"
	"                     a client certificate (PEM) and its key for "
	"mutual TLS\n"
	"  --data DIR         data directory for the admin files (default "
	"$TPWALLET_DATA,\n"
	"                     else ./" CLIENT_DATA_DEFAULT ")\n"
	"  --timeout SECONDS  connect and whole-request timeouts (default 10)\n"
	"  -v, --verbose      print the status line on stderr\n";

const char client_usage_auth[] =
	"  --token-file FILE  send the administrator's bearer token from FILE\n"
	"                     (the default: DATA/admin.token)\n"
	"  --key KEYFILE --mandate CHAINFILE\n"
	"                     send the mandate in CHAINFILE with a DPoP proof "
	"signed\n"
	"                     by KEYFILE (the last link's delegate)\n"
	"  --mandate CHAINFILE with --cert and --cert-key\n"
	"                     a certificate-bound mandate, sent as a bearer\n"
	"  --no-auth          send no credential (/healthz, jwks)\n";

void client_init(struct client *c, const char *prog)
{
	const char *env;

	memset(c, 0, sizeof(*c));
	c->prog = prog;
	env = getenv("TPWALLET_SERVER");
	c->server = env && env[0] ? env : CLIENT_SERVER_DEFAULT;
	env = getenv("TPWALLET_DATA");
	c->data_dir = env && env[0] ? env : CLIENT_DATA_DEFAULT;
	env = getenv("TPWALLET_CACERT");
	c->ca_file = env && env[0] ? env : NULL;
	c->timeout_s = CLIENT_TIMEOUT_S_DEFAULT;
}

int client_subcommand_or_help(int argc, char **argv, void (*usage)(FILE *))
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	return -1;
}

int client_option(struct client *c, int opt, const char *arg, bool with_auth)
{
	uint64_t v;

	switch (opt) {
	case CLIENT_OPT_SERVER: c->server = arg; return 1;
	case CLIENT_OPT_DATA: c->data_dir = arg; return 1;
	case CLIENT_OPT_CACERT: c->ca_file = arg; return 1;
	case CLIENT_OPT_CERT: c->cert_file = arg; return 1;
	case CLIENT_OPT_CERT_KEY: c->cert_key_file = arg; return 1;
	case CLIENT_OPT_TIMEOUT:
		if (parse_u64(arg, CLIENT_TIMEOUT_S_MAX, &v) < 0 || v == 0) {
			fprintf(stderr, "%s: --timeout must be 1..%u seconds\n",
				c->prog, CLIENT_TIMEOUT_S_MAX);
			return -1;
		}
		c->timeout_s = (unsigned)v;
		return 1;
	case 'v': c->verbose = true; return 1;
	default: break;
	}
	if (!with_auth)
		return 0;
	switch (opt) {
	case CLIENT_OPT_TOKEN_FILE: c->token_file = arg; return 1;
	case 'k': c->key_file = arg; return 1;
	case CLIENT_OPT_MANDATE: c->mandate_file = arg; return 1;
	case CLIENT_OPT_NO_AUTH: c->no_auth = true; return 1;
	default: return 0;
	}
}

/* ---- files ----------------------------------------------------------------
 */

int client_read_file(const char *path, size_t max, char **out, size_t *len)
{
	if (strcmp(path, "-") == 0)
		return fsfile_read_fd(STDIN_FILENO, max, out, len);
	return fsfile_read(path, max, out, len);
}

/*
 * A small secret file (key, token) into buf[0..cap) without trailing
 * white space; with private_only, a file others can read is refused.
 * The caller wipes buf.  0, or -1 with a message.
 */
int client_read_secret_file(const struct client *c, const char *what,
			    const char *path, bool private_only, char *buf,
			    size_t cap, size_t *len_out)
{
	struct stat sb;
	size_t len = 0;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s %s: %s\n", c->prog, what, path,
			tpw_strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "%s: %s %s: not a regular file\n", c->prog,
			what, path);
		goto cleanup;
	}
	if (private_only && (sb.st_mode & 077)) {
		fprintf(stderr,
			"%s: %s %s holds a secret but others may read it "
			"(mode %03o): chmod 600 it\n",
			c->prog, what, path, (unsigned)(sb.st_mode & 0777));
		goto cleanup;
	}
	for (;;) {
		if (len + 1 >= cap) {
			fprintf(stderr, "%s: %s %s: file too large\n", c->prog,
				what, path);
			goto cleanup;
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "%s: %s %s: %s\n", c->prog, what, path,
				tpw_strerror(errno));
			goto cleanup;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
			   buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	*len_out = len;
	ret = 0;
cleanup:
	close(fd);
	return ret;
}

int client_load_seckey(const struct client *c, const char *path,
		       struct jose_seckey **out)
{
	char buf[CLIENT_KEY_FILE_BYTES_MAX];
	size_t len = 0;
	int r, ret = -1;

	*out = NULL;
	if (client_read_secret_file(c, "key file", path, true, buf, sizeof(buf),
				    &len) < 0)
		goto cleanup;
	r = jose_seckey_parse_jwk(buf, len, out);
	if (r < 0) {
		fprintf(stderr,
			"%s: key file %s is not a private Ed25519 JWK: %s\n",
			c->prog, path, jose_err_desc(r));
		*out = NULL;
		goto cleanup;
	}
	ret = 0;
cleanup:
	sodium_memzero(buf, sizeof(buf));
	return ret;
}

int client_load_pubkey(const struct client *c, const char *path,
		       struct jose_pubkey *out)
{
	char buf[CLIENT_KEY_FILE_BYTES_MAX];
	struct jose_seckey *sk = NULL;
	size_t len = 0;
	int r, ret = -1;

	if (client_read_secret_file(c, "key file", path, false, buf,
				    sizeof(buf), &len) < 0)
		goto cleanup;
	r = jose_pubkey_parse_jwk(buf, len, out);
	if (r == -JOSE_key_private_member) {
		/* A private JWK: its public half. */
		r = jose_seckey_parse_jwk(buf, len, &sk);
		if (r == 0)
			jose_seckey_public(sk, out);
	}
	if (r < 0) {
		fprintf(stderr, "%s: key file %s is not an Ed25519 JWK: %s\n",
			c->prog, path, jose_err_desc(r));
		goto cleanup;
	}
	ret = 0;
cleanup:
	jose_seckey_free(sk);
	sodium_memzero(buf, sizeof(buf));
	return ret;
}

void client_random_id(char out[23])
{
	unsigned char b[16];

	randombytes_buf(b, sizeof(b));
	b64url_encode(out, 23, b, sizeof(b));
}

/* ---- the request ----------------------------------------------------------
 */

void client_print_body(const char *body, size_t len)
{
	if (len == 0)
		return;
	fwrite(body, 1, len, stdout);
	if (body[len - 1] != '\n')
		fputc('\n', stdout);
	fflush(stdout);
}

/* Text from the server, made safe for a terminal. */
void client_print_clean(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
	}
}

static bool is_problem(const struct http_response *r)
{
	return strncasecmp(r->content_type, "application/problem+json",
			   strlen("application/problem+json")) == 0;
}

/* "<status> <title>: <detail> (link N, claim C) [type]" on stderr. */
static void print_problem(const struct client *c, const struct http_response *r)
{
	json_t *p = NULL;
	const char *title = NULL, *detail = NULL, *claim = NULL, *type = NULL;
	json_t *link = NULL;

	if (r->body)
		p = json_loadb(r->body, r->body_len, 0, NULL);
	if (json_is_object(p)) {
		title = json_string_value(json_object_get(p, "title"));
		detail = json_string_value(json_object_get(p, "detail"));
		claim = json_string_value(json_object_get(p, "claim"));
		type = json_string_value(json_object_get(p, "type"));
		link = json_object_get(p, "link");
	}
	fprintf(stderr, "%s: %d ", c->prog, r->status);
	client_print_clean(stderr, title ? title : r->reason);
	if (detail) {
		fputs(": ", stderr);
		client_print_clean(stderr, detail);
	}
	if (json_is_integer(link) || claim) {
		fputs(" (", stderr);
		if (json_is_integer(link))
			fprintf(stderr, "link %lld%s",
				(long long)json_integer_value(link),
				claim ? ", " : "");
		if (claim) {
			fputs("claim ", stderr);
			client_print_clean(stderr, claim);
		}
		fputc(')', stderr);
	}
	if (type) {
		fputs(" [", stderr);
		client_print_clean(stderr, type);
		fputc(']', stderr);
	}
	fputc('\n', stderr);
	json_decref(p);
}

/* A mandate file: one line of base64url, '.' and '~'. */
static int load_chain(const struct client *c, const char *path, char **out,
		      size_t *len_out)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	r = client_read_file(path, MANDATE_AUTHZ_BYTES_MAX + 64, &text, &len);
	if (r < 0) {
		fprintf(stderr, "%s: mandate %s: %s\n", c->prog, path,
			fsfile_strerror(r));
		return -1;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
			   text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	text[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		      ch == '.' || ch == '~')) {
			fprintf(stderr,
				"%s: mandate %s is not one line of compact "
				"JWS links separated by '~'\n",
				c->prog, path);
			free(text);
			return -1;
		}
	}
	if (len == 0 || len > MANDATE_AUTHZ_BYTES_MAX) {
		fprintf(stderr, "%s: mandate %s is %s\n", c->prog, path,
			len ? "too long" : "empty");
		free(text);
		return -1;
	}
	*out = text;
	*len_out = len;
	return 0;
}

/* "SCHEME CHAIN", malloc'ed; NULL (said) when out of memory. */
static char *scheme_value(const struct client *c, const char *scheme,
			  const char *chain, size_t chain_len)
{
	size_t cap = strlen(scheme) + 1 + chain_len + 1;
	char *v = malloc(cap);

	if (!v)
		fprintf(stderr, "%s: out of memory\n", c->prog);
	else
		snprintf(v, cap, "%s %s", scheme, chain);
	return v;
}

int client_send(const struct client *c, const char *method, const char *target,
		const char *body, size_t body_len, struct http_response *resp)
{
	struct http_client *hc = NULL;
	const struct http_url *url;
	struct http_header hdr[4 + CALL_EXTRA_HEADERS_MAX];
	struct http_request req = {0};
	struct http_response r = {0};
	struct jose_seckey *key = NULL;
	char token[CLIENT_TOKEN_BYTES_MAX + 2];
	char path[PATH_BYTES_MAX];
	char *authz = NULL, *chain = NULL, *proof = NULL;
	size_t authz_cap = 0, nh = 0, chain_len = 0, token_len = 0;
	int ret = EXIT_USAGE, err;

	token[0] = '\0';
	if (!c->cert_file != !c->cert_key_file) {
		fprintf(stderr, "%s: --cert and --cert-key go together\n",
			c->prog);
		goto cleanup;
	}
	err = http_client_open(
		&hc, c->server,
		&(struct http_options){.connect_timeout_ms =
					       c->timeout_s * 1000u,
				       .total_timeout_ms = c->timeout_s * 1000u,
				       .ca_file = c->ca_file,
				       .cert_file = c->cert_file,
				       .key_file = c->cert_key_file,
				       .user_agent = "tpwallet-cli"});
	if (err == -HTTP_bad_url || err == -HTTP_unsupported_scheme) {
		fprintf(stderr, "%s: --server %s: %s\n", c->prog, c->server,
			http_err_desc(err));
		goto cleanup;
	}
	if (err < 0) {
		ret = 1;
		fprintf(stderr, "%s: %s\n", c->prog, http_err_desc(err));
		goto cleanup;
	}
	url = http_client_url(hc);
	if (c->no_auth) {
		/* nothing */
	} else if (c->mandate_file && !c->key_file && c->cert_file &&
		   !c->token_file) {
		/* A certificate-bound mandate: the chain as a bearer, the
		 * client certificate its proof (docs/authz.md). */
		if (load_chain(c, c->mandate_file, &chain, &chain_len) < 0)
			goto cleanup;
		authz = scheme_value(c, "Bearer", chain, chain_len);
		if (!authz) {
			ret = 1;
			goto cleanup;
		}
		authz_cap = strlen(authz) + 1; /* wiped at the end */
		hdr[nh++] = (struct http_header){"Authorization", authz};
	} else if (c->key_file || c->mandate_file) {
		char htu[MANDATE_HTU_BYTES_MAX + 1], jti[23];
		size_t plen = 0, tlen = strcspn(target, "?#");
		int k;

		if (!c->key_file || !c->mandate_file) {
			fprintf(stderr,
				"%s: --key and --mandate go together (a "
				"certificate-bound mandate: --mandate with "
				"--cert and --cert-key)\n",
				c->prog);
			goto cleanup;
		}
		if (c->token_file) {
			fprintf(stderr,
				"%s: give --token-file or --key/--mandate, "
				"not both\n",
				c->prog);
			goto cleanup;
		}
		if (load_chain(c, c->mandate_file, &chain, &chain_len) < 0 ||
		    client_load_seckey(c, c->key_file, &key) < 0)
			goto cleanup;
		k = snprintf(htu, sizeof(htu), "%s%s%.*s", url->origin,
			     url->prefix, (int)tlen, target);
		if (k < 0 || (size_t)k >= sizeof(htu)) {
			fprintf(stderr,
				"%s: the URL is too long for a DPoP "
				"proof\n",
				c->prog);
			goto cleanup;
		}
		client_random_id(jti);
		proof = malloc(JOSE_TOKEN_BYTES_MAX + 1);
		if (!proof) {
			ret = 1;
			fprintf(stderr, "%s: out of memory\n", c->prog);
			goto cleanup;
		}
		if (mandate_dpop_sign(key, jti, method, htu,
				      (int64_t)time(NULL), chain, chain_len,
				      proof, JOSE_TOKEN_BYTES_MAX + 1,
				      &plen) < 0) {
			ret = 1;
			fprintf(stderr, "%s: cannot sign the DPoP proof\n",
				c->prog);
			goto cleanup;
		}
		authz = scheme_value(c, "DPoP", chain, chain_len);
		if (!authz) {
			ret = 1;
			goto cleanup;
		}
		authz_cap = strlen(authz) + 1; /* wiped at the end */
		hdr[nh++] = (struct http_header){"Authorization", authz};
		hdr[nh++] = (struct http_header){"DPoP", proof};
	} else {
		const char *tf = c->token_file;
		if (!tf) {
			int k = snprintf(path, sizeof(path), "%s/admin.token",
					 c->data_dir);
			if (k < 0 || (size_t)k >= sizeof(path)) {
				fprintf(stderr, "%s: --data too long\n",
					c->prog);
				goto cleanup;
			}
			tf = path;
		}
		if (client_read_secret_file(c, "token file", tf, false, token,
					    sizeof(token), &token_len) < 0) {
			if (!c->token_file)
				fprintf(stderr,
					"%s: (the default credential is the "
					"administrator's token in "
					"DATA/admin.token; give --data, "
					"--token-file, --key with --mandate, "
					"or --no-auth)\n",
					c->prog);
			goto cleanup;
		}
		for (size_t i = 0; i < token_len; i++)
			if ((unsigned char)token[i] <= 0x20 ||
			    (unsigned char)token[i] >= 0x7f)
				token_len = 0;
		if (token_len == 0) {
			fprintf(stderr,
				"%s: token file %s does not hold one token\n",
				c->prog, tf);
			goto cleanup;
		}
		authz_cap = token_len + sizeof("Bearer ");
		authz = malloc(authz_cap);
		if (!authz) {
			ret = 1;
			fprintf(stderr, "%s: out of memory\n", c->prog);
			goto cleanup;
		}
		snprintf(authz, authz_cap, "Bearer %s", token);
		hdr[nh++] = (struct http_header){"Authorization", authz};
	}
	if (body)
		hdr[nh++] = (struct http_header){"Content-Type",
						 "application/json"};
	for (unsigned i = 0; i < c->nextra && i < CALL_EXTRA_HEADERS_MAX; i++)
		hdr[nh++] = c->extra[i];

	req.method = method;
	req.target = target;
	req.headers = hdr;
	req.nheaders = nh;
	req.body = body;
	req.body_len = body_len;
	req.has_body = body != NULL;
	ret = 1;
	err = http_client_do(hc, &req, &r);
	if (err == -HTTP_invalid_argument) {
		fprintf(stderr,
			"%s: invalid request: METHOD must be a token and "
			"PATH start with '/' and hold no spaces\n",
			c->prog);
		ret = EXIT_USAGE;
		goto cleanup;
	}
	if (err < 0) {
		fprintf(stderr, "%s: %s: %s", c->prog, c->server,
			http_err_desc(err));
		if (r.os_errno)
			fprintf(stderr, " (%s)", tpw_strerror(r.os_errno));
		fputc('\n', stderr);
		goto cleanup;
	}
	if (c->verbose) {
		fprintf(stderr, "HTTP/1.%d %d ", r.minor_version, r.status);
		client_print_clean(stderr, r.reason);
		fputc('\n', stderr);
	}
	if (r.status >= 200 && r.status < 300) {
		if (resp) {
			*resp = r;
			memset(&r, 0, sizeof(r));
		} else {
			client_print_body(r.body, r.body_len);
		}
		ret = 0;
	} else if (is_problem(&r)) {
		print_problem(c, &r);
		if (c->verbose && r.body)
			client_print_body(r.body, r.body_len);
		if (resp && c->keep_problem) {
			*resp = r;
			memset(&r, 0, sizeof(r));
		}
	} else {
		fprintf(stderr, "%s: %d ", c->prog, r.status);
		client_print_clean(stderr, r.reason);
		fputc('\n', stderr);
		client_print_body(r.body, r.body_len);
	}
cleanup:
	http_response_clear(&r);
	http_client_close(hc);
	jose_seckey_free(key);
	sodium_memzero(token, sizeof(token));
	if (authz) {
		sodium_memzero(authz, authz_cap);
		free(authz);
	}
	free(chain);
	free(proof);
	return ret;
}

/* ---- tpwallet call ------------------------------------------------------ */

/* -H 'Name: value': a header name is a token, its value printable
 * ASCII; Authorization and DPoP come from the credential options. */
static int extra_header(struct client *c, struct http_header *h, char *arg)
{
	char *colon = strchr(arg, ':');
	if (!colon || colon == arg || c->nextra == CALL_EXTRA_HEADERS_MAX) {
		fprintf(stderr,
			"tpwallet call: -H takes 'Name: value' (at most %d)\n",
			CALL_EXTRA_HEADERS_MAX);
		return -1;
	}
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ')
		v++;
	for (const char *p = arg; *p; p++)
		if (!strchr("!#$%&'*+-.^_`|~", *p) &&
		    !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9'))) {
			fprintf(stderr, "tpwallet call: -H: bad header name\n");
			return -1;
		}
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			fprintf(stderr, "tpwallet call: -H: header values are "
					"printable ASCII\n");
			return -1;
		}
	if (strcasecmp(arg, "Authorization") == 0 ||
	    strcasecmp(arg, "DPoP") == 0 ||
	    strcasecmp(arg, "Content-Type") == 0 ||
	    strcasecmp(arg, "Host") == 0 ||
	    strcasecmp(arg, "Content-Length") == 0) {
		fprintf(stderr, "tpwallet call: -H: %s is set by tpwallet\n",
			arg);
		return -1;
	}
	h[c->nextra++] = (struct http_header){arg, v};
	c->extra = h;
	return 0;
}

/* POST /v1/accounts or /v1/transfers (any query) with a JSON array. */
static bool is_batch(const char *method, const char *target, const char *body,
		     size_t len)
{
	size_t n = strcspn(target, "?");
	size_t i = 0;

	if (strcmp(method, "POST") != 0 ||
	    !((n == strlen("/v1/accounts") &&
	       strncmp(target, "/v1/accounts", n) == 0) ||
	      (n == strlen("/v1/transfers") &&
	       strncmp(target, "/v1/transfers", n) == 0)))
		return false;
	while (i < len && strchr(" \t\r\n", body[i]))
		i++;
	return i < len && body[i] == '[';
}

/* A batch's answer, one result per event: 0 when none failed (every
 * status "created" or "exists"), 1 when all did, BATCH_EXIT_SOME when
 * some did; a failure is counted on stderr. */
static int batch_exit(const struct http_response *r)
{
	json_t *a = json_loadb(r->body, r->body_len, 0, NULL);
	size_t n = json_is_array(a) ? json_array_size(a) : 0, failed = 0;

	for (size_t i = 0; i < n; i++) {
		const char *st = json_string_value(
			json_object_get(json_array_get(a, i), "status"));
		if (!st ||
		    (strcmp(st, "created") != 0 && strcmp(st, "exists") != 0))
			failed++;
	}
	json_decref(a);
	if (failed == 0)
		return 0;
	fprintf(stderr, "tpwallet call: %zu of %zu events failed\n", failed, n);
	return failed == n ? 1 : BATCH_EXIT_SOME;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet call [options] METHOD PATH [BODY | @FILE | "
		"-]\n\n"
		"Send one request to the server and print the answer's body "
		"on stdout.\nBODY is JSON text, @FILE a file holding it, - "
		"standard input; it is\nsent with Content-Type: "
		"application/json.  A refusal (RFC 9457 problem)\nis "
		"summarised on stderr: \"<status> <title>: <detail> (link N, "
		"claim C)\".\n\n"
		"options:\n%s%s"
		"  -H, --header 'Name: value'  an extra header (repeatable, "
		"at most 4),\n"
		"                       e.g. -H 'X-Client-Version: "
		"android/3.9.0'\n\n"
		"Exit 0 on a 2xx answer, 1 on any other answer or when the "
		"server cannot\nbe reached, 2 on usage errors.  A batch "
		"(POST /v1/accounts or /v1/transfers\nwith an array): 0 when "
		"every event is created or exists, 1 when every\nevent "
		"failed, 3 when some did.  See docs/cli.md.\n\n"
		"Example:\n"
		"  tpwallet call POST /v1/accounts '[{\"id\": \"1\", "
		"\"ledger\": 1, \"code\": 10}]'\n"
		"  tpwallet call GET /v1/accounts/1\n",
		client_usage_common, client_usage_auth);
}

int cmd_call(int argc, char **argv)
{
	static const struct option opts[] = {
		CLIENT_LONG_OPTIONS,
		CLIENT_AUTH_LONG_OPTIONS,
		{"header", required_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct client c;
	struct http_header extra[CALL_EXTRA_HEADERS_MAX];
	const char *method, *target, *arg = NULL;
	char *body = NULL;
	size_t body_len = 0;
	int opt, r, ret = EXIT_USAGE;

	client_init(&c, "tpwallet call");
	if (jose_init() < 0) {
		fprintf(stderr, "tpwallet call: libsodium failed\n");
		return EXIT_SOFTWARE;
	}
	optind = 1;
	/* "+": stop at METHOD, so a body such as "-" is not an option. */
	while ((opt = getopt_long(argc, argv, "+vk:hH:", opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == 'H') {
			if (extra_header(&c, extra, optarg) < 0)
				return EXIT_USAGE;
			continue;
		}
		r = client_option(&c, opt, optarg, true);
		if (r < 0)
			return EXIT_USAGE;
		if (r == 0) {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind < 2 || argc - optind > 3) {
		usage(stderr);
		return EXIT_USAGE;
	}
	method = argv[optind];
	target = argv[optind + 1];
	if (argc - optind == 3)
		arg = argv[optind + 2];
	if (arg && (arg[0] == '@' || strcmp(arg, "-") == 0)) {
		const char *file = arg[0] == '@' ? arg + 1 : "-";
		r = client_read_file(file, CLIENT_BODY_BYTES_MAX, &body,
				     &body_len);
		if (r < 0) {
			fprintf(stderr, "tpwallet call: body %s: %s\n",
				file[0] == '-' && !file[1] ? "(stdin)" : file,
				fsfile_strerror(r));
			goto cleanup;
		}
	} else if (arg) {
		body_len = strlen(arg);
		body = malloc(body_len + 1);
		if (!body) {
			ret = 1;
			goto cleanup;
		}
		memcpy(body, arg, body_len + 1);
	}
	if (!is_batch(method, target, body, body_len)) {
		ret = client_send(&c, method, target, body, body_len, NULL);
		goto cleanup;
	}
	struct http_response resp = {0};
	ret = client_send(&c, method, target, body, body_len, &resp);
	if (ret == 0) {
		client_print_body(resp.body, resp.body_len);
		ret = batch_exit(&resp);
	}
	http_response_clear(&resp);
cleanup:
	free(body);
	return ret;
}
