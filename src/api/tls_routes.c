/*
 * tls_routes.c - POST /v1/tls/switch: an operator's switch between the
 * primary and the standby TLS certificate in an incident (api/tls.h,
 * docs/operations.md "Standby certificate").  The switch is made at
 * once, for new connections, then journaled (TLS_CMD_SWITCH, with the
 * operator as its author); the reply carries the entry's seq.
 */
#include "api/internal.h"
#include "api/tls.h"
#include "core/command.h"
#include "core/tlsswitch.h"

#include <jansson.h>
#include <string.h>

#include "banned.h"

/* {"to": "primary" | "standby"}: the role, or 0 with the refusal
 * queued in *reply. */
static int wanted_role(struct request *rq, enum MHD_Result *reply)
{
	json_t *j = api_body_object(rq, API_SMALL_BODY_BYTES_MAX, reply);
	const char *k;
	json_t *x;
	int role = 0;

	if (!j)
		return 0;
	json_object_foreach(j, k, x)
	{
		if (strcmp(k, "to") != 0) {
			/* k lives in j: reply before letting go of it */
			*reply = api_reply_problem(rq, PROBLEM_unknown_field,
						   "the member is to", k, NULL);
			json_decref(j);
			return 0;
		}
		const char *v = json_is_string(x) ? json_string_value(x) : "";
		role = strcmp(v, "primary") == 0   ? TLSSWITCH_PRIMARY
		       : strcmp(v, "standby") == 0 ? TLSSWITCH_STANDBY
						   : 0;
	}
	json_decref(j);
	if (role == 0)
		*reply = api_reply_problem(rq, PROBLEM_invalid_field,
					   "\"primary\" or \"standby\"", "to",
					   NULL);
	return role;
}

static void put_member(struct wbuf *b, const char *name, const char *value)
{
	wbuf_puts(b, name);
	wbuf_put_json_str(b, value, strlen(value));
}

static enum MHD_Result switch_reply(struct request *rq)
{
	const struct tlsswitch *x =
		(const void *)((const u8 *)rq->eng.payload +
			       sizeof(struct command_header));
	struct wbuf b = WBUF_INIT(512);

	put_member(&b, "{\"serving\":", tlsswitch_role_name(x->to));
	put_member(&b, ",\"from\":", tlsswitch_role_name(x->from));
	put_member(&b, ",\"from_serial\":", x->from_serial);
	put_member(&b, ",\"to_serial\":", x->to_serial);
	wbuf_puts(&b, ",\"seq\":");
	wbuf_put_u64(&b, rq->eng.ereq.seq);
	wbuf_puts(&b, ",\"status\":\"switched\"}");
	return api_reply_json(rq, 200, &b);
}

enum MHD_Result tls_route_switch(struct request *rq)
{
	struct api_tls *t = rq->srv->tls;
	enum MHD_Result reply;
	struct tlsswitch x;
	u8 author[32];
	char err[API_TLS_ERR_BYTES];

	if (!t)
		return api_reply_problem(rq, PROBLEM_tls_switch_refused,
					 "the server speaks plain HTTP: no "
					 "certificate to switch",
					 NULL, NULL);
	int to = wanted_role(rq, &reply);
	if (to == 0)
		return reply;
	api_author_of(rq, author);
	int r = api_tls_switch(t, to, author, &x, err, sizeof(err));
	if (r < 0)
		return api_reply_problem(rq, PROBLEM_tls_switch_refused, err,
					 "to", NULL);
	if (r == 0) {
		struct wbuf b = WBUF_INIT(128);
		put_member(&b, "{\"serving\":", tlsswitch_role_name((u8)to));
		wbuf_puts(&b, ",\"status\":\"unchanged\"}");
		return api_reply_json(rq, 200, &b);
	}
	void *ext = api_command(rq, TLS_CMD_SWITCH, sizeof(x), NULL, 0);
	if (!ext)
		return api_reply_problem(rq, PROBLEM_internal_error,
					 "out of memory", NULL, NULL);
	memcpy(ext, &x, sizeof(x));
	return api_submit_command(rq, switch_reply);
}
