/*
 * fuzz_acq_reply.c - libFuzzer harness for the reading of an acquirer's
 * answer (engine/acq_proto.h, acq_proto_read; docs/acquirer.md "The
 * protocol").  The first input byte picks the exchange's transport
 * result and status from a table, and whether it was a query; the rest
 * is the body.  Checks:
 *   - the outcome is one of ACQ_OUTCOMES, and a verdict (approved,
 *     declined) comes only from a 200 whose body names the key, the
 *     amount and the currency that were asked;
 *   - a 426 is version_refused, a 5xx server_error, a transport failure
 *     never a verdict, "unknown" only for a query's 404;
 *   - the texts kept are NUL-terminated and printable.
 *
 * Build and run (see Makefile: make fuzz):
 *   build/fuzz/fuzz_acq_reply -dict=tests/fuzz/acq_reply.dict \
 *     tests/fuzz/corpus/acq_reply
 */
#include "engine/acq_proto.h"
#include "net/http.h"

#include <string.h>

#include "fuzz_check.h"

#include "banned.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void printable(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	CHECK(n < cap);
	for (size_t i = 0; i < n; i++)
		CHECK(s[i] >= 0x20 && s[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const struct {
		int err, status;
	} ex[] = {{0, 200},
		  {0, 404},
		  {0, 426},
		  {0, 409},
		  {0, 400},
		  {0, 503},
		  {0, 500},
		  {0, 302},
		  {-HTTP_timeout, 0},
		  {-HTTP_connect, 0},
		  {-HTTP_truncated, 0},
		  {0, 201}};
	struct acq_answer a;

	if (size < 1)
		return 0;
	unsigned pick = data[0] % (sizeof(ex) / sizeof(ex[0]));
	struct acq_asked asked = {.key = "tpw-0123456789abcdef0123456789abcdef",
				  .amount = 1000,
				  .currency = "EUR",
				  .query = (data[0] & 0x80) != 0};
	acq_proto_read(&asked, ex[pick].err, ex[pick].status,
		       (const char *)data + 1, size - 1, &a);
	CHECK((unsigned)a.outcome < ACQ_OUT_COUNT);
	if (a.outcome == ACQ_OUT_approved || a.outcome == ACQ_OUT_declined) {
		CHECK(ex[pick].err == 0 && ex[pick].status == 200);
		/* The body names what was asked. */
		CHECK(memmem(data + 1, size - 1, "1000", 4) != NULL);
		CHECK(memmem(data + 1, size - 1, "EUR", 3) != NULL);
		CHECK(memmem(data + 1, size - 1, asked.key,
			     strlen(asked.key)) != NULL);
	}
	if (ex[pick].err)
		CHECK(a.outcome == ACQ_OUT_timeout ||
		      a.outcome == ACQ_OUT_transport);
	else if (ex[pick].status == 426)
		CHECK(a.outcome == ACQ_OUT_version_refused);
	else if (ex[pick].status >= 500)
		CHECK(a.outcome == ACQ_OUT_server_error);
	if (a.outcome == ACQ_OUT_unknown)
		CHECK(asked.query && ex[pick].status == 404);
	printable(a.acquirer_ref, sizeof(a.acquirer_ref));
	printable(a.minimum, sizeof(a.minimum));
	CHECK(strnlen(a.detail, sizeof(a.detail)) < sizeof(a.detail));
	return 0;
}
