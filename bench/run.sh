#!/bin/sh
# The benchmarks behind docs/benchmarks.md.  Prints figures; never fails
# on time.  Usage: bench/run.sh [build/tpwallet]
#   BENCH_TRANSFERS  engine transfers (default 10000000)
#   WRK_SECONDS      single-transfer HTTP run length (default 10)
#   BATCHES          HTTP batches of 8190 (default 120)
#   BENCH_AUTHZ=0    skip the authorization section (bench_mandate, authz_load)
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
TPWALLET_TOKEN=$(cat "$data/admin.token")
export TPWALLET_TOKEN
python3 "$here/http_batch.py" --port "$port" --accounts 100000 --create-accounts

echo "== HTTP, one transfer per request, 64 connections, ${wrk_seconds}s (wrk -t2)"
RUN=$(date +%s) ACCOUNTS=100000 wrk -t2 -c64 -d"${wrk_seconds}s" --latency \
	-s "$here/wrk_transfer.lua" "http://127.0.0.1:$port" | grep -E 'wrk-summary|Non-2xx|Socket errors' || true

echo "== HTTP, batches of 8190 transfers, $batches batches, 4 connections"
python3 "$here/http_batch.py" --port "$port" --accounts 100000 \
	--batches "$batches" --connections 4 --run 7
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true

# Authorization (issue 4): the in-process verify costs (bench_mandate),
# then single-transfer HTTP with the administrator's bearer token against
# a 3-link mandate + DPoP proof per request (authz_load), alternated 3
# The client-version gate's decision, in process (issue 3: >= 10M/s).
(
	root=$(cd "$here/.." && pwd)
	cd "$root" && make --no-print-directory build/bench/bench_policy >/dev/null
	echo "== client-version gate in process: policy_evaluate (bench/bench_policy)"
	build/bench/bench_policy
)

# times on one server; medians and the dpop/bearer ratio.  BENCH_AUTHZ=0
# skips it.
if [ "${BENCH_AUTHZ:-1}" = 1 ]; then
(
	set -eu
	root=$(cd "$here/.." && pwd)
	# Built by the Makefile with the project's flags (make bench-build).
	make -C "$root" --no-print-directory build/bench/bench_mandate \
		build/bench/authz_load >/dev/null
	echo "== authorization in process: 3-link chain + DPoP proof, one core (bench/bench_mandate)"
	"$root/build/bench/bench_mandate"

	adata=$(mktemp -d "${TMPDIR:-/tmp}/tpwallet-authzbench-XXXXXX")
	aport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"$bin" serve --data "$adata/data" --listen "127.0.0.1:$aport" --log-level warn 2>"$adata/serve.log" &
	apid=$!
	trap 'kill $apid 2>/dev/null; wait $apid 2>/dev/null; rm -rf "$adata"' EXIT INT TERM
	i=0
	until curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "server did not start"; cat "$adata/serve.log"; exit 1; }
		sleep 0.1
	done
	. "$here/authz_chain.sh"
	authz_chain "$bin" "$aport" "$adata"
	echo "== HTTP, one transfer per request, 64 connections, ${wrk_seconds}s: bearer token vs 3-link mandate + DPoP, alternated 3 times (bench/authz_load; the server with its default --threads: cores - 1, at least 1)"
	run0=$(( $(date +%s) % 100000000 ))
	# 2 s of bearer requests first, not counted: a fresh server's first
	# seconds are slower (page faults in the ledger and journal)
	"$root/build/bench/authz_load" --port "$aport" --seconds 2 --mode bearer \
		--token-file "$adata/data/admin.token" --run "${run0}00" >/dev/null || true
	for r in 1 2 3; do
		for mode in bearer dpop; do
			if [ $mode = bearer ]; then
				cred="--token-file $adata/data/admin.token"
			else
				cred="--key $adata/device.jwk --mandate $adata/chain.txt"
			fi
			# shellcheck disable=SC2086
			"$root/build/bench/authz_load" --port "$aport" --connections 64 \
				--seconds "$wrk_seconds" --mode $mode $cred --run "$run0$r$([ $mode = bearer ] && echo 0 || echo 1)" \
				--debit 1 --credit 5 | tee -a "$adata/results" || true
		done
	done
	awk '
		/^authz-load/ {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
			m = f["mode"]; n[m]++; rps[m, n[m]] = f["rps"]; p99[m, n[m]] = f["p99_ms"]
			if (f["non2xx"] + 0 || f["socket_errors"] + 0) invalid[m]++
		}
		function med3(a, m,   x, y, z, t) {
			x = a[m, 1] + 0; y = a[m, 2] + 0; z = a[m, 3] + 0
			if (x > y) { t = x; x = y; y = t }
			if (y > z) { t = y; y = z; z = t }
			if (x > y) { t = x; x = y; y = t }
			return y
		}
		END {
			if (n["bearer"] != 3 || n["dpop"] != 3) { print "!!! missing runs"; exit }
			for (r = 1; r <= 3; r++)
				printf "run %d: bearer %s/s, dpop %s/s, dpop/bearer %.2f\n", r,
					rps["bearer", r], rps["dpop", r], rps["dpop", r] / rps["bearer", r]
			b = med3(rps, "bearer"); d = med3(rps, "dpop")
			printf "median: bearer %.0f/s (p99 %.3f ms), dpop %.0f/s (p99 %.3f ms), dpop/bearer %.2f (target >= 0.60)\n",
				b, med3(p99, "bearer"), d, med3(p99, "dpop"), d / b
			if (invalid["bearer"] || invalid["dpop"])
				print "!!! some runs had non-2xx answers or socket errors: INVALID (see above)"
		}' "$adata/results"
)
fi

# The PostgreSQL baseline, in the same run so the two compare as a ratio
# (installs Debian's postgresql if missing).  BENCH_PG=0 skips it.
if [ "${BENCH_PG:-1}" = 1 ]; then
	echo "== PostgreSQL baseline: one double-entry transfer per transaction, 64 clients"
	sh "$here/pg/run.sh"
fi
