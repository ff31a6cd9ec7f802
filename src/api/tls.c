/*
 * tls.c - the server's TLS credentials, their checks, reload and
 * reference counts (see tls.h).
 *
 * libmicrohttpd's certificate callback (GnuTLS's retrieve function)
 * takes no context pointer, so the installed credentials are one per
 * process.  The callback takes a reference to the current credentials
 * under a mutex and keeps it in the session's DB pointer (unused:
 * libmicrohttpd sets up no session cache); the connection's close
 * notification drops it (the pointer is a struct tls_session: the
 * reference and the connection's verified client certificate).
 * GnuTLS keeps pointing at the certificate and
 * key it was given until the session ends, so the reference lives as
 * long as the connection, not just the handshake.
 */
#include "api/tls.h"
#include "core/clock.h"
#include "core/command.h"
#include "core/strerror.h"
#include "engine/engine.h"
#include "engine/logger.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/ocsp.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define TLS_FILE_BYTES_MAX ((size_t)1 << 20)
#define TLS_CHAIN_MAX	   16u
/* The server's own switches waiting to be journaled (one per SIGHUP or
 * date at most: a few). */
#define TLS_QUEUE_MAX 16u
/* The watcher's longest sleep: a wall clock stepped forward is noticed
 * by then; and its wait after a journal failure. */
#define TLS_WAKE_MAX_MS (60u * 1000u)
#define TLS_RETRY_MS	1000u

struct tls_creds {
	atomic_uint refs;
	gnutls_pcert_st pcert[TLS_CHAIN_MAX];
	unsigned npcert;
	gnutls_privkey_t key;
	struct api_tls_cert_info info;
	/* OCSP stapling: the response (nocsp 1) and what it says */
	gnutls_ocsp_data_st ocsp;
	unsigned nocsp;
	bool revoked;
	int64_t ocsp_next_update; /* 0: none given */
};

/* The client CAs and their CRLs, shared by the handshakes that verify
 * with them; a reload replaces them, the last handshake frees them. */
#define TLS_CLIENT_CAS_SHOWN 4u

struct tls_trust {
	atomic_uint refs;
	gnutls_x509_trust_list_t tl;
	unsigned ncas, ncrls;
	/* the first CAs of the file, for /metrics (role="client_ca") */
	struct api_tls_cert_info cas[TLS_CLIENT_CAS_SHOWN];
	unsigned ncas_shown;
};

/* One connection's: the credentials it was served (a reference) and
 * its client certificate, once verified. */
struct tls_session {
	struct tls_creds *creds;
	int client_auth; /* what the server asked for */
	struct api_tls_client client;
	void *slot; /* api_tls_conn_slot */
};

struct api_tls {
	pthread_mutex_t lock;
	struct tls_trust *trust; /* under lock; NULL: no client CAs */
	int client_auth;	 /* enum api_tls_client_auth, set at open */
	char *client_ca_file, *crl_file;
	/* under lock: the pairs (standby NULL when none is configured),
	 * which serves, and whether an operator chose the standby */
	struct tls_creds *primary, *standby;
	int serving; /* TLSSWITCH_PRIMARY or TLSSWITCH_STANDBY */
	bool pinned;
	/* the primary is not valid and the standby cannot replace it:
	 * logged once, until that changes */
	bool stuck;
	struct tlsswitch queue[TLS_QUEUE_MAX]; /* to journal, oldest first */
	unsigned nqueue;
	u64 dropped; /* switches not journaled: the queue was full */
	char *cert_file, *key_file, *standby_cert_file, *standby_key_file;
	char *ocsp_file, *standby_ocsp_file;
	char *priority;

	/* the watcher (api_tls_start) */
	struct engine *e;
	pthread_t thread;
	bool started, stop, poked; /* under lock */
	pthread_cond_t cond;	   /* CLOCK_MONOTONIC */
};

static pthread_mutex_t installed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct api_tls *installed; /* under installed_lock */

/* ---- files ------------------------------------------------------------ */

/* Read a whole file of at most TLS_FILE_BYTES_MAX; a secret one must be
 * a regular file of ours with no group or other bits (symbolic links
 * are followed: certbot's live/ directory is made of them). */
static int read_file(const char *what, const char *path, bool secret,
		     gnutls_datum_t *out, char *err, size_t err_bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;
	int e;

	if (fd < 0) {
		e = errno;
		snprintf(err, err_bytes, "%s %s: %s", what, path,
			 tpw_strerror(e));
		return -e;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, err_bytes, "%s %s: not a regular file", what,
			 path);
		return -EINVAL;
	}
	if (secret && ((st.st_mode & 077) != 0 || st.st_uid != geteuid())) {
		close(fd);
		snprintf(err, err_bytes,
			 "%s %s: must be a regular file of ours with mode "
			 "0600",
			 what, path);
		return -EPERM;
	}
	if ((size_t)st.st_size > TLS_FILE_BYTES_MAX) {
		close(fd);
		snprintf(err, err_bytes, "%s %s: over %zu bytes", what, path,
			 TLS_FILE_BYTES_MAX);
		return -EFBIG;
	}
	out->data = gnutls_malloc((size_t)st.st_size + 1);
	if (!out->data) {
		close(fd);
		snprintf(err, err_bytes, "out of memory");
		return -ENOMEM;
	}
	n = read(fd, out->data, (size_t)st.st_size + 1);
	e = errno;
	close(fd);
	if (n < 0 || (size_t)n > (size_t)st.st_size) {
		gnutls_free(out->data);
		out->data = NULL;
		snprintf(err, err_bytes, "%s %s: %s", what, path,
			 n < 0 ? tpw_strerror(e) : "grew while read");
		return n < 0 ? -e : -EAGAIN;
	}
	out->data[n] = '\0';
	out->size = (unsigned)n;
	return 0;
}

static void wipe(gnutls_datum_t *d)
{
	if (d->data)
		sodium_memzero(d->data, d->size);
	gnutls_free(d->data);
	d->data = NULL;
}

/* ---- what a certificate says ------------------------------------------ */

static void hex(char *out, const unsigned char *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int cert_info(gnutls_x509_crt_t crt, struct api_tls_cert_info *info)
{
	unsigned char buf[64];
	size_t n;

	memset(info, 0, sizeof(*info));
	n = sizeof(info->subject_cn);
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
					  0, info->subject_cn, &n) != 0)
		info->subject_cn[0] = '\0';
	for (char *p = info->subject_cn; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
		      *p == '_' || *p == '*'))
			*p = '_';
	n = 20;
	if (gnutls_x509_crt_get_serial(crt, buf, &n) != 0 || n > 20)
		return -EINVAL;
	hex(info->serial, buf, n);
	n = 32;
	if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, buf, &n) !=
		    0 ||
	    n != 32)
		return -EINVAL;
	hex(info->fingerprint, buf, n);
	info->not_before = (int64_t)gnutls_x509_crt_get_activation_time(crt);
	info->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
	return info->not_after == -1 || info->not_before == -1 ? -EINVAL : 0;
}

static void utc(char *out, size_t n, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (!gmtime_r(&tt, &tm) ||
	    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "%lld", (long long)t);
}

int api_tls_cert_inspect(const char *path, struct api_tls_cert_info *info,
			 char *err, size_t err_bytes)
{
	gnutls_datum_t d = {NULL, 0};
	gnutls_x509_crt_t crt = NULL;
	int ret = read_file("certificate", path, false, &d, err, err_bytes);

	if (ret < 0)
		return ret;
	if (gnutls_x509_crt_init(&crt) != 0 ||
	    gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) != 0 ||
	    cert_info(crt, info) != 0) {
		snprintf(err, err_bytes,
			 "certificate %s: no PEM certificate that GnuTLS can "
			 "read",
			 path);
		ret = -EINVAL;
	}
	if (crt)
		gnutls_x509_crt_deinit(crt);
	gnutls_free(d.data);
	return ret;
}

/* ---- a remote endpoint (doctor --url) ---------------------------------- */

static void printable(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

/* A TCP connection to host:port within timeout_ms (SO_SNDTIMEO bounds
 * connect on Linux), or -errno. */
static int dial(const char *host, unsigned short port, unsigned timeout_ms,
		char *err, size_t err_bytes)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	struct timeval tv = {.tv_sec = timeout_ms / 1000u,
			     .tv_usec = (long)(timeout_ms % 1000u) * 1000};
	char name[300], svc[8];
	size_t n = strlen(host);
	int fd = -1, e = ECONNREFUSED;

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		snprintf(name, sizeof(name), "%.*s", (int)(n - 2), host + 1);
	else
		snprintf(name, sizeof(name), "%s", host);
	snprintf(svc, sizeof(svc), "%u", (unsigned)port);
	int g = getaddrinfo(name, svc, &hints, &res);
	if (g != 0) {
		snprintf(err, err_bytes, "%s: %s", name, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
			    a->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, err_bytes, "%s port %s: %s", name, svc,
			 tpw_strerror(e));
	return fd < 0 ? -e : fd;
}

/* The peer's leaf, its DNs, and whether the chain verifies. */
static int remote_read(gnutls_session_t s, const char *host,
		       struct api_tls_remote *out, char *err, size_t err_bytes)
{
	unsigned n = 0;
	const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t dn = {NULL, 0};
	unsigned status = 0;
	int ret = 0;

	if (!peers || n == 0 || gnutls_x509_crt_init(&crt) != 0 ||
	    gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) != 0 ||
	    cert_info(crt, &out->leaf) != 0) {
		snprintf(err, err_bytes,
			 "no X.509 certificate that GnuTLS "
			 "can read");
		ret = -EPROTO;
		goto cleanup;
	}
	if (gnutls_x509_crt_get_dn2(crt, &dn) == 0) {
		snprintf(out->subject, sizeof(out->subject), "%.*s",
			 (int)dn.size, (const char *)dn.data);
		gnutls_free(dn.data);
	}
	if (gnutls_x509_crt_get_issuer_dn2(crt, &dn) == 0) {
		snprintf(out->issuer, sizeof(out->issuer), "%.*s", (int)dn.size,
			 (const char *)dn.data);
		gnutls_free(dn.data);
	}
	printable(out->subject);
	printable(out->issuer);
	snprintf(out->version, sizeof(out->version), "%s",
		 gnutls_protocol_get_name(gnutls_protocol_get_version(s)));
	if (gnutls_certificate_verify_peers3(s, host, &status) != 0) {
		snprintf(out->why, sizeof(out->why), "cannot be verified");
	} else if (status != 0) {
		gnutls_datum_t text = {NULL, 0};
		if (gnutls_certificate_verification_status_print(
			    status, GNUTLS_CRT_X509, &text, 0) == 0) {
			snprintf(out->why, sizeof(out->why), "%.*s",
				 (int)text.size, (const char *)text.data);
			gnutls_free(text.data);
		}
		printable(out->why);
	} else {
		out->verified = true;
	}
cleanup:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	return ret;
}

/* The whole inspection has one deadline: a peer that sends a byte now
 * and then must not stretch it (each read waits at most what is left). */
struct remote_io {
	int fd;
	u64 deadline_ms;
};

static ssize_t remote_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct remote_io *io = p;
	u64 now = tpw_monotonic_ms();
	struct pollfd pfd = {.fd = io->fd, .events = POLLIN};

	if (now >= io->deadline_ms ||
	    poll(&pfd, 1, (int)(io->deadline_ms - now)) <= 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	return recv(io->fd, buf, len, 0);
}

static ssize_t remote_push(gnutls_transport_ptr_t p, const void *buf,
			   size_t len)
{
	struct remote_io *io = p;

	return send(io->fd, buf, len, MSG_NOSIGNAL);
}

static int remote_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct remote_io *io = p;
	u64 now = tpw_monotonic_ms();
	struct pollfd pfd = {.fd = io->fd, .events = POLLIN};
	u64 left = io->deadline_ms > now ? io->deadline_ms - now : 0;

	if (ms != GNUTLS_INDEFINITE_TIMEOUT && ms < left)
		left = ms;
	return poll(&pfd, 1, (int)left);
}

int api_tls_remote_inspect(const char *host, unsigned short port,
			   const char *ca_file, unsigned timeout_ms,
			   struct api_tls_remote *out, char *err,
			   size_t err_bytes)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	char name[300];
	size_t n = strlen(host);
	int fd, ret, g;

	memset(out, 0, sizeof(*out));
	if (gnutls_certificate_allocate_credentials(&cred) != 0) {
		snprintf(err, err_bytes, "out of memory");
		return -ENOMEM;
	}
	g = ca_file ? gnutls_certificate_set_x509_trust_file(
			      cred, ca_file, GNUTLS_X509_FMT_PEM)
		    : gnutls_certificate_set_x509_system_trust(cred);
	if (g <= 0) {
		snprintf(err, err_bytes,
			 "%s: no CA certificate that GnuTLS "
			 "can read",
			 ca_file ? ca_file : "the system's CAs");
		gnutls_certificate_free_credentials(cred);
		return -EINVAL;
	}
	fd = dial(host, port, timeout_ms, err, err_bytes);
	if (fd < 0) {
		gnutls_certificate_free_credentials(cred);
		return fd;
	}
	/* The name to verify: a bracketed IPv6 address without brackets. */
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		snprintf(name, sizeof(name), "%.*s", (int)(n - 2), host + 1);
	else
		snprintf(name, sizeof(name), "%s", host);
	ret = -EPROTO;
	if (gnutls_init(&s, GNUTLS_CLIENT) != 0 ||
	    gnutls_set_default_priority(s) != 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) != 0) {
		snprintf(err, err_bytes, "cannot set up a TLS session");
		goto cleanup;
	}
	/* SNI for a name; an address is sent none (RFC 6066). */
	struct in6_addr a6;
	struct in_addr a4;
	if (inet_pton(AF_INET, name, &a4) != 1 &&
	    inet_pton(AF_INET6, name, &a6) != 1)
		(void)gnutls_server_name_set(s, GNUTLS_NAME_DNS, name,
					     strlen(name));
	struct remote_io io = {.fd = fd,
			       .deadline_ms = tpw_monotonic_ms() + timeout_ms};
	gnutls_transport_set_ptr(s, &io);
	gnutls_transport_set_pull_function(s, remote_pull);
	gnutls_transport_set_pull_timeout_function(s, remote_pull_timeout);
	gnutls_transport_set_push_function(s, remote_push);
	gnutls_handshake_set_timeout(s, timeout_ms);
	do {
		g = gnutls_handshake(s);
	} while (g < 0 && !gnutls_error_is_fatal(g));
	if (g < 0 && tpw_monotonic_ms() >= io.deadline_ms) {
		/* Whichever of GnuTLS's timer or the pull's deadline
		 * fired first, say what happened. */
		snprintf(err, err_bytes,
			 "TLS handshake with %s port %u: timed out after %u ms",
			 name, (unsigned)port, timeout_ms);
		goto cleanup;
	}
	if (g < 0) {
		snprintf(err, err_bytes, "TLS handshake with %s port %u: %s",
			 name, (unsigned)port, gnutls_strerror(g));
		goto cleanup;
	}
	ret = remote_read(s, name, out, err, err_bytes);
	(void)gnutls_bye(s, GNUTLS_SHUT_WR);
cleanup:
	if (s)
		gnutls_deinit(s);
	close(fd);
	gnutls_certificate_free_credentials(cred);
	return ret;
}

/* ---- credentials ------------------------------------------------------ */

static void creds_free(struct tls_creds *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->npcert; i++)
		gnutls_pcert_deinit(&c->pcert[i]);
	if (c->key)
		gnutls_privkey_deinit(c->key);
	gnutls_free(c->ocsp.response.data);
	free(c);
}

static void creds_put(struct tls_creds *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		creds_free(c);
}

/* The key's public half is the certificate's: compared by key id. */
static bool key_matches(gnutls_privkey_t key, gnutls_pubkey_t cert_pub)
{
	unsigned char a[64], b[64];
	size_t na = sizeof(a), nb = sizeof(b);
	gnutls_pubkey_t pub = NULL;
	bool same = false;

	if (gnutls_pubkey_init(&pub) == 0 &&
	    gnutls_pubkey_import_privkey(pub, key, 0, 0) == 0 &&
	    gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &na) ==
		    0 &&
	    gnutls_pubkey_get_key_id(cert_pub, GNUTLS_KEYID_USE_SHA256, b,
				     &nb) == 0)
		same = na == nb && memcmp(a, b, na) == 0;
	if (pub)
		gnutls_pubkey_deinit(pub);
	return same;
}

/* Where a certificate stands at now. */
static u8 validity(const struct api_tls_cert_info *ci, int64_t now)
{
	if (ci->not_after <= now)
		return TLSSWITCH_EXPIRED;
	if (ci->not_before > now)
		return TLSSWITCH_NOT_YET_VALID;
	return 0;
}

/* A pair's: its dates, or revoked by its OCSP response. */
static u8 creds_validity(const struct tls_creds *c, int64_t now)
{
	return c->revoked ? TLSSWITCH_REVOKED : validity(&c->info, now);
}

/* One pair of files and the words for it: "" or "standby "; ocsp_file
 * "" when none. */
struct pair {
	const char *cert_file, *key_file, *label, *ocsp_file;
};

/*
 * Read the OCSP response at path for the chain pcert (the leaf first;
 * the second certificate, when there is one, is taken as its issuer and
 * checks the response's signature).  On success *der holds the response
 * (gnutls_free it).  A response that is not DER OCSP, not successful,
 * for another certificate, of status unknown, or badly signed is an
 * error.
 */
static int ocsp_read(const char *path, gnutls_pcert_st *pcert, unsigned npcert,
		     gnutls_datum_t *der, struct api_tls_ocsp_info *info,
		     char *err, size_t err_bytes)
{
	gnutls_ocsp_resp_t r = NULL;
	gnutls_x509_crt_t crt = NULL, issuer = NULL;
	unsigned status = 0, reason = 0, verify = 0;
	time_t this_u = 0, next_u = 0, rev_t = 0;
	const char *why = NULL;
	int ret;

	memset(info, 0, sizeof(*info));
	ret = read_file("OCSP response", path, false, der, err, err_bytes);
	if (ret < 0)
		return ret;
	if (gnutls_ocsp_resp_init(&r) != 0 ||
	    gnutls_pcert_export_x509(&pcert[0], &crt) != 0)
		why = "out of memory";
	else if (gnutls_ocsp_resp_import(r, der) != 0)
		why = "not a DER-encoded OCSP response";
	else if (gnutls_ocsp_resp_get_status(r) != GNUTLS_OCSP_RESP_SUCCESSFUL)
		why = "the responder's answer is not \"successful\"";
	else if (gnutls_ocsp_resp_check_crt(r, 0, crt) != 0)
		why = "it is for another certificate";
	else if (gnutls_ocsp_resp_get_single(r, 0, NULL, NULL, NULL, NULL,
					     &status, &this_u, &next_u, &rev_t,
					     &reason) != 0)
		why = "it holds no response for a certificate";
	else if (status != GNUTLS_OCSP_CERT_GOOD &&
		 status != GNUTLS_OCSP_CERT_REVOKED)
		why = "the responder does not know the certificate (unknown)";
	else if (npcert > 1 &&
		 (gnutls_pcert_export_x509(&pcert[1], &issuer) != 0 ||
		  gnutls_ocsp_resp_verify_direct(r, issuer, &verify, 0) != 0 ||
		  verify != 0))
		why = "it is not signed by the certificate's issuer (the "
		      "second certificate of the chain)";
	if (why) {
		snprintf(err, err_bytes, "OCSP response %s: %s", path, why);
		gnutls_free(der->data);
		der->data = NULL;
		ret = -EINVAL;
	} else {
		info->status =
			status == GNUTLS_OCSP_CERT_GOOD ? "good" : "revoked";
		info->this_update = this_u;
		info->next_update = next_u == (time_t)-1 ? 0 : next_u;
		info->signature_checked = npcert > 1;
	}
	if (issuer)
		gnutls_x509_crt_deinit(issuer);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (r)
		gnutls_ocsp_resp_deinit(r);
	return ret;
}

/* The pair's OCSP response, when it has one; dates: refuse a revoked
 * certificate as creds_check refuses an expired one. */
static int creds_ocsp(struct tls_creds *c, const struct pair *p, bool dates,
		      char *err, size_t err_bytes)
{
	struct api_tls_ocsp_info oi;
	int ret;

	if (!p->ocsp_file || !p->ocsp_file[0])
		return 0;
	ret = ocsp_read(p->ocsp_file, c->pcert, c->npcert, &c->ocsp.response,
			&oi, err, err_bytes);
	if (ret < 0)
		return ret;
	c->nocsp = 1;
	c->revoked = strcmp(oi.status, "revoked") == 0;
	c->ocsp_next_update = oi.next_update;
	c->ocsp.exptime = (time_t)oi.next_update;
	if (dates && c->revoked) {
		snprintf(err, err_bytes,
			 "%scertificate %s is revoked (OCSP response %s)",
			 p->label, p->cert_file, p->ocsp_file);
		return -EKEYREVOKED;
	}
	if (oi.next_update && oi.next_update <= (int64_t)time(NULL))
		log_at(LOG_WARN,
		       "TLS: the OCSP response is past its next update: it is "
		       "not stapled; fetch a fresh one and send SIGHUP",
		       LOG_STR("file", p->ocsp_file));
	return 0;
}

int api_tls_ocsp_inspect(const char *ocsp_file, const char *cert_file,
			 struct api_tls_ocsp_info *info, char *err,
			 size_t err_bytes)
{
	gnutls_datum_t cert = {NULL, 0}, der = {NULL, 0};
	gnutls_pcert_st pcert[TLS_CHAIN_MAX];
	unsigned n = TLS_CHAIN_MAX;
	int ret = read_file("certificate", cert_file, false, &cert, err,
			    err_bytes);

	if (ret < 0)
		return ret;
	if (gnutls_pcert_list_import_x509_raw(pcert, &n, &cert,
					      GNUTLS_X509_FMT_PEM, 0) < 0 ||
	    n == 0) {
		snprintf(err, err_bytes, "certificate %s: no PEM chain",
			 cert_file);
		gnutls_free(cert.data);
		return -EINVAL;
	}
	ret = ocsp_read(ocsp_file, pcert, n, &der, info, err, err_bytes);
	gnutls_free(der.data);
	gnutls_free(cert.data);
	for (unsigned i = 0; i < n; i++)
		gnutls_pcert_deinit(&pcert[i]);
	return ret;
}

static int creds_check(struct tls_creds *c, const struct pair *p, bool dates,
		       char *err, size_t err_bytes)
{
	gnutls_x509_crt_t crt = NULL;
	char when[32];
	int64_t now = (int64_t)time(NULL);
	int ret = 0;

	if (gnutls_pcert_export_x509(&c->pcert[0], &crt) != 0 ||
	    cert_info(crt, &c->info) != 0) {
		snprintf(err, err_bytes,
			 "%scertificate %s: cannot read its first certificate",
			 p->label, p->cert_file);
		ret = -EINVAL;
	} else if (!key_matches(c->key, c->pcert[0].pubkey)) {
		snprintf(err, err_bytes,
			 "%skey %s does not match the certificate in %s",
			 p->label, p->key_file, p->cert_file);
		ret = -EINVAL;
	} else if (dates && c->info.not_after <= now) {
		utc(when, sizeof(when), c->info.not_after);
		snprintf(err, err_bytes,
			 "%scertificate %s expired at %s (not_after); install "
			 "a renewed one",
			 p->label, p->cert_file, when);
		ret = -EKEYEXPIRED;
	} else if (dates && c->info.not_before > now) {
		utc(when, sizeof(when), c->info.not_before);
		snprintf(err, err_bytes,
			 "%scertificate %s is not valid before %s (not_before; "
			 "is the clock right?)",
			 p->label, p->cert_file, when);
		ret = -EKEYEXPIRED;
	}
	if (crt)
		gnutls_x509_crt_deinit(crt);
	return ret;
}

/* Read and check a pair; dates: refuse one that is not valid now. */
static int creds_load(struct tls_creds **out, const struct pair *p, bool dates,
		      char *err, size_t err_bytes)
{
	gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
	struct tls_creds *c = calloc(1, sizeof(*c));
	char what_cert[32], what_key[32];
	int ret;

	*out = NULL;
	if (!c) {
		snprintf(err, err_bytes, "out of memory");
		return -ENOMEM;
	}
	snprintf(what_cert, sizeof(what_cert), "%scertificate", p->label);
	snprintf(what_key, sizeof(what_key), "%skey", p->label);
	atomic_init(&c->refs, 1);
	ret = read_file(what_cert, p->cert_file, false, &cert, err, err_bytes);
	if (ret == 0)
		ret = read_file(what_key, p->key_file, true, &key, err,
				err_bytes);
	if (ret < 0)
		goto cleanup;
	c->npcert = TLS_CHAIN_MAX;
	if (gnutls_pcert_list_import_x509_raw(c->pcert, &c->npcert, &cert,
					      GNUTLS_X509_FMT_PEM, 0) < 0 ||
	    c->npcert == 0) {
		c->npcert = 0;
		snprintf(err, err_bytes,
			 "%s %s: no PEM certificate chain (at most "
			 "%u certificates) that GnuTLS can read",
			 what_cert, p->cert_file, TLS_CHAIN_MAX);
		ret = -EINVAL;
		goto cleanup;
	}
	if (gnutls_privkey_init(&c->key) != 0 ||
	    gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM,
					   NULL, 0) != 0) {
		snprintf(err, err_bytes,
			 "%s %s: no unencrypted PEM private key that GnuTLS "
			 "can read",
			 what_key, p->key_file);
		ret = -EINVAL;
		goto cleanup;
	}
	ret = creds_check(c, p, dates, err, err_bytes);
	if (ret == 0)
		ret = creds_ocsp(c, p, dates, err, err_bytes);
	if (ret == 0) {
		*out = c;
		c = NULL;
	}
cleanup:
	wipe(&key);
	gnutls_free(cert.data);
	creds_free(c);
	return ret;
}

static void log_creds(const char *msg, const char *role,
		      const struct tls_creds *c)
{
	char when[32];
	utc(when, sizeof(when), c->info.not_after);
	log_at(LOG_INFO, msg, LOG_STR("role", role),
	       LOG_STR("subject_cn", c->info.subject_cn),
	       LOG_STR("serial", c->info.serial), LOG_STR("not_after", when),
	       LOG_STR("sha256", c->info.fingerprint));
}

static struct pair primary_pair(const struct api_tls *t)
{
	return (struct pair){t->cert_file, t->key_file, "", t->ocsp_file};
}

static struct pair standby_pair(const struct api_tls *t)
{
	return (struct pair){t->standby_cert_file, t->standby_key_file,
			     "standby ", t->standby_ocsp_file};
}

/* ---- client CAs and CRLs ---------------------------------------------- */

static void trust_put(struct tls_trust *t)
{
	if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
		gnutls_x509_trust_list_deinit(t->tl, 1);
		free(t);
	}
}

/* The CRLs of crl_file, each signed by one of the CAs already in t
 * (a CRL no client CA signed would revoke nothing and hide a mistake). */
/* The CRLs of a PEM file (at least one; the caller deinits each and
 * frees the array), or -errno with err saying why. */
static int crls_read(const char *crl_file, gnutls_x509_crl_t **crls,
		     unsigned *n, char *err, size_t err_bytes)
{
	gnutls_datum_t d = {NULL, 0};
	int ret =
		read_file("tls_crl_file", crl_file, false, &d, err, err_bytes);

	*crls = NULL;
	*n = 0;
	if (ret < 0)
		return ret;
	if (gnutls_x509_crl_list_import2(crls, n, &d, GNUTLS_X509_FMT_PEM, 0) <
		    0 ||
	    *n == 0) {
		snprintf(err, err_bytes,
			 "tls_crl_file %s: no PEM CRL that GnuTLS can read",
			 crl_file);
		gnutls_free(*crls); /* none on failure; none in it when 0 */
		*crls = NULL;
		*n = 0;
		ret = -EINVAL;
	}
	gnutls_free(d.data);
	return ret;
}

static int trust_add_crls(struct tls_trust *t, const char *crl_file, char *err,
			  size_t err_bytes)
{
	gnutls_x509_crl_t *crls;
	unsigned n;
	int ret = crls_read(crl_file, &crls, &n, err, err_bytes);

	if (ret < 0)
		return ret;
	/* GnuTLS refuses a CRL past its nextUpdate as if it were forged:
	 * say which it is.  (One loaded before its nextUpdate passes keeps
	 * revoking what it lists.) */
	int64_t now = (int64_t)time(NULL);
	for (unsigned i = 0; i < n; i++) {
		int64_t next =
			(int64_t)gnutls_x509_crl_get_next_update(crls[i]);
		if (next == -1 || next > now)
			continue;
		char when[32];
		utc(when, sizeof(when), next);
		snprintf(err, err_bytes,
			 "tls_crl_file %s: a CRL is past its nextUpdate (%s): "
			 "publish a new one",
			 crl_file, when);
		for (unsigned k = 0; k < n; k++)
			gnutls_x509_crl_deinit(crls[k]);
		gnutls_free(crls);
		return -EINVAL;
	}
	/* The list takes the CRLs it accepts, and frees the rest. */
	int added = gnutls_x509_trust_list_add_crls(
		t->tl, crls, n,
		GNUTLS_TL_VERIFY_CRL | GNUTLS_TL_FAIL_ON_INVALID_CRL, 0);
	gnutls_free(crls);
	if (added < 0 || (unsigned)added != n) {
		snprintf(err, err_bytes,
			 "tls_crl_file %s: a CRL is not signed by a CA of "
			 "tls_client_ca_file",
			 crl_file);
		return -EINVAL;
	}
	t->ncrls = n;
	return 0;
}

/* What the first CAs of the file say, for /metrics. */
static void trust_infos(struct tls_trust *t, const gnutls_datum_t *pem)
{
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = 0;

	if (gnutls_x509_crt_list_import2(&crts, &n, pem, GNUTLS_X509_FMT_PEM,
					 0) < 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		if (t->ncas_shown < TLS_CLIENT_CAS_SHOWN &&
		    cert_info(crts[i], &t->cas[t->ncas_shown]) == 0)
			t->ncas_shown++;
		gnutls_x509_crt_deinit(crts[i]);
	}
	gnutls_free(crts);
}

int api_tls_crl_next_update(const char *path, int64_t *next, char *err,
			    size_t err_bytes)
{
	gnutls_x509_crl_t *crls;
	unsigned n;
	int ret = crls_read(path, &crls, &n, err, err_bytes);

	*next = -1;
	for (unsigned i = 0; i < n; i++) {
		int64_t t = (int64_t)gnutls_x509_crl_get_next_update(crls[i]);
		if (t != -1 && (*next == -1 || t < *next))
			*next = t;
		gnutls_x509_crl_deinit(crls[i]);
	}
	gnutls_free(crls);
	return ret;
}

static int trust_load(struct tls_trust **out, const char *ca_file,
		      const char *crl_file, char *err, size_t err_bytes)
{
	gnutls_datum_t d = {NULL, 0};
	struct tls_trust *t = calloc(1, sizeof(*t));
	int ret;

	*out = NULL;
	if (!t || gnutls_x509_trust_list_init(&t->tl, 0) != 0) {
		free(t);
		snprintf(err, err_bytes, "out of memory");
		return -ENOMEM;
	}
	atomic_init(&t->refs, 1);
	ret = read_file("tls_client_ca_file", ca_file, false, &d, err,
			err_bytes);
	if (ret == 0) {
		int n = gnutls_x509_trust_list_add_trust_mem(
			t->tl, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
		if (n <= 0) {
			snprintf(err, err_bytes,
				 "tls_client_ca_file %s: no PEM CA certificate "
				 "that GnuTLS can read",
				 ca_file);
			ret = -EINVAL;
		}
		t->ncas = n > 0 ? (unsigned)n : 0;
	}
	if (ret == 0)
		trust_infos(t, &d);
	gnutls_free(d.data);
	if (ret == 0 && crl_file && *crl_file)
		ret = trust_add_crls(t, crl_file, err, err_bytes);
	if (ret < 0) {
		trust_put(t);
		return ret;
	}
	*out = t;
	return 0;
}

static void log_trust(const char *msg, const struct api_tls *t,
		      const struct tls_trust *tr)
{
	log_at(LOG_INFO, msg, LOG_STR("ca_file", t->client_ca_file),
	       LOG_NUM("cas", tr->ncas), LOG_NUM("crls", tr->ncrls),
	       LOG_STR("client_auth", t->client_auth == API_TLS_CLIENT_REQUIRED
					      ? "required"
					      : "optional"));
}

/* The SHA-256 of a certificate's SubjectPublicKeyInfo (DER). */
static int spki_sha256(gnutls_x509_crt_t crt, unsigned char out[32])
{
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t der = {NULL, 0};
	int ret = -EINVAL;

	if (gnutls_pubkey_init(&pub) == 0 &&
	    gnutls_pubkey_import_x509(pub, crt, 0) == 0 &&
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der) == 0) {
		crypto_hash_sha256(out, der.data, der.size);
		ret = 0;
	}
	gnutls_free(der.data);
	if (pub)
		gnutls_pubkey_deinit(pub);
	return ret;
}

int api_tls_cert_identity(const char *pem, size_t len, unsigned char spki[32],
			  unsigned char *cert_sha256, int64_t *not_before,
			  int64_t *not_after)
{
	gnutls_datum_t d = {(unsigned char *)(uintptr_t)pem, (unsigned)len};
	gnutls_x509_crt_t crt = NULL;
	struct api_tls_cert_info info;
	int ret = -EINVAL;

	if (len == 0 || len > TLS_FILE_BYTES_MAX)
		return -EINVAL;
	if (gnutls_x509_crt_init(&crt) == 0 &&
	    gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) == 0 &&
	    cert_info(crt, &info) == 0 && spki_sha256(crt, spki) == 0) {
		*not_before = info.not_before;
		*not_after = info.not_after;
		ret = 0;
	}
	if (ret == 0 && cert_sha256) {
		gnutls_datum_t der = {NULL, 0};
		if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) ==
		    0)
			crypto_hash_sha256(cert_sha256, der.data, der.size);
		else
			ret = -EINVAL;
		gnutls_free(der.data);
	}
	if (crt)
		gnutls_x509_crt_deinit(crt);
	return ret;
}

/* ---- switching -------------------------------------------------------- */

static struct tls_creds *role_creds(struct api_tls *t, int role)
{
	return role == TLSSWITCH_STANDBY ? t->standby : t->primary;
}

/* Under t->lock: serve `to`, and fill the entry of the change. */
static void switch_locked(struct api_tls *t, int to, u8 reason,
			  struct tlsswitch *x)
{
	memset(x, 0, sizeof(*x));
	x->reason = reason;
	x->from = (u8)t->serving;
	x->to = (u8)to;
	/* serials are at most 40 hex digits: they fit */
	memcpy(x->from_serial, role_creds(t, t->serving)->info.serial,
	       strlen(role_creds(t, t->serving)->info.serial));
	memcpy(x->to_serial, role_creds(t, to)->info.serial,
	       strlen(role_creds(t, to)->info.serial));
	t->serving = to;
}

static void log_switch(const struct tlsswitch *x)
{
	log_at(x->reason == TLSSWITCH_PRIMARY_VALID ? LOG_INFO : LOG_WARN,
	       "TLS certificate switched",
	       LOG_STR("reason", tlsswitch_reason_name(x->reason)),
	       LOG_STR("from", tlsswitch_role_name(x->from)),
	       LOG_STR("to", tlsswitch_role_name(x->to)),
	       LOG_STR("from_serial", x->from_serial),
	       LOG_STR("to_serial", x->to_serial));
}

/* Under t->lock: what the dates say at now.  Returns true with the
 * entry in *x when the server switched; *stuck_now: the primary just
 * became unusable with no valid standby to take over (log it). */
static bool decide_locked(struct api_tls *t, int64_t now, struct tlsswitch *x,
			  bool *stuck_now)
{
	u8 why;

	*stuck_now = false;
	if (!t->standby)
		return false;
	why = creds_validity(t->primary, now);
	bool stuck = t->serving == TLSSWITCH_PRIMARY && why != 0 &&
		     creds_validity(t->standby, now) != 0;
	*stuck_now = stuck && !t->stuck;
	t->stuck = stuck;
	if (t->serving == TLSSWITCH_PRIMARY && why != 0 && !stuck) {
		switch_locked(t, TLSSWITCH_STANDBY, why, x);
		return true;
	}
	if (t->serving == TLSSWITCH_STANDBY && !t->pinned && why == 0) {
		switch_locked(t, TLSSWITCH_PRIMARY, TLSSWITCH_PRIMARY_VALID, x);
		return true;
	}
	/* A standby an operator chose is never served past its dates:
	 * back to a valid primary (else the standby stays, and it is
	 * logged like a primary with no standby to take over). */
	u8 swhy = creds_validity(t->standby, now);
	if (t->serving == TLSSWITCH_STANDBY && swhy != 0) {
		if (why == 0) {
			t->pinned = false;
			switch_locked(t, TLSSWITCH_PRIMARY, swhy, x);
			return true;
		}
		*stuck_now = !t->stuck;
		t->stuck = true;
	}
	return false;
}

/* Look at the dates; a switch is logged and queued for the watcher. */
static void decide(struct api_tls *t)
{
	struct tlsswitch x;
	bool switched, dropped = false, stuck;
	char primary[41], standby[41];
	const char *serving = NULL;

	pthread_mutex_lock(&t->lock);
	switched = decide_locked(t, (int64_t)time(NULL), &x, &stuck);
	if (stuck) {
		memcpy(primary, t->primary->info.serial, sizeof(primary));
		memcpy(standby, t->standby->info.serial, sizeof(standby));
		serving = tlsswitch_role_name((u8)t->serving);
	}
	if (switched) {
		if (t->nqueue == TLS_QUEUE_MAX) {
			memmove(t->queue, t->queue + 1,
				sizeof(t->queue[0]) * (TLS_QUEUE_MAX - 1));
			t->nqueue--;
			t->dropped++;
			dropped = true;
		}
		t->queue[t->nqueue++] = x;
	}
	t->poked = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (switched)
		log_switch(&x);
	if (stuck)
		log_at(LOG_ERROR,
		       "TLS: neither the primary nor the standby certificate "
		       "is valid: the one serving still serves; renew one and "
		       "send SIGHUP",
		       LOG_STR("serving", serving),
		       LOG_STR("primary_serial", primary),
		       LOG_STR("standby_serial", standby));
	if (dropped)
		log_at(LOG_ERROR,
		       "TLS switches not journaled: the queue is full (is "
		       "the journal failing?)",
		       LOG_NUM("queue", TLS_QUEUE_MAX));
}

bool api_tls_has_standby(struct api_tls *t)
{
	pthread_mutex_lock(&t->lock);
	bool has = t->standby != NULL;
	pthread_mutex_unlock(&t->lock);
	return has;
}

int api_tls_serving(struct api_tls *t)
{
	pthread_mutex_lock(&t->lock);
	int role = t->serving;
	pthread_mutex_unlock(&t->lock);
	return role;
}

int api_tls_switch(struct api_tls *t, int to, const unsigned char author[32],
		   struct tlsswitch *out, char *err, size_t err_bytes)
{
	int64_t now = (int64_t)time(NULL);
	char when[32];
	int ret = 1;

	pthread_mutex_lock(&t->lock);
	struct tls_creds *c = to == TLSSWITCH_STANDBY ? t->standby : t->primary;
	u8 why = c ? creds_validity(c, now) : 0;
	if (!t->standby) {
		snprintf(err, err_bytes,
			 "no standby certificate is configured "
			 "(tls_standby_cert_file)");
		ret = -EINVAL;
	} else if (why != 0) {
		utc(when, sizeof(when),
		    why == TLSSWITCH_EXPIRED ? c->info.not_after
					     : c->info.not_before);
		snprintf(err, err_bytes, "the %s certificate (serial %s) %s %s",
			 tlsswitch_role_name((u8)to), c->info.serial,
			 why == TLSSWITCH_EXPIRED   ? "expired at"
			 : why == TLSSWITCH_REVOKED ? "is revoked (OCSP), read"
						    : "is not valid before",
			 why == TLSSWITCH_REVOKED ? "at the last load" : when);
		ret = -EINVAL;
	} else {
		/* The standby stays until an operator says otherwise or it
		 * is no longer valid; the primary hands the choice back to
		 * the dates. */
		t->pinned = to == TLSSWITCH_STANDBY;
		if (t->serving == to)
			ret = 0;
		else
			switch_locked(t, to, TLSSWITCH_OPERATOR, out);
	}
	if (ret == 1) {
		memcpy(out->author, author, sizeof(out->author));
		/* The watcher's next wake-up depends on what serves. */
		t->poked = true;
		pthread_cond_signal(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
	if (ret == 1)
		log_switch(out);
	return ret;
}

/* ---- the context ------------------------------------------------------ */

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* tls_client_auth against the files it needs. */
static int client_auth_parse(struct api_tls *t, const struct api_tls_files *f,
			     char *err, size_t err_bytes)
{
	const char *mode = f->client_auth ? f->client_auth : "";
	bool ca = t->client_ca_file[0] != '\0';

	if (strcmp(mode, "required") == 0)
		t->client_auth = API_TLS_CLIENT_REQUIRED;
	else if (strcmp(mode, "optional") == 0 || (!*mode && ca))
		t->client_auth = API_TLS_CLIENT_OPTIONAL;
	else if (strcmp(mode, "none") == 0 || !*mode)
		t->client_auth = API_TLS_CLIENT_NONE;
	else {
		snprintf(err, err_bytes,
			 "tls_client_auth: none, optional or required");
		return -EINVAL;
	}
	if (t->client_auth != API_TLS_CLIENT_NONE && !ca) {
		snprintf(err, err_bytes,
			 "tls_client_auth %s needs tls_client_ca_file (the CAs "
			 "that sign client certificates)",
			 mode);
		return -EINVAL;
	}
	if (t->crl_file[0] && !ca) {
		snprintf(err, err_bytes,
			 "tls_crl_file needs tls_client_ca_file (the CAs that "
			 "signed the CRLs)");
		return -EINVAL;
	}
	return 0;
}

int api_tls_open(struct api_tls **out, const struct api_tls_files *f, char *err,
		 size_t err_bytes)
{
	const char *priority = f->priority;
	gnutls_priority_t prio = NULL;
	const char *where = NULL;
	pthread_condattr_t ca;
	struct api_tls *t;
	int ret;

	*out = NULL;
	if (!priority || !*priority)
		priority = API_TLS_PRIORITY_DEFAULT;
	if (gnutls_priority_init(&prio, priority, &where) != 0) {
		snprintf(err, err_bytes,
			 "tls_priority: GnuTLS refuses it at '%.40s'",
			 where ? where : priority);
		return -EINVAL;
	}
	gnutls_priority_deinit(prio);
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, err_bytes, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	t->serving = TLSSWITCH_PRIMARY;
	t->cert_file = dup_or_empty(f->cert_file);
	t->key_file = dup_or_empty(f->key_file);
	t->standby_cert_file = dup_or_empty(f->standby_cert_file);
	t->standby_key_file = dup_or_empty(f->standby_key_file);
	t->priority = strdup(priority);
	t->client_ca_file = dup_or_empty(f->client_ca_file);
	t->crl_file = dup_or_empty(f->crl_file);
	t->ocsp_file = dup_or_empty(f->ocsp_file);
	t->standby_ocsp_file = dup_or_empty(f->standby_ocsp_file);
	if (!t->cert_file || !t->key_file || !t->standby_cert_file ||
	    !t->standby_key_file || !t->priority || !t->client_ca_file ||
	    !t->crl_file || !t->ocsp_file || !t->standby_ocsp_file) {
		snprintf(err, err_bytes, "out of memory");
		api_tls_close(t);
		return -ENOMEM;
	}
	bool standby = t->standby_cert_file[0] != '\0';
	struct pair pp = primary_pair(t), sp = standby_pair(t);
	ret = client_auth_parse(t, f, err, err_bytes);
	if (ret == 0)
		ret = creds_load(&t->primary, &pp, !standby, err, err_bytes);
	if (ret == 0 && standby)
		ret = creds_load(&t->standby, &sp, true, err, err_bytes);
	if (ret == 0 && t->client_auth != API_TLS_CLIENT_NONE)
		ret = trust_load(&t->trust, t->client_ca_file, t->crl_file, err,
				 err_bytes);
	if (ret < 0) {
		api_tls_close(t);
		return ret;
	}
	log_creds("TLS certificate loaded", "primary", t->primary);
	if (t->standby)
		log_creds("TLS certificate loaded", "standby", t->standby);
	if (t->trust)
		log_trust("TLS client CAs loaded", t, t->trust);
	decide(t); /* journaled once the watcher starts */
	*out = t;
	return 0;
}

void api_tls_close(struct api_tls *t)
{
	if (!t)
		return;
	api_tls_stop(t);
	pthread_mutex_lock(&installed_lock);
	if (installed == t)
		installed = NULL;
	pthread_mutex_unlock(&installed_lock);
	creds_put(t->primary);
	creds_put(t->standby);
	trust_put(t->trust);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t->cert_file);
	free(t->key_file);
	free(t->standby_cert_file);
	free(t->standby_key_file);
	free(t->priority);
	free(t->client_ca_file);
	free(t->crl_file);
	free(t->ocsp_file);
	free(t->standby_ocsp_file);
	free(t);
}

const char *api_tls_priority(const struct api_tls *t)
{
	return t->priority;
}

/* Load one pair again; on success it replaces *slot (under t->lock). */
static int reload_pair(struct api_tls *t, struct tls_creds **slot,
		       const struct pair *p, const char *role)
{
	char err[API_TLS_ERR_BYTES];
	struct tls_creds *c = NULL, *old;
	int ret = creds_load(&c, p, true, err, sizeof(err));

	if (ret < 0) {
		log_at(LOG_ERROR,
		       "TLS reload refused: the current certificate stays",
		       LOG_STR("role", role), LOG_STR("reason", err));
		return ret;
	}
	pthread_mutex_lock(&t->lock);
	old = *slot;
	*slot = c;
	pthread_mutex_unlock(&t->lock);
	log_creds("TLS certificate reloaded", role, c);
	creds_put(old);
	return 0;
}

int api_tls_reload(struct api_tls *t)
{
	struct pair pp = primary_pair(t), sp = standby_pair(t);
	int ret = reload_pair(t, &t->primary, &pp, "primary");

	if (t->standby_cert_file[0]) {
		int r = reload_pair(t, &t->standby, &sp, "standby");
		if (ret == 0)
			ret = r;
	}
	if (t->client_auth != API_TLS_CLIENT_NONE) {
		char err[API_TLS_ERR_BYTES];
		struct tls_trust *tr = NULL, *old;
		int r = trust_load(&tr, t->client_ca_file, t->crl_file, err,
				   sizeof(err));
		if (r < 0) {
			log_at(LOG_ERROR,
			       "TLS client CA reload refused: the current CAs "
			       "and CRLs stay",
			       LOG_STR("reason", err));
			if (ret == 0)
				ret = r;
		} else {
			pthread_mutex_lock(&t->lock);
			old = t->trust;
			t->trust = tr;
			pthread_mutex_unlock(&t->lock);
			log_trust("TLS client CAs reloaded", t, tr);
			trust_put(old);
		}
	}
	decide(t);
	return ret;
}

/* ---- the watcher ------------------------------------------------------ */

/* Journal the first queued switch.  Returns 0, or a negative errno (it
 * stays queued). */
static int journal_one(struct api_tls *t, const struct tlsswitch *x)
{
	u8 payload[sizeof(struct command_header) + sizeof(*x)];
	struct command_header h = {.kind = TLS_CMD_SWITCH,
				   .ext_bytes = sizeof(*x)};
	u32 result = 0;
	struct engine_request req = {.op = ENGINE_COMMAND,
				     .payload_bytes = sizeof(payload),
				     .events = payload,
				     .results = &result};

	memcpy(payload, &h, sizeof(h));
	memcpy(payload + sizeof(h), x, sizeof(*x));
	int ret = engine_execute(t->e, &req);
	if (ret != 0)
		log_at(LOG_ERROR, "TLS switch not journaled yet",
		       LOG_STR("to", tlsswitch_role_name(x->to)),
		       LOG_STR("reason", tpw_strerror(-ret)));
	else
		log_at(LOG_INFO, "TLS switch journaled",
		       LOG_STR("to", tlsswitch_role_name(x->to)),
		       LOG_NUM("seq", req.seq));
	return ret;
}

/* Milliseconds until the next date that matters (the primary's, and the
 * standby's end while it serves), at most TLS_WAKE_MAX_MS; under
 * t->lock. */
static u64 next_wake_ms(const struct api_tls *t, int64_t now)
{
	u64 ms = TLS_WAKE_MAX_MS;
	int64_t at = 0;

	if (!t->standby)
		return ms;
	if (t->primary->info.not_before > now)
		at = t->primary->info.not_before;
	else if (t->primary->info.not_after > now)
		at = t->primary->info.not_after;
	/* Serving the standby: its end matters too. */
	if (t->serving == TLSSWITCH_STANDBY &&
	    t->standby->info.not_after > now &&
	    (at <= now || t->standby->info.not_after < at))
		at = t->standby->info.not_after;
	if (at > now && (u64)(at - now) * 1000u < ms)
		ms = (u64)(at - now) * 1000u;
	return ms;
}

static void *watcher_main(void *arg)
{
	struct api_tls *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		u64 wait_ms;
		if (t->nqueue > 0) {
			struct tlsswitch x = t->queue[0];
			pthread_mutex_unlock(&t->lock);
			int ret = journal_one(t, &x);
			pthread_mutex_lock(&t->lock);
			if (ret == 0) {
				memmove(t->queue, t->queue + 1,
					sizeof(t->queue[0]) * (t->nqueue - 1));
				t->nqueue--;
				continue;
			}
			wait_ms = TLS_RETRY_MS;
		} else {
			wait_ms = next_wake_ms(t, (int64_t)time(NULL));
		}
		if (!t->poked) {
			struct timespec until = tpw_deadline_ms((long)wait_ms);
			(void)pthread_cond_timedwait(&t->cond, &t->lock,
						     &until);
		}
		if (t->poked || t->nqueue == 0) {
			t->poked = false;
			pthread_mutex_unlock(&t->lock);
			decide(t);
			pthread_mutex_lock(&t->lock);
			t->poked = false;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int api_tls_start(struct api_tls *t, struct engine *e)
{
	int ret;

	t->e = e;
	t->stop = false;
	ret = pthread_create(&t->thread, NULL, watcher_main, t);
	if (ret != 0)
		return -ret;
	t->started = true;
	return 0;
}

void api_tls_stop(struct api_tls *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	t->started = false;
}

/* ---- libmicrohttpd and GnuTLS ----------------------------------------- */

void api_tls_install(struct api_tls *t)
{
	pthread_mutex_lock(&installed_lock);
	installed = t;
	pthread_mutex_unlock(&installed_lock);
}

/* The credentials that serve now (a reference), the client mode and,
 * when it asks for client certificates, the trust to verify them (a
 * reference). */
static struct tls_creds *current_get(int *client_auth)
{
	struct tls_creds *c = NULL;

	*client_auth = API_TLS_CLIENT_NONE;
	pthread_mutex_lock(&installed_lock);
	if (installed) {
		pthread_mutex_lock(&installed->lock);
		c = role_creds(installed, installed->serving);
		atomic_fetch_add(&c->refs, 1);
		*client_auth = installed->client_auth;
		pthread_mutex_unlock(&installed->lock);
	}
	pthread_mutex_unlock(&installed_lock);
	return c;
}

static struct tls_trust *trust_get(void)
{
	struct tls_trust *tr = NULL;

	pthread_mutex_lock(&installed_lock);
	if (installed) {
		pthread_mutex_lock(&installed->lock);
		tr = installed->trust;
		if (tr)
			atomic_fetch_add(&tr->refs, 1);
		pthread_mutex_unlock(&installed->lock);
	}
	pthread_mutex_unlock(&installed_lock);
	return tr;
}

static void log_refused(const char *why, const struct api_tls_cert_info *ci)
{
	log_at(LOG_WARN, "TLS client certificate refused at the handshake",
	       LOG_STR("reason", why),
	       LOG_STR("subject_cn", ci ? ci->subject_cn : ""),
	       LOG_STR("serial", ci ? ci->serial : ""),
	       LOG_STR("sha256", ci ? ci->fingerprint : ""));
}

/* The chain the client sent, verified against the client CAs and CRLs
 * for client authentication at the current time; on success what the
 * connection keeps of it.  Returns 0, or -1 (the handshake fails). */
static int verify_chain(struct tls_trust *tr, const gnutls_datum_t *peers,
			unsigned n, struct api_tls_client *out)
{
	gnutls_x509_crt_t crts[TLS_CHAIN_MAX];
	struct api_tls_cert_info info;
	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (unsigned char *)(uintptr_t)GNUTLS_KP_TLS_WWW_CLIENT};
	unsigned ncrt = 0, status = 0;
	int ret = -1;

	if (n > TLS_CHAIN_MAX) {
		log_refused("the chain has too many certificates", NULL);
		return -1;
	}
	for (; ncrt < n; ncrt++)
		if (gnutls_x509_crt_init(&crts[ncrt]) != 0 ||
		    gnutls_x509_crt_import(crts[ncrt], &peers[ncrt],
					   GNUTLS_X509_FMT_DER) != 0) {
			if (crts[ncrt])
				gnutls_x509_crt_deinit(crts[ncrt]);
			log_refused("not an X.509 certificate GnuTLS can read",
				    NULL);
			goto cleanup;
		}
	if (cert_info(crts[0], &info) != 0) {
		log_refused("not an X.509 certificate GnuTLS can read", NULL);
		goto cleanup;
	}
	if (gnutls_x509_trust_list_verify_crt2(tr->tl, crts, ncrt, &purpose, 1,
					       0, &status, NULL) != 0) {
		log_refused("cannot be verified", &info);
		goto cleanup;
	}
	if (status != 0) {
		gnutls_datum_t text = {NULL, 0};
		char why[256] = "not trusted";
		if (gnutls_certificate_verification_status_print(
			    status, GNUTLS_CRT_X509, &text, 0) == 0) {
			snprintf(why, sizeof(why), "%.*s", (int)text.size,
				 (const char *)text.data);
			gnutls_free(text.data);
			printable(why);
		}
		log_refused(why, &info);
		goto cleanup;
	}
	if (spki_sha256(crts[0], out->spki_sha256) != 0) {
		log_refused("no public key GnuTLS can read", &info);
		goto cleanup;
	}
	crypto_hash_sha256(out->cert_sha256, peers[0].data, peers[0].size);
	out->present = true;
	ret = 0;
cleanup:
	for (unsigned i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return ret;
}

/* GnuTLS's verify function, run during the handshake once the client's
 * Certificate message is in: a certificate that does not verify fails
 * the handshake in every mode; none fails it only when one is
 * required. */
static int verify_client(gnutls_session_t session)
{
	struct tls_session *ss = gnutls_db_get_ptr(session);
	unsigned n = 0;
	const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &n);
	struct tls_trust *tr;
	int ret;

	if (!ss)
		return -1;
	if (!peers || n == 0) {
		if (ss->client_auth == API_TLS_CLIENT_REQUIRED) {
			log_refused("no client certificate (tls_client_auth "
				    "required)",
				    NULL);
			return -1;
		}
		return 0;
	}
	tr = trust_get();
	if (!tr) {
		log_refused("no client CAs are configured", NULL);
		return -1;
	}
	memset(&ss->client, 0, sizeof(ss->client));
	ret = verify_chain(tr, peers, n, &ss->client);
	trust_put(tr);
	return ret;
}

static int retrieve(gnutls_session_t session,
		    const struct gnutls_cert_retr_st *info,
		    gnutls_pcert_st **pcert, unsigned int *pcert_length,
		    gnutls_ocsp_data_st **ocsp, unsigned int *ocsp_length,
		    gnutls_privkey_t *privkey, unsigned int *flags)
{
	int mode;
	struct tls_creds *c = current_get(&mode);
	struct tls_session *ss = gnutls_db_get_ptr(session);

	(void)info;
	*flags = 0;
	*ocsp = NULL;
	*ocsp_length = 0;
	if (!c)
		return -1;
	if (!ss) {
		ss = calloc(1, sizeof(*ss));
		if (!ss) {
			creds_put(c);
			return -1;
		}
		gnutls_db_set_ptr(session, ss);
	}
	/* Called again in one handshake (a retry): one reference each. */
	creds_put(ss->creds);
	ss->creds = c;
	ss->client_auth = mode;
	/* The server picks its certificate before it writes its
	 * CertificateRequest (TLS 1.2 and 1.3): asking here is in time. */
	if (mode != API_TLS_CLIENT_NONE) {
		/* REQUEST in both modes: verify_client refuses a missing
		 * certificate itself, and says so in the log. */
		gnutls_certificate_server_set_request(session,
						      GNUTLS_CERT_REQUEST);
		gnutls_session_set_verify_function(session, verify_client);
	}
	*pcert = c->pcert;
	*pcert_length = c->npcert;
	*privkey = c->key;
	/* Stapled while the response is current (a client that asks for
	 * it gets none rather than a stale one). */
	if (c->nocsp && (!c->ocsp_next_update ||
			 (int64_t)time(NULL) < c->ocsp_next_update)) {
		*ocsp = &c->ocsp;
		*ocsp_length = 1;
	}
	return 0;
}

void *api_tls_callback(void)
{
	gnutls_certificate_retrieve_function3 *f = retrieve;
	return (void *)f;
}

static struct tls_session *session_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);

	if (!ci || !ci->tls_session)
		return NULL;
	return gnutls_db_get_ptr((gnutls_session_t)ci->tls_session);
}

const struct api_tls_client *api_tls_client(struct MHD_Connection *conn)
{
	struct tls_session *ss = session_of(conn);

	return ss && ss->client.present ? &ss->client : NULL;
}

void **api_tls_conn_slot(struct MHD_Connection *conn)
{
	struct tls_session *ss = session_of(conn);

	return ss ? &ss->slot : NULL;
}

void api_tls_connection_closed(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	struct tls_session *ss;

	if (!ci || !ci->tls_session)
		return;
	ss = gnutls_db_get_ptr((gnutls_session_t)ci->tls_session);
	gnutls_db_set_ptr((gnutls_session_t)ci->tls_session, NULL);
	if (ss) {
		creds_put(ss->creds);
		free(ss->slot);
		free(ss);
	}
}

static void metric_row(struct wbuf *b, const char *role,
		       const struct api_tls_cert_info *info)
{
	wbuf_puts(b, "tpwallet_tls_certificate_not_after_seconds{role=\"");
	wbuf_puts(b, role);
	wbuf_puts(b, "\",serial=\"");
	wbuf_puts(b, info->serial);
	wbuf_puts(b, "\",subject_cn=\"");
	wbuf_puts(b, info->subject_cn);
	wbuf_puts(b, "\"} ");
	wbuf_put_u64(b, info->not_after > 0 ? (uint64_t)info->not_after : 0);
	wbuf_putc(b, '\n');
}

void api_tls_metrics(struct api_tls *t, struct wbuf *b)
{
	struct api_tls_cert_info primary, standby = {0};
	struct api_tls_cert_info cas[TLS_CLIENT_CAS_SHOWN];
	unsigned ncas = 0;
	bool has_standby;
	int serving;
	/* OCSP: 0 none loaded; else next update (or -1: none given) */
	int64_t ocsp[2] = {0, 0};

	pthread_mutex_lock(&t->lock);
	primary = t->primary->info;
	has_standby = t->standby != NULL;
	if (has_standby)
		standby = t->standby->info;
	if (t->primary->nocsp)
		ocsp[0] = t->primary->ocsp_next_update
				  ? t->primary->ocsp_next_update
				  : -1;
	if (has_standby && t->standby->nocsp)
		ocsp[1] = t->standby->ocsp_next_update
				  ? t->standby->ocsp_next_update
				  : -1;
	serving = t->serving;
	if (t->trust) {
		ncas = t->trust->ncas_shown;
		memcpy(cas, t->trust->cas, ncas * sizeof(cas[0]));
	}
	pthread_mutex_unlock(&t->lock);
	wbuf_puts(b, "# HELP tpwallet_tls_certificate_not_after_seconds When "
		     "the certificate expires (seconds since the epoch).\n"
		     "# TYPE tpwallet_tls_certificate_not_after_seconds "
		     "gauge\n");
	metric_row(b, "server",
		   serving == TLSSWITCH_STANDBY ? &standby : &primary);
	metric_row(b, "primary", &primary);
	if (has_standby)
		metric_row(b, "standby", &standby);
	for (unsigned i = 0; i < ncas; i++)
		metric_row(b, "client_ca", &cas[i]);
	wbuf_puts(b, "# HELP tpwallet_tls_serving Which certificate the "
		     "server serves (1) and which not (0).\n"
		     "# TYPE tpwallet_tls_serving gauge\n"
		     "tpwallet_tls_serving{role=\"primary\"} ");
	wbuf_puts(b, serving == TLSSWITCH_PRIMARY ? "1\n" : "0\n");
	wbuf_puts(b, "tpwallet_tls_serving{role=\"standby\"} ");
	wbuf_puts(b, serving == TLSSWITCH_STANDBY ? "1\n" : "0\n");
	if (!ocsp[0] && !ocsp[1])
		return;
	wbuf_puts(b, "# HELP tpwallet_tls_ocsp_next_update_seconds When the "
		     "stapled OCSP response stops being stapled (its "
		     "nextUpdate, seconds since the epoch; 0: it gives "
		     "none).\n"
		     "# TYPE tpwallet_tls_ocsp_next_update_seconds gauge\n");
	for (int i = 0; i < 2; i++) {
		if (!ocsp[i])
			continue;
		wbuf_puts(b, i ? "tpwallet_tls_ocsp_next_update_seconds{role="
				 "\"standby\"} "
			       : "tpwallet_tls_ocsp_next_update_seconds{role="
				 "\"primary\"} ");
		wbuf_put_u64(b, ocsp[i] > 0 ? (uint64_t)ocsp[i] : 0);
		wbuf_putc(b, '\n');
	}
}
