/*
 * test_engine_auth.c - the authorization state through the engine:
 * JOURNAL_COMMAND records (principal, revoke, key, accounts_owned,
 * transfers_guarded) applied in journal order; malformed commands refused
 * before they are journaled (a bad record would be durable, then stop
 * every replay); the same auth digest after a replay and after a start
 * from a snapshot; a guarded batch over its cap leaves the ledger alone;
 * and concurrent guarded requests never together pass a total cap.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/auth.h"
#include "core/result.h"
#include "engine/engine.h"
#include "engine/logger.h"
#include "log/journal.h"
#include "log/fsdir.h"

#include "tmpdir_fixture.h"

#include "banned.h"

static int setup(void **state)
{
	logger_set_level(LOG_ERROR);
	return tmpdir_setup(state, "/tmp/tpw-engine-auth-XXXXXX");
}

static int teardown(void **state)
{
	return tmpdir_teardown(state);
}

static int try_open(const char *dir, u64 snapshot_every, struct engine **e)
{
	const char *err = NULL;
	struct engine_options o = {.data_dir = dir,
				   .snapshot_every_records = snapshot_every,
				   .quiet = true};
	int ret = engine_open(e, &o, &err);
	if (ret < 0)
		fprintf(stderr, "engine_open: %s (%d)\n", err ? err : "?", ret);
	return ret;
}

static struct engine *open_engine(const char *dir, u64 snapshot_every)
{
	struct engine *e = NULL;
	assert_int_equal(try_open(dir, snapshot_every, &e), 0);
	return e;
}

/* ---- building commands ------------------------------------------------- */

struct cmd {
	u8 *p;
	u32 bytes, count;
};

static struct cmd command(u16 kind, const void *ext, u32 ext_bytes,
			  const void *events, u32 count)
{
	struct command_header h = {
		.kind = kind, .ext_bytes = ext_bytes, .count = count};
	struct cmd c = {
		.bytes = (u32)(sizeof(h) + ext_bytes + (size_t)count * 128u),
		.count = count};
	c.p = malloc(c.bytes);
	assert_non_null(c.p);
	memcpy(c.p, &h, sizeof(h));
	if (ext_bytes)
		memcpy(c.p + sizeof(h), ext, ext_bytes);
	if (count)
		memcpy(c.p + sizeof(h) + ext_bytes, events,
		       (size_t)count * 128u);
	return c;
}

/* Execute; results has room for max(count, 1). */
static int execute(struct engine *e, struct cmd c, u32 *results)
{
	struct engine_request r = {.op = ENGINE_COMMAND,
				   .count = c.count,
				   .payload_bytes = c.bytes,
				   .events = c.p,
				   .results = results};
	int ret = engine_execute(e, &r);
	free(c.p);
	return ret;
}

/* An event-less command; returns its outcome. */
static u32 outcome_of(struct engine *e, u16 kind, const void *ext, u32 bytes)
{
	u32 out = 0xdead;
	assert_int_equal(execute(e, command(kind, ext, bytes, NULL, 0), &out),
			 0);
	return out;
}

static void key32(u8 out[32], u32 hi, u32 lo)
{
	memset(out, 0, 32);
	memcpy(out, &hi, 4);
	memcpy(out + 8, &lo, 4);
	out[31] = 0x5A;
}

static struct auth_principal principal(u32 i, const char *name)
{
	struct auth_principal p;
	memset(&p, 0, sizeof(p));
	key32(p.id, i, 1);
	key32(p.pub, i, 2);
	if (name)
		memcpy(p.name, name, strlen(name));
	return p;
}

static struct auth_guard guard(u32 i, u32 flags, u128 cap, u64 uses)
{
	struct auth_guard g;
	memset(&g, 0, sizeof(g));
	key32(g.link, i, 10);
	key32(g.iss, i, 11);
	key32(g.jti_hash, i, 12);
	g.flags = flags;
	g.total_cap = cap;
	g.uses_max = uses;
	return g;
}

static struct transfer xfer(u128 id, u128 dr, u128 cr, u128 amount)
{
	struct transfer t;
	memset(&t, 0, sizeof(t));
	t.id = id;
	t.debit_account_id = dr;
	t.credit_account_id = cr;
	t.amount = amount;
	t.ledger = 1;
	t.code = 1;
	return t;
}

static void plain_accounts(struct engine *e, u64 first, u32 n)
{
	struct account *a = calloc(n, sizeof(*a));
	u32 *res = calloc(n, sizeof(u32));
	for (u32 i = 0; i < n; i++) {
		a[i].id = first + i;
		a[i].ledger = 1;
		a[i].code = 7;
	}
	struct engine_request r = {.op = ENGINE_CREATE_ACCOUNTS,
				   .count = n,
				   .events = a,
				   .results = res};
	assert_int_equal(engine_execute(e, &r), 0);
	for (u32 i = 0; i < n; i++)
		assert_int_equal(res[i], CREATE_ACCOUNT_ok);
	free(a);
	free(res);
}

/* Accounts first..first+n-1 owned by `owner`; returns nothing, checks
 * every one was created. */
static void owned_accounts(struct engine *e, u64 first, u32 n,
			   const u8 owner[32])
{
	struct account *a = calloc(n, sizeof(*a));
	u32 *res = calloc(n, sizeof(u32));
	for (u32 i = 0; i < n; i++) {
		a[i].id = first + i;
		a[i].ledger = 1;
		a[i].code = 7;
	}
	struct auth_owner o;
	memcpy(o.owner, owner, 32);
	assert_int_equal(
		execute(e,
			command(AUTH_CMD_ACCOUNTS_OWNED, &o, sizeof(o), a, n),
			res),
		0);
	for (u32 i = 0; i < n; i++)
		assert_int_equal(res[i], CREATE_ACCOUNT_ok);
	free(a);
	free(res);
}

/* A guarded batch; results into res (room for n). */
static int guarded(struct engine *e, const struct auth_guard *g, u32 ng,
		   const struct transfer *t, u32 n, u32 *res)
{
	return execute(e,
		       command(AUTH_CMD_TRANSFERS_GUARDED, g,
			       ng * (u32)sizeof(*g), t, n),
		       res);
}

struct digests {
	u8 auth[32], ledger[32];
};

static struct digests digests(struct engine *e)
{
	struct digests d;
	const struct ledger *l = engine_read_begin(e);
	ledger_digest(l, d.ledger);
	auth_digest(engine_auth(e), d.auth);
	engine_read_end(e);
	return d;
}

static void counter(struct engine *e, const struct auth_guard *g, u128 *spent,
		    u64 *uses)
{
	engine_read_begin(e);
	auth_counter_get(engine_auth(e), g->link, spent, uses);
	engine_read_end(e);
}

static u64 records_written(struct engine *e)
{
	struct engine_stats st;
	engine_stats(e, &st);
	return st.records;
}

/* ---- tests ---------------------------------------------------------- */

/* Every command kind through engine_execute, and what it leaves. */
static void commands_apply_in_journal_order(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 0);

	struct auth_principal alice = principal(1, "alice");
	assert_int_equal(
		outcome_of(e, AUTH_CMD_PRINCIPAL, &alice, sizeof(alice)),
		AUTH_OK);
	assert_int_equal(
		outcome_of(e, AUTH_CMD_PRINCIPAL, &alice, sizeof(alice)),
		AUTH_EXISTS);
	struct auth_principal bob = principal(2, "alice");
	assert_int_equal(outcome_of(e, AUTH_CMD_PRINCIPAL, &bob, sizeof(bob)),
			 AUTH_NAME_TAKEN);

	struct auth_revoke rv;
	memset(&rv, 0, sizeof(rv));
	key32(rv.iss, 9, 9);
	key32(rv.jti_hash, 9, 10);
	memcpy(rv.jti, "j-1", 3);
	assert_int_equal(outcome_of(e, AUTH_CMD_REVOKE, &rv, sizeof(rv)),
			 AUTH_OK);
	assert_int_equal(outcome_of(e, AUTH_CMD_REVOKE, &rv, sizeof(rv)),
			 AUTH_ALREADY_REVOKED);

	struct auth_key_event k;
	memset(&k, 0, sizeof(k));
	memcpy(k.kid, "k1", 2);
	k.kind = AUTH_KEY_CREATED;
	k.not_after = INT64_MAX;
	assert_int_equal(outcome_of(e, AUTH_CMD_KEY, &k, sizeof(k)), AUTH_OK);

	owned_accounts(e, 1, 4, alice.id);
	u8 zero[32] = {0};
	owned_accounts(e, 11, 2, zero); /* the administrator's */

	struct auth_guard g = guard(3, AUTH_GUARD_TOTAL_CAP, 100, 0);
	struct transfer t = xfer(1001, 1, 2, 60);
	u32 res[2];
	assert_int_equal(guarded(e, &g, 1, &t, 1, res), 0);
	assert_int_equal(res[0], CREATE_TRANSFER_ok);
	t = xfer(1002, 1, 2, 41);
	assert_int_equal(guarded(e, &g, 1, &t, 1, res), 0);
	assert_int_equal(res[0], CREATE_TRANSFER_exceeds_mandate_total_cap);
	t.amount = 40;
	assert_int_equal(guarded(e, &g, 1, &t, 1, res), 0);
	assert_int_equal(res[0], CREATE_TRANSFER_ok);
	/* A failed transfer under a capped link is not counted. */
	struct auth_guard u = guard(4, AUTH_GUARD_USES, 0, 1);
	t = xfer(1003, 1, 99, 1); /* no such credit account */
	assert_int_equal(guarded(e, &u, 1, &t, 1, res), 0);
	assert_int_equal(res[0], CREATE_TRANSFER_credit_account_not_found);

	/* A revoked link refuses the batch. */
	struct auth_guard r = guard(5, 0, 0, 0);
	memcpy(r.iss, rv.iss, 32);
	memcpy(r.jti_hash, rv.jti_hash, 32);
	t = xfer(1004, 1, 2, 1);
	assert_int_equal(guarded(e, &r, 1, &t, 1, res), 0);
	assert_int_equal(res[0], CREATE_TRANSFER_mandate_revoked);

	const struct ledger *l = engine_read_begin(e);
	const struct auth *a = engine_auth(e);
	struct auth_principal_info info;
	assert_true(auth_principal_get(a, alice.id, &info));
	assert_string_equal(info.name, "alice");
	assert_false(auth_principal_get(a, bob.id, NULL));
	assert_true(auth_revoked(a, rv.iss, rv.jti_hash));
	assert_int_equal(auth_key_event_count(a), 1);
	u8 owner[32];
	for (u64 id = 1; id <= 4; id++) {
		assert_true(auth_owner_get(a, id, owner));
		assert_memory_equal(owner, alice.id, 32);
	}
	assert_false(auth_owner_get(a, 11, owner));
	assert_false(auth_owner_get(a, 12, owner));
	u128 spent;
	u64 uses;
	auth_counter_get(a, g.link, &spent, &uses);
	assert_true(spent == 100);
	assert_int_equal(uses, 2);
	auth_counter_get(a, u.link, &spent, &uses);
	assert_int_equal(uses, 0);
	struct account acc;
	assert_int_equal(ledger_lookup_account(l, 1, &acc), 0);
	assert_true(acc.debits_posted == 100);
	struct transfer tr;
	assert_int_equal(ledger_lookup_transfer(l, 1001, &tr), 0);
	assert_int_not_equal(ledger_lookup_transfer(l, 1004, &tr), 0);
	engine_read_end(e);
	engine_close(e);
}

static void noop_done(struct engine_request *r)
{
	(void)r;
}

static int submit_raw(struct engine *e, const void *payload, u32 bytes,
		      u32 count, u32 *res)
{
	struct engine_request r = {.op = ENGINE_COMMAND,
				   .count = count,
				   .payload_bytes = bytes,
				   .events = payload,
				   .results = res,
				   .done = noop_done};
	return engine_submit(e, &r);
}

/* Submit a command built from these sizes; 1 when refused with -EINVAL.
 * ext points at 2 KiB; count events follow the ext. */
static int refused(struct engine *e, u16 kind, const u8 *ext, u32 ext_bytes,
		   u32 count, u32 hdr_count, int bytes_adj)
{
	static u8 buf[16 + 16 * 128 + 8 * 128];
	u32 res[8];
	struct transfer t = xfer(1, 1, 2, 1);
	memset(buf, 0, sizeof(buf));
	struct command_header h = {
		.kind = kind, .ext_bytes = ext_bytes, .count = hdr_count};
	memcpy(buf, &h, sizeof(h));
	assert_true(ext_bytes <= 16 * 128 && count <= 4);
	memcpy(buf + 16, ext, ext_bytes);
	for (u32 i = 0; i < count; i++)
		memcpy(buf + 16 + ext_bytes + i * 128u, &t, 128);
	u32 bytes = (u32)((int)(16 + ext_bytes + count * 128u) + bytes_adj);
	int ret = submit_raw(e, buf, bytes, count, res);
	assert_int_equal(ret, -EINVAL);
	return ret == -EINVAL;
}

/* Header, sizes and kinds that apply_command() would refuse: refused at
 * the door, nothing journaled, the next good command gets the next seq. */
static void malformed_commands_refused_and_never_journaled(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 0);
	plain_accounts(e, 1, 2);
	u64 seq0 = engine_durable_seq(e);
	u64 rec0 = records_written(e);

	static u8 buf[16 + 16 * 128 + 8 * 128];
	u32 res[8];
	struct command_header h;
	struct auth_guard g = guard(1, AUTH_GUARD_USES, 0, 9);
	struct auth_principal p = principal(1, NULL);
	struct auth_revoke rv;
	memset(&rv, 0, sizeof(rv));
	key32(rv.iss, 1, 1);
	key32(rv.jti_hash, 1, 2);
	/* Ext sources as big as any ext below, so none is read past. */
	static u8 pext[16 * 128], gext[16 * 128], rext[16 * 128];
	memcpy(pext, &p, sizeof(p));
	for (u32 k = 0; k < 16; k++)
		memcpy(gext + k * 128u, &g, sizeof(g));
	memcpy(rext, &rv, sizeof(rv));
	int cases = 0;

	/* Unknown kinds. */
	cases += refused(e, 0, pext, 128, 0, 0, 0);
	cases += refused(e, 6, pext, 128, 0, 0, 0);
	cases += refused(e, 0xffff, pext, 128, 0, 0, 0);
	/* Sizes that disagree with the header, or the request. */
	cases += refused(e, AUTH_CMD_PRINCIPAL, pext, 128, 0, 0, 16);
	cases += refused(e, AUTH_CMD_PRINCIPAL, pext, 128, 0, 0, -16);
	cases += refused(e, AUTH_CMD_PRINCIPAL, pext, 128, 0, 0, 1);
	cases += refused(e, AUTH_CMD_PRINCIPAL, pext, 112, 0, 0,
			 0); /* ext too small */
	cases += refused(e, AUTH_CMD_PRINCIPAL, pext, 144, 0, 0,
			 0); /* ext too big */
	cases += refused(e, AUTH_CMD_PRINCIPAL, pext, 128, 1, 1,
			 0); /* with events */
	cases += refused(e, AUTH_CMD_PRINCIPAL, pext, 120, 0, 0,
			 8); /* ext % 16 */
	cases += refused(e, AUTH_CMD_REVOKE, rext, 128, 0, 0, 0);
	cases += refused(e, AUTH_CMD_REVOKE, rext, 160, 0, 0, 0);
	cases += refused(e, AUTH_CMD_KEY, rext, 96, 0, 0, 0);
	cases += refused(e, AUTH_CMD_KEY, rext, 128, 0, 0, 0);
	cases += refused(e, AUTH_CMD_ACCOUNTS_OWNED, pext, 32, 0, 0,
			 0); /* no accounts */
	cases += refused(e, AUTH_CMD_ACCOUNTS_OWNED, pext, 48, 1, 1,
			 0); /* ext size */
	cases += refused(e, AUTH_CMD_ACCOUNTS_OWNED, pext, 32, 2, 1,
			 0); /* count != hdr */
	cases += refused(e, AUTH_CMD_ACCOUNTS_OWNED, pext, 32, 1, 2, 0);
	cases += refused(e, AUTH_CMD_TRANSFERS_GUARDED, gext, 0, 1, 1,
			 0); /* no links */
	cases += refused(e, AUTH_CMD_TRANSFERS_GUARDED, gext, 128, 0, 0,
			 0); /* no events */
	cases += refused(e, AUTH_CMD_TRANSFERS_GUARDED, gext, 64, 1, 1,
			 0); /* half a link */
	cases += refused(e, AUTH_CMD_TRANSFERS_GUARDED, gext, 144, 1, 1, 0);
	cases += refused(e, AUTH_CMD_TRANSFERS_GUARDED, gext, 9 * 128, 1, 1,
			 0); /* 9 */
	cases += refused(e, AUTH_CMD_TRANSFERS_GUARDED, gext, 128, 1, 1,
			 128); /* extra */

	/* A payload shorter than its header; a count past the limit. */
	h = (struct command_header){.kind = AUTH_CMD_PRINCIPAL,
				    .ext_bytes = 128};
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(submit_raw(e, buf, 15, 0, res), -EINVAL);
	assert_int_equal(submit_raw(e, buf, 0, 0, res), -EINVAL);
	h = (struct command_header){.kind = AUTH_CMD_ACCOUNTS_OWNED,
				    .ext_bytes = 32,
				    .count = BATCH_EVENTS_MAX + 1};
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(submit_raw(e, buf,
				    16 + 32 + (BATCH_EVENTS_MAX + 1) * 128u,
				    BATCH_EVENTS_MAX + 1, res),
			 -EINVAL);
	/* A header whose sizes overflow 32 bits when added. */
	h = (struct command_header){.kind = AUTH_CMD_ACCOUNTS_OWNED,
				    .ext_bytes = 0xfffffff0u,
				    .count = 1};
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(submit_raw(e, buf, 16 + 128 - 16, 1, res), -EINVAL);
	/* No results buffer, no payload. */
	struct cmd good = command(AUTH_CMD_PRINCIPAL, &p, sizeof(p), NULL, 0);
	struct engine_request r = {.op = ENGINE_COMMAND,
				   .payload_bytes = good.bytes,
				   .events = good.p,
				   .results = NULL,
				   .done = noop_done};
	assert_int_equal(engine_submit(e, &r), -EINVAL);
	r.results = res;
	r.events = NULL;
	assert_int_equal(engine_submit(e, &r), -EINVAL);
	assert_true(cases >= 24);

	/* Nothing reached the journal or the state. */
	usleep(100000); /* a refused one would have been committed by now */
	assert_int_equal(engine_durable_seq(e), seq0);
	assert_int_equal(records_written(e), rec0);
	engine_read_begin(e);
	assert_int_equal(auth_principal_count(engine_auth(e)), 0);
	engine_read_end(e);

	/* The next good command is the next record. */
	struct engine_request ok = {.op = ENGINE_COMMAND,
				    .payload_bytes = good.bytes,
				    .events = good.p,
				    .results = res};
	assert_int_equal(engine_execute(e, &ok), 0);
	assert_int_equal(res[0], AUTH_OK);
	assert_int_equal(ok.seq, seq0 + 1);
	free(good.p);
	engine_close(e);

	/* And a replay goes through: no bad record is in the journal. */
	e = open_engine(f->dir, 0);
	engine_read_begin(e);
	assert_int_equal(auth_principal_count(engine_auth(e)), 1);
	engine_read_end(e);
	engine_close(e);
}

/* Commands of the right size whose contents auth_apply() refuses with
 * -EBADMSG (unknown revoke flags, "all" with a jti hash, a link without
 * one, a key event of an unknown kind).  If engine_submit takes them,
 * the record is durable before apply fails: the applier aborts, and
 * every later engine_open stops at that record.  Each case runs in a
 * child process so that an abort is a failed test, not a dead suite. */
static void well_sized_but_invalid_commands_refused_before_journal(void **state)
{
	struct fixture *f = *state;
	struct auth_revoke bad_flags, all_with_hash, link_without_hash;
	memset(&bad_flags, 0, sizeof(bad_flags));
	key32(bad_flags.iss, 1, 1);
	key32(bad_flags.jti_hash, 1, 2);
	bad_flags.flags = 1u << 2; /* 0 and 1 are ALL and QUOTA */
	all_with_hash = bad_flags;
	all_with_hash.flags = AUTH_REVOKE_ALL;
	link_without_hash = bad_flags;
	link_without_hash.flags = 0;
	memset(link_without_hash.jti_hash, 0, 32);
	struct auth_key_event bad_kind;
	memset(&bad_kind, 0, sizeof(bad_kind));
	bad_kind.kind = 7;

	const struct {
		const char *name;
		u16 kind;
		const void *ext;
		u32 bytes;
	} cases[] = {
		{"revoke-unknown-flags", AUTH_CMD_REVOKE, &bad_flags,
		 sizeof(bad_flags)},
		{"revoke-all-with-jti-hash", AUTH_CMD_REVOKE, &all_with_hash,
		 sizeof(all_with_hash)},
		{"revoke-link-zero-hash", AUTH_CMD_REVOKE, &link_without_hash,
		 sizeof(link_without_hash)},
		{"key-unknown-kind", AUTH_CMD_KEY, &bad_kind, sizeof(bad_kind)},
	};
	int failures = 0;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char dir[300];
		snprintf(dir, sizeof(dir), "%s/%s", f->dir, cases[c].name);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct engine *e = NULL;
			if (try_open(dir, 0, &e) != 0)
				_exit(10);
			struct cmd cm = command(cases[c].kind, cases[c].ext,
						cases[c].bytes, NULL, 0);
			u32 out = 0xdead;
			struct engine_request r = {.op = ENGINE_COMMAND,
						   .payload_bytes = cm.bytes,
						   .events = cm.p,
						   .results = &out};
			int ret = engine_execute(e, &r);
			engine_close(e);
			free(cm.p);
			_exit(ret == -EINVAL ? 0 : 20);
		}
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		bool refused = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		/* Whatever happened, the journal must still open. */
		struct engine *e = NULL;
		int open_ret = try_open(dir, 0, &e);
		u64 seq = open_ret == 0 ? engine_durable_seq(e) : ~0ull;
		if (e)
			engine_close(e);
		if (!refused || open_ret != 0 || seq != 0) {
			fprintf(stderr,
				"%s: child %s %d; reopen %d; journal seq %llu "
				"(want: refused with -EINVAL, reopen 0, seq "
				"0)\n",
				cases[c].name,
				WIFSIGNALED(status) ? "killed by signal"
						    : "exited",
				WIFSIGNALED(status) ? WTERMSIG(status)
						    : WEXITSTATUS(status),
				open_ret, (unsigned long long)seq);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* The largest guarded batch the API builds: BATCH_EVENTS_MAX transfers
 * under a chain of AUTH_GUARD_LINKS_MAX links.  It must fit a journal
 * record; refused, the client would get an engine error for a batch that
 * is valid in every respect. */
static void largest_guarded_batch_fits_a_record(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 0);
	plain_accounts(e, 1, 2);
	u32 n = BATCH_EVENTS_MAX;
	struct transfer *t = calloc(n, sizeof(*t));
	u32 *res = calloc(n, sizeof(u32));
	for (u32 i = 0; i < n; i++)
		t[i] = xfer(100000 + i, 1, 2, 1);
	struct auth_guard g[AUTH_GUARD_LINKS_MAX];
	for (u32 k = 0; k < AUTH_GUARD_LINKS_MAX; k++)
		g[k] = guard(k, AUTH_GUARD_USES, 0, n);
	/* One link fits... */
	assert_int_equal(guarded(e, g, 1, t, n, res), 0);
	for (u32 i = 0; i < n; i++)
		assert_int_equal(res[i], CREATE_TRANSFER_ok);
	/* ...and so must the longest chain. */
	for (u32 i = 0; i < n; i++)
		t[i].id += n;
	for (u32 k = 0; k < AUTH_GUARD_LINKS_MAX; k++)
		g[k] = guard(100 + k, AUTH_GUARD_USES, 0, n);
	int ret = guarded(e, g, AUTH_GUARD_LINKS_MAX, t, n, res);
	if (ret != 0)
		fprintf(stderr,
			"a guarded batch of %u events with %u links "
			"(payload %u bytes, record max %u) was refused: %d\n",
			n, AUTH_GUARD_LINKS_MAX,
			16 + AUTH_GUARD_LINKS_MAX * 128u + n * 128u,
			JOURNAL_RECORD_BYTES_MAX - JOURNAL_HEADER_BYTES, ret);
	u32 last = res[n - 1];
	free(t);
	free(res);
	engine_close(e);
	assert_int_equal(ret, 0);
	assert_int_equal(last, CREATE_TRANSFER_ok);
}

/* A mix of every command, reopened twice (a full replay): the same auth
 * and ledger digests, the same answers. */
static void reopen_replays_to_same_auth_digest(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 0);
	for (u32 i = 0; i < 80; i++) {
		char name[16];
		snprintf(name, sizeof(name), "n%u", i);
		struct auth_principal p = principal(i, i % 2 ? name : NULL);
		assert_int_equal(
			outcome_of(e, AUTH_CMD_PRINCIPAL, &p, sizeof(p)),
			AUTH_OK);
	}
	struct auth_principal owner = principal(3, NULL);
	owned_accounts(e, 1, 70, owner.id);
	struct auth_guard g =
		guard(1, AUTH_GUARD_TOTAL_CAP | AUTH_GUARD_USES, 500, 20);
	u32 res[4];
	u32 made = 0;
	for (u32 i = 0; i < 30; i++) {
		struct transfer t =
			xfer(5000 + i, 1 + i % 70, 1 + (i + 1) % 70, 10 + i);
		assert_int_equal(guarded(e, &g, 1, &t, 1, res), 0);
		made += res[0] == CREATE_TRANSFER_ok;
	}
	assert_int_equal(made, 20); /* the uses ran out first */
	struct auth_revoke rv;
	memset(&rv, 0, sizeof(rv));
	key32(rv.iss, 40, 40);
	rv.flags = AUTH_REVOKE_ALL;
	assert_int_equal(outcome_of(e, AUTH_CMD_REVOKE, &rv, sizeof(rv)),
			 AUTH_OK);
	struct digests before = digests(e);
	u128 spent0;
	u64 uses0;
	counter(e, &g, &spent0, &uses0);
	assert_int_equal(uses0, made);
	engine_close(e);

	for (int round = 0; round < 2; round++) {
		e = open_engine(f->dir, 0);
		struct digests after = digests(e);
		assert_memory_equal(before.auth, after.auth, 32);
		assert_memory_equal(before.ledger, after.ledger, 32);
		u128 spent;
		u64 uses;
		counter(e, &g, &spent, &uses);
		assert_true(spent == spent0);
		assert_int_equal(uses, uses0);
		engine_read_begin(e);
		const struct auth *a = engine_auth(e);
		assert_int_equal(auth_principal_count(a), 80);
		u8 got[32];
		assert_true(auth_owner_get(a, 70, got));
		assert_memory_equal(got, owner.id, 32);
		u8 any[32];
		key32(any, 1, 2);
		assert_true(auth_revoked(a, rv.iss, any));
		engine_read_end(e);
		/* The cap is still enforced where it was left. */
		struct transfer t =
			xfer(9000 + (u32)round, 1, 2, 500 - spent0 + 1);
		assert_int_equal(guarded(e, &g, 1, &t, 1, res), 0);
		/* (The cap is checked before the uses, which are also
		 * all taken.) */
		assert_int_equal(res[0],
				 CREATE_TRANSFER_exceeds_mandate_total_cap);
		engine_close(e);
		/* A refusal changed nothing: the next round compares with
		 * the same digests. */
	}
}

/* With snapshots every 100 events, state before the snapshot comes from
 * it (only the tail is replayed) and the auth digest is the same. */
static void reopen_from_snapshot_same_auth_digest(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 100);
	struct auth_principal owner = principal(7, "owner");
	assert_int_equal(
		outcome_of(e, AUTH_CMD_PRINCIPAL, &owner, sizeof(owner)),
		AUTH_OK);
	owned_accounts(e, 1, 90, owner.id);
	struct auth_guard g = guard(2, AUTH_GUARD_TOTAL_CAP, 1000000, 0);
	u32 res[64];
	struct transfer t[64];
	for (u32 i = 0; i < 64; i++)
		t[i] = xfer(100 + i, 1 + i % 90, 1 + (i + 3) % 90, 5);
	assert_int_equal(guarded(e, &g, 1, t, 64, res), 0);
	for (u32 i = 0; i < 64; i++)
		assert_int_equal(res[i], CREATE_TRANSFER_ok);

	struct engine_stats st;
	u64 id = 1000;
	for (int i = 0; i < 250; i++) {
		engine_stats(e, &st);
		if (st.snapshots > 0)
			break;
		struct transfer one = xfer(id++, 1, 2, 1);
		assert_int_equal(guarded(e, &g, 1, &one, 1, res), 0);
		usleep(20000);
	}
	assert_true(st.snapshots > 0);
	/* After the snapshot: more of each kind. */
	struct auth_principal late = principal(8, "late");
	assert_int_equal(outcome_of(e, AUTH_CMD_PRINCIPAL, &late, sizeof(late)),
			 AUTH_OK);
	struct transfer after_t = xfer(id++, 3, 4, 7);
	assert_int_equal(guarded(e, &g, 1, &after_t, 1, res), 0);
	assert_int_equal(res[0], CREATE_TRANSFER_ok);
	struct digests before = digests(e);
	engine_stats(e, &st);
	u64 total_records = st.records;
	u128 spent0;
	u64 uses0;
	counter(e, &g, &spent0, &uses0);
	engine_close(e);

	e = open_engine(f->dir, 100);
	engine_stats(e, &st);
	assert_true(st.recovery_records < total_records);
	assert_true(st.recovery_records >= 2); /* at least the tail */
	struct digests after = digests(e);
	assert_memory_equal(before.auth, after.auth, 32);
	assert_memory_equal(before.ledger, after.ledger, 32);
	u128 spent;
	u64 uses;
	counter(e, &g, &spent, &uses);
	assert_true(spent == spent0);
	assert_int_equal(uses, uses0);
	engine_read_begin(e);
	const struct auth *a = engine_auth(e);
	assert_true(auth_principal_get(a, owner.id, NULL));
	assert_true(auth_principal_get(a, late.id, NULL));
	u8 got[32];
	assert_true(auth_owner_get(a, 90, got));
	assert_memory_equal(got, owner.id, 32);
	engine_read_end(e);
	/* The restored name index still refuses a taken name. */
	struct auth_principal dup = principal(9, "owner");
	assert_int_equal(outcome_of(e, AUTH_CMD_PRINCIPAL, &dup, sizeof(dup)),
			 AUTH_NAME_TAKEN);
	engine_close(e);
}

/* Over the cap as a whole: every event refused with the cap's code, not
 * one transfer made, the ledger and the counter unchanged. */
static void guarded_batch_over_cap_refused_whole(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 0);
	plain_accounts(e, 1, 3);
	struct auth_guard g[2] = {
		guard(1, AUTH_GUARD_USES, 0, 100),
		guard(2, AUTH_GUARD_TOTAL_CAP, 100, 0),
	};
	struct transfer t[5];
	for (u32 i = 0; i < 5; i++)
		t[i] = xfer(10 + i, 1 + i % 2, 3, 20);
	t[4].amount = 21; /* 101 */
	struct digests before = digests(e);
	u32 res[5];
	assert_int_equal(guarded(e, g, 2, t, 5, res), 0);
	for (u32 i = 0; i < 5; i++)
		assert_int_equal(res[i],
				 CREATE_TRANSFER_exceeds_mandate_total_cap);
	struct digests after = digests(e);
	assert_memory_equal(before.ledger, after.ledger, 32);
	assert_memory_equal(before.auth, after.auth, 32);
	const struct ledger *l = engine_read_begin(e);
	struct transfer tr;
	for (u32 i = 0; i < 5; i++)
		assert_int_not_equal(ledger_lookup_transfer(l, t[i].id, &tr),
				     0);
	struct account acc;
	assert_int_equal(ledger_lookup_account(l, 3, &acc), 0);
	assert_true(acc.credits_posted == 0);
	engine_read_end(e);

	/* The same ids at exactly the cap are then created: a refusal did
	 * not burn them. */
	t[4].amount = 20;
	assert_int_equal(guarded(e, g, 2, t, 5, res), 0);
	for (u32 i = 0; i < 5; i++)
		assert_int_equal(res[i], CREATE_TRANSFER_ok);
	u128 spent;
	u64 uses;
	counter(e, &g[1], &spent, &uses);
	assert_true(spent == 100);
	counter(e, &g[0], &spent, &uses);
	assert_int_equal(uses, 5);
	engine_close(e);
}

/* A retry of an acknowledged transfer under a link that is now used up
 * answers exists (kind 6): its id is a transfer already, so it does not
 * count.  Kind 2 keeps counting it, as the records written with it were
 * applied. */
static void retry_under_a_used_up_link_answers_exists(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 0);
	plain_accounts(e, 1, 2);
	struct auth_guard g =
		guard(1, AUTH_GUARD_USES | AUTH_GUARD_TOTAL_CAP, 10, 1);
	struct transfer t = xfer(50, 1, 2, 10);
	u32 res[2];
	u32 gb = (u32)sizeof(g);
	assert_int_equal(
		execute(e, command(AUTH_CMD_TRANSFERS_GUARDED_2, &g, gb, &t, 1),
			res),
		0);
	assert_int_equal(res[0], CREATE_TRANSFER_ok);
	assert_int_equal(
		execute(e, command(AUTH_CMD_TRANSFERS_GUARDED_2, &g, gb, &t, 1),
			res),
		0);
	assert_int_equal(res[0], CREATE_TRANSFER_exists);
	/* the retry beside a new transfer: the new one still counts */
	struct transfer two[2] = {t, xfer(51, 1, 2, 1)};
	assert_int_equal(
		execute(e,
			command(AUTH_CMD_TRANSFERS_GUARDED_2, &g, gb, two, 2),
			res),
		0);
	assert_int_equal(res[0], CREATE_TRANSFER_exceeds_mandate_total_cap);
	assert_int_equal(res[1], CREATE_TRANSFER_exceeds_mandate_total_cap);
	/* kind 2: the same retry is counted, as before */
	assert_int_equal(guarded(e, &g, 1, &t, 1, res), 0);
	assert_int_equal(res[0], CREATE_TRANSFER_exceeds_mandate_total_cap);
	u128 spent;
	u64 uses;
	counter(e, &g, &spent, &uses);
	assert_true(spent == 10);
	assert_int_equal(uses, 1);
	struct digests before = digests(e);
	engine_close(e);
	/* replay gives the same state */
	e = open_engine(f->dir, 0);
	struct digests after = digests(e);
	assert_memory_equal(before.ledger, after.ledger, 32);
	assert_memory_equal(before.auth, after.auth, 32);
	engine_close(e);
}

#define THREADS	   4
#define PER_THREAD 50
#define AMOUNT	   10
#define CAP	   1000

struct worker {
	struct engine *e;
	struct auth_guard g;
	u32 index;
	u32 ok, over, other;
};

static void *submit_guarded(void *arg)
{
	struct worker *w = arg;
	for (u32 i = 0; i < PER_THREAD; i++) {
		struct transfer t =
			xfer(1000000u * (w->index + 1) + i, 1, 2, AMOUNT);
		struct cmd c = command(AUTH_CMD_TRANSFERS_GUARDED, &w->g,
				       sizeof(w->g), &t, 1);
		u32 res = 0xdead;
		struct engine_request r = {.op = ENGINE_COMMAND,
					   .count = 1,
					   .payload_bytes = c.bytes,
					   .events = c.p,
					   .results = &res};
		int ret = engine_execute(w->e, &r);
		free(c.p);
		if (ret == 0 && res == CREATE_TRANSFER_ok)
			w->ok++;
		else if (ret == 0 &&
			 res == CREATE_TRANSFER_exceeds_mandate_total_cap)
			w->over++;
		else
			w->other++;
	}
	return NULL;
}

static void concurrent_guarded_requests_never_pass_the_cap(void **state)
{
	struct fixture *f = *state;
	struct engine *e = open_engine(f->dir, 0);
	plain_accounts(e, 1, 2);
	struct auth_guard g = guard(1, AUTH_GUARD_TOTAL_CAP, CAP, 0);
	pthread_t th[THREADS];
	struct worker w[THREADS];
	for (u32 i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.e = e, .g = g, .index = i};
		assert_int_equal(
			pthread_create(&th[i], NULL, submit_guarded, &w[i]), 0);
	}
	u32 ok = 0, over = 0, other = 0;
	for (u32 i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
		over += w[i].over;
		other += w[i].other;
	}
	assert_int_equal(other, 0);
	assert_int_equal(ok, CAP / AMOUNT);
	assert_int_equal(over, THREADS * PER_THREAD - CAP / AMOUNT);

	u128 spent;
	u64 uses;
	counter(e, &g, &spent, &uses);
	assert_true(spent == CAP);
	assert_int_equal(uses, CAP / AMOUNT);
	const struct ledger *l = engine_read_begin(e);
	struct account acc;
	assert_int_equal(ledger_lookup_account(l, 1, &acc), 0);
	assert_true(acc.debits_posted == CAP);
	engine_read_end(e);
	struct digests before = digests(e);
	engine_close(e);

	/* The replay agrees on who got through. */
	e = open_engine(f->dir, 0);
	struct digests after = digests(e);
	assert_memory_equal(before.auth, after.auth, 32);
	assert_memory_equal(before.ledger, after.ledger, 32);
	engine_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(commands_apply_in_journal_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			malformed_commands_refused_and_never_journaled, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			well_sized_but_invalid_commands_refused_before_journal,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			largest_guarded_batch_fits_a_record, setup, teardown),
		cmocka_unit_test_setup_teardown(
			reopen_replays_to_same_auth_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(
			reopen_from_snapshot_same_auth_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(
			guarded_batch_over_cap_refused_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(
			retry_under_a_used_up_link_answers_exists, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			concurrent_guarded_requests_never_pass_the_cap, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
