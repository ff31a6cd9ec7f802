#!/bin/sh
# `make run`: serve on the embedded default (./data, 127.0.0.1:8080).
# TPWALLET_DATA and TPWALLET_LISTEN override both; see docs/operations.md.
set -eu
bin=${1:-build/tpwallet}
# `make run CONFIG=FILE` (or TPWALLET_CONFIG): the file's settings, its
# listen, data and TLS pair included, win over the defaults below.
config=${TPWALLET_CONFIG:-}
if [ -n "$config" ]; then
	[ -r "$config" ] || { echo "tpwallet: cannot read $config" >&2; exit 2; }
	echo "tpwallet: serving with the settings of $config (Ctrl-C stops it); docs/operations.md, Settings." >&2
	exec "$bin" serve --config "$config"
fi
data=${TPWALLET_DATA:-./data}
listen=${TPWALLET_LISTEN:-127.0.0.1:8080}
cat >&2 <<MSG
tpwallet: serving on http://$listen with data in $data (Ctrl-C stops it).
  The administrator's bearer token is in $data/admin.token (mode 0600),
  written when the data directory is created; every /v1 call needs it or
  a mandate (docs/authz.md, docs/cli.md).
  try:  curl -s http://$listen/healthz
        curl -s -H "Authorization: Bearer \$(cat $data/admin.token)" \\
             http://$listen/v1/keys
        docs/api.md shows how to create accounts and transfers.
  console: open http://$listen/console and paste the token
        (docs/console.md).
MSG
exec "$bin" serve --data "$data" --listen "$listen"
