/*
 * formats.c - the formats this release reads and writes, and what a data
 * directory holds (formats.h; docs/operations.md, "Upgrades and
 * rollbacks").
 *
 * The inventory maps each journal segment and walks its records by their
 * frames (journal_frame: magic, size, checksum), whether or not this
 * release reads their version and type: that is the question asked.
 * After the last whole record of a segment, zero bytes are its unused
 * preallocation; other bytes in the last segment are a torn write (the
 * next start cuts them), in any other segment damage, refused.
 */
#include "log/formats.h"

#include "core/admin.h"
#include "core/command.h"
#include "core/strerror.h"
#include "crypto/keyring.h"
#include "log/auditstate.h"
#include "log/datadir.h"
#include "log/journal.h"
#include "log/seqdir.h"
#include "log/snapshot.h"
#include "log/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

const struct format_info FORMATS[FORMAT_COUNT] = {
	[FORMAT_JOURNAL_RECORD] = {"journal_record", "journal record versions",
				   JOURNAL_VERSION, true, NULL},
	[FORMAT_JOURNAL_TYPE] = {"journal_type", "journal record types", 0,
				 true, NULL},
	[FORMAT_COMMAND_KIND] = {"command_kind", "journal command kinds", 0,
				 true, NULL},
	[FORMAT_ADMIN_REQUEST_OP] = {"admin_request_op",
				     "dual-control request operations", 0, true,
				     NULL},
	[FORMAT_SNAPSHOT] = {"snapshot", "snapshot versions", SNAPSHOT_VERSION,
			     false,
			     "skipped: the journal replays from the start "
			     "(a slower start)"},
	[FORMAT_STORE] = {"store", "store version", STORE_FORMAT_VERSION, true,
			  NULL},
	[FORMAT_AUDIT_STATE] = {"audit_state", "audit state version",
				AUDITSTATE_VERSION, false,
				"rebuilt from the journal at start"},
	[FORMAT_KEY_FILE] = {"key_file", "key file versions", 0, true, NULL},
	[FORMAT_VAULT_KEYSTORE] = {"vault_keystore",
				   "card vault key store version",
				   VAULT_KEYSTORE_VERSION, true, NULL},
};

bool format_reads(enum format_id f, unsigned v)
{
	switch (f) {
	case FORMAT_JOURNAL_RECORD: return v == 1 || v == JOURNAL_VERSION;
	case FORMAT_JOURNAL_TYPE:
		return v >= JOURNAL_CREATE_ACCOUNTS && v <= JOURNAL_COMMAND;
	case FORMAT_COMMAND_KIND: return v <= 0xffff && command_find((u16)v);
	case FORMAT_ADMIN_REQUEST_OP:
		return v == ADMIN_OP_POLICY_SET || v == ADMIN_OP_ROLE;
	case FORMAT_SNAPSHOT: return v == SNAPSHOT_VERSION;
	case FORMAT_STORE: return v == STORE_FORMAT_VERSION;
	case FORMAT_AUDIT_STATE: return v == AUDITSTATE_VERSION;
	case FORMAT_KEY_FILE:
		return v >= KEYRING_KEYFILE_VERSION &&
		       v <= KEYRING_KEYFILE_VERSION_IN_TOKEN;
	case FORMAT_VAULT_KEYSTORE: return v == VAULT_KEYSTORE_VERSION;
	case FORMAT_COUNT: break;
	}
	return false;
}

json_t *formats_json(void)
{
	json_t *o = json_object();

	for (unsigned f = 0; o && f < FORMAT_COUNT; f++) {
		json_t *reads = json_array(), *row = json_object();
		if (!reads || !row) {
			json_decref(reads);
			json_decref(row);
			json_decref(o);
			return NULL;
		}
		for (unsigned v = 0; v < FORMAT_VALUES; v++)
			if (format_reads(f, v))
				json_array_append_new(reads, json_integer(v));
		json_object_set_new(row, "reads", reads);
		if (FORMATS[f].writes)
			json_object_set_new(row, "writes",
					    json_integer(FORMATS[f].writes));
		json_object_set_new(o, FORMATS[f].name, row);
	}
	return o;
}

/* ---- the inventory ------------------------------------------------------ */

struct walk {
	struct format_inventory *inv;
	void (*progress)(void *ctx, u64 done, u64 total);
	void *ctx;
	u64 done, total;
	struct timespec last;
	char *err;
	size_t err_len;
};

static void mark(struct format_inventory *inv, enum format_id f, unsigned v)
{
	inv->seen[f][v / 8] |= (u8)(1u << (v % 8));
	inv->count[f]++;
}

static int say(struct walk *w, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int say(struct walk *w, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->err, w->err_len, fmt, ap);
	va_end(ap);
	return ret;
}

static void tick(struct walk *w)
{
	struct timespec now;

	if (!w->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - w->last.tv_sec < 1)
		return;
	w->last = now;
	w->progress(w->ctx, w->done, w->total);
}

static bool all_zero(const u8 *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static u32 le32(const u8 *p)
{
	return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

/* The records of one segment file. */
static int walk_segment(struct walk *w, const char *path, bool last)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return say(w, -errno, "%s: %s", path, tpw_strerror(errno));
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return say(w, -e, "%s: %s", path, tpw_strerror(e));
	}
	size_t len = (size_t)st.st_size;
	if (len == 0) {
		close(fd);
		return 0;
	}
	const u8 *buf = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (buf == MAP_FAILED)
		return say(w, -errno, "%s: %s", path, tpw_strerror(errno));
	madvise((void *)buf, len, MADV_SEQUENTIAL);

	size_t off = 0;
	int ret = 0;
	while (off < len) {
		struct journal_frame f;
		long n = journal_frame(buf + off, len - off, &f);
		if (n <= 0)
			break;
		mark(w->inv, FORMAT_JOURNAL_RECORD, f.version);
		mark(w->inv, FORMAT_JOURNAL_TYPE, f.type);
		if (f.type == JOURNAL_COMMAND &&
		    f.size >= JOURNAL_HEADER_BYTES + 2) {
			const u8 *k = buf + off + JOURNAL_HEADER_BYTES;
			unsigned kind = (unsigned)k[0] | (unsigned)k[1] << 8;
			mark(w->inv, FORMAT_COMMAND_KIND, kind);
			/* A request's operation: its command header, then
			 * struct admin_request_cmd's op. */
			size_t at = sizeof(struct command_header) +
				    offsetof(struct admin_request_cmd, op);
			if (kind == ADMIN_CMD_REQUEST &&
			    f.size >= JOURNAL_HEADER_BYTES + at + 4)
				mark(w->inv, FORMAT_ADMIN_REQUEST_OP,
				     le32(k + at));
		}
		w->inv->records++;
		w->inv->last_seq = f.seq;
		off += (size_t)n;
		w->done += (u64)n;
		tick(w);
	}
	if (off < len && !all_zero(buf + off, len - off)) {
		if (last)
			w->inv->tail_bytes = len - off;
		else
			ret = say(w, -EBADMSG,
				  "%s: no whole record at offset %zu (after "
				  "seq %llu): the segment is damaged (tpwallet "
				  "doctor says more)",
				  path, off,
				  (unsigned long long)w->inv->last_seq);
	}
	w->done += len - off;
	munmap((void *)buf, len);
	return ret;
}

/* The segments of one directory, in seq order; *n set (0 when the
 * directory does not exist). */
static int list_segments(struct walk *w, const char *dir, u64 **seqs, size_t *n)
{
	DIR *d = opendir(dir);

	*seqs = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0
				       : say(w, -errno, "%s: %s", dir,
					     tpw_strerror(errno));
	int ret = seqdir_list(d, journal__parse_segment_name, seqs, n);
	closedir(d);
	if (ret < 0)
		return say(w, ret, "%s: %s", dir, tpw_strerror(-ret));
	return 0;
}

static int segment_path(char *out, size_t cap, const char *dir, u64 seq)
{
	int n = snprintf(out, cap, "%s/" JOURNAL_SEGMENT_NAME_FMT, dir,
			 (unsigned long long)seq);
	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static u64 file_bytes(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (u64)st.st_size : 0;
}

static int walk_journal(struct walk *w, const char *data_dir,
			const char *archive_dir)
{
	char dir[4096], path[4200];
	u64 *live = NULL, *old = NULL;
	size_t n_live = 0, n_old = 0;
	int ret;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", data_dir,
			     DATADIR_JOURNAL) >= sizeof(dir))
		return say(w, -ENAMETOOLONG, "%s: name too long", data_dir);
	ret = list_segments(w, dir, &live, &n_live);
	if (ret == 0 && archive_dir)
		ret = list_segments(w, archive_dir, &old, &n_old);
	/* The archive's segments come first; one in both (a move a crash
	 * interrupted) is read from DATA/journal. */
	for (size_t i = 0; ret == 0 && i < n_old; i++)
		if ((n_live == 0 || old[i] < live[0]) &&
		    segment_path(path, sizeof(path), archive_dir, old[i]) == 0)
			w->total += file_bytes(path);
	for (size_t i = 0; ret == 0 && i < n_live; i++)
		if (segment_path(path, sizeof(path), dir, live[i]) == 0)
			w->total += file_bytes(path);
	for (size_t i = 0; ret == 0 && i < n_old; i++) {
		if (n_live && old[i] >= live[0])
			continue;
		ret = segment_path(path, sizeof(path), archive_dir, old[i]);
		if (ret == 0)
			ret = walk_segment(w, path, false);
	}
	for (size_t i = 0; ret == 0 && i < n_live; i++) {
		ret = segment_path(path, sizeof(path), dir, live[i]);
		if (ret == 0)
			ret = walk_segment(w, path, i + 1 == n_live);
	}
	if (ret == -ENAMETOOLONG && !w->err[0])
		say(w, ret, "%s: name too long", dir);
	free(live);
	free(old);
	return ret;
}

/* The first n bytes of DIR/name into buf: n, 0 when absent, -errno. */
static int head_of(const char *dir, const char *name, u8 *buf, size_t n)
{
	char path[4200];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ssize_t got = read(fd, buf, n);
	int e = errno;
	close(fd);
	return got < 0 ? -e : (int)got;
}

/* Files of DIR (DATA/<sub>) whose names end in suffix: the version each
 * head says (version(head, got) < 0: not one of them, left out). */
static int walk_files(struct walk *w, const char *data_dir, const char *sub,
		      const char *suffix, enum format_id f, size_t head,
		      int (*version)(const u8 *h, size_t n))
{
	char dir[4096];
	u8 buf[16];
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", data_dir, sub) >=
	    sizeof(dir))
		return say(w, -ENAMETOOLONG, "%s: name too long", data_dir);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0
				       : say(w, -errno, "%s: %s", dir,
					     tpw_strerror(errno));
	struct dirent *de;
	int ret = 0;
	size_t sl = strlen(suffix);
	while (ret == 0 && (de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		if (nl <= sl || strcmp(de->d_name + nl - sl, suffix) != 0)
			continue;
		int got = head_of(dir, de->d_name, buf, head);
		if (got < 0) {
			ret = say(w, got, "%s/%s: %s", dir, de->d_name,
				  tpw_strerror(-got));
			break;
		}
		int v = version(buf, (size_t)got);
		if (v >= 0)
			mark(w->inv, f, (unsigned)v);
	}
	closedir(d);
	return ret;
}

static int snapshot_version(const u8 *h, size_t n)
{
	return n >= 12 && memcmp(h, "TPWSNAP1", 8) == 0 ? (int)le32(h + 8) : -1;
}

static int key_file_version(const u8 *h, size_t n)
{
	return keyring_image_version(h, n);
}

/* DATA/<name> whose head is magic (8 bytes) and a u32 version. */
static int tagged_file(struct walk *w, const char *data_dir, const char *name,
		       const char *magic, enum format_id f)
{
	u8 buf[12];
	int got = head_of(data_dir, name, buf, sizeof(buf));
	if (got < 0)
		return say(w, got, "%s/%s: %s", data_dir, name,
			   tpw_strerror(-got));
	if (got == (int)sizeof(buf) && memcmp(buf, magic, 8) == 0)
		mark(w->inv, f, le32(buf + 8));
	return 0;
}

static int walk_store(struct walk *w, const char *data_dir)
{
	char dir[4096];
	struct stat st;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", data_dir,
			     DATADIR_STORE) >= sizeof(dir))
		return say(w, -ENAMETOOLONG, "%s: name too long", data_dir);
	if (stat(dir, &st) != 0)
		return errno == ENOENT ? 0
				       : say(w, -errno, "%s: %s", dir,
					     tpw_strerror(errno));
	struct store *s = NULL;
	const char *why = NULL;
	struct store_options o = {.dir = dir, .read_only = true};
	int ret = store_open(&o, &s, &why);
	if (ret == -EPROTO) {
		w->inv->store_unread = true;
		snprintf(w->inv->store_why, sizeof(w->inv->store_why), "%s",
			 why ? why : "unknown store format version");
		return 0;
	}
	if (ret < 0)
		return say(w, ret, "%s: %s", dir,
			   why ? why : tpw_strerror(-ret));
	struct store_meta m;
	store_meta(s, &m);
	mark(w->inv, FORMAT_STORE, m.version);
	store_close(s);
	return 0;
}

int formats_inventory(const char *data_dir, const char *archive_dir,
		      struct format_inventory *inv,
		      void (*progress)(void *ctx, u64 done, u64 total),
		      void *ctx, char *err, size_t err_len)
{
	struct walk w = {.inv = inv,
			 .progress = progress,
			 .ctx = ctx,
			 .err = err,
			 .err_len = err_len};
	int ret;

	memset(inv, 0, sizeof(*inv));
	if (err_len)
		err[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &w.last);
	ret = walk_journal(&w, data_dir, archive_dir);
	if (ret == 0)
		ret = walk_files(&w, data_dir, DATADIR_SNAPSHOTS, ".snap",
				 FORMAT_SNAPSHOT, 12, snapshot_version);
	if (ret == 0)
		ret = walk_files(&w, data_dir, DATADIR_KEYS, ".key",
				 FORMAT_KEY_FILE, 8, key_file_version);
	if (ret == 0)
		ret = tagged_file(&w, data_dir, AUDITSTATE_PATH, "TPWAUDS1",
				  FORMAT_AUDIT_STATE);
	if (ret == 0)
		ret = tagged_file(&w, data_dir, VAULT_KEYSTORE_PATH,
				  VAULT_KEYSTORE_MAGIC, FORMAT_VAULT_KEYSTORE);
	if (ret == 0)
		ret = walk_store(&w, data_dir);
	if (ret == 0 && progress)
		progress(ctx, w.done, w.total);
	return ret;
}
