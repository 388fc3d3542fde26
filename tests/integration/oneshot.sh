#!/usr/bin/env bash
# ckptd -1 / -n / -l / -t on real directories.
. "$(dirname "$0")/../lib.sh"

LOSSES=(0.9 0.7 0.5 0.55 0.45 0.6 0.48 0.52 0.65 0.58)

# lightning_run DIR: ten epochs named as ModelCheckpoint names them, written an
# hour ago (so they are long settled), and Lightning's own last.ckpt.
lightning_run() {
        mkdir -p "$1"
        for e in "${!LOSSES[@]}"; do
                f="$1/epoch=$e-step=$(((e + 1) * 100))-val_loss=${LOSSES[$e]}.ckpt"
                mkfile "$f" 4
                touch -d "-1 hour" "$f"
        done
        mkfile "$1/last.ckpt" 4
}

# The three lowest losses (epochs 4, 6, 2) and the newest (epoch 9).
LIGHTNING_KEPT=(epoch=2-step=300-val_loss=0.5.ckpt epoch=4-step=500-val_loss=0.45.ckpt
        epoch=6-step=700-val_loss=0.48.ckpt epoch=9-step=1000-val_loss=0.58.ckpt last.ckpt)

LFLAGS=(--preset lightning --monitor val_loss --keep-top-k 3 --keep-last 1)

test_lightning_once_keeps_best_three_and_newest() {
        lightning_run "$T/runs"
        "$CKPTD" -1 -w "$T/runs" "${LFLAGS[@]}" 2>err
        assert_names "$T/runs" "${LIGHTNING_KEPT[@]}"
        [ "$(grep -c '^ckptd: deleted /' err)" = 6 ] || fail "expected 6 deletions: $(cat err)"
        assert_grep "deleted $T/runs/epoch=0-step=100-val_loss=0.9.ckpt (policy, val_loss=0.9" err
}

test_dry_run_deletes_nothing_and_says_why() {
        lightning_run "$T/runs"
        before=$(ls_names "$T/runs")
        "$CKPTD" -1 -n -w "$T/runs" "${LFLAGS[@]}" 2>err
        [ "$(ls_names "$T/runs")" = "$before" ] || fail "dry run removed files"
        [ "$(grep -c 'would delete .* (policy, ' err)" = 6 ] || fail "expected 6 would-deletes: $(cat err)"
        assert_grep "would delete $T/runs/epoch=1-step=200-val_loss=0.7.ckpt (policy" err
}

test_config_file_same_result_and_t_prints_policy() {
        lightning_run "$T/runs"
        cat >ckptd.conf <<EOC
watch = ( { path = "$T/runs"; preset = "lightning"; monitor = "val_loss";
            mode = "min"; keep_top_k = 3; keep_last = 1; } );
EOC
        "$CKPTD" -t -c ckptd.conf >out
        assert_grep "watch $T/runs" out
        assert_grep "best 3 by val_loss" out
        assert_grep "last 1" out
        "$CKPTD" -1 -c ckptd.conf 2>err
        assert_names "$T/runs" "${LIGHTNING_KEPT[@]}"
        # -t also reads the disk, which -1 changed: compare after it
        "$CKPTD" -t -c ckptd.conf >out
        CKPTD_CONFIG=ckptd.conf "$CKPTD" -t >out2
        cmp -s out out2 || fail "CKPTD_CONFIG not honoured"
}

# bad_config NAME LINE MESSAGE CONTENT: -t and -1 exit 1 with FILE:LINE: MESSAGE.
bad_config() {
        printf '%s\n' "$4" >"$1.conf"
        for mode in -t -1; do
                rc=0
                "$CKPTD" "$mode" -c "$1.conf" 2>err || rc=$?
                [ "$rc" = 1 ] || fail "$1: $mode exited $rc, expected 1"
                assert_grep "^$1.conf:$2: .*$3" err
        done
}

test_bad_configs_name_file_and_line() {
        mkdir runs
        bad_config unknown 3 "unknown" "watch = (
  { path = \"$T/runs\"; pattern = \"step_{step}.pt\";
    keep_topk = 3; } );"
        bad_config type 2 "keep_top_k" "watch = (
  { path = \"$T/runs\"; pattern = \"step_{step}.pt\"; keep_top_k = \"3\"; } );"
        bad_config relative 2 "absolute" "watch = (
  { path = \"runs\"; pattern = \"step_{step}.pt\"; } );"
        bad_config nothing 2 "keep" "watch = (
  { path = \"$T/runs\"; pattern = \"step_{step}.pt\"; keep_top_k = 0; keep_last = 0; keep_every = 0; } );"
        bad_config syntax 2 "" "watch = (
  { path = \"$T/runs\"; pattern = ; } );"
        bad_config monitor 2 "val_loss" "watch = (
  { path = \"$T/runs\"; pattern = \"step_{step}.pt\"; monitor = \"val_loss\"; } );"
}

test_usage_errors_exit_2() {
        assert_exit 2 "$CKPTD" --no-such-flag
        assert_exit 2 "$CKPTD" -1 --monitor val_loss
        assert_exit 2 "$CKPTD" -1 -w "$T" --preset lightning --keep-top-k many
        assert_exit 0 "$CKPTD" --help
        "$CKPTD" -V | grep -q '^ckptd [0-9]' || fail "no version"
        assert_exit 1 "$CKPTD" -t -c "$T/missing.conf"
}

test_nested_runs_are_ranked_each_on_their_own() {
        lightning_run "$T/root/a"
        lightning_run "$T/root/team/b"
        "$CKPTD" -1 -w "$T/root" "${LFLAGS[@]}" 2>err
        assert_names "$T/root/a" "${LIGHTNING_KEPT[@]}"
        assert_names "$T/root/team/b" "${LIGHTNING_KEPT[@]}"
        "$CKPTD" -1 -w "$T/root" "${LFLAGS[@]}" --keep-top-k 1 --no-recursive 2>err
        assert_names "$T/root/a" "${LIGHTNING_KEPT[@]}"
}

# Directory checkpoints with shards; the newest two are kept by keep_last 2.
test_directory_checkpoints() {
        mkdir runs
        for s in 100 200 300 400; do
                mkdir -p "runs/step-$s/sub"
                for i in 0 1 2; do mkfile "runs/step-$s/shard-$i.bin" 8; done
                mkfile "runs/step-$s/sub/extra" 1
                touch -d "-1 hour" runs/step-$s runs/step-$s/* runs/step-$s/sub/*
        done
        "$CKPTD" -1 -w "$T/runs" --pattern 'step-{step}' --keep-last 2 2>err
        assert_names runs step-300 step-400
        assert_grep "deleted $T/runs/step-100 (policy" err
}

test_pins_of_every_kind_keep_checkpoints() {
        mkdir runs
        for s in 1 2 3 4 5 6 7; do mkfile "runs/ckpt_$s.pt" 4; done
        touch -d "-1 hour" runs/*
        touch runs/ckpt_1.pt.keep                    # .keep beside it
        ln -s ckpt_2.pt runs/best.pt                 # a symlink in the run
        echo ckpt_3.pt >runs/latest                  # a pointer file by name
        echo 4 >runs/latest_iteration.txt            # a pointer file by order value
        flock runs/ckpt_5.pt sleep 600 &             # another process holds a flock
        echo $! >>"$T/pids"
        wait_for 10 sh -c "! flock -n runs/ckpt_5.pt true"
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "ckpt_{step}.pt"; keep_top_k = 0; keep_last = 1;
            pointer_files = [ "latest", "latest_iteration.txt" ]; } );
EOC
        "$CKPTD" -1 -c c.conf 2>err
        assert_names runs best.pt ckpt_1.pt ckpt_1.pt.keep ckpt_2.pt ckpt_3.pt ckpt_4.pt ckpt_5.pt \
                ckpt_7.pt latest latest_iteration.txt
        "$CKPTD" -l -c c.conf >list
        grep 'ckpt_5.pt' list | grep -q 'flock' || fail "flock pin not listed: $(cat list)"
        grep 'ckpt_2.pt' list | grep -q 'symlink' || fail "symlink pin not listed"
}

test_odd_names_are_handled_and_escaped() {
        mkdir runs
        long=$(printf 'x%.0s' $(seq 1 240))
        names=("step_1 with space.pt" $'step_2\nnewline.pt' $'step_3\xff\xfe.pt' "step_4_$long.pt" "step_5.pt")
        for n in "${names[@]}"; do mkfile "runs/$n" 1; done
        touch -d "-1 hour" runs/*
        "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}*.pt' --keep-last 1 2>err
        assert_names runs step_5.pt
        assert_grep 'step_2\\nnewline.pt' err
        assert_grep 'step_3\\xff\\xfe.pt' err
        [ "$(wc -l <err)" -le 6 ] || fail "a name broke a log line: $(cat err)"
}

test_symlink_like_checkpoint_pointing_outside_is_untouched() {
        mkdir runs outside outside/dir
        mkfile outside/step_1.pt 4
        mkfile outside/dir/data 4
        ln -s "$T/outside/step_1.pt" runs/step_1.pt
        ln -s "$T/outside/dir" runs/step_2.pt
        for s in 3 4; do mkfile "runs/step_$s.pt" 1; done
        touch -h -d "-1 hour" runs/*
        "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 2>err
        assert_exists outside/step_1.pt
        assert_exists outside/dir/data
        assert_names runs step_1.pt step_2.pt step_4.pt
}

test_list_table_and_json() {
        lightning_run "$T/runs"
        "$CKPTD" -l -w "$T/runs" "${LFLAGS[@]}" >out
        grep 'epoch=4-step=500' out | grep -q 'keep.*best#1' || fail "no best#1: $(cat out)"
        grep 'epoch=9-step=1000' out | grep -q 'keep.*last' || fail "no last: $(cat out)"
        grep 'epoch=0-step=100' out | grep -q 'delete.*policy' || fail "no policy: $(cat out)"
        assert_grep "^filesystem of $T/runs: size .*, no floor" out
        "$CKPTD" -l -w "$T/runs" "${LFLAGS[@]}" --min-free 100% >out2
        assert_grep "^filesystem of $T/runs: .*floor .*: below the floor" out2
        "$CKPTD" -l --json -w "$T/runs" "${LFLAGS[@]}" >out.json
        $PY - out.json <<'EOP'
import json, sys
d = json.load(open(sys.argv[1]))
cks = d["watches"][0]["runs"][0]["checkpoints"]
keep = sorted(c["name"] for c in cks if c["verdict"] == "keep")
assert len(cks) == 10, len(cks)
assert keep == ["epoch=2-step=300-val_loss=0.5.ckpt", "epoch=4-step=500-val_loss=0.45.ckpt",
                "epoch=6-step=700-val_loss=0.48.ckpt", "epoch=9-step=1000-val_loss=0.58.ckpt"], keep
best = [c for c in cks if c["best_rank"] == 1][0]
assert best["fields"]["val_loss"] == 0.45 and "best" in best["reasons"], best
fs = d["filesystems"][0]
assert fs["size_bytes"] > 0 and fs["free_bytes"] <= fs["size_bytes"] and fs["floor"] is False, fs
EOP
        [ "$(ls "$T/runs" | wc -l)" = 11 ] || fail "-l deleted something"
}

test_grouped_files_form_one_checkpoint() {
        mkdir runs
        for s in 1 2 3; do
                mkfile "runs/ckpt-$s.index" 1
                mkfile "runs/ckpt-$s.data-00000-of-00001" 4
        done
        touch -d "-1 hour" runs/*
        "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt-{step}.*' --keep-last 1 2>err
        assert_names runs ckpt-3.data-00000-of-00001 ckpt-3.index
}

test_fresh_checkpoints_are_not_yet_complete() {
        mkdir runs
        for s in 1 2 3; do mkfile "runs/step_$s.pt" 1; done
        "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 --settle 600 2>err
        assert_names runs step_1.pt step_2.pt step_3.pt
        "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 --settle 0 2>err
        assert_names runs step_3.pt
}

test_deletion_cap_is_a_circuit_breaker() {
        mkdir runs
        for s in $(seq 1 30); do mkfile "runs/step_$s.pt" 1; done
        touch -d "-1 hour" runs/*
        cat >c.conf <<EOC
max_delete_per_sweep = 10;
watch = ( { path = "$T/runs"; pattern = "step_{step}.pt"; keep_last = 1; } );
EOC
        "$CKPTD" -1 -c c.conf 2>err
        [ "$(ls runs | wc -l)" = 20 ] || fail "cap not applied: $(ls runs | wc -l) left"
        assert_grep "cap" err
        "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 --max-delete 5 2>err
        [ "$(ls runs | wc -l)" = 15 ] || fail "--max-delete not applied: $(ls runs | wc -l) left"
}

test_readonly_watch_path_is_explained() {
        need_root
        mkdir ro
        mount -t tmpfs -o ro,size=1m tmpfs ro
        cat >c.conf <<EOC
watch = ( { path = "$T/ro"; pattern = "step_{step}.pt"; keep_last = 1; } );
EOC
        rc=0
        "$CKPTD" -t -c c.conf >out 2>err || rc=$?
        [ "$rc" = 1 ] || fail "-t exited $rc on a read-only watch path"
        assert_grep "read-only filesystem" err
        assert_grep "ReadWritePaths=$T/ro" err
        "$CKPTD" -1 -c c.conf 2>err1 || true
        assert_grep "$T/ro is on a read-only filesystem" err1
}

run_tests
