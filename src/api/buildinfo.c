/*
 * buildinfo.c - the release, the commit and the libraries' versions
 * (buildinfo.h).  The commit comes from build/gen/buildinfo_gen.h, which
 * the Makefile writes from `git describe` (and leaves alone when it did
 * not change, so only this file is built again).
 */
#include "api/buildinfo.h"
#include "core/version.h"

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <nettle/version.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "buildinfo_gen.h"

#include "banned.h"

static void add(struct buildinfo *b, const char *name, const char *v,
		bool built)
{
	struct buildinfo_lib *l;

	if (b->nlibs >= BUILDINFO_LIBS_MAX)
		return;
	l = &b->libs[b->nlibs++];
	l->name = name;
	snprintf(l->version, sizeof(l->version), "%s", v ? v : "unknown");
	/* A label value and a log field: only what versions are made of. */
	for (char *p = l->version; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
			    "YZ"
			    "0123456789.+-_~",
			    *p))
			*p = '?';
	l->built = built;
}

void buildinfo_get(struct buildinfo *b)
{
	char v[32];
	int pq = PQlibVersion(); /* 150005: 15.5 */
	const curl_version_info_data *c = curl_version_info(CURLVERSION_NOW);

	memset(b, 0, sizeof(*b));
	b->version = TPWALLET_VERSION;
	b->commit = TPWALLET_COMMIT;
	add(b, "libmicrohttpd", MHD_get_version(), false);
	add(b, "gnutls", gnutls_check_version(NULL), false);
	add(b, "libsodium", sodium_version_string(), false);
	add(b, "jansson", jansson_version_str(), false);
	add(b, "libcurl", c ? c->version : NULL, false);
	snprintf(v, sizeof(v), "%d.%d", pq / 10000, pq % 10000);
	add(b, "libpq", v, false);
	snprintf(v, sizeof(v), "%d.%d", nettle_version_major(),
		 nettle_version_minor());
	add(b, "nettle", v, false);
	/* RocksDB's version call is C++ only: the one it was built with. */
	add(b, "rocksdb", TPWALLET_ROCKSDB_BUILT, true);
}

void buildinfo_libs_text(const struct buildinfo *b, char *out, size_t cap)
{
	size_t n = 0;

	if (cap)
		out[0] = '\0';
	for (unsigned i = 0; i < b->nlibs && n < cap; i++) {
		int w = snprintf(out + n, cap - n, "%s%s %s%s", i ? ", " : "",
				 b->libs[i].name, b->libs[i].version,
				 b->libs[i].built ? " (built with)" : "");
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

static const char *_Atomic signature = "no_key";

void buildinfo_set_signature(const char *status)
{
	signature = status;
}

void buildinfo_metrics(struct wbuf *w)
{
	struct buildinfo b;

	buildinfo_get(&b);
	wbuf_puts(w, "# HELP tpwallet_build_info The running build: its "
		     "release, the commit it was built from, and its "
		     "signature (release_public_key_file).\n"
		     "# TYPE tpwallet_build_info gauge\n"
		     "tpwallet_build_info{version=\"");
	wbuf_puts(w, b.version);
	wbuf_puts(w, "\",commit=\"");
	wbuf_puts(w, b.commit);
	wbuf_puts(w, "\",signature=\"");
	wbuf_puts(w, signature);
	wbuf_puts(w, "\"} 1\n"
		     "# HELP tpwallet_library_info The libraries the server "
		     "runs on and their versions.\n"
		     "# TYPE tpwallet_library_info gauge\n");
	for (unsigned i = 0; i < b.nlibs; i++) {
		wbuf_puts(w, "tpwallet_library_info{library=\"");
		wbuf_puts(w, b.libs[i].name);
		wbuf_puts(w, "\",version=\"");
		wbuf_puts(w, b.libs[i].version);
		wbuf_puts(w, "\"} 1\n");
	}
}
