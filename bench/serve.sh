# shellcheck shell=sh disable=SC2034
# Sourced by the benchmarks (ab_http.sh, engine_ab.sh, single_cost.sh,
# single_vs_nginx.sh; authz_ab.sh, whose servers get no accounts, uses
# free_port and wait_up): a free loopback port, a wait until a URL
# answers, and a tpwallet server started with its defaults and given
# 100,000 accounts.
#   free_port                        prints a free port
#   wait_up URL NAME LOG             waits (10 s at most) until URL
#                                    answers 2xx; else prints LOG, exits
#   bench_workdir NAME               sets work (a new directory in
#                                    /dev/shm, or $TMPDIR with DISK=1)
#                                    and pids, and a trap that kills the
#                                    pids and removes work on exit
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
	trap 'for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"' EXIT INT TERM
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_up() {
	_i=0
	until curl -sf "$1" >/dev/null; do
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
