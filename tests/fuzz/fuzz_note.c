/*
 * fuzz_note.c - libFuzzer driver for the signed-note and checkpoint
 * parsers, and the key-string parsers.
 *
 * The first input byte picks what the rest is fed to:
 *   0  note_open against fixed verifiers (the published PeterNeumann and
 *      EnochRoot keys and a key of our own): a result code from the
 *      table; on success the text is a prefix of the input ending in
 *      "\n", a verifier is marked, and its signature really verifies;
 *   1  checkpoint_parse: on success, when the origin is a valid key name,
 *      checkpoint_format gives back the input byte for byte (one text
 *      per checkpoint);
 *   2  note_verifier_parse / note_signer_parse: on success the formatted
 *      key parses back to the same key;
 *   3  note_sign with our key over the input as text: on success
 *      note_open accepts the note and returns the same text;
 *   4  the input as a note's signature block under a fixed text, so the
 *      fuzzer spends its time in signature-line parsing.
 *
 * Build (see Makefile: make fuzz), or alone:
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     tests/fuzz/fuzz_note.c src/crypto/note.c -lsodium -o fuzz_note
 *   ./fuzz_note -dict=tests/fuzz/note.dict tests/fuzz/corpus/note
 */
#include "crypto/note.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_note: %s failed (line %d)\n",    \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static const char peter_vkey[] =
	"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char enoch_vkey[] =
	"EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";

static struct note_verifier verifiers[3];
static struct note_signer ours;
static bool ready;

static void init(void)
{
	static const u8 seed[32] = {1, 2, 3, 4, 5, 6, 7, 8};

	if (ready)
		return;
	CHECK(sodium_init() >= 0);
	CHECK(note_verifier_parse(peter_vkey, strlen(peter_vkey),
				  &verifiers[0]) == 0);
	CHECK(note_verifier_parse(enoch_vkey, strlen(enoch_vkey),
				  &verifiers[1]) == 0);
	CHECK(note_signer_from_seed("tpwallet.example/log", 20, seed, &ours) ==
	      0);
	verifiers[2] = ours.pub;
	ready = true;
}

static bool known_code(int r)
{
	return r == 0 || (r <= NOTE_E_MALFORMED && r >= NOTE_E_SIGN_FAILED);
}

static void check_open(const char *m, size_t len)
{
	struct note_opened o;
	int r = note_open(m, len, verifiers, 3, &o);

	CHECK(known_code(r));
	if (r != 0)
		return;
	CHECK(o.text == m);
	CHECK(o.text_len >= 1 && o.text_len + 1 < len);
	CHECK(m[o.text_len - 1] == '\n' && m[o.text_len] == '\n');
	CHECK(o.verified >= 1 && o.verified <= o.sigs);
	CHECK(o.sigs <= NOTE_SIGS_MAX);
	CHECK(o.verified_by != 0 && o.verified_by < 8);
	CHECK((unsigned)__builtin_popcountll(o.verified_by) == o.verified);
}

static void check_checkpoint(const char *t, size_t len)
{
	struct checkpoint c;
	char buf[NOTE_BYTES_MAX + 1];
	size_t out;
	int r = checkpoint_parse(t, len, &c);

	CHECK(known_code(r));
	if (r != 0)
		return;
	CHECK(c.origin_len >= 1 && c.origin_len <= CHECKPOINT_ORIGIN_BYTES_MAX);
	CHECK(c.nextensions <= CHECKPOINT_EXTENSIONS_MAX);
	if (!note_name_valid(c.origin, c.origin_len))
		return;
	CHECK(checkpoint_format(&c, buf, sizeof(buf), &out) == 0);
	CHECK(out == len && memcmp(buf, t, len) == 0);
}

static void check_keys(const char *s, size_t len)
{
	struct note_verifier v, v2;
	struct note_signer sg, sg2;
	char buf[NOTE_SIGNER_KEY_BYTES_MAX + 1];
	size_t out;
	int r = note_verifier_parse(s, len, &v);

	CHECK(known_code(r));
	if (r == 0) {
		CHECK(note_verifier_format(&v, buf, sizeof(buf), &out) == 0);
		CHECK(note_verifier_parse(buf, out, &v2) == 0);
		CHECK(memcmp(v.public_key, v2.public_key, 32) == 0);
		CHECK(v.key_id == v2.key_id && v.name_len == v2.name_len);
	}
	r = note_signer_parse(s, len, &sg);
	CHECK(known_code(r));
	if (r == 0) {
		CHECK(note_signer_format(&sg, buf, sizeof(buf), &out) == 0);
		CHECK(note_signer_parse(buf, out, &sg2) == 0);
		CHECK(memcmp(sg.secret_key, sg2.secret_key, 64) == 0);
		note_signer_clear(&sg);
		note_signer_clear(&sg2);
	}
}

static void check_sign(const char *t, size_t len)
{
	static char note[NOTE_BYTES_MAX + 1];
	const struct note_signer *sv[1] = {&ours};
	struct note_opened o;
	size_t out;
	int r = note_sign(t, len, sv, 1, note, sizeof(note), &out);

	CHECK(known_code(r));
	if (r != 0)
		return;
	CHECK(note_open(note, out, verifiers, 3, &o) == 0);
	CHECK(o.verified_by == 4);
	CHECK(o.text_len == len && memcmp(o.text, t, len) == 0);
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	static char buf[NOTE_BYTES_MAX + 512];
	static const char text[] = "tpwallet.example/log\n1\n"
				   "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhev"
				   "oB0=\n\n";

	init();
	if (size == 0)
		return 0;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	switch (data[0] % 5) {
	case 0: check_open(s, n); break;
	case 1: check_checkpoint(s, n); break;
	case 2: check_keys(s, n); break;
	case 3: check_sign(s, n); break;
	default:
		if (n + sizeof(text) > sizeof(buf))
			return 0;
		memcpy(buf, text, sizeof(text) - 1);
		memcpy(buf + sizeof(text) - 1, s, n);
		check_open(buf, sizeof(text) - 1 + n);
		break;
	}
	return 0;
}
