#!/bin/sh
# PostgreSQL baseline for tpwallet's speed claim: the same workload (one
# double-entry transfer per request, 100000 accounts, 64 clients) against
# the schema a wallet team would write instead.  Runs as root; leaves no
# cluster or files behind.   PG_SECONDS  length of each run (default 10)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
secs=${PG_SECONDS:-10}

# Debian's packaged server, so the figure is one anyone can reproduce.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() { runuser -u postgres -- "$@"; }

# Throwaway cluster on the real disk (not tmpfs): fsync must cost what
# it costs in production.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tpwallet-pgbench-XXXXXX")
cleanup() {
	[ -f "$tmp/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$tmp/data" -m immediate -w -t 30 stop >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
chown postgres: "$tmp"
# Trust auth is tolerable only because the cluster is loopback-only and
# lives for the length of this script.
as_pg "$bin/initdb" -D "$tmp/data" -A trust -U postgres -E UTF8 >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Server settings stay at PostgreSQL's defaults (fsync, synchronous_commit
# on): durability is part of what is being compared.
as_pg "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
	-o "-c listen_addresses=127.0.0.1 -p $port -k $tmp" start >/dev/null ||
	{ cat "$tmp/server.log"; exit 1; }
echo "== $("$bin/postgres" --version), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"

psql() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
psql -f "$here/schema.sql" postgres

# One pgbench run; $1 is synchronous_commit for its sessions only.
bench() {
	psql -c CHECKPOINT postgres
	PGOPTIONS="-c synchronous_commit=$1" "$bin/pgbench" -n -c 64 -j 2 -T "$secs" \
		-M prepared -f "$here/transfer.sql" -h 127.0.0.1 -p "$port" -U postgres \
		postgres >"$tmp/pgbench.out" 2>&1 || { cat "$tmp/pgbench.out"; exit 1; }
	grep -E 'failed|latency average' "$tmp/pgbench.out" | sed 's/^/   /'
	tps=$(awk '/^tps = .*without initial/ { printf "%d", $3 }' "$tmp/pgbench.out")
	[ -n "$tps" ] || { cat "$tmp/pgbench.out"; exit 1; }
	echo "pg-summary transfers_per_second=$tps clients=64 seconds=$secs synchronous_commit=$1$2"
}
bench on ""
# Second figure for context only: commits acknowledged before the WAL is
# flushed, so a crash can lose the last ~0.6 s of acknowledged transfers.
bench off " (NOT durable)"
psql -t -A -c "SELECT 'rows: transfers=' || count(*) || ' sum_debits=' || (SELECT sum(debits_posted) FROM accounts) || ' sum_credits=' || (SELECT sum(credits_posted) FROM accounts) FROM transfers" postgres
