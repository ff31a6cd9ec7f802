#!/bin/sh
# bench/tls_ratio.sh - HTTPS against plain HTTP on the same binary, as a
# ratio in one run (issue 15, "Measured"):
#
#   bench/tls_ratio.sh BIN [ROUNDS] [SECONDS]
#
# Two servers of BIN with default settings, each with its own data
# directory (in /dev/shm when there is one, so the disk's sync latency
# is not in the figure) and 100,000 accounts: A on plain HTTP, B on
# HTTPS with an ECDSA P-256 certificate made here by openssl (TLS 1.3,
# the default tls_priority).  After 3 s of warm-up each, ROUNDS (default
# 5) rounds run A then B: `wrk -t2 -c64 -d SECONDS` (default 6) of
# single-transfer requests (bench/wrk_transfer.lua) on keep-alive
# connections, so a handshake is paid once per connection.  With NGINX=1
# (the default when Debian's nginx is installed: scripts/deps.sh bench)
# a third server N runs in each round: nginx, 2 workers, HTTPS with the
# same certificate, key and protocol (TLS 1.3), answering every request
# `return 200 "ok\n"` (it discards the body), the issue's "against nginx
# serving a static reply with the same certificate".  Prints each run,
# the median requests/s of each and the ratios B/A and B/N.  Prints
# figures; never passes or fails on them.
set -eu
bin=$1
rounds=${2:-5}
secs=${3:-6}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/serve.sh
. "$here/serve.sh"
bench_workdir tls

# The certificate: a CA and a P-256 server certificate for 127.0.0.1.
bench_tls_pki p256

serve_start "$bin" "$work/A" "$work/A.log"
pids="$pids $serve_pid"
port_A=$serve_port
# B: accounts made over plain HTTP (http_batch.py), then served on HTTPS.
serve_start "$bin" "$work/B" "$work/B.log"
kill "$serve_pid"
wait "$serve_pid" || true
port_B=$(free_port)
TPWALLET_TLS_CERT_FILE=$work/p256.pem TPWALLET_TLS_KEY_FILE=$work/p256.key \
	"$bin" serve --data "$work/B" --listen "127.0.0.1:$port_B" 2>>"$work/B.log" &
pids="$pids $!"
CURL_CA=$work/ca.pem wait_up "https://127.0.0.1:$port_B/readyz" "the HTTPS server" "$work/B.log"

names="A B"
if [ "${NGINX:-1}" = 1 ] && command -v nginx >/dev/null; then
	port_N=$(free_port)
	CURL_CA=$work/ca.pem nginx_start "$port_N" "$work/p256.pem" "$work/p256.key"
	mkdir -p "$work/N"
	echo none >"$work/N/admin.token"
	names="A B N"
fi

run() { # NAME SECONDS RUN
	eval "port=\$port_$1"
	scheme=https
	[ "$1" = A ] && scheme=http
	TPWALLET_TOKEN=$(cat "$work/$1/admin.token") RUN=$3 ACCOUNTS=100000 \
		wrk -t2 -c64 -d"${2}s" -s "$here/wrk_transfer.lua" \
		"$scheme://127.0.0.1:$port" >"$work/wrk"
	awk -v name="$1" '/wrk-summary/ {
			n = split($0, f, " ")
			for (i = 1; i <= n; i++) { split(f[i], kv, "="); w[kv[1]] = kv[2] }
		}
		END { printf "%s rps=%.0f requests=%d errors_status=%d\n", name, w["rps"], w["requests"], w["errors_status"] }' "$work/wrk"
}

for n in $names; do run "$n" 3 1 >/dev/null; done
r=1
while [ "$r" -le "$rounds" ]; do
	for n in $names; do run "$n" "$secs" $((r + 1)) | tee -a "$work/results"; done
	r=$((r + 1))
done
awk '
	{ split($2, kv, "="); v[$1, ++n[$1]] = kv[2] + 0 }
	function median(k,   m, i, j, t, x) {
		m = n[k]; for (i = 1; i <= m; i++) x[i] = v[k, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
	}
	END {
		printf "median rps http=%.0f https=%.0f ratio_https_over_http=%.3f\n", median("A"), median("B"), median("B") / median("A")
		if (n["N"]) printf "median rps nginx_https=%.0f ratio_https_over_nginx_https=%.3f\n", median("N"), median("B") / median("N")
	}
' "$work/results"
