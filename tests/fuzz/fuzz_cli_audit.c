/*
 * fuzz_cli_audit.c - libFuzzer harness for what `tpwallet audit` reads
 * from files (src/cli/cmd_audit.c, compiled into this harness to reach
 * its statics, because the fuzz library leaves src/cli out, as
 * fuzz_config.c does).
 *
 * The receipt, the consistency proof, the checkpoints and the keys are
 * whatever an auditor was handed: every byte is hostile.  The first input
 * byte picks a mode (low two bits) and its options (the six others):
 *   0  the rest is a receipt (verify-inclusion): check_receipt against
 *      the seed log's two keys and one of the harness's.  Options fix the
 *      receipt up afterwards, so the fuzzer also reaches what lies behind
 *      the hashes and the signature, and check_receipt runs again on it:
 *        bit 0  "entry" gets seq index + 1 and a good checksum, and
 *               "leaf_hash" its hash (its version's rule); in an event
 *               receipt (leaf rule 2), "header" gets seq index + 1 and
 *               a zero checksum, "chunk" the event's hash at its place,
 *               and "leaf_hash" the leaf they imply;
 *        bit 1  "root" is the root the inclusion proof implies;
 *        bit 2  the checkpoint is re-signed by the harness key (with
 *               bit 1, after taking the receipt's size and root);
 *   1  the rest is old checkpoint, SEP, new checkpoint, SEP, consistency
 *      proof (verify-consistency); bit 0 re-signs both checkpoints' texts
 *      with the harness key;
 *   2  the rest is a KEY argument (load_keys), given inline or, with bit
 *      0, as @FILE; accepted keys must format back to what parses to the
 *      same key, and they then open a real signed checkpoint;
 *   3  the rest is DATA/audit/checkpoints, SEP, DATA/audit/leaves, SEP,
 *      one journal segment, for `tpwallet audit check DATA --key KEYS`
 *      on a scratch data directory (a part left out is a file absent);
 *      bit 0 re-signs the text of every note in the checkpoints file.
 * SEP is the four bytes "\0--\0" (in cli_audit.dict).
 * Properties: nothing crashes, leaks or reads out of bounds; every
 * verdict is one of the documented exit statuses.  The verifiers print
 * on stdout and stderr: run with -close_fd_mask=3 for a quiet run.
 *
 * Built by `make fuzz` (build/fuzz/fuzz_cli_audit); run:
 *   build/fuzz/fuzz_cli_audit -close_fd_mask=3 \
 *     -dict=tests/fuzz/cli_audit.dict \
 *     build/fuzz/corpus-fuzz_cli_audit tests/fuzz/corpus/cli_audit
 * Seeds: receipts, proofs, checkpoints, keys and a data directory's
 * audit files from a server run on loopback, plus hand-made edge cases.
 */
#include "cli/cmd_audit.c"

#include <fcntl.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
				"fuzz_cli_audit: %s failed (line %d)\n",       \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

#define INPUT_BYTES_MAX (1u << 20)
#define PARTS_MAX	3
static const char sep[4] = {'\0', '-', '-', '\0'};

/* The seed log: its origin and its two keys (one rotated out), public. */
#define ORIGIN "tpwallet/59123cb83367369f"
static const char *const log_keys[] = {
	ORIGIN "+5d0b2245+AU9+O4JYUuCu24qihRysssI1vsH9ojKJrMv/9UHdMUqf",
	ORIGIN "+4964a78a+AYZfnayhF713SUqt+kjYcWR00htbU3pIdS8/HIdBdgQ3",
};
/* A checkpoint of the seed log, signed by the first key. */
static const char log_checkpoint[] =
	ORIGIN "\n10\nh5RzWKueKgHachAtlNxQ6NVY+E/JhZU4VF843/Fc+Og=\n\n"
	       "\xe2\x80\x94 " ORIGIN " XQsiRRo84QpCy+k3AVh8WNhRA7DT6Fe44y3+pZf"
	       "v2FqTVyPwqyZOjvFkVcmjp5tFeePrJ0N4dqLJ457xaCzlADMCUQg=\n";

static struct note_verifier keys[3];
static struct note_signer ours;
/* "key1\nkey2\nkey3": the --key argument of mode 3. */
static char key_arg[3 * (NOTE_VERIFIER_KEY_BYTES_MAX + 1)];
static char scratch[64];    /* a private directory for the files */
static char path_key[128];  /* scratch/key */
static char path_data[128]; /* scratch/data */
static bool ready;

static void write_file(const char *dir, const char *name, const void *buf,
		       size_t len, bool present)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!present) {
		CHECK(unlink(path) == 0 || errno == ENOENT);
		return;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(len == 0 || write(fd, buf, len) == (ssize_t)len);
	CHECK(close(fd) == 0);
}

static void mkdir_in(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK(mkdir(path, 0700) == 0);
}

/* The scratch directory goes when the fuzzer exits normally. */
static void remove_scratch(void)
{
	static const char *const files[] = {
		"data/audit/checkpoints", "data/audit/leaves",
		"data/journal/00000000000000000001.wal", "data/origin", "key"};
	static const char *const dirs[] = {"data/audit", "data/journal", "data",
					   ""};
	char path[256];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", scratch, files[i]);
		unlink(path);
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", scratch, dirs[i]);
		rmdir(path);
	}
}

static void init(void)
{
	static const u8 seed[32] = {'f', 'u', 'z', 'z', '-', 'a', 'u', 'd'};
	size_t off = 0, n;
	const char *tmp = getenv("TMPDIR");

	if (ready)
		return;
	CHECK(sodium_init() >= 0);
	for (size_t i = 0; i < 2; i++)
		CHECK(note_verifier_parse(log_keys[i], strlen(log_keys[i]),
					  &keys[i]) == 0);
	CHECK(note_signer_from_seed(ORIGIN, strlen(ORIGIN), seed, &ours) == 0);
	keys[2] = ours.pub;
	for (size_t i = 0; i < 3; i++) {
		CHECK(note_verifier_format(&keys[i], key_arg + off,
					   sizeof(key_arg) - off, &n) == 0);
		off += n;
		if (i < 2)
			key_arg[off++] = '\n';
	}
	key_arg[off] = '\0';

	snprintf(scratch, sizeof(scratch), "%s/fuzz_cli_audit.XXXXXX",
		 tmp && tmp[0] && strlen(tmp) < 32 ? tmp : "/tmp");
	CHECK(mkdtemp(scratch) != NULL);
	atexit(remove_scratch);
	snprintf(path_key, sizeof(path_key), "%s/key", scratch);
	snprintf(path_data, sizeof(path_data), "%s/data", scratch);
	mkdir_in(scratch, "data");
	mkdir_in(path_data, "audit");
	mkdir_in(path_data, "journal");
	write_file(path_data, "origin", ORIGIN "\n", strlen(ORIGIN) + 1, true);
	ready = true;
}

/* Split in[0..len) at SEP into at most max parts; returns their count. */
static size_t split(const char *in, size_t len, const char **part, size_t *plen,
		    size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; n + 1 < max && i + sizeof(sep) <= len; i++) {
		if (memcmp(in + i, sep, sizeof(sep)) != 0)
			continue;
		part[n] = in + start;
		plen[n++] = i - start;
		start = i + sizeof(sep);
		i = start - 1;
	}
	part[n] = in + start;
	plen[n++] = len - start;
	return n;
}

/* A note's text (through the first blank line) re-signed by our key into
 * out[0..cap).  Returns false when the text cannot be signed. */
static bool resign(const char *note, size_t len, char *out, size_t cap,
		   size_t *out_len)
{
	const struct note_signer *s[1] = {&ours};
	const char *blank = memmem(note, len, "\n\n", 2);

	if (!blank)
		return false;
	return note_sign(note, (size_t)(blank - note) + 1, s, 1, out, cap,
			 out_len) == 0;
}

/* ---- mode 0: a receipt --------------------------------------------------- */

static void b64_set(json_t *o, const char *name, const u8 *bin, size_t len)
{
	size_t cap =
		sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(cap);

	CHECK(s != NULL);
	sodium_bin2base64(s, cap, bin, len, sodium_base64_VARIANT_ORIGINAL);
	json_object_set_new(o, name, json_string(s));
	free(s);
}

/* Give the entry the seq of its index and a good checksum, and the
 * receipt the entry's leaf hash. */
static void fix_leaf(json_t *o)
{
	u8 *e = malloc(JOURNAL_RECORD_BYTES_MAX);
	u8 leaf[MERKLE_HASH_BYTES];
	size_t len, n;
	const char *s = member_str(o, "entry", &len);
	u64 index;
	long got;

	CHECK(e != NULL);
	if (!s || (got = parse_base64(s, len, e, JOURNAL_RECORD_BYTES_MAX)) < 0)
		goto cleanup;
	n = (size_t)got;
	if (n >= JOURNAL_HEADER_BYTES) {
		bool set = member_dec(o, "index", &index) && index < UINT64_MAX;
		journal_record_seal(e, n, set, set ? index + 1 : 0);
		b64_set(o, "entry", e, n);
	}
	if (leaf_hash_record(e, n, leaf) != 0)
		merkle_hash_leaf(e, n, leaf);
	b64_set(o, "leaf_hash", leaf, sizeof(leaf));
cleanup:
	free(e);
}

/* An event receipt (leaf rule 2): the header gets the seq of the index
 * and a zero checksum, the chunk the event's hash at its place, and the
 * receipt the leaf those imply (when the lengths allow one). */
static void fix_event_leaf(json_t *o)
{
	static struct leaf_event_proof pr;
	u8 event[LEAF_EVENT_BYTES], leaf[MERKLE_HASH_BYTES];
	struct leaf_v2 p;
	size_t nchunk, npath;
	u64 index, k;
	u32 n;

	if (!member_bytes(o, "header", p.header, sizeof(p.header)) ||
	    !member_bytes(o, "command", p.command, sizeof(p.command)) ||
	    !member_bytes(o, "event", event, sizeof(event)) ||
	    !member_hash(o, "ext_hash", p.ext_hash) ||
	    !member_dec(o, "event_index", &k) ||
	    member_hashes(o, "chunk", pr.chunk, LEAF_CHUNK_EVENTS, &nchunk) ||
	    member_hashes(o, "events_proof", pr.path, LEAF_EVENTS_PROOF_MAX,
			  &npath))
		return;
	if (member_dec(o, "index", &index) && index < UINT64_MAX)
		for (unsigned i = 0; i < 8; i++)
			p.header[JOURNAL_OFF_SEQ + i] =
				(u8)((index + 1) >> (8 * i));
	memset(p.header + JOURNAL_OFF_CHECKSUM, 0, 4);
	b64_set(o, "header", p.header, sizeof(p.header));
	if (leaf_v2_event_count(p.header, p.command, &n) != 0 || k >= n ||
	    nchunk == 0)
		return;
	pr.n = n;
	pr.k = (u32)k;
	pr.nchunk = (u32)nchunk;
	pr.npath = (u32)npath;
	leaf_event_hash(
		event,
		pr.chunk[k % LEAF_CHUNK_EVENTS < nchunk ? k % LEAF_CHUNK_EVENTS
							: 0]);
	json_t *a = json_array();
	for (size_t i = 0; i < nchunk; i++) {
		char b[64];
		sodium_bin2base64(b, sizeof(b), pr.chunk[i], MERKLE_HASH_BYTES,
				  sodium_base64_VARIANT_ORIGINAL);
		json_array_append_new(a, json_string(b));
	}
	json_object_set_new(o, "chunk", a);
	if (leaf_events_root_from_proof(event, &pr, p.events_root) != 0)
		return;
	leaf_v2_hash(&p, leaf);
	b64_set(o, "leaf_hash", leaf, sizeof(leaf));
}

/* Set "root" to what the proof implies; true and the root in out. */
static bool fix_root(json_t *o, u8 out[MERKLE_HASH_BYTES])
{
	u8 proof[MERKLE_PROOF_HASHES_MAX][MERKLE_HASH_BYTES];
	u8 leaf[MERKLE_HASH_BYTES];
	size_t nproof;
	u64 index, size;

	if (!member_dec(o, "index", &index) || !member_dec(o, "size", &size) ||
	    !member_hash(o, "leaf_hash", leaf) ||
	    member_proof(o, proof, &nproof) != NULL ||
	    merkle_root_from_inclusion(index, size, leaf,
				       (const u8(*)[MERKLE_HASH_BYTES])proof,
				       nproof, out) != 0)
		return false;
	b64_set(o, "root", out, MERKLE_HASH_BYTES);
	return true;
}

/* Re-sign the receipt's checkpoint; with a root, after giving it the
 * receipt's size and that root. */
static void fix_checkpoint(json_t *o, const u8 *root)
{
	char *note = malloc(NOTE_BYTES_MAX), *text = NULL;
	const char *s, *use;
	size_t len, use_len, n;
	struct checkpoint c;
	u64 size;

	CHECK(note != NULL);
	s = member_str(o, "checkpoint", &len);
	if (!s)
		goto cleanup;
	use = s;
	use_len = len;
	if (root && member_dec(o, "size", &size)) {
		const char *blank = memmem(s, len, "\n\n", 2);
		text = malloc(NOTE_BYTES_MAX);
		CHECK(text != NULL);
		if (blank &&
		    checkpoint_parse(s, (size_t)(blank - s) + 1, &c) == 0) {
			c.size = size;
			memcpy(c.root, root, sizeof(c.root));
			if (checkpoint_format(&c, text, NOTE_BYTES_MAX - 2,
					      &n) == 0) {
				text[n++] = '\n'; /* the blank line */
				use = text;
				use_len = n;
			}
		}
	}
	if (resign(use, use_len, note, NOTE_BYTES_MAX, &n))
		json_object_set_new(o, "checkpoint", json_stringn(note, n));
cleanup:
	free(text);
	free(note);
}

static void fuzz_receipt(const char *in, size_t len, unsigned opts)
{
	u8 root[MERKLE_HASH_BYTES];
	bool have_root = false;
	json_t *o;
	char *fixed;
	int r;

	r = check_receipt(in, len, keys, 3);
	CHECK(r == 0 || r == AUDIT_FAILED);
	if ((opts & 7) == 0)
		return;
	o = json_loadb(in, len, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return;
	}
	if (opts & 1) {
		if (json_object_get(o, "event"))
			fix_event_leaf(o);
		else
			fix_leaf(o);
	}
	if (opts & 2)
		have_root = fix_root(o, root);
	if (opts & 4)
		fix_checkpoint(o, have_root ? root : NULL);
	fixed = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!fixed)
		return;
	r = check_receipt(fixed, strlen(fixed), keys, 3);
	CHECK(r == 0 || r == AUDIT_FAILED);
	free(fixed);
}

/* ---- mode 1: a consistency proof and its two checkpoints ----------------- */

static void fuzz_consistency(const char *in, size_t len, unsigned opts)
{
	const char *part[PARTS_MAX] = {"", "", ""};
	size_t plen[PARTS_MAX] = {0, 0, 0};
	char *signed_[2] = {NULL, NULL};
	int r;

	split(in, len, part, plen, PARTS_MAX);
	if (opts & 1)
		for (int i = 0; i < 2; i++) {
			size_t n;
			signed_[i] = malloc(NOTE_BYTES_MAX);
			CHECK(signed_[i] != NULL);
			if (resign(part[i], plen[i], signed_[i], NOTE_BYTES_MAX,
				   &n)) {
				part[i] = signed_[i];
				plen[i] = n;
			}
		}
	r = check_consistency(part[0], plen[0], part[1], plen[1], part[2],
			      plen[2], keys, 3);
	CHECK(r == 0 || r == AUDIT_FAILED);
	free(signed_[0]);
	free(signed_[1]);
}

/* ---- mode 2: a KEY argument ---------------------------------------------- */

static void fuzz_keys(const char *in, size_t len, unsigned opts)
{
	struct note_verifier v[NOTE_VERIFIERS_MAX];
	struct checkpoint c;
	/* the text and its NUL, or "@", the path and its NUL */
	char *arg = malloc(len + sizeof(path_key) + 2);
	size_t n = 0;
	int r;

	CHECK(arg != NULL);
	if (opts & 1) {
		write_file(scratch, "key", in, len, true);
		arg[0] = '@';
		memcpy(arg + 1, path_key, strlen(path_key) + 1);
	} else {
		/* An argv string: up to its first NUL. */
		memcpy(arg, in, len);
		arg[len] = '\0';
	}
	r = load_keys("fuzz", arg, v, &n);
	CHECK(r == 0 || r == EXIT_USAGE);
	if (r == 0) {
		CHECK(n >= 1 && n <= NOTE_VERIFIERS_MAX);
		for (size_t i = 0; i < n; i++) {
			char text[NOTE_VERIFIER_KEY_BYTES_MAX + 1];
			struct note_verifier back;
			size_t tlen;
			CHECK(strcmp(v[i].name, v[0].name) == 0);
			CHECK(note_verifier_format(&v[i], text, sizeof(text),
						   &tlen) == 0);
			CHECK(note_verifier_parse(text, tlen, &back) == 0);
			CHECK(back.key_id == v[i].key_id &&
			      back.name_len == v[i].name_len &&
			      memcmp(back.public_key, v[i].public_key, 32) ==
				      0 &&
			      strcmp(back.name, v[i].name) == 0);
		}
		r = open_checkpoint("fuzz", log_checkpoint,
				    strlen(log_checkpoint), v, n, &c);
		CHECK(r == 0 || r == AUDIT_FAILED);
	}
	free(arg);
}

/* ---- mode 3: `audit check` on a data directory --------------------------- */

/* The checkpoints file with every note's text re-signed by our key, so
 * that forks, sizes going back and foreign origins get past the
 * signature.  Records that do not parse are left as they are, and the
 * rest of the file after them.  The caller frees the result. */
static char *resign_checkpoints(const char *in, size_t len, size_t *out_len)
{
	char *out = malloc(2 * len + 4096), *note = malloc(NOTE_BYTES_MAX);
	size_t at = 0, o = 0;

	CHECK(out != NULL && note != NULL);
	while (at < len) {
		size_t n, head;
		u64 rec;
		if (datadir_checkpoint_head_parse(in + at, len - at, &rec,
						  &head) != DATADIR_HEAD_OK ||
		    rec > len - at - head ||
		    !resign(in + at + head, rec, note, NOTE_BYTES_MAX, &n) ||
		    o + DATADIR_CHECKPOINT_HEAD_BYTES_MAX + n + (len - at) >
			    2 * len + 4096)
			break; /* (room is kept for the rest of the input) */
		o += datadir_checkpoint_head(out + o, n);
		memcpy(out + o, note, n);
		o += n;
		at += head + rec;
	}
	memcpy(out + o, in + at, len - at);
	*out_len = o + len - at;
	free(note);
	return out;
}

static void fuzz_check(const char *in, size_t len, unsigned opts)
{
	static const char *const names[PARTS_MAX] = {
		"audit/checkpoints", "audit/leaves",
		"journal/00000000000000000001.wal"};
	const char *part[PARTS_MAX];
	size_t plen[PARTS_MAX];
	size_t n = split(in, len, part, plen, PARTS_MAX);
	char a0[] = "check", a2[] = "--key";
	char *argv[] = {a0, path_data, a2, key_arg, NULL};
	char *resigned = NULL;
	int r;

	if (opts & 1) {
		resigned = resign_checkpoints(part[0], plen[0], &plen[0]);
		part[0] = resigned;
	}
	for (size_t i = 0; i < PARTS_MAX; i++)
		write_file(path_data, names[i], i < n ? part[i] : NULL,
			   i < n ? plen[i] : 0, i < n);
	free(resigned);
	r = check_data(4, argv);
	CHECK(r == 0 || r == AUDIT_FAILED);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	unsigned opts;

	if (size < 1 || size > INPUT_BYTES_MAX)
		return 0;
	init();
	opts = data[0] >> 2;
	switch (data[0] & 3) {
	case 0: fuzz_receipt(in, len, opts); break;
	case 1: fuzz_consistency(in, len, opts); break;
	case 2: fuzz_keys(in, len, opts); break;
	default: fuzz_check(in, len, opts); break;
	}
	fflush(stdout);
	return 0;
}
