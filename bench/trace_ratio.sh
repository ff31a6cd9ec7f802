#!/bin/sh
# bench/trace_ratio.sh - what tracing costs (issue 22): the single-request
# HTTP benchmark of bench/run.sh (wrk -t2 -c64, one transfer per
# request, no traceparent, bench/wrk_transfer.lua) against three servers
# of one build, alternated in one session so all see the same machine:
#
#   bench/trace_ratio.sh BIN [ROUNDS] [SECONDS]
#
# off: no endpoint; 1%: parentbased_traceidratio 0.01; 100%: always_on;
# the two traced ones export to bench/otlp_sink.py (which reads and
# discards).  Each serves its own data directory (/dev/shm, or $TMPDIR
# with DISK=1) with 100,000 accounts.  After 3 s of warm-up each, ROUNDS
# (default 3) rounds run the three for SECONDS (default 8) each, each
# round starting with the next one.
# Prints one wrk-summary line per run with the server's CPU time per
# request (user + system, from /proc: what a busy machine inflates far
# less than it lowers requests/s), the spans each traced server exported
# and dropped, then the medians of both and their ratios to off.  Prints figures; never passes or fails on time.
set -eu
bin=$1
rounds=${2:-3}
secs=${3:-8}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/serve.sh
. "$here/serve.sh"
bench_workdir trace

python3 "$here/otlp_sink.py" >"$work/sink.port" &
pids="$pids $!"
i=0
until [ -s "$work/sink.port" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "the OTLP sink did not start"; exit 1; }
	sleep 0.1
done
sink="http://127.0.0.1:$(head -1 "$work/sink.port")"

start() { # NAME SAMPLER ARG -> sets port_NAME
	if [ "$2" != off ]; then
		export OTEL_EXPORTER_OTLP_ENDPOINT="$sink"
		export OTEL_TRACES_SAMPLER="$2" OTEL_TRACES_SAMPLER_ARG="$3"
	fi
	serve_start "$bin" "$work/$1" "$work/$1.log" --log-level warn
	unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_TRACES_SAMPLER \
		OTEL_TRACES_SAMPLER_ARG
	pids="$pids $serve_pid"
	eval "port_$1=$serve_port pid_$1=$serve_pid"
}

tck=$(getconf CLK_TCK)
cpu_ticks() { # PID: the process's user + system time, in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

run() { # NAME SECONDS RUN: the wrk-summary line and the server's CPU
	eval "port=\$port_$1 pid=\$pid_$1"
	t0=$(cpu_ticks "$pid")
	line=$(TPWALLET_TOKEN=$(cat "$work/$1/admin.token") RUN=$3 \
		ACCOUNTS=100000 wrk -t2 -c64 -d"${2}s" --latency \
		-s "$here/wrk_transfer.lua" "http://127.0.0.1:$port" |
		grep wrk-summary)
	t1=$(cpu_ticks "$pid")
	echo "$1 $line" | awk -v t="$((t1 - t0))" -v hz="$tck" '
		{ for (i = 1; i <= NF; i++) if ($i ~ /^requests=/) { split($i, kv, "="); r = kv[2] } }
		{ printf "%s cpu_us_per_request=%.2f\n", $0, t * 1e6 / hz / r }'
}

start off off ""
start p1 parentbased_traceidratio 0.01
start p100 always_on ""
for n in off p1 p100; do run $n 3 1 >/dev/null; done
r=1
while [ "$r" -le "$rounds" ]; do
	# Each round starts with another server, so none always runs
	# after the same one.
	case $((r % 3)) in
	1) order="off p1 p100" ;;
	2) order="p1 p100 off" ;;
	*) order="p100 off p1" ;;
	esac
	for n in $order; do
		run $n "$secs" $((r + 1)) | tee -a "$work/results"
	done
	r=$((r + 1))
done
for n in p1 p100; do
	eval "port=\$port_$n"
	curl -s "http://127.0.0.1:$port/metrics" |
		grep '^tpwallet_trace_spans' | sed "s/^/$n /"
done
awk '
	{ for (i = 1; i <= NF; i++) {
		if ($i ~ /^rps=/) { split($i, kv, "="); v[$1, ++n[$1]] = kv[2] }
		if ($i ~ /^cpu_us_per_request=/) { split($i, kv, "="); v["cpu" $1, ++n["cpu" $1]] = kv[2] } } }
	function median(k,   m, i, j, t, x) {
		m = n[k]; for (i = 1; i <= m; i++) x[i] = v[k, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
	}
	END { o = median("off"); a = median("p1"); b = median("p100")
	      printf "trace-summary median_rps_off=%.0f median_rps_1pct=%.0f median_rps_100pct=%.0f ratio_1pct=%.3f ratio_100pct=%.3f rounds=%d\n", o, a, b, a / o, b / o, n["off"]
	      o = median("cpuoff"); a = median("cpup1"); b = median("cpup100")
	      printf "trace-summary cpu_us_per_request_off=%.2f cpu_1pct=%.2f cpu_100pct=%.2f cpu_ratio_1pct=%.3f cpu_ratio_100pct=%.3f\n", o, a, b, a / o, b / o }
' "$work/results"
