/*
 * settings.c - settings shared by the commands: defaults, config file,
 * environment (the data directory itself: log/datadir.h).
 *
 * Config file: one `key = value` per line, `#` starts a comment; keys are
 * those of settings_set().  Unknown keys are errors, so a typo cannot
 * silently leave a default in force.
 */
#include "api/authz.h"
#include "api/netguard.h"
#include "api/server.h"
#include "api/probe.h"
#include "cli/cli.h"
#include "core/assert.h"
#include "core/admin.h"
#include "core/auth.h"
#include "crypto/jose.h"
#include "crypto/keyring.h"
#include "engine/history.h"
#include "engine/trace.h"
#include "log/fsdir.h"
#include "log/journal.h"
#include "log/tilestore.h"
#include "net/http.h"
#include "core/strerror.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

#define CONFIG_LINE_BYTES_MAX 1024u
#define CONFIG_BYTES_MAX      (64u * 1024u)

/* A value too long for dst is refused and leaves dst as it was. */
static int copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		return -EINVAL;
	memcpy(dst, src, n + 1);
	return 0;
}

/* outbound_allow: one rule or several separated by commas or spaces (the
 * environment variable's form), each checked (net/http.h) and appended. */
static int allow_add(struct settings *s, const char *value)
{
	char err[HTTP_ALLOW_RULE_BYTES + 128];
	const char *p = value;
	size_t max = sizeof(s->outbound_allow) / sizeof(s->outbound_allow[0]);

	for (;;) {
		p += strspn(p, ", \t");
		size_t n = strcspn(p, ", \t");
		if (n == 0)
			return 0;
		if (s->noutbound_allow == max ||
		    n >= sizeof(s->outbound_allow[0]))
			return -EINVAL;
		char *dst = s->outbound_allow[s->noutbound_allow];
		memcpy(dst, p, n);
		dst[n] = '\0';
		if (http_allow_rule_check(dst, err, sizeof(err)) < 0) {
			fprintf(stderr, "tpwallet: %s\n", err);
			return -EINVAL;
		}
		s->noutbound_allow++;
		p += n;
	}
}

/* "http(s)://host[:port]": no path, query, userinfo or spaces. */
static bool public_url_ok(const char *v)
{
	const char *rest;
	if (strncmp(v, "https://", 8) == 0)
		rest = v + 8;
	else if (strncmp(v, "http://", 7) == 0)
		rest = v + 7;
	else
		return false;
	size_t n = strlen(rest);
	if (n == 0 || strlen(v) > 200)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = rest[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == ':' || c == '[' || c == ']'))
			return false;
	}
	return true;
}

/* A share from 0 to 1 written as a decimal ("0.05", "0", "1"): digits,
 * at most one point, no sign, exponent or space.  A value that does not
 * parse leaves *out as it was. */
static int parse_share(const char *v, double *out)
{
	size_t n = strlen(v), points = 0;
	if (n == 0 || n > 16 || v[0] == '.' || v[n - 1] == '.')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '.')
			points++;
		else if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
	}
	double d = strtod(v, NULL);
	if (points > 1 || !(d >= 0 && d <= 1))
		return -EINVAL;
	*out = d;
	return 0;
}

/* The numeric settings: key (the field's name), the accepted range. */
struct number_setting {
	const char *key;
	uint64_t min, max;
	size_t offset, size; /* the field: unsigned or uint64_t */
};

#define NUMBER(field, lo, hi)                                                  \
	{                                                                      \
#field, lo, hi, offsetof(struct settings, field),              \
			sizeof(((struct settings *)0)->field)                  \
	}

static const struct number_setting number_settings[] = {
	NUMBER(threads, 0, 256),
	NUMBER(body_bytes_max, 1024, (uint64_t)64 << 20),
	NUMBER(connection_timeout_s, 1, 3600),
	NUMBER(connections_max, 1, 65536),
	NUMBER(body_budget_bytes, 65536, (uint64_t)64 << 30),
	NUMBER(body_budget_per_address_bytes, 65536, (uint64_t)64 << 30),
	NUMBER(body_budget_per_principal_bytes, 65536, (uint64_t)64 << 30),
	NUMBER(header_timeout_s, 1, 3600),
	NUMBER(body_timeout_s, 1, 86400),
	NUMBER(body_rate_min_bytes_s, 1, (uint64_t)1 << 30),
	NUMBER(connections_per_address_max, 1, 65536),
	NUMBER(snapshot_every, 1000, UINT64_MAX),
	NUMBER(store, 0, 1),
	NUMBER(cache_bytes, HISTORY_CACHE_BYTES_MIN, (uint64_t)1 << 40),
	NUMBER(journal_segment_bytes, (uint64_t)64 << 10, (uint64_t)1 << 32),
	NUMBER(key_rotation_days, 0, 3660),
	NUMBER(key_overlap_s, 0, KEYRING_OVERLAP_MAX_S),
	NUMBER(link_leeway_s, 0, JOSE_LEEWAY_MAX_S),
	NUMBER(dual_control_window_s, ADMIN_WINDOW_MIN_S, ADMIN_WINDOW_MAX_S),
	NUMBER(revocations_per_principal, 1, AUTH_REVOCATIONS_RESERVE),
	NUMBER(probe_interval_s, PROBE_INTERVAL_S_MIN, PROBE_INTERVAL_S_MAX),
	NUMBER(manifest_public, 0, 1),
	NUMBER(metrics_exemplars, 0, 1),
	NUMBER(manifest_ttl_max_s, 60, 7 * 86400),
	NUMBER(vault_reveals_per_minute, 1, 100000),
	NUMBER(shutdown_drain_s, 0, 300),
	NUMBER(shutdown_timeout_s, 1, 3600),
	NUMBER(core_dumps, 0, 1),
	NUMBER(audit_cache_bytes, (uint64_t)1 << 20, (uint64_t)64 << 30),
	NUMBER(kek_pkcs11_timeout_ms, 50, 60000),
	NUMBER(signing_pkcs11, 0, 1),
	NUMBER(cluster_lease_ms, 1000, 600000),
	NUMBER(cluster_read_wait_ms, 0, 60000),
	NUMBER(otel_bsp_max_queue_size, 16, 65536),
	NUMBER(otel_bsp_schedule_delay, 10, 600000),
	NUMBER(otel_exporter_otlp_timeout, 100, 600000),
	NUMBER(acquirer_code, 1, 65535),
	NUMBER(acquirer_inflight_max, 1, 256),
	NUMBER(acquirer_breaker_failures, 1, 1000),
	NUMBER(acquirer_breaker_cooldown_ms, 100, 600000),
	NUMBER(acquirer_timeout_ms, 100, 600000),
};

#undef NUMBER

/* Parse value into the setting's field; a value that does not parse or
 * is out of range leaves the field as it was. */
/* The text settings of the PKCS#11 KEK: key, the field. */
struct text_setting {
	const char *key;
	size_t offset, size;
};

#define TEXT(field)                                                            \
	{                                                                      \
#field, offsetof(struct settings, field),                      \
			sizeof(((struct settings *)0)->field)                  \
	}

static const struct text_setting text_settings[] = {
	TEXT(kek_pkcs11_module),
	TEXT(kek_pkcs11_token),
	TEXT(kek_pkcs11_slot),
	TEXT(kek_pkcs11_pin_file),
	TEXT(kek_pkcs11_key_label),
	TEXT(otel_exporter_otlp_endpoint),
	TEXT(otel_exporter_otlp_traces_endpoint),
	TEXT(otel_traces_sampler),
	TEXT(otel_traces_sampler_arg),
	TEXT(otel_service_name),
	TEXT(acquirer),
	TEXT(acquirer_settlement_account),
	TEXT(acquirer_suspense_account),
	TEXT(acquirer_currency),
	TEXT(acquirer_api_version),
};

#undef TEXT

static int set_text(struct settings *s, const struct text_setting *t,
		    const char *value)
{
	uint64_t slot;
	struct trace_options o;
	if (strcmp(t->key, "otel_traces_sampler") == 0 &&
	    trace_sampler_parse(value, NULL, &o) != 0)
		return -EINVAL;
	if (strcmp(t->key, "otel_traces_sampler_arg") == 0 &&
	    trace_sampler_parse("traceidratio", value, &o) != 0)
		return -EINVAL;
	if (strcmp(t->key, "kek_pkcs11_slot") == 0 && *value &&
	    parse_u64(value, UINT32_MAX, &slot) != 0)
		return -EINVAL;
	return copy_str((char *)s + t->offset, t->size, value);
}

static int set_number(struct settings *s, const struct number_setting *n,
		      const char *value)
{
	uint64_t v;
	if (parse_u64(value, n->max, &v) != 0 || v < n->min)
		return -EINVAL;
	char *field = (char *)s + n->offset;
	if (n->size == sizeof(uint64_t)) {
		memcpy(field, &v, sizeof(v));
	} else {
		TPW_ASSERT(n->size == sizeof(unsigned) && v <= UINT_MAX);
		unsigned u = (unsigned)v;
		memcpy(field, &u, sizeof(u));
	}
	return 0;
}

int settings_set(struct settings *s, const char *key, const char *value)
{
	int ret = 0;
	const struct number_setting *number = NULL;
	const struct text_setting *text = NULL;

	for (size_t i = 0;
	     i < sizeof(number_settings) / sizeof(number_settings[0]); i++)
		if (strcmp(key, number_settings[i].key) == 0)
			number = &number_settings[i];
	for (size_t i = 0; i < sizeof(text_settings) / sizeof(text_settings[0]);
	     i++)
		if (strcmp(key, text_settings[i].key) == 0)
			text = &text_settings[i];

	if (number) {
		ret = set_number(s, number, value);
	} else if (text) {
		ret = set_text(s, text, value);
	} else if (strcmp(key, "data") == 0) {
		ret = copy_str(s->data_dir, sizeof(s->data_dir), value);
	} else if (strcmp(key, "listen") == 0) {
		char host[256];
		unsigned short port;
		ret = parse_listen(value, host, sizeof(host), &port);
		if (ret == 0)
			ret = copy_str(s->listen, sizeof(s->listen), value);
	} else if (strcmp(key, "trusted_proxies") == 0) {
		struct netguard_cidr c[NETGUARD_PROXIES_MAX];
		size_t n;
		ret = netguard_cidrs_parse(value, c, NETGUARD_PROXIES_MAX, &n);
		if (ret == 0)
			ret = copy_str(s->trusted_proxies,
				       sizeof(s->trusted_proxies), value);
	} else if (strcmp(key, "public_url") == 0) {
		ret = public_url_ok(value) ? 0 : -EINVAL;
		if (ret == 0)
			snprintf(s->public_url, sizeof(s->public_url), "%s",
				 value);
	} else if (strcmp(key, "witness") == 0) {
		if (s->nwitnesses ==
		    sizeof(s->witnesses) / sizeof(s->witnesses[0]))
			ret = -EINVAL;
		else
			ret = copy_str(s->witnesses[s->nwitnesses],
				       sizeof(s->witnesses[0]), value);
		if (ret == 0)
			s->nwitnesses++;
	} else if (strcmp(key, "probe") == 0) {
		struct probe_target t;
		_Static_assert(sizeof(s->probes) / sizeof(s->probes[0]) ==
				       PROBE_TARGETS_MAX,
			       "probes");
		if (s->nprobes == PROBE_TARGETS_MAX ||
		    probe_target_parse(value, &t) != 0)
			ret = -EINVAL;
		else
			ret = copy_str(s->probes[s->nprobes],
				       sizeof(s->probes[0]), value);
		if (ret == 0)
			s->nprobes++;
	} else if (strcmp(key, "kek_file") == 0) {
		ret = *value ? copy_str(s->kek_file, sizeof(s->kek_file), value)
			     : -EINVAL;
	} else if (strcmp(key, "tls_cert_file") == 0) {
		ret = copy_str(s->tls_cert_file, sizeof(s->tls_cert_file),
			       value);
	} else if (strcmp(key, "tls_key_file") == 0) {
		ret = copy_str(s->tls_key_file, sizeof(s->tls_key_file), value);
	} else if (strcmp(key, "tls_standby_cert_file") == 0) {
		ret = copy_str(s->tls_standby_cert_file,
			       sizeof(s->tls_standby_cert_file), value);
	} else if (strcmp(key, "tls_standby_key_file") == 0) {
		ret = copy_str(s->tls_standby_key_file,
			       sizeof(s->tls_standby_key_file), value);
	} else if (strcmp(key, "tls_client_ca_file") == 0) {
		ret = copy_str(s->tls_client_ca_file,
			       sizeof(s->tls_client_ca_file), value);
	} else if (strcmp(key, "tls_crl_file") == 0) {
		ret = copy_str(s->tls_crl_file, sizeof(s->tls_crl_file), value);
	} else if (strcmp(key, "tls_client_auth") == 0) {
		ret = strcmp(value, "none") == 0 ||
				      strcmp(value, "optional") == 0 ||
				      strcmp(value, "required") == 0
			      ? copy_str(s->tls_client_auth,
					 sizeof(s->tls_client_auth), value)
			      : -EINVAL;
	} else if (strcmp(key, "tls_ocsp_file") == 0) {
		ret = copy_str(s->tls_ocsp_file, sizeof(s->tls_ocsp_file),
			       value);
	} else if (strcmp(key, "tls_standby_ocsp_file") == 0) {
		ret = copy_str(s->tls_standby_ocsp_file,
			       sizeof(s->tls_standby_ocsp_file), value);
	} else if (strcmp(key, "release_public_key_file") == 0) {
		ret = copy_str(s->release_public_key_file,
			       sizeof(s->release_public_key_file), value);
	} else if (strcmp(key, "outbound_ca_file") == 0) {
		ret = copy_str(s->outbound_ca_file, sizeof(s->outbound_ca_file),
			       value);
	} else if (strcmp(key, "outbound_pin") == 0) {
		if (s->noutbound_pins ==
		    sizeof(s->outbound_pins) / sizeof(s->outbound_pins[0]))
			ret = -EINVAL;
		else
			ret = copy_str(s->outbound_pins[s->noutbound_pins],
				       sizeof(s->outbound_pins[0]), value);
		if (ret == 0)
			s->noutbound_pins++;
	} else if (strcmp(key, "outbound_allow") == 0) {
		ret = allow_add(s, value);
	} else if (strcmp(key, "journal_archive_dir") == 0) {
		ret = value[0] == '/'
			      ? copy_str(s->journal_archive_dir,
					 sizeof(s->journal_archive_dir), value)
			      : -EINVAL;
	} else if (strcmp(key, "tls_priority") == 0) {
		ret = copy_str(s->tls_priority, sizeof(s->tls_priority), value);
	} else if (strcmp(key, "cluster") == 0) {
		ret = copy_str(s->cluster, sizeof(s->cluster), value);
	} else if (strcmp(key, "cluster_advertise") == 0) {
		ret = public_url_ok(value)
			      ? copy_str(s->cluster_advertise,
					 sizeof(s->cluster_advertise), value)
			      : -EINVAL;
	} else if (strcmp(key, "cluster_node") == 0) {
		ret = *value ? copy_str(s->cluster_node,
					sizeof(s->cluster_node), value)
			     : -EINVAL;
	} else if (strcmp(key, "client_policy_max_blocked_share") == 0) {
		ret = parse_share(value, &s->client_policy_max_blocked_share);
	} else if (strcmp(key, "log_level") == 0) {
		if (strcmp(value, "debug") && strcmp(value, "info") &&
		    strcmp(value, "warn") && strcmp(value, "error"))
			ret = -EINVAL;
		else
			ret = copy_str(s->log_level, sizeof(s->log_level),
				       value);
	} else {
		fprintf(stderr, "tpwallet: unknown setting '%s'\n", key);
		return -EINVAL;
	}
	if (ret < 0)
		fprintf(stderr,
			"tpwallet: invalid value for '%s': '%s' "
			"(see docs/operations.md)\n",
			key,
			/* a connection string may hold a password */
			strcmp(key, "cluster") ? value : "(not shown)");
	return ret;
}

static char *trim(char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	char *end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return p;
}

int settings_parse_text(struct settings *s, const char *text, size_t len,
			const char *source)
{
	char line[CONFIG_LINE_BYTES_MAX];
	unsigned lineno = 0;
	size_t at = 0;

	while (at < len) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
		lineno++;
		if (n >= sizeof(line)) {
			fprintf(stderr,
				"%s:%u: line too long (at most %u bytes)\n",
				source, lineno, CONFIG_LINE_BYTES_MAX - 1);
			return -EINVAL;
		}
		if (memchr(text + at, '\0', n)) {
			fprintf(stderr, "%s:%u: NUL byte\n", source, lineno);
			return -EINVAL;
		}
		memcpy(line, text + at, n);
		line[n] = '\0';
		at += n + (nl ? 1 : 0);

		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *p = trim(line);
		if (*p == '\0')
			continue;
		char *eq = strchr(p, '=');
		if (!eq) {
			fprintf(stderr, "%s:%u: expected 'key = value'\n",
				source, lineno);
			return -EINVAL;
		}
		*eq = '\0';
		if (settings_set(s, trim(p), trim(eq + 1)) < 0) {
			fprintf(stderr, "%s:%u: in this line\n", source,
				lineno);
			return -EINVAL;
		}
	}
	return 0;
}

static int load_file(struct settings *s, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	int ret = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		ret = -errno;
		fprintf(stderr, "tpwallet: cannot read config file %s: %s\n",
			path, tpw_strerror(errno));
		return ret;
	}
	text = malloc(CONFIG_BYTES_MAX + 1);
	if (!text) {
		ret = -ENOMEM;
		goto cleanup;
	}
	len = fread(text, 1, CONFIG_BYTES_MAX + 1, f);
	if (ferror(f)) {
		ret = -EIO;
		fprintf(stderr, "tpwallet: cannot read config file %s\n", path);
		goto cleanup;
	}
	if (len > CONFIG_BYTES_MAX) {
		ret = -EFBIG;
		fprintf(stderr, "tpwallet: config file %s is over %u bytes\n",
			path, CONFIG_BYTES_MAX);
		goto cleanup;
	}
	ret = settings_parse_text(s, text, len, path);
cleanup:
	free(text);
	fclose(f);
	return ret;
}

static const struct {
	const char *env;
	const char *key;
} env_keys[] = {
	{"TPWALLET_DATA", "data"},
	{"TPWALLET_LISTEN", "listen"},
	{"TPWALLET_THREADS", "threads"},
	{"TPWALLET_BODY_BYTES_MAX", "body_bytes_max"},
	{"TPWALLET_CONNECTION_TIMEOUT_S", "connection_timeout_s"},
	{"TPWALLET_CONNECTIONS_MAX", "connections_max"},
	{"TPWALLET_BODY_BUDGET_BYTES", "body_budget_bytes"},
	{"TPWALLET_BODY_BUDGET_PER_ADDRESS_BYTES",
	 "body_budget_per_address_bytes"},
	{"TPWALLET_BODY_BUDGET_PER_PRINCIPAL_BYTES",
	 "body_budget_per_principal_bytes"},
	{"TPWALLET_HEADER_TIMEOUT_S", "header_timeout_s"},
	{"TPWALLET_BODY_TIMEOUT_S", "body_timeout_s"},
	{"TPWALLET_BODY_RATE_MIN_BYTES_S", "body_rate_min_bytes_s"},
	{"TPWALLET_CONNECTIONS_PER_ADDRESS_MAX", "connections_per_address_max"},
	{"TPWALLET_TRUSTED_PROXIES", "trusted_proxies"},
	{"TPWALLET_SNAPSHOT_EVERY", "snapshot_every"},
	{"TPWALLET_STORE", "store"},
	{"TPWALLET_CACHE_BYTES", "cache_bytes"},
	{"TPWALLET_JOURNAL_ARCHIVE_DIR", "journal_archive_dir"},
	{"TPWALLET_JOURNAL_SEGMENT_BYTES", "journal_segment_bytes"},
	{"TPWALLET_KEY_ROTATION_DAYS", "key_rotation_days"},
	{"TPWALLET_KEY_OVERLAP_S", "key_overlap_s"},
	{"TPWALLET_PUBLIC_URL", "public_url"},
	{"TPWALLET_LINK_LEEWAY_S", "link_leeway_s"},
	{"TPWALLET_DUAL_CONTROL_WINDOW_S", "dual_control_window_s"},
	{"TPWALLET_REVOCATIONS_PER_PRINCIPAL", "revocations_per_principal"},
	{"TPWALLET_CLIENT_POLICY_MAX_BLOCKED_SHARE",
	 "client_policy_max_blocked_share"},
	{"TPWALLET_MANIFEST_PUBLIC", "manifest_public"},
	{"TPWALLET_METRICS_EXEMPLARS", "metrics_exemplars"},
	{"TPWALLET_MANIFEST_TTL_MAX_S", "manifest_ttl_max_s"},
	{"TPWALLET_VAULT_REVEALS_PER_MINUTE", "vault_reveals_per_minute"},
	{"TPWALLET_SHUTDOWN_DRAIN_S", "shutdown_drain_s"},
	{"TPWALLET_SHUTDOWN_TIMEOUT_S", "shutdown_timeout_s"},
	{"TPWALLET_CORE_DUMPS", "core_dumps"},
	{"TPWALLET_LOG_LEVEL", "log_level"},
	{"TPWALLET_KEK_FILE", "kek_file"},
	{"TPWALLET_KEK_PKCS11_MODULE", "kek_pkcs11_module"},
	{"TPWALLET_KEK_PKCS11_TOKEN", "kek_pkcs11_token"},
	{"TPWALLET_KEK_PKCS11_SLOT", "kek_pkcs11_slot"},
	{"TPWALLET_KEK_PKCS11_PIN_FILE", "kek_pkcs11_pin_file"},
	{"TPWALLET_KEK_PKCS11_KEY_LABEL", "kek_pkcs11_key_label"},
	{"TPWALLET_KEK_PKCS11_TIMEOUT_MS", "kek_pkcs11_timeout_ms"},
	{"TPWALLET_SIGNING_PKCS11", "signing_pkcs11"},
	{"TPWALLET_WITNESS", "witness"},
	{"TPWALLET_PROBE_INTERVAL_S", "probe_interval_s"},
	{"TPWALLET_AUDIT_CACHE_BYTES", "audit_cache_bytes"},
	{"TPWALLET_TLS_CERT_FILE", "tls_cert_file"},
	{"TPWALLET_TLS_KEY_FILE", "tls_key_file"},
	{"TPWALLET_TLS_PRIORITY", "tls_priority"},
	{"TPWALLET_TLS_STANDBY_CERT_FILE", "tls_standby_cert_file"},
	{"TPWALLET_TLS_STANDBY_KEY_FILE", "tls_standby_key_file"},
	{"TPWALLET_TLS_CLIENT_CA_FILE", "tls_client_ca_file"},
	{"TPWALLET_TLS_CRL_FILE", "tls_crl_file"},
	{"TPWALLET_TLS_CLIENT_AUTH", "tls_client_auth"},
	{"TPWALLET_TLS_OCSP_FILE", "tls_ocsp_file"},
	{"TPWALLET_TLS_STANDBY_OCSP_FILE", "tls_standby_ocsp_file"},
	{"TPWALLET_OUTBOUND_CA_FILE", "outbound_ca_file"},
	{"TPWALLET_RELEASE_PUBLIC_KEY_FILE", "release_public_key_file"},
	{"TPWALLET_OUTBOUND_PIN", "outbound_pin"},
	{"TPWALLET_OUTBOUND_ALLOW", "outbound_allow"},
	{"TPWALLET_ACQUIRER", "acquirer"},
	{"TPWALLET_ACQUIRER_SETTLEMENT_ACCOUNT", "acquirer_settlement_account"},
	{"TPWALLET_ACQUIRER_SUSPENSE_ACCOUNT", "acquirer_suspense_account"},
	{"TPWALLET_ACQUIRER_CURRENCY", "acquirer_currency"},
	{"TPWALLET_ACQUIRER_API_VERSION", "acquirer_api_version"},
	{"TPWALLET_ACQUIRER_CODE", "acquirer_code"},
	{"TPWALLET_ACQUIRER_INFLIGHT_MAX", "acquirer_inflight_max"},
	{"TPWALLET_ACQUIRER_BREAKER_FAILURES", "acquirer_breaker_failures"},
	{"TPWALLET_ACQUIRER_BREAKER_COOLDOWN_MS",
	 "acquirer_breaker_cooldown_ms"},
	{"TPWALLET_ACQUIRER_TIMEOUT_MS", "acquirer_timeout_ms"},
	{"TPWALLET_CLUSTER", "cluster"},
	{"TPWALLET_CLUSTER_NODE", "cluster_node"},
	{"TPWALLET_CLUSTER_LEASE_MS", "cluster_lease_ms"},
	{"TPWALLET_CLUSTER_ADVERTISE", "cluster_advertise"},
	{"TPWALLET_CLUSTER_READ_WAIT_MS", "cluster_read_wait_ms"},
	/* OpenTelemetry's own names (docs/operations.md, "Tracing"). */
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "otel_exporter_otlp_endpoint"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	 "otel_exporter_otlp_traces_endpoint"},
	{"OTEL_TRACES_SAMPLER", "otel_traces_sampler"},
	{"OTEL_TRACES_SAMPLER_ARG", "otel_traces_sampler_arg"},
	{"OTEL_SERVICE_NAME", "otel_service_name"},
	{"OTEL_BSP_MAX_QUEUE_SIZE", "otel_bsp_max_queue_size"},
	{"OTEL_BSP_SCHEDULE_DELAY", "otel_bsp_schedule_delay"},
	{"OTEL_EXPORTER_OTLP_TIMEOUT", "otel_exporter_otlp_timeout"},
};

int settings_load(struct settings *s, const char *config_path)
{
	int ret;

	memset(s, 0, sizeof(*s));
	copy_str(s->data_dir, sizeof(s->data_dir), "./data");
	copy_str(s->listen, sizeof(s->listen), "127.0.0.1:8080");
	s->threads = 0;
	s->body_bytes_max = 8u << 20;
	s->connection_timeout_s = 30;
	s->connections_max = 4096;
	s->body_budget_bytes = NETGUARD_BODY_BUDGET_BYTES_DEFAULT;
	s->body_budget_per_address_bytes =
		NETGUARD_BODY_BUDGET_PER_ADDRESS_BYTES_DEFAULT;
	s->body_budget_per_principal_bytes =
		NETGUARD_BODY_BUDGET_PER_PRINCIPAL_BYTES_DEFAULT;
	s->header_timeout_s = NETGUARD_HEADER_TIMEOUT_S_DEFAULT;
	s->body_timeout_s = NETGUARD_BODY_TIMEOUT_S_DEFAULT;
	s->body_rate_min_bytes_s = NETGUARD_BODY_RATE_MIN_BYTES_S_DEFAULT;
	s->connections_per_address_max =
		NETGUARD_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT;
	s->snapshot_every = 1000000;
	s->store = 0;
	s->cache_bytes = HISTORY_CACHE_BYTES_DEFAULT;
	s->journal_segment_bytes = JOURNAL_SEGMENT_BYTES_DEFAULT;
	s->key_rotation_days = 90;
	s->key_overlap_s = KEYRING_OVERLAP_DEFAULT_S;
	s->link_leeway_s = AUTHZ_LEEWAY_S;
	s->dual_control_window_s = ADMIN_WINDOW_DEFAULT_S;
	s->client_policy_max_blocked_share =
		API_POLICY_BLOCKED_SHARE_MAX_DEFAULT;
	s->probe_interval_s = PROBE_INTERVAL_S_DEFAULT;
	s->manifest_public = 0;
	s->manifest_ttl_max_s = API_MANIFEST_TTL_S_DEFAULT;
	s->vault_reveals_per_minute = API_VAULT_REVEALS_PER_MINUTE_DEFAULT;
	s->shutdown_timeout_s = SHUTDOWN_TIMEOUT_S_DEFAULT;
	s->revocations_per_principal = AUTH_REVOCATIONS_PER_PRINCIPAL;
	s->audit_cache_bytes = TILESTORE_CACHE_BYTES_DEFAULT;
	s->kek_pkcs11_timeout_ms = 2000;
	s->cluster_lease_ms = 10000;
	s->cluster_read_wait_ms = 2000;
	s->otel_bsp_max_queue_size = TRACE_QUEUE_SPANS_DEFAULT;
	s->otel_bsp_schedule_delay = TRACE_DELAY_MS_DEFAULT;
	s->otel_exporter_otlp_timeout = TRACE_TIMEOUT_MS_DEFAULT;
	copy_str(s->log_level, sizeof(s->log_level), "info");
	copy_str(s->acquirer_currency, sizeof(s->acquirer_currency), "EUR");
	copy_str(s->acquirer_api_version, sizeof(s->acquirer_api_version),
		 "2026-01");
	s->acquirer_code = 1701;
	s->acquirer_inflight_max = 4;
	s->acquirer_breaker_failures = 5;
	s->acquirer_breaker_cooldown_ms = 5000;
	s->acquirer_timeout_ms = 2000;

	if (!config_path)
		config_path = getenv("TPWALLET_CONFIG");
	if (config_path && *config_path) {
		ret = load_file(s, config_path);
		if (ret < 0)
			return ret;
	}
	for (size_t i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++) {
		const char *v = getenv(env_keys[i].env);
		if (v && *v) {
			ret = settings_set(s, env_keys[i].key, v);
			if (ret < 0) {
				fprintf(stderr,
					"tpwallet: from environment "
					"variable %s\n",
					env_keys[i].env);
				return ret;
			}
		}
	}
	return 0;
}

void settings_finish(struct settings *s)
{
	if (s->kek_file[0])
		return;
	size_t n = strlen(s->data_dir);
	while (n > 1 && s->data_dir[n - 1] == '/')
		n--;
	snprintf(s->kek_file, sizeof(s->kek_file), "%.*s.kek", (int)n,
		 s->data_dir);
}

int parse_listen(const char *s, char *host, size_t host_bytes,
		 unsigned short *port)
{
	const char *colon;
	const char *h = s;
	size_t hlen;
	uint64_t p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= host_bytes)
		return -EINVAL;
	if (parse_u64(colon + 1, 65535, &p) < 0)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (unsigned short)p;
	return 0;
}
