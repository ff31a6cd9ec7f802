/*
 * cmd_restore.c - `tpwallet restore`: a data directory built from a
 * backup location (issue 14, docs/operations.md "Backups"), to the newest
 * point, to an entry index or to a time (point-in-time restore).
 *
 * The backup chosen is the newest whose store checkpoint (or snapshot)
 * is at or below the target, so the restore replays only the journal
 * after it.  Everything happens in NEWDATA.tmp-<pid> beside NEWDATA:
 * every file unpacked and checked (backup_unpack: checksums,
 * authentication, every segment decoded, the Merkle tree against the
 * signed checkpoint), the journal cut after the target entry, the state
 * recovered as `serve` would (the store opened at its checkpoint, the
 * journal after it replayed into it), and only then the directory
 * renamed to NEWDATA: an interrupted restore leaves nothing that looks
 * like a data directory.  The restored directory holds no private key and
 * no KEK (a backup never does): its first `serve` makes a new signing key
 * under the KEK it is given, or under NEWDATA.kek, which restore makes
 * when neither that file nor TPWALLET_KEK exists.
 *
 * Exit status: 0 restored, 1 refused (a fault in the backup, NEWDATA not
 * empty, a target outside what the location holds), 2 usage, 70 an
 * internal failure.
 */
#include "cli/backup.h"
#include "cli/cli.h"
#include "core/parse.h"
#include "core/strerror.h"
#include "engine/engine.h"
#include "log/datadir.h"
#include "log/fsdir.h"
#include "log/fsfile.h"
#include "log/journal.h"
#include "log/journal_reader.h"
#include "log/keyfile.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static u64 mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000ull + (u64)ts.tv_nsec / 1000000ull;
}

/* The last entry of dir's journal with a timestamp at or below t_ns (0:
 * none). */
static u64 seq_at_time(const char *dir, u64 t_ns)
{
	struct journal_reader *rd = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	u64 seq = 0;

	if (journal_reader_open(&rd, dir, 1) < 0)
		return 0;
	while (journal_reader_next(rd, &r, &raw, &raw_bytes) == 1 &&
	       r.timestamp <= t_ns)
		seq = r.seq;
	journal_reader_close(rd);
	return seq;
}

/* Cut dir's journal after entry seq: the segment holding it truncated
 * after it, later segments removed.  0 or -errno. */
static int cut_journal(const char *dir, u64 seq, u64 *time_ns)
{
	struct journal_reader *rd = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	u64 seg = 0, off = 0;
	int ret = journal_reader_open(&rd, dir, seq);

	if (ret < 0)
		return ret;
	ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
	if (ret == 1 && r.seq == seq) {
		journal_reader_position(rd, &seg, &off);
		*time_ns = r.timestamp;
	} else
		ret = -EBADMSG;
	journal_reader_close(rd);
	if (ret < 0)
		return ret;
	char jdir[PATH_MAX], path[PATH_MAX];
	pathf(jdir, sizeof(jdir), "%s/" DATADIR_JOURNAL, dir);
	pathf(path, sizeof(path), "%s/" JOURNAL_SEGMENT_NAME_FMT, jdir,
	      (unsigned long long)seg);
	if (truncate(path, (off_t)(off + raw_bytes)) != 0)
		return -errno;
	DIR *d = opendir(jdir);
	struct dirent *de;
	ret = d ? 0 : -errno;
	while (d && (de = readdir(d))) {
		u64 first;
		if (journal__parse_segment_name(de->d_name, &first) &&
		    first > seq) {
			pathf(path, sizeof(path), "%s/%s", jdir, de->d_name);
			if (unlink(path) != 0)
				ret = -errno;
		}
	}
	if (d)
		closedir(d);
	return ret ? ret : fsdir_sync(jdir);
}

/* RFC 3339 in UTC ("2026-12-07T10:00:00Z", fraction allowed) -> ns. */
static int parse_time(const char *s, u64 *ns)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	u64 frac = 0, scale = 1000000000ull;
	if (!p)
		return -EINVAL;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9' && scale > 1) {
			scale /= 10;
			frac += (u64)(*p - '0') * scale;
			p++;
		}
	}
	if (strcmp(p, "Z") != 0)
		return -EINVAL;
	time_t t = timegm(&tm);
	if (t < 0)
		return -EINVAL;
	*ns = (u64)t * 1000000000ull + frac;
	return 0;
}

/* The newest backup whose base is at or below target, and that reaches
 * it; NULL when none. */
static const struct backup_entry *choose(const struct backup_location *l,
					 u64 target)
{
	for (size_t i = l->ncomplete; i-- > 0;)
		if (l->e[i].m.base_seq <= target &&
		    target <= l->e[i].m.last_seq)
			return &l->e[i];
	return NULL;
}

/* The entries each backup restores to, "a..b, c..d", into out. */
static void ranges(const struct backup_location *l, char *out, size_t n)
{
	size_t k = 0;
	out[0] = '\0';
	for (size_t i = 0; i < l->ncomplete && k + 64 < n; i++) {
		u64 b = l->e[i].m.base_seq ? l->e[i].m.base_seq : 1;
		pathf(out + k, n - k, "%s%llu..%llu", i ? ", " : "",
		      (unsigned long long)b,
		      (unsigned long long)l->e[i].m.last_seq);
		k += strlen(out + k);
	}
}

static int recover(const char *dir, bool store, u64 *seq, u8 digest[32],
		   const char **why)
{
	struct settings s;
	struct engine *e = NULL;
	if (settings_load(&s, NULL) < 0)
		return *why = "settings", -EINVAL;
	settings_finish(&s);
	struct engine_options eo = {
		.data_dir = dir,
		.snapshot_every_records = s.snapshot_every,
		.store = store,
		.cache_bytes = s.cache_bytes,
		.segment_bytes = s.journal_segment_bytes,
		.quiet = true,
	};
	int ret = engine_open(&e, &eo, why);
	if (ret < 0)
		return ret;
	engine_digest(e, digest);
	*seq = engine_durable_seq(e);
	engine_close(e);
	return 0;
}

/* Backup e unpacked and checked into tmp (made here; emptied on
 * failure, which leaves tmp[0] as it is for the caller's cleanup). */
static int unpack(const struct restore_request *rq,
		  const struct backup_entry *e, char *tmp)
{
	if (mkdir(tmp, 0700) != 0) {
		fprintf(stderr, "tpwallet restore: %s: %s\n", tmp,
			tpw_strerror(errno));
		tmp[0] = '\0';
		return EXIT_SOFTWARE;
	}
	if (!rq->quiet)
		fprintf(stderr, "tpwallet restore: unpacking and checking %s\n",
			e->id);
	if (backup_unpack(rq->loc, e, rq->key, tmp, rq->quiet) != 0) {
		fprintf(stderr,
			"tpwallet restore: refused: %s is damaged (above); "
			"nothing was written to %s\n",
			e->id, rq->data);
		return 1;
	}
	return 0;
}

int backup_restore(const struct restore_request *rq, struct restore_result *out)
{
	struct backup_location l;
	const struct backup_entry *e = NULL;
	char tmp[PATH_MAX], kek[PATH_MAX];
	struct stat st;
	bool empty_dir = false;
	const char *why = NULL;
	int ret;
	u64 t0 = mono_ms();

	memset(out, 0, sizeof(*out));
	tmp[0] = '\0';
	if (stat(rq->data, &st) == 0) {
		DIR *d = S_ISDIR(st.st_mode) ? opendir(rq->data) : NULL;
		struct dirent *de;
		empty_dir = d != NULL;
		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				empty_dir = false;
		if (d)
			closedir(d);
		if (!empty_dir) {
			fprintf(stderr,
				"tpwallet restore: %s exists and is not an "
				"empty directory: restore never writes over "
				"data\n",
				rq->data);
			return 1;
		}
	}
	ret = backup_location_read(rq->loc, &l);
	if (ret != 0) {
		fprintf(stderr, "tpwallet restore: %s: %s\n", rq->loc,
			tpw_strerror(-ret));
		backup_location_free(&l);
		return EXIT_USAGE;
	}
	if (l.ncomplete == 0) {
		fprintf(stderr, "tpwallet restore: %s holds no backup\n",
			rq->loc);
		ret = 1;
		goto cleanup;
	}
	if (backup_check_chain(&l, rq->key) != 0) {
		fprintf(stderr, "tpwallet restore: refused: the location's "
				"manifests do not hold together (above)\n");
		ret = 1;
		goto cleanup;
	}
	const struct bkmanifest *newest = &l.e[l.ncomplete - 1].m;
	u64 target = rq->to_index ? rq->to_index : newest->last_seq;
	pathf(tmp, sizeof(tmp), "%s.tmp-%ld", rq->data, (long)getpid());
	if (rq->to_time_ns) {
		/* The time's entry, from the newest backup's journal. */
		e = &l.e[l.ncomplete - 1];
		if ((ret = unpack(rq, e, tmp)) != 0)
			goto cleanup;
		target = seq_at_time(tmp, rq->to_time_ns);
		if (target == 0) {
			fprintf(stderr,
				"tpwallet restore: no entry at or before that "
				"time (the first is entry 1)\n");
			ret = 1;
			goto cleanup;
		}
		if (e->m.base_seq > target) {
			fsdir_remove_tree(tmp);
			e = NULL;
		}
	}
	if (target > newest->last_seq) {
		fprintf(stderr,
			"tpwallet restore: refused: entry %llu is past the "
			"newest restorable point, entry %llu (%s)\n",
			(unsigned long long)target,
			(unsigned long long)newest->last_seq, newest->id);
		ret = 1;
		goto cleanup;
	}
	if (!e) {
		e = choose(&l, target);
		if (!e) {
			char r[1024];
			ranges(&l, r, sizeof(r));
			fprintf(stderr,
				"tpwallet restore: refused: entry %llu is in "
				"no backup's restorable range (each starts at "
				"its store checkpoint): %s\n",
				(unsigned long long)target, r);
			ret = 1;
			goto cleanup;
		}
		if ((ret = unpack(rq, e, tmp)) != 0)
			goto cleanup;
	}
	/* Laid out as a data directory: the marker; the journal cut at the
	 * target; no audit files (the restored server builds its tree from
	 * the journal and signs with its new key) and no key list. */
	char path[PATH_MAX];
	pathf(path, sizeof(path), "%s/keys.vkey", tmp);
	unlink(path);
	pathf(path, sizeof(path), "%s/" DATADIR_AUDIT, tmp);
	fsdir_remove_tree(path);
	ret = fsfile_replace(tmp, DATADIR_MARKER, DATADIR_MARKER_TEXT,
			     strlen(DATADIR_MARKER_TEXT));
	if (ret == 0)
		ret = cut_journal(tmp, target, &out->last_time_ns);
	if (ret != 0) {
		fprintf(stderr, "tpwallet restore: %s: %s\n", tmp,
			tpw_strerror(-ret));
		ret = EXIT_SOFTWARE;
		goto cleanup;
	}
	if (!rq->quiet)
		fprintf(stderr,
			"tpwallet restore: recovering to entry %llu (%llu "
			"entries after the %s)\n",
			(unsigned long long)target,
			(unsigned long long)(target - e->m.base_seq),
			e->m.base == BKMANIFEST_BASE_STORE ? "store checkpoint"
			: e->m.base == BKMANIFEST_BASE_SNAPSHOT
				? "snapshot"
				: "journal's start");
	ret = recover(tmp, e->m.base == BKMANIFEST_BASE_STORE, &out->seq,
		      out->digest, &why);
	if (ret == 0 && out->seq != target) {
		why = "recovered to another entry than the target";
		ret = -EBADMSG;
	}
	if (ret != 0) {
		fprintf(stderr,
			"tpwallet restore: refused: recovery failed: %s\n",
			why ? why : tpw_strerror(-ret));
		ret = 1;
		goto cleanup;
	}
	if (empty_dir && rmdir(rq->data) != 0) {
		fprintf(stderr, "tpwallet restore: %s: %s\n", rq->data,
			tpw_strerror(errno));
		ret = EXIT_SOFTWARE;
		goto cleanup;
	}
	if (rename(tmp, rq->data) != 0) {
		fprintf(stderr, "tpwallet restore: rename %s: %s\n", tmp,
			tpw_strerror(errno));
		ret = EXIT_SOFTWARE;
		goto cleanup;
	}
	tmp[0] = '\0';
	char parent[PATH_MAX];
	pathf(parent, sizeof(parent), "%s", rq->data);
	char *slash = strrchr(parent, '/');
	fsdir_sync(slash ? (slash == parent ? "/" : (*slash = '\0', parent))
			 : ".");
	pathf(kek, sizeof(kek), "%s.kek", rq->data);
	const char *env = getenv("TPWALLET_KEK");
	if ((!env || !env[0]) && access(kek, F_OK) != 0) {
		char err[256] = "";
		if (keyfile_kek_generate(kek, err, sizeof(err)) == 0)
			out->made_kek = true;
	}
	memcpy(out->backup_id, e->id, sizeof(out->backup_id));
	out->base = e->m.base;
	out->base_seq = e->m.base_seq;
	out->replayed = target - e->m.base_seq;
	out->store = e->m.base == BKMANIFEST_BASE_STORE;
	out->duration_ms = mono_ms() - t0;
	ret = 0;
cleanup:
	if (tmp[0])
		fsdir_remove_tree(tmp);
	backup_location_free(&l);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet restore --from LOC [--key-file K] --data "
		"NEWDATA\n"
		"                        [--to-index N | --to-time RFC3339] "
		"[--json]\n\n"
		"Build NEWDATA (absent or an empty directory) from the "
		"backups in LOC, to the\nnewest point, to entry N, or to the "
		"last entry at or before a time: the newest\nbackup whose "
		"store checkpoint is at or below the target, every file "
		"checked,\nthe journal cut after the target, the state "
		"recovered as serve would.  Then\nstart it with tpwallet "
		"serve --data NEWDATA (store = 1 when the backup has a\nstore; "
		"a new signing key is made under NEWDATA.kek or TPWALLET_KEK)."
		"\nExit 0 restored, 1 refused, 2 usage.  See docs/cli.md.\n\n"
		"Example:\n"
		"  tpwallet restore --from backups --key-file backup.key "
		"--data restored\n");
}

void backup_restore_print(const char *data, const struct restore_result *r,
			  bool json)
{
	char hex[65];
	sodium_bin2hex(hex, sizeof(hex), r->digest, 32);
	if (json) {
		json_t *o = json_pack(
			"{s:b,s:s,s:s,s:I,s:s,s:I,s:I,s:s,s:I,s:b,s:b}", "ok",
			1, "data", data, "backup", r->backup_id, "seq",
			(json_int_t)r->seq, "base",
			r->store      ? "store"
			: r->base_seq ? "snapshot"
				      : "none",
			"base_seq", (json_int_t)r->base_seq, "replayed",
			(json_int_t)r->replayed, "digest", hex, "duration_ms",
			(json_int_t)r->duration_ms, "store", r->store,
			"made_kek", r->made_kek);
		backup_print_json(o);
		return;
	}
	printf("restored %s to entry %llu from backup %s (base at %llu, %llu "
	       "entries replayed) in %.3f s; digest %s\n",
	       data, (unsigned long long)r->seq, r->backup_id,
	       (unsigned long long)r->base_seq, (unsigned long long)r->replayed,
	       (double)r->duration_ms / 1000.0, hex);
	if (r->store)
		printf("serve it with store = 1 (TPWALLET_STORE=1)\n");
	if (r->made_kek)
		printf("a new KEK was made at %s.kek: the restored server "
		       "makes a new signing key under it\n",
		       data);
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"key-file", required_argument, NULL, 'k'},
		{"data", required_argument, NULL, 'd'},
		{"to-index", required_argument, NULL, 'i'},
		{"to-time", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct restore_request rq = {0};
	struct restore_result res;
	const char *keyf = NULL;
	bool json = false;
	u8 key[32];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:k:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': rq.loc = optarg; break;
		case 'k': keyf = optarg; break;
		case 'd': rq.data = optarg; break;
		case 'i':
			if (parse_u64(optarg, UINT64_MAX, &rq.to_index) != 0 ||
			    rq.to_index == 0) {
				fprintf(stderr,
					"tpwallet restore: --to-index: an "
					"entry index (1, 2, ...)\n");
				return EXIT_USAGE;
			}
			break;
		case 't':
			if (parse_time(optarg, &rq.to_time_ns) != 0) {
				fprintf(stderr,
					"tpwallet restore: --to-time: RFC "
					"3339 in UTC, e.g. "
					"2026-12-07T10:00:00Z\n");
				return EXIT_USAGE;
			}
			break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!rq.loc || !rq.data || optind != argc ||
	    (rq.to_index && rq.to_time_ns)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (keyf && backup_key_load("restore", keyf, key) != 0)
		return EXIT_USAGE;
	rq.key = keyf ? key : NULL;
	/* "new/" is "new": the temporary is its sibling, never inside. */
	char data[PATH_MAX];
	if (pathf(data, sizeof(data), "%s", rq.data) != 0) {
		fprintf(stderr, "tpwallet restore: --data: path too long\n");
		return EXIT_USAGE;
	}
	for (size_t n = strlen(data); n > 1 && data[n - 1] == '/'; n--)
		data[n - 1] = '\0';
	rq.data = data;
	int ret = backup_restore(&rq, &res);
	sodium_memzero(key, sizeof(key));
	if (ret == 0)
		backup_restore_print(rq.data, &res, json);
	return ret;
}
