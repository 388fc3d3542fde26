#!/usr/bin/env bash
# Metric files are written by whoever owns the run and read by root: how much
# memory a scan takes must not depend on what they hold, and an unchanged
# file is read once, not on every sweep.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

# hf_ckpt DIR STEP LOSS: a HF checkpoint directory with its trainer_state.json.
hf_ckpt() {
        mkdir -p "$1/checkpoint-$2"
        printf '{"best_model_checkpoint": "out/checkpoint-100", "log_history": [{"eval_loss": %s, "step": %s}]}\n' \
                "$3" "$2" >"$1/checkpoint-$2/trainer_state.json"
        printf x >"$1/checkpoint-$2/model.safetensors"
}

# A 9.9 MB trainer_state.json of "{}," took 2.5 GB in one scan. Now the
# whole one-shot stays small (the file, one bounded piece at a time) and
# decides as before.
test_hostile_trainer_state_costs_little_memory() {
        [ -x /usr/bin/time ] || skip "no /usr/bin/time"
        hf_ckpt runs/a 100 0.5
        hf_ckpt runs/a 200 0.7
        hf_ckpt runs/a 300 0.9
        $PY -c 'import sys; open(sys.argv[1], "w").write("{\"log_history\": [" + "{}," * 3300000 + "{}]}")' \
                runs/a/checkpoint-200/trainer_state.json
        find runs -mindepth 1 -exec touch -d "-1 hour" {} +
        local limit_kib=200000 rss
        # ASan keeps up to 256 MB of freed memory in quarantine
        case $CKPTD in */san/*) limit_kib=800000 ;; esac
        /usr/bin/time -f '%M' -o rss "$CKPTD" -1 -w "$T/runs" --preset huggingface --monitor eval_loss \
                --keep-top-k 1 --keep-last 1 2>err || fail "-1 failed: $(cat err)"
        rss=$(tail -n1 rss)
        echo "peak RSS ${rss} KiB"
        [ "$rss" -lt "$limit_kib" ] || fail "peak RSS ${rss} KiB, over ${limit_kib} KiB"
        # best (checkpoint-100) and last (checkpoint-300) stay
        assert_names runs/a checkpoint-100 checkpoint-300
}

# The daemon rescans every second (poll_interval = 1); each rescan opens the
# trainer_state.json files, but reads them only the first time.
test_unchanged_trainer_state_is_read_once() {
        command -v strace >/dev/null || skip "no strace"
        local s
        for s in 100 200 300; do hf_ckpt "$T/root/run" "$s" "0.$s"; done
        find root -mindepth 1 -exec touch -d "-1 hour" {} +
        cat >c.conf <<EOC
log_level = "debug";
watch = ( { path = "$T/root"; preset = "huggingface"; monitor = "eval_loss"; keep_top_k = 3; keep_last = 1;
            poll_interval = 1; } );
EOC
        strace -f -y -e trace=openat,openat2,read -o "$T/trace" "$CKPTD" -c "$T/c.conf" 2>d.log &
        echo $! >>"$T/pids"
        opens() { grep -c 'openat2\?(.*trainer_state.json.* = [0-9]' "$T/trace" || true; }
        wait_for 30 eval '[ "$(opens)" -ge 15 ]' || fail "fewer than 5 scans in 30 s: $(opens) opens; $(tail d.log)"
        pkill -TERM -P $! 2>/dev/null || true
        kill -TERM $! 2>/dev/null || true
        local reads
        reads=$(grep -c 'read([0-9]*<[^>]*trainer_state.json>' "$T/trace" || true)
        echo "$(opens) opens, $reads reads of trainer_state.json" >&2
        # one read of the data and one of EOF per file, the first time only
        [ "$reads" -le 6 ] || fail "$reads reads of trainer_state.json over $(opens) opens"
        assert_names root/run checkpoint-100 checkpoint-200 checkpoint-300
}

run_tests
