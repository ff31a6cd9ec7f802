/*
 * cmd_keys_local.c - the `tpwallet keys` subcommands that work on a data
 * directory rather than a server (issue 19, docs/keys.md "In a hardware
 * security module"):
 *
 *   init-hsm  make the AES key-encryption key in the token the
 *                kek_pkcs11_* settings name (sensitive, not extractable)
 *                unless it is there, and say its id; with --new-version,
 *                its next version (the KEK's rotation inside the token: a
 *                running server re-seals every key under it);
 *   migrate      --to pkcs11|file: re-seal every key file of a stopped
 *                server's DATA/keys from the file KEK to the token's, or
 *                back, one line of progress per key.
 *
 * A migration rewrites one key file at a time, crash-safe (fsfile_replace:
 * a temporary beside it, fsync, rename, fsync of the directory), and
 * skips the files already sealed by the destination, so a run cut short
 * is finished by running it again.  It is recorded in the keyring's own
 * history, DATA/keys/kek-history (one JSON line per run that re-sealed
 * something: time, from, to, both KEK ids, how many keys), not in the journal:
 * it runs on a stopped server without opening the journal, and it changes
 * nothing a verifier of the log could check (the public keys and kids stay the
 * same).
 */
#include "cli/cli.h"
#include "cli/serverkeys.h"
#include "core/strerror.h"
#include "crypto/jose.h"
#include "crypto/keyring.h"
#include "log/datadir.h"
#include "log/fsfile.h"
#include "log/keyfile.h"
#include "log/pkcs11.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define HISTORY_FILE "kek-history"

static void usage(FILE *f, const char *sub)
{
	if (strcmp(sub, "init-hsm") == 0)
		fprintf(f,
			"usage: tpwallet keys init-hsm [--config FILE] "
			"[--new-version]\n\n"
			"Make the key-encryption key in the PKCS#11 token the "
			"kek_pkcs11_* settings\nname (an AES-256 key, "
			"sensitive, not extractable), unless it is there.\n"
			"--new-version: make its next version (label "
			"LABEL.N), to rotate the KEK inside\nthe token: a "
			"running server re-seals every key under it within a "
			"minute, or\nat once on SIGHUP; the older versions "
			"stay until you delete them.\n"
			"The PIN comes from kek_pkcs11_pin_file or "
			"TPWALLET_KEK_PKCS11_PIN.\n\n"
			"Exit 0 on success, 1 when the token refuses, 2 on "
			"usage errors.\n\nExample:\n"
			"  tpwallet keys init-hsm --config hsm.conf\n");
	else
		fprintf(f,
			"usage: tpwallet keys migrate --to pkcs11|file "
			"[--data DIR] [--config FILE]\n"
			"                             [--kek-file FILE]\n\n"
			"Re-seal every key file of a stopped server's data "
			"directory from the file KEK\nto the PKCS#11 token's "
			"(--to pkcs11), or back (--to file; the KEK file is "
			"made\nwhen absent).  Crash-safe and resumable: run it "
			"again after an interruption.\nThe public keys and "
			"kids do not change.  Recorded in "
			"DATA/keys/" HISTORY_FILE ".\n"
			"Keys generated in the token (signing_pkcs11) cannot "
			"leave it: --to file\nrefuses while there is one, "
			"naming each.\n\n"
			"Exit 0 on success, 1 on failure (nothing half-done "
			"stays unsaid), 2 on usage\nerrors.\n\nExample:\n"
			"  tpwallet keys migrate --to pkcs11 --config hsm.conf "
			"--data old-data\n");
}

/* Both KEKs of a migration. */
struct keks {
	struct pkcs11 *hsm;
	struct keyring_kek *token, *file;
};

static void keks_close(struct keks *k)
{
	keyring_kek_free(k->token);
	pkcs11_close(k->hsm);
	keyring_kek_free(k->file);
	memset(k, 0, sizeof(*k));
}

/* The token's KEK (made when absent with create) and the file KEK (made
 * when absent with create_file). */
static int keks_open(const struct settings *s, bool create_token,
		     bool create_file, struct keks *k)
{
	struct pkcs11 *none = NULL;
	struct settings *fs;
	int ret;

	memset(k, 0, sizeof(*k));
	if (!s->kek_pkcs11_module[0]) {
		fprintf(stderr,
			"tpwallet keys migrate: kek_pkcs11_module is not "
			"set: name the token in the settings "
			"(docs/keys.md)\n");
		return -EINVAL;
	}
	ret = server_keys_load_kek(s, create_token, &k->hsm, &k->token);
	if (ret != 0)
		return ret;
	fs = malloc(sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	*fs = *s;
	fs->kek_pkcs11_module[0] = '\0';
	fs->signing_pkcs11 = 0;
	ret = server_keys_load_kek(fs, create_file, &none, &k->file);
	free(fs);
	return ret;
}

/* DATA/journal locked, as the server holds it while it runs. */
static int lock_data(const char *data, int *fd)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/" DATADIR_JOURNAL, data);
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		fprintf(stderr, "tpwallet keys migrate: %s: %s\n", path,
			tpw_strerror(errno));
		return -errno;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr,
			"tpwallet keys migrate: %s is locked: a server runs "
			"on this data directory; stop the server first\n",
			path);
		close(*fd);
		*fd = -1;
		return -EBUSY;
	}
	return 0;
}

static void history(const char *keys_dir, const char *from, const char *to,
		    const struct keks *k, bool to_token, size_t done,
		    size_t already)
{
	unsigned char a[KEYRING_KEK_ID_BYTES], b[KEYRING_KEK_ID_BYTES];
	char ha[2 * KEYRING_KEK_ID_BYTES + 1], hb[2 * KEYRING_KEK_ID_BYTES + 1];
	char path[4400], line[512], when[32];
	time_t now = time(NULL);
	struct tm tm;

	keyring_kek_id(to_token ? k->file : k->token, a);
	keyring_kek_id(to_token ? k->token : k->file, b);
	sodium_bin2hex(ha, sizeof(ha), a, sizeof(a));
	sodium_bin2hex(hb, sizeof(hb), b, sizeof(b));
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	int n = snprintf(line, sizeof(line),
			 "{\"at\":\"%s\",\"op\":\"migrate\",\"from\":\"%s\","
			 "\"to\":\"%s\",\"from_kek_id\":\"%s\",\"to_kek_id\":"
			 "\"%s\",\"rewrapped\":%zu,\"already\":%zu}\n",
			 when, from, to, ha, hb, done, already);
	snprintf(path, sizeof(path), "%s/" HISTORY_FILE, keys_dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0)
		fprintf(stderr,
			"tpwallet keys migrate: cannot record the migration "
			"in %s: %s\n",
			path, tpw_strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Re-seals one key file; *moved tells whether it needed it. */
static int migrate_one(const char *dir, const char *name,
		       const struct keyring_kek *from,
		       const struct keyring_kek *to, bool *moved)
{
	unsigned char to_id[KEYRING_KEK_ID_BYTES], nonce[24];
	unsigned char out[KEYRING_KEYFILE_BYTES];
	char path[4400], err[KEYRING_ERR_BYTES] = "";
	struct keyring_key meta;
	char *buf = NULL;
	size_t len = 0;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ret = fsfile_read(path, KEYRING_KEYFILE_BYTES, &buf, &len);
	if (ret != 0) {
		fprintf(stderr, "tpwallet keys migrate: %s: %s\n", path,
			fsfile_strerror(ret));
		return ret;
	}
	ret = keyring_keyfile_decode(buf, len, NULL, &meta, err, sizeof(err));
	keyring_kek_id(to, to_id);
	*moved = false;
	if (ret == 0 && memcmp(meta.kek_id, to_id, sizeof(to_id)) == 0) {
		free(buf);
		return 0;
	}
	randombytes_buf(nonce, sizeof(nonce));
	if (ret == 0 && len != KEYRING_KEYFILE_BYTES)
		ret = KEYRING_E_MALFORMED;
	if (ret == 0)
		ret = keyring_keyfile_reseal((const unsigned char *)buf, from,
					     to, nonce, out, err, sizeof(err));
	/* A file under an older version of the token's KEK: the token's
	 * KEK opens it itself. */
	if (ret == KEYRING_E_WRONG_KEK && keyring_kek_in_token(to))
		ret = keyring_keyfile_reseal((const unsigned char *)buf, to, to,
					     nonce, out, err, sizeof(err));
	free(buf);
	if (ret != 0) {
		fprintf(stderr, "tpwallet keys migrate: %s: %s (%s)\n", path,
			err[0] ? err : "cannot re-seal", keyring_strerror(ret));
		return ret;
	}
	ret = fsfile_replace(dir, name, out, sizeof(out));
	if (ret != 0)
		fprintf(stderr,
			"tpwallet keys migrate: cannot replace %s: %s\n", path,
			tpw_strerror(-ret));
	*moved = ret == 0;
	return ret;
}

/* Keys generated in the token (key file version 3) cannot leave it: a
 * migration to the file KEK refuses while any is there, naming them.
 * Returns how many. */
static size_t keys_in_token(const char *dir, char *const *names, size_t n)
{
	size_t found = 0;

	for (size_t i = 0; i < n; i++) {
		char path[4400], *buf = NULL;
		size_t len = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (fsfile_read(path, KEYRING_KEYFILE_BYTES, &buf, &len) != 0)
			continue; /* migrate_one reports it */
		if (len == KEYRING_KEYFILE_BYTES &&
		    keyring_image_in_token((const unsigned char *)buf)) {
			if (!found)
				fprintf(stderr,
					"tpwallet keys migrate: these keys "
					"were generated in the token "
					"(signing_pkcs11) and cannot leave "
					"it:");
			fprintf(stderr, " %.*s", KEYRING_KID_BYTES, names[i]);
			found++;
		}
		free(buf);
	}
	if (found)
		fprintf(stderr,
			"; nothing was changed.  Set signing_pkcs11 = 0, "
			"start the server and rotate (`tpwallet keys rotate "
			"--overlap D`): the new key is sealed by the token's "
			"KEK, and once the keys above have expired and been "
			"pruned, migrate again (docs/keys.md, \"Signing "
			"inside the token\")\n");
	return found;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int migrate(const struct settings *s, bool to_token)
{
	char dir[4200];
	char *names[KEYRING_KEYS_MAX * 2];
	size_t n = 0, done = 0, already = 0;
	struct keks k;
	int lock_fd = -1, ret;

	ret = lock_data(s->data_dir, &lock_fd);
	if (ret != 0)
		return 1;
	snprintf(dir, sizeof(dir), "%s/" DATADIR_KEYS, s->data_dir);
	DIR *d = opendir(dir);
	const struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len != KEYRING_KID_BYTES + 4 ||
		    strcmp(de->d_name + KEYRING_KID_BYTES, ".key") != 0 ||
		    !keyring_kid_valid(de->d_name, KEYRING_KID_BYTES))
			continue;
		if (n == sizeof(names) / sizeof(names[0]))
			break;
		names[n++] = strdup(de->d_name);
	}
	if (d)
		closedir(d);
	else
		fprintf(stderr, "tpwallet keys migrate: %s: %s\n", dir,
			tpw_strerror(errno));
	qsort(names, n, sizeof(names[0]), cmp_names);
	/* Before anything is made (the file KEK) or changed. */
	ret = d ? 0 : -errno;
	if (ret == 0 && !to_token && keys_in_token(dir, names, n) > 0)
		ret = KEYRING_E_KEY_IN_TOKEN;
	memset(&k, 0, sizeof(k));
	if (ret == 0 && keks_open(s, to_token, !to_token, &k) != 0) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		keks_close(&k);
		close(lock_fd);
		return 1;
	}
	const struct keyring_kek *from = to_token ? k.file : k.token;
	const struct keyring_kek *to = to_token ? k.token : k.file;
	const char *to_name = to_token ? "pkcs11" : "file";
	for (size_t i = 0; i < n && ret == 0; i++) {
		bool moved = false;
		ret = migrate_one(dir, names[i], from, to, &moved);
		if (ret == 0 && moved) {
			done++;
			printf("rewrapped %zu/%zu %.*s\n", i + 1, n,
			       KEYRING_KID_BYTES, names[i]);
		} else if (ret == 0) {
			already++;
			printf("already %zu/%zu %.*s\n", i + 1, n,
			       KEYRING_KID_BYTES, names[i]);
		}
		fflush(stdout);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	if (ret == 0 && done > 0)
		history(dir, to_token ? "file" : "pkcs11", to_name, &k,
			to_token, done, already);
	if (ret == 0) {
		printf("migrated %zu key(s) to the %s KEK (%zu already "
		       "there)\n",
		       done, to_token ? "token's" : "file", already);
	} else {
		fprintf(stderr,
			"tpwallet keys migrate: stopped after %zu key(s); the "
			"others are as they were: run it again once the cause "
			"is fixed\n",
			done);
	}
	keks_close(&k);
	close(lock_fd);
	return ret == 0 ? 0 : 1;
}

/* keys init-hsm [--new-version]. */
static int init_hsm(const struct settings *s, bool new_version)
{
	char err[KEYRING_ERR_BYTES] = "", hex[2 * KEYRING_KEK_ID_BYTES + 1];
	unsigned char id[KEYRING_KEK_ID_BYTES];
	struct keks k = {0};
	unsigned version = 0;
	int ret;

	if (!s->kek_pkcs11_module[0]) {
		fprintf(stderr, "tpwallet keys init-hsm: kek_pkcs11_module is "
				"not set (docs/keys.md)\n");
		return 1;
	}
	ret = server_keys_load_kek(s, !new_version, &k.hsm, &k.token);
	if (ret == 0 && new_version) {
		ret = pkcs11_new_version(k.hsm, &version, err, sizeof(err));
		if (ret != 0)
			fprintf(stderr, "tpwallet keys init-hsm: %s\n", err);
		keyring_kek_free(k.token);
		k.token = NULL;
		if (ret == 0)
			ret = pkcs11_kek(k.hsm, &k.token);
	}
	if (ret == 0) {
		keyring_kek_id(k.token, id);
		sodium_bin2hex(hex, sizeof(hex), id, sizeof(id));
		version = pkcs11_current_version(k.hsm);
		printf("token '%s': key '%s', version %u, ready (KEK id %s)\n",
		       s->kek_pkcs11_token, s->kek_pkcs11_key_label, version,
		       hex);
		if (new_version)
			printf("a running server re-seals every key under "
			       "version %u within a minute (at once on "
			       "SIGHUP); then the older versions can go\n",
			       version);
	}
	keks_close(&k);
	return ret == 0 ? 0 : 1;
}

int cmd_keys_local(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"kek-file", required_argument, NULL, 'k'},
		{"to", required_argument, NULL, 't'},
		{"new-version", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *sub = argv[1];
	const char *data = NULL, *config = NULL, *kek_file = NULL, *to = NULL;
	bool init = strcmp(sub, "init-hsm") == 0, new_version = false;
	struct settings *s;
	int c, ret;

	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:c:k:t:nh", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'c': config = optarg; break;
		case 'k': kek_file = optarg; break;
		case 't': to = optarg; break;
		case 'n': new_version = true; break;
		case 'h': usage(stdout, sub); return 0;
		default: usage(stderr, sub); return EXIT_USAGE;
		}
	}
	if (optind != argc || (!init && new_version) ||
	    (!init && (!to || (strcmp(to, "pkcs11") && strcmp(to, "file"))))) {
		usage(stderr, sub);
		return EXIT_USAGE;
	}
	if (jose_init() < 0)
		return EXIT_SOFTWARE;
	s = malloc(sizeof(*s));
	if (!s)
		return EXIT_SOFTWARE;
	ret = settings_load(s, config) < 0 ||
			      (data && settings_set(s, "data", data) < 0) ||
			      (kek_file &&
			       settings_set(s, "kek_file", kek_file) < 0)
		      ? EXIT_USAGE
		      : 0;
	if (ret == 0) {
		settings_finish(s);
		if (init)
			ret = init_hsm(s, new_version);
		else
			ret = migrate(s, strcmp(to, "pkcs11") == 0);
	}
	free(s);
	return ret;
}
