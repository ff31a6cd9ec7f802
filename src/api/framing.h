/*
 * framing.h - a strict reading (RFC 9112) of the raw bytes a client
 * sends, in front of libmicrohttpd, which is lenient where a proxy may
 * not be: it takes a bare LF for CRLF, joins folded field lines, and
 * cuts a field value at a NUL (issue 9, finding 8).
 *
 * The scanner is fed the bytes of one connection in order, in chunks of
 * any size, and follows its requests: heads byte by byte, bodies framed
 * by Content-Length skipped by count.  After a head with
 * Transfer-Encoding: chunked it stops reading (FRAMING_PASS): the server
 * closes the connection after that request, so nothing after the body is
 * ever served.  The first byte that breaks the grammar stops it for good
 * (FRAMING_BAD), naming where, which request and why.
 *
 * Refused: a bare CR or LF anywhere in a head; a field line starting with
 * a space or tab (obsolete folding); a field name that is not a token or
 * is followed by a blank before its colon; a NUL or other control byte
 * but HTAB in a field value, or any in the request line; a byte past
 * 0x7e in the request line; a Content-Length that is not 1 to 19 digits
 * between optional blanks, or given twice; a Transfer-Encoding other than
 * one "chunked", or beside Content-Length.  An empty line before a
 * request line is allowed (RFC 9112 section 2.2).
 *
 * Pure, no allocation; fuzzed by tests/fuzz/fuzz_framing.c.
 */
#ifndef TPW_API_FRAMING_H
#define TPW_API_FRAMING_H

#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

enum framing_state {
	FRAMING_START,	  /* before a request line (empty lines allowed) */
	FRAMING_START_CR, /* a CR of an empty line before a request line */
	FRAMING_LINE,	  /* the request line */
	FRAMING_LINE_CR,
	FRAMING_FIELD_START, /* the first byte of a field line */
	FRAMING_NAME,
	FRAMING_VALUE,
	FRAMING_FIELD_CR,
	FRAMING_END_CR, /* the CR of the empty line that ends the head */
	FRAMING_BODY,	/* Content-Length bytes to skip */
	FRAMING_PASS,	/* after a chunked head: not read further */
	FRAMING_BAD,
};

enum framing_field { FF_OTHER, FF_CONTENT_LENGTH, FF_TRANSFER_ENCODING };

/* Why a stream was refused (for the reply's detail). */
enum framing_error {
	FRAMING_OK = 0,
	FRAMING_BARE_CR_LF, /* a CR without LF or an LF without CR */
	FRAMING_CONTROL,    /* NUL or another control byte */
	FRAMING_FOLDED,	    /* obsolete line folding */
	FRAMING_BAD_NAME,   /* not a token, or a blank before the colon */
	FRAMING_BAD_LENGTH, /* Content-Length repeated or not decimal */
	FRAMING_BAD_CODING, /* Transfer-Encoding not one "chunked", or with
			       Content-Length */
};

#define FRAMING_NAME_BYTES_MAX	 17 /* "transfer-encoding" */
#define FRAMING_CODING_BYTES_MAX 15

struct framing {
	enum framing_state state;
	enum framing_error error;
	u32 requests;	  /* request lines begun, from 1 */
	u32 bad_request;  /* which one broke the grammar (when BAD) */
	bool bad_in_line; /* ... in its request line */
	/* the field being read */
	enum framing_field field;
	u8 name_len;
	char name[FRAMING_NAME_BYTES_MAX];
	u8 digits;	 /* Content-Length digits */
	bool value_tail; /* blanks after the value began */
	u8 coding_len;	 /* Transfer-Encoding bytes kept */
	char coding[FRAMING_CODING_BYTES_MAX];
	bool has_length, has_coding;
	u64 length;    /* Content-Length */
	u64 body_left; /* FRAMING_BODY */
};

/* A connection's scanner before its first byte. */
void framing_init(struct framing *f);

/*
 * Read n more bytes.  Returns n when none breaks the grammar; else the
 * offset in p of the first byte that does (the state is then
 * FRAMING_BAD and stays so), and *line_at the offset where that byte's
 * line began in p (or SIZE_MAX when it began in an earlier chunk).
 * Bytes after a FRAMING_PASS are not looked at (n is returned).
 */
size_t framing_read(struct framing *f, const u8 *p, size_t n, size_t *line_at);

/* How many of the first n bytes of a field value are plain (0x20..0x7e
 * or obs-text 0x80..0xff): 8 at a time, the rest one by one.  A tab, a
 * control byte or DEL ends the run (the caller decides about it). */
size_t framing_value_run(const u8 *p, size_t n);

const char *framing_error_text(enum framing_error e);

#endif
