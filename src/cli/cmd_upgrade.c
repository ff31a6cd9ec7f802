/*
 * cmd_upgrade.c - `tpwallet upgrade check`: can a release serve this data
 * directory?  (issue 21; docs/operations.md, "Upgrades and rollbacks")
 *
 * The directory's inventory (log/formats.h: every journal record's
 * version, type and command kind, the snapshots, the store, the audit
 * state, the key files, the vault's key store) against the formats a
 * release reads: this binary's own table, or another binary's, taken from
 * its `version --json` (run without a shell, its output bounded, under a
 * deadline).  Read-only, so it may run beside a serving server; before an
 * upgrade PATH is the new release, before a rollback the old one.
 */
#include "cli/cli.h"
#include "core/version.h"
#include "log/formats.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

/* The other binary's `version --json`: at most this much, this soon. */
#define OTHER_OUTPUT_MAX (1u << 20)
#define OTHER_DEADLINE_S 10

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet upgrade check --data DATA [--archive DIR] "
		"[--binary PATH] [--json]\n\n"
		"Say whether a release can serve the data directory DATA: "
		"every format DATA holds\n(journal record versions, record "
		"types and command kinds, snapshots, the store,\nthe audit "
		"state, key files, the card vault's key store) against what "
		"the release\nreads.  Without --binary the release is this "
		"one; with it, the binary at PATH\n(what its `version --json` "
		"says it reads): PATH the new release before an\nupgrade, the "
		"old one before a rollback.  Read-only: safe beside a running "
		"server.\n--archive DIR: the server's journal_archive_dir, "
		"whose segments are read too.\nProgress of a long journal goes "
		"to stderr.  --json prints {\"release\", \"can_serve\",\n"
		"\"formats\": [{\"format\", \"found\", \"reads\", \"unread\", "
		"\"blocks\"}]}.\n\n"
		"Exit status: 0 the release can serve DATA, 1 it cannot (each "
		"format it does not\nread is named) or it cannot tell, 2 "
		"usage, 3 DATA does not exist.\n\n"
		"Example:\n"
		"  tpwallet upgrade check --data data\n");
}

static void upgrade_usage(FILE *f)
{
	fprintf(f, "usage: tpwallet upgrade <subcommand> [options]\n\n"
		   "  check   can a release (this one, or --binary PATH) "
		   "serve a data directory?\n\n"
		   "Example:\n"
		   "  tpwallet upgrade check --data data\n");
}

/* What a release reads: per format, a bit set. */
struct reads {
	u8 v[FORMAT_COUNT][FORMAT_VALUES / 8];
	bool listed[FORMAT_COUNT]; /* the release says what it reads */
	char release[64];
};

static void own_reads(struct reads *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->release, sizeof(r->release), "%s", TPWALLET_VERSION);
	for (unsigned f = 0; f < FORMAT_COUNT; f++) {
		r->listed[f] = true;
		for (unsigned v = 0; v < FORMAT_VALUES; v++)
			if (format_reads(f, v))
				r->v[f][v / 8] |= (u8)(1u << (v % 8));
	}
}

/* Run PATH version --json; its stdout (NUL-terminated, malloc'd) or NULL
 * with a message on stderr. */
static char *run_version(const char *path)
{
	int pipefd[2];
	if (pipe(pipefd) < 0) {
		perror("tpwallet upgrade check: pipe");
		return NULL;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("tpwallet upgrade check: fork");
		close(pipefd[0]);
		close(pipefd[1]);
		return NULL;
	}
	if (pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		char version[] = "version", json[] = "--json";
		char *args[] = {(char *)path, version, json, NULL};
		execv(path, args);
		_exit(127);
	}
	close(pipefd[1]);
	char *out = malloc(OTHER_OUTPUT_MAX + 1);
	size_t got = 0;
	bool late = false, big = false;
	time_t end = time(NULL) + OTHER_DEADLINE_S;
	while (out) {
		struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
		time_t left = end - time(NULL);
		if (left <= 0) {
			late = true;
			break;
		}
		int n = poll(&p, 1, (int)left * 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			late = n == 0;
			break;
		}
		if (got == OTHER_OUTPUT_MAX) {
			big = true;
			break;
		}
		ssize_t r = read(pipefd[0], out + got, OTHER_OUTPUT_MAX - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(pipefd[0]);
	if (late || big || !out)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!out || late || big || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr,
			"tpwallet upgrade check: `%s version --json` %s\n",
			path,
			!out   ? "could not be read: out of memory"
			: late ? "did not answer within 10 s"
			: big  ? "printed more than 1 MiB"
			: WIFEXITED(status) && WEXITSTATUS(status) == 127
				? "could not be run"
				: "failed");
		free(out);
		return NULL;
	}
	out[got] = '\0';
	return out;
}

/* What the binary at path reads, from its version --json.  0, or -1
 * with a message (it cannot be run, its answer is not JSON). */
static int other_reads(const char *path, struct reads *r)
{
	memset(r, 0, sizeof(*r));
	char *text = run_version(path);
	if (!text)
		return -1;
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	free(text);
	if (!json_is_object(o)) {
		fprintf(stderr,
			"tpwallet upgrade check: `%s version --json` is not "
			"a JSON object (%s)\n",
			path, je.text);
		json_decref(o);
		return -1;
	}
	const char *rel = json_string_value(json_object_get(o, "version"));
	snprintf(r->release, sizeof(r->release), "%s", rel ? rel : "?");
	json_t *fm = json_object_get(o, "formats");
	for (unsigned f = 0; json_is_object(fm) && f < FORMAT_COUNT; f++) {
		json_t *row = json_object_get(fm, FORMATS[f].name);
		json_t *list = json_object_get(row, "reads");
		size_t i;
		json_t *v;
		if (!json_is_array(list))
			continue;
		r->listed[f] = true;
		json_array_foreach(list, i, v)
		{
			json_int_t n = json_integer_value(v);
			if (json_is_integer(v) && n >= 0 &&
			    n < (json_int_t)FORMAT_VALUES)
				r->v[f][n / 8] |= (u8)(1u << (n % 8));
		}
	}
	json_decref(o);
	return 0;
}

/* Only for a journal worth waiting for. */
#define PROGRESS_FROM_BYTES (256ull << 20)

static void progress(void *ctx, u64 done, u64 total)
{
	(void)ctx;
	if (total < PROGRESS_FROM_BYTES)
		return;
	fprintf(stderr,
		"tpwallet upgrade check: journal %llu of %llu MiB read\n",
		(unsigned long long)(done >> 20),
		(unsigned long long)(total >> 20));
}

/* "1-2, 4" from a bit set (at most cap bytes). */
static void ranges(char *out, size_t cap, const u8 *bits, size_t *n)
{
	size_t used = 0;
	*n = 0;
	out[0] = '\0';
	for (unsigned v = 0; v < FORMAT_VALUES; v++) {
		if (!(bits[v / 8] & (1u << (v % 8))))
			continue;
		unsigned end = v;
		while (end + 1 < FORMAT_VALUES &&
		       bits[(end + 1) / 8] & (1u << ((end + 1) % 8)))
			end++;
		int w = end == v ? snprintf(out + used, cap - used, "%s%u",
					    used ? ", " : "", v)
				 : snprintf(out + used, cap - used, "%s%u-%u",
					    used ? ", " : "", v, end);
		if (w < 0 || (size_t)w >= cap - used)
			break;
		used += (size_t)w;
		(*n)++;
		v = end;
	}
	if (!used)
		snprintf(out, cap, "none");
}

static json_t *int_list(const u8 *bits)
{
	json_t *a = json_array();
	for (unsigned v = 0; a && v < FORMAT_VALUES; v++)
		if (bits[v / 8] & (1u << (v % 8)))
			json_array_append_new(a, json_integer(v));
	return a;
}

static int check(int argc, char **argv)
{
	const char *data = NULL, *archive = NULL, *binary = NULL;
	bool json = false;
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"archive", required_argument, NULL, 'a'},
		{"binary", required_argument, NULL, 'b'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'a': archive = optarg; break;
		case 'b': binary = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr,
				"tpwallet upgrade check: unknown option or "
				"missing value: %s\n",
				argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || !data) {
		fprintf(stderr, "tpwallet upgrade check: %s\n",
			optind < argc ? "unexpected argument"
				      : "--data DATA is required");
		usage(stderr);
		return EXIT_USAGE;
	}
	struct stat st;
	if (stat(data, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"tpwallet upgrade check: %s is not a directory\n",
			data);
		return 3;
	}

	struct reads *r = malloc(sizeof(*r));
	struct format_inventory *inv = malloc(sizeof(*inv));
	int ret = 1;
	if (!r || !inv) {
		fprintf(stderr, "tpwallet upgrade check: out of memory\n");
		goto out;
	}
	if (binary ? other_reads(binary, r) < 0 : (own_reads(r), 0))
		goto out;
	char err[512];
	if (formats_inventory(data, archive, inv, json ? NULL : progress, NULL,
			      err, sizeof(err)) < 0) {
		fprintf(stderr, "tpwallet upgrade check: %s\n", err);
		goto out;
	}

	bool can = !inv->store_unread, unknown = false;
	json_t *rows = json ? json_array() : NULL;
	if (!json)
		printf("%s against tpwallet %s%s%s:\n", data, r->release,
		       binary ? " at " : " (this binary)",
		       binary ? binary : "");
	for (unsigned f = 0; f < FORMAT_COUNT; f++) {
		u8 unread[FORMAT_VALUES / 8];
		bool any = false, found = inv->count[f] > 0;
		for (size_t i = 0; i < sizeof(unread); i++) {
			unread[i] = inv->seen[f][i] & (u8)~r->v[f][i];
			any |= unread[i] != 0;
		}
		if (!r->listed[f] && found)
			unknown = true;
		else if (any && FORMATS[f].blocks)
			can = false;
		char fs[256], rs[256], us[256];
		size_t n;
		ranges(fs, sizeof(fs), inv->seen[f], &n);
		ranges(rs, sizeof(rs), r->v[f], &n);
		ranges(us, sizeof(us), unread, &n);
		if (json) {
			json_t *row = json_object();
			json_object_set_new(row, "format",
					    json_string(FORMATS[f].name));
			json_object_set_new(row, "found",
					    int_list(inv->seen[f]));
			json_object_set_new(row, "reads",
					    r->listed[f] ? int_list(r->v[f])
							 : json_null());
			json_object_set_new(row, "unread", int_list(unread));
			json_object_set_new(row, "blocks",
					    json_boolean(FORMATS[f].blocks));
			json_array_append_new(rows, row);
			continue;
		}
		const char *verdict =
			!found		    ? "none in DATA"
			: !r->listed[f]	    ? "CANNOT TELL: the release does "
					      "not say what it reads"
			: !any		    ? "ok"
			: FORMATS[f].blocks ? "NOT READ: the release refuses "
					      "to start"
					    : "not read";
		printf("  %-30s found %-14s reads %-16s %s", FORMATS[f].what,
		       found ? fs : "-", r->listed[f] ? rs : "?", verdict);
		if (found && any)
			printf(" (%s%s%s)", us, FORMATS[f].blocks ? "" : ": ",
			       FORMATS[f].blocks ? "" : FORMATS[f].else_);
		printf("\n");
	}
	if (inv->store_unread) {
		if (json)
			json_array_append_new(
				rows, json_pack("{s:s,s:s,s:b}", "format",
						"store", "problem",
						inv->store_why, "blocks", 1));
		else
			printf("  store: %s: NOT READ by this binary (an "
			       "older one cannot say its version)\n",
			       inv->store_why);
	}
	if (json) {
		json_t *o = json_pack(
			"{s:s,s:s?,s:b,s:b,s:I,s:I,s:I,s:o}", "release",
			r->release, "binary", binary, "can_serve",
			can && !unknown, "cannot_tell", unknown,
			"journal_records", (json_int_t)inv->records, "last_seq",
			(json_int_t)inv->last_seq, "torn_tail_bytes",
			(json_int_t)inv->tail_bytes, "formats", rows);
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!text) {
			fprintf(stderr,
				"tpwallet upgrade check: out of memory\n");
			goto out;
		}
		printf("%s\n", text);
		free(text);
	} else {
		printf("  (%llu journal records, the last seq %llu",
		       (unsigned long long)inv->records,
		       (unsigned long long)inv->last_seq);
		if (inv->tail_bytes)
			printf("; a torn write of %llu bytes at the end, "
			       "cut at the next start",
			       (unsigned long long)inv->tail_bytes);
		printf(")\n");
		if (unknown)
			printf("cannot tell: tpwallet %s does not list the "
			       "formats it reads\n",
			       r->release);
		else if (can)
			printf("can serve: yes\n");
		else
			printf("can serve: NO (tpwallet %s does not read what "
			       "is named above)\n",
			       r->release);
	}
	ret = can && !unknown ? 0 : 1;
out:
	free(r);
	free(inv);
	return ret;
}

int cmd_upgrade(int argc, char **argv)
{
	int ret = client_subcommand_or_help(argc, argv, upgrade_usage);
	if (ret >= 0)
		return ret;
	if (strcmp(argv[1], "check") == 0)
		return check(argc - 1, argv + 1);
	fprintf(stderr, "tpwallet upgrade: unknown subcommand '%s'\n", argv[1]);
	upgrade_usage(stderr);
	return EXIT_USAGE;
}
