/*
 * vault.h - the card vault as state (docs/vault.md): which tokens exist,
 * the public facts of each card (fingerprint, masked PAN, brand, expiry),
 * the card's ciphertext, and whether it was erased; and the journal
 * commands that change it (kinds 40-43, core/command.h).
 *
 * What is NOT here: any key.  The card's ciphertext is sealed
 * (XChaCha20-Poly1305) under a data key of its own that lives only in
 * the vault's key store outside the journal (engine/vault.h); a record
 * here is therefore safe to journal, replicate, back up and publish in
 * the audit views, and an erasure (destroying that data key) makes the
 * ciphertext here useless for good.  No PAN is ever in a record.
 *
 * The state is a table of cards indexed by token (an open-addressing
 * hash of the token text).  The applier is deterministic: the record's
 * bytes and timestamp only.  Erasing wipes the ciphertext from the state
 * too (the journal keeps its copy, which the destroyed key no longer
 * opens).  Pure: no I/O, no clock.
 */
#ifndef TPW_CORE_VAULT_H
#define TPW_CORE_VAULT_H

#include "core/ledger.h"
#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

/* A token: 1..VAULT_TOKEN_BYTES - 1 characters of [0-9A-Za-z_],
 * NUL-padded in records. */
#define VAULT_TOKEN_BYTES	32
#define VAULT_FINGERPRINT_BYTES 32
#define VAULT_MASKED_BYTES	20 /* 12..19 of [0-9*], NUL-padded */
#define VAULT_BRAND_BYTES	16
#define VAULT_REASON_BYTES	128 /* 1..127 printable ASCII, NUL-padded */
#define VAULT_NONCE_BYTES	24
/* The sealed card: VAULT_PLAIN_BYTES of plain text (below) + the tag. */
#define VAULT_PLAIN_BYTES 96
#define VAULT_CT_BYTES	  (VAULT_PLAIN_BYTES + 16)
/* The plain text's layout: PAN length, PAN digits, holder name's length,
 * holder name (UTF-8), zero. */
#define VAULT_PLAIN_PAN_LEN  0
#define VAULT_PLAIN_PAN	     1
#define VAULT_PLAIN_NAME_LEN 20
#define VAULT_PLAIN_NAME     21
#define VAULT_NAME_BYTES_MAX 64
/* Cards in a vault (each about 300 bytes in memory). */
#define VAULT_CARDS_MAX (1u << 22)

/* The outcome of a vault command (results[0]): on the wire as names. */
#define VAULT_RESULTS(X)                                                       \
	X(OK, 0, "ok")                                                         \
	X(EXISTS, 1, "token_exists")                                           \
	X(UNKNOWN, 2, "unknown_token")                                         \
	X(ERASED, 3, "erased")                                                 \
	X(FULL, 4, "vault_full")                                               \
	X(STALE_VERSION, 5, "stale_key_version")

enum vault_result {
#define VAULT_RESULT_ENUM_(name, code, text) VAULT_R_##name = code,
	VAULT_RESULTS(VAULT_RESULT_ENUM_)
#undef VAULT_RESULT_ENUM_
};

const char *vault_result_name(u32 result);

/* The ext of VAULT_CMD_CARD (kind 40): a card tokenized. */
struct vault_card_cmd {
	char token[VAULT_TOKEN_BYTES];
	u8 fingerprint[VAULT_FINGERPRINT_BYTES];
	char masked[VAULT_MASKED_BYTES];
	char brand[VAULT_BRAND_BYTES];
	u8 exp_month; /* 1..12 */
	u8 reserved;
	u16 exp_year;  /* 2000..9999 */
	u8 author[32]; /* who tokenized (zero: the administrator) */
	u8 nonce[VAULT_NONCE_BYTES];
	u8 ct[VAULT_CT_BYTES]; /* AAD: token, fingerprint */
};
_Static_assert(sizeof(struct vault_card_cmd) == 272, "vault card ext");

/* The ext of VAULT_CMD_REVEAL (41) and VAULT_CMD_ERASE (42): who, which
 * token, why. */
struct vault_use_cmd {
	char token[VAULT_TOKEN_BYTES];
	u8 author[32];
	char reason[VAULT_REASON_BYTES];
};
_Static_assert(sizeof(struct vault_use_cmd) == 192, "vault use ext");

/* The ext of VAULT_CMD_ROTATE (43): the vault key's new version, the
 * lowest version still kept, how many data keys were rewrapped. */
struct vault_rotate_cmd {
	u32 version;
	u32 min_version;
	u32 rewrapped;
	u32 reserved;
	u8 author[32];
};
_Static_assert(sizeof(struct vault_rotate_cmd) == 48, "vault rotate ext");

/* A card as the state holds it (a copy for readers); its bytes are its
 * snapshot's, so it has no implicit padding. */
struct vault_card {
	u64 created_ns, erased_ns;
	u32 reveals;
	u16 exp_year;
	u8 exp_month;
	u8 erased;
	char token[VAULT_TOKEN_BYTES];
	u8 fingerprint[VAULT_FINGERPRINT_BYTES];
	char masked[VAULT_MASKED_BYTES];
	char brand[VAULT_BRAND_BYTES];
	u8 nonce[VAULT_NONCE_BYTES];
	u8 ct[VAULT_CT_BYTES];
	u8 reserved[4];
};
_Static_assert(sizeof(struct vault_card) == 264, "vault card");

struct vault;

struct vault *vault_new(void);
void vault_free(struct vault *v);

/* Is s[0..n) a token (the characters and length above)? */
bool vault_token_valid(const char *s, size_t n);

/* command.h's validator for kinds 40-43. */
bool vault_command_valid(u16 kind, const void *ext, u32 ext_bytes);

/* Apply a valid vault command; results[0] gets a VAULT_R_*.  Returns 0,
 * or -ENOMEM (the table could not grow). */
int vault_apply(struct vault *v, u16 kind, const void *ext, u32 ext_bytes,
		u64 timestamp, u32 *results);

/* The card of token (NUL-terminated): 0 and a copy, or -ENOENT. */
int vault_find(const struct vault *v, const char *token,
	       struct vault_card *out);

/* Up to max tokens of cards not erased whose fingerprint is fp (into
 * tokens[i], VAULT_TOKEN_BYTES each): how many there are in all.
 * NEEDSWORK: a scan of every card; an index by fingerprint when vaults
 * grow past a few hundred thousand cards. */
size_t vault_by_fingerprint(const struct vault *v, const u8 *fp,
			    char (*tokens)[VAULT_TOKEN_BYTES], size_t max);

/* Every token (erased ones too) in table order, for the key store's
 * upkeep: calls fn(ctx, card) for each; stops at a non-zero return. */
int vault_each(const struct vault *v,
	       int (*fn)(void *ctx, const struct vault_card *c), void *ctx);

/* Counts: cards, erased cards; the vault key's version and minimum as
 * the last rotation journaled them (0: never rotated). */
void vault_counts(const struct vault *v, u64 *cards, u64 *erased,
		  u32 *key_version, u32 *min_version);

/* Snapshot: a magic (VAULT_SNAP_MAGIC), a version, the counts, then each
 * card; the digest is BLAKE2b-256 of the same bytes. */
#define VAULT_SNAP_MAGIC 0x544c554156575054ull /* "TPWVAULT" */
u64 vault_snapshot_bytes(const struct vault *v);
int vault_snapshot_write(const struct vault *v, ledger_sink_fn sink, void *ctx);
struct vault *vault_snapshot_read(const u8 *buf, size_t len);
void vault_digest(const struct vault *v, u8 out[32]);
/* Has the vault no card and no rotation (its digest is then left out of
 * the state's, which stays what it was before the vault existed)? */
bool vault_empty(const struct vault *v);

#endif
