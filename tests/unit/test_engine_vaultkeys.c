/*
 * test_engine_vaultkeys.c - the card vault's key store
 * (src/engine/vaultkeys.h) on disk: cards sealed and opened, an erasure
 * that destroys one card's key and rewraps the store under a new
 * wrapping key (a copy of the store from before it no longer opens; the
 * current one still opens the other cards), a rotation that rewraps
 * every data key, and the start-up reconciliation with the state.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include "core/command.h"
#include "core/vault.h"
#include "crypto/jose.h"
#include "crypto/keyring.h"
#include "engine/vaultkeys.h"
#include "log/fsfile.h"

#include "tmpdir_fixture.h"

#include "banned.h"

struct card_fixture {
	struct vault_card c;
	char pan[20];
};

static struct keyring_kek *new_kek(void)
{
	char *text = sodium_malloc(KEYRING_KEK_TEXT_BYTES + 2);
	struct keyring_kek *kek = NULL;

	assert_non_null(text);
	assert_int_equal(keyring_kek_generate_text(text), 0);
	assert_int_equal(
		keyring_kek_parse(text, KEYRING_KEK_TEXT_BYTES, &kek, NULL, 0),
		0);
	sodium_free(text);
	return kek;
}

static void seal(struct vaultkeys *k, const char *pan, bool fpe,
		 struct card_fixture *out)
{
	u8 plain[VAULT_PLAIN_BYTES] = {0};
	size_t n = strlen(pan);

	memset(out, 0, sizeof(*out));
	memcpy(out->pan, pan, n);
	plain[VAULT_PLAIN_PAN_LEN] = (u8)n;
	memcpy(plain + VAULT_PLAIN_PAN, pan, n);
	assert_int_equal(vaultkeys_fingerprint(k, pan, n, out->c.fingerprint),
			 0);
	assert_int_equal(vaultkeys_tokenize(k, plain, pan, n, fpe,
					    out->c.fingerprint, NULL, NULL,
					    out->c.token, out->c.nonce,
					    out->c.ct),
			 0);
}

static int opens(struct vaultkeys *k, const struct card_fixture *f)
{
	u8 plain[VAULT_PLAIN_BYTES];
	int ret = vaultkeys_open_card(k, &f->c, plain);

	if (ret == 0) {
		assert_int_equal(plain[VAULT_PLAIN_PAN_LEN], strlen(f->pan));
		assert_memory_equal(plain + VAULT_PLAIN_PAN, f->pan,
				    strlen(f->pan));
	}
	return ret;
}

static char *read_all(const char *path, size_t *len)
{
	char *buf = NULL;
	assert_int_equal(fsfile_read(path, 1 << 20, &buf, len), 0);
	return buf;
}

static void erasure_rewraps_and_an_old_store_opens_nothing(void **state)
{
	struct fixture *fx = *state;
	char data[300], vdir[320], store[340], err[VAULTKEYS_ERR_BYTES] = "";
	struct keyring_kek *kek = new_kek();
	struct vaultkeys *k;
	struct card_fixture a, b, c;
	size_t old_len, cur_len;
	u32 v, mv;
	u64 epoch;

	snprintf(data, sizeof(data), "%s/data", fx->dir);
	assert_int_equal(fsdir_make(data), 0);
	snprintf(vdir, sizeof(vdir), "%s/vault", data);
	snprintf(store, sizeof(store), "%s/keystore", vdir);
	assert_int_equal(vaultkeys_open(data, kek, &k, err, sizeof(err)), 0);
	assert_true(vaultkeys_usable(k));
	seal(k, "4111111111111111", false, &a);
	seal(k, "5555555555554444", false, &b);
	seal(k, "378282246310005", true, &c);
	assert_int_equal(strncmp(a.c.token, "tok_", 4), 0);
	assert_int_equal(strlen(c.c.token), 16);
	assert_int_equal(c.c.token[0], '0');
	assert_memory_equal(c.c.token + 12, "0005", 4);
	assert_int_equal(opens(k, &a), 0);
	assert_int_equal(opens(k, &b), 0);
	assert_int_equal(opens(k, &c), 0);
	/* a card sealed for one token does not open under another */
	struct card_fixture swapped = b;
	memcpy(swapped.c.token, a.c.token, sizeof(a.c.token));
	assert_int_equal(opens(k, &swapped), -EBADMSG);
	char *old = read_all(store, &old_len);

	assert_int_equal(vaultkeys_erase(k, a.c.token), 0);
	vaultkeys_versions(k, &v, &mv, &epoch);
	assert_int_equal(epoch, 2);
	assert_int_equal(opens(k, &a), -ENOENT);
	assert_int_equal(opens(k, &b), 0);

	u32 nv, nmin, rewrapped;
	assert_int_equal(vaultkeys_rotate(k, 0, &nv, &nmin, &rewrapped), 0);
	assert_true(nv == 2 && nmin == 2 && rewrapped == 2);
	assert_int_equal(vaultkeys_rotate(k, 1, &nv, &nmin, &rewrapped),
			 -EINVAL);
	assert_int_equal(opens(k, &b), 0);
	assert_int_equal(opens(k, &c), 0);
	vaultkeys_close(k);
	char *cur = read_all(store, &cur_len);

	/* The copy from before the erasure: its wrapping key is gone. */
	assert_int_equal(fsfile_replace(vdir, "keystore", old, old_len), 0);
	err[0] = '\0';
	assert_int_equal(vaultkeys_open(data, kek, &k, err, sizeof(err)), 0);
	assert_false(vaultkeys_usable(k));
	assert_non_null(strstr(err, "wrapping key was destroyed"));
	assert_int_equal(opens(k, &b), -EKEYREVOKED);
	vaultkeys_close(k);

	/* The current one back: the other cards open. */
	assert_int_equal(fsfile_replace(vdir, "keystore", cur, cur_len), 0);
	assert_int_equal(vaultkeys_open(data, kek, &k, err, sizeof(err)), 0);
	assert_true(vaultkeys_usable(k));
	assert_int_equal(opens(k, &b), 0);
	assert_int_equal(opens(k, &a), -ENOENT);
	vaultkeys_close(k);

	/* Another KEK opens nothing. */
	struct keyring_kek *other = new_kek();
	err[0] = '\0';
	assert_int_equal(vaultkeys_open(data, other, &k, err, sizeof(err)), 0);
	assert_false(vaultkeys_usable(k));
	vaultkeys_close(k);
	keyring_kek_free(other);
	free(old);
	free(cur);
	keyring_kek_free(kek);
}

static void reconcile_drops_keys_the_state_has_no_live_card_for(void **state)
{
	struct fixture *fx = *state;
	char data[300];
	struct keyring_kek *kek = new_kek();
	struct vaultkeys *k;
	struct vault *st = vault_new();
	struct card_fixture a, b, orphan;
	u32 dropped, out, v, mv;
	u64 epoch;

	snprintf(data, sizeof(data), "%s/data", fx->dir);
	assert_int_equal(fsdir_make(data), 0);
	assert_non_null(st);
	assert_int_equal(vaultkeys_open(data, kek, &k, NULL, 0), 0);
	seal(k, "4111111111111111", false, &a);
	seal(k, "5555555555554444", false, &b);
	seal(k, "4012888888881881", false, &orphan);
	/* The state knows a and b (b erased), not the orphan. */
	const struct card_fixture *known[] = {&a, &b};
	for (int i = 0; i < 2; i++) {
		struct vault_card_cmd cmd = {.exp_month = 1, .exp_year = 2031};
		memcpy(cmd.token, known[i]->c.token, sizeof(cmd.token));
		memcpy(cmd.masked, "411111******1111", 16);
		memcpy(cmd.brand, "visa", 4);
		assert_int_equal(vault_apply(st, VAULT_CMD_CARD, &cmd,
					     sizeof(cmd), 1, &out),
				 0);
	}
	struct vault_use_cmd e = {.reason = "erased"};
	memcpy(e.token, b.c.token, sizeof(e.token));
	assert_int_equal(
		vault_apply(st, VAULT_CMD_ERASE, &e, sizeof(e), 2, &out), 0);
	assert_int_equal(vaultkeys_reconcile(k, st, &dropped), 0);
	assert_int_equal(dropped, 2);
	vaultkeys_versions(k, &v, &mv, &epoch);
	assert_int_equal(epoch, 2); /* an erased card's key: rewrapped */
	assert_int_equal(opens(k, &a), 0);
	assert_int_equal(opens(k, &b), -ENOENT);
	assert_int_equal(opens(k, &orphan), -ENOENT);
	vaultkeys_close(k);
	vault_free(st);
	keyring_kek_free(kek);
}

static int setup(void **state)
{
	assert_int_equal(jose_init(), 0);
	return tmpdir_setup(state, "/tmp/tpw-vaultkeys-XXXXXX");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			erasure_rewraps_and_an_old_store_opens_nothing, setup,
			tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			reconcile_drops_keys_the_state_has_no_live_card_for,
			setup, tmpdir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
