/*
 * test_engine_audit.c - the audit tree follows the journal: one leaf per
 * record with exactly the record's bytes, a root equal to one computed
 * independently from the files, proofs that the RFC 9162 verifiers
 * accept, a transfer's timestamp leading to the entry that holds it, and
 * a journal edited on disk refused when its entry is served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/note.h"
#include "engine/audit.h"
#include "engine/engine.h"
#include "engine/logger.h"
#include "log/journal.h"
#include "log/journal_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

struct fixture {
	char dir[64];
	struct engine *e;
	struct audit *a;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *err = NULL;
	snprintf(f->dir, sizeof(f->dir), "/tmp/tpw-audit-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	logger_set_level(LOG_WARN);
	struct engine_options o = {.data_dir = f->dir, .quiet = true};
	if (engine_open(&f->e, &o, &err) != 0)
		return -1;
	if (audit_open(&f->a, f->dir, f->e, NULL, &err) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	audit_close(f->a);
	engine_close(f->e);
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", f->dir);
	int r = system(cmd);
	(void)r;
	free(f);
	return 0;
}

static void create_accounts(struct engine *e, u32 n)
{
	struct account a[64];
	u32 res[64];
	memset(a, 0, sizeof(a));
	for (u32 i = 0; i < n; i++) {
		a[i].id = i + 1;
		a[i].ledger = 1;
		a[i].code = 1;
	}
	struct engine_request r = {.op = ENGINE_CREATE_ACCOUNTS,
				   .count = n,
				   .events = a,
				   .results = res};
	assert_int_equal(engine_execute(e, &r), 0);
}

static void create_transfers(struct engine *e, u64 first, u32 n)
{
	struct transfer t[64];
	u32 res[64];
	memset(t, 0, sizeof(t));
	for (u32 i = 0; i < n; i++) {
		t[i].id = first + i;
		t[i].debit_account_id = 1 + (first + i) % 8;
		t[i].credit_account_id = 1 + (first + i + 1) % 8;
		t[i].amount = 1;
		t[i].ledger = 1;
		t[i].code = 1;
	}
	struct engine_request r = {.op = ENGINE_CREATE_TRANSFERS,
				   .count = n,
				   .events = t,
				   .results = res};
	assert_int_equal(engine_execute(e, &r), 0);
}

/* Wait (bounded) until the tree has `want` leaves. */
static void wait_size(struct audit *a, u64 want)
{
	for (int i = 0; i < 400 && audit_size(a) < want; i++) {
		struct timespec ms = {0, 5 * 1000000L};
		nanosleep(&ms, NULL);
	}
	assert_true(audit_size(a) == want);
}

static u64 build(struct fixture *f, u32 batches)
{
	create_accounts(f->e, 8);
	for (u32 b = 0; b < batches; b++)
		create_transfers(f->e, 1000 + (u64)b * 10, 1 + b % 10);
	struct engine_stats st;
	engine_stats(f->e, &st);
	wait_size(f->a, st.last_seq);
	return st.last_seq;
}

static void tree_has_one_leaf_per_record_and_the_independent_root(void **state)
{
	struct fixture *f = *state;
	u64 n = build(f, 37);
	struct journal_reader *rd;
	struct merkle_tree t;
	u8 want[MERKLE_HASH_BYTES], got[MERKLE_HASH_BYTES];

	/* Recompute the root from the files, without the audit module. */
	merkle_tree_init(&t);
	assert_int_equal(journal_reader_open(&rd, f->dir, 1), 0);
	for (u64 i = 0; i < n; i++) {
		struct journal_record r;
		const u8 *raw;
		size_t raw_bytes;
		assert_int_equal(journal_reader_next(rd, &r, &raw, &raw_bytes),
				 1);
		assert_int_equal(merkle_tree_append(&t, raw, raw_bytes), 0);

		/* And each entry served is those bytes. */
		u8 *bytes;
		size_t len;
		assert_int_equal(audit_entry(f->a, i, &bytes, &len), 0);
		assert_int_equal(len, raw_bytes);
		assert_memory_equal(bytes, raw, len);
		free(bytes);
	}
	journal_reader_close(rd);
	merkle_tree_root(&t, want);
	assert_int_equal(audit_root(f->a, n, got), 0);
	assert_memory_equal(got, want, sizeof(want));
}

static void inclusion_and_consistency_proofs_verify(void **state)
{
	struct fixture *f = *state;
	u64 n = build(f, 20);
	u8 proof[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	size_t np;
	u8 root[MERKLE_HASH_BYTES], old_root[MERKLE_HASH_BYTES];

	for (u64 size = 1; size <= n; size++) {
		assert_int_equal(audit_root(f->a, size, root), 0);
		for (u64 i = 0; i < size; i++) {
			struct audit_leaf leaf;
			assert_int_equal(audit_leaf(f->a, i, &leaf), 0);
			assert_int_equal(audit_inclusion_proof(f->a, i, size,
							       proof, &np),
					 0);
			assert_int_equal(
				merkle_verify_inclusion(
					i, size, leaf.hash,
					(const u8(*)[MERKLE_HASH_BYTES])proof,
					np, root),
				0);
		}
		for (u64 first = 1; first <= size; first++) {
			assert_int_equal(audit_root(f->a, first, old_root), 0);
			assert_int_equal(audit_consistency_proof(
						 f->a, first, size, proof, &np),
					 0);
			assert_int_equal(
				merkle_verify_consistency(
					first, size, old_root, root,
					(const u8(*)[MERKLE_HASH_BYTES])proof,
					np),
				0);
		}
	}
	/* Beyond the tree: refused. */
	assert_int_not_equal(audit_inclusion_proof(f->a, 0, n + 1, proof, &np),
			     0);
	assert_int_not_equal(audit_root(f->a, n + 1, root), 0);
}

static void a_transfer_timestamp_leads_to_its_entry(void **state)
{
	struct fixture *f = *state;
	build(f, 12);
	struct transfer t;
	const struct ledger *l = engine_read_begin(f->e);
	assert_int_equal(ledger_lookup_transfer(l, 1000 + 50 + 2, &t), 0);
	engine_read_end(f->e);

	u64 index;
	u8 *bytes;
	size_t len;
	assert_int_equal(audit_index_of_timestamp(f->a, t.timestamp, &index),
			 0);
	assert_int_equal(audit_entry(f->a, index, &bytes, &len), 0);
	/* The record's events carry no server timestamp (clients send 0),
	 * so the transfer is found by its id among the record's events. */
	bool found = false;
	for (size_t off = JOURNAL_HEADER_BYTES; off + 128 <= len; off += 128) {
		struct transfer ev;
		memcpy(&ev, bytes + off, sizeof(ev));
		if (ev.id == t.id)
			found = true;
	}
	free(bytes);
	assert_true(found);
}

static void entry_edited_on_disk_is_refused(void **state)
{
	struct fixture *f = *state;
	build(f, 5);
	char path[128];
	snprintf(path, sizeof(path), "%s/journal/%020llu.wal", f->dir, 1ull);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	u8 b;
	/* A byte inside the first record's payload (after its header). */
	assert_int_equal(pread(fd, &b, 1, 40), 1);
	b ^= 0x80;
	assert_int_equal(pwrite(fd, &b, 1, 40), 1);
	close(fd);
	u8 *bytes = NULL;
	size_t len;
	assert_int_equal(audit_entry(f->a, 0, &bytes, &len), -EBADMSG);
	assert_null(bytes);
}

static int sign_with(void *ctx, const char *text, size_t len, char *note,
		     size_t cap, size_t *note_len)
{
	const struct note_signer *signers[1] = {ctx};
	return note_sign(text, len, signers, 1, note, cap, note_len);
}

static void checkpoints_are_signed_notes_of_the_tree(void **state)
{
	struct fixture *f = *state;
	static struct note_signer signer;
	const char *err = NULL;
	char *note = malloc(NOTE_BYTES_MAX);
	struct audit *a = NULL;

	/* A second audit over the same journal, with a signer. */
	assert_int_equal(note_keygen("example.test/log", 16, &signer), 0);
	struct audit_signer as = {.origin = "example.test/log",
				  .sign = sign_with,
				  .ctx = &signer};
	u64 n = build(f, 9);
	assert_int_equal(audit_open(&a, f->dir, f->e, &as, &err), 0);
	wait_size(a, n);
	long len = 0;
	for (int i = 0; i < 400; i++) {
		len = audit_checkpoint(a, note, NOTE_BYTES_MAX);
		struct checkpoint c;
		struct note_opened o;
		if (len > 0 &&
		    note_open(note, (size_t)len, &signer.pub, 1, &o) == 0 &&
		    checkpoint_parse(o.text, o.text_len, &c) == 0 &&
		    c.size == n)
			break;
		len = 0;
		struct timespec ms = {0, 5 * 1000000L};
		nanosleep(&ms, NULL);
	}
	assert_true(len > 0);
	struct note_opened o;
	struct checkpoint c;
	assert_int_equal(note_open(note, (size_t)len, &signer.pub, 1, &o), 0);
	assert_int_equal(checkpoint_parse(o.text, o.text_len, &c), 0);
	assert_string_equal(c.origin, "example.test/log");
	u8 root[MERKLE_HASH_BYTES];
	assert_int_equal(audit_root(a, c.size, root), 0);
	assert_memory_equal(c.root, root, sizeof(root));
	/* A changed byte of the note no longer verifies. */
	note[3] ^= 1;
	assert_int_not_equal(note_open(note, (size_t)len, &signer.pub, 1, &o),
			     0);
	audit_close(a);
	/* And it was appended to DATA/audit/checkpoints. */
	char path[128];
	snprintf(path, sizeof(path), "%s/audit/checkpoints", f->dir);
	FILE *cf = fopen(path, "r");
	assert_non_null(cf);
	size_t framed;
	assert_int_equal(fscanf(cf, "%zu\n", &framed), 1);
	assert_true(framed > 0 && framed < NOTE_BYTES_MAX);
	fclose(cf);

	/* A crash mid-append leaves half a frame: the next start cuts it,
	 * and every frame in the file is whole again. */
	cf = fopen(path, "a");
	assert_non_null(cf);
	fputs("400\n\xe2\x80\x94 half a note", cf);
	fclose(cf);
	assert_int_equal(audit_open(&a, f->dir, f->e, &as, &err), 0);
	audit_request_checkpoint(a);
	create_transfers(f->e, 700000, 3); /* a new size to sign */
	wait_size(a, n + 1);
	for (int i = 0; i < 400; i++) {
		if (audit_checkpoint(a, note, NOTE_BYTES_MAX) > 0) {
			struct checkpoint c2;
			struct note_opened o2;
			long l2 = audit_checkpoint(a, note, NOTE_BYTES_MAX);
			if (note_open(note, (size_t)l2, &signer.pub, 1, &o2) ==
				    0 &&
			    checkpoint_parse(o2.text, o2.text_len, &c2) == 0 &&
			    c2.size == n + 1)
				break;
		}
		struct timespec ms = {0, 5 * 1000000L};
		nanosleep(&ms, NULL);
	}
	audit_close(a);
	cf = fopen(path, "r");
	assert_non_null(cf);
	unsigned frames = 0;
	while (fscanf(cf, "%zu\n", &framed) == 1) {
		assert_true(framed > 0 && framed < NOTE_BYTES_MAX);
		assert_int_equal(fseek(cf, (long)framed, SEEK_CUR), 0);
		frames++;
	}
	assert_true(feof(cf) || fgetc(cf) == EOF);
	long end = ftell(cf);
	fseek(cf, 0, SEEK_END);
	assert_int_equal(end, ftell(cf)); /* nothing after the last frame */
	assert_true(frames >= 2);
	fclose(cf);
	note_signer_clear(&signer);
	free(note);
}

/* A journal rewritten on disk, checksums and all, between two runs: the
 * leaf recorded by the first run no longer matches, and the tree stops
 * there instead of signing the rewritten history. */
static void rewritten_entry_is_caught_at_the_next_start(void **state)
{
	struct fixture *f = *state;
	static struct note_signer signer;
	const char *err = NULL;
	struct audit *a = NULL;

	assert_int_equal(note_keygen("example.test/log", 16, &signer), 0);
	struct audit_signer as = {.origin = "example.test/log",
				  .sign = sign_with,
				  .ctx = &signer};
	u64 n = build(f, 6);
	assert_int_equal(audit_open(&a, f->dir, f->e, &as, &err), 0);
	wait_size(a, n);
	audit_close(a); /* writes the leaves it holds */
	audit_close(f->a);
	f->a = NULL;
	engine_close(f->e);
	f->e = NULL;

	/* Record 3 (entry 2): change an event byte, then fix the CRC. */
	char path[128];
	snprintf(path, sizeof(path), "%s/journal/%020llu.wal", f->dir, 1ull);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	u64 off = 0;
	u8 head[JOURNAL_HEADER_BYTES];
	for (int k = 0; k < 2; k++) {
		assert_int_equal(pread(fd, head, sizeof(head), (off_t)off),
				 sizeof(head));
		u32 size;
		memcpy(&size, head + 8, 4);
		off += size;
	}
	assert_int_equal(pread(fd, head, sizeof(head), (off_t)off),
			 sizeof(head));
	u32 size;
	memcpy(&size, head + 8, 4);
	u8 *rec = malloc(size);
	assert_int_equal(pread(fd, rec, size, (off_t)off), (ssize_t)size);
	rec[JOURNAL_HEADER_BYTES + 48] ^= 0x01; /* the amount's low byte */
	u32 crc = crc32c(0, rec + 8, size - 8);
	memcpy(rec + 4, &crc, 4);
	assert_int_equal(pwrite(fd, rec, size, (off_t)off), (ssize_t)size);
	free(rec);
	close(fd);

	struct engine_options o = {.data_dir = f->dir, .quiet = true};
	assert_int_equal(engine_open(&f->e, &o, &err), 0);
	assert_int_equal(audit_open(&a, f->dir, f->e, &as, &err), 0);
	for (int i = 0; i < 400 && audit_healthy(a); i++) {
		struct timespec ms = {0, 5 * 1000000L};
		nanosleep(&ms, NULL);
	}
	assert_false(audit_healthy(a));
	assert_true(audit_size(a) == 2); /* entries 0 and 1 still match */
	audit_close(a);
	note_signer_clear(&signer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			tree_has_one_leaf_per_record_and_the_independent_root,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			inclusion_and_consistency_proofs_verify, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			a_transfer_timestamp_leads_to_its_entry, setup,
			teardown),
		cmocka_unit_test_setup_teardown(entry_edited_on_disk_is_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			checkpoints_are_signed_notes_of_the_tree, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			rewritten_entry_is_caught_at_the_next_start, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
