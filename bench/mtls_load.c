/*
 * mtls_load.c - a closed-loop HTTPS load generator with a client
 * certificate, for issue 15's target "certificate-bound mandate against
 * bearer" (bench/mtls_ratio.sh): single-transfer requests on keep-alive
 * mutual-TLS connections, the same connections and bodies in both modes;
 * only the Authorization header differs:
 *   bearer  Authorization: Bearer <the administrator's token>
 *   bound   Authorization: Bearer <a chain whose last link is bound to
 *           --cert (cnf x5t#S256)>
 * Each of --connections threads holds one connection (GnuTLS, TLS 1.3,
 * the client certificate --cert/--key, the server verified against
 * --cacert) and sends POST /v1/transfers with one transfer, a unique id
 * (--run makes ids unique across runs), amount 1, ledger 1, --debit ->
 * --credit, waits for the whole answer, and sends the next, for
 * --seconds.  The handshakes happen before the clock starts.
 *
 * Prints one line "mtls-load mode=... rps=... ok=N non2xx=N" and, when
 * an answer was not 2xx, a loud INVALID line with the first such body.
 * Exit 0 when every answer was 2xx, 1 otherwise, 2 on usage errors.  A
 * figure, never a test.
 *
 * Build: `make bench-build` (build/bench/mtls_load).
 */
#include "core/strerror.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define CONNS_MAX      256
#define SECONDS_MAX    300
#define CREDENTIAL_MAX 65536
#define REQ_BYTES      (CREDENTIAL_MAX + 1024)
#define RESP_BYTES     16384
#define BAD_BODY_BYTES 512

static struct {
	int port, conns, seconds;
	const char *mode, *credential_file, *cacert, *cert, *key;
	unsigned long long run, debit, credit;
} opt = {.conns = 16, .seconds = 10, .debit = 1, .credit = 5};

static char credential[CREDENTIAL_MAX + 1];
static gnutls_certificate_credentials_t xcred;
static atomic_bool go, stop;
static atomic_int ready;
static atomic_ullong ok_total, bad_total, seq;
static pthread_mutex_t bad_lock = PTHREAD_MUTEX_INITIALIZER;
static char bad_body[BAD_BODY_BYTES];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_credential(void)
{
	FILE *f = fopen(opt.credential_file, "rb");
	size_t n;

	if (!f) {
		fprintf(stderr, "mtls_load: %s: %s\n", opt.credential_file,
			tpw_strerror(errno));
		return -1;
	}
	n = fread(credential, 1, CREDENTIAL_MAX, f);
	fclose(f);
	while (n && (credential[n - 1] == '\n' || credential[n - 1] == ' '))
		n--;
	credential[n] = '\0';
	return n == 0 || n == CREDENTIAL_MAX ? -1 : 0;
}

static int dial(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((unsigned short)opt.port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	return fd;
}

/* One whole answer: its status, or -1.  Content-Length bodies only (the
 * server sends no chunked answers to these requests). */
static int read_answer(gnutls_session_t s, char *buf, size_t cap)
{
	size_t have = 0, need = 0;
	char *end = NULL;

	for (;;) {
		if (!end) {
			end = have >= 4 ? memmem(buf, have, "\r\n\r\n", 4)
					: NULL;
			if (end) {
				const char *cl =
					strcasestr(buf, "\r\nContent-Length:");
				unsigned long long v = 0;
				for (cl = cl ? cl + 17 : NULL; cl && *cl == ' ';
				     cl++)
					;
				while (cl && *cl >= '0' && *cl <= '9')
					v = v * 10 + (unsigned)(*cl++ - '0');
				need = (size_t)(end - buf) + 4 + (size_t)v;
				if (need >= cap)
					return -1;
			}
		}
		if (end && have >= need)
			break;
		if (have + 1 >= cap)
			return -1;
		ssize_t n = gnutls_record_recv(s, buf + have, cap - 1 - have);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
	}
	if (strncmp(buf, "HTTP/1.1 ", 9) != 0)
		return -1;
	int status =
		(buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (status < 200 || status > 299) {
		pthread_mutex_lock(&bad_lock);
		if (!bad_body[0])
			snprintf(bad_body, sizeof(bad_body), "%s", end + 4);
		pthread_mutex_unlock(&bad_lock);
	}
	return status;
}

static void *worker(void *arg)
{
	gnutls_session_t s = NULL;
	char *req = malloc(REQ_BYTES), *resp = malloc(RESP_BYTES);
	int fd = dial(), r;

	(void)arg;
	if (fd < 0 || !req || !resp || gnutls_init(&s, GNUTLS_CLIENT) != 0 ||
	    gnutls_set_default_priority(s) != 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, xcred) != 0) {
		fprintf(stderr, "mtls_load: cannot connect\n");
		exit(1);
	}
	gnutls_session_set_verify_cert(s, "127.0.0.1", 0);
	gnutls_transport_set_int(s, fd);
	do {
		r = gnutls_handshake(s);
	} while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) {
		fprintf(stderr, "mtls_load: handshake: %s\n",
			gnutls_strerror(r));
		exit(1);
	}
	atomic_fetch_add(&ready, 1);
	while (!atomic_load(&go))
		usleep(1000);
	while (!atomic_load(&stop)) {
		char body[256];
		unsigned long long id =
			opt.run * 100000000ULL + atomic_fetch_add(&seq, 1) + 2;
		int blen = snprintf(body, sizeof(body),
				    "{\"id\":\"%llu\",\"debit_account_id\":"
				    "\"%llu\",\"credit_account_id\":\"%llu\","
				    "\"amount\":\"1\",\"ledger\":1,\"code\":1}",
				    id, opt.debit, opt.credit);
		int n = snprintf(req, REQ_BYTES,
				 "POST /v1/transfers HTTP/1.1\r\nHost: "
				 "127.0.0.1:%d\r\nAuthorization: Bearer "
				 "%s\r\nContent-Type: application/json\r\n"
				 "Content-Length: %d\r\n\r\n%s",
				 opt.port, credential, blen, body);
		if (n <= 0 || n >= REQ_BYTES ||
		    gnutls_record_send(s, req, (size_t)n) != n) {
			atomic_fetch_add(&bad_total, 1);
			break;
		}
		int st = read_answer(s, resp, RESP_BYTES);
		if (st >= 200 && st <= 299)
			atomic_fetch_add(&ok_total, 1);
		else
			atomic_fetch_add(&bad_total, 1);
		if (st < 0)
			break;
	}
	gnutls_deinit(s);
	close(fd);
	free(req);
	free(resp);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mtls_load --port P --mode bearer|bound --credential "
		"FILE --cacert CA --cert CERT --key KEY [--connections N] "
		"[--seconds S] [--run N] [--debit ID] [--credit ID]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"mode", required_argument, NULL, 'm'},
		{"credential", required_argument, NULL, 'f'},
		{"cacert", required_argument, NULL, 'a'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"connections", required_argument, NULL, 'n'},
		{"seconds", required_argument, NULL, 's'},
		{"run", required_argument, NULL, 'r'},
		{"debit", required_argument, NULL, 'd'},
		{"credit", required_argument, NULL, 'e'},
		{NULL, 0, NULL, 0},
	};
	pthread_t t[CONNS_MAX];
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end = NULL;
		unsigned long long v = 0;
		if (strchr("pnsrde", o)) {
			v = strtoull(optarg, &end, 10);
			if (!end || *end) {
				usage();
				return 2;
			}
		}
		switch (o) {
		case 'p': opt.port = (int)v; break;
		case 'm': opt.mode = optarg; break;
		case 'f': opt.credential_file = optarg; break;
		case 'a': opt.cacert = optarg; break;
		case 'c': opt.cert = optarg; break;
		case 'k': opt.key = optarg; break;
		case 'n': opt.conns = (int)v; break;
		case 's': opt.seconds = (int)v; break;
		case 'r': opt.run = v; break;
		case 'd': opt.debit = v; break;
		case 'e': opt.credit = v; break;
		default: usage(); return 2;
		}
	}
	if (opt.port <= 0 || opt.port > 65535 || !opt.mode ||
	    !opt.credential_file || !opt.cacert || !opt.cert || !opt.key ||
	    opt.conns < 1 || opt.conns > CONNS_MAX || opt.seconds < 1 ||
	    opt.seconds > SECONDS_MAX) {
		usage();
		return 2;
	}
	if (read_credential() != 0 ||
	    gnutls_certificate_allocate_credentials(&xcred) != 0 ||
	    gnutls_certificate_set_x509_trust_file(xcred, opt.cacert,
						   GNUTLS_X509_FMT_PEM) <= 0 ||
	    gnutls_certificate_set_x509_key_file(xcred, opt.cert, opt.key,
						 GNUTLS_X509_FMT_PEM) != 0) {
		fprintf(stderr, "mtls_load: credential, CA, certificate or "
				"key unreadable\n");
		return 2;
	}
	for (int i = 0; i < opt.conns; i++)
		if (pthread_create(&t[i], NULL, worker, NULL) != 0)
			return 1;
	/* The handshakes, before the clock (10 s at most). */
	for (int i = 0; i < 10000 && atomic_load(&ready) < opt.conns; i++)
		usleep(1000);
	double t0 = now_s();
	atomic_store(&go, true);
	usleep((useconds_t)opt.seconds * 1000000u);
	unsigned long long done = atomic_load(&ok_total);
	double t1 = now_s();
	atomic_store(&stop, true);
	for (int i = 0; i < opt.conns; i++)
		pthread_join(t[i], NULL);
	unsigned long long bad = atomic_load(&bad_total);
	printf("mtls-load mode=%s rps=%.0f ok=%llu non2xx=%llu\n", opt.mode,
	       (double)done / (t1 - t0), atomic_load(&ok_total), bad);
	if (bad)
		printf("INVALID: %llu answers not 2xx; first: %s\n", bad,
		       bad_body);
	gnutls_certificate_free_credentials(xcred);
	return bad ? 1 : 0;
}
