/*
 * witness.h - the log's side of C2SP tlog-witness: the witnesses a
 * server sends its checkpoints to, and the HTTP POST that does it.
 *
 * A witness is named by "http://HOST:PORT[/PREFIX] NAME+<8 hex>+<base64>":
 * where it listens, and its cosigner verifier key (key type 0x04, as
 * `tpwallet witness` prints it).  Plain HTTP on a numeric or resolvable
 * host: run witnesses on loopback or behind a TLS proxy for now.
 *
 * Nothing here is thread-safe: a witness_peer belongs to one thread (the
 * audit module's witness thread), which resolves it and posts to it.
 */
#ifndef TPW_ENGINE_WITNESS_H
#define TPW_ENGINE_WITNESS_H

#include "core/types.h"
#include "crypto/note.h"

#include <stdatomic.h>
#include <sys/socket.h>

#define WITNESSES_MAX	       8
#define WITNESS_SPEC_BYTES_MAX 1024
/* One exchange with a witness, connect to last byte. */
#define WITNESS_TIMEOUT_MS 500
/* Largest answer read from a witness (cosignature lines are ~150 bytes). */
#define WITNESS_RESPONSE_BYTES_MAX 8192
/* Addresses kept per witness ("localhost" may be ::1 and 127.0.0.1). */
#define WITNESS_ADDRS_MAX 4
/* How often witness_post looks at its cancel flag while it waits. */
#define WITNESS_CANCEL_POLL_MS 20

struct witness_peer {
	char host[256];
	char port[8];
	char path[256];		  /* PREFIX + "/add-checkpoint" */
	struct note_verifier key; /* name and public key; key_id unused */
	u64 size; /* the size it last cosigned for us; 0: none */
	/* Where it listens, as witness_resolve last found it. */
	struct sockaddr_storage addrs[WITNESS_ADDRS_MAX];
	socklen_t addr_lens[WITNESS_ADDRS_MAX];
	unsigned naddrs; /* 0: not resolved (yet) */
};

/* Parse a witness spec (above).  Returns 0 or -EINVAL with a reason in
 * err. */
int witness_peer_parse(const char *spec, struct witness_peer *out, char *err,
		       size_t err_size);

/*
 * Find the addresses of w's host (at most WITNESS_ADDRS_MAX) and keep them
 * in w.  A numeric host is converted without any lookup; a name goes to
 * getaddrinfo, which may block for the resolver's own timeouts (seconds,
 * beyond any deadline here): call it on a thread that waits for nothing
 * else.  On failure the addresses found before are kept.  Returns 0 or
 * -EHOSTUNREACH.
 */
int witness_resolve(struct witness_peer *w);

/*
 * POST body to the peer's resolved addresses (each in turn, all under one
 * deadline) and read its answer: returns 0 with the HTTP status and the
 * body (NUL-terminated, at most cap - 1 bytes), or a negative errno:
 * -ETIMEDOUT past WITNESS_TIMEOUT_MS, -EHOSTUNREACH when w has no address,
 * -ECANCELED within WITNESS_CANCEL_POLL_MS of *cancel turning true (cancel
 * may be NULL).  Never resolves a name.
 */
int witness_post(const struct witness_peer *w, const char *body, size_t len,
		 const _Atomic bool *cancel, int *status, char *resp,
		 size_t cap, size_t *resp_len);

#endif
