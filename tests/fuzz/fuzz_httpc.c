/*
 * fuzz_httpc.c - libFuzzer harness for the HTTP/1.1 response parser of
 * the client commands (httpc_parser_* in src/cli/httpc.c, compiled into
 * this harness because the fuzz library leaves src/cli out, as
 * fuzz_config.c does).
 *
 * Input: one byte of options, then the bytes a server sent.
 *   bit 0     the request was HEAD (no body may be read)
 *   bits 1-2  the body cap: 16, 256, 4096 or 1 MiB bytes
 *   bits 3-7  a split step: the bytes are fed in pieces of 1..32 bytes
 * Properties:
 *   - the parser never crashes nor reads out of bounds;
 *   - fed whole or in pieces, it reaches the same verdict, status, media
 *     type and body (the framing does not depend on how TCP cut it);
 *   - an accepted body is within the cap, NUL-terminated, NULL when
 *     empty, and empty for HEAD, 204 and 304;
 *   - once failed it stays failed, and once done more input is ignored.
 *
 * Built by `make fuzz` (build/fuzz/fuzz_httpc); run:
 *   build/fuzz/fuzz_httpc -dict=tests/fuzz/httpc.dict \
 *     build/fuzz/corpus-fuzz_httpc tests/fuzz/corpus/httpc
 */
#include "cli/httpc.c"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_httpc: %s failed (line %d)\n",   \
				#cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

struct verdict {
	int ret;
	struct httpc_response resp;
};

static void run(const char *in, size_t len, bool head, size_t cap, size_t step,
		struct verdict *v)
{
	struct httpc_parser p;
	size_t off = 0, used = 0;
	int r = 0;

	httpc_parser_init(&p, head, cap);
	memset(v, 0, sizeof(*v));
	while (off < len && r == 0) {
		size_t n = step && len - off > step ? step : len - off;
		r = httpc_parser_feed(&p, in + off, n, &used);
		if (r == 1)
			CHECK(used <= n);
		else if (r == 0)
			CHECK(used == n);
		off += n;
	}
	if (r == 0)
		r = httpc_parser_eof(&p);
	if (r < 0) {
		/* failed stays failed */
		CHECK(httpc_parser_feed(&p, "x", 1, NULL) == r);
		CHECK(httpc_parser_eof(&p) == r);
		CHECK(httpc_err_name(r) != NULL);
		httpc_parser_clear(&p);
	} else {
		CHECK(r == 1);
		/* done ignores what follows */
		CHECK(httpc_parser_feed(&p, "HTTP/1.1 200 OK\r\n", 17, &used) ==
			      1 &&
		      used == 0);
		httpc_parser_take(&p, &v->resp);
		httpc_parser_clear(&p);
	}
	v->ret = r;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const size_t caps[4] = {16, 256, 4096, 1u << 20};
	struct verdict whole, split;
	bool head;
	size_t cap, step;

	if (size < 1 || size > (1u << 20))
		return 0;
	head = data[0] & 1;
	cap = caps[(data[0] >> 1) & 3];
	step = (size_t)(data[0] >> 3) + 1;

	run((const char *)data + 1, size - 1, head, cap, 0, &whole);
	run((const char *)data + 1, size - 1, head, cap, step, &split);

	CHECK(whole.ret == split.ret);
	if (whole.ret == 1) {
		const struct httpc_response *a = &whole.resp, *b = &split.resp;
		CHECK(a->status == b->status && a->status >= 100 &&
		      a->status <= 599);
		CHECK(a->body_len == b->body_len);
		CHECK(a->body_len <= cap);
		CHECK((a->body == NULL) == (a->body_len == 0));
		CHECK(a->body_len == 0 ||
		      (memcmp(a->body, b->body, a->body_len) == 0 &&
		       a->body[a->body_len] == '\0'));
		CHECK(strcmp(a->content_type, b->content_type) == 0);
		CHECK(strcmp(a->reason, b->reason) == 0);
		if (head || a->status == 204 || a->status == 304)
			CHECK(a->body_len == 0);
	}
	httpc_response_clear(&whole.resp);
	httpc_response_clear(&split.resp);
	return 0;
}
