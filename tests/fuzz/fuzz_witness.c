/*
 * fuzz_witness.c - libFuzzer driver for what `tpwallet witness` parses
 * before it trusts anything: the add-checkpoint body and cosignature
 * lines (src/crypto/cosig.c).
 *
 * The first input byte picks what the rest is fed to:
 *   0  cosig_request_parse: on success the old size line re-formats to
 *      the input's first line, at most 63 hashes were read, and the note
 *      is the non-empty tail of the input right after a blank line;
 *   1  cosig_verify of the input as a line over a fixed checkpoint with
 *      a fixed key: only a line the key really signed may pass, so a
 *      success must re-sign to the same line at the same timestamp
 *      (Ed25519 is deterministic);
 *   2  cosig_sign over the input as a checkpoint body: on success
 *      cosig_verify accepts the line and returns the timestamp.
 *
 * Build: make fuzz; run:
 *   build/fuzz/fuzz_witness -dict=tests/fuzz/witness.dict \
 *     tests/fuzz/corpus/witness
 */
#include "crypto/cosig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_witness: %s failed (line %d)\n", \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static const char body[] = "example.com/behind-the-sofa\n"
			   "20852163\n"
			   "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
static struct note_signer signer;
static bool ready;

static void init(void)
{
	u8 seed[32] = {7};

	CHECK(sodium_init() >= 0);
	CHECK(note_signer_from_seed("witness.example/w1", 18, seed, &signer) ==
	      0);
	ready = true;
}

static void request(const char *in, size_t len)
{
	static struct cosig_request rq;
	char old[32];

	if (cosig_request_parse(in, len, &rq) != 0)
		return;
	int n = snprintf(old, sizeof(old), "old %llu\n",
			 (unsigned long long)rq.old_size);
	CHECK(n > 0 && (size_t)n <= len && memcmp(in, old, (size_t)n) == 0);
	CHECK(rq.nproof <= COSIG_PROOF_LINES_MAX);
	CHECK(rq.note_len > 0 && rq.note >= in + 2 &&
	      rq.note + rq.note_len == in + len);
	CHECK(rq.note[-1] == '\n' && rq.note[-2] == '\n');
}

static void verify(const char *in, size_t len)
{
	char again[COSIG_LINE_BYTES_MAX + 1];
	u64 ts = 0;
	size_t n = 0;

	if (cosig_verify(&signer.pub, body, strlen(body), in, len, &ts) != 0)
		return;
	CHECK(cosig_sign(&signer, ts, body, strlen(body), again, sizeof(again),
			 &n) == 0);
	if (len && in[len - 1] != '\n')
		n--;
	CHECK(n == len && memcmp(again, in, n) == 0);
}

static void sign(const char *in, size_t len)
{
	char line[COSIG_LINE_BYTES_MAX + 1];
	size_t n = 0;
	u64 ts = 0;

	if (cosig_sign(&signer, 1234567890, in, len, line, sizeof(line), &n) !=
	    0)
		return;
	CHECK(cosig_verify(&signer.pub, in, len, line, n, &ts) == 0);
	CHECK(ts == 1234567890);
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	if (!ready)
		init();
	if (size < 1)
		return 0;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	switch (data[0] % 3) {
	case 0: request(in, len); break;
	case 1: verify(in, len); break;
	default: sign(in, len); break;
	}
	return 0;
}
