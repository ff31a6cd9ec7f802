/*
 * console_routes.c - the operator's console (docs/console.md): the static
 * files of console/, compiled into the binary (scripts/console-embed.sh
 * writes them as arrays), answered at GET /console (the page) and
 * GET /console/<name>.  They are the same for everyone and hold no datum:
 * the page signs in with a credential the user pastes and reads
 * everything through the public API with it, so these routes need none.
 *
 * Each answer carries the page's security headers (api_reply, rq->page:
 * a Content-Security-Policy allowing only this origin's scripts, styles
 * and fetches, no framing, no referrer, no MIME sniffing), a strong ETag
 * (a hash of the file) and Cache-Control: no-cache, so a browser asks
 * again each time and gets 304 while the binary is the same.
 */
#include "api/internal.h"
#include "api/wbuf.h"

#include <microhttpd.h>
#include <string.h>

#include "console_gen.h"

#include "banned.h"

struct console_file {
	const char *name;
	const char *type;
	const char *etag; /* quoted */
	const unsigned char *data;
	size_t len;
};

static const struct console_file console_files[] = {CONSOLE_FILES};

#define CONSOLE_INDEX "index.html"

static const struct console_file *console_find(const char *name)
{
	for (size_t i = 0; i < sizeof(console_files) / sizeof(console_files[0]);
	     i++)
		if (strcmp(console_files[i].name, name) == 0)
			return &console_files[i];
	return NULL;
}

/* Does If-None-Match name etag (a list of tags, or "*")? */
static bool etag_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag);

	if (!inm)
		return false;
	if (strcmp(inm, "*") == 0)
		return true;
	for (const char *p = strstr(inm, etag); p; p = strstr(p + 1, etag))
		if (p[n] == '\0' || p[n] == ',' || p[n] == ' ')
			return true;
	return false;
}

static enum MHD_Result console_reply(struct request *rq,
				     const struct console_file *f)
{
	struct wbuf b = WBUF_INIT(f->len + 1);
	const char *inm = MHD_lookup_connection_value(
		rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);

	rq->page = true;
	rq->etag = f->etag;
	rq->cache_control = "no-cache";
	if (etag_matches(inm, f->etag))
		return api_reply(rq, 304, &b, f->type, NULL);
	wbuf_put(&b, f->data, f->len);
	return api_reply(rq, 200, &b, f->type, NULL);
}

enum MHD_Result console_route_index(struct request *rq)
{
	const struct console_file *f = console_find(CONSOLE_INDEX);

	if (!f) /* a build without console/index.html */
		return api_reply_problem(rq, PROBLEM_not_found, NULL, NULL,
					 NULL);
	return console_reply(rq, f);
}

enum MHD_Result console_route_file(struct request *rq)
{
	const struct console_file *f = console_find(rq->text_id);

	if (!f)
		return api_reply_problem(rq, PROBLEM_not_found,
					 "no such file of the console", NULL,
					 NULL);
	return console_reply(rq, f);
}
