/*
 * netguard.c - per-connection accounting, per-address and per-principal
 * holds, and non-restarting deadlines (see netguard.h).
 *
 * One mutex guards the list of connections and one open-addressing
 * table (keyed by a SipHash of the key, so a client choosing addresses
 * cannot pile them on one chain) of addresses and principals.  The table
 * has room for four entries per connection allowed; every connection
 * uses at most three (its peer, its forwarded client, its principal), so
 * it never fills.  Nothing is allocated per request: one record per
 * connection, made when it starts.
 */
#include "api/netguard.h"
#include "core/clock.h"
#include "api/framing.h"
#include "api/problem.h"
#include "core/parse.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define KEY_BYTES 33 /* kind, then 16 address or 32 principal bytes */
#define KIND_ADDR 'A'
#define KIND_PRIN 'P'

struct entry {
	u8 key[KEY_BYTES];
	bool used;
	u32 conns; /* connections (peer) or requests in progress (forwarded) */
	size_t held;
};

enum phase { PH_IDLE, PH_HEAD, PH_BODY, PH_BUSY };

struct netguard_conn {
	struct netguard *g;
	struct netguard_conn *prev, *next;
	int fd;
	struct netguard_addr peer;
	bool peer_trusted;
	bool peer_counted;	     /* in its address's entry */
	struct netguard_addr client; /* whose holds: peer, or forwarded */
	bool client_counted;	     /* a forwarded request in progress */
	bool has_principal;
	u8 principal[32];
	enum phase phase;
	u64 phase_ns;
	u64 body_bytes;
	size_t held;
	bool reaped;
	/* The raw bytes as read (framing.h), on the connection's thread. */
	struct framing fr;
	u32 requests; /* request lines libmicrohttpd reported */
};

struct netguard {
	struct netguard_limits l;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t reaper;
	bool stop;
	struct netguard_conn *conns; /* list head */
	struct entry *table;
	size_t cap; /* power of two */
	u8 hash_key[crypto_shorthash_KEYBYTES];
	size_t held;
	struct netguard_stats stats;
	char timeout_reply[512];
	size_t timeout_reply_len;
};

/* A broken count would let a budget leak or underflow: stop, saying
 * where (cheap; on in release builds). */
#define NG_CHECK(cond)                                                         \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "netguard: %s:%d: check failed: %s\n", \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

static u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000u + (u64)ts.tv_nsec;
}

/* ---- parsers ---------------------------------------------------------- */

int netguard_addr_parse(const char *s, size_t len, struct netguard_addr *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in_addr v4;

	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		memset(out->b, 0, 10);
		out->b[10] = out->b[11] = 0xff;
		memcpy(out->b + 12, &v4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->b) == 1)
		return 0;
	return -EINVAL;
}

int netguard_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len,
				struct netguard_addr *out)
{
	if (!sa)
		return -EINVAL;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;
		memset(out->b, 0, 10);
		out->b[10] = out->b[11] = 0xff;
		memcpy(out->b + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		memcpy(out->b, &in6->sin6_addr, 16);
		return 0;
	}
	return -EINVAL;
}

static bool is_mapped(const struct netguard_addr *a)
{
	static const u8 prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(a->b, prefix, 12) == 0;
}

void netguard_addr_format(const struct netguard_addr *a, char out[46])
{
	if (is_mapped(a)) {
		if (!inet_ntop(AF_INET, a->b + 12, out, 46))
			out[0] = '\0';
	} else if (!inet_ntop(AF_INET6, a->b, out, 46)) {
		out[0] = '\0';
	}
}

static void mask(struct netguard_addr *a, unsigned prefix)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
		if (bits >= 8)
			continue;
		a->b[i] &= (u8)(0xff00u >> bits);
	}
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One CIDR in s[0..len): "addr" or "addr/prefix". */
static int cidr_parse(const char *s, size_t len, struct netguard_cidr *out)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	unsigned prefix = 0;
	bool v4;

	if (netguard_addr_parse(s, alen, &out->net) != 0)
		return -EINVAL;
	v4 = memchr(s, ':', alen) == NULL;
	if (!slash) {
		prefix = v4 ? 32 : 128;
	} else {
		if (parse_u32_n(slash + 1, (size_t)(s + len - slash - 1),
				v4 ? 32u : 128u, &prefix) != 0)
			return -EINVAL;
	}
	out->prefix = v4 ? prefix + 96 : prefix;
	mask(&out->net, out->prefix);
	return 0;
}

int netguard_cidrs_parse(const char *text, struct netguard_cidr *out,
			 size_t max, size_t *n)
{
	size_t len = strlen(text), at = 0, k = 0;

	*n = 0;
	if (len > NETGUARD_PROXIES_BYTES_MAX)
		return -EINVAL;
	while (at < len && blank(text[at]))
		at++;
	if (at == len)
		return 0;
	for (;;) {
		size_t start, end;
		while (at < len && blank(text[at]))
			at++;
		start = at;
		while (at < len && text[at] != ',' && !blank(text[at]))
			at++;
		end = at;
		while (at < len && blank(text[at]))
			at++;
		if (end == start || k == max ||
		    cidr_parse(text + start, end - start, &out[k]) != 0)
			return -EINVAL;
		k++;
		if (at == len)
			break;
		if (text[at] != ',')
			return -EINVAL;
		at++;
	}
	*n = k;
	return 0;
}

bool netguard_cidrs_match(const struct netguard_cidr *c, size_t n,
			  const struct netguard_addr *a)
{
	for (size_t i = 0; i < n; i++) {
		struct netguard_addr m = *a;
		mask(&m, c[i].prefix);
		if (memcmp(m.b, c[i].net.b, 16) == 0)
			return true;
	}
	return false;
}

int netguard_forwarded_client(const char *v, size_t len,
			      const struct netguard_cidr *proxies, size_t n,
			      struct netguard_addr *out)
{
	struct netguard_addr a;
	size_t end = len, entries = 0;

	if (len == 0 || len > NETGUARD_FORWARDED_BYTES_MAX)
		return -EINVAL;
	/* From the right: each entry up to the previous comma. */
	for (;;) {
		size_t start = end;
		while (start > 0 && v[start - 1] != ',')
			start--;
		size_t s = start, e = end;
		while (s < e && blank(v[s]))
			s++;
		while (e > s && blank(v[e - 1]))
			e--;
		if (++entries > NETGUARD_FORWARDED_ENTRIES_MAX ||
		    netguard_addr_parse(v + s, e - s, &a) != 0)
			return -EINVAL;
		if (!netguard_cidrs_match(proxies, n, &a)) {
			*out = a;
			return 0;
		}
		if (start == 0)
			return -EINVAL;
		end = start - 1;
	}
}

/* ---- framing ---------------------------------------------------------- */

bool netguard_target_ok(const char *uri)
{
	bool path = true; /* before the '?' */
	if (uri[0] != '/')
		return false; /* origin-form only (no absolute-form, no *) */
	for (const char *p = uri; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f)
			return false;
		if (c == '?')
			path = false;
		if (c == '%' && p[1] == '0' && p[2] == '0')
			return false;
		/* An encoded slash would be routed as a slash once decoded,
		 * past a proxy that matched the path as written. */
		if (path && c == '%' &&
		    ((p[1] == '2' && (p[2] == 'f' || p[2] == 'F')) ||
		     (p[1] == '5' && (p[2] == 'c' || p[2] == 'C'))))
			return false;
	}
	return true;
}

static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

bool netguard_field_ok(const char *name, size_t name_len, const char *value,
		       size_t value_len)
{
	/* One pass each: a NUL is neither a tchar nor a value byte. */
	if (name_len == 0)
		return false;
	for (size_t i = 0; i < name_len; i++)
		if (!tchar((unsigned char)name[i]))
			return false;
	if (!value)
		return value_len == 0;
	for (size_t i = framing_value_run((const u8 *)value, value_len);
	     i < value_len; i++) {
		unsigned char c = (unsigned char)value[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

void netguard_framing_add(struct netguard_framing *f, const char *name,
			  size_t name_len, const char *value, size_t value_len)
{
	static const char cl[] = "content-length", te[] = "transfer-encoding";

	if (name_len == sizeof(cl) - 1 &&
	    strncasecmp(name, cl, name_len) == 0) {
		f->content_lengths++;
		if (value_len == 0 || value_len > 20)
			f->bad = true;
		for (size_t i = 0; i < value_len; i++)
			if (value[i] < '0' || value[i] > '9')
				f->bad = true;
	} else if (name_len == sizeof(te) - 1 &&
		   strncasecmp(name, te, name_len) == 0) {
		f->transfer_encodings++;
		if (value_len != 7 || strncasecmp(value, "chunked", 7) != 0)
			f->bad = true;
	}
}

bool netguard_framing_ok(const struct netguard_framing *f)
{
	return !f->bad && f->content_lengths <= 1 &&
	       f->transfer_encodings <= 1 &&
	       !(f->content_lengths && f->transfer_encodings);
}

/* ---- the raw bytes ---------------------------------------------------- */

/*
 * libmicrohttpd 0.9.75 reads every connection with recv(2) and offers no
 * hook on the bytes it reads, and it is lenient (framing.h).  So the
 * program defines recv itself: the dynamic linker binds libmicrohttpd's
 * calls to this definition (the executable comes first in the lookup),
 * which reads with the system call and, for a socket registered here (a
 * connection of a netguard daemon), hands the bytes to the connection's
 * framing scanner before libmicrohttpd sees them.  Every other socket
 * (the witness client on libcurl) passes straight through.
 *
 * At the first byte that breaks the grammar, what libmicrohttpd gets is
 * cut at the start of the offending line (or at the byte, when the line
 * began in an earlier read) and ended with a CRLF that closes the head;
 * an offending request line is replaced whole by "GET / HTTP/1.1".  The
 * request handler then asks netguard_framing_error and answers 400
 * bad-framing, which closes the connection; nothing after the bad byte
 * is ever given to libmicrohttpd.  A socket numbered past NETGUARD_FDS_MAX
 * is not read strictly (docs/operations.md, "What is not covered").
 */
#define NETGUARD_FDS_MAX 65536
static _Atomic(struct netguard_conn *) fd_conns[NETGUARD_FDS_MAX];

static ssize_t framing_guard(struct netguard_conn *nc, u8 *buf, size_t got,
			     size_t cap)
{
	static const char line_end[] = "\r\n", head_end[] = "\r\n\r\n",
			  stand_in[] = "GET / HTTP/1.1\r\n\r\n";
	const char *end;
	size_t line_at, at, cut, end_len;

	if (nc->fr.state == FRAMING_BAD) {
		/* Refused already: the rest is dropped unread. */
		errno = EAGAIN;
		return -1;
	}
	at = framing_read(&nc->fr, buf, got, &line_at);
	if (at == got)
		return (ssize_t)got;
	cut = line_at != SIZE_MAX ? line_at : at;
	if (nc->fr.bad_in_line)
		end = line_at != SIZE_MAX ? stand_in : head_end;
	else
		end = line_at != SIZE_MAX ? line_end : head_end;
	end_len = strlen(end);
	if (cut + end_len > cap) {
		errno = ECONNRESET;
		return -1;
	}
	memcpy(buf + cut, end, end_len);
	return (ssize_t)(cut + end_len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags);
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	long r = syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
	struct netguard_conn *nc;

	if (r <= 0 || fd < 0 || fd >= NETGUARD_FDS_MAX || (flags & MSG_PEEK))
		return r;
	nc = atomic_load_explicit(&fd_conns[fd], memory_order_acquire);
	if (!nc || nc->g->l.tls)
		return r;
	return framing_guard(nc, buf, (size_t)r, len);
}

/* On a TLS daemon the same scanner reads the plaintext: libmicrohttpd
 * reads it with gnutls_record_recv, bound here the same way as recv
 * above; GnuTLS's own reads of the socket come through recv and pass. */
typedef ssize_t (*record_recv_fn)(gnutls_session_t, void *, size_t);
static _Atomic(record_recv_fn) real_record_recv;

ssize_t gnutls_record_recv(gnutls_session_t session, void *data,
			   size_t data_size)
{
	record_recv_fn real = atomic_load(&real_record_recv);
	struct netguard_conn *nc;
	int rfd = -1, sfd = -1;
	ssize_t r;

	if (!real) {
		void *sym = dlsym(RTLD_NEXT, "gnutls_record_recv");
		if (!sym)
			return GNUTLS_E_INTERNAL_ERROR;
		memcpy(&real, &sym, sizeof(real));
		atomic_store(&real_record_recv, real);
	}
	r = real(session, data, data_size);
	if (r <= 0)
		return r;
	gnutls_transport_get_int2(session, &rfd, &sfd);
	if (rfd < 0 || rfd >= NETGUARD_FDS_MAX)
		return r;
	nc = atomic_load_explicit(&fd_conns[rfd], memory_order_acquire);
	if (!nc || !nc->g->l.tls)
		return r;
	r = framing_guard(nc, data, (size_t)r, data_size);
	if (r < 0)
		return errno == EAGAIN ? GNUTLS_E_AGAIN : GNUTLS_E_PULL_ERROR;
	return r;
}

enum framing_error netguard_framing_error(const struct netguard_conn *nc,
					  u32 request)
{
	if (!nc || nc->fr.state != FRAMING_BAD || nc->fr.bad_request != request)
		return FRAMING_OK;
	return nc->fr.error;
}

u32 netguard_requests(const struct netguard_conn *nc)
{
	return nc ? nc->requests : 0;
}

bool netguard_close_after(const struct netguard_conn *nc)
{
	return nc && nc->fr.state == FRAMING_PASS;
}

/* ---- the table -------------------------------------------------------- */

static size_t slot_of(const struct netguard *g, const u8 key[KEY_BYTES])
{
	u8 h[crypto_shorthash_BYTES];
	u64 x;

	crypto_shorthash(h, key, KEY_BYTES, g->hash_key);
	memcpy(&x, h, sizeof(x));
	return (size_t)x & (g->cap - 1);
}

/* An IPv6 client is counted by its /64, the block one subscriber is
 * usually given: counting each of its 2^64 addresses apart would let one
 * client pass every per-address limit.  IPv4 is counted per address. */
static void key_addr(u8 key[KEY_BYTES], const struct netguard_addr *a)
{
	memset(key, 0, KEY_BYTES);
	key[0] = KIND_ADDR;
	memcpy(key + 1, a->b, is_mapped(a) ? 16 : 8);
}

static void key_prin(u8 key[KEY_BYTES], const u8 root[32])
{
	key[0] = KIND_PRIN;
	memcpy(key + 1, root, 32);
}

/* The entry of key, made when absent (NULL only if the table is full,
 * which the sizing rules out). */
static struct entry *entry_get(struct netguard *g, const u8 key[KEY_BYTES])
{
	size_t i = slot_of(g, key);

	for (size_t probes = 0; probes < g->cap; probes++) {
		struct entry *e = &g->table[i];
		if (!e->used) {
			memcpy(e->key, key, KEY_BYTES);
			e->used = true;
			g->stats.tracked++;
			e->conns = 0;
			e->held = 0;
			return e;
		}
		if (memcmp(e->key, key, KEY_BYTES) == 0)
			return e;
		i = (i + 1) & (g->cap - 1);
	}
	return NULL;
}

static struct entry *entry_find(struct netguard *g, const u8 key[KEY_BYTES])
{
	size_t i = slot_of(g, key);

	for (size_t probes = 0; probes < g->cap; probes++) {
		struct entry *e = &g->table[i];
		if (!e->used)
			return NULL;
		if (memcmp(e->key, key, KEY_BYTES) == 0)
			return e;
		i = (i + 1) & (g->cap - 1);
	}
	return NULL;
}

/* Remove an unused entry (no connection, nothing held): backward-shift
 * deletion keeps every probe sequence unbroken without tombstones. */
static void entry_put(struct netguard *g, struct entry *e)
{
	size_t i = (size_t)(e - g->table), j = i;

	if (e->conns || e->held)
		return;
	e->used = false;
	g->stats.tracked--;
	for (;;) {
		j = (j + 1) & (g->cap - 1);
		struct entry *n = &g->table[j];
		if (!n->used)
			return;
		size_t home = slot_of(g, n->key);
		/* n may move to i when i lies cyclically in [home, j). */
		bool movable = i <= j ? (home <= i || home > j)
				      : (home <= i && home > j);
		if (movable) {
			g->table[i] = *n;
			n->used = false;
			i = j;
		}
	}
}

static void entry_put_key(struct netguard *g, const u8 key[KEY_BYTES])
{
	struct entry *e = entry_find(g, key);

	if (e)
		entry_put(g, e);
}

/* ---- the reaper ------------------------------------------------------- */

static void reap(struct netguard *g, struct netguard_conn *nc, bool reply)
{
	nc->reaped = true;
	if (reply)
		(void)!send(nc->fd, g->timeout_reply, g->timeout_reply_len,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
	/* Write side first, so the reply is followed by a FIN; then the
	 * read side, which wakes libmicrohttpd with an end of file. */
	shutdown(nc->fd, SHUT_WR);
	shutdown(nc->fd, SHUT_RD);
}

static void reap_passed(struct netguard *g, u64 now)
{
	const struct netguard_limits *l = &g->l;

	for (struct netguard_conn *nc = g->conns; nc; nc = nc->next) {
		u64 age = now - nc->phase_ns;
		if (nc->reaped)
			continue;
		switch (nc->phase) {
		case PH_IDLE:
			if (age >= (u64)l->idle_timeout_s * 1000000000u) {
				g->stats.closed_idle++;
				reap(g, nc, false);
			}
			break;
		case PH_HEAD:
			if (age >= (u64)l->header_timeout_s * 1000000000u) {
				g->stats.closed_header++;
				reap(g, nc, true);
			}
			break;
		case PH_BODY: {
			bool slow = age >= (u64)NETGUARD_RATE_GRACE_S *
						    1000000000u &&
				    nc->body_bytes * 1000000000u <
					    (u64)l->body_rate_min_bytes_s * age;
			if (slow ||
			    age >= (u64)l->body_timeout_s * 1000000000u) {
				g->stats.closed_body++;
				reap(g, nc, true);
			}
			break;
		}
		case PH_BUSY: break;
		}
	}
}

static void *reaper_main(void *arg)
{
	struct netguard *g = arg;

	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		struct timespec ts = tpw_deadline_ms(NETGUARD_TICK_MS);
		pthread_cond_timedwait(&g->wake, &g->lock, &ts);
		if (!g->stop)
			reap_passed(g, now_ns());
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* ---- life cycle ------------------------------------------------------- */

struct netguard *netguard_create(const struct netguard_limits *l)
{
	struct netguard *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;
	struct wbuf b = WBUF_INIT(sizeof(g->timeout_reply));
	size_t want;
	int n;

	if (!g)
		return NULL;
	g->l = *l;
#define DEFAULT(f, v)                                                          \
	if (!g->l.f)                                                           \
		g->l.f = (v);
	DEFAULT(body_budget_bytes, NETGUARD_BODY_BUDGET_BYTES_DEFAULT)
	DEFAULT(body_budget_per_address_bytes,
		NETGUARD_BODY_BUDGET_PER_ADDRESS_BYTES_DEFAULT)
	DEFAULT(body_budget_per_principal_bytes,
		NETGUARD_BODY_BUDGET_PER_PRINCIPAL_BYTES_DEFAULT)
	DEFAULT(idle_timeout_s, 30u)
	DEFAULT(header_timeout_s, NETGUARD_HEADER_TIMEOUT_S_DEFAULT)
	DEFAULT(body_timeout_s, NETGUARD_BODY_TIMEOUT_S_DEFAULT)
	DEFAULT(body_rate_min_bytes_s, NETGUARD_BODY_RATE_MIN_BYTES_S_DEFAULT)
	DEFAULT(connections_per_address_max,
		NETGUARD_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT)
	DEFAULT(connections_max, 4096u)
#undef DEFAULT
	want = (size_t)g->l.connections_max * 4 + 64;
	g->cap = 64;
	while (g->cap < want)
		g->cap *= 2;
	g->table = calloc(g->cap, sizeof(*g->table));
	if (!g->table) {
		free(g);
		return NULL;
	}
	randombytes_buf(g->hash_key, sizeof(g->hash_key));
	/* The 408 written by the reaper: whole, with its framing. */
	problem_write(&b, PROBLEM_request_timeout,
		      "the request head or body took too long", NULL, NULL);
	if (!b.err) {
		n = snprintf(g->timeout_reply, sizeof(g->timeout_reply),
			     "HTTP/1.1 408 Request Timeout\r\n"
			     "Content-Type: " PROBLEM_CONTENT_TYPE
			     "\r\n" PROBLEM_MARKER_HEADER ": %s\r\n"
			     "Connection: close\r\n"
			     "Content-Length: %zu\r\n\r\n%.*s",
			     problem_slug(PROBLEM_request_timeout), b.len,
			     (int)b.len, b.data);
		if (n > 0 && (size_t)n < sizeof(g->timeout_reply))
			g->timeout_reply_len = (size_t)n;
	}
	wbuf_release(&b);
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		free(g->table);
		free(g);
		return NULL;
	}
	return g;
}

void netguard_destroy(struct netguard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = true;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->reaper, NULL);
	while (g->conns) {
		struct netguard_conn *nc = g->conns;
		g->conns = nc->next;
		free(nc);
	}
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g->table);
	free(g);
}

/* ---- libmicrohttpd hooks ---------------------------------------------- */

enum MHD_Result netguard_accept(void *cls, const struct sockaddr *addr,
				socklen_t addrlen)
{
	struct netguard *g = cls;
	struct netguard_addr a;
	u8 key[KEY_BYTES];
	bool ok = true;

	if (netguard_addr_from_sockaddr(addr, addrlen, &a) != 0)
		return MHD_YES; /* not IP: nothing to count by */
	if (netguard_cidrs_match(g->l.proxies, g->l.nproxies, &a))
		return MHD_YES;
	key_addr(key, &a);
	pthread_mutex_lock(&g->lock);
	struct entry *e = entry_find(g, key);
	if (e && e->conns >= g->l.connections_per_address_max) {
		g->stats.refused_address++;
		ok = false;
	}
	pthread_mutex_unlock(&g->lock);
	return ok ? MHD_YES : MHD_NO;
}

static void conn_start(struct netguard *g, struct MHD_Connection *c,
		       void **socket_ctx)
{
	const union MHD_ConnectionInfo *fd, *ad;
	struct netguard_conn *nc;
	u8 key[KEY_BYTES];
	bool over = false;

	fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	ad = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!fd)
		return;
	nc = calloc(1, sizeof(*nc));
	if (!nc) {
		shutdown(fd->connect_fd, SHUT_RDWR);
		return;
	}
	nc->g = g;
	nc->fd = fd->connect_fd;
	if (!ad || netguard_addr_from_sockaddr(ad->client_addr,
					       sizeof(struct sockaddr_in6),
					       &nc->peer) != 0)
		memset(&nc->peer, 0, sizeof(nc->peer));
	nc->peer_trusted =
		netguard_cidrs_match(g->l.proxies, g->l.nproxies, &nc->peer);
	nc->client = nc->peer;
	nc->phase = PH_IDLE;
	nc->phase_ns = now_ns();
	framing_init(&nc->fr);
	if (nc->fd >= 0 && nc->fd < NETGUARD_FDS_MAX)
		atomic_store_explicit(&fd_conns[nc->fd], nc,
				      memory_order_release);
	key_addr(key, &nc->peer);
	pthread_mutex_lock(&g->lock);
	struct entry *e = entry_get(g, key);
	if (e) {
		e->conns++;
		nc->peer_counted = true;
		/* The accept check and this count are not one step: two
		 * threads may both have let one more in. */
		over = !nc->peer_trusted &&
		       e->conns > g->l.connections_per_address_max;
	}
	nc->next = g->conns;
	if (g->conns)
		g->conns->prev = nc;
	g->conns = nc;
	if (over || !e) {
		g->stats.refused_address++;
		reap(g, nc, false);
	}
	pthread_mutex_unlock(&g->lock);
	*socket_ctx = nc;
}

/* Give back what nc's current request holds and counts.  Lock held. */
static void request_clear(struct netguard *g, struct netguard_conn *nc)
{
	u8 key[KEY_BYTES];
	struct entry *e;

	if (nc->held) {
		key_addr(key, &nc->client);
		e = entry_find(g, key);
		NG_CHECK(e && e->held >= nc->held);
		e->held -= nc->held;
		entry_put(g, e);
		if (nc->has_principal) {
			key_prin(key, nc->principal);
			e = entry_find(g, key);
			NG_CHECK(e && e->held >= nc->held);
			e->held -= nc->held;
			entry_put(g, e);
		}
		NG_CHECK(g->held >= nc->held);
		g->held -= nc->held;
		nc->held = 0;
	}
	if (nc->client_counted) {
		key_addr(key, &nc->client);
		if ((e = entry_find(g, key))) {
			e->conns--;
			entry_put(g, e);
		}
		nc->client_counted = false;
	}
	nc->client = nc->peer;
	nc->has_principal = false;
	nc->body_bytes = 0;
}

static void conn_end(struct netguard *g, struct netguard_conn *nc)
{
	u8 key[KEY_BYTES];
	struct entry *e;

	/* Before libmicrohttpd closes the descriptor (it does after this
	 * notification), so a number reused elsewhere is never read here. */
	if (nc->fd >= 0 && nc->fd < NETGUARD_FDS_MAX)
		atomic_store_explicit(&fd_conns[nc->fd], NULL,
				      memory_order_release);
	pthread_mutex_lock(&g->lock);
	request_clear(g, nc);
	key_addr(key, &nc->peer);
	if (nc->peer_counted && (e = entry_find(g, key)) && e->conns) {
		e->conns--;
		entry_put(g, e);
	}
	if (nc->prev)
		nc->prev->next = nc->next;
	else
		g->conns = nc->next;
	if (nc->next)
		nc->next->prev = nc->prev;
	pthread_mutex_unlock(&g->lock);
	free(nc);
}

void netguard_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
		     enum MHD_ConnectionNotificationCode toe)
{
	struct netguard *g = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		conn_start(g, c, socket_ctx);
	else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_ctx) {
		conn_end(g, *socket_ctx);
		*socket_ctx = NULL;
	}
}

struct netguard_conn *netguard_conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return i ? i->socket_context : NULL;
}

/* ---- the phases of a request ------------------------------------------ */

static void set_phase(struct netguard_conn *nc, enum phase p)
{
	pthread_mutex_lock(&nc->g->lock);
	nc->phase = p;
	nc->phase_ns = now_ns();
	pthread_mutex_unlock(&nc->g->lock);
}

u32 netguard_request_line(struct netguard_conn *nc)
{
	if (!nc)
		return 0;
	set_phase(nc, PH_HEAD);
	return ++nc->requests;
}

int netguard_head_done(struct netguard_conn *nc, const char *forwarded,
		       size_t forwarded_len, bool has_body)
{
	struct netguard *g;
	struct netguard_addr client;
	u8 key[KEY_BYTES];
	int ret = NETGUARD_OK;

	if (!nc)
		return NETGUARD_OK;
	g = nc->g;
	if (nc->peer_trusted && g->l.nproxies &&
	    (!forwarded ||
	     netguard_forwarded_client(forwarded, forwarded_len, g->l.proxies,
				       g->l.nproxies, &client) != 0)) {
		set_phase(nc, has_body ? PH_BODY : PH_BUSY);
		return -EINVAL;
	}
	pthread_mutex_lock(&g->lock);
	nc->phase = has_body ? PH_BODY : PH_BUSY;
	nc->phase_ns = now_ns();
	nc->body_bytes = 0;
	if (nc->peer_trusted && g->l.nproxies) {
		nc->client = client;
		key_addr(key, &client);
		struct entry *e = entry_get(g, key);
		if (!e || e->conns >= g->l.connections_per_address_max) {
			g->stats.refused_address++;
			ret = NETGUARD_OVER_CONNECTIONS;
		} else {
			e->conns++;
			nc->client_counted = true;
		}
		if (e)
			entry_put(g, e);
	}
	pthread_mutex_unlock(&g->lock);
	return ret;
}

void netguard_set_principal(struct netguard_conn *nc, const u8 root[32])
{
	if (!nc)
		return;
	pthread_mutex_lock(&nc->g->lock);
	/* Holds are per request and start after authentication. */
	if (nc->held == 0) {
		memcpy(nc->principal, root, 32);
		nc->has_principal = true;
	}
	pthread_mutex_unlock(&nc->g->lock);
}

void netguard_body_bytes(struct netguard_conn *nc, size_t n)
{
	if (!nc)
		return;
	pthread_mutex_lock(&nc->g->lock);
	nc->body_bytes += n;
	pthread_mutex_unlock(&nc->g->lock);
}

void netguard_body_done(struct netguard_conn *nc)
{
	if (nc)
		set_phase(nc, PH_BUSY);
}

enum netguard_refusal netguard_hold(struct netguard_conn *nc, size_t n)
{
	struct netguard *g;
	struct entry *ea, *ep = NULL;
	u8 key[KEY_BYTES];
	enum netguard_refusal r = NETGUARD_OK;

	if (!nc)
		return NETGUARD_OK;
	g = nc->g;
	pthread_mutex_lock(&g->lock);
	key_addr(key, &nc->client);
	ea = entry_get(g, key);
	if (nc->has_principal) {
		key_prin(key, nc->principal);
		ep = entry_get(g, key);
	}
	if (!ea || (nc->has_principal && !ep) ||
	    n > g->l.body_budget_bytes - g->held)
		r = NETGUARD_OVER_BUDGET;
	else if (n > g->l.body_budget_per_address_bytes - ea->held)
		r = NETGUARD_OVER_ADDRESS;
	else if (ep && n > g->l.body_budget_per_principal_bytes - ep->held)
		r = NETGUARD_OVER_PRINCIPAL;
	if (r == NETGUARD_OK) {
		ea->held += n;
		if (ep)
			ep->held += n;
		g->held += n;
		nc->held += n;
	}
	/* Entries made for a refused hold go again; by key, since taking
	 * one out may move the other. */
	if (r != NETGUARD_OK) {
		if (ep)
			entry_put_key(g, key);
		key_addr(key, &nc->client);
		entry_put_key(g, key);
	}
	pthread_mutex_unlock(&g->lock);
	return r;
}

void netguard_release(struct netguard_conn *nc, size_t n)
{
	struct netguard *g;
	struct entry *e;
	u8 key[KEY_BYTES];

	if (!nc || n == 0)
		return;
	g = nc->g;
	pthread_mutex_lock(&g->lock);
	NG_CHECK(n <= nc->held && n <= g->held);
	key_addr(key, &nc->client);
	e = entry_find(g, key);
	NG_CHECK(e && e->held >= n);
	e->held -= n;
	entry_put(g, e);
	if (nc->has_principal) {
		key_prin(key, nc->principal);
		e = entry_find(g, key);
		NG_CHECK(e && e->held >= n);
		e->held -= n;
		entry_put(g, e);
	}
	g->held -= n;
	nc->held -= n;
	pthread_mutex_unlock(&g->lock);
}

void netguard_request_done(struct netguard_conn *nc)
{
	if (!nc)
		return;
	pthread_mutex_lock(&nc->g->lock);
	request_clear(nc->g, nc);
	nc->phase = PH_IDLE;
	nc->phase_ns = now_ns();
	pthread_mutex_unlock(&nc->g->lock);
}

void netguard_stats(struct netguard *g, struct netguard_stats *out)
{
	pthread_mutex_lock(&g->lock);
	*out = g->stats;
	out->held_bytes = g->held;
	pthread_mutex_unlock(&g->lock);
}

void netguard_metrics(struct netguard *g, struct wbuf *b)
{
	struct netguard_stats st;

	netguard_stats(g, &st);
	wbuf_puts(b, "# HELP tpwallet_net_closed_total Connections closed by "
		     "a deadline (idle, head, body).\n"
		     "# TYPE tpwallet_net_closed_total counter\n"
		     "tpwallet_net_closed_total{deadline=\"idle\"} ");
	wbuf_put_u64(b, st.closed_idle);
	wbuf_puts(b, "\ntpwallet_net_closed_total{deadline=\"head\"} ");
	wbuf_put_u64(b, st.closed_header);
	wbuf_puts(b, "\ntpwallet_net_closed_total{deadline=\"body\"} ");
	wbuf_put_u64(b, st.closed_body);
	wbuf_puts(b, "\n# HELP tpwallet_net_refused_total Connections or "
		     "requests refused by the per-address limit.\n"
		     "# TYPE tpwallet_net_refused_total counter\n"
		     "tpwallet_net_refused_total ");
	wbuf_put_u64(b, st.refused_address);
	wbuf_puts(b, "\n# HELP tpwallet_net_tracked Client addresses and "
		     "principals with a connection or a hold now.\n"
		     "# TYPE tpwallet_net_tracked gauge\n"
		     "tpwallet_net_tracked ");
	wbuf_put_u64(b, st.tracked);
	wbuf_puts(b, "\n# HELP tpwallet_net_body_bytes_held Bytes of request "
		     "bodies buffered now.\n"
		     "# TYPE tpwallet_net_body_bytes_held gauge\n"
		     "tpwallet_net_body_bytes_held ");
	wbuf_put_u64(b, st.held_bytes);
	wbuf_putc(b, '\n');
}
