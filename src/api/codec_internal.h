/*
 * codec_internal.h - what codec.c shares with its fast path, fastjson.c.
 *
 * The request schemas (field names, value types and record offsets, flag
 * names) live in codec.c, once: the full decoder, the encoders and the
 * fast path all read the same tables, so a field added there is known to
 * all three.  codec__decode_events_full() is the jansson decoder on its
 * own, without the fast path in front: codec_decode_events() falls back to
 * it, and the tests and the differential fuzzer compare the two.
 *
 * Only src/api/ and its tests include this header.
 */
#ifndef TPW_API_CODEC_INTERNAL_H
#define TPW_API_CODEC_INTERNAL_H

#include "api/codec.h"

/* How a field's value is written in JSON and stored in the record. */
enum codec__ftype {
	CODEC__U128,  /* decimal string, 0..2^128-1, u128 */
	CODEC__U64,   /* decimal string, 0..2^64-1, u64 */
	CODEC__U32,   /* JSON integer, 0..2^32-1, u32 */
	CODEC__U16,   /* JSON integer, 0..65535, u16 */
	CODEC__FLAGS, /* array of flag names, u16 bit set */
};

struct codec__field {
	const char *name;
	u8 name_len;
	u8 type; /* enum codec__ftype */
	u8 offset;
};

/* Flag bits a table can name; flag_names[bit] is NULL when refused. */
#define CODEC__FLAG_BITS 16
/* At most this many fields per kind: the fast path keeps a bit per field
 * in a u32 to spot duplicate keys. */
#define CODEC__FIELDS_MAX 32

struct codec__schema {
	const struct codec__field *fields;
	size_t nfields;
	const char *const *flag_names; /* CODEC__FLAG_BITS entries */
	size_t record_bytes;
};

/* Indexed by enum codec_kind; entry 0 is unused. */
extern const struct codec__schema codec__schemas[CODEC_TRANSFER + 1];

/* codec_decode_events() without the fast path: the same contract. */
int codec__decode_events_full(enum codec_kind kind, const char *body,
			      size_t len, void **events_out, u32 *count_out,
			      bool *is_array, struct codec_error *err);

#endif
