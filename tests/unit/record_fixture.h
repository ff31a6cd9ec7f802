/*
 * record_fixture.h - a sealed journal record built in a test's buffer:
 * what the tests of the readers of whole records (log/entry_view,
 * api/cdcevent) feed them.
 */
#ifndef TPW_TESTS_RECORD_FIXTURE_H
#define TPW_TESTS_RECORD_FIXTURE_H

#include "log/journal.h"

#include <string.h>

/* rec[0..32 + n): a record of type with seq and ts holding payload[0..n),
 * sealed (its checksum holds).  Returns its size; the caller's buffer must
 * hold it. */
static inline size_t record_fixture(u8 *rec, u16 type, u64 seq, u64 ts,
				    const void *payload, size_t n)
{
	u32 magic = JOURNAL_MAGIC, size = (u32)(JOURNAL_HEADER_BYTES + n);
	u16 version = JOURNAL_VERSION;

	memset(rec, 0, JOURNAL_HEADER_BYTES);
	memcpy(rec, &magic, 4);
	memcpy(rec + 8, &size, 4);
	memcpy(rec + 12, &type, 2);
	memcpy(rec + 14, &version, 2);
	memcpy(rec + 16, &seq, 8);
	memcpy(rec + 24, &ts, 8);
	if (n > 0)
		memcpy(rec + JOURNAL_HEADER_BYTES, payload, n);
	journal_record_seal(rec, size, false, 0);
	return size;
}

#endif
