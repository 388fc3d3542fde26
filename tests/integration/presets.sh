#!/usr/bin/env bash
# The presets on the layouts the trainers really write, with ckptd -1.
. "$(dirname "$0")/../lib.sh"

old() { touch -h -d "-1 hour" "$@"; }

# HuggingFace Trainer: checkpoint-N/ directories, eval metrics in the
# trainer_state.json of each, best_model_checkpoint pinned.
hf_ckpt() { # step eval_loss best
        local d=out/checkpoint-$1
        mkdir -p "$d"
        mkfile "$d/model.safetensors" 8
        mkfile "$d/optimizer.pt" 4
        cat >"$d/trainer_state.json" <<EOJ
{ "best_metric": null, "best_model_checkpoint": "$3", "global_step": $1,
  "log_history": [ {"loss": 1.0, "step": $1}, {"eval_loss": $2, "step": $1} ] }
EOJ
        old "$d" "$d"/*
}

test_huggingface() {
        hf_ckpt 500 0.9 out/checkpoint-500
        hf_ckpt 1000 0.4 out/checkpoint-1000
        hf_ckpt 1500 0.6 out/checkpoint-1000
        hf_ckpt 2000 0.5 out/checkpoint-1000
        hf_ckpt 2500 0.7 out/checkpoint-1000
        hf_ckpt 3000 NaN out/checkpoint-1000
        "$CKPTD" -1 -w "$T/out" --preset huggingface --monitor eval_loss --keep-top-k 2 --keep-last 1 2>err
        # best two: 1000 (0.4, also best_model_checkpoint), 2000 (0.5); newest 3000
        assert_names out checkpoint-1000 checkpoint-2000 checkpoint-3000
        "$CKPTD" -l -w "$T/out" --preset huggingface --monitor eval_loss --keep-top-k 1 --keep-last 1 >list
        grep checkpoint-1000 list | grep -q 'hf-best' || fail "best_model_checkpoint not pinned: $(cat list)"
}

# A run resumed from an earlier checkpoint writes below the old run's last
# steps; its own trainer_state.json names the best it loads at the end
# (load_best_model_at_end), which the old run's newest-by-step does not:
# both are pinned.
test_huggingface_resumed_run_keeps_its_own_best() {
        hf_ckpt 100 0.5 out/checkpoint-100
        hf_ckpt 300 0.2 out/checkpoint-300
        hf_ckpt 500 0.6 out/checkpoint-300
        hf_ckpt 250 0.3 out/checkpoint-250 # resumed from 100
        hf_ckpt 400 0.4 out/checkpoint-250
        for s in 100:-5 300:-4 500:-3 250:-2 400:-1; do
                touch -d "${s#*:} hours" "out/checkpoint-${s%:*}"/* "out/checkpoint-${s%:*}"
        done
        "$CKPTD" -1 -w "$T/out" --preset huggingface --monitor eval_loss --keep-top-k 1 --keep-last 1 2>err ||
                fail "-1 failed: $(cat err)"
        # 300 best (and the old run's pinned best), 500 last, 400 newest
        # written, 250 the resumed run's pinned best
        assert_names out checkpoint-250 checkpoint-300 checkpoint-400 checkpoint-500
}

# A HF checkpoint still being written has no trainer_state.json yet and fresh
# files: it is not deleted even with keep_last 0.
test_huggingface_incomplete_is_kept() {
        hf_ckpt 500 0.9 out/checkpoint-500
        hf_ckpt 1000 0.4 out/checkpoint-1000
        mkdir out/checkpoint-1500
        mkfile out/checkpoint-1500/model.safetensors 8
        cat >c.conf <<EOC
watch = ( { path = "$T/out"; preset = "huggingface"; monitor = "eval_loss";
            keep_top_k = 1; keep_last = 0; settle = 60; } );
EOC
        "$CKPTD" -1 -c c.conf 2>err
        assert_names out checkpoint-1000 checkpoint-1500
}

# DeepSpeed: global_stepN/ directories and a `latest` file naming one.
test_deepspeed() {
        mkdir ds
        for s in 100 200 300 400; do
                mkdir "ds/global_step$s"
                mkfile "ds/global_step$s/mp_rank_00_model_states.pt" 4
                mkfile "ds/global_step$s/zero_pp_rank_0_mp_rank_00_optim_states.pt" 4
        done
        echo -n global_step200 >ds/latest
        mkfile ds/zero_to_fp32.py 1
        old ds/* ds/*/*
        "$CKPTD" -1 -w "$T/ds" --preset deepspeed --keep-last 1 2>err
        assert_names ds global_step200 global_step400 latest zero_to_fp32.py
}

# Megatron-LM: iter_0000100/ and latest_checkpointed_iteration.txt.
test_megatron() {
        mkdir mg
        for s in 0000100 0000200 0000300; do
                mkdir -p "mg/iter_$s/mp_rank_00"
                mkfile "mg/iter_$s/mp_rank_00/model_optim_rng.pt" 4
        done
        echo 100 >mg/latest_checkpointed_iteration.txt
        old mg/* mg/*/* mg/*/*/*
        "$CKPTD" -1 -w "$T/mg" --preset megatron --keep-last 1 2>err
        assert_names mg iter_0000100 iter_0000300 latest_checkpointed_iteration.txt
}

# Orbax: numbered step directories with metrics/metrics, temporary
# directories that are never checkpoints, renamed in when done.
test_orbax() {
        mkdir ox
        for s in 1000 2000 3000 4000; do
                mkdir -p "ox/$s/default" "ox/$s/metrics"
                mkfile "ox/$s/default/checkpoint" 4
                echo "{\"val_loss\": $((5000 - s))e-4}" >"ox/$s/metrics/metrics"
        done
        mkdir ox/5000.orbax-checkpoint-tmp-1700000000
        mkfile ox/5000.orbax-checkpoint-tmp-1700000000/x 4
        old ox/* ox/*/* ox/*/*/*
        "$CKPTD" -1 -w "$T/ox" --preset orbax --monitor val_loss --keep-top-k 1 --keep-last 1 2>err
        # lowest val_loss is step 4000 (also the newest): step 3000 goes too
        assert_names ox 4000 5000.orbax-checkpoint-tmp-1700000000
}

# orbax_step DIR STEP: an Orbax step directory as CheckpointManager
# commits it on a filesystem without atomic rename (GCS), an hour old.
orbax_step() {
        mkdir -p "$1/$2/default"
        mkfile "$1/$2/default/manifest.ocdbt" 2
        echo '{}' >"$1/$2/_CHECKPOINT_METADATA"
        touch "$1/$2/commit_success.txt"
        old "$1/$2"/* "$1/$2"/default/* "$1/$2"
}

# {step} takes any numbered directory: a SLURM job's or a Hydra sweep's
# numbered directories, holding runs of their own, are looked into, never
# deleted as checkpoints of the root.
test_orbax_numbered_job_directories_are_not_checkpoints() {
        local job s
        for job in 4711001 4711002 4711003; do
                for s in 1000 2000 3000; do
                        orbax_step "jobs/$job/checkpoints" $s
                done
                old "jobs/$job/checkpoints" "jobs/$job"
        done
        "$CKPTD" -1 -w "$T/jobs" --preset orbax --keep-last 1 2>err || fail "-1 failed: $(cat err)"
        assert_names jobs 4711001 4711002 4711003
        for job in 4711001 4711002 4711003; do
                assert_names "jobs/$job/checkpoints" 3000
        done
}

# commit_success.txt is not required (an atomic rename writes none), but
# where the run's others have it, a newer step without it is a save under
# way: it displaces nothing. An older one without it predates the marker.
test_orbax_step_without_the_commit_its_run_shows_is_kept() {
        local preset
        for preset in orbax auto; do
                orbax_step ox 100
                orbax_step ox 200
                orbax_step ox 300
                rm ox/300/commit_success.txt # still being written
                mkdir -p ox/50/default
                mkfile ox/50/default/manifest.ocdbt 2
                touch -d "-2 hours" ox/50/default/* ox/50/default ox/50
                "$CKPTD" -l -w "$T/ox" --preset $preset --keep-last 1 >out 2>err || fail "-l failed: $(cat err)"
                assert_grep "keep .*300/ *incomplete(no commit_success.txt)$" out
                "$CKPTD" -1 -w "$T/ox" --preset $preset --keep-last 1 2>err || fail "-1 failed: $(cat err)"
                assert_names ox 200 300
                touch ox/300/commit_success.txt
                "$CKPTD" -1 -w "$T/ox" --preset $preset --keep-last 1 --settle 0 2>err || fail "-1 failed: $(cat err)"
                assert_names ox 300
                rm -rf ox
        done
}

# A run copied from GCS (each step with commit_success.txt) and resumed on
# a local disk (an atomic rename, no marker): its local saves are no saves
# under way, and keep_last keeps the newest of them.
test_orbax_run_resumed_where_no_commit_is_written() {
        local s
        for s in 100 200 300 400 500 600 700; do
                orbax_step ox $s
        done
        for s in 400 500 600 700; do
                rm "ox/$s/commit_success.txt"
                old "ox/$s"
        done
        "$CKPTD" -1 -w "$T/ox" --preset orbax --keep-last 2 2>err || fail "-1 failed: $(cat err)"
        assert_names ox 600 700
}

# A Checkpointer saving into each step directory itself writes OCDBT's
# files there, with no step metadata (Orbax before 0.5): its run is Orbax's.
test_orbax_steps_holding_ocdbt_files_themselves() {
        local s
        for s in 1000 2000 3000; do
                mkdir -p "ox/$s/d"
                mkfile "ox/$s/_METADATA" 1
                mkfile "ox/$s/manifest.ocdbt" 1
                old "ox/$s"/* "ox/$s"
        done
        "$CKPTD" -1 -w "$T/ox" --preset orbax --keep-last 1 2>err || fail "-1 failed: $(cat err)"
        assert_names ox 3000
}

# NeMo: key=value names with a double dash, -last copies and -unfinished
# markers for checkpoints being written.
test_nemo() {
        mkdir nm
        n=megatron_gpt
        for v in "2.50 100" "2.10 200" "2.30 300" "2.20 400"; do
                set -- $v
                mkfile "nm/$n--val_loss=$1-step=$2-consumed_samples=$(($2 * 8)).0.ckpt" 4
        done
        mkfile "nm/$n--val_loss=2.20-step=400-consumed_samples=3200.0-last.ckpt" 4
        mkfile "nm/$n--val_loss=9.99-step=500-consumed_samples=4000.0.ckpt" 1
        touch "nm/$n--val_loss=9.99-step=500-consumed_samples=4000.0-unfinished"
        mkfile "nm/$n.nemo" 4
        old nm/*
        "$CKPTD" -1 -w "$T/nm" --preset nemo --monitor val_loss --keep-top-k 1 --keep-last 1 2>err
        assert_names nm "$n--val_loss=2.10-step=200-consumed_samples=1600.0.ckpt" \
                "$n--val_loss=2.20-step=400-consumed_samples=3200.0.ckpt" \
                "$n--val_loss=2.20-step=400-consumed_samples=3200.0-last.ckpt" \
                "$n--val_loss=9.99-step=500-consumed_samples=4000.0.ckpt" \
                "$n--val_loss=9.99-step=500-consumed_samples=4000.0-unfinished" "$n.nemo"
}

# NeMo with tensor (and pipeline) parallelism: each rank's file in
# mp_rank_NN/ (tp_rank_NN_pp_rank_NNN/), the -unfinished marker of the save
# beside those directories. A save that died with its marker there (rank
# 0's file cut short, rank 1's never written) is no checkpoint: it
# displaces nothing in any rank, and every rank keeps the same steps.
test_nemo_model_parallel_marker_beside_the_ranks() {
        local v d
        n=megatron_gpt
        local ranks="mp_rank_00 mp_rank_01 tp_rank_00_pp_rank_000 tp_rank_00_pp_rank_001"
        ranks+=" mp_rank_00_fsdp_shard_00001 fsdp_shard_00000"
        for d in $ranks; do
                mkdir -p "nm/$d"
                for v in "2.50 100" "2.30 200" "2.20 300" "2.40 400"; do
                        set -- $v
                        mkfile "nm/$d/$n--val_loss=$1-step=$2-consumed_samples=$(($2 * 8)).0.ckpt" 4
                done
        done
        mkfile "nm/mp_rank_00/$n--val_loss=2.10-step=500-consumed_samples=4000.0.ckpt" 1
        mkfile "nm/tp_rank_00_pp_rank_000/$n--val_loss=2.10-step=500-consumed_samples=4000.0.ckpt" 1
        mkfile "nm/fsdp_shard_00000/$n--val_loss=2.10-step=500-consumed_samples=4000.0.ckpt" 1
        touch "nm/$n--val_loss=2.10-step=500-consumed_samples=4000.0-unfinished"
        old nm/*/* nm/*
        assert_exit 0 "$CKPTD" -1 -w "$T/nm" --preset nemo --monitor val_loss --keep-top-k 2 --keep-last 1 2>err
        for d in $ranks; do
                [ -e "nm/$d/$n--val_loss=2.40-step=400-consumed_samples=3200.0.ckpt" ] ||
                        fail "$d lost the newest step: $(cat err)"
                [ -e "nm/$d/$n--val_loss=2.30-step=200-consumed_samples=1600.0.ckpt" ] ||
                        fail "$d lost its second best: $(cat err)"
                [ ! -e "nm/$d/$n--val_loss=2.50-step=100-consumed_samples=800.0.ckpt" ] ||
                        fail "$d kept its worst: $(cat err)"
        done
        assert_names nm/mp_rank_00 "$n--val_loss=2.10-step=500-consumed_samples=4000.0.ckpt" \
                "$n--val_loss=2.20-step=300-consumed_samples=2400.0.ckpt" \
                "$n--val_loss=2.30-step=200-consumed_samples=1600.0.ckpt" \
                "$n--val_loss=2.40-step=400-consumed_samples=3200.0.ckpt"
}

# NeMo with EMA saves X-EMA.ckpt beside each X.ckpt (and X-last-EMA.ckpt
# beside X-last.ckpt) and removes both together: one checkpoint, neither
# half of the newest or the best deleted on its own.
test_nemo_ema_is_one_checkpoint_with_its_model() {
        local n=megatron_gpt preset v
        for preset in nemo auto; do
                mkdir nm
                for v in "2.50 100" "2.10 200" "2.30 300"; do
                        set -- $v
                        mkfile "nm/$n--val_loss=$1-step=$2-consumed_samples=$(($2 * 8)).0.ckpt" 4
                        mkfile "nm/$n--val_loss=$1-step=$2-consumed_samples=$(($2 * 8)).0-EMA.ckpt" 2
                        touch -d "-$((400 - $2)) min" nm/*step=$2-*
                done
                mkfile "nm/$n--val_loss=2.30-step=300-consumed_samples=2400.0-last.ckpt" 4
                mkfile "nm/$n--val_loss=2.30-step=300-consumed_samples=2400.0-last-EMA.ckpt" 2
                old nm/*-last*
                "$CKPTD" -l -w "$T/nm" --preset $preset --monitor val_loss --keep-top-k 1 --keep-last 1 >out 2>err ||
                        fail "$preset: -l failed: $(cat err)"
                assert_grep "keep .*step=300-consumed_samples=2400.0.ckpt (+1 file) *last$" out
                "$CKPTD" -1 -w "$T/nm" --preset $preset --monitor val_loss --keep-top-k 1 --keep-last 1 2>err ||
                        fail "$preset: -1 failed: $(cat err)"
                assert_names nm "$n--val_loss=2.10-step=200-consumed_samples=1600.0-EMA.ckpt" \
                        "$n--val_loss=2.10-step=200-consumed_samples=1600.0.ckpt" \
                        "$n--val_loss=2.30-step=300-consumed_samples=2400.0-EMA.ckpt" \
                        "$n--val_loss=2.30-step=300-consumed_samples=2400.0-last-EMA.ckpt" \
                        "$n--val_loss=2.30-step=300-consumed_samples=2400.0-last.ckpt" \
                        "$n--val_loss=2.30-step=300-consumed_samples=2400.0.ckpt"
                rm -rf nm
        done
}

# torch.distributed.checkpoint: step-N/ with a .metadata file.
test_dcp() {
        mkdir dcp
        for s in 10 20 30; do
                mkdir "dcp/step-$s"
                mkfile "dcp/step-$s/__0_0.distcp" 4
                touch "dcp/step-$s/.metadata"
        done
        old dcp/* dcp/*/* dcp/*/.metadata
        "$CKPTD" -1 -w "$T/dcp" --preset dcp --keep-last 2 2>err
        assert_names dcp step-20 step-30
}

# PyTorch Lightning with a real torch.save, the names ModelCheckpoint gives,
# and last.ckpt as a symlink (save_last="link").
test_lightning_real_torch_save() {
        $PY -c 'import torch' 2>/dev/null || skip "python3-torch is not installed"
        mkdir lt
        $PY - "$T/lt" <<'EOP'
import os, sys, torch
d = sys.argv[1]
model = torch.nn.Linear(16, 4)
losses = [0.9, 0.5, 0.7, 0.3, 0.8, 0.6]
for epoch, loss in enumerate(losses):
    name = f"epoch={epoch}-step={(epoch + 1) * 50}-val_loss={loss:.4f}.ckpt"
    torch.save({"epoch": epoch, "state_dict": model.state_dict()}, os.path.join(d, name))
os.symlink("epoch=1-step=100-val_loss=0.5000.ckpt", os.path.join(d, "last.ckpt"))
EOP
        old lt/*
        "$CKPTD" -1 -w "$T/lt" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 2>err
        assert_names lt epoch=1-step=100-val_loss=0.5000.ckpt epoch=3-step=200-val_loss=0.3000.ckpt \
                epoch=5-step=300-val_loss=0.6000.ckpt last.ckpt
        $PY -c "import torch, sys; torch.load(sys.argv[1])" lt/last.ckpt || fail "last.ckpt no longer loads"
}

# lightning_log_run RUN MONITOR TOP_K NAME...: a Lightning run RUN whose
# version_0/metrics.csv is read from stdin and whose checkpoints NAME.ckpt
# are an hour old, swept once (-1) with the preset, keep_last 1; stderr in
# err.
lightning_log_run() {
        local run=$1 monitor=$2 k=$3 v=$1/lightning_logs/version_0 n
        shift 3
        rm -rf "$run" && mkdir -p "$v/checkpoints"
        cat >"$v/metrics.csv"
        for n in "$@"; do mkfile "$v/checkpoints/$n.ckpt" 4; done
        old "$v/checkpoints"/* "$v/metrics.csv"
        "$CKPTD" -1 -w "$T/$run" --preset lightning --monitor "$monitor" --keep-top-k "$k" --keep-last 1 2>err
}

# Lightning names a metric not logged yet 0: ModelCheckpoint(filename=
# "{epoch}-{step}-{val_loss:.3f}", every_n_train_steps=25, save_top_k=-1)
# writes "val_loss=0.000" into every save before the first validation. Such a
# 0 is the log's to give: where metrics.csv holds no val_loss for it, it has
# no metric and ranks last, so it takes no place among the best; where the
# log held the monitor before but not there (a real 0), it is kept,
# unranked. In the daemon too, for a save renamed in.
test_lightning_zero_filled_monitor_is_no_value() {
        local c=lt/lightning_logs/version_0/checkpoints
        printf 'epoch,step,train_loss,val_loss\n0,24,1.9,\n0,99,,0.61\n1,199,,0.42\n2,299,,0.35\n3,399,,0.47\n' |
                lightning_log_run lt val_loss 2 epoch=0-step=25-val_loss=0.000 epoch=0-step=50-val_loss=0.000 \
                        epoch=1-step=100-val_loss=0.610 epoch=1-step=200-val_loss=0.420 epoch=2-step=300-val_loss=0.350 \
                        epoch=3-step=400-val_loss=0.470
        assert_names "$c" epoch=1-step=200-val_loss=0.420.ckpt epoch=2-step=300-val_loss=0.350.ckpt \
                epoch=3-step=400-val_loss=0.470.ckpt
        # a real 0 (a train_loss of 0.0004 in "{train_loss:.3f}"), saved
        # between two points of the log, is no filling: kept, unranked
        printf 'epoch,step,train_loss\n0,49,0.9\n0,99,0.5\n1,149,0.3\n1,199,0.2\n' |
                lightning_log_run lt2 train_loss 1 epoch=0-step=100-train_loss=0.500 epoch=1-step=150-train_loss=0.300 \
                        epoch=1-step=175-train_loss=0.000 epoch=1-step=200-train_loss=0.200
        assert_names "lt2${c#lt}" epoch=1-step=175-train_loss=0.000.ckpt epoch=1-step=200-train_loss=0.200.ckpt
        assert_grep "its name's 0 is what Lightning writes for a metric not logged yet" err
        # a 0 before where the log begins (a resume removed metrics.csv,
        # and its first rows with it): whether it was filled in is unknown
        printf 'epoch,step,train_loss\n3,349,0.3\n3,399,0.2\n' |
                lightning_log_run lt3 train_loss 1 epoch=1-step=150-train_loss=0.000 epoch=3-step=350-train_loss=0.300 \
                        epoch=3-step=400-train_loss=0.200
        assert_names "lt3${c#lt}" epoch=1-step=150-train_loss=0.000.ckpt epoch=3-step=400-train_loss=0.200.ckpt
        assert_grep "epoch=1-step=150-train_loss=0.000.ckpt: cannot read its metric log (which begins after it" err
        # two optimizers: the name's step counts both, the log's one, so
        # the row at the name's step is of a later epoch; the real 0 (a
        # val_loss of 0.0004) is not ranked by it
        printf 'epoch,step,val_loss\n0,19,0.9\n1,39,0.0004\n2,59,0.5\n3,79,0.3\n4,99,0.2\n' |
                lightning_log_run lt4 val_loss 1 epoch=0-step=40-val_loss=0.900 epoch=1-step=80-val_loss=0.000 \
                        epoch=2-step=120-val_loss=0.500 epoch=3-step=160-val_loss=0.300 epoch=4-step=200-val_loss=0.200
        assert_names "lt4${c#lt}" epoch=1-step=80-val_loss=0.000.ckpt epoch=4-step=200-val_loss=0.200.ckpt
        # the other way (manual optimization stepping every fourth batch):
        # the log's steps run ahead of the names', and epoch 2's real 0,
        # logged at step 299, is not taken for one filled in
        local e s
        { echo epoch,step,train_loss,val_loss
          for s in 0:0.500 1:0.200 2:0.0003 3:0.100 4:0.150; do
                e=${s%%:*}
                printf '%s,%s,0.9,\n%s,%s,0.9,\n%s,%s,,%s\n' "$e" $((100 * e + 49)) "$e" $((100 * e + 98)) \
                        "$e" $((100 * e + 99)) "${s#*:}"
          done; } | lightning_log_run lt5 val_loss 2 epoch=0-step=25-val_loss=0.500 epoch=1-step=50-val_loss=0.200 \
                epoch=2-step=75-val_loss=0.000 epoch=3-step=100-val_loss=0.100 epoch=4-step=125-val_loss=0.150
        assert_names "lt5${c#lt}" epoch=2-step=75-val_loss=0.000.ckpt epoch=3-step=100-val_loss=0.100.ckpt \
                epoch=4-step=125-val_loss=0.150.ckpt
        # the daemon: a save renamed in with a filled 0 (a run resumed, not
        # validated yet) is not taken for the best, nor for the newest while
        # its value may still come (past the end of the log)
        start_daemon d.log -w "$T/lt" --preset lightning --monitor val_loss --keep-top-k 2 --keep-last 1 --settle 0.2
        mkfile "$c/save.tmp" 4
        mv "$c/save.tmp" "$c/epoch=4-step=500-val_loss=0.000.ckpt"
        wait_for 20 grep -q "epoch=4-step=500-val_loss=0.000.ckpt: cannot read its metric log (not logged yet)" d.log ||
                fail "the save was not decided from the log: $(cat d.log)"
        "$CKPTD" status >/dev/null 2>&1 || fail "status failed"
        assert_names "$c" epoch=1-step=200-val_loss=0.420.ckpt epoch=2-step=300-val_loss=0.350.ckpt \
                epoch=3-step=400-val_loss=0.470.ckpt epoch=4-step=500-val_loss=0.000.ckpt
        stop_daemon d.log
}

# Two validations an epoch (val_check_interval=0.5) and Lightning's default
# names, the metric in metrics.csv, which CSVLogger writes every 100 steps
# (or which a rewrite cut short): the log ends with epoch 2's first
# validation (step 24). The save after its second (step 30) is past what the
# log holds of its epoch: its value is not written yet, so it is kept, not
# ranked by the first one's (nor is the save at 35), and the newest whose
# value is known, at 25, keeps its place as the last.
test_lightning_log_behind_the_last_epoch_keeps_the_save() {
        local c=lt/lightning_logs/version_0/checkpoints s
        mkdir -p "$c"
        printf 'epoch,step,val_loss\n0,4,0.9\n0,9,0.8\n1,14,0.7\n1,19,0.6\n2,24,0.95\n' \
                >lt/lightning_logs/version_0/metrics.csv
        for s in 0-step=5 0-step=10 1-step=15 1-step=20 2-step=25 2-step=30 2-step=35; do
                mkfile "$c/epoch=$s.ckpt" 4
        done
        old "$c"/* lt/lightning_logs/version_0/metrics.csv
        "$CKPTD" -1 -w "$T/lt" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 2>err
        assert_names "$c" epoch=1-step=20.ckpt epoch=2-step=25.ckpt epoch=2-step=30.ckpt epoch=2-step=35.ckpt
        assert_grep "epoch=2-step=30.ckpt: cannot read its metric log (not logged yet)" err
}

run_tests
