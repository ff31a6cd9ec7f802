/*
 * cdcsink_nats.c - the NATS JetStream half of cdcsink.h, on libnats.
 *
 * Messages are published asynchronously (js_PublishMsgAsync) in chunks,
 * each chunk then waited for (js_PublishAsyncComplete): JetStream answers
 * every publish with an acknowledgement once the stream holds it, or an
 * error, which libnats hands to the error callback below on its own
 * thread.  Any error, or the deadline, fails the whole batch and the
 * caller sends it again on a new connection; the Nats-Msg-Id header (the
 * event id) lets the stream drop the copies it already holds, within
 * its duplicate window (2 minutes by default).  libnats's own reconnection
 * is off: the caller reconnects with its backoff, so a dead broker shows
 * as an error rather than as a publish that waits.
 */
#include "net/cdcsink.h"

#include <errno.h>
#include <nats/nats.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define CHUNK 512u

struct nats_sink {
	struct cdc_sink base; /* first: cdcsink.c reads the kind */
	natsConnection *nc;
	jsCtx *js;
	char subject[CDC_SINK_NAME_BYTES];
	/* Set by the error callback (libnats's thread), read after a chunk
	 * completed: the first failed publish's status and JetStream code. */
	atomic_int failed_status;
	atomic_int failed_code;
};

static void on_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	struct nats_sink *s = closure;
	int zero = 0;

	(void)js;
	if (atomic_compare_exchange_strong(&s->failed_status, &zero,
					   (int)pae->Err ? (int)pae->Err : -1))
		atomic_store(&s->failed_code, (int)pae->ErrCode);
}

static int failed(natsStatus st, const char *what, char *err, size_t n)
{
	const char *why = nats_GetLastError(NULL);
	snprintf(err, n, "%s: %s%s%s", what, natsStatus_GetText(st),
		 why && why[0] ? ": " : "", why ? why : "");
	return st == NATS_NOT_PERMITTED || st == NATS_CONNECTION_AUTH_FAILED
		       ? -EACCES
		       : -ECONNRESET;
}

/* The stream exists (with whatever configuration it has), or is made
 * with subjects "<subject>.>" on file storage. */
static int ensure_stream(struct nats_sink *s, const struct cdc_sink_url *u,
			 char *err, size_t n)
{
	jsStreamInfo *si = NULL;
	jsErrCode code = 0;
	natsStatus st = js_GetStreamInfo(&si, s->js, u->stream, NULL, &code);

	if (st == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (st != NATS_NOT_FOUND && code != JSStreamNotFoundErr)
		return failed(st, "stream info", err, n);
	char wild[CDC_SINK_NAME_BYTES + 4];
	snprintf(wild, sizeof(wild), "%s.>", u->subject);
	const char *subjects[1] = {wild};
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = u->stream;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	st = js_AddStream(&si, s->js, &cfg, NULL, &code);
	if (st != NATS_OK)
		return failed(st, "add stream", err, n);
	jsStreamInfo_Destroy(si);
	return 0;
}

int cdcsink__nats_open(struct cdc_sink **out, const struct cdc_sink_url *u,
		       const char *password, u32 timeout_ms, char *err,
		       size_t err_bytes)
{
	struct nats_sink *s = calloc(1, sizeof(*s));
	natsOptions *o = NULL;
	natsStatus st;
	int ret = -ENOMEM;
	char url[CDC_SINK_NAME_BYTES + 32];

	*out = NULL;
	if (!s || natsOptions_Create(&o) != NATS_OK) {
		snprintf(err, err_bytes, "out of memory");
		goto fail;
	}
	s->base.kind = CDC_SINK_NATS;
	snprintf(s->subject, sizeof(s->subject), "%s", u->subject);
	snprintf(url, sizeof(url), "nats://%s:%u", u->host, u->port);
	st = natsOptions_SetURL(o, url);
	if (st == NATS_OK)
		st = natsOptions_SetTimeout(o, timeout_ms);
	if (st == NATS_OK)
		st = natsOptions_SetAllowReconnect(o, false);
	if (st == NATS_OK && u->user[0])
		st = natsOptions_SetUserInfo(o, u->user,
					     password ? password : "");
	if (st == NATS_OK)
		st = natsConnection_Connect(&s->nc, o);
	if (st != NATS_OK) {
		ret = failed(st, url, err, err_bytes);
		goto fail;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = timeout_ms;
	jo.PublishAsync.MaxPending = CHUNK;
	jo.PublishAsync.StallWait = timeout_ms;
	jo.PublishAsync.ErrHandler = on_error;
	jo.PublishAsync.ErrHandlerClosure = s;
	st = natsConnection_JetStream(&s->js, s->nc, &jo);
	if (st != NATS_OK) {
		ret = failed(st, "jetstream", err, err_bytes);
		goto fail;
	}
	if ((ret = ensure_stream(s, u, err, err_bytes)) < 0)
		goto fail;
	natsOptions_Destroy(o);
	*out = &s->base;
	return 0;
fail:
	if (o)
		natsOptions_Destroy(o);
	cdcsink__nats_close(s ? &s->base : NULL);
	return ret;
}

int cdcsink__nats_publish(struct cdc_sink *base, const struct cdc_msg *m, u32 n,
			  u32 timeout_ms, char *err, size_t err_bytes)
{
	struct nats_sink *s = (struct nats_sink *)(void *)base;
	char subj[2 * CDC_SINK_NAME_BYTES];
	natsStatus st = NATS_OK;

	atomic_store(&s->failed_status, 0);
	for (u32 at = 0; at < n && st == NATS_OK; at += CHUNK) {
		u32 k = n - at < CHUNK ? n - at : CHUNK;
		for (u32 i = 0; i < k && st == NATS_OK; i++) {
			const struct cdc_msg *x = &m[at + i];
			natsMsg *msg = NULL;
			snprintf(subj, sizeof(subj), "%s.%s", s->subject,
				 x->type);
			st = natsMsg_Create(&msg, subj, NULL, x->body,
					    (int)x->body_bytes);
			if (st == NATS_OK)
				st = natsMsgHeader_Set(msg, "Nats-Msg-Id",
						       x->id);
			if (st == NATS_OK)
				st = js_PublishMsgAsync(s->js, &msg, NULL);
			/* Still ours when the publish did not take it. */
			natsMsg_Destroy(msg);
		}
		if (st != NATS_OK)
			break;
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = timeout_ms;
		st = js_PublishAsyncComplete(s->js, &po);
		if (atomic_load(&s->failed_status) != 0)
			break;
	}
	int fs = atomic_load(&s->failed_status);
	if (st == NATS_OK && fs == 0)
		return 0;
	natsMsgList pending;
	if (js_PublishAsyncGetPendingList(&pending, s->js) == NATS_OK)
		natsMsgList_Destroy(&pending);
	if (fs != 0) {
		snprintf(err, err_bytes, "publish refused: %s (JetStream %d)",
			 fs > 0 ? natsStatus_GetText((natsStatus)fs) : "error",
			 atomic_load(&s->failed_code));
		return -EPROTO;
	}
	return failed(st, "publish", err, err_bytes);
}

void cdcsink__nats_close(struct cdc_sink *base)
{
	struct nats_sink *s = (struct nats_sink *)(void *)base;

	if (!s)
		return;
	if (s->js)
		jsCtx_Destroy(s->js);
	if (s->nc) {
		natsConnection_Close(s->nc);
		natsConnection_Destroy(s->nc);
	}
	free(s);
}
