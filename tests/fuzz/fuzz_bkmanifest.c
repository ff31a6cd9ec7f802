/*
 * fuzz_bkmanifest.c - libFuzzer driver for the backup manifest's decoder
 * (log/bkmanifest.h): manifest.json is read from a backup location, which
 * anyone with write access to it may have changed, so the decoder must
 * refuse anything that is not a manifest (-EBADMSG), never crash, and
 * whatever it accepts must encode back to a text that decodes to the
 * same manifest (the MAC is computed over that encoding).
 *
 * Input: the manifest text.  Checked on acceptance: the files' sizes sum
 * to bytes, every name passes bkmanifest_name_valid, first_seq is 1 and
 * base_seq <= last_seq; encode(decode(x)) decodes and encodes to itself.
 *
 * Built by `make fuzz` with the rest (build/fuzz/fuzz_bkmanifest); run:
 *   build/fuzz/fuzz_bkmanifest -dict=tests/fuzz/bkmanifest.dict \
 *     build/fuzz/corpus-bkmanifest tests/fuzz/corpus/bkmanifest
 */
#include "log/bkmanifest.h"

#include "fuzz_check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct bkmanifest m, again;
	const char *why = NULL;
	int ret = bkmanifest_decode((const char *)data, size, &m, &why);

	CHECK(ret == 0 || ret == -EBADMSG || ret == -ENOMEM);
	if (ret != 0) {
		CHECK(ret == -ENOMEM || why != NULL);
		return 0;
	}
	u64 sum = 0;
	for (size_t i = 0; i < m.nfiles; i++) {
		CHECK(bkmanifest_name_valid(m.files[i].name));
		sum += m.files[i].bytes;
	}
	CHECK(sum == m.bytes);
	CHECK(m.first_seq == 1 && m.base_seq <= m.last_seq);
	char *text = bkmanifest_encode(&m, true);
	if (text) {
		CHECK(bkmanifest_decode(text, strlen(text), &again, &why) == 0);
		char *text2 = bkmanifest_encode(&again, true);
		CHECK(!text2 || strcmp(text, text2) == 0);
		free(text2);
		bkmanifest_free(&again);
	}
	free(text);
	bkmanifest_free(&m);
	return 0;
}
