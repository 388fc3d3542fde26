#!/usr/bin/env bash
# What real trainers leave behind: a monitor no checkpoint carries, a run
# restarted into an old run's directory, TensorFlow/Keras prefixes and the
# `checkpoint` state file, and --preset auto on every preset's tree.
. "$(dirname "$0")/../lib.sh"

FIX=$(cd "$(dirname "$0")/../.." && pwd)/../shared/fixtures

old() { touch -h -d "-1 hour" "$@"; }

# The incident's 47 checkpoints as Lightning 2.2.5 wrote them (default
# filename: epoch=N-step=M.ckpt), without their training log.
lightning_47() {
        local src=$FIX/lightning-default-47/lightning_logs/version_0/checkpoints
        [ -d "$src" ] || skip "no fixture $src"
        mkdir -p "$1"
        cp "$src"/*.ckpt "$1"/
        old "$1"/*
}

# A monitor that no name carries (Lightning's default filename): nothing is
# deleted, exit 0, and the warning names the fields that were seen.
test_monitor_missing_keeps_all() {
        lightning_47 run
        "$CKPTD" -1 -w "$T/run" --preset lightning --monitor val_loss --keep-top-k 3 --keep-last 1 2>err
        [ "$(ls run | wc -l)" = 47 ] || fail "deleted some: $(ls run | wc -l) left; $(cat err)"
        assert_grep "no checkpoint carries the monitor val_loss (names carry epoch, step)" err
        assert_grep "deleted 0 checkpoints" err
        "$CKPTD" -l -w "$T/run" --preset lightning --monitor val_loss >list
        assert_grep "kept whole: no checkpoint carries the monitor val_loss" list
        [ "$(grep -c 'keep .*monitor-missing' list)" = 47 ] || fail "not all kept as monitor-missing: $(cat list)"
        "$CKPTD" -l --json -w "$T/run" --preset lightning --monitor val_loss >list.json
        assert_grep '"monitor_missing":"names carry epoch, step"' list.json
}

# A typo of a field the names do carry: the warning suggests it.
test_monitor_typo_suggests() {
        mkdir run
        for e in 0 1 2 3 4; do
                mkfile "run/epoch=$e-val_loss=0.$((9 - e))00.ckpt" 1
        done
        old run/*
        "$CKPTD" -1 -w "$T/run" --preset lightning --monitor val_los --keep-top-k 1 --keep-last 1 2>err
        [ "$(ls run | wc -l)" = 5 ] || fail "deleted some: $(ls run)"
        assert_grep "names carry epoch, val_loss; did you mean val_loss?" err
        # spelled right, the same run is pruned to the best + the newest
        "$CKPTD" -1 -w "$T/run" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 2>err
        assert_names run "epoch=4-val_loss=0.500.ckpt"
}

# The daemon warns once per change, not at every checkpoint, and the floor
# still works on such a run.
test_monitor_missing_daemon_warns_once() {
        mkdir run
        for e in 0 1 2; do mkfile "run/epoch=$e-step=$((e * 3 + 3)).ckpt" 1; done
        old run/*
        cat >c.conf <<EOC
watch = ( { path = "$T/run"; preset = "lightning"; monitor = "val_loss";
            keep_top_k = 1; keep_last = 1; settle = 0.2; } );
EOC
        notify_listen
        mkdir rt
        export RUNTIME_DIRECTORY=$T/rt
        NOTIFY_SOCKET=$T/notify.sock start_daemon log -c c.conf
        grep -q "no checkpoint carries the monitor val_loss" log || fail "no warning at start: $(cat log)"
        wait_for 20 grep -aq 'STATUS=.*1 run kept whole: no checkpoint carries the monitor' notify ||
                fail "not in STATUS=: $(cat notify)"
        # a reload reads the run again: nothing new to say
        "$CKPTD" reload "$DPID" >out 2>&1 || fail "reload failed: $(cat out)"
        [ "$(grep -c 'no checkpoint carries the monitor' log)" = 1 ] || fail "warned again at reload: $(cat log)"
        mkfile "run/epoch=3-step=12.ckpt" 1
        mkfile "run/epoch=4-step=15.ckpt" 1
        # then one that carries it: the run is pruned again, and the
        # daemon says the monitor is back
        mkfile "run/epoch=5-step=18-val_loss=0.5.ckpt" 1
        wait_names run "epoch=5-step=18-val_loss=0.5.ckpt"
        [ "$(grep -c 'no checkpoint carries the monitor' log)" = 1 ] || fail "warned more than once: $(cat log)"
        wait_for 20 grep -q "carry the monitor again" log || fail "no notice: $(cat log)"
        stop_daemon log
}

# A reload that changes the monitor says the new one is missing too; one
# that drops it says nothing of a monitor carried again.
test_monitor_missing_said_anew_after_a_reload_changes_it() {
        mkdir run rt
        for e in 0 1 2; do mkfile "run/epoch=$e-step=$((e * 3 + 3)).ckpt" 1; done
        old run/*
        conf_monitor() {
                cat <<EOC
watch = ( { path = "$T/run"; preset = "lightning"; $1 keep_top_k = 1; keep_last = 1; settle = 0.2; } );
EOC
        }
        conf_monitor 'monitor = "val_loss";' >c.conf
        export RUNTIME_DIRECTORY=$T/rt
        start_daemon log -c c.conf
        assert_grep "no checkpoint carries the monitor val_loss" log
        conf_monitor 'monitor = "val_acc";' >c.conf
        "$CKPTD" reload "$DPID" >out 2>&1 || fail "reload failed: $(cat out)"
        assert_grep "no checkpoint carries the monitor val_acc" log
        conf_monitor '' >c.conf
        "$CKPTD" reload "$DPID" >out 2>&1 || fail "reload failed: $(cat out)"
        assert_no_grep "carry the monitor again" log
        stop_daemon log
}

# A script restarted into the directory of an old run: the old run's epoch
# 21 stays newest by order, yet the new run's latest checkpoint is kept.
test_restarted_run_keeps_newest_written() {
        mkdir run
        for e in 19 20 21; do mkfile "run/epoch=$e-step=$((e * 10 + 10)).ckpt" 1; done
        old run/*
        mkfile "run/epoch=0-step=10.ckpt" 1
        touch -d "-30 seconds" "run/epoch=0-step=10.ckpt"
        "$CKPTD" -l -w "$T/run" --preset lightning --keep-last 1 >list
        grep 'epoch=0-step=10.ckpt' list | grep -q 'keep .*newest-written' || fail "not newest-written: $(cat list)"
        "$CKPTD" -1 -w "$T/run" --preset lightning --keep-last 1 2>err
        assert_names run "epoch=0-step=10.ckpt" "epoch=21-step=220.ckpt"
        # the next epoch of the new run takes its place
        mkfile "run/epoch=1-step=20.ckpt" 1
        touch -d "-20 seconds" "run/epoch=1-step=20.ckpt"
        "$CKPTD" -1 -w "$T/run" --preset lightning --keep-last 1 2>err
        assert_names run "epoch=1-step=20.ckpt" "epoch=21-step=220.ckpt"
}

# The daemon, with each checkpoint of the new run written while it runs:
# the new run always has its latest one.
test_restarted_run_daemon() {
        mkdir run
        for e in 19 20 21; do mkfile "run/epoch=$e-step=$((e * 10 + 10)).ckpt" 1; done
        old run/*
        start_daemon log -w "$T/run" --preset lightning --keep-last 1 --settle 0.2
        wait_names run "epoch=21-step=220.ckpt"
        for e in 0 1 2; do
                mkfile "run/tmp.part" 1
                mv run/tmp.part "run/epoch=$e-step=$((e * 10 + 10)).ckpt"
                wait_names run "epoch=$e-step=$((e * 10 + 10)).ckpt" "epoch=21-step=220.ckpt"
        done
        stop_daemon log
}

# tf_index FILE: a TensorFlow .index as its table writer ends one: the
# 48-byte footer last, whose last 8 bytes are the table's magic number.
tf_index() {
        { head -c 1024 /dev/urandom; head -c 40 /dev/zero; printf '\x57\xfb\x80\x8b\x24\x75\x47\xdb'; } >"$1"
}

# TensorFlow's CheckpointManager: ckpt-N.index + ckpt-N.data-00000-of-00001,
# the text-format CheckpointState in `checkpoint`, a bundle being written
# under a .tempstate name.
tf_tree() { # dir latest all...
        local d=$1 latest=$2 s
        shift 2
        mkdir -p "$d"
        for s in 1 2 3 4 5 6 7; do
                mkfile "$d/ckpt-$s.data-00000-of-00001" 4
                tf_index "$d/ckpt-$s.index"
        done
        {
                echo "model_checkpoint_path: \"$latest\""
                for s in "$@"; do echo "all_model_checkpoint_paths: \"$s\""; done
                for s in "$@"; do echo "all_model_checkpoint_timestamps: 1764700000.5"; done
                echo "last_preserved_timestamp: 1764690000.25"
        } >"$d/checkpoint"
        old "$d"/*
        mkfile "$d/ckpt-8.data-00000-of-00001.tempstate8021934712345" 2
}

test_keras_layout() {
        tf_tree tf ckpt-7 ckpt-6 ckpt-7
        "$CKPTD" -1 -w "$T/tf" --preset keras --keep-last 1 2>err
        assert_names tf checkpoint ckpt-6.data-00000-of-00001 ckpt-6.index ckpt-7.data-00000-of-00001 \
                ckpt-7.index ckpt-8.data-00000-of-00001.tempstate8021934712345
        # the state names an older one (a restore point): it is pinned,
        # index and data together
        rm -rf tf
        tf_tree tf ckpt-3 ckpt-3
        "$CKPTD" -l -w "$T/tf" --preset tensorflow --keep-last 1 >list
        grep 'ckpt-3.data' list | grep -q 'pinned(pointer)' || fail "ckpt-3 not pinned: $(cat list)"
        grep 'ckpt-3.data' list | grep -q '(+1 file)' || fail "ckpt-3 not grouped: $(cat list)"
        "$CKPTD" -1 -w "$T/tf" --preset tensorflow --keep-last 1 2>err
        assert_names tf checkpoint ckpt-3.data-00000-of-00001 ckpt-3.index ckpt-7.data-00000-of-00001 \
                ckpt-7.index ckpt-8.data-00000-of-00001.tempstate8021934712345
        # a state file that cannot be parsed keeps the run whole
        rm -rf tf
        tf_tree tf ckpt-7 ckpt-7
        printf 'model_checkpoint_path: "ckpt-\\0017"\n' >tf/checkpoint
        "$CKPTD" -1 -w "$T/tf" --preset tensorflow --keep-last 1 2>err
        local idx=(tf/*.index)
        [ "${#idx[@]}" = 7 ] || fail "deleted with an unreadable state: $(ls tf)"
}

# TensorFlow renames a prefix's .data files in before it writes its .index
# (a sharded save writes the merged .index in place after): a prefix with
# only one of them, or an .index cut short, past every whole one, is a
# save under way or one that died, however quiet, and the newest whole one
# before it stays, with no `checkpoint` state to pin it
# (tf.train.Checkpoint.write() keeps none).
test_tensorflow_prefix_without_index_is_kept() {
        tf_tree tf ckpt-7 ckpt-7
        rm tf/checkpoint tf/*.tempstate*
        mkfile tf/ckpt-8.data-00000-of-00002 4
        mkfile tf/ckpt-8.data-00001-of-00002 4
        old tf/ckpt-8.*
        "$CKPTD" -l -w "$T/tf" --preset tensorflow --keep-last 1 >list
        grep 'ckpt-8.data' list | grep -q 'incomplete(no .index)' || fail "ckpt-8 not said incomplete: $(cat list)"
        "$CKPTD" -1 -w "$T/tf" --preset tensorflow --keep-last 1 2>err
        assert_names tf ckpt-7.data-00000-of-00001 ckpt-7.index ckpt-8.data-00000-of-00002 ckpt-8.data-00001-of-00002
        # its .index written: complete, and the newest
        # its .index cut short (MergeBundles writes it in place, and died),
        # however old: still no whole prefix
        tf_index tf/ckpt-8.index
        truncate -s 1000 tf/ckpt-8.index
        old tf/ckpt-8.index
        "$CKPTD" -l -w "$T/tf" --preset tensorflow --keep-last 1 >list
        grep 'ckpt-8.data' list | grep -q 'incomplete(no whole .index)' || fail "ckpt-8 not said cut: $(cat list)"
        "$CKPTD" -l --json -w "$T/tf" --preset tensorflow --keep-last 1 >out
        /usr/bin/python3 -c 'import json, sys
c = {c["name"]: c for c in json.load(open(sys.argv[1]))["watches"][0]["runs"][0]["checkpoints"]}
assert c["ckpt-8.data-00000-of-00002"]["missing"] == "whole .index", c
assert c["ckpt-7.data-00000-of-00001"]["missing"] is None, c' out || fail "-l --json: $(cat out)"
        "$CKPTD" -1 -w "$T/tf" --preset tensorflow --keep-last 1 2>err
        assert_names tf ckpt-7.data-00000-of-00001 ckpt-7.index ckpt-8.data-00000-of-00002 ckpt-8.data-00001-of-00002 \
                ckpt-8.index
        : >tf/ckpt-8.index
        old tf/ckpt-8.index
        "$CKPTD" -1 -w "$T/tf" --preset tensorflow --keep-last 1 2>err
        assert_names tf ckpt-7.data-00000-of-00001 ckpt-7.index ckpt-8.data-00000-of-00002 ckpt-8.data-00001-of-00002 \
                ckpt-8.index
        # its .index written whole: complete, and the newest
        tf_index tf/ckpt-8.index
        old tf/ckpt-8.index
        "$CKPTD" -1 -w "$T/tf" --preset keras --keep-last 1 2>err
        assert_names tf ckpt-8.data-00000-of-00002 ckpt-8.data-00001-of-00002 ckpt-8.index
        # .data left by a removal cut short (the .index goes first) before
        # an indexed prefix: no save, decided as any other
        rm -rf tf
        tf_tree tf ckpt-7 ckpt-7
        rm tf/checkpoint tf/*.tempstate* tf/ckpt-3.index
        "$CKPTD" -1 -w "$T/tf" --preset tensorflow --keep-last 1 2>err
        assert_names tf ckpt-7.data-00000-of-00001 ckpt-7.index
        # a .index whose .data went first (`rm ckpt-7.*`): the newest
        # whole prefix stays
        rm -rf tf
        tf_tree tf ckpt-7 ckpt-7
        rm tf/checkpoint tf/*.tempstate* tf/ckpt-7.data-*
        "$CKPTD" -1 -w "$T/tf" --preset tensorflow --keep-last 1 2>err
        assert_names tf ckpt-6.data-00000-of-00001 ckpt-6.index ckpt-7.index
        # two prefixes of one step are one group (ckpt-8, ckpt-08): whole
        # only with each .index whole
        rm -rf tf
        tf_tree tf ckpt-7 ckpt-7
        rm tf/checkpoint tf/*.tempstate*
        mkfile tf/ckpt-8.data-00000-of-00001 4
        tf_index tf/ckpt-8.index
        truncate -s 100 tf/ckpt-8.index
        tf_index tf/ckpt-08.index
        old tf/ckpt-8.* tf/ckpt-08.*
        "$CKPTD" -1 -w "$T/tf" --preset tensorflow --keep-last 1 2>err
        assert_names tf ckpt-08.index ckpt-7.data-00000-of-00001 ckpt-7.index ckpt-8.data-00000-of-00001 ckpt-8.index
        # Keras's own ckpt-N.keras files hold no .data: each is complete
        rm -rf tf
        mkdir tf
        for s in 1 2 3; do mkfile "tf/ckpt-$s.keras" 2; done
        old tf/*
        "$CKPTD" -1 -w "$T/tf" --preset keras --keep-last 1 2>err
        assert_names tf ckpt-3.keras
}

# ds_saved DIR STEP...: complete DeepSpeed saves, two hours old.
ds_saved() {
        local d=$1 s
        shift
        for s in "$@"; do
                mkdir -p "$d/global_step$s"
                mkfile "$d/global_step$s/mp_rank_00_model_states.pt" 2
                mkfile "$d/global_step$s/zero_pp_rank_0_mp_rank_00_optim_states.pt" 2
                touch -d "-2 hours" "$d/global_step$s"/* "$d/global_step$s"
        done
}

# A pointer file is written after the save it names: the newest save, past
# what it names and written since, is under way however quiet (its next
# shard gathered), and displaces nothing until the pointer names it. One
# the pointer was set back from by hand afterwards is complete.
test_pointer_file_waited_for() {
        ds_saved ds 100 200
        echo -n global_step200 >ds/latest
        touch -d "-1 hour" ds/latest
        mkdir ds/global_step300
        mkfile ds/global_step300/mp_rank_00_model_states.pt 2
        touch -d "-10 sec" ds/global_step300/* ds/global_step300
        "$CKPTD" -1 -w "$T/ds" --preset deepspeed --keep-last 2 2>err || fail "-1 failed: $(cat err)"
        assert_names ds global_step100 global_step200 global_step300 latest
        "$CKPTD" -l -w "$T/ds" --preset deepspeed --keep-last 2 >out 2>err || fail "-l failed: $(cat err)"
        assert_grep "keep .*global_step300/ *incomplete$" out
        # its last shard, then the pointer: complete, and the oldest goes
        mkfile ds/global_step300/zero_pp_rank_0_mp_rank_00_optim_states.pt 2
        echo -n global_step300 >ds/latest
        touch -d "-5 sec" ds/global_step300/* ds/global_step300 # past settle
        "$CKPTD" -1 -w "$T/ds" --preset deepspeed --keep-last 2 2>err || fail "-1 failed: $(cat err)"
        assert_names ds global_step200 global_step300 latest

        # Megatron's tracker holds the iteration
        local s
        for s in 0000100 0000200 0000300; do
                mkdir -p "mg/iter_$s/mp_rank_00"
                mkfile "mg/iter_$s/mp_rank_00/model_optim_rng.pt" 2
                touch -d "-2 hours" "mg/iter_$s/mp_rank_00"/* "mg/iter_$s/mp_rank_00" "mg/iter_$s"
        done
        echo 200 >mg/latest_checkpointed_iteration.txt
        touch -d "-3 hours" mg/latest_checkpointed_iteration.txt
        "$CKPTD" -1 -w "$T/mg" --preset megatron --keep-last 2 2>err || fail "-1 failed: $(cat err)"
        assert_names mg iter_0000100 iter_0000200 iter_0000300 latest_checkpointed_iteration.txt
        # set back by hand after the saves: a restore point, not a save
        # under way; the newest is complete
        echo 100 >mg/latest_checkpointed_iteration.txt
        "$CKPTD" -1 -w "$T/mg" --preset megatron --keep-last 1 2>err || fail "-1 failed: $(cat err)"
        assert_names mg iter_0000100 iter_0000300 latest_checkpointed_iteration.txt
}

# The same, live: a save written in place, quiet past settle, waits for its
# pointer, and the pointer's write is what lets it displace the oldest.
test_pointer_file_waited_for_daemon() {
        ds_saved ds 100 200
        echo -n global_step200 >ds/latest
        touch -d "-1 hour" ds/latest
        start_daemon log -w "$T/ds" --preset deepspeed --keep-last 2 --settle 0.2
        mkdir ds/global_step300
        mkfile ds/global_step300/mp_rank_00_model_states.pt 2
        wait_for 30 quiet_for_2s || fail "ckptd never idles"
        assert_names ds global_step100 global_step200 global_step300 latest
        mkfile ds/global_step300/zero_pp_rank_0_mp_rank_00_optim_states.pt 2
        echo -n global_step300 >ds/latest
        wait_names ds global_step200 global_step300 latest
        stop_daemon log
}

# One tree per preset, as each trainer writes it, all below one root.
auto_trees() {
        local s
        # Lightning: the real fixture, logs and all
        cp -r "$FIX/lightning-default-47/lightning_logs" lt
        find lt -exec touch -h -d "-1 hour" {} +
        # Hugging Face
        for s in 100 200 300; do
                mkdir -p "hf/checkpoint-$s"
                mkfile "hf/checkpoint-$s/model.safetensors" 2
                echo "{\"best_model_checkpoint\": null, \"log_history\": []}" >"hf/checkpoint-$s/trainer_state.json"
        done
        # DeepSpeed
        for s in 100 200 300; do
                mkdir -p "ds/global_step$s"
                mkfile "ds/global_step$s/mp_rank_00_model_states.pt" 2
        done
        echo -n global_step100 >ds/latest
        # Megatron
        for s in 0000100 0000200 0000300; do
                mkdir -p "mg/iter_$s/mp_rank_00"
                mkfile "mg/iter_$s/mp_rank_00/model_optim_rng.pt" 2
        done
        echo 100 >mg/latest_checkpointed_iteration.txt
        # Orbax
        for s in 1000 2000 3000; do
                mkdir -p "ox/$s/default"
                mkfile "ox/$s/default/d" 2
                echo '{}' >"ox/$s/_CHECKPOINT_METADATA"
        done
        # torch.distributed.checkpoint
        for s in 10 20 30; do
                mkdir -p "dcp/step-$s"
                mkfile "dcp/step-$s/__0_0.distcp" 2
                touch "dcp/step-$s/.metadata"
        done
        # NeMo
        mkdir nm
        for s in 100 200 300; do mkfile "nm/gpt--val_loss=2.$s-step=$s.ckpt" 2; done
        mkfile "nm/gpt--val_loss=2.300-step=300-last.ckpt" 2
        # TensorFlow / Keras
        tf_tree tf ckpt-7 ckpt-7
        # and something no trainer here writes
        mkdir unknown
        for s in 1 2 3; do mkfile "unknown/model_$s.bin" 1; done
        find hf ds mg ox dcp nm tf unknown -exec touch -h -d "-1 hour" {} +
}

test_auto_every_preset() {
        mkdir root
        (cd root && auto_trees)
        "$CKPTD" -l -w "$T/root" --preset auto --keep-last 1 >list
        for want in "lt/version_0/checkpoints:lightning" "hf:huggingface" "ds:deepspeed" "mg:megatron" \
                "ox:orbax" "dcp:dcp" "nm:nemo" "tf:tensorflow"; do
                grep -A1 "^run $T/root/${want%%:*} " list | grep -q "layout: ${want#*:} (" ||
                        fail "${want%%:*} not detected as ${want#*:}: $(cat list)"
        done
        "$CKPTD" -1 -w "$T/root" --preset auto --keep-last 1 2>err
        assert_names root/hf checkpoint-300
        assert_names root/ds global_step100 global_step300 latest
        assert_names root/mg iter_0000100 iter_0000300 latest_checkpointed_iteration.txt
        assert_names root/ox 3000
        assert_names root/dcp step-30
        assert_names root/nm "gpt--val_loss=2.300-step=300-last.ckpt" "gpt--val_loss=2.300-step=300.ckpt"
        assert_names root/tf checkpoint ckpt-7.data-00000-of-00001 ckpt-7.index \
                ckpt-8.data-00000-of-00001.tempstate8021934712345
        assert_names root/lt/version_0/checkpoints "epoch=46-step=141.ckpt"
        assert_names root/unknown model_1.bin model_2.bin model_3.bin
}

# hf_save_displacing DIR STEP: HF's save of checkpoint-STEP (written under
# tmp-checkpoint-STEP, renamed into place); the one 100 steps before goes.
hf_save_displacing() {
        mkdir "$1/tmp-checkpoint-$2"
        mkfile "$1/tmp-checkpoint-$2/model.safetensors" 2
        echo '{"log_history": []}' >"$1/tmp-checkpoint-$2/trainer_state.json"
        mv "$1/tmp-checkpoint-$2" "$1/checkpoint-$2"
        wait_for 20 test ! -e "$1/checkpoint-$(($2 - 100))" || fail "not pruned: $(ls "$1")"
}

# The daemon with preset auto: directory checkpoints renamed into a run
# that was empty at start-up, and Lightning files in another run.
test_auto_daemon() {
        local s e
        mkdir -p root/hf root/lt
        start_daemon log -w "$T/root" --preset auto --keep-last 1 --settle 0.2
        for s in 100 200 300; do hf_save_displacing root/hf "$s"; done
        wait_names root/hf checkpoint-300
        for e in 0 1 2; do
                mkfile root/lt/tmp.part 1
                mv root/lt/tmp.part "root/lt/epoch=$e-step=$((e * 3 + 3)).ckpt"
        done
        wait_names root/lt "epoch=2-step=9.ckpt"
        stop_daemon log
}

# Under preset auto any name beside the checkpoints may change the layout
# and wakes the run, but not the daemon's own tombstone: a directory
# checkpoint it removes (renamed to one, then emptied) decides the run no
# more. Counted by the opens of trainer_state.json: 72 for these ten saves,
# 99 when each removal decided the run twice more.
test_auto_own_removals_wake_nothing() {
        local s n
        [ -n "${FAULT_SO:-}" ] && [ -e "$FAULT_SO" ] || skip "no FAULT_SO"
        mkdir -p root/hf
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_MATCH=trainer_state FAULT_COUNT="$T/count" \
                start_daemon log -w "$T/root" --preset auto --keep-last 1 --settle 0.2
        for s in $(seq 100 100 1000); do hf_save_displacing root/hf "$s"; done
        wait_names root/hf checkpoint-1000
        stop_daemon log
        n=$(awk '$1 == "openat2" { print $2 }' count)
        [ -n "$n" ] && [ "$n" -le 85 ] || fail "trainer_state.json was read ${n:-no} times: $(cat count)"
}

# The same with one old checkpoint dated in the future (another host's
# clock, a clock stepped back since): the newest by mtime, but the daemon
# does not believe an mtime it saw in the future. It keeps that one only
# until a save arrives, keeps the save it saw written last (two saved at
# once: the newer), and a daemon started anew does the same.
test_restarted_run_daemon_with_a_future_mtime() {
        local e
        export RUNTIME_DIRECTORY=$T/rt
        mkdir run rt
        for e in 19 20 21; do mkfile "run/epoch=$e-step=$((e * 10 + 10)).ckpt" 1; done
        old run/*
        touch -d "+1 day" "run/epoch=20-step=210.ckpt"
        start_daemon log -w "$T/run" --preset lightning --keep-last 1 --settle 0.2
        wait_names run "epoch=20-step=210.ckpt" "epoch=21-step=220.ckpt"
        for e in 0 1 2; do
                mkfile "run/tmp.part" 1
                mv run/tmp.part "run/epoch=$e-step=$((e * 10 + 10)).ckpt"
                [ $e = 1 ] && continue # saved with the next one
                # the decision that takes the one before is the save's own:
                # published with it, and no deletion after
                wait_names run "epoch=$e-step=$((e * 10 + 10)).ckpt" "epoch=21-step=220.ckpt"
                [ $e = 0 ] && continue
                wait_for 20 eval '"$CKPTD" status 2>/dev/null | grep -q "delete .*epoch=1-step=20.ckpt"' ||
                        fail "no decision published: $("$CKPTD" status)"
                assert_names run "epoch=2-step=30.ckpt" "epoch=21-step=220.ckpt"
        done
        stop_daemon log
        # another old one dated in the future, found at start with the
        # restarted run's newest: both stay, until the next save
        mkfile "run/epoch=18-step=190.ckpt" 1
        touch -d "+1 day" "run/epoch=18-step=190.ckpt"
        start_daemon log -w "$T/run" --preset lightning --keep-last 1 --settle 0.2
        # (the one in the future is complete once seen unchanged for settle)
        wait_for 30 quiet_for_2s || fail "ckptd never idles"
        assert_names run "epoch=18-step=190.ckpt" "epoch=2-step=30.ckpt" "epoch=21-step=220.ckpt"
        mkfile "run/tmp.part" 1
        mv run/tmp.part "run/epoch=3-step=40.ckpt"
        wait_names run "epoch=3-step=40.ckpt" "epoch=21-step=220.ckpt"
        stop_daemon log
}

# HF and DCP write their marker (trainer_state.json, .metadata) last and in
# place: a directory without it is a save under way or one that died,
# however long nothing was written in it. Such a step-200 is not the newest
# complete checkpoint, so step-100 before it stays; -l says why.
test_dir_without_required_marker_displaces_nothing() {
        mkdir -p run/step-100 run/step-200
        mkfile run/step-100/__0_0.distcp 2
        mkfile run/step-100/.metadata 1
        mkfile run/step-200/__0_0.distcp 2 # rank 1 died before .metadata
        old run/*/* run/*/.metadata run/*
        "$CKPTD" -1 -w "$T/run" --preset dcp --keep-last 1 >out 2>err || fail "-1 failed: $(cat out err)"
        assert_names run step-100 step-200
        "$CKPTD" -l -w "$T/run" --preset dcp --keep-last 1 >out 2>err || fail "-l failed: $(cat out err)"
        assert_grep "keep .*step-200/ *incomplete(no .metadata)$" out
        "$CKPTD" -l --json -w "$T/run" --preset dcp --keep-last 1 >out 2>err || fail "-l failed: $(cat out err)"
        /usr/bin/python3 -c 'import json, sys
c = {c["name"]: c for c in json.load(open(sys.argv[1]))["watches"][0]["runs"][0]["checkpoints"]}
assert c["step-200"]["marker_missing"] and not c["step-200"]["complete"], c
assert c["step-200"]["missing"] == ".metadata", c
assert not c["step-100"]["marker_missing"] and c["step-100"]["complete"], c
assert c["step-100"]["missing"] is None, c' out || fail "-l --json: $(cat out)"
        # preset auto requires it as the layout found does; false turns it off
        "$CKPTD" -1 -n -w "$T/run" --preset auto --keep-last 1 >out 2>err || fail "-1 failed: $(cat out err)"
        assert_no_grep "would delete $T/run/" err
        cat >c.conf <<EOC
watch = ( { path = "$T/run"; preset = "auto"; keep_last = 1; require_marker = false; } );
EOC
        "$CKPTD" -1 -n -c c.conf >out 2>err || fail "-1 failed: $(cat out err)"
        assert_grep "would delete $T/run/step-100 " err
        # once its marker is there, it is the newest and step-100 goes
        mkfile run/step-200/.metadata 1
        old run/step-200/.metadata
        "$CKPTD" -1 -w "$T/run" --preset dcp --keep-last 1 >out 2>err || fail "-1 failed: $(cat out err)"
        assert_names run step-200
}

# hf_ckpt100 DIR: a complete checkpoint-100, an hour old, in DIR.
hf_ckpt100() {
        mkdir -p "$1/checkpoint-100"
        mkfile "$1/checkpoint-100/model.safetensors" 2
        echo '{"log_history": []}' >"$1/checkpoint-100/trainer_state.json"
        old "$1/checkpoint-100"/* "$1/checkpoint-100"
}

# marker_displaces DIR NEW OLD: once the daemon is idle, DIR holds OLD and
# NEW (no trainer_state.json yet); once NEW's is written, NEW alone.
marker_displaces() {
        wait_for 30 quiet_for_2s || fail "ckptd never idles"
        assert_names "$1" "$3" "$2"
        echo '{"log_history": []}' >"$1/$2/trainer_state.json"
        wait_names "$1" "$2"
}

# The marker of a directory the daemon did not see created in place is
# seen all the same: one being written when the daemon started, one
# renamed in before its marker was written, one under preset auto (whose
# layout only a scan tells). Each displaces the one before it once its
# marker is there, not at the next save.
test_marker_of_a_directory_seen_late() {
        local preset
        # being written when the daemon starts
        hf_ckpt100 out
        mkdir out/checkpoint-200
        mkfile out/checkpoint-200/model.safetensors 2
        start_daemon log -w "$T/out" --preset huggingface --keep-last 1 --settle 0.2
        marker_displaces out checkpoint-200 checkpoint-100
        stop_daemon log
        rm -rf out
        for preset in huggingface auto; do
                # renamed in without its marker, which follows
                hf_ckpt100 out
                start_daemon log -w "$T/out" --preset $preset --keep-last 1 --settle 0.2
                mkdir out/tmp-checkpoint-200
                mkfile out/tmp-checkpoint-200/model.safetensors 2
                mv out/tmp-checkpoint-200 out/checkpoint-200
                marker_displaces out checkpoint-200 checkpoint-100
                # written in place, pausing for longer than settle (rank 0
                # gathering the optimizer state), its marker last
                mkdir out/checkpoint-300
                mkfile out/checkpoint-300/model.safetensors 2
                wait_for 30 quiet_for_2s || fail "$preset: ckptd never idles"
                mkfile out/checkpoint-300/optimizer.pt 2
                marker_displaces out checkpoint-300 checkpoint-200
                stop_daemon log
                rm -rf out
        done
}

# Orbax on a filesystem without atomic rename writes each step in place
# and commit_success.txt last. The daemon keeps a step without it, however
# quiet, once the run's others show the marker, and the commit it waits
# for is seen: the step before goes then, not at the next save.
test_orbax_commit_is_waited_for() {
        local s
        for s in 100 200; do
                mkdir -p ox/$s/default
                mkfile ox/$s/default/manifest.ocdbt 2
                touch ox/$s/commit_success.txt
                old ox/$s/default/* ox/$s/* ox/$s
        done
        start_daemon log -w "$T/ox" --preset orbax --keep-last 1 --settle 0.2
        wait_names ox 200
        mkdir -p ox/300/default
        mkfile ox/300/default/manifest.ocdbt 2
        wait_for 30 quiet_for_2s || fail "ckptd never idles"
        assert_names ox 200 300
        touch ox/300/commit_success.txt
        wait_names ox 300
}

# NeMo with EMA, as its ModelCheckpoint saves: the -unfinished marker, the
# model, its EMA copy, the -last pair, the marker removed. The daemon
# keeps and deletes each checkpoint's two files together.
test_nemo_ema_saves() {
        local n=megatron_gpt s
        nemo_save() { # val_loss step
                local x="nm/$n--val_loss=$1-step=$2"
                touch "$x-unfinished"
                mkfile "$x.ckpt" 4
                mkfile "$x-EMA.ckpt" 2
                rm -f nm/*-last.ckpt nm/*-last-EMA.ckpt
                mkfile "$x-last.ckpt" 4
                mkfile "$x-last-EMA.ckpt" 2
                rm "$x-unfinished"
        }
        mkdir nm
        start_daemon log -w "$T/nm" --preset nemo --monitor val_loss --keep-top-k 1 --keep-last 1 --settle 0.2
        nemo_save 2.10 100
        nemo_save 2.50 200
        nemo_save 2.30 300
        wait_names nm "$n--val_loss=2.10-step=100-EMA.ckpt" "$n--val_loss=2.10-step=100.ckpt" \
                "$n--val_loss=2.30-step=300-EMA.ckpt" "$n--val_loss=2.30-step=300-last-EMA.ckpt" \
                "$n--val_loss=2.30-step=300-last.ckpt" "$n--val_loss=2.30-step=300.ckpt"
        assert_grep "deleted $T/nm/$n--val_loss=2.50-step=200.ckpt " log
}

# NeMo with EMA and save_last off writes no -last copy and no .nemo until
# training ends: under preset auto its -EMA.ckpt copies and -unfinished
# markers say NeMo, not Lightning, whose preset would decide a model and
# its EMA copy apart (the newest model deleted, the best one's EMA copy
# too). In the daemon as in a one-shot, each pair stays whole.
test_nemo_ema_without_last_under_auto() {
        local n=megatron_gpt x
        nemo_pair() { # val_loss step
                x="nm/$n--val_loss=$1-step=$2-consumed_samples=$(($2 * 8)).0"
                touch "$x-unfinished"
                mkfile "$x.ckpt" 4
                mkfile "$x-EMA.ckpt" 2
                rm "$x-unfinished"
        }
        mkdir nm
        nemo_pair 2.50 100
        nemo_pair 2.80 200
        nemo_pair 2.90 300
        old nm/*
        "$CKPTD" -l -w "$T/nm" --preset auto --monitor val_loss >list
        assert_grep "layout: nemo (" list
        "$CKPTD" -1 -w "$T/nm" --preset auto --monitor val_loss --keep-top-k 1 --keep-last 1 2>err
        assert_names nm "$n--val_loss=2.50-step=100-consumed_samples=800.0-EMA.ckpt" \
                "$n--val_loss=2.50-step=100-consumed_samples=800.0.ckpt" \
                "$n--val_loss=2.90-step=300-consumed_samples=2400.0-EMA.ckpt" \
                "$n--val_loss=2.90-step=300-consumed_samples=2400.0.ckpt"
        rm -rf nm
        mkdir nm
        start_daemon log -w "$T/nm" --preset auto --monitor val_loss --keep-top-k 1 --keep-last 1 --settle 0.2
        nemo_pair 2.50 100
        nemo_pair 2.80 200
        nemo_pair 2.90 300
        nemo_pair 2.95 400
        wait_names nm "$n--val_loss=2.50-step=100-consumed_samples=800.0-EMA.ckpt" \
                "$n--val_loss=2.50-step=100-consumed_samples=800.0.ckpt" \
                "$n--val_loss=2.95-step=400-consumed_samples=3200.0-EMA.ckpt" \
                "$n--val_loss=2.95-step=400-consumed_samples=3200.0.ckpt"
        stop_daemon log
}

# NeMo with tensor parallelism saves each rank's file in mp_rank_NN/ under
# one -unfinished marker beside them. While it is there a rank's finished
# file displaces nothing; when NeMo removes it after the last rank, every
# rank is decided, though no event comes in them after the last save of a
# training.
test_nemo_model_parallel_saves() {
        local n=megatron_gpt r
        mp_save() { # val_loss step
                local x="$n--val_loss=$1-step=$2"
                touch "nm/$x-unfinished"
                for r in 00 01; do mkfile "nm/mp_rank_$r/$x.ckpt" 4; done
        }
        mkdir -p nm/mp_rank_00 nm/mp_rank_01
        start_daemon log -w "$T/nm" --preset nemo --monitor val_loss --keep-top-k 1 --keep-last 1 --settle 0
        mp_save 2.10 100
        rm "nm/$n--val_loss=2.10-step=100-unfinished"
        mp_save 2.50 200
        rm "nm/$n--val_loss=2.50-step=200-unfinished"
        for r in 00 01; do wait_names nm/mp_rank_$r "$n--val_loss=2.10-step=100.ckpt" "$n--val_loss=2.50-step=200.ckpt"; done
        # the last save: its files closed under the marker are decided at
        # once (settle 0), before status answers, and displace nothing
        mp_save 2.30 300
        "$CKPTD" status >/dev/null 2>&1 || fail "status failed"
        for r in 00 01; do
                assert_names nm/mp_rank_$r "$n--val_loss=2.10-step=100.ckpt" "$n--val_loss=2.30-step=300.ckpt" \
                        "$n--val_loss=2.50-step=200.ckpt"
        done
        rm "nm/$n--val_loss=2.30-step=300-unfinished"
        for r in 00 01; do wait_names nm/mp_rank_$r "$n--val_loss=2.10-step=100.ckpt" "$n--val_loss=2.30-step=300.ckpt"; done
}

# The watch inside a directory without its marker outlives what may take
# it away: a rescan of the root after a read error (under preset auto the
# directory being written was a run of its own, which the rescan drops),
# and a directory renamed over an empty one of the same name.
test_marker_watch_survives_rescans() {
        mkdir -p root/hf/checkpoint-100
        mkfile root/hf/checkpoint-100/model.safetensors 2
        echo '{"log_history": [{"step": 100, "eval_loss": 1.0}]}' >root/hf/checkpoint-100/trainer_state.json
        old root/hf/checkpoint-100/* root/hf/checkpoint-100
        cat >c.conf <<EOC
check_interval = 1;
watch = ( { path = "$T/root"; preset = "auto"; monitor = "eval_loss"; keep_top_k = 1; keep_last = 1;
            settle = 0.2; } );
EOC
        start_daemon log -c c.conf
        mkdir root/hf/checkpoint-200
        mkfile root/hf/checkpoint-200/model.safetensors 2
        # a HF run elsewhere (moved in whole) whose trainer_state.json
        # reads badly, then well
        mkdir -p other/checkpoint-5
        echo '{' >other/checkpoint-5/trainer_state.json
        mv other root/
        wait_for 30 grep -q "other.*trainer_state.json" log || fail "no read error: $(cat log)"
        echo '{"log_history": []}' >root/other/checkpoint-5/trainer_state.json
        wait_for 30 grep -q "read without errors again" log || fail "no rescan: $(cat log)"
        assert_names root/hf checkpoint-100 checkpoint-200
        echo '{"log_history": [{"step": 200, "eval_loss": 0.5}]}' >root/hf/checkpoint-200/trainer_state.json
        wait_names root/hf checkpoint-200
        stop_daemon log
        rm -rf root
        # renamed over an empty checkpoint-200
        hf_ckpt100 out
        mkdir out/checkpoint-200
        start_daemon log -w "$T/out" --preset huggingface --keep-last 1 --settle 0.2
        mkdir out/tmp-checkpoint-200
        mkfile out/tmp-checkpoint-200/model.safetensors 2
        mv -T out/tmp-checkpoint-200 out/checkpoint-200
        wait_for 30 quiet_for_2s || fail "ckptd never idles"
        echo '{"log_history": []}' >out/checkpoint-200/trainer_state.json
        wait_names out checkpoint-200
        stop_daemon log
}

# -t looks at the disk: names matched, monitor found or not (with the
# hint), layouts found by auto; the exit status stays that of the config.
test_t_checks_disk() {
        lightning_47 run
        cat >c.conf <<EOC
watch = ( { path = "$T/run"; preset = "lightning"; monitor = "val_loss"; } );
EOC
        "$CKPTD" -t -c c.conf >out 2>err || fail "-t failed: $(cat out err)"
        assert_grep "on disk *47 checkpoints matched in 1 of 1 directory" out
        assert_grep "val_loss found for 0 of 47 checkpoints; 1 run kept whole, none carries it" out
        assert_grep "names carry epoch, step" out
        # a pattern that matches nothing says so
        cat >c.conf <<EOC
watch = ( { path = "$T/run"; pattern = "epoch_{epoch}-val_loss={val_loss}.pt"; monitor = "val_loss"; } );
EOC
        "$CKPTD" -t -c c.conf >out 2>err || fail "-t failed: $(cat out err)"
        assert_grep "0 checkpoints matched in 0 of 1 directory (no name matches: nothing will be touched)" out
        mkdir root
        (cd root && auto_trees)
        "$CKPTD" -t -w "$T/root" --preset auto --keep-last 1 >out 2>err || fail "-t failed: $(cat out err)"
        assert_grep "layout *hf: huggingface (checkpoint-N directories holding trainer_state.json)" out
        assert_grep "layout *tf: tensorflow" out
        assert_grep "of no known layout: left alone" out
        # a missing watch path is not checked, and not an error of -t
        "$CKPTD" -t -w "$T/nowhere" --preset auto --keep-last 1 >out 2>err || fail "-t failed: $(cat out err)"
        assert_grep "not checked: No such file or directory" out
}

# An unknown layout is left alone and -l says so.
test_auto_unknown_left_alone() {
        mkdir run
        for s in 1 2 3; do mkfile "run/epoch=$s.pt" 1; done
        old run/*
        "$CKPTD" -l -w "$T/run" --preset auto --keep-last 1 >list
        assert_grep "layout: not recognised" list
        assert_grep "nothing in it is touched" list
        "$CKPTD" -1 -w "$T/run" --preset auto --keep-last 1 2>err
        assert_names run epoch=1.pt epoch=2.pt epoch=3.pt
}

run_tests
