/*
 * tls.h - the server's TLS credentials (docs/operations.md, "TLS"): a
 * certificate chain and its private key read from files, checked before
 * they are served (readable, key of mode 0600, key matching the
 * certificate, certificate valid now), swapped for new files on
 * api_tls_reload (SIGHUP) without a restart, and handed to GnuTLS
 * through libmicrohttpd's certificate callback.
 *
 * Each connection holds a reference to the credentials it was given, so
 * a reload never frees what a handshake or an open connection still
 * uses; the old credentials go when their last connection closes.  Key
 * material is never logged: a reload logs the subject's CN, the serial,
 * not_after and the SHA-256 fingerprint of the certificate.
 */
#ifndef TPW_API_TLS_H
#define TPW_API_TLS_H

#include "api/wbuf.h"

#include <stddef.h>
#include <stdint.h>

/* TLS 1.3 and 1.2 only, AEAD ciphers with ECDHE, the server's order
 * first (setting tls_priority overrides it; docs/security.md). */
#define API_TLS_PRIORITY_DEFAULT                                               \
	"SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:"           \
	"+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:"         \
	"-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

#define API_TLS_ERR_BYTES 640u

/* What a certificate says, sanitised for logs and metric labels. */
struct api_tls_cert_info {
	char subject_cn[65];  /* [A-Za-z0-9.*_-], others as '_'; may be "" */
	char serial[41];      /* hex, lower case, at most 20 bytes */
	char fingerprint[65]; /* SHA-256 of the DER, hex */
	int64_t not_before, not_after; /* seconds since the epoch */
};

/* Read the first certificate of a PEM file (not secret: any mode).
 * Returns 0, or -errno with err naming the file and the cause. */
int api_tls_cert_inspect(const char *path, struct api_tls_cert_info *info,
			 char *err, size_t err_bytes);

struct api_tls;

/* Load and check cert_file (PEM chain, leaf first) and key_file (PEM,
 * mode 0600, ours); priority NULL for API_TLS_PRIORITY_DEFAULT.  Returns
 * 0, or -errno with err naming the file and what is wrong. */
int api_tls_open(struct api_tls **out, const char *cert_file,
		 const char *key_file, const char *priority, char *err,
		 size_t err_bytes);
void api_tls_close(struct api_tls *t);

/* The priority string libmicrohttpd is given. */
const char *api_tls_priority(const struct api_tls *t);

/* Read the files again; if the new pair passes every check of
 * api_tls_open, new connections get it; otherwise the current pair
 * stays.  Logs either way.  Returns 0 or -errno. */
int api_tls_reload(struct api_tls *t);

/* The server's hooks (server.c): make t the credentials the certificate
 * callback serves (one per process), the callback itself (a
 * gnutls_certificate_retrieve_function2, as void * to keep GnuTLS out of
 * this header), and the release when a connection closes. */
void api_tls_install(struct api_tls *t);
void *api_tls_callback(void);
struct MHD_Connection;
void api_tls_connection_closed(struct MHD_Connection *c);

/* tpwallet_tls_certificate_not_after_seconds for the served chain's
 * leaf (role="server"). */
void api_tls_metrics(struct api_tls *t, struct wbuf *b);

#endif
