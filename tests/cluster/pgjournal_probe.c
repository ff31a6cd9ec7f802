/*
 * pgjournal_probe.c - drives log/pgjournal.c from a test, one command per
 * line on standard input, one answer per line on standard output.
 *
 * Why a program: pgjournal's tests need a real PostgreSQL, which the e2e
 * suite starts (tests/cluster/pgcluster.py); two probes are two writers,
 * so fencing is tested across processes as it happens in production.
 * The connection string comes from the environment (TPW_PGJOURNAL_CONNINFO;
 * never argv, which other users can read), lease and reconnect times from
 * TPW_PGJOURNAL_LEASE_MS and TPW_PGJOURNAL_RECONNECT_MS.
 *
 *     acquire HOLDER              ok TERM
 *     append SEQ LAST TERM HEX    ok
 *     renew TERM                  ok
 *     last                        ok LAST_SEQ
 *     read FROM                   row SEQ LAST TERM HEX ... then ok
 *     quit
 * Any failure answers "err CODE REASON" (CODE a negative errno).
 */
#include "core/parse.h"
#include "log/pgjournal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define LINE_BYTES_MAX (8u << 20)
#define WORDS_MAX      6

static u32 env_u32(const char *name)
{
	const char *v = getenv(name);
	u64 n = 0;
	return v && parse_u64(v, UINT32_MAX, &n) == 0 ? (u32)n : 0;
}

static u64 word_u64(const char *w)
{
	u64 n = 0;
	return w && parse_u64(w, INT64_MAX, &n) == 0 ? n : 0;
}

/* Hex in place to bytes; returns the byte count or -1. */
static long unhex(char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n % 2)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = parse_hex_digit(s[2 * i]);
		int lo = parse_hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		s[i] = (char)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

static int print_row(void *ctx, u64 seq, u64 last, u64 term, const void *bytes,
		     size_t len)
{
	(void)ctx;
	printf("row %llu %llu %llu ", (unsigned long long)seq,
	       (unsigned long long)last, (unsigned long long)term);
	for (size_t i = 0; i < len; i++)
		printf("%02x", ((const u8 *)bytes)[i]);
	printf("\n");
	return 0;
}

static int run(struct pgjournal *pj, char **w, int n)
{
	u64 v = 0;
	if (!strcmp(w[0], "acquire") && n == 2) {
		int ret = pgjournal_acquire(pj, w[1], "", &v);
		if (ret == 0)
			printf("ok %llu\n", (unsigned long long)v);
		return ret;
	}
	if (!strcmp(w[0], "append") && n == 5) {
		long len = unhex(w[4]);
		if (len < 0)
			return -EINVAL;
		int ret = pgjournal_append(pj, word_u64(w[1]), word_u64(w[2]),
					   word_u64(w[3]), w[4], (size_t)len);
		if (ret == 0)
			printf("ok\n");
		return ret;
	}
	if (!strcmp(w[0], "renew") && n == 2) {
		int ret = pgjournal_renew(pj, word_u64(w[1]));
		if (ret == 0)
			printf("ok\n");
		return ret;
	}
	if (!strcmp(w[0], "last") && n == 1) {
		int ret = pgjournal_last_seq(pj, &v);
		if (ret == 0)
			printf("ok %llu\n", (unsigned long long)v);
		return ret;
	}
	if (!strcmp(w[0], "read") && n == 2) {
		int ret = pgjournal_read(pj, word_u64(w[1]), print_row, NULL);
		if (ret == 0)
			printf("ok\n");
		return ret;
	}
	return -EINVAL;
}

int main(void)
{
	const char *conninfo = getenv("TPW_PGJOURNAL_CONNINFO");
	struct pgjournal_options o = {
		.lease_ms = env_u32("TPW_PGJOURNAL_LEASE_MS"),
		.reconnect_ms = env_u32("TPW_PGJOURNAL_RECONNECT_MS"),
	};
	struct pgjournal *pj = NULL;
	const char *err = NULL;
	if (!conninfo) {
		printf("err %d TPW_PGJOURNAL_CONNINFO is not set\n", -EINVAL);
		return 2;
	}
	int ret = pgjournal_open(&pj, conninfo, &o, &err);
	if (ret < 0) {
		printf("err %d %s\n", ret, err);
		return 1;
	}
	printf("ok open\n");
	fflush(stdout);
	char *line = malloc(LINE_BYTES_MAX);
	while (line && fgets(line, (int)LINE_BYTES_MAX, stdin)) {
		char *w[WORDS_MAX], *save = NULL;
		int n = 0;
		for (char *t = strtok_r(line, " \n", &save); t && n < WORDS_MAX;
		     t = strtok_r(NULL, " \n", &save))
			w[n++] = t;
		if (n == 0)
			continue;
		if (!strcmp(w[0], "quit"))
			break;
		ret = run(pj, w, n);
		if (ret == -EINVAL && !strcmp(pgjournal_error(pj), ""))
			printf("err %d bad command\n", ret);
		else if (ret < 0)
			printf("err %d %s\n", ret, pgjournal_error(pj));
		fflush(stdout);
	}
	free(line);
	pgjournal_close(pj);
	return 0;
}
