#!/bin/sh
# bench/engine_ab.sh - the engine, recovery and HTTP-batch figures of
# bench/run.sh on two builds, alternated in one session so the machine's
# noise hits both alike:
#
#   bench/engine_ab.sh BIN_A BIN_B
#   ROUNDS (default 3), BENCH_TRANSFERS (default 3000000), BATCHES (default 60)
#
# Each round runs `tpwallet bench` (durable journal, batches of 8190, then
# recovery from the journal) with A then B, and the HTTP batch load
# (bench/http_batch.py, 4 connections, batches of 8190) against a server of
# each, which serve their own fresh data directories with 100,000 accounts.
# Prints every run, then the medians and the ratios B/A.  Prints figures;
# never passes or fails on time.  The single-request and authorization
# A/B runs are bench/ab_http.sh and bench/authz_ab.sh.
set -eu
[ $# -eq 2 ] || { echo "usage: bench/engine_ab.sh BIN_A BIN_B" >&2; exit 2; }
a=$1
b=$2
rounds=${ROUNDS:-3}
transfers=${BENCH_TRANSFERS:-3000000}
batches=${BATCHES:-60}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tpwallet-engab-XXXXXX")
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"' EXIT INT TERM

# shellcheck source=bench/serve.sh
. "$here/serve.sh"

start() { # NAME BIN -> sets port_NAME
	serve_start "$2" "$work/$1" "$work/$1.log" --log-level warn
	pids="$pids $serve_pid"
	eval "port_$1=$serve_port"
}

engine() { # NAME BIN
	TMPDIR=$work "$2" bench --accounts 100000 --transfers "$transfers" --json |
		python3 -c 'import json,sys; j=json.load(sys.stdin); print("engine_tps=%d recovery_eps=%d digest_equal=%s failed=%d" % (j["transfers_per_second"], j["recovery_entries_per_second"], j["digest_equal_after_recovery"], j["failed_events"]))' |
		sed "s/^/$1 /"
}

batch() { # NAME RUN
	eval "port=\$port_$1"
	TPWALLET_TOKEN=$(cat "$work/$1/admin.token") python3 "$here/http_batch.py" \
		--port "$port" --accounts 100000 --batches "$batches" --connections 4 --run "$2" |
		python3 -c 'import json,sys; j=json.load(sys.stdin); print("batch_tps=%d batch_p99_ms=%s failed=%d" % (j["transfers_per_second"], j["batch_latency_ms_p99"], j["failed_events"]))' |
		sed "s/^/$1 /"
}

echo "== machine: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== A=$a B=$b, $rounds rounds, $transfers engine transfers, $batches HTTP batches of 8190"
start A "$a"
start B "$b"
r=1
while [ "$r" -le "$rounds" ]; do
	engine A "$a" | tee -a "$work/results"
	engine B "$b" | tee -a "$work/results"
	batch A $((r + 10)) | tee -a "$work/results"
	batch B $((r + 10)) | tee -a "$work/results"
	r=$((r + 1))
done
awk '
	{ for (i = 2; i <= NF; i++) if ($i ~ /_(tps|eps)=/) { split($i, kv, "="); k = $1 SUBSEP kv[1]; v[k, ++n[k]] = kv[2]; keys[kv[1]] = 1 } }
	function median(k,   m, i, j, t, x) {
		m = n[k]; for (i = 1; i <= m; i++) x[i] = v[k, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
	}
	END { for (f in keys) { ma = median("A" SUBSEP f); mb = median("B" SUBSEP f)
	      printf "ab-summary %s median_A=%.0f median_B=%.0f ratio_B_over_A=%.3f runs=%d\n", f, ma, mb, mb / ma, n["A" SUBSEP f] } }
' "$work/results"
