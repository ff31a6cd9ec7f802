/*
 * witness.c - send checkpoints to witnesses (witness.h): the spec parser
 * and a minimal HTTP/1.1 client (one POST per connection, Connection:
 * close, every step under one deadline, to addresses resolved beforehand
 * so that no name lookup runs inside that deadline).
 */
#include "engine/witness.h"
#include "core/parse.h"
#include "crypto/cosig.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static int fail(char *err, size_t cap, const char *why)
{
	snprintf(err, cap, "%s", why);
	return -EINVAL;
}

int witness_peer_parse(const char *spec, struct witness_peer *out, char *err,
		       size_t err_size)
{
	static const char scheme[] = "http://";
	const char *sp, *hostport, *slash, *colon;

	memset(out, 0, sizeof(*out));
	if (strlen(spec) >= WITNESS_SPEC_BYTES_MAX)
		return fail(err, err_size, "witness spec too long");
	if (strncmp(spec, scheme, sizeof(scheme) - 1) != 0)
		return fail(err, err_size, "witness URL must start http://");
	sp = strchr(spec, ' ');
	if (!sp)
		return fail(err, err_size,
			    "expected 'http://HOST:PORT KEY' (a space, then "
			    "the witness's cosigner key)");
	hostport = spec + sizeof(scheme) - 1;
	slash = memchr(hostport, '/', (size_t)(sp - hostport));
	const char *hp_end = slash ? slash : sp;
	colon = memchr(hostport, ':', (size_t)(hp_end - hostport));
	if (!colon || colon == hostport ||
	    (size_t)(colon - hostport) >= sizeof(out->host) ||
	    (size_t)(hp_end - colon - 1) >= sizeof(out->port) ||
	    hp_end - colon - 1 == 0)
		return fail(err, err_size, "witness URL needs HOST:PORT");
	memcpy(out->host, hostport, (size_t)(colon - hostport));
	memcpy(out->port, colon + 1, (size_t)(hp_end - colon - 1));
	size_t plen = slash ? (size_t)(sp - slash) : 0;
	if (plen + sizeof("/add-checkpoint") > sizeof(out->path))
		return fail(err, err_size, "witness URL path too long");
	snprintf(out->path, sizeof(out->path), "%.*s/add-checkpoint", (int)plen,
		 slash ? slash : "");
	if (plen && out->path[plen - 1] == '/')
		return fail(err, err_size, "witness URL ends in '/'");

	/* NAME+<8 hex>+<base64(0x04 || key)> */
	const char *key = sp + 1;
	const char *p1 = strchr(key, '+');
	const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
	if (!p1 || !p2 || p2 - p1 != 9 || p1 == key ||
	    (size_t)(p1 - key) > NOTE_NAME_BYTES_MAX ||
	    !note_name_valid(key, (size_t)(p1 - key)))
		return fail(err, err_size,
			    "witness key must be NAME+<8 hex>+<base64>");
	u8 raw[33];
	if (parse_base64(p2 + 1, strlen(p2 + 1), raw, sizeof(raw)) != 33 ||
	    raw[0] != COSIG_ALG_ED25519)
		return fail(err, err_size,
			    "witness key is not a cosigner (0x04) Ed25519 key");
	memcpy(out->key.name, key, (size_t)(p1 - key));
	out->key.name_len = (size_t)(p1 - key);
	memcpy(out->key.public_key, raw + 1, 32);
	char hex[9];
	snprintf(hex, sizeof(hex), "%08x",
		 (unsigned)cosig_key_id(out->key.name, out->key.name_len,
					out->key.public_key));
	if (memcmp(hex, p1 + 1, 8) != 0)
		return fail(err, err_size,
			    "witness key id does not match its key");
	return 0;
}

static long remaining_ms(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (long)(deadline->tv_sec - now.tv_sec) * 1000 +
		  (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* Wait for fd to be ready for events before the deadline, looking at
 * *cancel every WITNESS_CANCEL_POLL_MS: a shutdown must not wait out a
 * witness that does not answer. */
static int wait_fd(int fd, short events, const struct timespec *deadline,
		   const _Atomic bool *cancel)
{
	struct pollfd p = {.fd = fd, .events = events};

	/* At most WITNESS_TIMEOUT_MS / WITNESS_CANCEL_POLL_MS + 1 slices. */
	for (;;) {
		if (cancel && atomic_load(cancel))
			return -ECANCELED;
		long left = remaining_ms(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		int r = poll(&p, 1,
			     (int)(left < WITNESS_CANCEL_POLL_MS
					   ? left
					   : WITNESS_CANCEL_POLL_MS));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			return 0;
	}
}

int witness_resolve(struct witness_peer *w)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	unsigned n = 0;

	/* A numeric host needs no lookup: try that first. */
	if (getaddrinfo(w->host, w->port, &hints, &ai) != 0) {
		ai = NULL;
		hints.ai_flags = AI_NUMERICSERV;
		if (getaddrinfo(w->host, w->port, &hints, &ai) != 0)
			return -EHOSTUNREACH;
	}
	for (struct addrinfo *p = ai; p && n < WITNESS_ADDRS_MAX;
	     p = p->ai_next) {
		if (p->ai_addrlen > sizeof(w->addrs[0]))
			continue;
		memcpy(&w->addrs[n], p->ai_addr, p->ai_addrlen);
		w->addr_lens[n] = p->ai_addrlen;
		n++;
	}
	freeaddrinfo(ai);
	if (n == 0)
		return -EHOSTUNREACH;
	w->naddrs = n;
	return 0;
}

int witness_post(const struct witness_peer *w, const char *body, size_t len,
		 const _Atomic bool *cancel, int *status, char *resp,
		 size_t cap, size_t *resp_len)
{
	struct timespec deadline;
	char *buf = NULL;
	size_t got = 0;
	int fd = -1, ret;

	*status = 0;
	*resp_len = 0;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += (long)WITNESS_TIMEOUT_MS * 1000000L;
	deadline.tv_sec += deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;

	if (w->naddrs == 0)
		return -EHOSTUNREACH;
	/* Every address the name has ("localhost" may be ::1 first while
	 * the witness listens on 127.0.0.1), all under the one deadline. */
	ret = -ECONNREFUSED;
	for (unsigned k = 0; k < w->naddrs && fd < 0 && ret != -ECANCELED;
	     k++) {
		const struct sockaddr *sa =
			(const struct sockaddr *)&w->addrs[k];
		fd = socket(sa->sa_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		if (connect(fd, sa, w->addr_lens[k]) < 0 &&
		    errno != EINPROGRESS) {
			ret = -errno;
		} else if ((ret = wait_fd(fd, POLLOUT, &deadline, cancel)) ==
			   0) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
			ret = -soerr;
		}
		if (ret != 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0)
		goto cleanup;

	char head[512];
	int hn = snprintf(head, sizeof(head),
			  "POST %s HTTP/1.1\r\nHost: %s:%s\r\n"
			  "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n",
			  w->path, w->host, w->port, len);
	const char *parts[2] = {head, body};
	size_t sizes[2] = {(size_t)hn, len};
	for (int k = 0; k < 2; k++) {
		size_t off = 0;
		while (off < sizes[k]) {
			ssize_t n = send(fd, parts[k] + off, sizes[k] - off,
					 MSG_NOSIGNAL);
			if (n < 0 && errno == EAGAIN) {
				ret = wait_fd(fd, POLLOUT, &deadline, cancel);
				if (ret < 0)
					goto cleanup;
				continue;
			}
			if (n <= 0) {
				ret = n < 0 ? -errno : -EPIPE;
				goto cleanup;
			}
			off += (size_t)n;
		}
	}

	/* Read to EOF (Connection: close), at most the cap. */
	buf = malloc(WITNESS_RESPONSE_BYTES_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		ssize_t n = recv(fd, buf + got,
				 WITNESS_RESPONSE_BYTES_MAX - got, 0);
		if (n < 0 && errno == EAGAIN) {
			ret = wait_fd(fd, POLLIN, &deadline, cancel);
			if (ret < 0)
				goto cleanup;
			continue;
		}
		if (n < 0) {
			ret = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == WITNESS_RESPONSE_BYTES_MAX) {
			ret = -EMSGSIZE;
			goto cleanup;
		}
	}
	buf[got] = '\0';
	int major, minor, code;
	if (sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &code) != 3) {
		ret = -EPROTO;
		goto cleanup;
	}
	char *sep = strstr(buf, "\r\n\r\n");
	if (!sep) {
		ret = -EPROTO;
		goto cleanup;
	}
	sep += 4;
	size_t blen = got - (size_t)(sep - buf);
	if (blen >= cap)
		blen = cap - 1;
	memcpy(resp, sep, blen);
	resp[blen] = '\0';
	*resp_len = blen;
	*status = code;
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}
