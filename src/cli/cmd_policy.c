/*
 * cmd_policy.c - `tpwallet policy`: the client-version policy from a
 * client (issue 3, item 9; docs/client-policy.md, docs/cli.md).
 *
 *   lint FILE|- [--canonical]           offline: policy_parse
 *   show [--version N] [--json]         GET /v1/client-policy/current
 *   set FILE|- [--reason T] [--dry-run] [--accept-impact]
 *                                       PUT /v1/client-policy
 *   diff A B | diff --file FILE         GET .../diff, or offline diff
 *   history [--json]                    GET .../versions
 *   rollback N --reason T               POST .../rollback
 *   revert N [--reason T] [--dry-run] [--accept-impact]
 *                                       POST .../revert
 *   override open|list|end              .../overrides
 *   evaluate --platform P ... [--offline FILE]
 *   impact --platform P --min-supported X
 *   activity load FILE|-                POST .../activity
 *
 * What can be checked here is checked before anything is sent: a
 * document is linted with the server's own parser (policy_parse), an
 * override with policy_override_init, reasons against the journal's
 * field sizes.  So an invalid document never leaves the machine, and
 * the errors name the field as the server would ("<path>: <reason>").
 *
 * Exit 0 ok (evaluate: whatever the verdict), 1 refused or failed
 * (including a document that does not lint), 2 usage or an unreadable
 * file.  Credentials are those of `tpwallet call` (client_send); no
 * token or key is ever printed.
 */
#include "cli/cli.h"
#include "net/http.h"
#include "log/fsfile.h"
#include "core/policy.h"
#include "core/pstate.h"
#include "crypto/jose.h"
#include "core/strerror.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

#define PROG_BYTES_MAX	 64
#define TARGET_BYTES_MAX 4096 /* path and query of one request */
#define ARGS_MAX	 2    /* positional arguments of a subcommand */
#define REASON_BYTES_MAX (PSTATE_REASON_BYTES - 1) /* set, rollback, end */
#define IMPACT_WEEKS_MAX 17u
/* "revert of version N: " the server puts before a revert's reason */
#define REVERT_PREFIX_BYTES_MAX 40

/* ---- options ------------------------------------------------------------
 * Every subcommand's own options land in one struct; each subcommand's
 * table says which of them it accepts (getopt refuses the others). */

enum {
	OPT_JSON = 0x2000,
	OPT_CANONICAL,
	OPT_REASON,
	OPT_DRY_RUN,
	OPT_VERSION,
	OPT_FILE,
	OPT_ALL,
	OPT_PLATFORM,
	OPT_RANGE,
	OPT_MODE,
	OPT_DURATION,
	OPT_CHANNEL,
	OPT_COUNTRY,
	OPT_USER,
	OPT_LANG,
	OPT_OFFLINE,
	OPT_MIN_SUPPORTED,
	OPT_THRESHOLD,
	OPT_WEEKS,
	OPT_ACCEPT_IMPACT,
	OPT_MESSAGE,
	OPT_EXPECTED_END,
};

struct popts {
	bool json, canonical, dry_run, all, accept_impact;
	const char *reason, *version, *file, *platform, *range, *mode,
		*duration, *channel, *country, *user, *lang, *offline,
		*min_supported, *threshold, *weeks, *expected_end;
	/* override open --message LOCALE=TEXT, in the order given */
	const char *message[POLICY_LOCALES_MAX];
	unsigned nmessages;
	bool too_many_messages;
};

struct ctx {
	const struct sub *sub;
	const char *prog; /* "tpwallet policy set" */
	struct client c;
	struct popts o;
	char *args[ARGS_MAX];
	int nargs;
	/* The command line after "tpwallet policy <sub>" (the command to
	 * confirm a refused set or revert is printed from it). */
	int argc;
	char **argv;
};

/* clang-format off */
#define O_HELP   {"help", no_argument, NULL, 'h'}
#define O_END    {NULL, 0, NULL, 0}
#define O_JSON   {"json", no_argument, NULL, OPT_JSON}
#define O_REASON {"reason", required_argument, NULL, OPT_REASON}
/* clang-format on */
#define O_CLIENT CLIENT_LONG_OPTIONS, CLIENT_AUTH_LONG_OPTIONS

static const struct option opts_lint[] = {
	{"canonical", no_argument, NULL, OPT_CANONICAL}, O_HELP, O_END};
static const struct option opts_show[] = {
	O_CLIENT,
	O_JSON,
	{"version", required_argument, NULL, OPT_VERSION},
	O_HELP,
	O_END};
static const struct option opts_set[] = {
	O_CLIENT,
	O_REASON,
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"accept-impact", no_argument, NULL, OPT_ACCEPT_IMPACT},
	O_HELP,
	O_END};
#define opts_revert opts_set
static const struct option opts_diff[] = {
	O_CLIENT, {"file", required_argument, NULL, OPT_FILE}, O_HELP, O_END};
static const struct option opts_history[] = {O_CLIENT, O_JSON, O_HELP, O_END};
static const struct option opts_rollback[] = {
	O_CLIENT,
	O_REASON,
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	O_HELP,
	O_END};
static const struct option opts_ov_open[] = {
	O_CLIENT,
	O_REASON,
	{"platform", required_argument, NULL, OPT_PLATFORM},
	{"range", required_argument, NULL, OPT_RANGE},
	{"mode", required_argument, NULL, OPT_MODE},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"message", required_argument, NULL, OPT_MESSAGE},
	{"expected-end", required_argument, NULL, OPT_EXPECTED_END},
	O_HELP,
	O_END};
static const struct option opts_ov_list[] = {
	O_CLIENT, O_JSON, {"all", no_argument, NULL, OPT_ALL}, O_HELP, O_END};
static const struct option opts_ov_end[] = {O_CLIENT, O_REASON, O_HELP, O_END};
static const struct option opts_ov_extend[] = {
	O_CLIENT,
	O_REASON,
	{"for", required_argument, NULL, OPT_DURATION},
	O_HELP,
	O_END};
static const struct option opts_evaluate[] = {
	O_CLIENT,
	O_JSON,
	{"platform", required_argument, NULL, OPT_PLATFORM},
	{"version", required_argument, NULL, OPT_VERSION},
	{"channel", required_argument, NULL, OPT_CHANNEL},
	{"country", required_argument, NULL, OPT_COUNTRY},
	{"user", required_argument, NULL, OPT_USER},
	{"lang", required_argument, NULL, OPT_LANG},
	{"offline", required_argument, NULL, OPT_OFFLINE},
	O_HELP,
	O_END};
static const struct option opts_impact[] = {
	O_CLIENT,
	O_JSON,
	{"platform", required_argument, NULL, OPT_PLATFORM},
	{"min-supported", required_argument, NULL, OPT_MIN_SUPPORTED},
	{"threshold", required_argument, NULL, OPT_THRESHOLD},
	{"weeks", required_argument, NULL, OPT_WEEKS},
	O_HELP,
	O_END};
static const struct option opts_activity[] = {O_CLIENT, O_HELP, O_END};

/* ---- small helpers ------------------------------------------------------ */

/* Text from the server or a file, made safe for a terminal. */
static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long jint(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static double jreal(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static void put_time(char out[32], int64_t t)
{
	if (policy_format_time(t, out) != 0)
		snprintf(out, 32, "%lld", (long long)t);
}

/* A JSON value on one line: strings quoted, null (absent) as "absent". */
static void put_value(FILE *f, const json_t *v)
{
	char *s;

	if (!v || json_is_null(v)) {
		fputs("absent", f);
		return;
	}
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	client_print_clean(f, s ? s : "?");
	free(s);
}

/* policy_diff's changes, one "  path: old -> new" line each. */
static void print_changes(const json_t *changes)
{
	size_t i;
	json_t *ch;

	json_array_foreach(changes, i, ch)
	{
		fputs("  ", stdout);
		client_print_clean(stdout, jstr(ch, "path"));
		fputs(": ", stdout);
		put_value(stdout, json_object_get(ch, "old"));
		fputs(" -> ", stdout);
		put_value(stdout, json_object_get(ch, "new"));
		fputc('\n', stdout);
	}
}

/* The request target: a path, then name=value pairs percent-encoded
 * (RFC 3986 unreserved characters kept).  full when it did not fit. */
struct target {
	char s[TARGET_BYTES_MAX];
	size_t len;
	bool full;
};

static void target_init(struct target *t, const char *path)
{
	size_t n = strlen(path);

	t->full = n >= sizeof(t->s);
	t->len = t->full ? 0 : n;
	memcpy(t->s, path, t->len);
	t->s[t->len] = '\0';
}

static void target_add(struct target *t, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *p;

	if (!value || t->full)
		return;
	/* '?' or '&', name, '=', and up to 3 bytes per value byte. */
	if (t->len + 2 + strlen(name) + 3 * strlen(value) >= sizeof(t->s)) {
		t->full = true;
		return;
	}
	t->s[t->len++] = strchr(t->s, '?') ? '&' : '?';
	for (p = name; *p; p++)
		t->s[t->len++] = *p;
	t->s[t->len++] = '=';
	for (p = value; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~') {
			t->s[t->len++] = (char)ch;
		} else {
			t->s[t->len++] = '%';
			t->s[t->len++] = hex[ch >> 4];
			t->s[t->len++] = hex[ch & 15];
		}
	}
	t->s[t->len] = '\0';
}

/*
 * One request whose 2xx answer is a JSON object, kept in *out (the
 * caller json_decref's it).  Returns 0; client_send's status (1, or
 * EXIT_USAGE) after it printed why; 1 when the answer is not JSON.
 * With x->c.keep_problem, a refusal's problem document is kept in *out
 * (when it is a JSON object) and 1 returned.
 */
static int call_json(const struct ctx *x, const char *method,
		     const struct target *t, const char *body, size_t len,
		     json_t **out)
{
	struct http_response r = {0};
	int ret;

	*out = NULL;
	if (t->full) {
		fprintf(stderr, "%s: the request's query is too long\n",
			x->prog);
		return EXIT_USAGE;
	}
	ret = client_send(&x->c, method, t->s, body, len, &r);
	if (ret != 0) {
		*out = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
		if (!json_is_object(*out)) {
			json_decref(*out);
			*out = NULL;
		}
		goto cleanup;
	}
	*out = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		fprintf(stderr,
			"%s: the server's answer is not a JSON object\n",
			x->prog);
		ret = 1;
	}
cleanup:
	http_response_clear(&r);
	return ret;
}

/* A request body: o (consumed) as compact JSON text (free() it), or NULL
 * after saying so when out of memory (o NULL too). */
static char *body_text(const struct ctx *x, json_t *o)
{
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		fprintf(stderr, "%s: out of memory\n", x->prog);
	return body;
}

/* The same, printing the answer verbatim (--json). */
static int call_print(const struct ctx *x, const char *method,
		      const struct target *t, const char *body, size_t len)
{
	if (t->full) {
		fprintf(stderr, "%s: the request's query is too long\n",
			x->prog);
		return EXIT_USAGE;
	}
	return client_send(&x->c, method, t->s, body, len, NULL);
}

/* A reason for the journal: 1..max bytes of UTF-8, no control
 * characters.  NULL is fine unless required.  0 or EXIT_USAGE. */
static int check_reason(const struct ctx *x, const char *r, size_t max,
			bool required)
{
	json_t *utf8;

	if (!r) {
		if (!required)
			return 0;
		fprintf(stderr,
			"%s: --reason is required (it goes in the "
			"history)\n",
			x->prog);
		return EXIT_USAGE;
	}
	if (!r[0] || strlen(r) > max) {
		fprintf(stderr, "%s: --reason: 1 to %zu bytes\n", x->prog, max);
		return EXIT_USAGE;
	}
	for (const char *p = r; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			fprintf(stderr, "%s: --reason: no control characters\n",
				x->prog);
			return EXIT_USAGE;
		}
	utf8 = json_string(r); /* NULL when not UTF-8 */
	if (!utf8) {
		fprintf(stderr, "%s: --reason: not UTF-8\n", x->prog);
		return EXIT_USAGE;
	}
	json_decref(utf8);
	return 0;
}

/* A version number 1..2^53 (N of --version N, A, B, rollback N, an
 * override id).  0 or EXIT_USAGE. */
static int parse_number(const struct ctx *x, const char *what, const char *s,
			uint64_t *out)
{
	if (parse_u64(s, (uint64_t)1 << 53, out) < 0 || *out == 0) {
		fprintf(stderr, "%s: %s: a number 1, 2, ... (got '", x->prog,
			what);
		client_print_clean(stderr, s);
		fputs("')\n", stderr);
		return EXIT_USAGE;
	}
	return 0;
}

/*
 * Read and parse a policy document (FILE or "-").  0 with *out (and the
 * text in *text when text is not NULL); 1 when it does not lint
 * ("FILE: <path>: <reason>" on stderr); EXIT_USAGE when unreadable.
 */
static int load_document(const struct ctx *x, const char *path,
			 struct policy **out, char **text, size_t *text_len)
{
	const char *name = strcmp(path, "-") == 0 ? "(stdin)" : path;
	struct policy_err err = {0};
	char *buf = NULL;
	size_t len = 0;
	int r, ret;

	*out = NULL;
	r = client_read_file(path, POLICY_DOC_BYTES_MAX, &buf, &len);
	if (r == -EFBIG) {
		fprintf(stderr,
			"%s: %s: $: the document is longer than %d "
			"bytes\n",
			x->prog, name, POLICY_DOC_BYTES_MAX);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", x->prog, name,
			tpw_strerror(-r));
		return EXIT_USAGE;
	}
	r = policy_parse(buf, len, out, &err);
	if (r == -ENOMEM) {
		fprintf(stderr, "%s: out of memory\n", x->prog);
		ret = 1;
		goto cleanup;
	}
	if (r != 0) {
		fprintf(stderr, "%s: %s: ", x->prog, name);
		client_print_clean(stderr, err.msg);
		fputc('\n', stderr);
		ret = 1;
		goto cleanup;
	}
	ret = 0;
	if (text) {
		*text = buf;
		*text_len = len;
		buf = NULL;
	}
cleanup:
	free(buf);
	return ret;
}

/*
 * The server's current policy, parsed: 0 with *out (NULL when none is
 * set yet) and *version (0 then); else the failed request's status.
 */
static int fetch_current(const struct ctx *x, struct policy **out,
			 long long *version)
{
	struct policy_err err = {0};
	struct target t;
	json_t *j = NULL;
	char *text = NULL;
	int ret;

	*out = NULL;
	*version = 0;
	/* versions answers 200 even before the first policy, current 404. */
	target_init(&t, "/v1/client-policy/versions");
	ret = call_json(x, "GET", &t, NULL, 0, &j);
	if (ret != 0 || jint(j, "current") == 0)
		goto cleanup;
	json_decref(j);
	target_init(&t, "/v1/client-policy/current");
	ret = call_json(x, "GET", &t, NULL, 0, &j);
	if (ret != 0)
		goto cleanup;
	*version = jint(j, "version");
	text = json_dumps(json_object_get(j, "document"), JSON_COMPACT);
	ret = 1;
	if (!text || policy_parse(text, strlen(text), out, &err) != 0) {
		fprintf(stderr,
			"%s: the server's current document (version %lld) "
			"does not parse here: %s\n",
			x->prog, *version, text ? err.msg : "no document");
		goto cleanup;
	}
	ret = 0;
cleanup:
	free(text);
	json_decref(j);
	return ret;
}

/* policy_diff(a, b) printed; 0 or 1. */
static int print_local_diff(const struct ctx *x, const struct policy *a,
			    const struct policy *b, const char *what)
{
	char *out = NULL;
	size_t n = 0;
	json_t *changes = NULL;
	int ret = 1;

	if (policy_diff(a, b, &out, &n) != 0 ||
	    !(changes = json_loads(out, 0, NULL))) {
		fprintf(stderr, "%s: cannot diff\n", x->prog);
		goto cleanup;
	}
	if (n == 0) {
		printf("%s: no change (they mean the same)\n", what);
	} else {
		printf("%s: %zu change%s\n", what, n, n == 1 ? "" : "s");
		print_changes(changes);
	}
	ret = 0;
cleanup:
	json_decref(changes);
	free(out);
	return ret;
}

/* The "impact" member of a set, revert or rollback answer (or of a
 * policy-impact-too-high refusal): users newly blocked of those active,
 * per platform. */
static void print_impact(FILE *f, const json_t *j)
{
	const json_t *im = json_object_get(j, "impact"), *row;
	const json_t *rows = json_object_get(im, "platforms");
	size_t i;

	if (!im)
		return;
	fprintf(f,
		"impact: users active in the last %lld days newly blocked "
		"(threshold %g%%):\n",
		jint(im, "window_days"), 100.0 * jreal(im, "threshold"));
	if (json_array_size(rows) == 0)
		fputs("  (no activity recorded: no user is known to be "
		      "blocked)\n",
		      f);
	json_array_foreach(rows, i, row)
	{
		fputs("  ", f);
		client_print_clean(f, jstr(row, "platform"));
		fprintf(f, ": %lld of %lld (%.1f%%)\n",
			jint(row, "newly_blocked"), jint(row, "actives"),
			100.0 * jreal(row, "share"));
	}
}

/* A word of the command line, quoted for a POSIX shell when needed. */
static void put_shell_word(FILE *f, const char *w)
{
	if (w[0] && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
			      "vwxyz0123456789_./=:@%+,-") == strlen(w)) {
		fputs(w, f);
		return;
	}
	fputc('\'', f);
	for (; *w; w++) {
		if (*w == '\'')
			fputs("'\\''", f);
		else if ((unsigned char)*w < 0x20 || *w == 0x7f)
			fputc('?', f);
		else
			fputc(*w, f);
	}
	fputc('\'', f);
}

/* After a refusal: a problem's impact table, or a revert's conflicts,
 * and the command that confirms (the same one with --accept-impact). */
static void print_refusal(const struct ctx *x, const json_t *p)
{
	const json_t *c = json_object_get(p, "conflicts"), *path;
	size_t i;

	if (!p)
		return;
	if (strcmp(jstr(p, "type") ? jstr(p, "type") : "",
		   "/problems/policy-impact-too-high") == 0) {
		print_impact(stdout, p);
		fputs("not activated; to activate it anyway:\n  ", stdout);
		/* getopt moved the arguments after the options: they
		 * come first again, as written in the usage. */
		fputs(x->prog, stdout);
		for (int k = 0; k < x->nargs; k++) {
			fputc(' ', stdout);
			put_shell_word(stdout, x->args[k]);
		}
		for (int k = 1; k < x->argc - x->nargs; k++) {
			fputc(' ', stdout);
			put_shell_word(stdout, x->argv[k]);
		}
		fputs(" --accept-impact\n", stdout);
	}
	json_array_foreach(c, i, path)
	{
		fputs("conflict: ", stderr);
		client_print_clean(stderr, json_string_value(path));
		fputc('\n', stderr);
	}
}

/* The answer to PUT or rollback: {"version", "status", "previous"?,
 * "changes"?}. */
static void print_activation(const json_t *j, long long rollback_of)
{
	const json_t *changes = json_object_get(j, "changes");
	size_t n = json_array_size(changes);

	if (strcmp(jstr(j, "status") ? jstr(j, "status") : "", "unchanged") ==
	    0) {
		printf("unchanged: the document means the same as the "
		       "current version %lld\n",
		       jint(j, "version"));
		return;
	}
	printf("activated version %lld", jint(j, "version"));
	if (rollback_of)
		printf(" (a copy of version %lld)", rollback_of);
	if (json_object_get(j, "reverted"))
		printf(" (reverts version %lld)", jint(j, "reverted"));
	if (json_object_get(j, "previous"))
		printf(": %zu change%s from version %lld\n", n,
		       n == 1 ? "" : "s", jint(j, "previous"));
	else
		fputs(": the first policy\n", stdout);
	print_changes(changes);
	print_impact(stdout, j);
}

/* The answer to a dry run (PUT ?dry_run=true, revert "dry_run"):
 * {"status": "dry_run", "current", "changes", "impact", "document"}. */
static void print_dry_run(const json_t *j, const char *what)
{
	const json_t *changes = json_object_get(j, "changes");
	size_t n = json_array_size(changes);
	long long cur = jint(j, "current");

	if (cur == 0)
		printf("dry run: no policy is set yet; %s would be version "
		       "1\n",
		       what);
	else if (n == 0)
		printf("dry run: %s means the same as the current version "
		       "%lld; nothing would change\n",
		       what, cur);
	else
		printf("dry run: %s would be version %lld: %zu change%s from "
		       "version %lld\n",
		       what, cur + 1, n, n == 1 ? "" : "s", cur);
	print_changes(changes);
	print_impact(stdout, j);
}

/* ---- lint, show, set, diff, history, rollback --------------------------- */

static int do_lint(struct ctx *x)
{
	struct policy *p = NULL;
	char *canon = NULL;
	size_t len = 0;
	int ret;

	ret = load_document(x, x->args[0], &p, NULL, NULL);
	if (ret != 0)
		goto cleanup;
	if (x->o.canonical) {
		if (policy_render(p, &canon, &len) != 0) {
			fprintf(stderr, "%s: cannot render\n", x->prog);
			ret = 1;
			goto cleanup;
		}
		client_print_body(canon, len);
	} else {
		printf("ok: %u platform%s, %u flag%s, %u notice%s\n",
		       p->nplatforms, p->nplatforms == 1 ? "" : "s", p->nflags,
		       p->nflags == 1 ? "" : "s", p->nnotices,
		       p->nnotices == 1 ? "" : "s");
	}
cleanup:
	free(canon);
	policy_free(p);
	return ret;
}

static int do_show(struct ctx *x)
{
	struct target t;
	json_t *j = NULL;
	char path[64], *doc = NULL;
	uint64_t v = 0;
	int ret;

	if (x->o.version) {
		ret = parse_number(x, "--version", x->o.version, &v);
		if (ret != 0)
			return ret;
		snprintf(path, sizeof(path), "/v1/client-policy/versions/%llu",
			 (unsigned long long)v);
	} else {
		snprintf(path, sizeof(path), "/v1/client-policy/current");
	}
	target_init(&t, path);
	if (x->o.json)
		return call_print(x, "GET", &t, NULL, 0);
	ret = call_json(x, "GET", &t, NULL, 0, &j);
	if (ret != 0)
		goto cleanup;
	printf("version      %lld\nset_at       ", jint(j, "version"));
	client_print_clean(stdout, jstr(j, "set_at"));
	fputs("\nauthor       ", stdout);
	client_print_clean(stdout, jstr(j, "author"));
	fputs("\nreason       ", stdout);
	client_print_clean(stdout,
			   jstr(j, "reason") ? jstr(j, "reason") : "(none)");
	if (json_object_get(j, "rollback_of"))
		printf("\nrollback_of  %lld", jint(j, "rollback_of"));
	doc = json_dumps(json_object_get(j, "document"), JSON_INDENT(2));
	printf("\ndocument\n%s\n", doc ? doc : "null");
cleanup:
	free(doc);
	json_decref(j);
	return ret;
}

static int do_set(struct ctx *x)
{
	struct policy *p = NULL;
	struct target t;
	json_t *j = NULL;
	char *text = NULL;
	size_t len = 0;
	int ret;

	ret = check_reason(x, x->o.reason, REASON_BYTES_MAX, false);
	if (ret != 0)
		return ret;
	/* Never send a document that does not lint. */
	ret = load_document(x, x->args[0], &p, &text, &len);
	if (ret != 0) {
		if (ret == 1)
			fprintf(stderr, "%s: not sent\n", x->prog);
		goto cleanup;
	}
	target_init(&t, "/v1/client-policy");
	target_add(&t, "reason", x->o.reason);
	if (x->o.accept_impact)
		target_add(&t, "accept_impact", "true");
	if (x->o.dry_run)
		target_add(&t, "dry_run", "true");
	x->c.keep_problem = true;
	ret = call_json(x, "PUT", &t, text, len, &j);
	if (ret == 0 && x->o.dry_run)
		print_dry_run(j, "this document");
	else if (ret == 0)
		print_activation(j, 0);
	else
		print_refusal(x, j);
cleanup:
	json_decref(j);
	policy_free(p);
	free(text);
	return ret;
}

/* revert N: POST /v1/client-policy/revert. */
static int do_revert(struct ctx *x)
{
	struct target t;
	json_t *j = NULL, *o;
	char *body = NULL, what[64];
	uint64_t v;
	int ret;

	ret = parse_number(x, "N", x->args[0], &v);
	if (ret == 0)
		ret = check_reason(x, x->o.reason,
				   REASON_BYTES_MAX - REVERT_PREFIX_BYTES_MAX,
				   false);
	if (ret != 0)
		return ret;
	o = json_pack("{s:I, s:b, s:b}", "version", (json_int_t)v,
		      "accept_impact", x->o.accept_impact, "dry_run",
		      x->o.dry_run);
	if (o && x->o.reason)
		json_object_set_new(o, "reason", json_string(x->o.reason));
	body = body_text(x, o);
	if (!body)
		return 1;
	target_init(&t, "/v1/client-policy/revert");
	x->c.keep_problem = true;
	ret = call_json(x, "POST", &t, body, strlen(body), &j);
	snprintf(what, sizeof(what), "reverting version %llu",
		 (unsigned long long)v);
	if (ret == 0 && x->o.dry_run)
		print_dry_run(j, what);
	else if (ret == 0)
		print_activation(j, 0);
	else
		print_refusal(x, j);
	json_decref(j);
	free(body);
	return ret;
}

static int do_diff(struct ctx *x)
{
	struct policy *cur = NULL, *p = NULL;
	struct target t;
	json_t *j = NULL;
	uint64_t a, b;
	long long cur_version = 0;
	char what[4200];
	size_t n;
	int ret;

	if (x->o.file) {
		if (x->nargs != 0) {
			fprintf(stderr, "%s: give A B or --file FILE\n",
				x->prog);
			return EXIT_USAGE;
		}
		ret = load_document(x, x->o.file, &p, NULL, NULL);
		if (ret == 0)
			ret = fetch_current(x, &cur, &cur_version);
		if (ret != 0)
			goto cleanup;
		if (!cur) {
			fprintf(stderr, "%s: no policy is set yet\n", x->prog);
			ret = 1;
			goto cleanup;
		}
		snprintf(what, sizeof(what), "version %lld -> %s", cur_version,
			 strcmp(x->o.file, "-") == 0 ? "(stdin)" : x->o.file);
		ret = print_local_diff(x, cur, p, what);
		goto cleanup;
	}
	if (x->nargs != 2) {
		fprintf(stderr, "%s: give two versions A B, or --file FILE\n",
			x->prog);
		return EXIT_USAGE;
	}
	ret = parse_number(x, "A", x->args[0], &a);
	if (ret == 0)
		ret = parse_number(x, "B", x->args[1], &b);
	if (ret != 0)
		return ret;
	target_init(&t, "/v1/client-policy/diff");
	target_add(&t, "from", x->args[0]);
	target_add(&t, "to", x->args[1]);
	ret = call_json(x, "GET", &t, NULL, 0, &j);
	if (ret != 0)
		goto cleanup;
	n = json_array_size(json_object_get(j, "changes"));
	if (n == 0)
		printf("version %llu -> %llu: no change\n",
		       (unsigned long long)a, (unsigned long long)b);
	else
		printf("version %llu -> %llu: %zu change%s\n",
		       (unsigned long long)a, (unsigned long long)b, n,
		       n == 1 ? "" : "s");
	print_changes(json_object_get(j, "changes"));
cleanup:
	json_decref(j);
	policy_free(cur);
	policy_free(p);
	return ret;
}

static int do_history(struct ctx *x)
{
	struct target t;
	json_t *j = NULL, *vs, *v;
	size_t i;
	int ret, aw = 6;

	target_init(&t, "/v1/client-policy/versions");
	if (x->o.json)
		return call_print(x, "GET", &t, NULL, 0);
	ret = call_json(x, "GET", &t, NULL, 0, &j);
	if (ret != 0)
		goto cleanup;
	vs = json_object_get(j, "versions");
	if (json_array_size(vs) == 0) {
		printf("no policy has been set yet\n");
		goto cleanup;
	}
	json_array_foreach(vs, i, v)
	{
		const char *a = jstr(v, "author");
		if (a && (int)strlen(a) > aw && strlen(a) < 64)
			aw = (int)strlen(a);
	}
	printf("  VERSION  SET AT                %-*s  REASON\n", aw, "AUTHOR");
	json_array_foreach(vs, i, v)
	{
		long long n = jint(v, "version");
		printf("%c %7lld  %-20s  ", n == jint(j, "current") ? '*' : ' ',
		       n, jstr(v, "set_at") ? jstr(v, "set_at") : "?");
		client_print_clean(stdout, jstr(v, "author"));
		printf("%*s  ",
		       aw - (int)strlen(jstr(v, "author") ? jstr(v, "author")
							  : ""),
		       "");
		client_print_clean(stdout,
				   jstr(v, "reason") ? jstr(v, "reason") : "-");
		if (json_object_get(v, "rollback_of"))
			printf(" (rollback to version %lld)",
			       jint(v, "rollback_of"));
		fputc('\n', stdout);
	}
cleanup:
	json_decref(j);
	return ret;
}

/* rollback --dry-run: what POST .../rollback would activate, from GET
 * .../versions and .../diff; nothing that changes anything is sent. */
static int rollback_dry_run(const struct ctx *x, uint64_t v)
{
	struct target t;
	json_t *j = NULL;
	char from[24], to[24];
	long long cur;
	size_t n;
	int ret;

	target_init(&t, "/v1/client-policy/versions");
	ret = call_json(x, "GET", &t, NULL, 0, &j);
	if (ret != 0)
		return ret;
	cur = jint(j, "current");
	json_decref(j);
	j = NULL;
	if (cur == 0) {
		fprintf(stderr, "%s: no policy has been set yet\n", x->prog);
		return 1;
	}
	snprintf(from, sizeof(from), "%lld", cur);
	snprintf(to, sizeof(to), "%llu", (unsigned long long)v);
	target_init(&t, "/v1/client-policy/diff");
	target_add(&t, "from", from);
	target_add(&t, "to", to);
	ret = call_json(x, "GET", &t, NULL, 0, &j);
	if (ret != 0)
		return ret;
	n = json_array_size(json_object_get(j, "changes"));
	if (n == 0)
		printf("dry run: version %s means the same as the current "
		       "version %lld; a rollback would change nothing\n",
		       to, cur);
	else
		printf("dry run: a rollback would activate version %s's "
		       "document as version %lld: %zu change%s from version "
		       "%lld\n",
		       to, cur + 1, n, n == 1 ? "" : "s", cur);
	print_changes(json_object_get(j, "changes"));
	json_decref(j);
	return 0;
}

static int do_rollback(struct ctx *x)
{
	struct target t;
	json_t *j = NULL, *o;
	char *body = NULL;
	uint64_t v;
	int ret;

	ret = parse_number(x, "N", x->args[0], &v);
	if (ret == 0)
		ret = check_reason(x, x->o.reason, REASON_BYTES_MAX,
				   !x->o.dry_run);
	if (ret != 0)
		return ret;
	if (x->o.dry_run)
		return rollback_dry_run(x, v);
	o = json_pack("{s:I, s:s}", "version", (json_int_t)v, "reason",
		      x->o.reason);
	body = body_text(x, o);
	if (!body)
		return 1;
	target_init(&t, "/v1/client-policy/rollback");
	ret = call_json(x, "POST", &t, body, strlen(body), &j);
	if (ret == 0)
		print_activation(j, (long long)v);
	json_decref(j);
	free(body);
	return ret;
}

/* ---- overrides ---------------------------------------------------------- */

/* "30m", "2h", "1d", "90s" or plain seconds.  0 or -EINVAL. */
static int parse_duration(const char *s, int64_t *out)
{
	static const struct {
		char suffix;
		uint64_t s;
	} units[] = {
		{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
	char num[24];
	size_t n = strlen(s);
	uint64_t v, mul = 1;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (num[n - 1] == units[i].suffix) {
			mul = units[i].s;
			num[--n] = '\0';
			break;
		}
	/* Past POLICY_OVERRIDE_MAX_S, policy_override_init says why. */
	if (parse_u64(num, (uint64_t)1 << 40, &v) < 0)
		return -EINVAL;
	*out = (int64_t)(v * mul);
	return 0;
}

/* --message LOCALE=TEXT... as the request's "message" object, checked
 * as the server will (policy_message_parse); *out NULL when none given.
 * 0 or EXIT_USAGE (said why). */
static int override_message(struct ctx *x, json_t **out)
{
	struct policy_message *m = NULL;
	struct policy_err err = {0};
	json_t *o;
	char *text;
	int ret;

	*out = NULL;
	if (x->o.too_many_messages) {
		fprintf(stderr, "%s: --message: at most %d locales\n", x->prog,
			POLICY_LOCALES_MAX);
		return EXIT_USAGE;
	}
	if (x->o.nmessages == 0)
		return 0;
	if (!(o = json_object()))
		return EXIT_USAGE;
	for (unsigned i = 0; i < x->o.nmessages; i++) {
		const char *arg = x->o.message[i], *eq = strchr(arg, '=');
		char locale[POLICY_TAG_MAX + 1];
		size_t n = eq ? (size_t)(eq - arg) : 0;
		if (n == 0 || n >= sizeof(locale)) {
			fprintf(stderr,
				"%s: --message: LOCALE=TEXT (default=..., "
				"de=..., pt-BR=...)\n",
				x->prog);
			json_decref(o);
			return EXIT_USAGE;
		}
		memcpy(locale, arg, n);
		locale[n] = '\0';
		if (json_object_get(o, locale)) {
			fprintf(stderr, "%s: --message: %s given twice\n",
				x->prog, locale);
			json_decref(o);
			return EXIT_USAGE;
		}
		json_object_set_new(o, locale, json_string(eq + 1));
	}
	text = json_dumps(o, JSON_COMPACT);
	ret = text ? policy_message_parse(text, strlen(text), &m, &err)
		   : -ENOMEM;
	free(text);
	policy_message_free(m);
	if (ret != 0) {
		fprintf(stderr, "%s: --", x->prog);
		client_print_clean(stderr,
				   ret == -ENOMEM ? "out of memory" : err.msg);
		fputc('\n', stderr);
		json_decref(o);
		return EXIT_USAGE;
	}
	*out = o;
	return 0;
}

static int do_override_open(struct ctx *x)
{
	static const char *const required[] = {
		"--platform", "--range", "--mode", "--duration", "--reason"};
	const char *given[] = {x->o.platform, x->o.range, x->o.mode,
			       x->o.duration, x->o.reason};
	struct policy_override ov;
	struct policy_err err = {0};
	struct target t;
	json_t *o = NULL, *j = NULL;
	char *body = NULL;
	int64_t duration_s;
	int ret = EXIT_USAGE;

	for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++)
		if (!given[i]) {
			fprintf(stderr, "%s: %s is required\n", x->prog,
				required[i]);
			return EXIT_USAGE;
		}
	if (parse_duration(x->o.duration, &duration_s) < 0) {
		fprintf(stderr,
			"%s: --duration: seconds, or a number with s, m, h "
			"or d (30m, 2h, 3600)\n",
			x->prog);
		return EXIT_USAGE;
	}
	/* The server's own validation, so a refusal names the field here. */
	if (policy_override_init(&ov, x->o.platform, x->o.range, x->o.mode,
				 duration_s, x->o.reason, (int64_t)time(NULL),
				 &err) != 0) {
		fprintf(stderr, "%s: ", x->prog);
		client_print_clean(stderr, err.msg);
		fputc('\n', stderr);
		return EXIT_USAGE;
	}
	int64_t end_s;
	if (x->o.expected_end &&
	    policy_parse_time(x->o.expected_end, strlen(x->o.expected_end),
			      &end_s)) {
		fprintf(stderr,
			"%s: --expected-end: an RFC 3339 UTC time "
			"(2026-12-07T18:00:00Z)\n",
			x->prog);
		return EXIT_USAGE;
	}
	json_t *msg = NULL;
	if (override_message(x, &msg) != 0)
		return EXIT_USAGE;
	o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "platform", x->o.platform,
		      "range", x->o.range, "mode", x->o.mode, "duration_s",
		      (json_int_t)duration_s, "reason", x->o.reason);
	if (o && msg)
		json_object_set(o, "message", msg);
	json_decref(msg);
	if (o && x->o.expected_end)
		json_object_set_new(o, "expected_end",
				    json_string(x->o.expected_end));
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (!body) {
		fprintf(stderr, "%s: out of memory\n", x->prog);
		ret = 1;
		goto cleanup;
	}
	target_init(&t, "/v1/client-policy/overrides");
	ret = call_json(x, "POST", &t, body, strlen(body), &j);
	if (ret != 0)
		goto cleanup;
	printf("override %lld opened: %s ", jint(j, "id"), x->o.platform);
	client_print_clean(stdout, jstr(j, "range"));
	printf(" served %s until ", strcmp(x->o.mode, "allow") == 0
					    ? "as supported"
					    : "in compatibility mode");
	client_print_clean(stdout, jstr(j, "expires_at"));
	printf("\n(it ends by itself then; 'tpwallet policy override end "
	       "%lld' ends it now)\n",
	       jint(j, "id"));
cleanup:
	free(body);
	json_decref(o);
	json_decref(j);
	return ret;
}

/* override list follows the server's pages at most this many times
 * (100 overrides each; the state holds at most PSTATE_OVERRIDES_MAX). */
#define OVERRIDE_PAGES_MAX 1001u

static const char *override_state(const json_t *o, const char *now)
{
	const char *exp = jstr(o, "expires_at");

	if (json_is_true(json_object_get(o, "active")))
		return "active";
	if (json_is_true(json_object_get(o, "ended_early")))
		return "ended";
	return exp && strcmp(exp, now) <= 0 ? "expired" : "pending";
}

/* An author as the routes give it ({"name", "thumbprint"}): "NAME
 * (THUMBPRINT)", either alone, or "?". */
static void print_person(const json_t *p)
{
	const char *name = jstr(p, "name"), *tp = jstr(p, "thumbprint");

	if (name)
		client_print_clean(stdout, name);
	if (name && tp)
		fputs(" (", stdout);
	if (tp)
		client_print_clean(stdout, tp);
	if (name && tp)
		fputc(')', stdout);
	if (!name && !tp)
		fputc('?', stdout);
}

/* The lines under an override's row: who ended it and why, its
 * extensions, its expiry entry. */
static void print_override_history(const json_t *o)
{
	const json_t *by = json_object_get(o, "ended_by"), *x;
	size_t i;

	json_array_foreach(json_object_get(o, "extensions"), i, x)
	{
		printf("        extended at %s by ",
		       jstr(x, "at") ? jstr(x, "at") : "?");
		print_person(json_object_get(x, "by"));
		printf(" for %lld s, until %s", jint(x, "duration_s"),
		       jstr(x, "expires_at") ? jstr(x, "expires_at") : "?");
		if (jstr(x, "reason")) {
			fputs(": ", stdout);
			client_print_clean(stdout, jstr(x, "reason"));
		}
		fputc('\n', stdout);
	}
	if (json_is_object(by)) {
		printf("        ended at %s by ",
		       jstr(o, "expires_at") ? jstr(o, "expires_at") : "?");
		print_person(by);
		if (jstr(o, "end_reason")) {
			fputs(": ", stdout);
			client_print_clean(stdout, jstr(o, "end_reason"));
		}
		fputc('\n', stdout);
	}
	if (jstr(o, "expired_at"))
		printf("        expired at %s (the server's audit entry)\n",
		       jstr(o, "expired_at"));
}

static int do_override_list(struct ctx *x)
{
	struct target t;
	json_t *j = NULL, *list, *o;
	char now[32];
	size_t i;
	int ret, pw = 8, rw = 5;

	/* Page by page (the server answers at most 100 at a time, newest
	 * first, and "next" while there are more), into one list. */
	j = json_pack("{s:[]}", "overrides");
	list = json_object_get(j, "overrides");
	char before[24] = "";
	for (unsigned page = 0; page < OVERRIDE_PAGES_MAX; page++) {
		json_t *pj = NULL;
		target_init(&t, "/v1/client-policy/overrides");
		if (x->o.all)
			target_add(&t, "all", "true");
		if (before[0])
			target_add(&t, "before", before);
		ret = call_json(x, "GET", &t, NULL, 0, &pj);
		if (ret != 0)
			goto cleanup;
		json_t *got = json_object_get(pj, "overrides");
		json_array_extend(list, got);
		size_t n = json_array_size(got);
		bool next = json_is_string(json_object_get(pj, "next")) && n;
		if (next)
			snprintf(before, sizeof(before), "%lld",
				 jint(json_array_get(got, n - 1), "id"));
		json_decref(pj);
		if (!next)
			break;
	}
	if (x->o.json) {
		char *text = json_dumps(j, JSON_COMPACT);
		if (!text) {
			fprintf(stderr, "%s: out of memory\n", x->prog);
			ret = 1;
			goto cleanup;
		}
		puts(text);
		free(text);
		goto cleanup;
	}
	if (json_array_size(list) == 0) {
		printf(x->o.all ? "no overrides\n" : "no active overrides\n");
		goto cleanup;
	}
	json_array_foreach(list, i, o)
	{
		const char *p = jstr(o, "platform"), *r = jstr(o, "range");
		if (p && (int)strlen(p) > pw && strlen(p) < 64)
			pw = (int)strlen(p);
		if (r && (int)strlen(r) > rw && strlen(r) < 64)
			rw = (int)strlen(r);
	}
	put_time(now, (int64_t)time(NULL));
	printf("%6s  %-7s  %-*s  %-*s  %-6s  %-20s  %s\n", "ID", "STATE", pw,
	       "PLATFORM", rw, "RANGE", "MODE", "EXPIRES AT", "REASON");
	json_array_foreach(list, i, o)
	{
		const char *p = jstr(o, "platform"), *r = jstr(o, "range");
		printf("%6lld  %-7s  ", jint(o, "id"), override_state(o, now));
		client_print_clean(stdout, p);
		printf("%*s  ", pw - (int)strlen(p ? p : ""), "");
		client_print_clean(stdout, r);
		printf("%*s  %-6s  %-20s  ", rw - (int)strlen(r ? r : ""), "",
		       jstr(o, "mode") ? jstr(o, "mode") : "?",
		       jstr(o, "expires_at") ? jstr(o, "expires_at") : "?");
		client_print_clean(stdout, jstr(o, "reason"));
		fputc('\n', stdout);
		print_override_history(o);
	}
cleanup:
	json_decref(j);
	return ret;
}

/* The ID argument and an optional --reason: 0 or the exit status. */
static int id_and_reason(const struct ctx *x, uint64_t *id)
{
	int ret = parse_number(x, "ID", x->args[0], id);
	if (ret == 0)
		ret = check_reason(x, x->o.reason, REASON_BYTES_MAX, false);
	return ret;
}

static int do_override_end(struct ctx *x)
{
	struct target t;
	json_t *j = NULL;
	char path[64];
	uint64_t id;
	int ret;

	ret = id_and_reason(x, &id);
	if (ret != 0)
		return ret;
	snprintf(path, sizeof(path), "/v1/client-policy/overrides/%llu",
		 (unsigned long long)id);
	target_init(&t, path);
	target_add(&t, "reason", x->o.reason);
	ret = call_json(x, "DELETE", &t, NULL, 0, &j);
	if (ret != 0)
		goto cleanup;
	if (strcmp(jstr(j, "status") ? jstr(j, "status") : "", "ended") == 0)
		printf("override %llu ended\n", (unsigned long long)id);
	else
		printf("override %llu had already ended or expired\n",
		       (unsigned long long)id);
cleanup:
	json_decref(j);
	return ret;
}

/* override extend ID --for D: in force until D from now (the server's
 * now: POST .../overrides/{id}/extend). */
static int do_override_extend(struct ctx *x)
{
	struct target t;
	json_t *o = NULL, *j = NULL;
	char path[80], *body = NULL;
	uint64_t id;
	int64_t duration_s;
	int ret;

	ret = id_and_reason(x, &id);
	if (ret != 0)
		return ret;
	if (!x->o.duration || parse_duration(x->o.duration, &duration_s) < 0 ||
	    duration_s < POLICY_OVERRIDE_MIN_S ||
	    duration_s > POLICY_OVERRIDE_MAX_S) {
		fprintf(stderr,
			"%s: --for is required: 60 s to 7 days, as seconds or "
			"a number with s, m, h or d (30m, 2h, 3600)\n",
			x->prog);
		return EXIT_USAGE;
	}
	o = x->o.reason
		    ? json_pack("{s:I, s:s}", "duration_s",
				(json_int_t)duration_s, "reason", x->o.reason)
		    : json_pack("{s:I}", "duration_s", (json_int_t)duration_s);
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body) {
		fprintf(stderr, "%s: out of memory\n", x->prog);
		return 1;
	}
	snprintf(path, sizeof(path), "/v1/client-policy/overrides/%llu/extend",
		 (unsigned long long)id);
	target_init(&t, path);
	ret = call_json(x, "POST", &t, body, strlen(body), &j);
	if (ret == 0) {
		printf("override %llu extended: in force until ",
		       (unsigned long long)id);
		client_print_clean(stdout, jstr(j, "expires_at"));
		fputc('\n', stdout);
	}
	json_decref(j);
	free(body);
	return ret;
}

/* ---- evaluate ----------------------------------------------------------- */

static void print_line(const char *label, const char *value)
{
	if (!value)
		return;
	printf("  %s: ", label);
	client_print_clean(stdout, value);
	fputc('\n', stdout);
}

/* "android/3.9.0: blocked (blocked_range, rule 3.x, policy version 4)"
 * and a line per thing the decision carries.  source: NULL for the
 * server (its policy_version is printed), else the local file's name. */
static void print_decision(const struct ctx *x, const json_t *d,
			   const char *source)
{
	const json_t *ov = json_object_get(d, "override");
	const json_t *flags = json_object_get(d, "flags"), *n, *v;
	const char *k;
	size_t i, on = 0;

	client_print_clean(stdout, x->o.platform);
	if (x->o.version) {
		fputc('/', stdout);
		client_print_clean(stdout, x->o.version);
	}
	fputs(": ", stdout);
	client_print_clean(stdout, jstr(d, "decision"));
	if (ov)
		printf(" via override %lld", jint(ov, "id"));
	fputs(" (", stdout);
	client_print_clean(stdout, jstr(d, "reason"));
	if (jstr(d, "rule")) {
		fputs(", rule ", stdout);
		client_print_clean(stdout, jstr(d, "rule"));
	}
	if (source) {
		fputs(", local document ", stdout);
		client_print_clean(stdout, source);
	} else if (jint(d, "policy_version") == 0) {
		fputs(", no policy is set", stdout);
	} else {
		printf(", policy version %lld", jint(d, "policy_version"));
	}
	fputs(")\n", stdout);
	if (json_object_get(d, "status"))
		printf("  status: %lld\n", jint(d, "status"));
	print_line("message", jstr(d, "message"));
	print_line("upgrade url", jstr(d, "upgrade_url"));
	print_line("deprecated since", jstr(d, "deprecated_since"));
	print_line("sunset", jstr(d, "sunset"));
	print_line("min supported", jstr(d, "min_supported"));
	if (jstr(d, "recommended")) {
		printf("  recommended: ");
		client_print_clean(stdout, jstr(d, "recommended"));
		fputs(json_is_true(json_object_get(d, "update_available"))
			      ? " (update available)\n"
			      : "\n",
		      stdout);
	}
	print_line("release notes", jstr(d, "release_notes"));
	print_line("channel level", jstr(d, "channel"));
	print_line("country level", jstr(d, "country"));
	if (ov) {
		printf("  override %lld (", jint(ov, "id"));
		client_print_clean(stdout, jstr(ov, "mode"));
		fputs(" for ", stdout);
		client_print_clean(stdout, jstr(ov, "platform"));
		fputc(' ', stdout);
		client_print_clean(stdout, jstr(ov, "range"));
		fputs(" until ", stdout);
		client_print_clean(stdout, jstr(ov, "expires_at"));
		if (jstr(ov, "message")) {
			fputs(": ", stdout);
			client_print_clean(stdout, jstr(ov, "message"));
		}
		fputs("); without it: ", stdout);
		client_print_clean(stdout,
				   jstr(d, "decision_without_override"));
		fputc('\n', stdout);
	}
	json_array_foreach(json_object_get(d, "notices"), i, n)
	{
		fputs("  notice ", stdout);
		client_print_clean(stdout, jstr(n, "id"));
		fputs(" (", stdout);
		client_print_clean(stdout, jstr(n, "severity"));
		fputs("): ", stdout);
		client_print_clean(stdout, jstr(n, "text"));
		if (jstr(n, "expected_resolution_at")) {
			fputs(" (expected resolution ", stdout);
			client_print_clean(stdout,
					   jstr(n, "expected_resolution_at"));
			fputc(')', stdout);
		}
		fputc('\n', stdout);
	}
	if (json_object_size(flags) == 0)
		return;
	fputs("  flags on:", stdout);
	json_object_foreach((json_t *)flags, k, v) if (json_is_true(v))
	{
		fputc(' ', stdout);
		client_print_clean(stdout, k);
		on++;
	}
	fputs(on ? "\n" : " none\n", stdout);
}

static int evaluate_offline(struct ctx *x)
{
	struct policy *p = NULL;
	struct policy_query q = {0};
	struct policy_decision d;
	json_t *j = NULL;
	char cv[POLICY_NAME_MAX + SEMVER_TEXT_MAX + 8], *text = NULL;
	int ret, k;

	ret = load_document(x, x->o.offline, &p, NULL, NULL);
	if (ret != 0)
		return ret;
	/* As the server reads its query: "<platform>/<version>". */
	k = snprintf(cv, sizeof(cv), "%s%s%s", x->o.platform,
		     x->o.version ? "/" : "", x->o.version ? x->o.version : "");
	if (k < 0 || (size_t)k >= sizeof(cv)) {
		fprintf(stderr, "%s: --platform or --version too long\n",
			x->prog);
		ret = EXIT_USAGE;
		goto cleanup;
	}
	policy_query_set_client_version(&q, cv, strlen(cv));
	q.channel = x->o.channel;
	q.country = x->o.country;
	q.user = x->o.user;
	q.languages = x->o.lang;
	q.now_s = (int64_t)time(NULL);
	ret = 1;
	if (policy_evaluate(p, &q, NULL, 0, &d) != 0 ||
	    !(j = policy_decision_json(p, &d))) {
		fprintf(stderr, "%s: cannot evaluate\n", x->prog);
		goto cleanup;
	}
	json_object_set_new(j, "platform", json_string(x->o.platform));
	if (x->o.version)
		json_object_set_new(j, "version", json_string(x->o.version));
	ret = 0;
	if (x->o.json) {
		text = json_dumps(j, JSON_COMPACT);
		client_print_body(text, text ? strlen(text) : 0);
	} else {
		print_decision(x, j,
			       strcmp(x->o.offline, "-") == 0 ? "(stdin)"
							      : x->o.offline);
	}
cleanup:
	free(text);
	json_decref(j);
	policy_free(p);
	return ret;
}

static int do_evaluate(struct ctx *x)
{
	struct target t;
	json_t *j = NULL;
	int ret;

	if (!x->o.platform) {
		fprintf(stderr, "%s: --platform is required\n", x->prog);
		return EXIT_USAGE;
	}
	if (x->o.offline)
		return evaluate_offline(x);
	target_init(&t, "/v1/client-policy/evaluate");
	target_add(&t, "platform", x->o.platform);
	target_add(&t, "version", x->o.version);
	target_add(&t, "channel", x->o.channel);
	target_add(&t, "country", x->o.country);
	target_add(&t, "user", x->o.user);
	target_add(&t, "lang", x->o.lang);
	if (x->o.json)
		return call_print(x, "GET", &t, NULL, 0);
	ret = call_json(x, "GET", &t, NULL, 0, &j);
	if (ret == 0)
		print_decision(x, j, NULL);
	json_decref(j);
	return ret;
}

/* ---- impact, activity --------------------------------------------------- */

static int do_impact(struct ctx *x)
{
	struct target t;
	json_t *j = NULL, *f;
	uint64_t weeks;
	double th = 0.05;
	char *end;
	int ret;

	if (!x->o.platform || !x->o.min_supported) {
		fprintf(stderr,
			"%s: --platform and --min-supported are "
			"required\n",
			x->prog);
		return EXIT_USAGE;
	}
	if (x->o.threshold) {
		errno = 0;
		th = strtod(x->o.threshold, &end);
		if (errno || end == x->o.threshold || *end ||
		    !(th > 0 && th < 1)) {
			fprintf(stderr,
				"%s: --threshold: a share between 0 and 1 "
				"(0.05 is 5%%)\n",
				x->prog);
			return EXIT_USAGE;
		}
	}
	if (x->o.weeks &&
	    (parse_u64(x->o.weeks, IMPACT_WEEKS_MAX, &weeks) < 0 ||
	     weeks == 0)) {
		fprintf(stderr, "%s: --weeks: 1 to %u\n", x->prog,
			IMPACT_WEEKS_MAX);
		return EXIT_USAGE;
	}
	target_init(&t, "/v1/client-policy/impact");
	target_add(&t, "platform", x->o.platform);
	target_add(&t, "min_supported", x->o.min_supported);
	target_add(&t, "threshold", x->o.threshold);
	target_add(&t, "weeks", x->o.weeks);
	if (x->o.json)
		return call_print(x, "GET", &t, NULL, 0);
	ret = call_json(x, "GET", &t, NULL, 0, &j);
	if (ret != 0)
		goto cleanup;
	fputs("raising ", stdout);
	client_print_clean(stdout, x->o.platform);
	fputs("'s minimum to ", stdout);
	client_print_clean(stdout, x->o.min_supported);
	printf(" would block %lld of %lld users active in the last %lld "
	       "days",
	       jint(j, "blocked"), jint(j, "actives"), jint(j, "window_days"));
	if (jint(j, "actives") > 0)
		printf(" (%.1f%%)\n", 100.0 * jreal(j, "share"));
	else
		fputs(" (no activity recorded)\n", stdout);
	if (jint(j, "unparsed") > 0)
		printf("(%lld active users sent a version that does not "
		       "parse)\n",
		       jint(j, "unparsed"));
	f = json_object_get(j, "forecast");
	th = json_object_get(f, "threshold") ? jreal(f, "threshold") : th;
	if (jstr(f, "date_below") && jreal(f, "share_now") < th) {
		printf("already under %g%% (%.1f%% now, fitted); fit: "
		       "%.1f%%/day, R^2 %.3f over %lld days\n",
		       100.0 * th, 100.0 * jreal(f, "share_now"),
		       100.0 * jreal(f, "daily_decay"), jreal(f, "r2"),
		       jint(f, "days_used"));
	} else if (jstr(f, "date_below")) {
		printf("falls under %g%% around ", 100.0 * th);
		client_print_clean(stdout, jstr(f, "date_below"));
		printf("; fit: %.1f%%/day, R^2 %.3f over %lld days\n",
		       100.0 * jreal(f, "daily_decay"), jreal(f, "r2"),
		       jint(f, "days_used"));
	} else {
		fputs("no forecast: ", stdout);
		client_print_clean(stdout,
				   jstr(f, "note") ? jstr(f, "note") : "none");
		fputc('\n', stdout);
	}
cleanup:
	json_decref(j);
	return ret;
}

static int do_activity_load(struct ctx *x)
{
	const char *name =
		strcmp(x->args[0], "-") == 0 ? "(stdin)" : x->args[0];
	struct target t;
	json_t *j = NULL;
	char *body = NULL;
	size_t len = 0;
	int r, ret;

	r = client_read_file(x->args[0], CLIENT_BODY_BYTES_MAX, &body, &len);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", x->prog, name,
			fsfile_strerror(r));
		return EXIT_USAGE;
	}
	target_init(&t, "/v1/client-policy/activity");
	ret = call_json(x, "POST", &t, body, len, &j);
	if (ret == 0)
		printf("observed %lld, dropped %lld\n", jint(j, "observed"),
		       jint(j, "dropped"));
	json_decref(j);
	free(body);
	return ret;
}

/* ---- the subcommand table ------------------------------------------------
 */

struct sub {
	const char *name; /* "set", "override open" */
	int (*fn)(struct ctx *x);
	const struct option *opts;
	bool server; /* takes the shared client options */
	int args_min, args_max;
	const char *synopsis, *help;
	const char *example; /* run by tests/e2e/test_cli.py */
};

static const struct sub subs[] = {
	{"lint", do_lint, opts_lint, false, 1, 1, "lint FILE|- [--canonical]",
	 "Check a policy document offline with the server's parser: prints\n"
	 "\"ok: N platforms, M flags, K notices\", or \"FILE: <path>: "
	 "<reason>\" on\nstderr and exits 1.  --canonical prints the "
	 "canonical form instead\n(keys sorted, defaults left out: what two "
	 "equal documents share).",
	 "  tpwallet policy lint policy.json\n"},
	{"show", do_show, opts_show, true, 0, 0, "show [--version N] [--json]",
	 "The current policy (or version N): version, set_at, author, "
	 "reason and\nthe document.  --json: the server's answer as is.",
	 "  tpwallet policy show --version 1\n"},
	{"set", do_set, opts_set, true, 1, 1,
	 "set FILE|- [--reason TEXT] [--dry-run] [--accept-impact]",
	 "Lint FILE, then activate it as the new version (PUT\n"
	 "/v1/client-policy) and print the changes, \"path: old -> new\", "
	 "and the\nimpact: per platform, the users active in the last 7 "
	 "days it newly\nblocks.  Above the server's threshold "
	 "(client_policy_max_blocked_share)\nit is refused (exit 1) with "
	 "the impact and the command that confirms\n(--accept-impact).  A "
	 "document that does not lint is never sent.\n--dry-run asks the "
	 "server for the changes and the impact without\nactivating "
	 "anything.  --reason (at most 207 bytes) goes in the history.",
	 "  tpwallet policy set policy.json --reason \"block android 3.x\"\n"},
	{"diff", do_diff, opts_diff, true, 0, 2, "diff A B | diff --file FILE",
	 "The changes from version A to version B, one \"path: old -> new\" "
	 "a line\n(absent: the key is not set).  --file: from the current "
	 "version to a\nlocal document, diffed here.",
	 "  tpwallet policy diff 1 2\n"},
	{"history", do_history, opts_history, true, 0, 0, "history [--json]",
	 "Every version, newest first (at most 1000); * marks the current "
	 "one.",
	 "  tpwallet policy history\n"},
	{"revert", do_revert, opts_revert, true, 1, 1,
	 "revert N [--reason TEXT] [--dry-run] [--accept-impact]",
	 "Undo version N's change on top of the current document (a "
	 "three-way merge:\nthe current document, with what N changed "
	 "against N-1 put back), as a\nnew version whose reason names N.  "
	 "A key changed again since N is a\nconflict (409, each path "
	 "printed; nothing changes).  Like set, it prints the\nimpact and "
	 "is refused above the server's threshold unless --accept-impact;\n"
	 "--dry-run prints the changes and the impact without activating.",
	 "  tpwallet policy revert 2 --dry-run\n"},
	{"rollback", do_rollback, opts_rollback, true, 1, 1,
	 "rollback N --reason TEXT | rollback N --dry-run",
	 "Activate version N's document again, as a new version (history is "
	 "never\nrewritten).  --dry-run prints what it would change and "
	 "activates nothing.",
	 "  tpwallet policy rollback 1 --dry-run\n"},
	{"override open", do_override_open, opts_ov_open, true, 0, 0,
	 "override open --platform P --range R --mode compat|allow\n"
	 "      --duration 30m|2h|3600 --reason TEXT\n"
	 "      [--message LOCALE=TEXT]... [--expected-end TIME]",
	 "Let blocked versions in R be served for a while (60 s to 7 days):\n"
	 "compat serves them in compatibility mode, allow as supported.  It "
	 "only\never relaxes a blocked verdict, and ends by itself.  Prints "
	 "its id and\nexpiry.  --reason: at most 256 bytes, for operators "
	 "only (never shown\nto apps).  --message: what the app shows its "
	 "users, once per locale\n(default=... is required; de=..., "
	 "pt-BR=...); --expected-end: when you\nexpect the cause fixed "
	 "(RFC 3339 UTC; shown to apps, ends nothing).",
	 "  tpwallet policy override open --platform android --range 3.9.x \\\n"
	 "      --mode compat --duration 30m --reason \"INC-42: store "
	 "down\"\n"},
	{"override list", do_override_list, opts_ov_list, true, 0, 0,
	 "override list [--all] [--json]",
	 "The active overrides; --all: every one, newest first, with its "
	 "state\n(active, ended, expired); under each, its extensions, who "
	 "ended it and why,\nand when it expired.",
	 "  tpwallet policy override list --all\n"},
	{"override extend", do_override_extend, opts_ov_extend, true, 1, 1,
	 "override extend ID --for 30m|2h|3600 [--reason TEXT]",
	 "Keep override ID in force until --for from now (60 s to 7 days; "
	 "later\nthan its current end).  An ended or expired override "
	 "cannot be\nextended: open a new one.",
	 "  tpwallet policy override extend 1 --for 2h --reason \"store still "
	 "down\"\n"},
	{"override end", do_override_end, opts_ov_end, true, 1, 1,
	 "override end ID [--reason TEXT]", "End override ID now.",
	 "  tpwallet policy override end 1 --reason \"store fixed\"\n"},
	{"evaluate", do_evaluate, opts_evaluate, true, 0, 0,
	 "evaluate --platform P [--version V] [--channel C] [--country CC]\n"
	 "      [--user U] [--lang L] [--json] [--offline "
	 "FILE]",
	 "What the gate decides for a client \"P/V\" now, with the rule, the "
	 "message,\nthe upgrade url, notices, flags and any override "
	 "(--lang: an\nAccept-Language value).  Exit 0 whatever the verdict.  "
	 "--offline FILE\nevaluates against a local document, without "
	 "server or overrides.",
	 "  tpwallet policy evaluate --platform android --version 3.9.0 --lang "
	 "de\n"},
	{"impact", do_impact, opts_impact, true, 0, 0,
	 "impact --platform P --min-supported X [--threshold 0.05] "
	 "[--weeks 4]\n      [--json]",
	 "How many users active in the last 7 days raising P's minimum to "
	 "X\nwould block, and when the share below X is forecast to fall "
	 "under\n--threshold (a fit over the last --weeks, 1..17).",
	 "  tpwallet policy impact --platform android --min-supported 4.2.0\n"},
	{"activity load", do_activity_load, opts_activity, true, 1, 1,
	 "activity load FILE|-",
	 "Load observations (tests, demos): FILE holds {\"observations\": "
	 "[{\"day\":\n\"YYYY-MM-DD\", \"platform\", \"version\", \"user\"}, "
	 "...]} in day order, at\nmost 100000.  Prints how many were "
	 "observed and dropped.",
	 "  tpwallet policy activity load history.json\n"},
};
#define NSUBS (sizeof(subs) / sizeof(subs[0]))

static void usage(FILE *f, const char *group)
{
	fprintf(f, "usage: tpwallet policy <subcommand> [options]\n\n");
	for (size_t i = 0; i < NSUBS; i++)
		if (!group || strncmp(subs[i].name, group, strlen(group)) == 0)
			fprintf(f, "  %s\n", subs[i].synopsis);
	fprintf(f,
		"\nThe client-version policy (docs/client-policy.md).  "
		"'tpwallet policy\n<subcommand> --help' says more.  The "
		"server calls take these options\n(by default the "
		"administrator's token, DATA/admin.token):\n%s%s\n"
		"Exit 0 on success, 1 when refused or failed, 2 on usage "
		"errors.\nSee docs/cli.md.\n\nExample:\n",
		client_usage_common, client_usage_auth);
	/* A group's help ("policy override --help") shows its first
	 * subcommand's example. */
	for (size_t i = 0; group && i < NSUBS; i++)
		if (strncmp(subs[i].name, group, strlen(group)) == 0) {
			fputs(subs[i].example, f);
			return;
		}
	fputs("  tpwallet policy evaluate --platform android --version "
	      "3.9.0\n",
	      f);
}

static void sub_usage(FILE *f, const struct sub *s)
{
	fprintf(f, "usage: tpwallet policy %s\n\n%s\n", s->synopsis, s->help);
	if (s->server)
		fprintf(f, "\noptions:\n%s%s", client_usage_common,
			client_usage_auth);
	fprintf(f,
		"\nExit 0 on success, 1 when refused or failed, 2 on "
		"usage errors.\n\nExample:\n%s",
		s->example);
}

/* Options and arguments of one subcommand into x.  Returns -1 to go
 * on, else an exit status. */
static int parse_args(struct ctx *x, int argc, char **argv)
{
	const struct sub *s = x->sub;
	struct popts *o = &x->o;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, s->server ? "vk:h" : "h", s->opts,
				  NULL)) != -1) {
		if (opt == 'h') {
			sub_usage(stdout, s);
			return 0;
		}
		if (s->server) {
			r = client_option(&x->c, opt, optarg, true);
			if (r < 0)
				return EXIT_USAGE;
			if (r > 0)
				continue;
		}
		switch (opt) {
		case OPT_JSON: o->json = true; break;
		case OPT_CANONICAL: o->canonical = true; break;
		case OPT_DRY_RUN: o->dry_run = true; break;
		case OPT_ACCEPT_IMPACT: o->accept_impact = true; break;
		case OPT_ALL: o->all = true; break;
		case OPT_REASON: o->reason = optarg; break;
		case OPT_VERSION: o->version = optarg; break;
		case OPT_FILE: o->file = optarg; break;
		case OPT_PLATFORM: o->platform = optarg; break;
		case OPT_RANGE: o->range = optarg; break;
		case OPT_MODE: o->mode = optarg; break;
		case OPT_DURATION: o->duration = optarg; break;
		case OPT_CHANNEL: o->channel = optarg; break;
		case OPT_COUNTRY: o->country = optarg; break;
		case OPT_USER: o->user = optarg; break;
		case OPT_LANG: o->lang = optarg; break;
		case OPT_OFFLINE: o->offline = optarg; break;
		case OPT_MIN_SUPPORTED: o->min_supported = optarg; break;
		case OPT_THRESHOLD: o->threshold = optarg; break;
		case OPT_WEEKS: o->weeks = optarg; break;
		case OPT_EXPECTED_END: o->expected_end = optarg; break;
		case OPT_MESSAGE:
			if (o->nmessages == POLICY_LOCALES_MAX)
				o->too_many_messages = true;
			else
				o->message[o->nmessages++] = optarg;
			break;
		default: sub_usage(stderr, s); return EXIT_USAGE;
		}
	}
	x->nargs = argc - optind;
	if (x->nargs < s->args_min || x->nargs > s->args_max) {
		fprintf(stderr, "%s: %s\n", x->prog,
			x->nargs < s->args_min ? "missing argument"
					       : "too many arguments");
		sub_usage(stderr, s);
		return EXIT_USAGE;
	}
	for (int i = 0; i < x->nargs; i++)
		x->args[i] = argv[optind + i];
	return -1;
}

int cmd_policy(int argc, char **argv)
{
	static char prog[PROG_BYTES_MAX];
	struct ctx x;
	char name[PROG_BYTES_MAX];
	const char *group = NULL;
	int skip = 1, r;
	size_t i;

	if (argc < 2) {
		usage(stderr, NULL);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout, NULL);
		return 0;
	}
	/* Two-word subcommands: "override open", "activity load". */
	if (strcmp(argv[1], "override") == 0 ||
	    strcmp(argv[1], "activity") == 0) {
		group = argv[1];
		if (argc < 3 || argv[2][0] == '-') {
			bool help =
				argc >= 3 && (strcmp(argv[2], "--help") == 0 ||
					      strcmp(argv[2], "-h") == 0);
			usage(help ? stdout : stderr, group);
			return help ? 0 : EXIT_USAGE;
		}
		snprintf(name, sizeof(name), "%s %s", argv[1], argv[2]);
		skip = 2;
	} else {
		snprintf(name, sizeof(name), "%s", argv[1]);
	}
	for (i = 0; i < NSUBS; i++)
		if (strcmp(subs[i].name, name) == 0)
			break;
	if (i == NSUBS) {
		fprintf(stderr, "tpwallet policy: unknown subcommand '");
		client_print_clean(stderr, name);
		fputs("'\n", stderr);
		usage(stderr, group);
		return EXIT_USAGE;
	}
	if (jose_init() < 0) {
		fprintf(stderr, "tpwallet policy: libsodium failed\n");
		return EXIT_SOFTWARE;
	}
	snprintf(prog, sizeof(prog), "tpwallet policy %s", subs[i].name);
	memset(&x, 0, sizeof(x));
	x.sub = &subs[i];
	x.prog = prog;
	client_init(&x.c, prog);
	argc -= skip;
	argv += skip;
	argv[0] = prog; /* getopt's own messages name the command */
	x.argc = argc;
	x.argv = argv;
	r = parse_args(&x, argc, argv);
	if (r >= 0)
		return r;
	return subs[i].fn(&x);
}
