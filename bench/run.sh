#!/bin/sh
# The benchmarks behind docs/benchmarks.md.  Prints figures; never fails
# on time.  Usage: bench/run.sh [build/tpwallet]
#   BENCH_TRANSFERS  engine transfers (default 10000000)
#   WRK_SECONDS      single-transfer HTTP run length (default 10)
#   BATCHES          HTTP batches of 8190 (default 120)
set -eu
bin=${1:-build/tpwallet}
here=$(cd "$(dirname "$0")" && pwd)
transfers=${BENCH_TRANSFERS:-10000000}
wrk_seconds=${WRK_SECONDS:-10}
batches=${BATCHES:-120}

echo "== machine: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== engine in process: 100000 accounts, $transfers transfers, batches of 8190, durable"
"$bin" bench --accounts 100000 --transfers "$transfers" --json

data=$(mktemp -d "${TMPDIR:-/tmp}/tpwallet-httpbench-XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --data "$data" --listen "127.0.0.1:$port" --log-level warn 2>"$data.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$data.log"' EXIT INT TERM
i=0
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "server did not start"; cat "$data.log"; exit 1; }
	sleep 0.1
done
python3 "$here/http_batch.py" --port "$port" --accounts 100000 --create-accounts

echo "== HTTP, one transfer per request, 64 connections, ${wrk_seconds}s (wrk -t2)"
RUN=$(date +%s) ACCOUNTS=100000 wrk -t2 -c64 -d"${wrk_seconds}s" --latency \
	-s "$here/wrk_transfer.lua" "http://127.0.0.1:$port" | grep -E 'wrk-summary|Non-2xx|Socket errors' || true

echo "== HTTP, batches of 8190 transfers, $batches batches, 4 connections"
python3 "$here/http_batch.py" --port "$port" --accounts 100000 \
	--batches "$batches" --connections 4 --run 7
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true

# The PostgreSQL baseline, in the same run so the two compare as a ratio
# (installs Debian's postgresql if missing).  BENCH_PG=0 skips it.
if [ "${BENCH_PG:-1}" = 1 ]; then
	echo "== PostgreSQL baseline: one double-entry transfer per transaction, 64 clients"
	sh "$here/pg/run.sh"
fi
