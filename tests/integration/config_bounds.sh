#!/usr/bin/env bash
# Config values that would turn into another policy (integers beyond 32
# bits, huge headroom or sizes) and config files that are not regular files
# (a FIFO that would block): refused with FILE:LINE or the file's name,
# nothing deleted, the daemon keeps its running configuration.
. "$(dirname "$0")/../lib.sh"

# A run of six checkpoints, an hour old; the best loss is step 200's.
LOSSES=(0.5 0.1 0.4 0.3 0.6 0.7)
lossrun() {
        local i
        mkdir -p "$1"
        for i in "${!LOSSES[@]}"; do
                mkfile "$1/step_$(((i + 1) * 100))-loss=${LOSSES[$i]}.pt" 4
        done
        touch -d "-1 hour" "$1"/*.pt
}

# bounded NAME LINE MESSAGE KEYS: a watch on runs/ with KEYS on line LINE;
# -t and -1 exit 1 with "NAME.conf:LINE: MESSAGE" and delete nothing.
bounded() {
        local before rc mode
        cat >"$1.conf" <<EOC
watch = (
  { path = "$T/runs"; pattern = "step_{step}-loss={loss}.pt"; monitor = "loss";
    $4 }
);
EOC
        before=$(ls_names runs)
        for mode in -t -1; do
                rc=0
                "$CKPTD" "$mode" -c "$1.conf" >out 2>err || rc=$?
                [ "$rc" = 1 ] || fail "$1: $mode exited $rc, expected 1: $(cat out err)"
                assert_grep "^$1.conf:$2: $3" err
        done
        [ "$(ls_names runs)" = "$before" ] || fail "$1: something was deleted: $(ls_names runs)"
}

test_integers_beyond_32_bits_are_errors() {
        lossrun runs
        # libconfig 1.5 read these as 0 and 1: the newest would go
        bounded last 3 "keep_last: must be from 0 to 1000000, got 4294967296" \
                "keep_top_k = 1; keep_last = 4294967296;"
        bounded topk 3 "keep_top_k: must be from -1 to 1000000, got 4294967297" \
                "keep_top_k = 4294967297; keep_last = 1;"
        bounded hex 3 "keep_last: must be from 0 to 1000000, got 4294967296" \
                "keep_top_k = 1; keep_last = 0x100000000;"
        bounded huge 3 "keep_last: 99999999999999999999 does not fit in a 64-bit integer" \
                "keep_top_k = 1; keep_last = 99999999999999999999;"
        bounded age 3 "min_age: must be from 0 to 316224000, got 4294967296" \
                "keep_top_k = 1; keep_last = 1; min_age = 4294967296;"
}

# A pattern of wildcards alone takes every entry of every run, the runs
# below it too: refused in the config (its line) and on the command line.
test_pattern_of_wildcards_alone_is_an_error() {
        local p rc
        lossrun runs/a
        for p in '*' '**' '?*'; do
                cat >w.conf <<EOC
watch = ( { path = "$T/runs";
            pattern = "$p"; keep_last = 1; } );
EOC
                rc=0
                "$CKPTD" -1 -c w.conf >out 2>err || rc=$?
                [ "$rc" = 1 ] || fail "$p: -1 exited $rc, expected 1: $(cat out err)"
                grep -qF "w.conf:2: pattern \"$p\" takes every entry" err || fail "$p: not named: $(cat err)"
                rc=0
                "$CKPTD" -1 -w "$T/runs" --pattern "$p" --keep-last 1 >out 2>err || rc=$?
                [ "$rc" = 2 ] || fail "$p: -w exited $rc, expected 2: $(cat out err)"
        done
        assert_names runs a
        [ "$(ls runs/a | wc -l)" = 6 ] || fail "something was deleted: $(ls runs/a)"
}

test_huge_floors_are_errors() {
        lossrun runs
        # each would make the floor evict everything it may
        bounded headroom 3 "headroom: must be a number from 0 to 100, got 1e+308" \
                "keep_top_k = 3; keep_last = 1; headroom = 1e308;"
        bounded minfree 3 "min_free: size \"18446744073709551615\" is out of range" \
                "keep_top_k = 3; keep_last = 1; min_free = \"18446744073709551615\";"
        bounded minfree_int 3 "min_free: 18446744073709551615 does not fit in a 64-bit integer" \
                "keep_top_k = 3; keep_last = 1; min_free = 18446744073709551615;"
        bounded target 3 "target_free: size \"16777215T\" is out of range" \
                "keep_top_k = 3; keep_last = 1; target_free = \"16777215T\";"
}

# A 64-bit value in range is read as written, not truncated: 4 GiB as a
# plain byte count is a floor of 4 GiB, not 0.
test_64_bit_values_in_range_are_exact() {
        lossrun runs
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "step_{step}-loss={loss}.pt"; monitor = "loss";
            keep_top_k = 1; keep_last = 1; min_free = 4294967296; target_free = 5368709120L; } );
EOC
        "$CKPTD" -t -c c.conf >out
        assert_grep "min_free 4G" out
        assert_grep "target_free 5G" out
}

# The -w flags share the config's bounds: --keep-top-k 4294967297 was 1.
test_adhoc_flags_share_the_bounds() {
        lossrun runs
        before=$(ls_names runs)
        for args in "--keep-top-k 4294967297" "--keep-last 4294967296" "--headroom 1e308" \
                "--min-free 18446744073709551615" "--max-delete 4294967297" "--keep-every 9007199254740993"; do
                rc=0
                # shellcheck disable=SC2086
                "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}-loss={loss}.pt' --monitor loss $args 2>err || rc=$?
                [ "$rc" = 2 ] || fail "$args: exit $rc, expected 2: $(cat err)"
                assert_grep "^ckptd: --" err
        done
        assert_grep "keep_top_k: must be an integer from -1 to 1000000, got 4294967297" <(
                "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}-loss={loss}.pt' --keep-top-k 4294967297 2>&1
        )
        # 2^53 + 1 is 2^53 as a double: compared as an integer
        assert_grep "keep_every: must be an integer from 0 to 9007199254740992, got 9007199254740993" <(
                "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}-loss={loss}.pt' --keep-every 9007199254740993 2>&1
        )
        [ "$(ls_names runs)" = "$before" ] || fail "something was deleted: $(ls_names runs)"
}

# A time in the config reads as the flags read it: min_age "2h" keeps
# checkpoints an hour old as --min-age 2h does, "30min" lets them go; a bad
# one names file and line and deletes nothing.
test_durations_read_as_the_flags_read_them() {
        lossrun runs
        bounded bad 3 'settle: invalid duration "soon"' 'keep_top_k = 1; keep_last = 1; settle = "soon";'
        cat >d.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "step_{step}-loss={loss}.pt"; monitor = "loss";
            keep_top_k = 1; keep_last = 1; min_age = "2h"; } );
EOC
        "$CKPTD" -1 -c d.conf 2>err || fail "-1 with min_age \"2h\": $(cat err)"
        "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}-loss={loss}.pt' --monitor loss --keep-top-k 1 \
                --keep-last 1 --min-age 2h 2>err || fail "-1 --min-age 2h: $(cat err)"
        [ "$(ls_names runs | wc -l)" = 6 ] || fail "a checkpoint younger than 2h was deleted: $(ls_names runs)"
        sed -i 's/"2h"/"30min"/' d.conf
        "$CKPTD" -1 -c d.conf 2>err || fail "-1 with min_age \"30min\": $(cat err)"
        assert_names runs step_200-loss=0.1.pt step_600-loss=0.7.pt
}

# -t and -1 on a FIFO nobody writes to: refused at once, naming the file
# (timeout turns a hang into a failure).
test_fifo_config_is_refused_at_once() {
        lossrun runs
        mkfifo fifo.conf
        for mode in -t -1; do
                rc=0
                timeout 10 "$CKPTD" "$mode" -c fifo.conf 2>err || rc=$?
                [ "$rc" != 124 ] || fail "$mode -c FIFO hung"
                [ "$rc" = 1 ] || fail "$mode -c FIFO exited $rc, expected 1"
                assert_grep "^fifo.conf: is a FIFO, not a regular file" err
        done
        # and what a config includes
        printf '@include "fifo.conf"\nwatch = ( { path = "%s/runs"; pattern = "s{step}"; } );\n' "$T" >inc.conf
        rc=0
        timeout 10 "$CKPTD" -t -c inc.conf 2>err || rc=$?
        [ "$rc" = 1 ] || fail "-t with an @include of a FIFO exited $rc, expected 1"
        assert_grep "^inc.conf:1: @include \"fifo.conf\": is a FIFO" err
        rc=0
        timeout 10 "$CKPTD" -t -c /dev/zero 2>err || rc=$?
        [ "$rc" = 1 ] || fail "-t -c /dev/zero exited $rc, expected 1"
        assert_grep "^/dev/zero: is a character device" err
}

# The config replaced by a FIFO, then SIGHUP: the rejection is logged, the
# old config stays in force and the loop goes on (a new checkpoint is
# decided under the old policy).
test_reload_with_a_fifo_keeps_the_running_config() {
        mkdir runs
        for s in 100 200 300; do mkfile "runs/step_$s.pt" 4; done
        touch -d "-1 hour" runs/*.pt
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "step_{step}.pt"; keep_last = 2; settle = 0.5; } );
EOC
        "$CKPTD" -c c.conf 2>d.log &
        pid=$!
        echo "$pid" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        wait_for 20 names_are runs step_200.pt step_300.pt || fail "not pruned: $(ls_names runs)"
        rm c.conf
        mkfifo c.conf
        kill -HUP "$pid"
        # a daemon blocked in open() would not see SIGTERM (it reads signals
        # from a signalfd): SIGKILL it before failing
        wait_for 10 grep -q "c.conf: is a FIFO, not a regular file" d.log ||
                { kill -KILL "$pid"; fail "no rejection: $(cat d.log)"; }
        assert_grep "keeping the running configuration" d.log
        alive "$pid" || fail "ckptd died"
        mkfile runs/step_400.pt 4
        wait_for 20 names_are runs step_300.pt step_400.pt || fail "loop stuck: $(ls_names runs); $(cat d.log)"
        kill -TERM "$pid"
        wait_for 20 eval "! alive $pid" || fail "ckptd did not stop"
        rc=0
        wait "$pid" || rc=$?
        [ "$rc" = 0 ] || fail "ckptd exited $rc"
}

run_tests
