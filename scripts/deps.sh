#!/bin/sh
# Install the Debian packages tpwallet needs, only those missing.
# Idempotent and quiet when everything is present.  Needs root (or sudo)
# only when something must be installed.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libmicrohttpd-dev libsodium-dev libjansson-dev libcmocka-dev nettle-dev
python3 curl wrk clang-format cppcheck"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
# The e2e tests drive an independent JOSE client on Node.js (npm ci of
# tests/e2e/js): Debian's nodejs and npm unless a node is already there.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
	missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
