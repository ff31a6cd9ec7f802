#!/bin/sh
# Two builds side by side: single-transfer HTTP requests with the
# administrator's bearer token and with a 3-link mandate + DPoP proof
# (bench/authz_load, as in bench/run.sh), alternating A and B in one run
# so the machine's noise hits both alike.  Prints each run, the medians
# and the B/A ratios.  A figure, never a test.
#   bench/authz_ab.sh BASE/build/tpwallet build/tpwallet
#   ROUNDS (default 5), WRK_SECONDS (default 5)
set -eu
[ $# -eq 2 ] || { echo "usage: bench/authz_ab.sh A_BINARY B_BINARY" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
rounds=${ROUNDS:-5}
secs=${WRK_SECONDS:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/tpwallet-authzab-XXXXXX")
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$work"' EXIT INT TERM

# Built by the Makefile with the project's flags (make bench-build).
make -C "$root" --no-print-directory build/bench/authz_load >/dev/null
load="$root/build/bench/authz_load"
# shellcheck source=bench/authz_chain.sh
. "$here/authz_chain.sh"
# shellcheck source=bench/serve.sh
. "$here/serve.sh"

# start NAME BINARY: a server with the chain of bench/authz_chain.sh;
# sets port_NAME.
start() {
	d="$work/$1"
	mkdir -p "$d"
	p=$(free_port)
	"$2" serve --data "$d/data" --listen "127.0.0.1:$p" --log-level warn 2>"$d/serve.log" &
	pids="$pids $!"
	wait_up "http://127.0.0.1:$p/readyz" "$1: server" "$d/serve.log"
	authz_chain "$2" "$p" "$d"
	"$load" --port "$p" --seconds 2 --mode bearer --token-file "$d/data/admin.token" \
		--run 900 >/dev/null || true
	eval "port_$1=$p"
}

start A "$1"
start B "$2"
echo "== machine: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== A: $1"
echo "== B: $2"
echo "== $rounds rounds of ${secs}s per build and mode, alternated A, B (64 connections, one transfer per request)"
run0=$(( $(date +%s) % 1000000 ))
r=1
while [ $r -le "$rounds" ]; do
	for mode in bearer dpop; do
		for s in A B; do
			d="$work/$s"
			eval "p=\$port_$s"
			if [ $mode = bearer ]; then
				cred="--token-file $d/data/admin.token"
			else
				cred="--key $d/device.jwk --mandate $d/chain.txt"
			fi
			# shellcheck disable=SC2086
			out=$("$load" --port "$p" --connections 64 --seconds "$secs" --mode $mode $cred \
				--run "$run0$r$([ $mode = bearer ] && echo 0 || echo 1)" --debit 1 --credit 5 || true)
			echo "build=$s round=$r $out" | tee -a "$work/results"
		done
	done
	r=$((r + 1))
done
awk '
	/authz-load/ {
		split($1, bb, "="); s = bb[2]
		for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		m = f["mode"]; k = s SUBSEP m; n[k]++; v[k, n[k]] = f["rps"] + 0
		if (f["non2xx"] + 0 || f["socket_errors"] + 0) bad = 1
	}
	function median(k,   i, j, t, c, a) {
		c = n[k]
		for (i = 1; i <= c; i++) a[i] = v[k, i]
		for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++)
			if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
	}
	END {
		split("bearer dpop", modes, " ")
		for (x = 1; x <= 2; x++) {
			m = modes[x]; a = median("A" SUBSEP m); b = median("B" SUBSEP m)
			printf "median %s: A %.0f/s, B %.0f/s, B/A %.3f\n", m, a, b, (a ? b / a : 0)
		}
		if (bad) print "!!! some runs had non-2xx answers or socket errors: INVALID"
	}' "$work/results"
