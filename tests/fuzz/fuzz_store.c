/*
 * fuzz_store.c - libFuzzer driver for the decoders of the store's values
 * (log/store.h): what RocksDB hands back is bytes from disk, so a decoder
 * must refuse anything that is not a value the store writes (-EIO, or
 * -EPROTO for a meta of another version), never crash, and whatever it
 * accepts must be exactly the bytes the store would have written.
 *
 * Input: one byte picks the decoder (mod 5), then a 16-byte big-endian id
 * (the key's id or account), an 8-byte big-endian timestamp (the index
 * key's), then the value:
 *   0 meta: accepted only as STORE_META_BYTES that encode back to
 *     themselves;
 *   1 transfer by id: a FAILED mark is the one byte "F"; a transfer is
 *     129 bytes, the record (with the key's id) and a status consistent
 *     with its pending flag;
 *   2 index: 128 or 192 bytes, a transfer on that account at that
 *     timestamp, and the point's balances as stored;
 *   3 account, 4 pending transfer: 128 bytes, the key's id.
 *
 * Built by `make fuzz` with the rest (build/fuzz/fuzz_store); run:
 *   build/fuzz/fuzz_store -dict=tests/fuzz/store.dict \
 *     build/fuzz/corpus-store tests/fuzz/corpus/store
 *
 * Seed corpus: compiled with -DSTORE_CORPUS_MAIN (and without
 * -fsanitize=fuzzer) this file is a program that writes the seeds:
 *   cc -std=c17 -D_GNU_SOURCE -DSTORE_CORPUS_MAIN -Isrc \
 *     tests/fuzz/fuzz_store.c build/src/log/store.o build/src/core/[a-z]*.o \
 *     $(pkg-config --libs rocksdb jansson libsodium nettle) -lm -o gen && \
 *   ./gen tests/fuzz/corpus/store
 */
#include "log/store.h"

#include "fuzz_check.h"

#include <errno.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define HEAD_BYTES 25u /* mode, id, timestamp */

static u128 be128(const u8 *p)
{
	u128 v = 0;
	for (int i = 0; i < 16; i++)
		v = (v << 8) | p[i];
	return v;
}

static u64 be64(const u8 *p)
{
	u64 v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void meta(const u8 *v, size_t n)
{
	struct store_meta m;
	u8 again[STORE_META_BYTES];
	int ret = store_meta_decode(v, n, &m);

	CHECK(ret == 0 || ret == -EIO || ret == -EPROTO);
	if (ret)
		return;
	CHECK(n == STORE_META_BYTES && m.version == STORE_FORMAT_VERSION);
	store_meta_encode(&m, again);
	CHECK(memcmp(again, v, n) == 0);
}

static void transfer(const u8 *v, size_t n, u128 id)
{
	struct ledger_cold_item it;
	int ret = store_transfer_value_decode(v, n, id, &it);

	CHECK(ret == 0 || ret == -EIO);
	if (ret)
		return;
	if (it.kind == LEDGER_COLD_FAILED) {
		CHECK(n == 1 && v[0] == STORE_FAILED_VALUE);
		return;
	}
	CHECK(it.kind == LEDGER_COLD_TRANSFER);
	CHECK(n == STORE_TRANSFER_VALUE_BYTES);
	CHECK(memcmp(&it.t, v, sizeof(it.t)) == 0 && it.status == v[128]);
	CHECK(it.t.id == id);
	CHECK((it.t.flags & TRANSFER_PENDING)
		      ? it.status >= PENDING_PENDING &&
				it.status <= PENDING_EXPIRED
		      : it.status == PENDING_NONE);
}

static void index_value(const u8 *v, size_t n, u128 account, u64 ts)
{
	struct transfer t;
	struct account_balance p;
	bool has_point;
	int ret =
		store_index_value_decode(v, n, account, ts, &t, &p, &has_point);

	CHECK(ret == 0 || ret == -EIO);
	if (ret)
		return;
	CHECK(n == STORE_INDEX_VALUE_BYTES ||
	      n == STORE_INDEX_VALUE_BYTES + STORE_POINT_BYTES);
	CHECK(memcmp(&t, v, sizeof(t)) == 0 && t.timestamp == ts);
	CHECK(t.debit_account_id == account || t.credit_account_id == account);
	CHECK(has_point == (n > STORE_INDEX_VALUE_BYTES));
	if (has_point) {
		CHECK(memcmp(&p.debits_pending, v + 128, 16) == 0);
		CHECK(memcmp(&p.debits_posted, v + 144, 16) == 0);
		CHECK(memcmp(&p.credits_pending, v + 160, 16) == 0);
		CHECK(memcmp(&p.credits_posted, v + 176, 16) == 0);
		CHECK(p.timestamp == ts);
	}
}

static void record(const u8 *v, size_t n, u128 id, bool pending)
{
	struct account a;
	struct transfer t;
	int ret = pending ? store_pending_value_decode(v, n, id, &t)
			  : store_account_value_decode(v, n, id, &a);

	CHECK(ret == 0 || ret == -EIO);
	if (ret)
		return;
	CHECK(n == 128);
	CHECK(memcmp(pending ? (const void *)&t : (const void *)&a, v, n) == 0);
	CHECK(pending ? t.id == id && (t.flags & TRANSFER_PENDING)
		      : a.id == id);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const u8 *v = data + HEAD_BYTES;
	size_t n = size - HEAD_BYTES;
	u128 id;
	u64 ts;

	if (size < HEAD_BYTES)
		return 0;
	id = be128(data + 1);
	ts = be64(data + 17);
	switch (data[0] % 5) {
	case 0: meta(v, n); break;
	case 1: transfer(v, n, id); break;
	case 2: index_value(v, n, id, ts); break;
	default: record(v, n, id, data[0] % 5 == 4); break;
	}
	return 0;
}

#ifdef STORE_CORPUS_MAIN
#include <stdio.h>

static void put(const char *dir, const char *name, u8 mode, u128 id, u64 ts,
		const void *val, size_t n)
{
	u8 buf[HEAD_BYTES + 256];
	char path[512];
	FILE *f;

	CHECK(n <= 256);
	buf[0] = mode;
	for (int i = 15; i >= 0; i--, id >>= 8)
		buf[1 + i] = (u8)id;
	for (int i = 7; i >= 0; i--, ts >>= 8)
		buf[17 + i] = (u8)ts;
	memcpy(buf + HEAD_BYTES, val, n);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(buf, 1, HEAD_BYTES + n, f) == HEAD_BYTES + n);
	CHECK(fclose(f) == 0);
	LLVMFuzzerTestOneInput(buf, HEAD_BYTES + n); /* every seed runs clean */
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	struct store_meta m = {.version = STORE_FORMAT_VERSION,
			       .seq = 42,
			       .last_timestamp = 1700000000000000000ull,
			       .transfers = 7,
			       .accounts = 2,
			       .failed = 1};
	u8 mv[STORE_META_BYTES], v[256];
	struct transfer t = {.id = 5,
			     .debit_account_id = 1,
			     .credit_account_id = 2,
			     .amount = 100,
			     .ledger = 1,
			     .code = 1,
			     .flags = TRANSFER_PENDING,
			     .timestamp = 99};
	struct account a = {.id = 1, .ledger = 1, .code = 1, .timestamp = 9};
	u8 failed = STORE_FAILED_VALUE;

	memset(m.origin, 0x11, sizeof(m.origin));
	memset(m.digest, 0x22, sizeof(m.digest));
	store_meta_encode(&m, mv);
	put(dir, "meta", 0, 0, 0, mv, sizeof(mv));
	mv[8] = 2;
	put(dir, "meta-version-2", 0, 0, 0, mv, sizeof(mv));
	mv[8] = 1;
	put(dir, "meta-short", 0, 0, 0, mv, sizeof(mv) - 1);

	memcpy(v, &t, sizeof(t));
	v[128] = PENDING_POSTED;
	put(dir, "transfer-posted", 1, 5, 0, v, 129);
	put(dir, "transfer-other-id", 1, 6, 0, v, 129);
	v[128] = PENDING_NONE;
	put(dir, "transfer-bad-status", 1, 5, 0, v, 129);
	put(dir, "failed", 1, 5, 0, &failed, 1);

	memset(v + 128, 0x33, 64);
	put(dir, "index-point", 2, 1, 99, v, 192);
	put(dir, "index-plain", 2, 2, 99, v, 128);
	put(dir, "index-other-account", 2, 3, 99, v, 128);
	put(dir, "index-other-ts", 2, 1, 98, v, 192);
	put(dir, "index-short", 2, 1, 99, v, 130);

	put(dir, "pending", 4, 5, 0, &t, sizeof(t));
	put(dir, "account", 3, 1, 0, &a, sizeof(a));
	put(dir, "account-short", 3, 1, 0, &a, sizeof(a) - 1);
	return 0;
}
#endif
