/*
 * fuzz_vault.c - libFuzzer driver for the card vault's state
 * (core/vault.h): its snapshot decoder, which reads files from disk, and
 * its journal commands (kinds 40-43).
 *
 * The first input byte picks a mode:
 *   even  snapshot: the rest goes to vault_snapshot_read; it must return
 *         NULL or a vault whose snapshot is exactly the input, whose
 *         digest is the BLAKE2b of those bytes, and whose every card is
 *         found by its token.
 *   odd   commands: the rest is a program of commands, each a kind
 *         (40-44) and an ext whose size and bytes come from the input,
 *         sometimes a well-formed card, reveal or erase of one of a few
 *         tokens.  vault_command_valid must agree with vault_apply
 *         (-EBADMSG exactly when not valid; then the digest is
 *         unchanged); an erased card stays erased with its ciphertext
 *         wiped; the program run twice gives the same digests
 *         (determinism); the final vault round-trips through its
 *         snapshot.
 */
#include "core/command.h"
#include "core/vault.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define OPS_MAX 64

struct buf {
	u8 *p;
	size_t len;
};

static int buf_sink(void *ctx, const void *p, size_t n)
{
	struct buf *b = ctx;
	u8 *q = realloc(b->p, b->len + n);
	CHECK(q != NULL);
	memcpy(q + b->len, p, n);
	b->p = q;
	b->len += n;
	return 0;
}

static struct buf snapshot(const struct vault *v)
{
	struct buf b = {0};
	CHECK(vault_snapshot_write(v, buf_sink, &b) == 0);
	CHECK(b.len == vault_snapshot_bytes(v));
	return b;
}

static int check_card(void *ctx, const struct vault_card *c)
{
	struct vault_card x;
	char t[VAULT_TOKEN_BYTES + 1] = {0};

	memcpy(t, c->token, VAULT_TOKEN_BYTES);
	CHECK(vault_find(ctx, t, &x) == 0);
	CHECK(memcmp(&x, c, sizeof(x)) == 0);
	if (c->erased) {
		for (size_t i = 0; i < sizeof(c->ct); i++)
			CHECK(c->ct[i] == 0);
	}
	return 0;
}

static void snapshot_mode(const u8 *p, size_t n)
{
	struct vault *v = vault_snapshot_read(p, n);
	u8 d[32], want[32];

	if (!v)
		return;
	struct buf b = snapshot(v);
	CHECK(b.len == n && memcmp(b.p, p, n) == 0);
	vault_digest(v, d);
	crypto_generichash(want, 32, p, n, NULL, 0);
	CHECK(memcmp(d, want, 32) == 0);
	CHECK(vault_each(v, check_card, v) == 0);
	free(b.p);
	vault_free(v);
}

static const char *const tokens[] = {"tok_a", "tok_b", "0411111111111",
				     "tok_c"};

/* The next command of the program into ext; its kind and size. */
static bool next(const u8 **p, size_t *n, u16 *kind, u8 *ext, u32 *len)
{
	if (*n < 2)
		return false;
	u8 op = (*p)[0], sel = (*p)[1];
	*p += 2;
	*n -= 2;
	*kind = (u16)(40 + op % 5);
	memset(ext, 0, 512);
	if (op & 0x80) { /* raw: size and bytes from the input */
		*len = (u32)(sel % 20) * 16;
		size_t take = *len < *n ? *len : *n;
		memcpy(ext, *p, take);
		*p += take;
		*n -= take;
		return true;
	}
	const char *t = tokens[sel % 4];
	if (*kind == VAULT_CMD_CARD) {
		struct vault_card_cmd c = {.exp_month = (u8)(1 + sel % 12),
					   .exp_year = 2030};
		memcpy(c.token, t, strlen(t));
		memcpy(c.masked, "411111******1111", 16);
		memcpy(c.brand, "visa", 4);
		memset(c.fingerprint, sel & 0x30, sizeof(c.fingerprint));
		memset(c.ct, op | 1, sizeof(c.ct));
		memcpy(ext, &c, sizeof(c));
		*len = sizeof(c);
	} else if (*kind == VAULT_CMD_ROTATE) {
		struct vault_rotate_cmd r = {.version = sel % 5,
					     .min_version = (sel >> 3) % 5};
		memcpy(ext, &r, sizeof(r));
		*len = sizeof(r);
	} else {
		struct vault_use_cmd u = {.reason = "why"};
		memcpy(u.token, t, strlen(t));
		memcpy(ext, &u, sizeof(u));
		*len = sizeof(u);
	}
	return true;
}

static void run(const u8 *p, size_t n, u8 digests[OPS_MAX][32],
		struct vault **out)
{
	struct vault *v = vault_new();
	u8 ext[512];

	CHECK(v != NULL);
	for (int i = 0; i < OPS_MAX; i++) {
		u16 kind;
		u32 len, res = 99;
		u8 before[32];
		if (!next(&p, &n, &kind, ext, &len))
			break;
		vault_digest(v, before);
		bool valid = vault_command_valid(kind, ext, len);
		int r = vault_apply(v, kind, ext, len, 1000 + (u64)i, &res);
		CHECK(valid ? r == 0 : r == -EBADMSG);
		CHECK(!valid || res <= VAULT_R_STALE_VERSION);
		vault_digest(v, digests[i]);
		if (!valid)
			CHECK(memcmp(before, digests[i], 32) == 0);
	}
	CHECK(vault_each(v, check_card, v) == 0);
	*out = v;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static u8 d1[OPS_MAX][32], d2[OPS_MAX][32];
	struct vault *a, *b;

	if (size < 1)
		return 0;
	if (sodium_init() < 0)
		abort();
	if (data[0] % 2 == 0) {
		snapshot_mode(data + 1, size - 1);
		return 0;
	}
	memset(d1, 0, sizeof(d1));
	memset(d2, 0, sizeof(d2));
	run(data + 1, size - 1, d1, &a);
	run(data + 1, size - 1, d2, &b);
	CHECK(memcmp(d1, d2, sizeof(d1)) == 0);
	struct buf s = snapshot(a);
	struct vault *back = vault_snapshot_read(s.p, s.len);
	CHECK(back != NULL);
	u8 x[32], y[32];
	vault_digest(a, x);
	vault_digest(back, y);
	CHECK(memcmp(x, y, 32) == 0);
	free(s.p);
	vault_free(back);
	vault_free(a);
	vault_free(b);
	return 0;
}
