#!/bin/sh
# bench/mtls_ratio.sh - a certificate-bound mandate (RFC 8705, cnf
# x5t#S256) against the administrator's bearer token, on the same
# mutual-TLS keep-alive connections, as a ratio in one run (issue 15,
# "Measured"; docs/authz.md, "Certificate-bound mandates"):
#
#   bench/mtls_ratio.sh BIN [ROUNDS] [SECONDS]
#
# One server of BIN (data in /dev/shm when there is one) with the chain
# of bench/authz_chain.sh (accounts 1..8; administrator -> merchant ->
# shop), served on HTTPS with a P-256 certificate and
# tls_client_ca_file; a client certificate of that CA; the third link
# issued by shop to that certificate (`delegate issue --to-cert`), so the
# bound chain has the 3 links of the DPoP chain it is compared with in
# docs/benchmarks.md.  build/bench/mtls_load, 16 connections (one thread
# each, handshakes before the clock), one transfer per request: a 3 s
# warm-up of each mode, then ROUNDS (default 5) rounds of bearer then
# bound, SECONDS (default 6) each.  Prints each run, the medians and the
# ratio bound/bearer.  Prints figures; never passes or fails on them.
set -eu
bin=$1
rounds=${2:-5}
secs=${3:-6}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/serve.sh
. "$here/serve.sh"
# shellcheck source=bench/authz_chain.sh
. "$here/authz_chain.sh"
bench_workdir mtls
[ -n "${KEEP:-}" ] && trap - EXIT
make -C "$root" --no-print-directory build/bench/mtls_load >/dev/null
load="$root/build/bench/mtls_load"

bench_tls_pki p256
(
	cd "$work"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out client.key 2>/dev/null
	openssl req -new -key client.key -out client.csr -subj /CN=bench-client 2>/dev/null
	echo "extendedKeyUsage=clientAuth" >client.ext
	openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 2 \
		-days 1 -extfile client.ext -out client.pem 2>/dev/null
)

# The chain over plain HTTP, then the same data served with mutual TLS.
serve_start "$bin" "$work/data" "$work/serve.log"
authz_chain "$bin" "$serve_port" "$work"
"$bin" delegate issue --key "$work/shop.jwk" --to-cert "$work/client.pem" \
	--parent "$work/l2.txt" --op transfers:create --account 1 --ledger 1 \
	--counterparty 5 --per-transfer-cap 1000 --total-cap 1000000000 \
	--out "$work/bound.txt" 2>/dev/null
kill "$serve_pid"
wait "$serve_pid" || true
port=$(free_port)
TPWALLET_TLS_CERT_FILE=$work/p256.pem TPWALLET_TLS_KEY_FILE=$work/p256.key \
TPWALLET_TLS_CLIENT_CA_FILE=$work/ca.pem \
	"$bin" serve --data "$work/data" --listen "127.0.0.1:$port" \
	--log-level warn 2>>"$work/serve.log" &
pids="$pids $!"
CURL_CA=$work/ca.pem wait_up "https://127.0.0.1:$port/readyz" "the HTTPS server" "$work/serve.log"
cp "$work/data/admin.token" "$work/token.txt"

run() { # MODE SECONDS RUN
	cred=$work/token.txt
	[ "$1" = bound ] && cred=$work/bound.txt
	"$load" --port "$port" --mode "$1" --credential "$cred" \
		--cacert "$work/ca.pem" --cert "$work/client.pem" \
		--key "$work/client.key" --seconds "$2" --run "$3"
}

echo "== machine: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
run bearer 3 1 >/dev/null
run bound 3 2 >/dev/null
r=1
while [ "$r" -le "$rounds" ]; do
	run bearer "$secs" $((2 * r + 1)) | tee -a "$work/results"
	run bound "$secs" $((2 * r + 2)) | tee -a "$work/results"
	r=$((r + 1))
done
awk '
	{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	  v[f["mode"], ++n[f["mode"]]] = f["rps"] + 0 }
	function median(k,   m, i, j, t, x) {
		m = n[k]; for (i = 1; i <= m; i++) x[i] = v[k, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
	}
	END { printf "median rps bearer=%.0f bound=%.0f ratio_bound_over_bearer=%.3f\n", median("bearer"), median("bound"), median("bound") / median("bearer") }
' "$work/results"
