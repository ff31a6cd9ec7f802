#!/bin/sh
# `make check`: static checks.  Reports every problem found, then fails.
#   banned   banned functions (src/banned.h) are not called anywhere, and
#            every .c under src/ includes banned.h last;
#   layers   no file under src/ includes a header from a higher layer
#            (docs/conventions.md): core < crypto < log < engine < api < cli;
#   format   clang-format reports no difference (.clang-format);
#   cppcheck cppcheck finds no error or warning.
# Arguments pick sections (default: all); tests/check/run.sh runs
# `banned layers` over a copy of the tree with a planted mistake.
set -eu
cd "$(dirname "$0")/.."
status=0
sections=${*:-banned layers format cppcheck}
want() { case " $sections " in *" $1 "*) return 0 ;; esac; return 1; }

if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ]; then
	files=$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c')
else
	files=$(find src tests bench -name '*.[ch]' | sort)
fi

if want banned; then
	for f in $(echo "$files" | grep '^src/.*\.c$'); do
		last=$(grep '^#include' "$f" | tail -n 1)
		if [ "$last" != '#include "banned.h"' ]; then
			echo "check: $f: banned.h must be the last #include"
			status=1
		fi
	done

	if grep -nE '\b(strcpy|strcat|strncpy|strncat|sprintf|vsprintf|strtok|gets|atoi|atol|atoll|sscanf|system|strerror)\s*\(' \
		$(echo "$files" | grep -v 'banned.h') | grep -v '^[^:]*:[0-9]*:\s*\(//\|/\?\*\)' |
		grep -v 'snprintf\|vsnprintf'; then
		echo "check: banned function used (see src/banned.h)"
		status=1
	fi
fi

# The rank of a layer; a file may include headers of its rank or lower.
rank() {
	case "$1" in
	core) echo 0 ;; crypto) echo 1 ;; log | net) echo 2 ;;
	engine) echo 3 ;; api) echo 4 ;; cli) echo 5 ;; *) echo "" ;;
	esac
}

if want layers; then
	for f in $(echo "$files" | grep '^src/[a-z]*/'); do
		layer=${f#src/}
		layer=${layer%%/*}
		own=$(rank "$layer")
		if [ -z "$own" ]; then
			echo "check: $f: src/$layer is not a layer (docs/conventions.md)"
			status=1
			continue
		fi
		for inc in $(sed -n 's|^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z]*\)/.*|\1|p' "$f" | sort -u); do
			r=$(rank "$inc")
			# log and net are siblings: neither includes the other.
			if [ -z "$r" ] || [ "$r" -gt "$own" ] ||
				{ [ "$r" -eq "$own" ] && [ "$inc" != "$layer" ] && [ "$r" -eq 2 ]; }; then
				echo "check: $f: $layer includes a header of $inc (a higher layer)"
				status=1
			fi
		done
	done
fi

if want format && command -v clang-format >/dev/null 2>&1; then
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

if want cppcheck && command -v cppcheck >/dev/null 2>&1; then
	if ! cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
		--enable=warning,portability --suppress=missingIncludeSystem \
		-D_GNU_SOURCE -Isrc src 2>&1; then
		echo "check: cppcheck found problems"
		status=1
	fi
fi

[ "$status" -eq 0 ] && echo "check: ok"
exit "$status"
