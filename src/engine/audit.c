/*
 * audit.c - the Merkle tree over the journal (audit.h).
 *
 * The thread reads records with journal_reader, appends their leaf hashes
 * to a merkle_store, and records where each record lies (segment, offset)
 * and its timestamp, in chunks that never move, so readers need no lock:
 * everything below the published size is written before the size is
 * stored (release) and read after it is loaded (acquire).
 */
#include "engine/audit.h"
#include "engine/engine.h"
#include "engine/logger.h"
#include "log/journal_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

/* Position chunks: 2^14 records of 32 bytes (512 KiB), up to 2^18 of
 * them: 2^32 records, as many as the merkle store holds. */
#define CHUNK_SHIFT   14
#define CHUNK_RECORDS (1u << CHUNK_SHIFT)
#define CHUNKS_MAX    (1u << 18)
/* How long the thread sleeps when it has read everything there is. */
#define IDLE_POLL_MS 5

struct position {
	u64 segment_seq;
	u64 offset;
	u64 timestamp;
	u32 bytes;
	u16 type;
	u16 pad;
};
_Static_assert(sizeof(struct position) == 32, "position is 32 bytes");

struct audit {
	char data_dir[PATH_MAX];
	struct engine *engine; /* may be NULL */
	struct merkle_store *store;
	struct position **chunks; /* CHUNKS_MAX pointers, filled lazily */
	_Atomic u64 size;
	_Atomic bool healthy;
	_Atomic bool stop;
	pthread_t thread;
	bool started;
};

static const struct position *position_of(const struct audit *a, u64 i)
{
	return &a->chunks[i >> CHUNK_SHIFT][i & (CHUNK_RECORDS - 1)];
}

static int add_leaf(struct audit *a, const struct journal_record *r,
		    const u8 *raw, size_t raw_bytes, u64 segment_seq,
		    u64 offset)
{
	u64 i = atomic_load_explicit(&a->size, memory_order_relaxed);
	u8 hash[MERKLE_HASH_BYTES];

	if ((i >> CHUNK_SHIFT) >= CHUNKS_MAX)
		return MERKLE_E_FULL;
	if (!a->chunks[i >> CHUNK_SHIFT]) {
		a->chunks[i >> CHUNK_SHIFT] =
			calloc(CHUNK_RECORDS, sizeof(struct position));
		if (!a->chunks[i >> CHUNK_SHIFT])
			return -ENOMEM;
	}
	merkle_hash_leaf(raw, raw_bytes, hash);
	int ret = merkle_store_append_hash(a->store, hash);
	if (ret != 0)
		return ret;
	struct position *p =
		&a->chunks[i >> CHUNK_SHIFT][i & (CHUNK_RECORDS - 1)];
	*p = (struct position){.segment_seq = segment_seq,
			       .offset = offset,
			       .timestamp = r->timestamp,
			       .bytes = (u32)raw_bytes,
			       .type = r->type};
	atomic_store_explicit(&a->size, i + 1, memory_order_release);
	return 0;
}

static void *audit_main(void *arg)
{
	struct audit *a = arg;
	struct journal_reader *rd = NULL;
	int ret;

	/* The journal directory exists once the engine opened it. */
	while (!atomic_load(&a->stop)) {
		ret = journal_reader_open(&rd, a->data_dir, 1);
		if (ret == 0)
			break;
		struct timespec ms = {0, 100 * 1000000L};
		nanosleep(&ms, NULL);
	}
	while (rd && !atomic_load(&a->stop)) {
		struct journal_record r;
		const u8 *raw;
		size_t raw_bytes;
		u64 seg, off;

		/* Only what is durable: a record past it may be half-written
		 * or lost in a power cut, and must never be in the tree. */
		if (a->engine)
			journal_reader_limit(rd, engine_durable_seq(a->engine));
		ret = journal_reader_next(rd, &r, &raw, &raw_bytes);
		if (ret == 1) {
			journal_reader_position(rd, &seg, &off);
			ret = add_leaf(a, &r, raw, raw_bytes, seg, off);
			if (ret != 0) {
				log_at(LOG_ERROR, "audit tree cannot grow",
				       LOG_NUM("code", ret));
				break;
			}
			continue;
		}
		if (ret < 0) {
			log_at(LOG_ERROR,
			       "audit tree stopped: journal unreadable",
			       LOG_STR("detail", journal_reader_error(rd)));
			break;
		}
		struct timespec idle = {0, IDLE_POLL_MS * 1000000L};
		nanosleep(&idle, NULL);
	}
	if (!atomic_load(&a->stop))
		atomic_store(&a->healthy, false);
	journal_reader_close(rd);
	return NULL;
}

int audit_open(struct audit **out, const char *data_dir, struct engine *engine,
	       const char **err)
{
	struct audit *a;
	int ret;

	*out = NULL;
	*err = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if ((size_t)snprintf(a->data_dir, sizeof(a->data_dir), "%s",
			     data_dir) >= sizeof(a->data_dir)) {
		*err = "data directory path too long";
		ret = -ENAMETOOLONG;
		goto fail;
	}
	a->store = merkle_store_new();
	a->chunks = calloc(CHUNKS_MAX, sizeof(*a->chunks));
	if (!a->store || !a->chunks) {
		*err = "out of memory";
		ret = -ENOMEM;
		goto fail;
	}
	a->engine = engine;
	atomic_init(&a->size, 0);
	atomic_init(&a->healthy, true);
	atomic_init(&a->stop, false);
	ret = pthread_create(&a->thread, NULL, audit_main, a);
	if (ret != 0) {
		*err = "cannot start the audit thread";
		ret = -ret;
		goto fail;
	}
	a->started = true;
	*out = a;
	return 0;
fail:
	audit_close(a);
	return ret;
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	if (a->started) {
		atomic_store(&a->stop, true);
		pthread_join(a->thread, NULL);
	}
	if (a->chunks) {
		for (u32 i = 0; i < CHUNKS_MAX && a->chunks[i]; i++)
			free(a->chunks[i]);
		free(a->chunks);
	}
	merkle_store_free(a->store);
	free(a);
}

u64 audit_size(const struct audit *a)
{
	return atomic_load_explicit(&a->size, memory_order_acquire);
}

bool audit_healthy(const struct audit *a)
{
	return atomic_load(&a->healthy);
}

int audit_root(const struct audit *a, u64 size, u8 root[MERKLE_HASH_BYTES])
{
	if (size > audit_size(a))
		return MERKLE_E_SIZE_RANGE;
	return merkle_store_root(a->store, size, root);
}

int audit_leaf(const struct audit *a, u64 index, struct audit_leaf *out)
{
	if (index >= audit_size(a))
		return MERKLE_E_INDEX_RANGE;
	const struct position *p = position_of(a, index);
	out->seq = index + 1;
	out->timestamp = p->timestamp;
	out->type = p->type;
	out->bytes = p->bytes;
	return merkle_store_leaf_hash(a->store, index, out->hash);
}

int audit_entry(const struct audit *a, u64 index, u8 **bytes, size_t *len)
{
	struct audit_leaf leaf;
	char path[PATH_MAX + 64];
	u8 hash[MERKLE_HASH_BYTES];
	u8 *buf = NULL;
	int fd = -1, ret;

	*bytes = NULL;
	*len = 0;
	ret = audit_leaf(a, index, &leaf);
	if (ret != 0)
		return ret;
	const struct position *p = position_of(a, index);
	snprintf(path, sizeof(path), "%s/journal/%020llu.wal", a->data_dir,
		 (unsigned long long)p->segment_seq);
	buf = malloc(p->bytes);
	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto cleanup;
	}
	size_t got = 0;
	while (got < p->bytes) {
		ssize_t k = pread(fd, buf + got, p->bytes - got,
				  (off_t)(p->offset + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			ret = k < 0 ? -errno : -EBADMSG;
			goto cleanup;
		}
		got += (size_t)k;
	}
	/* What is served must be what was hashed. */
	merkle_hash_leaf(buf, p->bytes, hash);
	if (memcmp(hash, leaf.hash, sizeof(hash)) != 0) {
		ret = -EBADMSG;
		goto cleanup;
	}
	*bytes = buf;
	*len = p->bytes;
	buf = NULL;
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

int audit_index_of_timestamp(const struct audit *a, u64 timestamp, u64 *index)
{
	u64 lo = 0, hi = audit_size(a);

	/* Records are in timestamp order: the first with timestamp >= t. */
	while (lo < hi) {
		u64 mid = lo + (hi - lo) / 2;
		if (position_of(a, mid)->timestamp < timestamp)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == audit_size(a))
		return MERKLE_E_INDEX_RANGE;
	*index = lo;
	return 0;
}

int audit_inclusion_proof(const struct audit *a, u64 index, u64 size,
			  u8 proof[][MERKLE_HASH_BYTES], size_t *nproof)
{
	if (size > audit_size(a))
		return MERKLE_E_SIZE_RANGE;
	return merkle_store_inclusion_proof(a->store, index, size, proof,
					    nproof);
}

int audit_consistency_proof(const struct audit *a, u64 first, u64 second,
			    u8 proof[][MERKLE_HASH_BYTES], size_t *nproof)
{
	if (second > audit_size(a))
		return MERKLE_E_SIZE_RANGE;
	return merkle_store_consistency_proof(a->store, first, second, proof,
					      nproof);
}
