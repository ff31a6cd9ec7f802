#!/bin/sh
# Run every unit test binary in $1; print one summary line at the end.
set -u
dir=$1
pass=0
fail=0
failed=""
for t in "$dir"/test_*; do
	[ -x "$t" ] || continue
	if "$t"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed $(basename "$t")"
	fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed:$failed"; exit 1; }
