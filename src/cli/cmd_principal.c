/*
 * cmd_principal.c - `tpwallet principal`: principals are Ed25519 key
 * pairs named by their RFC 7638 thumbprint (docs/authz.md).
 *
 *   create --name NAME --key-out FILE [--no-register]
 *                 a new key: the private JWK to FILE (mode 0600, never
 *                 over an existing file), the thumbprint on stdout, then
 *                 POST /v1/principals with the public JWK and the name;
 *   register KEYFILE [--name NAME]
 *                 POST /v1/principals for an existing key (a retry);
 *   register --certificate CERTFILE [--name NAME]
 *                 an organisation, by its X.509 certificate (PEM): the
 *                 server keeps the SHA-256 of its key and its dates;
 *   list          GET /v1/principals;
 *   show ID       GET /v1/principals/ID;
 *   id KEYFILE    the thumbprint of a public or private JWK, offline.
 *
 * The server calls need principals:admin or principals:read: by default
 * the administrator's token, DATA/admin.token.
 */
#include "cli/cli.h"
#include "net/http.h"
#include "crypto/jose.h"
#include "core/strerror.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

#define NAME_BYTES_MAX 128u
#define ID_BYTES_MAX   64u

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet principal <subcommand> [options]\n\n"
		"  create --name NAME --key-out FILE [--no-register]\n"
		"          make an Ed25519 key; write the private JWK to FILE "
		"(mode 0600,\n          never over an existing file); print "
		"its thumbprint; register\n          it (POST /v1/principals) "
		"unless --no-register\n"
		"  register KEYFILE [--name NAME]\n"
		"          register the public half of an existing key\n"
		"  register --certificate CERTFILE [--name NAME]\n"
		"          register an organisation by its X.509 certificate "
		"(PEM); it\n          authenticates with that certificate's "
		"key "
		"over mutual TLS\n"
		"  list    the registered principals (GET /v1/principals)\n"
		"  show ID one principal (GET /v1/principals/ID)\n"
		"  id KEYFILE\n"
		"          print the thumbprint (the principal id) of a public "
		"or private\n          JWK file; offline\n\n"
		"options of the server calls:\n%s%s\n"
		"Exit 0 on success, 1 when refused or unreachable, 2 on usage "
		"errors.\nSee docs/cli.md and docs/authz.md.\n\n"
		"Example:\n"
		"  tpwallet principal create --name merchant --key-out "
		"merchant.jwk\n",
		client_usage_common, client_usage_auth);
}

/* One subcommand's --help (c->prog names it), with an example that
 * tests/e2e/test_cli.py runs. */
static void sub_usage(FILE *f, const char *prog)
{
	static const struct {
		const char *prog, *synopsis, *help, *example;
		bool server;
	} helps[] = {
		{"tpwallet principal create",
		 "--name NAME --key-out FILE [--no-register]",
		 "Make an Ed25519 key, write the private JWK to FILE (mode "
		 "0600, never over an\nexisting file), print its thumbprint "
		 "(the principal id), then register it\n(POST /v1/principals, "
		 "right principals:admin) unless --no-register.",
		 "--name till --key-out till.jwk --no-register", true},
		{"tpwallet principal register",
		 "KEYFILE | --certificate CERTFILE [--name NAME]",
		 "Register the public half of an existing key (POST "
		 "/v1/principals): a public\nor private JWK file.  Or an "
		 "organisation by its X.509 certificate (PEM):\nthe server "
		 "keeps the SHA-256 of its SubjectPublicKeyInfo and its "
		 "dates, and\na client that presents a certificate with that "
		 "key over mutual TLS is it\n(docs/authz.md, \"Organisation "
		 "principals\").",
		 "till.jwk --name till", true},
		{"tpwallet principal list", "",
		 "The registered principals (GET /v1/principals, right "
		 "principals:read).",
		 "", true},
		{"tpwallet principal show", "ID",
		 "One principal (GET /v1/principals/ID); ID is its "
		 "thumbprint.",
		 "\"$(tpwallet principal id till.jwk)\"", true},
		{"tpwallet principal id", "KEYFILE",
		 "Print the thumbprint (the principal id) of a public or "
		 "private JWK file;\noffline.",
		 "till.jwk", false},
	};
	size_t i = 0;

	while (i + 1 < sizeof(helps) / sizeof(helps[0]) &&
	       strcmp(helps[i].prog, prog) != 0)
		i++;
	fprintf(f, "usage: %s%s%s%s\n\n%s\n", helps[i].prog,
		helps[i].synopsis[0] ? " " : "", helps[i].synopsis,
		helps[i].server ? " [options]" : "", helps[i].help);
	if (helps[i].server)
		fprintf(f, "\noptions:\n%s%s", client_usage_common,
			client_usage_auth);
	fprintf(f,
		"\nExit 0 on success, 1 when refused or unreachable, 2 on "
		"usage errors.\n\nExample:\n  %s%s%s\n",
		helps[i].prog, helps[i].example[0] ? " " : "",
		helps[i].example);
}

/* getopt for one subcommand: the shared options plus name/key-out/
 * no-register where allowed.  Returns 0, or an exit status to return. */
struct popts {
	const char *name, *key_out, *certificate;
	bool no_register;
};

#define OPT_NAME	0x2001
#define OPT_KEY_OUT	0x2002
#define OPT_NO_REGISTER 0x2003
#define OPT_CERTIFICATE 0x2004
/* An organisation's certificate file, at most. */
#define CERT_FILE_BYTES_MAX ((size_t)15 << 10) /* the body holds it: 16 KiB */

static int parse_opts(struct client *c, int argc, char **argv, struct popts *po,
		      bool allow_create)
{
	static const struct option opts[] = {
		CLIENT_LONG_OPTIONS,
		CLIENT_AUTH_LONG_OPTIONS,
		{"name", required_argument, NULL, OPT_NAME},
		{"key-out", required_argument, NULL, OPT_KEY_OUT},
		{"no-register", no_argument, NULL, OPT_NO_REGISTER},
		{"certificate", required_argument, NULL, OPT_CERTIFICATE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "vk:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h': sub_usage(stdout, c->prog); return -1;
		case OPT_NAME: po->name = optarg; continue;
		case OPT_CERTIFICATE:
			if (allow_create) {
				usage(stderr);
				return EXIT_USAGE;
			}
			po->certificate = optarg;
			continue;
		case OPT_KEY_OUT:
		case OPT_NO_REGISTER:
			if (!allow_create) {
				usage(stderr);
				return EXIT_USAGE;
			}
			if (opt == OPT_KEY_OUT)
				po->key_out = optarg;
			else
				po->no_register = true;
			continue;
		default: break;
		}
		r = client_option(c, opt, optarg, true);
		if (r < 0)
			return EXIT_USAGE;
		if (r == 0) {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (po->name) {
		size_t n = strlen(po->name);
		bool ok = n > 0 && n <= NAME_BYTES_MAX;
		for (size_t i = 0; ok && i < n; i++)
			ok = (unsigned char)po->name[i] >= 0x20 &&
			     po->name[i] != 0x7f;
		if (!ok) {
			fprintf(stderr,
				"%s: --name must be 1..%u printable "
				"characters\n",
				c->prog, NAME_BYTES_MAX);
			return EXIT_USAGE;
		}
	}
	return 0;
}

/* POST /v1/principals {"jwk": <public JWK>, "name": NAME?}, or with
 * pem {"certificate": pem, "name": NAME?}. */
static int register_key(const struct client *c, const struct jose_pubkey *pub,
			const char *pem, const char *name)
{
	char jwk[JOSE_JWK_BYTES_MAX + 1];
	struct http_response resp = {0};
	json_t *body = NULL, *j = NULL;
	char *text = NULL;
	int ret = 1;

	if (pem)
		j = json_string(pem);
	else if (pub && jose_pubkey_to_jwk(pub, jwk, sizeof(jwk)) == 0)
		j = json_loads(jwk, 0, NULL);
	body = json_object();
	if (!j || !body ||
	    json_object_set(body, pem ? "certificate" : "jwk", j) < 0 ||
	    (name && json_object_set_new(body, "name", json_string(name)) < 0))
		goto cleanup;
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		goto cleanup;
	ret = client_send(c, "POST", "/v1/principals", text, strlen(text),
			  &resp);
	if (ret == 0 && c->verbose && resp.body)
		fprintf(stderr, "%.*s\n", (int)resp.body_len, resp.body);
cleanup:
	if (ret == 1 && !text)
		fprintf(stderr, "%s: out of memory\n", c->prog);
	http_response_clear(&resp);
	json_decref(j);
	json_decref(body);
	free(text);
	return ret;
}

/* Write text to a new file of mode 0600; never over an existing one. */
static int write_new_private(const struct client *c, const char *path,
			     const char *text, size_t len)
{
	int fd =
		open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		     0600);
	size_t off = 0;

	if (fd < 0) {
		fprintf(stderr, "%s: --key-out %s: %s%s\n", c->prog, path,
			tpw_strerror(errno),
			errno == EEXIST ? " (a key file is never overwritten)"
					: "");
		return -1;
	}
	int e = EIO;

	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = w < 0 ? errno : EIO;
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0) {
		e = errno;
		goto fail;
	}
	if (close(fd) < 0) {
		e = errno;
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "%s: cannot write %s: %s\n", c->prog, path,
		tpw_strerror(e));
	if (fd >= 0)
		close(fd);
	unlink(path);
	return -1;
}

static int principal_create(struct client *c, int argc, char **argv)
{
	struct popts po = {0};
	struct jose_seckey *key = NULL;
	struct jose_pubkey pub;
	char *jwk = NULL;
	char tp[JOSE_B64_32_BYTES];
	size_t jwk_cap = JOSE_JWK_BYTES_MAX + 2;
	int r, ret;

	ret = parse_opts(c, argc, argv, &po, true);
	if (ret != 0)
		return ret < 0 ? 0 : ret;
	if (optind != argc || !po.name || !po.key_out) {
		usage(stderr);
		return EXIT_USAGE;
	}
	ret = 1;
	jwk = sodium_malloc(jwk_cap);
	if (!jwk) {
		fprintf(stderr, "%s: out of memory\n", c->prog);
		goto cleanup;
	}
	r = jose_seckey_generate(NULL, &key);
	if (r == 0)
		r = jose_seckey_to_jwk(key, jwk, jwk_cap - 1);
	if (r < 0) {
		fprintf(stderr, "%s: cannot make a key: %s\n", c->prog,
			jose_err_desc(r));
		goto cleanup;
	}
	jose_seckey_public(key, &pub);
	jose_thumbprint(&pub, tp);
	size_t n = strlen(jwk);
	jwk[n++] = '\n';
	if (write_new_private(c, po.key_out, jwk, n) < 0)
		goto cleanup;
	printf("%s\n", tp);
	fflush(stdout);
	fprintf(stderr, "%s: private key written to %s (mode 0600)\n", c->prog,
		po.key_out);
	if (po.no_register) {
		ret = 0;
		goto cleanup;
	}
	ret = register_key(c, &pub, NULL, po.name);
	if (ret == 0)
		fprintf(stderr, "%s: registered as '%s'\n", c->prog, po.name);
	else
		fprintf(stderr,
			"%s: the key is in %s but not registered; retry with "
			"'tpwallet principal register %s --name ...'\n",
			c->prog, po.key_out, po.key_out);
cleanup:
	if (jwk)
		sodium_free(jwk); /* wipes */
	jose_seckey_free(key);
	return ret;
}

static int principal_register(struct client *c, int argc, char **argv)
{
	struct popts po = {0};
	struct jose_pubkey pub;
	int ret = parse_opts(c, argc, argv, &po, false);

	if (ret != 0)
		return ret < 0 ? 0 : ret;
	if (argc - optind != (po.certificate ? 0 : 1)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (po.certificate) {
		char *pem = NULL;
		size_t len;
		int r = client_read_file(po.certificate, CERT_FILE_BYTES_MAX,
					 &pem, &len);
		if (r < 0 || !memchr(pem, '-', len) || strlen(pem) != len) {
			fprintf(stderr, "%s: --certificate %s: %s\n", c->prog,
				po.certificate,
				r < 0 ? tpw_strerror(-r)
				      : "not a PEM certificate");
			free(pem);
			return EXIT_USAGE;
		}
		ret = register_key(c, NULL, pem, po.name);
		free(pem);
		return ret;
	}
	if (client_load_pubkey(c, argv[optind], &pub) < 0)
		return EXIT_USAGE;
	return register_key(c, &pub, NULL, po.name);
}

static int principal_get(struct client *c, int argc, char **argv, bool one)
{
	struct popts po = {0};
	char target[sizeof("/v1/principals/") + ID_BYTES_MAX];
	int ret = parse_opts(c, argc, argv, &po, false);

	if (ret != 0)
		return ret < 0 ? 0 : ret;
	if (argc - optind != (one ? 1 : 0) || po.name) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!one)
		return client_send(c, "GET", "/v1/principals", NULL, 0, NULL);
	const char *id = argv[optind];
	size_t n = strlen(id);
	bool ok = n > 0 && n <= ID_BYTES_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = (id[i] >= 'A' && id[i] <= 'Z') ||
		     (id[i] >= 'a' && id[i] <= 'z') ||
		     (id[i] >= '0' && id[i] <= '9') || id[i] == '-' ||
		     id[i] == '_';
	if (!ok) {
		fprintf(stderr,
			"%s: ID is a thumbprint: base64url characters only "
			"(see 'tpwallet principal id KEYFILE')\n",
			c->prog);
		return EXIT_USAGE;
	}
	snprintf(target, sizeof(target), "/v1/principals/%s", id);
	return client_send(c, "GET", target, NULL, 0, NULL);
}

static int principal_id(struct client *c, int argc, char **argv)
{
	struct jose_pubkey pub;
	char tp[JOSE_B64_32_BYTES];

	if (argc == 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		sub_usage(stdout, c->prog);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (client_load_pubkey(c, argv[1], &pub) < 0)
		return EXIT_USAGE;
	jose_thumbprint(&pub, tp);
	printf("%s\n", tp);
	return 0;
}

int cmd_principal(int argc, char **argv)
{
	static const struct {
		const char *name, *prog;
	} subs[] = {
		{"create", "tpwallet principal create"},
		{"register", "tpwallet principal register"},
		{"list", "tpwallet principal list"},
		{"show", "tpwallet principal show"},
		{"id", "tpwallet principal id"},
	};
	struct client c;
	size_t s;

	int r = client_subcommand_or_help(argc, argv, usage);
	if (r >= 0)
		return r;
	for (s = 0; s < sizeof(subs) / sizeof(subs[0]); s++)
		if (strcmp(argv[1], subs[s].name) == 0)
			break;
	if (s == sizeof(subs) / sizeof(subs[0])) {
		fprintf(stderr, "tpwallet principal: unknown subcommand '%s'\n",
			argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (jose_init() < 0)
		return EXIT_SOFTWARE;
	client_init(&c, subs[s].prog);
	switch (s) {
	case 0: return principal_create(&c, argc - 1, argv + 1);
	case 1: return principal_register(&c, argc - 1, argv + 1);
	case 2: return principal_get(&c, argc - 1, argv + 1, false);
	case 3: return principal_get(&c, argc - 1, argv + 1, true);
	default: return principal_id(&c, argc - 1, argv + 1);
	}
}
