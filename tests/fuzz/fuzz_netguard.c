/*
 * fuzz_netguard.c - libFuzzer harness for the parsers of api/netguard.h:
 * the trusted_proxies CIDR list, X-Forwarded-For, a single address, and
 * the framing checks of a request target and of header fields.
 *
 * The first byte picks the parser, the rest is its input.  Asserts what
 * the server relies on: a parsed CIDR has a prefix of at most 128 and
 * no host bits, and matches its own network; a forwarded client is never
 * one of the trusted proxies; an address formats and parses back to
 * itself; an accepted target or field has no NUL or control byte; the
 * framing verdict refuses two Content-Lengths and Content-Length beside
 * Transfer-Encoding whatever else comes.
 */
#include "api/netguard.h"

#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define INPUT_BYTES_MAX 4096

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_addr_round_trip(const struct netguard_addr *a)
{
	struct netguard_addr back;
	char text[46];

	netguard_addr_format(a, text);
	if (netguard_addr_parse(text, strlen(text), &back) != 0 ||
	    memcmp(back.b, a->b, 16) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char buf[INPUT_BYTES_MAX + 1];
	struct netguard_cidr c[NETGUARD_PROXIES_MAX], proxies[4];
	struct netguard_addr a;
	size_t n, np;

	if (size < 1 || size > INPUT_BYTES_MAX)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	size--;
	switch (data[0] % 4) {
	case 0:
		if (netguard_cidrs_parse(buf, c, NETGUARD_PROXIES_MAX, &n) != 0)
			break;
		if (n > NETGUARD_PROXIES_MAX)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (c[i].prefix > 128 ||
			    !netguard_cidrs_match(&c[i], 1, &c[i].net))
				abort();
			check_addr_round_trip(&c[i].net);
		}
		break;
	case 1:
		if (netguard_cidrs_parse("10.0.0.0/8, 127.0.0.1, ::1/128, "
					 "2001:db8::/32",
					 proxies, 4, &np) != 0)
			abort();
		if (netguard_forwarded_client(buf, size, proxies, np, &a) ==
		    0) {
			if (netguard_cidrs_match(proxies, np, &a))
				abort();
			check_addr_round_trip(&a);
		}
		break;
	case 2:
		if (netguard_addr_parse(buf, size, &a) == 0)
			check_addr_round_trip(&a);
		if (netguard_target_ok(buf))
			for (size_t i = 0; buf[i]; i++)
				if ((unsigned char)buf[i] <= 0x20 ||
				    (unsigned char)buf[i] >= 0x7f)
					abort();
		break;
	default: {
		/* data+1 as "name:value" lines, NULs kept (lengths given). */
		struct netguard_framing f = {0};
		const char *p = (const char *)data + 1, *end = p + size;
		unsigned cls = 0, tes = 0;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			const char *colon = memchr(p, ':', (size_t)(le - p));
			if (colon) {
				size_t nlen = (size_t)(colon - p);
				size_t vlen = (size_t)(le - colon - 1);
				if (netguard_field_ok(p, nlen, colon + 1,
						      vlen) &&
				    (memchr(p, '\0', nlen) ||
				     memchr(colon + 1, '\0', vlen)))
					abort();
				if (nlen == 14 &&
				    strncmp(p, "Content-Length", 14) == 0)
					cls++;
				if (nlen == 17 &&
				    strncmp(p, "Transfer-Encoding", 17) == 0)
					tes++;
				netguard_framing_add(&f, p, nlen, colon + 1,
						     vlen);
			}
			p = nl ? nl + 1 : end;
		}
		if (netguard_framing_ok(&f) && (cls > 1 || (cls && tes)))
			abort();
		break;
	}
	}
	return 0;
}
