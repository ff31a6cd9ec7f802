/*
 * entry_view.c - one journal record decoded for people (entry_view.h):
 * the record's header through journal_decode, a command through the
 * registry's command_decode, then each kind's ext read into named fields
 * and one line of words.  Every read is bounded by the decoded sizes;
 * the ext is copied into its struct before it is read (the payload has
 * no alignment).
 */
#include "log/entry_view.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/parse.h"
#include "core/policy.h"
#include "core/pstate.h"
#include "core/tlsswitch.h"
#include "core/u128.h"
#include "core/vault.h"
#include "crypto/b64url.h"
#include "log/journal.h"
#include "log/leaf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "banned.h"

void entry_view_text(char *out, size_t out_size, const char *in, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n && in[i] != '\0' && k + 1 < out_size; i++) {
		unsigned char c = (unsigned char)in[i];
		out[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (out_size > 0)
		out[k] = '\0';
}

bool entry_view_is_admin(const u8 id[32])
{
	u8 acc = 0;

	for (int i = 0; i < 32; i++)
		acc |= id[i];
	return acc == 0;
}

void entry_view_thumbprint(const u8 id[32],
			   char out[ENTRY_VIEW_THUMBPRINT_BYTES])
{
	if (b64url_encode(out, ENTRY_VIEW_THUMBPRINT_BYTES, id, 32) != 0)
		out[0] = '\0';
}

static struct entry_view_field *field(struct entry_view *v, const char *key)
{
	if (v->nfields >= ENTRY_VIEW_FIELDS_MAX)
		return NULL;
	struct entry_view_field *f = &v->fields[v->nfields++];
	f->key = key;
	f->value[0] = '\0';
	return f;
}

static void fieldf(struct entry_view *v, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fieldf(struct entry_view *v, const char *key, const char *fmt, ...)
{
	struct entry_view_field *f = field(v, key);
	va_list ap;

	if (!f)
		return;
	va_start(ap, fmt);
	vsnprintf(f->value, sizeof(f->value), fmt, ap);
	va_end(ap);
}

static void field_text(struct entry_view *v, const char *key, const char *in,
		       size_t n)
{
	struct entry_view_field *f = field(v, key);

	if (f)
		entry_view_text(f->value, sizeof(f->value), in, n);
}

static void summary(struct entry_view *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void summary(struct entry_view *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->summary, sizeof(v->summary), fmt, ap);
	va_end(ap);
}

static int fail(struct entry_view *v, const char *why)
{
	snprintf(v->error, sizeof(v->error), "%s", why);
	return -EBADMSG;
}

const char *entry_view_type_name(u16 type)
{
	switch (type) {
	case JOURNAL_CREATE_ACCOUNTS: return "create_accounts";
	case JOURNAL_CREATE_TRANSFERS: return "create_transfers";
	case JOURNAL_PULSE: return "pulse";
	case JOURNAL_COMMAND: return "command";
	default: return "unknown";
	}
}

/* count, first_ids: the ids of the first events (each event's first 16
 * bytes, an account's or a transfer's id). */
static void events(struct entry_view *v, const u8 *ev, u32 n, const char *what)
{
	char ids[ENTRY_VIEW_VALUE_BYTES];
	size_t k = 0;

	ids[0] = '\0';
	for (u32 i = 0; i < n && i < ENTRY_VIEW_FIRST_IDS; i++) {
		char d[U128_DEC_BYTES];
		u128 id;
		memcpy(&id, ev + (size_t)i * LEAF_EVENT_BYTES, sizeof(id));
		u128_format_dec(id, d);
		k += (size_t)snprintf(ids + k, sizeof(ids) - k, "%s%s",
				      i ? "," : "", d);
	}
	fieldf(v, "count", "%u", n);
	fieldf(v, "first_ids", "%s", ids);
	summary(v, "%u %s%s (first ids %s%s)", n, what, n == 1 ? "" : "s", ids,
		n > ENTRY_VIEW_FIRST_IDS ? ", ..." : "");
}

static void author(struct entry_view *v, const u8 id[32])
{
	v->has_author = true;
	memcpy(v->author, id, sizeof(v->author));
}

static void principal(struct entry_view *v, const u8 *ext)
{
	struct auth_principal p;
	char tp[ENTRY_VIEW_THUMBPRINT_BYTES];

	memcpy(&p, ext, sizeof(p));
	entry_view_thumbprint(p.id, tp);
	field_text(v, "name", p.name, sizeof(p.name));
	fieldf(v, "thumbprint", "%s", tp);
	summary(v, "principal \"%s\" registered (thumbprint %s)",
		v->fields[v->nfields - 2].value, tp);
}

static void principal_x509(struct entry_view *v, const u8 *ext)
{
	struct auth_principal p;
	struct auth_x509_pub x = {0};
	char tp[ENTRY_VIEW_THUMBPRINT_BYTES];

	memcpy(&p, ext, sizeof(p));
	(void)auth_principal_x509(p.pub, &x);
	entry_view_thumbprint(p.id, tp);
	field_text(v, "name", p.name, sizeof(p.name));
	fieldf(v, "spki_sha256", "%s", tp);
	fieldf(v, "not_after", "%lld", (long long)x.not_after);
	summary(v,
		"organisation principal \"%s\" registered (certificate key "
		"%s)",
		v->fields[v->nfields - 3].value, tp);
}

static void revoke(struct entry_view *v, const u8 *ext, u32 ext_bytes)
{
	struct auth_revoke r = {0};
	char iss[ENTRY_VIEW_THUMBPRINT_BYTES];

	memcpy(&r, ext, ext_bytes < sizeof(r) ? ext_bytes : sizeof(r));
	entry_view_thumbprint(r.iss, iss);
	fieldf(v, "issuer", "%s", iss);
	if (r.flags & AUTH_REVOKE_ALL) {
		fieldf(v, "scope", "all");
		summary(v, "every mandate link issued by %s revoked", iss);
		return;
	}
	field_text(v, "jti", r.jti, sizeof(r.jti));
	fieldf(v, "scope", "jti");
	summary(v, "mandate link jti \"%s\" of issuer %s revoked",
		v->fields[1].value, iss);
}

static void key_event(struct entry_view *v, const u8 *ext)
{
	struct auth_key_event k;

	memcpy(&k, ext, sizeof(k));
	field_text(v, "kid", k.kid, sizeof(k.kid));
	const char *what = k.kind == AUTH_KEY_CREATED	? "created"
			   : k.kind == AUTH_KEY_RETIRED ? "retired"
							: "unknown";
	fieldf(v, "event", "%s", what);
	fieldf(v, "not_before_s", "%lld", (long long)k.not_before);
	fieldf(v, "not_after_s", "%lld", (long long)k.not_after);
	/* A rotation's overlap: how long the keys it replaced verify. */
	if (k.kind == AUTH_KEY_CREATED && k.not_after != 0)
		fieldf(v, "overlap_s", "%lld",
		       (long long)(k.not_after - k.not_before));
	summary(v, "server key %s %s", v->fields[0].value, what);
}

static void policy_set(struct entry_view *v, const u8 *ext, u32 ext_bytes)
{
	struct pstate_set s;

	memcpy(&s, ext, sizeof(s));
	author(v, s.author);
	field_text(v, "reason", s.reason, sizeof(s.reason));
	u32 room = ext_bytes - (u32)sizeof(s);
	fieldf(v, "document_bytes", "%u",
	       s.text_bytes < room ? s.text_bytes : room);
	if (s.rollback_of) {
		fieldf(v, "rollback_of", "%llu",
		       (unsigned long long)s.rollback_of);
		summary(v, "client policy rolled back to version %llu: %s",
			(unsigned long long)s.rollback_of, v->fields[0].value);
	} else {
		summary(v, "client policy set: %s", v->fields[0].value);
	}
}

static void policy_override(struct entry_view *v, const u8 *ext)
{
	struct pstate_override_cmd o;

	memcpy(&o, ext, sizeof(o));
	author(v, o.author);
	field_text(v, "platform", o.platform, sizeof(o.platform));
	field_text(v, "range", o.range, sizeof(o.range));
	field_text(v, "reason", o.reason, sizeof(o.reason));
	const char *mode = o.mode == POLICY_OVERRIDE_ALLOW    ? "allow"
			   : o.mode == POLICY_OVERRIDE_COMPAT ? "compat"
							      : "unknown";
	fieldf(v, "mode", "%s", mode);
	fieldf(v, "duration_s", "%u", o.duration_s);
	summary(v, "override opened: %s %s -> %s for %u s: %s",
		v->fields[0].value, v->fields[1].value, mode, o.duration_s,
		v->fields[2].value);
}

/* Kind 20: kind 17's fields, then what the users are told (the message
 * JSON, cut to a field's size) and the expected end. */
static void policy_override_2(struct entry_view *v, const u8 *ext,
			      u32 ext_bytes)
{
	struct pstate_override_2 o;
	char when[POLICY_TIME_TEXT_BYTES] = "";

	memcpy(&o, ext, sizeof(o));
	policy_override(v, (const u8 *)&o.base);
	u32 room = ext_bytes - (u32)sizeof(o);
	field_text(v, "message", (const char *)ext + sizeof(o),
		   o.message_bytes < room ? o.message_bytes : room);
	if (o.expected_end_s > 0 &&
	    policy_format_time(o.expected_end_s, when) != 0)
		snprintf(when, sizeof(when), "%lld",
			 (long long)o.expected_end_s);
	fieldf(v, "expected_end", "%s", when);
}

static const char *field_value(const struct entry_view *v, const char *key)
{
	for (u32 i = 0; i < v->nfields; i++)
		if (strcmp(v->fields[i].key, key) == 0)
			return v->fields[i].value;
	return "";
}

void entry_view_set_outcome(struct entry_view *v, u64 id)
{
	if (!v->command || id == 0 || v->error[0])
		return;
	if (strcmp(v->command, "policy_set") == 0) {
		fieldf(v, "version", "%llu", (unsigned long long)id);
		if (field_value(v, "rollback_of")[0])
			summary(v,
				"client policy version %llu: rolled back to "
				"version %s: %s",
				(unsigned long long)id,
				field_value(v, "rollback_of"),
				field_value(v, "reason"));
		else
			summary(v, "client policy version %llu set: %s",
				(unsigned long long)id,
				field_value(v, "reason"));
	} else if (strcmp(v->command, "policy_override") == 0 ||
		   strcmp(v->command, "policy_override_2") == 0) {
		fieldf(v, "override_id", "%llu", (unsigned long long)id);
		summary(v, "override %llu opened: %s %s -> %s for %s s: %s",
			(unsigned long long)id, field_value(v, "platform"),
			field_value(v, "range"), field_value(v, "mode"),
			field_value(v, "duration_s"), field_value(v, "reason"));
	}
}

static void override_change_summary(struct entry_view *v, const char *where);

static void policy_override_end(struct entry_view *v, const u8 *ext)
{
	struct pstate_override_end e;

	memcpy(&e, ext, sizeof(e));
	author(v, e.author);
	fieldf(v, "override_id", "%llu", (unsigned long long)e.id);
	field_text(v, "reason", e.reason, sizeof(e.reason));
	override_change_summary(v, "");
}

/* RFC 3339 in UTC; with nanoseconds unless ns is NO_FRACTION. */
#define NO_FRACTION UINT64_MAX
static void rfc3339(char *out, size_t n, int64_t s, u64 ns)
{
	struct tm tm;
	time_t t = (time_t)s;

	if (!gmtime_r(&t, &tm)) {
		if (n > 0)
			out[0] = '\0';
		return;
	}
	int k = snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (k > 0 && (size_t)k < n)
		snprintf(out + k, n - (size_t)k,
			 ns == NO_FRACTION ? "Z" : ".%09lluZ",
			 (unsigned long long)ns);
}

/* The summary of an end, extension or expiry, with " (PLATFORM RANGE)"
 * after the id when those are known. */
static void override_change_summary(struct entry_view *v, const char *where)
{
	const char *id = field_value(v, "override_id");

	if (strcmp(v->command, "policy_override_end") == 0)
		summary(v, "override %s%s ended: %s", id, where,
			field_value(v, "reason"));
	else if (strcmp(v->command, "policy_override_extend") == 0)
		summary(v, "override %s%s extended by %s s: %s", id, where,
			field_value(v, "duration_s"), field_value(v, "reason"));
	else
		summary(v, "override %s%s expired: its end, %s, passed", id,
			where, field_value(v, "expires_at"));
}

static bool names_override(const struct entry_view *v)
{
	return v->command && !v->error[0] &&
	       (strcmp(v->command, "policy_override_end") == 0 ||
		strcmp(v->command, "policy_override_extend") == 0 ||
		strcmp(v->command, "policy_override_expired") == 0);
}

u64 entry_view_override_id(const struct entry_view *v)
{
	u64 id;

	if (!names_override(v) ||
	    parse_u64(field_value(v, "override_id"), UINT64_MAX, &id) != 0)
		return 0;
	return id;
}

void entry_view_set_override(struct entry_view *v, const char *platform,
			     const char *range)
{
	char where[ENTRY_VIEW_VALUE_BYTES * 2 + 4];

	if (!names_override(v))
		return;
	field_text(v, "platform", platform, strlen(platform));
	field_text(v, "range", range, strlen(range));
	snprintf(where, sizeof(where), " (%s %s)", field_value(v, "platform"),
		 field_value(v, "range"));
	override_change_summary(v, where);
}

static void policy_override_expired(struct entry_view *v, const u8 *ext)
{
	struct pstate_override_expired x;
	char at[ENTRY_VIEW_TIME_BYTES];

	memcpy(&x, ext, sizeof(x));
	v->server_author = true;
	fieldf(v, "override_id", "%llu", (unsigned long long)x.id);
	rfc3339(at, sizeof(at), x.expires_at_s, NO_FRACTION);
	fieldf(v, "expires_at", "%s", at);
	override_change_summary(v, "");
}

static void policy_override_extend(struct entry_view *v, const u8 *ext)
{
	struct pstate_override_extend e;

	memcpy(&e, ext, sizeof(e));
	author(v, e.author);
	fieldf(v, "override_id", "%llu", (unsigned long long)e.id);
	fieldf(v, "duration_s", "%u", (unsigned)e.duration_s);
	field_text(v, "reason", e.reason, sizeof(e.reason));
	override_change_summary(v, "");
}

/* The served TLS certificate changed: by the server itself (its own
 * entry, no principal) or by an operator. */
static void tls_switch(struct entry_view *v, const u8 *ext)
{
	struct tlsswitch x;
	const char *reason, *from, *to;

	memcpy(&x, ext, sizeof(x));
	reason = tlsswitch_reason_name(x.reason);
	from = tlsswitch_role_name(x.from);
	to = tlsswitch_role_name(x.to);
	if (x.reason == TLSSWITCH_OPERATOR)
		author(v, x.author);
	else
		v->server_author = true;
	fieldf(v, "reason", "%s", reason ? reason : "unknown");
	fieldf(v, "from", "%s", from ? from : "unknown");
	fieldf(v, "to", "%s", to ? to : "unknown");
	field_text(v, "from_serial", x.from_serial, sizeof(x.from_serial));
	field_text(v, "to_serial", x.to_serial, sizeof(x.to_serial));
	summary(v,
		"TLS certificate switched from %s (serial %s) to %s "
		"(serial %s): %s",
		field_value(v, "from"), field_value(v, "from_serial"),
		field_value(v, "to"), field_value(v, "to_serial"),
		field_value(v, "reason"));
}

/* The card vault's entries (core/vault.h): token, masked number, brand,
 * fingerprint, who and why; the ciphertext is not shown (and no number
 * is in the entry to show). */
static void vault_card(struct entry_view *v, const u8 *ext)
{
	struct vault_card_cmd c;
	char fp[2 * VAULT_FINGERPRINT_BYTES + 1];

	memcpy(&c, ext, sizeof(c));
	author(v, c.author);
	for (size_t i = 0; i < VAULT_FINGERPRINT_BYTES; i++)
		snprintf(fp + 2 * i, 3, "%02x", c.fingerprint[i]);
	field_text(v, "token", c.token, sizeof(c.token));
	field_text(v, "masked_pan", c.masked, sizeof(c.masked));
	field_text(v, "brand", c.brand, sizeof(c.brand));
	fieldf(v, "fingerprint", "%s", fp);
	fieldf(v, "expiry", "%02u/%04u", c.exp_month, c.exp_year);
	summary(v, "card %s (%s %s) tokenized", field_value(v, "token"),
		field_value(v, "brand"), field_value(v, "masked_pan"));
}

static void vault_use(struct entry_view *v, const u8 *ext, const char *what)
{
	struct vault_use_cmd u;

	memcpy(&u, ext, sizeof(u));
	author(v, u.author);
	field_text(v, "token", u.token, sizeof(u.token));
	field_text(v, "reason", u.reason, sizeof(u.reason));
	summary(v, "card %s %s: %s", field_value(v, "token"), what,
		field_value(v, "reason"));
}

static void vault_rotate(struct entry_view *v, const u8 *ext)
{
	struct vault_rotate_cmd r;

	memcpy(&r, ext, sizeof(r));
	author(v, r.author);
	fieldf(v, "version", "%u", r.version);
	fieldf(v, "min_version", "%u", r.min_version);
	fieldf(v, "rewrapped", "%u", r.rewrapped);
	summary(v,
		"vault key rotated to version %u (%u data keys rewrapped, "
		"versions below %u destroyed)",
		r.version, r.rewrapped, r.min_version);
}

static void accounts_owned(struct entry_view *v, const u8 *ext, const u8 *ev,
			   u32 n)
{
	struct auth_owner o;
	char owner[ENTRY_VIEW_VALUE_BYTES];

	memcpy(&o, ext, sizeof(o));
	if (entry_view_is_admin(o.owner))
		snprintf(owner, sizeof(owner), "administrator");
	else
		entry_view_thumbprint(o.owner, owner);
	events(v, ev, n, "account");
	fieldf(v, "owner", "%s", owner);
	size_t k = strlen(v->summary);
	snprintf(v->summary + k, sizeof(v->summary) - k, " owned by %s", owner);
}

static void transfers_guarded(struct entry_view *v, const u8 *ext,
			      u32 ext_bytes, const u8 *ev, u32 n)
{
	struct auth_guard g;
	char iss[ENTRY_VIEW_THUMBPRINT_BYTES];

	events(v, ev, n, "transfer");
	fieldf(v, "mandate_links", "%u", ext_bytes / (u32)sizeof(g));
	memcpy(&g, ext, sizeof(g));
	entry_view_thumbprint(g.iss, iss);
	fieldf(v, "mandate_root_issuer", "%s", iss);
	size_t k = strlen(v->summary);
	snprintf(v->summary + k, sizeof(v->summary) - k,
		 " under a mandate of %s", iss);
}

/* Named administrators (core/admin.h): each names its author. */
static void admin_role(struct entry_view *v, const u8 *ext)
{
	struct admin_role_cmd c;
	char tp[ENTRY_VIEW_THUMBPRINT_BYTES];
	const char *role;

	memcpy(&c, ext, sizeof(c));
	author(v, c.author);
	entry_view_thumbprint(c.id, tp);
	role = admin_role_name(c.role);
	fieldf(v, "principal", "%s", tp);
	fieldf(v, "role", "%s", role ? role : "unknown");
	if (c.role == ADMIN_ROLE_NONE)
		summary(v, "administrator role taken from %s", tp);
	else
		summary(v, "administrator role %s given to %s",
			v->fields[1].value, tp);
}

static void admin_retire(struct entry_view *v, const u8 *ext)
{
	struct admin_retire_cmd c;

	memcpy(&c, ext, sizeof(c));
	author(v, c.author);
	summary(v, "bootstrap administrator credentials retired");
}

static void admin_request(struct entry_view *v, const u8 *ext, u32 ext_bytes)
{
	struct admin_request_cmd c;
	struct pstate_set s;

	memcpy(&c, ext, sizeof(c));
	author(v, c.author);
	if (c.op == ADMIN_OP_ROLE &&
	    ext_bytes >= sizeof(c) + sizeof(struct admin_role_cmd)) {
		struct admin_role_cmd r;
		char tp[ENTRY_VIEW_THUMBPRINT_BYTES];
		const char *role, *was = admin_role_name((u32)c.target);
		memcpy(&r, ext + sizeof(c), sizeof(r));
		entry_view_thumbprint(r.id, tp);
		role = admin_role_name(r.role);
		fieldf(v, "operation", "role");
		fieldf(v, "principal", "%s", tp);
		fieldf(v, "role", "%s", role ? role : "unknown");
		fieldf(v, "target_role", "%s", was ? was : "unknown");
		fieldf(v, "window_s", "%u", c.window_s);
		summary(v,
			"dual-control request: administrator role %s for "
			"%s (waits for a second administrator)",
			role ? role : "unknown", tp);
		return;
	}
	fieldf(v, "operation", "%s",
	       c.op == ADMIN_OP_POLICY_SET ? "policy_set" : "unknown");
	fieldf(v, "target_version", "%llu", (unsigned long long)c.target);
	fieldf(v, "window_s", "%u", c.window_s);
	if (ext_bytes >= sizeof(c) + sizeof(s)) {
		memcpy(&s, ext + sizeof(c), sizeof(s));
		field_text(v, "reason", s.reason, sizeof(s.reason));
		/* What the approver is asked to approve: the document (its
		 * first bytes, as a field holds them) and its size. */
		u32 room = ext_bytes - (u32)(sizeof(c) + sizeof(s));
		u32 n = s.text_bytes < room ? s.text_bytes : room;
		fieldf(v, "document_bytes", "%u", n);
		field_text(v, "document",
			   (const char *)ext + sizeof(c) + sizeof(s), n);
	}
	summary(v, "dual-control request: client policy set (waits for a "
		   "second administrator)");
}

static void admin_decide(struct entry_view *v, const u8 *ext)
{
	struct admin_decide_cmd c;
	char tp[ENTRY_VIEW_THUMBPRINT_BYTES];
	static const char *const what[] = {"unknown", "approve", "reject",
					   "break_glass"};

	memcpy(&c, ext, sizeof(c));
	author(v, c.author);
	entry_view_thumbprint(c.requester, tp);
	const char *d = what[c.decision <= ADMIN_BREAK_GLASS ? c.decision : 0];
	fieldf(v, "request", "%llu", (unsigned long long)c.request);
	fieldf(v, "decision", "%s", d);
	fieldf(v, "requester", "%s", tp);
	field_text(v, "reason", c.reason, sizeof(c.reason));
	summary(v, "dual-control request %llu: %s (requested by %s)",
		(unsigned long long)c.request, d, tp);
}

static int command(struct entry_view *v, const struct journal_record *r)
{
	struct command_view c;

	if (command_decode(r->payload, r->payload_bytes, &c) != 0)
		return fail(v, "the command does not decode (layout, kind or "
			       "sizes)");
	v->command = c.def->name;
	switch (c.h.kind) {
	case AUTH_CMD_ACCOUNTS_OWNED:
		accounts_owned(v, c.ext, c.events, c.h.count);
		break;
	case AUTH_CMD_TRANSFERS_GUARDED:
	case AUTH_CMD_TRANSFERS_GUARDED_2:
		transfers_guarded(v, c.ext, c.h.ext_bytes, c.events, c.h.count);
		break;
	case AUTH_CMD_PRINCIPAL: principal(v, c.ext); break;
	case AUTH_CMD_PRINCIPAL_X509: principal_x509(v, c.ext); break;
	case AUTH_CMD_REVOKE: revoke(v, c.ext, c.h.ext_bytes); break;
	case AUTH_CMD_KEY: key_event(v, c.ext); break;
	case PSTATE_CMD_SET: policy_set(v, c.ext, c.h.ext_bytes); break;
	case PSTATE_CMD_OVERRIDE: policy_override(v, c.ext); break;
	case PSTATE_CMD_OVERRIDE_2:
		policy_override_2(v, c.ext, c.h.ext_bytes);
		break;
	case PSTATE_CMD_OVERRIDE_END: policy_override_end(v, c.ext); break;
	case PSTATE_CMD_OVERRIDE_EXTEND:
		policy_override_extend(v, c.ext);
		break;
	case PSTATE_CMD_OVERRIDE_EXPIRED:
		policy_override_expired(v, c.ext);
		break;
	case TLS_CMD_SWITCH: tls_switch(v, c.ext); break;
	case VAULT_CMD_CARD: vault_card(v, c.ext); break;
	case VAULT_CMD_REVEAL: vault_use(v, c.ext, "revealed"); break;
	case VAULT_CMD_ERASE: vault_use(v, c.ext, "erased"); break;
	case VAULT_CMD_ROTATE: vault_rotate(v, c.ext); break;
	case ADMIN_CMD_ROLE: admin_role(v, c.ext); break;
	case ADMIN_CMD_RETIRE: admin_retire(v, c.ext); break;
	case ADMIN_CMD_REQUEST: admin_request(v, c.ext, c.h.ext_bytes); break;
	case ADMIN_CMD_DECIDE: admin_decide(v, c.ext); break;
	default: summary(v, "%s", c.def->name); break;
	}
	return 0;
}

int entry_view_decode(const u8 *raw, size_t len, struct entry_view *out)
{
	struct journal_record r;

	memset(out, 0, sizeof(*out));
	out->type_name = "unknown";
	if (journal_decode(raw, len, &r) != (long)len)
		return fail(out, "the record does not decode (header, "
				 "checksum or length)");
	out->type = r.type;
	out->type_name = entry_view_type_name(r.type);
	out->seq = r.seq;
	out->timestamp_ns = r.timestamp;
	rfc3339(out->time, sizeof(out->time),
		(int64_t)(r.timestamp / 1000000000u),
		r.timestamp % 1000000000u);
	switch (r.type) {
	case JOURNAL_CREATE_ACCOUNTS:
	case JOURNAL_CREATE_TRANSFERS:
		if (r.payload_bytes % LEAF_EVENT_BYTES != 0)
			return fail(out, "the batch is not whole events");
		events(out, r.payload, r.payload_bytes / LEAF_EVENT_BYTES,
		       r.type == JOURNAL_CREATE_ACCOUNTS ? "account"
							 : "transfer");
		return 0;
	case JOURNAL_PULSE:
		summary(out, "pulse (pending transfers expired)");
		return 0;
	case JOURNAL_COMMAND: return command(out, &r);
	default: return fail(out, "unknown record type");
	}
}
