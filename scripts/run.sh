#!/bin/sh
# `make run`: serve on the embedded default (./data, 127.0.0.1:8080).
# TPWALLET_DATA and TPWALLET_LISTEN override both; see docs/operations.md.
set -eu
bin=${1:-build/tpwallet}
data=${TPWALLET_DATA:-./data}
listen=${TPWALLET_LISTEN:-127.0.0.1:8080}
cat >&2 <<MSG
tpwallet: serving on http://$listen with data in $data (Ctrl-C stops it).
  try:  curl -s http://$listen/healthz
        docs/api.md shows how to create accounts and transfers.
MSG
exec "$bin" serve --data "$data" --listen "$listen"
