/*
 * banned.h - functions that are compile errors in this project (after
 * git's banned.h).  Included into every translation unit by the Makefile.
 * Included last by each .c file (system headers declare these names).
 * Use snprintf, memcpy with a checked length, strtok_r, or the helpers in
 * src/core/u128.h instead.
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

#endif
