/*
 * logger.c - JSON-lines logging (see logger.h).
 */
#include "engine/logger.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

#define LINE_BYTES_MAX 4096

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
	ssize_t w = write(STDERR_FILENO, l.buf, l.len);
	(void)w;
}
