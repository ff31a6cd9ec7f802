/*
 * cdcsink_amqp.c - the RabbitMQ half of cdcsink.h, on librabbitmq.
 *
 * One connection, channel 1 in confirm mode (confirm.select): the broker
 * numbers the messages published on it 1, 2, 3... and acknowledges them
 * (basic.ack, possibly "multiple": every tag up to it) once it has taken
 * responsibility for them: a persistent message routed to a durable queue
 * is written to disk first.  A batch is sent in chunks of CHUNK messages,
 * each chunk's confirms read before the next chunk goes, so the acks
 * never pile up unread in the socket while we write.  A basic.nack, a
 * closed channel or connection, or the deadline fails the whole batch:
 * the caller sends it again on a new connection (at least once).
 */
#include "net/cdcsink.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "banned.h"

#define CHANNEL 1
#define CHUNK	512u

struct amqp_sink {
	struct cdc_sink base; /* first: cdcsink.c reads the kind */
	amqp_connection_state_t conn;
	char exchange[CDC_SINK_NAME_BYTES];
	u64 next_tag; /* the tag the next publish gets */
	bool healthy; /* open, and no call failed: worth a goodbye */
};

static u64 now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000u + (u64)ts.tv_nsec / 1000000u;
}

static struct timeval tv_of(u32 ms)
{
	return (struct timeval){.tv_sec = ms / 1000,
				.tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

/* Why an RPC failed, in words: the broker's reply code and text for a
 * connection.close or channel.close (403 ACCESS_REFUSED for wrong
 * credentials), else the library's error. */
static int rpc_failed(amqp_rpc_reply_t r, const char *what, char *err, size_t n)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD ||
	     r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)) {
		const amqp_connection_close_t *c = r.reply.decoded;
		const amqp_channel_close_t *ch = r.reply.decoded;
		u16 code = r.reply.id == AMQP_CONNECTION_CLOSE_METHOD
				   ? c->reply_code
				   : ch->reply_code;
		amqp_bytes_t t = r.reply.id == AMQP_CONNECTION_CLOSE_METHOD
					 ? c->reply_text
					 : ch->reply_text;
		snprintf(err, n, "%s: the broker refused: %u %.*s", what, code,
			 (int)(t.len < 160 ? t.len : 160),
			 (const char *)t.bytes);
		return code == 403 ? -EACCES : -EPROTO;
	}
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
		snprintf(err, n, "%s: %s", what,
			 amqp_error_string2(r.library_error));
		return -ECONNRESET;
	}
	snprintf(err, n, "%s: no reply", what);
	return -EPROTO;
}

int cdcsink__amqp_open(struct cdc_sink **out, const struct cdc_sink_url *u,
		       const char *password, u32 timeout_ms, char *err,
		       size_t err_bytes)
{
	struct amqp_sink *s = calloc(1, sizeof(*s));
	struct timeval tv = tv_of(timeout_ms);
	int ret = -ENOMEM;

	*out = NULL;
	if (!s || !(s->conn = amqp_new_connection())) {
		snprintf(err, err_bytes, "out of memory");
		goto fail;
	}
	s->base.kind = CDC_SINK_AMQP;
	snprintf(s->exchange, sizeof(s->exchange), "%s", u->exchange);
	amqp_socket_t *sock = amqp_tcp_socket_new(s->conn);
	if (!sock) {
		snprintf(err, err_bytes, "out of memory");
		goto fail;
	}
	int st = amqp_socket_open_noblock(sock, u->host, u->port, &tv);
	if (st != AMQP_STATUS_OK) {
		snprintf(err, err_bytes, "connect to %s:%u: %s", u->host,
			 u->port, amqp_error_string2(st));
		ret = -ECONNREFUSED;
		goto fail;
	}
	amqp_set_handshake_timeout(s->conn, &tv);
	amqp_set_rpc_timeout(s->conn, &tv);
	ret = rpc_failed(amqp_login(s->conn, u->vhost, 0, 131072, 0,
				    AMQP_SASL_METHOD_PLAIN,
				    u->user[0] ? u->user : "guest",
				    password ? password : "guest"),
			 "login", err, err_bytes);
	if (ret < 0)
		goto fail;
	amqp_channel_open(s->conn, CHANNEL);
	if ((ret = rpc_failed(amqp_get_rpc_reply(s->conn), "channel.open", err,
			      err_bytes)) < 0)
		goto fail;
	amqp_exchange_declare(s->conn, CHANNEL, amqp_cstring_bytes(u->exchange),
			      amqp_cstring_bytes("topic"), 0, 1, 0, 0,
			      amqp_empty_table);
	if ((ret = rpc_failed(amqp_get_rpc_reply(s->conn), "exchange.declare",
			      err, err_bytes)) < 0)
		goto fail;
	if (u->queue[0]) {
		amqp_queue_declare(s->conn, CHANNEL,
				   amqp_cstring_bytes(u->queue), 0, 1, 0, 0,
				   amqp_empty_table);
		if ((ret = rpc_failed(amqp_get_rpc_reply(s->conn),
				      "queue.declare", err, err_bytes)) < 0)
			goto fail;
		amqp_queue_bind(s->conn, CHANNEL, amqp_cstring_bytes(u->queue),
				amqp_cstring_bytes(u->exchange),
				amqp_cstring_bytes("#"), amqp_empty_table);
		if ((ret = rpc_failed(amqp_get_rpc_reply(s->conn), "queue.bind",
				      err, err_bytes)) < 0)
			goto fail;
	}
	amqp_confirm_select(s->conn, CHANNEL);
	if ((ret = rpc_failed(amqp_get_rpc_reply(s->conn), "confirm.select",
			      err, err_bytes)) < 0)
		goto fail;
	s->next_tag = 1;
	s->healthy = true;
	*out = &s->base;
	return 0;
fail:
	cdcsink__amqp_close(s ? &s->base : NULL);
	return ret;
}

/* Wait until every tag below `end` is confirmed (acked holds the tags
 * from `base`), or fail. */
static int wait_confirms(struct amqp_sink *s, u64 base, u64 end, u8 *acked,
			 u64 deadline, char *err, size_t n)
{
	u64 low = base; /* every tag below is confirmed */

	while (low < end) {
		u64 now = now_ms();
		if (now >= deadline) {
			snprintf(err, n,
				 "no confirmation from the broker in time "
				 "(%llu of %llu confirmed)",
				 (unsigned long long)(low - base),
				 (unsigned long long)(end - base));
			return -ETIMEDOUT;
		}
		struct timeval tv = tv_of((u32)(deadline - now));
		amqp_frame_t f;
		int st = amqp_simple_wait_frame_noblock(s->conn, &f, &tv);
		if (st == AMQP_STATUS_TIMEOUT)
			continue;
		if (st != AMQP_STATUS_OK) {
			snprintf(err, n, "waiting for confirms: %s",
				 amqp_error_string2(st));
			return -ECONNRESET;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		amqp_method_number_t id = f.payload.method.id;
		if (id == AMQP_BASIC_ACK_METHOD) {
			const amqp_basic_ack_t *a = f.payload.method.decoded;
			u64 tag = a->delivery_tag;
			if (tag < base || tag >= end)
				continue; /* not this batch's: a stale ack */
			if (a->multiple && tag >= low)
				memset(acked + (low - base), 1, tag + 1 - low);
			else if (!a->multiple)
				acked[tag - base] = 1;
			while (low < end && acked[low - base])
				low++;
		} else if (id == AMQP_BASIC_NACK_METHOD) {
			snprintf(err, n,
				 "the broker refused a message "
				 "(basic.nack)");
			return -EPROTO;
		} else if (id == AMQP_CHANNEL_CLOSE_METHOD ||
			   id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_rpc_reply_t r = {
				.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
				.reply = f.payload.method,
			};
			return rpc_failed(r, "publish", err, n);
		}
	}
	return 0;
}

int cdcsink__amqp_publish(struct cdc_sink *base, const struct cdc_msg *m, u32 n,
			  u32 timeout_ms, char *err, size_t err_bytes)
{
	struct amqp_sink *s = (struct amqp_sink *)(void *)base;
	u64 deadline = now_ms() + timeout_ms;
	u8 acked[CHUNK];

	for (u32 at = 0; at < n; at += CHUNK) {
		u32 k = n - at < CHUNK ? n - at : CHUNK;
		u64 first = s->next_tag;
		memset(acked, 0, sizeof(acked));
		for (u32 i = 0; i < k; i++) {
			const struct cdc_msg *x = &m[at + i];
			amqp_basic_properties_t p = {
				._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
					  AMQP_BASIC_DELIVERY_MODE_FLAG |
					  AMQP_BASIC_MESSAGE_ID_FLAG,
				.content_type =
					amqp_cstring_bytes("application/json"),
				.delivery_mode = AMQP_DELIVERY_PERSISTENT,
				.message_id = amqp_cstring_bytes(x->id),
			};
			amqp_bytes_t body = {
				.len = x->body_bytes,
				.bytes = (void *)(uintptr_t)x->body};
			int st = amqp_basic_publish(
				s->conn, CHANNEL,
				amqp_cstring_bytes(s->exchange),
				amqp_cstring_bytes(x->type), 0, 0, &p, body);
			if (st != AMQP_STATUS_OK) {
				snprintf(err, err_bytes, "publish: %s",
					 amqp_error_string2(st));
				s->healthy = false;
				return -ECONNRESET;
			}
			s->next_tag++;
		}
		int ret = wait_confirms(s, first, s->next_tag, acked, deadline,
					err, err_bytes);
		amqp_maybe_release_buffers(s->conn);
		if (ret < 0) {
			s->healthy = false;
			return ret;
		}
	}
	return 0;
}

void cdcsink__amqp_close(struct cdc_sink *base)
{
	struct amqp_sink *s = (struct amqp_sink *)(void *)base;

	if (!s)
		return;
	if (s->conn) {
		/* A bounded goodbye: the RPC timeout set at open applies. */
		if (s->healthy)
			amqp_connection_close(s->conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(s->conn);
	}
	free(s);
}
