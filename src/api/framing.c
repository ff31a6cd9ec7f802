/*
 * framing.c - the strict RFC 9112 reading of raw request bytes (see
 * framing.h).  One state per position in the grammar; a body framed by
 * Content-Length is skipped in one step.
 */
#include "api/framing.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "banned.h"

void framing_init(struct framing *f)
{
	memset(f, 0, sizeof(*f));
	f->state = FRAMING_START;
}

static bool tchar(u8 c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool blank(u8 c)
{
	return c == ' ' || c == '\t';
}

/* A byte a field value may hold: visible, blank, or obs-text. */
static bool value_byte(u8 c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

const char *framing_error_text(enum framing_error e)
{
	switch (e) {
	case FRAMING_OK: return "";
	case FRAMING_BARE_CR_LF:
		return "a line of the head ends otherwise than with CRLF";
	case FRAMING_CONTROL:
		return "a NUL or another control byte in the request line or "
		       "a field value";
	case FRAMING_FOLDED:
		return "a field line folded onto the next (obsolete line "
		       "folding)";
	case FRAMING_BAD_NAME:
		return "a field name that is not a token, or a blank before "
		       "its colon";
	case FRAMING_BAD_LENGTH:
		return "Content-Length repeated or not a decimal";
	case FRAMING_BAD_CODING:
		return "Transfer-Encoding other than one chunked, or beside "
		       "Content-Length";
	}
	return "bad framing";
}

static void field_begin(struct framing *f)
{
	f->field = FF_OTHER;
	f->name_len = 0;
	f->digits = 0;
	f->value_tail = false;
	f->coding_len = 0;
}

/* The name is complete (at its colon). */
static void field_name_done(struct framing *f)
{
	if (f->name_len == 14 &&
	    strncasecmp(f->name, "content-length", 14) == 0)
		f->field = FF_CONTENT_LENGTH;
	else if (f->name_len == 17 &&
		 strncasecmp(f->name, "transfer-encoding", 17) == 0)
		f->field = FF_TRANSFER_ENCODING;
	else
		f->field = FF_OTHER;
}

/* One value byte of a framing field (blanks included).  0 or an error. */
static enum framing_error field_value_byte(struct framing *f, u8 c)
{
	if (f->field == FF_CONTENT_LENGTH) {
		/* Blanks before the digits only: libmicrohttpd answers a
		 * Content-Length with trailing ones with two status lines. */
		if (blank(c))
			return f->digits ? FRAMING_BAD_LENGTH : FRAMING_OK;
		if (c < '0' || c > '9' || f->value_tail || f->digits == 19)
			return FRAMING_BAD_LENGTH;
		f->length = f->length * 10 + (u64)(c - '0');
		f->digits++;
	} else if (f->field == FF_TRANSFER_ENCODING) {
		if (blank(c) && f->coding_len == 0)
			return FRAMING_OK;
		if (f->coding_len == FRAMING_CODING_BYTES_MAX)
			return FRAMING_BAD_CODING;
		f->coding[f->coding_len++] = (char)c;
	}
	return FRAMING_OK;
}

/* The field line ended (its CRLF read).  0 or an error. */
static enum framing_error field_done(struct framing *f)
{
	if (f->field == FF_CONTENT_LENGTH) {
		if (f->has_length || f->digits == 0)
			return FRAMING_BAD_LENGTH;
		f->has_length = true;
	} else if (f->field == FF_TRANSFER_ENCODING) {
		size_t n = f->coding_len;
		while (n && blank((u8)f->coding[n - 1]))
			n--;
		if (f->has_coding || n != 7 ||
		    strncasecmp(f->coding, "chunked", 7) != 0)
			return FRAMING_BAD_CODING;
		f->has_coding = true;
	}
	if (f->has_length && f->has_coding)
		return FRAMING_BAD_CODING;
	return FRAMING_OK;
}

static void request_begin(struct framing *f)
{
	f->requests++;
	f->has_length = f->has_coding = false;
	f->length = 0;
}

size_t framing_value_run(const u8 *p, size_t n)
{
	const u64 ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		u64 x;
		memcpy(&x, p + i, 8);
		/* a byte below 0x20, or equal to 0x7f (exact for any byte) */
		u64 low = (x - ones * 0x20) & ~x & highs;
		u64 y = x ^ (ones * 0x7f);
		u64 del = (y - ones) & ~y & highs;
		if (low | del)
			break;
	}
	while (i < n && p[i] >= 0x20 && p[i] != 0x7f)
		i++;
	return i;
}

size_t framing_read(struct framing *f, const u8 *p, size_t n, size_t *line_at)
{
	size_t line = SIZE_MAX; /* where the current line began in p */
	enum framing_error err = FRAMING_OK;
	size_t i = 0;

	*line_at = SIZE_MAX;
	if (f->state == FRAMING_BAD)
		return 0;
	while (i < n && err == FRAMING_OK) {
		u8 c = p[i];
		switch (f->state) {
		case FRAMING_START:
			line = i;
			if (c == '\r') {
				f->state = FRAMING_START_CR;
				break;
			}
			request_begin(f);
			if (c == '\n')
				err = FRAMING_BARE_CR_LF;
			else if (c < 0x20 || c >= 0x7f)
				err = FRAMING_CONTROL;
			else
				f->state = FRAMING_LINE;
			break;
		case FRAMING_START_CR:
			if (c == '\n') {
				f->state = FRAMING_START;
			} else {
				request_begin(f);
				err = FRAMING_BARE_CR_LF;
			}
			break;
		case FRAMING_LINE: {
			/* Most bytes are plain: pass them in a tight loop. */
			size_t j = i;
			while (j < n && p[j] >= 0x20 && p[j] < 0x7f)
				j++;
			if (j > i) {
				i = j;
				continue;
			}
			if (c == '\r')
				f->state = FRAMING_LINE_CR;
			else if (c == '\n')
				err = FRAMING_BARE_CR_LF;
			else if (c < 0x20 || c >= 0x7f)
				err = FRAMING_CONTROL;
			break;
		}
		case FRAMING_LINE_CR:
			if (c != '\n') {
				err = FRAMING_BARE_CR_LF;
				break;
			}
			f->state = FRAMING_FIELD_START;
			line = i + 1;
			break;
		case FRAMING_FIELD_START:
			line = i;
			field_begin(f);
			if (c == '\r')
				f->state = FRAMING_END_CR;
			else if (blank(c))
				err = FRAMING_FOLDED;
			else if (c == '\n')
				err = FRAMING_BARE_CR_LF;
			else if (!tchar(c))
				err = c < 0x20 ? FRAMING_CONTROL
					       : FRAMING_BAD_NAME;
			else {
				f->name[f->name_len++] = (char)c;
				f->state = FRAMING_NAME;
			}
			break;
		case FRAMING_NAME:
			if (c == ':') {
				field_name_done(f);
				f->state = FRAMING_VALUE;
			} else if (!tchar(c)) {
				err = c < 0x20 ? FRAMING_CONTROL
					       : FRAMING_BAD_NAME;
			} else {
				/* Past FRAMING_NAME_BYTES_MAX the length goes
				 * one over and stays: no framing name. */
				if (f->name_len < FRAMING_NAME_BYTES_MAX)
					f->name[f->name_len] = (char)c;
				if (f->name_len <= FRAMING_NAME_BYTES_MAX)
					f->name_len++;
			}
			break;
		case FRAMING_VALUE:
			if (f->field == FF_OTHER) {
				/* A value that does not frame (Authorization,
				 * DPoP...): only its bytes' class matters. */
				size_t j = i + framing_value_run(p + i, n - i);
				if (j > i) {
					i = j;
					continue;
				}
			}
			if (c == '\r')
				f->state = FRAMING_FIELD_CR;
			else if (c == '\n')
				err = FRAMING_BARE_CR_LF;
			else if (!value_byte(c))
				err = FRAMING_CONTROL;
			else
				err = field_value_byte(f, c);
			break;
		case FRAMING_FIELD_CR:
			if (c != '\n') {
				err = FRAMING_BARE_CR_LF;
				break;
			}
			err = field_done(f);
			if (err == FRAMING_OK) {
				f->state = FRAMING_FIELD_START;
				line = i + 1;
			}
			break;
		case FRAMING_END_CR:
			if (c != '\n') {
				err = FRAMING_BARE_CR_LF;
				break;
			}
			line = i + 1;
			if (f->has_coding) {
				f->state = FRAMING_PASS;
			} else if (f->length) {
				f->state = FRAMING_BODY;
				f->body_left = f->length;
			} else {
				f->state = FRAMING_START;
			}
			break;
		case FRAMING_BODY: {
			size_t take = n - i;
			if (take > f->body_left)
				take = (size_t)f->body_left;
			f->body_left -= take;
			i += take;
			if (f->body_left == 0)
				f->state = FRAMING_START;
			continue;
		}
		case FRAMING_PASS: return n;
		case FRAMING_BAD: return i;
		}
		if (err == FRAMING_OK)
			i++;
	}
	if (err == FRAMING_OK)
		return n;
	f->bad_in_line =
		f->state == FRAMING_START || f->state == FRAMING_START_CR ||
		f->state == FRAMING_LINE || f->state == FRAMING_LINE_CR;
	f->state = FRAMING_BAD;
	f->error = err;
	f->bad_request = f->requests;
	*line_at = line;
	return i;
}
