#!/bin/sh
# `make run` as the very first command on a machine where none of the
# packages is installed yet (issue 10, item 1).  The machine running this
# has them, so the test makes a copy of the tree (the tracked files, as
# they are in the work tree) in which:
#   - pkg-config answers as if nothing were installed (exit 1, no flags)
#     until a marker file exists;
#   - scripts/deps.sh only creates the marker, as installing would.
# Then `make run` must build and serve: a Makefile that computes the
# compiler flags before its install step has run fails to link.
# Closes with "fresh: N passed, M failed".  Bounded: the build and the
# server's start within FRESH_TIMEOUT_S (default 600) seconds.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tpwallet-fresh-XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		# make, then the server it exec'd: the whole process group
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
		sleep 0.5
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail() {
	echo "fresh: $1"
	[ -f "$tmp/make.log" ] && tail -n 30 "$tmp/make.log"
	echo "fresh: 0 passed, 1 failed"
	exit 1
}

real=$(command -v pkg-config) || fail "pkg-config is not installed"
mkdir -p "$tmp/repo" "$tmp/bin"
(cd "$root" && git ls-files -z | xargs -0 tar cf - 2>/dev/null) |
	(cd "$tmp/repo" && tar xf -) || fail "cannot copy the tree"
mark="$tmp/installed"
cat >"$tmp/bin/pkg-config" <<PKG
#!/bin/sh
[ -e "$mark" ] || exit 1
exec "$real" "\$@"
PKG
cat >"$tmp/repo/scripts/deps.sh" <<DEPS
#!/bin/sh
touch "$mark"
DEPS
chmod +x "$tmp/bin/pkg-config" "$tmp/repo/scripts/deps.sh"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# its own process group, so that the server make starts is stopped too
PATH="$tmp/bin:$PATH" TPWALLET_LISTEN="127.0.0.1:$port" \
	TPWALLET_DATA="$tmp/data" setsid make -C "$tmp/repo" run \
	>"$tmp/make.log" 2>&1 &
pid=$!
limit=${FRESH_TIMEOUT_S:-600}
start=$(date +%s)
while :; do
	if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
		echo "fresh: make run built and served on a machine without the packages ($(($(date +%s) - start)) s)"
		echo "fresh: 1 passed, 0 failed"
		exit 0
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		fail "make run ended (status $?) before serving"
	fi
	[ $(($(date +%s) - start)) -lt "$limit" ] ||
		fail "make run did not serve within $limit s"
	sleep 1
done
