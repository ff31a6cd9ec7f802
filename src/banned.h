/*
 * banned.h - functions that are compile errors in this project (after
 * git's banned.h).  Included into every translation unit by the Makefile.
 * Included last by each .c file (system headers declare these names).
 * Use snprintf, memcpy with a checked length, strtok_r, or the helpers in
 * src/core/u128.h instead.  sscanf and atol/atoll accept signs, spaces
 * and trailing text (and atol cannot report an error): parse with
 * u128_parse_dec or strtoull and check every byte.  system runs a shell
 * over a string: call the function (fsdir_remove_tree for `rm -rf`).
 * strerror may hand back a buffer another thread overwrites: use
 * tpw_strerror (src/core/strerror.h).
 */
#ifndef TPW_BANNED_H
#define TPW_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gets
#define gets(x) BANNED(gets)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef atol
#define atol(x) BANNED(atol)
#undef atoll
#define atoll(x) BANNED(atoll)
#undef system
#define system(x) BANNED(system)
#undef strerror
#define strerror(x) BANNED(strerror)
#undef sscanf
#define sscanf(...) BANNED(sscanf)

#endif
