/*
 * authz_load.c - a small closed-loop HTTP/1.1 load generator for issue 4's
 * target (C): single-transfer throughput with authorization on (a cached
 * 3-link mandate and a fresh DPoP proof per request) against the
 * administrator's bearer token (one SHA-256), on the same server.
 *
 * Plain sockets on loopback, keep-alive, --connections connections driven
 * by epoll from --threads threads (default 1: the machine has 2 cores and
 * the server needs them).  Each request is POST /v1/transfers with one
 * transfer, a unique id (--run makes ids unique across runs), amount 1,
 * ledger 1, --debit -> --credit (accounts the mandate allows).  The same
 * bodies in both modes; only the credential differs:
 *   bearer  Authorization: Bearer <--token-file>
 *   dpop    Authorization: DPoP <--mandate>, DPoP: <proof> where each
 *           proof has a unique jti, iat = when it was signed, htm POST,
 *           htu http://127.0.0.1:PORT/v1/transfers and ath of the chain,
 *           signed with --key (the last link's delegate).
 * DPoP proofs are all signed BEFORE the clock starts (the client's signing
 * is not the server's cost): as many as fit in --presign-seconds (default
 * 5) on 2 threads, at most --max-proofs (default 400000).  When they run
 * out before --seconds, the run stops there and its real duration is used
 * (printed as "proofs_ran_out=1").  A proof must be used within 60 s of its
 * iat, so presign + run must stay under 60 s (checked).
 *
 * Prints one line "authz-load mode=... rps=... p50_ms=... p99_ms=...
 * ok=N non2xx=N ..." and, when any answer was not 2xx or a connection
 * failed, a loud INVALID line with the status counts and the first such
 * answer's body.  Exit 0 when every answer was 2xx, 1 otherwise, 2 on
 * usage errors.  A figure, never a test.
 *
 * Build (from the repository root): `make bench-build`, which writes
 * build/bench/authz_load.
 * Run: build/bench/authz_load --port P --mode bearer --token-file
 *   DATA/admin.token, or --mode dpop --key device.jwk --mandate chain.txt.
 */
#include "crypto/jose.h"
#include "crypto/mandate.h"
#include "core/strerror.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define CONNS_MAX      1024
#define THREADS_MAX    8
#define SECONDS_MAX    50
#define PROOF_SLOT     640
#define PROOFS_MAX     2000000
#define REQ_BYTES      (MANDATE_AUTHZ_BYTES_MAX + PROOF_SLOT + 1024)
#define RESP_BYTES     16384
#define HIST_US	       200000 /* latency histogram: 1 us buckets to 200 ms */
#define DRAIN_S	       5.0
#define RECONNECTS_MAX 100

static struct {
	int port, conns, threads, seconds;
	const char *mode, *token_file, *key_file, *mandate_file;
	unsigned long long run;
	unsigned long long debit, credit;
	double presign_s; /* whole seconds */
	long max_proofs;
} opt = {.conns = 64,
	 .threads = 1,
	 .seconds = 10,
	 .mode = "bearer",
	 .debit = 1,
	 .credit = 5,
	 .presign_s = 5.0,
	 .max_proofs = 400000};

static char *credential; /* bearer token, or the chain */
static size_t credential_len;
static char *proofs; /* n_proofs slots of PROOF_SLOT bytes, NUL-terminated */
static long n_proofs;
static atomic_long next_proof;
static atomic_int proofs_out;
static bool dpop;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "authz_load: %s: %s\n", path,
			tpw_strerror(errno));
		return NULL;
	}
	buf = malloc(MANDATE_AUTHZ_BYTES_MAX + 2);
	n = buf ? fread(buf, 1, MANDATE_AUTHZ_BYTES_MAX + 1, f) : 0;
	fclose(f);
	if (!buf || n == 0 || n > MANDATE_AUTHZ_BYTES_MAX) {
		fprintf(stderr, "authz_load: %s: empty or too large\n", path);
		free(buf);
		return NULL;
	}
	while (n &&
	       (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* ---- pre-signing ------------------------------------------------------- */

struct signer {
	const struct jose_seckey *key;
	const char *htu;
	long from, to; /* slots [from, to) of this thread */
	double deadline;
	long done;
	int failed;
};

static void *sign_proofs(void *arg)
{
	struct signer *s = arg;
	for (long i = s->from; i < s->to; i++) {
		char jti[48];
		size_t n;
		if ((i & 255) == 0 && now_s() > s->deadline)
			break;
		snprintf(jti, sizeof(jti), "%llu-%ld", opt.run, i);
		if (mandate_dpop_sign(s->key, jti, "POST", s->htu,
				      (int64_t)time(NULL), credential,
				      credential_len, proofs + i * PROOF_SLOT,
				      PROOF_SLOT, &n) != 0) {
			s->failed = 1;
			break;
		}
		s->done++;
	}
	return NULL;
}

/* Signs into slots so that the used ones are contiguous: each thread owns
 * one half; afterwards the second half's proofs are moved down. */
static int presign(const char *htu, double *secs)
{
	size_t klen;
	char *kjwk = read_file(opt.key_file, &klen);
	struct jose_seckey *key = NULL;
	struct signer s[2];
	pthread_t t[2];
	long cap = opt.max_proofs, half;
	double t0 = now_s();

	if (!kjwk)
		return -1;
	if (jose_seckey_parse_jwk(kjwk, klen, &key) != 0) {
		fprintf(stderr, "authz_load: %s: not a private Ed25519 JWK\n",
			opt.key_file);
		free(kjwk);
		return -1;
	}
	free(kjwk);
	proofs = malloc((size_t)cap * PROOF_SLOT);
	if (!proofs) {
		jose_seckey_free(key);
		return -1;
	}
	half = cap / 2;
	for (int i = 0; i < 2; i++) {
		s[i] = (struct signer){.key = key,
				       .htu = htu,
				       .from = i ? half : 0,
				       .to = i ? cap : half,
				       .deadline = t0 + opt.presign_s};
		if (pthread_create(&t[i], NULL, sign_proofs, &s[i]) != 0)
			return -1;
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	jose_seckey_free(key);
	if (s[0].failed || s[1].failed) {
		fprintf(stderr, "authz_load: cannot sign a DPoP proof\n");
		return -1;
	}
	memmove(proofs + s[0].done * PROOF_SLOT, proofs + half * PROOF_SLOT,
		(size_t)s[1].done * PROOF_SLOT);
	n_proofs = s[0].done + s[1].done;
	*secs = now_s() - t0;
	return n_proofs > 0 ? 0 : -1;
}

/* ---- connections ------------------------------------------------------- */

struct conn {
	int fd, id;
	char req[REQ_BYTES];
	size_t req_len, req_off;
	char resp[RESP_BYTES];
	size_t resp_len;
	double sent_at;
	unsigned long counter;
	bool busy; /* a request is out */
};

struct worker {
	int id, first, count, ep;
	struct conn *c;
	double start, deadline;
	/* results */
	unsigned long ok, bad, sock_err, reconnects;
	unsigned long status[6]; /* by first digit */
	unsigned long by_code[600];
	uint32_t *hist;
	unsigned long over;
	char first_bad[512];
	int failed;
};

static struct sockaddr_in addr;
static char host_hdr[64];

static int connect_one(struct conn *c, int ep)
{
	int one = 1;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
				 .data.ptr = c};
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	c->busy = false;
	c->resp_len = 0;
	return 0;
}

/* Builds the next request into c->req; -1 when DPoP proofs ran out. */
static int build(struct conn *c)
{
	char body[256];
	int bl, n;
	const char *proof = NULL;

	if (dpop) {
		long i = atomic_fetch_add(&next_proof, 1);
		if (i >= n_proofs) {
			atomic_store(&proofs_out, 1);
			return -1;
		}
		proof = proofs + i * PROOF_SLOT;
	}
	c->counter++;
	bl = snprintf(body, sizeof(body),
		      "{\"id\":\"%llu%03d%010lu\",\"debit_account_id\":"
		      "\"%llu\",\"credit_account_id\":\"%llu\","
		      "\"amount\":\"1\",\"ledger\":1,\"code\":1}",
		      opt.run, c->id, c->counter, opt.debit, opt.credit);
	n = snprintf(c->req, sizeof(c->req),
		     "POST /v1/transfers HTTP/1.1\r\nHost: %s\r\n"
		     "Content-Type: application/json\r\n"
		     "Authorization: %s %s\r\n%s%s%s"
		     "Content-Length: %d\r\n\r\n%s",
		     host_hdr, dpop ? "DPoP" : "Bearer", credential,
		     proof ? "DPoP: " : "", proof ? proof : "",
		     proof ? "\r\n" : "", bl, body);
	if (n < 0 || (size_t)n >= sizeof(c->req))
		return -1;
	c->req_len = (size_t)n;
	c->req_off = 0;
	return 0;
}

static void record(struct worker *w, struct conn *c, int status)
{
	double us = (now_s() - c->sent_at) * 1e6;
	unsigned long b = us < 0 ? 0 : (unsigned long)us;
	if (b >= HIST_US)
		w->over++;
	else
		w->hist[b]++;
	if (status >= 200 && status < 300) {
		w->ok++;
	} else {
		w->bad++;
		if (!w->first_bad[0]) {
			size_t n = c->resp_len < sizeof(w->first_bad) - 1
					   ? c->resp_len
					   : sizeof(w->first_bad) - 1;
			memcpy(w->first_bad, c->resp, n);
			w->first_bad[n] = '\0';
		}
	}
	if (status >= 100 && status < 600) {
		w->status[status / 100]++;
		w->by_code[status]++;
	}
}

/* Parses a complete response at the start of c->resp: its length, or 0
 * when incomplete, -1 when unparseable.  *status gets the code. */
static long parse_response(struct conn *c, int *status)
{
	char *end, *p, *hdr_end;
	long clen = -1;

	if (c->resp_len < 12)
		return 0;
	c->resp[c->resp_len] = '\0';
	hdr_end = strstr(c->resp, "\r\n\r\n");
	if (!hdr_end)
		return c->resp_len >= RESP_BYTES - 1 ? -1 : 0;
	if (strncmp(c->resp, "HTTP/1.", 7) != 0)
		return -1;
	*status = (int)strtol(c->resp + 9, &end, 10);
	for (p = strstr(c->resp, "\r\n"); p && p < hdr_end;
	     p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
			clen = strtol(p + 17, NULL, 10);
		else if (strncasecmp(p + 2, "Transfer-Encoding:", 18) == 0)
			return -1; /* not sent by the server for these */
	}
	if (clen < 0)
		return -1;
	long total = (long)(hdr_end + 4 - c->resp) + clen;
	if (total > RESP_BYTES - 1)
		return -1;
	return (long)c->resp_len >= total ? total : 0;
}

static int send_some(struct conn *c)
{
	while (c->req_off < c->req_len) {
		ssize_t n = send(c->fd, c->req + c->req_off,
				 c->req_len - c->req_off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		c->req_off += (size_t)n;
	}
	return 0;
}

static int start_request(struct worker *w, struct conn *c)
{
	if (now_s() >= w->deadline || atomic_load(&proofs_out) || build(c) != 0)
		return 1; /* this connection is done */
	c->busy = true;
	c->sent_at = now_s();
	return send_some(c);
}

static void conn_fail(struct worker *w, struct conn *c)
{
	w->sock_err++;
	if (c->fd >= 0) {
		epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	c->busy = false;
	if (w->reconnects < RECONNECTS_MAX && now_s() < w->deadline &&
	    connect_one(c, w->ep) == 0) {
		w->reconnects++;
		if (start_request(w, c) < 0)
			conn_fail(w, c);
	}
}

/* Reads what is there; completes responses; starts the next request. */
static void on_readable(struct worker *w, struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->resp + c->resp_len,
				 RESP_BYTES - 1 - c->resp_len, 0);
		if (n == 0 ||
		    (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			conn_fail(w, c);
			return;
		}
		if (n < 0)
			break;
		c->resp_len += (size_t)n;
		for (;;) {
			int status = 0;
			long len = parse_response(c, &status);
			if (len < 0) {
				conn_fail(w, c);
				return;
			}
			if (len == 0)
				break;
			if (!c->busy) { /* an answer nobody asked for */
				conn_fail(w, c);
				return;
			}
			record(w, c, status);
			memmove(c->resp, c->resp + len,
				c->resp_len - (size_t)len);
			c->resp_len -= (size_t)len;
			c->busy = false;
			int r = start_request(w, c);
			if (r < 0) {
				conn_fail(w, c);
				return;
			}
			if (r > 0)
				return; /* finished: leave it idle */
		}
		if (c->resp_len >= RESP_BYTES - 1) {
			conn_fail(w, c);
			return;
		}
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0) {
		w->failed = 1;
		return NULL;
	}
	for (int i = 0; i < w->count; i++) {
		struct conn *c = &w->c[i];
		c->id = w->first + i;
		if (connect_one(c, w->ep) != 0) {
			fprintf(stderr, "authz_load: connect: %s\n",
				tpw_strerror(errno));
			w->failed = 1;
			return NULL;
		}
	}
	for (int i = 0; i < w->count; i++)
		if (start_request(w, &w->c[i]) < 0)
			conn_fail(w, &w->c[i]);
	/* Until the deadline, then drain answers for at most DRAIN_S. */
	for (;;) {
		int busy = 0;
		for (int i = 0; i < w->count; i++)
			busy += w->c[i].busy;
		if (!busy || now_s() > w->deadline + DRAIN_S)
			break;
		int n = epoll_wait(w->ep, evs, 64, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT && c->busy &&
			    c->req_off < c->req_len && send_some(c) < 0) {
				conn_fail(w, c);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(w, c);
		}
	}
	for (int i = 0; i < w->count; i++) {
		if (w->c[i].busy)
			w->sock_err++; /* no answer within the drain */
		if (w->c[i].fd >= 0)
			close(w->c[i].fd);
	}
	close(w->ep);
	return NULL;
}

static double percentile(const uint64_t *hist, uint64_t total, double q)
{
	uint64_t want = (uint64_t)((double)total * q), seen = 0;
	for (long i = 0; i < HIST_US; i++) {
		seen += hist[i];
		if (seen > want)
			return (double)i / 1000.0;
	}
	return (double)HIST_US / 1000.0;
}

/* A whole decimal number in [lo, hi], else lo - 1 (caught by the checks). */
static long num(const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return lo - 1;
	return v;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: authz_load --port P [--connections 64] [--threads 1]\n"
		"  [--seconds 10] --mode bearer --token-file DATA/admin.token\n"
		"  | --mode dpop --key DEVICE.jwk --mandate CHAIN.txt\n"
		"  [--presign-seconds 5] [--max-proofs N]\n"
		"  [--run N] [--debit ID] [--credit ID]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"port", required_argument, NULL, 'p'},
		{"connections", required_argument, NULL, 'c'},
		{"threads", required_argument, NULL, 't'},
		{"seconds", required_argument, NULL, 's'},
		{"mode", required_argument, NULL, 'm'},
		{"token-file", required_argument, NULL, 'T'},
		{"key", required_argument, NULL, 'k'},
		{"mandate", required_argument, NULL, 'M'},
		{"presign-seconds", required_argument, NULL, 'P'},
		{"max-proofs", required_argument, NULL, 'x'},
		{"run", required_argument, NULL, 'r'},
		{"debit", required_argument, NULL, 'd'},
		{"credit", required_argument, NULL, 'C'},
		{NULL, 0, NULL, 0}};
	int ch;
	double presign_secs = 0;
	char htu[128];

	opt.run = (unsigned long long)time(NULL);
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'p': opt.port = (int)num(optarg, 1, 65535); break;
		case 'c': opt.conns = (int)num(optarg, 1, CONNS_MAX); break;
		case 't': opt.threads = (int)num(optarg, 1, THREADS_MAX); break;
		case 's': opt.seconds = (int)num(optarg, 1, SECONDS_MAX); break;
		case 'm': opt.mode = optarg; break;
		case 'T': opt.token_file = optarg; break;
		case 'k': opt.key_file = optarg; break;
		case 'M': opt.mandate_file = optarg; break;
		case 'P': opt.presign_s = (double)num(optarg, 1, 50); break;
		case 'x': opt.max_proofs = num(optarg, 2, PROOFS_MAX); break;
		case 'r':
			opt.run = (unsigned long long)num(optarg, 0,
							  99999999999L);
			break;
		case 'd':
			opt.debit =
				(unsigned long long)num(optarg, 1, LONG_MAX);
			break;
		case 'C':
			opt.credit =
				(unsigned long long)num(optarg, 1, LONG_MAX);
			break;
		default: usage(); return 2;
		}
	}
	dpop = strcmp(opt.mode, "dpop") == 0;
	if (opt.port <= 0 || opt.port > 65535 || opt.conns < 1 ||
	    opt.conns > CONNS_MAX || opt.threads < 1 ||
	    opt.threads > THREADS_MAX || opt.threads > opt.conns ||
	    opt.seconds < 1 || opt.seconds > SECONDS_MAX ||
	    (!dpop && strcmp(opt.mode, "bearer") != 0) ||
	    (!dpop && !opt.token_file) ||
	    (dpop && (!opt.key_file || !opt.mandate_file)) ||
	    opt.presign_s <= 0 || opt.presign_s + opt.seconds > 55 ||
	    opt.max_proofs < 2 || opt.max_proofs > PROOFS_MAX || !opt.debit ||
	    !opt.credit || opt.run > 99999999999ull) {
		usage();
		return 2;
	}
	/* id = run (<= 11 digits), connection (3), counter (10): < 2^128 */
	snprintf(host_hdr, sizeof(host_hdr), "127.0.0.1:%d", opt.port);
	snprintf(htu, sizeof(htu), "http://%s/v1/transfers", host_hdr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)opt.port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	if (jose_init() != 0)
		return 1;
	credential = read_file(dpop ? opt.mandate_file : opt.token_file,
			       &credential_len);
	if (!credential)
		return 2;
	if (dpop && presign(htu, &presign_secs) != 0)
		return 1;

	struct worker w[THREADS_MAX];
	pthread_t tid[THREADS_MAX];
	struct conn *conns = calloc((size_t)opt.conns, sizeof(*conns));
	if (!conns)
		return 1;
	memset(w, 0, sizeof(w));
	double start = now_s();
	for (int i = 0, first = 0; i < opt.threads; i++) {
		int cnt = opt.conns / opt.threads +
			  (i < opt.conns % opt.threads ? 1 : 0);
		w[i].id = i;
		w[i].first = first;
		w[i].count = cnt;
		w[i].c = conns + first;
		w[i].start = start;
		w[i].deadline = start + opt.seconds;
		w[i].hist = calloc(HIST_US, sizeof(uint32_t));
		if (!w[i].hist ||
		    pthread_create(&tid[i], NULL, work, &w[i]) != 0)
			return 1;
		first += cnt;
	}
	for (int i = 0; i < opt.threads; i++)
		pthread_join(tid[i], NULL);
	double elapsed = now_s() - start;
	/* When proofs ran out, the run's length is when the last answer came,
	 * which is now: the loop exits as soon as nothing is busy. */

	uint64_t *hist = calloc(HIST_US, sizeof(uint64_t));
	unsigned long ok = 0, bad = 0, sock = 0, over = 0, recon = 0;
	unsigned long codes[600] = {0};
	const char *first_bad = NULL;
	int failed = 0;
	if (!hist)
		return 1;
	for (int i = 0; i < opt.threads; i++) {
		ok += w[i].ok;
		bad += w[i].bad;
		sock += w[i].sock_err;
		over += w[i].over;
		recon += w[i].reconnects;
		failed |= w[i].failed;
		for (long b = 0; b < HIST_US; b++)
			hist[b] += w[i].hist[b];
		for (int s = 0; s < 600; s++)
			codes[s] += w[i].by_code[s];
		if (!first_bad && w[i].first_bad[0])
			first_bad = w[i].first_bad;
	}
	uint64_t total = ok + bad;
	if (failed || total == 0) {
		fprintf(stderr, "authz_load: no answers (connect failed?)\n");
		return 1;
	}
	if (over)
		hist[HIST_US - 1] += over;
	printf("authz-load mode=%s connections=%d threads=%d seconds=%.2f "
	       "requests=%llu ok=%lu non2xx=%lu socket_errors=%lu rps=%.0f "
	       "p50_ms=%.3f p99_ms=%.3f",
	       opt.mode, opt.conns, opt.threads, elapsed,
	       (unsigned long long)total, ok, bad, sock, (double)ok / elapsed,
	       percentile(hist, total, 0.50), percentile(hist, total, 0.99));
	if (dpop)
		printf(" proofs=%ld presign_s=%.2f used=%ld%s", n_proofs,
		       presign_secs,
		       atomic_load(&next_proof) < n_proofs
			       ? atomic_load(&next_proof)
			       : n_proofs,
		       atomic_load(&proofs_out) ? " proofs_ran_out=1" : "");
	printf("\n");
	if (bad || sock) {
		printf("!!! INVALID: %lu non-2xx answers, %lu socket errors "
		       "(%lu reconnects):",
		       bad, sock, recon);
		for (int s = 0; s < 600; s++)
			if (codes[s] && (s < 200 || s >= 300))
				printf(" %d x%lu", s, codes[s]);
		printf("\n");
		if (first_bad) {
			const char *b = strstr(first_bad, "\r\n\r\n");
			printf("!!! first: %.300s\n", b ? b + 4 : first_bad);
		}
	}
	fflush(stdout);
	for (int i = 0; i < opt.threads; i++)
		free(w[i].hist);
	free(hist);
	free(conns);
	free(proofs);
	free(credential);
	return bad || sock ? 1 : 0;
}
