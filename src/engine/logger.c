/*
 * logger.c - JSON-lines logging (see logger.h).
 *
 * Synchronous by default: one write(2) per line.  A server calls
 * logger_start_async(): debug and info lines (one per request) then go to a
 * shared buffer that a flusher thread writes every LOG_FLUSH_MS, so tens of
 * thousands of requests a second cost tens of system calls, not tens of
 * thousands.  Warnings and errors still go out at once, after whatever is
 * buffered, so the order of lines is kept.  The price: on kill -9, up to
 * LOG_FLUSH_MS of request lines can be lost; never a warning or an error.
 */
#include "engine/logger.h"

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
static char *async_buf; /* non-NULL while async */
static size_t async_len;
static bool flusher_stop;
static pthread_t flusher;

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

/* Caller holds buf_lock. */
static void flush_locked(void)
{
	if (async_len) {
		write_all(async_buf, async_len);
		async_len = 0;
	}
}

static void flusher_cond_init(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&flusher_cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void *flusher_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&buf_lock);
	while (!flusher_stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += LOG_FLUSH_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&flusher_cond, &buf_lock, &until);
		flush_locked();
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
		flusher_stop = false;
		if (!async_buf ||
		    pthread_create(&flusher, NULL, flusher_main, NULL) != 0) {
			free(async_buf);
			async_buf = NULL;
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
	async_buf = NULL;
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

static void put_escaped(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	put(l, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
		if (c == '"' || c == '\\') {
			char two[2] = {'\\', (char)c};
			put(l, two, 2);
		} else if (c < 0x20 || c == 0x7f) {
			put(l, esc, 6);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
	put(l, "\"", 1);
}

void log_write(enum log_level level, const char *msg,
	       const struct log_field *fields, size_t n)
{
	struct line l = {.len = 0};
	struct timespec ts;
	struct tm tm;
	char head[64];

	if (level < min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int hn = snprintf(head, sizeof(head),
			  "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
			  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			  tm.tm_hour, tm.tm_min, tm.tm_sec,
			  ts.tv_nsec / 1000000);
	put(&l, head, (size_t)hn);
	put(&l, ",\"level\":\"", 10);
	put(&l, level_names[level], strlen(level_names[level]));
	put(&l, "\",\"msg\":", 8);
	put_escaped(&l, msg);
	for (size_t i = 0; i < n; i++) {
		put(&l, ",", 1);
		put_escaped(&l, fields[i].key);
		put(&l, ":", 1);
		if (fields[i].is_num) {
			char num[32];
			int k = snprintf(num, sizeof(num), "%lld",
					 fields[i].num);
			put(&l, num, (size_t)k);
		} else if (fields[i].str) {
			put_escaped(&l, fields[i].str);
		} else {
			put(&l, "null", 4);
		}
	}
	l.buf[l.len++] = '}';
	l.buf[l.len++] = '\n';

	pthread_mutex_lock(&buf_lock);
	if (async_buf && level <= LOG_INFO) {
		if (async_len + l.len > LOG_BUFFER_BYTES)
			flush_locked();
		memcpy(async_buf + async_len, l.buf, l.len);
		async_len += l.len;
	} else {
		flush_locked();
		write_all(l.buf, l.len);
	}
	pthread_mutex_unlock(&buf_lock);
}
