/*
 * fuzz_cdcevent.c - libFuzzer harness for src/api/cdcevent.h, the CDC
 * event encoder.
 *
 * The input is a journal of up to 64 records: each is a type byte (1-4),
 * a 16-bit little-endian payload size (a multiple of 16, at most 4096)
 * and the payload; each record is sealed with the next seq and a
 * timestamp a second after the previous one, and given to the encoder.
 * Properties:
 *   - nothing crashes; a record the state refuses is -EBADMSG and stops
 *     the journal (as it would stop the server's replay);
 *   - every event is one JSON object (jansson reads it whole) whose "id"
 *     is "<origin>/<seq>/<index>" with the record's seq and the event's
 *     index, counting from 0 without a gap, and whose "type" is the
 *     event's;
 *   - a second encoder given the same records without emitting reaches
 *     the same state digest (a resumed cdc numbers events the same).
 */
#include "api/cdcevent.h"
#include "core/ledger.h"
#include "core/state.h"
#include "log/journal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define ORIGIN "tpwallet/0011223344556677"

struct seen {
	u64 seq;
	u32 next;
};

static int check_event(void *ctx, const struct cdc_event *ev)
{
	struct seen *s = ctx;
	char want[CDC_ID_BYTES_MAX];
	json_error_t jerr;

	CHECK(ev->seq == s->seq && ev->index == s->next);
	s->next++;
	snprintf(want, sizeof(want), ORIGIN "/%llu/%u",
		 (unsigned long long)ev->seq, ev->index);
	CHECK(strcmp(ev->id, want) == 0);
	json_t *o = json_loadb(ev->json, ev->json_bytes, 0, &jerr);
	CHECK(o && json_is_object(o));
	CHECK(strcmp(json_string_value(json_object_get(o, "id")), want) == 0);
	CHECK(strcmp(json_string_value(json_object_get(o, "type")), ev->type) ==
	      0);
	json_decref(o);
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static u8 rec[JOURNAL_HEADER_BYTES + 4096];
	struct cdc_encoder *a = NULL, *b = NULL;
	u64 ts = 1800000000000000000ull;
	size_t at = 0;

	ledger_set_hash_key(7);
	CHECK(cdc_encoder_new(&a, state_new(&(struct ledger_options){0}),
			      ORIGIN) == 0);
	CHECK(cdc_encoder_new(&b, state_new(&(struct ledger_options){0}),
			      ORIGIN) == 0);
	for (u64 seq = 1; seq <= 64 && at + 3 <= size; seq++) {
		u16 type = (u16)(1 + data[at] % 4);
		u32 n = ((u32)data[at + 1] | (u32)data[at + 2] << 8) % 4097;
		n -= n % 16;
		at += 3;
		if (n > size - at)
			break;
		u32 magic = JOURNAL_MAGIC, total = JOURNAL_HEADER_BYTES + n;
		u16 version = JOURNAL_VERSION;
		ts += 1000000000ull;
		memset(rec, 0, JOURNAL_HEADER_BYTES);
		memcpy(rec, &magic, 4);
		memcpy(rec + 8, &total, 4);
		memcpy(rec + 12, &type, 2);
		memcpy(rec + 14, &version, 2);
		memcpy(rec + 16, &seq, 8);
		memcpy(rec + 24, &ts, 8);
		memcpy(rec + JOURNAL_HEADER_BYTES, data + at, n);
		at += n;
		journal_record_seal(rec, total, false, 0);
		struct journal_record r = {
			.type = type,
			.seq = seq,
			.timestamp = ts,
			.payload = rec + JOURNAL_HEADER_BYTES,
			.payload_bytes = n,
		};
		struct seen s = {.seq = seq};
		int ra = cdc_encoder_record(a, &r, rec, total, check_event, &s);
		int rb = cdc_encoder_record(b, &r, rec, total, NULL, NULL);
		CHECK(ra == -EBADMSG || ra == -ENOMEM || ra == (int)s.next);
		CHECK((ra < 0) == (rb < 0));
		if (ra < 0)
			break;
	}
	u8 da[32], db[32];
	state_digest(cdc_encoder_state(a), da);
	state_digest(cdc_encoder_state(b), db);
	CHECK(memcmp(da, db, 32) == 0);
	cdc_encoder_free(a);
	cdc_encoder_free(b);
	return 0;
}
