/*
 * logger.c - JSON-lines logging (see logger.h).
 *
 * Synchronous by default: one write(2) per line.  A server calls
 * logger_start_async(): debug and info lines (one per request) then go to a
 * shared buffer that a flusher thread writes every LOG_FLUSH_MS, or as soon
 * as the buffer is half full, so tens of thousands of requests a second
 * cost tens of system calls, not tens of thousands.  Two buffers: the
 * flusher swaps them under the lock and writes the full one outside it,
 * so a request thread never waits for write(2) unless both are full.
 * Warnings and errors still go out at once, after whatever is buffered,
 * so the order of lines is kept.  The price: on kill -9, up to
 * LOG_FLUSH_MS of request lines can be lost; never a warning or an error.
 */
#include "engine/logger.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

#define LINE_BYTES_MAX	 4096
#define LOG_BUFFER_BYTES (256u * 1024u)
#define LOG_FLUSH_MS	 50

static pthread_mutex_t buf_lock = PTHREAD_MUTEX_INITIALIZER;
/* On CLOCK_MONOTONIC (flusher_cond_init), so a wall clock stepped back
 * never stretches the flush interval. */
static pthread_cond_t flusher_cond;
static pthread_once_t flusher_cond_once = PTHREAD_ONCE_INIT;
static pthread_cond_t written_cond = PTHREAD_COND_INITIALIZER;
static char *async_buf; /* non-NULL while async: lines being gathered */
static size_t async_len;
static char *spare_buf; /* the other buffer, written by the flusher */
static bool writing;	/* the flusher is writing spare_buf, unlocked */
static bool flusher_stop;
static pthread_t flusher;

static void flusher_cond_init(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&flusher_cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w <= 0)
			return; /* stderr is gone: nothing better to do */
		p += w;
		n -= (size_t)w;
	}
}

/* Caller holds buf_lock.  Whatever the flusher is writing goes first. */
static void flush_locked(void)
{
	while (writing)
		pthread_cond_wait(&written_cond, &buf_lock);
	if (async_len) {
		write_all(async_buf, async_len);
		async_len = 0;
	}
}

static void *flusher_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&buf_lock);
	while (!flusher_stop) {
		if (async_len < LOG_BUFFER_BYTES / 2) {
			struct timespec until = tpw_deadline_ms(LOG_FLUSH_MS);
			pthread_cond_timedwait(&flusher_cond, &buf_lock,
					       &until);
		}
		if (!async_len)
			continue;
		/* Swap, then write the full buffer without the lock. */
		char *full = async_buf;
		size_t n = async_len;
		async_buf = spare_buf;
		async_len = 0;
		writing = true;
		pthread_mutex_unlock(&buf_lock);
		write_all(full, n);
		pthread_mutex_lock(&buf_lock);
		spare_buf = full;
		writing = false;
		pthread_cond_broadcast(&written_cond);
	}
	pthread_mutex_unlock(&buf_lock);
	return NULL;
}

int logger_start_async(void)
{
	int ret = 0;

	pthread_once(&flusher_cond_once, flusher_cond_init);
	pthread_mutex_lock(&buf_lock);
	if (!async_buf) {
		async_buf = malloc(LOG_BUFFER_BYTES);
		spare_buf = malloc(LOG_BUFFER_BYTES);
		async_len = 0;
		writing = false;
		flusher_stop = false;
		if (!async_buf || !spare_buf ||
		    pthread_create(&flusher, NULL, flusher_main, NULL) != 0) {
			free(async_buf);
			free(spare_buf);
			async_buf = spare_buf = NULL;
			ret = -1;
		}
	}
	pthread_mutex_unlock(&buf_lock);
	return ret;
}

void logger_stop_async(void)
{
	pthread_mutex_lock(&buf_lock);
	if (!async_buf) {
		pthread_mutex_unlock(&buf_lock);
		return;
	}
	flusher_stop = true;
	pthread_cond_signal(&flusher_cond);
	pthread_mutex_unlock(&buf_lock);
	pthread_join(flusher, NULL);
	pthread_mutex_lock(&buf_lock);
	flush_locked();
	free(async_buf);
	free(spare_buf);
	async_buf = spare_buf = NULL;
	pthread_mutex_unlock(&buf_lock);
}

void logger_set_level(enum log_level level)
{
	min_level = level;
}

int logger_parse_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

struct line {
	char buf[LINE_BYTES_MAX];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	/* Keep room for the closing "}\n". */
	if (l->len + n > sizeof(l->buf) - 2)
		n = sizeof(l->buf) - 2 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/* Append s as a JSON string: runs of plain bytes are copied whole. */
static void put_escaped(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	put(l, "\"", 1);
	for (;;) {
		const char *run = s;
		unsigned char c;
		while ((c = (unsigned char)*s) >= 0x20 && c != 0x7f &&
		       c != '"' && c != '\\')
			s++;
		if (s > run)
			put(l, run, (size_t)(s - run));
		if (c == '\0')
			break;
		if (c == '"' || c == '\\') {
			char two[2] = {'\\', (char)c};
			put(l, two, 2);
		} else {
			char esc[6] = {'\\', 'u',	  '0',
				       '0',  hex[c >> 4], hex[c & 15]};
			put(l, esc, 6);
		}
		s++;
	}
	put(l, "\"", 1);
}

/* Decimal digits of v into the end of buf; returns where they start. */
static char *dec_digits(char *end, unsigned long long v, unsigned width)
{
	char *p = end;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v || (unsigned)(end - p) < width);
	return p;
}

static void put_num(struct line *l, long long v)
{
	char num[24];
	char *end = num + sizeof(num);
	unsigned long long u =
		v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	char *p = dec_digits(end, u, 1);

	if (v < 0)
		*--p = '-';
	put(l, p, (size_t)(end - p));
}

/* {"ts":"2026-11-26T11:00:00.123Z": the text up to the seconds is made
 * once a second per thread (gmtime_r takes a process-wide lock). */
static void put_head(struct line *l, const struct timespec *ts)
{
	static _Thread_local time_t cached_sec = -1;
	static _Thread_local char cached[32];
	static _Thread_local size_t cached_len;
	char ms[3];

	if (ts->tv_sec != cached_sec) {
		struct tm tm;
		gmtime_r(&ts->tv_sec, &tm);
		int n = snprintf(cached, sizeof(cached),
				 "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.",
				 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
				 tm.tm_hour, tm.tm_min, tm.tm_sec);
		cached_len = n > 0 ? (size_t)n : 0;
		cached_sec = ts->tv_sec;
	}
	put(l, cached, cached_len);
	dec_digits(ms + 3, (unsigned long long)(ts->tv_nsec / 1000000), 3);
	put(l, ms, 3);
	put(l, "Z\"", 2);
}

void log_write(enum log_level level, const char *msg,
	       const struct log_field *fields, size_t n)
{
	struct line l = {.len = 0};
	struct timespec ts;

	if (level < min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	put_head(&l, &ts);
	put(&l, ",\"level\":\"", 10);
	put(&l, level_names[level], strlen(level_names[level]));
	put(&l, "\",\"msg\":", 8);
	put_escaped(&l, msg);
	for (size_t i = 0; i < n; i++) {
		put(&l, ",", 1);
		put_escaped(&l, fields[i].key);
		put(&l, ":", 1);
		if (fields[i].is_num)
			put_num(&l, fields[i].num);
		else if (fields[i].str)
			put_escaped(&l, fields[i].str);
		else
			put(&l, "null", 4);
	}
	l.buf[l.len++] = '}';
	l.buf[l.len++] = '\n';

	pthread_mutex_lock(&buf_lock);
	if (async_buf && level <= LOG_INFO) {
		if (async_len + l.len > LOG_BUFFER_BYTES) {
			/* Both buffers full: wait for the flusher's write,
			 * then write this one here (the order is kept). */
			flush_locked();
		}
		memcpy(async_buf + async_len, l.buf, l.len);
		async_len += l.len;
		/* Half full: the flusher need not wait for its tick. */
		if (async_len >= LOG_BUFFER_BYTES / 2 &&
		    async_len - l.len < LOG_BUFFER_BYTES / 2)
			pthread_cond_signal(&flusher_cond);
	} else {
		flush_locked();
		write_all(l.buf, l.len);
	}
	pthread_mutex_unlock(&buf_lock);
}
