/*
 * cmd_witness.c - `tpwallet witness`: a small C2SP tlog-witness cosigning
 * witness (issue 5, item 6), so that a second machine can attest that a
 * log it follows never forked or rolled back.
 *
 *   tpwallet witness --listen HOST:PORT --state DIR --name NAME
 *                    --log VERIFIERKEY [--log VERIFIERKEY ...]
 *
 * Each --log is a signed-note verifier key named after the log's origin
 * (as tpwallet's GET /v1/audit/key is).  On first run the witness makes
 * its Ed25519 key, DIR/witness.key (mode 0600, a signed-note signer key
 * string); every run prints its cosigner verifier key (type 0x04) on
 * stdout once it listens.  It answers one call, POST /add-checkpoint
 * (c2sp.org/tlog-witness): it checks the log's signature, the old size
 * against what it last cosigned, and the consistency proof; then makes
 * the new (size, root) durable in DIR/state and answers the cosignature.
 *
 * One libmicrohttpd polling thread serves every request, and a mutex
 * covers check-and-persist besides, so two requests can never roll the
 * stored size back (the race the spec warns of).  DIR/state holds one
 * line per origin, "<origin> <size> <base64 root>\n", replaced whole
 * (write a temporary file, fsync, rename, fsync the directory) before a
 * cosignature leaves.
 *
 * Key rotations.  A checkpoint signed by the key the witness trusts for
 * its origin may announce the log's new key in an extension line,
 * "tpwallet-log-key <leaf index> <verifier key>", with a signature of
 * that key on the same note: once such a checkpoint is accepted, the
 * witness trusts the announced key instead (docs/audit.md, "Witnesses
 * through a rotation").  DIR/logkeys keeps what it follows, one line per
 * log, "<key given by --log> <key followed now>", replaced whole like
 * the state; a --log key that is in no line (the operator gave a new
 * one) is trusted as given.  Limits: a request body is at most
 * COSIG_REQUEST_BYTES_MAX, WITNESS_LOGS_MAX logs, WITNESS_ORIGINS_MAX
 * origins in the state file; WITNESS_CONNECTIONS_MAX connections, of
 * which WITNESS_CONNECTIONS_PER_ADDRESS_MAX from one address, each with
 * head and body deadlines that trickled bytes do not restart (netguard).
 */
#include "api/netguard.h"
#include "cli/cli.h"
#include "log/fsdir.h"
#include "log/fsfile.h"
#include "core/merkle.h"
#include "crypto/cosig.h"
#include "crypto/note.h"
#include "core/strerror.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define WITNESS_LOGS_MAX	     16
#define WITNESS_ORIGINS_MAX	     64
#define WITNESS_STATE_BYTES_MAX	     (64 * 1024)
#define WITNESS_PATH_BYTES_MAX	     4096
#define WITNESS_CONNECTIONS_MAX	     64
#define WITNESS_CONNECTION_TIMEOUT_S 10
/* Slow clients (api/netguard.h): a request head has 5 s from its request
 * line, a body (at most COSIG_REQUEST_BYTES_MAX) 10 s, however the bytes
 * trickle; one address holds at most 8 of the 64 connections. */
#define WITNESS_HEADER_TIMEOUT_S	    5
#define WITNESS_BODY_TIMEOUT_S		    10
#define WITNESS_BODY_RATE_MIN_BYTES_S	    256
#define WITNESS_CONNECTIONS_PER_ADDRESS_MAX 8

struct origin_state {
	char origin[NOTE_NAME_BYTES_MAX + 1];
	size_t origin_len;
	u64 size;
	u8 root[32];
};

struct witness {
	char dir[WITNESS_PATH_BYTES_MAX];
	struct note_signer key;
	struct note_verifier logs[WITNESS_LOGS_MAX];  /* trusted now */
	struct note_verifier given[WITNESS_LOGS_MAX]; /* by --log */
	size_t nlogs;
	struct origin_state st[WITNESS_ORIGINS_MAX];
	size_t nst;
	pthread_mutex_t lock;
};

/* A request body being received: at most COSIG_REQUEST_BYTES_MAX kept. */
struct upload {
	char buf[COSIG_REQUEST_BYTES_MAX];
	size_t len;
	bool too_large;
};

/* A reply: status, content type, a short body. */
struct answer {
	unsigned status;
	const char *type;
	char body[COSIG_LINE_BYTES_MAX + 256];
	size_t len;
};

static void say(struct answer *a, unsigned status, const char *type,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void say(struct answer *a, unsigned status, const char *type,
		const char *fmt, ...)
{
	va_list ap;
	int n;

	a->status = status;
	a->type = type;
	va_start(ap, fmt);
	n = vsnprintf(a->body, sizeof(a->body), fmt, ap);
	va_end(ap);
	a->len = n < 0 ? 0
		       : ((size_t)n < sizeof(a->body) ? (size_t)n
						      : sizeof(a->body) - 1);
}

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Read dir/name whole into buf[0..cap) (NUL-terminated); -ENOENT when
 * absent, -EFBIG when it does not fit.  With private, the file must be a
 * regular file readable by its owner only. */
static int read_small(const char *dir, const char *name, char *buf, size_t cap,
		      size_t *len_out, bool private)
{
	char path[WITNESS_PATH_BYTES_MAX + 64];
	struct stat sb;
	size_t len = 0;
	int fd = -1, ret;

	ret = path_join(path, sizeof(path), dir, name);
	if (ret < 0)
		goto cleanup;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		ret = -errno;
		goto cleanup;
	}
	if (fstat(fd, &sb) < 0) {
		ret = -errno;
		goto cleanup;
	}
	if (!S_ISREG(sb.st_mode) || (private && (sb.st_mode & 077))) {
		ret = -EPERM;
		goto cleanup;
	}
	for (;;) {
		if (len + 1 >= cap) {
			ret = -EFBIG;
			goto cleanup;
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto cleanup;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*len_out = len;
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Load DIR/witness.key, or make one on first run.  The key's name must be
 * the one asked for: a witness does not change its name silently. */
static int key_load_or_create(struct witness *w, const char *name)
{
	char text[NOTE_SIGNER_KEY_BYTES_MAX + 2];
	size_t len = 0;
	int r, ret = -1;

	r = read_small(w->dir, "witness.key", text, sizeof(text), &len, true);
	if (r == 0) {
		if (len && text[len - 1] == '\n')
			len--;
		r = note_signer_parse(text, len, &w->key);
		if (r < 0) {
			fprintf(stderr,
				"tpwallet witness: %s/witness.key: %s\n",
				w->dir, note_strerror(r));
			goto cleanup;
		}
		if (strcmp(w->key.pub.name, name) != 0) {
			fprintf(stderr,
				"tpwallet witness: %s/witness.key is the key "
				"of '%s', not of '%s'\n",
				w->dir, w->key.pub.name, name);
			goto cleanup;
		}
		ret = 0;
		goto cleanup;
	}
	if (r != -ENOENT) {
		fprintf(stderr, "tpwallet witness: %s/witness.key: %s\n",
			w->dir,
			r == -EPERM ? "not a regular file of mode 0600"
				    : tpw_strerror(-r));
		goto cleanup;
	}
	r = note_keygen(name, strlen(name), &w->key);
	if (r == 0)
		r = note_signer_format(&w->key, text, sizeof(text) - 1, &len);
	if (r < 0) {
		fprintf(stderr, "tpwallet witness: --name: %s\n",
			note_strerror(r));
		goto cleanup;
	}
	text[len++] = '\n';
	r = fsfile_replace(w->dir, "witness.key", text, len);
	if (r < 0) {
		fprintf(stderr,
			"tpwallet witness: cannot write %s/witness.key: %s\n",
			w->dir, tpw_strerror(-r));
		goto cleanup;
	}
	ret = 0;
cleanup:
	sodium_memzero(text, sizeof(text));
	return ret;
}

static struct origin_state *state_find(struct witness *w, const char *origin,
				       size_t len)
{
	for (size_t i = 0; i < w->nst; i++)
		if (w->st[i].origin_len == len &&
		    memcmp(w->st[i].origin, origin, len) == 0)
			return &w->st[i];
	return NULL;
}

/* Read DIR/name (at most cap - 1 bytes, into text) and hand each line,
 * NUL-terminated in place of its "\n", to one_line; the first line it
 * refuses (or a last line without "\n") is named on stderr.  An absent
 * file has no lines.  Returns 0 or -1. */
static int load_lines(struct witness *w, const char *name, char *text,
		      size_t cap, int (*one_line)(struct witness *, char *))
{
	size_t len = 0, at = 0;
	unsigned line = 0;
	int r;

	r = read_small(w->dir, name, text, cap, &len, false);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		fprintf(stderr, "tpwallet witness: %s/%s: %s\n", w->dir, name,
			tpw_strerror(-r));
		return -1;
	}
	while (at < len) {
		char *nl = memchr(text + at, '\n', len - at);

		line++;
		if (!nl)
			goto bad;
		*nl = '\0';
		if (one_line(w, text + at) < 0)
			goto bad;
		at = (size_t)(nl - text) + 1;
	}
	return 0;
bad:
	fprintf(stderr, "tpwallet witness: %s/%s: line %u is malformed\n",
		w->dir, name, line);
	return -1;
}

/* One line of DIR/state: "<origin> <size> <base64 root>". */
static int state_line(struct witness *w, char *s)
{
	struct origin_state o = {0};
	char *sp1 = strchr(s, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;

	if (!sp2 || w->nst == WITNESS_ORIGINS_MAX)
		return -1;
	o.origin_len = (size_t)(sp1 - s);
	if (!note_name_valid(s, o.origin_len))
		return -1;
	memcpy(o.origin, s, o.origin_len);
	if (parse_u64_n(sp1 + 1, (size_t)(sp2 - sp1 - 1), UINT64_MAX,
			&o.size) != 0 ||
	    parse_base64(sp2 + 1, strlen(sp2 + 1), o.root, sizeof(o.root)) !=
		    (long)sizeof(o.root) ||
	    state_find(w, o.origin, o.origin_len))
		return -1;
	w->st[w->nst++] = o;
	return 0;
}

/* Parse DIR/state strictly; an absent file is an empty state. */
static int state_load(struct witness *w)
{
	static char text[WITNESS_STATE_BYTES_MAX];

	return load_lines(w, "state", text, sizeof(text), state_line);
}

/* Write states[0..n) as DIR/state, durably. */
static int state_save(const struct witness *w, const struct origin_state *st,
		      size_t n)
{
	static char text[WITNESS_STATE_BYTES_MAX];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		char b64[64];
		int k;

		sodium_bin2base64(b64, sizeof(b64), st[i].root, 32,
				  sodium_base64_VARIANT_ORIGINAL);
		k = snprintf(text + len, sizeof(text) - len, "%.*s %llu %s\n",
			     (int)st[i].origin_len, st[i].origin,
			     (unsigned long long)st[i].size, b64);
		if (k < 0 || (size_t)k >= sizeof(text) - len)
			return -EFBIG;
		len += (size_t)k;
	}
	return fsfile_replace(w->dir, "state", text, len);
}

#define WITNESS_LOGKEYS_BYTES_MAX                                              \
	(WITNESS_LOGS_MAX * 2 * (NOTE_VERIFIER_KEY_BYTES_MAX + 1))

static bool same_key(const struct note_verifier *a,
		     const struct note_verifier *b)
{
	return a->name_len == b->name_len &&
	       memcmp(a->name, b->name, a->name_len) == 0 &&
	       memcmp(a->public_key, b->public_key, 32) == 0;
}

/* Write DIR/logkeys from w->logs, with logs[li] as next, durably. */
static int logkeys_save(const struct witness *w, size_t li,
			const struct note_verifier *next)
{
	static char text[WITNESS_LOGKEYS_BYTES_MAX];
	size_t len = 0;

	for (size_t i = 0; i < w->nlogs; i++) {
		const struct note_verifier *now = i == li ? next : &w->logs[i];
		size_t n;
		if (same_key(now, &w->given[i]))
			continue;
		if (note_verifier_format(&w->given[i], text + len,
					 sizeof(text) - len - 1, &n) != 0)
			return -EFBIG;
		len += n;
		text[len++] = ' ';
		if (note_verifier_format(now, text + len,
					 sizeof(text) - len - 1, &n) != 0)
			return -EFBIG;
		len += n;
		text[len++] = '\n';
	}
	return fsfile_replace(w->dir, "logkeys", text, len);
}

/* One line of DIR/logkeys: "<key given by --log> <key followed>"; the
 * followed key replaces the trusted key of the --log it names. */
static int logkeys_line(struct witness *w, char *s)
{
	struct note_verifier given, now;
	char *sp = strchr(s, ' ');

	if (!sp || note_verifier_parse(s, (size_t)(sp - s), &given) ||
	    note_verifier_parse(sp + 1, strlen(sp + 1), &now) ||
	    strcmp(given.name, now.name) != 0)
		return -1;
	for (size_t i = 0; i < w->nlogs; i++)
		if (same_key(&w->given[i], &given))
			w->logs[i] = now;
	return 0;
}

/* Read DIR/logkeys strictly; lines of keys no --log gives are dropped at
 * the next save.  An absent file follows nothing. */
static int logkeys_load(struct witness *w)
{
	static char text[WITNESS_LOGKEYS_BYTES_MAX + 1];

	return load_lines(w, "logkeys", text, sizeof(text), logkeys_line);
}

/* The log's new key, when the checkpoint cp (in the note, already
 * verified under the trusted key `log`) announces one that also signed
 * the note: a "tpwallet-log-key <index> <key>" extension line, index
 * inside the checkpoint's tree, the key named after the origin and not
 * the one trusted. */
static bool announced_key(const struct checkpoint *cp, const char *note,
			  size_t note_len, const struct note_verifier *log,
			  struct note_verifier *out)
{
	static const char tag[] = "tpwallet-log-key ";
	const char *p = cp->extensions;
	struct note_opened opened;

	if (!p)
		return false; /* no extension lines */
	const char *end = p + cp->extensions_len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return false;
		size_t n = (size_t)(nl - p);
		const char *sp = n > sizeof(tag) - 1
					 ? memchr(p + sizeof(tag) - 1, ' ',
						  n - (sizeof(tag) - 1))
					 : NULL;
		u64 index;
		if (sp && memcmp(p, tag, sizeof(tag) - 1) == 0)
			return parse_u64_n(p + sizeof(tag) - 1,
					   (size_t)(sp - p) - (sizeof(tag) - 1),
					   UINT64_MAX, &index) == 0 &&
			       index < cp->size &&
			       note_verifier_parse(sp + 1,
						   (size_t)(nl - sp - 1),
						   out) == 0 &&
			       out->name_len == log->name_len &&
			       memcmp(out->name, log->name, log->name_len) ==
				       0 &&
			       !same_key(out, log) &&
			       note_open(note, note_len, out, 1, &opened) == 0;
		p = nl + 1;
	}
	return false;
}

/* The whole add-checkpoint call, under w->lock. */
static void add_checkpoint(struct witness *w, const char *body, size_t len,
			   struct answer *a)
{
	static struct cosig_request req;
	static struct origin_state next[WITNESS_ORIGINS_MAX];
	const struct note_verifier *log = NULL;
	struct note_verifier next_key;
	size_t li = 0;
	bool follow;
	struct note_opened opened;
	struct checkpoint cp;
	struct origin_state *st;
	const char *nl;
	size_t origin_len, n;
	u64 stored;
	int r;

	r = cosig_request_parse(body, len, &req);
	if (r < 0) {
		say(a, 400, "text/plain", "bad request: %s\n",
		    cosig_strerror(r));
		return;
	}
	nl = memchr(req.note, '\n', req.note_len);
	origin_len = nl ? (size_t)(nl - req.note) : 0;
	for (size_t i = 0; nl && i < w->nlogs; i++)
		if (w->logs[i].name_len == origin_len &&
		    memcmp(w->logs[i].name, req.note, origin_len) == 0)
			log = &w->logs[li = i];
	if (!log) {
		say(a, 404, "text/plain", "unknown log origin\n");
		return;
	}
	r = note_open(req.note, req.note_len, log, 1, &opened);
	if (r == NOTE_E_UNVERIFIED || r == NOTE_E_BAD_SIGNATURE) {
		say(a, 403, "text/plain",
		    "checkpoint not signed by the log: %s\n", note_strerror(r));
		return;
	}
	if (r == 0)
		r = checkpoint_parse(opened.text, opened.text_len, &cp);
	if (r < 0) {
		say(a, 400, "text/plain", "bad checkpoint: %s\n",
		    note_strerror(r));
		return;
	}
	follow = announced_key(&cp, req.note, req.note_len, log, &next_key);
	if (req.old_size > cp.size) {
		say(a, 400, "text/plain",
		    "old size %llu above checkpoint size %llu\n",
		    (unsigned long long)req.old_size,
		    (unsigned long long)cp.size);
		return;
	}
	st = state_find(w, log->name, log->name_len);
	stored = st ? st->size : 0;
	if (req.old_size != stored) {
		say(a, 409, "text/x.tlog.size", "%llu\n",
		    (unsigned long long)stored);
		return;
	}
	if (st && cp.size == stored) {
		if (memcmp(cp.root, st->root, 32) != 0) {
			fprintf(stderr,
				"tpwallet witness: FORK of %s at size %llu: "
				"a second root was signed\n",
				log->name, (unsigned long long)stored);
			say(a, 409, "text/x.tlog.size", "%llu\n",
			    (unsigned long long)stored);
			return;
		}
		if (req.nproof) {
			say(a, 422, "text/plain", "bad consistency proof: %s\n",
			    merkle_strerror(MERKLE_E_PROOF_LONG));
			return;
		}
	} else if (stored == 0) {
		if (req.nproof) {
			say(a, 422, "text/plain",
			    "bad consistency proof: must be empty from size "
			    "0\n");
			return;
		}
	} else {
		r = merkle_verify_consistency(
			stored, cp.size, st->root, cp.root,
			(const u8(*)[32])req.proof, req.nproof);
		if (r < 0) {
			fprintf(stderr,
				"tpwallet witness: %s: inconsistent checkpoint "
				"%llu -> %llu (%s)\n",
				log->name, (unsigned long long)stored,
				(unsigned long long)cp.size,
				merkle_strerror(r));
			say(a, 422, "text/plain", "bad consistency proof: %s\n",
			    merkle_strerror(r));
			return;
		}
	}

	/* Durable before the cosignature leaves. */
	memcpy(next, w->st, w->nst * sizeof(next[0]));
	n = w->nst;
	st = NULL;
	for (size_t i = 0; i < n; i++)
		if (next[i].origin_len == log->name_len &&
		    memcmp(next[i].origin, log->name, log->name_len) == 0)
			st = &next[i];
	if (!st) {
		if (n == WITNESS_ORIGINS_MAX) {
			say(a, 507, "text/plain",
			    "too many logs in the state\n");
			return;
		}
		st = &next[n++];
		memset(st, 0, sizeof(*st));
		memcpy(st->origin, log->name, log->name_len);
		st->origin_len = log->name_len;
	}
	st->size = cp.size;
	memcpy(st->root, cp.root, 32);
	r = state_save(w, next, n);
	if (r < 0) {
		fprintf(stderr, "tpwallet witness: cannot save the state: %s\n",
			tpw_strerror(-r));
		say(a, 500, "text/plain", "cannot save the witness state\n");
		return;
	}
	memcpy(w->st, next, n * sizeof(next[0]));
	w->nst = n;
	/* The log's rotation, announced under the key trusted so far and
	 * signed by the new one: trusted from now on. */
	if (follow) {
		r = logkeys_save(w, li, &next_key);
		if (r < 0) {
			fprintf(stderr,
				"tpwallet witness: cannot save %s/logkeys: "
				"%s\n",
				w->dir, tpw_strerror(-r));
		} else {
			fprintf(stderr,
				"tpwallet witness: %s rotated its key: now "
				"trusting key id %08x, announced under "
				"%08x at size %llu\n",
				log->name, (unsigned)next_key.key_id,
				(unsigned)log->key_id,
				(unsigned long long)cp.size);
			w->logs[li] = next_key;
		}
	}

	r = cosig_sign(&w->key, (u64)time(NULL), opened.text, opened.text_len,
		       a->body, sizeof(a->body), &a->len);
	if (r < 0) {
		say(a, 500, "text/plain", "cannot cosign: %s\n",
		    cosig_strerror(r));
		return;
	}
	a->status = 200;
	a->type = "text/plain; charset=utf-8";
}

static enum MHD_Result send_answer(struct MHD_Connection *c,
				   const struct answer *a)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		a->len, (void *)(uintptr_t)a->body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
	/* After a chunked body the bytes are no longer read strictly. */
	if (netguard_close_after(netguard_conn_of(c)))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	ok = MHD_queue_response(c, a->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c,
				 const char *url, const char *method,
				 const char *version, const char *data,
				 size_t *data_size, void **con_cls)
{
	struct witness *w = cls;
	struct upload *u = *con_cls;
	/* One polling thread calls this: one answer buffer is enough. */
	static struct answer a;

	(void)version;
	if (!u) {
		struct netguard_conn *nc = netguard_conn_of(c);
		const char *cl = MHD_lookup_connection_value(
			c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		bool body = (cl && strcmp(cl, "0") != 0) ||
			    MHD_lookup_connection_value(
				    c, MHD_HEADER_KIND,
				    MHD_HTTP_HEADER_TRANSFER_ENCODING);
		enum framing_error fe =
			netguard_framing_error(nc, netguard_requests(nc));
		netguard_head_done(nc, NULL, 0, body);
		if (fe != FRAMING_OK) {
			/* Answered in this first call: the connection then
			 * closes, its body unread. */
			say(&a, 400, "text/plain", "bad framing: %s\n",
			    framing_error_text(fe));
			return send_answer(c, &a);
		}
		/* A declared length over the limit: refused before any byte
		 * of it (and before a 100 Continue). */
		u64 cl_bytes = 0;
		if (cl && (strlen(cl) > 9 ||
			   (parse_digits(cl, strlen(cl), &cl_bytes) == 0 &&
			    cl_bytes > COSIG_REQUEST_BYTES_MAX))) {
			say(&a, 413, "text/plain",
			    "request body above %d bytes\n",
			    COSIG_REQUEST_BYTES_MAX);
			return send_answer(c, &a);
		}
		u = malloc(sizeof(*u));
		if (!u)
			return MHD_NO;
		u->len = 0;
		u->too_large = false;
		*con_cls = u;
		return MHD_YES;
	}
	if (*data_size) {
		netguard_body_bytes(netguard_conn_of(c), *data_size);
		if (u->too_large || *data_size > sizeof(u->buf) - u->len)
			u->too_large = true;
		else {
			memcpy(u->buf + u->len, data, *data_size);
			u->len += *data_size;
		}
		*data_size = 0;
		return MHD_YES;
	}
	netguard_body_done(netguard_conn_of(c));
	if (strcmp(url, "/add-checkpoint") != 0) {
		say(&a, 404, "text/plain", "not found\n");
	} else if (strcmp(method, "POST") != 0) {
		say(&a, 405, "text/plain", "method not allowed: use POST\n");
	} else if (u->too_large) {
		say(&a, 413, "text/plain", "request body above %d bytes\n",
		    COSIG_REQUEST_BYTES_MAX);
	} else {
		pthread_mutex_lock(&w->lock);
		add_checkpoint(w, u->buf, u->len, &a);
		pthread_mutex_unlock(&w->lock);
	}
	return send_answer(c, &a);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)toe;
	netguard_request_done(netguard_conn_of(c));
	free(*con_cls);
	*con_cls = NULL;
}

/* The request line is in: the head's deadline starts (netguard.h). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls;
	(void)uri;
	netguard_request_line(netguard_conn_of(c));
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet witness --listen HOST:PORT --state DIR "
		"--name NAME\n"
		"                        --log VERIFIERKEY [--log ...]\n"
		"\n"
		"A C2SP tlog-witness: POST /add-checkpoint cosigns a log's\n"
		"checkpoint once it is proven consistent with the last one\n"
		"cosigned.  The key is made in DIR/witness.key on first run;\n"
		"the cosigner verifier key is printed on stdout at start.\n"
		"A log's key rotation is followed when the log announces the\n"
		"new key under the trusted one (DIR/logkeys keeps it); after\n"
		"a rotation with overlap 0, restart with the new --log key.\n\n"
		"Example (log.vkey: the first line of GET /v1/audit/key, no "
		"credential needed):\n"
		"  tpwallet witness --listen 127.0.0.1:8090 --state witness "
		"--name witness.example \\\n"
		"      --log \"$(cat log.vkey)\"\n");
}

int cmd_witness(int argc, char **argv)
{
	static struct witness w;
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"state", required_argument, NULL, 's'},
		{"name", required_argument, NULL, 'n'},
		{"log", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *listen = NULL, *name = NULL;
	char host[256], service[8], vkey[COSIG_VERIFIER_KEY_BYTES_MAX + 1];
	unsigned short port = 0;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	struct MHD_Daemon *d = NULL;
	struct netguard *ng = NULL;
	const struct netguard_limits nl = {
		.body_budget_bytes = (size_t)WITNESS_CONNECTIONS_MAX *
				     COSIG_REQUEST_BYTES_MAX,
		.body_budget_per_address_bytes =
			(size_t)WITNESS_CONNECTIONS_PER_ADDRESS_MAX *
			COSIG_REQUEST_BYTES_MAX,
		.body_budget_per_principal_bytes =
			(size_t)WITNESS_CONNECTIONS_MAX *
			COSIG_REQUEST_BYTES_MAX,
		.idle_timeout_s = WITNESS_CONNECTION_TIMEOUT_S,
		.header_timeout_s = WITNESS_HEADER_TIMEOUT_S,
		.body_timeout_s = WITNESS_BODY_TIMEOUT_S,
		.body_rate_min_bytes_s = WITNESS_BODY_RATE_MIN_BYTES_S,
		.connections_per_address_max =
			WITNESS_CONNECTIONS_PER_ADDRESS_MAX,
		.connections_max = WITNESS_CONNECTIONS_MAX,
	};
	sigset_t stop;
	int c, r, sig = 0, ret = EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "l:s:n:L:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': listen = optarg; break;
		case 's':
			if (strlen(optarg) >= sizeof(w.dir)) {
				fprintf(stderr,
					"tpwallet witness: --state too long\n");
				goto cleanup;
			}
			snprintf(w.dir, sizeof(w.dir), "%s", optarg);
			break;
		case 'n': name = optarg; break;
		case 'L':
			if (w.nlogs == WITNESS_LOGS_MAX) {
				fprintf(stderr,
					"tpwallet witness: at most %d --log\n",
					WITNESS_LOGS_MAX);
				goto cleanup;
			}
			r = note_verifier_parse(optarg, strlen(optarg),
						&w.logs[w.nlogs]);
			if (r < 0) {
				fprintf(stderr, "tpwallet witness: --log: %s\n",
					note_strerror(r));
				goto cleanup;
			}
			for (size_t i = 0; i < w.nlogs; i++)
				if (strcmp(w.logs[i].name,
					   w.logs[w.nlogs].name) == 0) {
					fprintf(stderr,
						"tpwallet witness: two --log "
						"keys for origin %s\n",
						w.logs[i].name);
					goto cleanup;
				}
			w.given[w.nlogs] = w.logs[w.nlogs];
			w.nlogs++;
			break;
		case 'h':
			usage(stdout);
			ret = 0;
			goto cleanup;
		default: usage(stderr); goto cleanup;
		}
	}
	if (optind != argc || !listen || !w.dir[0] || !name || !w.nlogs) {
		usage(stderr);
		goto cleanup;
	}
	if (parse_listen(listen, host, sizeof(host), &port) < 0) {
		fprintf(stderr, "tpwallet witness: bad --listen '%s'\n",
			listen);
		goto cleanup;
	}
	ret = EXIT_DATA;
	/* A new state directory must outlive a crash, or the witness would
	 * come back with a new key and no memory, and cosign a rollback. */
	int mk = fsdir_make(w.dir);
	if (mk < 0) {
		fprintf(stderr, "tpwallet witness: cannot create %s: %s\n",
			w.dir, tpw_strerror(-mk));
		goto cleanup;
	}
	/* Another user who can write here can replace the state (its
	 * memory of what it cosigned), as for the server's data. */
	struct stat dst;
	if (stat(w.dir, &dst) == 0 && (dst.st_mode & (S_IWGRP | S_IWOTH))) {
		fprintf(stderr,
			"tpwallet witness: %s is mode %04o: group or others "
			"can write it, and so replace the state; refusing it "
			"(chmod 700 %s)\n",
			w.dir, (unsigned)(dst.st_mode & 07777), w.dir);
		goto cleanup;
	}
	if (key_load_or_create(&w, name) < 0 || state_load(&w) < 0 ||
	    logkeys_load(&w) < 0)
		goto cleanup;
	pthread_mutex_init(&w.lock, NULL);

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = EXIT_SOFTWARE;
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (getaddrinfo(host, service, &hints, &res) != 0 || !res) {
		fprintf(stderr, "tpwallet witness: cannot resolve %s\n", host);
		res = NULL;
		goto cleanup;
	}
	ng = netguard_create(&nl);
	if (!ng) {
		fprintf(stderr, "tpwallet witness: out of memory\n");
		goto cleanup;
	}
	d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			MHD_USE_ERROR_LOG |
			(res->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, netguard_accept, ng, on_access, &w, MHD_OPTION_SOCK_ADDR,
		res->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)WITNESS_CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)WITNESS_CONNECTIONS_MAX,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, netguard_notify, ng,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "tpwallet witness: cannot listen on %s\n",
			listen);
		goto cleanup;
	}
	if (cosig_verifier_format(&w.key.pub, vkey, sizeof(vkey), NULL) < 0)
		goto cleanup;
	printf("%s\n", vkey);
	fflush(stdout);
	fprintf(stderr, "tpwallet witness: listening on %s, %zu log(s)\n",
		listen, w.nlogs);

	sigwait(&stop, &sig);
	fprintf(stderr, "tpwallet witness: stopping (signal %d)\n", sig);
	ret = 0;
cleanup:
	if (d)
		MHD_stop_daemon(d);
	netguard_destroy(ng);
	if (res)
		freeaddrinfo(res);
	note_signer_clear(&w.key);
	return ret;
}
