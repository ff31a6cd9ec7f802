/*
 * pgjournal.c - journal groups appended to PostgreSQL under a fenced lease,
 * read back for catch-up (see pgjournal.h for the schema and the rules).
 *
 * Everything goes through libpq's extended protocol with parameters (no
 * SQL is built from data).  A group's bytes go as one binary bytea
 * parameter, stored uncompressed (STORAGE EXTERNAL): a group is journal
 * records the writer already checksummed, and compressing megabytes per
 * commit would cost more than it saves on the wire.
 */
#include "core/clock.h"
#include "core/parse.h"
#include "log/journal.h"
#include "log/pgjournal.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>

#include "banned.h"

/* Two nodes starting together create the schema one after the other. */
#define SCHEMA_LOCK_KEY	    "7587019834"
#define RECONNECT_PAUSE_MS  200u
#define APPEND_ATTEMPTS_MAX 8u
#define HOLDER_BYTES_MAX    128u
#define ERR_BYTES	    256u
#define U64_TEXT_BYTES	    24u
#define SQLSTATE_UNIQUE	    "23505"
#define ROW_ALIGN	    64u

static const char SCHEMA_SQL[] =
	"BEGIN;"
	"SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ");"
	"CREATE TABLE IF NOT EXISTS tpw_journal ("
	" seq bigint PRIMARY KEY, last_seq bigint NOT NULL,"
	" term bigint NOT NULL, checksum bigint NOT NULL,"
	" bytes bytea NOT NULL, CHECK (last_seq >= seq));"
	"ALTER TABLE tpw_journal ALTER COLUMN bytes SET STORAGE EXTERNAL;"
	"CREATE TABLE IF NOT EXISTS tpw_lease ("
	" id int PRIMARY KEY CHECK (id = 1), term bigint NOT NULL,"
	" holder text NOT NULL, expires timestamptz NOT NULL);"
	"INSERT INTO tpw_lease VALUES (1, 0, '', '-infinity')"
	" ON CONFLICT (id) DO NOTHING;"
	"ALTER TABLE tpw_lease ADD COLUMN IF NOT EXISTS"
	" address text NOT NULL DEFAULT '';"
	"CREATE OR REPLACE FUNCTION tpw_journal_notify() RETURNS trigger"
	" LANGUAGE plpgsql AS $f$ BEGIN PERFORM pg_notify('" PGJOURNAL_CHANNEL
	"', NEW.last_seq::text); RETURN NULL; END $f$;"
	"CREATE OR REPLACE TRIGGER tpw_journal_notify AFTER INSERT ON"
	" tpw_journal FOR EACH ROW EXECUTE FUNCTION tpw_journal_notify();"
	"COMMIT";

/* The append: the lease row is updated only while the term is ours, and
 * the group is inserted only through that update (one statement, one
 * transaction: the fence). */
static const char APPEND_SQL[] =
	"WITH l AS (UPDATE tpw_lease SET expires = now() + $6::bigint *"
	" interval '1 millisecond' WHERE id = 1 AND term = $3 RETURNING term)"
	" INSERT INTO tpw_journal (seq, last_seq, term, checksum, bytes)"
	" SELECT $1, $2, l.term, $4, $5 FROM l";

static const char RENEW_SQL[] =
	"UPDATE tpw_lease SET expires = now() + $2::bigint *"
	" interval '1 millisecond' WHERE id = 1 AND term = $1";

static const char LOOKUP_SQL[] =
	"SELECT last_seq, term, checksum, length(bytes)::bigint"
	" FROM tpw_journal WHERE seq = $1";

static const char LAST_SQL[] =
	"SELECT last_seq FROM tpw_journal ORDER BY seq DESC LIMIT 1";

static const char READ_SQL[] =
	"SELECT seq, last_seq, term, checksum, bytes FROM tpw_journal"
	" WHERE seq > $1 AND last_seq >= $2 ORDER BY seq LIMIT $3";

static const char LOCK_LEASE_SQL[] =
	"SELECT term, holder, (expires <= now())::int FROM tpw_lease"
	" WHERE id = 1 FOR UPDATE";

static const char TAKE_LEASE_SQL[] =
	"UPDATE tpw_lease SET term = term + 1, holder = $1, expires = now() +"
	" $2::bigint * interval '1 millisecond', address = $3 WHERE id = 1"
	" RETURNING term";

static const char LEASE_SQL[] =
	"SELECT term, address, (expires <= now())::int FROM tpw_lease"
	" WHERE id = 1";

static const char LISTEN_SQL[] = "LISTEN " PGJOURNAL_CHANNEL;
static const char UNLISTEN_SQL[] = "UNLISTEN *";

struct pgjournal {
	PGconn *conn;
	char *conninfo; /* wiped at close: it may hold a password */
	char *password; /* its password, or NULL: for pq_reason; wiped */
	u32 lease_ms, reconnect_ms;
	u64 term;
	bool listening; /* LISTEN issued on this connection */
	char err[ERR_BYTES];
	/* The append between _start and _finish. */
	bool pending;
	u64 p_seq, p_last, p_term;
	const void *p_bytes;
	size_t p_len;
	u32 p_crc;
};

static char open_err[ERR_BYTES];

static void set_err(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_err(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, ERR_BYTES, fmt, ap);
	va_end(ap);
}

/* libpq's message, first line only (its messages name host and port,
 * never the password). */
static void pq_reason(const struct pgjournal *pj, char *buf, const char *what,
		      const char *msg)
{
	size_t n = strcspn(msg ? msg : "", "\n");
	set_err(buf, "%s: %.*s", what, (int)(n > 200 ? 200 : n),
		msg ? msg : "");
	/* libpq quotes parts of the connection string in some messages:
	 * never the password, written over wherever it appears. */
	size_t pl = pj->password ? strlen(pj->password) : 0;
	for (char *at = pl ? strstr(buf, pj->password) : NULL; at;
	     at = strstr(at + 1, pj->password))
		memset(at, '*', pl);
}

/* PostgreSQL's NOTICE and WARNING lines: libpq would print them raw on
 * stderr, which is the server's JSON log; the session asks for warnings
 * and above only, and these are dropped. */
static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static u64 be64(const char *p)
{
	u64 v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | (u8)p[i];
	return v;
}

/* A binary int8 column of row r (0 when NULL or the wrong size). */
static u64 col_u64(const PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c) || PQgetlength(res, r, c) != 8)
		return 0;
	return be64(PQgetvalue(res, r, c));
}

static const char *u64_text(char buf[U64_TEXT_BYTES], u64 v)
{
	snprintf(buf, U64_TEXT_BYTES, "%llu", (unsigned long long)v);
	return buf;
}

static int connect_once(struct pgjournal *pj, char *err)
{
	if (pj->conn)
		PQfinish(pj->conn);
	pj->listening = false;
	pj->conn = PQconnectdb(pj->conninfo);
	if (!pj->conn) {
		set_err(err, "PostgreSQL: out of memory");
		return -ENOMEM;
	}
	PQsetNoticeProcessor(pj->conn, quiet_notice, NULL);
	if (PQstatus(pj->conn) != CONNECTION_OK) {
		pq_reason(pj, err, "PostgreSQL connection failed",
			  PQerrorMessage(pj->conn));
		return -ENOTCONN;
	}
	PGresult *res = PQexec(pj->conn, "SET synchronous_commit = on;"
					 "SET client_min_messages = warning;"
					 "SET application_name = 'tpwallet'");
	int ret = 0;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pq_reason(pj, err, "PostgreSQL session setup",
			  PQresultErrorMessage(res));
		ret = -EIO;
	}
	PQclear(res);
	return ret;
}

/* Reconnect, retrying until reconnect_ms has passed. */
static int reconnect(struct pgjournal *pj)
{
	u64 deadline = tpw_monotonic_ms() + pj->reconnect_ms;
	const struct timespec pause = {.tv_nsec =
					       RECONNECT_PAUSE_MS * 1000000L};
	int ret;
	for (;;) {
		ret = connect_once(pj, pj->err);
		if (ret == 0 || tpw_monotonic_ms() >= deadline)
			break;
		nanosleep(&pause, NULL);
	}
	return ret;
}

static bool conn_lost(const struct pgjournal *pj)
{
	return !pj->conn || PQstatus(pj->conn) == CONNECTION_BAD;
}

int pgjournal_open(struct pgjournal **out, const char *conninfo,
		   const struct pgjournal_options *opts, const char **err)
{
	struct pgjournal *pj = calloc(1, sizeof(*pj));
	int ret = -ENOMEM;
	*out = NULL;
	*err = open_err;
	set_err(open_err, "out of memory");
	if (!pj)
		return ret;
	pj->conninfo = strdup(conninfo);
	if (!pj->conninfo)
		goto fail;
	/* Parsed here first: libpq's own message for a malformed string
	 * quotes it, password and all. */
	char *perr = NULL;
	PQconninfoOption *co = PQconninfoParse(conninfo, &perr);
	if (!co) {
		set_err(open_err,
			"the cluster connection string is not one libpq "
			"accepts (%s; it is not shown: it may hold a "
			"password)",
			perr ? "malformed" : "out of memory");
		PQfreemem(perr);
		ret = -EINVAL;
		goto fail;
	}
	for (PQconninfoOption *o = co; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val &&
		    o->val[0] && !pj->password)
			pj->password = strdup(o->val);
	for (PQconninfoOption *o = co; o->keyword; o++)
		if (o->val && strcmp(o->keyword, "password") == 0)
			explicit_bzero(o->val, strlen(o->val));
	PQconninfoFree(co);
	pj->lease_ms = opts && opts->lease_ms ? opts->lease_ms
					      : PGJOURNAL_LEASE_MS_DEFAULT;
	pj->reconnect_ms = opts && opts->reconnect_ms
				   ? opts->reconnect_ms
				   : PGJOURNAL_RECONNECT_MS_DEFAULT;
	ret = connect_once(pj, open_err);
	if (ret < 0)
		goto fail;
	PGresult *res = PQexec(pj->conn, SCHEMA_SQL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pq_reason(pj, open_err, "PostgreSQL schema",
			  PQresultErrorMessage(res));
		ret = -EIO;
	}
	PQclear(res);
	if (ret < 0)
		goto fail;
	*out = pj;
	return 0;
fail:
	pgjournal_close(pj);
	return ret;
}

/* One statement with text parameters (binary results).  On a lost
 * connection, reconnects and runs it again (for idempotent statements
 * only), bounded by reconnect_ms. */
static PGresult *exec_retry(struct pgjournal *pj, const char *sql, int n,
			    const char *const *values)
{
	u64 deadline = tpw_monotonic_ms() + pj->reconnect_ms;
	for (;;) {
		PGresult *res = PQexecParams(pj->conn, sql, n, NULL, values,
					     NULL, NULL, 1);
		if (!conn_lost(pj) || tpw_monotonic_ms() >= deadline)
			return res;
		PQclear(res);
		if (reconnect(pj) < 0)
			return NULL;
	}
}

/* exec_retry, then the status wanted: 0 with the result in *out (the
 * caller clears it), or -ENOTCONN / -EIO with the reason set. */
static int query(struct pgjournal *pj, const char *what, const char *sql, int n,
		 const char *const *values, ExecStatusType want, PGresult **out)
{
	PGresult *res = exec_retry(pj, sql, n, values);
	*out = NULL;
	if (res && PQresultStatus(res) == want) {
		*out = res;
		return 0;
	}
	if (res)
		pq_reason(pj, pj->err, what, PQresultErrorMessage(res));
	PQclear(res);
	return conn_lost(pj) ? -ENOTCONN : -EIO;
}

int pgjournal_acquire(struct pgjournal *pj, const char *holder,
		      const char *address, u64 *term)
{
	char ms[U64_TEXT_BYTES];
	int ret = -EIO;
	if (strlen(holder) >= HOLDER_BYTES_MAX ||
	    strlen(address) >= PGJOURNAL_ADDRESS_BYTES) {
		set_err(pj->err,
			"lease holder name or address longer than %u bytes",
			HOLDER_BYTES_MAX - 1);
		return -EINVAL;
	}
	if (conn_lost(pj) && (ret = reconnect(pj)) < 0)
		return ret;
	PGresult *res = PQexec(pj->conn, "BEGIN");
	PQclear(res);
	res = PQexecParams(pj->conn, LOCK_LEASE_SQL, 0, NULL, NULL, NULL, NULL,
			   0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		pq_reason(pj, pj->err, "lease read", PQresultErrorMessage(res));
		ret = conn_lost(pj) ? -ENOTCONN : -EIO;
		goto rollback;
	}
	bool expired = strcmp(PQgetvalue(res, 0, 2), "1") == 0;
	if (!expired && strcmp(PQgetvalue(res, 0, 1), holder) != 0) {
		set_err(pj->err,
			"the lease is held by another node (term %s) and "
			"has not expired",
			PQgetvalue(res, 0, 0));
		ret = -EBUSY;
		goto rollback;
	}
	PQclear(res);
	const char *take[3] = {holder, u64_text(ms, pj->lease_ms), address};
	res = PQexecParams(pj->conn, TAKE_LEASE_SQL, 3, NULL, take, NULL, NULL,
			   0);
	u64 t = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    parse_u64(PQgetvalue(res, 0, 0), UINT64_MAX, &t) < 0) {
		pq_reason(pj, pj->err, "lease update",
			  PQresultErrorMessage(res));
		ret = conn_lost(pj) ? -ENOTCONN : -EIO;
		goto rollback;
	}
	PQclear(res);
	res = PQexec(pj->conn, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		/* Not knowing whether the term was taken costs nothing: the
		 * next acquire takes another. */
		pq_reason(pj, pj->err, "lease commit",
			  PQresultErrorMessage(res));
		PQclear(res);
		return conn_lost(pj) ? -ENOTCONN : -EIO;
	}
	PQclear(res);
	pj->term = t;
	*term = t;
	return 0;
rollback:
	PQclear(res);
	if (!conn_lost(pj))
		PQclear(PQexec(pj->conn, "ROLLBACK"));
	return ret;
}

u64 pgjournal_term(const struct pgjournal *pj)
{
	return pj->term;
}

static int send_append(struct pgjournal *pj)
{
	char seq[U64_TEXT_BYTES], last[U64_TEXT_BYTES], term[U64_TEXT_BYTES];
	char crc[U64_TEXT_BYTES], ms[U64_TEXT_BYTES];
	const char *values[6] = {u64_text(seq, pj->p_seq),
				 u64_text(last, pj->p_last),
				 u64_text(term, pj->p_term),
				 u64_text(crc, pj->p_crc),
				 pj->p_bytes,
				 u64_text(ms, pj->lease_ms)};
	int lengths[6] = {0, 0, 0, 0, (int)pj->p_len, 0};
	int formats[6] = {0, 0, 0, 0, 1, 0};
	if (!PQsendQueryParams(pj->conn, APPEND_SQL, 6, NULL, values, lengths,
			       formats, 0)) {
		pq_reason(pj, pj->err, "journal append send",
			  PQerrorMessage(pj->conn));
		return conn_lost(pj) ? -ENOTCONN : -EIO;
	}
	return 0;
}

int pgjournal_append_start(struct pgjournal *pj, u64 seq, u64 last_seq,
			   u64 term, const void *bytes, size_t len)
{
	if (pj->pending || len == 0 || len > INT32_MAX || last_seq < seq) {
		set_err(pj->err, "journal append: bad arguments");
		return -EINVAL;
	}
	pj->pending = true;
	pj->p_seq = seq;
	pj->p_last = last_seq;
	pj->p_term = term;
	pj->p_bytes = bytes;
	pj->p_len = len;
	pj->p_crc = crc32c(0, bytes, len);
	/* A send that fails leaves the outcome to _finish's resolution. */
	if (!conn_lost(pj))
		(void)send_append(pj);
	return 0;
}

/* The outcome of the statement sent: 1 committed, 0 not (fenced), or a
 * negative code; *unknown when the connection was lost, *dup on a unique
 * violation. */
static int collect(struct pgjournal *pj, bool *unknown, bool *dup)
{
	int ret = -EIO;
	bool got = false;
	PGresult *res;
	*unknown = *dup = false;
	while ((res = PQgetResult(pj->conn)) != NULL) {
		if (!got) {
			got = true;
			ExecStatusType st = PQresultStatus(res);
			const char *state =
				PQresultErrorField(res, PG_DIAG_SQLSTATE);
			if (st == PGRES_COMMAND_OK) {
				ret = strcmp(PQcmdTuples(res), "1") == 0;
			} else if (state && !strcmp(state, SQLSTATE_UNIQUE)) {
				*dup = true;
			} else {
				pq_reason(pj, pj->err, "journal append",
					  PQresultErrorMessage(res));
			}
		}
		PQclear(res);
	}
	if (conn_lost(pj)) {
		/* Even a COMMAND_OK seen before the loss stands; anything
		 * else is unknown. */
		*unknown = !(got && ret == 1);
		if (*unknown)
			pq_reason(pj, pj->err,
				  "journal append: connection lost",
				  PQerrorMessage(pj->conn));
	} else if (!got) {
		pq_reason(pj, pj->err, "journal append: no result",
			  PQerrorMessage(pj->conn));
	}
	return ret;
}

/* Is the pending group in the table?  1 yes (ours), 0 absent, -EEXIST
 * another group holds the seq, or another negative code. */
static int lookup_pending(struct pgjournal *pj)
{
	char seq[U64_TEXT_BYTES];
	const char *values[1] = {u64_text(seq, pj->p_seq)};
	PGresult *res;
	int ret = query(pj, "journal read-back", LOOKUP_SQL, 1, values,
			PGRES_TUPLES_OK, &res);
	if (ret < 0) {
		return ret;
	} else if (PQntuples(res) == 0) {
		ret = 0;
	} else if (col_u64(res, 0, 0) == pj->p_last &&
		   col_u64(res, 0, 1) == pj->p_term &&
		   col_u64(res, 0, 2) == pj->p_crc &&
		   col_u64(res, 0, 3) == pj->p_len) {
		ret = 1;
	} else {
		set_err(pj->err,
			"journal seq %llu is already in the table with "
			"other bytes (term %llu): diverged",
			(unsigned long long)pj->p_seq,
			(unsigned long long)col_u64(res, 0, 1));
		ret = -EEXIST;
	}
	PQclear(res);
	return ret;
}

int pgjournal_append_finish(struct pgjournal *pj)
{
	int out = -EINVAL;
	if (!pj->pending) {
		set_err(pj->err, "journal append: nothing pending");
		return out;
	}
	for (unsigned attempt = 0; attempt < APPEND_ATTEMPTS_MAX; attempt++) {
		bool unknown = true, dup = false;
		int r = 0;
		if (!conn_lost(pj))
			r = collect(pj, &unknown, &dup);
		if (!unknown && !dup) {
			out = r == 1 ? 0 : r;
			if (r == 0) {
				set_err(pj->err,
					"journal append fenced: the lease is "
					"no longer term %llu",
					(unsigned long long)pj->p_term);
				out = -ESTALE;
			}
			goto done;
		}
		/* Lost connection or the seq already there: read it back,
		 * never append twice. */
		if (conn_lost(pj) && (r = reconnect(pj)) < 0) {
			out = r;
			goto done;
		}
		r = lookup_pending(pj);
		if (r == 1) {
			out = 0;
			goto done;
		}
		if (r == -ENOTCONN)
			continue;
		if (r < 0) {
			out = r;
			goto done;
		}
		if (dup) {
			/* Deleted between the insert and the lookup: not
			 * something this module's users do. */
			set_err(pj->err, "journal seq %llu vanished",
				(unsigned long long)pj->p_seq);
			out = -EIO;
			goto done;
		}
		r = send_append(pj);
		if (r < 0 && r != -ENOTCONN) {
			out = r;
			goto done;
		}
	}
	set_err(pj->err,
		"journal append: outcome still unknown after %u "
		"attempts",
		APPEND_ATTEMPTS_MAX);
	out = -ENOTCONN;
done:
	pj->pending = false;
	pj->p_bytes = NULL;
	return out;
}

int pgjournal_append(struct pgjournal *pj, u64 seq, u64 last_seq, u64 term,
		     const void *bytes, size_t len)
{
	int ret = pgjournal_append_start(pj, seq, last_seq, term, bytes, len);
	return ret < 0 ? ret : pgjournal_append_finish(pj);
}

int pgjournal_renew(struct pgjournal *pj, u64 term)
{
	char t[U64_TEXT_BYTES], ms[U64_TEXT_BYTES];
	const char *values[2] = {u64_text(t, term), u64_text(ms, pj->lease_ms)};
	PGresult *res;
	int ret = query(pj, "lease renewal", RENEW_SQL, 2, values,
			PGRES_COMMAND_OK, &res);
	if (ret < 0)
		return ret;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		set_err(pj->err, "lease lost: no longer term %llu",
			(unsigned long long)term);
		ret = -ESTALE;
	}
	PQclear(res);
	return ret;
}

int pgjournal_last_seq(struct pgjournal *pj, u64 *last_seq)
{
	PGresult *res;
	int ret = query(pj, "journal last seq", LAST_SQL, 0, NULL,
			PGRES_TUPLES_OK, &res);
	if (ret < 0)
		return ret;
	*last_seq = PQntuples(res) ? col_u64(res, 0, 0) : 0;
	PQclear(res);
	return ret;
}

/* A statement without parameters nor rows: 0 or query's codes. */
static int command(struct pgjournal *pj, const char *what, const char *sql)
{
	PGresult *res;
	int ret = query(pj, what, sql, 0, NULL, PGRES_COMMAND_OK, &res);
	if (ret == 0)
		PQclear(res);
	return ret;
}

int pgjournal_lease(struct pgjournal *pj, struct pgjournal_lease *out)
{
	PGresult *res;
	int ret = query(pj, "lease read", LEASE_SQL, 0, NULL, PGRES_TUPLES_OK,
			&res);
	if (ret < 0)
		return ret;
	if (PQntuples(res) != 1 || PQgetlength(res, 0, 2) != 4) {
		set_err(pj->err, "lease read: no lease row");
		PQclear(res);
		return -EIO;
	}
	out->term = col_u64(res, 0, 0);
	snprintf(out->address, sizeof(out->address), "%s",
		 PQgetvalue(res, 0, 1));
	/* A binary int4: big-endian, so 1 is in its last byte. */
	out->expired = PQgetvalue(res, 0, 2)[3] == 1;
	PQclear(res);
	return 0;
}

/* Drain libpq's queue of notifications: the highest last_seq named. */
static void drain_notifies(struct pgjournal *pj, u64 *last)
{
	PGnotify *n;
	while ((n = PQnotifies(pj->conn)) != NULL) {
		u64 v = 0;
		if (parse_u64(n->extra, UINT64_MAX, &v) == 0 && v > *last)
			*last = v;
		PQfreemem(n);
	}
}

int pgjournal_wait(struct pgjournal *pj, u32 timeout_ms, u64 *notified)
{
	*notified = 0;
	if (conn_lost(pj)) {
		int ret = reconnect(pj);
		if (ret < 0)
			return ret;
	}
	if (!pj->listening) {
		int ret = command(pj, "listen", LISTEN_SQL);
		if (ret < 0)
			return ret;
		pj->listening = true;
		return 1; /* rows may have come before: read them */
	}
	drain_notifies(pj, notified);
	if (*notified)
		return 1;
	struct pollfd pfd = {.fd = PQsocket(pj->conn), .events = POLLIN};
	int n = poll(&pfd, 1, (int)timeout_ms);
	if (n < 0 && errno != EINTR) {
		set_err(pj->err, "waiting for notifications: poll failed");
		return -EIO;
	}
	if (n > 0 && !PQconsumeInput(pj->conn)) {
		pq_reason(pj, pj->err, "waiting for notifications",
			  PQerrorMessage(pj->conn));
		return -ENOTCONN;
	}
	drain_notifies(pj, notified);
	return *notified ? 1 : 0;
}

int pgjournal_unlisten(struct pgjournal *pj)
{
	u64 ignored = 0;
	if (!pj->listening)
		return 0;
	int ret = command(pj, "unlisten", UNLISTEN_SQL);
	if (ret < 0)
		return ret;
	pj->listening = false;
	drain_notifies(pj, &ignored);
	return 0;
}

/* Room for a row's bytes at an aligned address: libpq's are not, and
 * the ledger reads its 128-byte events with aligned 16-byte loads. */
static int aligned_room(u8 **buf, size_t *cap, size_t len)
{
	if (len <= *cap)
		return 0;
	size_t want = (len + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
	u8 *n = aligned_alloc(ROW_ALIGN, want);
	if (!n)
		return -ENOMEM;
	free(*buf);
	*buf = n;
	*cap = want;
	return 0;
}

int pgjournal_read(struct pgjournal *pj, u64 from_seq, pgjournal_row_fn fn,
		   void *ctx)
{
	char after[U64_TEXT_BYTES], from[U64_TEXT_BYTES], n[U64_TEXT_BYTES];
	u64 cursor = 0;
	u8 *copy = NULL;
	size_t cap = 0;
	int ret = 0;
	for (;;) {
		const char *values[3] = {u64_text(after, cursor),
					 u64_text(from, from_seq),
					 u64_text(n, PGJOURNAL_READ_ROWS)};
		PGresult *res;
		ret = query(pj, "journal read", READ_SQL, 3, values,
			    PGRES_TUPLES_OK, &res);
		if (ret < 0)
			break;
		int rows = PQntuples(res);
		for (int r = 0; r < rows && ret == 0; r++) {
			u64 seq = col_u64(res, r, 0);
			size_t len = (size_t)PQgetlength(res, r, 4);
			if (crc32c(0, PQgetvalue(res, r, 4), len) !=
				    col_u64(res, r, 3) ||
			    seq <= cursor) {
				set_err(pj->err,
					"journal row %llu fails its checksum",
					(unsigned long long)seq);
				ret = -EBADMSG;
				break;
			}
			ret = aligned_room(&copy, &cap, len);
			if (ret < 0) {
				set_err(pj->err, "out of memory");
				break;
			}
			memcpy(copy, PQgetvalue(res, r, 4), len);
			cursor = seq;
			ret = fn(ctx, seq, col_u64(res, r, 1),
				 col_u64(res, r, 2), copy, len);
		}
		PQclear(res);
		if (ret != 0 || rows < (int)PGJOURNAL_READ_ROWS)
			break;
	}
	free(copy);
	return ret;
}

const char *pgjournal_error(const struct pgjournal *pj)
{
	return pj->err;
}

void pgjournal_close(struct pgjournal *pj)
{
	if (!pj)
		return;
	if (pj->conn)
		PQfinish(pj->conn);
	if (pj->conninfo) {
		explicit_bzero(pj->conninfo, strlen(pj->conninfo));
		free(pj->conninfo);
	}
	if (pj->password) {
		explicit_bzero(pj->password, strlen(pj->password));
		free(pj->password);
	}
	free(pj);
}

bool pgjournal_conninfo_has_password(const char *conninfo)
{
	char *perr = NULL;
	bool has = false;
	PQconninfoOption *co = PQconninfoParse(conninfo, &perr);
	PQfreemem(perr);
	if (!co)
		return false;
	for (PQconninfoOption *o = co; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val &&
		    o->val[0]) {
			has = true;
			explicit_bzero(o->val, strlen(o->val));
		}
	PQconninfoFree(co);
	return has;
}
