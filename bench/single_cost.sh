#!/bin/sh
# bench/single_cost.sh - the server's CPU cost of one single-transfer
# request, for A/B of two builds on a machine too busy for requests/s to
# compare (issue 10, item 11):
#
#   bench/single_cost.sh BIN_A BIN_B [ROUNDS] [SECONDS]
#
# Each binary serves its own data directory (in /dev/shm when there is
# one, so the disk's sync latency is not in the figure; DISK=1 for
# $TMPDIR), with 100,000 accounts and default settings.  After 3 s of
# warm-up each, ROUNDS (default 5) rounds run A then B: `wrk -t2 -c64
# -d SECONDS` (default 6) with bench/wrk_transfer.lua while `perf stat
# -e task-clock,context-switches` counts the server process (all its
# threads, user and kernel: the CPU time it used, which a busy machine
# inflates far less than it lowers requests/s; this machine's VM has no
# hardware counters, so no instruction counts).  Per run it prints the requests
# and the counts per request; then the medians and the ratios B/A.
# POLICY=FILE puts that client-policy document on both servers and
# CLIENT_VERSION=platform/version makes every request carry it, so the
# client-version gate decides each one (docs/benchmarks.md, issue 11).
# Needs perf (scripts/deps.sh bench) and perf_event_paranoid <= 1 or
# root.  Prints figures; never passes or fails on them.
set -eu
a=$1
b=$2
rounds=${3:-5}
secs=${4:-6}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/serve.sh
. "$here/serve.sh"
bench_workdir cost

start() { # NAME BIN -> sets port_NAME, pid_NAME
	serve_start "$2" "$work/$1" "$work/$1.log"
	pids="$pids $serve_pid"
	eval "pid_$1=$serve_pid port_$1=$serve_port"
	if [ -n "${POLICY:-}" ]; then
		curl -sf -o /dev/null -X PUT --data-binary "@$POLICY" \
			-H "Authorization: Bearer $(cat "$work/$1/admin.token")" \
			-H "Content-Type: application/json" \
			"http://127.0.0.1:$serve_port/v1/client-policy"
	fi
}

run() { # NAME SECONDS RUN
	eval "port=\$port_$1 pid=\$pid_$1"
	perf stat -x, -e task-clock,context-switches -p "$pid" \
		-o "$work/stat" -- sleep "$(($2 + 1))" &
	sp=$!
	sleep 0.5
	TPWALLET_TOKEN=$(cat "$work/$1/admin.token") RUN=$3 ACCOUNTS=100000 \
		wrk -t2 -c64 -d"${2}s" -s "$here/wrk_transfer.lua" \
		"http://127.0.0.1:$port" >"$work/wrk"
	wait "$sp"
	awk -F, -v name="$1" '
		FILENAME ~ /wrk$/ && /wrk-summary/ {
			n = split($0, f, " ")
			for (i = 1; i <= n; i++) { split(f[i], kv, "="); w[kv[1]] = kv[2] }
		}
		FILENAME ~ /stat$/ && NF > 2 { c[$3] = $1 }
		END {
			r = w["requests"]
			printf "%s cost requests=%d rps=%.0f cpu_us_per_request=%.2f switches_per_request=%.3f errors_status=%d\n",
				name, r, w["rps"], c["task-clock"] * 1000 / r, c["context-switches"] / r, w["errors_status"]
		}' "$work/wrk" "$work/stat"
}

start A "$a"
start B "$b"
run A 3 1 >/dev/null
run B 3 1 >/dev/null
r=1
while [ "$r" -le "$rounds" ]; do
	run A "$secs" $((r + 1)) | tee -a "$work/results"
	run B "$secs" $((r + 1)) | tee -a "$work/results"
	r=$((r + 1))
done
awk '
	{ k = $1; c = ++n[k]
	  for (i = 3; i <= NF; i++) { split($i, kv, "="); v[k, kv[1], c] = kv[2] } }
	function median(k, f,   m, i, j, t, x) {
		m = n[k]; for (i = 1; i <= m; i++) x[i] = v[k, f, i] + 0
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
	}
	END {
		split("rps cpu_us_per_request switches_per_request", fs, " ")
		for (i = 1; i <= 3; i++)
			printf "median %s A=%.3f B=%.3f ratio_B_over_A=%.3f\n", fs[i],
				median("A", fs[i]), median("B", fs[i]), median("B", fs[i]) / median("A", fs[i])
	}
' "$work/results"
