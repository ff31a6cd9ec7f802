/*
 * test_engine_audit.c - the audit tree follows the journal: one leaf per
 * record with exactly the record's bytes, a root equal to one computed
 * independently from the files, proofs that the RFC 9162 verifiers
 * accept, a transfer's timestamp leading to the entry that holds it, a
 * journal edited on disk refused when its entry is served, witnesses
 * (silent, or slow) that hold back neither the tree nor its checkpoints,
 * and a witness's 409 read only when its size is canonical decimal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/cosig.h"
#include "crypto/note.h"
#include "engine/audit.h"
#include "engine/engine.h"
#include "engine/logger.h"
#include "log/journal.h"
#include "log/journal_reader.h"
#include "log/leaf.h"
#include "engine/witness.h"
#include "log/fsdir.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
	audit_close(f->a);
	engine_close(f->e);
	assert_int_equal(fsdir_remove_tree(f->dir), 0);
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
		/* Leaf rule 2 (log/leaf.h): every record is written at
		 * version 2 now. */
		u8 leaf[MERKLE_HASH_BYTES];
		assert_int_equal(leaf_record_version(raw, raw_bytes), 2);
		assert_int_equal(leaf_hash_record(raw, raw_bytes, leaf), 0);
		assert_int_equal(merkle_tree_append_hash(&t, leaf, NULL, NULL),
				 0);

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
 * there instead of signing the rewritten history.  DATA/audit/state
 * vouches for the audit files, but the engine replayed the record into
 * its state at this start (no store, no snapshot), so it is compared. */
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
	journal_record_seal(rec, size, false, 0);
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

/* Open the log with a signer, as serve does: it must take `loaded`
 * entries from its files, then reach n leaves with the same root. */
static void reopen_expect(struct fixture *f, const struct audit_signer *as,
			  u64 n, u64 loaded, const u8 root[MERKLE_HASH_BYTES])
{
	struct audit *a = NULL;
	const char *err = NULL;
	u8 got[MERKLE_HASH_BYTES];

	assert_int_equal(audit_open(&a, f->dir, f->e, as, &err), 0);
	assert_true(audit_loaded(a) == loaded);
	wait_size(a, n);
	assert_true(audit_healthy(a));
	assert_int_equal(audit_root(a, n, got), 0);
	assert_memory_equal(got, root, MERKLE_HASH_BYTES);
	audit_close(a);
}

static void flip_byte(const char *dir, const char *name, long at)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/audit/%s", dir, name);
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, at, SEEK_SET), 0);
	int c = fgetc(fp);
	assert_true(c != EOF);
	assert_int_equal(fseek(fp, at, SEEK_SET), 0);
	assert_int_equal(fputc(c ^ 0x20, fp), c ^ 0x20);
	assert_int_equal(fclose(fp), 0);
}

/* DATA/audit/state vouches for the files: a start takes every entry from
 * them; a flipped byte in the positions or the state, short leaves or
 * positions, or no state at all make it rebuild from the journal to the
 * same root, and the files written back at the stop are taken again. */
static void audit_files_are_loaded_only_when_their_state_vouches(void **state)
{
	struct fixture *f = *state;
	static struct note_signer signer;
	struct audit *a = NULL;
	const char *err = NULL;
	u8 root[MERKLE_HASH_BYTES];
	char path[128];

	assert_int_equal(note_keygen("example.test/log", 16, &signer), 0);
	struct audit_signer as = {.origin = "example.test/log",
				  .sign = sign_with,
				  .ctx = &signer};
	u64 n = build(f, 30);
	assert_int_equal(audit_open(&a, f->dir, f->e, &as, &err), 0);
	assert_true(audit_loaded(a) == 0); /* a new directory */
	wait_size(a, n);
	assert_int_equal(audit_root(a, n, root), 0);
	audit_close(a);
	/* Records the engine replays at a start are compared whatever the
	 * files say: without a store or a snapshot, all of them. */
	audit_close(f->a);
	f->a = NULL;
	reopen_expect(f, &as, n, 0, root);
	/* With the store (built from the journal once, flushed at the
	 * close) the engine replays nothing, and every entry is loaded. */
	engine_close(f->e);
	struct engine_options o = {
		.data_dir = f->dir, .quiet = true, .store = true};
	assert_int_equal(engine_open(&f->e, &o, &err), 0);
	assert_true(engine_recovered_from(f->e) == 0);
	engine_close(f->e);
	assert_int_equal(engine_open(&f->e, &o, &err), 0);
	assert_true(engine_recovered_from(f->e) == n);

	reopen_expect(f, &as, n, n, root);
	flip_byte(f->dir, "positions", 32 * 3 + 1);
	reopen_expect(f, &as, n, 0, root);
	reopen_expect(f, &as, n, n, root);
	flip_byte(f->dir, "state", 30);
	reopen_expect(f, &as, n, 0, root);
	reopen_expect(f, &as, n, n, root);
	snprintf(path, sizeof(path), "%s/audit/leaves", f->dir);
	assert_int_equal(truncate(path, 32 * 5), 0);
	reopen_expect(f, &as, n, 0, root);
	snprintf(path, sizeof(path), "%s/audit/positions", f->dir);
	assert_int_equal(truncate(path, 32 * 5), 0);
	reopen_expect(f, &as, n, 0, root);
	snprintf(path, sizeof(path), "%s/audit/state", f->dir);
	assert_int_equal(unlink(path), 0);
	reopen_expect(f, &as, n, 0, root);
	reopen_expect(f, &as, n, n, root);
	note_signer_clear(&signer);
}

static u64 now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000u + (u64)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

/* A non-blocking TCP listener on 127.0.0.1 (port in *port): connections
 * complete in its backlog whether or not anyone accepts them. */
static int listen_loopback(unsigned *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 128), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* "http://127.0.0.1:PORT NAME+<id>+<key>" for cosigner key pub. */
static void witness_spec(char *buf, size_t cap, unsigned port, const char *name,
			 const u8 pub[32])
{
	u8 raw[33];
	char b64[64];
	raw[0] = COSIG_ALG_ED25519;
	memcpy(raw + 1, pub, 32);
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(buf, cap, "http://127.0.0.1:%u %s+%08x+%s", port, name,
		 (unsigned)cosig_key_id(name, strlen(name), pub), b64);
}

/* The size of a checkpoint note signed by signer, and its signature
 * lines in *sigs; 0 when it is not one. */
static u64 note_size(const char *note, long len,
		     const struct note_signer *signer, u32 *sigs)
{
	struct note_opened o;
	struct checkpoint c;

	if (len <= 0 ||
	    note_open(note, (size_t)len, &signer->pub, 1, &o) != 0 ||
	    checkpoint_parse(o.text, o.text_len, &c) != 0)
		return 0;
	if (sigs)
		*sigs = o.sigs;
	return c.size;
}

/* Two witnesses whose port accepts connections and never answers.
 * Before the witness thread, each checkpoint waited WITNESS_TIMEOUT_MS
 * for each of them on the audit thread: with two, a transfer could wait
 * about three seconds for its checkpoint.  Now the tree and the
 * checkpoints keep their pace (AUDIT_CHECKPOINT_INTERVAL_MS), the
 * witnesses are tried in the background, and closing does not wait out
 * an exchange. */
static void
a_dead_witness_holds_back_neither_the_tree_nor_checkpoints(void **state)
{
	enum { TRANSFERS = 20, SPACING_MS = 150, COVER_MS_MAX = 1500 };
	struct fixture *f = *state;
	static struct note_signer signer, wsigner;
	static struct witness_peer peers[2];
	char spec[WITNESS_SPEC_BYTES_MAX], werr[128];
	const char *err = NULL;
	char *note = malloc(NOTE_BYTES_MAX);
	struct audit *a = NULL;
	unsigned port[2];
	int lfd[2];

	assert_non_null(note);
	assert_int_equal(note_keygen("example.test/log", 16, &signer), 0);
	assert_int_equal(note_keygen("dead.example/w", 14, &wsigner), 0);
	for (int k = 0; k < 2; k++) {
		lfd[k] = listen_loopback(&port[k]);
		witness_spec(spec, sizeof(spec), port[k], "dead.example/w",
			     wsigner.pub.public_key);
		assert_int_equal(
			witness_peer_parse(spec, &peers[k], werr, sizeof(werr)),
			0);
	}
	struct audit_signer as = {.origin = "example.test/log",
				  .sign = sign_with,
				  .ctx = &signer,
				  .witnesses = peers,
				  .nwitnesses = 2};
	u64 n = build(f, 2);
	assert_int_equal(audit_open(&a, f->dir, f->e, &as, &err), 0);
	wait_size(a, n);

	u64 seq[TRANSFERS], made_at[TRANSFERS], covered_at[TRANSFERS];
	u64 t0 = now_ms(), served = 0;
	unsigned made = 0, covered = 0;
	/* At most 6 s (20 ticks of 10 ms per transfer, and 2 s more). */
	for (int tick = 0; tick < 600 && covered < TRANSFERS; tick++) {
		if (made < TRANSFERS && now_ms() >= t0 + made * SPACING_MS) {
			struct engine_stats st;
			create_transfers(f->e, 500000 + made, 1);
			engine_stats(f->e, &st);
			seq[made] = st.last_seq;
			made_at[made] = now_ms();
			covered_at[made] = 0;
			made++;
		}
		u32 sigs = 0;
		long len = audit_checkpoint(a, note, NOTE_BYTES_MAX);
		u64 size = note_size(note, len, &signer, &sigs);
		assert_true(size >= served); /* never back */
		served = size;
		if (size > 0)
			assert_int_equal(sigs, 1); /* nobody cosigned */
		for (unsigned i = 0; i < made; i++) {
			if (covered_at[i] == 0 && seq[i] <= size) {
				covered_at[i] = now_ms();
				covered++;
			}
		}
		sleep_ms(10);
	}
	assert_int_equal(made, TRANSFERS);
	u64 worst = 0;
	for (unsigned i = 0; i < TRANSFERS; i++) {
		if (covered_at[i] && covered_at[i] - made_at[i] > worst)
			worst = covered_at[i] - made_at[i];
		if (covered_at[i] == 0 ||
		    covered_at[i] - made_at[i] > COVER_MS_MAX)
			fail_msg("transfer %u (seq %llu) covered after %lld ms",
				 i, (unsigned long long)seq[i],
				 covered_at[i] ? (long long)(covered_at[i] -
							     made_at[i])
					       : -1ll);
	}
	print_message("dead witnesses: every transfer in a checkpoint within "
		      "%llu ms\n",
		      (unsigned long long)worst);
	assert_true(audit_size(a) >= seq[TRANSFERS - 1]);

	/* Closing abandons the exchange in progress. */
	u64 closing = now_ms();
	audit_close(a);
	assert_true(now_ms() - closing < 400);

	/* Both witnesses were tried, in the background. */
	unsigned tried[2] = {0, 0};
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 100; i++) {
			int c = accept4(lfd[k], NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				break;
			close(c);
			tried[k]++;
		}
		close(lfd[k]);
	}
	assert_true(tried[0] >= 1 && tried[1] >= 1);
	note_signer_clear(&signer);
	note_signer_clear(&wsigner);
	free(note);
}

/* A witness that cosigns after delay_ms, whatever it is sent. */
struct slow_witness {
	int fd;
	long delay_ms;
	struct note_signer key;
	_Atomic bool stop;
	_Atomic unsigned answered;
	pthread_t thread;
};

/* One request read from c into req (NUL-terminated): its body, or NULL
 * when it did not come whole (bounded: 1 s, cap - 1 bytes). */
static char *read_witness_request(int c, char *req, size_t cap)
{
	size_t got = 0;
	u64 deadline = now_ms() + 1000;

	req[0] = '\0';
	/* Until the peer's Content-Length is in. */
	while (got < cap - 1 && now_ms() < deadline) {
		struct pollfd p = {.fd = c, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t k = recv(c, req + got, cap - 1 - got, 0);
		if (k <= 0)
			return NULL;
		got += (size_t)k;
		req[got] = '\0';
		char *body = strstr(req, "\r\n\r\n");
		char *cl = strstr(req, "Content-Length: ");
		if (body && cl &&
		    (size_t)(body + 4 - req) + strtoul(cl + 16, NULL, 10) <=
			    got)
			return body + 4;
	}
	return NULL;
}

/* Answers connections on fd one at a time with answer(ctx, c), until
 * *stop (at most 10^4 polls of 20 ms). */
static void serve_witness(int fd, const _Atomic bool *stop,
			  void (*answer)(void *ctx, int c), void *ctx)
{
	for (int i = 0; i < 10000 && !atomic_load(stop); i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		answer(ctx, c);
		close(c);
	}
}

static void slow_answer(void *ctx, int c)
{
	struct slow_witness *sw = ctx;
	char req[16384];
	char *body = read_witness_request(c, req, sizeof(req));
	char *cp = body ? strstr(body, "\n\n") : NULL;	/* after proofs */
	char *end = cp ? strstr(cp + 2, "\n\n") : NULL; /* text's end */
	if (!end)
		return;
	sleep_ms(sw->delay_ms);
	char line[COSIG_LINE_BYTES_MAX + 1], resp[1024];
	size_t line_len;
	if (cosig_sign(&sw->key, (u64)time(NULL), cp + 2,
		       (size_t)(end + 1 - (cp + 2)), line, sizeof(line),
		       &line_len) != 0)
		return;
	int rn = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n%.*s",
			  line_len, (int)line_len, line);
	if (send(c, resp, (size_t)rn, MSG_NOSIGNAL) == rn)
		atomic_fetch_add(&sw->answered, 1);
}

static void *slow_witness_main(void *arg)
{
	struct slow_witness *sw = arg;
	serve_witness(sw->fd, &sw->stop, slow_answer, sw);
	return NULL;
}

/* Checkpoints signed faster than a witness answers: the witness thread
 * sends only the newest one pending, a cosigned copy is served and kept
 * only while its checkpoint is the newest, and neither what is served
 * nor DATA/audit/checkpoints ever goes back. */
static void
a_slow_witness_cosigns_the_newest_and_nothing_goes_back(void **state)
{
	struct fixture *f = *state;
	static struct note_signer signer;
	static struct slow_witness sw;
	static struct witness_peer peer;
	char spec[WITNESS_SPEC_BYTES_MAX], werr[128];
	const char *err = NULL;
	char *note = malloc(NOTE_BYTES_MAX);
	struct audit *a = NULL;
	unsigned port;

	assert_non_null(note);
	assert_int_equal(note_keygen("example.test/log", 16, &signer), 0);
	assert_int_equal(note_keygen("slow.example/w", 14, &sw.key), 0);
	sw.fd = listen_loopback(&port);
	sw.delay_ms = 300;
	atomic_init(&sw.stop, false);
	atomic_init(&sw.answered, 0);
	assert_int_equal(
		pthread_create(&sw.thread, NULL, slow_witness_main, &sw), 0);
	witness_spec(spec, sizeof(spec), port, "slow.example/w",
		     sw.key.pub.public_key);
	assert_int_equal(witness_peer_parse(spec, &peer, werr, sizeof(werr)),
			 0);
	struct audit_signer as = {.origin = "example.test/log",
				  .sign = sign_with,
				  .ctx = &signer,
				  .witnesses = &peer,
				  .nwitnesses = 1};
	u64 n = build(f, 2);
	assert_int_equal(audit_open(&a, f->dir, f->e, &as, &err), 0);
	wait_size(a, n);

	/* A new size every ~120 ms, each asked to be signed at once. */
	u64 served = 0, last = 0;
	u32 sigs = 0;
	for (int i = 0; i < 15; i++) {
		create_transfers(f->e, 600000 + (u64)i, 1);
		audit_request_checkpoint(a);
		for (int t = 0; t < 12; t++) {
			long len = audit_checkpoint(a, note, NOTE_BYTES_MAX);
			u64 size = note_size(note, len, &signer, NULL);
			assert_true(size >= served);
			served = size;
			sleep_ms(10);
		}
	}
	struct engine_stats st;
	engine_stats(f->e, &st);
	last = st.last_seq;
	/* Then the newest is cosigned (bounded: 5 s). */
	for (int t = 0; t < 500; t++) {
		long len = audit_checkpoint(a, note, NOTE_BYTES_MAX);
		u64 size = note_size(note, len, &signer, &sigs);
		assert_true(size >= served);
		served = size;
		if (size == last && sigs == 2)
			break;
		sleep_ms(10);
	}
	assert_true(served == last);
	assert_int_equal(sigs, 2);
	audit_close(a);
	atomic_store(&sw.stop, true);
	pthread_join(sw.thread, NULL);
	close(sw.fd);

	/* The file: sizes never go back; cosigned copies repeat the size of
	 * the checkpoint just before them; the witness was sent fewer
	 * checkpoints than were signed (the mailbox kept the newest). */
	char path[128];
	snprintf(path, sizeof(path), "%s/audit/checkpoints", f->dir);
	FILE *cf = fopen(path, "r");
	assert_non_null(cf);
	size_t framed;
	u64 prev = 0;
	unsigned signed_ = 0, cosigned = 0;
	for (int i = 0; i < 1000 && fscanf(cf, "%zu\n", &framed) == 1; i++) {
		assert_true(framed > 0 && framed < NOTE_BYTES_MAX);
		assert_int_equal(fread(note, 1, framed, cf), framed);
		u64 size = note_size(note, (long)framed, &signer, &sigs);
		assert_true(size >= prev);
		if (sigs == 2) {
			assert_true(size ==
				    prev); /* a copy of the one before */
			cosigned++;
		} else {
			assert_int_equal(sigs, 1);
			signed_++;
		}
		prev = size;
	}
	fclose(cf);
	assert_int_equal(prev, last);
	assert_true(cosigned >= 1);
	assert_true(atomic_load(&sw.answered) < signed_);
	note_signer_clear(&signer);
	note_signer_clear(&sw.key);
	free(note);
}

/* A witness that answers every request with 409 and a fixed body, and
 * notes what each request said: its "old" size and its checkpoint's. */
struct refusing_witness {
	int fd;
	const char *body; /* the 409 body: "-1\n", "007\n"... */
	_Atomic bool stop;
	_Atomic unsigned requests;
	u64 old[8], size[8]; /* per request, while requests < 8 */
	pthread_t thread;
};

static void refusing_answer(void *ctx, int c)
{
	struct refusing_witness *rw = ctx;
	char req[16384];
	char *body = read_witness_request(c, req, sizeof(req));

	/* "old N\n", proof lines, "\n", then the note: origin, size... */
	char *note = body ? strstr(body, "\n\n") : NULL;
	char *size_line = note ? strchr(note + 2, '\n') : NULL;
	if (!body || !size_line || strncmp(body, "old ", 4) != 0)
		return;
	unsigned n = atomic_load(&rw->requests);
	if (n < 8) {
		rw->old[n] = strtoull(body + 4, NULL, 10);
		rw->size[n] = strtoull(size_line + 1, NULL, 10);
	}
	char resp[256];
	int rn = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 409 Conflict\r\n"
			  "Content-Type: text/x.tlog.size\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			  strlen(rw->body), rw->body);
	atomic_store(&rw->requests, n + 1);
	send(c, resp, (size_t)rn, MSG_NOSIGNAL);
}

static void *refusing_witness_main(void *arg)
{
	struct refusing_witness *rw = arg;
	serve_witness(rw->fd, &rw->stop, refusing_answer, rw);
	return NULL;
}

/* A 409 says which size the witness last cosigned, as canonical decimal
 * ("%llu\n").  A body of "-1" or "007" is not one: the log does not
 * retry from a size it made up (sscanf read "-1" as 2^64 - 1, and "007"
 * as 7), and each later checkpoint is sent from "old 0" again.  "1\n"
 * is one: the log retries at once from old 1, and starts there after. */
static void a_409_with_a_size_that_is_not_canonical_is_refused(void **state)
{
	static const char *const bodies[] = {"-1\n", "007\n", "1\n"};
	struct fixture *f = *state;

	for (size_t b = 0; b < 3; b++) {
		/* Requests per round: the first, and a retry after "1". */
		const unsigned per_round = b == 2 ? 2 : 1;
		static struct note_signer signer, wsigner;
		static struct refusing_witness rw;
		static struct witness_peer peer;
		char spec[WITNESS_SPEC_BYTES_MAX], werr[128];
		const char *err = NULL;
		struct audit *a = NULL;
		unsigned port;

		assert_int_equal(note_keygen("example.test/log", 16, &signer),
				 0);
		assert_int_equal(
			note_keygen("refusing.example/w", 18, &wsigner), 0);
		memset(&rw, 0, sizeof(rw));
		rw.fd = listen_loopback(&port);
		rw.body = bodies[b];
		assert_int_equal(pthread_create(&rw.thread, NULL,
						refusing_witness_main, &rw),
				 0);
		witness_spec(spec, sizeof(spec), port, "refusing.example/w",
			     wsigner.pub.public_key);
		assert_int_equal(
			witness_peer_parse(spec, &peer, werr, sizeof(werr)), 0);
		struct audit_signer as = {.origin = "example.test/log",
					  .sign = sign_with,
					  .ctx = &signer,
					  .witnesses = &peer,
					  .nwitnesses = 1};
		u64 n = build(f, 2 + (u32)b);
		assert_int_equal(audit_open(&a, f->dir, f->e, &as, &err), 0);
		wait_size(a, n);

		/* Three rounds, each a new size; the next round starts
		 * only once the witness has answered (at most 3 s each). */
		for (unsigned round = 0; round < 3; round++) {
			create_transfers(f->e, 800000 + b * 100 + round, 1);
			audit_request_checkpoint(a);
			unsigned want = (round + 1) * per_round;
			for (int t = 0;
			     t < 300 && atomic_load(&rw.requests) < want; t++)
				sleep_ms(10);
			assert_true(atomic_load(&rw.requests) >= want);
		}
		audit_close(a);
		atomic_store(&rw.stop, true);
		pthread_join(rw.thread, NULL);
		close(rw.fd);

		unsigned got = atomic_load(&rw.requests);
		assert_int_equal(got, 3 * per_round);
		for (unsigned i = 0; i < got; i++) {
			if (per_round == 1) {
				/* No retry after the bad 409. */
				assert_int_equal(rw.old[i], 0);
				if (i > 0)
					assert_true(rw.size[i] >
						    rw.size[i - 1]);
			} else if (i % 2 == 1) {
				/* The retry: the same checkpoint, old 1. */
				assert_int_equal(rw.old[i], 1);
				assert_int_equal(rw.size[i], rw.size[i - 1]);
			} else {
				assert_int_equal(rw.old[i], i == 0 ? 0 : 1);
				if (i > 0)
					assert_true(rw.size[i] >
						    rw.size[i - 1]);
			}
		}
		note_signer_clear(&signer);
		note_signer_clear(&wsigner);
	}
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
		cmocka_unit_test_setup_teardown(
			audit_files_are_loaded_only_when_their_state_vouches,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_dead_witness_holds_back_neither_the_tree_nor_checkpoints,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_slow_witness_cosigns_the_newest_and_nothing_goes_back,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_409_with_a_size_that_is_not_canonical_is_refused,
			setup, teardown),
	};
	if (http_global_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
