/*
 * release.c - signed release artifacts (issue 21, docs/releases.md):
 * verify a file against its minisign signature with a public key held
 * apart from the artifacts, for `tpwallet version --verify` (an upgrade
 * checked before it runs) and for the running binary at start (its
 * status in /metrics and doctor).
 */
#include "cli/cli.h"
#include "core/strerror.h"
#include "crypto/minisign.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

/* Read path in pieces of at most 64 KiB, each handed to piece(ctx, ...),
 * which returns 0 to go on or a negative errno to stop with. */
static int each_piece(const char *path,
		      int (*piece)(void *ctx, const uint8_t *p, size_t n),
		      void *ctx)
{
	static __thread uint8_t buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = r < 0 ? -errno : 0;
			break;
		}
		ret = piece(ctx, buf, (size_t)r);
		if (ret)
			break;
	}
	close(fd);
	return ret;
}

struct small {
	char *buf;
	size_t cap, n;
};

static int to_buffer(void *ctx, const uint8_t *p, size_t n)
{
	struct small *s = ctx;
	if (n > s->cap - 1 - s->n)
		return -EFBIG;
	memcpy(s->buf + s->n, p, n);
	s->n += n;
	return 0;
}

/* A small file whole (at most cap - 1 bytes, NUL-terminated); -EFBIG
 * past it. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	struct small s = {.buf = buf, .cap = cap};
	int r = each_piece(path, to_buffer, &s);

	if (r)
		return r;
	buf[s.n] = '\0';
	return (ssize_t)s.n;
}

static int to_hash(void *ctx, const uint8_t *p, size_t n)
{
	crypto_generichash_update(ctx, p, n);
	return 0;
}

/* BLAKE2b-512 of the file. */
static int hash_file(const char *path, uint8_t out[MINISIGN_HASH_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, MINISIGN_HASH_BYTES);
	int r = each_piece(path, to_hash, &st);
	if (r == 0)
		crypto_generichash_final(&st, out, MINISIGN_HASH_BYTES);
	return r;
}

int release_verify(const char *file, const char *sigfile, const char *keyfile,
		   char *detail, size_t cap)
{
	char keytext[MINISIGN_FILE_BYTES_MAX + 1];
	char sigtext[MINISIGN_FILE_BYTES_MAX + 1];
	char sigpath[PATH_MAX], id[17];
	uint8_t hash[MINISIGN_HASH_BYTES];
	struct minisign_pubkey pk;
	struct minisign_sig sig;
	ssize_t n;
	int r;

	if (!sigfile) {
		if ((size_t)snprintf(sigpath, sizeof(sigpath), "%s.minisig",
				     file) >= sizeof(sigpath)) {
			snprintf(detail, cap, "%s: name too long", file);
			return -ENAMETOOLONG;
		}
		sigfile = sigpath;
	}
	n = read_small(keyfile, keytext, sizeof(keytext));
	if (n < 0) {
		snprintf(detail, cap, "%s: %s", keyfile, tpw_strerror((int)-n));
		return (int)n;
	}
	r = minisign_parse_pubkey(keytext, (size_t)n, &pk);
	if (r) {
		snprintf(detail, cap, "%s: %s", keyfile, minisign_strerror(r));
		return r;
	}
	n = read_small(sigfile, sigtext, sizeof(sigtext));
	if (n < 0) {
		snprintf(detail, cap, "%s: %s", sigfile, tpw_strerror((int)-n));
		return (int)n;
	}
	r = minisign_parse_sig(sigtext, (size_t)n, &sig);
	if (r) {
		snprintf(detail, cap, "%s: %s", sigfile, minisign_strerror(r));
		return r;
	}
	r = hash_file(file, hash);
	if (r) {
		snprintf(detail, cap, "%s: %s", file, tpw_strerror(-r));
		return r;
	}
	r = minisign_verify(&pk, &sig, hash);
	if (r == MINISIGN_OTHER_KEY) {
		char want[17];
		minisign_key_id_hex(sig.key_id, id);
		minisign_key_id_hex(pk.key_id, want);
		snprintf(detail, cap, "%s: signed by key %s, not %s", file, id,
			 want);
		return r;
	}
	if (r) {
		snprintf(detail, cap, "%s: %s", file, minisign_strerror(r));
		return r;
	}
	minisign_key_id_hex(pk.key_id, id);
	snprintf(detail, cap, "%s: verified by key %s; trusted comment: %s",
		 file, id, sig.trusted);
	return 0;
}

const char *release_self_status(const char *keyfile, char *detail, size_t cap)
{
	char self[PATH_MAX], sigpath[PATH_MAX + 16];
	ssize_t n;

	if (!keyfile || !keyfile[0]) {
		snprintf(detail, cap,
			 "not checked: no release_public_key_file");
		return "no_key";
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		snprintf(detail, cap, "/proc/self/exe: %s",
			 tpw_strerror(errno));
		return "bad";
	}
	self[n] = '\0';
	snprintf(sigpath, sizeof(sigpath), "%s.minisig", self);
	if (access(sigpath, F_OK) != 0 && errno == ENOENT) {
		snprintf(detail, cap, "%s: no signature beside it (%s)", self,
			 sigpath);
		return "unsigned";
	}
	return release_verify(self, sigpath, keyfile, detail, cap) == 0
		       ? "verified"
		       : "bad";
}
