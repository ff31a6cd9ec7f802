/*
 * fuzz_journal.c - libFuzzer driver for the journal record decoder and
 * the segment scan that recovery runs over files from disk.
 *
 * What a disk hands back is untrusted: any bytes must decode to a record
 * that lies inside the input, or be rejected, never read out of bounds.
 * The first input byte picks a mode: odd = the driver first rewrites the
 * checksum of every plausible record, so the fuzzer gets past CRC-32C and
 * reaches the seq, timestamp, type and torn-tail logic behind it.
 *
 * Checked properties:
 *   - journal_decode returns 0, -EBADMSG, or a size in [32, len] with the
 *     payload inside the input and of the size the header claims;
 *   - journal__scan_buffer keeps valid_bytes <= len, and the prefix it
 *     accepts as the last segment is accepted whole as a middle segment;
 *   - with every record covered by the audit log (covered_seq), nothing
 *     is ever cut: the scan accepts the whole input or refuses it; with
 *     the operator's truncate_corrupt_tail the last segment is always
 *     accepted, cut to a prefix that is valid whole.
 *   - a command the registry decodes (core/command.h) lies inside its
 *     payload, has the layout leaf rule 2 checks and obeys its row;
 *   - a decoded record has a leaf (log/leaf.h) or, at version 2 only, is
 *     refused as -EBADMSG (a command whose sizes do not add up); version
 *     1's leaf is SHA-256(0x00 || record); at version 2 the first, a
 *     middle and the last event each prove the record's events root;
 *   - the audit trail's decoder (log/entry_view.h) takes every record,
 *     and (mode bit 2) the input as a sealed command record's payload:
 *     it answers 0 exactly when the record and its command decode, and
 *     every text it fills is NUL-terminated printable ASCII; an
 *     override's expiry (kind 21) has the server as its author and
 *     names its override's id, a TLS switch (kind 22) has the server
 *     or (reason operator) a principal as its author and five fields,
 *     and naming the override of kinds 18, 19 and 21 adds two printable
 *     fields (no other entry changes); the card vault's entries (kinds
 *     40-43) have a principal as their author and a fixed set of fields
 *     (5, 2, 2, 3), none of them the card's ciphertext.
 *
 * Build (see Makefile: make fuzz), or alone:
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     tests/fuzz/fuzz_journal.c src/log/journal.c src/log/crc32c.c \
 *     src/log/seqdir.c src/log/fsdir.c src/log/leaf.c src/log/entry_view.c \
 *     src/crypto/b64url.c src/core/[a-z]*.c \
 *     -ljansson -lnettle -lsodium -lm -o fuzz_journal
 *   ./fuzz_journal -dict=tests/fuzz/journal.dict tests/fuzz/corpus/journal
 *
 * Seed corpus: compiled with -DJOURNAL_CORPUS_MAIN (and without
 * -fsanitize=fuzzer) this file is a program that writes the seeds:
 *   cc -std=c17 -D_GNU_SOURCE -DJOURNAL_CORPUS_MAIN -Isrc \
 *     tests/fuzz/fuzz_journal.c src/log/journal.c src/log/crc32c.c \
 *     src/log/seqdir.c src/log/fsdir.c src/log/leaf.c src/log/entry_view.c \
 *     src/crypto/b64url.c src/core/[a-z]*.c \
 *     -ljansson -lnettle -lsodium -lm -o gen && \
 *   ./gen tests/fuzz/corpus/journal
 */
#include "core/admin.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/pstate.h"
#include "core/tlsswitch.h"
#include "core/vault.h"
#include "log/entry_view.h"
#include "log/journal.h"
#include "log/leaf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_journal: %s failed (line %d)\n", \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* Rewrite the checksum of each record that a size field chains to. */
static void fix_checksums(u8 *buf, size_t len)
{
	size_t off = 0;
	while (len - off >= JOURNAL_HEADER_BYTES) {
		u32 rec_size, crc;
		memcpy(&rec_size, buf + off + 8, 4);
		if (rec_size < JOURNAL_HEADER_BYTES ||
		    rec_size > JOURNAL_RECORD_BYTES_MAX || rec_size > len - off)
			break;
		crc = crc32c(0, buf + off + 8, rec_size - 8);
		memcpy(buf + off + 4, &crc, 4);
		off += rec_size;
	}
}

static void check_leaf(const u8 *rec, size_t len)
{
	static struct leaf_event_proof pr;
	u8 h[MERKLE_HASH_BYTES], whole[MERKLE_HASH_BYTES];
	u8 root[MERKLE_HASH_BYTES];
	struct leaf_v2 p;
	const u8 *events;
	u32 n;
	int r = leaf_hash_record(rec, len, h);

	if (leaf_record_version(rec, len) == 1) {
		CHECK(r == 0);
		merkle_hash_leaf(rec, len, whole);
		CHECK(memcmp(h, whole, sizeof(h)) == 0);
		return;
	}
	CHECK(leaf_record_version(rec, len) == 2);
	CHECK(r == 0 || r == -EBADMSG);
	CHECK((r == 0) == (leaf_v2_split(rec, len, &p, &events, &n) == 0));
	if (r != 0)
		return;
	CHECK(events >= rec && events + (size_t)n * 128 <= rec + len);
	leaf_v2_hash(&p, whole);
	CHECK(memcmp(h, whole, sizeof(h)) == 0);
	u32 ks[3] = {0, n / 2, n ? n - 1 : 0};
	for (int i = 0; i < 3 && n > 0; i++) {
		CHECK(leaf_event_prove(events, n, ks[i], &pr) == 0);
		CHECK(leaf_events_root_from_proof(events + (size_t)ks[i] * 128,
						  &pr, root) == 0);
		CHECK(memcmp(root, p.events_root, sizeof(root)) == 0);
	}
}

/* The registry's decoder (core/command.h), the one the engine, doctor,
 * audit and the audit routes use: what it accepts lies inside the
 * payload, has the layout leaf rule 2 checks, and obeys its row. */
static void check_command(const u8 *payload, u32 bytes)
{
	struct command_view c;
	struct command_header h;
	int layout = command_layout(payload, bytes, &h);

	if (command_decode(payload, bytes, &c) != 0)
		return;
	CHECK(layout == 0 && c.def && c.def->kind == c.h.kind);
	CHECK(c.ext == payload + 16 &&
	      c.ext + c.h.ext_bytes <= payload + bytes);
	CHECK((const u8 *)c.events + (size_t)c.h.count * 128 ==
	      payload + bytes);
	CHECK(c.h.ext_bytes >= c.def->ext_min &&
	      c.h.ext_bytes <= c.def->ext_max &&
	      c.h.ext_bytes % c.def->ext_unit == 0);
	CHECK((c.def->events == COMMAND_EVENTS_NONE) == (c.h.count == 0));
	CHECK(command_find(c.h.kind) == c.def);
	(void)command_valid(&c); /* reads the ext inside its bounds */
}

static void check_text(const char *s, size_t size)
{
	const char *end = memchr(s, '\0', size);

	CHECK(end != NULL);
	for (const char *p = s; p < end; p++)
		CHECK(*p >= 0x20 && *p < 0x7f);
}

/* The decoded audit view of a record that journal_decode took. */
static void check_view(const u8 *rec, size_t len,
		       const struct journal_record *r)
{
	static struct entry_view v;
	struct command_view c;
	int ret = entry_view_decode(rec, len, &v);
	bool cmd_ok = r->type != JOURNAL_COMMAND ||
		      command_decode(r->payload, r->payload_bytes, &c) == 0;
	bool batch_ok = (r->type != JOURNAL_CREATE_ACCOUNTS &&
			 r->type != JOURNAL_CREATE_TRANSFERS) ||
			r->payload_bytes % 128 == 0;

	CHECK(ret == 0 || ret == -EBADMSG);
	CHECK((ret == 0) == (cmd_ok && batch_ok));
	CHECK(v.seq == r->seq && v.timestamp_ns == r->timestamp);
	CHECK(v.nfields <= ENTRY_VIEW_FIELDS_MAX);
	check_text(v.summary, sizeof(v.summary));
	check_text(v.error, sizeof(v.error));
	check_text(v.time, sizeof(v.time));
	CHECK((ret != 0) == (v.error[0] != '\0'));
	for (u32 i = 0; i < v.nfields; i++)
		check_text(v.fields[i].value, sizeof(v.fields[i].value));
	if (ret == 0 && r->type == JOURNAL_COMMAND)
		CHECK(v.command == c.def->name);
	/* An override's expiry (kind 21) is the server's: no principal. */
	if (ret == 0 && r->type == JOURNAL_COMMAND &&
	    c.h.kind == PSTATE_CMD_OVERRIDE_EXPIRED) {
		struct pstate_override_expired x;
		memcpy(&x, c.ext, sizeof(x));
		CHECK(v.server_author && !v.has_author);
		CHECK(entry_view_override_id(&v) == x.id);
	} else if (ret == 0 && r->type == JOURNAL_COMMAND &&
		   c.h.kind == TLS_CMD_SWITCH) {
		/* A TLS switch (kind 22): the server's own, or an
		 * operator's with an author. */
		struct tlsswitch x;
		memcpy(&x, c.ext, sizeof(x));
		CHECK(v.server_author != v.has_author);
		CHECK(v.has_author == (x.reason == TLSSWITCH_OPERATOR));
		CHECK(v.nfields == 5);
	} else if (ret == 0 && r->type == JOURNAL_COMMAND &&
		   c.h.kind >= VAULT_CMD_CARD && c.h.kind <= VAULT_CMD_ROTATE) {
		static const u32 nfields[] = {5, 2, 2, 3};
		CHECK(v.has_author && !v.server_author);
		CHECK(v.nfields == nfields[c.h.kind - VAULT_CMD_CARD]);
	} else {
		CHECK(!v.server_author);
	}
	/* Named administrators' entries (kinds 30..33) name their author. */
	if (ret == 0 && r->type == JOURNAL_COMMAND &&
	    c.h.kind >= ADMIN_CMD_ROLE && c.h.kind <= ADMIN_CMD_DECIDE)
		CHECK(v.has_author);
	/* Naming the override (kinds 18, 19, 21) adds its platform and
	 * range, still printable; other entries are left as they were. */
	u32 nf = v.nfields;
	bool names = ret == 0 && r->type == JOURNAL_COMMAND &&
		     (c.h.kind == PSTATE_CMD_OVERRIDE_END ||
		      c.h.kind == PSTATE_CMD_OVERRIDE_EXTEND ||
		      c.h.kind == PSTATE_CMD_OVERRIDE_EXPIRED);
	entry_view_set_override(&v, "android", "<3.9.0 \x01\x7f");
	CHECK(v.nfields == (names ? nf + 2 : nf));
	check_text(v.summary, sizeof(v.summary));
	for (u32 i = 0; i < v.nfields; i++)
		check_text(v.fields[i].value, sizeof(v.fields[i].value));
}

/* data as the payload of a sealed command record (a multiple of 16,
 * at least the header). */
static void check_view_command(const u8 *data, size_t size)
{
	size_t n = size - size % 16;
	struct journal_record r;
	u16 type = JOURNAL_COMMAND, version = JOURNAL_VERSION;
	u32 magic = JOURNAL_MAGIC, rec_size;
	u64 seq = 1, ts = 1;

	if (n < 16 || n > 64 * 1024)
		return;
	rec_size = (u32)(JOURNAL_HEADER_BYTES + n);
	u8 *rec = calloc(1, rec_size);
	if (!rec)
		return;
	memcpy(rec, &magic, 4);
	memcpy(rec + 8, &rec_size, 4);
	memcpy(rec + 12, &type, 2);
	memcpy(rec + 14, &version, 2);
	memcpy(rec + 16, &seq, 8);
	memcpy(rec + 24, &ts, 8);
	memcpy(rec + JOURNAL_HEADER_BYTES, data, n);
	journal_record_seal(rec, rec_size, false, 0);
	CHECK(journal_decode(rec, rec_size, &r) == (long)rec_size);
	check_view(rec, rec_size, &r);
	free(rec);
}

static void check_decode(const u8 *buf, size_t len)
{
	struct journal_record r;
	struct journal_frame f;
	long n = journal_decode(buf, len, &r);
	long fn = journal_frame(buf, len, &f);

	CHECK(n == 0 || n == -EBADMSG || n > 0);
	CHECK(fn == 0 || fn == -EBADMSG || fn > 0);
	/* A record decoded has a frame of its size: the frame is the part
	 * of the decode that does not ask the version and type. */
	if (n > 0)
		CHECK(fn == n && f.size == (u32)n && f.seq == r.seq &&
		      f.type == r.type);
	if (fn > 0)
		CHECK((size_t)fn >= JOURNAL_HEADER_BYTES && (size_t)fn <= len);
	if (n <= 0)
		return;
	CHECK((size_t)n >= JOURNAL_HEADER_BYTES && (size_t)n <= len);
	CHECK((size_t)n <= JOURNAL_RECORD_BYTES_MAX);
	CHECK(r.payload_bytes == (size_t)n - JOURNAL_HEADER_BYTES);
	CHECK((const u8 *)r.payload == buf + JOURNAL_HEADER_BYTES);
	if (r.type == JOURNAL_PULSE)
		CHECK(r.payload_bytes == 0);
	else if (r.type == JOURNAL_COMMAND)
		CHECK(r.payload_bytes % 16 == 0 && r.payload_bytes >= 16);
	else
		CHECK(r.payload_bytes % 128 == 0 && r.payload_bytes > 0);
	check_leaf(buf, (size_t)n);
	if (r.type == JOURNAL_COMMAND)
		check_command(r.payload, r.payload_bytes);
	check_view(buf, (size_t)n, &r);
	/* Touch the payload's first and last bytes: ASan checks bounds. */
	if (r.payload_bytes) {
		volatile u8 a = ((const u8 *)r.payload)[0];
		volatile u8 b = ((const u8 *)r.payload)[r.payload_bytes - 1];
		(void)a;
		(void)b;
	}
}

static void check_scan(const u8 *buf, size_t len)
{
	char err[512];
	size_t valid = len + 1, again = len + 1;
	u64 first = 1;
	struct journal_record r;

	if (journal_decode(buf, len, &r) > 0)
		first = r.seq;
	int rc = journal__scan_buffer(buf, len, first, true, &valid, err,
				      sizeof(err));
	/* -EPROTONOSUPPORT: a whole record (its frame holds) of a version or
	 * type this release does not read, refused by name, never cut. */
	CHECK(rc == 0 || rc == -EBADMSG ||
	      (rc == -EPROTONOSUPPORT && strstr(err, "does not read")));
	if (rc != 0)
		return;
	CHECK(valid <= len);
	/* What survives as a last segment is whole and valid. */
	rc = journal__scan_buffer(buf, valid, first, false, &again, err,
				  sizeof(err));
	CHECK(rc == 0 && again == valid);
}

static void check_scan_covered(const u8 *buf, size_t len)
{
	char err[1024];
	size_t valid = len + 1, again = len + 1;
	u64 first = 1;
	struct journal_record r;

	if (journal_decode(buf, len, &r) > 0)
		first = r.seq;
	/* Everything covered: a cut would drop an acknowledged record. */
	int rc = journal__scan_buffer_covered(buf, len, first, true, UINT64_MAX,
					      false, &valid, err, sizeof(err));
	CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT);
	if (rc == 0)
		CHECK(valid == len);
	/* The operator accepts the loss: always a whole valid prefix, but
	 * for a whole record another release wrote, which is not corrupt
	 * and never cut. */
	valid = len + 1;
	rc = journal__scan_buffer_covered(buf, len, first, true, UINT64_MAX,
					  true, &valid, err, sizeof(err));
	if (rc == -EPROTONOSUPPORT) {
		CHECK(strstr(err, "does not read") != NULL);
		return;
	}
	CHECK(rc == 0 && valid <= len);
	rc = journal__scan_buffer(buf, valid, first, false, &again, err,
				  sizeof(err));
	CHECK(rc == 0 && again == valid);
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	u8 *buf;
	size_t len;

	if (size == 0)
		return 0;
	len = size - 1;
	/* A copy of exactly len bytes, so ASan sees any read past it. */
	buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	if (len)
		memcpy(buf, data + 1, len);
	if (data[0] & 1)
		fix_checksums(buf, len);
	check_decode(buf, len);
	if (data[0] & 2)
		check_view_command(buf, len);
	check_scan(buf, len);
	check_scan_covered(buf, len);
	free(buf);
	return 0;
}

#ifdef JOURNAL_CORPUS_MAIN
/* ---- Seed writer ---- */

struct rec {
	u32 magic;
	u32 crc;
	u32 size;
	u16 type;
	u16 version;
	u64 seq;
	u64 ts;
};

/* Encode one record into out; fix: recompute the checksum. */
static size_t encode(u8 *out, u16 type, u16 version, u64 seq, u64 ts,
		     u32 payload_bytes, u8 fill)
{
	struct rec h = {JOURNAL_MAGIC,
			0,
			JOURNAL_HEADER_BYTES + payload_bytes,
			type,
			version,
			seq,
			ts};
	memcpy(out, &h, sizeof(h));
	memset(out + JOURNAL_HEADER_BYTES, fill, payload_bytes);
	h.crc = crc32c(0, out + 8, h.size - 8);
	memcpy(out + 4, &h.crc, 4);
	return h.size;
}

static void put(const char *dir, const char *name, u8 mode, const u8 *p,
		size_t n)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(&mode, 1, 1, f) == 1);
	CHECK(n == 0 || fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

int main(int argc, char **argv)
{
	static u8 b[16384];
	size_t n, m;
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/journal";

	n = encode(b, JOURNAL_CREATE_ACCOUNTS, 1, 1, 1000, 128, 0xa1);
	put(dir, "accounts-1", 0, b, n);
	n = encode(b, JOURNAL_CREATE_TRANSFERS, 1, 1, 1000, 128, 0x7e);
	put(dir, "transfers-1", 0, b, n);
	n = encode(b, JOURNAL_CREATE_TRANSFERS, 1, 9, 5000, 3 * 128, 0x33);
	put(dir, "transfers-3", 0, b, n);
	n = encode(b, JOURNAL_PULSE, 1, 2, 2000, 0, 0);
	put(dir, "pulse", 0, b, n);

	n = 0;
	n += encode(b + n, JOURNAL_CREATE_ACCOUNTS, 1, 1, 10, 256, 1);
	n += encode(b + n, JOURNAL_CREATE_TRANSFERS, 1, 2, 10, 128, 2);
	n += encode(b + n, JOURNAL_PULSE, 1, 3, 11, 0, 0);
	n += encode(b + n, JOURNAL_CREATE_TRANSFERS, 1, 4, 12, 128, 4);
	m = n;
	n += encode(b + n, JOURNAL_CREATE_TRANSFERS, 1, 5, 13, 128, 5);
	put(dir, "segment-5", 0, b, n);
	put(dir, "segment-torn-tail", 0, b, n - 50);
	b[m + 100] ^= 0x10;
	put(dir, "segment-bad-last", 0, b, n);
	b[m + 100] ^= 0x10;
	b[40] ^= 0x01;
	put(dir, "segment-bad-middle", 0, b, n);
	b[40] ^= 0x01;
	/* Mode 1: the driver fixes checksums, so these reach the checks
	 * behind the CRC. */
	struct rec h;
	memcpy(&h, b + m, sizeof(h));
	h.seq = 7;
	memcpy(b + m, &h, sizeof(h));
	put(dir, "segment-seq-gap", 1, b, n);
	h.seq = 5;
	h.ts = 1;
	memcpy(b + m, &h, sizeof(h));
	put(dir, "segment-ts-backwards", 1, b, n);

	n = encode(b, JOURNAL_CREATE_TRANSFERS, 3, 1, 1, 128, 0);
	put(dir, "bad-version", 0, b, n);
	/* Version 2 (leaf rule 2): a batch, a pulse, a guarded command of
	 * 40 events (two chunks), one whose count does not add up, and a
	 * segment that goes on at version 2 after version 1. */
	n = encode(b, JOURNAL_CREATE_TRANSFERS, 2, 9, 5000, 3 * 128, 0x33);
	put(dir, "v2-transfers-3", 0, b, n);
	n = encode(b, JOURNAL_PULSE, 2, 2, 2000, 0, 0);
	put(dir, "v2-pulse", 0, b, n);
	struct command_header ch = {.kind = AUTH_CMD_TRANSFERS_GUARDED,
				    .ext_bytes = 128,
				    .count = 40};
	n = encode(b, JOURNAL_COMMAND, 2, 3, 3000, 16 + 128 + 40 * 128, 0x5a);
	memcpy(b + JOURNAL_HEADER_BYTES, &ch, sizeof(ch));
	put(dir, "v2-command-guarded-40", 1, b, n);
	ch.count = 41;
	memcpy(b + JOURNAL_HEADER_BYTES, &ch, sizeof(ch));
	put(dir, "v2-command-count-wrong", 1, b, n);
	/* An override's expiry entry (kind 21), as the server writes it. */
	struct command_header xh = {.kind = PSTATE_CMD_OVERRIDE_EXPIRED,
				    .ext_bytes = 16};
	struct pstate_override_expired xe = {.id = 3,
					     .expires_at_s = 1799971260};
	n = encode(b, JOURNAL_COMMAND, 2, 4, 4000, 32, 0);
	memcpy(b + JOURNAL_HEADER_BYTES, &xh, sizeof(xh));
	memcpy(b + JOURNAL_HEADER_BYTES + 16, &xe, sizeof(xe));
	put(dir, "v2-command-override-expired", 1, b, n);
	/* A TLS switch entry (kind 22), as the server writes it when
	 * the primary certificate expired. */
	struct command_header th = {.kind = TLS_CMD_SWITCH, .ext_bytes = 128};
	struct tlsswitch ts = {.reason = TLSSWITCH_EXPIRED,
			       .from = TLSSWITCH_PRIMARY,
			       .to = TLSSWITCH_STANDBY};
	memcpy(ts.from_serial, "1001", 4);
	memcpy(ts.to_serial, "2002", 4);
	n = encode(b, JOURNAL_COMMAND, 2, 4, 4000, 16 + 128, 0);
	memcpy(b + JOURNAL_HEADER_BYTES, &th, sizeof(th));
	memcpy(b + JOURNAL_HEADER_BYTES + 16, &ts, sizeof(ts));
	put(dir, "v2-command-tls-switch", 1, b, n);
	/* An organisation principal (kind 24), as the route writes it. */
	struct command_header oh = {.kind = AUTH_CMD_PRINCIPAL_X509,
				    .ext_bytes = 128};
	struct auth_principal op = {.name = "partner-bank"};
	struct auth_x509_pub ox = {.magic = AUTH_X509_MAGIC,
				   .not_before = 1796000000,
				   .not_after = 1799000000};
	memset(op.id, 0x27, sizeof(op.id));
	memcpy(op.pub, &ox, sizeof(ox));
	n = encode(b, JOURNAL_COMMAND, 2, 4, 4000, 16 + 128, 0);
	memcpy(b + JOURNAL_HEADER_BYTES, &oh, sizeof(oh));
	memcpy(b + JOURNAL_HEADER_BYTES + 16, &op, sizeof(op));
	put(dir, "v2-command-principal-x509", 1, b, n);
	/* The card vault's entries (kinds 40-43), as the routes write
	 * them: a card tokenized, revealed, erased; a key rotation. */
	struct command_header vh = {.kind = VAULT_CMD_CARD,
				    .ext_bytes = sizeof(struct vault_card_cmd)};
	struct vault_card_cmd vc = {.token = "tok_0123456789abcdef01234567",
				    .masked = "411111******1111",
				    .brand = "visa",
				    .exp_month = 12,
				    .exp_year = 2031};
	n = encode(b, JOURNAL_COMMAND, 2, 4, 4000, 16 + sizeof(vc), 0);
	memcpy(b + JOURNAL_HEADER_BYTES, &vh, sizeof(vh));
	memcpy(b + JOURNAL_HEADER_BYTES + 16, &vc, sizeof(vc));
	put(dir, "v2-command-vault-card", 1, b, n);
	struct vault_use_cmd vu = {.token = "tok_0123456789abcdef01234567",
				   .reason = "chargeback 77"};
	vh.kind = VAULT_CMD_REVEAL;
	vh.ext_bytes = sizeof(vu);
	n = encode(b, JOURNAL_COMMAND, 2, 4, 4000, 16 + sizeof(vu), 0);
	memcpy(b + JOURNAL_HEADER_BYTES, &vh, sizeof(vh));
	memcpy(b + JOURNAL_HEADER_BYTES + 16, &vu, sizeof(vu));
	put(dir, "v2-command-vault-reveal", 1, b, n);
	vh.kind = VAULT_CMD_ERASE;
	memcpy(b + JOURNAL_HEADER_BYTES, &vh, sizeof(vh));
	put(dir, "v2-command-vault-erase", 1, b, n);
	struct vault_rotate_cmd vr = {
		.version = 2, .min_version = 2, .rewrapped = 4};
	vh.kind = VAULT_CMD_ROTATE;
	vh.ext_bytes = sizeof(vr);
	n = encode(b, JOURNAL_COMMAND, 2, 4, 4000, 16 + sizeof(vr), 0);
	memcpy(b + JOURNAL_HEADER_BYTES, &vh, sizeof(vh));
	memcpy(b + JOURNAL_HEADER_BYTES + 16, &vr, sizeof(vr));
	put(dir, "v2-command-vault-rotate", 1, b, n);
	/* A dual-control decision (kind 33): a break-glass with a reason. */
	struct command_header dh = {.kind = ADMIN_CMD_DECIDE,
				    .ext_bytes =
					    sizeof(struct admin_decide_cmd)};
	struct admin_decide_cmd dc = {.request = 2,
				      .decision = ADMIN_BREAK_GLASS,
				      .reason = "INC-42"};
	memset(dc.author, 0x31, sizeof(dc.author));
	memset(dc.requester, 0x31, sizeof(dc.requester));
	n = encode(b, JOURNAL_COMMAND, 2, 4, 4000, 16 + dh.ext_bytes, 0);
	memcpy(b + JOURNAL_HEADER_BYTES, &dh, sizeof(dh));
	memcpy(b + JOURNAL_HEADER_BYTES + 16, &dc, sizeof(dc));
	put(dir, "v2-command-admin-decide", 1, b, n);
	/* A kind 20 override for the view: its message_bytes ('AAAA')
	 * far past the ext, which the view must not read beyond. */
	struct command_header c20 = {
		.kind = PSTATE_CMD_OVERRIDE_2,
		.ext_bytes = sizeof(struct pstate_override_2) + 32};
	n = encode(b, JOURNAL_COMMAND, 2, 4, 4000, 16 + c20.ext_bytes, 0x41);
	memcpy(b + JOURNAL_HEADER_BYTES, &c20, sizeof(c20));
	put(dir, "v2-command-override-2", 1, b, n);
	n = 0;
	n += encode(b + n, JOURNAL_CREATE_ACCOUNTS, 1, 1, 10, 256, 1);
	n += encode(b + n, JOURNAL_CREATE_TRANSFERS, 2, 2, 11, 384, 2);
	n += encode(b + n, JOURNAL_PULSE, 2, 3, 12, 0, 0);
	put(dir, "v2-segment-after-v1", 0, b, n);
	n = encode(b, 9, 1, 1, 1, 128, 0);
	put(dir, "bad-type", 0, b, n);
	n = encode(b, JOURNAL_PULSE, 1, 1, 1, 128, 0);
	put(dir, "pulse-with-payload", 0, b, n);
	n = encode(b, JOURNAL_CREATE_ACCOUNTS, 1, 1, 1, 100, 0);
	put(dir, "accounts-odd-size", 0, b, n);
	n = encode(b, JOURNAL_CREATE_TRANSFERS, 1, 1, 1, 128, 0);
	b[5] ^= 0xff;
	put(dir, "bad-checksum", 0, b, n);
	memcpy(b, "TPWLxxxx\x00\x00\x00\x01", 12);
	put(dir, "bad-size", 0, b, 40);
	put(dir, "partial-header", 0, (const u8 *)"TPWL\x12\x34", 6);
	put(dir, "empty", 0, b, 0);
	return 0;
}
#endif
