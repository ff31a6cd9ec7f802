#!/bin/sh
# release.sh - the release artifacts (docs/releases.md):
#   scripts/release.sh BINARY OUTDIR
# copies BINARY (and any build/*.deb) into OUTDIR, writes SHA256SUMS,
# and, with RELEASE_SECRET_KEY naming a minisign secret key file, signs
# every artifact and SHA256SUMS (FILE.minisig, the trusted comment
# naming the release, the commit and the file), then verifies each
# signature with the binary itself against RELEASE_PUBLIC_KEY when that
# is set.  OUTDIR must not exist or be empty: nothing is overwritten.
set -eu
bin=$1
out=$2
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
	echo "release.sh: $out is not empty: refusing to overwrite" >&2
	exit 2
fi
mkdir -p "$out"
cp "$bin" "$out/tpwallet"
for deb in build/*.deb; do
	[ -e "$deb" ] && cp "$deb" "$out/"
done
version=$("$bin" version --json | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
commit=$("$bin" version --json | sed -n 's/.*"commit":"\([^"]*\)".*/\1/p')
(cd "$out" && sha256sum -- * >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
if [ -n "${RELEASE_SECRET_KEY:-}" ]; then
	command -v minisign >/dev/null || {
		echo "release.sh: minisign is missing (scripts/deps.sh test)" >&2
		exit 1
	}
	for f in "$out"/*; do
		case $f in *.minisig) continue ;; esac
		name=$(basename "$f")
		minisign -S -s "$RELEASE_SECRET_KEY" -m "$f" \
			-t "tpwallet $version commit $commit file $name" >/dev/null
		if [ -n "${RELEASE_PUBLIC_KEY:-}" ]; then
			"$bin" version --verify "$f" --key "$RELEASE_PUBLIC_KEY"
		fi
	done
fi
echo "release.sh: tpwallet $version (commit $commit) in $out"
