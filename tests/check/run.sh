#!/bin/sh
# tests/check/run.sh - proves that `make check` refuses what it exists to
# refuse.  Copies src/ and scripts/check.sh to a scratch tree, plants one
# mistake at a time (an upward include, a banned call), and expects
# `check.sh banned layers` to fail naming it; then the same file with a
# permitted include, which must pass.  Prints "N passed, M failed".
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tpw-check.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
mkdir -p "$work/scripts" "$work/tests" "$work/bench"
cp -R "$root/src" "$work/"
cp "$root/scripts/check.sh" "$work/scripts/"
passed=0
failed=0

# expect NAME fail|pass FILE LINE-TO-ADD [TEXT-IN-OUTPUT]
expect() {
	name=$1 want=$2 file=$3 line=$4 text=${5:-}
	cp "$work/$file" "$work/saved"
	# after the first project #include, so banned.h stays last
	awk -v add="$line" '{print} !done && /^#include "/ {print add; done=1}' \
		"$work/saved" >"$work/$file"
	out=$("$work/scripts/check.sh" banned layers 2>&1)
	rc=$?
	mv "$work/saved" "$work/$file"
	ok=1
	if [ "$want" = fail ]; then
		[ "$rc" -ne 0 ] || ok=0
		case "$out" in *"$text"*) ;; *) ok=0 ;; esac
	else
		[ "$rc" -eq 0 ] || ok=0
	fi
	if [ "$ok" -eq 1 ]; then
		passed=$((passed + 1))
		echo "ok   $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name (exit $rc):"
		echo "$out"
	fi
}

expect "the tree as it is passes" pass src/core/u128.c ''
expect "core including crypto fails" fail src/core/u128.c \
	'#include "crypto/jose.h"' \
	'src/core/u128.c: core includes a header of crypto'
expect "log including engine fails" fail src/log/leaf.c \
	'#include "engine/engine.h"' \
	'src/log/leaf.c: log includes a header of engine'
expect "engine header including api fails" fail src/engine/engine.h \
	'#include "api/server.h"' \
	'src/engine/engine.h: engine includes a header of api'
expect "api including cli fails" fail src/api/route.c \
	'#include "cli/cli.h"' 'src/api/route.c: api includes a header of cli'
expect "log including net fails (siblings)" fail src/log/leaf.c \
	'#include "net/http.h"' 'src/log/leaf.c: log includes a header of net'
expect "engine including net passes" pass src/engine/audit.c \
	'#include "net/http.h"'
expect "crypto including core passes" pass src/crypto/note.c \
	'#include "core/u128.h"'
expect "cli including log passes" pass src/cli/cmd_bench.c \
	'#include "log/leaf.h"'
expect "sscanf fails" fail src/api/route.c \
	'static int f(const char *s) { int v; return sscanf(s, "%d", &v); }' \
	'banned function used'
expect "system fails" fail src/cli/main.c \
	'static int f(void) { return system("true"); }' \
	'banned function used'
expect "strerror fails" fail src/log/leaf.c \
	'static const char *f(int e) { return strerror(e); }' \
	'banned function used'
expect "atoll fails" fail src/log/leaf.c \
	'static long long f(const char *s) { return atoll(s); }' \
	'banned function used'

echo "check tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
