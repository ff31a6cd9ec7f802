#!/bin/sh
# bench/single_vs_nginx.sh - one transfer per HTTP request against nginx
# answering a fixed reply, in one session, as a ratio (issue 10, item 11).
#
#   bench/single_vs_nginx.sh [BIN] [ROUNDS] [SECONDS] [BIN_B]
#
# Starts, on free loopback ports:
#   nginx   Debian's nginx (scripts/deps.sh bench), its own config in a
#           temporary directory, daemon off, 2 workers (one per core of
#           this machine: nginx's fair share), access log off, every
#           request answered `return 200 "ok\n"`;
#   durable tpwallet serve with its defaults (threads: cores - 1, log level
#           info: a buffered JSON line per request, to a file) on a
#           fresh data directory under $TMPDIR: the journal is
#           fdatasync'ed before each reply (group commit);
#   tmpfs   the same on a data directory in /dev/shm, where fdatasync
#           costs nothing: the server without the disk (it has no
#           no-sync mode); left out when /dev/shm is absent or TMPFS=0;
#   B       with BIN_B: BIN_B on a disk directory like durable (or on
#           /dev/shm like tmpfs with B_TMPFS=1), for A/B of two builds
#           in the same rounds.
# Each tpwallet has 100,000 accounts and the administrator's token.  All
# servers get the same request, bench/wrk_transfer.lua's (POST
# /v1/transfers, one transfer, a distinct id per request, bearer token;
# nginx discards the body), from `wrk -t2 -c64 --latency`.  After 3 s of
# warm-up each, ROUNDS (default 5) rounds run every server for SECONDS
# (default 10) each, the order rotated each round.  Prints one line per
# run, then per server the medians of requests/s, p50 and p99, and each
# median's ratio to nginx's.  Prints figures; never passes or fails on
# time.  Everything runs on the same cores (wrk included).
set -eu
bin=${1:-build/tpwallet}
rounds=${2:-5}
secs=${3:-10}
bin_b=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "wrk is missing: scripts/deps.sh"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/tpwallet-vsnginx-XXXXXX")
shm=""
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work" $shm' EXIT INT TERM

# shellcheck source=bench/serve.sh
. "$here/serve.sh"

port_nginx=$(free_port)
nginx_start "$port_nginx"

start() { # NAME BIN DATA -> sets port_NAME, data_NAME
	serve_start "$2" "$3" "$work/$1.log"
	pids="$pids $serve_pid"
	eval "port_$1=$serve_port"
	eval "data_$1=$3"
}

names="nginx durable"
start durable "$bin" "$work/durable"
if [ "${TMPFS:-1}" = 1 ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	shm=$(mktemp -d /dev/shm/tpwallet-vsnginx-XXXXXX)
	start tmpfs "$bin" "$shm/data"
	names="$names tmpfs"
fi
if [ -n "$bin_b" ]; then
	if [ "${B_TMPFS:-0}" = 1 ] && [ -n "$shm" ]; then
		start B "$bin_b" "$shm/B"
	else
		start B "$bin_b" "$work/B"
	fi
	names="$names B"
fi

run() { # NAME SECONDS RUN
	eval "port=\$port_$1"
	token=""
	if [ "$1" != nginx ]; then
		eval "token=\$(cat \"\$data_$1/admin.token\")"
	fi
	TPWALLET_TOKEN=$token RUN=$3 ACCOUNTS=100000 \
		wrk -t2 -c64 -d"${2}s" --latency -s "$here/wrk_transfer.lua" \
		"http://127.0.0.1:$port" | grep -E 'wrk-summary|Non-2xx|Socket errors' | sed "s/^/$1 /"
}

for n in $names; do run "$n" 3 1 >/dev/null; done
echo "== single transfer per request vs nginx: wrk -t2 -c64, ${rounds} rounds of ${secs}s, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
r=1
order=$names
while [ "$r" -le "$rounds" ]; do
	for n in $order; do run "$n" "$secs" $((r + 1)) | tee -a "$work/results"; done
	# rotate: the first server of this round runs last in the next
	# shellcheck disable=SC2086 # split into words on purpose
	set -- $order
	first=$1; shift
	order="$* $first"
	r=$((r + 1))
done
awk -v names="$names" '
	$2 == "wrk-summary" {
		k = $1; c = ++n[k]
		for (i = 3; i <= NF; i++) { split($i, kv, "="); v[k, kv[1], c] = kv[2] }
		if (v[k, "errors_status", c] + 0 && k != "nginx") bad[k]++
	}
	$0 ~ /Non-2xx|Socket errors/ { bad[$1]++ }
	function median(k, f,   m, i, j, t, x) {
		m = n[k]; for (i = 1; i <= m; i++) x[i] = v[k, f, i] + 0
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
	}
	END {
		base = median("nginx", "rps")
		split(names, ks, " ")
		for (i = 1; i in ks; i++) {
			k = ks[i]
			printf "median %-8s rps=%.0f p50_ms=%.3f p99_ms=%.3f ratio_to_nginx=%.3f runs=%d%s\n",
				k, median(k, "rps"), median(k, "p50_ms"), median(k, "p99_ms"),
				median(k, "rps") / base, n[k], bad[k] ? " INVALID: non-2xx or socket errors" : ""
		}
	}
' "$work/results"
