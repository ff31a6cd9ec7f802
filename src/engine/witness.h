/*
 * witness.h - the log's side of C2SP tlog-witness: the witnesses a
 * server sends its checkpoints to, and the HTTP POST that does it.
 *
 * A witness is named by "http://HOST:PORT[/PREFIX] NAME+<8 hex>+<base64>":
 * where it listens, and its cosigner verifier key (key type 0x04, as
 * `tpwallet witness` prints it).  Plain HTTP on a numeric or resolvable
 * host: run witnesses on loopback or behind a TLS proxy for now.
 */
#ifndef TPW_ENGINE_WITNESS_H
#define TPW_ENGINE_WITNESS_H

#include "core/types.h"
#include "crypto/note.h"

#define WITNESSES_MAX	       8
#define WITNESS_SPEC_BYTES_MAX 1024
/* One exchange with a witness, connect to last byte. */
#define WITNESS_TIMEOUT_MS 500
/* Largest answer read from a witness (cosignature lines are ~150 bytes). */
#define WITNESS_RESPONSE_BYTES_MAX 8192

struct witness_peer {
	char host[256];
	char port[8];
	char path[256];		  /* PREFIX + "/add-checkpoint" */
	struct note_verifier key; /* name and public key; key_id unused */
	u64 size; /* the size it last cosigned for us; 0: none */
};

/* Parse a witness spec (above).  Returns 0 or -EINVAL with a reason in
 * err. */
int witness_peer_parse(const char *spec, struct witness_peer *out, char *err,
		       size_t err_size);

/*
 * POST body to the peer and read its answer: returns 0 with the HTTP
 * status and the body (NUL-terminated, at most cap - 1 bytes), or a
 * negative errno (-ETIMEDOUT past WITNESS_TIMEOUT_MS).
 */
int witness_post(const struct witness_peer *w, const char *body, size_t len,
		 int *status, char *resp, size_t cap, size_t *resp_len);

#endif
