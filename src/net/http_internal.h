/*
 * http_internal.h - what http.c and http_allow.c share beyond http.h:
 * the allow-list's check of one socket libcurl is about to open.
 */
#ifndef TPW_NET_HTTP_INTERNAL_H
#define TPW_NET_HTTP_INTERNAL_H

#include <stddef.h>

struct sockaddr;

/* 0 when a socket to sa may be opened for a URL whose host is host (no
 * allow-list set: always), else -HTTP_outbound_refused with why (counted
 * by class, kept as the last refusal). */
int http__allow_connect(const char *host, const struct sockaddr *sa, char *why,
			size_t why_len);

#endif
