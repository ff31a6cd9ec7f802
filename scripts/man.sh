#!/bin/sh
# Write the man pages of tpwallet from its own help, so that they cannot
# drift from it: tpwallet(1) from `tpwallet help` and tpwallet-CMD(1) from
# `tpwallet CMD --help` for each command it lists (but `help`, whose page
# is tpwallet(1)).
#   scripts/man.sh BINARY OUTDIR
# The help text goes in as written, in a no-fill block (its columns are
# the layout), with roff's special characters escaped; the NAME line is
# the command's summary in `tpwallet help`.  make builds them with the
# binary (BUILD/man/man1); make install installs them; tests/e2e/test_man.py
# renders each with man --warnings and compares it with the help.
set -eu

bin=$1
out=$2
version=$("$bin" version | awk '{print $2}')
mkdir -p "$out"

# The help text as roff: a backslash is \e, a line that starts with a
# control character (. or ') starts with \& instead, and a hyphen
# stays as written (\- would change what a reader copies).
escape() {
	sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

# header NAME SECTION-TITLE: the .TH line, without a date (reproducible).
header() {
	upper=$(printf '%s' "$1" | tr 'a-z' 'A-Z')
	printf '.TH %s 1 "" "tpwallet %s" "tpwallet manual"\n' "$upper" "$version"
}

commands=$("$bin" help | awk '/^commands:/ { f = 1; next }
	f && /^  [a-z]/ { print $1 } f && /^$/ { exit }')

summary() {
	"$bin" help | awk -v c="$1" '/^commands:/ { f = 1; next }
		f && $1 == c { $1 = ""; sub(/^ +/, ""); print; exit }'
}

page=$out/tpwallet.1
{
	header tpwallet
	printf '.SH NAME\ntpwallet \\- a self-hosted wallet payment server and its tools\n'
	printf '.SH SYNOPSIS\n.B tpwallet\n.I command\n[\n.I options\n]\n'
	printf '.SH DESCRIPTION\nThe output of\n.BR "tpwallet help" :\n.PP\n.nf\n'
	"$bin" help | escape
	printf '.fi\n.SH COMMANDS\nEach command has its own page:\n'
	for c in $commands; do
		[ "$c" = help ] && continue
		printf '.TP\n.BR tpwallet\\-%s (1)\n' "$c"
		summary "$c" | escape
	done
	printf '.SH SEE ALSO\nThe documentation in the source tree: docs/cli.md, docs/operations.md, docs/api.md.\n'
} >"$page.tmp"
mv "$page.tmp" "$page"

for c in $commands; do
	[ "$c" = help ] && continue
	page=$out/tpwallet-$c.1
	{
		header "tpwallet-$c"
		printf '.SH NAME\ntpwallet\\-%s \\- ' "$c"
		summary "$c" | escape
		printf '.SH DESCRIPTION\nThe output of\n.BR "tpwallet %s \\-\\-help" :\n.PP\n.nf\n' "$c"
		"$bin" "$c" --help | escape
		printf '.fi\n.SH SEE ALSO\n.BR tpwallet (1)\n'
	} >"$page.tmp"
	mv "$page.tmp" "$page"
done
