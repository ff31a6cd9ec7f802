/*
 * crc32c.c - CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected
 * 0x82F63B78) for journal records and snapshot files.
 *
 * Recovery checksums every byte of the journal, so this sits on the
 * start-up path: on x86-64 CPUs with SSE4.2 the `crc32` instruction does
 * 8 bytes per instruction; elsewhere a slicing-by-8 table does 8 bytes per
 * step.  Both give the same values (tests compare them against the
 * published check value and the RFC 3720 B.4 vectors).
 *
 * Chaining convention: crc32c(crc32c(0, a), b) == crc32c(0, a || b), so the
 * public value is the finalized (inverted) CRC and 0 starts a new one.
 */
#include "log/journal.h"

#include <pthread.h>
#include <string.h>

#include "banned.h"

#define POLY_REFLECTED 0x82F63B78u

static u32 table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (u32 i = 0; i < 256; i++) {
		u32 c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (POLY_REFLECTED & (0u - (c & 1u)));
		table[0][i] = c;
	}
	for (u32 i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^
				      table[0][table[t - 1][i] & 0xff];
}

/* Portable path; also used by tests to cross-check the hardware one. */
u32 log__crc32c_sw(u32 crc, const void *buf, size_t len)
{
	const u8 *p = buf;
	u32 c = ~crc;

	pthread_once(&table_once, table_init);
	while (len >= 8) {
		u32 lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		/* Little-endian loads: see the static assert in journal.c. */
		lo ^= c;
		c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		    table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		    table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		    table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
	return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) u32 log__crc32c_hw(u32 crc, const void *buf,
						     size_t len)
{
	const u8 *p = buf;
	u64 c = (u32)~crc;

	while (len >= 8) {
		u64 v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	u32 c32 = (u32)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}

/* 1: hardware, 2: software; 0: not decided yet.  A benign race: every
 * thread computes the same answer. */
static int crc_impl;

u32 crc32c(u32 crc, const void *buf, size_t len)
{
	int impl = __atomic_load_n(&crc_impl, __ATOMIC_RELAXED);
	if (impl == 0) {
		__builtin_cpu_init();
		impl = __builtin_cpu_supports("sse4.2") ? 1 : 2;
		__atomic_store_n(&crc_impl, impl, __ATOMIC_RELAXED);
	}
	if (impl == 1)
		return log__crc32c_hw(crc, buf, len);
	return log__crc32c_sw(crc, buf, len);
}
#else
u32 crc32c(u32 crc, const void *buf, size_t len)
{
	return log__crc32c_sw(crc, buf, len);
}
#endif
