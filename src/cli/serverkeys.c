/*
 * serverkeys.c - KEK, keyring and log origin for init and serve
 * (serverkeys.h).
 */
#include "cli/serverkeys.h"
#include "api/authz.h"
#include "core/auth.h"
#include "engine/audit.h"
#include "engine/engine.h"
#include "crypto/note.h"
#include "engine/logger.h"
#include "log/datadir.h"
#include "log/fsdir.h"
#include "core/strerror.h"
#include "log/fsfile.h"
#include "log/keyfile.h"
#include "log/pkcs11.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

/* Messages go through the logger: serve's stderr is JSON lines. */
static void say(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(enum log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_write(level, msg, NULL, 0);
}

void server_keys_pkcs11_config(const struct settings *s,
			       struct pkcs11_config *c)
{
	memset(c, 0, sizeof(*c));
	c->module = s->kek_pkcs11_module;
	c->token = s->kek_pkcs11_token;
	c->slot = s->kek_pkcs11_slot[0] ? strtol(s->kek_pkcs11_slot, NULL, 10)
					: -1;
	c->pin_file = s->kek_pkcs11_pin_file;
	c->key_label = s->kek_pkcs11_key_label;
	c->timeout_ms = s->kek_pkcs11_timeout_ms;
	c->sign_in_token = s->signing_pkcs11 != 0;
}

static int load_token_kek(const struct settings *s, bool create,
			  struct pkcs11 **hsm, struct keyring_kek **kek)
{
	char err[KEYRING_ERR_BYTES] = "";
	struct pkcs11_config c;
	int ret;

	server_keys_pkcs11_config(s, &c);
	ret = pkcs11_open(&c, create, hsm, err, sizeof(err));
	if (ret == 0)
		ret = pkcs11_kek(*hsm, kek);
	if (ret != 0) {
		say(LOG_ERROR,
		    "the key-encryption key in the PKCS#11 token is not "
		    "usable: %s (docs/keys.md, \"In a hardware security "
		    "module\")",
		    err[0] ? err : keyring_strerror(ret));
		pkcs11_close(*hsm);
		*hsm = NULL;
	}
	return ret;
}

int server_keys_load_kek(const struct settings *s, bool create,
			 struct pkcs11 **hsm, struct keyring_kek **kek)
{
	char err[KEYRING_ERR_BYTES] = "";
	struct stat st;
	int ret;

	*hsm = NULL;
	if (s->signing_pkcs11 && !s->kek_pkcs11_module[0]) {
		say(LOG_ERROR,
		    "signing_pkcs11 = 1 needs a PKCS#11 token: set "
		    "kek_pkcs11_module (and its kek_pkcs11_* settings), or "
		    "signing_pkcs11 = 0 (docs/keys.md, \"Signing inside the "
		    "token\")");
		return -EINVAL;
	}
	if (s->kek_pkcs11_module[0])
		return load_token_kek(s, create, hsm, kek);
	if (getenv(KEYRING_KEK_ENV)) {
		ret = keyfile_kek_from_env(KEYRING_KEK_ENV, kek, err,
					   sizeof(err));
		if (ret != 0)
			say(LOG_ERROR, "%s: %s", KEYRING_KEK_ENV, err);
		return ret;
	}
	if (stat(s->kek_file, &st) != 0 && errno == ENOENT) {
		if (!create) {
			say(LOG_ERROR,
			    "no key-encryption key: %s does not "
			    "exist and %s is not set (docs/keys.md)",
			    s->kek_file, KEYRING_KEK_ENV);
			return -ENOENT;
		}
		ret = keyfile_kek_generate(s->kek_file, err, sizeof(err));
		if (ret != 0) {
			say(LOG_ERROR, "%s", err);
			return ret;
		}
		say(LOG_WARN,
		    "created the key-encryption key %s (mode "
		    "0600); back it up apart from the data directory",
		    s->kek_file);
	}
	ret = keyfile_kek_load(s->kek_file, kek, err, sizeof(err));
	if (ret != 0)
		say(LOG_ERROR, "%s", err);
	return ret;
}

/* DATA/origin: "tpwallet/<16 hex>", chosen once, then never changed: it
 * names the log in every checkpoint, across key rotations. */
static int load_origin(const char *data_dir, bool create, char *out, size_t cap)
{
	char path[4200];
	int ret = 0;

	snprintf(path, sizeof(path), "%s/%s", data_dir, DATADIR_ORIGIN);
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(out, (int)cap, f))
			ret = -EINVAL;
		fclose(f);
		out[strcspn(out, "\r\n")] = '\0';
		if (ret == 0 && !note_name_valid(out, strlen(out)))
			ret = -EINVAL;
		if (ret != 0)
			say(LOG_ERROR, "%s is not a valid origin", path);
		return ret;
	}
	if (!create) {
		say(LOG_ERROR, "%s is missing", path);
		return -ENOENT;
	}
	u8 id[8];
	randombytes_buf(id, sizeof(id));
	char hex[17];
	sodium_bin2hex(hex, sizeof(hex), id, sizeof(id));
	snprintf(out, cap, "tpwallet/%s", hex);
	/* A crash leaves no origin or the whole one, never an empty file. */
	char line[ORIGIN_BYTES_MAX + 2];
	int n = snprintf(line, sizeof(line), "%s\n", out);
	ret = fsfile_replace(data_dir, DATADIR_ORIGIN, line, (size_t)n);
	if (ret != 0)
		say(LOG_ERROR, "cannot write %s: %s", path, tpw_strerror(-ret));
	return ret;
}

int server_keys_open(const struct settings *s, bool create,
		     struct server_keys *out)
{
	char dir[4200], err[KEYRING_ERR_BYTES] = "";
	int64_t now = (int64_t)time(NULL);
	int ret;

	memset(out, 0, sizeof(*out));
	ret = server_keys_load_kek(s, create, &out->hsm, &out->kek);
	if (ret != 0)
		goto fail;
	ret = load_origin(s->data_dir, create, out->origin,
			  sizeof(out->origin));
	if (ret != 0)
		goto fail;
	snprintf(dir, sizeof(dir), "%s/" DATADIR_KEYS, s->data_dir);
	ret = fsdir_make(dir);
	if (ret < 0) {
		say(LOG_ERROR, "cannot create %s: %s", dir, tpw_strerror(-ret));
		goto fail;
	}
	ret = keyfile_open_keyring(dir, out->kek, &out->keyring, err,
				   sizeof(err));
	if (ret != 0) {
		say(LOG_ERROR, "%s: %s", dir, err);
		goto fail;
	}
	if (out->hsm) {
		/* Keys still sealed by an older version of the token's KEK
		 * (a rotation cut short) are re-sealed by the newest. */
		size_t n = 0;
		out->hsm_version = pkcs11_current_version(out->hsm);
		ret = keyring_rekey(out->keyring, out->kek, &n, err,
				    sizeof(err));
		if (ret != 0) {
			say(LOG_ERROR,
			    "cannot re-seal the keys under version %u of the "
			    "token's key-encryption key: %s",
			    out->hsm_version, err);
			goto fail;
		}
		if (n)
			say(LOG_INFO,
			    "%zu key(s) re-sealed under version %u of the "
			    "token's key-encryption key",
			    n, out->hsm_version);
	}
	if (!keyring_current_signer(out->keyring, now)) {
		struct keyring_rotation rot;
		ret = keyring_rotate(out->keyring, now,
				     KEYRING_OVERLAP_DEFAULT_S, &rot, err,
				     sizeof(err));
		if (ret != 0) {
			say(LOG_ERROR,
			    "cannot create a signing "
			    "key: %s",
			    err);
			goto fail;
		}
	}
	return 0;
fail:
	server_keys_close(out);
	return ret;
}

void server_keys_close(struct server_keys *k)
{
	keyring_free(k->keyring);
	keyring_kek_free(k->kek);
	pkcs11_close(k->hsm);
	k->keyring = NULL;
	k->kek = NULL;
	k->hsm = NULL;
}

int server_keys_sign_note(void *ctx, const char *text, size_t len, char *note,
			  size_t cap, size_t *note_len)
{
	struct server_keys *k = ctx;
	struct note_signer signers[1 + SERVER_KEYS_RETIRED_SIGNERS_MAX];
	const struct note_signer *list[1 + SERVER_KEYS_RETIRED_SIGNERS_MAX];
	int64_t now = (int64_t)time(NULL);
	size_t n = 0;
	int ret;

	ret = keyring_note_signer(k->keyring, now, k->origin, strlen(k->origin),
				  &signers[0]);
	if (ret != 0)
		return ret;
	/* A retired key that cannot be opened costs its signature only. */
	if (keyring_note_signers_retired(
		    k->keyring, now, k->origin, strlen(k->origin), &signers[1],
		    SERVER_KEYS_RETIRED_SIGNERS_MAX, &n) != 0)
		n = 0;
	/* A rotation between the two calls makes the current key one of
	 * the retired ones too: each key signs once. */
	size_t m = 0;
	list[m++] = &signers[0];
	for (size_t i = 1; i <= n; i++)
		if (memcmp(signers[i].pub.public_key, signers[0].pub.public_key,
			   32) != 0)
			list[m++] = &signers[i];
	ret = note_sign(text, len, list, m, note, cap, note_len);
	for (size_t i = 0; i <= n; i++)
		note_signer_clear(&signers[i]);
	return ret;
}

/* The leaf index of the key event that journaled kid, if it is among the
 * first size leaves. */
static bool key_event_index(struct engine *e, const struct audit *a,
			    const char *kid, u64 size, u64 *index)
{
	u64 ts = 0;
	bool found = false;

	engine_read_begin(e);
	const struct auth *au = engine_auth(e);
	for (u32 i = auth_key_event_count(au); i-- > 0 && !found;) {
		struct auth_key_event ev;
		auth_key_event_at(au, i, &ev, &ts);
		found = ev.kind == AUTH_KEY_CREATED &&
			strncmp(ev.kid, kid, sizeof(ev.kid)) == 0;
	}
	engine_read_end(e);
	struct audit_leaf leaf;
	return found && audit_index_of_timestamp(a, ts, index) == 0 &&
	       *index < size && audit_leaf(a, *index, &leaf) == 0 &&
	       leaf.timestamp == ts;
}

size_t server_keys_checkpoint_extensions(void *ctx, const struct audit *a,
					 u64 size, char *buf, size_t cap)
{
	struct server_keys *k = ctx;
	static _Thread_local struct keyring_key keys[KEYRING_KEYS_MAX];
	int64_t now = (int64_t)time(NULL);
	struct keyring_key cur;
	bool retired = false;
	u64 index;

	if (!k->e || keyring_current_copy(k->keyring, now, &cur) != 0)
		return 0;
	size_t n = keyring_keys_copy(k->keyring, keys, KEYRING_KEYS_MAX);
	for (size_t i = 0; i < n; i++)
		retired |= keys[i].retire_at <= now && keys[i].expires_at > now;
	if (!retired || !key_event_index(k->e, a, cur.kid, size, &index))
		return 0;
	struct note_verifier v = {0};
	char vkey[NOTE_VERIFIER_KEY_BYTES_MAX + 1];
	size_t vlen;
	snprintf(v.name, sizeof(v.name), "%s", k->origin);
	v.name_len = strlen(v.name);
	memcpy(v.public_key, cur.pub, sizeof(v.public_key));
	v.key_id = note_key_id(v.name, v.name_len, v.public_key);
	if (note_verifier_format(&v, vkey, sizeof(vkey), &vlen) != 0)
		return 0;
	int len = snprintf(buf, cap, SERVER_KEYS_ANNOUNCE " %llu %.*s\n",
			   (unsigned long long)index, (int)vlen, vkey);
	return len > 0 && (size_t)len < cap ? (size_t)len : 0;
}

int server_admin_open(const struct settings *s, const char *audience,
		      struct api_authz **out, bool *created)
{
	char err[512];
	int ret = api_authz_admin_ensure(s->data_dir, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "tpwallet: administrator credential: %s\n",
			err);
		return ret;
	}
	if (created)
		*created = ret == 1;
	ret = api_authz_open(out, s->data_dir, audience, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "tpwallet: administrator credential: %s\n",
			err);
		return ret;
	}
	return 0;
}

/* The journal entry of the current key, unless the journal holds it;
 * not_after: until when the keys it replaced verify (0: not known). */
static int journal_current(struct server_keys *k, struct engine *e,
			   int64_t not_after)
{
	struct keyring_key cur;
	int64_t now = (int64_t)time(NULL);
	if (keyring_current_copy(k->keyring, now, &cur) != 0)
		return -ENOKEY;
	bool known = false;
	engine_read_begin(e);
	const struct auth *a = engine_auth(e);
	for (u32 i = auth_key_event_count(a); i-- > 0 && !known;) {
		struct auth_key_event ev;
		auth_key_event_at(a, i, &ev, NULL);
		known = strncmp(ev.kid, cur.kid, sizeof(ev.kid)) == 0;
	}
	engine_read_end(e);
	if (known)
		return 0;
	/* Until when the keys it replaced verify, when the caller does not
	 * know: the newest older key's end, as the rotation set it.  So an
	 * upkeep that journals a key a rotation request made (racing it)
	 * writes the same overlap the request would. */
	if (not_after == 0) {
		struct keyring_key all[KEYRING_KEYS_MAX];
		size_t n = keyring_keys_copy(k->keyring, all, KEYRING_KEYS_MAX);
		int64_t newest = INT64_MIN;
		for (size_t i = 0; i < n; i++)
			if (all[i].activate_at < cur.activate_at &&
			    all[i].activate_at > newest &&
			    all[i].expires_at != KEYRING_NEVER) {
				newest = all[i].activate_at;
				not_after = all[i].expires_at;
			}
	}
	struct {
		struct command_header h;
		struct auth_key_event ev;
	} cmd = {0};
	cmd.h.kind = AUTH_CMD_KEY;
	cmd.h.ext_bytes = sizeof(cmd.ev);
	snprintf(cmd.ev.kid, sizeof(cmd.ev.kid), "%s", cur.kid);
	memcpy(cmd.ev.pub, cur.pub, 32);
	cmd.ev.not_before = cur.activate_at;
	cmd.ev.not_after = not_after;
	cmd.ev.kind = AUTH_KEY_CREATED;
	u32 result = 0;
	struct engine_request r = {.op = ENGINE_COMMAND,
				   .count = 0,
				   .payload_bytes = sizeof(cmd),
				   .events = &cmd,
				   .results = &result};
	return engine_execute(e, &r);
}

int server_keys_journal(struct server_keys *k, struct engine *e)
{
	/* A cluster follower journals nothing: the upkeep does it once the
	 * node is the writer (engine_options.became_writer). */
	if (engine_is_follower(e))
		return 0;
	return journal_current(k, e, 0); /* the overlap: not known here */
}

/* A newer version of the KEK in the token (`tpwallet keys init-hsm
 * --new-version`, seen by the last ping): every key is re-sealed under
 * it while the server serves; the older versions stay in the token. */
static void follow_token_kek(struct server_keys *k)
{
	char err[KEYRING_ERR_BYTES] = "";
	unsigned v = pkcs11_current_version(k->hsm);
	struct keyring_kek *next = NULL;
	size_t n = 0;

	if (v == k->hsm_version)
		return;
	int ret = pkcs11_kek(k->hsm, &next);
	if (ret == 0)
		ret = keyring_rekey(k->keyring, next, &n, err, sizeof(err));
	if (ret != 0) {
		log_at(LOG_ERROR,
		       "cannot re-seal the keys under the token's new "
		       "key-encryption key (tried again in a minute)",
		       LOG_NUM("version", v), LOG_STR("reason", err),
		       LOG_STR("code", keyring_strerror(ret)));
		keyring_kek_free(next);
		return;
	}
	keyring_kek_free(k->kek);
	k->kek = next;
	log_at(LOG_INFO,
	       "key-encryption key rotated in the token: every key re-sealed "
	       "under the new version",
	       LOG_NUM("version", v), LOG_NUM("from_version", k->hsm_version),
	       LOG_NUM("keys", n));
	k->hsm_version = v;
}

int server_keys_maintain(struct server_keys *k, struct engine *e,
			 int64_t period_s, int64_t overlap_s)
{
	char err[KEYRING_ERR_BYTES] = "";
	int64_t now = (int64_t)time(NULL);
	int64_t not_after = 0;
	int ret = 0;

	/* The token that holds the KEK: checked every minute, so that
	 * tpwallet_hsm_up says the truth between signatures; a change of
	 * state is logged once. */
	if (k->hsm) {
		bool up = pkcs11_ping(k->hsm, err, sizeof(err)) == 0;
		if (!up && !k->hsm_down)
			log_at(LOG_ERROR,
			       "the token that holds the key-encryption key "
			       "does not answer: signing answers 503",
			       LOG_STR("reason", err));
		else if (up && k->hsm_down)
			log_at(LOG_INFO,
			       "the token that holds the key-encryption key "
			       "answers again");
		k->hsm_down = !up;
		if (up)
			follow_token_kek(k);
	}
	if (period_s > 0 &&
	    keyring_due_for_rotation(k->keyring, now, period_s)) {
		struct keyring_rotation rot;
		ret = keyring_rotate(k->keyring, now, overlap_s, &rot, err,
				     sizeof(err));
		if (ret != 0) {
			log_at(LOG_ERROR, "scheduled key rotation failed",
			       LOG_STR("reason", err));
			return ret;
		}
		log_at(LOG_INFO, "signing key rotated on schedule",
		       LOG_STR("kid", rot.created.kid),
		       LOG_NUM("overlap_s", (u64)overlap_s));
		not_after = now + overlap_s;
		if (rot.n_dropped) {
			char kids[KEYRING_KEYS_MAX * (KEYRING_KID_BYTES + 1) +
				  1];
			keyring_rotation_dropped_text(&rot, kids, sizeof(kids));
			log_at(LOG_WARN,
			       "keys dropped to make room for the rotation",
			       LOG_NUM("count", rot.n_dropped),
			       LOG_STR("kids", kids));
		}
	}
	/* Journal the current key if the journal does not hold it yet: the
	 * one just rotated, or one whose entry failed (by schedule or on
	 * request). */
	int jr = engine_is_follower(e) ? 0 : journal_current(k, e, not_after);
	if (jr != 0)
		log_at(LOG_WARN, "cannot journal the signing key",
		       LOG_NUM("errno", -jr));
	size_t pruned = 0;
	if (keyring_prune(k->keyring, now, &pruned, err, sizeof(err)) != 0)
		log_at(LOG_WARN, "cannot remove expired keys",
		       LOG_STR("reason", err));
	else if (pruned)
		log_at(LOG_INFO, "expired keys removed",
		       LOG_NUM("count", pruned));
	return ret;
}
