#!/bin/sh
# Install the npm packages the tests run, each into its project-local
# node_modules, pinned by its package-lock.json (npm ci; never global):
#   tests/tools    the independent checkers of the project's documents
#                  (the OpenAPI validator: tests/e2e/test_openapi.py)
#   tests/console  the console's browser test: playwright-core (it drives
#                  Debian's chromium; no browser is downloaded) and
#                  axe-core (tests/e2e/test_console.py)
# Called by scripts/deps.sh test and by the tests that need them.  Quiet
# and quick when node_modules already matches the lock file (npm writes
# node_modules/.package-lock.json, compared here); needs node and npm
# (Debian's nodejs and npm, which scripts/deps.sh test installs).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)

# Is every package the lock file of $1 names in its directory?
all_there() {
	for p in $(sed -n 's/^    "\(node_modules\/[^"]*\)": {$/\1/p' "$1/package-lock.json"); do
		[ -f "$1/$p/package.json" ] || return 1
	done
}
for dir in "$ROOT/tests/tools" "$ROOT/tests/console"; do
	lock="$dir/package-lock.json"
	have="$dir/node_modules/.package-lock.json"
	# npm ci records what it installed in node_modules/.package-lock.json,
	# with the lock's "integrity" lines: the same lines, and each package
	# of the lock in its directory, nothing to do.
	if [ -f "$have" ] && [ "$(grep '"integrity"' "$lock")" = \
		"$(grep '"integrity"' "$have")" ] && all_there "$dir"; then
		continue
	fi
	(cd "$dir" && npm_config_update_notifier=false npm ci --no-audit \
		--no-fund --ignore-scripts --loglevel=error >/dev/null) || {
		echo "npm-deps: npm ci in $dir failed" >&2
		exit 1
	}
done
