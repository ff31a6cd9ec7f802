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
#   nginx_start PORT [CERT KEY]      Debian's nginx in $work/nginx: 2
#                                    workers, access log off, every
#                                    request answered 200 "ok\n" (the body
#                                    discarded); HTTPS (TLS 1.3) with
#                                    CERT and KEY; its pid added to pids;
#                                    waits until it answers (an https
#                                    one: CURL_CA)
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

nginx_start() {
	_nginx=$(command -v nginx || echo /usr/sbin/nginx)
	[ -x "$_nginx" ] || { echo "nginx is missing: scripts/deps.sh bench"; exit 1; }
	_listen="127.0.0.1:$1" _tls="" _scheme=http
	if [ $# -ge 3 ]; then
		_listen="$_listen ssl" _scheme=https
		_tls="ssl_certificate $2; ssl_certificate_key $3; ssl_protocols TLSv1.3;"
	fi
	mkdir -p "$work/nginx"
	cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $work/nginx/body;
	proxy_temp_path $work/nginx/proxy;
	fastcgi_temp_path $work/nginx/fastcgi;
	uwsgi_temp_path $work/nginx/uwsgi;
	scgi_temp_path $work/nginx/scgi;
	keepalive_requests 1000000;
	server {
		listen $_listen;
		$_tls
		location / { default_type text/plain; return 200 "ok\n"; }
	}
}
EOF
	"$_nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr" &
	pids="$pids $!"
	wait_up "$_scheme://127.0.0.1:$1/" nginx "$work/nginx/stderr"
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
