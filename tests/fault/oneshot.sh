#!/usr/bin/env bash
# Fault injection into `ckptd -1`: one run without a fault gives what ckptd
# keeps and how often it calls each function; then every call site (each Nth
# call of each function) fails in turn, on a fresh copy of the tree, and
# nothing the fault-free run keeps may be gone, ckptd may not crash or leak an
# fd, and whatever it keeps because of the fault is logged with the error.
#
# Trees cover every preset and pin kind. By default each call site fails with
# one of EIO EACCES EROFS ENOMEM EINTR EMFILE in turn, and a function called
# more than FAULT_CAP (16) times in a tree is failed at 16 of its calls spread
# from the first to the last; FAULT_ALL=1 (or CKPTD_LONG=1) fails every call
# with every errno, ENOENT too, plus lasting EIO/EACCES. One case, verbose:
#   FAULT_ONLY=read:1:EIO ONLY=test_deepspeed CKPTD=build/ckptd bash tests/fault/oneshot.sh
. "$(dirname "$0")/lib.bash"

# FAULT_STRIDE=K runs every Kth call site only; the sanitized ckptd of
# `make check SANITIZE=1` is several times slower, so there it is 4.
case $CKPTD in */san/*) : "${FAULT_STRIDE:=4}" ;; esac
FAULT_STRIDE=${FAULT_STRIDE:-1}

f() { mkdir -p "$(dirname "$1")" && printf '%s\n' "${2:-x}" >"$1"; }

# fault_oneshot ARGS...: $T/pristine is the tree, copied to $T/work for every
# run; ARGS are ckptd's arguments after -1 (paths under $T/work). LOCK, if
# set, is a path below work that another process holds a BSD flock on.
fault_oneshot() {
        local args=("$@") name=${FUNCNAME[1]#test_}
        need_shim
        old_tree "$T/pristine"
        fault_case "" 0 "" || true
        [ "$rc" = 0 ] || fail "the run without a fault exits $rc: $(cat "$T/err")"
        tree_names "$T/work" >"$T/r0"
        cp "$T/fds" "$T/fds0"
        cp "$T/count" "$T/count0"
        local deleted
        deleted=$(LC_ALL=C comm -23 <(tree_names "$T/pristine") "$T/r0" | tops | wc -l)
        [ "$deleted" -gt 0 ] || fail "the run without a fault deletes nothing: $(cat "$T/err")"
        echo "$name: without a fault $deleted deleted; calls: $(tr '\n' ' ' <"$T/count0")"
        if [ -n "${FAULT_ONLY:-}" ]; then
                local spec
                IFS=: read -r -a spec <<<"$FAULT_ONLY"
                fault_case "${spec[@]}" || true
                {
                        echo "exit $rc; fault: $(cat "$T/fired" 2>/dev/null)"
                        echo "stderr:"
                        sed 's/^/  | /' "$T/err"
                        echo "gone: $(LC_ALL=C comm -23 "$T/r0" <(tree_names "$T/work") | tops | tr '\n' ' ')"
                        echo "kept beyond the reference: $(LC_ALL=C comm -13 "$T/r0" <(tree_names "$T/work") | tops | tr '\n' ' ')"
                } | tee -a "$FAULT_TOTALS"
                fault_judge "${spec[@]}" "$rc" "" || true
                fault_report "$name"
                return
        fi
        local fn count n e cap=${FAULT_CAP:-16}
        fault_long && cap=${FAULT_CAP:-0}
        while read -r fn count; do
                F_SITES=$((F_SITES + count))
                for n in $(fault_spread "$count" "$cap"); do
                        (((n + ${#fn}) % FAULT_STRIDE == 0)) || continue
                        for e in $(fault_pick "$fn" "$n"); do
                                fault_case "$fn" "$n" "$e" || true
                                fault_judge "$fn" "$n" "$e" "$rc" \
                                        "FAULT_ONLY=$fn:$n:$e ONLY=test_$name CKPTD=$CKPTD bash $0" || true
                        done
                done
        done <"$T/count0"
        fault_report "$name"
}

# fault_case FUNC N ERRNO: one run on a fresh copy; sets rc. ERRNO+ fails
# every call from the Nth on.
fault_case() {
        local e=${3%+} cmd
        rm -rf "$T/work" "$T/fired" "$T/fds" "$T/count"
        cp -a "$T/pristine" "$T/work"
        cmd=(timeout -s KILL 60 env LD_PRELOAD="$FAULT_SO" FAULT_FDS="$T/fds" FAULT_LOG="$T/fired"
                FAULT_COUNT="$T/count" FAULT_CALL="$1" FAULT_NTH="$2" FAULT_ERRNO="$e")
        [ "$3" = "$e" ] || cmd+=(FAULT_REPEAT=1)
        cmd+=("$CKPTD" -1 "${args[@]}")
        [ -z "${LOCK:-}" ] || cmd=(flock -o "$T/work/$LOCK" "${cmd[@]}")
        rc=0
        "${cmd[@]}" </dev/null >/dev/null 2>"$T/err" || rc=$?
}

# Lightning: key=value names in two version directories (recursive), the
# last.ckpt symlink, a .keep file and a flock pin.
test_lightning() {
        local d=pristine/lightning_logs/version_0/checkpoints l=(0.9 0.5 0.7 0.3 0.8 0.6 0.65 0.55)
        for e in 0 1 2 3 4 5 6 7; do
                f "$d/epoch=$e-step=$(((e + 1) * 50))-val_loss=${l[$e]}.ckpt"
        done
        ln -s "epoch=2-step=150-val_loss=0.7.ckpt" "$d/last.ckpt"
        touch "$d/epoch=4-step=250-val_loss=0.8.ckpt.keep"
        d=pristine/lightning_logs/version_1/checkpoints
        f "$d/epoch=0-step=10-val_loss=0.4.ckpt"
        f "$d/epoch=1-step=20-val_loss=0.2.ckpt"
        f "$d/epoch=2-step=30-val_loss=0.3.ckpt"
        f pristine/lightning_logs/version_0/metrics.csv "epoch,step,val_loss"
        LOCK="lightning_logs/version_0/checkpoints/epoch=0-step=50-val_loss=0.9.ckpt"
        fault_oneshot -w "$T/work" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1
}

# HuggingFace: checkpoint-N dirs, eval_loss in log_history, the newest
# trainer_state.json's best_model_checkpoint, a newer dir without the marker.
hf_ckpt() { # step eval_loss best
        local d=pristine/checkpoint-$1
        f "$d/model.safetensors"
        f "$d/optimizer.pt"
        f "$d/trainer_state.json" "{ \"best_metric\": null, \"best_model_checkpoint\": \"out/$3\",
  \"global_step\": $1, \"log_history\": [ {\"loss\": 1.0, \"step\": $1},
  {\"eval_loss\": $2, \"step\": $1} ] }"
}

test_huggingface() {
        hf_ckpt 500 0.9 checkpoint-500
        hf_ckpt 1000 0.4 checkpoint-1000
        hf_ckpt 1500 0.6 checkpoint-1000
        hf_ckpt 2000 0.5 checkpoint-1000
        hf_ckpt 2500 0.7 checkpoint-1000
        hf_ckpt 3000 NaN checkpoint-2500
        f pristine/checkpoint-3500/model.safetensors
        fault_oneshot -w "$T/work" --preset huggingface --monitor eval_loss --keep-top-k 1 --keep-last 1
}

# DeepSpeed: global_stepN and the `latest` pointer.
test_deepspeed() {
        for s in 1 2 3 4 5; do
                f "pristine/global_step$s/mp_rank_00_model_states.pt"
                f "pristine/global_step$s/zero_pp_rank_0_mp_rank_00_optim_states.pt"
        done
        printf global_step2 >pristine/latest
        f pristine/zero_to_fp32.py
        fault_oneshot -w "$T/work" --preset deepspeed --keep-last 1
}

# Megatron: iter_N and latest_checkpointed_iteration.txt (an order value).
test_megatron() {
        for s in 0000100 0000200 0000300 0000400 0000500; do
                f "pristine/iter_$s/mp_rank_00/model_optim_rng.pt"
        done
        echo 200 >pristine/latest_checkpointed_iteration.txt
        fault_oneshot -w "$T/work" --preset megatron --keep-last 1
}

# Orbax: N dirs, metrics/metrics JSON, commit_success.txt in some, a tmp dir.
test_orbax() {
        local v=([1000]=0.5 [2000]=0.2 [3000]=0.4 [4000]=0.3 [5000]=0.6) s
        for s in 1000 2000 3000 4000 5000; do
                f "pristine/$s/default/checkpoint"
                f "pristine/$s/metrics/metrics" "{\"val_loss\": ${v[$s]}}"
        done
        touch pristine/2000/commit_success.txt pristine/4000/commit_success.txt
        f pristine/6000.orbax-checkpoint-tmp-1700000000/x
        fault_oneshot -w "$T/work" --preset orbax --monitor val_loss --keep-top-k 1 --keep-last 1
}

# NeMo: key=value names with a double dash, -last copies, -unfinished markers.
test_nemo() {
        local n=megatron_gpt v
        for v in "2.50 100" "2.10 200" "2.30 300" "2.20 400" "2.40 450"; do
                set -- $v
                f "pristine/$n--val_loss=$1-step=$2-consumed_samples=$(($2 * 8)).0.ckpt"
        done
        f "pristine/$n--val_loss=2.40-step=450-consumed_samples=3600.0-last.ckpt"
        f "pristine/$n--val_loss=9.99-step=500-consumed_samples=4000.0.ckpt"
        touch "pristine/$n--val_loss=9.99-step=500-consumed_samples=4000.0-unfinished"
        f "pristine/$n.nemo"
        fault_oneshot -w "$T/work" --preset nemo --monitor val_loss --keep-top-k 1 --keep-last 1
}

# torch.distributed.checkpoint: step-N with .metadata; one without is
# incomplete; keep_every.
test_dcp() {
        for s in 10 20 30 40 50 60; do
                f "pristine/step-$s/__0_0.distcp"
                [ "$s" = 60 ] || touch "pristine/step-$s/.metadata"
        done
        fault_oneshot -w "$T/work" --preset dcp --keep-last 1 --keep-every 20
}

# generic, from a config file: a pattern with a metric and a .keep pin and a
# pointer file, multi-file groups, and directories with a metric_file and a
# complete_marker.
test_generic_config() {
        local s
        for s in 1 2 3 4 5 6; do
                f "pristine/files/model_step${s}_loss0.$((9 - s % 4)).pt"
        done
        touch pristine/files/model_step2_loss0.7.pt.keep
        echo model_step5_loss0.8.pt >pristine/files/BEST
        for s in 1 2 3 4 5; do
                f "pristine/groups/ckpt-$s.index"
                f "pristine/groups/ckpt-$s.data-00000-of-00001"
        done
        for s in 1 2 3 4 5; do
                f "pristine/dirs/run_$s/weights.bin"
                f "pristine/dirs/run_$s/eval.json" "{\"acc\": 0.$(((s * 3) % 5))}"
                [ "$s" = 5 ] || touch "pristine/dirs/run_$s/DONE"
        done
        cat >c.conf <<EOC
watch = (
  { path = "$T/work/files"; preset = "generic"; pattern = "model_step{step}_loss{loss}.pt";
    monitor = "loss"; keep_top_k = 1; keep_last = 1; pointer_files = [ "BEST" ]; },
  { path = "$T/work/groups"; preset = "generic"; pattern = "ckpt-{step}.*"; keep_last = 1;
    keep_every = 2; },
  { path = "$T/work/dirs"; preset = "generic"; pattern = "run_{step}"; kind = "dir";
    metric_file = "eval.json"; complete_marker = "DONE"; monitor = "acc"; mode = "max";
    keep_top_k = 1; keep_last = 1; } );
EOC
        fault_oneshot -c "$T/c.conf"
}

FAULT_TOTALS=$(mktemp)
run_tests
cat "$FAULT_TOTALS"
rm -f "$FAULT_TOTALS"
