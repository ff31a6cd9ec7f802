/*
 * authz.c - bearer token and mandate + DPoP authentication.  See authz.h.
 */
#include "api/authz.h"
#include "api/tls.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/u128.h"
#include "crypto/b64url.h"
#include "crypto/jose.h"
#include "engine/engine.h"
#include "core/strerror.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

struct api_authz {
	u8 token_hash[32]; /* SHA-256 of the bearer token */
	u8 admin_id[32];
	u8 admin_pub[32];
	char audience[160];
	char origin[256]; /* public origin for DPoP htu; "" = Host header */
	struct mandate_cache *cache;
	struct mandate_replay *replay;
	int leeway_s;
	uint32_t revocation_quota;
	/* DPoP proofs after a restart (authz.h): proofs with iat <=
	 * restart_horizon are refused; lease is what DATA/dpop.horizon says
	 * now (raised under lease_lock, read atomically). */
	int64_t restart_horizon;
	int64_t lease;
	int64_t max_iat; /* the latest iat accepted since start (atomic) */
	int horizon_fd;
	pthread_mutex_t lease_lock;
};

static const struct mandate_right all_rights = {
	.ops = MANDATE_OP_ALL,
	.all_ops = true,
};

const struct mandate_right api_org_right = {
	.ops = MANDATE_OP_ACCOUNTS_READ | MANDATE_OP_TRANSFERS_CREATE |
	       MANDATE_OP_TRANSFERS_POST_VOID | MANDATE_OP_TRANSFERS_READ,
	.n_accounts = 1,
	.accounts = {0},
};

/* ---- files ------------------------------------------------------------ */

/* Read a small secret file that must be ours, regular and 0600 or
 * stricter.  Returns bytes read or -errno. */
static ssize_t read_private(const char *path, char *buf, size_t cap, char *err,
			    size_t err_size)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, err_size, "%s: %s", path, tpw_strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
		close(fd);
		snprintf(err, err_size,
			 "%s: must be a regular file of ours with mode 0600",
			 path);
		return -EPERM;
	}
	ssize_t n = read(fd, buf, cap - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, err_size, "%s: %s", path, tpw_strerror(e));
		return -e;
	}
	if ((size_t)n == cap - 1) {
		sodium_memzero(buf, cap);
		snprintf(err, err_size, "%s: too large", path);
		return -EFBIG;
	}
	buf[n] = '\0';
	return n;
}

static int write_private(const char *path, const char *text, char *err,
			 size_t err_size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, err_size, "%s: %s", path, tpw_strerror(e));
		return -e;
	}
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	int e = errno;
	if (n == (ssize_t)len && fsync(fd) == 0) {
		close(fd);
		return 0;
	}
	if (n >= 0)
		e = n == (ssize_t)len ? errno : EIO;
	close(fd);
	unlink(path);
	snprintf(err, err_size, "%s: %s", path, tpw_strerror(e));
	return -e;
}

/* ---- the DPoP horizon (authz.h) -------------------------------------- */

/* The file's text: the horizon in seconds, padded to a fixed size so a
 * rewrite in place is one small write. */
#define HORIZON_TEXT_BYTES 24

static int horizon_write(int fd, int64_t h)
{
	char text[HORIZON_TEXT_BYTES + 1];
	snprintf(text, sizeof(text), "%-23" PRId64 "\n", h);
	ssize_t n = pwrite(fd, text, HORIZON_TEXT_BYTES, 0);
	if (n != HORIZON_TEXT_BYTES)
		return n < 0 ? -errno : -EIO;
	return fdatasync(fd) == 0 ? 0 : -errno;
}

/* Open DATA/dpop.horizon, creating it when fresh (H = 0); read H.  A
 * file that is missing from an existing data directory, or unreadable,
 * means "any proof of the last window may have been used". */
static int horizon_open(struct api_authz *z, const char *data_dir, char *err,
			size_t err_size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", data_dir,
		 AUTHZ_DPOP_HORIZON_FILE);
	int64_t now = (int64_t)time(NULL);
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	int64_t h = now + MANDATE_DPOP_WINDOW_S;
	if (fd < 0 && errno == ENOENT) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	} else if (fd >= 0) {
		char text[HORIZON_TEXT_BYTES + 1] = {0};
		ssize_t n = pread(fd, text, HORIZON_TEXT_BYTES, 0);
		u128 v;
		size_t len = n > 0 ? strcspn(text, " \n") : 0;
		if (u128_parse_dec(text, len, INT64_MAX, &v) == 0)
			h = (int64_t)v;
	}
	if (fd < 0) {
		int e = errno;
		snprintf(err, err_size, "%s: %s", path, tpw_strerror(e));
		return -e;
	}
	int ret = horizon_write(fd, h);
	if (ret < 0) {
		close(fd);
		snprintf(err, err_size, "%s: %s", path, tpw_strerror(-ret));
		return ret;
	}
	z->horizon_fd = fd;
	z->restart_horizon = h;
	z->lease = h;
	return 0;
}

/* Before a proof dated iat is accepted: the file must cover it. */
static int horizon_cover(struct api_authz *z, int64_t iat)
{
	int64_t seen = __atomic_load_n(&z->max_iat, __ATOMIC_RELAXED);
	while (iat > seen &&
	       !__atomic_compare_exchange_n(&z->max_iat, &seen, iat, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	if (iat <= __atomic_load_n(&z->lease, __ATOMIC_ACQUIRE))
		return 0;
	int ret = 0;
	pthread_mutex_lock(&z->lease_lock);
	if (iat > z->lease) {
		int64_t v = iat + AUTHZ_DPOP_LEASE_S;
		ret = horizon_write(z->horizon_fd, v);
		if (ret == 0)
			__atomic_store_n(&z->lease, v, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&z->lease_lock);
	return ret;
}

int api_authz_admin_ensure(const char *data_dir, char *err, size_t err_size)
{
	char key_path[4096], token_path[4096];
	snprintf(key_path, sizeof(key_path), "%s/%s", data_dir,
		 AUTHZ_ADMIN_KEY_FILE);
	snprintf(token_path, sizeof(token_path), "%s/%s", data_dir,
		 AUTHZ_ADMIN_TOKEN_FILE);
	bool have_key = access(key_path, F_OK) == 0;
	bool have_token = access(token_path, F_OK) == 0;
	if (have_key && have_token)
		return 0;
	if (!have_key && !have_token) {
		/* A new data directory: no proof was ever accepted. */
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", data_dir,
			 AUTHZ_DPOP_HORIZON_FILE);
		int ret = write_private(path, "0\n", err, err_size);
		if (ret < 0 && ret != -EEXIST)
			return ret;
	}
	if (jose_init() != 0) {
		snprintf(err, err_size, "libsodium failed to start");
		return -EIO;
	}
	int ret = 0;
	if (!have_key) {
		struct jose_seckey *k = NULL;
		char jwk[JOSE_JWK_BYTES_MAX];
		ret = jose_seckey_generate("admin", &k);
		if (ret == 0)
			ret = jose_seckey_to_jwk(k, jwk, sizeof(jwk));
		jose_seckey_free(k);
		if (ret != 0) {
			sodium_memzero(jwk, sizeof(jwk));
			snprintf(err, err_size, "cannot make a key: %s",
				 jose_err_name(ret));
			return -EIO;
		}
		size_t n = strlen(jwk);
		if (n + 1 < sizeof(jwk)) {
			jwk[n] = '\n';
			jwk[n + 1] = '\0';
		}
		ret = write_private(key_path, jwk, err, err_size);
		sodium_memzero(jwk, sizeof(jwk));
		if (ret < 0)
			return ret;
	}
	if (!have_token) {
		u8 raw[32];
		char text[AUTHZ_TOKEN_BYTES + 2];
		randombytes_buf(raw, sizeof(raw));
		memcpy(text, AUTHZ_TOKEN_PREFIX,
		       sizeof(AUTHZ_TOKEN_PREFIX) - 1);
		b64url_encode(text + sizeof(AUTHZ_TOKEN_PREFIX) - 1,
			      sizeof(text) - (sizeof(AUTHZ_TOKEN_PREFIX) - 1),
			      raw, sizeof(raw));
		sodium_memzero(raw, sizeof(raw));
		size_t n = strlen(text);
		text[n] = '\n';
		text[n + 1] = '\0';
		ret = write_private(token_path, text, err, err_size);
		sodium_memzero(text, sizeof(text));
		if (ret < 0)
			return ret;
	}
	return 1;
}

static bool thumbprint_raw(const struct jose_pubkey *k, u8 out[32])
{
	char tp[JOSE_B64_32_BYTES];
	size_t n;
	return jose_thumbprint(k, tp) == 0 &&
	       b64url_decode(out, 32, tp, strlen(tp), &n) == 0 && n == 32;
}

int api_authz_open(struct api_authz **out, const char *data_dir,
		   const char *audience, char *err, size_t err_size)
{
	char path[4096];
	char buf[2048];
	struct api_authz *z = calloc(1, sizeof(*z));
	if (!z) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	z->horizon_fd = -1;
	pthread_mutex_init(&z->lease_lock, NULL);
	z->leeway_s = AUTHZ_LEEWAY_S;
	z->revocation_quota = AUTH_REVOCATIONS_PER_PRINCIPAL;
	snprintf(z->audience, sizeof(z->audience), "%s",
		 audience ? audience : "");

	snprintf(path, sizeof(path), "%s/%s", data_dir, AUTHZ_ADMIN_TOKEN_FILE);
	ssize_t n = read_private(path, buf, sizeof(buf), err, err_size);
	if (n < 0)
		goto fail_n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if ((size_t)n != AUTHZ_TOKEN_BYTES ||
	    strncmp(buf, AUTHZ_TOKEN_PREFIX, sizeof(AUTHZ_TOKEN_PREFIX) - 1)) {
		sodium_memzero(buf, sizeof(buf));
		snprintf(err, err_size, "%s: not a tpwallet admin token", path);
		n = -EINVAL;
		goto fail_n;
	}
	crypto_hash_sha256(z->token_hash, (const u8 *)buf, (size_t)n);
	sodium_memzero(buf, sizeof(buf));

	snprintf(path, sizeof(path), "%s/%s", data_dir, AUTHZ_ADMIN_KEY_FILE);
	n = read_private(path, buf, sizeof(buf), err, err_size);
	if (n < 0)
		goto fail_n;
	struct jose_seckey *k = NULL;
	int ret = jose_seckey_parse_jwk(buf, (size_t)n, &k);
	sodium_memzero(buf, sizeof(buf));
	if (ret != 0) {
		snprintf(err, err_size, "%s: not an Ed25519 private JWK (%s)",
			 path, jose_err_name(ret));
		n = -EINVAL;
		goto fail_n;
	}
	struct jose_pubkey pub;
	jose_seckey_public(k, &pub);
	jose_seckey_free(k);
	memcpy(z->admin_pub, pub.x, 32);
	if (!thumbprint_raw(&pub, z->admin_id)) {
		snprintf(err, err_size, "%s: cannot compute its thumbprint",
			 path);
		n = -EINVAL;
		goto fail_n;
	}
	ret = horizon_open(z, data_dir, err, err_size);
	if (ret < 0) {
		n = ret;
		goto fail_n;
	}
	z->cache = mandate_cache_new(AUTHZ_CACHE_LINKS);
	z->replay = mandate_replay_new(AUTHZ_REPLAY_PROOFS);
	if (!z->cache || !z->replay) {
		snprintf(err, err_size, "out of memory");
		n = -ENOMEM;
		goto fail_n;
	}
	*out = z;
	return 0;
fail_n:
	sodium_memzero(buf, sizeof(buf));
	api_authz_close(z);
	return (int)n;
}

void api_authz_close(struct api_authz *z)
{
	if (!z)
		return;
	mandate_cache_free(z->cache);
	mandate_replay_free(z->replay);
	if (z->horizon_fd >= 0) {
		/* A clean stop: no proof is in flight, so H can come down from
		 * the lease to the latest iat accepted (never below what it
		 * was at start); proofs made a second after the restart pass.
		 * A failed write leaves the lease, which covers more. */
		int64_t h = __atomic_load_n(&z->max_iat, __ATOMIC_ACQUIRE);
		if (h < z->restart_horizon)
			h = z->restart_horizon;
		if (h < z->lease)
			(void)horizon_write(z->horizon_fd, h);
		close(z->horizon_fd);
	}
	pthread_mutex_destroy(&z->lease_lock);
	sodium_memzero(z, sizeof(*z));
	free(z);
}

int api_authz_set_origin(struct api_authz *z, const char *origin)
{
	size_t n = origin ? strlen(origin) : 0;
	if (n >= sizeof(z->origin))
		return -EINVAL;
	memcpy(z->origin, origin ? origin : "", n + 1);
	return 0;
}

void api_authz_admin_id(const struct api_authz *z, u8 out[32])
{
	memcpy(out, z->admin_id, 32);
}

void api_authz_stats(const struct api_authz *z, uint64_t *hits,
		     uint64_t *misses)
{
	mandate_cache_stats(z->cache, hits, misses);
}

void api_caller_clear(struct api_caller *c)
{
	free(c->chain);
	memset(c, 0, sizeof(*c));
}

const struct mandate_right *api_caller_right(const struct api_caller *c)
{
	if (c->bearer)
		return &all_rights;
	if (c->org)
		return &api_org_right;
	return &c->chain->effective;
}

/* ---- the state questions, each under a short read lock --------------- */

struct root_ctx {
	struct api_authz *z;
	struct engine *e;
	bool retired; /* the root was the retired bootstrap administrator */
};

unsigned api_role_ops(u32 role)
{
	enum {
		READS = MANDATE_OP_ACCOUNTS_READ | MANDATE_OP_TRANSFERS_READ |
			MANDATE_OP_PRINCIPALS_READ | MANDATE_OP_KEYS_READ |
			MANDATE_OP_REVOCATIONS_READ | MANDATE_OP_POLICY_READ,
	};
	switch (role) {
	/* The card vault (docs/vault.md): operators store cards, support
	 * reveals one with a reason (journaled, rate-limited per
	 * principal), the security officer erases and rotates; without
	 * these, nobody could be given the vault's ops once the bootstrap
	 * token is retired. */
	case ADMIN_ROLE_OPERATOR:
		return READS | MANDATE_OP_ACCOUNTS_CREATE |
		       MANDATE_OP_AUDIT_READ | MANDATE_OP_POLICY_ADMIN |
		       MANDATE_OP_VAULT_TOKENIZE;
	case ADMIN_ROLE_SECURITY_OFFICER:
		return READS | MANDATE_OP_PRINCIPALS_ADMIN |
		       MANDATE_OP_KEYS_ROTATE | MANDATE_OP_REVOKE |
		       MANDATE_OP_AUDIT_READ | MANDATE_OP_VAULT_ERASE |
		       MANDATE_OP_VAULT_ADMIN;
	case ADMIN_ROLE_SUPPORT: return READS | MANDATE_OP_VAULT_REVEAL;
	case ADMIN_ROLE_AUDITOR: return READS | MANDATE_OP_AUDIT_READ;
	default: return 0;
	}
}

bool api_authz_bootstrap_retired(struct engine *e)
{
	engine_read_begin(e);
	bool r = admin_retired_at(auth_admin(engine_auth(e))) != 0;
	engine_read_end(e);
	return r;
}

/* The ops a registered principal's role gives it now (0: none, or its
 * key revoked). */
static unsigned role_ops_now(struct engine *e, const uint8_t iss[32])
{
	engine_read_begin(e);
	const struct auth *a = engine_auth(e);
	const struct admin *d = auth_admin(a);
	u32 role = admin_is_active(d, a, iss) ? admin_role_of(d, iss) : 0;
	engine_read_end(e);
	return api_role_ops(role);
}

static unsigned root_role_ops(void *ctx, const uint8_t iss[32])
{
	struct root_ctx *rc = ctx;
	return role_ops_now(rc->e, iss);
}

static int root_principal(void *ctx, const uint8_t iss[32], uint8_t pub[32],
			  bool *is_admin)
{
	struct root_ctx *rc = ctx;
	if (memcmp(iss, rc->z->admin_id, 32) == 0) {
		if (api_authz_bootstrap_retired(rc->e)) {
			rc->retired = true;
			return -1;
		}
		memcpy(pub, rc->z->admin_pub, 32);
		*is_admin = true;
		return 0;
	}
	struct auth_principal_info p;
	engine_read_begin(rc->e);
	bool found = auth_principal_get(engine_auth(rc->e), iss, &p);
	engine_read_end(rc->e);
	/* An organisation has no key that signs links. */
	if (!found || auth_principal_x509(p.pub, NULL))
		return -1;
	memcpy(pub, p.pub, 32);
	*is_admin = false;
	return 0;
}

static bool root_owns(void *ctx, const uint8_t iss[32], u128 account)
{
	struct root_ctx *rc = ctx;
	u8 owner[32];
	engine_read_begin(rc->e);
	bool found = auth_owner_get(engine_auth(rc->e), account, owner);
	engine_read_end(rc->e);
	if (!found)
		memcpy(owner, rc->z->admin_id, 32);
	return memcmp(owner, iss, 32) == 0;
}

static bool root_revoked(void *ctx, const uint8_t iss[32],
			 const uint8_t jti_hash[32])
{
	struct root_ctx *rc = ctx;
	engine_read_begin(rc->e);
	bool r = auth_revoked(engine_auth(rc->e), iss, jti_hash);
	engine_read_end(rc->e);
	return r;
}

static int fail(struct mandate_error *err, int code)
{
	err->code = code;
	err->link = 0;
	err->claim[0] = '\0';
	return -1;
}

static int fail_claim(struct mandate_error *err, int code, int link,
		      const char *claim)
{
	fail(err, code);
	err->link = link;
	snprintf(err->claim, sizeof(err->claim), "%s", claim);
	return -1;
}

/* A chain refused because its root is the retired bootstrap
 * administrator says so. */
static int retired_fail(const struct root_ctx *rc, struct mandate_error *err)
{
	if (rc->retired)
		return fail_claim(err, MANDATE_ERR_bootstrap_retired, 1, "iss");
	return -1;
}

/* No Authorization header: the connection's certificate, when its key
 * is a registered organisation's. */
static int authenticate_org(struct engine *e,
			    const struct api_tls_client *client,
			    struct api_caller *out, struct mandate_error *err)
{
	struct auth_principal_info p;

	if (!client)
		return fail(err, MANDATE_ERR_malformed);
	static const u8 none[32];
	engine_read_begin(e);
	bool found =
		auth_principal_get(engine_auth(e), client->spki_sha256, &p);
	/* POST /v1/revocations {"iss": the organisation, "all": true} cuts
	 * it off: its certificate no longer authenticates it. */
	bool revoked = found && auth_revoked(engine_auth(e), p.id, none);
	engine_read_end(e);
	if (!found || !auth_principal_x509(p.pub, NULL))
		return fail_claim(err, MANDATE_ERR_malformed, 0,
				  AUTHZ_CLAIM_CERT);
	if (revoked)
		return fail_claim(err, MANDATE_ERR_revoked, 0,
				  AUTHZ_CLAIM_CERT);
	out->authenticated = true;
	out->org = true;
	memcpy(out->root, p.id, 32);
	memcpy(out->tenant, p.id, 32);
	return 0;
}

static void caller_from_chain(struct api_caller *out)
{
	out->authenticated = true;
	out->root_admin = out->chain->root_admin;
	memcpy(out->root, out->chain->links[0].iss, 32);
	memcpy(out->tenant,
	       out->root_admin ? out->chain->links[0].sub
			       : out->chain->links[0].iss,
	       32);
}

/* The certificate-bound chain a connection verified last (its slot):
 * the Authorization value's bytes and what mandate_chain_verify made of
 * them. */
struct bound_cache {
	struct mandate_chain chain;
	size_t len;
	char text[]; /* len bytes */
};

/* The same chain again on the same connection: what a verification
 * found stays true (signatures, claims, narrowing, the root's ownership
 * of the accounts: owners never change) but for time, revocation and
 * the root's registration, looked at now under one read lock.  True when
 * the cached chain still holds; false sends the request through the
 * whole verification, which says what failed. */
static bool chain_holds(struct api_authz *z, struct engine *e,
			const struct mandate_chain *c, int64_t now)
{
	struct auth_principal_info p;
	bool ok = now < c->exp + z->leeway_s &&
		  (c->nbf == 0 || now >= c->nbf - z->leeway_s);

	if (!ok)
		return false;
	engine_read_begin(e);
	const struct auth *a = engine_auth(e);
	const struct mandate_right *r0 = &c->links[0].right;
	if (!c->root_admin)
		ok = auth_principal_get(a, c->links[0].iss, &p) &&
		     !auth_principal_x509(p.pub, NULL);
	else
		ok = admin_retired_at(auth_admin(a)) == 0;
	/* A named administrator's root: its role still gives what it
	 * granted. */
	if (ok && !c->root_admin && !r0->n_accounts) {
		const struct admin *d = auth_admin(a);
		const u8 *iss = c->links[0].iss;
		u32 role =
			admin_is_active(d, a, iss) ? admin_role_of(d, iss) : 0;
		ok = role && !(r0->ops & ~api_role_ops(role));
	}
	for (unsigned i = 0; ok && i < c->n; i++)
		ok = !auth_revoked(a, c->links[i].iss, c->links[i].jti_hash);
	engine_read_end(e);
	return ok;
}

static bool bound_cache_holds(struct api_authz *z, struct engine *e,
			      const struct bound_cache *b, int64_t now)
{
	return chain_holds(z, e, &b->chain, now);
}

bool api_authz_still_holds(struct api_authz *z, struct engine *e,
			   const struct api_caller *c, int64_t now)
{
	static const u8 none[32];
	struct auth_principal_info p;

	if (!c->authenticated)
		return true;
	if (c->bearer)
		return !api_authz_bootstrap_retired(e);
	if (c->org) {
		engine_read_begin(e);
		bool ok = auth_principal_get(engine_auth(e), c->root, &p) &&
			  !auth_revoked(engine_auth(e), p.id, none);
		engine_read_end(e);
		return ok;
	}
	return !c->chain || chain_holds(z, e, c->chain, now);
}

/* Keep a verified chain in the connection's slot (out of memory: not
 * kept, no harm). */
static void bound_cache_put(void **slot, const struct mandate_chain *c,
			    const char *value, size_t vlen)
{
	struct bound_cache *b = malloc(sizeof(*b) + vlen);

	if (!b)
		return;
	b->chain = *c;
	b->len = vlen;
	memcpy(b->text, value, vlen);
	free(*slot);
	*slot = b;
}

/* A certificate-bound mandate (RFC 8705) sent as a bearer: the chain is
 * verified as any (its links cached by hash; the whole chain cached on
 * its connection), then its last link's cnf x5t#S256 against the SHA-256
 * of the connection's certificate, computed once at the handshake: a
 * 32-byte compare. */
static int authenticate_bound(struct api_authz *z, struct engine *e,
			      const char *value, size_t vlen,
			      const struct api_authz_conn *conn,
			      struct api_caller *out, struct mandate_error *err)
{
	const struct api_tls_client *client = conn ? conn->client : NULL;
	void **slot = client ? conn->slot : NULL;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (vlen > MANDATE_AUTHZ_BYTES_MAX)
		return fail(err, MANDATE_ERR_malformed);
	out->chain = malloc(sizeof(*out->chain));
	if (!out->chain)
		return fail(err, MANDATE_ERR_internal);
	const struct bound_cache *b = slot ? *slot : NULL;
	if (b && b->len == vlen && memcmp(b->text, value, vlen) == 0 &&
	    bound_cache_holds(z, e, b, ts.tv_sec)) {
		*out->chain = b->chain;
		out->chain->cached = out->chain->n; /* the whole chain */
		goto bind;
	}
	struct root_ctx rc = {.z = z, .e = e};
	struct mandate_root_ops ops = {.principal = root_principal,
				       .owns = root_owns,
				       .revoked = root_revoked,
				       .role_ops = root_role_ops,
				       .ctx = &rc};
	struct mandate_verify_opts vo = {.now = ts.tv_sec,
					 .leeway_s = z->leeway_s,
					 .audience = z->audience,
					 .root = &ops,
					 .cache = z->cache};
	if (mandate_chain_verify(value, vlen, &vo, out->chain, err) != 0) {
		api_caller_clear(out);
		return retired_fail(&rc, err);
	}
	if (slot && out->chain->links[out->chain->n - 1].cert_bound)
		bound_cache_put(slot, out->chain, value, vlen);
bind:;
	const struct mandate_link *last = &out->chain->links[out->chain->n - 1];
	int n = (int)out->chain->n, ret = 0;
	if (!last->cert_bound) /* bound to a key: it needs its proof */
		ret = fail_claim(err, MANDATE_ERR_dpop_missing, n, "cnf.jwk");
	else if (!client ||
		 sodium_memcmp(client->cert_sha256, last->sub, 32) != 0)
		ret = fail_claim(err, MANDATE_ERR_dpop_wrong_key, n,
				 AUTHZ_CLAIM_X5T);
	if (ret != 0) {
		api_caller_clear(out);
		return ret;
	}
	caller_from_chain(out);
	return 0;
}

int api_authz_authenticate(struct api_authz *z, struct engine *e,
			   const char *authorization, const char *dpop,
			   const char *method, const char *host,
			   const char *path, const struct api_authz_conn *conn,
			   struct api_caller *out, struct mandate_error *err)
{
	memset(out, 0, sizeof(*out));
	if (!authorization)
		return authenticate_org(e, conn ? conn->client : NULL, out,
					err);
	while (*authorization == ' ')
		authorization++;

	if (strncasecmp(authorization, "Bearer ", 7) == 0) {
		const char *t = authorization + 7;
		while (*t == ' ')
			t++;
		size_t len = strlen(t);
		while (len && t[len - 1] == ' ')
			len--;
		/* A mandate (JWS links have dots; the administrator's token
		 * has none). */
		if (memchr(t, '.', len) &&
		    strncmp(t, AUTHZ_TOKEN_PREFIX,
			    sizeof(AUTHZ_TOKEN_PREFIX) - 1) != 0)
			return authenticate_bound(z, e, t, len, conn, out, err);
		u8 h[32];
		crypto_hash_sha256(h, (const u8 *)t, len);
		if (len != AUTHZ_TOKEN_BYTES ||
		    sodium_memcmp(h, z->token_hash, 32) != 0)
			return fail(err, MANDATE_ERR_bad_signature);
		if (api_authz_bootstrap_retired(e))
			return fail(err, MANDATE_ERR_bootstrap_retired);
		out->authenticated = true;
		out->bearer = true;
		out->root_admin = true;
		memcpy(out->root, z->admin_id, 32);
		memcpy(out->tenant, z->admin_id, 32);
		return 0;
	}
	if (strncasecmp(authorization, "DPoP ", 5) != 0)
		return fail(err, MANDATE_ERR_malformed);
	const char *value = authorization + 5;
	while (*value == ' ')
		value++;
	size_t vlen = strlen(value);
	if (vlen > MANDATE_AUTHZ_BYTES_MAX)
		return fail(err, MANDATE_ERR_malformed);
	if (!dpop)
		return fail(err, MANDATE_ERR_dpop_missing);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = ts.tv_sec;

	struct mandate_dpop proof;
	struct mandate_dpop_opts dopts = {
		.now = now,
		.method = method,
		.host = host ? host : "",
		.origin = z->origin[0] ? z->origin : NULL,
		.path = path,
		.access_token = value,
		.access_token_len = vlen,
	};
	if (mandate_dpop_verify(dpop, strlen(dpop), &dopts, &proof, err) != 0)
		return -1;
	if (proof.iat <= z->restart_horizon) {
		fail(err, MANDATE_ERR_dpop_before_restart);
		snprintf(err->claim, sizeof(err->claim), "iat");
		return -1;
	}

	out->chain = malloc(sizeof(*out->chain));
	if (!out->chain)
		return fail(err, MANDATE_ERR_internal);
	struct root_ctx rc = {.z = z, .e = e};
	struct mandate_root_ops ops = {.principal = root_principal,
				       .owns = root_owns,
				       .revoked = root_revoked,
				       .role_ops = root_role_ops,
				       .ctx = &rc};
	struct mandate_verify_opts vo = {.now = now,
					 .leeway_s = z->leeway_s,
					 .audience = z->audience,
					 .root = &ops,
					 .cache = z->cache};
	if (mandate_chain_verify(value, vlen, &vo, out->chain, err) != 0) {
		api_caller_clear(out);
		return retired_fail(&rc, err);
	}
	if (mandate_dpop_check_key(&proof, out->chain, err) != 0 ||
	    mandate_replay_check_and_add(z->replay, &proof, now, err) != 0) {
		api_caller_clear(out);
		return -1;
	}
	/* Recorded on disk before the request runs, or refused. */
	if (horizon_cover(z, proof.iat) != 0) {
		api_caller_clear(out);
		return fail(err, MANDATE_ERR_internal);
	}
	caller_from_chain(out);
	return 0;
}

void api_authz_set_limits(struct api_authz *z, const struct api_authz_limits *l)
{
	z->leeway_s = l->leeway_s;
	z->revocation_quota = l->revocations_per_principal;
}

uint32_t api_authz_revocation_quota(const struct api_authz *z)
{
	return z->revocation_quota;
}
