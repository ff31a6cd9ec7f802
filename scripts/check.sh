#!/bin/sh
# `make check`: static checks.  Fails on the first problem found.
#   - banned functions (src/banned.h) are not called anywhere;
#   - every .c under src/ includes banned.h last;
#   - clang-format reports no difference (.clang-format);
#   - cppcheck finds no error or warning.
set -eu
cd "$(dirname "$0")/.."
status=0

files=$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c' 2>/dev/null ||
	find src tests bench -name '*.[ch]')

for f in $(echo "$files" | grep '^src/.*\.c$'); do
	last=$(grep '^#include' "$f" | tail -n 1)
	if [ "$last" != '#include "banned.h"' ]; then
		echo "check: $f: banned.h must be the last #include"
		status=1
	fi
done

if grep -nE '\b(strcpy|strcat|strncpy|strncat|sprintf|vsprintf|strtok|gets|atoi)\s*\(' \
	$(echo "$files" | grep -v 'banned.h') | grep -v '^\s*//' | grep -v 'snprintf\|vsnprintf'; then
	echo "check: banned function used (see src/banned.h)"
	status=1
fi

if command -v clang-format >/dev/null 2>&1; then
	bad=""
	for f in $files; do
		if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
			bad="$bad $f"
		fi
	done
	if [ -n "$bad" ]; then
		echo "check: clang-format differs (run 'make format'):$bad"
		status=1
	fi
fi

if command -v cppcheck >/dev/null 2>&1; then
	if ! cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
		--enable=warning,portability --suppress=missingIncludeSystem \
		-D_GNU_SOURCE -Isrc src 2>&1; then
		echo "check: cppcheck found problems"
		status=1
	fi
fi

[ "$status" -eq 0 ] && echo "check: ok"
exit "$status"
