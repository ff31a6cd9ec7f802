/*
 * cmd_doctor.c - `tpwallet doctor`: what a support engineer asks in the
 * first minutes, answered offline from the data directory.
 *
 * Every check reads and never writes, so it is safe while a server runs
 * on the directory (the journal is read with a journal_reader, which
 * takes no lock; the keyring is opened read-only).  Each check adds one
 * or more results: a status (ok, warn: attention but not urgent, action:
 * someone must act now), a name and a one-line detail.  Details name
 * paths, modes, kids, seqs, offsets and dates, never a secret: the KEK
 * and the administrator's token are loaded or stat'ed, never printed.
 *
 * Checks run in the order of the table `checks` below; later ones use
 * what earlier ones found (the KEK opens the keyring, the journal's
 * record count bounds the audit checkpoints and the snapshots).  A new
 * check (TLS certificates, client policy) is one function and one line
 * in that table.
 *
 * Output: one line per result and a summary on stdout, or --json.
 * Progress of long reads goes to stderr about once a second.  Exit
 * status: 0 nothing needs action, 1 something does, 2 usage, 3 the
 * data directory does not exist.
 */
#include "api/authz.h"
#include "api/buildinfo.h"
#include "api/tls.h"
#include "cli/cli.h"
#include "cli/serverkeys.h"
#include "core/clock.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/command.h"
#include "core/pstate.h"
#include "crypto/b64url.h"
#include "crypto/keyring.h"
#include "log/keyfile.h"
#include "log/pkcs11.h"
#include "crypto/note.h"
#include "engine/audit.h"
#include "log/archive.h"
#include "log/datadir.h"
#include "log/journal.h"
#include "log/journal_reader.h"
#include "log/seqdir.h"
#include "log/snapshot.h"
#include "log/store.h"
#include "core/strerror.h"
#include "net/http.h"
#include "api/probe.h"
#include "engine/trace.h"
#include <netdb.h>
#include <sys/socket.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define DOCTOR_EXIT_ACTION 1
#define DOCTOR_EXIT_ABSENT 3

#define RESULTS_MAX 96u
/* The expiry list: two TLS certificates, the client CA, a remote one, the
 * current signing key, PREVIOUS_EXPIRIES_LISTED previous keys and one line for
 * the rest, the KEK, ORG_EXPIRIES_LISTED organisation certificates and
 * one line for the rest. */
#define EXPIRIES_MAX		 24u
#define PREVIOUS_EXPIRIES_LISTED 4u
#define ORG_EXPIRIES_LISTED	 6u
/* doctor --url: the connect and the handshake, each. */
#define REMOTE_TIMEOUT_MS    10000u
#define DETAIL_BYTES	     1024u
#define PATH_BYTES_MAX	     (PATH_MAX + 64)
#define WARN_DAYS_DEFAULT    14u
#define WARN_DAYS_MAX	     3660u
#define PROGRESS_INTERVAL_MS 1000u
/* A record half-written when the journal was listed is whole a moment
 * later: look again this many times before calling the end a torn tail. */
#define TAIL_RETRIES  3u
#define TAIL_RETRY_MS 100u
/* Past this many records without a snapshot, a restart replays them all. */
#define SNAPSHOT_SUGGESTED_RECORDS 1000000u
/* Previous keys named one by one; the rest are counted. */
#define PREVIOUS_KEYS_LISTED 4u
/* DATA/audit/checkpoints: one a second for years is under 2^28. */
#define CHECKPOINTS_SCAN_MAX (1u << 28)
/* Entries unsigned longer than this are a server that cannot sign (one
 * that runs signs about every second). */
#define UNSIGNED_AGE_MAX_S 10u
/* Overrides in force listed one a line (at most 64 are open). */
#define OVERRIDES_LISTED 8u

enum status {
	STATUS_OK,
	STATUS_WARN,
	STATUS_ACTION,
};

static const char *const status_names[] = {"ok", "warn", "action"};

struct result {
	enum status status;
	const char *name; /* static storage */
	char detail[DETAIL_BYTES];
};

/* One line of the expiry list (check_expiries): when, and what. */
struct expiry {
	int64_t at;   /* INT64_MIN: unreadable (first); INT64_MAX: no end */
	size_t order; /* ties keep the order they were added in */
	enum status status;
	const char *name; /* static storage */
	char detail[DETAIL_BYTES];
};

struct doctor {
	struct settings s;
	unsigned warn_days;
	int64_t now;
	bool json;

	/* What the checks found, for the checks after them. */
	bool stop;   /* no data directory here: nothing else to check */
	bool absent; /* ... because it does not exist (exit 3) */
	struct keyring_kek *kek;
	struct pkcs11 *hsm; /* the token, when the KEK is in one */

	struct journal_reader *rd; /* kept open to catch up with a server */
	bool journal_present;	   /* DATA/journal could be read */
	bool journal_whole; /* read to its end (or a torn tail), no damage */
	u64 records, last_seq, bytes, last_ts_ns;

	/* Organisation principals registered by certificate (journal kind
	 * 24 with a not_after): the ORG_EXPIRIES_LISTED that expire first,
	 * and how many there are. */
	struct {
		char name[AUTH_NAME_BYTES + 1];
		char id[JOSE_B64_32_BYTES];
		int64_t not_after;
	} orgs[ORG_EXPIRIES_LISTED];
	size_t norgs, orgs_dated;

	/* The client-version policy, rebuilt from the journal's commands
	 * as it is read; and the client to diagnose (--client-version...). */
	struct pstate *ps;
	/* The authorization state beside it (its commands without ledger
	 * events): an approval applies a policy (core/admin.h). */
	struct auth *auth;
	/* The last break-glass carried out (ns; 0: none), its request and
	 * requester, and how many there were. */
	u64 glass_at, glass_request;
	u8 glass_by[32];
	unsigned glasses;
	char client_version[300];
	const char *channel, *country, *languages;
	/* --server: the running server asked for its probes' results. */
	const char *server;
	/* --url: a TLS endpoint (a gateway in front, or the server) whose
	 * certificate joins the expiry list; --cacert: what it must verify
	 * against (NULL: the system's CAs). */
	const char *url, *cacert;

	/* What expires, gathered by the checks, reported soonest first. */
	struct expiry expiries[EXPIRIES_MAX];
	size_t nexpiries;

	struct result results[RESULTS_MAX];
	size_t nresults;
};

/* ---- results ------------------------------------------------------------- */

static void report(struct doctor *d, enum status st, const char *name,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report(struct doctor *d, enum status st, const char *name,
		   const char *fmt, ...)
{
	va_list ap;

	/* The table is fixed, so this only fails when a check is added
	 * without raising RESULTS_MAX: keep the action visible. */
	if (d->nresults == RESULTS_MAX) {
		if (st > d->results[RESULTS_MAX - 1].status)
			d->results[RESULTS_MAX - 1].status = st;
		return;
	}
	struct result *r = &d->results[d->nresults++];
	r->status = st;
	r->name = name;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	/* One line, whatever a path held. */
	for (char *p = r->detail; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* An entry of the expiry list (reported by check_expiries). */
static void expires(struct doctor *d, int64_t at, enum status st,
		    const char *name, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void expires(struct doctor *d, int64_t at, enum status st,
		    const char *name, const char *fmt, ...)
{
	va_list ap;

	if (d->nexpiries == EXPIRIES_MAX)
		return; /* EXPIRIES_MAX counts every producer */
	struct expiry *x = &d->expiries[d->nexpiries++];
	x->at = at;
	x->order = d->nexpiries - 1;
	x->status = st;
	x->name = name;
	va_start(ap, fmt);
	vsnprintf(x->detail, sizeof(x->detail), fmt, ap);
	va_end(ap);
}

/* ---- formatting ---------------------------------------------------------- */

/* snprintf into a detail-sized buffer: a long path is cut, not refused. */
static void put(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void put(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000u,
			      .tv_nsec = (long)(ms % 1000u) * 1000000L};
	nanosleep(&ts, NULL);
}

/* "2027-02-24", or with_time "2027-02-24 13:05 UTC". */
static const char *fmt_date(char *buf, size_t cap, int64_t t, bool with_time)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == KEYRING_NEVER) {
		snprintf(buf, cap, "never");
		return buf;
	}
	if (!gmtime_r(&tt, &tm) ||
	    strftime(buf, cap, with_time ? "%Y-%m-%d %H:%M UTC" : "%Y-%m-%d",
		     &tm) == 0)
		snprintf(buf, cap, "%" PRId64, t);
	return buf;
}

static const char *fmt_bytes(char *buf, size_t cap, u64 n)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};

	if (n < 1024) {
		snprintf(buf, cap, "%llu bytes", (unsigned long long)n);
		return buf;
	}
	double v = (double)n / 1024.0;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}

static const char *fmt_age(char *buf, size_t cap, int64_t s)
{
	if (s < 0)
		snprintf(buf, cap, "in the future (check the clock)");
	else if (s < 120)
		snprintf(buf, cap, "%" PRId64 " s old", s);
	else if (s < 2 * 3600)
		snprintf(buf, cap, "%" PRId64 " min old", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, cap, "%" PRId64 " h old", s / 3600);
	else
		snprintf(buf, cap, "%" PRId64 " days old", s / 86400);
	return buf;
}

/* ---- data directory ------------------------------------------------------ */

static void check_data_dir(struct doctor *d)
{
	const char *name = "data directory";
	const char *dir = d->s.data_dir;
	struct stat st;

	int err = stat(dir, &st) == 0 ? 0 : errno;
	if (err != 0 || !S_ISDIR(st.st_mode)) {
		bool gone = err == 0 || err == ENOENT || err == ENOTDIR;
		d->stop = true;
		d->absent = gone;
		if (gone)
			report(d, STATUS_ACTION, name,
			       "%s does not exist or is not a directory "
			       "(--data, TPWALLET_DATA or `data` in the "
			       "config file)",
			       dir);
		else
			report(d, STATUS_ACTION, name, "%s: %s", dir,
			       tpw_strerror(err));
		return;
	}
	if (datadir_marker_check(dir) != 0) {
		d->stop = true;
		report(d, STATUS_ACTION, name,
		       "%s is not a tpwallet data directory (no %s): wrong "
		       "path?",
		       dir, DATADIR_MARKER);
		return;
	}
	unsigned mode = (unsigned)st.st_mode & 07777;
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		report(d, STATUS_ACTION, name,
		       "%s is mode %04o: others can change the journal and "
		       "keys (chmod 700 %s)",
		       dir, mode, dir);
		return;
	}
	/* journal, snapshots, audit, keys: the server refuses each too. */
	char lax[DETAIL_BYTES];
	if (datadir_check_modes(dir, lax, sizeof(lax)) == -EPERM) {
		report(d, STATUS_ACTION, name,
		       "%s; the server refuses to start", lax);
		return;
	}
	if (st.st_uid != geteuid()) {
		report(d, STATUS_WARN, name,
		       "%s (mode %04o) belongs to uid %u, this is uid %u: run "
		       "doctor as the server's user, or checks of ownership "
		       "fail",
		       dir, mode, (unsigned)st.st_uid, (unsigned)geteuid());
		return;
	}
	report(d, STATUS_OK, name, "%s (mode %04o)", dir, mode);
}

/* ---- key-encryption key -------------------------------------------------- */

static void kek_id_hex(const struct keyring_kek *kek, char out[17])
{
	unsigned char id[KEYRING_KEK_ID_BYTES];

	keyring_kek_id(kek, id);
	sodium_bin2hex(out, 17, id, 8);
}

/* The KEK in a PKCS#11 token (kek_pkcs11_module): reachable, its key,
 * the mechanisms, and where the signing keys live. */
static void check_token_kek(struct doctor *d)
{
	const char *name = "key-encryption key";
	char err[KEYRING_ERR_BYTES] = "", id[17];
	struct pkcs11_config c;
	struct pkcs11_stats st;
	int ret;

	server_keys_pkcs11_config(&d->s, &c);
	ret = pkcs11_open(&c, false, &d->hsm, err, sizeof(err));
	if (ret == 0)
		ret = pkcs11_kek(d->hsm, &d->kek);
	if (ret != 0) {
		report(d, STATUS_ACTION, name,
		       "in a PKCS#11 token, not reachable: %s; the server "
		       "cannot start or sign (docs/keys.md)",
		       err[0] ? err : keyring_strerror(ret));
		return;
	}
	pkcs11_stats(d->hsm, &st);
	kek_id_hex(d->kek, id);
	report(d, STATUS_OK, name,
	       "in token '%s' (module %s), key '%s' version %u, reachable, "
	       "KEK id %s...; CKM_AES_GCM %s, CKM_EDDSA %s",
	       st.token[0] ? st.token : d->s.kek_pkcs11_slot, st.module,
	       st.key_label, pkcs11_current_version(d->hsm), id,
	       st.gcm_supported ? "yes" : "no",
	       st.eddsa_supported ? "yes" : "no");
}

/* Where the keys of kr live: in the token (signing_pkcs11), sealed by
 * the token's KEK, or sealed by the file KEK. */
static void report_home(struct doctor *d, const struct keyring *kr)
{
	const char *name = "signing keys' home";
	bool current = false;
	size_t n = keyring_count(kr);
	size_t in_token = keyring_count_in_token(kr, d->now, &current);
	struct pkcs11_stats st = {0};

	if (!d->kek)
		return; /* verify only: nothing is opened */
	if (!keyring_kek_in_token(d->kek)) {
		report(d, STATUS_OK, name,
		       "sealed in DATA/keys by the file KEK "
		       "(XChaCha20-Poly1305); each signature opens one in the "
		       "server's memory");
		return;
	}
	if (d->s.signing_pkcs11 || in_token) {
		report(d, STATUS_OK, name,
		       "in the token: %zu of %zu key(s) generated there "
		       "(CKM_EC_EDWARDS_KEY_PAIR_GEN, not extractable), the "
		       "current one %s; they sign there (CKM_EDDSA) and "
		       "DATA/keys holds their CKA_ID, no private byte%s",
		       in_token, n, current ? "among them" : "not",
		       d->s.signing_pkcs11
			       ? " (signing_pkcs11 = 1: each new key is made "
				 "there; the others stay sealed by the token's "
				 "KEK until they expire)"
			       : " (signing_pkcs11 = 0: new keys are sealed by "
				 "the token's KEK)");
		return;
	}
	if (d->hsm)
		pkcs11_stats(d->hsm, &st);
	report(d, STATUS_OK, name,
	       "sealed in DATA/keys by the token's KEK (AES-GCM in the "
	       "token); each signature opens one in the token and signs in "
	       "the server's memory%s",
	       st.eddsa_supported && st.edwards_keygen_supported
		       ? " (the token offers EdDSA: signing_pkcs11 = 1 would "
			 "generate and use new keys in it)"
		       : "");
}

static void check_kek(struct doctor *d)
{
	const char *name = "key-encryption key";
	const char *path = d->s.kek_file;
	char err[KEYRING_ERR_BYTES] = "", id[17];
	struct stat st;
	int ret;

	if (d->s.kek_pkcs11_module[0]) {
		check_token_kek(d);
		return;
	}
	if (d->s.signing_pkcs11)
		report(d, STATUS_ACTION, "signing keys' home",
		       "signing_pkcs11 = 1 needs kek_pkcs11_module (a "
		       "PKCS#11 token): the server refuses to start");
	if (getenv(KEYRING_KEK_ENV)) {
		ret = keyfile_kek_from_env(KEYRING_KEK_ENV, &d->kek, err,
					   sizeof(err));
		if (ret != 0) {
			report(d, STATUS_ACTION, name, "%s: %s",
			       KEYRING_KEK_ENV,
			       err[0] ? err : keyring_strerror(ret));
			return;
		}
		kek_id_hex(d->kek, id);
		report(d, STATUS_OK, name,
		       "from %s (it wins over %s), KEK id %s...",
		       KEYRING_KEK_ENV, path, id);
		expires(d, INT64_MAX, STATUS_OK, "key-encryption key age",
			"from %s: its age is not known here; a KEK has no "
			"end date (docs/keys.md)",
			KEYRING_KEK_ENV);
		return;
	}
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			report(d, STATUS_ACTION, name,
			       "%s does not exist and %s is not set: the "
			       "server cannot start or sign (docs/keys.md)",
			       path, KEYRING_KEK_ENV);
		else
			report(d, STATUS_ACTION, name, "%s: %s", path,
			       tpw_strerror(errno));
		return;
	}
	unsigned mode = (unsigned)st.st_mode & 07777;
	if (!S_ISREG(st.st_mode)) {
		report(d, STATUS_ACTION, name,
		       "%s is not a regular file (a symbolic link is "
		       "refused)",
		       path);
		return;
	}
	if (mode & 077) {
		report(d, STATUS_ACTION, name,
		       "%s is mode %04o: others may read the key; the server "
		       "refuses it (chmod 600 %s)",
		       path, mode, path);
		return;
	}
	ret = keyfile_kek_load(path, &d->kek, err, sizeof(err));
	if (ret != 0) {
		report(d, STATUS_ACTION, name, "%s",
		       err[0] ? err : keyring_strerror(ret));
		return;
	}
	kek_id_hex(d->kek, id);
	report(d, STATUS_OK, name, "%s (mode %04o), KEK id %s...", path, mode,
	       id);
	char since[40], age[48];
	expires(d, INT64_MAX, STATUS_OK, "key-encryption key age",
		"%s: %s (written %s); replace it by hand if your policy "
		"asks (docs/keys.md)",
		path, fmt_age(age, sizeof(age), d->now - (int64_t)st.st_mtime),
		fmt_date(since, sizeof(since), (int64_t)st.st_mtime, false));
}

/* ---- signing keys -------------------------------------------------------- */

/* One previous key, in a few words. */
static void describe_previous(const struct keyring_key *k, int64_t now,
			      char *buf, size_t cap)
{
	char date[40];

	if (k->activate_at > now)
		snprintf(buf, cap, "%.4s... signs from %s", k->kid,
			 fmt_date(date, sizeof(date), k->activate_at, true));
	else if (k->retire_at > now)
		snprintf(buf, cap,
			 "%.4s... signs too (an interrupted rotation; the "
			 "next one retires it)",
			 k->kid);
	else if (k->expires_at == KEYRING_NEVER)
		snprintf(buf, cap, "%.4s... verifies, no end set", k->kid);
	else if (k->expires_at > now)
		snprintf(buf, cap, "%.4s... verifies until %s", k->kid,
			 fmt_date(date, sizeof(date), k->expires_at, true));
	else
		snprintf(buf, cap, "%.4s... expired %s (the server removes it)",
			 k->kid,
			 fmt_date(date, sizeof(date), k->expires_at, false));
}

/* Does k stop verifying within the warning window (and not yet)? */
static bool stops_soon(const struct doctor *d, const struct keyring_key *k)
{
	return k->expires_at != KEYRING_NEVER && k->expires_at > d->now &&
	       k->expires_at - d->now <= (int64_t)d->warn_days * 86400;
}

/* Every key in its verifying window that stops within --warn-days, with
 * when it stops: what it signed (tokens, revocation lists, checkpoints)
 * stops verifying then. */
static void check_verifying_ends(struct doctor *d, const struct keyring *kr)
{
	char list[DETAIL_BYTES] = "", date[40];
	size_t n = 0, used = 0;

	for (size_t i = 0; i < keyring_count(kr) && i < KEYRING_KEYS_MAX; i++) {
		const struct keyring_key *k = keyring_key_at(kr, i);
		if (!stops_soon(d, k))
			continue;
		int w = snprintf(
			list + used, sizeof(list) - used,
			"%s%.4s... at %s (in %lld h)", n ? "; " : "", k->kid,
			fmt_date(date, sizeof(date), k->expires_at, true),
			(long long)((k->expires_at - d->now + 3599) / 3600));
		if (w > 0 && (size_t)w < sizeof(list) - used)
			used += (size_t)w;
		n++;
	}
	if (n)
		report(d, STATUS_WARN, "key verifying ends",
		       "%zu key(s) stop verifying within %u days: %s; what "
		       "they signed stops verifying then (docs/keys.md)",
		       n, d->warn_days, list);
	else
		report(d, STATUS_OK, "key verifying ends",
		       "no key stops verifying within %u days", d->warn_days);
}

static void check_previous_keys(struct doctor *d, const struct keyring *kr,
				const struct keyring_key *cur)
{
	char list[DETAIL_BYTES] = "", one[160];
	size_t listed = 0, others = 0, used = 0;

	for (size_t i = 0; i < keyring_count(kr) && i < KEYRING_KEYS_MAX; i++) {
		const struct keyring_key *k = keyring_key_at(kr, i);
		if (cur && strcmp(k->kid, cur->kid) == 0)
			continue;
		if (listed == PREVIOUS_KEYS_LISTED) {
			others++;
			continue;
		}
		describe_previous(k, d->now, one, sizeof(one));
		int n = snprintf(list + used, sizeof(list) - used, "%s%s",
				 listed ? "; " : "", one);
		if (n > 0 && (size_t)n < sizeof(list) - used)
			used += (size_t)n;
		listed++;
	}
	if (listed == 0)
		report(d, STATUS_OK, "previous keys", "none");
	else if (others)
		report(d, STATUS_OK, "previous keys", "%s; and %zu more", list,
		       others);
	else
		report(d, STATUS_OK, "previous keys", "%s", list);
}

/* The signing keys in the expiry list (docs/keys.md, "Rotation and the
 * overlap window"): the current key's scheduled rotation, which the
 * server makes by itself (overdue: warn, as `signing keys` says), and
 * when the previous keys stop verifying (planned when they were
 * retired: listed, not warned about here; `key verifying ends` does). */
static void keys_expiries(struct doctor *d, const struct keyring *kr,
			  const struct keyring_key *cur)
{
	char since[40], due_s[40], age[48];
	size_t listed = 0, more = 0;

	if (cur) {
		int64_t period_s = (int64_t)d->s.key_rotation_days * 86400;
		int64_t due =
			period_s ? cur->activate_at + period_s : INT64_MAX;
		expires(d, due, due <= d->now ? STATUS_WARN : STATUS_OK,
			"signing key rotation",
			"current %.4s... (%s, since %s) rotates %s%s", cur->kid,
			fmt_age(age, sizeof(age), d->now - cur->activate_at),
			fmt_date(since, sizeof(since), cur->activate_at, false),
			period_s ? "at " : "never: key_rotation_days = 0",
			period_s ? fmt_date(due_s, sizeof(due_s), due, true)
				 : "");
	}
	for (size_t i = 0; i < keyring_count(kr) && i < KEYRING_KEYS_MAX; i++) {
		const struct keyring_key *k = keyring_key_at(kr, i);
		if ((cur && strcmp(k->kid, cur->kid) == 0) ||
		    k->expires_at == KEYRING_NEVER || k->expires_at <= d->now)
			continue;
		if (listed == PREVIOUS_EXPIRIES_LISTED) {
			more++;
			continue;
		}
		expires(d, k->expires_at, STATUS_OK, "signing key verifying",
			"previous %.4s... stops verifying at %s", k->kid,
			fmt_date(due_s, sizeof(due_s), k->expires_at, true));
		listed++;
	}
	if (more)
		expires(d, INT64_MAX - 1, STATUS_OK, "signing key verifying",
			"and %zu more previous keys (see previous keys)", more);
}

static void check_keys(struct doctor *d)
{
	const char *name = "signing keys";
	char dir[PATH_BYTES_MAX], err[KEYRING_ERR_BYTES] = "";
	char since[40], due_s[40];
	struct keyring *kr = NULL;
	struct stat st;
	int ret;

	snprintf(dir, sizeof(dir), "%s/" DATADIR_KEYS, d->s.data_dir);
	if (stat(dir, &st) != 0) {
		report(d, STATUS_ACTION, name,
		       "%s: %s: no signing key (`tpwallet serve` makes one at "
		       "start)",
		       dir, tpw_strerror(errno));
		return;
	}
	ret = keyfile_open_keyring(dir, d->kek, &kr, err, sizeof(err));
	if (ret != 0) {
		/* The message names the file and what is wrong with it. */
		if (err[0])
			report(d, STATUS_ACTION, name, "%s", err);
		else
			report(d, STATUS_ACTION, name, "%s: %s", dir,
			       keyring_strerror(ret));
		return;
	}
	report_home(d, kr);
	const char *unauth =
		d->kek ? "" : " (public metadata only: no KEK to check it)";
	const struct keyring_key *cur = keyring_current_signer(kr, d->now);
	if (!cur) {
		report(d, STATUS_ACTION, name,
		       "no key signs now (%zu on disk): checkpoints and "
		       "revocation lists stop; `tpwallet serve` makes one "
		       "at start, or `tpwallet keys rotate`%s",
		       keyring_count(kr), unauth);
		goto previous;
	}
	fmt_date(since, sizeof(since), cur->activate_at, false);
	if (d->s.key_rotation_days == 0) {
		report(d, STATUS_OK, name,
		       "current %.4s... since %s, scheduled rotation off "
		       "(key_rotation_days = 0)%s",
		       cur->kid, since, unauth);
		goto previous;
	}
	int64_t period_s = (int64_t)d->s.key_rotation_days * 86400;
	int64_t due = cur->activate_at + period_s;
	int64_t warn_s = (int64_t)d->warn_days * 86400;
	if (due <= d->now)
		report(d, STATUS_WARN, name,
		       "current %.4s... since %s: rotation overdue since %s "
		       "(key_rotation_days = %u); a running server rotates "
		       "within a minute, or `tpwallet keys rotate`%s",
		       cur->kid, since,
		       fmt_date(due_s, sizeof(due_s), due, true),
		       d->s.key_rotation_days, unauth);
	else if (due - d->now <= warn_s)
		report(d, STATUS_WARN, name,
		       "current %.4s... since %s: scheduled rotation at %s; "
		       "`tpwallet keys rotate` to do it now%s",
		       cur->kid, since,
		       fmt_date(due_s, sizeof(due_s), due, true), unauth);
	else
		report(d, STATUS_OK, name,
		       "current %.4s... since %s, rotation due %s%s", cur->kid,
		       since, fmt_date(due_s, sizeof(due_s), due, false),
		       unauth);
previous:
	keys_expiries(d, kr, cur);
	check_previous_keys(d, kr, cur);
	check_verifying_ends(d, kr);
	keyring_free(kr);
}

/* ---- administrator credential -------------------------------------------- */

/* One of the administrator's files: its status, with words in why. */
static enum status admin_file(struct doctor *d, const char *file, char *why,
			      size_t cap)
{
	char path[PATH_BYTES_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", d->s.data_dir, file);
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT) {
			put(why, cap, "%s missing", file);
			return STATUS_WARN;
		}
		put(why, cap, "%s: %s", file, tpw_strerror(errno));
		return STATUS_ACTION;
	}
	unsigned mode = (unsigned)st.st_mode & 07777;
	if (!S_ISREG(st.st_mode)) {
		put(why, cap, "%s is not a regular file", file);
		return STATUS_ACTION;
	}
	if (mode & 077) {
		put(why, cap, "%s is mode %04o (chmod 600 %s)", file, mode,
		    path);
		return STATUS_ACTION;
	}
	if (st.st_uid != geteuid()) {
		put(why, cap,
		    "%s belongs to uid %u, not this uid %u (the server "
		    "refuses a file not its own)",
		    file, (unsigned)st.st_uid, (unsigned)geteuid());
		return STATUS_ACTION;
	}
	put(why, cap, "%s mode %04o", file, mode);
	return STATUS_OK;
}

static void check_admin(struct doctor *d)
{
	char token[DETAIL_BYTES / 2], key[DETAIL_BYTES / 2];
	enum status a =
		admin_file(d, AUTHZ_ADMIN_TOKEN_FILE, token, sizeof(token));
	enum status b = admin_file(d, AUTHZ_ADMIN_KEY_FILE, key, sizeof(key));
	enum status st = a > b ? a : b;

	if (a == STATUS_WARN && b == STATUS_WARN)
		report(d, st, "administrator credential",
		       "%s and %s missing: `tpwallet serve` (or init) "
		       "creates them",
		       AUTHZ_ADMIN_TOKEN_FILE, AUTHZ_ADMIN_KEY_FILE);
	else if (st == STATUS_WARN)
		report(d, st, "administrator credential",
		       "%s, %s: `tpwallet serve` creates what is missing",
		       token, key);
	else
		report(d, st, "administrator credential", "%s, %s", token, key);
}

/* ---- journal ------------------------------------------------------------- */

struct segment {
	u64 seq;
	u64 bytes; /* when listed */
};

/* The segments and their sizes now.  *segs is malloc'd (NULL when none). */
static int list_segments(const char *data_dir, struct segment **segs, size_t *n,
			 u64 *total)
{
	char dir[PATH_BYTES_MAX], path[PATH_BYTES_MAX + 32];
	u64 *seqs = NULL;
	size_t count = 0;
	int ret;

	*segs = NULL;
	*n = 0;
	*total = 0;
	snprintf(dir, sizeof(dir), "%s/" DATADIR_JOURNAL, data_dir);
	DIR *dh = opendir(dir);
	if (!dh)
		return -errno;
	ret = seqdir_list(dh, journal__parse_segment_name, &seqs, &count);
	closedir(dh);
	if (ret != 0 || count == 0)
		goto cleanup;
	*segs = calloc(count, sizeof(**segs));
	if (!*segs) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < count; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/" JOURNAL_SEGMENT_NAME_FMT,
			 dir, (unsigned long long)seqs[i]);
		(*segs)[i].seq = seqs[i];
		if (stat(path, &st) == 0)
			(*segs)[i].bytes = (u64)st.st_size;
		*total += (*segs)[i].bytes;
	}
	*n = count;
cleanup:
	free(seqs);
	return ret;
}

/* An organisation registered with its certificate's dates: kept when
 * it is among the ORG_EXPIRIES_LISTED that expire first (a second
 * registration of one key is no new organisation: the first one's dates
 * stay, as the server's state keeps them). */
static void org_record(struct doctor *d, const struct command_view *c)
{
	struct auth_principal p;
	struct auth_x509_pub x;
	char id[JOSE_B64_32_BYTES];

	memcpy(&p, c->ext, sizeof(p));
	if (!auth_principal_x509(p.pub, &x) || x.not_after <= 0)
		return;
	b64url_encode(id, sizeof(id), p.id, 32);
	size_t n =
		d->norgs < ORG_EXPIRIES_LISTED ? d->norgs : ORG_EXPIRIES_LISTED;
	for (size_t i = 0; i < n; i++)
		if (strcmp(d->orgs[i].id, id) == 0)
			return;
	d->orgs_dated++;
	size_t at = n;
	if (n == ORG_EXPIRIES_LISTED) { /* replace the latest, if later */
		at = 0;
		for (size_t i = 1; i < n; i++)
			if (d->orgs[i].not_after > d->orgs[at].not_after)
				at = i;
		if (d->orgs[at].not_after <= x.not_after)
			return;
	} else {
		d->norgs++;
	}
	snprintf(d->orgs[at].name, sizeof(d->orgs[at].name), "%.*s",
		 AUTH_NAME_BYTES, p.name);
	memcpy(d->orgs[at].id, id, sizeof(id));
	d->orgs[at].not_after = x.not_after;
}

/* A client-policy command: apply it to the doctor's own copy of the
 * policy state (pure, the same code the server applies); an
 * organisation principal: its certificate's end, for the expiry list. */
static void policy_record(struct doctor *d, const struct journal_record *r)
{
	struct command_view c;
	if (r->type != JOURNAL_COMMAND ||
	    command_decode(r->payload, r->payload_bytes, &c) != 0)
		return;
	if (c.h.kind == AUTH_CMD_PRINCIPAL_X509)
		org_record(d, &c);
	if (!d->ps || !d->auth)
		return;
	if (c.def->parts & COMMAND_LEDGER)
		return;
	const struct command_target t = {.auth = d->auth, .pstate = d->ps};
	u32 outcome = 1;
	if (command_apply(&t, &c, r->timestamp, &outcome) != 0 ||
	    c.h.kind != ADMIN_CMD_DECIDE || outcome != ADMIN_OK)
		return;
	struct admin_decide_cmd dc;
	memcpy(&dc, c.ext, sizeof(dc));
	if (dc.decision != ADMIN_BREAK_GLASS)
		return;
	d->glasses++;
	d->glass_at = r->timestamp;
	d->glass_request = dc.request;
	memcpy(d->glass_by, dc.author, sizeof(d->glass_by));
}

/*
 * Read records until the reader has none, or until `until` records when
 * it is not 0.  A record still being written is waited for a moment.
 * Returns 0 at the end, or the reader's negative code.
 */
static int read_records(struct doctor *d, u64 until, u64 stop_bytes, u64 *seg,
			u64 *end)
{
	u64 last_print = tpw_monotonic_ms(), started = last_print;
	unsigned retries = 0;

	for (;;) {
		struct journal_record r;
		const u8 *raw;
		size_t raw_bytes;

		int ret = journal_reader_next(d->rd, &r, &raw, &raw_bytes);
		if (ret < 0)
			return ret;
		if (ret == 0) {
			/* Short of what was listed: a record being written
			 * is whole a moment later, a torn tail never. */
			if (d->bytes < stop_bytes && retries < TAIL_RETRIES) {
				retries++;
				sleep_ms(TAIL_RETRY_MS);
				continue;
			}
			return 0;
		}
		d->records++;
		d->last_seq = r.seq;
		d->last_ts_ns = r.timestamp;
		policy_record(d, &r);
		d->bytes += raw_bytes;
		u64 off;
		journal_reader_position(d->rd, seg, &off);
		*end = off + raw_bytes;
		/* A live server keeps appending: read what was there when
		 * the journal was listed (or what was asked for), no more. */
		if (d->bytes >= stop_bytes || (until && d->records >= until))
			journal_reader_limit(d->rd, r.seq);
		if ((d->records & 63) == 0 &&
		    tpw_monotonic_ms() - last_print >= PROGRESS_INTERVAL_MS) {
			last_print = tpw_monotonic_ms();
			fprintf(stderr,
				"tpwallet doctor: journal: %llu records, "
				"%llu MiB read (%llu s)\n",
				(unsigned long long)d->records,
				(unsigned long long)(d->bytes >> 20),
				(unsigned long long)((last_print - started) /
						     1000u));
		}
	}
}

static void check_journal(struct doctor *d)
{
	const char *name = "journal";
	struct segment *segs = NULL;
	size_t nsegs = 0;
	u64 total = 0, seg = 0, end = 0;
	char size[32], when[40];
	struct audit_covered cov;
	u64 covered = 0;
	int ret;

	/* Read before the journal: a live server only adds to both. */
	if (audit_covered_size(d->s.data_dir, &cov) == 0)
		covered = cov.size;
	ret = list_segments(d->s.data_dir, &segs, &nsegs, &total);
	if (ret == -ENOENT) {
		report(d, STATUS_WARN, name,
		       "%s/journal does not exist (`tpwallet serve` creates "
		       "it)",
		       d->s.data_dir);
		goto cleanup;
	}
	if (ret == 0)
		ret = journal_reader_open(&d->rd, d->s.data_dir, 1);
	if (ret == 0 && d->s.journal_archive_dir[0]) {
		/* Sealed segments moved by journal retention are read from
		 * the archive: their bytes count in the total read. */
		struct journal_archive_stats js;
		journal_reader_archive(d->rd, d->s.journal_archive_dir);
		if (journal_archive_stats(d->s.data_dir,
					  d->s.journal_archive_dir, &js) == 0)
			total += js.archive_only_bytes;
	}
	if (ret != 0) {
		report(d, STATUS_ACTION, name, "%s/journal: %s", d->s.data_dir,
		       tpw_strerror(-ret));
		goto cleanup;
	}
	d->journal_present = true;
	if (nsegs > 0)
		seg = segs[0].seq;
	ret = read_records(d, 0, total, &seg, &end);
	if (ret < 0) {
		report(d, STATUS_ACTION, name,
		       "%s (after %llu good records; the server refuses to "
		       "start: docs/operations.md, Recovery)",
		       journal_reader_error(d->rd),
		       (unsigned long long)d->records);
		goto cleanup;
	}
	/* The reader stops quietly where records stop; what lies after is
	 * a torn tail when nothing follows it, lost records otherwise. */
	for (size_t i = 0; i < nsegs; i++) {
		if (segs[i].seq <= seg)
			continue;
		/* A segment made for the next group, its first record torn:
		 * the tail is there. */
		if (i + 1 == nsegs && segs[i].seq == d->last_seq + 1) {
			seg = segs[i].seq;
			end = 0;
			break;
		}
		report(d, STATUS_ACTION, name,
		       "records missing: journal/" JOURNAL_SEGMENT_NAME_FMT
		       " stops at offset "
		       "%llu after seq %llu, but "
		       "journal/" JOURNAL_SEGMENT_NAME_FMT " follows "
		       "(starting at seq %llu)",
		       (unsigned long long)seg, (unsigned long long)end,
		       (unsigned long long)d->last_seq,
		       (unsigned long long)segs[i].seq,
		       (unsigned long long)segs[i].seq);
		goto cleanup;
	}
	d->journal_whole = true;
	fmt_bytes(size, sizeof(size), d->bytes);
	if (d->bytes < total && d->last_seq < covered) {
		/* The audit log proves the next record durable and
		 * acknowledged: not a torn write. */
		report(d, STATUS_ACTION, name,
		       "record seq %llu at offset %llu of "
		       "journal/" JOURNAL_SEGMENT_NAME_FMT " "
		       "is damaged, but the audit log covers records up to "
		       "seq %llu: an acknowledged record, not a torn tail; "
		       "the server refuses to start (docs/operations.md, "
		       "Recovery)",
		       (unsigned long long)(d->last_seq + 1),
		       (unsigned long long)end, (unsigned long long)seg,
		       (unsigned long long)covered);
		goto cleanup;
	}
	if (d->bytes < total) {
		u64 listed = 0;
		for (size_t i = 0; i < nsegs; i++)
			if (segs[i].seq == seg)
				listed = segs[i].bytes;
		report(d, STATUS_WARN, name,
		       "torn tail: %llu bytes after offset %llu of "
		       "journal/" JOURNAL_SEGMENT_NAME_FMT
		       " are not a whole record (a crash "
		       "mid-write; cut at next start); %llu records before "
		       "it, last seq %llu",
		       (unsigned long long)(listed > end ? listed - end : 0),
		       (unsigned long long)end, (unsigned long long)seg,
		       (unsigned long long)d->records,
		       (unsigned long long)d->last_seq);
		goto cleanup;
	}
	if (d->records == 0) {
		report(d, STATUS_OK, name,
		       "empty (no record yet), %zu segment%s", nsegs,
		       nsegs == 1 ? "" : "s");
		goto cleanup;
	}
	report(d, STATUS_OK, name,
	       "%llu records, last seq %llu at %s, %s in %zu segment%s",
	       (unsigned long long)d->records, (unsigned long long)d->last_seq,
	       fmt_date(when, sizeof(when),
			(int64_t)(d->last_ts_ns / 1000000000u), true),
	       size, nsegs, nsegs == 1 ? "" : "s");
cleanup:
	free(segs);
}

/* A server running on the directory may have journaled more since the
 * journal check read it: read on, up to `want` records. */
static void journal_catch_up(struct doctor *d, u64 want)
{
	u64 seg, end;

	if (!d->rd || !d->journal_whole || d->records >= want)
		return;
	journal_reader_limit(d->rd, want);
	if (read_records(d, want, UINT64_MAX, &seg, &end) < 0)
		d->journal_whole = false;
}

/* ---- audit log ----------------------------------------------------------- */

/*
 * DATA/audit/checkpoints is "<bytes>\n" and a note, appended.  Read it
 * through to the newest whole note (one cut short at the end is being
 * written) and parse its checkpoint.  Returns 0 with *count notes and
 * *cp, 1 when there is no checkpoint, or -1 with why set.
 */
static int newest_checkpoint(struct doctor *d, u64 *count,
			     struct checkpoint *cp, char *why, size_t cap)
{
	char path[PATH_BYTES_MAX];
	char *note = NULL;
	u64 at = 0, newest_at = 0, newest_len = 0;
	u64 last_print = tpw_monotonic_ms();
	struct stat st;
	int ret = 1;

	*count = 0;
	snprintf(path, sizeof(path), "%s/" DATADIR_CHECKPOINTS, d->s.data_dir);
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT)
			return 1;
		put(why, cap, "%s: %s", path, tpw_strerror(errno));
		return -1;
	}
	note = malloc(NOTE_BYTES_MAX + 1);
	if (!note || fstat(fileno(f), &st) != 0) {
		put(why, cap, "%s: %s", path,
		    note ? tpw_strerror(errno) : "out of memory");
		ret = -1;
		goto cleanup;
	}
	/* Only what was there when it was opened: a server appends. */
	u64 size = (u64)st.st_size;
	for (u64 i = 0; i < CHECKPOINTS_SCAN_MAX && at < size; i++) {
		size_t n = 0;
		u64 len;
		int hr = datadir_checkpoint_head_read(f, &len, &n);

		if (hr == DATADIR_HEAD_END || hr == DATADIR_HEAD_CUT)
			break; /* a length line being written */
		if (hr != DATADIR_HEAD_OK) {
			put(why, cap,
			    "audit/checkpoints: no checkpoint length at offset "
			    "%llu (`tpwallet audit check`)",
			    (unsigned long long)at);
			ret = -1;
			goto cleanup;
		}
		u64 note_at = at + n;
		if (note_at + len > size)
			break; /* a note being written */
		/* Read, not seeked over: notes are small and a seek would
		 * drop stdio's buffer each time. */
		if (fread(note, 1, len, f) != len) {
			put(why, cap,
			    "%s: cannot read the checkpoint at "
			    "offset %llu",
			    path, (unsigned long long)note_at);
			ret = -1;
			goto cleanup;
		}
		newest_at = note_at;
		newest_len = len;
		(*count)++;
		at = note_at + len;
		if ((i & 1023) == 1023 &&
		    tpw_monotonic_ms() - last_print >= PROGRESS_INTERVAL_MS) {
			last_print = tpw_monotonic_ms();
			fprintf(stderr,
				"tpwallet doctor: audit/checkpoints: %llu "
				"checkpoints, %llu MiB read\n",
				(unsigned long long)*count,
				(unsigned long long)(at >> 20));
		}
	}
	if (*count == 0)
		goto cleanup;
	note[newest_len] = '\0';
	/* The checkpoint is the note's text: up to the blank line. */
	const char *blank = memmem(note, newest_len, "\n\n", 2);
	int pr = blank ? checkpoint_parse(note, (size_t)(blank - note) + 1, cp)
		       : NOTE_E_MALFORMED;
	if (pr != 0) {
		put(why, cap,
		    "audit/checkpoints: the newest checkpoint (offset %llu) "
		    "does not parse: %s (`tpwallet audit check`)",
		    (unsigned long long)newest_at, note_strerror(pr));
		ret = -1;
		goto cleanup;
	}
	ret = 0;
cleanup:
	free(note);
	fclose(f);
	return ret;
}

/* The timestamp of the record with seq `seq`. */
static int unsigned_since(struct doctor *d, u64 seq, u64 *ts_ns)
{
	struct journal_reader *rd = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;

	int ret = journal_reader_open(&rd, d->s.data_dir, seq);
	if (ret == 0) {
		ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
		if (ret == 1 && r.seq == seq) {
			*ts_ns = r.timestamp;
			ret = 0;
		} else {
			ret = -ENOENT;
		}
	}
	journal_reader_close(rd);
	return ret;
}

/* Journal retention (docs/operations.md): the oldest seq DATA/journal
 * still holds and the archive directory's state. */
static void check_retention(struct doctor *d)
{
	const char *name = "journal retention";
	const char *dir = d->s.journal_archive_dir;
	struct journal_archive_stats js;
	char db[32], ab[32];

	if (journal_archive_stats(d->s.data_dir, dir[0] ? dir : NULL, &js) !=
	    0) {
		report(d, STATUS_WARN, name, "%s/journal cannot be listed",
		       d->s.data_dir);
		return;
	}
	fmt_bytes(db, sizeof(db), js.data_bytes);
	if (!dir[0]) {
		report(d, STATUS_OK, name,
		       "off (journal_archive_dir unset): every segment kept; "
		       "the oldest starts at seq %llu (%llu segment%s, %s)",
		       (unsigned long long)js.oldest_data_seq,
		       (unsigned long long)js.data_segments,
		       js.data_segments == 1 ? "" : "s", db);
		return;
	}
	char lax[DETAIL_BYTES];
	struct stat ast;
	if (stat(dir, &ast) == 0 &&
	    datadir_check_outside(dir, lax, sizeof(lax)) == -EPERM) {
		report(d, STATUS_ACTION, name,
		       "%s; the server refuses to start", lax);
		return;
	}
	if (!js.archive_readable) {
		report(d, STATUS_WARN, name,
		       "archive %s cannot be read: entries whose segment is "
		       "there answer 410; DATA/journal holds seq %llu on (%llu "
		       "segment%s, %s)",
		       dir, (unsigned long long)js.oldest_data_seq,
		       (unsigned long long)js.data_segments,
		       js.data_segments == 1 ? "" : "s", db);
		return;
	}
	fmt_bytes(ab, sizeof(ab), js.archive_bytes);
	report(d, STATUS_OK, name,
	       "DATA/journal holds seq %llu on (%llu segment%s, %s); archive "
	       "%s: %llu segment%s, %s",
	       (unsigned long long)js.oldest_data_seq,
	       (unsigned long long)js.data_segments,
	       js.data_segments == 1 ? "" : "s", db, dir,
	       (unsigned long long)js.archive_segments,
	       js.archive_segments == 1 ? "" : "s", ab);
}

static void check_audit(struct doctor *d)
{
	const char *name = "audit log";
	char why[DETAIL_BYTES];
	struct checkpoint cp;
	u64 count = 0;

	int ret = newest_checkpoint(d, &count, &cp, why, sizeof(why));
	if (ret < 0) {
		report(d, STATUS_ACTION, name, "%s", why);
		return;
	}
	if (ret == 1 && d->records == 0) {
		report(d, STATUS_OK, name,
		       "no checkpoint yet (the server signs one at start and "
		       "about every second while the journal grows)");
		return;
	}
	if (ret == 1) {
		/* A server signs at start and within a second of a write:
		 * entries older than that with no checkpoint at all mean
		 * the signed history was deleted (or never could be kept). */
		u64 first_ts = 0;
		bool old = unsigned_since(d, 1, &first_ts) == 0 &&
			   d->now - (int64_t)(first_ts / 1000000000u) >
				   (int64_t)UNSIGNED_AGE_MAX_S;
		report(d, old ? STATUS_ACTION : STATUS_OK, name,
		       "no checkpoint, though the journal holds %llu "
		       "entries: a server signs one at start, so if one ran "
		       "here the signed history is gone (audit/checkpoints "
		       "deleted or emptied?); compare with a backup, "
		       "`tpwallet audit check`",
		       (unsigned long long)d->records);
		return;
	}
	journal_catch_up(d, cp.size);
	if (cp.size > d->records && !d->journal_whole) {
		report(d, STATUS_ACTION, name,
		       "the newest of %llu checkpoints covers %llu entries; "
		       "only the first %llu are readable (see the journal "
		       "line)",
		       (unsigned long long)count, (unsigned long long)cp.size,
		       (unsigned long long)d->records);
		return;
	}
	if (cp.size > d->records) {
		report(d, STATUS_ACTION, name,
		       "checkpoint signs more entries than the journal holds: "
		       "the newest of %llu checkpoints covers %llu entries, "
		       "the journal has %llu readable records (entries lost "
		       "or cut; `tpwallet audit check` names them)",
		       (unsigned long long)count, (unsigned long long)cp.size,
		       (unsigned long long)d->records);
		return;
	}
	/* Entries past the newest checkpoint: a running server signs
	 * within a second, a stopping one before it exits.  Older ones
	 * mean it could not sign (a full disk?) or was killed. */
	u64 first_ts = 0;
	if (cp.size < d->records &&
	    unsigned_since(d, cp.size + 1, &first_ts) == 0 &&
	    d->now - (int64_t)(first_ts / 1000000000u) >
		    (int64_t)UNSIGNED_AGE_MAX_S) {
		char age[48];
		report(d, STATUS_ACTION, name,
		       "%llu entries (seq %llu to %llu) are not covered by "
		       "any signed checkpoint, the oldest %s: "
		       "the server could not sign or record them (a full "
		       "disk? its log says `cannot append the checkpoint` or "
		       "`cannot sign a checkpoint`) or was killed; free space "
		       "and restart it (it signs at start and at a clean "
		       "stop)",
		       (unsigned long long)(d->records - cp.size),
		       (unsigned long long)(cp.size + 1),
		       (unsigned long long)d->records,
		       fmt_age(age, sizeof(age),
			       d->now - (int64_t)(first_ts / 1000000000u)));
		return;
	}
	report(d, STATUS_OK, name,
	       "%llu checkpoints, the newest covers %llu of %llu entries "
	       "(`tpwallet audit check` verifies them)",
	       (unsigned long long)count, (unsigned long long)cp.size,
	       (unsigned long long)d->records);
}

/* ---- witnesses ----------------------------------------------------------- */

/* DATA/audit/witnesses, as the server last wrote it (engine/audit.c):
 * "<name> <up> <last cosigned s> <reason|-> <status> <last refusal s>"
 * per witness.  A witness that did not cosign the last checkpoint it was
 * sent is a warning naming it and its last refusal. */
static void check_witnesses(struct doctor *d)
{
	const char *name = "witnesses";
	char path[PATH_BYTES_MAX], line[NOTE_NAME_BYTES_MAX + 128];
	char when[40], cosigned[40];
	unsigned up_n = 0, total = 0;

	snprintf(path, sizeof(path), "%s/" DATADIR_AUDIT "/witnesses",
		 d->s.data_dir);
	FILE *f = fopen(path, "r");
	if (!f) {
		if (d->s.nwitnesses)
			report(d, STATUS_OK, name,
			       "%u configured; no round yet (a running "
			       "server writes %s after its first)",
			       d->s.nwitnesses, path);
		else
			report(d, STATUS_OK, name, "none configured");
		return;
	}
	while (fgets(line, sizeof(line), f) && total < 64) {
		char *field[6], *save = NULL, *p = line;
		size_t nf = 0;
		line[strcspn(line, "\n")] = '\0';
		while (nf < 6 && (field[nf] = strtok_r(p, " ", &save)))
			p = NULL, nf++;
		uint64_t cos = 0, st = 0, ref = 0;
		if (nf != 6 || parse_u64(field[2], INT64_MAX, &cos) != 0 ||
		    parse_u64(field[4], 999, &st) != 0 ||
		    parse_u64(field[5], INT64_MAX, &ref) != 0) {
			report(d, STATUS_WARN, name,
			       "%s: a line is malformed (the server rewrites "
			       "it at the next change)",
			       path);
			continue;
		}
		total++;
		if (strcmp(field[1], "0") != 0) {
			up_n += strcmp(field[1], "1") == 0;
			continue;
		}
		char how[32] = "no answer";
		if (st)
			snprintf(how, sizeof(how), "HTTP %llu",
				 (unsigned long long)st);
		bool rotation = strcmp(field[3], "not_signed_by_log") == 0;
		report(d, STATUS_WARN, name,
		       "witness %s refuses checkpoints: last refusal %s (%s) "
		       "at %s; last cosigned %s%s",
		       field[0], field[3], how,
		       fmt_date(when, sizeof(when), (int64_t)ref, true),
		       cos ? fmt_date(cosigned, sizeof(cosigned), (int64_t)cos,
				      true)
			   : "not since the server started",
		       rotation ? "; a key rotation it did not follow "
				  "(docs/audit.md, Witnesses through a "
				  "rotation)"
				: "");
	}
	fclose(f);
	if (total && up_n == total)
		report(d, STATUS_OK, name, "%u cosigning", total);
}

/* ---- the outbound allow-list -------------------------------------------- */

/* One destination of the server's outbound calls: its host resolved now,
 * each address judged as the server judges the address it connects to
 * (net/http.h, setting outbound_allow); a warning per refused one. */
static unsigned outbound_one(struct doctor *d, const char *what,
			     const char *url, const char *const *rules,
			     size_t nrules)
{
	struct http_url u;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	char host[sizeof(u.host)], port[8], why[HTTP_REFUSED_BYTES];
	unsigned refused = 0;

	if (http_url_parse(url, &u) != 0)
		return 0; /* serve refuses it with its own message */
	size_t hl = strlen(u.host);
	if (u.host[0] == '[' && hl >= 2)
		snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), u.host + 1);
	else
		snprintf(host, sizeof(host), "%s", u.host);
	snprintf(port, sizeof(port), "%u", (unsigned)u.port);
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return 0; /* not resolvable from here: the call will say */
	for (struct addrinfo *a = res; a && refused == 0; a = a->ai_next)
		if (http_allow_judge(rules, nrules, u.host, a->ai_addr, why,
				     sizeof(why)) < 0) {
			refused++;
			report(d, STATUS_WARN, "outbound",
			       "%s %s is refused (outbound_refused): %s; add "
			       "an outbound_allow rule if it is meant "
			       "(docs/operations.md, Outbound allow-list)",
			       what, url, why);
		}
	freeaddrinfo(res);
	return refused;
}

static void check_outbound(struct doctor *d)
{
	const char *rules[HTTP_ALLOW_MAX];
	char url[1100];
	unsigned dest = 0, refused = 0;

	for (unsigned i = 0; i < d->s.noutbound_allow && i < HTTP_ALLOW_MAX;
	     i++)
		rules[i] = d->s.outbound_allow[i];
	size_t nrules = d->s.noutbound_allow;
	for (unsigned i = 0; i < d->s.nwitnesses; i++, dest++) {
		const char *w = d->s.witnesses[i];
		snprintf(url, sizeof(url), "%.*s", (int)strcspn(w, " "), w);
		refused += outbound_one(d, "witness", url, rules, nrules);
	}
	for (unsigned i = 0; i < d->s.nprobes; i++) {
		struct probe_target t;
		if (probe_target_parse(d->s.probes[i], &t) != 0)
			continue;
		dest++;
		refused += outbound_one(d, "probe", t.url, rules, nrules);
	}
	trace_endpoint_url(d->s.otel_exporter_otlp_endpoint,
			   d->s.otel_exporter_otlp_traces_endpoint, url,
			   sizeof(url));
	if (url[0]) {
		dest++;
		refused += outbound_one(d, "OTLP endpoint", url, rules, nrules);
	}
	if (dest && !refused)
		report(d, STATUS_OK, "outbound",
		       "%u destination(s) allowed (%zu outbound_allow "
		       "rule(s))",
		       dest, nrules);
}

/* ---- TLS and the expiry list --------------------------------------------- */

/* The status of a certificate that ends at not_after: warn 30 and 14
 * days before, action from 3 days before; the step it is within in
 * *within_days (0: none). */
static enum status tls_steps(const struct doctor *d, int64_t not_after,
			     unsigned *within_days)
{
	static const unsigned steps[] = {3, 14, 30};
	int64_t left = not_after - d->now;

	*within_days = 0;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (left > (int64_t)steps[i] * 86400)
			continue;
		*within_days = steps[i];
		return i == 0 ? STATUS_ACTION : STATUS_WARN;
	}
	return STATUS_OK;
}

/* A certificate of the settings (tls_cert_file, tls_standby_cert_file)
 * in the expiry list: warn 30 and 14 days before its not_after, action
 * from 3 days before, once it expired or when it is not valid yet.  Its
 * fingerprint in fp (for --url), "" when unreadable. */
static void tls_expiry(struct doctor *d, const char *name, const char *path,
		       char fp[65])
{
	struct api_tls_cert_info ci;
	char err[API_TLS_ERR_BYTES], when[40];
	unsigned within;

	fp[0] = '\0';
	if (api_tls_cert_inspect(path, &ci, err, sizeof(err)) < 0) {
		expires(d, INT64_MIN, STATUS_ACTION, name,
			"%s (the server refuses to start)", err);
		return;
	}
	memcpy(fp, ci.fingerprint, 65);
	fmt_date(when, sizeof(when), ci.not_after, true);
	if (ci.not_after <= d->now) {
		expires(d, ci.not_after, STATUS_ACTION, name,
			"%s (serial %s) expired at %s: install a renewed one "
			"and send SIGHUP (docs/operations.md, TLS)",
			path, ci.serial, when);
		return;
	}
	if (ci.not_before > d->now) {
		expires(d, ci.not_after, STATUS_ACTION, name,
			"%s (serial %s) is not valid before %s", path,
			ci.serial,
			fmt_date(when, sizeof(when), ci.not_before, true));
		return;
	}
	enum status st = tls_steps(d, ci.not_after, &within);
	if (within)
		expires(d, ci.not_after, st, name,
			"%s (serial %s) expires within %u days, at %s: renew "
			"it and send SIGHUP (docs/operations.md, TLS)",
			path, ci.serial, within, when);
	else
		expires(d, ci.not_after, STATUS_OK, name,
			"%s (serial %s, CN %s) valid until %s", path, ci.serial,
			ci.subject_cn, when);
}

/* The organisations' certificates, as registered (docs/authz.md,
 * "Organisation principals"): the same steps as the server's; a renewal
 * with the same key needs no new registration, so an expired one here
 * may have been renewed: the detail says how to tell. */
static void org_expiries(struct doctor *d)
{
	const char *name = "organisation certificate";
	char when[40];
	unsigned within;

	for (size_t i = 0; i < d->norgs; i++) {
		int64_t at = d->orgs[i].not_after;
		const char *who =
			d->orgs[i].name[0] ? d->orgs[i].name : d->orgs[i].id;
		enum status st = tls_steps(d, at, &within);
		fmt_date(when, sizeof(when), at, true);
		if (at <= d->now)
			expires(d, at, STATUS_WARN, name,
				"%s (principal %s): the certificate registered "
				"expired at %s; its key connects only with a "
				"renewed certificate",
				who, d->orgs[i].id, when);
		else if (within)
			expires(d, at, st, name,
				"%s (principal %s) expires within %u days, at "
				"%s: the organisation renews it (same key: "
				"nothing to register; a new key: register it)",
				who, d->orgs[i].id, within, when);
		else
			expires(d, at, STATUS_OK, name,
				"%s (principal %s) valid until %s", who,
				d->orgs[i].id, when);
	}
	if (d->orgs_dated > d->norgs)
		expires(d, INT64_MAX, STATUS_OK, name,
			"%zu more organisation certificates expire later",
			d->orgs_dated - d->norgs);
}

/* tls_crl_file: a CRL past its nextUpdate is refused at the next start
 * or reload (docs/operations.md, "Client certificates"): action once
 * past, warn within a day. */
/* An OCSP response to staple: what it says of its certificate, and when
 * it stops being stapled (its nextUpdate). */
static void ocsp_expiry(struct doctor *d, const char *name, const char *ocsp,
			const char *cert)
{
	struct api_tls_ocsp_info oi;
	char err[API_TLS_ERR_BYTES], when[40];
	const char *sig;

	if (api_tls_ocsp_inspect(ocsp, cert, &oi, err, sizeof(err)) < 0) {
		expires(d, INT64_MIN, STATUS_ACTION, name,
			"%s (the server refuses to start)", err);
		return;
	}
	sig = oi.signature_checked ? "signature checked"
				   : "signature not checked (the chain has no "
				     "issuer)";
	if (strcmp(oi.status, "good") != 0) {
		expires(d, INT64_MIN, STATUS_ACTION, name,
			"%s says %s is revoked: the standby serves if there is "
			"one, else the server refuses to start; replace the "
			"certificate (%s)",
			ocsp, cert, sig);
		return;
	}
	if (!oi.next_update) {
		expires(d, INT64_MAX, STATUS_OK, name,
			"%s: good, no nextUpdate given, %s", ocsp, sig);
		return;
	}
	fmt_date(when, sizeof(when), oi.next_update, true);
	if (oi.next_update <= d->now)
		expires(d, oi.next_update, STATUS_ACTION, name,
			"%s is past its nextUpdate (%s): it is not stapled; "
			"fetch a fresh response and send SIGHUP",
			ocsp, when);
	else if (oi.next_update - d->now <= 86400)
		expires(d, oi.next_update, STATUS_WARN, name,
			"%s: good, nextUpdate within a day, at %s: fetch the "
			"next response and send SIGHUP before then (%s)",
			ocsp, when, sig);
	else
		expires(d, oi.next_update, STATUS_OK, name,
			"%s: good until %s (nextUpdate), %s", ocsp, when, sig);
}

static void crl_expiry(struct doctor *d)
{
	const char *name = "tls CRL";
	const char *path = d->s.tls_crl_file;
	char err[API_TLS_ERR_BYTES], when[40];
	int64_t next;

	if (api_tls_crl_next_update(path, &next, err, sizeof(err)) < 0) {
		expires(d, INT64_MIN, STATUS_ACTION, name,
			"%s (the server refuses to start)", err);
		return;
	}
	if (next == -1) {
		expires(d, INT64_MAX, STATUS_OK, name,
			"%s: no nextUpdate in its CRLs", path);
		return;
	}
	fmt_date(when, sizeof(when), next, true);
	if (next <= d->now)
		expires(d, next, STATUS_ACTION, name,
			"%s is past its nextUpdate (%s): the server refuses "
			"it at the next start or SIGHUP; publish a new CRL and "
			"send SIGHUP",
			path, when);
	else if (next - d->now <= 86400)
		expires(d, next, STATUS_WARN, name,
			"%s: nextUpdate within a day, at %s: publish the next "
			"CRL and send SIGHUP before then",
			path, when);
	else
		expires(d, next, STATUS_OK, name, "%s: nextUpdate %s", path,
			when);
}

/* doctor --url: what the endpoint serves, whether it verifies, when it
 * expires, and whether it is this server's primary or standby. */
static void remote_expiry(struct doctor *d, const char *primary_fp,
			  const char *standby_fp)
{
	const char *name = "remote certificate";
	struct http_url u;
	struct api_tls_remote r;
	char err[API_TLS_ERR_BYTES], when[40];
	const char *which = "";
	bool standby_serves = false;
	unsigned within;

	/* cmd_doctor checked the URL */
	(void)http_url_parse(d->url, &u);
	if (api_tls_remote_inspect(u.host, u.port, d->cacert, REMOTE_TIMEOUT_MS,
				   &r, err, sizeof(err)) < 0) {
		expires(d, INT64_MIN, STATUS_ACTION, name, "%s: %s", u.origin,
			err);
		return;
	}
	enum status st = tls_steps(d, r.leaf.not_after, &within);
	if (r.leaf.not_after <= d->now || r.leaf.not_before > d->now ||
	    !r.verified)
		st = STATUS_ACTION;
	if (primary_fp[0] && strcmp(primary_fp, r.leaf.fingerprint) == 0)
		which = "; this server's primary (tls_cert_file)";
	else if (standby_fp[0] && strcmp(standby_fp, r.leaf.fingerprint) == 0) {
		which = "; this server's standby (tls_standby_cert_file) "
			"serves: renew the primary, or `tpwallet tls switch "
			"--to primary` once it is valid";
		standby_serves = true;
	}
	if (standby_serves && st == STATUS_OK)
		st = STATUS_WARN;
	expires(d, r.leaf.not_after, st, name,
		"%s serves \"%s\" (serial %s), issued by \"%s\", %s %s%s; "
		"%s %s%s%s%s",
		u.origin, r.subject, r.leaf.serial, r.issuer,
		r.leaf.not_after <= d->now ? "expired at" : "valid until",
		fmt_date(when, sizeof(when), r.leaf.not_after, true),
		r.leaf.not_before > d->now ? " but not valid yet" : "",
		r.verified ? "verifies against" : "does not verify against",
		d->cacert ? d->cacert : "the system's CAs",
		r.verified ? "" : ": ", r.verified ? "" : r.why, which);
}

static int by_date(const void *a, const void *b)
{
	const struct expiry *x = a, *y = b;
	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Days left, or since, for the start of an expiry line. */
static void days_text(const struct doctor *d, int64_t at, char *buf, size_t cap)
{
	if (at == INT64_MIN)
		snprintf(buf, cap, "unreadable");
	else if (at >= INT64_MAX - 1)
		snprintf(buf, cap, "no end date");
	else if (at > d->now)
		snprintf(buf, cap, "in %lld days",
			 (long long)((at - d->now + 86399) / 86400));
	else
		snprintf(buf, cap, "%lld days ago",
			 (long long)((d->now - at) / 86400));
}

/* Everything that expires, in one list soonest first (docs/operations.md,
 * "Expiry in view"): the TLS certificates of the settings, the one a
 * --url endpoint serves, the signing keys and the KEK's age (gathered by
 * check_keys and check_kek).  Each line starts with the days left. */
static void check_expiries(struct doctor *d)
{
	char primary_fp[65] = "", standby_fp[65] = "", days[40];

	if (d->s.tls_cert_file[0])
		tls_expiry(d, "tls certificate", d->s.tls_cert_file,
			   primary_fp);
	if (d->s.tls_standby_cert_file[0])
		tls_expiry(d, "tls standby certificate",
			   d->s.tls_standby_cert_file, standby_fp);
	if (d->s.tls_client_ca_file[0]) {
		char ca_fp[65];
		tls_expiry(d, "tls client CA", d->s.tls_client_ca_file, ca_fp);
	}
	if (d->s.tls_ocsp_file[0] && d->s.tls_cert_file[0])
		ocsp_expiry(d, "tls OCSP response", d->s.tls_ocsp_file,
			    d->s.tls_cert_file);
	if (d->s.tls_standby_ocsp_file[0] && d->s.tls_standby_cert_file[0])
		ocsp_expiry(d, "tls standby OCSP response",
			    d->s.tls_standby_ocsp_file,
			    d->s.tls_standby_cert_file);
	if (d->s.outbound_ca_file[0]) {
		char ob_fp[65];
		tls_expiry(d, "outbound CA", d->s.outbound_ca_file, ob_fp);
	}
	if (d->s.tls_crl_file[0])
		crl_expiry(d);
	if (d->url)
		remote_expiry(d, primary_fp, standby_fp);
	org_expiries(d);
	qsort(d->expiries, d->nexpiries, sizeof(d->expiries[0]), by_date);
	for (size_t i = 0; i < d->nexpiries; i++) {
		const struct expiry *x = &d->expiries[i];
		days_text(d, x->at, days, sizeof(days));
		report(d, x->status, x->name, "%s: %s", days, x->detail);
	}
}

/* ---- snapshots ----------------------------------------------------------- */

/* The header of one snapshot: NULL and its timestamp when it is valid as
 * far as the header says, else why not.  (The payload checksum is the
 * server's to check at start; reading gigabytes is not a first-minute
 * question.) */
static const char *snapshot_header(const char *path, u64 seq, u64 *ts_ns,
				   u32 *payload_crc)
{
	u8 h[SNAPSHOT_HEADER_BYTES];
	struct snapshot_header sh = {0};
	struct stat st;
	const char *why;
	FILE *f = fopen(path, "rb");

	if (!f)
		return tpw_strerror(errno);
	if (fstat(fileno(f), &st) != 0 ||
	    fread(h, 1, sizeof(h), f) != sizeof(h))
		why = "shorter than its header";
	else
		why = snapshot_header_check(h, seq, (u64)st.st_size, &sh);
	*ts_ns = sh.timestamp;
	*payload_crc = sh.payload_crc;
	fclose(f);
	return why;
}

/* Does the payload (after the header) hash to want?  Read in 1 MiB
 * pieces: a snapshot is as large as the state.  NULL when it does. */
static const char *snapshot_payload(const char *path, u32 want)
{
	const char *why = NULL;
	size_t cap = 1u << 20, n;
	u8 *buf = malloc(cap);
	FILE *f = fopen(path, "rb");
	u32 crc = 0;

	if (!buf || !f) {
		why = !buf ? "out of memory" : tpw_strerror(errno);
		goto cleanup;
	}
	if (fseeko(f, SNAPSHOT_HEADER_BYTES, SEEK_SET) != 0) {
		why = tpw_strerror(errno);
		goto cleanup;
	}
	while ((n = fread(buf, 1, cap, f)) > 0)
		crc = crc32c(crc, buf, n);
	if (ferror(f))
		why = "read error";
	else if (crc != want)
		why = "its payload does not match its checksum";
cleanup:
	if (f)
		fclose(f);
	free(buf);
	return why;
}

static void check_snapshots(struct doctor *d)
{
	const char *name = "snapshots";
	char dir[PATH_BYTES_MAX], path[PATH_BYTES_MAX + 48];
	char age[48], when[40], skipped[DETAIL_BYTES / 2] = "";
	u64 *seqs = NULL;
	size_t n = 0;
	int ret;

	if (d->s.store) {
		report(d, STATUS_OK, name,
		       "not taken: with store = 1 the store replaces them "
		       "(see store)");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/" DATADIR_SNAPSHOTS, d->s.data_dir);
	DIR *dh = opendir(dir);
	if (dh) {
		ret = seqdir_list(dh, snapshot_parse_name, &seqs, &n);
		closedir(dh);
		if (ret != 0) {
			report(d, STATUS_ACTION, name, "%s: %s", dir,
			       tpw_strerror(-ret));
			goto cleanup;
		}
	} else if (errno != ENOENT) {
		report(d, STATUS_ACTION, name, "%s: %s", dir,
		       tpw_strerror(errno));
		goto cleanup;
	}
	/* Newest first, as recovery looks at them. */
	for (size_t i = n; i-- > 0;) {
		u64 ts_ns = 0;
		u32 payload_crc = 0;
		snprintf(path, sizeof(path), "%s/" SNAPSHOT_NAME_FMT, dir,
			 (unsigned long long)seqs[i]);
		const char *why =
			snapshot_header(path, seqs[i], &ts_ns, &payload_crc);
		const char *bad =
			why ? NULL : snapshot_payload(path, payload_crc);
		if (bad) {
			/* Written once, synced, renamed: a payload that no
			 * longer matches was changed by the disk or someone
			 * with access, not by a crash. */
			report(d, STATUS_ACTION, name,
			       SNAPSHOT_NAME_FMT
			       ": %s (the disk or someone "
			       "changed a file written once: check the disk; "
			       "recovery skips it and replays more journal; "
			       "move it away once the disk is trusted)%s",
			       (unsigned long long)seqs[i], bad, skipped);
			goto cleanup;
		}
		if (why) {
			if (!skipped[0])
				snprintf(skipped, sizeof(skipped),
					 "; " SNAPSHOT_NAME_FMT " skipped: %s",
					 (unsigned long long)seqs[i], why);
			continue;
		}
		journal_catch_up(d, seqs[i]);
		if (d->journal_present && seqs[i] > d->records) {
			report(d, STATUS_ACTION, name,
			       "the newest snapshot is at seq %llu but the "
			       "journal holds %llu readable records: the "
			       "server refuses to start (the journal ends "
			       "before the snapshot)%s",
			       (unsigned long long)seqs[i],
			       (unsigned long long)d->records, skipped);
			goto cleanup;
		}
		int64_t t = (int64_t)(ts_ns / 1000000000u);
		report(d, skipped[0] ? STATUS_WARN : STATUS_OK, name,
		       "newest at seq %llu (%llu records after it), taken at "
		       "%s, %s%s",
		       (unsigned long long)seqs[i],
		       (unsigned long long)(d->records > seqs[i]
						    ? d->records - seqs[i]
						    : 0),
		       fmt_date(when, sizeof(when), t, true),
		       fmt_age(age, sizeof(age), d->now - t), skipped);
		goto cleanup;
	}
	const char *none = skipped[0] ? "none valid (recovery replays the "
					"whole journal)"
				      : "none yet";
	if (d->records > SNAPSHOT_SUGGESTED_RECORDS)
		report(d, STATUS_WARN, name,
		       "%s, and the journal holds %llu records: a restart "
		       "replays them all (one every %llu events: "
		       "snapshot_every)%s",
		       none, (unsigned long long)d->records,
		       (unsigned long long)d->s.snapshot_every, skipped);
	else
		report(d, skipped[0] ? STATUS_WARN : STATUS_OK, name,
		       "%s (one every %llu events: snapshot_every)%s", none,
		       (unsigned long long)d->s.snapshot_every, skipped);
cleanup:
	free(seqs);
}

/* ---- store --------------------------------------------------------------- */

/* History on disk (docs/store.md): opened read only, beside a running
 * server if there is one; what a restart would replay, and compaction
 * debt. */
static void check_store(struct doctor *d)
{
	const char *name = "store";
	char dir[PATH_BYTES_MAX];
	struct store_options so = {.read_only = true};
	struct store *st = NULL;
	struct store_meta m;
	struct store_stats ss;
	struct stat sb;
	const char *why = NULL;

	snprintf(dir, sizeof(dir), "%s/" DATADIR_STORE, d->s.data_dir);
	bool exists = stat(dir, &sb) == 0;
	if (!d->s.store) {
		report(d, STATUS_OK, name,
		       "off: the ledger's history is held in memory%s "
		       "(store = 1 keeps it in DATA/store, docs/store.md)",
		       exists ? "; DATA/store is left from when it was on and "
				"catches up from the journal when it is again"
			      : "");
		return;
	}
	if (!exists) {
		report(d, STATUS_WARN, name,
		       "DATA/store does not exist yet: the next start builds "
		       "it from the whole journal (%llu records)",
		       (unsigned long long)d->records);
		return;
	}
	so.dir = dir;
	int ret = store_open(&so, &st, &why);
	if (ret == -ENODATA) {
		report(d, STATUS_OK, name,
		       "DATA/store holds nothing flushed yet: the next start "
		       "builds it from the journal (%llu records)",
		       (unsigned long long)d->records);
		return;
	}
	if (ret) {
		report(d, STATUS_WARN, name,
		       "DATA/store cannot be read (%s: %s): the next start "
		       "rebuilds it from the journal",
		       why ? why : "open failed", tpw_strerror(-ret));
		return;
	}
	store_meta(st, &m);
	(void)store_stats(st, &ss);
	store_close(st);
	journal_catch_up(d, m.seq + 1);
	u64 behind = d->records > m.seq ? d->records - m.seq : 0;
	if (d->journal_present && m.seq > d->records) {
		report(d, STATUS_WARN, name,
		       "the store is at seq %llu but the journal holds %llu "
		       "readable records: the next start rebuilds the store "
		       "from the journal",
		       (unsigned long long)m.seq,
		       (unsigned long long)d->records);
		return;
	}
	report(d, ss.l0_files > 20 ? STATUS_WARN : STATUS_OK, name,
	       "at seq %llu on disk (%llu records after it replay at a "
	       "restart): %llu transfers, %llu accounts, %llu bytes; "
	       "compaction debt %llu bytes in %llu level-0 files%s",
	       (unsigned long long)m.seq, (unsigned long long)behind,
	       (unsigned long long)m.transfers, (unsigned long long)m.accounts,
	       (unsigned long long)ss.disk_bytes,
	       (unsigned long long)ss.pending_compaction_bytes,
	       (unsigned long long)ss.l0_files,
	       ss.l0_files > 20 ? " (many: writes will slow down; see "
				  "tpwallet_store_* in /metrics)"
				: "");
}

/* ---- client policy ----------------------------------------------------------
 */

static void fmt_time(char *out, size_t cap, int64_t t)
{
	char buf[POLICY_TIME_TEXT_BYTES];
	if (policy_format_time(t, buf) != 0)
		snprintf(out, cap, "%lld", (long long)t);
	else
		snprintf(out, cap, "%s", buf);
}

/* The verdict of version v's document for q, overrides left out. */
static int verdict_of_version(const struct pstate *ps, u64 v,
			      const struct policy_query *q)
{
	struct pstate_version pv;
	struct policy *p = NULL;
	struct policy_decision dec;
	int verdict = -1;
	if (pstate_version_get(ps, v, &pv) &&
	    policy_parse(pv.text, pv.text_len, &p, NULL) == 0 &&
	    policy_evaluate(p, q, NULL, 0, &dec) == 0)
		verdict = dec.verdict;
	policy_free(p);
	return verdict;
}

/* "in 30 minutes": how long until t, to the nearest minute. */
static void fmt_in(char *out, size_t cap, int64_t now, int64_t t)
{
	int64_t min = (t - now + 30) / 60;
	if (min < 1)
		snprintf(out, cap, "in less than a minute");
	else
		snprintf(out, cap, "in %lld minute%s", (long long)min,
			 min == 1 ? "" : "s");
}

/* One line per override in force, oldest first: id, platform, range,
 * mode, expiry, author and reason (as journaled). */
static void report_overrides(struct doctor *d)
{
	static const u8 admin[32];
	char until[32], in[48], author[48];
	u64 n = pstate_override_count(d->ps), listed = 0, more = 0;
	for (u64 i = 0; i < n; i++) {
		struct pstate_override_info o;
		pstate_override_at(d->ps, i, &o);
		if (!(o.not_before_s <= d->now && d->now < o.expires_at_s))
			continue;
		if (listed == OVERRIDES_LISTED) {
			more++;
			continue;
		}
		listed++;
		fmt_time(until, sizeof(until), o.expires_at_s);
		fmt_in(in, sizeof(in), d->now, o.expires_at_s);
		if (memcmp(o.cmd->author, admin, sizeof(admin)) == 0 ||
		    b64url_encode(author, sizeof(author), o.cmd->author,
				  sizeof(o.cmd->author)) != 0)
			snprintf(author, sizeof(author), "admin");
		report(d, STATUS_WARN, "override",
		       "%llu: %.*s %.*s (%s) until %s (%s), opened by %s: "
		       "%.*s",
		       (unsigned long long)o.id,
		       (int)strnlen(o.cmd->platform, sizeof(o.cmd->platform)),
		       o.cmd->platform,
		       (int)strnlen(o.cmd->range, sizeof(o.cmd->range)),
		       o.cmd->range,
		       o.cmd->mode == POLICY_OVERRIDE_ALLOW ? "allow"
							    : "compat",
		       until, in, author,
		       (int)strnlen(o.cmd->reason, sizeof(o.cmd->reason)),
		       o.cmd->reason);
	}
	if (more)
		report(d, STATUS_WARN, "override",
		       "and %llu more (`tpwallet policy override list`)",
		       (unsigned long long)more);
}

static void check_policy(struct doctor *d)
{
	char when[32], line[DETAIL_BYTES];
	u64 version;

	if (!d->journal_present || !d->ps)
		return;
	const struct policy *p = pstate_current(d->ps, &version);
	if (!p) {
		report(d, STATUS_OK, "client policy",
		       "none set: every client version is served");
		return;
	}
	struct pstate_version pv;
	pstate_version_get(d->ps, version, &pv);
	fmt_time(when, sizeof(when), (int64_t)(pv.timestamp / 1000000000u));
	size_t nlive, active = 0;
	const struct policy_override *ov = pstate_overrides_live(d->ps, &nlive);
	for (size_t i = 0; i < nlive; i++)
		active += policy_override_active(&ov[i], d->now);
	report(d, active ? STATUS_WARN : STATUS_OK, "client policy",
	       "version %llu set %s%s%s; %zu override%s in force%s",
	       (unsigned long long)version, when, pv.reason[0] ? ": " : "",
	       pv.reason, active, active == 1 ? "" : "s",
	       active ? " (`tpwallet policy override list`)" : "");
	report_overrides(d);
	if (!d->client_version[0])
		return;

	struct policy_query q = {0};
	policy_query_set_client_version(&q, d->client_version,
					strlen(d->client_version));
	q.channel = d->channel;
	q.country = d->country;
	q.languages = d->languages;
	q.now_s = d->now;
	struct policy_decision dec;
	if (policy_evaluate(p, &q, ov, nlive, &dec) != 0) {
		report(d, STATUS_WARN, "client", "%s: cannot be evaluated",
		       d->client_version);
		return;
	}
	int n = snprintf(line, sizeof(line),
			 "%s: %s (%s%s%s) by policy "
			 "version %llu",
			 d->client_version, policy_verdict_name(dec.verdict),
			 policy_reason_name(dec.reason),
			 dec.rule ? ", rule " : "", dec.rule ? dec.rule : "",
			 (unsigned long long)version);
	/* Since when: the oldest version from which every later one gave
	 * the rules' verdict (overrides aside). */
	u64 since = version;
	while (since > 1 && verdict_of_version(d->ps, since - 1, &q) ==
				    dec.verdict_without_override)
		since--;
	struct pstate_version sv;
	if (n > 0 && (size_t)n < sizeof(line) &&
	    pstate_version_get(d->ps, since, &sv)) {
		fmt_time(when, sizeof(when),
			 (int64_t)(sv.timestamp / 1000000000u));
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      "; %s since version %llu (%s)",
			      policy_verdict_name(dec.verdict_without_override),
			      (unsigned long long)since, when);
	}
	if (dec.override && n > 0 && (size_t)n < sizeof(line)) {
		fmt_time(when, sizeof(when), dec.override->expires_at_s);
		n += snprintf(
			line + n, sizeof(line) - (size_t)n,
			"; relaxed by override %llu (%s, \"%s\") until %s",
			(unsigned long long)dec.override->id,
			dec.override->mode == POLICY_OVERRIDE_ALLOW ? "allow"
								    : "compat",
			dec.override->reason, when);
	}
	if (dec.min_supported && n > 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, "; minimum %s%s%s",
			 dec.min_supported,
			 dec.upgrade_url ? ", upgrade at " : "",
			 dec.upgrade_url ? dec.upgrade_url : "");
	report(d, dec.verdict == POLICY_BLOCKED ? STATUS_WARN : STATUS_OK,
	       "client", "%s", line);
}

/* A captured request: its X-Client-* and Accept-Language headers. */
static int read_request(struct doctor *d, const char *path)
{
	static char buf[16384];
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "tpwallet doctor: %s: %s\n", path,
			tpw_strerror(errno));
		return -1;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *save = NULL;
	for (char *l = strtok_r(buf, "\r\n", &save); l;
	     l = strtok_r(NULL, "\r\n", &save)) {
		char *colon = strchr(l, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strcasecmp(l, "X-Client-Version") == 0)
			snprintf(d->client_version, sizeof(d->client_version),
				 "%s", v);
		else if (strcasecmp(l, "X-Client-Channel") == 0)
			d->channel = v;
		else if (strcasecmp(l, "X-Client-Country") == 0)
			d->country = v;
		else if (strcasecmp(l, "Accept-Language") == 0)
			d->languages = v;
	}
	if (!d->client_version[0]) {
		fprintf(stderr,
			"tpwallet doctor: %s: no X-Client-Version header\n",
			path);
		return -1;
	}
	return 0;
}

/* ---- the running server's probes (--server) --------------------------------
 */

/* One probe of GET /v1/probes: a warn line when it disagrees. */
static void probe_line(struct doctor *d, json_t *p, unsigned counts[5])
{
	const char *name = json_string_value(json_object_get(p, "name"));
	const char *verdict = json_string_value(json_object_get(p, "verdict"));
	const char *own =
		json_string_value(json_object_get(p, "tpwallet_verdict"));
	json_t *status = json_object_get(p, "status");

	if (!verdict) {
		counts[4]++; /* not run yet */
		return;
	}
	counts[strcmp(verdict, "served") == 0		     ? 0
	       : strcmp(verdict, "refused_by_gateway") == 0  ? 1
	       : strcmp(verdict, "refused_by_tpwallet") == 0 ? 2
							     : 3]++;
	if (!json_is_true(json_object_get(p, "disagreement")))
		return;
	report(d, STATUS_WARN, "probe",
	       "%s: the gateway refuses this client (HTTP %lld, no tpwallet "
	       "marker) while tpwallet's policy says %s: look at the "
	       "gateway's rules (docs/operations.md, Probes)",
	       name ? name : "?", (long long)json_integer_value(status),
	       own ? own : "?");
}

/* This binary: the release, the commit, the libraries it runs on (the
 * server says the same in its start line and in /metrics). */
static void check_build(struct doctor *d)
{
	struct buildinfo b;
	char libs[512];

	char detail[PATH_MAX + 600];
	buildinfo_get(&b);
	buildinfo_libs_text(&b, libs, sizeof(libs));
	report(d, STATUS_OK, "build", "tpwallet %s, commit %s; %s", b.version,
	       b.commit, libs);
	const char *sig = release_self_status(d->s.release_public_key_file,
					      detail, sizeof(detail));
	report(d,
	       strcmp(sig, "bad") == 0	      ? STATUS_ACTION
	       : strcmp(sig, "unsigned") == 0 ? STATUS_WARN
					      : STATUS_OK,
	       "release signature", "%s: %s", sig, detail);
}

/* One sample of a Prometheus text page: the value of the first line
 * that starts with name (labels included in name when given), or -1. */
static double metric_value(const char *page, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = page; p && *p;) {
		if (strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '{')) {
			const char *v = strchr(p, ' ');
			const char *nl = strchr(p, '\n');
			if (v && (!nl || v < nl))
				return strtod(v + 1, NULL);
		}
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return -1;
}

/* --server: the acquirer connector as the server's /metrics show it
 * (docs/acquirer.md): a version refused needs action, an open breaker
 * or top-ups left pending a warning.  Nothing when none is configured. */
static void check_acquirer(struct doctor *d)
{
	struct client c;
	struct http_response r = {0};

	if (!d->server)
		return;
	client_init(&c, "tpwallet doctor");
	c.server = d->server;
	c.data_dir = d->s.data_dir;
	c.timeout_s = 5;
	c.no_auth = true;
	if (client_send(&c, "GET", "/metrics", NULL, 0, &r) != 0 || !r.body) {
		http_response_clear(&r);
		return; /* the probes' line says the server is unreachable */
	}
	const char *page = r.body;
	double breaker = metric_value(page, "tpwallet_acquirer_breaker_state");
	if (breaker < 0) {
		http_response_clear(&r);
		return;
	}
	const char *vr = strstr(page, "\ntpwallet_acquirer_version_refused{");
	double refused =
		metric_value(page, "tpwallet_acquirer_version_refused");
	double pending = metric_value(page, "tpwallet_acquirer_pending");
	double opened =
		metric_value(page, "tpwallet_acquirer_breaker_opened_total");
	if (refused > 0 && vr) {
		const char *v = strstr(vr, "version=\""),
			   *m = strstr(vr, "minimum=\"");
		int vl = v ? (int)strcspn(v + 9, "\"") : 0;
		int ml = m ? (int)strcspn(m + 9, "\"") : 0;
		report(d, STATUS_ACTION, "acquirer",
		       "the acquirer refuses our API version %.*s (426); its "
		       "minimum is %.*s: raise acquirer_api_version "
		       "(docs/acquirer.md)",
		       vl, v ? v + 9 : "", ml ? ml : 8,
		       ml ? m + 9 : "not said");
	}
	if (breaker > 0)
		report(d, STATUS_WARN, "acquirer",
		       "the circuit breaker is %s (opened %.0f time(s) since "
		       "start): top-ups are refused 503 until a call succeeds",
		       breaker == 1 ? "open" : "half-open", opened);
	if (pending > 0)
		report(d, STATUS_WARN, "acquirer",
		       "%.0f top-up(s) pending: the acquirer has not said what "
		       "became of them; the resolver keeps asking",
		       pending);
	if (refused <= 0 && breaker == 0 && pending <= 0)
		report(d, STATUS_OK, "acquirer",
		       "breaker closed, no top-up pending, version accepted "
		       "(opened %.0f time(s) since start)",
		       opened);
	http_response_clear(&r);
}

static void check_probes(struct doctor *d)
{
	struct client c;
	struct http_response r = {0};
	json_t *root = NULL;

	if (!d->server)
		return;
	client_init(&c, "tpwallet doctor");
	c.server = d->server;
	c.data_dir = d->s.data_dir;
	c.timeout_s = 5;
	if (client_send(&c, "GET", "/v1/probes", NULL, 0, &r) != 0) {
		report(d, STATUS_WARN, "probes",
		       "cannot read GET /v1/probes from %s (the reason is "
		       "above)",
		       d->server);
		goto cleanup;
	}
	root = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
	json_t *list = json_object_get(root, "probes");
	if (!json_is_array(list)) {
		report(d, STATUS_WARN, "probes",
		       "%s answered GET /v1/probes with no probe list",
		       d->server);
		goto cleanup;
	}
	if (json_array_size(list) == 0) {
		report(d, STATUS_OK, "probes",
		       "%s runs no probe (serve --probe URL:PLATFORM/VERSION "
		       "watches a gateway)",
		       d->server);
		goto cleanup;
	}
	unsigned counts[5] = {0};
	size_t at = d->nresults;
	for (size_t i = 0; i < json_array_size(list); i++)
		probe_line(d, json_array_get(list, i), counts);
	/* The summary first, then the lines of the probes that disagree. */
	report(d, STATUS_OK, "probes",
	       "%zu probe(s) of %s: %u served, %u refused by the gateway, "
	       "%u refused by tpwallet, %u unreachable, %u not run yet",
	       json_array_size(list), d->server, counts[0], counts[1],
	       counts[2], counts[3], counts[4]);
	if (d->nresults > at + 1) {
		struct result sum = d->results[d->nresults - 1];
		memmove(&d->results[at + 1], &d->results[at],
			sizeof(sum) * (d->nresults - 1 - at));
		d->results[at] = sum;
	}
cleanup:
	json_decref(root);
	http_response_clear(&r);
}

/* ---- the table ----------------------------------------------------------- */

/* Named administrators (docs/authz.md): how many, whether the bootstrap
 * token is retired; a warning for a break-glass in the last 24 hours.
 * Said only once the journal holds a role or a break-glass. */
static void check_administrators(struct doctor *d)
{
	if (!d->journal_present || !d->auth)
		return;
	const struct admin *a = auth_admin(d->auth);
	u32 n = 0;
	for (u32 i = 0; i < admin_role_count(a); i++) {
		struct admin_role_info ri;
		admin_role_at(a, i, &ri);
		n += ri.role != ADMIN_ROLE_NONE;
	}
	if (d->glass_at &&
	    (int64_t)(d->glass_at / 1000000000u) > d->now - 86400) {
		char who[JOSE_B64_32_BYTES];
		if (b64url_encode(who, sizeof(who), d->glass_by, 32) != 0)
			who[0] = '\0';
		report(d, STATUS_WARN, "break-glass",
		       "dual-control request %llu was carried out by its "
		       "requester %s alone %lld minutes ago (%u break-glass "
		       "in the journal): check its reason (GET "
		       "/v1/admin/requests/%llu) and the alert",
		       (unsigned long long)d->glass_request, who,
		       (long long)(d->now -
				   (int64_t)(d->glass_at / 1000000000u)) /
			       60,
		       d->glasses, (unsigned long long)d->glass_request);
	}
	if (n == 0)
		return;
	report(d, STATUS_OK, "administrators",
	       "%u named administrator%s; the bootstrap token is %s", n,
	       n == 1 ? "" : "s",
	       admin_retired_at(a) ? "retired" : "not retired");
}

/*
 * In order: each may use what the ones before it found.  Later checks
 * go here.
 */
static const struct {
	const char *name;
	void (*run)(struct doctor *d);
} checks[] = {
	{"data directory", check_data_dir},
	{"key-encryption key", check_kek},
	{"signing keys", check_keys},
	{"administrator credential", check_admin},
	{"journal", check_journal},
	{"journal retention", check_retention},
	{"audit log", check_audit},
	{"witnesses", check_witnesses},
	{"outbound", check_outbound},
	{"expiry list", check_expiries},
	{"snapshots", check_snapshots},
	{"store", check_store},
	{"client policy", check_policy},
	{"administrators", check_administrators},
	{"probes", check_probes},
	{"acquirer", check_acquirer},
	{"build", check_build},
};

/* ---- output -------------------------------------------------------------- */

static void count_statuses(const struct doctor *d, unsigned n[3])
{
	n[0] = n[1] = n[2] = 0;
	for (size_t i = 0; i < d->nresults; i++)
		n[d->results[i].status]++;
}

static void print_text(const struct doctor *d)
{
	unsigned n[3];

	for (size_t i = 0; i < d->nresults; i++) {
		const struct result *r = &d->results[i];
		printf("%-7s %s: %s\n", status_names[r->status], r->name,
		       r->detail);
	}
	count_statuses(d, n);
	printf("%s: %u ok, %u warn, %u action: %s\n", d->s.data_dir, n[0], n[1],
	       n[2],
	       n[2]   ? "someone needs to act on the lines marked action"
	       : n[1] ? "nothing urgent; see the lines marked warn"
		      : "all clear");
}

static int print_json(const struct doctor *d)
{
	unsigned n[3];
	json_t *root = json_object(), *list = json_array();
	int ret = -ENOMEM;

	if (!root || !list)
		goto cleanup;
	for (size_t i = 0; i < d->nresults; i++) {
		const struct result *r = &d->results[i];
		json_t *o =
			json_pack("{s:s, s:s, s:s}", "name", r->name, "status",
				  status_names[r->status], "detail", r->detail);
		if (!o || json_array_append_new(list, o) != 0)
			goto cleanup;
	}
	count_statuses(d, n);
	if (json_object_set(root, "checks", list) != 0 ||
	    json_object_set_new(root, "action_needed",
				json_boolean(n[2] > 0)) != 0)
		goto cleanup;
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		goto cleanup;
	printf("%s\n", text);
	free(text);
	ret = 0;
cleanup:
	json_decref(list);
	json_decref(root);
	return ret;
}

/* ---- the command --------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet doctor [--data DIR] [--config FILE] "
		"[--kek-file FILE] [--json]\n"
		"                       [--warn-days N]\n"
		"                       [--client-version PLATFORM/VERSION "
		"[--channel C] [--country CC]\n"
		"                        | --request FILE] [--server URL]\n"
		"                       [--url https://HOST[:PORT] "
		"[--cacert FILE]]\n\n"
		"Check a data directory offline (a server may be running on "
		"it: doctor\nonly reads): the directory, the key-encryption "
		"key, the signing keys and\ntheir rotation, the "
		"administrator's credential, every journal record, the\naudit "
		"log's newest checkpoint and the snapshots.  One line per "
		"check,\n`ok`, `warn` (attention, not urgent) or `action` "
		"(someone must act now);\nnever a secret.  --json prints "
		"{\"checks\":[{\"name\",\"status\",\"detail\"}],\n"
		"\"action_needed\"}.  --warn-days N (default %u): warn when "
		"the scheduled key\nrotation is due within N days.  Progress "
		"of long reads goes to stderr.\n"
		"The client policy is rebuilt from the journal: which "
		"version is in force,\noverrides; with --client-version "
		"(or a captured request's headers in\n--request FILE) the "
		"decision for that client, its rule and since when.\n"
		"With --server URL, the running server's probes (GET "
		"/v1/probes, with\nDATA/admin.token): a warn line for each "
		"probe whose gateway refuses\nwhat the policy serves.\n"
		"What expires is one list, soonest first: the TLS "
		"certificates (warn 30\nand 14 days ahead, action from 3), "
		"the signing keys' rotation and ends,\nthe KEK's age; with "
		"--url, the certificate that endpoint serves (a\ngateway in "
		"front, or this server: which of its two), verified against\n"
		"--cacert FILE or the system's CAs.\n\n"
		"Exit status: 0 nothing needs action, 1 something does, 2 "
		"usage, 3 the\ndata directory does not exist.  See "
		"docs/operations.md, Diagnosis.\n\n"
		"Example:\n"
		"  tpwallet doctor --data data --client-version "
		"android/3.9.4\n",
		WARN_DAYS_DEFAULT);
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"kek-file", required_argument, NULL, 'k'},
		{"json", no_argument, NULL, 'j'},
		{"warn-days", required_argument, NULL, 'w'},
		{"client-version", required_argument, NULL, 'V'},
		{"channel", required_argument, NULL, 'C'},
		{"country", required_argument, NULL, 'K'},
		{"request", required_argument, NULL, 'R'},
		{"server", required_argument, NULL, 'S'},
		{"url", required_argument, NULL, 'U'},
		{"cacert", required_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *data = NULL, *config = NULL, *kek_file = NULL;
	struct doctor *d = NULL;
	uint64_t v;
	int c, ret;

	d = calloc(1, sizeof(*d));
	if (!d)
		return EXIT_SOFTWARE;
	d->warn_days = WARN_DAYS_DEFAULT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:c:k:jw:hV:C:K:R:S:U:A:", opts,
				NULL)) != -1) {
		switch (c) {
		case 'V':
			snprintf(d->client_version, sizeof(d->client_version),
				 "%s", optarg);
			break;
		case 'C': d->channel = optarg; break;
		case 'S': d->server = optarg; break;
		case 'U': {
			struct http_url u;
			if (http_url_parse(optarg, &u) != 0 || !u.tls) {
				fprintf(stderr,
					"tpwallet doctor: --url wants "
					"https://HOST[:PORT], not '%s'\n",
					optarg);
				ret = EXIT_USAGE;
				goto cleanup;
			}
			d->url = optarg;
			break;
		}
		case 'A': d->cacert = optarg; break;
		case 'K': d->country = optarg; break;
		case 'R':
			if (read_request(d, optarg) != 0) {
				ret = EXIT_USAGE;
				goto cleanup;
			}
			break;
		case 'd': data = optarg; break;
		case 'c': config = optarg; break;
		case 'k': kek_file = optarg; break;
		case 'j': d->json = true; break;
		case 'w':
			if (parse_u64(optarg, WARN_DAYS_MAX, &v) != 0) {
				fprintf(stderr,
					"tpwallet doctor: --warn-days wants "
					"0..%u days, not '%s'\n",
					WARN_DAYS_MAX, optarg);
				ret = EXIT_USAGE;
				goto cleanup;
			}
			d->warn_days = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			ret = 0;
			goto cleanup;
		default:
			usage(stderr);
			ret = EXIT_USAGE;
			goto cleanup;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tpwallet doctor: unexpected argument '%s'\n",
			argv[optind]);
		ret = EXIT_USAGE;
		goto cleanup;
	}
	if (settings_load(&d->s, config) < 0 ||
	    (data && settings_set(&d->s, "data", data) < 0) ||
	    (kek_file && settings_set(&d->s, "kek_file", kek_file) < 0)) {
		ret = EXIT_USAGE;
		goto cleanup;
	}
	settings_finish(&d->s);
	d->now = (int64_t)time(NULL);
	d->ps = pstate_new();
	d->auth = auth_new();

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]) && !d->stop;
	     i++)
		checks[i].run(d);

	if (d->json) {
		if (print_json(d) != 0) {
			fprintf(stderr, "tpwallet doctor: out of memory\n");
			ret = EXIT_SOFTWARE;
			goto cleanup;
		}
	} else {
		print_text(d);
	}
	unsigned n[3];
	count_statuses(d, n);
	ret = d->absent ? DOCTOR_EXIT_ABSENT : n[2] ? DOCTOR_EXIT_ACTION : 0;
cleanup:
	if (d) {
		journal_reader_close(d->rd);
		keyring_kek_free(d->kek);
		pkcs11_close(d->hsm);
		pstate_free(d->ps);
		auth_free(d->auth);
	}
	free(d);
	return ret;
}
