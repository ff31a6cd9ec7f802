/*
 * http_allow.c - the outbound allow-list (net/http.h, setting
 * outbound_allow): which addresses the server's outbound calls may
 * connect to.  A connection is judged on the address libcurl is about to
 * open a socket for (http.c's CURLOPT_OPENSOCKETFUNCTION calls
 * http__allow_connect), so the check holds after name resolution, for
 * every address tried and for every redirect: a name that resolves to a
 * public address when asked once and to 127.0.0.1 the next time cannot
 * slip past.  Public addresses always pass; loopback, link-local,
 * unspecified, multicast and private ones pass only when a rule covers
 * them.  The rules are set once before any thread and only read after;
 * the refusal counters are atomic and the last refusal's sentence is
 * kept under a mutex for the metrics page.
 */
#include "net/http.h"
#include "core/parse.h"
#include "net/http_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "banned.h"

enum rule_kind { RULE_NET, RULE_NAME };

struct allow_rule {
	enum rule_kind kind;
	int family; /* AF_INET or AF_INET6 for RULE_NET */
	unsigned char addr[16];
	unsigned bits;
	char name[HTTP_HOST_BYTES_MAX + 1];
	unsigned port; /* 0: any */
};

static const char *const class_names[HTTP_ADDR_CLASS_COUNT] = {
	"loopback", "link_local", "unspecified", "multicast", "private"};

/* Written by http_outbound_allow before any thread; read only after. */
static struct {
	bool on;
	size_t n;
	char text[HTTP_ALLOW_MAX][HTTP_ALLOW_RULE_BYTES];
	const char *ptr[HTTP_ALLOW_MAX];
} allow;

static _Atomic unsigned long long refused_n[HTTP_ADDR_CLASS_COUNT];
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_refusal[HTTP_REFUSED_BYTES];

const char *http_addr_class_name(unsigned i)
{
	return i < HTTP_ADDR_CLASS_COUNT ? class_names[i] : NULL;
}

/* ---- rules --------------------------------------------------------------- */

static bool parse_port(const char *s, unsigned *out)
{
	uint64_t v;
	if (parse_u64(s, 65535, &v) != 0 || v == 0)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* An address literal (IPv6 without brackets) into r. */
static bool parse_addr(const char *s, struct allow_rule *r)
{
	if (inet_pton(AF_INET, s, r->addr) == 1) {
		r->family = AF_INET;
		r->bits = 32;
		return true;
	}
	if (inet_pton(AF_INET6, s, r->addr) == 1) {
		r->family = AF_INET6;
		r->bits = 128;
		return true;
	}
	return false;
}

static int rule_parse(const char *text, struct allow_rule *r, char *err,
		      size_t err_len)
{
	char buf[HTTP_ALLOW_RULE_BYTES];
	const char *why = NULL;

	memset(r, 0, sizeof(*r));
	if (!text || strlen(text) >= sizeof(buf)) {
		why = "too long";
		goto bad;
	}
	snprintf(buf, sizeof(buf), "%s", text);
	char *slash = strchr(buf, '/');
	if (slash) {
		uint64_t bits;
		*slash = '\0';
		r->kind = RULE_NET;
		if (!parse_addr(buf, r) ||
		    parse_u64(slash + 1, r->bits, &bits) != 0) {
			why = "not ADDR/BITS";
			goto bad;
		}
		r->bits = (unsigned)bits;
		return 0;
	}
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		r->kind = RULE_NET;
		if (!close) {
			why = "no closing ']'";
			goto bad;
		}
		*close = '\0';
		if (inet_pton(AF_INET6, buf + 1, r->addr) != 1 ||
		    (close[1] &&
		     (close[1] != ':' || !parse_port(close + 2, &r->port)))) {
			why = "not [IPv6] or [IPv6]:PORT";
			goto bad;
		}
		r->family = AF_INET6;
		r->bits = 128;
		return 0;
	}
	if (parse_addr(buf, r)) {
		r->kind = RULE_NET;
		return 0;
	}
	char *colon = strchr(buf, ':');
	if (colon) {
		*colon = '\0';
		if (!parse_port(colon + 1, &r->port)) {
			why = "the port is not 1..65535";
			goto bad;
		}
	}
	if (parse_addr(buf, r)) {
		r->kind = RULE_NET;
		return 0;
	}
	if (!name_ok(buf)) {
		why = "not an address, a network or a host name";
		goto bad;
	}
	r->kind = RULE_NAME;
	snprintf(r->name, sizeof(r->name), "%s", buf);
	return 0;
bad:
	snprintf(err, err_len,
		 "outbound_allow \"%.200s\": %s (want HOST[:PORT], ADDR[:PORT] "
		 "or ADDR/BITS)",
		 text ? text : "", why);
	return -HTTP_invalid_argument;
}

int http_allow_rule_check(const char *rule, char *err, size_t err_len)
{
	struct allow_rule r;
	return rule_parse(rule, &r, err, err_len);
}

int http_outbound_allow(const char *const *rules, size_t nrules, char *err,
			size_t err_len)
{
	memset(&allow, 0, sizeof(allow));
	if (nrules > HTTP_ALLOW_MAX) {
		snprintf(err, err_len, "outbound_allow: more than %u rules",
			 HTTP_ALLOW_MAX);
		return -HTTP_invalid_argument;
	}
	for (size_t i = 0; i < nrules; i++) {
		int ret = http_allow_rule_check(rules[i], err, err_len);
		if (ret < 0) {
			memset(&allow, 0, sizeof(allow));
			return ret;
		}
		snprintf(allow.text[i], sizeof(allow.text[i]), "%s", rules[i]);
		allow.ptr[i] = allow.text[i];
	}
	allow.n = nrules;
	allow.on = true;
	return 0;
}

/* ---- addresses ----------------------------------------------------------- */

/* The address's family, bytes and port; an IPv4-mapped IPv6 address as
 * IPv4.  False for another family. */
static bool addr_of(const struct sockaddr *sa, int *family,
		    unsigned char bytes[16], unsigned *port)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,	   0,
						 0, 0, 0, 0, 0xff, 0xff};
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof(in));
		memcpy(bytes, &in.sin_addr, 4);
		*port = ntohs(in.sin_port);
		*family = AF_INET;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 in6;
		memcpy(&in6, sa, sizeof(in6));
		*port = ntohs(in6.sin6_port);
		if (memcmp(in6.sin6_addr.s6_addr, mapped, 12) == 0) {
			memcpy(bytes, in6.sin6_addr.s6_addr + 12, 4);
			*family = AF_INET;
		} else {
			memcpy(bytes, in6.sin6_addr.s6_addr, 16);
			*family = AF_INET6;
		}
		return true;
	}
	return false;
}

static int class4(const unsigned char *a)
{
	if (a[0] == 0)
		return 2;
	if (a[0] == 127)
		return 0;
	if (a[0] == 169 && a[1] == 254)
		return 1;
	if (a[0] >= 224 && a[0] <= 239)
		return 3;
	/* RFC 1918, shared address space (100.64/10), IETF protocol
	 * assignments (192.0.0/24), benchmarking (198.18/15), reserved. */
	if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	    (a[0] == 192 && a[1] == 168) ||
	    (a[0] == 100 && (a[1] & 0xc0) == 64) ||
	    (a[0] == 192 && a[1] == 0 && a[2] == 0) ||
	    (a[0] == 198 && (a[1] & 0xfe) == 18) || a[0] >= 240)
		return 4;
	return -1;
}

static int class6(const unsigned char *a)
{
	static const unsigned char zero[16];
	static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};
	if (memcmp(a, zero, 15) == 0)
		return a[15] == 0 ? 2 : a[15] == 1 ? 0 : -1;
	/* IPv6 forms that carry an IPv4 address a router may reach (the
	 * tenth review's F6): IPv4-compatible ::a.b.c.d, NAT64's
	 * 64:ff9b::/96 and 6to4's 2002::/16 are what that address is;
	 * NAT64's local-use 64:ff9b:1::/48 is private. */
	if (memcmp(a, zero, 12) == 0 || memcmp(a, nat64, 12) == 0)
		return class4(a + 12);
	if (a[0] == 0x20 && a[1] == 0x02)
		return class4(a + 2);
	if (memcmp(a, nat64, 4) == 0 && a[4] == 0 && a[5] == 1)
		return 4;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return 1;
	if (a[0] == 0xff)
		return 3;
	if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0))
		return 4;
	return -1;
}

const char *http_addr_class(const struct sockaddr *sa, unsigned *index)
{
	unsigned char b[16];
	int family, k;
	unsigned port;

	if (!sa || !addr_of(sa, &family, b, &port))
		return NULL;
	k = family == AF_INET ? class4(b) : class6(b);
	if (k < 0)
		return NULL;
	if (index)
		*index = (unsigned)k;
	return class_names[k];
}

static bool prefix_match(const unsigned char *a, const unsigned char *net,
			 unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	if (memcmp(a, net, whole) != 0)
		return false;
	if (!rest)
		return true;
	unsigned char mask = (unsigned char)(0xff00u >> rest);
	return (a[whole] & mask) == (net[whole] & mask);
}

static bool rule_covers(const struct allow_rule *r, const char *host,
			int family, const unsigned char *b, unsigned port)
{
	if (r->port && r->port != port)
		return false;
	if (r->kind == RULE_NAME)
		return host && strcasecmp(host, r->name) == 0;
	return r->family == family && prefix_match(b, r->addr, r->bits);
}

int http_allow_judge(const char *const *rules, size_t nrules, const char *host,
		     const struct sockaddr *sa, char *why, size_t why_len)
{
	unsigned char b[16];
	char text[INET6_ADDRSTRLEN];
	int family;
	unsigned port, k;

	if (why_len)
		why[0] = '\0';
	if (!sa || !addr_of(sa, &family, b, &port))
		return 0; /* not IP: libcurl only opens IP sockets */
	const char *cls = http_addr_class(sa, &k);
	if (!cls)
		return 0;
	for (size_t i = 0; i < nrules; i++) {
		struct allow_rule r;
		char err[8];
		if (rule_parse(rules[i], &r, err, sizeof(err)) == 0 &&
		    rule_covers(&r, host, family, b, port))
			return 0;
	}
	inet_ntop(family, b, text, sizeof(text));
	snprintf(why, why_len,
		 "%.255s (%s%s%s:%u) is %s; no outbound_allow rule covers it",
		 host && host[0] ? host : "?", family == AF_INET6 ? "[" : "",
		 text, family == AF_INET6 ? "]" : "", port, cls);
	return -HTTP_outbound_refused;
}

void http_outbound_refusals(unsigned long long *counts, char *last,
			    size_t last_len)
{
	for (unsigned i = 0; i < HTTP_ADDR_CLASS_COUNT; i++)
		counts[i] = atomic_load(&refused_n[i]);
	if (last && last_len) {
		pthread_mutex_lock(&last_lock);
		snprintf(last, last_len, "%s", last_refusal);
		pthread_mutex_unlock(&last_lock);
	}
}

int http__allow_connect(const char *host, const struct sockaddr *sa, char *why,
			size_t why_len)
{
	if (!allow.on)
		return 0;
	int ret = http_allow_judge(allow.ptr, allow.n, host, sa, why, why_len);
	if (ret < 0) {
		unsigned k = 0;
		(void)http_addr_class(sa, &k);
		atomic_fetch_add(&refused_n[k], 1);
		pthread_mutex_lock(&last_lock);
		snprintf(last_refusal, sizeof(last_refusal), "%s", why);
		pthread_mutex_unlock(&last_lock);
	}
	return ret;
}
