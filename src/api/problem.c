/*
 * problem.c - the RFC 9457 problem table and writer (see problem.h).
 */
#include "api/problem.h"

#include <string.h>

#include "banned.h"

static const struct {
	const char *slug;
	const char *title;
	unsigned status;
} problems[PROBLEM_COUNT] = {
#define X(name, s, st, t)                                                      \
	[PROBLEM_##name] = {.slug = s, .title = t, .status = st},
	API_PROBLEMS(X)
#undef X
};

unsigned problem_status(enum problem p)
{
	return problems[p].status;
}

const char *problem_slug(enum problem p)
{
	return problems[p].slug;
}

const char *problem_title(enum problem p)
{
	return problems[p].title;
}

static void member(struct wbuf *b, const char *key, const char *val)
{
	if (!val || !*val)
		return;
	wbuf_putc(b, ',');
	wbuf_puts(b, key);
	wbuf_put_json_str(b, val, strlen(val));
}

void problem_write(struct wbuf *b, enum problem p, const char *detail,
		   const char *instance, const char *field)
{
	wbuf_puts(b, "{\"type\":\"/problems/");
	wbuf_puts(b, problems[p].slug);
	wbuf_puts(b, "\",\"title\":");
	wbuf_put_json_str(b, problems[p].title, strlen(problems[p].title));
	wbuf_puts(b, ",\"status\":");
	wbuf_put_u64(b, problems[p].status);
	member(b, "\"detail\":", detail);
	member(b, "\"instance\":", instance);
	member(b, "\"field\":", field);
	wbuf_puts(b, "}");
}

int problem_slug_find(const char *doc, size_t len,
		      char out[PROBLEM_SLUG_BYTES_MAX])
{
	static const char pat[] = "\"type\":\"/problems/";
	const size_t pl = sizeof(pat) - 1;
	const char *at = doc ? memmem(doc, len, pat, pl) : NULL;

	out[0] = '\0';
	if (!at)
		return -1;
	const char *v = at + pl;
	size_t left = len - (size_t)(v - doc), n = 0;
	while (n < left && n < PROBLEM_SLUG_BYTES_MAX &&
	       ((v[n] >= 'a' && v[n] <= 'z') || (v[n] >= '0' && v[n] <= '9') ||
		v[n] == '-'))
		n++;
	if (n == 0 || n >= PROBLEM_SLUG_BYTES_MAX || n >= left || v[n] != '"')
		return -1;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}
