#!/bin/sh
# Build the Debian package of tpwallet from a built tree (make deb):
#   scripts/deb.sh BUILD        writes BUILD/tpwallet_<version>_<arch>.deb
# and prints its path.  It holds:
#   /usr/bin/tpwallet                     the binary (stripped)
#   /usr/share/man/man1/tpwallet*.1.gz    the man pages (scripts/man.sh)
#   /lib/systemd/system/tpwallet.service  deploy/systemd/tpwallet.service
#   /etc/tpwallet/tpwallet.conf           deploy/debian/tpwallet.conf, a
#                                         conffile (root:tpwallet 0640)
#   /var/lib/tpwallet                     the empty state directory
#                                         (tpwallet:tpwallet 0700)
#   /usr/share/doc/tpwallet/copyright
# postinst makes the system user tpwallet; nothing is enabled or started.
# Purging removes the settings and, when /var/lib/tpwallet is empty, it
# and the user (a ledger left there is kept, and said so).  A hand-made
# control file and dpkg-deb (no debhelper); the dependencies come from
# dpkg-shlibdeps (dpkg-dev, part of build-essential).
set -eu

build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$build/tpwallet
[ -x "$bin" ] && [ -f "$build/man/man1/tpwallet.1" ] || {
	echo "deb: build $bin and its man pages first (make all)" >&2
	exit 2
}
version=$("$bin" version --json | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
arch=$(dpkg --print-architecture)
work=$build/deb
pkg=$work/tpwallet
rm -rf "$work"
mkdir -p "$pkg/DEBIAN"

install -D -m 0755 "$bin" "$pkg/usr/bin/tpwallet"
strip --strip-unneeded "$pkg/usr/bin/tpwallet"
install -d -m 0755 "$pkg/usr/share/man/man1"
for page in "$build"/man/man1/*.1; do
	gzip -9nc "$page" >"$pkg/usr/share/man/man1/$(basename "$page").gz"
done
chmod 0644 "$pkg"/usr/share/man/man1/*.gz
install -D -m 0644 "$root/deploy/systemd/tpwallet.service" \
	"$pkg/lib/systemd/system/tpwallet.service"
install -D -m 0640 "$root/deploy/debian/tpwallet.conf" \
	"$pkg/etc/tpwallet/tpwallet.conf"
install -d -m 0700 "$pkg/var/lib/tpwallet"
install -d -m 0755 "$pkg/usr/share/doc/tpwallet"
cat >"$pkg/usr/share/doc/tpwallet/copyright" <<'COPY'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tpwallet
Comment: built from the tpwallet source tree (make deb); see its README.md.
COPY
chmod 0644 "$pkg/usr/share/doc/tpwallet/copyright"

# The shared libraries the binary needs, as package dependencies.
mkdir -p "$work/shlibs/debian"
printf 'Source: tpwallet\n\nPackage: tpwallet\nArchitecture: any\n' \
	>"$work/shlibs/debian/control"
depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$pkg/usr/bin/tpwallet" \
	2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || {
	echo "deb: dpkg-shlibdeps found no dependencies" >&2
	exit 1
}
size=$(du -sk "$pkg" | awk '{print $1}')

cat >"$pkg/DEBIAN/control" <<CONTROL
Package: tpwallet
Version: $version
Architecture: $arch
Maintainer: tpwallet developers <tpwallet@localhost>
Installed-Size: $size
Depends: $depends, passwd
Section: net
Priority: optional
Description: self-hosted wallet payment server
 tpwallet serves a double-entry ledger over HTTP with a verifiable audit
 log, delegated rights (mandates) and a client-version policy. This
 package installs the binary, its man pages, a sandboxed systemd unit
 (not enabled), the settings file /etc/tpwallet/tpwallet.conf and the
 empty state directory /var/lib/tpwallet.
CONTROL
echo /etc/tpwallet/tpwallet.conf >"$pkg/DEBIAN/conffiles"

cat >"$pkg/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	if ! getent passwd tpwallet >/dev/null; then
		useradd --system --user-group --home-dir /var/lib/tpwallet \
			--no-create-home --shell /usr/sbin/nologin \
			--comment "tpwallet server" tpwallet
	fi
	chown tpwallet:tpwallet /var/lib/tpwallet
	chmod 0700 /var/lib/tpwallet
	chown root:tpwallet /etc/tpwallet/tpwallet.conf
	chmod 0640 /etc/tpwallet/tpwallet.conf
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null || true
	fi
fi
exit 0
POSTINST

cat >"$pkg/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop tpwallet.service >/dev/null 2>&1 || true
fi
exit 0
PRERM

cat >"$pkg/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
	rmdir /etc/tpwallet 2>/dev/null || true
	# A ledger is never deleted by a purge: only an empty directory
	# (which dpkg itself removed with the package when it was empty).
	if [ ! -e /var/lib/tpwallet ] || rmdir /var/lib/tpwallet 2>/dev/null; then
		if getent passwd tpwallet >/dev/null; then
			userdel tpwallet >/dev/null 2>&1 || true
		fi
		if getent group tpwallet >/dev/null; then
			groupdel tpwallet >/dev/null 2>&1 || true
		fi
	elif [ -d /var/lib/tpwallet ]; then
		echo "tpwallet: /var/lib/tpwallet is not empty: kept, with the user tpwallet" >&2
	fi
fi
exit 0
POSTRM
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"

out=$build/tpwallet_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out" >/dev/null
echo "$out"
