/*
 * buildinfo.h - what this binary is: its release, the commit it was
 * built from, and the versions of the libraries it runs on (as they
 * report themselves at run time, or as they were when built where a
 * library has no such call), for `tpwallet version`, doctor, the start
 * log line and /metrics (issue 21: the field guide's diagnosis asks
 * which library versions are running).
 */
#ifndef TPW_API_BUILDINFO_H
#define TPW_API_BUILDINFO_H

#include "api/wbuf.h"

#define BUILDINFO_LIBS_MAX 10

struct buildinfo_lib {
	const char *name; /* "libsodium" */
	char version[32]; /* "1.0.18" */
	bool built;	  /* the version it was built against (no call) */
};

struct buildinfo {
	const char *version; /* TPWALLET_VERSION */
	const char *commit;  /* 12 hex digits, "-dirty" when the tree was */
	unsigned nlibs;
	struct buildinfo_lib libs[BUILDINFO_LIBS_MAX];
};

void buildinfo_get(struct buildinfo *b);
/* "libmicrohttpd 0.9.75, jansson 2.14, ..." into out (cut to fit). */
void buildinfo_libs_text(const struct buildinfo *b, char *out, size_t cap);
/* The running binary's signature status (cli/release.c: "verified",
 * "unsigned", "bad", "no_key"), said by buildinfo_metrics; a static
 * string, set once at start ("no_key" until then). */
void buildinfo_set_signature(const char *status);
/* tpwallet_build_info{version,commit,signature} 1 and
 * tpwallet_library_info{library,version} 1 per library. */
void buildinfo_metrics(struct wbuf *b);

#endif
