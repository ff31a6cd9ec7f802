#!/bin/sh
# `make crash` (a stage of `make test`): the crash explorer (issue 20,
# docs/crash-model.md) over every crash point of its workloads, errors
# injected at every call, and the planted bug the explorer must find.
#   tests/crash/run.sh TPWALLET PLANTED_TPWALLET RECFS_SO PLANTED_ARCHIVE
# Closes with "crash explorer: N passed, M failed" (tests/count.sh).
set -u
bin=$1
planted=$2
shim=$3
planted_archive=$4
explore="python3 tests/crash/explore.py run --shim $shim"
pass=0
fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

verdict() {
	if [ "$2" -eq 0 ]; then
		pass=$((pass + 1))
		echo "ok    $1"
	else
		fail=$((fail + 1))
		echo "FAIL  $1"
	fi
}

# Every crash point of each workload, every state within the bound: green.
# (medium with store = 1, about a minute more, is left to a manual run:
# the retention workload below has the store and more of its calls.)
for w in "small 0" "small 1" "medium 0"; do
	set -- $w
	$explore --binary "$bin" --workload "$1" --store "$2"
	verdict "crash_points_of_the_${1}_workload_with_store_$2_all_recover" $?
done

# Journal retention (store = 1): segments moved to the archive.
$explore --binary "$bin" --workload retention
verdict "crash_points_of_the_retention_workload_all_recover" $?

# The KEK outside the directory traced: nothing else fsyncs DATA's parent
# after DATA is made (datadir.c's mkdir_p must).
kek_dir=$(mktemp -d)
TPWALLET_KEK_FILE=$kek_dir/kek $explore --binary "$bin" --workload small
verdict "crash_points_with_the_kek_elsewhere_keep_the_new_data_directory" $?
rm -rf "$kek_dir"

# Errors at every call (issue 20, item 2): EIO, ENOSPC or a short write
# at call k, in turn, for every k of the small workload.
python3 tests/crash/inject.py --binary "$bin" --shim "$shim" --workload small
verdict "an_error_at_every_call_never_acknowledges_what_is_not_durable" $?
python3 tests/crash/inject.py --binary "$bin" --shim "$shim" --workload small \
	--store 1
verdict "an_error_at_every_call_with_the_store_answers_503_or_stops" $?

# The planted bug (the journal's segment creation without its directory
# fsync): the explorer must fail, naming the create it undid; and the
# kept run, replayed, fails the same way (the trace is what is replayed).
keep=$(mktemp -d)
$explore --binary "$planted" --workload small --store 0 --keep "$keep/run" \
	>"$out" 2>&1
status=$?
cat "$out"
named='state: undone: #[0-9]+ create data/journal/0{19}1\.wal; .*acknowledged'
[ "$status" -eq 1 ] && grep -Eq "$named" "$out"
verdict "planted_missing_segment_directory_fsync_is_found_and_named" $?
failures() { grep '^FAILED' "$1" | sed 's|/[^ ]*/states/[0-9a-f]*/||g'; }
failures "$out" >"$keep/first"
python3 tests/crash/explore.py replay --binary "$planted" \
	--from-dir "$keep/run" >"$out" 2>&1
status=$?
failures "$out" >"$keep/again"
[ "$status" -eq 1 ] && [ -s "$keep/first" ] && cmp -s "$keep/first" "$keep/again"
verdict "a_kept_trace_replayed_fails_at_the_same_call_the_same_way" $?
rm -rf "$keep"

# The second (the archive's move without the directory fsync after its
# rename): the explorer must fail naming the rename.
$explore --binary "$planted_archive" --workload retention >"$out" 2>&1
status=$?
cat "$out"
named='state: undone: #[0-9]+ rename archive/0{19}1\.wal\.tmp -> archive/0{19}1\.wal; '
[ "$status" -eq 1 ] && grep -Eq "$named" "$out"
verdict "planted_missing_archive_directory_fsync_is_found_and_named" $?

echo "crash explorer: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
