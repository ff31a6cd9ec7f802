#!/bin/sh
# bench/audit_memory.sh - the server's anonymous memory per journal entry,
# for A/B of two builds (issue 12, item 2: the audit tree's hashes out
# of memory):
#
#   bench/audit_memory.sh BIN_A BIN_B [ENTRIES]
#
# Each binary serves its own data directory (bench_workdir: /dev/shm, or
# $TMPDIR with DISK=1) with 100,000 accounts; then `wrk -t2 -c32` with
# bench/wrk_transfer.lua sends single-transfer requests (one journal
# entry each) until the audit tree holds ENTRIES (default 1,000,000)
# more entries than at the start, and the script waits until the tree
# has caught up with the journal.  RssAnon (/proc/PID/status: the
# process's own anonymous memory, not the page cache or file-backed
# mappings) is read before and after; per entry it is the difference
# over the entries added.  The ledger's own records count in both builds
# alike, so the difference between A and B is what the builds keep
# apart from it.  Prints figures; never passes or fails on them.
set -eu
a=$1
b=$2
entries=${3:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/serve.sh
. "$here/serve.sh"
bench_workdir auditmem

rss_anon() { # PID -> KiB
	awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"
}

audit_size() { # PORT TOKEN -> entries in the tree
	curl -sf -H "Authorization: Bearer $2" \
		"http://127.0.0.1:$1/v1/audit/head" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])'
}

measure() { # NAME BIN
	serve_start "$2" "$work/$1" "$work/$1.log"
	pids="$pids $serve_pid"
	token=$(cat "$work/$1/admin.token")
	sleep 2
	start=$(audit_size "$serve_port" "$token")
	rss0=$(rss_anon "$serve_pid")
	want=$((start + entries))
	run=1
	while [ "$(audit_size "$serve_port" "$token")" -lt "$want" ]; do
		RUN=$run TPWALLET_TOKEN=$token ACCOUNTS=100000 wrk -t2 -c32 \
			-d5 -s "$here/wrk_transfer.lua" \
			"http://127.0.0.1:$serve_port" >/dev/null
		run=$((run + 1))
	done
	# The tree follows the journal: wait until it stops growing.
	last=-1
	now=$(audit_size "$serve_port" "$token")
	while [ "$now" != "$last" ]; do
		last=$now
		sleep 1
		now=$(audit_size "$serve_port" "$token")
	done
	rss1=$(rss_anon "$serve_pid")
	added=$((now - start))
	echo "$1: $2"
	echo "  entries added $added (tree $start -> $now)"
	echo "  RssAnon $rss0 KiB -> $rss1 KiB: $(python3 -c \
		"print('%.1f' % (($rss1 - $rss0) * 1024 / $added))") bytes an entry"
	kill "$serve_pid"
	wait "$serve_pid" 2>/dev/null || true
	eval "per_$1=\$(python3 -c \"print((\$rss1 - \$rss0) * 1024 / \$added)\")"
}

measure a "$a"
measure b "$b"
echo "difference A - B: $(python3 -c "print('%.1f' % ($per_a - $per_b))") bytes an entry"
