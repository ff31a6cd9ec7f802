/*
 * codec.h - JSON <-> ledger records, strictly.
 *
 * Decoding turns a request body into an array of 128-byte records ready
 * for engine_submit(): either one JSON object or an array of
 * 1..BATCH_EVENTS_MAX objects.  Field names are TigerBeetle's; 128- and
 * 64-bit values are canonical decimal strings (u128_parse_dec); 32- and
 * 16-bit values are JSON integers in range; `flags` is an array of flag
 * names; a missing field is 0.  Anything else (unknown field, unknown or
 * repeated flag, wrong type, out of range, duplicate key, invalid UTF-8,
 * nesting deeper than CODEC_DEPTH_MAX) is refused with a problem and the
 * JSON path of the culprit ("[3].amount", "flags[1]").  Semantic checks
 * (ids 0 or 2^128-1, amounts, flag combinations) are NOT made here: the
 * ledger answers them per event with its result codes, as TigerBeetle does.
 * Well-formed bodies are decoded in one pass by fastjson.h; every other
 * body, and so every error, goes through jansson as described above.
 *
 * Encoding writes records and results into a wbuf with a hand-written
 * writer (no jansson trees): see the functions below for the shapes.
 *
 * The query-string parser reads the filter of
 * GET /v1/accounts/{id}/transfers and /balances.
 *
 * Nothing here keeps state between calls; every function is thread-safe.
 */
#ifndef TPW_API_CODEC_H
#define TPW_API_CODEC_H

#include "api/problem.h"
#include "api/wbuf.h"
#include "core/ledger.h"

/* array of objects (2) holding a flags array (3), plus one level of slack
 * so that an error inside it is reported precisely by the field check. */
#define CODEC_DEPTH_MAX 4
/* Longest accepted query string (bytes, before percent-decoding). */
#define CODEC_QUERY_BYTES_MAX	  2048
#define CODEC_QUERY_LIMIT_DEFAULT 100u
/* Longest output of codec_write_result (the longest result name, index
 * 8189 and a 20-digit timestamp fit with room to spare). */
#define CODEC_RESULT_BYTES_MAX 160

enum codec_kind {
	CODEC_ACCOUNT = 1,  /* struct account  */
	CODEC_TRANSFER = 2, /* struct transfer */
};

struct codec_error {
	enum problem problem;
	char path[64];	  /* JSON path or query parameter; "" if none */
	char detail[192]; /* one sentence for the client; never logged */
};

/*
 * Scan body for nesting deeper than max ('[' and '{' outside strings),
 * before jansson sees it: a 8 MiB "[[[[..." must cost a byte scan, not a
 * recursion.  Returns 0, or -E2BIG when too deep.
 */
int codec_check_depth(const char *body, size_t len, unsigned max);

/*
 * Decode a create request body.  On success returns 0, *events_out is a
 * malloc()ed array of *count_out records (caller frees), and *is_array
 * tells whether the body was an array.  On bad input returns -EINVAL and
 * fills *err; returns -ENOMEM when out of memory.  Runs the depth check
 * itself.
 */
int codec_decode_events(enum codec_kind kind, const char *body, size_t len,
			void **events_out, u32 *count_out, bool *is_array,
			struct codec_error *err);

/*
 * Parse a raw (still percent-encoded) query string, without the '?', into
 * f: timestamp_min, timestamp_max, limit (1..QUERY_LIMIT_MAX, default
 * 100), order=asc|desc, direction=debits|credits|both (default both),
 * code, user_data_128, user_data_64, user_data_32.  f->account_id is left
 * untouched.  Unknown or repeated parameters are refused.  Returns 0 or
 * -EINVAL with *err filled.
 */
int codec_parse_query(const char *qs, size_t len, struct account_filter *f,
		      struct codec_error *err);

/* {"id":"..",...,"flags":["linked"],"timestamp":".."} */
void codec_write_account(struct wbuf *b, const struct account *a);
/* As above; "pending_status" is added for pending transfers (ps != 0). */
void codec_write_transfer(struct wbuf *b, const struct transfer *t,
			  enum pending_status ps);
void codec_write_balance(struct wbuf *b, const struct account_balance *ab);
struct entry_view;
/* The members (no braces) of a decoded journal record (log/entry_view.h):
 * "type", "command" (for a command), "seq", "time", "timestamp_ns",
 * "author" ({"name": "server"}, {"name": "administrator"} or
 * {["name": author_name,] "thumbprint": ...}), "summary" and "fields" (an
 * object of strings).  author_name may be NULL.  The shape of
 * GET /v1/audit/entries/{i}?view=decoded and of the CDC's events of
 * commands (api/cdcevent.h). */
void codec_write_entry_view(struct wbuf *b, const struct entry_view *v,
			    const char *author_name);
/* {"index":i,"status":"<status>"[,"timestamp":"<ts>"]}: timestamp is
 * omitted when 0. */
void codec_write_result(struct wbuf *b, u32 index, const char *status,
			u64 timestamp);
/* The same with "entry_index" (the audit log entry that holds the event,
 * see docs/api.md), unless entry_index is UINT64_MAX. */
void codec_write_result_entry(struct wbuf *b, u32 index, const char *status,
			      u64 timestamp, u64 entry_index);

/* The HTTP status of a single-event create reply, from its status name:
 * 201 "created", 200 "exists", 409 "exists_with_different_*" and
 * "id_already_failed", 422 any other result. */
unsigned codec_result_http_status(const char *status);

/* Flag names, for docs and tests; NULL past the last.  Index = bit. */
const char *codec_account_flag_name(unsigned bit);
const char *codec_transfer_flag_name(unsigned bit);

#endif
