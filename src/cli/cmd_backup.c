/*
 * cmd_backup.c - `tpwallet backup`: an online full backup of a data
 * directory into a backup location, and the location's list and verify
 * (issue 14, docs/operations.md "Backups"); with backup.h, what restore
 * and drill share.
 *
 *   backup --data DATA --to LOC [--key-file K]   one backup, LOC/<id>/
 *   backup keygen --out K                        a new operator key
 *   backup list --from LOC [--json]              what LOC holds
 *   backup verify --from LOC [--key-file K]      every backup checked
 *
 * A backup is consistent at one journal seq L: the seq of the newest
 * signed audit checkpoint, waited for until it covers the store
 * checkpoint (or snapshot) taken first.  It holds that checkpoint, every
 * journal record 1..L in the segments they were written in (sealed ones
 * from DATA/journal or the archive directory; the newest cut at L), the
 * signed checkpoint of size L, the log's origin and its public keys as
 * note verifier keys (never a private key, never the KEK).  Each file is
 * sealed with libsodium's secretstream (XChaCha20-Poly1305, 64 KiB
 * chunks, the last tagged FINAL so a cut file is refused) under a key
 * derived from the operator key; the manifest, written last (temporary,
 * fsync, rename, directory fsync), lists every file's size and the
 * SHA-256 of its stored bytes, names the previous manifest's hash (the
 * chain) and carries a MAC under the operator key.  Nothing is ever
 * overwritten: a backup directory is created with mkdir and its files
 * with O_EXCL.
 *
 * Exit status: 0 done / verified, 1 a fault found or a refusal (another
 * server's location, a wrong key), 2 usage, 65 DATA unusable, 70 an
 * internal failure.
 */
#include "cli/backup.h"
#include "cli/cli.h"
#include "core/strerror.h"
#include "crypto/b64url.h"
#include "crypto/keyring.h"
#include "crypto/note.h"
#include "engine/history.h"
#include "log/datadir.h"
#include "log/fsdir.h"
#include "log/fsfile.h"
#include "log/journal.h"
#include "log/journal_reader.h"
#include "log/keyfile.h"
#include "log/snapshot.h"
#include "log/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define CHUNK_BYTES	   (64u << 10)
#define SEAL_ABYTES	   crypto_secretstream_xchacha20poly1305_ABYTES
#define SEAL_HEADER_BYTES  crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define KEY_FILE_BYTES_MAX 128u
#define VKEYS_FILE	   "keys.vkey"
#define CHECKPOINT_FILE	   "audit/checkpoints"
#define CHECKPOINT_WAIT_MS 30000u
#define PROGRESS_EVERY_MS  1000u
#define STORE_TRIES	   5
#define KDF_CONTEXT	   "tpwbkup1"
#define KDF_FILES	   1u
#define KDF_MAC		   2u
#define KDF_ID		   3u
#define LOCATION_MAX	   10000u

static u64 wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}

static u64 mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000ull + (u64)ts.tv_nsec / 1000000ull;
}

int pathf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

void backup_time_text(u64 ns, char out[32])
{
	time_t s = (time_t)(ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	size_t n = strlen(out);
	pathf(out + n, 32 - n, ".%03uZ", (unsigned)(ns / 1000000ull % 1000u));
}

/* ---- the operator key -------------------------------------------------- */

int backup_key_load(const char *cmd, const char *path, u8 key[32])
{
	struct stat st;
	char *text = NULL;
	size_t len = 0, klen = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "tpwallet %s: %s: %s\n", cmd, path,
			tpw_strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_USAGE;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077) != 0) {
		close(fd);
		fprintf(stderr,
			"tpwallet %s: %s: the key file must be a regular "
			"file of this user with mode 0600 or stricter (found "
			"%04o: chmod 600 %s)\n",
			cmd, path, (unsigned)(st.st_mode & 07777), path);
		return EXIT_USAGE;
	}
	int ret = fsfile_read_fd(fd, KEY_FILE_BYTES_MAX, &text, &len);
	close(fd);
	if (ret == 0 && len == 32) {
		memcpy(key, text, 32);
	} else if (ret == 0 && (len == 43 || (len == 44 && text[43] == '\n')) &&
		   b64url_decode(key, 32, text, 43, &klen) == 0 && klen == 32) {
		/* base64url text */
	} else {
		sodium_memzero(text ? text : (char *)key, text ? len : 32);
		free(text);
		fprintf(stderr,
			"tpwallet %s: %s: not a backup key (32 bytes, or 43 "
			"base64url characters: tpwallet backup keygen)\n",
			cmd, path);
		return EXIT_USAGE;
	}
	sodium_memzero(text, len);
	free(text);
	return 0;
}

void backup_key_id(const u8 key[32], u8 out[8])
{
	u8 sub[32];
	crypto_kdf_derive_from_key(sub, sizeof(sub), KDF_ID, KDF_CONTEXT, key);
	memcpy(out, sub, 8);
	sodium_memzero(sub, sizeof(sub));
}

static void manifest_mac(const u8 key[32], const char *text, size_t len,
			 u8 out[32])
{
	u8 sub[crypto_auth_hmacsha256_KEYBYTES];
	crypto_kdf_derive_from_key(sub, sizeof(sub), KDF_MAC, KDF_CONTEXT, key);
	crypto_auth_hmacsha256(out, (const u8 *)text, len, sub);
	sodium_memzero(sub, sizeof(sub));
}

/* ---- sealed files ------------------------------------------------------ */

struct sealw {
	int fd;
	bool encrypt;
	crypto_secretstream_xchacha20poly1305_state st;
	crypto_hash_sha256_state h;
	u8 *buf; /* CHUNK_BYTES of plaintext, then room for a sealed chunk */
	size_t n;
	u64 bytes;
	struct bkmanifest_file *f;
};

static int write_all(int fd, const u8 *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sealw_out(struct sealw *w, const u8 *p, size_t n)
{
	crypto_hash_sha256_update(&w->h, p, n);
	w->bytes += n;
	return write_all(w->fd, p, n);
}

/* Make the directories of dir/rel's path below dir. */
static int make_parents(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	int n = pathf(path, sizeof(path), "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		int ret = fsdir_make(path);
		*p = '/';
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int sealw_open(struct sealw *w, const char *dir,
		      struct bkmanifest_file *f, const u8 *key)
{
	char path[PATH_MAX];
	u8 hdr[SEAL_HEADER_BYTES];
	int ret = make_parents(dir, f->name);

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->f = f;
	w->encrypt = key != NULL;
	if (ret < 0)
		return ret;
	pathf(path, sizeof(path), "%s/%s", dir, f->name);
	w->buf = malloc(2 * CHUNK_BYTES + SEAL_ABYTES);
	if (!w->buf)
		return -ENOMEM;
	w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     0600);
	if (w->fd < 0)
		return -errno;
	crypto_hash_sha256_init(&w->h);
	if (!w->encrypt)
		return 0;
	u8 sub[32];
	crypto_kdf_derive_from_key(sub, sizeof(sub), KDF_FILES, KDF_CONTEXT,
				   key);
	crypto_secretstream_xchacha20poly1305_init_push(&w->st, hdr, sub);
	sodium_memzero(sub, sizeof(sub));
	return sealw_out(w, hdr, sizeof(hdr));
}

static int sealw_push(struct sealw *w, bool final)
{
	unsigned long long clen = 0;
	u8 *c = w->buf + CHUNK_BYTES;

	if (!w->encrypt) {
		int ret = sealw_out(w, w->buf, w->n);
		w->n = 0;
		return ret;
	}
	crypto_secretstream_xchacha20poly1305_push(
		&w->st, c, &clen, w->buf, w->n, NULL, 0,
		final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
	w->n = 0;
	return sealw_out(w, c, (size_t)clen);
}

static int sealw_write(struct sealw *w, const void *p, size_t n)
{
	const u8 *q = p;
	while (n > 0) {
		/* A full chunk is pushed only when more follows, so the last
		 * chunk (the FINAL one) is never empty but for an empty
		 * file. */
		if (w->n == CHUNK_BYTES) {
			int ret = sealw_push(w, false);
			if (ret < 0)
				return ret;
		}
		size_t k = CHUNK_BYTES - w->n < n ? CHUNK_BYTES - w->n : n;
		memcpy(w->buf + w->n, q, k);
		w->n += k;
		q += k;
		n -= k;
	}
	return 0;
}

/* Push the rest, fsync, close; fills the manifest entry.  Also frees on
 * error (ret < 0 given: just frees). */
static int sealw_close(struct sealw *w, int ret)
{
	if (ret == 0 && w->fd >= 0)
		ret = sealw_push(w, true);
	if (ret == 0 && fsync(w->fd) != 0)
		ret = -errno;
	if (w->fd >= 0 && close(w->fd) != 0 && ret == 0)
		ret = -errno;
	w->fd = -1;
	if (ret == 0) {
		crypto_hash_sha256_final(&w->h, w->f->sha256);
		w->f->bytes = w->bytes;
	}
	free(w->buf);
	w->buf = NULL;
	return ret;
}

/* Read the stored file at path, check size and SHA-256 against f, open
 * it (key: decrypt and authenticate) and write the plaintext to out_path
 * (NULL: nowhere).  0, or a fault: *why says which. */
static int unseal_file(const char *path, const struct bkmanifest_file *f,
		       const u8 *key, const char *out_path, const char **why)
{
	crypto_secretstream_xchacha20poly1305_state st;
	crypto_hash_sha256_state h;
	u8 hdr[SEAL_HEADER_BYTES], sha[32];
	u8 *in = NULL, *plain = NULL;
	int fd = -1, out = -1, ret = 0;
	u64 bytes = 0;
	bool final = false, refused = false;
	size_t want = key ? CHUNK_BYTES + SEAL_ABYTES : CHUNK_BYTES;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*why = errno == ENOENT ? "missing" : "unreadable";
		return -EBADMSG;
	}
	in = malloc(want);
	plain = malloc(CHUNK_BYTES);
	if (!in || !plain) {
		ret = -ENOMEM;
		*why = "out of memory";
		goto cleanup;
	}
	if (out_path) {
		out = open(out_path,
			   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			   0600);
		if (out < 0) {
			ret = -errno;
			*why = "cannot write the unpacked file";
			goto cleanup;
		}
	}
	crypto_hash_sha256_init(&h);
	if (key) {
		u8 sub[32];
		ssize_t r = read(fd, hdr, sizeof(hdr));
		if (r != (ssize_t)sizeof(hdr)) {
			*why = "cut short (no stream header)";
			ret = -EBADMSG;
			goto cleanup;
		}
		crypto_hash_sha256_update(&h, hdr, sizeof(hdr));
		bytes += sizeof(hdr);
		crypto_kdf_derive_from_key(sub, sizeof(sub), KDF_FILES,
					   KDF_CONTEXT, key);
		int bad = crypto_secretstream_xchacha20poly1305_init_pull(
			&st, hdr, sub);
		sodium_memzero(sub, sizeof(sub));
		if (bad) {
			*why = "bad stream header";
			ret = -EBADMSG;
			goto cleanup;
		}
	}
	for (;;) {
		size_t got = 0;
		while (got < want) {
			ssize_t r = read(fd, in + got, want - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got == 0)
			break;
		crypto_hash_sha256_update(&h, in, got);
		bytes += got;
		const u8 *p = in;
		unsigned long long plen = got;
		if (key && !refused) {
			u8 tag = 0;
			/* Refused: read on to hash the rest, so that a
			 * stored byte changed is told from another key. */
			refused = final ||
				  crypto_secretstream_xchacha20poly1305_pull(
					  &st, plain, &plen, &tag, in, got,
					  NULL, 0) != 0;
			final = tag ==
				crypto_secretstream_xchacha20poly1305_TAG_FINAL;
			p = plain;
		}
		if (refused)
			continue;
		if (out >= 0 && (ret = write_all(out, p, (size_t)plen)) < 0) {
			*why = "cannot write the unpacked file";
			goto cleanup;
		}
		if (got < want)
			break;
	}
	crypto_hash_sha256_final(&h, sha);
	if (bytes != f->bytes) {
		*why = "size differs from the manifest";
		ret = -EBADMSG;
	} else if (memcmp(sha, f->sha256, 32) != 0) {
		*why = "SHA-256 differs from the manifest";
		ret = -EBADMSG;
	} else if (refused) {
		*why = "authentication failed (not sealed with this key)";
		ret = -EBADMSG;
	} else if (key && !final) {
		*why = "cut short (no final chunk)";
		ret = -EBADMSG;
	}
	if (ret == 0 && out >= 0 && fsync(out) != 0) {
		ret = -errno;
		*why = "cannot sync the unpacked file";
	}
cleanup:
	if (out >= 0)
		close(out);
	if (fd >= 0)
		close(fd);
	free(in);
	free(plain);
	return ret;
}

/* ---- a location -------------------------------------------------------- */

static int entry_cmp(const void *a, const void *b)
{
	const struct backup_entry *x = a, *y = b;
	if (x->complete != y->complete)
		return x->complete ? -1 : 1;
	if (x->complete && x->m.last_seq != y->m.last_seq)
		return x->m.last_seq < y->m.last_seq ? -1 : 1;
	if (x->complete && x->m.created_ns != y->m.created_ns)
		return x->m.created_ns < y->m.created_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

int backup_location_read(const char *loc, struct backup_location *out)
{
	DIR *d = opendir(loc);
	struct dirent *de;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;
		if (de->d_name[0] == '.' ||
		    strlen(de->d_name) >= BKMANIFEST_ID_BYTES_MAX)
			continue;
		pathf(path, sizeof(path), "%s/%s", loc, de->d_name);
		if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		if (out->n == LOCATION_MAX) {
			ret = -E2BIG;
			break;
		}
		struct backup_entry *g =
			realloc(out->e, (out->n + 1) * sizeof(*g));
		if (!g) {
			ret = -ENOMEM;
			break;
		}
		out->e = g;
		struct backup_entry *e = &out->e[out->n++];
		memset(e, 0, sizeof(*e));
		memcpy(e->id, de->d_name, strlen(de->d_name) + 1);
		pathf(path, sizeof(path), "%s/%s/" BKMANIFEST_FILE, loc,
		      de->d_name);
		int r = fsfile_read(path, BKMANIFEST_TEXT_BYTES_MAX,
				    &e->manifest_text, &e->manifest_len);
		if (r != 0) {
			e->why = r == -ENOENT ? "no manifest (an interrupted "
						"backup)"
					      : "manifest unreadable";
			continue;
		}
		crypto_hash_sha256(e->manifest_sha256,
				   (const u8 *)e->manifest_text,
				   e->manifest_len);
		r = bkmanifest_decode(e->manifest_text, e->manifest_len, &e->m,
				      &e->why);
		if (r == 0 && strcmp(e->m.id, e->id) != 0) {
			e->why = "the manifest names another backup";
			bkmanifest_free(&e->m);
			r = -EBADMSG;
		}
		e->complete = r == 0;
	}
	closedir(d);
	if (out->n)
		qsort(out->e, out->n, sizeof(*out->e), entry_cmp);
	for (size_t i = 0; i < out->n; i++)
		out->ncomplete += out->e[i].complete;
	return ret;
}

void backup_location_free(struct backup_location *l)
{
	for (size_t i = 0; i < l->n; i++) {
		bkmanifest_free(&l->e[i].m);
		free(l->e[i].manifest_text);
	}
	free(l->e);
	memset(l, 0, sizeof(*l));
}

static unsigned fault(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static unsigned fault(const char *fmt, ...)
{
	va_list ap;
	fputs("FAULT: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	return 1;
}

static bool mac_ok(const struct backup_entry *e, const u8 key[32])
{
	char *text = bkmanifest_encode(&e->m, false);
	u8 mac[32];
	if (!text)
		return false;
	manifest_mac(key, text, strlen(text), mac);
	free(text);
	return sodium_memcmp(mac, e->m.mac, 32) == 0;
}

/* The origin most backups of l have (ties: the newest's): the server
 * the location belongs to. */
static const u8 *location_origin(const struct backup_location *l)
{
	const u8 *best = NULL;
	size_t best_n = 0;
	for (size_t i = 0; i < l->ncomplete; i++) {
		size_t n = 0;
		for (size_t k = 0; k < l->ncomplete; k++)
			n += memcmp(l->e[i].m.origin, l->e[k].m.origin, 32) ==
			     0;
		if (n >= best_n) {
			best_n = n;
			best = l->e[i].m.origin;
		}
	}
	return best;
}

unsigned backup_check_chain(const struct backup_location *l, const u8 *key)
{
	unsigned faults = 0;
	char hex[65];
	const struct backup_entry *prev = NULL;
	const u8 *origin = location_origin(l);
	u8 kid[8];

	if (key)
		backup_key_id(key, kid);
	for (size_t i = 0; i < l->ncomplete; i++) {
		const struct backup_entry *e = &l->e[i];
		if (key && memcmp(kid, e->m.key_id, 8) != 0)
			faults += fault("%s/" BKMANIFEST_FILE
					": made with another key (the key "
					"file given is not the backup's)",
					e->id);
		else if (key && !mac_ok(e, key))
			faults += fault("%s/" BKMANIFEST_FILE
					": MAC refused (the manifest was "
					"changed)",
					e->id);
		if (memcmp(origin, e->m.origin, 32) != 0) {
			sodium_bin2hex(hex, sizeof(hex), e->m.origin, 32);
			faults += fault("%s: a backup of another server "
					"(journal origin %.16s..., not the "
					"location's)",
					e->id, hex);
			continue; /* not part of the location's chain */
		}
		if (!prev && e->m.has_previous)
			faults += fault("%s: names a previous backup that the "
					"location no longer holds (deleted?)",
					e->id);
		if (prev &&
		    (!e->m.has_previous ||
		     memcmp(e->m.previous, prev->manifest_sha256, 32) != 0))
			faults += fault(
				"%s: the chain is broken: its previous is "
				"not %s (a backup between them deleted, or "
				"one from elsewhere)",
				e->id, prev->id);
		prev = e;
	}
	return faults;
}

/* ---- unpack and check one backup -------------------------------------- */

static int check_journal(const char *dir, const struct bkmanifest *m,
			 const char **seg_why, char *msg, size_t msg_len)
{
	struct journal_reader *rd = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	u64 next = 1;
	int ret = journal_reader_open(&rd, dir, 1);

	*seg_why = NULL;
	if (ret < 0) {
		snprintf(msg, msg_len, "journal: %s", tpw_strerror(-ret));
		return ret;
	}
	journal_reader_limit(rd, m->last_seq);
	while ((ret = journal_reader_next(rd, &r, &raw, &raw_bytes)) == 1) {
		if (r.seq == 1) {
			u8 origin[32];
			history_origin_of(raw, raw_bytes, origin);
			if (memcmp(origin, m->origin, 32) != 0) {
				snprintf(msg, msg_len,
					 "journal: entry 1 is not the "
					 "manifest's origin");
				ret = -EBADMSG;
				break;
			}
		}
		next = r.seq + 1;
	}
	if (ret < 0)
		snprintf(msg, msg_len, "%s", journal_reader_error(rd));
	else if (next != m->last_seq + 1) {
		char name[64];
		pathf(name, sizeof(name), JOURNAL_SEGMENT_NAME_FMT,
		      (unsigned long long)next);
		snprintf(msg, msg_len,
			 "journal: entries %llu..%llu missing (a segment "
			 "from %s on is not in the backup)",
			 (unsigned long long)next,
			 (unsigned long long)m->last_seq, name);
		ret = -EBADMSG;
	}
	journal_reader_close(rd);
	return ret;
}

/* `audit check` of the unpacked backup against its own public keys; its
 * report goes to stderr (stdout stays the command's answer). */
static int audit_check(const char *dir)
{
	char key_arg[PATH_MAX + 2];
	pathf(key_arg, sizeof(key_arg), "@%s/" VKEYS_FILE, dir);
	char a0[] = "audit", a1[] = "check", a3[] = "--key", d[PATH_MAX];
	pathf(d, sizeof(d), "%s", dir);
	char *argv[] = {a0, a1, d, a3, key_arg, NULL};
	int saved, ret;

	fflush(stdout);
	saved = dup(1);
	if (saved >= 0)
		dup2(2, 1);
	ret = cmd_audit(5, argv);
	fflush(stdout);
	if (saved >= 0) {
		dup2(saved, 1);
		close(saved);
	}
	return ret;
}

unsigned backup_unpack(const char *loc, const struct backup_entry *e,
		       const u8 *key, const char *dir, bool quiet)
{
	const struct bkmanifest *m = &e->m;
	unsigned faults = 0;
	const char *why = NULL;
	char msg[PATH_MAX + 256];
	u64 t0 = mono_ms(), last = t0;

	if (m->encrypted != (key != NULL))
		return fault("%s: %s", e->id,
			     m->encrypted ? "encrypted: give --key-file"
					  : "not encrypted, but a key was "
					    "given");
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct bkmanifest_file *f = &m->files[i];
		char in[PATH_MAX], out[PATH_MAX];
		pathf(in, sizeof(in), "%s/%s/%s", loc, e->id, f->name);
		pathf(out, sizeof(out), "%s/%s", dir, f->name);
		int r = make_parents(dir, f->name);
		if (r == 0)
			r = unseal_file(in, f, key, out, &why);
		else
			why = "cannot make its directory";
		if (r != 0)
			faults += fault("%s/%s: %s", e->id, f->name, why);
		if (!quiet && mono_ms() - last >= PROGRESS_EVERY_MS) {
			last = mono_ms();
			fprintf(stderr, "tpwallet: %s: %zu/%zu files\n", e->id,
				i + 1, m->nfiles);
		}
	}
	if (faults)
		return faults;
	if (check_journal(dir, m, &why, msg, sizeof(msg)) != 0)
		return fault("%s/%s", e->id, msg);
	if (audit_check(dir) != 0)
		faults += fault("%s: the journal does not match its signed "
				"checkpoint (audit check, above)",
				e->id);
	if (m->base == BKMANIFEST_BASE_STORE) {
		struct store *s = NULL;
		struct store_meta sm;
		char sdir[PATH_MAX];
		pathf(sdir, sizeof(sdir), "%s/" DATADIR_STORE, dir);
		struct store_options so = {.dir = sdir, .read_only = true};
		if (store_open(&so, &s, &why) != 0)
			return faults + fault("%s/store: %s", e->id, why);
		store_meta(s, &sm);
		store_close(s);
		if (memcmp(sm.origin, m->origin, 32) != 0 ||
		    sm.seq != m->base_seq)
			faults += fault("%s/store: its origin or seq (%llu) is "
					"not the manifest's",
					e->id, (unsigned long long)sm.seq);
	}
	return faults;
}

/* ---- backup ------------------------------------------------------------ */

struct job {
	const char *data, *loc, *archive;
	const u8 *key; /* NULL: not encrypted */
	char dir[PATH_MAX];
	struct bkmanifest m;
	size_t cap;
	u64 t0_ms, progress_ms;
	char note[NOTE_BYTES_MAX];
	size_t note_len;
	char log_origin[CHECKPOINT_ORIGIN_BYTES_MAX + 1];
	u8 store_origin[32];
	struct note_verifier v[NOTE_VERIFIERS_MAX];
	size_t nv;
};

static struct bkmanifest_file *add_file(struct job *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static struct bkmanifest_file *add_file(struct job *j, const char *fmt, ...)
{
	va_list ap;
	if (j->m.nfiles == j->cap) {
		size_t cap = j->cap ? 2 * j->cap : 64;
		if (cap > BKMANIFEST_FILES_MAX)
			return NULL;
		void *g = realloc(j->m.files, cap * sizeof(*j->m.files));
		if (!g)
			return NULL;
		j->m.files = g;
		j->cap = cap;
	}
	struct bkmanifest_file *f = &j->m.files[j->m.nfiles];
	memset(f, 0, sizeof(*f));
	va_start(ap, fmt);
	vsnprintf(f->name, sizeof(f->name), fmt, ap);
	va_end(ap);
	j->m.nfiles++;
	return f;
}

static int put_bytes(struct job *j, const char *name, const void *p, size_t n)
{
	struct sealw w;
	struct bkmanifest_file *f = add_file(j, "%s", name);
	if (!f)
		return -ENOMEM;
	int ret = sealw_open(&w, j->dir, f, j->key);
	if (ret == 0)
		ret = sealw_write(&w, p, n);
	return sealw_close(&w, ret);
}

/* A file copied in, streamed (store files may be large). */
static int put_file(struct job *j, const char *name, const char *path)
{
	struct sealw w;
	struct bkmanifest_file *f;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ret;
	u8 *buf = malloc(CHUNK_BYTES);

	if (fd < 0 || !buf) {
		ret = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	f = add_file(j, "%s", name);
	if (!f) {
		ret = -ENOMEM;
		goto out;
	}
	ret = sealw_open(&w, j->dir, f, j->key);
	while (ret == 0) {
		ssize_t n = read(fd, buf, CHUNK_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : 0;
			break;
		}
		ret = sealw_write(&w, buf, (size_t)n);
	}
	ret = sealw_close(&w, ret);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

/* The log's origin and public keys: note verifier keys named after it. */
static int load_log_keys(struct job *j)
{
	char path[PATH_MAX], err[KEYRING_ERR_BYTES] = "", *text = NULL;
	struct keyring *kr = NULL;
	size_t len;
	int ret;

	pathf(path, sizeof(path), "%s/" DATADIR_ORIGIN, j->data);
	ret = fsfile_read(path, CHECKPOINT_ORIGIN_BYTES_MAX + 2, &text, &len);
	if (ret != 0) {
		fprintf(stderr, "tpwallet backup: %s: %s\n", path,
			fsfile_strerror(ret));
		return EXIT_DATA;
	}
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len == 0 || len > CHECKPOINT_ORIGIN_BYTES_MAX) {
		free(text);
		fprintf(stderr, "tpwallet backup: %s is not a log origin\n",
			path);
		return EXIT_DATA;
	}
	memcpy(j->log_origin, text, len);
	j->log_origin[len] = '\0';
	free(text);
	pathf(path, sizeof(path), "%s/" DATADIR_KEYS, j->data);
	ret = keyfile_open_keyring(path, NULL, &kr, err, sizeof(err));
	if (ret != 0) {
		fprintf(stderr,
			"tpwallet backup: cannot read the keys in %s: %s\n",
			path, err[0] ? err : keyring_strerror(ret));
		return EXIT_DATA;
	}
	for (size_t i = 0; i < keyring_count(kr) && j->nv < NOTE_VERIFIERS_MAX;
	     i++) {
		struct note_verifier *v = &j->v[j->nv++];
		memcpy(v->name, j->log_origin, len + 1);
		v->name_len = len;
		memcpy(v->public_key, keyring_key_at(kr, i)->pub, 32);
		v->key_id = note_key_id(v->name, v->name_len, v->public_key);
	}
	keyring_free(kr);
	if (j->nv == 0) {
		fprintf(stderr, "tpwallet backup: %s holds no key\n", path);
		return EXIT_DATA;
	}
	return 0;
}

/* The seq of DATA/journal's last whole record (0: none): its newest
 * segment read to the end. */
static u64 journal_end(const char *data)
{
	char dir[PATH_MAX];
	u64 newest = 0, last = 0;
	pathf(dir, sizeof(dir), "%s/" DATADIR_JOURNAL, data);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		u64 first;
		if (journal__parse_segment_name(de->d_name, &first) &&
		    first > newest)
			newest = first;
	}
	if (d)
		closedir(d);
	struct journal_reader *rd = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	if (!newest || journal_reader_open(&rd, data, newest) < 0)
		return 0;
	while (journal_reader_next(rd, &r, &raw, &raw_bytes) == 1)
		last = r.seq;
	journal_reader_close(rd);
	return last;
}

/* The journal's identity: its first record's hash (0 or -errno). */
static int journal_origin(const struct job *j, u8 out[32])
{
	struct journal_reader *rd = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	int ret = journal_reader_open(&rd, j->data, 1);

	if (ret < 0)
		return ret;
	if (j->archive)
		journal_reader_archive(rd, j->archive);
	ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
	if (ret == 1)
		history_origin_of(raw, raw_bytes, out);
	journal_reader_close(rd);
	return ret == 1 ? 0 : -ENODATA;
}

/* The newest signed checkpoint in DATA/audit/checkpoints: its note and
 * size (0 when none verifies). */
static u64 newest_checkpoint(struct job *j)
{
	char path[PATH_MAX];
	char *note = malloc(NOTE_BYTES_MAX);
	u64 best = 0;
	FILE *f;

	pathf(path, sizeof(path), "%s/" DATADIR_CHECKPOINTS, j->data);
	f = note ? fopen(path, "rb") : NULL;
	while (f) {
		u64 len;
		size_t hb;
		if (datadir_checkpoint_head_read(f, &len, &hb) !=
			    DATADIR_HEAD_OK ||
		    fread(note, 1, len, f) != len)
			break;
		struct note_opened op;
		struct checkpoint c;
		if (note_open(note, len, j->v, j->nv, &op) == 0 &&
		    checkpoint_parse(op.text, op.text_len, &c) == 0 &&
		    strcmp(c.origin, j->log_origin) == 0 && c.size >= best) {
			best = c.size;
			memcpy(j->note, note, len);
			j->note_len = len;
		}
	}
	if (f)
		fclose(f);
	free(note);
	return best;
}

static int backup_store(struct job *j)
{
	char sdir[PATH_MAX], tmp[PATH_MAX];
	const char *why = "";
	int ret = -EIO;

	pathf(sdir, sizeof(sdir), "%s/" DATADIR_STORE, j->data);
	pathf(tmp, sizeof(tmp), "%s/.store-checkpoint", j->dir);
	for (int t = 0; t < STORE_TRIES && ret != 0; t++) {
		struct store *s = NULL;
		struct store_meta sm;
		struct store_options so = {.dir = sdir, .read_only = true};
		fsdir_remove_tree(tmp);
		ret = store_open(&so, &s, &why);
		if (ret == -ENODATA) /* nothing flushed yet */
			return 0;
		if (ret != 0)
			break;
		store_meta(s, &sm);
		if (sm.seq == 0) { /* an empty store: nothing to start from */
			store_close(s);
			return 0;
		}
		ret = store_checkpoint(s, tmp, &why);
		store_close(s);
		j->m.base_seq = sm.seq;
		memcpy(j->store_origin, sm.origin, 32);
	}
	if (ret != 0) {
		fprintf(stderr, "tpwallet backup: store checkpoint: %s\n", why);
		fsdir_remove_tree(tmp);
		return ret;
	}
	DIR *d = opendir(tmp);
	struct dirent *de;
	while (ret == 0 && d && (de = readdir(d))) {
		char path[PATH_MAX], name[BKMANIFEST_NAME_BYTES_MAX];
		if (de->d_name[0] == '.')
			continue;
		pathf(path, sizeof(path), "%s/%s", tmp, de->d_name);
		pathf(name, sizeof(name), DATADIR_STORE "/%s", de->d_name);
		ret = bkmanifest_name_valid(name) ? put_file(j, name, path)
						  : -EINVAL;
	}
	if (d)
		closedir(d);
	fsdir_remove_tree(tmp);
	j->m.base = BKMANIFEST_BASE_STORE;
	return ret;
}

/* The newest snapshot at or below seq (without store = 1). */
static int backup_snapshot(struct job *j, u64 seq)
{
	char dir[PATH_MAX], best[64] = "";
	u64 best_seq = 0;
	pathf(dir, sizeof(dir), "%s/" DATADIR_SNAPSHOTS, j->data);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned long long s;
		char want[64];
		if (strlen(de->d_name) != 34 ||
		    strncmp(de->d_name, "snapshot-", 9) != 0)
			continue;
		s = strtoull(de->d_name + 9, NULL, 10);
		pathf(want, sizeof(want), SNAPSHOT_NAME_FMT, s);
		if (strcmp(want, de->d_name) != 0 || s > seq || s <= best_seq)
			continue;
		best_seq = s;
		memcpy(best, want, strlen(want) + 1);
	}
	if (d)
		closedir(d);
	if (!best_seq)
		return 0;
	char path[PATH_MAX], name[BKMANIFEST_NAME_BYTES_MAX];
	pathf(path, sizeof(path), "%s/%s", dir, best);
	pathf(name, sizeof(name), DATADIR_SNAPSHOTS "/%s", best);
	int ret = put_file(j, name, path);
	if (ret == -ENOENT) /* replaced by a newer one meanwhile */
		return 0;
	if (ret == 0) {
		j->m.base = BKMANIFEST_BASE_SNAPSHOT;
		j->m.base_seq = best_seq;
	}
	return ret;
}

static void progress(struct job *j, const char *what, u64 done, u64 total)
{
	u64 now = mono_ms();
	if (now - j->progress_ms < PROGRESS_EVERY_MS && done != total)
		return;
	j->progress_ms = now;
	fprintf(stderr, "tpwallet backup: %s %llu/%llu, %.1f MB written\n",
		what, (unsigned long long)done, (unsigned long long)total,
		(double)j->m.bytes / 1e6);
}

static int backup_journal(struct job *j)
{
	struct journal_reader *rd = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;
	struct sealw w = {.fd = -1};
	u64 seg = 0, next = 1;
	int ret = journal_reader_open(&rd, j->data, 1);

	if (ret < 0)
		return ret;
	if (j->archive)
		journal_reader_archive(rd, j->archive);
	journal_reader_limit(rd, j->m.last_seq);
	while (next <= j->m.last_seq &&
	       (ret = journal_reader_next(rd, &r, &raw, &raw_bytes)) == 1) {
		u64 s, off;
		journal_reader_position(rd, &s, &off);
		if (s != seg || w.fd < 0) {
			if (w.fd >= 0 && (ret = sealw_close(&w, 0)) < 0)
				break;
			struct bkmanifest_file *f = add_file(
				j, DATADIR_JOURNAL "/" JOURNAL_SEGMENT_NAME_FMT,
				(unsigned long long)s);
			if (!f) {
				ret = -ENOMEM;
				break;
			}
			if ((ret = sealw_open(&w, j->dir, f, j->key)) < 0)
				break;
			seg = s;
		}
		if (r.seq == 1) {
			history_origin_of(raw, raw_bytes, j->m.origin);
			j->m.first_time_ns = r.timestamp;
		}
		j->m.last_time_ns = r.timestamp;
		if ((ret = sealw_write(&w, raw, raw_bytes)) < 0)
			break;
		next = r.seq + 1;
		progress(j, "journal entries", r.seq, j->m.last_seq);
		ret = 0;
	}
	if (ret < 0 && rd)
		fprintf(stderr, "tpwallet backup: %s\n",
			journal_reader_error(rd));
	if (w.fd >= 0 || w.buf)
		ret = sealw_close(&w, ret);
	journal_reader_close(rd);
	if (ret == 0 && next != j->m.last_seq + 1) {
		fprintf(stderr,
			"tpwallet backup: the journal ends at %llu, before "
			"the signed checkpoint's %llu\n",
			(unsigned long long)next - 1,
			(unsigned long long)j->m.last_seq);
		ret = -EBADMSG;
	}
	return ret;
}

static int write_manifest(struct job *j)
{
	char *text;
	int ret;

	if (j->key)
		backup_key_id(j->key, j->m.key_id);
	text = bkmanifest_encode(&j->m, false);
	if (!text)
		return -ENOMEM;
	if (j->key)
		manifest_mac(j->key, text, strlen(text), j->m.mac);
	free(text);
	text = bkmanifest_encode(&j->m, true);
	if (!text)
		return -ENOMEM;
	/* Temporary, fsync, rename, directory fsync: a crash leaves no
	 * manifest or the whole one. */
	ret = fsfile_replace(j->dir, BKMANIFEST_FILE, text, strlen(text));
	free(text);
	return ret;
}

static int take_backup(struct job *j, const struct backup_location *l)
{
	char sdir[PATH_MAX];
	struct stat st;
	int ret;

	ret = load_log_keys(j);
	if (ret != 0)
		return ret;
	/* Another server's location is refused before anything is
	 * written. */
	u8 origin[32];
	if (l->ncomplete > 0 &&
	    (journal_origin(j, origin) != 0 ||
	     memcmp(l->e[l->ncomplete - 1].m.origin, origin, 32) != 0)) {
		fprintf(stderr,
			"tpwallet backup: %s holds backups of another server "
			"(another journal origin): use another location\n",
			j->loc);
		return 1;
	}
	pathf(sdir, sizeof(sdir), "%s/" DATADIR_STORE "/CURRENT", j->data);
	bool store = stat(sdir, &st) == 0;
	u64 t0 = wall_ns();
	char tid[32];
	backup_time_text(t0, tid);
	/* The id: the time, then a random tag (two backups in one
	 * millisecond differ). */
	u8 tag[4];
	randombytes_buf(tag, sizeof(tag));
	snprintf(j->m.id, sizeof(j->m.id),
		 "%.4s%.2s%.2sT%.2s%.2s%.2s%.3sZ-%02x%02x%02x%02x", tid,
		 tid + 5, tid + 8, tid + 11, tid + 14, tid + 17, tid + 20,
		 tag[0], tag[1], tag[2], tag[3]);
	snprintf(j->dir, sizeof(j->dir), "%s/%s", j->loc, j->m.id);
	if (mkdir(j->dir, 0700) != 0) {
		fprintf(stderr, "tpwallet backup: %s: %s\n", j->dir,
			tpw_strerror(errno));
		return EXIT_SOFTWARE;
	}
	fsdir_sync(j->loc);
	j->m.version = BKMANIFEST_VERSION;
	j->m.encrypted = j->key != NULL;
	j->m.created_ns = t0;
	j->m.first_seq = 1;
	if (store && (ret = backup_store(j)) != 0)
		goto failed;
	/* The signed checkpoint that covers what the journal held when the
	 * backup started (the audit log signs one about every second while
	 * entries arrive), and at least the store's seq. */
	u64 want = journal_end(j->data);
	if (want < j->m.base_seq)
		want = j->m.base_seq;
	u64 waited = mono_ms(), size;
	while ((size = newest_checkpoint(j)) < want) {
		if (mono_ms() - waited <= CHECKPOINT_WAIT_MS) {
			struct timespec ts = {0, 100 * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		if (size == 0 || size < j->m.base_seq) {
			fprintf(stderr,
				"tpwallet backup: no signed checkpoint covers "
				"entry %llu after %u s (is the server's audit "
				"log running?)\n",
				(unsigned long long)j->m.base_seq,
				CHECKPOINT_WAIT_MS / 1000u);
			ret = -ETIMEDOUT;
			goto failed;
		}
		fprintf(stderr,
			"tpwallet backup: warning: entries %llu..%llu are not "
			"covered by a signed checkpoint after %u s: the backup "
			"ends at entry %llu\n",
			(unsigned long long)size + 1, (unsigned long long)want,
			CHECKPOINT_WAIT_MS / 1000u, (unsigned long long)size);
		break;
	}
	j->m.last_seq = size;
	if (!store && (ret = backup_snapshot(j, size)) != 0)
		goto failed;
	if ((ret = backup_journal(j)) != 0)
		goto failed;
	if (j->m.base == BKMANIFEST_BASE_STORE &&
	    memcmp(j->store_origin, j->m.origin, 32) != 0) {
		fprintf(stderr, "tpwallet backup: DATA/store is not of this "
				"journal (another origin)\n");
		ret = -EBADMSG;
		goto failed;
	}
	if (l->ncomplete > 0) {
		j->m.has_previous = true;
		memcpy(j->m.previous, l->e[l->ncomplete - 1].manifest_sha256,
		       32);
	}
	char head[DATADIR_CHECKPOINT_HEAD_BYTES_MAX + 1];
	size_t hl = datadir_checkpoint_head(head, j->note_len);
	char *framed = malloc(hl + j->note_len);
	ret = framed ? 0 : -ENOMEM;
	if (framed) {
		memcpy(framed, head, hl);
		memcpy(framed + hl, j->note, j->note_len);
		ret = put_bytes(j, CHECKPOINT_FILE, framed, hl + j->note_len);
		free(framed);
	}
	char vkeys[NOTE_VERIFIERS_MAX * 400];
	size_t vl = 0;
	for (size_t i = 0; ret == 0 && i < j->nv; i++) {
		size_t n = 0;
		ret = note_verifier_format(&j->v[i], vkeys + vl,
					   sizeof(vkeys) - vl - 1, &n)
			      ? -ENOSPC
			      : 0;
		vl += n;
		vkeys[vl++] = '\n';
	}
	if (ret == 0)
		ret = put_bytes(j, VKEYS_FILE, vkeys, vl);
	if (ret == 0)
		ret = put_bytes(j, DATADIR_ORIGIN, j->log_origin,
				strlen(j->log_origin));
	if (ret != 0)
		goto failed;
	for (size_t i = 0; i < j->m.nfiles; i++)
		j->m.bytes += j->m.files[i].bytes;
	j->m.duration_ms = mono_ms() - j->t0_ms;
	ret = write_manifest(j);
	if (ret != 0)
		goto failed;
	double s = (double)(j->m.duration_ms ? j->m.duration_ms : 1) / 1000.0;
	printf("backup %s: entries 1..%llu, base %s at %llu, %zu files, "
	       "%llu bytes, %.3f s, %.1f MB/s\n",
	       j->m.id, (unsigned long long)j->m.last_seq,
	       j->m.base == BKMANIFEST_BASE_STORE      ? "store"
	       : j->m.base == BKMANIFEST_BASE_SNAPSHOT ? "snapshot"
						       : "none",
	       (unsigned long long)j->m.base_seq, j->m.nfiles,
	       (unsigned long long)j->m.bytes, s, (double)j->m.bytes / 1e6 / s);
	return 0;
failed:
	fprintf(stderr,
		"tpwallet backup: failed (%s); %s holds no manifest, so it "
		"is not a backup: remove it\n",
		tpw_strerror(ret < 0 ? -ret : EIO), j->dir);
	return EXIT_SOFTWARE;
}

/* ---- the subcommands --------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet backup --data DATA --to LOC [--key-file K] "
		"[--archive-dir DIR]\n"
		"       tpwallet backup keygen --out K\n"
		"       tpwallet backup list --from LOC [--json]\n"
		"       tpwallet backup verify --from LOC [--key-file K]\n\n"
		"An online full backup of DATA (the server may run) into "
		"LOC/<id>/, consistent\nat one journal entry: a store "
		"checkpoint (or snapshot), the journal up to the\nnewest "
		"signed audit checkpoint, that checkpoint and the log's "
		"public keys;\nevery file sealed under the operator key K "
		"(XChaCha20-Poly1305), a manifest\nwith their SHA-256 "
		"written last.  Never the KEK, never a private key.\n"
		"  --archive-dir DIR  journal_archive_dir (default: "
		"TPWALLET_JOURNAL_ARCHIVE_DIR)\n"
		"verify checks every backup of LOC without a server and "
		"prints the newest\nrestorable point.  Exit 0 done, 1 a fault "
		"or a refusal, 2 usage, 65 DATA\nunusable.  See docs/cli.md."
		"\n\nExample:\n"
		"  tpwallet backup keygen --out backup.key\n"
		"  tpwallet backup --data data --to backups --key-file "
		"backup.key\n"
		"  tpwallet backup verify --from backups --key-file "
		"backup.key\n");
}

static int keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"out", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *out = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!out || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	u8 key[32];
	char text[45];
	randombytes_buf(key, sizeof(key));
	b64url_encode(text, sizeof(text), key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	text[43] = '\n';
	int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      0600);
	int ret = fd < 0 ? -errno : write_all(fd, (const u8 *)text, 44);
	if (ret == 0 && fsync(fd) != 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	sodium_memzero(text, sizeof(text));
	if (ret != 0) {
		fprintf(stderr, "tpwallet backup keygen: %s: %s\n", out,
			tpw_strerror(-ret));
		return 1;
	}
	printf("backup key written to %s (mode 0600): keep a copy apart "
	       "from the server and the backups\n",
	       out);
	return 0;
}

static const char *base_name(u32 b)
{
	return b == BKMANIFEST_BASE_STORE      ? "store"
	       : b == BKMANIFEST_BASE_SNAPSHOT ? "snapshot"
					       : "none";
}

void backup_print_json(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

static int open_location(const char *cmd, const char *loc,
			 struct backup_location *l)
{
	int ret = backup_location_read(loc, l);
	if (ret != 0) {
		fprintf(stderr, "tpwallet %s: %s: %s\n", cmd, loc,
			tpw_strerror(-ret));
		backup_location_free(l);
	}
	return ret;
}

/* list's and verify's options: --from LOC, [--key-file K], [--json].
 * 0, or the exit status (help printed: 0 is returned as -1). */
static int location_opts(int argc, char **argv, const char **loc,
			 const char **keyf, bool *json)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"key-file", required_argument, NULL, 'k'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': *loc = optarg; break;
		case 'k': *keyf = optarg; break;
		case 'j': *json = true; break;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!*loc || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return 0;
}

static int list(int argc, char **argv)
{
	const char *loc = NULL, *keyf = NULL;
	bool json = false;
	int c = location_opts(argc, argv, &loc, &keyf, &json);
	if (c != 0)
		return c < 0 ? 0 : c;
	struct backup_location l;
	if (open_location("backup list", loc, &l) != 0)
		return EXIT_USAGE;
	for (size_t i = 0; i < l.n; i++) {
		const struct backup_entry *e = &l.e[i];
		char t0[32], t1[32], tc[32];
		if (!e->complete) {
			if (json) {
				json_t *o =
					json_pack("{s:s,s:b,s:s}", "id", e->id,
						  "complete", 0, "why", e->why);
				backup_print_json(o);
			} else {
				printf("%s  incomplete: %s\n", e->id, e->why);
			}
			continue;
		}
		backup_time_text(e->m.first_time_ns, t0);
		backup_time_text(e->m.last_time_ns, t1);
		backup_time_text(e->m.created_ns, tc);
		if (json) {
			json_t *o = json_pack(
				"{s:s,s:b,s:I,s:I,s:s,s:I,s:s,s:s,s:s,s:I,s:I,"
				"s:b,s:I,s:I}",
				"id", e->id, "complete", 1, "first_seq",
				(json_int_t)e->m.first_seq, "last_seq",
				(json_int_t)e->m.last_seq, "base",
				base_name(e->m.base), "base_seq",
				(json_int_t)e->m.base_seq, "first_time", t0,
				"last_time", t1, "created", tc, "bytes",
				(json_int_t)e->m.bytes, "files",
				(json_int_t)e->m.nfiles, "encrypted",
				e->m.encrypted, "first_time_ns",
				(json_int_t)e->m.first_time_ns, "last_time_ns",
				(json_int_t)e->m.last_time_ns);
			backup_print_json(o);
		} else {
			printf("%s  entries %llu..%llu (%s .. %s)  base %s "
			       "at %llu  %llu bytes in %zu files  made %s\n",
			       e->id, (unsigned long long)e->m.first_seq,
			       (unsigned long long)e->m.last_seq, t0, t1,
			       base_name(e->m.base),
			       (unsigned long long)e->m.base_seq,
			       (unsigned long long)e->m.bytes, e->m.nfiles, tc);
		}
	}
	backup_location_free(&l);
	return 0;
}

static int verify(int argc, char **argv)
{
	const char *loc = NULL, *keyf = NULL;
	bool json = false;
	u8 key[32];
	int c = location_opts(argc, argv, &loc, &keyf, &json);
	if (c != 0)
		return c < 0 ? 0 : c;
	if (keyf && backup_key_load("backup verify", keyf, key) != 0)
		return EXIT_USAGE;
	struct backup_location l;
	if (open_location("backup verify", loc, &l) != 0)
		return EXIT_USAGE;
	unsigned faults = backup_check_chain(&l, keyf ? key : NULL);
	const char *tmp = getenv("TMPDIR");
	for (size_t i = 0; i < l.ncomplete; i++) {
		char dir[PATH_MAX];
		pathf(dir, sizeof(dir), "%s/tpwallet-verify-XXXXXX",
		      tmp && tmp[0] ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			fprintf(stderr, "tpwallet backup verify: %s: %s\n", dir,
				tpw_strerror(errno));
			faults++;
			break;
		}
		fprintf(stderr, "tpwallet backup verify: %s (%zu/%zu)\n",
			l.e[i].id, i + 1, l.ncomplete);
		faults += backup_unpack(loc, &l.e[i], keyf ? key : NULL, dir,
					true);
		fsdir_remove_tree(dir);
	}
	for (size_t i = l.ncomplete; i < l.n; i++)
		printf("note: %s is not a backup: %s\n", l.e[i].id, l.e[i].why);
	sodium_memzero(key, sizeof(key));
	if (faults == 0 && l.ncomplete > 0) {
		const struct bkmanifest *m = &l.e[l.ncomplete - 1].m;
		char t[32];
		backup_time_text(m->last_time_ns, t);
		printf("ok: %zu backup%s verified; newest restorable point: "
		       "entry %llu (%s) in %s; earliest: entry %llu\n",
		       l.ncomplete, l.ncomplete == 1 ? "" : "s",
		       (unsigned long long)m->last_seq, t, m->id,
		       (unsigned long long)(l.e[0].m.base_seq
						    ? l.e[0].m.base_seq
						    : 1));
	} else if (faults == 0) {
		printf("%s holds no backup\n", loc);
		faults = 1;
	} else {
		printf("%s: %u fault%s found\n", loc, faults,
		       faults == 1 ? "" : "s");
	}
	backup_location_free(&l);
	return faults ? 1 : 0;
}

int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"to", required_argument, NULL, 't'},
		{"key-file", required_argument, NULL, 'k'},
		{"archive-dir", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct job j;
	const char *keyf = NULL;
	u8 key[32];
	int c;

	if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
		return keygen(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return list(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return verify(argc - 1, argv + 1);
	memset(&j, 0, sizeof(j));
	j.t0_ms = mono_ms();
	j.archive = getenv("TPWALLET_JOURNAL_ARCHIVE_DIR");
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:t:k:a:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': j.data = optarg; break;
		case 't': j.loc = optarg; break;
		case 'k': keyf = optarg; break;
		case 'a': j.archive = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!j.data || !j.loc || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (j.archive && !j.archive[0])
		j.archive = NULL;
	if (datadir_marker_check(j.data) != 0) {
		fprintf(stderr, "tpwallet backup: %s is not a data directory\n",
			j.data);
		return EXIT_DATA;
	}
	if (keyf && backup_key_load("backup", keyf, key) != 0)
		return EXIT_USAGE;
	j.key = keyf ? key : NULL;
	if (mkdir(j.loc, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "tpwallet backup: %s: %s\n", j.loc,
			tpw_strerror(errno));
		return EXIT_USAGE;
	}
	struct backup_location l;
	int ret = backup_location_read(j.loc, &l);
	if (ret != 0) {
		fprintf(stderr, "tpwallet backup: %s: %s\n", j.loc,
			tpw_strerror(-ret));
		backup_location_free(&l);
		return EXIT_USAGE;
	}
	if (j.key && l.ncomplete > 0) {
		u8 kid[8];
		backup_key_id(j.key, kid);
		if (memcmp(kid, l.e[l.ncomplete - 1].m.key_id, 8) != 0) {
			fprintf(stderr,
				"tpwallet backup: %s holds backups made with "
				"another key\n",
				j.loc);
			backup_location_free(&l);
			return 1;
		}
	}
	ret = take_backup(&j, &l);
	backup_location_free(&l);
	bkmanifest_free(&j.m);
	sodium_memzero(key, sizeof(key));
	return ret;
}
