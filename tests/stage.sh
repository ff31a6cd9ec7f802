#!/bin/sh
# Run one stage of `make test` and say how long it took, so the suite's
# time (kept under 30 minutes on a two-core machine) can be read stage by
# stage from any log:  tests/stage.sh NAME command...
set -u
name=$1
shift
start=$(date +%s)
"$@"
status=$?
took=$(($(date +%s) - start))
echo "make test: stage $name took ${took} s"
if [ -n "${TPW_COUNTS:-}" ]; then
	echo "$name $took" >>"$TPW_COUNTS.times"
fi
exit "$status"
