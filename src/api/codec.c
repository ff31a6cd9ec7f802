/*
 * codec.c - strict JSON decoding of create requests, query strings, and
 * the hand-written JSON encoders of records and results (see codec.h).
 *
 * Decoding walks each jansson object once and matches keys against a small
 * table (length first, then bytes), so validation allocates nothing beyond
 * the jansson tree and the output records.  In front of it, fastjson.c
 * decodes well-formed bodies without a tree; it reads the same tables
 * (codec_internal.h).
 */
#include "api/codec.h"
#include "api/codec_internal.h"
#include "api/fastjson.h"
#include "core/parse.h"
#include "core/u128.h"
#include "log/entry_view.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "banned.h"

#define F(rec, member, t)                                                      \
	{                                                                      \
#member, (u8)(sizeof(#member) - 1), t,                         \
			(u8)offsetof(rec, member)                              \
	}

static const struct codec__field account_fields[] = {
	F(struct account, id, CODEC__U128),
	F(struct account, debits_pending, CODEC__U128),
	F(struct account, debits_posted, CODEC__U128),
	F(struct account, credits_pending, CODEC__U128),
	F(struct account, credits_posted, CODEC__U128),
	F(struct account, user_data_128, CODEC__U128),
	F(struct account, user_data_64, CODEC__U64),
	F(struct account, user_data_32, CODEC__U32),
	F(struct account, ledger, CODEC__U32),
	F(struct account, code, CODEC__U16),
	F(struct account, flags, CODEC__FLAGS),
	F(struct account, timestamp, CODEC__U64),
};

static const struct codec__field transfer_fields[] = {
	F(struct transfer, id, CODEC__U128),
	F(struct transfer, debit_account_id, CODEC__U128),
	F(struct transfer, credit_account_id, CODEC__U128),
	F(struct transfer, amount, CODEC__U128),
	F(struct transfer, pending_id, CODEC__U128),
	F(struct transfer, user_data_128, CODEC__U128),
	F(struct transfer, user_data_64, CODEC__U64),
	F(struct transfer, user_data_32, CODEC__U32),
	F(struct transfer, timeout, CODEC__U32),
	F(struct transfer, ledger, CODEC__U32),
	F(struct transfer, code, CODEC__U16),
	F(struct transfer, flags, CODEC__FLAGS),
	F(struct transfer, timestamp, CODEC__U64),
};

#undef F

#define FLAG_BITS CODEC__FLAG_BITS

/* Index = bit position; NULL = not accepted (reserved or unsupported). */
static const char *const account_flag_names[FLAG_BITS] = {
	[0] = "linked",
	[1] = "debits_must_not_exceed_credits",
	[2] = "credits_must_not_exceed_debits",
	[3] = "history",
	[5] = "closed",
};

static const char *const transfer_flag_names[FLAG_BITS] = {
	[0] = "linked",
	[1] = "pending",
	[2] = "post_pending_transfer",
	[3] = "void_pending_transfer",
	[4] = "balancing_debit",
	[5] = "balancing_credit",
	[6] = "closing_debit",
	[7] = "closing_credit",
};

_Static_assert(ACCOUNT_CLOSED == 1 << 5, "account flag table matches types.h");
_Static_assert(TRANSFER_CLOSING_CREDIT == 1 << 7,
	       "transfer flag table matches types.h");

_Static_assert(sizeof(account_fields) / sizeof(account_fields[0]) <=
			       CODEC__FIELDS_MAX &&
		       sizeof(transfer_fields) / sizeof(transfer_fields[0]) <=
			       CODEC__FIELDS_MAX,
	       "the fast path's seen-field mask holds every field");

const struct codec__schema codec__schemas[CODEC_TRANSFER + 1] = {
	[CODEC_ACCOUNT] = {account_fields,
			   sizeof(account_fields) / sizeof(account_fields[0]),
			   account_flag_names, sizeof(struct account)},
	[CODEC_TRANSFER] = {transfer_fields,
			    sizeof(transfer_fields) /
				    sizeof(transfer_fields[0]),
			    transfer_flag_names, sizeof(struct transfer)},
};

const char *codec_account_flag_name(unsigned bit)
{
	return bit < FLAG_BITS ? account_flag_names[bit] : NULL;
}

const char *codec_transfer_flag_name(unsigned bit)
{
	return bit < FLAG_BITS ? transfer_flag_names[bit] : NULL;
}

__attribute__((format(printf, 3, 4))) static int
fail(struct codec_error *err, enum problem p, const char *fmt, ...)
{
	va_list ap;

	err->problem = p;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * Name the culprit: "[index].name[flag]", parts omitted when absent
 * (index < 0: a single object; flag < 0: not inside flags).  Only called
 * on the error path: formatting a path per field would cost more than
 * decoding it.
 */
static void set_path(struct codec_error *err, long index, const char *name,
		     size_t name_len, long flag)
{
	char idx[24] = "", fl[24] = "";
	int n = (int)(name_len > 40 ? 40 : name_len);

	if (index >= 0)
		snprintf(idx, sizeof(idx), "[%ld]%s", index, name ? "." : "");
	if (flag >= 0)
		snprintf(fl, sizeof(fl), "[%ld]", flag);
	snprintf(err->path, sizeof(err->path), "%s%.*s%s", idx, name ? n : 0,
		 name ? name : "", fl);
}

int codec_check_depth(const char *body, size_t len, unsigned max)
{
	unsigned depth = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		char c = body[i];
		if (in_string) {
			if (c == '\\')
				i++; /* the escaped byte cannot end the string
				      */
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"': in_string = true; break;
		case '[':
		case '{':
			if (++depth > max)
				return -E2BIG;
			break;
		case ']':
		case '}':
			/* Unbalanced input is jansson's to report. */
			if (depth)
				depth--;
			break;
		default: break;
		}
	}
	return 0;
}

static int decode_u128(const json_t *v, u128 max, u128 *out,
		       struct codec_error *err)
{
	int r;

	if (!json_is_string(v))
		return fail(err, PROBLEM_invalid_field,
			    "must be a decimal string%s",
			    json_is_number(v) ? ", not a JSON number" : "");
	r = u128_parse_dec(json_string_value(v), json_string_length(v), max,
			   out);
	if (r == -ERANGE)
		return fail(err, PROBLEM_invalid_field,
			    "must be a decimal string of at most %s",
			    max == U128_MAX
				    ? "340282366920938463463374607431768211455"
				    : "18446744073709551615");
	if (r)
		return fail(err, PROBLEM_invalid_field,
			    "must be a decimal string: digits only, no sign, "
			    "spaces or leading zeros");
	return 0;
}

static int decode_uint(const json_t *v, u64 max, u64 *out,
		       struct codec_error *err)
{
	json_int_t i;

	if (!json_is_integer(v) || (i = json_integer_value(v)) < 0 ||
	    (u64)i > max)
		return fail(err, PROBLEM_invalid_field,
			    "must be a JSON integer from 0 to %llu",
			    (unsigned long long)max);
	*out = (u64)i;
	return 0;
}

/* On error *bad is the index of the offending flag (-1: not an array). */
static int decode_flags(const json_t *v, const char *const *names, u16 *out,
			long *bad, struct codec_error *err)
{
	size_t i, n;
	u16 flags = 0;

	*bad = -1;

	if (!json_is_array(v))
		return fail(err, PROBLEM_invalid_field,
			    "must be an array of flag names");
	n = json_array_size(v);
	for (i = 0; i < n; i++) {
		const json_t *f = json_array_get(v, i);
		const char *s;
		size_t slen;
		unsigned bit;

		*bad = (long)i;
		if (!json_is_string(f))
			return fail(err, PROBLEM_invalid_flag,
				    "a flag must be a string");
		s = json_string_value(f);
		slen = json_string_length(f);
		for (bit = 0; bit < FLAG_BITS; bit++)
			if (names[bit] && strlen(names[bit]) == slen &&
			    memcmp(names[bit], s, slen) == 0)
				break;
		if (bit == FLAG_BITS)
			return fail(err, PROBLEM_invalid_flag,
				    "unknown flag \"%.40s\"", s);
		if (flags & (1u << bit))
			return fail(err, PROBLEM_invalid_flag,
				    "flag \"%s\" is listed twice", names[bit]);
		flags |= (u16)(1u << bit);
	}
	*out = flags;
	return 0;
}

/* index: position in the batch, or -1 for a single object. */
static int decode_object(const struct codec__schema *sc, const json_t *obj,
			 u8 *rec, long index, struct codec_error *err)
{
	const char *key;
	size_t key_len;
	json_t *v;

	if (!json_is_object(obj)) {
		set_path(err, index, NULL, 0, -1);
		return fail(err, PROBLEM_invalid_body,
			    "each event must be a JSON object");
	}
	json_object_keylen_foreach((json_t *)obj, key, key_len, v)
	{
		const struct codec__field *fd = NULL;
		long flag = -1;
		int r = 0;

		for (size_t i = 0; i < sc->nfields; i++)
			if (sc->fields[i].name_len == key_len &&
			    memcmp(sc->fields[i].name, key, key_len) == 0) {
				fd = &sc->fields[i];
				break;
			}
		if (!fd) {
			set_path(err, index, key, key_len, -1);
			return fail(err, PROBLEM_unknown_field,
				    "unknown field (see docs/api.md)");
		}
		u8 *at = rec + fd->offset;
		switch (fd->type) {
		case CODEC__U128: {
			u128 x = 0;
			r = decode_u128(v, U128_MAX, &x, err);
			memcpy(at, &x, sizeof(x));
			break;
		}
		case CODEC__U64: {
			u128 x = 0;
			u64 y;
			r = decode_u128(v, UINT64_MAX, &x, err);
			y = (u64)x;
			memcpy(at, &y, sizeof(y));
			break;
		}
		case CODEC__U32: {
			u64 x = 0;
			u32 y;
			r = decode_uint(v, UINT32_MAX, &x, err);
			y = (u32)x;
			memcpy(at, &y, sizeof(y));
			break;
		}
		case CODEC__U16: {
			u64 x = 0;
			u16 y;
			r = decode_uint(v, UINT16_MAX, &x, err);
			y = (u16)x;
			memcpy(at, &y, sizeof(y));
			break;
		}
		case CODEC__FLAGS: {
			u16 y = 0;
			r = decode_flags(v, sc->flag_names, &y, &flag, err);
			memcpy(at, &y, sizeof(y));
			break;
		}
		default:
			r = fail(err, PROBLEM_internal_error, "bad schema");
			break;
		}
		if (r) {
			set_path(err, index, key, key_len, flag);
			return r;
		}
	}
	/* Duplicate keys never get here: JSON_REJECT_DUPLICATES. */
	err->path[0] = '\0';
	return 0;
}

/* ---- decode arena ------------------------------------------------------ */

/*
 * jansson allocates several blocks per JSON value; with glibc malloc that
 * was most of the decode time of a large batch (allocation, consolidation
 * on free, page faults).  While codec_decode_events runs, this thread's
 * jansson allocations come from a bump arena instead, and the whole tree is
 * dropped at once at the end: the per-request arena of the allocation
 * policy (server.h).  Outside a decode (arena_on false), and on every other
 * thread, the hooks are plain malloc/free, so other jansson users are
 * unaffected.  A jansson value never outlives the decode that made it.
 */
#define ARENA_CHUNK_BYTES_MIN ((size_t)1 << 20)
/* The first chunk is kept for the next request on this thread when it is
 * at most this big: a steady load then stops faulting pages in. */
#define ARENA_KEEP_BYTES_MAX ((size_t)4 << 20)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t cap;
	max_align_t data[];
};

static _Thread_local struct arena_chunk *arena_head;
static _Thread_local bool arena_on;

static void *arena_malloc(size_t n)
{
	struct arena_chunk *c = arena_head;
	void *p;

	if (!arena_on)
		return malloc(n);
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (!c || c->cap - c->used < n) {
		size_t cap = c ? c->cap * 2 : ARENA_CHUNK_BYTES_MIN;
		if (cap < n)
			cap = n;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = arena_head;
		c->used = 0;
		c->cap = cap;
		arena_head = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

static void arena_free(void *p)
{
	/* Arena blocks are released all together by arena_end(). */
	if (!arena_on)
		free(p);
}

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_install(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
}

/* Under AddressSanitizer the arena would hide jansson's memory errors
 * from it: sanitized builds and fuzzers use plain malloc. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ENABLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ENABLED 0
#endif
#endif
#ifndef ARENA_ENABLED
#define ARENA_ENABLED 1
#endif

static void arena_begin(void)
{
	if (!ARENA_ENABLED)
		return;
	pthread_once(&arena_once, arena_install);
	arena_on = true;
}

static void arena_end(void)
{
	struct arena_chunk *c = arena_head, *keep = NULL;

	arena_on = false;
	while (c) {
		struct arena_chunk *next = c->next;
		if (!next && c->cap <= ARENA_KEEP_BYTES_MAX) {
			keep = c;
			keep->used = 0;
		} else {
			free(c);
		}
		c = next;
	}
	arena_head = keep;
}

int codec__decode_events_full(enum codec_kind kind, const char *body,
			      size_t len, void **events_out, u32 *count_out,
			      bool *is_array, struct codec_error *err)
{
	const struct codec__schema *sc;
	json_error_t jerr;
	json_t *root = NULL;
	u8 *events = NULL;
	size_t n;
	int ret;

	*events_out = NULL;
	*count_out = 0;
	*is_array = false;
	err->path[0] = '\0';
	err->detail[0] = '\0';
	if (kind != CODEC_ACCOUNT && kind != CODEC_TRANSFER) {
		ret = fail(err, PROBLEM_internal_error, "bad codec kind");
		goto cleanup;
	}
	sc = &codec__schemas[kind];
	if (codec_check_depth(body, len, CODEC_DEPTH_MAX)) {
		ret = fail(err, PROBLEM_nesting_too_deep,
			   "JSON nesting deeper than %d levels",
			   CODEC_DEPTH_MAX);
		goto cleanup;
	}
	arena_begin();
	/* DECODE_ANY so that a scalar body is answered as the wrong shape
	 * (invalid-body), not as a syntax error. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
			  &jerr);
	if (!root) {
		ret = fail(err, PROBLEM_invalid_json, "line %d column %d: %s",
			   jerr.line, jerr.column, jerr.text);
		goto cleanup;
	}
	if (json_is_object(root)) {
		n = 1;
	} else if (json_is_array(root)) {
		*is_array = true;
		n = json_array_size(root);
		if (n == 0) {
			ret = fail(err, PROBLEM_empty_batch,
				   "send 1 to %u events", BATCH_EVENTS_MAX);
			goto cleanup;
		}
		if (n > BATCH_EVENTS_MAX) {
			ret = fail(err, PROBLEM_batch_too_large,
				   "%zu events; at most %u per request", n,
				   BATCH_EVENTS_MAX);
			goto cleanup;
		}
	} else {
		ret = fail(err, PROBLEM_invalid_body,
			   "send a JSON object or an array of objects");
		goto cleanup;
	}
	events = calloc(n, sc->record_bytes);
	if (!events) {
		ret = -ENOMEM;
		goto cleanup;
	}
	if (!*is_array) {
		ret = decode_object(sc, root, events, -1, err);
		if (ret)
			goto cleanup;
	} else {
		for (size_t i = 0; i < n; i++) {
			ret = decode_object(sc, json_array_get(root, i),
					    events + i * sc->record_bytes,
					    (long)i, err);
			if (ret)
				goto cleanup;
		}
	}
	*events_out = events;
	*count_out = (u32)n;
	events = NULL;
	ret = 0;
cleanup:
	free(events);
	json_decref(root);
	if (arena_on)
		arena_end();
	return ret;
}

/*
 * Most bodies are well-formed batches, and for those building a jansson
 * tree costs several times the decode itself.  fastjson decodes exactly
 * the well-formed subset in one pass straight into the records; anything
 * else (every error included) goes to the full decoder, so its answers,
 * problems and paths are the ones it always gave.
 */
int codec_decode_events(enum codec_kind kind, const char *body, size_t len,
			void **events_out, u32 *count_out, bool *is_array,
			struct codec_error *err)
{
	void *events;
	u32 cap;

	*events_out = NULL;
	*count_out = 0;
	*is_array = false;
	err->path[0] = '\0';
	err->detail[0] = '\0';
	if (kind != CODEC_ACCOUNT && kind != CODEC_TRANSFER)
		goto full;
	cap = fastjson_events_max(body, len);
	if (cap == 0)
		goto full;
	/* Out of memory here is the full decoder's to report, with its
	 * exact allocation. */
	events = malloc((size_t)cap * codec__schemas[kind].record_bytes);
	if (!events)
		goto full;
	if (fastjson_decode(kind, body, len, events, cap, count_out,
			    is_array) == 0) {
		*events_out = events;
		return 0;
	}
	free(events);
	*count_out = 0;
	*is_array = false;
full:
	return codec__decode_events_full(kind, body, len, events_out, count_out,
					 is_array, err);
}

/* ---- query strings ---------------------------------------------------- */

#define QUERY_TOKEN_BYTES_MAX 64

enum qparam {
	Q_TIMESTAMP_MIN,
	Q_TIMESTAMP_MAX,
	Q_LIMIT,
	Q_ORDER,
	Q_DIRECTION,
	Q_CODE,
	Q_USER_DATA_128,
	Q_USER_DATA_64,
	Q_USER_DATA_32,
	Q_COUNT
};

static const char *const qparam_names[Q_COUNT] = {
	"timestamp_min", "timestamp_max", "limit",
	"order",	 "direction",	  "code",
	"user_data_128", "user_data_64",  "user_data_32",
};

/* Percent-decode s[0..n) into out (NUL-terminated).  Returns the decoded
 * length, or -1 when malformed, too long, or holding a NUL. */
static int unescape(const char *s, size_t n, char out[QUERY_TOKEN_BYTES_MAX])
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = parse_hex_digit(s[i + 1]);
			lo = parse_hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == '\0' || o >= QUERY_TOKEN_BYTES_MAX - 1)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return (int)o;
}

static int query_param(enum qparam q, const char *v, size_t vlen,
		       struct account_filter *f, struct codec_error *err)
{
	u128 x = 0;
	u128 max;

	switch (q) {
	case Q_ORDER:
		if (strcmp(v, "asc") == 0)
			f->flags &= ~ACCOUNT_FILTER_REVERSED;
		else if (strcmp(v, "desc") == 0)
			f->flags |= ACCOUNT_FILTER_REVERSED;
		else
			return fail(err, PROBLEM_invalid_query,
				    "must be asc or desc");
		return 0;
	case Q_DIRECTION:
		f->flags &= ~(ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_CREDITS);
		if (strcmp(v, "debits") == 0)
			f->flags |= ACCOUNT_FILTER_DEBITS;
		else if (strcmp(v, "credits") == 0)
			f->flags |= ACCOUNT_FILTER_CREDITS;
		else if (strcmp(v, "both") == 0)
			f->flags |=
				ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_CREDITS;
		else
			return fail(err, PROBLEM_invalid_query,
				    "must be debits, credits or both");
		return 0;
	case Q_LIMIT: max = QUERY_LIMIT_MAX; break;
	case Q_CODE: max = UINT16_MAX; break;
	case Q_USER_DATA_32: max = UINT32_MAX; break;
	case Q_USER_DATA_128: max = U128_MAX; break;
	case Q_TIMESTAMP_MIN:
	case Q_TIMESTAMP_MAX:
	case Q_USER_DATA_64:
	default: max = UINT64_MAX; break;
	}
	if (u128_parse_dec(v, vlen, max, &x))
		return fail(err, PROBLEM_invalid_query,
			    "must be a decimal integer from 0 to %s",
			    q == Q_LIMIT	   ? "8190"
			    : q == Q_CODE	   ? "65535"
			    : q == Q_USER_DATA_32  ? "4294967295"
			    : q == Q_USER_DATA_128 ? "2^128-1"
						   : "18446744073709551615");
	switch (q) {
	case Q_TIMESTAMP_MIN: f->timestamp_min = (u64)x; break;
	case Q_TIMESTAMP_MAX: f->timestamp_max = (u64)x; break;
	case Q_LIMIT:
		if (x == 0)
			return fail(err, PROBLEM_invalid_query,
				    "must be from 1 to %u", QUERY_LIMIT_MAX);
		f->limit = (u32)x;
		break;
	case Q_CODE: f->code = (u16)x; break;
	case Q_USER_DATA_128: f->user_data_128 = x; break;
	case Q_USER_DATA_64: f->user_data_64 = (u64)x; break;
	case Q_USER_DATA_32: f->user_data_32 = (u32)x; break;
	default: break;
	}
	return 0;
}

int codec_parse_query(const char *qs, size_t len, struct account_filter *f,
		      struct codec_error *err)
{
	u32 seen = 0;
	size_t i = 0;

	err->path[0] = '\0';
	err->detail[0] = '\0';
	f->user_data_128 = 0;
	f->user_data_64 = 0;
	f->user_data_32 = 0;
	f->code = 0;
	f->timestamp_min = 0;
	f->timestamp_max = 0;
	f->limit = CODEC_QUERY_LIMIT_DEFAULT;
	f->flags = ACCOUNT_FILTER_DEBITS | ACCOUNT_FILTER_CREDITS;
	if (len > CODEC_QUERY_BYTES_MAX)
		return fail(err, PROBLEM_invalid_query,
			    "query string longer than %d bytes",
			    CODEC_QUERY_BYTES_MAX);
	while (i < len) {
		const char *seg = qs + i, *amp, *eq;
		size_t seg_len, klen;
		char key[QUERY_TOKEN_BYTES_MAX], val[QUERY_TOKEN_BYTES_MAX];
		int kn, vn;
		unsigned q;

		amp = memchr(seg, '&', len - i);
		seg_len = amp ? (size_t)(amp - seg) : len - i;
		i += seg_len + 1;
		if (seg_len == 0)
			continue; /* "a=1&&b=2" or a trailing '&' */
		eq = memchr(seg, '=', seg_len);
		klen = eq ? (size_t)(eq - seg) : seg_len;
		kn = unescape(seg, klen, key);
		if (kn < 0) {
			snprintf(err->path, sizeof(err->path), "%.*s",
				 (int)(klen > 40 ? 40 : klen), seg);
			return fail(err, PROBLEM_invalid_query,
				    "malformed parameter name");
		}
		snprintf(err->path, sizeof(err->path), "%s", key);
		for (q = 0; q < Q_COUNT; q++)
			if (strcmp(qparam_names[q], key) == 0)
				break;
		if (q == Q_COUNT)
			return fail(err, PROBLEM_invalid_query,
				    "unknown parameter (see docs/api.md)");
		if (seen & (1u << q))
			return fail(err, PROBLEM_invalid_query,
				    "parameter given twice");
		seen |= 1u << q;
		vn = eq ? unescape(eq + 1, seg_len - klen - 1, val) : 0;
		if (!eq)
			val[0] = '\0';
		if (vn < 0)
			return fail(err, PROBLEM_invalid_query,
				    "malformed value");
		if (query_param((enum qparam)q, val, (size_t)vn, f, err))
			return -EINVAL;
	}
	if (f->timestamp_min && f->timestamp_max &&
	    f->timestamp_min > f->timestamp_max) {
		snprintf(err->path, sizeof(err->path), "timestamp_min");
		return fail(err, PROBLEM_invalid_query,
			    "timestamp_min is after timestamp_max");
	}
	err->path[0] = '\0';
	return 0;
}

/* ---- encoders --------------------------------------------------------- */

static void put_flags(struct wbuf *b, u16 flags, const char *const *names)
{
	bool first = true;

	wbuf_puts(b, ",\"flags\":[");
	for (unsigned bit = 0; bit < FLAG_BITS; bit++) {
		if (!(flags & (1u << bit)) || !names[bit])
			continue;
		if (!first)
			wbuf_putc(b, ',');
		wbuf_putc(b, '"');
		wbuf_puts(b, names[bit]);
		wbuf_putc(b, '"');
		first = false;
	}
	wbuf_putc(b, ']');
}

/* key is a literal such as ",\"amount\":" */
#define PUT_U128(b, key, v)                                                    \
	do {                                                                   \
		wbuf_put(b, key, sizeof(key) - 1);                             \
		wbuf_put_u128_str(b, v);                                       \
	} while (0)
#define PUT_U64(b, key, v)                                                     \
	do {                                                                   \
		wbuf_put(b, key, sizeof(key) - 1);                             \
		wbuf_put_u64(b, v);                                            \
	} while (0)

void codec_write_account(struct wbuf *b, const struct account *a)
{
	PUT_U128(b, "{\"id\":", a->id);
	PUT_U128(b, ",\"debits_pending\":", a->debits_pending);
	PUT_U128(b, ",\"debits_posted\":", a->debits_posted);
	PUT_U128(b, ",\"credits_pending\":", a->credits_pending);
	PUT_U128(b, ",\"credits_posted\":", a->credits_posted);
	PUT_U128(b, ",\"user_data_128\":", a->user_data_128);
	PUT_U128(b, ",\"user_data_64\":", a->user_data_64);
	PUT_U64(b, ",\"user_data_32\":", a->user_data_32);
	PUT_U64(b, ",\"ledger\":", a->ledger);
	PUT_U64(b, ",\"code\":", a->code);
	put_flags(b, a->flags, account_flag_names);
	PUT_U128(b, ",\"timestamp\":", a->timestamp);
	wbuf_putc(b, '}');
}

static const char *const pending_status_names[] = {
	[PENDING_PENDING] = "pending",
	[PENDING_POSTED] = "posted",
	[PENDING_VOIDED] = "voided",
	[PENDING_EXPIRED] = "expired",
};

void codec_write_transfer(struct wbuf *b, const struct transfer *t,
			  enum pending_status ps)
{
	PUT_U128(b, "{\"id\":", t->id);
	PUT_U128(b, ",\"debit_account_id\":", t->debit_account_id);
	PUT_U128(b, ",\"credit_account_id\":", t->credit_account_id);
	PUT_U128(b, ",\"amount\":", t->amount);
	PUT_U128(b, ",\"pending_id\":", t->pending_id);
	PUT_U128(b, ",\"user_data_128\":", t->user_data_128);
	PUT_U128(b, ",\"user_data_64\":", t->user_data_64);
	PUT_U64(b, ",\"user_data_32\":", t->user_data_32);
	PUT_U64(b, ",\"timeout\":", t->timeout);
	PUT_U64(b, ",\"ledger\":", t->ledger);
	PUT_U64(b, ",\"code\":", t->code);
	put_flags(b, t->flags, transfer_flag_names);
	PUT_U128(b, ",\"timestamp\":", t->timestamp);
	if ((t->flags & TRANSFER_PENDING) && ps >= PENDING_PENDING &&
	    ps <= PENDING_EXPIRED) {
		wbuf_puts(b, ",\"pending_status\":\"");
		wbuf_puts(b, pending_status_names[ps]);
		wbuf_putc(b, '"');
	}
	wbuf_putc(b, '}');
}

void codec_write_balance(struct wbuf *b, const struct account_balance *ab)
{
	PUT_U128(b, "{\"debits_pending\":", ab->debits_pending);
	PUT_U128(b, ",\"debits_posted\":", ab->debits_posted);
	PUT_U128(b, ",\"credits_pending\":", ab->credits_pending);
	PUT_U128(b, ",\"credits_posted\":", ab->credits_posted);
	PUT_U128(b, ",\"timestamp\":", ab->timestamp);
	wbuf_putc(b, '}');
}

void codec_write_entry_view(struct wbuf *b, const struct entry_view *v,
			    const char *author_name)
{
	wbuf_puts(b, "\"type\":\"");
	wbuf_puts(b, v->type_name);
	wbuf_putc(b, '"');
	if (v->command) {
		wbuf_puts(b, ",\"command\":\"");
		wbuf_puts(b, v->command);
		wbuf_putc(b, '"');
	}
	wbuf_puts(b, ",\"seq\":");
	wbuf_put_u128_str(b, v->seq);
	wbuf_puts(b, ",\"time\":\"");
	wbuf_puts(b, v->time);
	wbuf_puts(b, "\",\"timestamp_ns\":");
	wbuf_put_u128_str(b, v->timestamp_ns);
	if (v->server_author)
		wbuf_puts(b, ",\"author\":{\"name\":\"server\"}");
	if (v->has_author) {
		wbuf_puts(b, ",\"author\":{");
		if (entry_view_is_admin(v->author)) {
			wbuf_puts(b, "\"name\":\"administrator\"");
		} else {
			char tp[ENTRY_VIEW_THUMBPRINT_BYTES];
			entry_view_thumbprint(v->author, tp);
			if (author_name) {
				wbuf_puts(b, "\"name\":");
				wbuf_put_json_str(b, author_name,
						  strlen(author_name));
				wbuf_putc(b, ',');
			}
			wbuf_puts(b, "\"thumbprint\":\"");
			wbuf_puts(b, tp);
			wbuf_putc(b, '"');
		}
		wbuf_putc(b, '}');
	}
	wbuf_puts(b, ",\"summary\":");
	wbuf_put_json_str(b, v->summary, strlen(v->summary));
	wbuf_puts(b, ",\"fields\":{");
	for (u32 i = 0; i < v->nfields; i++) {
		if (i)
			wbuf_putc(b, ',');
		wbuf_put_json_str(b, v->fields[i].key,
				  strlen(v->fields[i].key));
		wbuf_putc(b, ':');
		wbuf_put_json_str(b, v->fields[i].value,
				  strlen(v->fields[i].value));
	}
	wbuf_putc(b, '}');
}

void codec_write_result(struct wbuf *b, u32 index, const char *status,
			u64 timestamp)
{
	codec_write_result_entry(b, index, status, timestamp, UINT64_MAX);
}

void codec_write_result_entry(struct wbuf *b, u32 index, const char *status,
			      u64 timestamp, u64 entry_index)
{
	PUT_U64(b, "{\"index\":", index);
	wbuf_puts(b, ",\"status\":");
	wbuf_put_json_str(b, status, strlen(status));
	if (timestamp)
		PUT_U128(b, ",\"timestamp\":", timestamp);
	if (entry_index != UINT64_MAX)
		PUT_U128(b, ",\"entry_index\":", entry_index);
	wbuf_putc(b, '}');
}

unsigned codec_result_http_status(const char *status)
{
	static const char prefix[] = "exists_with_different_";

	if (strcmp(status, "created") == 0)
		return 201;
	if (strcmp(status, "exists") == 0)
		return 200;
	if (strncmp(status, prefix, sizeof(prefix) - 1) == 0 ||
	    strcmp(status, "id_already_failed") == 0)
		return 409;
	return 422;
}
