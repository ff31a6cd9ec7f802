/*
 * cosig.c - tlog-cosignature/v1 lines and the tlog-witness add-checkpoint
 * body: see cosig.h.  Everything is checked before it is used; base64 is
 * accepted only in its one canonical spelling (decoded, re-encoded and
 * compared), so one cosignature has exactly one text.
 */
#include "crypto/cosig.h"

#include "core/parse.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char em_dash[] = "\xe2\x80\x94"; /* U+2014 */
static const char header[] = "cosignature/v1\ntime ";

const char *cosig_strerror(int code)
{
	switch (code) {
#define COSIG_NAME_(name, c, text)                                             \
	case c: return text;
		COSIG_ERRORS(COSIG_NAME_)
#undef COSIG_NAME_
	default: return "unknown";
	}
}

u32 cosig_key_id(const char *name, size_t len, const u8 public_key[32])
{
	return note__key_id_typed(name, len, COSIG_ALG_ED25519, public_key);
}

int cosig_verifier_format(const struct note_verifier *v, char *buf, size_t cap,
			  size_t *len_out)
{
	u8 raw[33];
	char b64[64];
	int n;

	raw[0] = COSIG_ALG_ED25519;
	memcpy(raw + 1, v->public_key, 32);
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
			  sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(
		buf, cap, "%.*s+%08x+%s", (int)v->name_len, v->name,
		(unsigned)cosig_key_id(v->name, v->name_len, v->public_key),
		b64);
	if (n < 0 || (size_t)n >= cap)
		return COSIG_E_NO_SPACE;
	if (len_out)
		*len_out = (size_t)n;
	return 0;
}

/* The signed message for body at timestamp, in a fresh heap buffer. */
static int message(u64 timestamp, const char *body, size_t len, u8 **msg_out,
		   size_t *msg_len)
{
	char ts[24];
	int tn;
	u8 *msg;

	if (timestamp > COSIG_TIMESTAMP_MAX)
		return COSIG_E_BAD_TIMESTAMP;
	if (len == 0 || len > NOTE_BYTES_MAX)
		return COSIG_E_TOO_LARGE;
	tn = snprintf(ts, sizeof(ts), "%llu\n", (unsigned long long)timestamp);
	if (tn < 0 || (size_t)tn >= sizeof(ts))
		return COSIG_E_BAD_TIMESTAMP;
	msg = malloc(sizeof(header) - 1 + (size_t)tn + len);
	if (!msg)
		return COSIG_E_NOMEM;
	memcpy(msg, header, sizeof(header) - 1);
	memcpy(msg + sizeof(header) - 1, ts, (size_t)tn);
	memcpy(msg + sizeof(header) - 1 + tn, body, len);
	*msg_out = msg;
	*msg_len = sizeof(header) - 1 + (size_t)tn + len;
	return 0;
}

int cosig_sign(const struct note_signer *s, u64 timestamp, const char *body,
	       size_t len, char *buf, size_t cap, size_t *len_out)
{
	u8 blob[COSIG_BLOB_BYTES];
	char b64[sodium_base64_ENCODED_LEN(COSIG_BLOB_BYTES,
					   sodium_base64_VARIANT_ORIGINAL)];
	u8 *msg = NULL;
	size_t msg_len = 0;
	u32 id;
	int n, ret;

	ret = message(timestamp, body, len, &msg, &msg_len);
	if (ret < 0)
		goto cleanup;
	id = cosig_key_id(s->pub.name, s->pub.name_len, s->pub.public_key);
	for (int i = 0; i < 4; i++)
		blob[i] = (u8)(id >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		blob[4 + i] = (u8)(timestamp >> (56 - 8 * i));
	crypto_sign_detached(blob + 12, NULL, msg, msg_len, s->secret_key);
	sodium_bin2base64(b64, sizeof(b64), blob, sizeof(blob),
			  sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(buf, cap, "%s %.*s %s\n", em_dash, (int)s->pub.name_len,
		     s->pub.name, b64);
	if (n < 0 || (size_t)n >= cap) {
		ret = COSIG_E_NO_SPACE;
		goto cleanup;
	}
	if (len_out)
		*len_out = (size_t)n;
	ret = 0;
cleanup:
	free(msg);
	return ret;
}

int cosig_verify(const struct note_verifier *v, const char *body, size_t len,
		 const char *line, size_t line_len, u64 *timestamp_out)
{
	const size_t dash = sizeof(em_dash) - 1;
	const char *sp;
	u8 blob[COSIG_BLOB_BYTES];
	u8 *msg = NULL;
	size_t msg_len = 0, name_len;
	u32 id;
	u64 ts = 0;
	int ret;

	if (line_len && line[line_len - 1] == '\n')
		line_len--;
	if (line_len < dash + 1 || line_len > COSIG_LINE_BYTES_MAX ||
	    memcmp(line, em_dash, dash) != 0 || line[dash] != ' ')
		return COSIG_E_BAD_LINE;
	line += dash + 1;
	line_len -= dash + 1;
	sp = memchr(line, ' ', line_len);
	if (!sp)
		return COSIG_E_BAD_LINE;
	name_len = (size_t)(sp - line);
	if (name_len != v->name_len || memcmp(line, v->name, name_len) != 0)
		return COSIG_E_NAME_MISMATCH;
	if (parse_base64(sp + 1, line_len - name_len - 1, blob, sizeof(blob)) !=
	    (long)sizeof(blob))
		return COSIG_E_BAD_LINE;
	id = (u32)blob[0] << 24 | (u32)blob[1] << 16 | (u32)blob[2] << 8 |
	     blob[3];
	if (id != cosig_key_id(v->name, v->name_len, v->public_key))
		return COSIG_E_KEY_ID_MISMATCH;
	for (int i = 0; i < 8; i++)
		ts = ts << 8 | blob[4 + i];
	ret = message(ts, body, len, &msg, &msg_len);
	if (ret < 0)
		goto cleanup;
	if (crypto_sign_verify_detached(blob + 12, msg, msg_len,
					v->public_key) != 0) {
		ret = COSIG_E_BAD_SIGNATURE;
		goto cleanup;
	}
	if (timestamp_out)
		*timestamp_out = ts;
	ret = 0;
cleanup:
	free(msg);
	return ret;
}

int cosig_request_parse(const char *body, size_t len, struct cosig_request *out)
{
	size_t at = 0;
	const char *nl;

	out->nproof = 0;
	out->note = NULL;
	out->note_len = 0;
	if (len > COSIG_REQUEST_BYTES_MAX)
		return COSIG_E_REQUEST_TOO_LARGE;
	nl = memchr(body, '\n', len);
	if (!nl || (size_t)(nl - body) < 4 || memcmp(body, "old ", 4) != 0 ||
	    parse_u64_n(body + 4, (size_t)(nl - body) - 4, UINT64_MAX,
			&out->old_size) < 0)
		return COSIG_E_BAD_OLD_LINE;
	at = (size_t)(nl - body) + 1;
	for (;;) {
		nl = at < len ? memchr(body + at, '\n', len - at) : NULL;
		if (!nl)
			return COSIG_E_NO_CHECKPOINT;
		size_t line_len = (size_t)(nl - (body + at));
		if (line_len == 0) {
			at++;
			break;
		}
		if (out->nproof == COSIG_PROOF_LINES_MAX)
			return COSIG_E_TOO_MANY_PROOF_LINES;
		if (parse_base64(body + at, line_len, out->proof[out->nproof],
				 32) != 32)
			return COSIG_E_BAD_PROOF_LINE;
		out->nproof++;
		at += line_len + 1;
	}
	if (at >= len)
		return COSIG_E_NO_CHECKPOINT;
	out->note = body + at;
	out->note_len = len - at;
	return 0;
}
