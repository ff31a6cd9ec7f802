#!/bin/sh
# Install the Debian packages tpwallet needs, only those missing.
#   scripts/deps.sh build   what building and serving need (make run)
#   scripts/deps.sh [test]  that and what the tests use (make test): the
#                           sanitizers' clang, cmocka, the static checks,
#                           wrk, Node.js with npm for the JOSE client, and
#                           prometheus for its promtool (the alert rules),
#                           man and groff (the man pages), systemd for
#                           systemd-analyze (the unit's checks),
#                           PostgreSQL 15, Patroni and etcd (the cluster
#                           tests start their own, as an unprivileged user);
#                           RabbitMQ and nats-server (tpwallet cdc's tests
#                           start their own brokers on loopback, as that
#                           user), python3-pika and amqp-tools for their
#                           AMQP consumer; chromium (the console's browser
#                           test drives Debian's, with playwright-core);
#                           then the tests' pinned npm packages, each into
#                           its project-local node_modules
#                           (scripts/npm-deps.sh)
#   scripts/deps.sh bench   what building needs and the benchmarks' tools:
#                           wrk, curl, python3, nginx (the fixed-reply
#                           baseline of bench/single_vs_nginx.sh), perf
# librabbitmq-dev and libnats-dev are build packages because the binary
# links them: `tpwallet cdc` publishes to RabbitMQ (AMQP 0.9.1, publisher
# confirms) and NATS JetStream (publish acks) through them (docs/cdc.md).
# Idempotent and quiet when everything is present.  Needs root (or sudo)
# only when something must be installed.
set -eu

BUILD_PKGS="build-essential pkg-config
libmicrohttpd-dev libsodium-dev libjansson-dev nettle-dev libcurl4-gnutls-dev
libgnutls28-dev librocksdb-dev liblmdb-dev libp11-kit-dev libpq-dev
librabbitmq-dev libnats-dev"
TEST_PKGS="clang libclang-rt-14-dev libcmocka-dev python3 curl wrk
clang-format cppcheck util-linux prometheus openssl softhsm2 minisign
postgresql-15 postgresql-client-15 patroni etcd-server
man-db groff-base systemd chromium
rabbitmq-server nats-server python3-pika amqp-tools"
BENCH_PKGS="python3 curl wrk nginx-light linux-perf"

case "${1:-test}" in
build) PKGS=$BUILD_PKGS ;;
test) PKGS="$BUILD_PKGS $TEST_PKGS" ;;
bench) PKGS="$BUILD_PKGS $BENCH_PKGS" ;;
*)
	echo "usage: scripts/deps.sh [build|test|bench]" >&2
	exit 2
	;;
esac

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
# The e2e tests drive an independent JOSE client on Node.js (npm ci of
# tests/e2e/js): Debian's nodejs and npm unless a node is already there.
if [ "${1:-test}" = test ]; then
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
		missing="$missing nodejs npm"
fi
# The pinned npm packages of the tests (project-local, never global),
# once node and npm are there.
npm_deps() {
	[ "${1:-test}" != test ] || "$(dirname "$0")/npm-deps.sh"
}
if [ -z "$missing" ]; then
	npm_deps "${1:-test}"
	exit 0
fi

echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The tests need only promtool: on a host run by systemd, installing
# prometheus also enables and starts its service (in a container
# policy-rc.d usually stops that).  Stop and disable it again.
case "$missing " in
*" prometheus "*)
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
	fi
	;;
esac
# The same for the cluster tests' packages: they start their own etcd,
# Patroni and PostgreSQL on free loopback ports and use none of the
# system's (Debian's PostgreSQL cluster on 5432 is left alone).
case "$missing " in
*" patroni "* | *" etcd-server "* | *" rabbitmq-server "* | *" nats-server "*)
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		$SUDO systemctl disable --now patroni etcd rabbitmq-server \
			nats-server >/dev/null 2>&1 || true
	fi
	;;
esac
npm_deps "${1:-test}"
echo "deps: done"
