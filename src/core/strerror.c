/*
 * strerror.c - tpw_strerror (core/strerror.h) over glibc's error table.
 */
#include "core/strerror.h"

#include <string.h>

#include "banned.h"

const char *tpw_strerror(int errnum)
{
	const char *s = strerrordesc_np(errnum);
	return s ? s : "Unknown error";
}
