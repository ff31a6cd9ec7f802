/*
 * test_log_bkmanifest.c - the backup manifest's codec (log/bkmanifest.h):
 * a manifest encodes to sorted, compact JSON that decodes to the same
 * manifest (with and without its previous backup); the decoder refuses a
 * missing or unknown member, a file name that climbs out of the backup
 * directory, sizes that do not add up, seqs out of order and a base that
 * contradicts its seq, each with its reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log/bkmanifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static struct bkmanifest_file files[2] = {
	{"journal/00000000000000000001.wal", 1000, {1}},
	{"store/000008.sst", 24, {2}},
};

static void sample(struct bkmanifest *m)
{
	memset(m, 0, sizeof(*m));
	m->version = BKMANIFEST_VERSION;
	snprintf(m->id, sizeof(m->id), "20261207T101500123Z-1f2e3d4c");
	memset(m->origin, 0xab, sizeof(m->origin));
	m->encrypted = true;
	memset(m->key_id, 7, sizeof(m->key_id));
	m->base = BKMANIFEST_BASE_STORE;
	m->base_seq = 40;
	m->first_seq = 1;
	m->last_seq = 42;
	m->first_time_ns = 100;
	m->last_time_ns = 200;
	m->created_ns = 300;
	m->duration_ms = 5;
	m->bytes = 1024;
	m->nfiles = 2;
	m->files = files;
	memset(m->mac, 9, sizeof(m->mac));
}

static void round_trips(bool previous)
{
	struct bkmanifest m, d;
	const char *why = NULL;
	sample(&m);
	m.has_previous = previous;
	memset(m.previous, 0x5a, sizeof(m.previous));
	char *text = bkmanifest_encode(&m, true);
	assert_non_null(text);
	assert_int_equal(bkmanifest_decode(text, strlen(text), &d, &why), 0);
	assert_string_equal(d.id, m.id);
	assert_memory_equal(d.origin, m.origin, 32);
	assert_int_equal(d.has_previous, previous);
	if (previous)
		assert_memory_equal(d.previous, m.previous, 32);
	assert_int_equal(d.base, BKMANIFEST_BASE_STORE);
	assert_int_equal(d.base_seq, 40);
	assert_int_equal(d.last_seq, 42);
	assert_int_equal(d.nfiles, 2);
	assert_string_equal(d.files[1].name, "store/000008.sst");
	assert_int_equal(d.files[0].bytes, 1000);
	assert_memory_equal(d.files[1].sha256, files[1].sha256, 32);
	assert_memory_equal(d.mac, m.mac, 32);
	char *again = bkmanifest_encode(&d, true);
	assert_string_equal(again, text);
	bkmanifest_free(&d);
	/* Without the MAC: the text the MAC is computed over. */
	char *bare = bkmanifest_encode(&m, false);
	assert_null(strstr(bare, "\"mac\""));
	assert_int_equal(bkmanifest_decode(bare, strlen(bare), &d, &why),
			 -EBADMSG);
	free(bare);
	free(again);
	free(text);
}

static void test_manifest_round_trips_with_and_without_previous(void **state)
{
	(void)state;
	round_trips(false);
	round_trips(true);
}

/* The sample encoded with one edit; the decoder's verdict and reason. */
static void refused(void (*edit)(struct bkmanifest *), const char *reason)
{
	struct bkmanifest m, d;
	const char *why = NULL;
	struct bkmanifest_file f[2];
	sample(&m);
	memcpy(f, files, sizeof(f));
	m.files = f;
	edit(&m);
	char *text = bkmanifest_encode(&m, true);
	assert_non_null(text);
	assert_int_equal(bkmanifest_decode(text, strlen(text), &d, &why),
			 -EBADMSG);
	assert_string_equal(why, reason);
	free(text);
}

static void climbing_name(struct bkmanifest *m)
{
	snprintf(m->files[0].name, sizeof(m->files[0].name), "journal/../x");
}

static void absolute_name(struct bkmanifest *m)
{
	snprintf(m->files[0].name, sizeof(m->files[0].name), "/etc/passwd");
}

static void wrong_sum(struct bkmanifest *m)
{
	m->bytes++;
}

static void base_past_last(struct bkmanifest *m)
{
	m->base_seq = 43;
}

static void base_none_with_seq(struct bkmanifest *m)
{
	m->base = BKMANIFEST_BASE_NONE;
}

static void test_manifest_refuses_bad_names_sums_and_seqs(void **state)
{
	(void)state;
	refused(climbing_name, "bad file name");
	refused(absolute_name, "bad file name");
	refused(wrong_sum, "bytes is not the sum of the files'");
	refused(base_past_last, "seqs or times out of order");
	refused(base_none_with_seq, "base and base_seq disagree");
}

static void test_manifest_refuses_unknown_and_missing_members(void **state)
{
	struct bkmanifest m, d;
	const char *why = NULL;
	(void)state;
	sample(&m);
	char *text = bkmanifest_encode(&m, true);
	size_t n = strlen(text);
	/* One member more: {"aaa":1,... */
	char *more = malloc(n + 16);
	snprintf(more, n + 16, "{\"aaa\":1,%s", text + 1);
	assert_int_equal(bkmanifest_decode(more, strlen(more), &d, &why),
			 -EBADMSG);
	assert_string_equal(why, "members missing or unknown");
	/* "base" renamed: one unknown, one missing. */
	char *p = strstr(text, "\"base\"");
	assert_non_null(p);
	p[1] = 'c';
	assert_int_equal(bkmanifest_decode(text, n, &d, &why), -EBADMSG);
	assert_string_equal(why, "members missing or unknown");
	assert_int_equal(bkmanifest_decode("[]", 2, &d, &why), -EBADMSG);
	assert_int_equal(bkmanifest_decode("{", 1, &d, &why), -EBADMSG);
	free(more);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_manifest_round_trips_with_and_without_previous),
		cmocka_unit_test(test_manifest_refuses_bad_names_sums_and_seqs),
		cmocka_unit_test(
			test_manifest_refuses_unknown_and_missing_members),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
