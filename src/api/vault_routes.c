/*
 * vault_routes.c - the card vault over HTTP (docs/vault.md, docs/api.md):
 *   POST /v1/vault/cards                  tokenize   (vault:tokenize)
 *   POST /v1/vault/cards/{token}/reveal   reveal     (vault:reveal)
 *   POST /v1/vault/cards/{token}/erase    erase      (vault:erase)
 *   POST /v1/vault/keys/rotate            rotate     (vault:admin)
 *
 * The PAN is checked (core/pan.h), fingerprinted and sealed by the key
 * store (engine/vaultkeys.h) before anything is journaled; the journal
 * entry (core/vault.h) holds the token, fingerprint, masked PAN, brand,
 * expiry and the ciphertext, never the number.  A reveal is journaled
 * (who, which token, why) before the number is decrypted into the
 * reply; an erasure is journaled, then its key shredded.  No PAN is
 * ever put in a problem detail or a log line: refusals name the field
 * and the reason only.
 */
#include "api/internal.h"
#include "core/command.h"
#include "core/pan.h"
#include "core/vault.h"
#include "engine/engine.h"
#include "engine/logger.h"
#include "engine/vaultkeys.h"

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "banned.h"

#define DUPLICATES_MAX 8
#define LIMITER_SLOTS  1024
#define REPLY_BYTES    2048

/* ---- reveals per principal and minute ---------------------------------- */

struct vault_limiter {
	pthread_mutex_t lock;
	u64 minute; /* the minute the counts are for */
	struct {
		u8 who[32];
		u32 count;
		bool used;
	} slot[LIMITER_SLOTS];
};

struct vault_limiter *vault_limiter_new(void)
{
	struct vault_limiter *l = calloc(1, sizeof(*l));

	if (l)
		pthread_mutex_init(&l->lock, NULL);
	return l;
}

void vault_limiter_free(struct vault_limiter *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* May who reveal once more this minute?  Counts it when so.  A table
 * full of principals this minute refuses the others (fail closed). */
static bool limiter_take(struct vault_limiter *l, const u8 who[32],
			 unsigned per_minute, u32 *retry_s)
{
	u64 now = (u64)time(NULL), minute = now / 60;
	u32 h = 0;
	bool ok = false;

	for (int i = 0; i < 4; i++)
		h = h * 31 + who[i];
	*retry_s = (u32)(60 - now % 60);
	pthread_mutex_lock(&l->lock);
	if (l->minute != minute) {
		memset(l->slot, 0, sizeof(l->slot));
		l->minute = minute;
	}
	for (u32 i = 0; i < LIMITER_SLOTS; i++) {
		u32 s = (h + i) % LIMITER_SLOTS;
		if (l->slot[s].used && memcmp(l->slot[s].who, who, 32) != 0)
			continue;
		if (!l->slot[s].used) {
			l->slot[s].used = true;
			memcpy(l->slot[s].who, who, 32);
		}
		if (l->slot[s].count < per_minute) {
			l->slot[s].count++;
			ok = true;
		}
		break;
	}
	pthread_mutex_unlock(&l->lock);
	return ok;
}

/* ---- helpers ------------------------------------------------------------ */

static enum MHD_Result unavailable(struct request *rq)
{
	return api_reply_problem(rq, PROBLEM_vault_unavailable,
				 "the vault's key store could not be opened "
				 "at start (the server's log says why)",
				 NULL, NULL);
}

static void put_str(struct wbuf *b, const char *name, const char *v, size_t n)
{
	wbuf_puts(b, name);
	wbuf_put_json_str(b, v, n);
}

static void put_u64(struct wbuf *b, const char *name, u64 v)
{
	wbuf_puts(b, name);
	wbuf_put_u64(b, v);
}

/* The {token} of the path (rq->text_id holds the segment and what
 * follows it): 0, or the refusal queued. */
static int path_token(struct request *rq, char token[VAULT_TOKEN_BYTES],
		      enum MHD_Result *reply)
{
	size_t n = strlen(rq->text_id);

	memset(token, 0, VAULT_TOKEN_BYTES);
	if (!vault_token_valid(rq->text_id, n)) {
		*reply = api_reply_problem(rq, PROBLEM_card_not_found,
					   "not a token of this vault", "token",
					   NULL);
		return -1;
	}
	memcpy(token, rq->text_id, n);
	return 0;
}

/* The card of token, copied out under the state's read lock. */
static int card_of(struct request *rq, const char *token, struct vault_card *c)
{
	engine_read_begin(rq->srv->e);
	int ret = vault_find(engine_vault(rq->srv->e), token, c);
	engine_read_end(rq->srv->e);
	return ret;
}

/* Reveal and erase need a known, not erased card: 0, or the refusal. */
static int card_live(struct request *rq, const char *token,
		     enum MHD_Result *reply)
{
	struct vault_card c;
	int ret = card_of(rq, token, &c);

	if (ret == 0 && !c.erased) {
		sodium_memzero(&c, sizeof(c));
		return 0;
	}
	*reply = ret ? api_reply_problem(rq, PROBLEM_card_not_found, NULL,
					 "token", NULL)
		     : api_reply_problem(rq, PROBLEM_card_erased,
					 "the card's key was destroyed: its "
					 "number cannot be revealed",
					 "token", NULL);
	return -1;
}

/* {"reason": "..."} (1..127 printable ASCII), the one member: 0, or the
 * refusal queued. */
static int read_reason(struct request *rq, char reason[VAULT_REASON_BYTES],
		       enum MHD_Result *reply)
{
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, reply);
	const char *k;
	json_t *x;
	int ret = -1;

	memset(reason, 0, VAULT_REASON_BYTES);
	if (!j)
		return -1;
	json_object_foreach(j, k, x)
	{
		if (strcmp(k, "reason") != 0) {
			*reply = api_reply_problem(rq, PROBLEM_unknown_field,
						   "the member is reason", k,
						   NULL);
			goto cleanup;
		}
	}
	x = json_object_get(j, "reason");
	const char *r = json_is_string(x) ? json_string_value(x) : NULL;
	size_t n = r ? json_string_length(x) : 0;
	bool ok = n >= 1 && n < VAULT_REASON_BYTES;
	for (size_t i = 0; ok && i < n; i++)
		ok = r[i] >= 0x20 && r[i] < 0x7f;
	if (!ok) {
		*reply = api_reply_problem(rq, PROBLEM_invalid_field,
					   "a reason is required: 1..127 "
					   "printable ASCII characters",
					   "reason", NULL);
		goto cleanup;
	}
	memcpy(reason, r, n);
	ret = 0;
cleanup:
	json_decref(j);
	return ret;
}

/* ---- POST /v1/vault/cards --------------------------------------------- */

/* Names a card request must never carry (PCI DSS 3.3: sensitive
 * authentication data is not stored after authorisation). */
static const char *const refused_members[] = {
	"cvv", "cvc",	"cvv2",	  "cvc2",   "cid",
	"csc", "track", "track1", "track2", "pin"};

static bool refused_member(const char *k)
{
	for (size_t i = 0;
	     i < sizeof(refused_members) / sizeof(refused_members[0]); i++) {
		if (strcasecmp(k, refused_members[i]) == 0)
			return true;
	}
	return false;
}

struct card_in {
	char pan[PAN_DIGITS_MAX + 1];
	size_t pan_len;
	unsigned exp_month, exp_year;
	char name[VAULT_NAME_BYTES_MAX + 1];
	size_t name_len;
	bool fpe;
};

static bool name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	}
	return true;
}

/* The body's card: 0, or the refusal queued (naming the field, never
 * echoing its value). */
static int read_card(struct request *rq, struct card_in *in,
		     enum MHD_Result *reply)
{
	static const char *const members[] = {"pan", "exp_month", "exp_year",
					      "holder_name",
					      "format_preserving"};
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, reply);
	const char *k, *field = NULL, *why = NULL;
	json_t *x;
	enum problem p = PROBLEM_invalid_field;
	int ret = -1;

	memset(in, 0, sizeof(*in));
	if (!j)
		return -1;
	json_object_foreach(j, k, x)
	{
		if (refused_member(k)) {
			*reply = api_reply_problem(
				rq, PROBLEM_card_data_refused,
				"security codes, PINs and track data are "
				"never accepted, not even to be discarded: "
				"send only pan, exp_month, exp_year, "
				"holder_name",
				k, NULL);
			goto cleanup;
		}
	}
	json_object_foreach(j, k, x)
	{
		bool known = false;
		for (size_t i = 0; i < sizeof(members) / sizeof(members[0]);
		     i++)
			known = known || strcmp(k, members[i]) == 0;
		if (!known) {
			*reply = api_reply_problem(
				rq, PROBLEM_unknown_field,
				"the members are pan, exp_month, exp_year, "
				"holder_name, format_preserving",
				k, NULL);
			goto cleanup;
		}
	}
	x = json_object_get(j, "pan");
	if (!json_is_string(x)) {
		field = "pan";
		why = "required: the card number's digits as a string";
		goto refuse;
	}
	size_t n = json_string_length(x);
	enum pan_check pc = n > PAN_DIGITS_MAX + 1
				    ? PAN_LENGTH
				    : pan_check(json_string_value(x), n);
	if (pc == PAN_LENGTH && n > 0) {
		/* digits first: "12ab" is not digits, whatever its length */
		const char *s = json_string_value(x);
		for (size_t i = 0; i < n && i <= PAN_DIGITS_MAX + 1; i++) {
			if (s[i] < '0' || s[i] > '9') {
				pc = PAN_NOT_DIGITS;
				break;
			}
		}
	}
	if (pc != PAN_OK) {
		field = "pan";
		why = pc == PAN_NOT_DIGITS ? "not_digits: digits only, no "
					     "spaces or dashes"
		      : pc == PAN_LENGTH   ? "bad_length: 12 to 19 digits"
					   : "bad_check_digit: the Luhn check "
					     "fails";
		goto refuse;
	}
	memcpy(in->pan, json_string_value(x), n);
	in->pan_len = n;
	x = json_object_get(j, "exp_month");
	if (!json_is_integer(x) || json_integer_value(x) < 1 ||
	    json_integer_value(x) > 12) {
		field = "exp_month";
		why = "required: an integer 1..12";
		goto refuse;
	}
	in->exp_month = (unsigned)json_integer_value(x);
	x = json_object_get(j, "exp_year");
	if (!json_is_integer(x) || json_integer_value(x) < 2000 ||
	    json_integer_value(x) > 9999) {
		field = "exp_year";
		why = "required: the four-digit year";
		goto refuse;
	}
	in->exp_year = (unsigned)json_integer_value(x);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	if (!pan_expiry_current(in->exp_month, in->exp_year,
				(unsigned)tm.tm_mon + 1,
				(unsigned)tm.tm_year + 1900)) {
		field = in->exp_year < (unsigned)tm.tm_year + 1900
				? "exp_year"
				: "exp_month";
		why = "expired: the card's month has passed";
		goto refuse;
	}
	x = json_object_get(j, "holder_name");
	if (x) {
		size_t nn = json_is_string(x) ? json_string_length(x) : 0;
		if (!json_is_string(x) || nn > VAULT_NAME_BYTES_MAX ||
		    !name_ok(json_string_value(x), nn)) {
			field = "holder_name";
			why = "at most 64 bytes of text, no control characters";
			goto refuse;
		}
		memcpy(in->name, json_string_value(x), nn);
		in->name_len = nn;
	}
	x = json_object_get(j, "format_preserving");
	if (x && !json_is_boolean(x)) {
		field = "format_preserving";
		why = "true or false";
		goto refuse;
	}
	in->fpe = x && json_is_true(x);
	ret = 0;
	goto cleanup;
refuse:
	*reply = api_reply_problem(rq, p, why, field, NULL);
cleanup:
	json_decref(j);
	if (ret)
		sodium_memzero(in, sizeof(*in));
	return ret;
}

static enum MHD_Result card_reply(struct request *rq)
{
	u32 outcome = rq->eng.results ? rq->eng.results[0] : 0;
	const struct vault_card_cmd *c =
		(const void *)((const u8 *)rq->eng.payload +
			       sizeof(struct command_header));
	struct wbuf b = WBUF_INIT(REPLY_BYTES);
	char fp[2 * VAULT_FINGERPRINT_BYTES + 1];

	if (outcome == VAULT_R_EXISTS)
		return api_reply_problem(rq, PROBLEM_token_collision, NULL,
					 NULL, NULL);
	if (outcome == VAULT_R_FULL)
		return api_reply_problem(rq, PROBLEM_state_full,
					 "the vault holds as many cards as it "
					 "may (docs/vault.md)",
					 NULL, NULL);
	sodium_bin2hex(fp, sizeof(fp), c->fingerprint, sizeof(c->fingerprint));
	put_str(&b, "{\"token\":", c->token, strnlen(c->token, 32));
	put_str(&b, ",\"masked_pan\":", c->masked, strnlen(c->masked, 20));
	put_str(&b, ",\"brand\":", c->brand, strnlen(c->brand, 16));
	put_str(&b, ",\"fingerprint\":", fp, strlen(fp));
	put_u64(&b, ",\"exp_month\":", c->exp_month);
	put_u64(&b, ",\"exp_year\":", c->exp_year);
	wbuf_puts(&b, ",\"duplicate_of\":[");
	json_t *dups = rq->eng.reply_extra
			       ? json_object_get(rq->eng.reply_extra, "dups")
			       : NULL;
	for (size_t i = 0; i < json_array_size(dups); i++) {
		const char *t = json_string_value(json_array_get(dups, i));
		if (i)
			wbuf_putc(&b, ',');
		wbuf_put_json_str(&b, t, strlen(t));
	}
	put_u64(&b, "],\"seq\":", rq->eng.ereq.seq);
	wbuf_putc(&b, '}');
	return api_reply_json(rq, 201, &b);
}

enum MHD_Result vault_route_cards(struct request *rq)
{
	struct vaultkeys *k = rq->srv->vault;
	struct vault_card_cmd cmd;
	struct card_in in;
	u8 plain[VAULT_PLAIN_BYTES];
	char dups[DUPLICATES_MAX][VAULT_TOKEN_BYTES];
	enum MHD_Result reply;
	int ret;

	if (!vaultkeys_usable(k))
		return unavailable(rq);
	if (read_card(rq, &in, &reply) != 0)
		return reply;
	memset(&cmd, 0, sizeof(cmd));
	memset(plain, 0, sizeof(plain));
	plain[VAULT_PLAIN_PAN_LEN] = (u8)in.pan_len;
	memcpy(plain + VAULT_PLAIN_PAN, in.pan, in.pan_len);
	plain[VAULT_PLAIN_NAME_LEN] = (u8)in.name_len;
	memcpy(plain + VAULT_PLAIN_NAME, in.name, in.name_len);
	ret = vaultkeys_fingerprint(k, in.pan, in.pan_len, cmd.fingerprint);
	if (ret == 0)
		ret = vaultkeys_tokenize(k, plain, in.pan, in.pan_len, in.fpe,
					 cmd.fingerprint, NULL, NULL, cmd.token,
					 cmd.nonce, cmd.ct);
	pan_mask(in.pan, in.pan_len, cmd.masked);
	snprintf(cmd.brand, sizeof(cmd.brand), "%s",
		 pan_brand(in.pan, in.pan_len));
	sodium_memzero(&in.pan, sizeof(in.pan));
	sodium_memzero(plain, sizeof(plain));
	if (ret == -EKEYREVOKED)
		return unavailable(rq);
	if (ret == -EEXIST)
		return api_reply_problem(rq, PROBLEM_token_collision, NULL,
					 NULL, NULL);
	if (ret) {
		log_at(LOG_ERROR, "vault: cannot store a card's key",
		       LOG_NUM("errno", -ret));
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "the vault's key store could not be "
					 "written",
					 NULL, NULL);
	}
	cmd.exp_month = (u8)in.exp_month;
	cmd.exp_year = (u16)in.exp_year;
	api_author_of(rq, cmd.author);
	engine_read_begin(rq->srv->e);
	size_t nd = vault_by_fingerprint(engine_vault(rq->srv->e),
					 cmd.fingerprint, dups, DUPLICATES_MAX);
	engine_read_end(rq->srv->e);
	json_t *extra = json_object(), *arr = json_array();
	for (size_t i = 0; extra && arr && i < nd && i < DUPLICATES_MAX; i++)
		json_array_append_new(arr, json_string(dups[i]));
	if (extra && arr)
		json_object_set_new(extra, "dups", arr);
	else
		json_decref(arr);
	rq->eng.reply_extra = extra;
	void *ext = api_command(rq, VAULT_CMD_CARD, sizeof(cmd), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &cmd, sizeof(cmd));
	return api_submit_command(rq, card_reply);
}

/* ---- reveal, erase --------------------------------------------------------
 */

static enum MHD_Result use_outcome(struct request *rq, u32 outcome)
{
	if (outcome == VAULT_R_UNKNOWN)
		return api_reply_problem(rq, PROBLEM_card_not_found, NULL,
					 "token", NULL);
	return api_reply_problem(rq, PROBLEM_card_erased, NULL, "token", NULL);
}

static enum MHD_Result reveal_reply(struct request *rq)
{
	u32 outcome = rq->eng.results ? rq->eng.results[0] : 0;
	const struct vault_use_cmd *u =
		(const void *)((const u8 *)rq->eng.payload +
			       sizeof(struct command_header));
	struct vault_card c;
	u8 plain[VAULT_PLAIN_BYTES];
	int ret;

	if (outcome != VAULT_R_OK)
		return use_outcome(rq, outcome);
	ret = card_of(rq, u->token, &c);
	if (ret == 0 && c.erased)
		ret = -ENOENT;
	if (ret == 0)
		ret = vaultkeys_open_card(rq->srv->vault, &c, plain);
	if (ret == -ENOENT)
		return use_outcome(rq, VAULT_R_ERASED);
	if (ret == -EKEYREVOKED)
		return unavailable(rq);
	if (ret) {
		log_at(LOG_ERROR, "vault: a card does not open",
		       LOG_STR("token", u->token), LOG_NUM("errno", -ret));
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "the card's data does not open with "
					 "its key",
					 NULL, NULL);
	}
	struct wbuf b = WBUF_INIT(REPLY_BYTES);
	size_t pl = plain[VAULT_PLAIN_PAN_LEN] <= PAN_DIGITS_MAX
			    ? plain[VAULT_PLAIN_PAN_LEN]
			    : 0;
	size_t nl = plain[VAULT_PLAIN_NAME_LEN] <= VAULT_NAME_BYTES_MAX
			    ? plain[VAULT_PLAIN_NAME_LEN]
			    : 0;
	put_str(&b, "{\"token\":", c.token, strnlen(c.token, 32));
	put_str(&b, ",\"pan\":", (const char *)plain + VAULT_PLAIN_PAN, pl);
	put_u64(&b, ",\"exp_month\":", c.exp_month);
	put_u64(&b, ",\"exp_year\":", c.exp_year);
	if (nl) {
		wbuf_puts(&b, ",\"holder_name\":");
		wbuf_put_json_utf8(&b, (const char *)plain + VAULT_PLAIN_NAME,
				   nl);
	}
	put_u64(&b, ",\"seq\":", rq->eng.ereq.seq);
	wbuf_putc(&b, '}');
	sodium_memzero(plain, sizeof(plain));
	sodium_memzero(&c, sizeof(c));
	rq->cache_control = "no-store";
	return api_reply_json(rq, 200, &b);
}

static enum MHD_Result erase_reply(struct request *rq)
{
	u32 outcome = rq->eng.results ? rq->eng.results[0] : 0;
	const struct vault_use_cmd *u =
		(const void *)((const u8 *)rq->eng.payload +
			       sizeof(struct command_header));
	struct wbuf b = WBUF_INIT(REPLY_BYTES);

	if (outcome != VAULT_R_OK)
		return use_outcome(rq, outcome);
	int ret = vaultkeys_erase(rq->srv->vault, u->token);
	if (ret) {
		/* journaled: the next start shreds it (vaultkeys_reconcile) */
		log_at(LOG_ERROR,
		       "vault: erased in the journal, but the key store could "
		       "not be rewritten; the key is shredded at the next "
		       "start",
		       LOG_STR("token", u->token), LOG_NUM("errno", -ret));
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "the erasure is journaled (reveal "
					 "answers erased) but its key is "
					 "destroyed only at the next start",
					 NULL, NULL);
	}
	u32 v, mv;
	u64 epoch;
	vaultkeys_versions(rq->srv->vault, &v, &mv, &epoch);
	put_str(&b, "{\"token\":", u->token, strnlen(u->token, 32));
	wbuf_puts(&b, ",\"status\":\"erased\"");
	put_u64(&b, ",\"wrap_epoch\":", epoch);
	put_u64(&b, ",\"seq\":", rq->eng.ereq.seq);
	wbuf_putc(&b, '}');
	return api_reply_json(rq, 200, &b);
}

/* Reveal and erase: the token, the reason, then the journal entry. */
static enum MHD_Result use_card(struct request *rq, u16 kind,
				enum MHD_Result (*done)(struct request *))
{
	struct vault_use_cmd u;
	enum MHD_Result reply;

	memset(&u, 0, sizeof(u));
	/* An erased card answers 410 whatever the key store's state: the
	 * journal says so (even with an old copy of the key store back). */
	if (path_token(rq, u.token, &reply) != 0 ||
	    read_reason(rq, u.reason, &reply) != 0 ||
	    card_live(rq, u.token, &reply) != 0)
		return reply;
	if (!vaultkeys_usable(rq->srv->vault))
		return unavailable(rq);
	api_author_of(rq, u.author);
	if (kind == VAULT_CMD_REVEAL) {
		u32 retry_s;
		if (!limiter_take(rq->srv->vault_limiter, u.author,
				  rq->srv->vault_reveals_per_minute,
				  &retry_s)) {
			char detail[128];
			snprintf(detail, sizeof(detail),
				 "at most %u reveals a minute per principal "
				 "(vault_reveals_per_minute); retry in %u s",
				 rq->srv->vault_reveals_per_minute, retry_s);
			return api_reply_problem(rq,
						 PROBLEM_reveal_rate_limited,
						 detail, NULL, NULL);
		}
	}
	void *ext = api_command(rq, kind, sizeof(u), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &u, sizeof(u));
	return api_submit_command(rq, done);
}

enum MHD_Result vault_route_reveal(struct request *rq)
{
	return use_card(rq, VAULT_CMD_REVEAL, reveal_reply);
}

enum MHD_Result vault_route_erase(struct request *rq)
{
	return use_card(rq, VAULT_CMD_ERASE, erase_reply);
}

/* ---- POST /v1/vault/keys/rotate ----------------------------------------- */

static enum MHD_Result rotate_reply(struct request *rq)
{
	u32 outcome = rq->eng.results ? rq->eng.results[0] : 0;
	const struct vault_rotate_cmd *r =
		(const void *)((const u8 *)rq->eng.payload +
			       sizeof(struct command_header));
	struct wbuf b = WBUF_INIT(REPLY_BYTES);

	if (outcome != VAULT_R_OK)
		log_at(LOG_WARN,
		       "vault: a rotation's entry is older than the state's "
		       "(two rotations raced); the key store is the newer",
		       LOG_NUM("version", r->version));
	put_u64(&b, "{\"version\":", r->version);
	put_u64(&b, ",\"min_version\":", r->min_version);
	put_u64(&b, ",\"rewrapped\":", r->rewrapped);
	put_u64(&b, ",\"seq\":", rq->eng.ereq.seq);
	wbuf_putc(&b, '}');
	return api_reply_json(rq, 200, &b);
}

enum MHD_Result vault_route_rotate(struct request *rq)
{
	struct vault_rotate_cmd r;
	enum MHD_Result reply;
	u32 min_version = 0;

	if (!vaultkeys_usable(rq->srv->vault))
		return unavailable(rq);
	if (rq->body.len) {
		json_t *j =
			api_body_object(rq, API_SMALL_BODY_BYTES_MAX, &reply);
		const char *k;
		json_t *x;
		if (!j)
			return reply;
		json_object_foreach(j, k, x)
		{
			if (strcmp(k, "min_version") != 0 ||
			    !json_is_integer(x) || json_integer_value(x) < 1 ||
			    json_integer_value(x) > UINT32_MAX) {
				reply = api_reply_problem(
					rq,
					strcmp(k, "min_version")
						? PROBLEM_unknown_field
						: PROBLEM_invalid_field,
					"the member is min_version: an "
					"integer >= 1",
					k, NULL);
				json_decref(j);
				return reply;
			}
			min_version = (u32)json_integer_value(x);
		}
		json_decref(j);
	}
	memset(&r, 0, sizeof(r));
	int ret = vaultkeys_rotate(rq->srv->vault, min_version, &r.version,
				   &r.min_version, &r.rewrapped);
	if (ret == -EINVAL || ret == -E2BIG)
		return api_reply_problem(
			rq, PROBLEM_invalid_field,
			ret == -EINVAL ? "min_version must be at "
					 "least the current minimum "
					 "and at most the new version"
				       : "too many key versions kept: "
					 "raise min_version",
			"min_version", NULL);
	if (ret) {
		log_at(LOG_ERROR, "vault: cannot rotate the vault key",
		       LOG_NUM("errno", -ret));
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "the vault's key store could not be "
					 "rewritten",
					 NULL, NULL);
	}
	api_author_of(rq, r.author);
	void *ext = api_command(rq, VAULT_CMD_ROTATE, sizeof(r), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &r, sizeof(r));
	return api_submit_command(rq, rotate_reply);
}
