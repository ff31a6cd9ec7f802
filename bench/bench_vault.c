/*
 * bench_vault.c - the card vault's key store in process
 * (src/engine/vaultkeys.h): tokenizations per second (each one seals the
 * card, wraps a new data key and rewrites the key store with fsync, so
 * the figure is mostly the disk's and grows worse with the number of
 * cards: the store is rewritten whole) and card openings per second (what
 * a reveal costs once its journal entry is durable).  A figure, never a
 * test.  Runs in a temporary directory under $TMPDIR (default /tmp).
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_vault [cards]
 */
#include "core/vault.h"
#include "crypto/jose.h"
#include "crypto/keyring.h"
#include "engine/vaultkeys.h"
#include "log/fsdir.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

#define CARDS_DEFAULT 200
#define CARDS_MAX     5000
#define OPENS	      100000u

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long cards = argc > 1 ? strtol(argv[1], NULL, 10) : CARDS_DEFAULT;
	const char *tmp = getenv("TMPDIR");
	char dir[512], data[600];
	char *text;
	struct keyring_kek *kek = NULL;
	struct vaultkeys *k = NULL;
	static struct vault_card c[CARDS_MAX];
	u8 plain[VAULT_PLAIN_BYTES] = {0};
	const char *pan = "4111111111111111";
	int ret = 1;

	if (cards < 1 || cards > CARDS_MAX)
		cards = CARDS_DEFAULT;
	snprintf(dir, sizeof(dir), "%s/bench-vault-XXXXXX", tmp ? tmp : "/tmp");
	if (jose_init() != 0 || !mkdtemp(dir))
		return 1;
	snprintf(data, sizeof(data), "%s/data", dir);
	text = sodium_malloc(KEYRING_KEK_TEXT_BYTES + 2);
	if (!text || keyring_kek_generate_text(text) != 0 ||
	    keyring_kek_parse(text, KEYRING_KEK_TEXT_BYTES, &kek, NULL, 0) !=
		    0 ||
	    fsdir_make(data) != 0 || vaultkeys_open(data, kek, &k, NULL, 0) ||
	    !vaultkeys_usable(k))
		goto cleanup;
	plain[VAULT_PLAIN_PAN_LEN] = 16;
	memcpy(plain + VAULT_PLAIN_PAN, pan, 16);
	double t0 = now_s();
	for (long i = 0; i < cards; i++) {
		if (vaultkeys_fingerprint(k, pan, 16, c[i].fingerprint) ||
		    vaultkeys_tokenize(k, plain, pan, 16, i % 2,
				       c[i].fingerprint, NULL, NULL, c[i].token,
				       c[i].nonce, c[i].ct))
			goto cleanup;
	}
	double t1 = now_s();
	for (unsigned i = 0; i < OPENS; i++) {
		if (vaultkeys_open_card(k, &c[i % (unsigned long)cards], plain))
			goto cleanup;
	}
	double t2 = now_s();
	printf("vault: %ld tokenizations (key store rewritten and fsynced "
	       "each): %.0f/s\n",
	       cards, (double)cards / (t1 - t0));
	printf("vault: card openings (a reveal's decryption), %ld cards: "
	       "%.0f/s\n",
	       cards, OPENS / (t2 - t1));
	ret = 0;
cleanup:
	vaultkeys_close(k);
	keyring_kek_free(kek);
	sodium_free(text);
	fsdir_remove_tree(dir);
	if (ret)
		fprintf(stderr, "bench_vault: failed\n");
	return ret;
}
