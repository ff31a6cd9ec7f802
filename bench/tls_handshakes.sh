#!/bin/sh
# bench/tls_handshakes.sh - new TLS handshakes per second on the server,
# with an ECDSA P-256 and with an Ed25519 certificate (issue 15,
# "Measured"):
#
#   bench/tls_handshakes.sh BIN [ROUNDS] [SECONDS] [CLIENTS]
#
# Two HTTPS servers of BIN with default settings (the default
# tls_priority: TLS 1.3, X25519), each with its own data directory (in
# /dev/shm when there is one): one with a P-256 certificate, one with an
# Ed25519 one, both issued here by a P-256 CA made by openssl.  For
# reference, `openssl s_server` serves the same two certificates.  Each
# round (ROUNDS, default 5) runs, for each of the four servers in turn,
# CLIENTS (default 2) `openssl s_time -new -time SECONDS` (default 3) at
# once: each client opens a connection, makes a full handshake (no
# session resumption: -new), closes, and starts again.  The figure is the
# handshakes the clients completed over the wall time they ran.  The
# clients do not verify the chain, but do check the server's
# CertificateVerify signature (the handshake needs it), so they spend an
# ECDSA or Ed25519 verification and an X25519 each time, on the same
# cores as the server.  Prints each run and the median of each; prints
# figures, never passes or fails on them.
set -eu
bin=$1
rounds=${2:-5}
secs=${3:-3}
clients=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/serve.sh
. "$here/serve.sh"
bench_workdir tlshs

bench_tls_pki p256 ed25519

wait_tls() { # PORT LOG
	_i=0
	until curl -s --cacert "$work/ca.pem" -o /dev/null "https://127.0.0.1:$1/"; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || { echo "no TLS server on $1"; cat "$2"; exit 1; }
		sleep 0.1
	done
}

for k in p256 ed25519; do
	port=$(free_port)
	TPWALLET_TLS_CERT_FILE=$work/$k.pem TPWALLET_TLS_KEY_FILE=$work/$k.key \
		"$bin" serve --data "$work/data-$k" --listen "127.0.0.1:$port" \
		2>"$work/tpwallet-$k.log" &
	pids="$pids $!"
	wait_tls "$port" "$work/tpwallet-$k.log"
	eval "port_tpwallet_$k=\$port"
	port=$(free_port)
	openssl s_server -quiet -accept "$port" -cert "$work/$k.pem" \
		-key "$work/$k.key" -www >/dev/null 2>"$work/s_server-$k.log" </dev/null &
	pids="$pids $!"
	wait_tls "$port" "$work/s_server-$k.log"
	eval "port_openssl_$k=\$port"
done

run() { # SERVER KEY: one line "SERVER-KEY handshakes_per_s=N"
	eval "port=\$port_$1_$2"
	t0=$(date +%s.%N)
	c=1 cpids=""
	while [ "$c" -le "$clients" ]; do
		openssl s_time -connect "127.0.0.1:$port" -new -time "$secs" \
			>"$work/s_time.$c" 2>&1 </dev/null &
		cpids="$cpids $!"
		c=$((c + 1))
	done
	for p in $cpids; do wait "$p"; done
	t1=$(date +%s.%N)
	cat "$work"/s_time.* | awk -v name="$1-$2" -v t0="$t0" -v t1="$t1" '
		/connections in .* real seconds/ { n += $1 }
		END { printf "%s handshakes_per_s=%.0f\n", name, n / (t1 - t0) }'
	rm -f "$work"/s_time.*
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
r=1
while [ "$r" -le "$rounds" ]; do
	for s in tpwallet openssl; do
		for k in p256 ed25519; do
			run "$s" "$k" | tee -a "$work/results"
		done
	done
	r=$((r + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
	{ split($2, kv, "="); v[$1, ++n[$1]] = kv[2] + 0; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
	function median(s,   m, i, j, t, x) {
		m = n[s]; for (i = 1; i <= m; i++) x[i] = v[s, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
	}
	END { for (i = 1; i <= k; i++) printf "median %s handshakes_per_s=%.0f\n", order[i], median(order[i]) }
' "$work/results"
