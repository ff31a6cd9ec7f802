/*
 * pkcs11.h - the key-encryption key in a hardware security module, reached
 * through PKCS#11 (issue 19).  The module (a shared library: SoftHSM2,
 * a vendor's HSM client) is loaded with dlopen from the path the
 * `kek_pkcs11_module` setting names; the token is found by its label (or
 * slot number); the user logs in with the PIN from `kek_pkcs11_pin_file`
 * or the environment variable TPWALLET_KEK_PKCS11_PIN (never a flag),
 * wiped as soon as the login is done; the KEK is the AES-256 secret key
 * object labelled `kek_pkcs11_key_label`, sensitive and not extractable,
 * so it never leaves the token.  The token may hold later versions of it
 * (labels LABEL.2 ... LABEL.8, pkcs11_new_version): the newest seals,
 * every one still there opens the files that name its id.
 *
 * This module gives crypto/keyring a struct keyring_kek_provider: every
 * key file is sealed and opened in the token with CKM_AES_GCM (a fresh
 * 12-byte IV per seal, the key file's metadata and kid as associated
 * data, a 128-bit tag).  GCM rather than CKM_AES_KEY_WRAP_PAD because the
 * server needs the signing key's bytes back in its own memory (C_Decrypt
 * gives them; C_UnwrapKey would make a token object the server then
 * cannot read), because it authenticates the metadata in the same call,
 * and because SoftHSM 2.6 and the HSMs we know implement it.
 *
 * Threads and deadlines.  One session, used by one worker thread: a
 * caller hands it a job and waits at most `timeout_ms` for the answer.
 * A token that stalls costs the caller that wait and an error
 * (kek_unavailable, "did not answer within N ms"); while the worker is
 * still stuck, later calls fail at once, and the first one after it
 * comes back runs normally.  When a call fails because the session or
 * the login was lost (token removed and put back, module restarted), the
 * worker opens a new session and logs in again (reading the PIN again)
 * before the next job.
 *
 * Nothing here prints or logs: errors are sentences into err naming the
 * setting and the PKCS#11 return value (never the PIN).  The counters
 * (pkcs11_stats) are for /metrics and doctor.
 */
#ifndef TPW_LOG_PKCS11_H
#define TPW_LOG_PKCS11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"

#define PKCS11_PIN_ENV		  "TPWALLET_KEK_PKCS11_PIN"
#define PKCS11_PIN_BYTES_MAX	  256
#define PKCS11_LABEL_BYTES_MAX	  64
#define PKCS11_TIMEOUT_MS_DEFAULT 2000
/* Versions of the KEK a token may hold: labels L, L.2, ... L.8. */
#define PKCS11_KEK_VERSIONS_MAX 8
/* Bounds of the latency histogram, in seconds (and +Inf). */
#define PKCS11_BUCKETS 12
extern const double pkcs11_bucket_bounds[PKCS11_BUCKETS];

struct pkcs11_config {
	const char *module;    /* path of the PKCS#11 shared library */
	const char *token;     /* token label, or NULL/"" */
	long slot;	       /* slot id when token is empty; -1: none */
	const char *pin_file;  /* NULL/"": PKCS11_PIN_ENV */
	const char *key_label; /* label of the AES KEK object */
	unsigned timeout_ms;   /* 0: PKCS11_TIMEOUT_MS_DEFAULT */
	/* signing_pkcs11: new signing keys are generated in the token
	 * (Ed25519, CKM_EC_EDWARDS_KEY_PAIR_GEN) and sign there
	 * (CKM_EDDSA); the open fails when the token lacks either. */
	bool sign_in_token;
};

struct pkcs11;

/* Loads the module, finds the token, logs in and finds the key (or, with
 * create, generates it when absent: `tpwallet keys init-hsm`).  On
 * failure err names the setting at fault. */
int pkcs11_open(const struct pkcs11_config *c, bool create, struct pkcs11 **out,
		char *err, size_t err_size);

/* The KEK for the keyring: the newest version in the token seals; every
 * version still there opens (its files name it by id: a hash of the key
 * object's CKA_ID).  The KEK borrows p, which must outlive it.  Its
 * provider also reaches signing keys kept in the token (key file
 * version 3: keyring.h), and generates new ones there with
 * sign_in_token.  Such a key pair: CKK_EC_EDWARDS (Ed25519, CKA_EC_PARAMS
 * the OID 1.3.101.112), a random 16-byte CKA_ID, CKA_LABEL its kid
 * (first "tpwallet-" and the CKA_ID in hex: kept where the token does
 * not let a label change),
 * CKA_TOKEN; the private half CKA_PRIVATE, CKA_SENSITIVE, not
 * CKA_EXTRACTABLE, CKA_SIGN only; the public key read back from the
 * public half's CKA_EC_POINT (a DER OCTET STRING of the 32 bytes, or
 * the 32 bytes bare). */
int pkcs11_kek(struct pkcs11 *p, struct keyring_kek **out);

/* The newest version of the KEK seen in the token (by the open, the
 * last pkcs11_ping, or pkcs11_new_version): 1 for label L, n for L.n. */
unsigned pkcs11_current_version(struct pkcs11 *p);

/* Rotation of the KEK inside the token: makes version n + 1 (label
 * L.<n+1>, sensitive, not extractable) after the newest, n; *version
 * gets it.  The versions before stay until an operator deletes them. */
int pkcs11_new_version(struct pkcs11 *p, unsigned *version, char *err,
		       size_t err_size);

/* Closes the session, finalizes and unloads the module (waits for a
 * stuck worker at most one timeout, then leaves it).  NULL is fine. */
void pkcs11_close(struct pkcs11 *p);

enum pkcs11_op { PKCS11_OP_WRAP, PKCS11_OP_UNWRAP, PKCS11_OP_SIGN, PKCS11_OPS };
extern const char *const pkcs11_op_names[PKCS11_OPS];

struct pkcs11_stats {
	bool up; /* the last call succeeded */
	char token[PKCS11_LABEL_BYTES_MAX + 1];
	char key_label[PKCS11_LABEL_BYTES_MAX + 1];
	char module[512];
	bool gcm_supported;
	bool eddsa_supported;	       /* CKM_EDDSA */
	bool edwards_keygen_supported; /* CKM_EC_EDWARDS_KEY_PAIR_GEN */
	bool sign_in_token; /* new signing keys are made in the token */
	uint64_t count[PKCS11_OPS];
	uint64_t errors[PKCS11_OPS];
	double sum_s[PKCS11_OPS];
	uint64_t bucket[PKCS11_OPS][PKCS11_BUCKETS]; /* cumulative */
};

/* A consistent copy of the counters. */
void pkcs11_stats(struct pkcs11 *p, struct pkcs11_stats *out);

/* One round trip to the token (C_GetSessionInfo, then the versions of
 * the KEK looked up again, so that one made by another process is seen),
 * bounded like any call: 0 or kek_unavailable. */
int pkcs11_ping(struct pkcs11 *p, char *err, size_t err_size);

#endif
