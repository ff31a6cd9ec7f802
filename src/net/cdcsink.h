/*
 * cdcsink.h - where `tpwallet cdc` publishes change events: a RabbitMQ
 * exchange over AMQP 0.9.1 with publisher confirms (librabbitmq), or a
 * NATS JetStream stream with publish acknowledgements (libnats).
 *
 * A sink URL names the broker and the destination, never a password
 * (a command line shows in ps: the password comes from a file or the
 * environment, docs/cdc.md):
 *
 *   amqp://[USER@]HOST:PORT[/VHOST]?exchange=X[&queue=Q]
 *   nats://[USER@]HOST:PORT?stream=S&subject=P
 *
 * An AMQP event goes to exchange X (declared durable, type topic) with
 * the event's type as routing key, persistent, its id as message_id; with
 * queue=Q a durable queue Q bound to X with "#" is declared too, so that
 * nothing published before a consumer exists is dropped.  A NATS event
 * goes to subject P.<type> of stream S (created with subjects P.> and
 * file storage when absent), with the header Nats-Msg-Id: <event id>, so
 * JetStream drops a republished duplicate within its duplicate window.
 *
 * cdc_sink_publish sends a batch and returns only when the broker
 * confirmed every message of it (0), or failed (negative: the batch must
 * be sent again on a new connection, cdc_sink_close first).  Nothing here
 * retries or sleeps: the caller (cli/cmd_cdc.c) does.  One thread uses a
 * sink at a time.
 */
#ifndef TPW_NET_CDCSINK_H
#define TPW_NET_CDCSINK_H

#include "core/types.h"

#include <stdbool.h>
#include <stddef.h>

#define CDC_SINK_NAME_BYTES 128
#define CDC_SINK_ERR_BYTES  256

enum cdc_sink_kind {
	CDC_SINK_AMQP = 1,
	CDC_SINK_NATS = 2,
};

struct cdc_sink_url {
	enum cdc_sink_kind kind;
	char host[CDC_SINK_NAME_BYTES];
	u16 port;
	char user[CDC_SINK_NAME_BYTES];	 /* "" : none (AMQP: guest) */
	char vhost[CDC_SINK_NAME_BYTES]; /* AMQP; "/" when absent */
	char exchange[CDC_SINK_NAME_BYTES];
	char queue[CDC_SINK_NAME_BYTES]; /* AMQP, optional */
	char stream[CDC_SINK_NAME_BYTES];
	char subject[CDC_SINK_NAME_BYTES];
};

/*
 * Parse a sink URL.  Returns 0, or -EINVAL with err naming the part that
 * is wrong ("scheme", "host", "port", "password", "vhost", "exchange",
 * "stream", "subject", "query") and why.  Names are 1..127 bytes of
 * [A-Za-z0-9._-] (a vhost also '/'; a subject also '.' between tokens,
 * no wildcard).  Pure.
 */
int cdc_sink_url_parse(const char *url, struct cdc_sink_url *out, char *err,
		       size_t err_bytes);

/* The URL again, for messages and the state file (it holds no secret). */
void cdc_sink_url_format(const struct cdc_sink_url *u, char *out, size_t n);

/* One event to publish: routing key / subject suffix, dedup id, body. */
struct cdc_msg {
	const char *type;
	const char *id;
	const char *body;
	size_t body_bytes;
};

/* Each kind's sink starts with this (the halves below own the rest). */
struct cdc_sink {
	enum cdc_sink_kind kind;
};

/* Connect, log in (password may be NULL: AMQP then uses "guest"),
 * declare the destination and turn confirms on, within timeout_ms.
 * Returns 0 or a negative errno with err saying what failed (refused
 * credentials say so). */
int cdc_sink_open(struct cdc_sink **out, const struct cdc_sink_url *u,
		  const char *password, u32 timeout_ms, char *err,
		  size_t err_bytes);
/* Publish m[0..n) in order and wait for the broker's confirmation of
 * all of them, at most timeout_ms.  0, or a negative errno with err. */
int cdc_sink_publish(struct cdc_sink *s, const struct cdc_msg *m, u32 n,
		     u32 timeout_ms, char *err, size_t err_bytes);
void cdc_sink_close(struct cdc_sink *s);

/* The broker kinds' halves (cdcsink_amqp.c, cdcsink_nats.c). */
int cdcsink__amqp_open(struct cdc_sink **out, const struct cdc_sink_url *u,
		       const char *password, u32 timeout_ms, char *err,
		       size_t err_bytes);
int cdcsink__amqp_publish(struct cdc_sink *s, const struct cdc_msg *m, u32 n,
			  u32 timeout_ms, char *err, size_t err_bytes);
void cdcsink__amqp_close(struct cdc_sink *s);
int cdcsink__nats_open(struct cdc_sink **out, const struct cdc_sink_url *u,
		       const char *password, u32 timeout_ms, char *err,
		       size_t err_bytes);
int cdcsink__nats_publish(struct cdc_sink *s, const struct cdc_msg *m, u32 n,
			  u32 timeout_ms, char *err, size_t err_bytes);
void cdcsink__nats_close(struct cdc_sink *s);

#endif
