/*
 * acquirer.c - the acquirer connector (acquirer.h, docs/acquirer.md):
 * top-ups as two-phase transfers, the calls around them (in-flight bound,
 * circuit breaker, retries with backoff and jitter), and the resolver
 * thread that asks the acquirer about every top-up left pending, those
 * found in the ledger at start included.
 *
 * Ids.  The pending transfer's id is BLAKE2b-128 of "tpwallet-topup:" and
 * the client's idempotency key, so the same key always names the same
 * transfer; the key sent to the acquirer is "tpw-" and the id in 32 hex
 * digits, so the resolver can ask about a pending transfer knowing only
 * the transfer; the post's and the void's ids are BLAKE2b-128 of the
 * pending id and "post" or "void".  Nothing else needs to be stored.
 *
 * Money is never guessed: a charge whose answer is lost leaves its
 * transfer pending.  The caller's thread tries the charge again (the
 * acquirer books a key once) after a 5xx or no connection, and asks by
 * query after an answer that is not the protocol's; after a timeout it
 * leaves the rest to the resolver.  The resolver queries: approved or
 * declined settles it; "no such operation", once three call timeouts and
 * two seconds have passed since the charge was sent (or since the top-up
 * was found pending at start or by a client's retry: no charge of it can
 * still be on its way), means the acquirer never booked it, and the
 * transfer is voided.
 */
#include "engine/acquirer.h"
#include "core/clock.h"
#include "core/ledger.h"
#include "core/result.h"
#include "core/u128.h"
#include "core/pan.h"
#include "core/vault.h"
#include "engine/acq_proto.h"
#include "engine/engine.h"
#include "engine/logger.h"
#include "engine/vaultkeys.h"
#include "net/http.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define INLINE_ATTEMPTS 3u
#define BACKOFF_BASE_MS 100u
#define BACKOFF_MAX_MS	30000u
#define PENDING_MAX	65536u
#define SCAN_PAGE	1024u
/* "No such operation" voids a top-up only this long after its charge was
 * sent (or after it was found pending at start, or by a client's retry):
 * longer than any charge of it can take, retries and backoff included. */
#define UNKNOWN_GRACE_TIMEOUTS 3ull
#define UNKNOWN_GRACE_MS       2000ull

const double acq_latency_bounds_s[ACQ_LATENCY_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

static const char *const outcome_names[ACQ_OUT_COUNT] = {
#define ACQ_OUTCOME_NAME_(n) #n,
	ACQ_OUTCOMES(ACQ_OUTCOME_NAME_)
#undef ACQ_OUTCOME_NAME_
};

const char *acq_outcome_name(unsigned o)
{
	return o < ACQ_OUT_COUNT ? outcome_names[o] : NULL;
}

/* A top-up the resolver asks about. */
struct pend {
	u128 id;
	u128 amount;
	u64 since_ms;	/* when its last charge was sent, or it was found */
	u64 next_ms;	/* when to ask next */
	unsigned tries; /* queries that got no verdict */
};

struct acquirer {
	char url[HTTP_URL_BYTES_MAX + 1];
	char currency[4];
	char version[ACQ_VERSION_BYTES];
	char ca_file[4096];
	u128 settlement;
	u16 code;
	unsigned inflight_max, breaker_failures, cooldown_ms, timeout_ms;
	unsigned resolve_ms;
	struct engine *e;
	struct vaultkeys *vault;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;
	/* One client per call slot, plus the resolver's (the last). */
	struct http_client **clients;
	bool *busy;
	unsigned nclients;
	enum acq_breaker breaker;
	unsigned fails;
	u64 opened_ms;
	bool probing; /* half-open: the one call let through is out */
	struct acquirer_stats st;
	struct pend *pend;
	size_t npend, cap;
	u64 rng;
	bool stop;
	_Atomic bool cancel;
	pthread_t thread;
	bool started;
	/* The top-ups' workers and their queue (queued + running <=
	 * inflight_max). */
	pthread_cond_t job_wake;
	struct acq_job *head, *tail;
	unsigned jobs;
	pthread_t *workers;
	unsigned nworkers;
};

/* ---- ids ------------------------------------------------------------------
 */

u128 acquirer_derive_id(const void *a, size_t al, const void *b, size_t bl)
{
	crypto_generichash_state st;
	u8 h[16];
	u128 id = 0;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, a, al);
	crypto_generichash_update(&st, b, bl);
	crypto_generichash_final(&st, h, sizeof(h));
	for (int i = 0; i < 16; i++)
		id = (id << 8) | h[i];
	/* 0 and 2^128-1 are not ids. */
	return id == 0 || id == AMOUNT_MAX ? 1 : id;
}

static u128 topup_id(const char *key)
{
	static const char tag[] = "tpwallet-topup:";
	return acquirer_derive_id(tag, sizeof(tag) - 1, key, strlen(key));
}

static u128 final_id(u128 pending, bool post)
{
	u8 b[16];
	for (int i = 0; i < 16; i++)
		b[i] = (u8)(pending >> (8 * (15 - i)));
	return acquirer_derive_id(b, sizeof(b), post ? "post" : "void", 4);
}

void acquirer_key_of(u128 id, char out[ACQ_KEY_BYTES])
{
	snprintf(out, ACQ_KEY_BYTES, "tpw-%016llx%016llx",
		 (unsigned long long)(u64)(id >> 64),
		 (unsigned long long)(u64)id);
}

int acquirer_key_id(const char *key, u128 *id)
{
	u128 v = 0;
	if (strlen(key) != 36 || memcmp(key, "tpw-", 4) != 0)
		return -EINVAL;
	for (int i = 4; i < 36; i++) {
		char c = key[i];
		unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
			     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
						    : 16u;
		if (d == 16)
			return -EINVAL;
		v = (v << 4) | d;
	}
	*id = v;
	return 0;
}

void acquirer_config(const struct acquirer *a, u128 *settlement, u16 *code,
		     const char **currency)
{
	*settlement = a->settlement;
	*code = a->code;
	*currency = a->currency;
}

/* ---- the breaker and the slots --------------------------------------------
 */

/* Under the lock: a slot for a call, or the refusal. */
static enum acq_result take_slot(struct acquirer *a, unsigned *slot,
				 unsigned *retry_s)
{
	u64 now = tpw_monotonic_ms();

	if (a->breaker == ACQ_OPEN) {
		if (now < a->opened_ms + a->cooldown_ms) {
			a->st.rejected_open++;
			*retry_s = (unsigned)((a->opened_ms + a->cooldown_ms -
					       now + 999) /
					      1000);
			return ACQ_BREAKER_OPEN;
		}
		a->breaker = ACQ_HALF_OPEN;
		a->probing = false;
	}
	if (a->breaker == ACQ_HALF_OPEN && a->probing) {
		a->st.rejected_open++;
		*retry_s = 1;
		return ACQ_BREAKER_OPEN;
	}
	for (unsigned i = 0; i + 1 < a->nclients; i++)
		if (!a->busy[i]) {
			a->busy[i] = true;
			*slot = i;
			a->st.inflight++;
			if (a->breaker == ACQ_HALF_OPEN)
				a->probing = true;
			return ACQ_APPROVED;
		}
	a->st.rejected_busy++;
	*retry_s = 1;
	return ACQ_BUSY;
}

static void give_slot(struct acquirer *a, unsigned slot)
{
	pthread_mutex_lock(&a->lock);
	a->busy[slot] = false;
	if (slot + 1 < a->nclients)
		a->st.inflight--;
	pthread_mutex_unlock(&a->lock);
}

static bool is_failure(enum acq_outcome o)
{
	return o == ACQ_OUT_timeout || o == ACQ_OUT_server_error ||
	       o == ACQ_OUT_bad_answer || o == ACQ_OUT_transport;
}

static bool is_verdict(enum acq_outcome o)
{
	return o == ACQ_OUT_approved || o == ACQ_OUT_declined;
}

/* After each call: the counters, the latency, the breaker. */
static void record(struct acquirer *a, const struct acq_answer *ans,
		   u64 took_ms)
{
	double s = (double)took_ms / 1000.0;
	int opened = 0, closed = 0;

	pthread_mutex_lock(&a->lock);
	a->st.calls[ans->outcome]++;
	for (unsigned i = 0; i < ACQ_LATENCY_BUCKETS; i++)
		if (s <= acq_latency_bounds_s[i])
			a->st.latency_buckets[i]++;
	a->st.latency_count++;
	a->st.latency_sum_s += s;
	if (ans->outcome == ACQ_OUT_version_refused) {
		a->st.version_refused = true;
		snprintf(a->st.minimum, sizeof(a->st.minimum), "%s",
			 ans->minimum);
	} else if (!is_failure(ans->outcome)) {
		a->st.version_refused = false;
		a->st.minimum[0] = '\0';
	}
	if (is_failure(ans->outcome)) {
		a->fails++;
		if (a->breaker == ACQ_HALF_OPEN ||
		    (a->breaker == ACQ_CLOSED &&
		     a->fails >= a->breaker_failures)) {
			opened = a->breaker == ACQ_CLOSED ? 1 : 2;
			a->breaker = ACQ_OPEN;
			a->opened_ms = tpw_monotonic_ms();
			a->st.breaker_opened++;
		}
	} else {
		a->fails = 0;
		if (a->breaker == ACQ_HALF_OPEN) {
			a->breaker = ACQ_CLOSED;
			closed = 1;
		}
	}
	a->probing = false;
	pthread_mutex_unlock(&a->lock);
	if (opened)
		log_at(LOG_WARN, "acquirer breaker opened",
		       LOG_STR("after", opened == 1
						? "consecutive failures"
						: "the half-open call failed"),
		       LOG_STR("outcome", acq_outcome_name(ans->outcome)),
		       LOG_NUM("cooldown_ms", a->cooldown_ms));
	if (closed)
		log_at(LOG_INFO, "acquirer breaker closed",
		       LOG_STR("outcome", acq_outcome_name(ans->outcome)));
	if (ans->outcome == ACQ_OUT_version_refused)
		log_at(LOG_ERROR,
		       "the acquirer refuses our API version (426): raise "
		       "acquirer_api_version",
		       LOG_STR("version", a->version),
		       LOG_STR("minimum",
			       ans->minimum[0] ? ans->minimum : "?"));
}

static struct http_client *client(struct acquirer *a, unsigned slot)
{
	if (!a->clients[slot]) {
		const struct http_options o = {
			.connect_timeout_ms = a->timeout_ms,
			.total_timeout_ms = a->timeout_ms,
			.body_bytes_max = 64u * 1024u,
			.user_agent = "tpwallet-acquirer",
			.ca_file = a->ca_file[0] ? a->ca_file : NULL};
		if (http_client_open(&a->clients[slot], a->url, &o) < 0)
			a->clients[slot] = NULL;
	}
	return a->clients[slot];
}

static void call(struct acquirer *a, unsigned slot,
		 const struct acq_asked *asked, const char *pan,
		 struct acq_answer *out)
{
	struct http_client *c = client(a, slot);
	u64 t0 = tpw_monotonic_ms();

	if (!c) {
		memset(out, 0, sizeof(*out));
		out->outcome = ACQ_OUT_transport;
		snprintf(out->detail, sizeof(out->detail),
			 "the client could not be opened");
	} else if (pan) {
		acq_proto_charge(c, a->version, asked, pan, &a->cancel, out);
	} else {
		acq_proto_query(c, a->version, asked, &a->cancel, out);
	}
	record(a, out, tpw_monotonic_ms() - t0);
}

/* Backoff before attempt n (0-based): base * 2^n, capped, and a random
 * part of up to as much again (full jitter on top of the floor). */
static unsigned backoff_ms(struct acquirer *a, unsigned n)
{
	u64 d = BACKOFF_BASE_MS;
	for (unsigned i = 0; i < n && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	pthread_mutex_lock(&a->lock);
	a->rng = a->rng * 6364136223846793005ull + 1442695040888963407ull;
	u64 r = a->rng >> 33;
	pthread_mutex_unlock(&a->lock);
	return (unsigned)(d + r % (d + 1));
}

static void sleep_ms(struct acquirer *a, unsigned ms)
{
	for (unsigned t = 0; t < ms && !atomic_load(&a->cancel); t += 20) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* ---- the ledger ------------------------------------------------------------
 */

/* One transfer through the engine: its result code, or a negative errno. */
static int submit(struct acquirer *a, const struct transfer *t)
{
	u32 result = 0;
	struct engine_request req = {.op = ENGINE_CREATE_TRANSFERS,
				     .count = 1,
				     .events = t,
				     .results = &result};
	int ret = engine_execute(a->e, &req);
	if (ret == 0)
		ret = req.status;
	return ret < 0 ? ret : (int)result;
}

/* Posts (or voids) pending transfer p: 0 when it is (or already was). */
static int finish(struct acquirer *a, const struct transfer *p, bool post,
		  u128 *fid)
{
	struct transfer t = {
		.id = final_id(p->id, post),
		.debit_account_id = p->debit_account_id,
		.credit_account_id = p->credit_account_id,
		.amount = post ? p->amount : 0,
		.pending_id = p->id,
		.ledger = p->ledger,
		.code = p->code,
		.flags = post ? TRANSFER_POST_PENDING_TRANSFER
			      : TRANSFER_VOID_PENDING_TRANSFER,
	};
	int r = submit(a, &t);
	if (fid)
		*fid = t.id;
	if (r == CREATE_TRANSFER_ok || r == CREATE_TRANSFER_exists ||
	    (post && r == CREATE_TRANSFER_pending_transfer_already_posted) ||
	    (!post && r == CREATE_TRANSFER_pending_transfer_already_voided))
		return 0;
	char id[U128_DEC_BYTES];
	u128_format_dec(p->id, id);
	log_at(LOG_ERROR,
	       "acquirer: a top-up could not be settled in the ledger",
	       LOG_STR("transfer", id), LOG_STR("as", post ? "post" : "void"),
	       LOG_STR("result",
		       r < 0 ? "engine error"
			     : create_transfer_result_name((unsigned)r)));
	return r < 0 ? r : -EPROTO;
}

/* ---- the resolver's list ----------------------------------------------------
 */

static void pend_add(struct acquirer *a, u128 id, u128 amount, u64 since)
{
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->npend; i++)
		if (a->pend[i].id == id) {
			pthread_mutex_unlock(&a->lock);
			return;
		}
	if (a->npend == a->cap && a->cap < PENDING_MAX) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct pend *p = realloc(a->pend, cap * sizeof(*p));
		if (p) {
			a->pend = p;
			a->cap = cap;
		}
	}
	if (a->npend < a->cap) {
		a->pend[a->npend++] = (struct pend){
			.id = id,
			.amount = amount,
			.since_ms = since,
			.next_ms = tpw_monotonic_ms() + a->resolve_ms};
		a->st.pending = (unsigned)a->npend;
	}
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

static bool pend_has(struct acquirer *a, u128 id)
{
	bool has = false;
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->npend && !has; i++)
		has = a->pend[i].id == id;
	pthread_mutex_unlock(&a->lock);
	return has;
}

/* ---- a top-up
 * ---------------------------------------------------------------- */

static bool key_ok(const char *k)
{
	size_t n = k ? strlen(k) : 0;
	if (n == 0 || n > ACQ_IDEMPOTENCY_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("_.:-", c)))
			return false;
	}
	return true;
}

/* An earlier top-up under the same key: its outcome. */
static void replay(struct acquirer *a, const struct transfer *t,
		   enum pending_status st, u128 account, u128 amount,
		   struct acq_topup_result *out)
{
	if (t->debit_account_id != a->settlement ||
	    t->credit_account_id != account || t->amount != amount ||
	    t->code != a->code || !(t->flags & TRANSFER_PENDING)) {
		out->result = ACQ_CONFLICT;
		snprintf(out->detail, sizeof(out->detail),
			 "this idempotency_key was used for another top-up");
		return;
	}
	if (st == PENDING_POSTED) {
		out->result = ACQ_APPROVED;
		out->final_id = final_id(t->id, true);
	} else if (st == PENDING_PENDING) {
		out->result = ACQ_PENDING;
		if (!pend_has(a, t->id)) /* its charge may be on its way */
			pend_add(a, t->id, t->amount, tpw_monotonic_ms());
	} else {
		out->result = ACQ_DECLINED;
		out->final_id = final_id(t->id, false);
	}
}

/* The card's number into pan (NUL-terminated): 0, or the refusal. */
static enum acq_result read_card(struct acquirer *a, const char *token,
				 char pan[PAN_DIGITS_MAX + 1])
{
	struct vault_card c;
	u8 plain[VAULT_PLAIN_BYTES];

	if (!a->vault || !vaultkeys_usable(a->vault))
		return ACQ_VAULT_UNAVAILABLE;
	engine_read_begin(a->e);
	int ret = vault_find(engine_vault(a->e), token, &c);
	engine_read_end(a->e);
	if (ret)
		return ACQ_NO_CARD;
	if (c.erased) {
		sodium_memzero(&c, sizeof(c));
		return ACQ_CARD_ERASED;
	}
	ret = vaultkeys_open_card(a->vault, &c, plain);
	sodium_memzero(&c, sizeof(c));
	if (ret == -ENOENT)
		return ACQ_CARD_ERASED;
	if (ret)
		return ACQ_VAULT_UNAVAILABLE;
	size_t n = plain[VAULT_PLAIN_PAN_LEN];
	if (n > PAN_DIGITS_MAX)
		n = 0;
	memcpy(pan, plain + VAULT_PLAIN_PAN, n);
	pan[n] = '\0';
	sodium_memzero(plain, sizeof(plain));
	return n ? ACQ_APPROVED : ACQ_VAULT_UNAVAILABLE;
}

/* The charge and what its answers make of the pending transfer p. */
static void charge(struct acquirer *a, unsigned slot, const struct transfer *p,
		   const char *pan, struct acq_topup_result *out)
{
	const struct acq_asked asked = {
		.key = out->key, .amount = p->amount, .currency = a->currency};
	struct acq_answer ans = {0};
	u64 sent = tpw_monotonic_ms();

	for (unsigned n = 0; n < INLINE_ATTEMPTS; n++) {
		if (n)
			sleep_ms(a, backoff_ms(a, n - 1));
		sent = tpw_monotonic_ms();
		call(a, slot, &asked, pan, &ans);
		if (ans.outcome == ACQ_OUT_bad_answer)
			call(a, slot, &asked, NULL, &ans); /* booked? ask */
		if (!is_failure(ans.outcome) && ans.outcome != ACQ_OUT_unknown)
			break;
		if (ans.outcome == ACQ_OUT_timeout)
			break; /* it may still be booking: the resolver asks */
		pthread_mutex_lock(&a->lock);
		bool open = a->breaker != ACQ_CLOSED;
		pthread_mutex_unlock(&a->lock);
		if (open)
			break;
	}
	snprintf(out->acquirer_ref, sizeof(out->acquirer_ref), "%s",
		 ans.acquirer_ref);
	switch (ans.outcome) {
	case ACQ_OUT_approved:
	case ACQ_OUT_declined: {
		bool post = ans.outcome == ACQ_OUT_approved;
		int r = finish(a, p, post, &out->final_id);
		if (r == 0) {
			out->result = post ? ACQ_APPROVED : ACQ_DECLINED;
		} else {
			/* Left pending: the resolver settles it. */
			pend_add(a, p->id, p->amount, sent);
			out->result = ACQ_PENDING;
		}
		return;
	}
	case ACQ_OUT_version_refused:
	case ACQ_OUT_refused:
		/* Refused before booking (docs/acquirer.md): void. */
		out->result = ans.outcome == ACQ_OUT_version_refused
				      ? ACQ_VERSION_REFUSED
				      : ACQ_REFUSED;
		snprintf(out->detail, sizeof(out->detail), "%s",
			 ans.outcome == ACQ_OUT_version_refused ? ans.minimum
								: ans.detail);
		if (finish(a, p, false, &out->final_id) != 0) {
			pend_add(a, p->id, p->amount, sent);
			out->result = ACQ_PENDING;
		}
		return;
	default:
		pend_add(a, p->id, p->amount, sent);
		out->result = ACQ_PENDING;
		snprintf(out->detail, sizeof(out->detail), "%s",
			 acq_outcome_name(ans.outcome));
		return;
	}
}

void acquirer_topup(struct acquirer *a, u128 account, u128 amount,
		    const char *token, const char *idempotency_key,
		    struct acq_topup_result *out)
{
	char pan[PAN_DIGITS_MAX + 1];
	struct transfer t;
	enum pending_status st;
	unsigned slot = 0;

	memset(out, 0, sizeof(*out));
	if (!key_ok(idempotency_key)) {
		out->result = ACQ_CONFLICT;
		return;
	}
	out->transfer_id = topup_id(idempotency_key);
	acquirer_key_of(out->transfer_id, out->key);
	int ret = engine_lookup_transfer(a->e, out->transfer_id, &t, &st);
	if (ret == 0) {
		replay(a, &t, st, account, amount, out);
		return;
	}
	if (ret != -ENOENT) {
		out->result = ACQ_ENGINE;
		out->err = ret;
		return;
	}

	struct account acc, set;
	const struct ledger *l = engine_read_begin(a->e);
	int r1 = ledger_lookup_account(l, account, &acc);
	int r2 = ledger_lookup_account(l, a->settlement, &set);
	engine_read_end(a->e);
	if (r1 != 0) {
		out->result = ACQ_NO_ACCOUNT;
		return;
	}
	if (r2 != 0 || acc.ledger != set.ledger || account == a->settlement) {
		out->result = ACQ_BAD_ACCOUNT;
		return;
	}
	enum acq_result card = read_card(a, token, pan);
	if (card != ACQ_APPROVED) {
		out->result = card;
		return;
	}
	pthread_mutex_lock(&a->lock);
	enum acq_result got = take_slot(a, &slot, &out->retry_after_s);
	pthread_mutex_unlock(&a->lock);
	if (got != ACQ_APPROVED) {
		out->result = got;
		sodium_memzero(pan, sizeof(pan));
		return;
	}
	/* Journaled first: from here a crash leaves a pending transfer,
	 * which the resolver finds and asks about at the next start. */
	t = (struct transfer){.id = out->transfer_id,
			      .debit_account_id = a->settlement,
			      .credit_account_id = account,
			      .amount = amount,
			      .ledger = set.ledger,
			      .code = a->code,
			      .flags = TRANSFER_PENDING};
	int r = submit(a, &t);
	if (r == CREATE_TRANSFER_ok) {
		charge(a, slot, &t, pan, out);
	} else if (r == CREATE_TRANSFER_exists) {
		/* Another request holds this key (a retry, or one in flight
		 * now): ask the acquirer, never charge a second time (the
		 * tenth review's F3: two at once with two cards, the
		 * second's charge answered 409 idempotency_key_reused, was
		 * taken for a refusal and voided the top-up the first one's
		 * approval was about to post). */
		charge(a, slot, &t, NULL, out);
	} else if (r < 0) {
		out->result = ACQ_ENGINE;
		out->err = r;
	} else {
		out->result = ACQ_LEDGER_REFUSED;
		snprintf(out->detail, sizeof(out->detail), "%s",
			 create_transfer_result_name((unsigned)r));
	}
	sodium_memzero(pan, sizeof(pan));
	give_slot(a, slot);
}

/* ---- the resolver
 * -------------------------------------------------------------- */

/* One pending top-up asked about: true when it is settled (or gone). */
static bool resolve_one(struct acquirer *a, struct pend *p)
{
	struct transfer t;
	enum pending_status st;
	char key[ACQ_KEY_BYTES], id[U128_DEC_BYTES];
	struct acq_answer ans;
	unsigned slot = a->nclients - 1;

	if (engine_lookup_transfer(a->e, p->id, &t, &st) != 0 ||
	    st != PENDING_PENDING)
		return true; /* settled meanwhile (a client's retry) */
	acquirer_key_of(p->id, key);
	const struct acq_asked asked = {
		.key = key, .amount = t.amount, .currency = a->currency};
	call(a, slot, &asked, NULL, &ans);
	u128_format_dec(p->id, id);
	if (is_verdict(ans.outcome)) {
		bool post = ans.outcome == ACQ_OUT_approved;
		if (finish(a, &t, post, NULL) != 0)
			return false;
		log_at(LOG_INFO, "acquirer: a pending top-up is settled",
		       LOG_STR("transfer", id),
		       LOG_STR("as", post ? "posted" : "voided"),
		       LOG_STR("acquirer_ref", ans.acquirer_ref));
		return true;
	}
	u64 now = tpw_monotonic_ms();
	if (ans.outcome == ACQ_OUT_unknown &&
	    now >= p->since_ms + UNKNOWN_GRACE_TIMEOUTS * a->timeout_ms +
			    UNKNOWN_GRACE_MS) {
		/* Never booked, and no charge can still be on its way. */
		if (finish(a, &t, false, NULL) != 0)
			return false;
		log_at(LOG_INFO,
		       "acquirer: a pending top-up was never booked by the "
		       "acquirer: voided",
		       LOG_STR("transfer", id));
		return true;
	}
	return false;
}

static void *resolver_main(void *arg)
{
	struct acquirer *a = arg;

	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		u64 now = tpw_monotonic_ms(), next = now + 1000;
		struct pend due;
		bool have = false;
		bool open = a->breaker == ACQ_OPEN &&
			    now < a->opened_ms + a->cooldown_ms;
		for (size_t i = 0; i < a->npend && !have; i++) {
			if (!open && a->pend[i].next_ms <= now) {
				due = a->pend[i];
				have = true;
			} else if (a->pend[i].next_ms < next) {
				next = a->pend[i].next_ms;
			}
		}
		if (open && next < a->opened_ms + a->cooldown_ms)
			next = a->opened_ms + a->cooldown_ms;
		if (!have) {
			struct timespec until = tpw_deadline_ms(
				next > now ? (unsigned)(next - now) : 1);
			pthread_cond_timedwait(&a->wake, &a->lock, &until);
			continue;
		}
		pthread_mutex_unlock(&a->lock);
		bool done = resolve_one(a, &due);
		unsigned wait = done ? 0 : backoff_ms(a, due.tries);
		pthread_mutex_lock(&a->lock);
		for (size_t i = 0; i < a->npend; i++) {
			if (a->pend[i].id != due.id)
				continue;
			if (done) {
				a->pend[i] = a->pend[--a->npend];
			} else {
				a->pend[i].tries++;
				a->pend[i].next_ms = tpw_monotonic_ms() + wait;
			}
			break;
		}
		a->st.pending = (unsigned)a->npend;
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* Every pending top-up of the settlement account in the ledger (those a
 * stop or a crash left), onto the resolver's list. */
static int scan_pending(struct acquirer *a)
{
	struct transfer *page = calloc(SCAN_PAGE, sizeof(*page));
	u8 *status = calloc(SCAN_PAGE, 1);
	u64 from = 0;
	int found = 0, n;

	if (!page || !status) {
		free(page);
		free(status);
		return -ENOMEM;
	}
	do {
		struct account_filter f = {.account_id = a->settlement,
					   .code = a->code,
					   .timestamp_min = from,
					   .limit = SCAN_PAGE,
					   .flags = ACCOUNT_FILTER_DEBITS};
		n = engine_account_transfers(a->e, &f, page, status, SCAN_PAGE);
		for (int i = 0; i < n; i++) {
			if ((page[i].flags & TRANSFER_PENDING) &&
			    status[i] == PENDING_PENDING) {
				pend_add(a, page[i].id, page[i].amount,
					 tpw_monotonic_ms());
				found++;
			}
			from = page[i].timestamp + 1;
		}
	} while (n == (int)SCAN_PAGE);
	free(page);
	free(status);
	if (found)
		log_at(LOG_INFO,
		       "acquirer: pending top-ups found at start; asking the "
		       "acquirer about each",
		       LOG_NUM("pending", found));
	return n < 0 ? n : 0;
}

/* ---- the workers ----------------------------------------------------------
 */

int acquirer_submit(struct acquirer *a, struct acq_job *j, unsigned *retry_s)
{
	pthread_mutex_lock(&a->lock);
	if (a->jobs >= a->inflight_max || a->stop) {
		a->st.rejected_busy++;
		pthread_mutex_unlock(&a->lock);
		*retry_s = 1;
		return ACQ_BUSY;
	}
	a->jobs++;
	j->next = NULL;
	if (a->tail)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	pthread_cond_signal(&a->job_wake);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static void *worker_main(void *arg)
{
	struct acquirer *a = arg;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->head && !a->stop)
			pthread_cond_wait(&a->job_wake, &a->lock);
		if (!a->head)
			break; /* stopping, nothing left */
		struct acq_job *j = a->head;
		a->head = j->next;
		if (!a->head)
			a->tail = NULL;
		pthread_mutex_unlock(&a->lock);
		acquirer_topup(a, j->account, j->amount, j->token, j->key,
			       &j->result);
		pthread_mutex_lock(&a->lock);
		a->jobs--;
		pthread_mutex_unlock(&a->lock);
		j->done(j); /* j may be gone after this */
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int acquirer_options_check(const struct acquirer_options *o, char *err,
			   size_t err_len)
{
	struct http_url u;
	const char *v = o->api_version ? o->api_version : "";
	const char *c = o->currency ? o->currency : "";

	if (!o->url || http_url_parse(o->url, &u) != 0) {
		snprintf(err, err_len, "acquirer: not http[s]://HOST[:PORT]");
		return -EINVAL;
	}
	if (strlen(v) != 7 || v[4] != '-' || strspn(v, "0123456789-") != 7 ||
	    strchr(v, '-') != v + 4) {
		snprintf(err, err_len, "acquirer_api_version: not YYYY-MM");
		return -EINVAL;
	}
	if (strlen(c) != 3 || strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3) {
		snprintf(err, err_len,
			 "acquirer_currency: not an ISO 4217 code (EUR)");
		return -EINVAL;
	}
	if (o->settlement_account == 0 || o->settlement_account == AMOUNT_MAX ||
	    o->code == 0) {
		snprintf(err, err_len,
			 "acquirer_settlement_account and acquirer_code are "
			 "required with acquirer");
		return -EINVAL;
	}
	return 0;
}

int acquirer_open(struct acquirer **out, const struct acquirer_options *o,
		  struct engine *e, struct vaultkeys *vault, char *err,
		  size_t err_len)
{
	struct acquirer *a;
	int ret = acquirer_options_check(o, err, err_len);

	*out = NULL;
	if (ret)
		return ret;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	snprintf(a->url, sizeof(a->url), "%s", o->url);
	snprintf(a->currency, sizeof(a->currency), "%s", o->currency);
	snprintf(a->version, sizeof(a->version), "%s", o->api_version);
	snprintf(a->ca_file, sizeof(a->ca_file), "%s",
		 o->ca_file ? o->ca_file : "");
	a->settlement = o->settlement_account;
	a->code = o->code;
	a->inflight_max = o->inflight_max ? o->inflight_max : 4;
	a->breaker_failures = o->breaker_failures ? o->breaker_failures : 5;
	a->cooldown_ms = o->breaker_cooldown_ms ? o->breaker_cooldown_ms : 5000;
	a->timeout_ms = o->timeout_ms ? o->timeout_ms : 2000;
	a->resolve_ms = o->resolve_interval_ms ? o->resolve_interval_ms : 200;
	a->e = e;
	a->vault = vault;
	a->nclients = a->inflight_max + 1;
	a->clients = calloc(a->nclients, sizeof(*a->clients));
	a->busy = calloc(a->nclients, sizeof(*a->busy));
	randombytes_buf(&a->rng, sizeof(a->rng));
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	pthread_cond_init(&a->job_wake, NULL);
	a->workers = calloc(a->inflight_max, sizeof(*a->workers));
	if (!a->clients || !a->busy || !a->workers) {
		acquirer_close(a);
		return -ENOMEM;
	}
	ret = scan_pending(a);
	if (ret == 0) {
		ret = -pthread_create(&a->thread, NULL, resolver_main, a);
		a->started = ret == 0;
	}
	while (ret == 0 && a->nworkers < a->inflight_max) {
		ret = -pthread_create(&a->workers[a->nworkers], NULL,
				      worker_main, a);
		a->nworkers += ret == 0;
	}
	if (ret) {
		snprintf(err, err_len, "acquirer: cannot start (errno %d)",
			 -ret);
		acquirer_close(a);
		return ret;
	}
	*out = a;
	return 0;
}

void acquirer_close(struct acquirer *a)
{
	if (!a)
		return;
	/* The workers finish what is queued (the HTTP server, stopped
	 * first, waits for its requests), then the resolver stops. */
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->job_wake);
	pthread_mutex_unlock(&a->lock);
	for (unsigned i = 0; i < a->nworkers; i++)
		pthread_join(a->workers[i], NULL);
	atomic_store(&a->cancel, true);
	if (a->started) {
		pthread_mutex_lock(&a->lock);
		pthread_cond_signal(&a->wake);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	for (unsigned i = 0; a->clients && i < a->nclients; i++)
		http_client_close(a->clients[i]);
	free(a->clients);
	free(a->busy);
	free(a->pend);
	free(a->workers);
	pthread_cond_destroy(&a->job_wake);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void acquirer_stats(struct acquirer *a, struct acquirer_stats *out)
{
	pthread_mutex_lock(&a->lock);
	*out = a->st;
	out->breaker = a->breaker;
	out->inflight_max = a->inflight_max;
	pthread_mutex_unlock(&a->lock);
	memcpy(out->version, a->version, sizeof(out->version));
}
