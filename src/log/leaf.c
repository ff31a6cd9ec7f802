/*
 * leaf.c - the audit tree's leaf rules (see leaf.h for the byte layout).
 *
 * Rule 2 costs about one and a half times rule 1's hashing per event
 * (an event's hash is three SHA-256 blocks where rule 1 spends two on
 * its bytes, plus half a block for the chunk): chunks of 32 keep the
 * tree over the events to a few hashes per batch instead of one node
 * hash per event (docs/benchmarks.md has the figures).
 */
#include "log/leaf.h"

#include "core/command.h"
#include "log/journal.h"

#include <errno.h>
#include <string.h>
#include <nettle/sha2.h>

#include "banned.h"

#define OFF_CHECKSUM 4
#define OFF_SIZE     8
#define OFF_TYPE     12
#define OFF_VERSION  14

/* SHA-256(""): the ext hash of a record without ext and the events root
 * of one without events (most records: a constant saves a compression). */
static const u8 sha256_empty[MERKLE_HASH_BYTES] = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
	0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
	0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

static u32 get_u32(const u8 *p)
{
	return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

static u16 get_u16(const u8 *p)
{
	return (u16)(p[0] | p[1] << 8);
}

u16 leaf_record_version(const u8 *record, size_t len)
{
	if (len < JOURNAL_HEADER_BYTES)
		return 0;
	return get_u16(record + OFF_VERSION);
}

void leaf_event_hash(const u8 event[LEAF_EVENT_BYTES],
		     u8 out[MERKLE_HASH_BYTES])
{
	struct sha256_ctx st;
	u8 buf[1 + LEAF_EVENT_BYTES];

	/* One update of the whole message: nettle then compresses the two
	 * full blocks straight from buf, without staging them. */
	buf[0] = 0x10;
	memcpy(buf + 1, event, LEAF_EVENT_BYTES);
	sha256_init(&st);
	sha256_update(&st, sizeof(buf), buf);
	sha256_digest(&st, MERKLE_HASH_BYTES, out);
}

void leaf_chunk_hash(const u8 (*e)[MERKLE_HASH_BYTES], size_t c,
		     u8 out[MERKLE_HASH_BYTES])
{
	struct sha256_ctx st;
	static const u8 prefix = 0x11;

	sha256_init(&st);
	sha256_update(&st, 1, &prefix);
	sha256_update(&st, c * MERKLE_HASH_BYTES, (const u8 *)e);
	sha256_digest(&st, MERKLE_HASH_BYTES, out);
}

u32 leaf_chunk_len(u32 n, u32 k)
{
	u32 first = k / LEAF_CHUNK_EVENTS * LEAF_CHUNK_EVENTS;
	u32 c = n - first;
	return c < LEAF_CHUNK_EVENTS ? c : LEAF_CHUNK_EVENTS;
}

static u32 chunks_of(u32 n)
{
	return (n + LEAF_CHUNK_EVENTS - 1) / LEAF_CHUNK_EVENTS;
}

/* C_j of the events from first to first + c. */
static void chunk_of_events(const u8 *events, u32 first, u32 c,
			    u8 out[MERKLE_HASH_BYTES])
{
	u8 e[LEAF_CHUNK_EVENTS][MERKLE_HASH_BYTES];

	for (u32 i = 0; i < c; i++)
		leaf_event_hash(events + (size_t)(first + i) * LEAF_EVENT_BYTES,
				e[i]);
	leaf_chunk_hash((const u8(*)[MERKLE_HASH_BYTES])e, c, out);
}

/* RFC 9162 MTH over leaf hashes h[0..m), m >= 1 (the h are not hashed
 * again: they are the tree's leaf hashes). */
static void mth(const u8 (*h)[MERKLE_HASH_BYTES], u32 m,
		u8 out[MERKLE_HASH_BYTES])
{
	if (m == 1) {
		memcpy(out, h[0], MERKLE_HASH_BYTES);
		return;
	}
	u32 split = 1;
	while (split * 2 < m)
		split *= 2;
	u8 l[MERKLE_HASH_BYTES], r[MERKLE_HASH_BYTES];
	mth(h, split, l);
	mth(h + split, m - split, r);
	merkle_hash_node(l, r, out);
}

/* RFC 9162 PATH(k, h[0..m)), deepest sibling first. */
static void path(const u8 (*h)[MERKLE_HASH_BYTES], u32 m, u32 k,
		 u8 (*out)[MERKLE_HASH_BYTES], u32 *n)
{
	if (m <= 1)
		return;
	u32 split = 1;
	while (split * 2 < m)
		split *= 2;
	if (k < split) {
		path(h, split, k, out, n);
		mth(h + split, m - split, out[(*n)++]);
	} else {
		path(h + split, m - split, k - split, out, n);
		mth(h, split, out[(*n)++]);
	}
}

static void events_chunks(const u8 *events, u32 n, u8 (*c)[MERKLE_HASH_BYTES])
{
	u32 m = chunks_of(n);
	for (u32 j = 0; j < m; j++)
		chunk_of_events(events, j * LEAF_CHUNK_EVENTS,
				leaf_chunk_len(n, j * LEAF_CHUNK_EVENTS), c[j]);
}

int leaf_v2_event_count(const u8 header[32], const u8 command[16], u32 *n)
{
	static const u8 zero16[16];
	u32 size = get_u32(header + OFF_SIZE);
	u16 type = get_u16(header + OFF_TYPE);

	if (get_u16(header + OFF_VERSION) != 2 || size < JOURNAL_HEADER_BYTES ||
	    size > JOURNAL_RECORD_BYTES_MAX)
		return -EBADMSG;
	u32 payload = size - JOURNAL_HEADER_BYTES;
	switch (type) {
	case JOURNAL_CREATE_ACCOUNTS:
	case JOURNAL_CREATE_TRANSFERS:
		if (memcmp(command, zero16, 16) != 0 || payload == 0 ||
		    payload % LEAF_EVENT_BYTES != 0)
			return -EBADMSG;
		*n = payload / LEAF_EVENT_BYTES;
		return 0;
	case JOURNAL_PULSE:
		if (memcmp(command, zero16, 16) != 0 || payload != 0)
			return -EBADMSG;
		*n = 0;
		return 0;
	case JOURNAL_COMMAND: {
		/* The layout alone (core/command.h): a verifier that holds
		 * no more than the header has no kind to look up.  The
		 * payload bounds count below LEAF_EVENTS_MAX. */
		struct command_header h;
		if (command_layout(command, payload, &h) != 0)
			return -EBADMSG;
		*n = h.count;
		return 0;
	}
	default: return -EBADMSG;
	}
}

int leaf_v2_split(const u8 *record, size_t len, struct leaf_v2 *p,
		  const u8 **events, u32 *n)
{
	struct sha256_ctx st;
	const u8 *ext = NULL;
	size_t ext_bytes = 0;

	if (len < JOURNAL_HEADER_BYTES || get_u32(record + OFF_SIZE) != len)
		return -EBADMSG;
	memset(p, 0, sizeof(*p));
	memcpy(p->header, record, sizeof(p->header));
	memset(p->header + OFF_CHECKSUM, 0, 4);
	if (get_u16(record + OFF_TYPE) == JOURNAL_COMMAND) {
		if (len < JOURNAL_HEADER_BYTES + sizeof(p->command))
			return -EBADMSG;
		memcpy(p->command, record + JOURNAL_HEADER_BYTES,
		       sizeof(p->command));
	}
	if (leaf_v2_event_count(p->header, p->command, n) != 0)
		return -EBADMSG;
	*events = record + JOURNAL_HEADER_BYTES;
	if (get_u16(record + OFF_TYPE) == JOURNAL_COMMAND) {
		struct command_header h;
		if (command_layout(p->command, len - JOURNAL_HEADER_BYTES,
				   &h) != 0)
			return -EBADMSG;
		ext = record + JOURNAL_HEADER_BYTES + sizeof(h);
		ext_bytes = h.ext_bytes;
		*events = ext + ext_bytes;
	}
	if (ext_bytes) {
		sha256_init(&st);
		sha256_update(&st, ext_bytes, ext);
		sha256_digest(&st, MERKLE_HASH_BYTES, p->ext_hash);
	} else {
		memcpy(p->ext_hash, sha256_empty, MERKLE_HASH_BYTES);
	}

	if (*n == 0) {
		memcpy(p->events_root, sha256_empty, MERKLE_HASH_BYTES);
		return 0;
	}
	u8 c[LEAF_CHUNKS_MAX][MERKLE_HASH_BYTES];
	events_chunks(*events, *n, c);
	mth((const u8(*)[MERKLE_HASH_BYTES])c, chunks_of(*n), p->events_root);
	return 0;
}

void leaf_v2_hash(const struct leaf_v2 *p, u8 out[MERKLE_HASH_BYTES])
{
	_Static_assert(sizeof(struct leaf_v2) == LEAF_V2_BYTES, "leaf data");
	merkle_hash_leaf(p, sizeof(*p), out);
}

int leaf_hash_record(const u8 *record, size_t len, u8 out[MERKLE_HASH_BYTES])
{
	struct leaf_v2 p;
	const u8 *events;
	u32 n;

	switch (leaf_record_version(record, len)) {
	case 1: merkle_hash_leaf(record, len, out); return 0;
	case 2:
		if (leaf_v2_split(record, len, &p, &events, &n) != 0)
			return -EBADMSG;
		leaf_v2_hash(&p, out);
		return 0;
	default: return -EBADMSG;
	}
}

int leaf_event_prove(const u8 *events, u32 n, u32 k,
		     struct leaf_event_proof *out)
{
	if (k >= n || n > LEAF_EVENTS_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->n = n;
	out->k = k;
	u32 first = k / LEAF_CHUNK_EVENTS * LEAF_CHUNK_EVENTS;
	out->nchunk = leaf_chunk_len(n, k);
	for (u32 i = 0; i < out->nchunk; i++)
		leaf_event_hash(events + (size_t)(first + i) * LEAF_EVENT_BYTES,
				out->chunk[i]);
	u8 c[LEAF_CHUNKS_MAX][MERKLE_HASH_BYTES];
	events_chunks(events, n, c);
	path((const u8(*)[MERKLE_HASH_BYTES])c, chunks_of(n),
	     k / LEAF_CHUNK_EVENTS, out->path, &out->npath);
	return 0;
}

int leaf_events_root_from_proof(const u8 event[LEAF_EVENT_BYTES],
				const struct leaf_event_proof *pr,
				u8 root[MERKLE_HASH_BYTES])
{
	u8 e[MERKLE_HASH_BYTES], c[MERKLE_HASH_BYTES];

	if (pr->n == 0 || pr->n > LEAF_EVENTS_MAX || pr->k >= pr->n ||
	    pr->nchunk != leaf_chunk_len(pr->n, pr->k) ||
	    pr->npath > LEAF_EVENTS_PROOF_MAX)
		return -EBADMSG;
	leaf_event_hash(event, e);
	if (memcmp(e, pr->chunk[pr->k % LEAF_CHUNK_EVENTS], sizeof(e)) != 0)
		return -EBADMSG;
	leaf_chunk_hash((const u8(*)[MERKLE_HASH_BYTES])pr->chunk, pr->nchunk,
			c);
	if (merkle_root_from_inclusion(pr->k / LEAF_CHUNK_EVENTS,
				       chunks_of(pr->n), c,
				       (const u8(*)[MERKLE_HASH_BYTES])pr->path,
				       pr->npath, root) != 0)
		return -EBADMSG;
	return 0;
}
