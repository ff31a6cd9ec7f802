/*
 * strerror.h - the text of an errno value, safe from any thread.
 *
 * strerror(3) is banned (src/banned.h): it may return a buffer that the
 * next call from another thread overwrites, and its text follows the
 * locale.  tpw_strerror returns a string from glibc's constant table
 * (strerrordesc_np, the English text strerror gives in the C locale),
 * valid for the life of the process; an unknown value gives
 * "Unknown error" (strerror adds the number).  Callers that hold a
 * negative return code pass its negation, as they did to strerror.
 */
#ifndef TPW_CORE_STRERROR_H
#define TPW_CORE_STRERROR_H

const char *tpw_strerror(int errnum);

#endif
