#!/usr/bin/env bash
# What ckptd prints for a person: -1's totals in bytes, -l's table and JSON,
# and the command-line mistakes it names (exit 2 with the real reason).
. "$(dirname "$0")/../lib.sh"

LFLAGS=(--preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1)

# two_runs: runs/a with four 64K checkpoints (losses written with three
# decimals), runs/b with three 16K ones; all an hour old.
two_runs() {
        mkdir -p runs/a runs/b
        for e in 0 1 2 3; do mkfile "runs/a/epoch=$e-step=$((e + 1))00-val_loss=0.${e}00.ckpt" 64; done
        # epoch 0 is the best and also pinned: two reasons
        touch runs/a/epoch=0-step=100-val_loss=0.000.ckpt.keep
        for e in 0 1 2; do mkfile "runs/b/epoch=$e-step=$((e + 1))00-val_loss=0.9$e.ckpt" 16; done
        touch -d "-1 hour" runs/*/*
}

test_dry_run_says_what_it_would_free_per_run_and_in_all() {
        two_runs
        "$CKPTD" -1 -n -w "$T/runs" "${LFLAGS[@]}" 2>err
        assert_names runs/a epoch=0-step=100-val_loss=0.000.ckpt epoch=0-step=100-val_loss=0.000.ckpt.keep \
                epoch=1-step=200-val_loss=0.100.ckpt epoch=2-step=300-val_loss=0.200.ckpt \
                epoch=3-step=400-val_loss=0.300.ckpt
        # each would-delete keeps the metric as the name wrote it, and a size with a unit
        assert_grep "would delete $T/runs/a/epoch=1-step=200-val_loss=0.100.ckpt (policy, val_loss=0.100, 64K)" err
        assert_grep "would delete $T/runs/b/epoch=1-step=200-val_loss=0.91.ckpt (policy, val_loss=0.91, 16K)" err
        assert_grep "^ckptd: run $T/runs/a: would delete 2 checkpoints, would free 128K; would keep 2 (128K)$" err
        assert_grep "^ckptd: run $T/runs/b: would delete 1 checkpoint, would free 16K; would keep 2 (32K)$" err
        assert_grep "^ckptd: would delete 3 checkpoints, would free 144K; would keep 4 (160K)$" err
}

test_once_says_what_it_freed_per_run_and_in_all() {
        two_runs
        assert_exit 0 "$CKPTD" -1 -w "$T/runs" "${LFLAGS[@]}" 2>err
        assert_grep "deleted $T/runs/a/epoch=2-step=300-val_loss=0.200.ckpt (policy, val_loss=0.200, 64K)" err
        assert_grep "^ckptd: run $T/runs/a: deleted 2 checkpoints, freed 128K; kept 2 (128K)$" err
        assert_grep "^ckptd: run $T/runs/b: deleted 1 checkpoint, freed 16K; kept 2 (32K)$" err
        assert_grep "^ckptd: deleted 3 checkpoints, freed 144K; kept 4 (160K)$" err
        # nothing left to do: zero has a unit too
        "$CKPTD" -1 -w "$T/runs" "${LFLAGS[@]}" 2>err2
        assert_grep "^ckptd: deleted 0 checkpoints, freed 0B; kept 4 (160K)$" err2
        assert_no_grep "^ckptd: run " err2
}

test_list_has_a_header_and_aligned_columns() {
        two_runs
        "$CKPTD" -l -w "$T/runs" "${LFLAGS[@]}" >out 2>err || fail "-l: $(cat err)"
        [ "$(grep -c '^  VERDICT  *SIZE  FIELDS  *CHECKPOINT  *REASONS$' out)" = 2 ] || fail "no header: $(cat out)"
        # the value as the name wrote it
        grep -F "epoch=1-step=200-val_loss=0.100.ckpt" out | grep -q "val_loss=0.100 " || fail "digits lost: $(cat out)"
        # reasons last: a long reason list moves no other column
        grep -F "epoch=0-step=100" out | grep -q "  best#1,pinned(keep-file)$" || fail "reasons: $(cat out)"
        awk '/^run /{n++} n==1 && /^  (keep|delete) /{print index($0, "epoch=") " " index($0, ".ckpt ")}' out | sort -u >cols
        [ "$(wc -l <cols)" = 1 ] || fail "columns of runs/a do not line up: $(cat out)"
}

test_list_json_numbers_are_short() {
        two_runs
        # zero-padded as Lightning's {epoch:02d} writes it: not a JSON number as is
        mkfile "runs/b/epoch=07-step=800-val_loss=0.95.ckpt" 16
        "$CKPTD" -l --json -w "$T/runs" "${LFLAGS[@]}" >out.json 2>err || fail "-l --json: $(cat err)"
        assert_grep '"val_loss":0.100' out.json
        assert_grep '"val_loss":0.91' out.json
        assert_grep '"order":200' out.json
        assert_grep '"epoch":7,' out.json
        assert_no_grep '000000000' out.json
        $PY -c 'import json,sys; json.load(open(sys.argv[1]))' out.json || fail "not JSON"
}

test_watch_given_twice_or_nested_is_refused() {
        mkdir -p runs/sub
        assert_exit 2 "$CKPTD" -l -w "$T/runs" -w "$T/runs" --preset lightning 2>err
        assert_grep "^ckptd: --watch $T/runs given twice$" err
        assert_exit 2 "$CKPTD" -l -w "$T/runs" -w "$T/runs/sub" --preset lightning 2>err
        assert_grep "^ckptd: --watch $T/runs/sub is inside --watch $T/runs" err
        assert_exit 0 "$CKPTD" -l -w "$T/runs" -w "$T/runs/sub" --preset lightning --no-recursive >/dev/null 2>err
}

test_modes_exclude_each_other() {
        mkdir runs
        assert_exit 2 "$CKPTD" -1 -l -w "$T/runs" --preset lightning 2>err
        assert_grep "^ckptd: -1/--once and -l/--list exclude each other" err
        assert_exit 2 "$CKPTD" -t -1 -w "$T/runs" --preset lightning 2>err
        assert_grep "exclude each other" err
}

test_did_you_mean() {
        mkdir runs
        assert_exit 2 "$CKPTD" -l -w "$T/runs" --preset lightning --keep-topk 3 2>err
        assert_grep "^ckptd: did you mean '--keep-top-k'?$" err
        assert_exit 2 "$CKPTD" -t --loglevel debug 2>err
        assert_grep "did you mean '--log-level'?" err
        assert_exit 2 "$CKPTD" -l -w "$T/runs" --preset lightnin 2>err
        assert_grep 'unknown preset "lightnin"; did you mean "lightning"?' err
        assert_exit 2 "$CKPTD" -t -w "$T/runs" --preset lightning --log-level warnin 2>err
        assert_grep "unknown level 'warnin'; did you mean 'warning'? (accepted: debug, info, notice, warning or warn" err
        printf 'log_level = "notic";\nwatch = ( { path = "%s"; preset = "lightnig"; } );\n' "$T/runs" >bad.conf
        assert_exit 1 "$CKPTD" -t -c bad.conf 2>err
        assert_grep 'unknown level "notic"; did you mean "notice"?' err
        printf 'loglevel = "info";\nwatch = ( { path = "%s"; preset = "lightning"; } );\n' "$T/runs" >bad3.conf
        assert_exit 1 "$CKPTD" -t -c bad3.conf 2>err
        assert_grep 'bad3.conf:1: unknown key "loglevel"; did you mean "log_level"?' err
        printf 'watch = ( { path = "%s"; preset = "lightning"; keep_topk = 3; } );\n' "$T/runs" >bad4.conf
        assert_exit 1 "$CKPTD" -t -c bad4.conf 2>err
        assert_grep 'unknown key "keep_topk" in watch; did you mean "keep_top_k"?' err
        printf 'watch = ( { path = "%s"; preset = "lightnig"; } );\n' "$T/runs" >bad2.conf
        assert_exit 1 "$CKPTD" -t -c bad2.conf 2>err
        assert_grep 'unknown preset "lightnig"; did you mean "lightning"?' err
}

# What getopt refuses is said as getopt would say it (ckptd prints it, so
# that a value is escaped): which option, and what is wrong with it.
test_refused_options_are_named() {
        assert_exit 2 "$CKPTD" -l --json=3 2>err
        assert_grep "^ckptd: option '--json' takes no argument$" err
        assert_exit 2 "$CKPTD" -l --jso=3 2>err
        assert_grep "^ckptd: option '--jso' takes no argument$" err
        # an unknown letter after a long option that took a value
        assert_exit 2 "$CKPTD" --config=/nonexistent -x1 2>err
        assert_grep "^ckptd: invalid option -- 'x'$" err
        assert_exit 2 "$CKPTD" -t -c 2>err
        assert_grep "^ckptd: option '-c' needs an argument$" err
        assert_exit 2 "$CKPTD" -t --config 2>err
        assert_grep "^ckptd: option '--config' needs an argument$" err
        assert_exit 2 "$CKPTD" -l --keep 2 2>err
        assert_grep "^ckptd: unrecognized or ambiguous option '--keep'$" err
        assert_grep "^Try 'ckptd --help'.$" err
}

test_units_and_aliases_are_accepted() {
        mkdir runs
        "$CKPTD" -t -w "$T/runs" --preset lightning --settle 2s --min-age 1h --log-level warn >out 2>err ||
                fail "rejected: $(cat err)"
        assert_grep "^log_level warning," out
        assert_grep "settle  *2s" out
        assert_grep "younger than 3600s" out
        "$CKPTD" -t -w "$T/runs" --preset lightning --settle 500ms >out || fail "500ms rejected"
        assert_grep "settle  *0.5s" out
        assert_exit 2 "$CKPTD" -t -w "$T/runs" --preset lightning --settle 2x 2>err
        assert_grep "^ckptd: --settle: invalid duration '2x' (seconds, or a number with ms, s, min, h or d" err
        # the -w flags share the config file's ranges
        assert_exit 2 "$CKPTD" -t -w "$T/runs" --preset lightning --keep-top-k 2000000 2>err
        assert_grep "keep_top_k: must be an integer from -1 to 1000000" err
}

test_min_free_without_unit_warns() {
        mkdir runs
        "$CKPTD" -t -w "$T/runs" --preset lightning --min-free 10 >out 2>err || fail "rejected: $(cat err)"
        assert_grep "^ckptd: warning: --min-free 10 is 10B, less than 1M: did you mean 10G?" err
        assert_grep "min_free 10B (less than 1M: probably a unit left out" out
        "$CKPTD" -t -w "$T/runs" --preset lightning --min-free 10G >out 2>err
        assert_no_grep warning err
        assert_grep "min_free 10G$" out
}

test_missing_config_hints_at_watch() {
        assert_exit 1 "$CKPTD" -l -c "$T/none.conf" 2>err
        assert_grep "cannot open" err
        assert_grep "^ckptd: no config file; check the path given with -c, or name a directory with -w DIR" err
        assert_grep "(e.g. ckptd -l -w ./checkpoints" err
        CKPTD_CONFIG=$T/none.conf assert_exit 1 "$CKPTD" -t 2>err
        assert_grep "^ckptd: no config file; give one with -c FILE, or name a directory with -w DIR" err
        # with --log-format json, the hint is a JSON object as well
        assert_exit 1 "$CKPTD" -1 -c "$T/none.conf" --log-format json --log-target stderr 2>err
        /usr/bin/python3 -c 'import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
assert len(lines) == 2 and "no config file; check the path" in lines[1]["MESSAGE"], lines' err ||
                fail "not one JSON object a line: $(cat err)"
}

# The integer flags read what the config file reads: decimal or 0x
# hexadecimal, a leading zero still decimal, with the same ranges.
test_integer_flags_take_hex_as_the_config_does() {
        mkdir runs
        printf 'watch = ( { path = "%s"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 0x2;
                    keep_last = 010; keep_every = 0X10; } );\nmax_delete_per_sweep = 0x10;\n' "$T/runs" >c.conf
        "$CKPTD" -t -c c.conf >conf.out 2>err || fail "config rejected: $(cat err)"
        "$CKPTD" -t -w "$T/runs" --preset lightning --monitor val_loss --keep-top-k 0x2 --keep-last 010 \
                --keep-every 0X10 --max-delete 0x10 --lock-wait 0x1 >out 2>err || fail "rejected: $(cat err)"
        assert_grep "^log_level info, check_interval 30s, max_delete_per_sweep 16$" out
        assert_grep "^  keep  *best 2 by val_loss + last 10 + every 16 + pinned$" out
        [ "$(grep -E "max_delete|keep " out)" = "$(grep -E "max_delete|keep " conf.out)" ] ||
                fail "flags and config differ: $(cat out conf.out)"
        for v in 0x 0xg 0x1.5 -0x1 0x10k; do
                assert_exit 2 "$CKPTD" -t -w "$T/runs" --preset lightning --keep-last "$v" 2>err
                assert_grep "^ckptd: --keep-last: invalid value '$v' (an integer, decimal or hexadecimal: 16, 0x10)$" err
        done
        assert_exit 2 "$CKPTD" -t -w "$T/runs" --preset lightning --keep-top-k 0xF4241 2>err
        assert_grep "keep_top_k: must be an integer from -1 to 1000000, got 1000001" err
        assert_exit 2 "$CKPTD" -t -w "$T/runs" --preset lightning --max-delete 0x0 2>err
        assert_grep "max_delete_per_sweep: must be an integer from 1 to" err
}

# An empty --monitor (an unset variable in --monitor "$M") is a usage
# error: taken as "no monitor", best kept nothing and every checkpoint but
# the newest went, the best among them.
test_empty_monitor_is_refused() {
        local n
        mkdir runs
        for n in 'epoch=0-val_loss=0.9' 'epoch=1-val_loss=0.1' 'epoch=2-val_loss=0.5'; do mkfile "runs/$n.ckpt" 1; done
        assert_exit 2 "$CKPTD" -1 -w "$T/runs" --preset lightning --monitor '' --keep-top-k 3 --keep-last 1 2>err
        assert_grep "^ckptd: --monitor: an empty name" err
        assert_exit 2 "$CKPTD" -t -w "$T/runs" --preset lightning --monitor '' --keep-top-k 3 2>err
        assert_names runs 'epoch=0-val_loss=0.9.ckpt' 'epoch=1-val_loss=0.1.ckpt' 'epoch=2-val_loss=0.5.ckpt'
}

# An empty -w (an unset variable in -w "$DIR") is a usage error, not the
# current directory.
test_empty_watch_is_refused() {
        mkdir runs
        printf a >runs/step_1.pt
        printf b >runs/step_2.pt
        (cd runs && assert_exit 2 "$CKPTD" -1 -w '' --pattern 'step_{step}.pt' --keep-last 1 2>"$T/err")
        assert_grep "^ckptd: --watch: an empty path" err
        assert_names runs step_1.pt step_2.pt
}

# --max-delete raises a config file's cap for a one-shot sweep (the way to
# clear a backlog ckptd.conf(5) gives); a daemon takes it from the file.
test_max_delete_with_a_config_file() {
        mkdir runs
        for s in 1 2 3 4 5; do printf x >"runs/step_$s.pt"; done
        cat >c.conf <<EOC
max_delete_per_sweep = 1;
watch = ( { path = "$T/runs"; pattern = "step_{step}.pt"; keep_top_k = 0; keep_last = 1; settle = 0; } );
EOC
        "$CKPTD" -t -c c.conf --max-delete 10 >out
        assert_grep "max_delete_per_sweep *10" out
        "$CKPTD" -1 -c c.conf --max-delete 10 2>err || fail "-1 failed: $(cat err)"
        assert_names runs step_5.pt
        assert_exit 2 "$CKPTD" -c c.conf --max-delete 10 2>err
        assert_grep "^ckptd: --max-delete with a config file goes with -1, -l or -t" err
}

test_missing_watch_directory_is_named() {
        start_daemon d.log -w "$T/later" --preset lightning --log-target stderr
        assert_grep "^ckptd: $T/later does not exist (yet); watching for it to be created$" d.log
        stop_daemon d.log
}

# A watch path that is a file (named by mistake, or a mount point's stub)
# is said to be one, and a directory that takes its place is watched.
test_watch_path_that_is_a_file_is_named() {
        printf x >later
        start_daemon d.log -w "$T/later" --preset lightning --keep-last 1 --settle 0 --log-target stderr
        assert_grep "^ckptd: warning: $T/later is not a directory; watching for a directory to take its place$" d.log
        rm later
        mkdir later
        mkfile "later/epoch=0-step=1.ckpt" 1
        mkfile "later/epoch=1-step=2.ckpt" 1
        wait_names later "epoch=1-step=2.ckpt"
        [ "$(grep -c "is not a directory" d.log)" = 1 ] || fail "said more than once: $(cat d.log)"
        stop_daemon d.log
}

# A config's watch path that is a symlink is never followed (-w resolves
# its argument once at start): -t and -1 fail naming the directory to
# write instead, and the daemon warns once and waits for a directory.
test_watch_path_that_is_a_symlink_is_named() {
        mkdir -p real/run
        mkfile "real/run/epoch=0-step=1.ckpt" 1
        mkfile "real/run/epoch=1-step=2.ckpt" 1
        ln -s "$T/real" link
        cat >c.conf <<EOC
watch = ( { path = "$T/link"; preset = "lightning"; keep_last = 1; settle = 0; } );
EOC
        msg="$T/link is a symlink to $T/real: a watch path is never followed; name the directory itself: $T/real"
        assert_exit 1 "$CKPTD" -t -c c.conf >out 2>err
        assert_grep "^ckptd: error: $msg$" err
        assert_exit 1 "$CKPTD" -1 -c c.conf 2>err
        assert_grep "cannot open watch root: $msg" err
        start_daemon d.log -c c.conf --log-target stderr
        assert_grep "^ckptd: warning: $msg; watching for a directory to take its place$" d.log
        # status says why it is not watched, not that it is missing
        wait_for 10 eval '"$CKPTD" status 2>/dev/null | grep -q "watch: *$T/link: A SYMLINK, not followed"' ||
                fail "status: $("$CKPTD" status 2>&1)"
        "$CKPTD" status | grep -q "status: .*$T/link is a symlink, not followed" || fail "STATUS=: $("$CKPTD" status)"
        "$CKPTD" status --json | grep -Eq '"symlink": ?true' || fail "status --json: $("$CKPTD" status --json)"
        stop_daemon d.log
        assert_names real/run "epoch=0-step=1.ckpt" "epoch=1-step=2.ckpt"
}

# ckptd reload takes a pid as plain decimal digits: one that wraps to a
# running daemon's pid, or is followed by anything, is a usage error and
# signals no one.
test_reload_refuses_an_invalid_pid() {
        mkdir rt w
        export RUNTIME_DIRECTORY=$T/rt
        start_daemon d.log -w "$T/w" --preset lightning
        wait_for 10 test -e "rt/state-$DPID.json" || fail "no state file: $(ls rt)"
        for pid in $((DPID + 4294967296)) "${DPID}junk" "$DPID.0" "+$DPID" " $DPID" 0 -1 abc ""; do
                assert_exit 2 "$CKPTD" reload "$pid" 2>err
                assert_grep "^ckptd reload: invalid pid '$pid'$" err
                assert_grep "^Usage: ckptd reload \[PID\]$" err
        done
        assert_exit 2 "$CKPTD" reload "$DPID" "$DPID" 2>err
        # none of them reached the daemon
        "$CKPTD" status --json >st.json
        $PY -c 'import json, sys; d = json.load(open(sys.argv[1]))["daemons"][0]
assert d["reload"]["count"] == 0, d["reload"]' st.json || fail "the daemon was reloaded: $(cat st.json)"
        assert_exit 1 "$CKPTD" reload "$DPID" 2>err
        assert_grep "^ckptd reload: rejected: " err
        stop_daemon d.log
}

run_tests
