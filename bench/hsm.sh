#!/bin/sh
# hsm.sh - checkpoint and manifest signatures per second with the keys in a
# PKCS#11 token (signing_pkcs11: C_Sign), sealed by a KEK in the token
# (SoftHSM2, set up here in a temporary directory) and by a file KEK (in
# memory): build/bench/bench_hsm, one run, medians of 5, ratios
# (issue 19; docs/benchmarks.md).  The PIN is a throwaway for this token.
#   bench/hsm.sh [seconds per figure]
set -eu
bin=${BENCH_HSM:-build/bench/bench_hsm}
module=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[ -x "$bin" ] || { echo "hsm.sh: $bin missing: make bench-build" >&2; exit 2; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/tpw-bench-hsm-XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$dir" > "$dir/softhsm2.conf"
export SOFTHSM2_CONF="$dir/softhsm2.conf"
pin=$(head -c 6 /dev/urandom | od -An -tu4 | tr -d ' \n')
softhsm2-util --init-token --free --label tpw-bench --pin "$pin" \
	--so-pin "$pin" > /dev/null
TPWALLET_KEK_PKCS11_MODULE=$module TPWALLET_KEK_PKCS11_TOKEN=tpw-bench \
TPWALLET_KEK_PKCS11_KEY_LABEL=tpwallet-kek TPWALLET_KEK_PKCS11_PIN=$pin \
	"$bin" "${1:-2}"
