/*
 * cmd_audit.c - `tpwallet audit`: check the audit log from the outside,
 * with no server (issue 5, item 4).
 *
 *   verify-inclusion    a receipt (entry, inclusion proof, signed
 *                       checkpoint) against the log's public key;
 *   verify-consistency  that a newer signed checkpoint extends an older
 *                       one, given the consistency proof between them;
 *   check               a data directory: every signed checkpoint in
 *                       DATA/audit/checkpoints against the keys, the
 *                       stored leaf hashes against the checkpoints, and
 *                       every journal record re-hashed against both, so a
 *                       record changed, removed, reordered or inserted on
 *                       disk is named even when its CRC was rewritten;
 *   log                 the journal's entries decoded (log/entry_view.h),
 *                       newest first, filtered by type, author, time and
 *                       text, as lines or as JSON objects.
 *
 * The verifiers say yes only to what they checked completely: every field
 * present and well-formed, nothing unknown, every hash compared.  The
 * first failed check is printed on stdout as "FAILED: <check>: <why>".
 * Exit status: 0 verified / consistent, 1 a check failed (tampering, a
 * bad proof or signature), 2 a usage error or an input that cannot be
 * read at all.  `log` exits 0, 1 when the journal is damaged (the damage
 * listed as an entry), 2 on usage errors, 65 without a journal.
 */
#include "cli/cli.h"
#include "core/clock.h"
#include "core/merkle.h"
#include "core/u128.h"
#include "crypto/keyring.h"
#include "log/keyfile.h"
#include "crypto/note.h"
#include "log/datadir.h"
#include "log/fsfile.h"
#include "log/journal.h"
#include "log/entry_view.h"
#include "log/journal_reader.h"
#include "log/leaf.h"
#include "core/strerror.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/parse.h"
#include "core/pstate.h"

#include <errno.h>
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

#include "banned.h"

/* Journal retention (docs/operations.md): segments moved out of
 * DATA/journal are read from TPWALLET_JOURNAL_ARCHIVE_DIR, the
 * environment form of the setting journal_archive_dir, when it is set. */
static void reader_archive(struct journal_reader *rd)
{
	const char *dir = getenv("TPWALLET_JOURNAL_ARCHIVE_DIR");

	if (dir && dir[0])
		journal_reader_archive(rd, dir);
}

#define AUDIT_FAILED 1

/* Limits on every input, checked before it is parsed. */
#define KEY_FILE_BYTES_MAX    1024u
#define ORIGIN_FILE_BYTES_MAX 1024u
/* A receipt's entry is at most one journal record (1 MiB), 4/3 of it in
 * base64, plus the checkpoint and the proof. */
#define RECEIPT_BYTES_MAX    (4u << 20)
#define PROOF_FILE_BYTES_MAX (64u << 10)
/* One checkpoint per second of writes: 2^24 is half a year of constant
 * load, 640 MiB of (size, root) pairs. */
#define CHECKPOINTS_MAX	     (1u << 24)
#define PROGRESS_INTERVAL_MS 1000u
#define PATH_BYTES_MAX	     (PATH_MAX + 64)

/*
 * KEY is a verifier string, or @FILE holding one per line (what
 * GET /v1/audit/key answers: every key of the log still verifying).
 * All must have the same name, the log's origin.  Fills v[0..*n).
 * Returns 0, or EXIT_USAGE with the reason printed.
 */
static int load_keys(const char *cmd, const char *arg, struct note_verifier *v,
		     size_t *n)
{
	char *text = NULL;
	const char *p, *end;
	size_t len;
	int ret = 0;

	*n = 0;
	if (arg[0] == '@') {
		ret = fsfile_read(arg + 1, KEY_FILE_BYTES_MAX, &text, &len);
		if (ret != 0) {
			fprintf(stderr, "tpwallet audit %s: %s: %s\n", cmd,
				arg + 1, fsfile_strerror(ret));
			return EXIT_USAGE;
		}
		p = text;
	} else {
		p = arg;
		len = strlen(arg);
	}
	end = p + len;
	/* Lines end in "\n" (the last one may not); no empty line. */
	while (ret == 0 && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t line = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (*n == NOTE_VERIFIERS_MAX) {
			ret = NOTE_E_TOO_MANY_KEYS;
			break;
		}
		ret = note_verifier_parse(p, line, &v[*n]);
		if (ret == 0 && strcmp(v[*n].name, v[0].name) != 0)
			ret = NOTE_E_BAD_NAME;
		(*n)++;
		p += line + (nl ? 1 : 0);
	}
	if (ret == 0 && *n == 0)
		ret = NOTE_E_BAD_KEY;
	free(text);
	if (ret != 0) {
		fprintf(stderr,
			"tpwallet audit %s: the key is not note verifier "
			"keys \"<name>+<8 hex>+<base64>\", one per line, all "
			"of one name (%s)\n",
			cmd, note_strerror(ret));
		return EXIT_USAGE;
	}
	return 0;
}

/* Print the failed check; returns AUDIT_FAILED. */
static int failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int failed(const char *fmt, ...)
{
	va_list ap;

	fputs("FAILED: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	return AUDIT_FAILED;
}

/* ---- JSON members -------------------------------------------------------- */

/* Every name in names[0..n) present, and nothing else.  Returns NULL, or
 * a message naming the member at fault (static storage). */
static const char *check_members(json_t *o, const char *const *names, size_t n)
{
	static char why[160];
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		bool known = false;
		for (size_t i = 0; i < n; i++)
			known = known || strcmp(key, names[i]) == 0;
		if (!known) {
			snprintf(why, sizeof(why), "unknown member \"%.100s\"",
				 key);
			return why;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (!json_object_get(o, names[i])) {
			snprintf(why, sizeof(why), "member \"%s\" missing",
				 names[i]);
			return why;
		}
	return NULL;
}

/* A string member without NUL inside: its text and length, or NULL. */
static const char *member_str(json_t *o, const char *name, size_t *len)
{
	json_t *v = json_object_get(o, name);
	const char *s;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	*len = json_string_length(v);
	return strlen(s) == *len ? s : NULL;
}

static bool member_dec(json_t *o, const char *name, u64 *out)
{
	size_t len;
	const char *s = member_str(o, name, &len);

	return s && parse_u64_n(s, len, UINT64_MAX, out) == 0;
}

static bool member_hash(json_t *o, const char *name, u8 out[MERKLE_HASH_BYTES])
{
	u8 buf[MERKLE_HASH_BYTES];
	size_t len;
	const char *s = member_str(o, name, &len);

	if (!s || parse_base64(s, len, buf, sizeof(buf)) != MERKLE_HASH_BYTES)
		return false;
	memcpy(out, buf, MERKLE_HASH_BYTES);
	return true;
}

/* Member name: an array of at most max hashes.  Returns NULL or what
 * is wrong. */
static const char *member_hashes(json_t *o, const char *name,
				 u8 out[][MERKLE_HASH_BYTES], size_t max,
				 size_t *n)
{
	static char why[128];
	json_t *a = json_object_get(o, name);

	if (!json_is_array(a)) {
		snprintf(why, sizeof(why), "\"%s\" is not an array", name);
		return why;
	}
	if (json_array_size(a) > max) {
		snprintf(why, sizeof(why), "\"%s\" has more than %zu hashes",
			 name, max);
		return why;
	}
	*n = json_array_size(a);
	for (size_t i = 0; i < *n; i++) {
		json_t *h = json_array_get(a, i);
		u8 buf[MERKLE_HASH_BYTES];
		if (!json_is_string(h) ||
		    strlen(json_string_value(h)) != json_string_length(h) ||
		    parse_base64(json_string_value(h), json_string_length(h),
				 buf, sizeof(buf)) != MERKLE_HASH_BYTES) {
			snprintf(why, sizeof(why),
				 "\"%s\"[%zu] is not the base64 of a "
				 "32-byte hash",
				 name, i);
			return why;
		}
		memcpy(out[i], buf, MERKLE_HASH_BYTES);
	}
	return NULL;
}

/* "proof": an array of at most MERKLE_PROOF_HASHES_MAX hashes. */
static const char *member_proof(json_t *o, u8 proof[][MERKLE_HASH_BYTES],
				size_t *n)
{
	return member_hashes(o, "proof", proof, MERKLE_PROOF_HASHES_MAX, n);
}

/* A member holding the base64 of exactly len bytes. */
static bool member_bytes(json_t *o, const char *name, u8 *out, size_t len)
{
	u8 buf[LEAF_EVENT_BYTES];
	size_t slen;
	const char *s = member_str(o, name, &slen);

	if (len > LEAF_EVENT_BYTES || !s ||
	    parse_base64(s, slen, buf, len) != (long)len)
		return false;
	memcpy(out, buf, len);
	return true;
}

/* ---- signed checkpoints -------------------------------------------------- */

/*
 * Open a signed checkpoint note[0..len) with verifiers[0..nv), all named
 * after the log's origin, and parse its body.  Returns 0, or
 * AUDIT_FAILED with the failed check printed under the label what.
 */
static int open_checkpoint(const char *what, const char *note, size_t len,
			   const struct note_verifier *verifiers, size_t nv,
			   struct checkpoint *c)
{
	struct note_opened op;
	int ret = note_open(note, len, verifiers, nv, &op);

	if (ret != 0)
		return failed("%s signature: %s", what, note_strerror(ret));
	ret = checkpoint_parse(op.text, op.text_len, c);
	if (ret != 0)
		return failed("%s: not a checkpoint (%s)", what,
			      note_strerror(ret));
	/* The key is named after the log: a checkpoint signed by the same
	 * key for another origin is not this log's. */
	if (c->origin_len != verifiers[0].name_len ||
	    memcmp(c->origin, verifiers[0].name, c->origin_len) != 0)
		return failed("%s origin: \"%s\" is not the key's name \"%s\"",
			      what, c->origin, verifiers[0].name);
	return 0;
}

/* ---- verify-inclusion ---------------------------------------------------- */

static const char *type_name(u16 type)
{
	const char *name = entry_view_type_name(type);
	return strcmp(name, "unknown") == 0 ? "unknown type" : name;
}

/*
 * A receipt of one event of a version-2 entry (leaf rule 2, log/leaf.h):
 * the event, the hashes of its chunk, its chunk's path to the events
 * root, the entry's header (checksum zeroed), command and ext hash, then
 * the entry's inclusion proof.  Nothing of the entry's other events but
 * their hashes.
 */
static int check_event_receipt(json_t *o, const struct note_verifier *keys,
			       size_t nkeys)
{
	static const char *const names[] = {
		"index",  "size",	  "leaf_hash", "root",	      "proof",
		"header", "command",	  "ext_hash",  "event_index", "event",
		"chunk",  "events_proof", "checkpoint"};
	u8 proof[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	u8 leaf[MERKLE_HASH_BYTES], root[MERKLE_HASH_BYTES];
	u8 computed[MERKLE_HASH_BYTES], event[LEAF_EVENT_BYTES];
	struct leaf_event_proof pr;
	struct leaf_v2 p;
	struct checkpoint c;
	size_t nproof = 0, nchunk = 0, npath = 0, cp_len;
	u64 index, size, k;
	u32 n;
	const char *why, *cp;
	int ret;

	why = check_members(o, names, sizeof(names) / sizeof(names[0]));
	if (why)
		return failed("receipt: %s", why);
	if (!member_dec(o, "index", &index) || !member_dec(o, "size", &size) ||
	    !member_dec(o, "event_index", &k))
		return failed("receipt: \"index\", \"size\" and "
			      "\"event_index\" must be canonical decimal "
			      "strings");
	if (!member_hash(o, "leaf_hash", leaf) ||
	    !member_hash(o, "root", root) ||
	    !member_hash(o, "ext_hash", p.ext_hash))
		return failed("receipt: \"leaf_hash\", \"root\" and "
			      "\"ext_hash\" must be the base64 of 32-byte "
			      "hashes");
	why = member_proof(o, proof, &nproof);
	if (!why)
		why = member_hashes(o, "chunk", pr.chunk, LEAF_CHUNK_EVENTS,
				    &nchunk);
	if (!why)
		why = member_hashes(o, "events_proof", pr.path,
				    LEAF_EVENTS_PROOF_MAX, &npath);
	if (why)
		return failed("receipt: %s", why);
	if (!member_bytes(o, "header", p.header, sizeof(p.header)) ||
	    !member_bytes(o, "command", p.command, sizeof(p.command)) ||
	    !member_bytes(o, "event", event, sizeof(event)))
		return failed("receipt: \"header\", \"command\" and "
			      "\"event\" must be the base64 of 32, 16 and "
			      "128 bytes");
	cp = member_str(o, "checkpoint", &cp_len);
	if (!cp)
		return failed("receipt: \"checkpoint\" is not a string");

	ret = open_checkpoint("checkpoint", cp, cp_len, keys, nkeys, &c);
	if (ret != 0)
		return ret;
	if (size != c.size)
		return failed("size: the receipt says %llu, the signed "
			      "checkpoint %llu",
			      (unsigned long long)size,
			      (unsigned long long)c.size);
	if (memcmp(root, c.root, sizeof(root)) != 0)
		return failed("root: the receipt's root is not the signed "
			      "checkpoint's");
	/* The header names the rule: only rule 2 proves one event. */
	u16 version = leaf_record_version(p.header, sizeof(p.header));
	u32 checksum;
	u64 seq;
	u16 type;
	memcpy(&checksum, p.header + JOURNAL_OFF_CHECKSUM, sizeof(checksum));
	memcpy(&seq, p.header + JOURNAL_OFF_SEQ, sizeof(seq));
	memcpy(&type, p.header + JOURNAL_OFF_TYPE, sizeof(type));
	if (version != 2)
		return failed("header: version %u has no per-event leaf rule "
			      "(a version-1 entry is proven whole)",
			      (unsigned)version);
	if (checksum != 0 || leaf_v2_event_count(p.header, p.command, &n) != 0)
		return failed("header: not a version-2 header with its "
			      "checksum zeroed and a command that adds up");
	if (index == UINT64_MAX || seq != index + 1)
		return failed("header: its seq %llu is not index %llu + 1",
			      (unsigned long long)seq,
			      (unsigned long long)index);
	if (k >= n)
		return failed("event_index: %llu, and the entry holds %u "
			      "events",
			      (unsigned long long)k, n);
	pr.n = n;
	pr.k = (u32)k;
	pr.nchunk = (u32)nchunk;
	pr.npath = (u32)npath;
	if (leaf_events_root_from_proof(event, &pr, p.events_root) != 0)
		return failed("event: its hash is not at its place in "
			      "\"chunk\", or \"chunk\" or \"events_proof\" "
			      "is not as long as the entry's events need");
	leaf_v2_hash(&p, computed);
	if (memcmp(computed, leaf, sizeof(leaf)) != 0)
		return failed("leaf_hash: not the leaf (rule 2) of the header, "
			      "command, ext hash and events root");
	ret = merkle_verify_inclusion(index, size, leaf,
				      (const u8(*)[MERKLE_HASH_BYTES])proof,
				      nproof, c.root);
	if (ret != 0)
		return failed("inclusion proof: %s", merkle_strerror(ret));
	char id[U128_DEC_BYTES];
	u128 v;
	memcpy(&v, event, sizeof(v));
	u128_format_dec(v, id);
	printf("event %llu (id %s) of entry %llu (seq %llu, %s, %u events) "
	       "is in %s at size %llu\n",
	       (unsigned long long)k, id, (unsigned long long)index,
	       (unsigned long long)seq, type_name(type), n, c.origin,
	       (unsigned long long)c.size);
	return 0;
}

static int check_receipt(const char *text, size_t text_len,
			 const struct note_verifier *keys, size_t nkeys)
{
	static const char *const names[] = {"index",	 "entry", "leaf_hash",
					    "size",	 "root",  "proof",
					    "checkpoint"};
	u8 proof[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	u8 leaf[MERKLE_HASH_BYTES], root[MERKLE_HASH_BYTES];
	u8 computed[MERKLE_HASH_BYTES];
	u8 *entry = NULL;
	size_t nproof = 0, entry_len = 0, len, cp_len;
	long got;
	u64 index, size;
	struct checkpoint c;
	struct journal_record r;
	json_error_t jerr;
	const char *why, *s, *cp;
	int ret;

	json_t *o = json_loadb(text, text_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o || !json_is_object(o)) {
		ret = failed("receipt: not a JSON object (%s)",
			     o ? "another JSON value" : jerr.text);
		goto cleanup;
	}
	/* An event receipt (leaf rule 2) carries "event", a whole entry's
	 * "entry". */
	if (json_object_get(o, "event")) {
		ret = check_event_receipt(o, keys, nkeys);
		goto cleanup;
	}
	why = check_members(o, names, sizeof(names) / sizeof(names[0]));
	if (why) {
		ret = failed("receipt: %s", why);
		goto cleanup;
	}
	if (!member_dec(o, "index", &index) || !member_dec(o, "size", &size)) {
		ret = failed("receipt: \"index\" and \"size\" must be "
			     "canonical decimal strings");
		goto cleanup;
	}
	if (!member_hash(o, "leaf_hash", leaf) ||
	    !member_hash(o, "root", root)) {
		ret = failed("receipt: \"leaf_hash\" and \"root\" must be the "
			     "base64 of 32-byte hashes");
		goto cleanup;
	}
	why = member_proof(o, proof, &nproof);
	if (why) {
		ret = failed("receipt: %s", why);
		goto cleanup;
	}
	s = member_str(o, "entry", &len);
	entry = malloc(JOURNAL_RECORD_BYTES_MAX);
	if (!entry) {
		ret = failed("out of memory");
		goto cleanup;
	}
	got = s ? parse_base64(s, len, entry, JOURNAL_RECORD_BYTES_MAX) : -1;
	if (got < 0) {
		ret = failed("receipt: \"entry\" is not the base64 of one "
			     "journal record");
		goto cleanup;
	}
	entry_len = (size_t)got;
	cp = member_str(o, "checkpoint", &cp_len);
	if (!cp) {
		ret = failed("receipt: \"checkpoint\" is not a string");
		goto cleanup;
	}

	ret = open_checkpoint("checkpoint", cp, cp_len, keys, nkeys, &c);
	if (ret != 0)
		goto cleanup;
	if (size != c.size) {
		ret = failed("size: the receipt says %llu, the signed "
			     "checkpoint %llu",
			     (unsigned long long)size,
			     (unsigned long long)c.size);
		goto cleanup;
	}
	if (memcmp(root, c.root, sizeof(root)) != 0) {
		ret = failed("root: the receipt's root is not the signed "
			     "checkpoint's");
		goto cleanup;
	}
	/* The proof is of the hash; the sentence printed is about the
	 * record, so the record must be one, and the one at this index. */
	if (journal_decode(entry, entry_len, &r) != (long)entry_len) {
		ret = failed("entry: not one valid journal record (size, "
			     "checksum, version or type)");
		goto cleanup;
	}
	/* Its version names its leaf rule (log/leaf.h). */
	if (leaf_hash_record(entry, entry_len, computed) != 0 ||
	    memcmp(computed, leaf, sizeof(leaf)) != 0) {
		ret = failed("leaf_hash: not the entry's leaf hash (rule %u)",
			     (unsigned)leaf_record_version(entry, entry_len));
		goto cleanup;
	}
	if (index == UINT64_MAX || r.seq != index + 1) {
		ret = failed("entry: its seq %llu is not index %llu + 1",
			     (unsigned long long)r.seq,
			     (unsigned long long)index);
		goto cleanup;
	}
	ret = merkle_verify_inclusion(index, size, leaf,
				      (const u8(*)[MERKLE_HASH_BYTES])proof,
				      nproof, c.root);
	if (ret != 0) {
		ret = failed("inclusion proof: %s", merkle_strerror(ret));
		goto cleanup;
	}
	printf("entry %llu (seq %llu, %s, %u events) is in %s at size "
	       "%llu\n",
	       (unsigned long long)index, (unsigned long long)r.seq,
	       type_name(r.type), r.payload_bytes / JOURNAL_EVENT_BYTES,
	       c.origin, (unsigned long long)c.size);
	ret = 0;
cleanup:
	json_decref(o);
	free(entry);
	return ret;
}

static void usage_inclusion(FILE *f)
{
	fprintf(f,
		"usage: tpwallet audit verify-inclusion --receipt FILE --key "
		"KEY\n\n"
		"Verify a receipt (GET /v1/transfers/{id}/receipt) offline: "
		"the checkpoint's\nsignature with KEY, its size and root, the "
		"leaf hash (of the one event and the\nhashes that bind it to "
		"its entry, or of the whole entry: docs/audit.md), and\nthe "
		"inclusion proof.  KEY is the verifier key (GET "
		"/v1/audit/key), or @FILE.\n"
		"Exit 0 when everything holds, 1 naming the failed check, "
		"2 on usage errors.\n\n"
		"Example:\n  tpwallet audit verify-inclusion --receipt "
		"receipt.json "
		"--key @log.vkey\n");
}

static int verify_inclusion(int argc, char **argv)
{
	static const struct option opts[] = {
		{"receipt", required_argument, NULL, 'r'},
		{"key", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *receipt = NULL, *key = NULL;
	struct note_verifier v[NOTE_VERIFIERS_MAX];
	char *text = NULL;
	size_t len, nv;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "r:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': receipt = optarg; break;
		case 'k': key = optarg; break;
		case 'h': usage_inclusion(stdout); return 0;
		default: usage_inclusion(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc || !receipt || !key) {
		usage_inclusion(stderr);
		return EXIT_USAGE;
	}
	ret = load_keys("verify-inclusion", key, v, &nv);
	if (ret != 0)
		return ret;
	ret = fsfile_read(receipt, RECEIPT_BYTES_MAX, &text, &len);
	if (ret != 0) {
		fprintf(stderr, "tpwallet audit verify-inclusion: %s: %s\n",
			receipt, fsfile_strerror(ret));
		return EXIT_USAGE;
	}
	ret = check_receipt(text, len, v, nv);
	free(text);
	return ret;
}

/* ---- verify-consistency -------------------------------------------------- */

static int check_consistency(const char *old_note, size_t old_len,
			     const char *new_note, size_t new_len,
			     const char *proof_text, size_t proof_len,
			     const struct note_verifier *keys, size_t nkeys)
{
	static const char *const names[] = {"from", "to", "from_root",
					    "to_root", "proof"};
	u8 proof[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	u8 from_root[MERKLE_HASH_BYTES], to_root[MERKLE_HASH_BYTES];
	struct checkpoint oc, nc;
	size_t nproof = 0;
	u64 from, to;
	json_error_t jerr;
	const char *why;
	int ret;

	json_t *o = json_loadb(proof_text, proof_len, JSON_REJECT_DUPLICATES,
			       &jerr);
	if (!o || !json_is_object(o)) {
		ret = failed("proof: not a JSON object (%s)",
			     o ? "another JSON value" : jerr.text);
		goto cleanup;
	}
	why = check_members(o, names, sizeof(names) / sizeof(names[0]));
	if (why) {
		ret = failed("proof: %s", why);
		goto cleanup;
	}
	if (!member_dec(o, "from", &from) || !member_dec(o, "to", &to)) {
		ret = failed("proof: \"from\" and \"to\" must be canonical "
			     "decimal strings");
		goto cleanup;
	}
	if (!member_hash(o, "from_root", from_root) ||
	    !member_hash(o, "to_root", to_root)) {
		ret = failed("proof: \"from_root\" and \"to_root\" must be "
			     "the base64 of 32-byte hashes");
		goto cleanup;
	}
	why = member_proof(o, proof, &nproof);
	if (why) {
		ret = failed("proof: %s", why);
		goto cleanup;
	}
	ret = open_checkpoint("old checkpoint", old_note, old_len, keys, nkeys,
			      &oc);
	if (ret != 0)
		goto cleanup;
	ret = open_checkpoint("new checkpoint", new_note, new_len, keys, nkeys,
			      &nc);
	if (ret != 0)
		goto cleanup;
	if (from != oc.size || to != nc.size) {
		ret = failed("sizes: the proof is from %llu to %llu, the "
			     "checkpoints are of sizes %llu and %llu",
			     (unsigned long long)from, (unsigned long long)to,
			     (unsigned long long)oc.size,
			     (unsigned long long)nc.size);
		goto cleanup;
	}
	/* The proof file's roots are a convenience; only the signed ones
	 * count, and a file that disagrees with them is refused. */
	if (memcmp(from_root, oc.root, sizeof(from_root)) != 0) {
		ret = failed("from_root: not the old checkpoint's root");
		goto cleanup;
	}
	if (memcmp(to_root, nc.root, sizeof(to_root)) != 0) {
		ret = failed("to_root: not the new checkpoint's root");
		goto cleanup;
	}
	ret = merkle_verify_consistency(oc.size, nc.size, oc.root, nc.root,
					(const u8(*)[MERKLE_HASH_BYTES])proof,
					nproof);
	if (ret != 0) {
		ret = failed("consistency proof: %s", merkle_strerror(ret));
		goto cleanup;
	}
	printf("%s at size %llu extends size %llu: consistent\n", nc.origin,
	       (unsigned long long)nc.size, (unsigned long long)oc.size);
	ret = 0;
cleanup:
	json_decref(o);
	return ret;
}

static void usage_consistency(FILE *f)
{
	fprintf(f,
		"usage: tpwallet audit verify-consistency --old FILE --new "
		"FILE --proof FILE\n"
		"                                         --key KEY\n\n"
		"Verify offline that the signed checkpoint in --new extends "
		"the one in --old\n(GET /v1/audit/checkpoint, at two times), "
		"given the proof from\nGET /v1/audit/proof/consistency?from=M"
		"&to=N: both signatures with KEY,\nthe proof's sizes and "
		"roots against the checkpoints', and the proof.\n"
		"Exit 0 when everything holds, 1 naming the failed check, "
		"2 on usage errors.\n\n"
		"Example:\n  tpwallet audit verify-consistency --old old.note "
		"--new new.note \\\n      --proof proof.txt --key @log.vkey\n");
}

static int verify_consistency(int argc, char **argv)
{
	static const struct option opts[] = {
		{"old", required_argument, NULL, 'o'},
		{"new", required_argument, NULL, 'n'},
		{"proof", required_argument, NULL, 'p'},
		{"key", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *paths[3] = {NULL, NULL, NULL}, *key = NULL;
	static const size_t caps[3] = {NOTE_BYTES_MAX, NOTE_BYTES_MAX,
				       PROOF_FILE_BYTES_MAX};
	char *text[3] = {NULL, NULL, NULL};
	size_t len[3] = {0, 0, 0};
	struct note_verifier v[NOTE_VERIFIERS_MAX];
	size_t nv;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:n:p:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': paths[0] = optarg; break;
		case 'n': paths[1] = optarg; break;
		case 'p': paths[2] = optarg; break;
		case 'k': key = optarg; break;
		case 'h': usage_consistency(stdout); return 0;
		default: usage_consistency(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc || !paths[0] || !paths[1] || !paths[2] || !key) {
		usage_consistency(stderr);
		return EXIT_USAGE;
	}
	ret = load_keys("verify-consistency", key, v, &nv);
	if (ret != 0)
		return ret;
	for (int i = 0; i < 3; i++) {
		ret = fsfile_read(paths[i], caps[i], &text[i], &len[i]);
		if (ret != 0) {
			fprintf(stderr,
				"tpwallet audit verify-consistency: %s: %s\n",
				paths[i], fsfile_strerror(ret));
			ret = EXIT_USAGE;
			goto cleanup;
		}
	}
	ret = check_consistency(text[0], len[0], text[1], len[1], text[2],
				len[2], v, nv);
cleanup:
	for (int i = 0; i < 3; i++)
		free(text[i]);
	return ret;
}

/* ---- check -----------------------------------------------------------------
 */

struct signed_size {
	u64 size;
	u8 root[MERKLE_HASH_BYTES];
};

struct check {
	const char *data;
	char origin[CHECKPOINT_ORIGIN_BYTES_MAX + 1];
	struct note_verifier verifiers[NOTE_VERIFIERS_MAX];
	size_t nverifiers;

	/* The signed tree sizes, strictly increasing, each once. */
	struct signed_size *cps;
	size_t ncps, cps_cap;
	u64 notes; /* signed notes read, valid or not */

	/* DATA/audit/leaves: the first `leaves_auth` stored leaf hashes
	 * match a signed root, so they can name the changed entry. */
	u64 leaves_stored;
	u64 leaves_auth;
	bool leaves_present;

	unsigned problems;
};

static void problem(struct check *ck, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void problem(struct check *ck, const char *fmt, ...)
{
	va_list ap;

	ck->problems++;
	fputs("TAMPERED: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* DATA/origin: one line, a valid note key name. */
static int load_origin(struct check *ck)
{
	char path[PATH_BYTES_MAX], *text = NULL;
	size_t len;
	int ret;

	snprintf(path, sizeof(path), "%s/origin", ck->data);
	ret = fsfile_read(path, ORIGIN_FILE_BYTES_MAX, &text, &len);
	if (ret != 0) {
		fprintf(stderr, "tpwallet audit check: %s: %s\n", path,
			fsfile_strerror(ret));
		return EXIT_USAGE;
	}
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len > CHECKPOINT_ORIGIN_BYTES_MAX || !note_name_valid(text, len)) {
		free(text);
		fprintf(stderr,
			"tpwallet audit check: %s is not a log origin\n", path);
		return EXIT_USAGE;
	}
	memcpy(ck->origin, text, len);
	ck->origin[len] = '\0';
	free(text);
	return 0;
}

/* Every key in DATA/keys, as a note key named after the origin: keys
 * rotated out still verify what they signed then. */
static int load_keyring(struct check *ck)
{
	char dir[PATH_BYTES_MAX], err[KEYRING_ERR_BYTES] = "";
	struct keyring *kr = NULL;
	size_t olen = strlen(ck->origin);
	int ret;

	snprintf(dir, sizeof(dir), "%s/keys", ck->data);
	ret = keyfile_open_keyring(dir, NULL, &kr, err, sizeof(err));
	if (ret != 0) {
		fprintf(stderr,
			"tpwallet audit check: cannot read the keys in %s: %s "
			"(give the log's key with --key)\n",
			dir, err[0] ? err : keyring_strerror(ret));
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < keyring_count(kr) && i < NOTE_VERIFIERS_MAX;
	     i++) {
		const struct keyring_key *k = keyring_key_at(kr, i);
		struct note_verifier *v = &ck->verifiers[ck->nverifiers++];
		memcpy(v->name, ck->origin, olen + 1);
		v->name_len = olen;
		memcpy(v->public_key, k->pub, sizeof(v->public_key));
		v->key_id = note_key_id(v->name, v->name_len, v->public_key);
	}
	keyring_free(kr);
	if (ck->nverifiers == 0) {
		fprintf(stderr, "tpwallet audit check: %s holds no key\n", dir);
		return EXIT_USAGE;
	}
	return 0;
}

static int add_signed(struct check *ck, u64 size, const u8 *root)
{
	if (ck->ncps == ck->cps_cap) {
		size_t cap = ck->cps_cap ? ck->cps_cap * 2 : 64;
		if (cap > CHECKPOINTS_MAX)
			return -E2BIG;
		struct signed_size *p = realloc(ck->cps, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		ck->cps = p;
		ck->cps_cap = cap;
	}
	ck->cps[ck->ncps].size = size;
	memcpy(ck->cps[ck->ncps].root, root, MERKLE_HASH_BYTES);
	ck->ncps++;
	return 0;
}

/* One signed note from the checkpoints file, at byte offset at. */
static int take_checkpoint(struct check *ck, const char *note, size_t len,
			   u64 at)
{
	struct note_opened op;
	struct checkpoint c;
	int ret = note_open(note, len, ck->verifiers, ck->nverifiers, &op);

	if (ret != 0) {
		problem(ck,
			"checkpoint at offset %llu of audit/checkpoints: "
			"signature refused (%s)",
			(unsigned long long)at, note_strerror(ret));
		return 0;
	}
	ret = checkpoint_parse(op.text, op.text_len, &c);
	if (ret != 0) {
		problem(ck,
			"checkpoint at offset %llu: signed, but not a "
			"checkpoint (%s)",
			(unsigned long long)at, note_strerror(ret));
		return 0;
	}
	if (strcmp(c.origin, ck->origin) != 0) {
		problem(ck,
			"checkpoint at offset %llu: origin \"%s\" is not "
			"the log's \"%s\"",
			(unsigned long long)at, c.origin, ck->origin);
		return 0;
	}
	if (ck->ncps > 0) {
		const struct signed_size *last = &ck->cps[ck->ncps - 1];
		if (c.size < last->size) {
			problem(ck,
				"checkpoint at offset %llu: size %llu goes "
				"back from %llu",
				(unsigned long long)at,
				(unsigned long long)c.size,
				(unsigned long long)last->size);
			return 0;
		}
		if (c.size == last->size) {
			if (memcmp(c.root, last->root, sizeof(c.root)) != 0)
				problem(ck,
					"checkpoint at offset %llu: a "
					"second root for size %llu (a fork)",
					(unsigned long long)at,
					(unsigned long long)c.size);
			return 0;
		}
	}
	ret = add_signed(ck, c.size, c.root);
	if (ret != 0)
		fprintf(stderr,
			"tpwallet audit check: more than %u "
			"checkpoints, or out of memory\n",
			CHECKPOINTS_MAX);
	return ret;
}

/*
 * DATA/audit/checkpoints: "<decimal length>\n" and that many bytes of
 * signed note, repeated.  A record cut short at the very end is a write
 * in progress (or cut by a crash), not tampering; anything else that does
 * not parse is.
 */
static int read_checkpoints(struct check *ck)
{
	char path[PATH_BYTES_MAX];
	char *note = NULL;
	FILE *f;
	u64 at = 0;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/" DATADIR_CHECKPOINTS, ck->data);
	f = fopen(path, "rb");
	if (!f) {
		problem(ck, "%s: %s: no signed checkpoint to check against",
			path, tpw_strerror(errno));
		return 0;
	}
	note = malloc(NOTE_BYTES_MAX);
	if (!note) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		size_t n = 0;
		u64 len;
		int hr = datadir_checkpoint_head_read(f, &len, &n);

		if (hr == DATADIR_HEAD_END || hr == -EIO)
			break;
		if (hr == DATADIR_HEAD_CUT) {
			fprintf(stderr,
				"tpwallet audit check: %s: a checkpoint cut "
				"short at offset %llu (being written?), "
				"ignored\n",
				path, (unsigned long long)at);
			break;
		}
		if (hr != DATADIR_HEAD_OK) {
			problem(ck,
				"%s: malformed at offset %llu (no "
				"checkpoint length)",
				path, (unsigned long long)at);
			break;
		}
		if (fread(note, 1, len, f) != len) {
			fprintf(stderr,
				"tpwallet audit check: %s: a checkpoint cut "
				"short at offset %llu (being written?), "
				"ignored\n",
				path, (unsigned long long)at);
			break;
		}
		ck->notes++;
		ret = take_checkpoint(ck, note, len, at);
		if (ret != 0)
			break;
		at += n + len;
	}
	/* A read error is not a short file: nothing after it was seen. */
	if (ret == 0 && ferror(f))
		ret = -EIO;
cleanup:
	free(note);
	fclose(f);
	return ret;
}

/*
 * Authenticate DATA/audit/leaves: the root of the first `size` stored
 * leaves must be the signed root, for every checkpoint the file covers.
 * Only a prefix that a signed root vouches for is used to name entries.
 */
static void authenticate_leaves(struct check *ck)
{
	char path[PATH_BYTES_MAX];
	struct merkle_tree t;
	struct stat st;
	u8 leaf[MERKLE_HASH_BYTES], root[MERKLE_HASH_BYTES];
	size_t k = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/" DATADIR_LEAVES, ck->data);
	f = fopen(path, "rb");
	if (!f || fstat(fileno(f), &st) != 0) {
		if (f)
			fclose(f);
		return;
	}
	ck->leaves_present = true;
	/* A last hash half-written by a running server is not counted. */
	ck->leaves_stored = (u64)st.st_size / MERKLE_HASH_BYTES;
	merkle_tree_init(&t);
	while (k < ck->ncps && ck->cps[k].size == 0)
		k++;
	while (k < ck->ncps && ck->cps[k].size <= ck->leaves_stored) {
		if (fread(leaf, 1, sizeof(leaf), f) != sizeof(leaf))
			break;
		merkle_tree_append_hash(&t, leaf, NULL, NULL);
		if (t.size < ck->cps[k].size)
			continue;
		merkle_tree_root(&t, root);
		if (memcmp(root, ck->cps[k].root, sizeof(root)) != 0) {
			problem(ck,
				"audit/leaves: the stored leaf hashes do not "
				"give the signed root at size %llu (entries "
				"past %llu are located by checkpoints only)",
				(unsigned long long)ck->cps[k].size,
				(unsigned long long)ck->leaves_auth);
			break;
		}
		ck->leaves_auth = t.size;
		k++;
	}
	fclose(f);
}

/* The leaf hash of a record under the rule its version names
 * (log/leaf.h); a record no rule can hash gets all zeros, which no stored
 * or signed leaf equals: it is reported as changed. */
static void record_leaf(const u8 *raw, size_t len, u8 out[MERKLE_HASH_BYTES])
{
	if (leaf_hash_record(raw, len, out) != 0)
		memset(out, 0, MERKLE_HASH_BYTES);
}

/* Record raw with its seq set to seq and its checksum made good again:
 * what an entry was before a renumbering moved it.  Hashes the result. */
static void hash_renumbered(const u8 *raw, size_t len, u64 seq,
			    u8 out[MERKLE_HASH_BYTES])
{
	u8 *copy = malloc(len);

	if (!copy || len < JOURNAL_HEADER_BYTES) {
		memset(out, 0, MERKLE_HASH_BYTES);
		free(copy);
		return;
	}
	memcpy(copy, raw, len);
	journal_record_seal(copy, len, true, seq);
	record_leaf(copy, len, out);
	free(copy);
}

/* What happened at index k, the first entry whose hash is not the stored
 * one, told from the next record too: an attacker who removes, swaps or
 * inserts a record must renumber the seqs after it (the reader checks
 * them), so undoing the renumbering shows where each record came from. */
struct first_change {
	bool found, decided;
	u64 index;
	u8 *raw; /* entry k's bytes, JOURNAL_RECORD_BYTES_MAX */
	size_t len;
	u8 stored[MERKLE_HASH_BYTES]; /* the authenticated leaf k */
};

static void classify(struct check *ck, struct first_change *fc, const u8 *next,
		     size_t next_len, const u8 next_hash[MERKLE_HASH_BYTES],
		     const u8 *next_stored)
{
	unsigned long long k = (unsigned long long)fc->index;
	u8 a[MERKLE_HASH_BYTES], b[MERKLE_HASH_BYTES];

	fc->decided = true;
	if (!next || !next_stored) {
		problem(ck, "entry %llu changed", k);
		return;
	}
	if (memcmp(next_hash, next_stored, MERKLE_HASH_BYTES) == 0) {
		problem(ck, "entry %llu changed (entry %llu is intact)", k,
			k + 1);
		return;
	}
	/* Was k's record entry k + 1's?  Is k + 1's record entry k's? */
	hash_renumbered(fc->raw, fc->len, fc->index + 2, a);
	hash_renumbered(next, next_len, fc->index + 1, b);
	bool k_was_next = memcmp(a, next_stored, sizeof(a)) == 0;
	bool next_was_k = memcmp(b, fc->stored, sizeof(b)) == 0;
	if (k_was_next && next_was_k)
		problem(ck,
			"entries %llu and %llu reordered (seqs "
			"renumbered)",
			k, k + 1);
	else if (k_was_next)
		problem(ck, "entry %llu removed (later seqs renumbered)", k);
	else if (next_was_k)
		problem(ck,
			"a record inserted at entry %llu (later seqs "
			"renumbered)",
			k);
	else
		problem(ck, "entry %llu changed (and entries after it)", k);
}

static int check_journal(struct check *ck)
{
	char path[PATH_BYTES_MAX];
	struct journal_reader *rd = NULL;
	struct first_change fc = {0};
	struct merkle_tree t;
	FILE *leaves = NULL;
	u8 hash[MERKLE_HASH_BYTES], stored[MERKLE_HASH_BYTES];
	u8 root[MERKLE_HASH_BYTES];
	u64 bytes = 0, last_print = tpw_monotonic_ms();
	u64 bad_cp_prev = 0, bad_cp_size = 0;
	size_t k = 0;
	bool bad_cp = false, cut = false;
	int ret;

	ret = journal_reader_open(&rd, ck->data, 1);
	if (ret != 0) {
		problem(ck, "%s/journal: %s", ck->data, tpw_strerror(-ret));
		return 0;
	}
	reader_archive(rd);
	fc.raw = malloc(JOURNAL_RECORD_BYTES_MAX);
	if (!fc.raw) {
		ret = -ENOMEM;
		goto cleanup;
	}
	if (ck->leaves_auth > 0) {
		snprintf(path, sizeof(path), "%s/" DATADIR_LEAVES, ck->data);
		leaves = fopen(path, "rb");
	}
	merkle_tree_init(&t);
	for (;;) {
		struct journal_record r;
		const u8 *raw;
		size_t raw_bytes;
		bool have_stored = false;

		/* The root at every signed size, size 0 included. */
		while (k < ck->ncps && ck->cps[k].size == t.size) {
			merkle_tree_root(&t, root);
			if (!bad_cp &&
			    memcmp(root, ck->cps[k].root, sizeof(root)) != 0) {
				bad_cp = true;
				bad_cp_prev = k > 0 ? ck->cps[k - 1].size : 0;
				bad_cp_size = ck->cps[k].size;
			}
			k++;
		}
		ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
		if (ret == 0)
			break;
		if (ret < 0) {
			if (fc.found && !fc.decided)
				classify(ck, &fc, NULL, 0, NULL, NULL);
			problem(ck,
				"entry %llu: the journal cannot be read past "
				"it: records removed, reordered, inserted or "
				"damaged (%s)",
				(unsigned long long)t.size,
				journal_reader_error(rd));
			cut = true;
			goto report;
		}
		record_leaf(raw, raw_bytes, hash);
		if (leaves && t.size < ck->leaves_auth &&
		    fread(stored, 1, sizeof(stored), leaves) == sizeof(stored))
			have_stored = true;
		if (fc.found && !fc.decided)
			classify(ck, &fc, raw, raw_bytes, hash,
				 have_stored ? stored : NULL);
		if (!fc.found && have_stored &&
		    memcmp(hash, stored, sizeof(hash)) != 0) {
			fc.found = true;
			fc.index = t.size;
			memcpy(fc.raw, raw, raw_bytes);
			fc.len = raw_bytes;
			memcpy(fc.stored, stored, sizeof(stored));
		}
		merkle_tree_append_hash(&t, hash, NULL, NULL);
		bytes += raw_bytes;
		if ((t.size & 1023) == 0 &&
		    tpw_monotonic_ms() - last_print >= PROGRESS_INTERVAL_MS) {
			last_print = tpw_monotonic_ms();
			fprintf(stderr,
				"audit check: %llu entries, %llu MiB read\n",
				(unsigned long long)t.size,
				(unsigned long long)(bytes >> 20));
		}
	}
	if (fc.found && !fc.decided)
		classify(ck, &fc, NULL, 0, NULL, NULL);
report:
	/* Without authenticated leaves, the signed roots still bound where
	 * the change lies: between the last size that matched and the first
	 * that did not. */
	if (bad_cp && !fc.found && bad_cp_size == 0)
		problem(ck, "a signed checkpoint of size 0 has a root other "
			    "than the empty tree's: it was not made from any "
			    "journal");
	else if (bad_cp && !fc.found)
		problem(ck,
			"entries %llu..%llu changed, removed, reordered or "
			"inserted (the journal gives the signed root at size "
			"%llu but not at size %llu)",
			(unsigned long long)bad_cp_prev,
			(unsigned long long)bad_cp_size - 1,
			(unsigned long long)bad_cp_prev,
			(unsigned long long)bad_cp_size);
	if (ck->ncps > 0 && k < ck->ncps && !cut) {
		u64 newest = ck->cps[ck->ncps - 1].size;
		if (t.size < newest)
			problem(ck,
				"entries %llu..%llu removed: the journal "
				"ends at %llu entries, the newest signed "
				"checkpoint covers %llu",
				(unsigned long long)t.size,
				(unsigned long long)newest - 1,
				(unsigned long long)t.size,
				(unsigned long long)newest);
	}
	/* Entries with no checkpoint at all: the server signs one at start
	 * and every second, so an emptied checkpoints file is a finding. */
	if (ck->notes == 0 && t.size > 0)
		problem(ck,
			"audit/checkpoints holds no checkpoint, but the "
			"journal "
			"has %llu entries: the signed history was removed",
			(unsigned long long)t.size);
	if (ck->problems == 0) {
		u64 newest = ck->ncps ? ck->cps[ck->ncps - 1].size : 0;
		printf("%llu entries, %llu checkpoints, newest size %llu: "
		       "consistent",
		       (unsigned long long)t.size,
		       (unsigned long long)ck->notes,
		       (unsigned long long)newest);
		if (t.size > newest)
			printf(" (%llu newer entries not signed yet)",
			       (unsigned long long)(t.size - newest));
		printf("\n");
	}
	ret = 0;
cleanup:
	if (leaves)
		fclose(leaves);
	free(fc.raw);
	journal_reader_close(rd);
	return ret;
}

static void usage_check(FILE *f)
{
	fprintf(f,
		"usage: tpwallet audit check DATA [--key KEY]\n\n"
		"Check a data directory offline (the server may be stopped or "
		"running):\nevery signed checkpoint in DATA/audit/checkpoints "
		"against the keys in\nDATA/keys (or only KEY: a verifier key, "
		"or @FILE), the stored leaf hashes\nagainst the checkpoints, "
		"then every journal record re-hashed against both.\nA changed, "
		"removed, reordered or inserted record is named by its entry "
		"index\n(or the range between two checkpoints), even when its "
		"checksum was rewritten.\nProgress goes to stderr.  Exit 0 "
		"when consistent, 1 when tampering is found,\n2 on usage "
		"errors.\n\nExample:\n  tpwallet audit check data --key "
		"@log.vkey\n");
}

static int check_data(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct check *ck = NULL;
	const char *key = NULL;
	struct stat st;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'h': usage_check(stdout); return 0;
		default: usage_check(stderr); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		usage_check(stderr);
		return EXIT_USAGE;
	}
	if (stat(argv[optind], &st) != 0 || !S_ISDIR(st.st_mode) ||
	    strlen(argv[optind]) > PATH_MAX) {
		fprintf(stderr, "tpwallet audit check: %s is not a directory\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	ck = calloc(1, sizeof(*ck));
	if (!ck)
		return EXIT_SOFTWARE;
	ck->data = argv[optind];
	ret = load_origin(ck);
	if (ret != 0)
		goto cleanup;
	if (key) {
		ret = load_keys("check", key, ck->verifiers, &ck->nverifiers);
		if (ret != 0)
			goto cleanup;
		if (strcmp(ck->verifiers[0].name, ck->origin) != 0) {
			problem(ck,
				"the key is named \"%s\", the log's origin "
				"is \"%s\"",
				ck->verifiers[0].name, ck->origin);
			ret = AUDIT_FAILED;
			goto cleanup;
		}
	} else {
		/* DATA/keys is read without the KEK, so its files are not
		 * authenticated: whoever can write DATA could add a key and
		 * re-sign.  Fine for an operator's own look; an auditor
		 * passes the key it got from the log beforehand. */
		ret = load_keyring(ck);
		if (ret != 0)
			goto cleanup;
		fprintf(stderr,
			"tpwallet audit check: warning: keys taken from "
			"DATA/keys, which anyone who can write DATA can "
			"replace; "
			"pass --key for an independent check\n");
	}
	ret = read_checkpoints(ck);
	if (ret == 0)
		authenticate_leaves(ck);
	if (ret == 0)
		ret = check_journal(ck);
	if (ret != 0) {
		fprintf(stderr, "tpwallet audit check: %s\n",
			ret == -ENOMEM ? "out of memory" : tpw_strerror(-ret));
		ret = EXIT_SOFTWARE;
		goto cleanup;
	}
	if (ck->problems > 0) {
		printf("%s: %u problem%s found: the audit log does not match "
		       "its signed checkpoints\n",
		       ck->data, ck->problems, ck->problems == 1 ? "" : "s");
		ret = AUDIT_FAILED;
	}
cleanup:
	if (ck)
		free(ck->cps);
	free(ck);
	return ret;
}

/* ---- log -------------------------------------------------------------------
 */

#define LOG_LIMIT_DEFAULT 50u
#define LOG_LIMIT_MAX	  10000u
/* Principals remembered to name authors (the server holds at most
 * AUTH_PRINCIPALS_MAX). */
#define LOG_NAMES_MAX AUTH_PRINCIPALS_MAX

/* A principal seen registered in the journal: id -> name. */
struct log_name {
	u8 id[AUTH_ID_BYTES];
	char name[ENTRY_VIEW_VALUE_BYTES];
};

/* One entry kept for printing. */
struct log_row {
	u64 index;
	bool damaged;
	struct entry_view v;
	char author_name[ENTRY_VIEW_VALUE_BYTES]; /* "" when unknown */
};

struct log_query {
	const char *type, *author, *grep;
	u64 since_ns, until_ns;
	u32 limit;
	bool json;
	struct log_name *names;
	size_t nnames, names_cap;
	struct log_row *ring; /* limit rows, the newest matches */
	/* The client-policy state replayed, for the version a policy_set
	 * made and the id an override got (NULL: not known). */
	struct pstate *pstate;
	/* The authorization state beside it: a dual-control approval
	 * (core/admin.h) applies a policy, decided on both. */
	struct auth *auth;
	u64 matched;
};

/* TIME: unix seconds, or RFC 3339 in UTC ("2026-12-06T10:00:00Z", an
 * optional fraction).  Nanoseconds since the epoch into *ns. */
static int parse_time(const char *s, u64 *ns)
{
	struct tm tm = {0};
	u64 secs;

	if (parse_u64(s, UINT64_MAX / 1000000000u, &secs) == 0) {
		*ns = secs * 1000000000u;
		return 0;
	}
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -EINVAL;
	u64 frac = 0, scale = 1000000000u;
	if (*end == '.') {
		end++;
		if (*end < '0' || *end > '9')
			return -EINVAL;
		for (; *end >= '0' && *end <= '9'; end++) {
			if (scale > 1) {
				scale /= 10;
				frac += (u64)(*end - '0') * scale;
			}
		}
	}
	if (strcmp(end, "Z") != 0)
		return -EINVAL;
	time_t t = timegm(&tm);
	if (t < 0)
		return -EINVAL;
	*ns = (u64)t * 1000000000u + frac;
	return 0;
}

static const char *name_of(const struct log_query *q, const u8 id[32])
{
	for (size_t i = 0; i < q->nnames; i++)
		if (memcmp(q->names[i].id, id, AUTH_ID_BYTES) == 0)
			return q->names[i].name;
	return NULL;
}

/* Remember a registration (the record's own bytes: the principal's id
 * and name). */
static void remember(struct log_query *q, const struct journal_record *r)
{
	struct command_view c;
	struct auth_principal p;

	if (r->type != JOURNAL_COMMAND ||
	    command_decode(r->payload, r->payload_bytes, &c) != 0 ||
	    (c.h.kind != AUTH_CMD_PRINCIPAL &&
	     c.h.kind != AUTH_CMD_PRINCIPAL_X509) ||
	    name_of(q, c.ext))
		return;
	memcpy(&p, c.ext, sizeof(p));
	if (q->nnames == q->names_cap) {
		size_t cap = q->names_cap ? q->names_cap * 2 : 64;
		struct log_name *n;
		if (cap > LOG_NAMES_MAX ||
		    !(n = realloc(q->names, cap * sizeof(*n))))
			return;
		q->names = n;
		q->names_cap = cap;
	}
	struct log_name *n = &q->names[q->nnames++];
	memcpy(n->id, p.id, sizeof(n->id));
	entry_view_text(n->name, sizeof(n->name), p.name, sizeof(p.name));
}

/* Apply a client-policy command to q->pstate as the server did: the
 * version or override id it made (0: none, or the state is lost). */
static u64 replay_pstate(struct log_query *q, const struct journal_record *r)
{
	struct command_view c;
	u32 outcome = 0;

	if (!q->pstate || r->type != JOURNAL_COMMAND ||
	    command_decode(r->payload, r->payload_bytes, &c) != 0 ||
	    (c.def->parts & COMMAND_LEDGER))
		return 0;
	const struct command_target t = {.auth = q->auth, .pstate = q->pstate};
	if (command_apply(&t, &c, r->timestamp, &outcome) != 0) {
		fprintf(stderr, "tpwallet audit log: the client policy cannot "
				"be replayed past this entry: versions are "
				"not shown after it\n");
		pstate_free(q->pstate);
		q->pstate = NULL;
		return 0;
	}
	if (outcome != PSTATE_OK)
		return 0;
	if (c.h.kind == PSTATE_CMD_SET)
		return pstate_version_count(q->pstate);
	if (c.h.kind == ADMIN_CMD_DECIDE) { /* an approval sets a version */
		struct admin_decide_cmd dc;
		memcpy(&dc, c.ext, sizeof(dc));
		return dc.decision == ADMIN_REJECT
			       ? 0
			       : pstate_version_count(q->pstate);
	}
	if (c.h.kind == PSTATE_CMD_OVERRIDE ||
	    c.h.kind == PSTATE_CMD_OVERRIDE_2)
		return pstate_override_count(q->pstate);
	return 0;
}

/* The author as the text line shows it: "administrator", "NAME
 * (THUMBPRINT)", "THUMBPRINT", or "-" for an entry without one. */
static void author_text(const struct log_row *w, char *out, size_t n)
{
	char tp[ENTRY_VIEW_THUMBPRINT_BYTES];

	if (!w->damaged && w->v.server_author) {
		snprintf(out, n, "server");
		return;
	}
	if (w->damaged || !w->v.has_author) {
		snprintf(out, n, "-");
		return;
	}
	if (entry_view_is_admin(w->v.author)) {
		snprintf(out, n, "administrator");
		return;
	}
	entry_view_thumbprint(w->v.author, tp);
	if (w->author_name[0])
		snprintf(out, n, "%s (%s)", w->author_name, tp);
	else
		snprintf(out, n, "%s", tp);
}

static bool row_matches(const struct log_query *q, const struct log_row *w)
{
	const struct entry_view *v = &w->v;

	if (q->type && !(v->command && strcmp(q->type, v->command) == 0) &&
	    strcmp(q->type, w->damaged ? "damaged" : v->type_name) != 0)
		return false;
	if (!w->damaged &&
	    (v->timestamp_ns < q->since_ns || v->timestamp_ns > q->until_ns))
		return false;
	if (q->author) {
		char tp[ENTRY_VIEW_THUMBPRINT_BYTES];
		if (!w->damaged && v->server_author)
			return strcmp(q->author, "server") == 0;
		if (w->damaged || !v->has_author)
			return false;
		bool admin = entry_view_is_admin(v->author);
		entry_view_thumbprint(v->author, tp);
		if (!(admin ? strcmp(q->author, "administrator") == 0
			    : strcmp(q->author, w->author_name) == 0 ||
				      strncmp(q->author, tp,
					      strlen(q->author)) == 0))
			return false;
	}
	if (q->grep) {
		char a[ENTRY_VIEW_VALUE_BYTES + ENTRY_VIEW_THUMBPRINT_BYTES +
		       8];
		bool hit = strstr(w->damaged ? v->error : v->summary, q->grep);
		author_text(w, a, sizeof(a));
		hit = hit || strstr(a, q->grep);
		for (u32 i = 0; !hit && !w->damaged && i < v->nfields; i++)
			hit = strstr(v->fields[i].value, q->grep) != NULL;
		if (!hit)
			return false;
	}
	return true;
}

static void print_row_json(const struct log_row *w)
{
	const struct entry_view *v = &w->v;
	char d[24];
	json_t *o = json_object();

	snprintf(d, sizeof(d), "%llu", (unsigned long long)w->index);
	json_object_set_new(o, "index", json_string(d));
	if (w->damaged) {
		json_object_set_new(o, "error", json_string(v->error));
	} else {
		json_object_set_new(o, "type", json_string(v->type_name));
		if (v->command)
			json_object_set_new(o, "command",
					    json_string(v->command));
		snprintf(d, sizeof(d), "%llu", (unsigned long long)v->seq);
		json_object_set_new(o, "seq", json_string(d));
		json_object_set_new(o, "time", json_string(v->time));
		snprintf(d, sizeof(d), "%llu",
			 (unsigned long long)v->timestamp_ns);
		json_object_set_new(o, "timestamp_ns", json_string(d));
		if (v->server_author)
			json_object_set_new(
				o, "author",
				json_pack("{s:s}", "name", "server"));
		if (v->has_author) {
			json_t *a = json_object();
			char tp[ENTRY_VIEW_THUMBPRINT_BYTES];
			if (entry_view_is_admin(v->author)) {
				json_object_set_new(
					a, "name",
					json_string("administrator"));
			} else {
				entry_view_thumbprint(v->author, tp);
				if (w->author_name[0])
					json_object_set_new(
						a, "name",
						json_string(w->author_name));
				json_object_set_new(a, "thumbprint",
						    json_string(tp));
			}
			json_object_set_new(o, "author", a);
		}
		json_object_set_new(o, "summary", json_string(v->summary));
		json_t *f = json_object();
		for (u32 i = 0; i < v->nfields; i++)
			json_object_set_new(f, v->fields[i].key,
					    json_string(v->fields[i].value));
		json_object_set_new(o, "fields", f);
	}
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(o);
}

static void print_row(const struct log_query *q, const struct log_row *w)
{
	char a[ENTRY_VIEW_VALUE_BYTES + ENTRY_VIEW_THUMBPRINT_BYTES + 8];

	if (q->json) {
		print_row_json(w);
		return;
	}
	author_text(w, a, sizeof(a));
	printf("%llu\t%s\t%s\t%s\t%s%s\n", (unsigned long long)w->index,
	       w->v.time[0] ? w->v.time : "-",
	       w->damaged     ? "damaged"
	       : w->v.command ? w->v.command
			      : w->v.type_name,
	       a, w->damaged ? "" : w->v.summary, w->damaged ? w->v.error : "");
}

/* Keep *w if it matches: the ring holds the newest `limit` matches. */
static void offer(struct log_query *q, const struct log_row *w)
{
	if (!row_matches(q, w))
		return;
	q->ring[q->matched % q->limit] = *w;
	q->matched++;
}

/* Read DATA's journal from the start; every entry offered.  Returns 0,
 * 1 when the journal is damaged (the damage is offered as an entry), or
 * a negative errno. */
static int scan_journal(struct log_query *q, const char *data)
{
	struct journal_reader *rd = NULL;
	struct log_row *w = calloc(1, sizeof(*w));
	u64 index = 0, last_print = tpw_monotonic_ms();
	int ret = journal_reader_open(&rd, data, 1);

	if (!w || ret != 0) {
		free(w);
		journal_reader_close(rd);
		return ret ? ret : -ENOMEM;
	}
	reader_archive(rd);
	for (;; index++) {
		struct journal_record r;
		const u8 *raw;
		size_t raw_bytes;

		ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
		if (ret == 0)
			break;
		memset(w, 0, sizeof(*w));
		w->index = index;
		if (ret < 0) {
			w->damaged = true;
			snprintf(w->v.error, sizeof(w->v.error),
				 "the journal cannot be read past here: %s",
				 journal_reader_error(rd));
			offer(q, w);
			ret = 1;
			break;
		}
		remember(q, &r);
		u64 id = replay_pstate(q, &r);
		w->damaged = entry_view_decode(raw, raw_bytes, &w->v) != 0;
		entry_view_set_outcome(&w->v, id);
		u64 oid = entry_view_override_id(&w->v);
		if (oid && q->pstate &&
		    oid <= pstate_override_count(q->pstate)) {
			struct pstate_override_info oi;
			pstate_override_at(q->pstate, oid - 1, &oi);
			entry_view_set_override(&w->v, oi.cmd->platform,
						oi.cmd->range);
		}
		const char *name =
			w->v.has_author ? name_of(q, w->v.author) : NULL;
		if (name)
			snprintf(w->author_name, sizeof(w->author_name), "%s",
				 name);
		offer(q, w);
		if ((index & 1023) == 1023 &&
		    tpw_monotonic_ms() - last_print >= PROGRESS_INTERVAL_MS) {
			last_print = tpw_monotonic_ms();
			fprintf(stderr, "audit log: %llu entries read\n",
				(unsigned long long)index + 1);
		}
	}
	journal_reader_close(rd);
	free(w);
	return ret;
}

static void usage_log(FILE *f)
{
	fprintf(f,
		"usage: tpwallet audit log DATA [--type NAME] [--author TEXT]\n"
		"       [--since TIME] [--until TIME] [--grep TEXT] "
		"[--limit N] [--json]\n\n"
		"The audit log's entries, read from DATA's journal (the server "
		"may be\nrunning), decoded and newest first: index, time, "
		"type, author, what\nchanged; tab-separated, or with --json "
		"one "
		"object per line (the fields\nof GET /v1/audit/entries/{i}"
		"?view=decoded, and the index).\n"
		"  --type NAME    a command (policy_set, policy_override, "
		"policy_override_2, policy_override_end,\n"
		"                 policy_override_extend, "
		"policy_override_expired,\n"
		"                 principal, revoke, key, accounts_owned, ...) "
		"or a record type\n"
		"                 (create_accounts, create_transfers, pulse, "
		"damaged)\n"
		"  --author TEXT  a principal's name, a thumbprint prefix, "
		"administrator, or\n"
		"                 server (the server's own entries: "
		"policy_override_expired)\n"
		"  --since TIME, --until TIME   RFC 3339 UTC or unix seconds, "
		"inclusive\n"
		"  --grep TEXT    a substring of the summary, a field or the "
		"author\n"
		"  --limit N      at most N entries (default %u, at most "
		"%u)\n\n"
		"A damaged entry is listed as \"damaged\" with why.  Exit 0, "
		"1 when the\njournal is damaged, 2 on usage errors.\n\n"
		"Example:\n  tpwallet audit log data --type policy_set "
		"--since 2026-12-01T00:00:00Z\n",
		LOG_LIMIT_DEFAULT, LOG_LIMIT_MAX);
}

static int log_entries(int argc, char **argv)
{
	static const struct option opts[] = {
		{"type", required_argument, NULL, 't'},
		{"author", required_argument, NULL, 'a'},
		{"since", required_argument, NULL, 's'},
		{"until", required_argument, NULL, 'u'},
		{"grep", required_argument, NULL, 'g'},
		{"limit", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct log_query q = {.until_ns = UINT64_MAX,
			      .limit = LOG_LIMIT_DEFAULT};
	struct stat st;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't': q.type = optarg; break;
		case 'a': q.author = optarg; break;
		case 'g': q.grep = optarg; break;
		case 'j': q.json = true; break;
		case 's':
		case 'u':
			if (parse_time(optarg,
				       c == 's' ? &q.since_ns : &q.until_ns)) {
				fprintf(stderr,
					"tpwallet audit log: --%s %s: want "
					"RFC 3339 UTC "
					"(2026-12-06T10:00:00Z) or unix "
					"seconds\n",
					c == 's' ? "since" : "until", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n':
			if (parse_u32_n(optarg, strlen(optarg), LOG_LIMIT_MAX,
					&q.limit) != 0 ||
			    q.limit == 0) {
				fprintf(stderr,
					"tpwallet audit log: --limit %s: want "
					"1..%u\n",
					optarg, LOG_LIMIT_MAX);
				return EXIT_USAGE;
			}
			break;
		case 'h': usage_log(stdout); return 0;
		default: usage_log(stderr); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		usage_log(stderr);
		return EXIT_USAGE;
	}
	if (stat(argv[optind], &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "tpwallet audit log: %s is not a directory\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	q.ring = calloc(q.limit, sizeof(*q.ring));
	q.pstate = pstate_new();
	q.auth = auth_new();
	if (!q.ring || !q.pstate || !q.auth) {
		free(q.ring);
		pstate_free(q.pstate);
		auth_free(q.auth);
		fprintf(stderr, "tpwallet audit log: out of memory\n");
		return EXIT_SOFTWARE;
	}
	ret = scan_journal(&q, argv[optind]);
	if (ret < 0) {
		fprintf(stderr, "tpwallet audit log: %s/journal: %s\n",
			argv[optind], tpw_strerror(-ret));
		ret = ret == -ENOMEM ? EXIT_SOFTWARE : EXIT_DATA;
	} else {
		u64 shown = q.matched < q.limit ? q.matched : q.limit;
		for (u64 i = 0; i < shown; i++)
			print_row(&q, &q.ring[(q.matched - 1 - i) % q.limit]);
		if (ret == 1)
			fprintf(stderr,
				"tpwallet audit log: the journal is damaged: "
				"run tpwallet audit check %s\n",
				argv[optind]);
		ret = ret == 1 ? AUDIT_FAILED : 0;
	}
	free(q.ring);
	free(q.names);
	pstate_free(q.pstate);
	auth_free(q.auth);
	return ret;
}

/* ---- the command -----------------------------------------------------------
 */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet audit <subcommand> [options]\n\n"
		"Verify or read the audit log offline, without a server:\n"
		"  verify-inclusion    --receipt FILE --key KEY\n"
		"  verify-consistency  --old FILE --new FILE --proof FILE "
		"--key KEY\n"
		"  check               DATA [--key KEY]\n"
		"  log                 DATA [--type NAME] [--author TEXT] "
		"[--since TIME]\n"
		"                      [--until TIME] [--grep TEXT] "
		"[--limit N] [--json]\n\n"
		"'tpwallet audit <subcommand> --help' says what each checks.  "
		"KEY is the\nlog's verifier key (GET /v1/audit/key) or @FILE.  "
		"See docs/api.md, Audit log.\n\n"
		"Example:\n"
		"  tpwallet audit check data\n");
}

int cmd_audit(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(sub, "verify-inclusion") == 0)
		return verify_inclusion(argc - 1, argv + 1);
	if (strcmp(sub, "verify-consistency") == 0)
		return verify_consistency(argc - 1, argv + 1);
	if (strcmp(sub, "check") == 0)
		return check_data(argc - 1, argv + 1);
	if (strcmp(sub, "log") == 0)
		return log_entries(argc - 1, argv + 1);
	fprintf(stderr, "tpwallet audit: unknown subcommand '%s'\n", sub);
	usage(stderr);
	return EXIT_USAGE;
}
