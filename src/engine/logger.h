/*
 * logger.h - structured logs: one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-26T11:00:00.123Z","level":"info","msg":"listening",
 *    "listen":"127.0.0.1:8080"}
 *
 * Values are escaped; callers never build JSON by hand.  Never pass a
 * secret, token, card number or request body as a field: logs are read by
 * more people than the data is.  Thread-safe; lines are never interleaved.
 */
#ifndef TPW_ENGINE_LOGGER_H
#define TPW_ENGINE_LOGGER_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

struct log_field {
	const char *key;
	const char *str; /* used when is_num == 0; NULL renders as null */
	long long num;
	int is_num;
};

#define LOG_STR(k, v) ((struct log_field){.key = (k), .str = (v)})
#define LOG_NUM(k, v)                                                          \
	((struct log_field){.key = (k), .num = (long long)(v), .is_num = 1})

/* Lines below min_level are dropped.  Default: LOG_INFO. */
void logger_set_level(enum log_level min_level);
/* Parse "debug", "info", "warn", "error"; returns -1 if unknown. */
int logger_parse_level(const char *name);

/* Buffer debug and info lines and write them every 50 ms from a flusher
 * thread (servers); warnings and errors are never delayed.  Returns 0, or
 * -1 (logging stays synchronous).  logger_stop_async() writes what is
 * buffered and stops the thread. */
int logger_start_async(void);
void logger_stop_async(void);

void log_write(enum log_level level, const char *msg,
	       const struct log_field *fields, size_t n);

#define LOG_FIELDS_(...) ((const struct log_field[]){__VA_ARGS__})
#define LOG_COUNT_(...)                                                        \
	(sizeof(LOG_FIELDS_(__VA_ARGS__)) / sizeof(struct log_field))
/* log_at(LOG_INFO, "msg", LOG_STR("k", v), LOG_NUM("n", 3)); at least one
 * field; use log_write(level, msg, NULL, 0) for none. */
#define log_at(level, msg, ...)                                                \
	log_write((level), (msg), LOG_FIELDS_(__VA_ARGS__),                    \
		  LOG_COUNT_(__VA_ARGS__))

#endif
