#!/bin/sh
# bench/console_cost.sh - what the console's overview costs the server
# (issue 18, "Measured"): one server of the build with 100,000 accounts
# under the single-request HTTP benchmark of bench/run.sh (wrk -t2 -c64,
# one transfer per request, bench/wrk_transfer.lua), in one session:
#
#   bench/console_cost.sh BIN [ROUNDS] [SECONDS]
#
# Each round runs wrk for SECONDS (default 6) twice, once alone and once
# while a loop makes the overview's refresh (the five requests
# console/overview.js sends: /readyz, /metrics, /v1/audit/head,
# /v1/client-policy/overrides, /v1/keys) every second: ten times the
# console's 10 s cadence, so ten consoles open at once.  Rounds alternate
# which goes first.  Then, with no load, REFRESHES (default 200)
# refreshes back to back: the server's CPU time per refresh (from /proc).
# Prints a wrk-summary line per run and a console-summary line: the
# medians, their ratio, the CPU per refresh and what one console at its
# cadence would take of the CPU the server spends at full load.  Prints
# figures; never passes or fails on time.
set -eu
bin=$1
rounds=${2:-3}
secs=${3:-6}
refreshes=${REFRESHES:-200}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/serve.sh
. "$here/serve.sh"
bench_workdir console

serve_start "$bin" "$work/data" "$work/server.log" --log-level warn
pids="$pids $serve_pid"
url="http://127.0.0.1:$serve_port"
token=$(cat "$work/data/admin.token")
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$serve_pid/stat"; }

refresh() { # one overview refresh, as the console makes it
	for p in /readyz /metrics /v1/audit/head /v1/client-policy/overrides \
		/v1/keys; do
		curl -s -o /dev/null -H "Authorization: Bearer $token" "$url$p"
	done
}

run() { # KIND RUN: wrk for secs, with the refresh loop when KIND=refresh
	if [ "$1" = refresh ]; then
		(i=0; while [ $i -lt "$secs" ]; do refresh; sleep 1; i=$((i + 1)); done) &
		loop=$!
	fi
	t0=$(cpu_ticks)
	line=$(TPWALLET_TOKEN=$token RUN=$2 ACCOUNTS=100000 wrk -t2 -c64 \
		-d"${secs}s" --latency -s "$here/wrk_transfer.lua" "$url" |
		grep wrk-summary)
	t1=$(cpu_ticks)
	[ "$1" != refresh ] || wait "$loop" || true
	echo "$1 $line cpu_s=$(echo "$t0 $t1 $tck" | awk '{ printf "%.2f", ($2 - $1) / $3 }')"
}

run alone 1 >/dev/null # warm-up
r=1
while [ "$r" -le "$rounds" ]; do
	if [ $((r % 2)) = 1 ]; then order="alone refresh"; else order="refresh alone"; fi
	for k in $order; do
		run "$k" $((r * 2 + 1 + $(echo "$k" | grep -c refresh))) | tee -a "$work/results"
	done
	r=$((r + 1))
done
t0=$(cpu_ticks)
i=0
while [ $i -lt "$refreshes" ]; do refresh; i=$((i + 1)); done
t1=$(cpu_ticks)
awk -v t="$((t1 - t0))" -v hz="$tck" -v n="$refreshes" -v secs="$secs" '
	{ for (i = 1; i <= NF; i++) {
		if ($i ~ /^rps=/) { split($i, kv, "="); v[$1, ++c[$1]] = kv[2] }
		if ($i ~ /^cpu_s=/) { split($i, kv, "="); cpu += kv[2]; runs++ } } }
	function median(k,   m, i, j, x, y) {
		m = c[k]; for (i = 1; i <= m; i++) x[i] = v[k, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { y = x[i]; x[i] = x[j]; x[j] = y }
		return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
	}
	END { a = median("alone"); b = median("refresh")
	      per = t / hz / n
	      load = cpu / runs / secs
	      printf "console-summary median_rps_alone=%.0f median_rps_refresh_1s=%.0f ratio=%.4f rounds=%d\n", a, b, b / a, c["alone"]
	      printf "console-summary cpu_ms_per_refresh=%.3f server_cpu_s_per_s_at_load=%.2f one_console_10s_share=%.5f\n", per * 1000, load, per / 10 / load }
' "$work/results"
