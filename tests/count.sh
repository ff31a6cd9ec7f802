#!/bin/sh
# Run a test command, show its output, and add its closing
# "N passed, M failed" to the file named by $TPW_COUNTS (if set), so
# `make test` can close with one total.  Exits with the command's status.
set -u
log=$(mktemp)
status_file=$(mktemp)
{ "$@"; echo $? >"$status_file"; } 2>&1 | tee "$log"
status=$(cat "$status_file")
if [ -n "${TPW_COUNTS:-}" ]; then
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	p=$(echo "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed.*/\2/')
	f=$(echo "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) failed.*/\2/')
	if [ -n "$line" ]; then
		echo "$p $f" >>"$TPW_COUNTS"
	elif [ "$status" -ne 0 ]; then
		echo "0 1" >>"$TPW_COUNTS"
	fi
fi
rm -f "$log" "$status_file"
exit "$status"
