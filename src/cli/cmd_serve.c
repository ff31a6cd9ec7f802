/*
 * cmd_serve.c - `tpwallet serve`: recover the state and serve the HTTP API.
 *
 * Start-up: settings, data directory (initialised when absent or empty),
 * recovery (snapshot + journal replay), then the HTTP server.  SIGINT or
 * SIGTERM stops it cleanly: the server stops taking requests, the queued
 * ones finish, the journal is closed.  A kill -9 loses nothing that was
 * acknowledged: every reply waits for its fdatasync.  With tls_cert_file
 * and tls_key_file it serves HTTPS (api/tls.h): the pair is checked here
 * before anything else starts, and SIGHUP reads it again.
 */
#include "api/authz.h"
#include "api/buildinfo.h"
#include "api/server.h"
#include "api/probe.h"
#include "api/tls.h"
#include "net/http.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "log/datadir.h"
#include "log/fsdir.h"
#include "log/pgjournal.h"
#include "cli/sdnotify.h"
#include "cli/serverkeys.h"
#include "engine/acquirer.h"
#include "engine/audit.h"
#include "core/u128.h"
#include "engine/cluster.h"
#include "engine/engine.h"
#include "engine/expirer.h"
#include "engine/witness.h"
#include "engine/logger.h"
#include "engine/trace.h"
#include "engine/vaultkeys.h"
#include "core/strerror.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "banned.h"

/* The command that starts this data directory once without its damaged
 * tail: the flags of this run, shell-quoted, and --truncate-corrupt-tail,
 * on its own line in backquotes, to be run exactly as printed. */
static void print_truncate_command(int argc, char **argv)
{
	fprintf(stderr,
		"tpwallet serve: to drop the damaged record and every record "
		"after it for good, run once:\n  `tpwallet serve");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool plain = a[0] != '\0';
		for (const char *p = a; *p && plain; p++)
			plain = strchr("abcdefghijklmnopqrstuvwxyz"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789_./:=@%+,-",
				       *p) != NULL;
		if (plain) {
			fprintf(stderr, " %s", a);
			continue;
		}
		fputs(" '", stderr);
		for (const char *p = a; *p; p++) {
			if (*p == '\'')
				fputs("'\\''", stderr);
			else
				fputc(*p, stderr);
		}
		fputc('\'', stderr);
	}
	fprintf(stderr, " --truncate-corrupt-tail`\n");
}

/* The lease's holder when cluster_node is not set: HOST:DATA_DIR (the
 * data directory's real path, its last 80 bytes), stable across restarts
 * of this node; within pgjournal's 127 bytes. */
static void default_cluster_node(struct settings *s)
{
	char host[40] = "localhost", dir[PATH_MAX];
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	if (!realpath(s->data_dir, dir))
		snprintf(dir, sizeof(dir), "%s", s->data_dir);
	size_t n = strlen(dir);
	snprintf(s->cluster_node, 128, "%s:%.80s", host,
		 dir + (n > 80 ? n - 80 : 0));
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tpwallet serve [--data DIR] [--listen HOST:PORT] "
		"[--threads N]\n"
		"                      [--log-level LEVEL] [--config FILE]\n\n"
		"Serve the HTTP API.  An absent or empty DIR is "
		"initialised.\n\n"
		"  --data DIR          data directory (default ./data; "
		"TPWALLET_DATA)\n"
		"  --listen HOST:PORT  address (default 127.0.0.1:8080; "
		"TPWALLET_LISTEN)\n"
		"  --threads N         HTTP threads (default: cores - 1; "
		"TPWALLET_THREADS)\n"
		"  --log-level LEVEL   debug, info, warn or error (default "
		"info)\n"
		"  --config FILE       config file (key = value lines; "
		"TPWALLET_CONFIG)\n"
		"  --witness 'URL KEY' a C2SP witness to send checkpoints to "
		"(repeatable, at most 8;\n"
		"                      KEY is the cosigner key `tpwallet "
		"witness` prints)\n"
		"  --probe URL:PLATFORM/VERSION\n"
		"                      probe URL (the gateway's) as that "
		"client every\n"
		"                      probe_interval_s (default 30); "
		"repeatable, at most 16;\n"
		"                      results in /metrics and GET "
		"/v1/probes\n"
		"  --kek-file FILE     key-encryption key (default DATA.kek; "
		"TPWALLET_KEK_FILE,\n"
		"                      or the key itself in TPWALLET_KEK)\n"
		"  --cluster CONNINFO  cluster mode: every journal group also "
		"committed to\n"
		"                      PostgreSQL (libpq string; "
		"TPWALLET_CLUSTER), under a\n"
		"                      fenced writer's lease; a node that "
		"cannot take it\n"
		"                      follows the writer, serves reads and "
		"takes over when\n"
		"                      the lease expires (docs/operations.md, "
		"Cluster mode)\n"
		"  --truncate-corrupt-tail\n"
		"                      accept losing acknowledged records: cut "
		"the last journal\n"
		"                      segment at its first damaged record and "
		"move the audit\n"
		"                      checkpoints aside (docs/operations.md, "
		"Recovery)\n\n"
		"Every setting and its limits: docs/operations.md.\n\n"
		"Example:\n"
		"  tpwallet serve --data data --listen 127.0.0.1:8080\n");
}

/* Key upkeep: scheduled rotation and removal of expired keys, checked
 * at start and every UPKEEP_INTERVAL_S. */
#define UPKEEP_INTERVAL_S 60
/* Client activity is saved every ACTIVITY_SAVE_TICKS upkeep rounds (and
 * at stop): a crash loses at most that much telemetry. */
#define ACTIVITY_SAVE_TICKS 5
struct upkeep {
	struct server_keys *keys;
	struct engine *e;
	struct api_server *srv;
	int64_t period_s;
	int64_t overlap_s; /* the key_overlap_s setting */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	bool wake; /* SIGHUP: run the key upkeep now (a new KEK version) */
};

/* engine_options.became_writer: a cluster follower took the lease.  The
 * upkeep journals this node's signing key now (a follower cannot), and
 * the expirer looks at the overrides (a follower journals no ends). */
struct promotion {
	struct upkeep *up;
	struct expirer *expirer;
};

static void on_became_writer(void *ctx)
{
	struct promotion *p = ctx;
	pthread_mutex_lock(&p->up->lock);
	p->up->wake = true;
	pthread_cond_signal(&p->up->cond);
	pthread_mutex_unlock(&p->up->lock);
	expirer_poke(p->expirer);
}

static void *upkeep_main(void *arg)
{
	struct upkeep *u = arg;

	unsigned ticks = 0;
	pthread_mutex_lock(&u->lock);
	while (!u->stop) {
		pthread_mutex_unlock(&u->lock);
		server_keys_maintain(u->keys, u->e, u->period_s, u->overlap_s);
		if (++ticks % ACTIVITY_SAVE_TICKS == 0)
			api_server_save_activity(u->srv);
		pthread_mutex_lock(&u->lock);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += UPKEEP_INTERVAL_S;
		while (!u->stop && !u->wake &&
		       pthread_cond_timedwait(&u->cond, &u->lock, &until) == 0)
			;
		u->wake = false;
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* A cluster password where others can read it: in the flag (every local
 * user sees a process's arguments) or in a config file group or others
 * may read.  Said at start; the environment or a 0600 file is the place
 * (docs/operations.md, Settings). */
static void warn_cluster_password(const struct settings *s, const char *config,
				  const char *const *flag_keys, int nflags)
{
	struct stat st;
	bool from_flag = false;

	if (!s->cluster[0] || !pgjournal_conninfo_has_password(s->cluster))
		return;
	for (int i = 0; i < nflags; i++)
		from_flag |= strcmp(flag_keys[i], "cluster") == 0;
	if (!config)
		config = getenv("TPWALLET_CONFIG");
	if (from_flag)
		log_at(LOG_WARN,
		       "the --cluster value holds a password, which every "
		       "local user can read in the process's arguments: give "
		       "it in TPWALLET_CLUSTER or a config file of mode 0600");
	else if (config && stat(config, &st) == 0 && (st.st_mode & 077))
		log_at(LOG_WARN,
		       "the config file holds the cluster password and group "
		       "or others may read it: chmod 600 it",
		       LOG_STR("file", config));
}

/* This data directory never finished a first start: no DATA/origin,
 * nothing in DATA/keys and no signed checkpoint.  Making its keys then
 * loses nothing: the KEK is made only when none is found (file) or
 * none is in the token, and one that exists is used; a KEK missing
 * beside existing keys is still refused. */
static bool keys_never_made(const struct settings *s)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/" DATADIR_ORIGIN, s->data_dir);
	if (stat(path, &st) == 0 || errno != ENOENT)
		return false;
	snprintf(path, sizeof(path), "%s/" DATADIR_CHECKPOINTS, s->data_dir);
	if (stat(path, &st) == 0 ? st.st_size > 0 : errno != ENOENT)
		return false;
	snprintf(path, sizeof(path), "%s/" DATADIR_KEYS, s->data_dir);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT;
	struct dirent *de;
	bool empty = true;
	while (empty && (de = readdir(d)) != NULL)
		empty = de->d_name[0] == '.' &&
			(de->d_name[1] == '\0' ||
			 (de->d_name[1] == '.' && de->d_name[2] == '\0'));
	closedir(d);
	return empty;
}

/* The server's outbound calls (witnesses, probes, OTLP): the allow-list of
 * private destinations they may reach, the CA bundle and the pins they trust
 * (net/http.h, docs/operations.md "Outbound TLS").  A bundle that does not read
 * as a certificate, a bad pin, and a pinned host named with http:// are refused
 * here, not at their first call. */
static int outbound_setup(const struct settings *s)
{
	const char *pins[HTTP_PINS_MAX];
	char err[API_TLS_ERR_BYTES];
	_Static_assert(sizeof(s->outbound_pins) / sizeof(s->outbound_pins[0]) ==
			       HTTP_PINS_MAX,
		       "pins");

	if (s->outbound_ca_file[0]) {
		struct api_tls_cert_info ci;
		if (api_tls_cert_inspect(s->outbound_ca_file, &ci, err,
					 sizeof(err)) < 0) {
			fprintf(stderr,
				"tpwallet serve: outbound_ca_file: %s\n", err);
			return -1;
		}
	}
	const char *allow[HTTP_ALLOW_MAX];
	_Static_assert(sizeof(s->outbound_allow) /
				       sizeof(s->outbound_allow[0]) ==
			       HTTP_ALLOW_MAX,
		       "allow");
	for (unsigned i = 0; i < s->noutbound_allow; i++)
		allow[i] = s->outbound_allow[i];
	if (http_outbound_allow(allow, s->noutbound_allow, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "tpwallet serve: %s\n", err);
		return -1;
	}
	for (unsigned i = 0; i < s->noutbound_pins; i++)
		pins[i] = s->outbound_pins[i];
	if (http_outbound_set(s->outbound_ca_file, pins, s->noutbound_pins, err,
			      sizeof(err)) < 0) {
		fprintf(stderr, "tpwallet serve: %s\n", err);
		return -1;
	}
	for (unsigned i = 0; i < s->nwitnesses + s->nprobes; i++) {
		char url[HTTP_URL_BYTES_MAX];
		struct probe_target t;
		if (i < s->nwitnesses) {
			const char *w = s->witnesses[i];
			snprintf(url, sizeof(url), "%.*s", (int)strcspn(w, " "),
				 w);
		} else if (probe_target_parse(s->probes[i - s->nwitnesses],
					      &t) == 0) {
			snprintf(url, sizeof(url), "%s", t.url);
		} else {
			continue; /* refused with its own message later */
		}
		if (http_outbound_check(url) == -HTTP_pin_needs_https) {
			fprintf(stderr,
				"tpwallet serve: %s %s has an outbound_pin "
				"but is named with http://: a pin is checked "
				"on https only\n",
				i < s->nwitnesses ? "witness" : "probe", url);
			return -1;
		}
	}
	return 0;
}

/* The acquirer connector's options from the settings (docs/acquirer.md):
 * false when none is configured; -1 (said on stderr) when they do not
 * hold together. */
static int acquirer_options_of(const struct settings *s,
			       struct acquirer_options *o)
{
	char err[200];
	u128 settle = 0;

	memset(o, 0, sizeof(*o));
	if (!s->acquirer[0])
		return 0;
	const char *sa = s->acquirer_settlement_account;
	if (u128_parse_dec(sa, strlen(sa), AMOUNT_MAX - 1, &settle) != 0) {
		fprintf(stderr,
			"tpwallet serve: acquirer_settlement_account: an "
			"account id (decimal) is required with acquirer\n");
		return -1;
	}
	*o = (struct acquirer_options){
		.url = s->acquirer,
		.settlement_account = settle,
		.currency = s->acquirer_currency,
		.api_version = s->acquirer_api_version,
		.code = (u16)s->acquirer_code,
		.inflight_max = s->acquirer_inflight_max,
		.breaker_failures = s->acquirer_breaker_failures,
		.breaker_cooldown_ms = s->acquirer_breaker_cooldown_ms,
		.timeout_ms = s->acquirer_timeout_ms,
	};
	if (acquirer_options_check(o, err, sizeof(err)) < 0) {
		fprintf(stderr, "tpwallet serve: %s\n", err);
		return -1;
	}
	return 1;
}

/* Tracing (engine/trace.h, docs/operations.md "Tracing"): on when an
 * OTLP endpoint is set; -1 (said on stderr) when it cannot start. */
static int trace_setup(const struct settings *s)
{
	struct trace_options o = {
		.service_name = s->otel_service_name,
		.service_version = TPWALLET_VERSION,
		.queue_spans = s->otel_bsp_max_queue_size,
		.delay_ms = s->otel_bsp_schedule_delay,
		.timeout_ms = s->otel_exporter_otlp_timeout,
	};
	char url[1100], host[256] = "", instance[520];
	const char *err = NULL;

	trace_endpoint_url(s->otel_exporter_otlp_endpoint,
			   s->otel_exporter_otlp_traces_endpoint, url,
			   sizeof(url));
	if (!url[0])
		return 0;
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	o.url = url;
	o.host_name = host;
	/* Which process of the service: the cluster node's name, else the
	 * host and the address it listens on. */
	if (s->cluster_node[0])
		snprintf(instance, sizeof(instance), "%s", s->cluster_node);
	else
		snprintf(instance, sizeof(instance), "%s/%s", host, s->listen);
	o.instance_id = instance;
	/* Each was checked alone when read; together they still parse. */
	if (trace_sampler_parse(s->otel_traces_sampler,
				s->otel_traces_sampler_arg, &o) != 0 ||
	    trace_start(&o, &err) < 0) {
		fprintf(stderr, "tpwallet serve: tracing: %s\n",
			err ? err : "the sampler's settings do not parse");
		return -1;
	}
	return 0;
}

/* Tell systemd (NOTIFY_SOCKET); a failure is logged, never fatal. */
static void notify(const char *state)
{
	int ret = sdnotify_send(state);

	if (ret < 0)
		log_at(LOG_WARN, "cannot notify the service manager",
		       LOG_STR("state", state), LOG_NUM("errno", -ret));
}

/* SIGHUP: the key upkeep looks at the token now, and the TLS files are
 * read again. */
static void on_sighup(struct upkeep *up, struct api_tls *tls)
{
	pthread_mutex_lock(&up->lock);
	up->wake = true;
	pthread_cond_signal(&up->cond);
	pthread_mutex_unlock(&up->lock);
	if (tls)
		(void)api_tls_reload(tls); /* it logs either way */
	else
		log_at(LOG_INFO, "SIGHUP: no TLS files to reload");
}

/* The stop's first phase: /readyz answers "draining" for drain_s while
 * everything else serves, so a load balancer moves away before anything
 * is refused.  A second SIGTERM or SIGINT ends it early. */
static void drain(struct api_server *srv, unsigned drain_s,
		  const sigset_t *signals, int first, struct upkeep *up,
		  struct api_tls *tls)
{
	if (!drain_s)
		return;
	api_server_drain(srv);
	log_at(LOG_INFO, "draining", LOG_NUM("signal", first),
	       LOG_NUM("shutdown_drain_s", drain_s));
	u64 end = tpw_monotonic_ms() + (u64)drain_s * 1000u;
	for (u64 now = tpw_monotonic_ms(); now < end;
	     now = tpw_monotonic_ms()) {
		struct timespec ts = {(time_t)((end - now) / 1000),
				      (long)((end - now) % 1000) * 1000000L};
		int sig = sigtimedwait(signals, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_at(LOG_INFO, "draining cut short",
			       LOG_NUM("signal", sig));
			return;
		}
		if (sig == SIGHUP) /* still serving: reload as ever */
			on_sighup(up, tls);
	}
}

/* The stop's bound (shutdown_timeout_s): a thread that ends the process
 * when the stop has not ended by then, naming the step it waits for (a
 * disk that stopped answering holds a request's commit, the last
 * checkpoint's fsync or the journal's close).  Nothing acknowledged is
 * lost: every reply waited for its fdatasync. */
static _Atomic(const char *) stop_step = "the start of the stop";
static unsigned stop_bound_s;

static void stop_at(const char *step)
{
	atomic_store(&stop_step, step);
}

static void *stop_watchdog(void *arg)
{
	(void)arg;
	struct timespec t = {(time_t)stop_bound_s, 0};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
	log_at(LOG_ERROR,
	       "stop: not done within shutdown_timeout_s; exiting without "
	       "waiting longer (nothing acknowledged is lost)",
	       LOG_STR("waiting_for", atomic_load(&stop_step)),
	       LOG_NUM("shutdown_timeout_s", stop_bound_s));
	logger_stop_async();
	_exit(EXIT_SOFTWARE);
	return NULL;
}

static void watch_the_stop(unsigned bound_s)
{
	pthread_t t;
	pthread_attr_t a;

	stop_bound_s = bound_s;
	if (pthread_attr_init(&a) != 0)
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, stop_watchdog, NULL) != 0)
		log_at(LOG_WARN, "stop: no watchdog thread: the stop is not "
				 "bounded");
	pthread_attr_destroy(&a);
}

/* No core dump unless asked (core_dumps = 1): a core holds the KEK, the
 * signing keys and card data in the clear.  Not dumpable also keeps
 * other processes of the same user from reading this one's memory
 * through ptrace or /proc/PID/mem. */
static void no_core_dumps(const struct settings *s)
{
	if (s->core_dumps) {
		log_at(LOG_WARN,
		       "core_dumps = 1: a core dump of this process would "
		       "hold its keys and card data in the clear");
		return;
	}
	struct rlimit none = {0, 0};
	if (setrlimit(RLIMIT_CORE, &none) != 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_at(LOG_WARN, "core dumps could not be turned off",
		       LOG_STR("error", tpw_strerror(errno)));
}

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"listen", required_argument, NULL, 'l'},
		{"threads", required_argument, NULL, 't'},
		{"log-level", required_argument, NULL, 'L'},
		{"config", required_argument, NULL, 'c'},
		{"kek-file", required_argument, NULL, 'k'},
		{"witness", required_argument, NULL, 'w'},
		{"probe", required_argument, NULL, 'P'},
		{"truncate-corrupt-tail", no_argument, NULL, 'T'},
		{"cluster", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *flag_keys[128] = {0};
	const char *flag_vals[128] = {0};
	const char *config = NULL;
	struct settings s;
	int c, nflags = 0;
	bool truncate_corrupt_tail = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "d:l:t:L:c:k:w:P:C:h", opts,
				NULL)) != -1) {
		const char *key = NULL;
		switch (c) {
		case 'd': key = "data"; break;
		case 'l': key = "listen"; break;
		case 't': key = "threads"; break;
		case 'L': key = "log_level"; break;
		case 'k': key = "kek_file"; break;
		case 'w': key = "witness"; break;
		case 'P': key = "probe"; break;
		case 'C': key = "cluster"; break;
		case 'c': config = optarg; break;
		case 'T': truncate_corrupt_tail = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
		if (key && nflags < 128) {
			flag_keys[nflags] = key;
			flag_vals[nflags++] = optarg;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tpwallet serve: unexpected argument '%s'\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (settings_load(&s, config) < 0)
		return EXIT_USAGE;
	for (int i = 0; i < nflags; i++)
		if (settings_set(&s, flag_keys[i], flag_vals[i]) < 0)
			return EXIT_USAGE;
	settings_finish(&s);
	logger_set_level((enum log_level)logger_parse_level(s.log_level));
	no_core_dumps(&s);
	warn_cluster_password(&s, config, flag_keys, nflags);

	char host[256];
	unsigned short port;
	if (parse_listen(s.listen, host, sizeof(host), &port) < 0) {
		fprintf(stderr, "tpwallet serve: --listen wants HOST:PORT\n");
		return EXIT_USAGE;
	}
	struct api_tls *tls = NULL;
	if (!s.tls_cert_file[0] != !s.tls_key_file[0]) {
		fprintf(stderr, "tpwallet serve: tls_cert_file and "
				"tls_key_file go together (docs/operations.md, "
				"\"TLS\")\n");
		return EXIT_USAGE;
	}
	if (!s.tls_standby_cert_file[0] != !s.tls_standby_key_file[0] ||
	    (s.tls_standby_cert_file[0] && !s.tls_cert_file[0])) {
		fprintf(stderr, "tpwallet serve: tls_standby_cert_file and "
				"tls_standby_key_file go together, beside "
				"tls_cert_file (docs/operations.md, \"Standby "
				"certificate\")\n");
		return EXIT_USAGE;
	}
	if (!s.tls_cert_file[0] &&
	    (s.tls_client_ca_file[0] || s.tls_crl_file[0] ||
	     (s.tls_client_auth[0] &&
	      strcmp(s.tls_client_auth, "none") != 0))) {
		/* Never a plain HTTP server that looks mutual-TLS protected. */
		fprintf(stderr, "tpwallet serve: tls_client_ca_file, "
				"tls_crl_file and tls_client_auth need "
				"tls_cert_file: client certificates come with "
				"HTTPS (docs/operations.md, \"Client "
				"certificates\")\n");
		return EXIT_USAGE;
	}
	if ((s.tls_ocsp_file[0] && !s.tls_cert_file[0]) ||
	    (s.tls_standby_ocsp_file[0] && !s.tls_standby_cert_file[0])) {
		fprintf(stderr, "tpwallet serve: tls_ocsp_file needs "
				"tls_cert_file, tls_standby_ocsp_file needs "
				"tls_standby_cert_file (docs/operations.md, "
				"\"OCSP stapling\")\n");
		return EXIT_USAGE;
	}
	if (s.tls_cert_file[0]) {
		char terr[API_TLS_ERR_BYTES];
		struct api_tls_files tf = {
			.cert_file = s.tls_cert_file,
			.key_file = s.tls_key_file,
			.standby_cert_file = s.tls_standby_cert_file,
			.standby_key_file = s.tls_standby_key_file,
			.priority = s.tls_priority,
			.client_ca_file = s.tls_client_ca_file,
			.crl_file = s.tls_crl_file,
			.client_auth = s.tls_client_auth,
			.ocsp_file = s.tls_ocsp_file,
			.standby_ocsp_file = s.tls_standby_ocsp_file,
		};
		if (api_tls_open(&tls, &tf, terr, sizeof(terr)) < 0) {
			fprintf(stderr, "tpwallet serve: %s\n", terr);
			return EXIT_USAGE;
		}
	}

	/* Journal retention needs the store: without it the journal is the
	 * only state, and recovery replays all of it. */
	if (s.journal_archive_dir[0] && !s.store) {
		fprintf(stderr,
			"tpwallet serve: journal_archive_dir needs store = 1: "
			"without the store the journal is the only copy of the "
			"state and every segment stays in DATA/journal "
			"(docs/operations.md, \"Journal retention\")\n");
		return EXIT_USAGE;
	}
	if (s.journal_archive_dir[0]) {
		int ar = fsdir_make(s.journal_archive_dir);
		struct stat ast;
		if (ar < 0 || stat(s.journal_archive_dir, &ast) != 0 ||
		    !S_ISDIR(ast.st_mode)) {
			fprintf(stderr,
				"tpwallet serve: journal_archive_dir %s: "
				"cannot make or use it as a directory: %s\n",
				s.journal_archive_dir,
				tpw_strerror(ar < 0 ? -ar : ENOTDIR));
			return EXIT_USAGE;
		}
	}

	struct acquirer_options acq_opt;
	int has_acquirer = acquirer_options_of(&s, &acq_opt);
	if (outbound_setup(&s) < 0 || trace_setup(&s) < 0 || has_acquirer < 0)
		return EXIT_USAGE;
	u128 suspense_account = 0;
	const char *sus = s.acquirer_suspense_account;
	if (*sus && u128_parse_dec(sus, strlen(sus), AMOUNT_MAX - 1,
				   &suspense_account) != 0) {
		fprintf(stderr, "tpwallet serve: acquirer_suspense_account: an "
				"account id (decimal)\n");
		return EXIT_USAGE;
	}

	bool created;
	char lax[4400];
	if (datadir_prepare(s.data_dir, &created, lax, sizeof(lax)) < 0) {
		fprintf(stderr, "tpwallet: %s\n", lax);
		return EXIT_DATA;
	}
	if (datadir_check_modes(s.data_dir, lax, sizeof(lax)) < 0 ||
	    (s.journal_archive_dir[0] &&
	     datadir_check_outside(s.journal_archive_dir, lax, sizeof(lax)) <
		     0)) {
		fprintf(stderr, "tpwallet serve: %s\n", lax);
		return EXIT_DATA;
	}
	if (created)
		log_at(LOG_INFO, "initialised data directory",
		       LOG_STR("data", s.data_dir));

	/* Block the stop signals and SIGHUP (reload the TLS files) in every
	 * thread; this one waits for them. */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* What the audit files prove durable, read before the journal is
	 * recovered: damage to those records is corruption, never a torn
	 * tail to cut quietly. */
	static struct audit_covered covered_by;
	int ret = audit_covered_size(s.data_dir, &covered_by);
	u64 covered = covered_by.size;
	if (ret < 0) {
		fprintf(stderr,
			"tpwallet serve: %s: cannot read the audit files: %s\n",
			s.data_dir, tpw_strerror(-ret));
		return EXIT_DATA;
	}

	struct engine *e = NULL;
	const char *err = NULL;
	/* The key upkeep (below); the engine may wake it once open. */
	static struct upkeep up = {.lock = PTHREAD_MUTEX_INITIALIZER,
				   .cond = PTHREAD_COND_INITIALIZER};
	static struct promotion promotion = {.up = &up};
	/* Journals an entry when an override reaches its end; it looks
	 * again whenever the client-policy state changes. */
	struct expirer *expirer = expirer_new();
	if (!expirer) {
		fprintf(stderr, "tpwallet serve: out of memory\n");
		return EXIT_SOFTWARE;
	}
	promotion.expirer = expirer;
	struct engine_options eo = {
		.data_dir = s.data_dir,
		.snapshot_every_records = s.snapshot_every,
		.store = s.store != 0,
		.cache_bytes = s.cache_bytes,
		.segment_bytes = s.journal_segment_bytes,
		.archive_dir =
			s.journal_archive_dir[0] ? s.journal_archive_dir : NULL,
		.covered_seq = covered,
		.truncate_corrupt_tail = truncate_corrupt_tail,
		.pstate_changed = expirer_poke,
		.pstate_changed_ctx = expirer,
		.became_writer = on_became_writer,
		.became_writer_ctx = &promotion,
	};
	struct cluster_options co = {.conninfo = s.cluster,
				     .holder = s.cluster_node,
				     .lease_ms = s.cluster_lease_ms,
				     .advertise = s.cluster_advertise};
	if (s.cluster[0]) {
		if (!s.cluster_node[0])
			default_cluster_node(&s);
		eo.cluster = &co;
		log_at(LOG_INFO, "cluster mode",
		       LOG_STR("node", s.cluster_node),
		       LOG_NUM("lease_ms", s.cluster_lease_ms));
	}
	log_at(LOG_INFO, "recovering", LOG_STR("data", s.data_dir));
	ret = engine_open(&e, &eo, &err);
	if (ret < 0) {
		expirer_free(expirer);
		log_at(LOG_ERROR, "cannot open the data directory",
		       LOG_STR("data", s.data_dir),
		       LOG_STR("reason", err ? err : tpw_strerror(-ret)));
		fprintf(stderr, "tpwallet serve: %s: %s\n", s.data_dir,
			err ? err : tpw_strerror(-ret));
		if (err && strstr(err, "--truncate-corrupt-tail"))
			print_truncate_command(argc, argv);
		return EXIT_DATA;
	}
	if (engine_durable_seq(e) < covered) {
		/* Only with --truncate-corrupt-tail (engine_open refuses
		 * otherwise): the signed history no longer matches. */
		char moved[1024];
		ret = audit_set_aside(s.data_dir, engine_durable_seq(e), moved,
				      sizeof(moved));
		if (ret < 0) {
			fprintf(stderr,
				"tpwallet serve: %s: cannot move the audit "
				"files aside: %s\n",
				s.data_dir, tpw_strerror(-ret));
			expirer_free(expirer);
			engine_close(e);
			return EXIT_DATA;
		}
		log_at(LOG_ERROR,
		       "ACKNOWLEDGED RECORDS DROPPED (--truncate-corrupt-tail)",
		       LOG_NUM("journal_last_seq", engine_durable_seq(e)),
		       LOG_NUM("audit_covered", covered),
		       LOG_NUM("records_lost", covered - engine_durable_seq(e)),
		       LOG_STR("audit", moved));
		fprintf(stderr,
			"tpwallet serve: WARNING: %llu acknowledged record(s) "
			"after seq %llu were dropped at your request; %s\n",
			(unsigned long long)(covered - engine_durable_seq(e)),
			(unsigned long long)engine_durable_seq(e), moved);
	}

	/* The server's keys (created with the data directory, or by the
	 * first start that gets this far: one that stopped before, say at an
	 * unreachable cluster, left no key to lose). */
	static struct server_keys keys;
	bool fresh = created || keys_never_made(&s);
	if (fresh && !created)
		log_at(LOG_WARN,
		       "the data directory's first start did not finish: "
		       "making its keys now",
		       LOG_STR("data", s.data_dir));
	if (server_keys_open(&s, fresh, &keys) != 0) {
		expirer_free(expirer);
		engine_close(e);
		return EXIT_DATA;
	}

	/* The card vault's key store (docs/vault.md): opened with the KEK;
	 * one that cannot be opened leaves the vault answering 503, the
	 * rest serves.  Keys of cards erased in the journal, or never
	 * journaled, are dropped now. */
	static struct vaultkeys *vault;
	char verr[VAULTKEYS_ERR_BYTES] = "";
	ret = vaultkeys_open(s.data_dir, keys.kek, &vault, verr, sizeof(verr));
	if (ret < 0) {
		log_at(LOG_ERROR, "cannot open the card vault's key store",
		       LOG_NUM("errno", -ret));
		server_keys_close(&keys);
		expirer_free(expirer);
		engine_close(e);
		return EXIT_DATA;
	}
	if (!vaultkeys_usable(vault)) {
		log_at(LOG_ERROR,
		       "the card vault's key store cannot be used: the vault "
		       "routes answer 503",
		       LOG_STR("reason", verr));
	} else {
		u32 dropped = 0;
		engine_read_begin(e);
		ret = vaultkeys_reconcile(vault, engine_vault(e), &dropped);
		engine_read_end(e);
		if (ret < 0 || dropped)
			log_at(ret < 0 ? LOG_ERROR : LOG_INFO,
			       "vault: keys of erased or unjournaled cards "
			       "dropped",
			       LOG_NUM("dropped", dropped),
			       LOG_NUM("errno", ret < 0 ? -ret : 0));
	}

	/* Every key the server signs with is a journal entry. */
	ret = server_keys_journal(&keys, e);
	if (ret < 0)
		log_at(LOG_WARN, "cannot journal the signing key",
		       LOG_NUM("errno", -ret));

	/* Who may call: the administrator's bearer token, or mandates. */
	static struct api_authz *authz;
	bool admin_created = false;
	if (server_admin_open(&s, keys.origin, &authz, &admin_created) != 0) {
		server_keys_close(&keys);
		expirer_free(expirer);
		engine_close(e);
		return EXIT_DATA;
	}
	api_authz_set_origin(authz, s.public_url);
	api_authz_set_limits(authz,
			     &(struct api_authz_limits){
				     .leeway_s = (int)s.link_leeway_s,
				     .revocations_per_principal =
					     s.revocations_per_principal});
	log_at(admin_created ? LOG_INFO : LOG_DEBUG, "administrator credential",
	       LOG_STR("token_file", "admin.token"),
	       LOG_STR("data", s.data_dir));

	/* The audit tree follows the journal in its own thread and signs
	 * a checkpoint every second while it grows. */
	static struct witness_peer witnesses[WITNESSES_MAX];
	for (unsigned i = 0; i < s.nwitnesses; i++) {
		char werr[128];
		if (witness_peer_parse(s.witnesses[i], &witnesses[i], werr,
				       sizeof(werr)) != 0) {
			fprintf(stderr, "tpwallet serve: witness %u: %s\n",
				i + 1, werr);
			api_authz_close(authz);
			server_keys_close(&keys);
			expirer_free(expirer);
			engine_close(e);
			return EXIT_USAGE;
		}
	}
	struct audit *audit = NULL;
	keys.e = e;
	struct audit_signer signer = {
		.origin = keys.origin,
		.sign = server_keys_sign_note,
		.extensions = server_keys_checkpoint_extensions,
		.ctx = &keys,
		.witnesses = witnesses,
		.nwitnesses = s.nwitnesses,
		.covered = &covered_by,
		.cache_bytes = s.audit_cache_bytes,
		.archive_dir = s.journal_archive_dir[0] ? s.journal_archive_dir
							: NULL};
	ret = audit_open(&audit, s.data_dir, e, &signer, &err);
	if (ret < 0) {
		log_at(LOG_ERROR, "cannot start the audit log",
		       LOG_STR("reason", err ? err : tpw_strerror(-ret)));
		api_authz_close(authz);
		server_keys_close(&keys);
		expirer_free(expirer);
		engine_close(e);
		return EXIT_SOFTWARE;
	}

	/* Every connection is a descriptor, and the journal, snapshots and
	 * audit want some: raise the soft limit towards the hard one, and
	 * say so when connections_max still cannot be reached (then new
	 * connections fail at accept before the limit is hit). */
	struct rlimit rl;
	rlim_t need = (rlim_t)s.connections_max + 256;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need
				      ? need
				      : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
			log_at(LOG_WARN,
			       "the open-file limit is below connections_max "
			       "+ 256: connections will be refused before "
			       "connections_max (raise LimitNOFILE or ulimit "
			       "-n)",
			       LOG_NUM("open_files", (u64)rl.rlim_cur),
			       LOG_NUM("connections_max",
				       (u64)s.connections_max));
	}

	const char *probes[16];
	for (unsigned i = 0; i < s.nprobes; i++)
		probes[i] = s.probes[i];
	struct api_server *srv = NULL;
	struct api_options ao = {
		.probes = probes,
		.nprobes = s.nprobes,
		.probe_interval_s = s.probe_interval_s,
		.host = host,
		.port = port,
		.threads = s.threads,
		.body_bytes_max = s.body_bytes_max,
		.connection_timeout_s = s.connection_timeout_s,
		.connections_max = s.connections_max,
		.audit = audit,
		.keyring = keys.keyring,
		.hsm = keys.hsm,
		.origin = keys.origin,
		.key_overlap_s = (int64_t)s.key_overlap_s,
		.dual_control_window_s = s.dual_control_window_s,
		.authz = authz,
		.data_dir = s.data_dir,
		.policy_blocked_share_set = true,
		.policy_blocked_share_max = s.client_policy_max_blocked_share,
		.manifest_public = s.manifest_public != 0,
		.metrics_exemplars = s.metrics_exemplars != 0,
		.manifest_ttl_max_s = s.manifest_ttl_max_s,
		.tls = tls,
		.cluster_read_wait_ms = s.cluster_read_wait_ms,
		.vault = vault,
		.vault_reveals_per_minute = s.vault_reveals_per_minute,
		.net =
			{
				.body_budget_bytes = s.body_budget_bytes,
				.body_budget_per_address_bytes =
					s.body_budget_per_address_bytes,
				.body_budget_per_principal_bytes =
					s.body_budget_per_principal_bytes,
				.header_timeout_s = s.header_timeout_s,
				.body_timeout_s = s.body_timeout_s,
				.body_rate_min_bytes_s =
					s.body_rate_min_bytes_s,
				.connections_per_address_max =
					s.connections_per_address_max,
			},
	};
	/* Checked when the setting was read: cannot fail here. */
	(void)netguard_cidrs_parse(s.trusted_proxies, ao.net.proxies,
				   NETGUARD_PROXIES_MAX, &ao.net.nproxies);
	/* The binary's signature, said before the first request can ask
	 * (/metrics) and in the listening line. */
	struct buildinfo bi;
	char libs[512], sigdetail[PATH_MAX + 600];
	buildinfo_get(&bi);
	buildinfo_libs_text(&bi, libs, sizeof(libs));
	const char *sigst = release_self_status(s.release_public_key_file,
						sigdetail, sizeof(sigdetail));
	buildinfo_set_signature(sigst);
	if (strcmp(sigst, "verified") != 0 && strcmp(sigst, "no_key") != 0)
		log_at(LOG_WARN,
		       "this binary's release signature does not verify",
		       LOG_STR("signature", sigst),
		       LOG_STR("detail", sigdetail));
	/* The acquirer connector: its resolver asks at once about every
	 * top-up a stop or a crash left pending (docs/acquirer.md). */
	struct acquirer *acq = NULL;
	char aerr[200] = "";
	if (has_acquirer > 0 && (ret = acquirer_open(&acq, &acq_opt, e, vault,
						     aerr, sizeof(aerr))) < 0) {
		log_at(LOG_ERROR, "cannot start the acquirer connector",
		       LOG_STR("reason", aerr));
	} else {
		ao.acquirer = acq;
		ao.acquirer_suspense = suspense_account;
		ret = api_server_start(&srv, e, &ao, &err);
		if (ret < 0) {
			acquirer_close(acq);
			log_at(LOG_ERROR, "cannot start the HTTP server",
			       LOG_STR("listen", s.listen),
			       LOG_STR("reason",
				       err ? err : tpw_strerror(-ret)));
		}
	}
	if (ret < 0) {
		audit_close(audit);
		api_authz_close(authz);
		server_keys_close(&keys);
		expirer_free(expirer);
		engine_close(e);
		api_tls_close(tls);
		return EXIT_SOFTWARE;
	}
	logger_start_async();
	if (tls && (ret = api_tls_start(tls, e)) < 0)
		log_at(LOG_ERROR,
		       "cannot start the TLS watcher: no switch at the primary "
		       "certificate's dates, none journaled",
		       LOG_NUM("errno", -ret));
	ret = expirer_start(expirer, e);
	if (ret < 0)
		log_at(LOG_ERROR,
		       "cannot start the override expirer: no entry is "
		       "journaled when an override reaches its end",
		       LOG_NUM("errno", -ret));
	log_at(LOG_INFO, "listening", LOG_STR("listen", s.listen),
	       LOG_STR("data", s.data_dir),
	       LOG_STR("version", TPWALLET_VERSION),
	       LOG_STR("commit", bi.commit), LOG_STR("libraries", libs),
	       LOG_STR("signature", sigst));
	/* systemd's Type=notify: ready now, as /readyz says. */
	notify("READY=1");

	/* Field by field: the engine may wake it already (up.lock). */
	up.keys = &keys;
	up.e = e;
	up.srv = srv;
	up.period_s = (int64_t)s.key_rotation_days * 86400;
	up.overlap_s = (int64_t)s.key_overlap_s;
	pthread_t upkeep_thread;
	bool upkeep_started =
		pthread_create(&upkeep_thread, NULL, upkeep_main, &up) == 0;

	int sig = 0;
	while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP)
		on_sighup(&up, tls);
	notify("STOPPING=1");
	drain(srv, s.shutdown_drain_s, &stop_signals, sig, &up, tls);
	log_at(LOG_INFO, "stopping", LOG_NUM("signal", sig));
	watch_the_stop(s.shutdown_timeout_s);
	if (upkeep_started) {
		pthread_mutex_lock(&up.lock);
		up.stop = true;
		pthread_cond_signal(&up.cond);
		pthread_mutex_unlock(&up.lock);
		pthread_join(upkeep_thread, NULL);
	}
	/* The server first: it returns once no request of its is left in
	 * the engine, and the applier pokes the expirer (engine_options.
	 * pstate_changed) for any override command until then.  Past
	 * shutdown_timeout_s (a disk that stopped answering) the process
	 * ends without them: none was acknowledged, so none is lost. */
	stop_at("the requests accepted");
	api_server_stop(srv);
	acquirer_close(acq);
	api_tls_close(tls);
	expirer_free(expirer);
	api_authz_close(authz);
	stop_at("the audit log's last checkpoint");
	audit_close(audit);
	vaultkeys_close(vault);
	server_keys_close(&keys);
	stop_at("the journal's close");
	engine_close(e);
	trace_stop();
	log_at(LOG_INFO, "stopped", LOG_STR("data", s.data_dir));
	logger_stop_async();
	return 0;
}
