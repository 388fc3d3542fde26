#!/usr/bin/env bash
# make demo: the trainer dies with ENOSPC alone and finishes with ckptd, and
# the demo ends with the bytes freed and kept and a chart of free space.
. "$(dirname "$0")/../lib.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)

test_demo_ends_with_the_space_saved() {
        need_root
        local t0 secs rc=0
        t0=$(date +%s)
        CKPTD=$CKPTD timeout 120 bash "$REPO/scripts/demo.sh" >out 2>&1 || rc=$?
        secs=$(($(date +%s) - t0))
        [ "$rc" = 0 ] || fail "demo exited $rc: $(cat out)"
        # alone, the trainer does not get through
        assert_grep 'No space left on device' out
        assert_grep 'training crashed after' out
        # with ckptd it does, and says so in bytes
        assert_grep "trainer: all 16 epochs saved: 33554432 bytes" out
        grep -qE '^== ckptd freed [0-9]+ bytes \([0-9]+ checkpoints\) and kept [0-9]+ bytes \([0-9]+ checkpoints\)$' out ||
                fail "no bytes line: $(cat out)"
        local freed kept
        read -r freed kept < <(sed -nE 's/^== ckptd freed ([0-9]+) bytes.* kept ([0-9]+) bytes.*/\1 \2/p' out)
        [ $((freed + kept)) = 33554432 ] || fail "freed $freed + kept $kept is not what was written"
        [ "$kept" = $((4 * 1048576)) ] || [ "$kept" = $((6 * 1048576)) ] || [ "$kept" = $((8 * 1048576)) ] ||
                fail "kept $kept bytes: not the 2 to 4 checkpoints the policy keeps"
        # the chart: 8 rows of free space, an axis marking where the disk
        # would be full without ckptd
        [ "$(grep -cE '^ *[0-9.]+ MiB \|' out)" = 8 ] || fail "no chart: $(cat out)"
        grep -qE '^ +\+-+!+$' out || fail "no axis with the ENOSPC mark: $(cat out)"
        # it ends with the point, not with the daemon's stop
        assert_no_grep 'Terminated' out
        tail -n 1 out | grep -q '^== free at the end: [0-9]* bytes$' || fail "ends with: $(tail -n 1 out)"
        # under 30 s on a machine that is not overloaded
        local load cores
        load=$(cut -d' ' -f1 /proc/loadavg) cores=$(nproc)
        echo "    demo took ${secs}s (load $load on $cores cores)" >&2
        if awk -v l="$load" -v c="$cores" 'BEGIN { exit !(l < c) }'; then
                [ "$secs" -lt 30 ] || fail "demo took ${secs}s"
        fi
}

run_tests
