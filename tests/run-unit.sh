#!/bin/sh
# Run every unit test binary in $1 and close with one line that totals the
# cmocka test cases: "unit: N passed, M failed".  A binary that crashes or
# exits non-zero without cmocka's summary counts as one failure.
set -u
dir=$1
pass=0
fail=0
failed=""
out=$(mktemp)
for t in "$dir"/test_*; do
	[ -x "$t" ] || continue
	"$t" >"$out" 2>&1
	status=$?
	cat "$out"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
	pass=$((pass + ${p:-0}))
	if [ "$status" -ne 0 ]; then
		fail=$((fail + ${f:-1}))
		failed="$failed $(basename "$t")"
	fi
done
rm -f "$out"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failing binaries:$failed"; exit 1; }
