/*
 * bench_hsm.c - checkpoint and manifest signatures per second with the
 * signing keys in a PKCS#11 token (signing_pkcs11: generated there, each
 * signature a C_SignInit + C_Sign with CKM_EDDSA), sealed by a KEK in
 * the token (each signature opens the key in the token: one
 * C_DecryptInit + C_Decrypt round trip, then signs in memory) and sealed
 * by a file KEK (the key opened and used in memory), in one run,
 * alternating, medians of ROUNDS, and their ratios (issue 19,
 * "Measured").
 *
 * A checkpoint signature is what the audit thread does for each
 * checkpoint (keyring_note_signer, note_sign of a checkpoint body,
 * note_signer_clear); a manifest signature is keyring_sign_jwt of a
 * manifest-sized claims object, as GET /v1/client-policy does.
 *
 * The token comes from the environment, as the server's settings do:
 * TPWALLET_KEK_PKCS11_MODULE, TPWALLET_KEK_PKCS11_TOKEN,
 * TPWALLET_KEK_PKCS11_KEY_LABEL and TPWALLET_KEK_PKCS11_PIN (the key is
 * made when absent).  bench/hsm.sh sets up a SoftHSM2 token in a
 * temporary directory and runs this.  A figure, never a test.
 *
 *   build/bench/bench_hsm [seconds per figure, default 2]
 */
#include "crypto/jose.h"
#include "crypto/keyring.h"
#include "crypto/note.h"
#include "log/keyfile.h"
#include "log/pkcs11.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define ROUNDS 5

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char body[] = "tpwallet/0123456789abcdef\n1234567\n"
			   "ZmFrZSByb290IGhhc2ggb2YgMzIgYnl0ZXMgZm9yIGE=\n";

static int sign_checkpoint(const struct keyring *kr, int64_t now)
{
	struct note_signer s;
	const struct note_signer *list[1] = {&s};
	char note[1024];
	size_t len;
	int ret = keyring_note_signer(kr, now, "tpwallet/0123456789abcdef", 25,
				      &s);
	if (ret)
		return ret;
	ret = note_sign(body, sizeof(body) - 1, list, 1, note, sizeof(note),
			&len);
	note_signer_clear(&s);
	return ret;
}

static int sign_manifest(const struct keyring *kr, int64_t now,
			 const json_t *claims)
{
	static char out[KEYRING_JWS_BYTES_MAX + 1];
	size_t len;
	return keyring_sign_jwt(kr, now, "tpwallet-client-policy+jwt", claims,
				out, sizeof(out), &len);
}

/* Signatures per second over `seconds`; -1 on an error. */
static double rate(const struct keyring *kr, int64_t now, const json_t *claims,
		   bool manifest, double seconds)
{
	double t0 = now_s(), t;
	long n = 0;
	do {
		for (int i = 0; i < 16; i++, n++)
			if ((manifest ? sign_manifest(kr, now, claims)
				      : sign_checkpoint(kr, now)) != 0)
				return -1;
		t = now_s();
	} while (t - t0 < seconds);
	return (double)n / (t - t0);
}

static int noop_put(void *ctx, const char *kid,
		    const unsigned char image[KEYRING_KEYFILE_BYTES], char *err,
		    size_t err_size)
{
	(void)ctx, (void)kid, (void)image, (void)err, (void)err_size;
	return 0;
}

static int noop_remove(void *ctx, const char *kid, char *err, size_t n)
{
	(void)ctx, (void)kid, (void)err, (void)n;
	return 0;
}

static int noop_sync(void *ctx, char *err, size_t n)
{
	(void)ctx, (void)err, (void)n;
	return 0;
}

/* A keyring in memory (no files) with one signing key under kek. */
static struct keyring *ring(const struct keyring_kek *kek, int64_t now)
{
	struct keyring_store st = {
		.put = noop_put, .remove = noop_remove, .sync = noop_sync};
	struct keyring *kr = NULL;
	char err[KEYRING_ERR_BYTES] = "";
	if (keyring_new(kek, &st, &kr) != 0 ||
	    keyring_rotate(kr, now, 3600, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_hsm: cannot make a key: %s\n", err);
		exit(1);
	}
	return kr;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2.0;
	int64_t now = (int64_t)time(NULL);
	char err[KEYRING_ERR_BYTES] = "";
	struct pkcs11_config c = {
		.module = getenv("TPWALLET_KEK_PKCS11_MODULE"),
		.token = getenv("TPWALLET_KEK_PKCS11_TOKEN"),
		.slot = -1,
		.key_label = getenv("TPWALLET_KEK_PKCS11_KEY_LABEL"),
		.timeout_ms = 10000,
	};
	struct pkcs11 *hsm = NULL, *hsm_sign = NULL;
	struct keyring_kek *token = NULL, *file = NULL, *signing = NULL;
	char *text;

	if (seconds <= 0 || jose_init() != 0)
		return 2;
	if (!c.module || !c.token || !c.key_label) {
		fprintf(stderr, "bench_hsm: set TPWALLET_KEK_PKCS11_MODULE, "
				"_TOKEN, _KEY_LABEL and _PIN (bench/hsm.sh "
				"does, with SoftHSM2)\n");
		return 2;
	}
	if (pkcs11_open(&c, true, &hsm, err, sizeof(err)) != 0 ||
	    pkcs11_kek(hsm, &token) != 0) {
		fprintf(stderr, "bench_hsm: %s\n", err);
		return 1;
	}
	/* A second session on the token whose KEK generates the keys in it
	 * (signing_pkcs11 = 1). */
	c.sign_in_token = true;
	if (pkcs11_open(&c, false, &hsm_sign, err, sizeof(err)) != 0 ||
	    pkcs11_kek(hsm_sign, &signing) != 0) {
		fprintf(stderr, "bench_hsm: %s\n", err);
		return 1;
	}
	text = sodium_malloc(KEYRING_KEK_TEXT_BYTES + 2);
	if (!text || keyring_kek_generate_text(text) != 0 ||
	    keyring_kek_parse(text, KEYRING_KEK_TEXT_BYTES, &file, NULL, 0) !=
		    0)
		return 1;
	sodium_free(text);
	struct keyring *in_token = ring(token, now), *in_file = ring(file, now);
	struct keyring *in_sign = ring(signing, now);
	json_t *claims = json_pack(
		"{s:s,s:I,s:I,s:s,s:{s:s,s:s,s:b}}", "iss",
		"tpwallet/0123456789abcdef", "iat", (json_int_t)now, "exp",
		(json_int_t)(now + 86400), "sub", "user-1", "android",
		"verdict", "supported", "min_supported", "4.0.0", "gate", 1);
	if (!claims)
		return 1;

	printf("signatures per second, %d alternating rounds of %.1f s each "
	       "(median): keys in the token (C_Sign), sealed by the token's "
	       "KEK (C_Decrypt, then in memory), sealed by a file KEK (in "
	       "memory)\n",
	       ROUNDS, seconds);
	static const char *const what[2] = {"checkpoint", "manifest"};
	for (int m = 0; m < 2; m++) {
		double t[ROUNDS], f[ROUNDS], g[ROUNDS];
		for (int r = 0; r < ROUNDS; r++) {
			f[r] = rate(in_file, now, claims, m == 1, seconds);
			t[r] = rate(in_token, now, claims, m == 1, seconds);
			g[r] = rate(in_sign, now, claims, m == 1, seconds);
			if (f[r] < 0 || t[r] < 0 || g[r] < 0) {
				fprintf(stderr,
					"bench_hsm: a signature failed\n");
				return 1;
			}
		}
		qsort(t, ROUNDS, sizeof(t[0]), cmp);
		qsort(f, ROUNDS, sizeof(f[0]), cmp);
		qsort(g, ROUNDS, sizeof(g[0]), cmp);
		double mf = f[ROUNDS / 2], mt = t[ROUNDS / 2],
		       mg = g[ROUNDS / 2];
		printf("%-10s  in token %8.0f/s  token KEK %8.0f/s  file KEK "
		       "%8.0f/s  in-token/token-KEK %.3f  in-token/file %.3f  "
		       "token-KEK/file %.3f\n",
		       what[m], mg, mt, mf, mg / mt, mg / mf, mt / mf);
	}
	struct pkcs11_stats st, ss;
	pkcs11_stats(hsm, &st);
	pkcs11_stats(hsm_sign, &ss);
	printf("token: %llu opens, mean %.1f us each; %llu C_Sign, mean %.1f "
	       "us each\n",
	       (unsigned long long)st.count[PKCS11_OP_UNWRAP],
	       st.count[PKCS11_OP_UNWRAP]
		       ? 1e6 * st.sum_s[PKCS11_OP_UNWRAP] /
				 (double)st.count[PKCS11_OP_UNWRAP]
		       : 0.0,
	       (unsigned long long)ss.count[PKCS11_OP_SIGN],
	       ss.count[PKCS11_OP_SIGN]
		       ? 1e6 * ss.sum_s[PKCS11_OP_SIGN] /
				 (double)ss.count[PKCS11_OP_SIGN]
		       : 0.0);
	json_decref(claims);
	keyring_free(in_token);
	keyring_free(in_file);
	keyring_free(in_sign);
	keyring_kek_free(token);
	keyring_kek_free(file);
	keyring_kek_free(signing);
	pkcs11_close(hsm);
	pkcs11_close(hsm_sign);
	return 0;
}
