/*
 * cmd_drill.c - `tpwallet drill`: the disaster-recovery drill (issue 14):
 * RTO and RPO as measured numbers.
 *
 * It restores the newest backup of a location into a scratch directory
 * (backup_restore: every file checked, the Merkle tree against the
 * signed checkpoint, the state recovered), starts `tpwallet serve` on it
 * on a free loopback port and waits until /readyz answers 200: the RTO
 * is the time from the start to then.  It reads back a sample of
 * transfers and accounts (ids taken from the restored journal) from the
 * restored server, and with --live from the live server too: a transfer
 * must be the same on both, an account must exist on both with the same
 * ledger, code and flags (its balances may have moved on).  The RPO is
 * what a disaster now would lose: entries (the live server's digest_seq
 * from GET /v1/cluster minus the restored entry, with --live) and seconds
 * (now minus the restored newest entry's time when the live server has
 * more, 0 when it has none; without --live the age of the newest entry).
 *
 * Exit status: 0 every check held and both figures are within their
 * objectives, 1 otherwise (the figures are printed all the same), 2
 * usage.  For cron and CI: --json prints one object.
 */
#include "cli/backup.h"
#include "cli/cli.h"
#include "core/parse.h"
#include "core/strerror.h"
#include "core/u128.h"
#include "log/fsdir.h"
#include "log/fsfile.h"
#include "log/journal.h"
#include "log/journal_reader.h"
#include "net/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

#define SAMPLE_MAX	16u
#define IDS_KEPT_MAX	4096u
#define READY_WAIT_MS	120000u
#define STOP_WAIT_MS	10000u
#define POLL_MS		50u
#define TOKEN_BYTES_MAX 4096u

static u64 mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000ull + (u64)ts.tv_nsec / 1000000ull;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Ids seen in the journal: every k-th kept so at most IDS_KEPT_MAX. */
struct ids {
	u128 v[IDS_KEPT_MAX];
	size_t n;
	u64 seen, every;
};

static void ids_add(struct ids *s, u128 id)
{
	if (s->seen++ % s->every != 0)
		return;
	if (s->n == IDS_KEPT_MAX) { /* keep every other one, halve the rate */
		for (size_t i = 0; i < IDS_KEPT_MAX / 2; i++)
			s->v[i] = s->v[2 * i];
		s->n = IDS_KEPT_MAX / 2;
		s->every *= 2;
	}
	s->v[s->n++] = id;
}

static void collect(const char *data, struct ids *tr, struct ids *ac)
{
	struct journal_reader *rd = NULL;
	struct journal_record r;
	const u8 *raw;
	size_t raw_bytes;

	tr->every = ac->every = 1;
	if (journal_reader_open(&rd, data, 1) < 0)
		return;
	while (journal_reader_next(rd, &r, &raw, &raw_bytes) == 1) {
		struct ids *s = r.type == JOURNAL_CREATE_TRANSFERS  ? tr
				: r.type == JOURNAL_CREATE_ACCOUNTS ? ac
								    : NULL;
		for (u32 o = 0; s && o + JOURNAL_EVENT_BYTES <= r.payload_bytes;
		     o += JOURNAL_EVENT_BYTES) {
			u128 id;
			memcpy(&id, (const u8 *)r.payload + o, sizeof(id));
			ids_add(s, id);
		}
	}
	journal_reader_close(rd);
}

struct peer {
	struct http_client *c;
	char auth[TOKEN_BYTES_MAX + 16];
};

static int peer_open(struct peer *p, const char *url, const char *token_file)
{
	char *text = NULL;
	size_t len = 0;
	memset(p, 0, sizeof(*p));
	p->auth[0] = '\0';
	if (token_file) {
		int ret = fsfile_read(token_file, TOKEN_BYTES_MAX, &text, &len);
		if (ret != 0)
			return ret;
		char *nl = memchr(text, '\n', len);
		if (nl)
			*nl = '\0';
		pathf(p->auth, sizeof(p->auth), "Bearer %s", text);
		sodium_memzero(text, len);
		free(text);
	}
	struct http_options o = {.connect_timeout_ms = 2000,
				 .total_timeout_ms = 10000};
	return http_client_open(&p->c, url, &o);
}

/* GET target: the status, the body parsed (when JSON) into *body. */
static int peer_get(struct peer *p, const char *target, json_t **body)
{
	struct http_header h = {"Authorization", p->auth};
	struct http_request rq = {.method = "GET",
				  .target = target,
				  .headers = &h,
				  .nheaders = p->auth[0] ? 1 : 0};
	struct http_response rs;
	memset(&rs, 0, sizeof(rs));
	int ret = http_client_do(p->c, &rq, &rs);
	if (body)
		*body = ret == 0 && rs.body
				? json_loadb(rs.body, rs.body_len, 0, NULL)
				: NULL;
	ret = ret == 0 ? rs.status : ret;
	http_response_clear(&rs);
	return ret;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &n) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static pid_t start_server(const char *scratch, const char *data, int port,
			  bool store)
{
	char listen[64], log[PATH_MAX];
	pathf(listen, sizeof(listen), "127.0.0.1:%d", port);
	pathf(log, sizeof(log), "%s/serve.log", scratch);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	setenv("TPWALLET_STORE", store ? "1" : "0", 1);
	unsetenv("TPWALLET_KEK");
	unsetenv("TPWALLET_CONFIG");
	unsetenv("TPWALLET_JOURNAL_ARCHIVE_DIR");
	execl("/proc/self/exe", "tpwallet", "serve", "--data", data, "--listen",
	      listen, (char *)NULL);
	_exit(127);
}

static void stop_server(pid_t pid)
{
	int st;
	kill(pid, SIGTERM);
	for (u64 t0 = mono_ms(); mono_ms() - t0 < STOP_WAIT_MS;
	     sleep_ms(POLL_MS))
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

struct figures {
	struct restore_result r;
	bool restored, serving;
	double rto_s, rpo_s;
	bool have_live, rpo_entries_known;
	u64 live_seq, rpo_entries;
	unsigned transfers, accounts, mismatches;
};

static void id_target(char *out, size_t n, const char *kind, u128 id)
{
	char dec[U128_DEC_BYTES];
	u128_format_dec(id, dec);
	pathf(out, n, "/v1/%s/%s", kind, dec);
}

/* Read the sample back from the restored server and the live one. */
static void sample(struct figures *f, struct peer *restored, struct peer *live,
		   const struct ids *ids, bool transfers)
{
	size_t step = ids->n / SAMPLE_MAX + 1;
	for (size_t i = 0; i < ids->n; i += step) {
		char target[96];
		json_t *a = NULL, *b = NULL;
		id_target(target, sizeof(target),
			  transfers ? "transfers" : "accounts", ids->v[i]);
		bool ok = peer_get(restored, target, &a) == 200 && a;
		if (ok && live) {
			ok = peer_get(live, target, &b) == 200 && b;
			if (ok && transfers) {
				/* entry_index is there once the audit tree
				 * (rebuilt by the restored server) holds the
				 * entry: compared when both have it. */
				if (!json_object_get(a, "entry_index") ||
				    !json_object_get(b, "entry_index")) {
					json_object_del(a, "entry_index");
					json_object_del(b, "entry_index");
				}
				ok = json_equal(a, b);
			} else if (ok) {
				static const char *const same[] = {
					"id", "ledger", "code", "flags"};
				for (size_t k = 0; k < 4; k++)
					ok = ok &&
					     json_equal(json_object_get(
								a, same[k]),
							json_object_get(
								b, same[k]));
			}
		}
		if (!ok) {
			f->mismatches++;
			fprintf(stderr,
				"tpwallet drill: %s differs or is missing\n",
				target);
		}
		json_decref(a);
		json_decref(b);
		if (transfers)
			f->transfers++;
		else
			f->accounts++;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet drill --from LOC [--key-file K] [--live URL "
		"--token-file F]\n"
		"                      [--rto-objective-s N] "
		"[--rpo-objective-entries N] [--json]\n\n"
		"Restore the newest backup of LOC into a scratch directory "
		"(in $TMPDIR),\nverify it, serve it on a free loopback port, "
		"read back a sample of transfers\nand accounts (and compare "
		"them with the live server at URL, read with the\nbearer "
		"token in F), and print the measured RTO (seconds to a "
		"serving restore)\nand RPO (entries and seconds behind the "
		"live server).  Exit 0 when everything\nheld and both are "
		"within their objectives, 1 otherwise, 2 usage.\n\n"
		"Example:\n"
		"  tpwallet drill --from backups --key-file backup.key "
		"--live \"$TPWALLET_SERVER\" \\\n"
		"    --token-file data/admin.token --rto-objective-s 60\n");
}

static void print(const struct figures *f, bool json, double rto_max,
		  u64 rpo_max, bool ok)
{
	char hex[65];
	sodium_bin2hex(hex, sizeof(hex), f->r.digest, 32);
	if (json) {
		json_t *o = json_pack(
			"{s:b,s:s,s:I,s:s,s:f,s:f,s:I,s:I,s:I,s:b}", "ok", ok,
			"backup", f->r.backup_id, "restored_seq",
			(json_int_t)f->r.seq, "digest", hex, "rto_s", f->rto_s,
			"rpo_s", f->rpo_s, "sampled_transfers",
			(json_int_t)f->transfers, "sampled_accounts",
			(json_int_t)f->accounts, "mismatches",
			(json_int_t)f->mismatches, "serving", f->serving);
		if (o) {
			json_object_set_new(
				o, "rpo_entries",
				f->rpo_entries_known
					? json_integer(
						  (json_int_t)f->rpo_entries)
					: json_null());
			json_object_set_new(
				o, "live_seq",
				f->have_live
					? json_integer((json_int_t)f->live_seq)
					: json_null());
			json_object_set_new(o, "rto_objective_s",
					    rto_max > 0 ? json_real(rto_max)
							: json_null());
			json_object_set_new(
				o, "rpo_objective_entries",
				rpo_max != UINT64_MAX
					? json_integer((json_int_t)rpo_max)
					: json_null());
		}
		backup_print_json(o);
		return;
	}
	printf("drill: restored backup %s to entry %llu, digest %s\n",
	       f->r.backup_id, (unsigned long long)f->r.seq, hex);
	printf("drill: RTO %.3f s (restore and serve until ready)%s\n",
	       f->rto_s,
	       rto_max > 0 ? (f->rto_s <= rto_max ? ", within "
						    "objective"
						  : ", OVER objective")
			   : "");
	if (f->rpo_entries_known)
		printf("drill: RPO %llu entries, %.3f s behind the live "
		       "server (at entry %llu)%s\n",
		       (unsigned long long)f->rpo_entries, f->rpo_s,
		       (unsigned long long)f->live_seq,
		       rpo_max != UINT64_MAX ? (f->rpo_entries <= rpo_max
							? ", within objective"
							: ", OVER objective")
					     : "");
	else
		printf("drill: RPO %.3f s (age of the newest restorable entry; "
		       "entries unknown without --live)\n",
		       f->rpo_s);
	printf("drill: sample read back: %u transfers, %u accounts, %u "
	       "mismatches\n",
	       f->transfers, f->accounts, f->mismatches);
	printf("drill: %s\n", ok ? "ok" : "FAILED");
}

int cmd_drill(int argc, char **argv)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"key-file", required_argument, NULL, 'k'},
		{"live", required_argument, NULL, 'l'},
		{"token-file", required_argument, NULL, 't'},
		{"rto-objective-s", required_argument, NULL, 'R'},
		{"rpo-objective-entries", required_argument, NULL, 'P'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct restore_request rq = {.quiet = true};
	const char *keyf = NULL, *live_url = NULL, *token = NULL;
	u64 rto_max_s = 0, rpo_max = UINT64_MAX;
	bool json = false;
	u8 key[32];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': rq.loc = optarg; break;
		case 'k': keyf = optarg; break;
		case 'l': live_url = optarg; break;
		case 't': token = optarg; break;
		case 'R':
		case 'P':
			if (parse_u64(optarg, UINT64_MAX,
				      c == 'R' ? &rto_max_s : &rpo_max) != 0) {
				fprintf(stderr,
					"tpwallet drill: --%s: a "
					"whole number\n",
					c == 'R' ? "rto-objective-s"
						 : "rpo-objective-entries");
				return EXIT_USAGE;
			}
			break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!rq.loc || optind != argc || (token && !live_url)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (keyf && backup_key_load("drill", keyf, key) != 0)
		return EXIT_USAGE;
	rq.key = keyf ? key : NULL;

	struct figures *f = calloc(1, sizeof(*f));
	struct ids *tr = calloc(1, sizeof(*tr)), *ac = calloc(1, sizeof(*ac));
	struct peer restored = {0}, live = {0};
	char scratch[PATH_MAX], data[PATH_MAX], url[64];
	const char *tmp = getenv("TMPDIR");
	pid_t pid = -1;
	int status = 1;

	pathf(scratch, sizeof(scratch), "%s/tpwallet-drill-XXXXXX",
	      tmp && tmp[0] ? tmp : "/tmp");
	if (!f || !tr || !ac || !mkdtemp(scratch)) {
		fprintf(stderr, "tpwallet drill: cannot make a scratch "
				"directory\n");
		free(f);
		free(tr);
		free(ac);
		return EXIT_SOFTWARE;
	}
	pathf(data, sizeof(data), "%s/data", scratch);
	rq.data = data;
	u64 t0 = mono_ms();
	if (backup_restore(&rq, &f->r) != 0)
		goto done;
	f->restored = true;
	int port = free_port();
	pid = port > 0 ? start_server(scratch, data, port, f->r.store) : -1;
	pathf(url, sizeof(url), "http://127.0.0.1:%d", port);
	if (pid < 0 || peer_open(&restored, url, NULL) != 0)
		goto done;
	while (mono_ms() - t0 < READY_WAIT_MS) {
		if (peer_get(&restored, "/readyz", NULL) == 200) {
			f->serving = true;
			break;
		}
		if (waitpid(pid, &(int){0}, WNOHANG) == pid) {
			pid = -1;
			break;
		}
		sleep_ms(POLL_MS);
	}
	f->rto_s = (double)(mono_ms() - t0) / 1000.0;
	if (!f->serving) {
		fprintf(stderr,
			"tpwallet drill: the restored server did not "
			"become ready (its log: %s/serve.log)\n",
			scratch);
		goto done;
	}
	http_client_close(restored.c);
	char tokf[PATH_MAX];
	pathf(tokf, sizeof(tokf), "%s/admin.token", data);
	if (peer_open(&restored, url, tokf) != 0)
		goto done;
	if (live_url) {
		json_t *cl = NULL;
		if (peer_open(&live, live_url, token) != 0 ||
		    peer_get(&live, "/v1/cluster", &cl) != 200 ||
		    !json_is_integer(json_object_get(cl, "digest_seq"))) {
			fprintf(stderr,
				"tpwallet drill: %s: GET /v1/cluster "
				"failed\n",
				live_url);
			json_decref(cl);
			f->mismatches++;
		} else {
			f->have_live = f->rpo_entries_known = true;
			f->live_seq = (u64)json_integer_value(
				json_object_get(cl, "digest_seq"));
			json_decref(cl);
			f->rpo_entries = f->live_seq > f->r.seq
						 ? f->live_seq - f->r.seq
						 : 0;
		}
	}
	collect(data, tr, ac);
	sample(f, &restored, f->have_live ? &live : NULL, tr, true);
	sample(f, &restored, f->have_live ? &live : NULL, ac, false);
	{
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		u64 now = (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
		u64 last = f->r.last_time_ns;
		bool behind = !f->have_live || f->rpo_entries > 0;
		f->rpo_s =
			behind && now > last ? (double)(now - last) / 1e9 : 0.0;
	}
	status = 0;
done:
	if (pid > 0)
		stop_server(pid);
	http_client_close(restored.c);
	http_client_close(live.c);
	bool ok = status == 0 && f->serving && f->mismatches == 0 &&
		  (rto_max_s == 0 || f->rto_s <= (double)rto_max_s) &&
		  (!f->rpo_entries_known || f->rpo_entries <= rpo_max);
	if (f->restored)
		print(f, json, (double)rto_max_s, rpo_max, ok);
	if (ok)
		fsdir_remove_tree(scratch);
	else
		fprintf(stderr,
			"tpwallet drill: failed; the scratch "
			"directory is kept: %s\n",
			scratch);
	sodium_memzero(key, sizeof(key));
	free(f);
	free(tr);
	free(ac);
	return ok ? 0 : 1;
}
