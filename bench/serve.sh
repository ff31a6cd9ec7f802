# shellcheck shell=sh disable=SC2034
# Sourced by the benchmarks (ab_http.sh, engine_ab.sh, single_cost.sh,
# single_vs_nginx.sh; authz_ab.sh, whose servers get no accounts, uses
# free_port and wait_up): a free loopback port, a wait until a URL
# answers, and a tpwallet server started with its defaults and given
# 100,000 accounts.
#   free_port                        prints a free port
#   wait_up URL NAME LOG             waits (10 s at most) until URL
#                                    (an https URL: CURL_CA=CA file)
#                                    answers 2xx; else prints LOG, exits
#   bench_workdir NAME               sets work (a new directory in
#                                    /dev/shm, or $TMPDIR with DISK=1)
#                                    and pids, and a trap that kills the
#                                    pids and removes work on exit
#   bench_tls_pki KIND..             in $work: a P-256 CA (ca.pem) and,
#                                    for each KIND (p256, ed25519), a
#                                    key KIND.key (0600) and certificate
#                                    KIND.pem for IP 127.0.0.1, 1 day
#   serve_start BIN DATA LOG [ARG..] sets serve_port and serve_pid (ARGs
#                                    go to serve); exits when the server
#                                    does not start
# The caller kills serve_pid (and waits for it) when done.
bench_workdir() {
	if [ "${DISK:-0}" != 1 ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
		work=$(mktemp -d "/dev/shm/tpwallet-$1-XXXXXX")
	else
		work=$(mktemp -d "${TMPDIR:-/tmp}/tpwallet-$1-XXXXXX")
	fi
	pids=""
	# "|| true": under set -e a killed server's status (143) would end
	# the trap at the first one and leave the others running.
	trap 'for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT INT TERM
}

bench_tls_pki() {
	(
		cd "$work"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null
		echo "subjectAltName=IP:127.0.0.1" >san.ext
		for _k in "$@"; do
			case $_k in
			p256) openssl genpkey -algorithm EC -pkeyopt \
				ec_paramgen_curve:P-256 -out p256.key 2>/dev/null ;;
			*) openssl genpkey -algorithm "$_k" -out "$_k.key" 2>/dev/null ;;
			esac
			openssl req -new -key "$_k.key" -out "$_k.csr" \
				-subj /CN=127.0.0.1 2>/dev/null
			openssl x509 -req -in "$_k.csr" -CA ca.pem -CAkey ca.key \
				-set_serial 1 -days 1 -extfile san.ext -out "$_k.pem" 2>/dev/null
			chmod 600 "$_k.key"
		done
	)
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_up() {
	_i=0
	# shellcheck disable=SC2086
	until curl -sf ${CURL_CA:+--cacert "$CURL_CA"} "$1" >/dev/null; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || { echo "$2 did not start"; cat "$3"; exit 1; }
		sleep 0.1
	done
}

serve_start() {
	_bin=$1 _data=$2 _log=$3
	shift 3
	serve_port=$(free_port)
	"$_bin" serve --data "$_data" --listen "127.0.0.1:$serve_port" "$@" 2>"$_log" &
	serve_pid=$!
	wait_up "http://127.0.0.1:$serve_port/readyz" "server $_bin" "$_log"
	TPWALLET_TOKEN=$(cat "$_data/admin.token") python3 "$(dirname "$0")/http_batch.py" \
		--port "$serve_port" --accounts 100000 --create-accounts >/dev/null
}
