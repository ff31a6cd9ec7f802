/*
 * tls.c - the server's TLS credentials, their checks, reload and
 * reference counts (see tls.h).
 *
 * libmicrohttpd's certificate callback (GnuTLS's retrieve function)
 * takes no context pointer, so the installed credentials are one per
 * process.  The callback takes a reference to the current credentials
 * under a mutex and keeps it in the session's DB pointer (unused:
 * libmicrohttpd sets up no session cache); the connection's close
 * notification drops it.  GnuTLS keeps pointing at the certificate and
 * key it was given until the session ends, so the reference lives as
 * long as the connection, not just the handshake.
 */
#include "api/tls.h"
#include "core/strerror.h"
#include "engine/logger.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
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

struct tls_creds {
	atomic_uint refs;
	gnutls_pcert_st pcert[TLS_CHAIN_MAX];
	unsigned npcert;
	gnutls_privkey_t key;
	struct api_tls_cert_info info;
};

struct api_tls {
	pthread_mutex_t lock;
	struct tls_creds *current; /* under lock */
	char *cert_file, *key_file, *priority;
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

/* ---- credentials ------------------------------------------------------ */

static void creds_free(struct tls_creds *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->npcert; i++)
		gnutls_pcert_deinit(&c->pcert[i]);
	if (c->key)
		gnutls_privkey_deinit(c->key);
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

static int creds_check(struct tls_creds *c, const char *cert_file,
		       const char *key_file, char *err, size_t err_bytes)
{
	gnutls_x509_crt_t crt = NULL;
	char when[32];
	int64_t now = (int64_t)time(NULL);
	int ret = 0;

	if (gnutls_pcert_export_x509(&c->pcert[0], &crt) != 0 ||
	    cert_info(crt, &c->info) != 0) {
		snprintf(err, err_bytes,
			 "certificate %s: cannot read its first certificate",
			 cert_file);
		ret = -EINVAL;
	} else if (!key_matches(c->key, c->pcert[0].pubkey)) {
		snprintf(err, err_bytes,
			 "key %s does not match the certificate in %s",
			 key_file, cert_file);
		ret = -EINVAL;
	} else if (c->info.not_after <= now) {
		utc(when, sizeof(when), c->info.not_after);
		snprintf(err, err_bytes,
			 "certificate %s expired at %s (not_after); install "
			 "a renewed one",
			 cert_file, when);
		ret = -EKEYEXPIRED;
	} else if (c->info.not_before > now) {
		utc(when, sizeof(when), c->info.not_before);
		snprintf(err, err_bytes,
			 "certificate %s is not valid before %s (not_before; "
			 "is the clock right?)",
			 cert_file, when);
		ret = -EKEYEXPIRED;
	}
	if (crt)
		gnutls_x509_crt_deinit(crt);
	return ret;
}

static int creds_load(struct tls_creds **out, const char *cert_file,
		      const char *key_file, char *err, size_t err_bytes)
{
	gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
	struct tls_creds *c = calloc(1, sizeof(*c));
	int ret;

	*out = NULL;
	if (!c) {
		snprintf(err, err_bytes, "out of memory");
		return -ENOMEM;
	}
	atomic_init(&c->refs, 1);
	ret = read_file("certificate", cert_file, false, &cert, err, err_bytes);
	if (ret == 0)
		ret = read_file("key", key_file, true, &key, err, err_bytes);
	if (ret < 0)
		goto cleanup;
	c->npcert = TLS_CHAIN_MAX;
	if (gnutls_pcert_list_import_x509_raw(c->pcert, &c->npcert, &cert,
					      GNUTLS_X509_FMT_PEM, 0) < 0 ||
	    c->npcert == 0) {
		c->npcert = 0;
		snprintf(err, err_bytes,
			 "certificate %s: no PEM certificate chain (at most "
			 "%u certificates) that GnuTLS can read",
			 cert_file, TLS_CHAIN_MAX);
		ret = -EINVAL;
		goto cleanup;
	}
	if (gnutls_privkey_init(&c->key) != 0 ||
	    gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM,
					   NULL, 0) != 0) {
		snprintf(err, err_bytes,
			 "key %s: no unencrypted PEM private key that GnuTLS "
			 "can read",
			 key_file);
		ret = -EINVAL;
		goto cleanup;
	}
	ret = creds_check(c, cert_file, key_file, err, err_bytes);
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

static void log_creds(const char *msg, const struct tls_creds *c)
{
	char when[32];
	utc(when, sizeof(when), c->info.not_after);
	log_at(LOG_INFO, msg, LOG_STR("subject_cn", c->info.subject_cn),
	       LOG_STR("serial", c->info.serial), LOG_STR("not_after", when),
	       LOG_STR("sha256", c->info.fingerprint));
}

/* ---- the context ------------------------------------------------------ */

int api_tls_open(struct api_tls **out, const char *cert_file,
		 const char *key_file, const char *priority, char *err,
		 size_t err_bytes)
{
	gnutls_priority_t prio = NULL;
	const char *where = NULL;
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
	t->cert_file = strdup(cert_file);
	t->key_file = strdup(key_file);
	t->priority = strdup(priority);
	if (!t->cert_file || !t->key_file || !t->priority) {
		snprintf(err, err_bytes, "out of memory");
		api_tls_close(t);
		return -ENOMEM;
	}
	ret = creds_load(&t->current, cert_file, key_file, err, err_bytes);
	if (ret < 0) {
		api_tls_close(t);
		return ret;
	}
	log_creds("TLS certificate loaded", t->current);
	*out = t;
	return 0;
}

void api_tls_close(struct api_tls *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&installed_lock);
	if (installed == t)
		installed = NULL;
	pthread_mutex_unlock(&installed_lock);
	creds_put(t->current);
	pthread_mutex_destroy(&t->lock);
	free(t->cert_file);
	free(t->key_file);
	free(t->priority);
	free(t);
}

const char *api_tls_priority(const struct api_tls *t)
{
	return t->priority;
}

int api_tls_reload(struct api_tls *t)
{
	char err[API_TLS_ERR_BYTES];
	struct tls_creds *c = NULL, *old;
	int ret = creds_load(&c, t->cert_file, t->key_file, err, sizeof(err));

	if (ret < 0) {
		log_at(LOG_ERROR,
		       "TLS reload refused: the current certificate stays",
		       LOG_STR("reason", err));
		return ret;
	}
	pthread_mutex_lock(&t->lock);
	old = t->current;
	t->current = c;
	pthread_mutex_unlock(&t->lock);
	log_creds("TLS certificate reloaded", c);
	creds_put(old);
	return 0;
}

/* ---- libmicrohttpd and GnuTLS ----------------------------------------- */

void api_tls_install(struct api_tls *t)
{
	pthread_mutex_lock(&installed_lock);
	installed = t;
	pthread_mutex_unlock(&installed_lock);
}

static struct tls_creds *current_get(void)
{
	struct tls_creds *c = NULL;

	pthread_mutex_lock(&installed_lock);
	if (installed) {
		pthread_mutex_lock(&installed->lock);
		c = installed->current;
		atomic_fetch_add(&c->refs, 1);
		pthread_mutex_unlock(&installed->lock);
	}
	pthread_mutex_unlock(&installed_lock);
	return c;
}

static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
		    int nreqs, const gnutls_pk_algorithm_t *pk_algos,
		    int pk_algos_length, gnutls_pcert_st **pcert,
		    unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
	struct tls_creds *c = current_get();

	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (!c)
		return -1;
	/* Called again in one handshake (a retry): one reference each. */
	creds_put(gnutls_db_get_ptr(session));
	gnutls_db_set_ptr(session, c);
	*pcert = c->pcert;
	*pcert_length = c->npcert;
	*privkey = c->key;
	return 0;
}

void *api_tls_callback(void)
{
	gnutls_certificate_retrieve_function2 *f = retrieve;
	return (void *)f;
}

void api_tls_connection_closed(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session;

	if (!ci || !ci->tls_session)
		return;
	session = (gnutls_session_t)ci->tls_session;
	creds_put(gnutls_db_get_ptr(session));
	gnutls_db_set_ptr(session, NULL);
}

void api_tls_metrics(struct api_tls *t, struct wbuf *b)
{
	struct api_tls_cert_info info;

	pthread_mutex_lock(&t->lock);
	info = t->current->info;
	pthread_mutex_unlock(&t->lock);
	wbuf_puts(b, "# HELP tpwallet_tls_certificate_not_after_seconds When "
		     "the certificate expires (seconds since the epoch).\n"
		     "# TYPE tpwallet_tls_certificate_not_after_seconds "
		     "gauge\n"
		     "tpwallet_tls_certificate_not_after_seconds{role=\"server"
		     "\",serial=\"");
	wbuf_puts(b, info.serial);
	wbuf_puts(b, "\",subject_cn=\"");
	wbuf_puts(b, info.subject_cn);
	wbuf_puts(b, "\"} ");
	wbuf_put_u64(b, info.not_after > 0 ? (uint64_t)info.not_after : 0);
	wbuf_putc(b, '\n');
}
