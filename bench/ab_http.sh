#!/bin/sh
# bench/ab_http.sh - the single-request HTTP benchmark of bench/run.sh
# (wrk -t2 -c64, one transfer per request, bench/wrk_transfer.lua) on two
# builds, alternated in one session so both see the same machine:
#
#   bench/ab_http.sh BIN_A BIN_B [ROUNDS] [SECONDS]
#
# Each binary serves its own fresh data directory with 100,000 accounts;
# after 3 s of warm-up each, ROUNDS (default 5) rounds run A then B for
# SECONDS (default 10) each.  Prints one wrk-summary line per run, then
# the medians of requests/s and their ratio B/A.  Prints figures; never
# passes or fails on time.
set -eu
a=$1
b=$2
rounds=${3:-5}
secs=${4:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tpwallet-ab-XXXXXX")
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"' EXIT INT TERM

# shellcheck source=bench/serve.sh
. "$here/serve.sh"

start() { # NAME BIN -> sets port_NAME
	serve_start "$2" "$work/$1" "$work/$1.log" --log-level warn
	pids="$pids $serve_pid"
	eval "port_$1=$serve_port"
}

run() { # NAME SECONDS RUN
	eval "port=\$port_$1"
	TPWALLET_TOKEN=$(cat "$work/$1/admin.token") RUN=$3 ACCOUNTS=100000 \
		wrk -t2 -c64 -d"${2}s" --latency -s "$here/wrk_transfer.lua" \
		"http://127.0.0.1:$port" | grep wrk-summary | sed "s/^/$1 /"
}

start A "$a"
start B "$b"
run A 3 1 >/dev/null
run B 3 1 >/dev/null
r=1
while [ $r -le "$rounds" ]; do
	run A "$secs" $((r + 1)) | tee -a "$work/results"
	run B "$secs" $((r + 1)) | tee -a "$work/results"
	r=$((r + 1))
done
awk '
	{ for (i = 1; i <= NF; i++) if ($i ~ /^rps=/) { split($i, kv, "="); v[$1, ++n[$1]] = kv[2] } }
	function median(k,   m, i, j, t, x) {
		m = n[k]; for (i = 1; i <= m; i++) x[i] = v[k, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
	}
	END { ma = median("A"); mb = median("B")
	      printf "ab-summary median_rps_A=%.0f median_rps_B=%.0f ratio_B_over_A=%.3f runs=%d\n", ma, mb, mb / ma, n["A"] }
' "$work/results"
