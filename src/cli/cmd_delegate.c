/*
 * cmd_delegate.c - `tpwallet delegate`: mandates (delegation chains,
 * docs/authz.md) from a client.
 *
 *   issue    sign a link granting a right to a delegate key, as a root
 *            or below a parent chain; offline;
 *   inspect  decode every link of a chain WITHOUT verifying it;
 *   verify   verify a chain offline against its root's public key (every
 *            check but revocation, which only the server knows);
 *   revoke   sign a revocation statement and post it, or (--admin) post
 *            the administrator's plain form.
 *
 * A chain file holds one line: the links, root first, joined by '~', as
 * the Authorization header carries them after "DPoP ".  Nothing here
 * prints a private key; a chain is printed only where it is the output.
 */
#include "cli/cli.h"
#include "api/tls.h"
#include "log/fsfile.h"
#include "core/policy.h"
#include "net/http.h"
#include "core/u128.h"
#include "crypto/b64url.h"
#include "crypto/jose.h"
#include "crypto/mandate.h"
#include "core/strerror.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define DEFAULT_EXPIRES_S    (24 * 3600)
#define CHAIN_FILE_BYTES_MAX (MANDATE_AUTHZ_BYTES_MAX + 64)

/* ---- helpers ---------------------------------------------------------- */

static void rfc3339(int64_t t, char out[32])
{
	if (policy_format_time(t, out) != 0)
		snprintf(out, 32, "%lld", (long long)t);
}

static bool jti_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MANDATE_JTI_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		      ch == '.' || ch == '~'))
			return false;
	}
	return true;
}

/* A chain file ("-": stdin) without trailing white space.  The caller
 * frees *out.  0, or an exit status with the reason printed. */
static int read_chain(const char *prog, const char *path, char **out,
		      size_t *len_out)
{
	char *text = NULL;
	size_t len = 0;
	int r = client_read_file(path, CHAIN_FILE_BYTES_MAX, &text, &len);

	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog,
			strcmp(path, "-") == 0 ? "(stdin)" : path,
			fsfile_strerror(r));
		return EXIT_USAGE;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
			   text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	text[len] = '\0';
	if (len == 0) {
		fprintf(stderr, "%s: %s is empty\n", prog, path);
		free(text);
		return EXIT_USAGE;
	}
	*out = text;
	*len_out = len;
	return 0;
}

/* The links of a chain: pointers into text, at most MANDATE_LINKS_MAX
 * (one more is reported as too many). */
struct links {
	const char *at[MANDATE_LINKS_MAX + 1];
	size_t len[MANDATE_LINKS_MAX + 1];
	unsigned n;
};

static int split_chain(const char *text, size_t len, struct links *l)
{
	size_t start = 0;

	l->n = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] != '~')
			continue;
		if (l->n == MANDATE_LINKS_MAX + 1 || i == start)
			return -1;
		l->at[l->n] = text + start;
		l->len[l->n] = i - start;
		l->n++;
		start = i + 1;
	}
	return l->n > MANDATE_LINKS_MAX ? -1 : 0;
}

/* Decode one segment (base64url JSON object) of a compact JWS. */
static json_t *decode_segment(const char *s, size_t n, size_t max)
{
	unsigned char *buf;
	size_t out_len = 0;
	json_t *j = NULL;

	if (n == 0 || b64url_decoded_len(n) > max)
		return NULL;
	buf = malloc(max + 1);
	if (!buf)
		return NULL;
	if (b64url_decode(buf, max, s, n, &out_len) == 0)
		j = json_loadb((const char *)buf, out_len,
			       JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Header and claims of a link, decoded only.  0 or -1. */
static int decode_link(const char *s, size_t n, json_t **header,
		       json_t **claims)
{
	const char *d1 = memchr(s, '.', n), *d2;

	*header = *claims = NULL;
	if (!d1)
		return -1;
	d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - s));
	if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - s)))
		return -1;
	*header = decode_segment(s, (size_t)(d1 - s), JOSE_HEADER_BYTES_MAX);
	*claims = decode_segment(d1 + 1, (size_t)(d2 - d1 - 1),
				 JOSE_PAYLOAD_BYTES_MAX);
	if (!*header || !*claims) {
		json_decref(*header);
		json_decref(*claims);
		*header = *claims = NULL;
		return -1;
	}
	return 0;
}

static void print_date(const char *label, json_t *v)
{
	char buf[32];

	if (!v)
		return;
	if (json_is_integer(v)) {
		rfc3339((int64_t)json_integer_value(v), buf);
		printf("  %-5s %s (%lld)\n", label, buf,
		       (long long)json_integer_value(v));
	} else {
		char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		printf("  %-5s %s (not an integer)\n", label, t ? t : "?");
		free(t);
	}
}

static void print_str(const char *label, json_t *v)
{
	char *t;

	if (!v)
		return;
	/* unverified text: never raw to a terminal */
	printf("  %-5s ", label);
	if (json_is_string(v)) {
		client_print_clean(stdout, json_string_value(v));
	} else {
		t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		client_print_clean(stdout, t ? t : "?");
		free(t);
	}
	fputc('\n', stdout);
}

/* ---- issue ------------------------------------------------------------ */

/* The x5t#S256 of a PEM certificate file (RFC 8705: SHA-256 of its
 * DER).  0, or -1 with a message. */
static int load_cert_x5t(const char *prog, const char *path, u8 x5t[32])
{
	char *pem = NULL;
	size_t len = 0;
	u8 spki[32];
	int64_t nb, na;
	int r = client_read_file(path, (size_t)64 << 10, &pem, &len);

	if (r == 0 && api_tls_cert_identity(pem, len, spki, x5t, &nb, &na) != 0)
		r = -EINVAL;
	free(pem);
	if (r < 0)
		fprintf(stderr, "%s: --to-cert %s: %s\n", prog, path,
			r == -EINVAL ? "no PEM certificate that GnuTLS can read"
				     : tpw_strerror(-r));
	return r < 0 ? -1 : 0;
}

static void usage_issue(FILE *f)
{
	fprintf(f,
		"usage: tpwallet delegate issue --key ISSUER_KEYFILE --to "
		"DELEGATE_KEYFILE\n"
		"         --op OP [--op OP ...] [--account ID ...] [--ledger N "
		"...]\n"
		"         [--counterparty ID ...] [--per-transfer-cap N] "
		"[--total-cap N]\n"
		"         [--uses N] [--expires DURATION | --exp UNIX] [--nbf "
		"UNIX]\n"
		"         [--aud AUD] [--jti ID] [--parent CHAINFILE] [--out "
		"FILE]\n"
		"   or: tpwallet delegate issue --key ISSUER_KEYFILE --to-cert "
		"CERTFILE ...\n\n"
		"Sign a link that grants a right to the key in --to (a public "
		"or private\nJWK file), offline.  Without --parent the link is "
		"a root: --key is the\naccounts' owner (or the administrator, "
		"DATA/admin.jwk).  With --parent,\n--key must be the delegate "
		"of the parent's last link, and the new link may\nonly narrow "
		"it; the output is the parent chain, '~', the new link.\n"
		"The chain (one line) goes to stdout or --out FILE (mode "
		"0600); its jti\nand expiry to stderr.\n\n"
		"  --op OP            an operation (repeatable): "
		"accounts:create,\n"
		"                     accounts:read, transfers:create, "
		"transfers:post_void,\n"
		"                     transfers:read, principals:read, "
		"principals:admin,\n"
		"                     keys:read, keys:rotate, "
		"revocations:read, revoke,\n"
		"                     audit:read, policy:read, policy:admin, "
		"vault:tokenize,\n"
		"                     vault:reveal, vault:erase, vault:admin, "
		"acquirer:topup,\n"
		"                     acquirer:reconcile,\n"
		"                     or * (all)\n"
		"  --account ID       an account the right covers (repeatable, "
		"at most 16)\n"
		"  --ledger N         transfers only on ledger N (repeatable)\n"
		"  --counterparty ID  transfers may credit only ID "
		"(repeatable)\n"
		"  --per-transfer-cap N, --total-cap N   amounts (decimal)\n"
		"  --uses N           at most N transfers\n"
		"  --expires DURATION lifetime: 90s, 30m, 12h, 7d (default "
		"24h, or the\n"
		"                     parent's expiry when sooner)\n"
		"  --exp UNIX, --nbf UNIX   absolute times (seconds since the "
		"epoch)\n"
		"  --aud AUD          the server's audience "
		"(GET /v1/audit/key)\n"
		"  --jti ID           the link's id (default: 16 random "
		"bytes)\n"
		"  --to-cert CERTFILE instead of --to: a certificate-bound "
		"link (RFC 8705,\n"
		"                     cnf x5t#S256 of this PEM certificate): "
		"valid only sent as\n"
		"                     'Authorization: Bearer CHAIN' over "
		"mutual TLS with that\n"
		"                     certificate; it delegates no further\n"
		"Exit 0 when signed, 1 when refused, 2 on usage "
		"errors.\n\nExample:\n"
		"  tpwallet delegate issue --key data/admin.jwk --to "
		"merchant.jwk \\\n"
		"      --op transfers:read --account 1 --expires 1h --out "
		"read.chain\n");
}

/* "90", "90s", "30m", "12h", "7d" into seconds (canonical digits). */
static int parse_duration(const char *s, int64_t *out)
{
	uint64_t v = 0, mult = 1;
	size_t n = strlen(s), i = 0;

	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	if (n - i > 1 ||
	    parse_u64_n(s, i, (uint64_t)JOSE_NUMERIC_DATE_MAX, &v) != 0)
		return -1;
	if (i < n) {
		switch (s[i]) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		case 'w': mult = 7 * 86400; break;
		default: return -1;
		}
	}
	if (v == 0 || v > (uint64_t)JOSE_NUMERIC_DATE_MAX / mult)
		return -1;
	*out = (int64_t)(v * mult);
	return 0;
}

static int parse_unix(const char *prog, const char *flag, const char *s,
		      int64_t *out)
{
	uint64_t v;

	if (parse_u64(s, (uint64_t)JOSE_NUMERIC_DATE_MAX, &v) < 0) {
		fprintf(stderr,
			"%s: %s must be seconds since the epoch (0..%lld)\n",
			prog, flag, (long long)JOSE_NUMERIC_DATE_MAX);
		return -1;
	}
	*out = (int64_t)v;
	return 0;
}

static void list_ops(FILE *f)
{
	for (unsigned i = 0; i < MANDATE_OP_COUNT; i++)
		fprintf(f, "%s%s", i ? ", " : "", mandate_op_name(1u << i));
	fprintf(f, ", *\n");
}

/* A canonical decimal u128 (an id: not 0 nor 2^128-1 when is_id). */
static bool dec_valid(const char *s, bool is_id)
{
	u128 v;

	if (u128_parse_dec(s, strlen(s), U128_MAX, &v) < 0)
		return false;
	return !is_id || (v != 0 && v != U128_MAX);
}

struct issue_args {
	const char *key, *to, *to_cert, *aud, *jti, *parent, *out;
	const char *ops[MANDATE_OPS_LIST_MAX], *accounts[MANDATE_LIST_MAX],
		*ledgers[MANDATE_LIST_MAX], *counterparties[MANDATE_LIST_MAX];
	unsigned nops, naccounts, nledgers, ncounterparties;
	const char *per_transfer_cap, *total_cap, *uses, *expires;
	bool has_exp, has_nbf;
	int64_t exp, nbf;
};

static int add_list(const char *prog, const char *flag, const char **list,
		    unsigned *n, const char *v)
{
	unsigned max = strcmp(flag, "--op") == 0 ? MANDATE_OPS_LIST_MAX
						 : MANDATE_LIST_MAX;

	if (*n == max) {
		fprintf(stderr, "%s: at most %u %s\n", prog, max, flag);
		return -1;
	}
	list[(*n)++] = v;
	return 0;
}

/* The right as docs/authz.md's JSON, each value checked with a message
 * naming the flag; then parsed strictly by mandate_right_from_json. */
static int build_right(const char *prog, const struct issue_args *a,
		       struct mandate_right *right)
{
	json_t *j = json_object(), *arr;
	struct mandate_error err = {0};
	int ret = -1;

	if (!j)
		return -1;
	if (a->nops == 0) {
		fprintf(stderr, "%s: give at least one --op; one of: ", prog);
		list_ops(stderr);
		goto cleanup;
	}
	arr = json_array();
	json_object_set_new(j, "ops", arr);
	for (unsigned i = 0; i < a->nops; i++) {
		unsigned bit;
		if (mandate_op_parse(a->ops[i], &bit) < 0) {
			fprintf(stderr,
				"%s: --op %s is not an operation; one of: ",
				prog, a->ops[i]);
			list_ops(stderr);
			goto cleanup;
		}
		json_array_append_new(arr, json_string(a->ops[i]));
	}
	if (a->naccounts) {
		arr = json_array();
		json_object_set_new(j, "accounts", arr);
		for (unsigned i = 0; i < a->naccounts; i++) {
			if (!dec_valid(a->accounts[i], true)) {
				fprintf(stderr,
					"%s: --account %s is not an account "
					"id (a decimal 1..2^128-2)\n",
					prog, a->accounts[i]);
				goto cleanup;
			}
			json_array_append_new(arr, json_string(a->accounts[i]));
		}
	}
	if (a->ncounterparties) {
		arr = json_array();
		json_object_set_new(j, "counterparties", arr);
		for (unsigned i = 0; i < a->ncounterparties; i++) {
			if (!dec_valid(a->counterparties[i], true)) {
				fprintf(stderr,
					"%s: --counterparty %s is not an "
					"account id (a decimal 1..2^128-2)\n",
					prog, a->counterparties[i]);
				goto cleanup;
			}
			json_array_append_new(
				arr, json_string(a->counterparties[i]));
		}
	}
	if (a->nledgers) {
		arr = json_array();
		json_object_set_new(j, "ledgers", arr);
		for (unsigned i = 0; i < a->nledgers; i++) {
			uint64_t v;
			if (parse_u64(a->ledgers[i], UINT32_MAX, &v) < 0 ||
			    v == 0) {
				fprintf(stderr,
					"%s: --ledger %s is not a ledger "
					"(1..4294967295)\n",
					prog, a->ledgers[i]);
				goto cleanup;
			}
			json_array_append_new(arr, json_integer((json_int_t)v));
		}
	}
	if (a->per_transfer_cap) {
		if (!dec_valid(a->per_transfer_cap, false)) {
			fprintf(stderr,
				"%s: --per-transfer-cap must be a decimal "
				"amount (digits, no leading zero)\n",
				prog);
			goto cleanup;
		}
		json_object_set_new(j, "per_transfer_cap",
				    json_string(a->per_transfer_cap));
	}
	if (a->total_cap) {
		if (!dec_valid(a->total_cap, false)) {
			fprintf(stderr,
				"%s: --total-cap must be a decimal amount "
				"(digits, no leading zero)\n",
				prog);
			goto cleanup;
		}
		json_object_set_new(j, "total_cap", json_string(a->total_cap));
	}
	if (a->uses) {
		uint64_t v;
		if (parse_u64(a->uses, MANDATE_USES_MAX, &v) < 0 || v == 0) {
			fprintf(stderr, "%s: --uses must be 1..%llu\n", prog,
				(unsigned long long)MANDATE_USES_MAX);
			goto cleanup;
		}
		json_object_set_new(j, "uses", json_integer((json_int_t)v));
	}
	if (mandate_right_from_json(j, right, &err) < 0) {
		fprintf(stderr, "%s: the right is refused at %s: %s\n", prog,
			err.claim[0] ? err.claim : "right",
			mandate_err_title(err.code)
				? mandate_err_title(err.code)
				: "invalid");
		goto cleanup;
	}
	ret = 0;
cleanup:
	json_decref(j);
	return ret;
}

/* Write "[parent~]link\n" to path (mode 0600 when created; replaced). */
static int write_out(const char *prog, const char *path, const char *parent,
		     size_t parent_len, const char *link, size_t link_len)
{
	int fd = open(path,
		      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		      0600);
	FILE *f;
	bool ok = true;

	if (fd < 0) {
		fprintf(stderr, "%s: --out %s: %s\n", prog, path,
			tpw_strerror(errno));
		return -1;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		fprintf(stderr, "%s: --out %s: %s\n", prog, path,
			tpw_strerror(errno));
		return -1;
	}
	if (parent)
		ok = fwrite(parent, 1, parent_len, f) == parent_len &&
		     fputc('~', f) != EOF;
	ok = ok && fwrite(link, 1, link_len, f) == link_len &&
	     fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fd) == 0;
	if (fclose(f) != 0)
		ok = false;
	if (!ok)
		fprintf(stderr, "%s: cannot write %s\n", prog, path);
	return ok ? 0 : -1;
}

/* Does child narrow parent (docs/authz.md, Narrowing)?  NULL when it
 * does, else the claim that widens, so a useless link is never signed. */
static bool u128_in(const u128 *list, unsigned n, u128 v)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

static const char *widens(const struct mandate_right *parent,
			  const struct mandate_right *child)
{
	if (!parent->all_ops &&
	    (child->all_ops || (child->ops & ~parent->ops) != 0))
		return "right.ops";
	if (parent->n_accounts) {
		if (!child->n_accounts)
			return "right.accounts";
		for (unsigned i = 0; i < child->n_accounts; i++)
			if (!u128_in(parent->accounts, parent->n_accounts,
				     child->accounts[i]))
				return "right.accounts";
	}
	if (parent->n_ledgers) {
		if (!child->n_ledgers)
			return "right.ledgers";
		for (unsigned i = 0; i < child->n_ledgers; i++) {
			bool found = false;
			for (unsigned k = 0; k < parent->n_ledgers; k++)
				found |=
					parent->ledgers[k] == child->ledgers[i];
			if (!found)
				return "right.ledgers";
		}
	}
	if (parent->n_counterparties) {
		if (!child->n_counterparties)
			return "right.counterparties";
		for (unsigned i = 0; i < child->n_counterparties; i++)
			if (!u128_in(parent->counterparties,
				     parent->n_counterparties,
				     child->counterparties[i]))
				return "right.counterparties";
	}
	if (parent->has_per_transfer_cap &&
	    (!child->has_per_transfer_cap ||
	     child->per_transfer_cap > parent->per_transfer_cap))
		return "right.per_transfer_cap";
	if (parent->has_total_cap &&
	    (!child->has_total_cap || child->total_cap > parent->total_cap))
		return "right.total_cap";
	if (parent->has_uses &&
	    (!child->has_uses || child->uses > parent->uses))
		return "right.uses";
	return NULL;
}

static int delegate_issue(int argc, char **argv)
{
	enum {
		O_OP = 0x3001,
		O_ACCOUNT,
		O_LEDGER,
		O_COUNTERPARTY,
		O_PTC,
		O_TC,
		O_USES,
		O_EXPIRES,
		O_EXP,
		O_NBF,
		O_AUD,
		O_JTI,
		O_PARENT,
		O_OUT,
		O_TO,
		O_TO_CERT
	};
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"to", required_argument, NULL, O_TO},
		{"to-cert", required_argument, NULL, O_TO_CERT},
		{"op", required_argument, NULL, O_OP},
		{"account", required_argument, NULL, O_ACCOUNT},
		{"ledger", required_argument, NULL, O_LEDGER},
		{"counterparty", required_argument, NULL, O_COUNTERPARTY},
		{"per-transfer-cap", required_argument, NULL, O_PTC},
		{"total-cap", required_argument, NULL, O_TC},
		{"uses", required_argument, NULL, O_USES},
		{"expires", required_argument, NULL, O_EXPIRES},
		{"exp", required_argument, NULL, O_EXP},
		{"nbf", required_argument, NULL, O_NBF},
		{"aud", required_argument, NULL, O_AUD},
		{"jti", required_argument, NULL, O_JTI},
		{"parent", required_argument, NULL, O_PARENT},
		{"out", required_argument, NULL, O_OUT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char prog[] = "tpwallet delegate issue";
	struct issue_args a = {0};
	struct client c;
	struct mandate_right right;
	struct mandate_issue in = {0};
	struct jose_seckey *key = NULL;
	struct jose_pubkey to, me;
	json_t *ph = NULL, *pc = NULL;
	char *parent = NULL, *link = NULL;
	char jti[MANDATE_JTI_BYTES_MAX + 1], when[32], tp[JOSE_B64_32_BYTES],
		tp_to[JOSE_B64_32_BYTES];
	u8 x5t[32];
	size_t parent_len = 0, link_len = 0;
	struct links pl = {0};
	int64_t now = (int64_t)time(NULL), dur = DEFAULT_EXPIRES_S;
	int opt, ret = EXIT_USAGE;

	client_init(&c, prog);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		int r = 0;
		switch (opt) {
		case 'k': a.key = optarg; break;
		case O_TO: a.to = optarg; break;
		case O_TO_CERT: a.to_cert = optarg; break;
		case O_OP:
			r = add_list(prog, "--op", a.ops, &a.nops, optarg);
			break;
		case O_ACCOUNT:
			r = add_list(prog, "--account", a.accounts,
				     &a.naccounts, optarg);
			break;
		case O_LEDGER:
			r = add_list(prog, "--ledger", a.ledgers, &a.nledgers,
				     optarg);
			break;
		case O_COUNTERPARTY:
			r = add_list(prog, "--counterparty", a.counterparties,
				     &a.ncounterparties, optarg);
			break;
		case O_PTC: a.per_transfer_cap = optarg; break;
		case O_TC: a.total_cap = optarg; break;
		case O_USES: a.uses = optarg; break;
		case O_EXPIRES:
			a.expires = optarg;
			if (parse_duration(optarg, &dur) < 0) {
				fprintf(stderr,
					"%s: --expires %s is not a duration "
					"such as 90s, 30m, 12h, 7d\n",
					prog, optarg);
				r = -1;
			}
			break;
		case O_EXP:
			a.has_exp = true;
			r = parse_unix(prog, "--exp", optarg, &a.exp);
			break;
		case O_NBF:
			a.has_nbf = true;
			r = parse_unix(prog, "--nbf", optarg, &a.nbf);
			break;
		case O_AUD: a.aud = optarg; break;
		case O_JTI: a.jti = optarg; break;
		case O_PARENT: a.parent = optarg; break;
		case O_OUT: a.out = optarg; break;
		case 'h': usage_issue(stdout); return 0;
		default: usage_issue(stderr); return EXIT_USAGE;
		}
		if (r < 0)
			return EXIT_USAGE;
	}
	if (optind != argc || !a.key || !a.to == !a.to_cert) {
		if (optind == argc)
			fprintf(stderr,
				"%s: --key and one of --to and --to-cert are "
				"required\n",
				prog);
		usage_issue(stderr);
		return EXIT_USAGE;
	}
	if (a.expires && a.has_exp) {
		fprintf(stderr, "%s: give --expires or --exp, not both\n",
			prog);
		return EXIT_USAGE;
	}
	if (a.jti && !jti_valid(a.jti)) {
		fprintf(stderr,
			"%s: --jti must be 1..%d characters of A-Z a-z 0-9 "
			"- _ . ~\n",
			prog, MANDATE_JTI_BYTES_MAX);
		return EXIT_USAGE;
	}
	if (a.aud && (!a.aud[0] || strlen(a.aud) > JOSE_CLAIM_BYTES_MAX)) {
		fprintf(stderr, "%s: --aud must be 1..%d bytes\n", prog,
			JOSE_CLAIM_BYTES_MAX);
		return EXIT_USAGE;
	}
	if (build_right(prog, &a, &right) < 0)
		return EXIT_USAGE;
	if (client_load_seckey(&c, a.key, &key) < 0 ||
	    (a.to && client_load_pubkey(&c, a.to, &to) < 0) ||
	    (a.to_cert && load_cert_x5t(prog, a.to_cert, x5t) < 0))
		goto cleanup;
	jose_seckey_public(key, &me);
	jose_thumbprint(&me, tp);
	if (a.to)
		jose_thumbprint(&to, tp_to);
	else
		b64url_encode(tp_to, sizeof(tp_to), x5t, 32);

	in.exp = a.has_exp ? a.exp : now + dur;
	in.nbf = a.has_nbf ? a.nbf : 0;
	if (a.parent) {
		const char *sub, *last;
		size_t last_len;

		ret = read_chain(prog, a.parent, &parent, &parent_len);
		if (ret != 0)
			goto cleanup;
		ret = EXIT_USAGE;
		if (split_chain(parent, parent_len, &pl) < 0) {
			fprintf(stderr,
				"%s: --parent %s is not a chain of 1..%d "
				"links\n",
				prog, a.parent, MANDATE_LINKS_MAX);
			goto cleanup;
		}
		if (pl.n == MANDATE_LINKS_MAX) {
			fprintf(stderr,
				"%s: --parent has %d links already, the most "
				"a chain may have\n",
				prog, MANDATE_LINKS_MAX);
			goto cleanup;
		}
		last = pl.at[pl.n - 1];
		last_len = pl.len[pl.n - 1];
		if (decode_link(last, last_len, &ph, &pc) < 0) {
			fprintf(stderr,
				"%s: the last link of --parent %s cannot be "
				"decoded\n",
				prog, a.parent);
			goto cleanup;
		}
		sub = json_string_value(json_object_get(pc, "sub"));
		if (!sub || strcmp(sub, tp) != 0) {
			fprintf(stderr,
				"%s: --key (principal %s) is not the delegate "
				"of the parent's last link (%s): only the "
				"delegate may extend a chain\n",
				prog, tp,
				sub && strlen(sub) == 43 &&
						strspn(sub,
						       "ABCDEFGHIJKLMNOPQRSTUVW"
						       "XYZ"
						       "abcdefghijklmnopqrstuvw"
						       "xyz"
						       "0123456789-_") == 43
					? sub
					: "not a thumbprint");
			goto cleanup;
		}
		struct mandate_right pr;
		struct mandate_error perr = {0};
		const char *wide;
		if (mandate_right_from_json(json_object_get(pc, "right"), &pr,
					    &perr) < 0) {
			fprintf(stderr,
				"%s: the parent's last link has no valid "
				"right (%s)\n",
				prog, perr.claim[0] ? perr.claim : "right");
			goto cleanup;
		}
		wide = widens(&pr, &right);
		if (wide) {
			char *t = json_dumps(json_object_get(pc, "right"),
					     JSON_COMPACT);
			fprintf(stderr,
				"%s: the link would grant more than its "
				"parent at %s (a link may only narrow); the "
				"parent grants %s\n",
				prog, wide, t ? t : "?");
			free(t);
			goto cleanup;
		}
		/* Narrowing needs exp no later and nbf no earlier than the
		 * parent's: defaults follow the parent, explicit values are
		 * checked. */
		json_t *pexp = json_object_get(pc, "exp");
		json_t *pnbf = json_object_get(pc, "nbf");
		if (json_is_integer(pexp)) {
			int64_t pe = (int64_t)json_integer_value(pexp);
			if (in.exp > pe) {
				if (a.has_exp || a.expires) {
					rfc3339(pe, when);
					fprintf(stderr,
						"%s: the link would outlive "
						"its parent (which expires "
						"%s)\n",
						prog, when);
					goto cleanup;
				}
				in.exp = pe;
			}
		}
		if (json_is_integer(pnbf)) {
			int64_t pn = (int64_t)json_integer_value(pnbf);
			if (!a.has_nbf)
				in.nbf = pn;
			else if (in.nbf < pn) {
				fprintf(stderr,
					"%s: --nbf is before the parent's "
					"nbf (%lld)\n",
					prog, (long long)pn);
				goto cleanup;
			}
		}
		in.parent_compact = last;
		in.parent_len = last_len;
	}
	if (in.exp <= now) {
		fprintf(stderr, "%s: the link would be expired already\n",
			prog);
		goto cleanup;
	}
	if (in.nbf && in.exp <= in.nbf) {
		fprintf(stderr, "%s: exp must be after nbf\n", prog);
		goto cleanup;
	}
	if (a.jti)
		snprintf(jti, sizeof(jti), "%s", a.jti);
	else
		client_random_id(jti);
	in.jti = jti;
	in.iat = now;
	in.aud = a.aud;
	in.delegate = a.to ? &to : NULL;
	in.x5t_s256 = a.to ? NULL : x5t;
	in.right = &right;

	ret = 1;
	link = malloc(JOSE_TOKEN_BYTES_MAX + 1);
	if (!link) {
		fprintf(stderr, "%s: out of memory\n", prog);
		goto cleanup;
	}
	if (mandate_link_sign(key, &in, link, JOSE_TOKEN_BYTES_MAX + 1,
			      &link_len) < 0) {
		fprintf(stderr,
			"%s: the link cannot be signed (check --jti, the "
			"right, --nbf and --exp)\n",
			prog);
		goto cleanup;
	}
	if (a.out) {
		if (write_out(prog, a.out, parent, parent_len, link, link_len) <
		    0)
			goto cleanup;
	} else {
		if (parent)
			printf("%s~", parent);
		printf("%s\n", link);
		fflush(stdout);
	}
	rfc3339(in.exp, when);
	fprintf(stderr,
		"%s: link %u of the chain: jti %s, issuer %s, delegate %s, "
		"expires %s%s\n",
		prog, pl.n + 1, jti, tp, tp_to, when,
		a.parent ? ""
			 : " (a root: its issuer must own the accounts "
			   "or be the administrator)");
	ret = 0;
cleanup:
	json_decref(ph);
	json_decref(pc);
	jose_seckey_free(key);
	free(parent);
	free(link);
	return ret;
}

/* ---- inspect ---------------------------------------------------------- */

static void usage_inspect(FILE *f)
{
	fprintf(f,
		"usage: tpwallet delegate inspect [--json | --jti] "
		"CHAINFILE|-\n\n"
		"Decode every link of a chain and print, per link: index, "
		"iss, sub, jti,\niat/nbf/exp (RFC 3339), aud, prn and the "
		"right.  NOTHING IS VERIFIED:\nuse 'tpwallet delegate verify' "
		"for that.  --json prints\n{\"verified\": false, \"links\": "
		"[{\"index\", \"header\", \"claims\"}]}; --jti only\neach "
		"link's jti, one a line, root first (for 'tpwallet delegate "
		"revoke').\n"
		"Exit 0 when every link decodes, 1 when one does not, 2 on "
		"usage errors.\n\nExample:\n"
		"  tpwallet delegate inspect read.chain\n");
}

static int delegate_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"jti", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char prog[] = "tpwallet delegate inspect";
	struct links l;
	json_t *all = NULL, *arr = NULL;
	char *text = NULL;
	size_t len = 0;
	bool as_json = false, jti_only = false;
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': as_json = true; break;
		case 'J': jti_only = true; break;
		case 'h': usage_inspect(stdout); return 0;
		default: usage_inspect(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage_inspect(stderr);
		return EXIT_USAGE;
	}
	ret = read_chain(prog, argv[optind], &text, &len);
	if (ret != 0)
		return ret;
	ret = 1;
	if (split_chain(text, len, &l) < 0) {
		fprintf(stderr,
			"%s: not a chain of 1..%d non-empty links separated "
			"by '~'\n",
			prog, MANDATE_LINKS_MAX);
		goto cleanup;
	}
	if (as_json && jti_only) {
		usage_inspect(stderr);
		ret = EXIT_USAGE;
		goto cleanup;
	}
	if (as_json) {
		all = json_object();
		arr = json_array();
		if (!all || !arr) {
			json_decref(arr);
			goto cleanup;
		}
		json_object_set_new(all, "verified", json_false());
		json_object_set_new(all, "links", arr);
	} else if (!jti_only) {
		printf("%u link%s -- NOT VERIFIED (decoded only; 'tpwallet "
		       "delegate verify' checks)\n",
		       l.n, l.n == 1 ? "" : "s");
	}
	for (unsigned i = 0; i < l.n; i++) {
		json_t *h = NULL, *c = NULL;

		if (decode_link(l.at[i], l.len[i], &h, &c) < 0) {
			fflush(stdout);
			fprintf(stderr,
				"%s: link %u is not a compact JWS with JSON "
				"header and claims\n",
				prog, i + 1);
			goto cleanup;
		}
		if (as_json) {
			json_t *o = json_pack("{s:I, s:o, s:o}", "index",
					      (json_int_t)(i + 1), "header", h,
					      "claims", c);
			if (!o || json_array_append_new(arr, o) < 0)
				goto cleanup;
			continue;
		}
		if (jti_only) {
			/* feeds `delegate revoke --jti`: only a jti that could
			 * be one, never raw unverified text */
			const char *j =
				json_string_value(json_object_get(c, "jti"));
			printf("%s\n", j && jti_valid(j) ? j : "?");
			json_decref(h);
			json_decref(c);
			continue;
		}
		printf("link %u\n", i + 1);
		print_str("iss", json_object_get(c, "iss"));
		print_str("sub", json_object_get(c, "sub"));
		print_str("jti", json_object_get(c, "jti"));
		print_date("iat", json_object_get(c, "iat"));
		print_date("nbf", json_object_get(c, "nbf"));
		print_date("exp", json_object_get(c, "exp"));
		print_str("aud", json_object_get(c, "aud"));
		print_str("prn", json_object_get(c, "prn"));
		json_t *right = json_object_get(c, "right");
		if (right) {
			char *t = json_dumps(right,
					     JSON_COMPACT | JSON_ENCODE_ANY |
						     JSON_PRESERVE_ORDER);
			printf("  right %s\n", t ? t : "?");
			free(t);
		}
		json_decref(h);
		json_decref(c);
	}
	if (as_json) {
		char *t = json_dumps(all, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (!t)
			goto cleanup;
		printf("%s\n", t);
		free(t);
	}
	ret = 0;
cleanup:
	json_decref(all);
	free(text);
	return ret;
}

/* ---- verify ----------------------------------------------------------- */

struct root_ctx {
	uint8_t iss[32];
	uint8_t x[32];
	bool admin;
};

static int root_principal(void *ctx, const uint8_t iss[32], uint8_t pub_out[32],
			  bool *is_admin)
{
	const struct root_ctx *r = ctx;

	if (sodium_memcmp(iss, r->iss, 32) != 0)
		return -1;
	memcpy(pub_out, r->x, 32);
	*is_admin = r->admin;
	return 0;
}

static bool root_owns(void *ctx, const uint8_t iss[32], u128 account)
{
	(void)ctx;
	(void)iss;
	(void)account;
	return true; /* offline: the owner of every account */
}

static bool root_revoked(void *ctx, const uint8_t iss[32],
			 const uint8_t jti_hash[32])
{
	(void)ctx;
	(void)iss;
	(void)jti_hash;
	return false; /* offline: revocation is the server's */
}

static void usage_verify(FILE *f)
{
	fprintf(f,
		"usage: tpwallet delegate verify CHAINFILE|- --root-key "
		"PUBLIC_JWK_FILE\n"
		"         [--admin] [--aud AUD] [--leeway SECONDS]\n\n"
		"Verify a chain offline, now: every signature, the links' "
		"order (iss, prn),\nclaims, times, audience, cycles and "
		"narrowing, with --root-key as the\nroot's issuer: the "
		"administrator with --admin (alias --owner-all), else a\n"
		"principal that owns every account it grants.  REVOCATION IS "
		"NOT CHECKED\n(only the server knows it): ask it with "
		"'tpwallet call GET\n/v1/revocations/<jti>'.  --aud: the "
		"server's audience, when links carry one.\n"
		"--leeway: the clock skew tolerated on exp, nbf and iat, as "
		"the server's\nlink_leeway_s setting (default: that setting "
		"from the environment or\nTPWALLET_CONFIG, else 30).\n"
		"Exit 0 valid, 1 invalid (the check, link and claim on "
		"stdout), 2 on usage\nerrors.\n\nExample:\n"
		"  tpwallet delegate verify read.chain --root-key "
		"data/admin.jwk --admin\n");
}

static int delegate_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"root-key", required_argument, NULL, 'r'},
		{"admin", no_argument, NULL, 'a'},
		{"owner-all", no_argument, NULL, 'a'},
		{"aud", required_argument, NULL, 'A'},
		{"leeway", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char prog[] = "tpwallet delegate verify";
	const char *leeway = NULL;
	static struct mandate_chain chain;
	const char *root_file = NULL, *aud = NULL;
	struct root_ctx rc = {0};
	struct mandate_root_ops ops = {root_principal, root_owns, root_revoked,
				       NULL, &rc};
	struct mandate_verify_opts vo = {0};
	struct mandate_error err = {0};
	struct jose_pubkey root;
	struct client c;
	char tp[JOSE_B64_32_BYTES], when[32], from[32];
	char *text = NULL;
	size_t len = 0, n = 0;
	int opt, ret;

	client_init(&c, prog);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': root_file = optarg; break;
		case 'a': rc.admin = true; break;
		case 'A': aud = optarg; break;
		case 'l': leeway = optarg; break;
		case 'h': usage_verify(stdout); return 0;
		default: usage_verify(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || !root_file) {
		usage_verify(stderr);
		return EXIT_USAGE;
	}
	/* The server's setting, so both answer alike. */
	static struct settings set;
	if (settings_load(&set, NULL) < 0 ||
	    (leeway && settings_set(&set, "link_leeway_s", leeway) < 0))
		return EXIT_USAGE;
	if (client_load_pubkey(&c, root_file, &root) < 0)
		return EXIT_USAGE;
	jose_thumbprint(&root, tp);
	if (b64url_decode(rc.iss, sizeof(rc.iss), tp, strlen(tp), &n) < 0 ||
	    n != 32)
		return EXIT_SOFTWARE;
	memcpy(rc.x, root.x, 32);
	ret = read_chain(prog, argv[optind], &text, &len);
	if (ret != 0)
		return ret;

	vo.now = (int64_t)time(NULL);
	vo.leeway_s = (int)set.link_leeway_s;
	vo.audience = aud;
	vo.root = &ops;
	vo.cache = NULL;
	rfc3339(vo.now, when);
	if (mandate_chain_verify(text, len, &vo, &chain, &err) < 0) {
		const char *name = mandate_err_name(err.code);
		printf("INVALID: %s", name ? name : "unknown");
		if (err.link)
			printf(" at link %d", err.link);
		if (err.claim[0])
			printf(", claim %s", err.claim);
		printf(" (%s)\n", mandate_err_title(err.code)
					  ? mandate_err_title(err.code)
					  : "refused");
		if (err.code == MANDATE_ERR_unknown_issuer && err.link == 1)
			printf("  the first link is not signed by --root-key "
			       "(principal %s): 'tpwallet delegate inspect' "
			       "shows its iss\n",
			       tp);
		if (err.code == MANDATE_ERR_issuer_not_owner && !rc.admin)
			printf("  if --root-key is the administrator's key, "
			       "verify with --admin\n");
		printf("  checked at %s; revocation not checked\n", when);
		ret = 1;
		goto cleanup;
	}
	printf("valid at %s: %u link%s, root %s (%s)\n", when, chain.n,
	       chain.n == 1 ? "" : "s", tp,
	       rc.admin ? "as the administrator"
			: "as the owner of every account it grants");
	for (unsigned i = 0; i < chain.n; i++)
		printf("  link %u jti %s\n", i + 1, chain.links[i].jti);
	json_t *eff = mandate_right_to_json(&chain.effective);
	char *t = eff ? json_dumps(eff, JSON_COMPACT) : NULL;
	printf("  effective right %s\n", t ? t : "?");
	free(t);
	json_decref(eff);
	rfc3339(chain.exp, when);
	if (chain.nbf) {
		rfc3339(chain.nbf, from);
		printf("  valid from %s until %s\n", from, when);
	} else {
		printf("  valid until %s\n", when);
	}
	printf("NOT CHECKED: revocation (only the server knows it); for each "
	       "jti:\n  tpwallet call GET /v1/revocations/<jti>\n");
	ret = 0;
cleanup:
	free(text);
	return ret;
}

/* ---- revoke ----------------------------------------------------------- */

static void usage_revoke(FILE *f)
{
	fprintf(f,
		"usage: tpwallet delegate revoke --key KEYFILE (--jti LINKJTI "
		"| --all) [options]\n"
		"       tpwallet delegate revoke --admin --iss THUMBPRINT "
		"(--jti LINKJTI | --all)\n"
		"                [options]\n\n"
		"The first form signs a revocation statement with KEYFILE "
		"(the issuer of\nthe link; --all: every link the key ever "
		"signed or will sign) and posts\nit to POST /v1/revocations; "
		"the statement proves itself, no credential is\nsent.  The "
		"second posts the administrator's plain form for any issuer,"
		"\nwith the bearer token (or --key and --mandate with the "
		"revoke right).\nA delegate's key that is not registered "
		"sends its statement with\n--mandate, the chain that names "
		"it.\n\n"
		"options:\n%s"
		"  --token-file FILE  (--admin) the bearer token; default "
		"DATA/admin.token\n"
		"  --mandate FILE     the chain to send with --key: naming "
		"the key (first\n"
		"                     form), or with the revoke right "
		"(--admin)\n"
		"Exit 0 when the server records it, 1 when refused or "
		"unreachable, 2 on\nusage errors.\n\nExample:\n"
		"  tpwallet delegate revoke --key data/admin.jwk \\\n"
		"      --jti \"$(tpwallet delegate inspect --jti "
		"read.chain)\"\n",
		client_usage_common);
}

static int delegate_revoke(int argc, char **argv)
{
	enum { O_JTI = 0x4001, O_ALL, O_ADMIN, O_ISS };
	static const struct option opts[] = {
		CLIENT_LONG_OPTIONS,
		CLIENT_AUTH_LONG_OPTIONS,
		{"jti", required_argument, NULL, O_JTI},
		{"all", no_argument, NULL, O_ALL},
		{"admin", no_argument, NULL, O_ADMIN},
		{"iss", required_argument, NULL, O_ISS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char prog[] = "tpwallet delegate revoke";
	const char *jti = NULL, *iss = NULL;
	bool all = false, admin = false;
	struct jose_seckey *key = NULL;
	struct client c;
	json_t *body = NULL;
	char *text = NULL, *stmt = NULL;
	size_t stmt_len = 0;
	int opt, r, ret = EXIT_USAGE;

	client_init(&c, prog);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vk:h", opts, NULL)) != -1) {
		switch (opt) {
		case O_JTI: jti = optarg; continue;
		case O_ALL: all = true; continue;
		case O_ADMIN: admin = true; continue;
		case O_ISS: iss = optarg; continue;
		case 'h': usage_revoke(stdout); return 0;
		default: break;
		}
		r = client_option(&c, opt, optarg, true);
		if (r < 0)
			return EXIT_USAGE;
		if (r == 0) {
			usage_revoke(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (!jti) == !all) {
		if (optind == argc)
			fprintf(stderr, "%s: give --jti LINKJTI or --all\n",
				prog);
		usage_revoke(stderr);
		return EXIT_USAGE;
	}
	if (jti && !jti_valid(jti)) {
		fprintf(stderr,
			"%s: --jti must be 1..%d characters of A-Z a-z 0-9 "
			"- _ . ~\n",
			prog, MANDATE_JTI_BYTES_MAX);
		return EXIT_USAGE;
	}
	if (admin) {
		uint8_t raw[32];
		size_t n = 0;
		if (!iss ||
		    b64url_decode(raw, sizeof(raw), iss, strlen(iss), &n) < 0 ||
		    n != 32) {
			fprintf(stderr,
				"%s: --admin needs --iss THUMBPRINT (43 "
				"base64url characters; 'tpwallet principal "
				"id KEYFILE')\n",
				prog);
			return EXIT_USAGE;
		}
		body = all ? json_pack("{s:s, s:b}", "iss", iss, "all", 1)
			   : json_pack("{s:s, s:s}", "iss", iss, "jti", jti);
	} else {
		char sjti[23];
		if (iss || !c.key_file) {
			fprintf(stderr,
				"%s: --key KEYFILE signs the statement; "
				"--iss goes with --admin\n",
				prog);
			return EXIT_USAGE;
		}
		if (client_load_seckey(&c, c.key_file, &key) < 0)
			goto cleanup;
		ret = 1;
		stmt = malloc(JOSE_TOKEN_BYTES_MAX + 1);
		client_random_id(sjti);
		if (!stmt ||
		    mandate_revocation_sign(key, sjti, (int64_t)time(NULL), jti,
					    all, stmt, JOSE_TOKEN_BYTES_MAX + 1,
					    &stmt_len) < 0) {
			fprintf(stderr, "%s: cannot sign the statement\n",
				prog);
			goto cleanup;
		}
		body = json_pack("{s:s}", "statement", stmt);
		/* The statement is the proof; a token only when asked.  A
		 * delegate's key, which the server does not know, sends it
		 * with its own chain (--mandate) and a DPoP proof. */
		if (!c.mandate_file) {
			c.key_file = NULL;
			if (!c.token_file)
				c.no_auth = true;
		}
	}
	ret = 1;
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text) {
		fprintf(stderr, "%s: out of memory\n", prog);
		goto cleanup;
	}
	ret = client_send(&c, "POST", "/v1/revocations", text, strlen(text),
			  NULL);
cleanup:
	jose_seckey_free(key);
	json_decref(body);
	free(text);
	free(stmt);
	return ret;
}

/* ---- the command ------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet delegate <subcommand> [options]\n\n"
		"Mandates: chains of signed links granting a right to a "
		"delegate key\n(docs/authz.md).\n"
		"  issue    --key ISSUER --to DELEGATE --op OP ... [--parent "
		"CHAIN]\n"
		"           sign a link, offline\n"
		"  inspect  CHAINFILE|-   decode the links (NOT verified)\n"
		"  verify   CHAINFILE --root-key KEY [--admin]   verify "
		"offline\n"
		"  revoke   --key KEY (--jti J | --all)   revoke at the "
		"server\n\n"
		"'tpwallet delegate <subcommand> --help' for the options.  "
		"See docs/cli.md.\n\n"
		"Example:\n"
		"  tpwallet delegate issue --key data/admin.jwk --to "
		"merchant.jwk \\\n"
		"      --op transfers:create --account 1 --total-cap 20000 "
		"--expires 7d\n");
}

int cmd_delegate(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (jose_init() < 0)
		return EXIT_SOFTWARE;
	if (strcmp(sub, "issue") == 0)
		return delegate_issue(argc - 1, argv + 1);
	if (strcmp(sub, "inspect") == 0)
		return delegate_inspect(argc - 1, argv + 1);
	if (strcmp(sub, "verify") == 0)
		return delegate_verify(argc - 1, argv + 1);
	if (strcmp(sub, "revoke") == 0)
		return delegate_revoke(argc - 1, argv + 1);
	fprintf(stderr, "tpwallet delegate: unknown subcommand '%s'\n", sub);
	usage(stderr);
	return EXIT_USAGE;
}
