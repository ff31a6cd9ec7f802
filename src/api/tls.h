/*
 * tls.h - the server's TLS credentials (docs/operations.md, "TLS"): a
 * certificate chain and its private key read from files, checked before
 * they are served (readable, key of mode 0600, key matching the
 * certificate, certificate valid now), swapped for new files on
 * api_tls_reload (SIGHUP) without a restart, and handed to GnuTLS
 * through libmicrohttpd's certificate callback.
 *
 * A standby pair (another CA or key) may be configured beside the
 * primary: the server serves the primary and switches to the standby by
 * itself when the primary is expired or not valid yet (looked at when
 * opened, on api_tls_reload and by a thread that wakes at the primary's
 * not_before or not_after), back to the primary once it is valid again
 * (unless an operator chose the standby), and on api_tls_switch (an
 * operator, POST /v1/tls/switch).  Every switch is logged, and the
 * server's own ones are journaled by that thread (core/tlsswitch.h,
 * TLS_CMD_SWITCH); the route journals the operator's.
 *
 * Client certificates (mutual TLS, docs/operations.md "Client
 * certificates"): with tls_client_ca_file the server asks for one
 * (tls_client_auth optional) or insists on one (required); a certificate
 * that is sent is verified once, during the handshake, against the CAs
 * and the CRLs of tls_crl_file (both reloaded with the pairs), and a
 * certificate that fails (expired, not yet valid, revoked, another CA's,
 * not for client authentication) fails the handshake, in every mode,
 * with a log line that says why.  What a verified certificate says (the
 * SHA-256 of its DER, RFC 8705's x5t#S256, and of its
 * SubjectPublicKeyInfo, an organisation principal's id) is kept with the
 * connection, so a request reads it without any cryptography.
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
#include "core/tlsswitch.h"

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

/* What a TLS endpoint serves (`tpwallet doctor --url`): its leaf
 * certificate, the subject's and issuer's DNs (RFC 4514, every byte
 * outside printable ASCII as '?'), whether the chain verifies for host
 * against ca_file (NULL: the system's CAs) and if not why, in GnuTLS's
 * words. */
struct api_tls_remote {
	struct api_tls_cert_info leaf;
	char subject[256], issuer[256];
	bool verified;
	char why[256];
	char version[16]; /* "TLS1.3" */
};

/* Connect to host:port (a name, an IPv4 or a bracketed IPv6 address),
 * shake hands without verifying (so a bad certificate is still seen),
 * then verify.  Bounded by timeout_ms for the connect and the handshake
 * each.  Returns 0 (the handshake worked; verified says the rest), or
 * -errno with err saying why there is no certificate to look at. */
int api_tls_remote_inspect(const char *host, unsigned short port,
			   const char *ca_file, unsigned timeout_ms,
			   struct api_tls_remote *out, char *err,
			   size_t err_bytes);

struct api_tls;

/* The files of a server: the primary pair, and optionally (both or
 * neither, "" or NULL for none) the standby pair. */
struct api_tls_files {
	const char *cert_file, *key_file;
	const char *standby_cert_file, *standby_key_file;
	const char *priority; /* NULL or "": API_TLS_PRIORITY_DEFAULT */
	/* Mutual TLS: the client CAs (PEM, one or more), their CRLs (PEM,
	 * optional, needs the CAs), and "none", "optional" or "required"
	 * (NULL or "": optional with CAs, none without). */
	const char *client_ca_file, *crl_file, *client_auth;
	/* OCSP stapling: a DER OCSP response for the primary's (and the
	 * standby's) certificate, read with its pair; NULL or "": none. */
	const char *ocsp_file, *standby_ocsp_file;
};

/* What an OCSP response file says about a certificate file (doctor,
 * and the server at each load): status "good", "revoked" or "unknown";
 * next_update (0: none given); whether its signature was checked (the
 * chain holds the issuer).  Returns 0, or -errno with err saying why it
 * cannot be used (not DER OCSP, not successful, for another
 * certificate, a bad signature). */
struct api_tls_ocsp_info {
	const char *status;
	int64_t this_update, next_update;
	bool signature_checked;
};
int api_tls_ocsp_inspect(const char *ocsp_file, const char *cert_file,
			 struct api_tls_ocsp_info *info, char *err,
			 size_t err_bytes);

enum api_tls_client_auth {
	API_TLS_CLIENT_NONE = 0,
	API_TLS_CLIENT_OPTIONAL = 1,
	API_TLS_CLIENT_REQUIRED = 2,
};

/* A connection's verified client certificate (present false: none). */
struct api_tls_client {
	bool present;
	unsigned char cert_sha256[32]; /* of the leaf's DER: x5t#S256 */
	unsigned char spki_sha256[32]; /* of its SubjectPublicKeyInfo */
};

/* The client certificate of the connection c, verified at its
 * handshake, or NULL (plain HTTP, no certificate).  Valid while the
 * connection is: read it from the connection's own thread. */
struct MHD_Connection;
const struct api_tls_client *api_tls_client(struct MHD_Connection *c);

/* The earliest nextUpdate of the CRLs in a PEM file (doctor), in
 * *next (-1: none says).  Returns 0, or -errno with err saying why. */
int api_tls_crl_next_update(const char *path, int64_t *next, char *err,
			    size_t err_bytes);

/* The connection's slot for the authorization layer (api/authz.h: the
 * certificate-bound mandate it verified last), NULL on plain HTTP; what
 * it holds is one malloc'ed block, freed when the connection closes. */
void **api_tls_conn_slot(struct MHD_Connection *c);

/* What an organisation's certificate (PEM, the first of the text) says:
 * the SHA-256 of its SubjectPublicKeyInfo, of its DER (RFC 8705's
 * x5t#S256; cert_sha256 may be NULL), and its dates.  Returns 0 or
 * -EINVAL. */
int api_tls_cert_identity(const char *pem, size_t len,
			  unsigned char spki_sha256[32],
			  unsigned char *cert_sha256, int64_t *not_before,
			  int64_t *not_after);

/* Load and check the pairs: each certificate a PEM chain, leaf first;
 * each key PEM, mode 0600, ours, matching its certificate.  The standby
 * must be valid now; the primary too when there is no standby (with
 * one, a primary that is expired or not valid yet is loaded and the
 * standby serves).  Returns 0, or -errno with err naming the file and
 * what is wrong. */
int api_tls_open(struct api_tls **out, const struct api_tls_files *f, char *err,
		 size_t err_bytes);
void api_tls_close(struct api_tls *t);

/* Start the thread that switches at the primary's dates and journals
 * the server's own switches through e (api_server_start), and stop it
 * (api_server_stop, before the engine closes).  start returns 0 or a
 * negative errno. */
struct engine;
int api_tls_start(struct api_tls *t, struct engine *e);
void api_tls_stop(struct api_tls *t);

/* The priority string libmicrohttpd is given. */
const char *api_tls_priority(const struct api_tls *t);

/* Read the files again (the client CAs and CRLs too: refused, the old
 * ones stay); each new pair that passes every check of
 * api_tls_open (valid now, for the primary too) replaces its old one,
 * otherwise the old one stays; then switch if the dates say so.  New
 * connections get what serves.  Logs either way.  Returns 0 or -errno
 * (a pair refused). */
int api_tls_reload(struct api_tls *t);

/* Is a standby configured; which role serves now (TLSSWITCH_PRIMARY or
 * TLSSWITCH_STANDBY). */
bool api_tls_has_standby(struct api_tls *t);
int api_tls_serving(struct api_tls *t);

/* An operator's switch to role `to` (TLSSWITCH_PRIMARY or _STANDBY),
 * by author (a principal id, zero for the administrator).  Returns 1
 * when it switched, with the entry to journal in *out; 0 when `to`
 * already serves; or -EINVAL with why in err (no standby configured,
 * or the certificate asked for is not valid now). Choosing the standby
 * keeps it serving until an operator switches back; choosing the
 * primary lets the dates decide again. */
int api_tls_switch(struct api_tls *t, int to, const unsigned char author[32],
		   struct tlsswitch *out, char *err, size_t err_bytes);

/* The server's hooks (server.c): make t the credentials the certificate
 * callback serves (one per process), the callback itself (a
 * gnutls_certificate_retrieve_function3 (it can staple an OCSP
 * response), as void * to keep GnuTLS out of
 * this header), and the release when a connection closes. */
void api_tls_install(struct api_tls *t);
void *api_tls_callback(void);
void api_tls_connection_closed(struct MHD_Connection *c);

/* tpwallet_tls_certificate_not_after_seconds for the served chain's
 * leaf (role="server"), the primary's (role="primary"), the
 * standby's (role="standby", when configured) and the first 4 client
 * CAs (role="client_ca", with tls_client_ca_file); tpwallet_tls_serving
 * {role="primary|standby"}: 1 for the one that serves. */
void api_tls_metrics(struct api_tls *t, struct wbuf *b);

#endif
