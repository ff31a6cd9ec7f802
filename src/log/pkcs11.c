/*
 * pkcs11.c - the key-encryption key in a PKCS#11 token: loading the
 * module, the session and its login, the AES-GCM seal and open the
 * keyring calls, each bounded by a deadline (pkcs11.h).
 *
 * One worker thread owns the session and makes every PKCS#11 call after
 * C_GetFunctionList; callers hand it one job at a time (the lock, the
 * job slot and two condition variables) and wait for it until their
 * deadline.  A job's inputs and outputs live in this struct, not on the
 * caller's stack, so a caller that gave up leaves nothing the worker
 * could still write into.
 */
#include "log/pkcs11.h"
#include "core/strerror.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>
#include <sodium.h>

#include "banned.h"

const double pkcs11_bucket_bounds[PKCS11_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01,	0.025,	 0.05,	 0.1,	0.5,	2.5,
};
const char *const pkcs11_op_names[PKCS11_OPS] = {"wrap", "unwrap", "sign"};

enum job_kind {
	JOB_OPEN,
	JOB_WRAP,
	JOB_UNWRAP,
	JOB_PING,
	JOB_NEW_VERSION,
	JOB_KEY_GENERATE,
	JOB_KEY_PUBLIC,
	JOB_KEY_SIGN,
	JOB_KEY_DESTROY,
};

/* Ed25519's CKA_EC_PARAMS: the OID 1.3.101.112, DER (RFC 8410). */
static const unsigned char ed25519_oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
/* Private key handles of signing keys, by CKA_ID (the worker's). */
#define SIGN_HANDLES_MAX 64

struct kek_version {
	CK_OBJECT_HANDLE h;
	unsigned n; /* 1: label L; n > 1: label L.n */
	unsigned char id[KEYRING_KEK_ID_BYTES];
};
enum job_state { JOB_IDLE, JOB_PENDING, JOB_RUNNING, JOB_DONE };

#define AAD_BYTES_MAX  256
#define DATA_BYTES_MAX 64

struct pkcs11 {
	void *dl;
	CK_FUNCTION_LIST *f;
	bool initialized; /* C_Initialize succeeded here: finalize at close */
	char module[512];
	char token[PKCS11_LABEL_BYTES_MAX + 1];
	long slot_id;
	char pin_file[4200];
	char key_label[PKCS11_LABEL_BYTES_MAX + 1];
	bool create;
	bool sign_in_token;
	unsigned timeout_ms;

	/* The worker's; read by others only under lock. */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE session;
	bool session_ok;
	/* The KEK's versions in the token (labels L, L.2, L.3...). */
	struct kek_version v[PKCS11_KEK_VERSIONS_MAX];
	unsigned nv;
	bool gcm, eddsa, edgen;
	struct {
		unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES];
		CK_OBJECT_HANDLE h;
	} handles[SIGN_HANDLES_MAX];
	unsigned nhandles;
	/* Their ids and the newest version number, for other threads
	 * (under lock). */
	unsigned char ids[PKCS11_KEK_VERSIONS_MAX][KEYRING_KEK_ID_BYTES];
	unsigned nids, current;

	pthread_t worker;
	bool worker_started;
	pthread_mutex_t lock;
	pthread_cond_t to_worker, to_caller;
	bool stop;
	enum job_state state;
	bool abandoned; /* the caller of the running job gave up */
	struct {
		enum job_kind kind;
		unsigned version; /* wrap: with which */
		unsigned char kek_id[KEYRING_KEK_ID_BYTES]; /* unwrap: which */
		unsigned char aad[AAD_BYTES_MAX];
		size_t aad_len;
		unsigned char iv[KEYRING_TOKEN_IV_BYTES];
		unsigned char in[DATA_BYTES_MAX];
		size_t len;
		unsigned char tag[KEYRING_TOKEN_TAG_BYTES];
		unsigned char *out; /* sodium_malloc'd DATA_BYTES_MAX */
		/* signing keys in the token */
		unsigned char key_id[KEYRING_TOKEN_KEY_ID_BYTES];
		unsigned char pub[JOSE_ED25519_PUBLIC_BYTES];
		unsigned char sig[JOSE_ED25519_SIGNATURE_BYTES];
		unsigned char *msg; /* malloc'd copy; freed by the next job */
		size_t msg_len;
		int ret;
		char err[KEYRING_ERR_BYTES];
	} job;

	struct pkcs11_stats st;
};

static void say(char *err, size_t err_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;

	if (!err || !err_size)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

static const char *ckr_name(CK_RV rv)
{
	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_HOST_MEMORY: return "CKR_HOST_MEMORY";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
	case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
	case CKR_DEVICE_MEMORY: return "CKR_DEVICE_MEMORY";
	case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
	case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
	case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
	case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
	case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
	case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
	case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
	case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
	case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
	case CKR_PIN_EXPIRED: return "CKR_PIN_EXPIRED";
	case CKR_SESSION_CLOSED: return "CKR_SESSION_CLOSED";
	case CKR_SESSION_COUNT: return "CKR_SESSION_COUNT";
	case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
	case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
	case CKR_TOKEN_NOT_RECOGNIZED: return "CKR_TOKEN_NOT_RECOGNIZED";
	case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
	case CKR_USER_PIN_NOT_INITIALIZED:
		return "CKR_USER_PIN_NOT_INITIALIZED";
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return "CKR_CRYPTOKI_NOT_INITIALIZED";
	default: return "another CKR_ code";
	}
}

/* Errors after which the session (or its login) is gone. */
static bool session_lost(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	       rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_DEVICE_REMOVED ||
	       rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_KEY_HANDLE_INVALID ||
	       rv == CKR_OBJECT_HANDLE_INVALID ||
	       rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* ---- the PIN --------------------------------------------------------- */

/* The PIN into pin (sodium_malloc'd PKCS11_PIN_BYTES_MAX + 1), its length
 * into *len; the caller wipes it. */
static int read_pin(const struct pkcs11 *p, char *pin, size_t *len, char *err,
		    size_t err_size)
{
	if (!p->pin_file[0]) {
		const char *v = getenv(PKCS11_PIN_ENV);
		if (!v || !*v) {
			say(err, err_size,
			    "no PIN for the token: set kek_pkcs11_pin_file "
			    "or %s",
			    PKCS11_PIN_ENV);
			return KEYRING_E_KEK_MISSING;
		}
		*len = strnlen(v, PKCS11_PIN_BYTES_MAX + 1);
		if (*len > PKCS11_PIN_BYTES_MAX) {
			say(err, err_size, "%s is longer than %d bytes",
			    PKCS11_PIN_ENV, PKCS11_PIN_BYTES_MAX);
			return KEYRING_E_KEK_BAD_LENGTH;
		}
		memcpy(pin, v, *len);
		return 0;
	}
	int fd = open(p->pin_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0) {
		say(err, err_size, "kek_pkcs11_pin_file %s: %s", p->pin_file,
		    tpw_strerror(errno));
		return KEYRING_E_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		say(err, err_size,
		    "kek_pkcs11_pin_file %s is not a regular file",
		    p->pin_file);
		return KEYRING_E_NOT_REGULAR;
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		say(err, err_size,
		    "kek_pkcs11_pin_file %s is owned by uid %u, not by the "
		    "server's user",
		    p->pin_file, (unsigned)st.st_uid);
		return KEYRING_E_BAD_OWNER;
	}
	if (st.st_mode & 077) {
		close(fd);
		say(err, err_size,
		    "kek_pkcs11_pin_file %s has mode %04o; it must be 0600 or "
		    "stricter",
		    p->pin_file, (unsigned)(st.st_mode & 07777));
		return KEYRING_E_BAD_PERMISSIONS;
	}
	ssize_t n = read(fd, pin, PKCS11_PIN_BYTES_MAX + 1);
	close(fd);
	if (n < 0 || n > PKCS11_PIN_BYTES_MAX) {
		say(err, err_size,
		    "kek_pkcs11_pin_file %s: unreadable or longer than %d "
		    "bytes",
		    p->pin_file, PKCS11_PIN_BYTES_MAX);
		return KEYRING_E_KEK_BAD_LENGTH;
	}
	while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
		n--;
	if (n == 0) {
		say(err, err_size, "kek_pkcs11_pin_file %s is empty",
		    p->pin_file);
		return KEYRING_E_KEK_BAD_LENGTH;
	}
	*len = (size_t)n;
	return 0;
}

/* ---- the session (the worker's) ------------------------------------- */

static bool label_is(const CK_UTF8CHAR label[32], const char *want)
{
	size_t n = 32;
	while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == '\0'))
		n--;
	return strlen(want) == n && memcmp(label, want, n) == 0;
}

static int find_slot(struct pkcs11 *p, char *err, size_t err_size)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_RV rv = p->f->C_GetSlotList(CK_TRUE, slots, &n);

	if (rv != CKR_OK) {
		say(err, err_size, "kek_pkcs11_module %s: C_GetSlotList: %s",
		    p->module, ckr_name(rv));
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (!p->token[0]) {
			if (slots[i] == (CK_SLOT_ID)p->slot_id) {
				p->slot = slots[i];
				return 0;
			}
			continue;
		}
		if (p->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    label_is(ti.label, p->token)) {
			p->slot = slots[i];
			return 0;
		}
	}
	if (p->token[0])
		say(err, err_size,
		    "kek_pkcs11_token: no token labelled '%s' in %s (%lu "
		    "token(s) present)",
		    p->token, p->module, (unsigned long)n);
	else
		say(err, err_size,
		    "kek_pkcs11_slot: no token in slot %ld of %s", p->slot_id,
		    p->module);
	return KEYRING_E_KEK_UNAVAILABLE;
}

static int login(struct pkcs11 *p, char *err, size_t err_size)
{
	char *pin = sodium_malloc(PKCS11_PIN_BYTES_MAX + 1);
	size_t len = 0;
	int ret;

	if (!pin)
		return KEYRING_E_NO_MEMORY;
	ret = read_pin(p, pin, &len, err, err_size);
	if (ret == 0) {
		CK_RV rv = p->f->C_Login(p->session, CKU_USER,
					 (CK_UTF8CHAR *)pin, len);
		if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE)
			say(err, err_size,
			    "token '%s' refuses the PIN (from %s): %s",
			    p->token,
			    p->pin_file[0] ? "kek_pkcs11_pin_file"
					   : PKCS11_PIN_ENV,
			    ckr_name(rv));
		else if (rv == CKR_PIN_LOCKED)
			say(err, err_size,
			    "token '%s' is locked (%s): too many wrong PINs; "
			    "its security officer must unlock it",
			    p->token, ckr_name(rv));
		else if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
			say(err, err_size, "token '%s': C_Login: %s", p->token,
			    ckr_name(rv));
		if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
			ret = KEYRING_E_KEK_UNAVAILABLE;
	}
	sodium_memzero(pin, PKCS11_PIN_BYTES_MAX + 1);
	sodium_free(pin);
	return ret;
}

static CK_RV get_bool(struct pkcs11 *p, CK_OBJECT_HANDLE h,
		      CK_ATTRIBUTE_TYPE type, CK_BBOOL *v)
{
	CK_ATTRIBUTE a = {type, v, sizeof(*v)};
	return p->f->C_GetAttributeValue(p->session, h, &a, 1);
}

/* The label of version n of the KEK. */
static void label_of(const struct pkcs11 *p, unsigned n, char *out, size_t cap)
{
	if (n == 1)
		snprintf(out, cap, "%s", p->key_label);
	else
		snprintf(out, cap, "%s.%u", p->key_label, n);
}

static int generate_key(struct pkcs11 *p, unsigned n, char *err,
			size_t err_size)
{
	char label[PKCS11_LABEL_BYTES_MAX + 8];
	CK_OBJECT_HANDLE h;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG value_len = 32;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	unsigned char id[KEYRING_KEK_ID_BYTES];
	CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};

	randombytes_buf(id, sizeof(id));
	label_of(p, n, label, sizeof(label));
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_VALUE_LEN, &value_len, sizeof(value_len)},
		{CKA_TOKEN, &yes, sizeof(yes)},
		{CKA_PRIVATE, &yes, sizeof(yes)},
		{CKA_SENSITIVE, &yes, sizeof(yes)},
		{CKA_EXTRACTABLE, &no, sizeof(no)},
		{CKA_ENCRYPT, &yes, sizeof(yes)},
		{CKA_DECRYPT, &yes, sizeof(yes)},
		{CKA_WRAP, &no, sizeof(no)},
		{CKA_UNWRAP, &no, sizeof(no)},
		{CKA_LABEL, label, strlen(label)},
		{CKA_ID, id, sizeof(id)},
	};
	CK_RV rv = p->f->C_GenerateKey(p->session, &mech, t,
				       sizeof(t) / sizeof(t[0]), &h);
	if (rv != CKR_OK) {
		say(err, err_size,
		    "token '%s': cannot generate the AES key '%s': %s",
		    p->token, label, ckr_name(rv));
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	return 0;
}

/* The objects matching t[0..nt): at most max handles into found, their
 * count into *n (0 on failure); KEYRING_E_KEK_UNAVAILABLE when the token
 * fails the search (a lost session noted). */
static int find_objects(struct pkcs11 *p, CK_ATTRIBUTE *t, CK_ULONG nt,
			CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *n,
			char *err, size_t err_size)
{
	CK_RV rv = p->f->C_FindObjectsInit(p->session, t, nt);

	*n = 0;
	if (rv == CKR_OK) {
		rv = p->f->C_FindObjects(p->session, found, max, n);
		p->f->C_FindObjectsFinal(p->session);
	}
	if (rv != CKR_OK) {
		*n = 0;
		if (session_lost(rv))
			p->session_ok = false;
		say(err, err_size, "token '%s': C_FindObjects: %s", p->token,
		    ckr_name(rv));
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	return 0;
}

/* The secret keys labelled label: how many (at most 2) into *n, the
 * first into *h. */
static int find_one(struct pkcs11 *p, const char *label, CK_OBJECT_HANDLE *h,
		    CK_ULONG *n, char *err, size_t err_size)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_LABEL, (void *)label, strlen(label)},
	};
	CK_OBJECT_HANDLE found[2];
	int r = find_objects(p, t, 2, found, 2, n, err, err_size);

	if (r)
		return r;
	if (*n > 1) {
		say(err, err_size,
		    "kek_pkcs11_key_label: more than one secret key labelled "
		    "'%s' in token '%s'",
		    label, p->token);
		return KEYRING_E_KEK_MISSING;
	}
	*h = found[0];
	return 0;
}

/* The key must be AES, sensitive and not extractable; its CKA_ID names
 * it (the KEK id). */
static int check_key(struct pkcs11 *p, CK_OBJECT_HANDLE key, const char *label,
		     unsigned char kek_id[KEYRING_KEK_ID_BYTES], char *err,
		     size_t err_size)
{
	CK_KEY_TYPE kt = 0;
	CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
	unsigned char id[256];
	CK_ATTRIBUTE a[] = {{CKA_KEY_TYPE, &kt, sizeof(kt)},
			    {CKA_ID, id, sizeof(id)}};
	CK_RV rv = p->f->C_GetAttributeValue(p->session, key, a, 2);

	if (rv == CKR_OK)
		rv = get_bool(p, key, CKA_SENSITIVE, &sensitive);
	if (rv == CKR_OK)
		rv = get_bool(p, key, CKA_EXTRACTABLE, &extractable);
	if (rv != CKR_OK) {
		say(err, err_size, "token '%s': key '%s': %s", p->token, label,
		    ckr_name(rv));
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	if (kt != CKK_AES || !sensitive || extractable) {
		say(err, err_size,
		    "kek_pkcs11_key_label: key '%s' in token '%s' must be an "
		    "AES key, sensitive and not extractable (so that it "
		    "never leaves the token)",
		    label, p->token);
		return KEYRING_E_KEK_BAD_ENCODING;
	}
	crypto_generichash_state h;
	static const char domain[] = "tpwallet pkcs11 kek id";
	crypto_generichash_init(&h, NULL, 0, KEYRING_KEK_ID_BYTES);
	crypto_generichash_update(&h, (const unsigned char *)domain,
				  sizeof(domain));
	if (a[1].ulValueLen > 0 && a[1].ulValueLen <= sizeof(id))
		crypto_generichash_update(&h, id, a[1].ulValueLen);
	else
		crypto_generichash_update(&h, (const unsigned char *)label,
					  strlen(label));
	crypto_generichash_final(&h, kek_id, KEYRING_KEK_ID_BYTES);
	return 0;
}

/* Every version of the KEK in the token (labels L, L.2, ...
 * L.PKCS11_KEK_VERSIONS_MAX), each checked; with create, version 1 is
 * made when there is none.  Their ids are published for other threads. */
static int find_keys(struct pkcs11 *p, char *err, size_t err_size)
{
	struct kek_version v[PKCS11_KEK_VERSIONS_MAX];
	char label[PKCS11_LABEL_BYTES_MAX + 8];
	unsigned nv = 0;
	int ret;

	for (unsigned n = 1; n <= PKCS11_KEK_VERSIONS_MAX; n++) {
		CK_OBJECT_HANDLE h;
		CK_ULONG count;
		label_of(p, n, label, sizeof(label));
		ret = find_one(p, label, &h, &count, err, err_size);
		if (ret)
			return ret;
		if (count == 0)
			continue;
		ret = check_key(p, h, label, v[nv].id, err, err_size);
		if (ret)
			return ret;
		v[nv].h = h;
		v[nv++].n = n;
	}
	if (nv == 0 && p->create) {
		ret = generate_key(p, 1, err, err_size);
		return ret ? ret : find_keys(p, err, err_size);
	}
	if (nv == 0) {
		say(err, err_size,
		    "kek_pkcs11_key_label: no secret key labelled '%s' in "
		    "token '%s' (`tpwallet keys init-hsm` makes it)",
		    p->key_label, p->token);
		return KEYRING_E_KEK_MISSING;
	}
	memcpy(p->v, v, sizeof(v));
	p->nv = nv;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < nv; i++)
		memcpy(p->ids[i], v[i].id, KEYRING_KEK_ID_BYTES);
	p->nids = nv;
	p->current = v[nv - 1].n;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* Does the token's C_GetMechanismList name m? */
static bool has_mechanism(struct pkcs11 *p, CK_MECHANISM_TYPE m)
{
	CK_MECHANISM_TYPE list[512];
	CK_ULONG n = sizeof(list) / sizeof(list[0]);

	if (p->f->C_GetMechanismList(p->slot, list, &n) != CKR_OK)
		return false;
	for (CK_ULONG i = 0; i < n; i++)
		if (list[i] == m)
			return true;
	return false;
}

/* Slot, session, login, key: what every job needs first. */
static int session_open(struct pkcs11 *p, char *err, size_t err_size)
{
	CK_RV rv;
	int ret;

	if (p->session_ok)
		return 0;
	if (p->session) {
		p->f->C_CloseSession(p->session);
		p->session = 0;
	}
	ret = find_slot(p, err, err_size);
	if (ret)
		return ret;
	rv = p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				 NULL, NULL, &p->session);
	if (rv != CKR_OK) {
		say(err, err_size, "token '%s': C_OpenSession: %s%s", p->token,
		    ckr_name(rv),
		    rv == CKR_SESSION_COUNT ? " (the token is out of sessions)"
					    : "");
		p->session = 0;
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	ret = login(p, err, err_size);
	if (ret == 0)
		ret = find_keys(p, err, err_size);
	if (ret)
		return ret;
	p->gcm = has_mechanism(p, CKM_AES_GCM);
	p->eddsa = has_mechanism(p, CKM_EDDSA);
	p->edgen = has_mechanism(p, CKM_EC_EDWARDS_KEY_PAIR_GEN);
	p->nhandles = 0;
	if (!p->gcm) {
		say(err, err_size,
		    "token '%s' does not offer CKM_AES_GCM, which seals the "
		    "keys",
		    p->token);
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	p->session_ok = true;
	return 0;
}

static int gcm_job(struct pkcs11 *p, bool wrap, char *err, size_t err_size)
{
	unsigned char buf[DATA_BYTES_MAX + KEYRING_TOKEN_TAG_BYTES];
	CK_GCM_PARAMS gp = {
		.pIv = p->job.iv,
		.ulIvLen = KEYRING_TOKEN_IV_BYTES,
		.ulIvBits = KEYRING_TOKEN_IV_BYTES * 8,
		.pAAD = p->job.aad,
		.ulAADLen = p->job.aad_len,
		.ulTagBits = KEYRING_TOKEN_TAG_BYTES * 8,
	};
	CK_MECHANISM mech = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_ULONG n = sizeof(buf);
	size_t len = p->job.len;
	const struct kek_version *v = NULL;
	CK_RV rv;

	for (unsigned i = 0; i < p->nv; i++)
		if (wrap ? p->v[i].n == p->job.version
			 : memcmp(p->v[i].id, p->job.kek_id,
				  KEYRING_KEK_ID_BYTES) == 0)
			v = &p->v[i];
	if (!v && wrap) {
		say(err, err_size,
		    "token '%s': version %u of the KEK is no longer there",
		    p->token, p->job.version);
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	if (!v) {
		say(err, err_size,
		    "no version of the KEK in token '%s' has the id the key "
		    "file names",
		    p->token);
		return KEYRING_E_WRONG_KEK;
	}
	if (wrap) {
		rv = p->f->C_EncryptInit(p->session, &mech, v->h);
		if (rv == CKR_OK)
			rv = p->f->C_Encrypt(p->session, p->job.in, len, buf,
					     &n);
		if (rv == CKR_OK && n != len + KEYRING_TOKEN_TAG_BYTES)
			rv = CKR_GENERAL_ERROR;
		if (rv == CKR_OK) {
			memcpy(p->job.out, buf, len);
			memcpy(p->job.tag, buf + len, KEYRING_TOKEN_TAG_BYTES);
		}
	} else {
		unsigned char in[DATA_BYTES_MAX + KEYRING_TOKEN_TAG_BYTES];
		memcpy(in, p->job.in, len);
		memcpy(in + len, p->job.tag, KEYRING_TOKEN_TAG_BYTES);
		rv = p->f->C_DecryptInit(p->session, &mech, v->h);
		if (rv == CKR_OK)
			rv = p->f->C_Decrypt(p->session, in,
					     len + KEYRING_TOKEN_TAG_BYTES, buf,
					     &n);
		if (rv == CKR_OK && n != len)
			rv = CKR_GENERAL_ERROR;
		if (rv == CKR_OK)
			memcpy(p->job.out, buf, len);
	}
	sodium_memzero(buf, sizeof(buf));
	if (rv == CKR_OK)
		return 0;
	if (session_lost(rv))
		p->session_ok = false;
	/* SoftHSM answers a GCM tag that does not verify with
	 * CKR_GENERAL_ERROR, the standard with CKR_ENCRYPTED_DATA_INVALID. */
	if (!wrap &&
	    (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_GENERAL_ERROR)) {
		say(err, err_size, "the token does not authenticate it (%s)",
		    ckr_name(rv));
		return KEYRING_E_CIPHERTEXT_MODIFIED;
	}
	say(err, err_size, "token '%s': %s: %s", p->token,
	    wrap ? "C_Encrypt" : "C_Decrypt", ckr_name(rv));
	return KEYRING_E_KEK_UNAVAILABLE;
}

/* ---- signing keys in the token (the worker's) ------------------------ */

/* The object of class cls whose CKA_ID is id: 0 with *h, or
 * KEYRING_E_TOKEN_KEY_MISSING. */
static int find_by_id(struct pkcs11 *p, CK_OBJECT_CLASS cls,
		      const unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES],
		      CK_OBJECT_HANDLE *h, char *err, size_t err_size)
{
	CK_KEY_TYPE kt = CKK_EC_EDWARDS;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_ID, (void *)id, KEYRING_TOKEN_KEY_ID_BYTES},
	};
	CK_ULONG n = 0;
	int r = find_objects(p, t, 3, h, 1, &n, err, err_size);

	if (r)
		return r;
	return n == 1 ? 0 : KEYRING_E_TOKEN_KEY_MISSING;
}

/* The public key of the pair id (its CKA_EC_POINT), after checking the
 * private half is there too. */
static int key_public_job(struct pkcs11 *p, const unsigned char *id,
			  unsigned char pub[JOSE_ED25519_PUBLIC_BYTES],
			  char *err, size_t err_size)
{
	CK_OBJECT_HANDLE priv, pubh;
	unsigned char point[64];
	CK_ATTRIBUTE a = {CKA_EC_POINT, point, sizeof(point)};
	int ret = find_by_id(p, CKO_PRIVATE_KEY, id, &priv, err, err_size);

	if (ret == 0)
		ret = find_by_id(p, CKO_PUBLIC_KEY, id, &pubh, err, err_size);
	if (ret)
		return ret;
	CK_RV rv = p->f->C_GetAttributeValue(p->session, pubh, &a, 1);
	if (rv != CKR_OK) {
		if (session_lost(rv))
			p->session_ok = false;
		say(err, err_size, "token '%s': CKA_EC_POINT: %s", p->token,
		    ckr_name(rv));
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	if (a.ulValueLen == 2 + JOSE_ED25519_PUBLIC_BYTES && point[0] == 0x04 &&
	    point[1] == JOSE_ED25519_PUBLIC_BYTES)
		memcpy(pub, point + 2, JOSE_ED25519_PUBLIC_BYTES);
	else if (a.ulValueLen == JOSE_ED25519_PUBLIC_BYTES)
		memcpy(pub, point, JOSE_ED25519_PUBLIC_BYTES);
	else {
		say(err, err_size,
		    "token '%s': CKA_EC_POINT of %lu bytes is not an Ed25519 "
		    "key",
		    p->token, (unsigned long)a.ulValueLen);
		return KEYRING_E_KEY_MISMATCH;
	}
	return 0;
}

static int key_generate_job(struct pkcs11 *p, char *err, size_t err_size)
{
	CK_MECHANISM mech = {CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0};
	CK_KEY_TYPE kt = CKK_EC_EDWARDS;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	unsigned char *id = p->job.key_id;
	/* "tpwallet-" and the CKA_ID's hex until the kid replaces it */
	char label[JOSE_B64_32_BYTES] = "tpwallet-";

	randombytes_buf(id, KEYRING_TOKEN_KEY_ID_BYTES);
	sodium_bin2hex(label + 9, sizeof(label) - 9, id,
		       KEYRING_TOKEN_KEY_ID_BYTES);
	CK_ATTRIBUTE pub_t[] = {
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &yes, sizeof(yes)},
		{CKA_PRIVATE, &no, sizeof(no)},
		{CKA_VERIFY, &yes, sizeof(yes)},
		{CKA_EC_PARAMS, (void *)ed25519_oid, sizeof(ed25519_oid)},
		{CKA_ID, id, KEYRING_TOKEN_KEY_ID_BYTES},
		{CKA_LABEL, label, strlen(label)},
	};
	CK_ATTRIBUTE priv_t[] = {
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &yes, sizeof(yes)},
		{CKA_PRIVATE, &yes, sizeof(yes)},
		{CKA_SENSITIVE, &yes, sizeof(yes)},
		{CKA_EXTRACTABLE, &no, sizeof(no)},
		{CKA_SIGN, &yes, sizeof(yes)},
		{CKA_ID, id, KEYRING_TOKEN_KEY_ID_BYTES},
		{CKA_LABEL, label, strlen(label)},
	};
	CK_OBJECT_HANDLE pubh, privh;
	struct jose_pubkey pk;

	CK_RV rv = p->f->C_GenerateKeyPair(
		p->session, &mech, pub_t, sizeof(pub_t) / sizeof(pub_t[0]),
		priv_t, sizeof(priv_t) / sizeof(priv_t[0]), &pubh, &privh);
	if (rv != CKR_OK) {
		if (session_lost(rv))
			p->session_ok = false;
		say(err, err_size,
		    "token '%s': cannot generate an Ed25519 key pair "
		    "(C_GenerateKeyPair): %s",
		    p->token, ckr_name(rv));
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	int ret = key_public_job(p, id, p->job.pub, err, err_size);
	/* Its label is its kid, which is known now. */
	memset(&pk, 0, sizeof(pk));
	memcpy(pk.x, p->job.pub, sizeof(pk.x));
	if (ret == 0 && jose_thumbprint(&pk, label) != 0)
		ret = KEYRING_E_INTERNAL;
	if (ret == 0) {
		/* A token that does not let CKA_LABEL change keeps the first
		 * label: the CKA_ID, which the key file records, ties the
		 * pair to its kid all the same. */
		CK_ATTRIBUTE l = {CKA_LABEL, label, KEYRING_KID_BYTES};
		if (p->f->C_SetAttributeValue(p->session, privh, &l, 1) ==
		    CKR_OK)
			(void)p->f->C_SetAttributeValue(p->session, pubh, &l,
							1);
	}
	if (ret) {
		p->f->C_DestroyObject(p->session, privh);
		p->f->C_DestroyObject(p->session, pubh);
	}
	return ret;
}

/* The private key handle of id: the cache, else a search. */
static int sign_handle(struct pkcs11 *p, const unsigned char *id,
		       CK_OBJECT_HANDLE *h, char *err, size_t err_size)
{
	for (unsigned i = 0; i < p->nhandles; i++) {
		if (memcmp(p->handles[i].id, id, KEYRING_TOKEN_KEY_ID_BYTES) ==
		    0) {
			*h = p->handles[i].h;
			return 0;
		}
	}
	int ret = find_by_id(p, CKO_PRIVATE_KEY, id, h, err, err_size);
	if (ret == KEYRING_E_TOKEN_KEY_MISSING)
		say(err, err_size, "token '%s' no longer holds the key",
		    p->token);
	if (ret)
		return ret;
	if (p->nhandles == SIGN_HANDLES_MAX)
		p->nhandles = 0;
	memcpy(p->handles[p->nhandles].id, id, KEYRING_TOKEN_KEY_ID_BYTES);
	p->handles[p->nhandles++].h = *h;
	return 0;
}

static int key_sign_job(struct pkcs11 *p, char *err, size_t err_size)
{
	CK_MECHANISM mech = {CKM_EDDSA, NULL, 0};
	CK_OBJECT_HANDLE h;
	CK_ULONG n = JOSE_ED25519_SIGNATURE_BYTES;
	int ret = sign_handle(p, p->job.key_id, &h, err, err_size);

	if (ret)
		return ret;
	CK_RV rv = p->f->C_SignInit(p->session, &mech, h);
	if (rv == CKR_OK)
		rv = p->f->C_Sign(p->session, p->job.msg, p->job.msg_len,
				  p->job.sig, &n);
	if (rv == CKR_OK && n != JOSE_ED25519_SIGNATURE_BYTES)
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK)
		return 0;
	if (session_lost(rv))
		p->session_ok = false;
	p->nhandles = 0;
	say(err, err_size, "token '%s': C_Sign (CKM_EDDSA): %s", p->token,
	    ckr_name(rv));
	return KEYRING_E_KEK_UNAVAILABLE;
}

static int key_destroy_job(struct pkcs11 *p, char *err, size_t err_size)
{
	static const CK_OBJECT_CLASS cls[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
	int ret = 0;

	p->nhandles = 0;
	for (size_t i = 0; i < 2 && ret == 0; i++) {
		CK_OBJECT_HANDLE h;
		int r = find_by_id(p, cls[i], p->job.key_id, &h, err, err_size);
		if (r == KEYRING_E_TOKEN_KEY_MISSING)
			continue;
		ret = r;
		if (r == 0 && p->f->C_DestroyObject(p->session, h) != CKR_OK) {
			say(err, err_size, "token '%s': C_DestroyObject failed",
			    p->token);
			ret = KEYRING_E_KEK_UNAVAILABLE;
		}
	}
	return ret;
}

static int run_job(struct pkcs11 *p)
{
	char *err = p->job.err;
	size_t err_size = sizeof(p->job.err);

	if (p->job.kind == JOB_OPEN && !p->initialized) {
		CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
		CK_RV rv = p->f->C_Initialize(&args);
		if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			say(err, err_size,
			    "kek_pkcs11_module %s: C_Initialize: %s", p->module,
			    ckr_name(rv));
			return KEYRING_E_KEK_UNAVAILABLE;
		}
		p->initialized = rv == CKR_OK;
	}
	int ret = session_open(p, err, err_size);
	if (ret)
		return ret;
	switch (p->job.kind) {
	case JOB_OPEN: return 0;
	case JOB_WRAP: return gcm_job(p, true, err, err_size);
	case JOB_UNWRAP: return gcm_job(p, false, err, err_size);
	case JOB_KEY_GENERATE: return key_generate_job(p, err, err_size);
	case JOB_KEY_PUBLIC:
		return key_public_job(p, p->job.key_id, p->job.pub, err,
				      err_size);
	case JOB_KEY_SIGN: return key_sign_job(p, err, err_size);
	case JOB_KEY_DESTROY: return key_destroy_job(p, err, err_size);
	case JOB_NEW_VERSION: {
		unsigned n = p->v[p->nv - 1].n + 1;
		if (n > PKCS11_KEK_VERSIONS_MAX) {
			say(err, err_size,
			    "token '%s' holds version %u of the KEK, the "
			    "last: delete the oldest versions first",
			    p->token, n - 1);
			return KEYRING_E_TOO_MANY_KEYS;
		}
		ret = generate_key(p, n, err, err_size);
		return ret ? ret : find_keys(p, err, err_size);
	}
	case JOB_PING: {
		CK_SESSION_INFO si;
		CK_RV rv = p->f->C_GetSessionInfo(p->session, &si);
		if (rv == CKR_OK)
			return find_keys(p, err, err_size);
		if (session_lost(rv))
			p->session_ok = false;
		say(err, err_size, "token '%s': C_GetSessionInfo: %s", p->token,
		    ckr_name(rv));
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	}
	return KEYRING_E_INTERNAL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The metric a job counts under, or -1. */
static int op_of(enum job_kind kind)
{
	switch (kind) {
	case JOB_WRAP: return PKCS11_OP_WRAP;
	case JOB_UNWRAP: return PKCS11_OP_UNWRAP;
	case JOB_KEY_SIGN: return PKCS11_OP_SIGN;
	default: return -1;
	}
}

static void record(struct pkcs11 *p, enum job_kind kind, int ret, double s)
{
	p->st.up = ret == 0 || ret == KEYRING_E_CIPHERTEXT_MODIFIED ||
		   ret == KEYRING_E_WRONG_KEK ||
		   ret == KEYRING_E_TOKEN_KEY_MISSING; /* it answered */
	int op = op_of(kind);
	if (op < 0)
		return;
	p->st.count[op]++;
	p->st.sum_s[op] += s;
	if (ret)
		p->st.errors[op]++;
	for (int i = 0; i < PKCS11_BUCKETS; i++)
		if (s <= pkcs11_bucket_bounds[i])
			p->st.bucket[op][i]++;
}

static void *worker_main(void *arg)
{
	struct pkcs11 *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->state != JOB_PENDING && !p->stop)
			pthread_cond_wait(&p->to_worker, &p->lock);
		if (p->stop)
			break;
		p->state = JOB_RUNNING;
		pthread_mutex_unlock(&p->lock);
		double t0 = now_s();
		int ret = run_job(p);
		double dt = now_s() - t0;
		pthread_mutex_lock(&p->lock);
		p->job.ret = ret;
		record(p, p->job.kind, ret, dt);
		p->st.gcm_supported = p->gcm;
		p->st.eddsa_supported = p->eddsa;
		p->st.edwards_keygen_supported = p->edgen;
		if (p->abandoned) {
			sodium_memzero(p->job.out, DATA_BYTES_MAX);
			sodium_memzero(p->job.in, sizeof(p->job.in));
			p->abandoned = false;
			p->state = JOB_IDLE;
		} else {
			p->state = JOB_DONE;
		}
		pthread_cond_broadcast(&p->to_caller);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* A call that never reached the token, or gave up waiting (lock held). */
static void count_error(struct pkcs11 *p, enum job_kind kind)
{
	p->st.up = false;
	if (op_of(kind) >= 0)
		p->st.errors[op_of(kind)]++;
}

static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* One call to hand the worker: what it needs, where its results go. */
struct job_args {
	enum job_kind kind;
	unsigned version;	     /* wrap */
	const unsigned char *kek_id; /* unwrap */
	const unsigned char *aad;
	size_t aad_len;
	const unsigned char *iv, *in, *tag;
	size_t len;
	unsigned char *out, *tag_out;
	/* signing keys in the token */
	const unsigned char *key_id; /* in (NULL: none) */
	const unsigned char *msg;    /* sign: msg[0..msg_len) */
	size_t msg_len;
	unsigned char *key_id_out, *pub_out, *sig_out;
};

/* Runs one job on the worker, waiting at most timeout_ms in all; on 0
 * copies its results into a->out (len bytes) and a->tag_out. */
static int submit(struct pkcs11 *p, const struct job_args *a, char *err,
		  size_t err_size)
{
	struct timespec dl;
	int ret = 0;

	if (a->aad_len > AAD_BYTES_MAX || a->len > DATA_BYTES_MAX)
		return KEYRING_E_INVALID_ARGUMENT;
	deadline_in(&dl, p->timeout_ms);
	pthread_mutex_lock(&p->lock);
	while (p->state != JOB_IDLE && !p->abandoned && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&p->to_caller, &p->lock, &dl);
	if (p->state != JOB_IDLE) {
		count_error(p, a->kind);
		pthread_mutex_unlock(&p->lock);
		say(err, err_size,
		    "token '%s' is still busy with a call that did not "
		    "answer within %u ms",
		    p->token, p->timeout_ms);
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	p->job.kind = a->kind;
	p->job.version = a->version;
	if (a->kek_id)
		memcpy(p->job.kek_id, a->kek_id, KEYRING_KEK_ID_BYTES);
	if (a->aad)
		memcpy(p->job.aad, a->aad, a->aad_len);
	p->job.aad_len = a->aad_len;
	if (a->iv)
		memcpy(p->job.iv, a->iv, KEYRING_TOKEN_IV_BYTES);
	if (a->in)
		memcpy(p->job.in, a->in, a->len);
	p->job.len = a->len;
	if (a->tag)
		memcpy(p->job.tag, a->tag, KEYRING_TOKEN_TAG_BYTES);
	if (a->key_id)
		memcpy(p->job.key_id, a->key_id, KEYRING_TOKEN_KEY_ID_BYTES);
	free(p->job.msg); /* the last job's: the worker is done with it */
	p->job.msg = NULL;
	p->job.msg_len = 0;
	if (a->msg) {
		p->job.msg = malloc(a->msg_len ? a->msg_len : 1);
		if (!p->job.msg) {
			pthread_mutex_unlock(&p->lock);
			return KEYRING_E_NO_MEMORY;
		}
		memcpy(p->job.msg, a->msg, a->msg_len);
		p->job.msg_len = a->msg_len;
	}
	p->job.err[0] = '\0';
	p->state = JOB_PENDING;
	pthread_cond_signal(&p->to_worker);
	ret = 0;
	while (p->state != JOB_DONE && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&p->to_caller, &p->lock, &dl);
	if (p->state != JOB_DONE) {
		p->abandoned = true;
		count_error(p, a->kind);
		pthread_mutex_unlock(&p->lock);
		say(err, err_size, "token '%s' did not answer within %u ms",
		    p->token[0] ? p->token : "(slot)", p->timeout_ms);
		return KEYRING_E_KEK_UNAVAILABLE;
	}
	ret = p->job.ret;
	if (ret)
		say(err, err_size, "%s", p->job.err);
	else if (a->out)
		memcpy(a->out, p->job.out, a->len);
	if (ret == 0 && a->tag_out)
		memcpy(a->tag_out, p->job.tag, KEYRING_TOKEN_TAG_BYTES);
	if (ret == 0 && a->key_id_out)
		memcpy(a->key_id_out, p->job.key_id,
		       KEYRING_TOKEN_KEY_ID_BYTES);
	if (ret == 0 && a->pub_out)
		memcpy(a->pub_out, p->job.pub, JOSE_ED25519_PUBLIC_BYTES);
	if (ret == 0 && a->sig_out)
		memcpy(a->sig_out, p->job.sig, JOSE_ED25519_SIGNATURE_BYTES);
	sodium_memzero(p->job.out, DATA_BYTES_MAX);
	sodium_memzero(p->job.in, sizeof(p->job.in));
	p->state = JOB_IDLE;
	pthread_cond_broadcast(&p->to_caller);
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* ---- the provider --------------------------------------------------- */

/* A keyring_kek_provider's ctx: the token, and the version of the KEK
 * that seals (any version known opens). */
struct kek_ctx {
	struct pkcs11 *p;
	unsigned version;
};

static int provider_wrap(void *ctx, const unsigned char *aad, size_t aad_len,
			 const unsigned char iv[KEYRING_TOKEN_IV_BYTES],
			 const unsigned char *pt, size_t len, unsigned char *ct,
			 unsigned char tag[KEYRING_TOKEN_TAG_BYTES], char *err,
			 size_t err_size)
{
	const struct kek_ctx *k = ctx;
	struct job_args a = {.kind = JOB_WRAP,
			     .version = k->version,
			     .aad = aad,
			     .aad_len = aad_len,
			     .iv = iv,
			     .in = pt,
			     .len = len,
			     .out = ct,
			     .tag_out = tag};
	return submit(k->p, &a, err, err_size);
}

static int provider_unwrap(void *ctx,
			   const unsigned char kek_id[KEYRING_KEK_ID_BYTES],
			   const unsigned char *aad, size_t aad_len,
			   const unsigned char iv[KEYRING_TOKEN_IV_BYTES],
			   const unsigned char *ct, size_t len,
			   const unsigned char tag[KEYRING_TOKEN_TAG_BYTES],
			   unsigned char *pt, char *err, size_t err_size)
{
	const struct kek_ctx *k = ctx;
	struct job_args a = {.kind = JOB_UNWRAP,
			     .kek_id = kek_id,
			     .aad = aad,
			     .aad_len = aad_len,
			     .iv = iv,
			     .in = ct,
			     .tag = tag,
			     .len = len,
			     .out = pt};
	return submit(k->p, &a, err, err_size);
}

static bool provider_knows(void *ctx,
			   const unsigned char kek_id[KEYRING_KEK_ID_BYTES])
{
	const struct kek_ctx *k = ctx;
	bool found = false;

	pthread_mutex_lock(&k->p->lock);
	for (unsigned i = 0; i < k->p->nids && !found; i++)
		found = memcmp(k->p->ids[i], kek_id, KEYRING_KEK_ID_BYTES) == 0;
	pthread_mutex_unlock(&k->p->lock);
	return found;
}

static int provider_key_generate(void *ctx,
				 unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES],
				 unsigned char pub[JOSE_ED25519_PUBLIC_BYTES],
				 char *err, size_t err_size)
{
	const struct kek_ctx *k = ctx;
	struct job_args a = {
		.kind = JOB_KEY_GENERATE, .key_id_out = id, .pub_out = pub};
	return submit(k->p, &a, err, err_size);
}

static int
provider_key_public(void *ctx,
		    const unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES],
		    unsigned char pub[JOSE_ED25519_PUBLIC_BYTES], char *err,
		    size_t err_size)
{
	const struct kek_ctx *k = ctx;
	struct job_args a = {
		.kind = JOB_KEY_PUBLIC, .key_id = id, .pub_out = pub};
	return submit(k->p, &a, err, err_size);
}

static int provider_key_sign(void *ctx,
			     const unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES],
			     const unsigned char *msg, size_t len,
			     unsigned char sig[JOSE_ED25519_SIGNATURE_BYTES],
			     char *err, size_t err_size)
{
	const struct kek_ctx *k = ctx;
	struct job_args a = {.kind = JOB_KEY_SIGN,
			     .key_id = id,
			     .msg = msg,
			     .msg_len = len,
			     .sig_out = sig};
	return submit(k->p, &a, err, err_size);
}

static int
provider_key_destroy(void *ctx,
		     const unsigned char id[KEYRING_TOKEN_KEY_ID_BYTES],
		     char *err, size_t err_size)
{
	const struct kek_ctx *k = ctx;
	struct job_args a = {.kind = JOB_KEY_DESTROY, .key_id = id};
	return submit(k->p, &a, err, err_size);
}

int pkcs11_kek(struct pkcs11 *p, struct keyring_kek **out)
{
	unsigned char id[KEYRING_KEK_ID_BYTES];
	struct kek_ctx *k = malloc(sizeof(*k));
	int ret;

	if (!k)
		return KEYRING_E_NO_MEMORY;
	k->p = p;
	pthread_mutex_lock(&p->lock);
	k->version = p->current;
	memcpy(id, p->ids[p->nids - 1], sizeof(id));
	pthread_mutex_unlock(&p->lock);
	struct keyring_kek_provider prov = {
		.ctx = k,
		.wrap = provider_wrap,
		.unwrap = provider_unwrap,
		.knows = provider_knows,
		.release = free,
		.key_generate = provider_key_generate,
		.key_public = provider_key_public,
		.key_sign = provider_key_sign,
		.key_destroy = provider_key_destroy,
		.generate_in_token = p->sign_in_token,
	};
	ret = keyring_kek_from_provider(&prov, id, out);
	if (ret)
		free(k);
	return ret;
}

unsigned pkcs11_current_version(struct pkcs11 *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned v = p->current;
	pthread_mutex_unlock(&p->lock);
	return v;
}

int pkcs11_new_version(struct pkcs11 *p, unsigned *version, char *err,
		       size_t err_size)
{
	struct job_args a = {.kind = JOB_NEW_VERSION};
	int ret = submit(p, &a, err, err_size);
	if (ret == 0)
		*version = pkcs11_current_version(p);
	return ret;
}

int pkcs11_ping(struct pkcs11 *p, char *err, size_t err_size)
{
	struct job_args a = {.kind = JOB_PING};
	return submit(p, &a, err, err_size);
}

void pkcs11_stats(struct pkcs11 *p, struct pkcs11_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = p->st;
	pthread_mutex_unlock(&p->lock);
}

/* ---- open and close ------------------------------------------------- */

static int copy_setting(char *dst, size_t cap, const char *v, const char *name,
			char *err, size_t err_size)
{
	if (!v)
		v = "";
	if (strlen(v) >= cap) {
		say(err, err_size, "%s is longer than %zu bytes", name,
		    cap - 1);
		return KEYRING_E_INVALID_ARGUMENT;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int pkcs11_open(const struct pkcs11_config *c, bool create, struct pkcs11 **out,
		char *err, size_t err_size)
{
	struct pkcs11 *p = calloc(1, sizeof(*p));
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
	int ret;

	if (!p)
		return KEYRING_E_NO_MEMORY;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->to_worker, &ca);
	pthread_cond_init(&p->to_caller, &ca);
	pthread_condattr_destroy(&ca);
	p->job.out = sodium_malloc(DATA_BYTES_MAX);
	if (!p->job.out) {
		ret = KEYRING_E_NO_MEMORY;
		goto fail;
	}
	ret = copy_setting(p->module, sizeof(p->module), c->module,
			   "kek_pkcs11_module", err, err_size);
	if (!ret)
		ret = copy_setting(p->token, sizeof(p->token), c->token,
				   "kek_pkcs11_token", err, err_size);
	if (!ret)
		ret = copy_setting(p->pin_file, sizeof(p->pin_file),
				   c->pin_file, "kek_pkcs11_pin_file", err,
				   err_size);
	if (!ret)
		ret = copy_setting(p->key_label, sizeof(p->key_label),
				   c->key_label, "kek_pkcs11_key_label", err,
				   err_size);
	if (ret)
		goto fail;
	p->slot_id = c->slot;
	p->create = create;
	p->sign_in_token = c->sign_in_token;
	p->st.sign_in_token = c->sign_in_token;
	p->timeout_ms =
		c->timeout_ms ? c->timeout_ms : PKCS11_TIMEOUT_MS_DEFAULT;
	if (!p->token[0] && p->slot_id < 0) {
		say(err, err_size,
		    "kek_pkcs11_module is set: set kek_pkcs11_token (its "
		    "label) or kek_pkcs11_slot too");
		ret = KEYRING_E_INVALID_ARGUMENT;
		goto fail;
	}
	if (!p->key_label[0]) {
		say(err, err_size,
		    "kek_pkcs11_module is set: set kek_pkcs11_key_label too");
		ret = KEYRING_E_INVALID_ARGUMENT;
		goto fail;
	}
	snprintf(p->st.module, sizeof(p->st.module), "%s", p->module);
	snprintf(p->st.token, sizeof(p->st.token), "%s", p->token);
	snprintf(p->st.key_label, sizeof(p->st.key_label), "%s", p->key_label);
	p->dl = dlopen(p->module, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		say(err, err_size, "kek_pkcs11_module %s cannot be loaded: %s",
		    p->module, dlerror());
		ret = KEYRING_E_KEK_UNAVAILABLE;
		goto fail;
	}
	*(void **)&get_list = dlsym(p->dl, "C_GetFunctionList");
	if (!get_list || get_list(&p->f) != CKR_OK || !p->f) {
		say(err, err_size,
		    "kek_pkcs11_module %s is not a PKCS#11 module (no "
		    "C_GetFunctionList)",
		    p->module);
		ret = KEYRING_E_KEK_UNAVAILABLE;
		goto fail;
	}
	if (pthread_create(&p->worker, NULL, worker_main, p) != 0) {
		ret = KEYRING_E_NO_MEMORY;
		goto fail;
	}
	p->worker_started = true;
	struct job_args open_job = {.kind = JOB_OPEN};
	ret = submit(p, &open_job, err, err_size);
	if (ret)
		goto fail;
	if (p->sign_in_token &&
	    !(p->st.eddsa_supported && p->st.edwards_keygen_supported)) {
		say(err, err_size,
		    "signing_pkcs11 = 1, but token '%s' does not offer %s "
		    "(C_GetMechanismList): without signing_pkcs11 the "
		    "signing keys stay sealed by its KEK",
		    p->token,
		    !p->st.eddsa_supported ? "CKM_EDDSA"
					   : "CKM_EC_EDWARDS_KEY_PAIR_GEN");
		ret = KEYRING_E_KEK_UNAVAILABLE;
		goto fail;
	}
	*out = p;
	return 0;
fail:
	pkcs11_close(p);
	return ret;
}

void pkcs11_close(struct pkcs11 *p)
{
	if (!p)
		return;
	if (p->worker_started) {
		struct timespec dl;
		int r = 0;
		deadline_in(&dl, p->timeout_ms);
		pthread_mutex_lock(&p->lock);
		while (p->state != JOB_IDLE && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&p->to_caller, &p->lock,
						   &dl);
		bool stuck = p->state != JOB_IDLE;
		p->stop = true;
		pthread_cond_signal(&p->to_worker);
		pthread_mutex_unlock(&p->lock);
		if (stuck) {
			/* The worker is inside the module: leave it, and the
			 * module, to the process's exit. */
			pthread_detach(p->worker);
			return;
		}
		pthread_join(p->worker, NULL);
	}
	if (p->f && p->session)
		p->f->C_CloseSession(p->session);
	if (p->f && p->initialized)
		p->f->C_Finalize(NULL);
	if (p->dl)
		dlclose(p->dl);
	sodium_free(p->job.out);
	free(p->job.msg);
	pthread_cond_destroy(&p->to_worker);
	pthread_cond_destroy(&p->to_caller);
	pthread_mutex_destroy(&p->lock);
	sodium_memzero(p, sizeof(*p));
	free(p);
}
