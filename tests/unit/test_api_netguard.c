/*
 * test_api_netguard.c - the parsers of api/netguard.h: addresses in both
 * families (IPv4 kept mapped), trusted_proxies CIDR lists, the client of
 * an X-Forwarded-For read from the right past trusted proxies, and the
 * framing checks of targets and header fields (RFC 9112).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/netguard.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

static struct netguard_addr addr(const char *s)
{
	struct netguard_addr a;

	assert_int_equal(netguard_addr_parse(s, strlen(s), &a), 0);
	return a;
}

static void addresses_parse_in_both_families(void **state)
{
	struct netguard_addr a, b;
	char text[46];

	(void)state;
	a = addr("192.0.2.7");
	b = addr("::ffff:192.0.2.7");
	assert_memory_equal(a.b, b.b, 16);
	netguard_addr_format(&a, text);
	assert_string_equal(text, "192.0.2.7");
	a = addr("2001:db8::1");
	netguard_addr_format(&a, text);
	assert_string_equal(text, "2001:db8::1");
	static const char *const bad[] = {"",	       "1.2.3",	  "1.2.3.4 ",
					  "[::1]",     "::1%lo",  "1.2.3.4:80",
					  "256.1.1.1", "01.2.3.4"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
			netguard_addr_parse(bad[i], strlen(bad[i]), &a),
			-EINVAL);
	assert_int_equal(netguard_addr_parse("1.2.3.4\0x", 9, &a), -EINVAL);
}

static void cidr_lists_parse_strictly(void **state)
{
	struct netguard_cidr c[NETGUARD_PROXIES_MAX];
	size_t n = 99;
	struct netguard_addr a;

	(void)state;
	assert_int_equal(netguard_cidrs_parse("", c, 16, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(netguard_cidrs_parse(" 10.0.0.0/8 ,::1, 192.0.2.9/24",
					      c, 16, &n),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(c[0].prefix, 104);
	assert_int_equal(c[1].prefix, 128);
	a = addr("192.0.2.200"); /* host bits of the third were dropped */
	assert_true(netguard_cidrs_match(c, n, &a));
	a = addr("10.255.0.1");
	assert_true(netguard_cidrs_match(c, n, &a));
	a = addr("11.0.0.1");
	assert_false(netguard_cidrs_match(c, n, &a));
	a = addr("::2");
	assert_false(netguard_cidrs_match(c, n, &a));
	static const char *const bad[] = {
		"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08",
		"10.0.0.0,",   ",",	 "a.b.c.d",   "10.0.0.0/8 10.0.0.0/8"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(netguard_cidrs_parse(bad[i], c, 16, &n),
				 -EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(netguard_cidrs_parse("1.1.1.1,2.2.2.2", c, 1, &n),
			 -EINVAL);
}

static void forwarded_client_is_read_from_the_right(void **state)
{
	struct netguard_cidr p[4];
	struct netguard_addr a, want;
	size_t n;
	const char *v;

	(void)state;
	assert_int_equal(netguard_cidrs_parse("10.0.0.0/8, ::1", p, 4, &n), 0);
	/* the client may write anything to the left of what proxies add */
	v = "6.6.6.6, 198.51.100.7, 10.0.0.3";
	assert_int_equal(netguard_forwarded_client(v, strlen(v), p, n, &a), 0);
	want = addr("198.51.100.7");
	assert_memory_equal(a.b, want.b, 16);
	v = " 2001:db8::5 ";
	assert_int_equal(netguard_forwarded_client(v, strlen(v), p, n, &a), 0);
	want = addr("2001:db8::5");
	assert_memory_equal(a.b, want.b, 16);
	static const char *const bad[] = {"", "10.0.0.1, ::1",
					  "198.51.100.7, junk", "1.2.3.4,,",
					  "unknown"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(netguard_forwarded_client(
					 bad[i], strlen(bad[i]), p, n, &a),
				 -EINVAL);
	char many[NETGUARD_FORWARDED_ENTRIES_MAX * 10 + 16];
	size_t len = 0;
	for (int i = 0; i <= NETGUARD_FORWARDED_ENTRIES_MAX; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len,
					"10.0.0.%d,", i % 200);
	many[len - 1] = '\0';
	assert_int_equal(netguard_forwarded_client(many, len - 1, p, n, &a),
			 -EINVAL);
}

static void framing_is_one_way_only(void **state)
{
	struct netguard_framing f;

	(void)state;
	assert_true(netguard_target_ok("/v1/accounts/1?x=%41"));
	assert_false(netguard_target_ok("/v1/accounts/1%00/transfers"));
	/* encoded slashes in the path, absolute-form, asterisk-form */
	assert_false(netguard_target_ok("/v1%2Faudit/head"));
	assert_false(netguard_target_ok("/v1/accounts/10%2freceipt"));
	assert_false(netguard_target_ok("/v1/accounts%5C10"));
	assert_true(netguard_target_ok("/v1/revocations/x?iss=a%2Fb"));
	assert_false(netguard_target_ok("http://t/v1/accounts/1"));
	assert_false(netguard_target_ok("*"));
	assert_false(netguard_target_ok("/v1/a\x7f"));
	assert_false(netguard_target_ok("/v1/\xc3\xa9"));
	assert_true(netguard_field_ok("X-A", 3, "a\tb", 3));
	assert_false(netguard_field_ok("X-A", 3, "a\0b", 3));
	assert_false(netguard_field_ok("X-A", 3, "a\rb", 3));
	assert_false(netguard_field_ok("X A", 3, "b", 1));
	assert_false(netguard_field_ok("", 0, "b", 1));

	memset(&f, 0, sizeof(f));
	netguard_framing_add(&f, "content-length", 14, "12", 2);
	assert_true(netguard_framing_ok(&f));
	netguard_framing_add(&f, "Content-Length", 14, "12", 2);
	assert_false(netguard_framing_ok(&f)); /* even when equal */

	memset(&f, 0, sizeof(f));
	netguard_framing_add(&f, "Transfer-Encoding", 17, "Chunked", 7);
	assert_true(netguard_framing_ok(&f));
	netguard_framing_add(&f, "Content-Length", 14, "0", 1);
	assert_false(netguard_framing_ok(&f));

	static const char *const bad_cl[] = {"", "+1", "1 ", "0x10",
					     "123456789012345678901"};
	for (size_t i = 0; i < sizeof(bad_cl) / sizeof(bad_cl[0]); i++) {
		memset(&f, 0, sizeof(f));
		netguard_framing_add(&f, "Content-Length", 14, bad_cl[i],
				     strlen(bad_cl[i]));
		assert_false(netguard_framing_ok(&f));
	}
	memset(&f, 0, sizeof(f));
	netguard_framing_add(&f, "Transfer-Encoding", 17, "gzip, chunked", 13);
	assert_false(netguard_framing_ok(&f));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(addresses_parse_in_both_families),
		cmocka_unit_test(cidr_lists_parse_strictly),
		cmocka_unit_test(forwarded_client_is_read_from_the_right),
		cmocka_unit_test(framing_is_one_way_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
