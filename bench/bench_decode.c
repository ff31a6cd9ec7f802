/*
 * bench_decode.c - decode cost of a create-transfers body, fast path
 * against the full (jansson) decoder.
 *
 * Builds one body of 8190 transfers shaped as bench/http_batch.py sends
 * them (id, debit_account_id, credit_account_id, amount, ledger, code),
 * checks that both decoders give the same records, then decodes it RUNS
 * times with each and prints the median ns per event.  The fast path is
 * timed without its allocation (fastjson_decode into a preallocated
 * array); the full decoder with its own, as codec_decode_events pays it.
 * A figure, never a test: nothing here passes or fails on time.
 *
 * Build and run (from the repository root): `make bench-build`, then
 *   build/bench/bench_decode [runs]
 */
#include "api/codec_internal.h"
#include "api/fastjson.h"
#include "api/wbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

#define EVENTS	     BATCH_EVENTS_MAX
#define ACCOUNTS     100000u
#define RUNS_DEFAULT 21

static u64 rng_state = 0x9e3779b97f4a7c15ull;

/* splitmix64: deterministic, so runs are comparable. */
static u64 rnd(void)
{
	u64 z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void build_body(struct wbuf *b)
{
	wbuf_putc(b, '[');
	for (u32 i = 0; i < EVENTS; i++) {
		u64 d = rnd() % ACCOUNTS + 1;
		u64 c = d % ACCOUNTS + 1;

		if (i)
			wbuf_putc(b, ',');
		/* "7" run, 6-digit batch, 5-digit index: as http_batch.py */
		wbuf_puts(b, "{\"id\":\"7000001");
		for (u32 k = 10000; k; k /= 10)
			wbuf_putc(b, (char)('0' + i / k % 10));
		wbuf_puts(b, "\",\"debit_account_id\":\"");
		wbuf_put_u64(b, d);
		wbuf_puts(b, "\",\"credit_account_id\":\"");
		wbuf_put_u64(b, c);
		wbuf_puts(b, "\",\"amount\":\"1\",\"ledger\":1,\"code\":1}");
	}
	wbuf_putc(b, ']');
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : RUNS_DEFAULT;
	struct wbuf b = WBUF_INIT((size_t)64 << 20);
	struct codec_error err;
	double *fast_ns, *full_ns;
	void *fast, *full = NULL;
	bool arr;
	u32 n, cap;

	if (runs < 1)
		runs = 1;
	build_body(&b);
	if (b.err)
		return 1;
	cap = fastjson_events_max(b.data, b.len);
	fast = malloc((size_t)cap * sizeof(struct transfer));
	fast_ns = calloc((size_t)runs, sizeof(double));
	full_ns = calloc((size_t)runs, sizeof(double));
	if (!fast || !fast_ns || !full_ns)
		return 1;
	if (fastjson_decode(CODEC_TRANSFER, b.data, b.len, fast, cap, &n,
			    &arr) != 0 ||
	    n != EVENTS ||
	    codec__decode_events_full(CODEC_TRANSFER, b.data, b.len, &full, &n,
				      &arr, &err) != 0 ||
	    memcmp(fast, full, sizeof(struct transfer) * EVENTS) != 0) {
		fprintf(stderr, "decoders disagree on the benchmark body\n");
		return 1;
	}
	free(full);

	for (int r = 0; r < runs; r++) {
		double t0 = now_ns();
		if (fastjson_decode(CODEC_TRANSFER, b.data, b.len, fast, cap,
				    &n, &arr) != 0)
			return 1;
		fast_ns[r] = (now_ns() - t0) / EVENTS;

		t0 = now_ns();
		if (codec__decode_events_full(CODEC_TRANSFER, b.data, b.len,
					      &full, &n, &arr, &err) != 0)
			return 1;
		full_ns[r] = (now_ns() - t0) / EVENTS;
		free(full);
	}
	printf("body: %u transfers, %zu bytes (%.1f bytes/event), %d runs\n",
	       EVENTS, b.len, (double)b.len / EVENTS, runs);
	printf("fastjson  median %7.1f ns/event\n", median(fast_ns, runs));
	printf("jansson   median %7.1f ns/event\n", median(full_ns, runs));
	free(fast);
	free(fast_ns);
	free(full_ns);
	wbuf_release(&b);
	return 0;
}
