/*
 * cmd_recover.c - `tpwallet recover`: recovery offline, as `serve` would
 * run it at start-up, and what it recovered as one JSON line (issue 20:
 * the crash explorer checks every crash state with it, thousands of
 * times, where starting a server and asking it would take seconds each).
 *
 *   recover --check DATA     recover DATA (a copy of it by default, in
 *                            $TMPDIR, so DATA is never written and may be
 *                            served meanwhile) and print the journal seq
 *                            reached, the state digest and the balances
 *                            summed over every account;
 *   recover --digests DATA   replay DATA's journal record by record and
 *                            print the digest after each one: the digest
 *                            of every prefix of the journal, which a
 *                            recovered state must equal one of.
 *
 * The settings that change recovery (store, journal_archive_dir,
 * journal_segment_bytes) come from the environment or --config, as for
 * serve.  Exit status: 0 recovered and debits equal credits, 1 recovered
 * with debits unequal to credits (or a sum past 2^128), 2 usage, 65 the
 * data directory cannot be recovered (serve would refuse to start: the
 * reason is the JSON's "error").
 */
#include "cli/cli.h"
#include "core/ledger.h"
#include "core/state.h"
#include "core/strerror.h"
#include "core/u128.h"
#include "engine/audit.h"
#include "engine/engine.h"
#include "log/journal.h"
#include "log/journal_reader.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet recover --check|--digests [options] DATA\n\n"
		"  --check    recover DATA as serve would at start-up and "
		"print "
		"one JSON\n             line: ok, seq (the last journal record "
		"recovered), digest\n             (the state digest, hex), "
		"accounts, the four balance sums and\n             balanced "
		"(debits equal credits, pending and posted); or\n"
		"             ok false and the error serve would refuse with\n"
		"  --digests  replay DATA's journal and print {\"seq\",\"digest"
		"\"} after each\n             record, one JSON line each\n\n"
		"options:\n"
		"  --in-place     recover DATA itself (may cut a torn tail, as "
		"serve does);\n                 by default a copy in $TMPDIR "
		"is recovered and DATA is\n                 never written\n"
		"  --config FILE  settings (store, journal_archive_dir, "
		"journal_segment_bytes)\n\n"
		"Exit 0 recovered and balanced, 1 debits differ from credits, "
		"2 usage errors,\n65 the data directory cannot be recovered. "
		"See docs/cli.md.\n\n"
		"Example:\n"
		"  tpwallet recover --check data\n");
}

/* ---- a private copy of DATA ------------------------------------------- */

static const char *copy_from;
static size_t copy_from_len;
static const char *copy_to;

static int copy_file(const char *from, const char *to, mode_t mode)
{
	FILE *in = fopen(from, "rb");
	int ret = 0;
	if (!in)
		return errno == ENOENT ? 0 : -errno; /* gone meanwhile */
	FILE *out = fopen(to, "wb");
	if (!out) {
		ret = -errno;
		fclose(in);
		return ret;
	}
	char buf[1 << 16];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			ret = -EIO;
			break;
		}
	if (ferror(in))
		ret = -EIO;
	fclose(in);
	if (fclose(out) != 0 && ret == 0)
		ret = -EIO;
	if (ret == 0 && chmod(to, mode & 07777) != 0)
		ret = -errno;
	return ret;
}

static int copy_one(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	char to[PATH_MAX];
	(void)ftw;
	int n = snprintf(to, sizeof(to), "%s%s", copy_to, path + copy_from_len);
	if (n < 0 || (size_t)n >= sizeof(to))
		return -ENAMETOOLONG;
	if (type == FTW_D)
		return mkdir(to, st->st_mode & 07777) == 0 || errno == EEXIST
			       ? 0
			       : -errno;
	if (type == FTW_F)
		return copy_file(path, to, st->st_mode);
	return 0; /* symbolic links and the unreadable: not data */
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -errno;
}

/* ---- --check ----------------------------------------------------------- */

static void put_u128(json_t *o, const char *key, u128 v)
{
	char buf[U128_DEC_BYTES];
	u128_format_dec(v, buf);
	json_object_set_new(o, key, json_string(buf));
}

static void put_digest(json_t *o, const u8 d[32])
{
	char hex[65];
	sodium_bin2hex(hex, sizeof(hex), d, 32);
	json_object_set_new(o, "digest", json_string(hex));
}

static int print_line(json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return -ENOMEM;
	puts(text);
	free(text);
	return 0;
}

static int check(const struct settings *s, const char *dir)
{
	struct audit_covered covered = {0};
	json_t *o = json_object();
	const char *err = NULL;
	struct engine *e = NULL;
	int status = EXIT_DATA;

	if (!o)
		return EXIT_SOFTWARE;
	int ret = audit_covered_size(dir, &covered);
	if (ret == 0) {
		struct engine_options eo = {
			.data_dir = dir,
			.snapshot_every_records = s->snapshot_every,
			.store = s->store != 0,
			.cache_bytes = s->cache_bytes,
			.segment_bytes = s->journal_segment_bytes,
			.archive_dir = s->journal_archive_dir[0]
					       ? s->journal_archive_dir
					       : NULL,
			.covered_seq = covered.size,
			.quiet = true,
		};
		ret = engine_open(&e, &eo, &err);
	} else {
		err = "cannot read the audit files";
	}
	if (ret < 0) {
		json_object_set_new(o, "ok", json_false());
		json_object_set_new(
			o, "error",
			json_string(err ? err : tpw_strerror(-ret)));
		print_line(o);
		return EXIT_DATA;
	}
	u8 digest[32];
	struct ledger_totals t;
	engine_digest(e, digest);
	const struct ledger *l = engine_read_begin(e);
	ledger_totals(l, &t);
	engine_read_end(e);
	u64 seq = engine_durable_seq(e);
	engine_close(e);

	bool balanced = !t.overflow && t.debits_pending == t.credits_pending &&
			t.debits_posted == t.credits_posted;
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "seq", json_integer((json_int_t)seq));
	put_digest(o, digest);
	json_object_set_new(o, "accounts",
			    json_integer((json_int_t)t.accounts));
	put_u128(o, "debits_pending", t.debits_pending);
	put_u128(o, "debits_posted", t.debits_posted);
	put_u128(o, "credits_pending", t.credits_pending);
	put_u128(o, "credits_posted", t.credits_posted);
	json_object_set_new(o, "balanced", json_boolean(balanced));
	status = print_line(o) < 0 ? EXIT_SOFTWARE : balanced ? 0 : 1;
	return status;
}

/* ---- --digests --------------------------------------------------------- */

static int digests(const struct settings *s, const char *dir)
{
	struct journal_reader *rd = NULL;
	struct state *st = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	u32 *results = NULL;
	int ret, status = EXIT_DATA;
	u64 key;

	randombytes_buf(&key, sizeof(key));
	ledger_set_hash_key(key);
	st = state_new(&(struct ledger_options){0});
	ret = st ? journal_reader_open(&rd, dir, 1) : -ENOMEM;
	if (ret < 0) {
		fprintf(stderr, "tpwallet recover: %s: %s\n", dir,
			tpw_strerror(-ret));
		goto cleanup;
	}
	if (s->journal_archive_dir[0])
		journal_reader_archive(rd, s->journal_archive_dir);
	while ((ret = journal_reader_next(rd, &r, &raw, &raw_bytes)) == 1) {
		u32 events = 0;
		if (state_check(r.type, r.payload, r.payload_bytes, &events) !=
		    0) {
			ret = -EBADMSG;
			break;
		}
		u32 *grown = realloc(results, sizeof(u32) * (events + 1u));
		if (!grown) {
			ret = -ENOMEM;
			break;
		}
		results = grown;
		ret = state_apply(st, r.type, r.timestamp, r.payload,
				  r.payload_bytes, results);
		if (ret < 0)
			break;
		u8 d[32];
		state_digest(st, d);
		json_t *o = json_object();
		if (!o) {
			ret = -ENOMEM;
			break;
		}
		json_object_set_new(o, "seq", json_integer((json_int_t)r.seq));
		put_digest(o, d);
		if ((ret = print_line(o)) < 0)
			break;
	}
	if (ret < 0) {
		const char *why = journal_reader_error(rd);
		fprintf(stderr, "tpwallet recover: %s: %s\n", dir,
			why && why[0] ? why : tpw_strerror(-ret));
		goto cleanup;
	}
	status = 0;
cleanup:
	free(results);
	if (rd)
		journal_reader_close(rd);
	if (st)
		state_free(st);
	return status;
}

int cmd_recover(int argc, char **argv)
{
	static const struct option opts[] = {
		{"check", no_argument, NULL, 'C'},
		{"digests", no_argument, NULL, 'D'},
		{"in-place", no_argument, NULL, 'I'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	struct settings s;
	int c, mode = 0;
	bool in_place = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'C':
		case 'D': mode = c; break;
		case 'I': in_place = true; break;
		case 'c': config = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!mode || optind + 1 != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (settings_load(&s, config) < 0 ||
	    settings_set(&s, "data", argv[optind]) < 0)
		return EXIT_USAGE;
	settings_finish(&s);
	struct stat st;
	if (stat(s.data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "tpwallet recover: %s: not a directory\n",
			s.data_dir);
		return EXIT_DATA;
	}
	if (mode == 'D')
		return digests(&s, s.data_dir);
	if (in_place)
		return check(&s, s.data_dir);

	const char *tmp = getenv("TMPDIR");
	char copy[PATH_MAX];
	snprintf(copy, sizeof(copy), "%s/tpwallet-recover-XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(copy)) {
		fprintf(stderr, "tpwallet recover: %s: %s\n", copy,
			tpw_strerror(errno));
		return EXIT_SOFTWARE;
	}
	copy_from = s.data_dir;
	copy_from_len = strlen(s.data_dir);
	copy_to = copy;
	int ret = nftw(s.data_dir, copy_one, 32, FTW_PHYS);
	int status;
	if (ret != 0) {
		fprintf(stderr, "tpwallet recover: cannot copy %s to %s: %s\n",
			s.data_dir, copy, tpw_strerror(ret < 0 ? -ret : EIO));
		status = EXIT_SOFTWARE;
	} else {
		status = check(&s, copy);
	}
	nftw(copy, remove_one, 32, FTW_DEPTH | FTW_PHYS);
	return status;
}
