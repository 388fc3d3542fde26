#!/usr/bin/env bash
# Fail closed: a read that fails with anything but ENOENT (a pointer file, a
# run, a checkpoint's tree or metric, EMFILE) keeps what it could protect,
# is logged with its errno, counted, and retried; it never turns into a
# deletion. Errors are made real without root's CAP_DAC_OVERRIDE: ckptd runs
# as nobody on trees it owns, with modes 000 here and there, or under a small
# RLIMIT_NOFILE.
. "$(dirname "$0")/../lib.sh"

old() { touch -h -d "-1 hour" "$@"; }

# "${NOBODY[@]}" CMD...: run CMD without privileges (nobody cannot read a
# mode 000 file even when it owns it). setpriv execs CMD, so a daemon
# started with & has the pid $! and can be stopped by it.
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --)
as_nobody() { "${NOBODY[@]}" "$@"; }

# stop_nobody_daemon: SIGTERM to $DPID, gone within 20 s.
stop_nobody_daemon() {
        kill -TERM "$DPID"
        wait_for 20 eval "! kill -0 $DPID 2>/dev/null" || fail "ckptd did not stop"
}

# give_to_nobody: $T and all in it belong to nobody, reachable by it.
give_to_nobody() {
        chmod 755 "$T"
        chown -R nobody:nogroup "$T"
}

# deepspeed_run DIR: global_step1..3, an hour old, `latest` naming global_step1.
deepspeed_run() {
        mkdir -p "$1"
        for s in 1 2 3; do
                mkdir -p "$1/global_step$s"
                mkfile "$1/global_step$s/mp_rank_00_model_states.pt" 4
        done
        echo global_step1 >"$1/latest"
        old "$1"/global_step*/* "$1"/global_step* "$1/latest"
}

# hf_ckpt STEP EVAL_LOSS BEST: a HF Trainer checkpoint in out/.
hf_ckpt() {
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

HFLAGS=(--preset huggingface --monitor eval_loss --keep-top-k 1 --keep-last 1)

# The issue's repro: one failed read of `latest` (EACCES here, EIO on a
# network filesystem) and --keep-last 1 deleted global_step1, exit 0, no
# message.
test_deepspeed_unreadable_latest_keeps_what_it_names() {
        need_root
        deepspeed_run "$T/run"
        chmod 000 "$T/run/latest"
        give_to_nobody
        assert_exit 0 as_nobody "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        assert_grep "$T/run: cannot read pointer file latest: Permission denied (EACCES); keeping the whole run (3 checkpoints)" err
        assert_grep "deleted 0 checkpoints, freed 0B; kept 3 (.*); kept 3 checkpoints after read errors (1 run kept whole)" err
        # -l says why, in the table and in JSON
        as_nobody "$CKPTD" -l --preset deepspeed --keep-last 1 -w "$T/run" >list
        assert_grep "kept whole: cannot read pointer file latest: Permission denied (EACCES)" list
        [ "$(grep -c '^  keep .*unreadable' list)" = 3 ] || fail "not every checkpoint listed as unreadable: $(cat list)"
        as_nobody "$CKPTD" -l --json --preset deepspeed --keep-last 1 -w "$T/run" >list.json
        $PY - list.json <<'EOP' || fail "JSON: $(cat list.json)"
import json, sys
run = json.load(open(sys.argv[1]))["watches"][0]["runs"][0]
assert run["read_error"]["errno"] == "EACCES", run["read_error"]
assert run["read_error"]["what"] == "pointer file latest", run["read_error"]
for c in run["checkpoints"]:
    assert c["verdict"] == "keep" and "unreadable" in c["reasons"], c
EOP
        # readable again: the pointer pins global_step1, the policy the newest
        chmod 644 "$T/run/latest"
        as_nobody "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err2
        assert_names "$T/run" global_step1 global_step3 latest
}

# with_fault FUNC MATCH ERRNO CMD...: CMD with the Nth=1 call of FUNC on a
# path containing MATCH failing with ERRNO (tests/fault/fault.c).
with_fault() {
        [ -n "${FAULT_SO:-}" ] && [ -f "$FAULT_SO" ] || skip "no fault shim (FAULT_SO, make build/fault.so)"
        local fn=$1 match=$2 e=$3
        shift 3
        # ASan wants to come first; the shim is never sanitized (tests/fault/lib.bash)
        env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
                LD_PRELOAD="$FAULT_SO" FAULT_CALL="$fn" FAULT_NTH=1 FAULT_REPEAT="${FAULT_REPEAT:-}" FAULT_MATCH="$match" FAULT_ERRNO="$e" \
                FAULT_LOG="$T/fired" "$@"
}

# The issue's repro exactly: one EIO on the read of `latest`.
test_deepspeed_eio_reading_latest() {
        deepspeed_run "$T/run"
        assert_exit 0 with_fault read latest EIO "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err
        [ -s "$T/fired" ] || fail "the fault did not fire"
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        assert_grep "cannot read pointer file latest: Input/output error (EIO)" err
}

# DeepSpeed rewrites `latest` in place (open "w", then the tag): a read
# between the two finds it empty, which names nothing it could be taken to
# unpin. -1 keeps the run whole; the daemon too, until the trainer's close
# of the file, after which it reads the pointer and keeps what it names.
test_deepspeed_latest_caught_empty_keeps_the_run() {
        deepspeed_run "$T/run"
        : >"$T/run/latest"
        assert_exit 0 "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        assert_grep "cannot read pointer file latest: No data available (ENODATA)" err
        start_daemon d.log --preset deepspeed --keep-last 1 --settle 0.2 -w "$T/run"
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        echo global_step1 >"$T/run/latest"
        wait_names "$T/run" global_step1 global_step3 latest
        assert_grep "run: read without errors again" d.log
        stop_daemon d.log
}

# A trainer may write `latest` in more than one write(2): a read between
# two finds a part ("global_", or "1" of "10") that names another
# checkpoint or none. Held open for writing, it is not read: the run is kept
# whole, by -1 and by the daemon at a new save, until the writer's close.
test_deepspeed_latest_caught_half_written_keeps_the_run() {
        deepspeed_run "$T/run"
        exec 7>"$T/run/latest"
        printf 'global_' >&7
        assert_exit 0 "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err 7>&- # the shell holds it open, not ckptd
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        assert_grep "cannot read pointer file latest (open for writing)" err
        printf 'step1\n' >&7
        exec 7>&-
        start_daemon d.log --preset deepspeed --keep-last 1 --settle 0.2 -w "$T/run"
        wait_names "$T/run" global_step1 global_step3 latest
        exec 7>"$T/run/latest"
        printf 'global_' >&7
        mkdir "$T/run/tmp"
        mkfile "$T/run/tmp/mp_rank_00_model_states.pt" 4
        mv "$T/run/tmp" "$T/run/global_step4"
        wait_for 20 grep -q "pointer file latest (open for writing)" d.log || fail "not kept whole: $(cat d.log)"
        assert_names "$T/run" global_step1 global_step3 global_step4 latest
        printf 'step1\n' >&7
        exec 7>&-
        wait_names "$T/run" global_step1 global_step4 latest
        stop_daemon d.log
}

# Its writer may close it between two writes: a part that names no
# checkpoint of the run, written within settle, keeps the run whole too;
# quiet for settle, or dated far ahead, such a name says nothing (what it
# named was removed), and the daemon decides the run again then.
test_deepspeed_latest_closed_half_written_keeps_the_run() {
        deepspeed_run "$T/run"
        printf 'global_' >"$T/run/latest"
        assert_exit 0 "$CKPTD" -1 --preset deepspeed --keep-last 1 --settle 600 -w "$T/run" 2>err
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        assert_grep "cannot read pointer file latest (written just now, naming no checkpoint)" err
        printf 'step1' >>"$T/run/latest"
        assert_exit 0 "$CKPTD" -1 --preset deepspeed --keep-last 1 --settle 600 -w "$T/run" 2>err
        assert_names "$T/run" global_step1 global_step3 latest
        # dated a day ahead (a clock that lies): its time says nothing
        echo global_step9 >"$T/run/latest"
        touch -d "+1 day" "$T/run/latest"
        assert_exit 0 "$CKPTD" -1 --preset deepspeed --keep-last 1 --settle 600 -w "$T/run" 2>err
        assert_names "$T/run" global_step3 latest
        deepspeed_run "$T/run2"
        echo global_step9 >"$T/run2/latest"
        old "$T/run2/latest"
        assert_exit 0 "$CKPTD" -1 --preset deepspeed --keep-last 1 --settle 600 -w "$T/run2" 2>err
        assert_names "$T/run2" global_step3 latest
        # the daemon: quiet for settle, which no event tells, the run is
        # decided again (not at check_interval)
        deepspeed_run "$T/run3"
        cat >c.conf <<EOC
check_interval = 3600;
watch = ( { path = "$T/run3"; preset = "deepspeed"; keep_last = 1; settle = 1; } );
EOC
        start_daemon d.log -c c.conf
        wait_names "$T/run3" global_step1 global_step3 latest
        printf 'global_' >"$T/run3/latest"
        wait_for 20 grep -q "pointer file latest (written just now, naming no checkpoint)" d.log ||
                fail "not kept whole: $(cat d.log)"
        wait_names "$T/run3" global_step3 latest
        stop_daemon d.log
}

# A `latest` set by hand to a directory's name as a shell completes it
# ("./global_step1/.", "global_step1/") pins that checkpoint.
test_deepspeed_latest_with_dots_and_slashes_pins() {
        local form
        for form in ./global_step1/. global_step1/ "$T/run/global_step1/./"; do
                rm -rf "$T/run"
                deepspeed_run "$T/run"
                printf '%s\n' "$form" >"$T/run/latest"
                old "$T/run/latest"
                assert_exit 0 "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err
                assert_names "$T/run" global_step1 global_step3 latest
        done
}

# A `latest` that is a symlink to a file kept elsewhere (a restore point, a
# DVC or git-annex checkout) names what that file holds, which ckptd does not
# read (it follows no symlink): the run is kept whole, said so, and the
# daemon deletes nothing there either. One whose target names a checkpoint
# of the run pins that one, as any symlink does.
test_deepspeed_latest_symlink_to_elsewhere_keeps_the_run() {
        deepspeed_run "$T/run"
        mkdir "$T/shared"
        echo global_step1 >"$T/shared/restore_point"
        ln -sfn ../shared/restore_point "$T/run/latest"
        assert_exit 0 "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        assert_grep "run: cannot read pointer file latest (a symlink naming no checkpoint, not followed): .*; keeping the whole run (3 checkpoints)" err
        start_daemon d.log --preset deepspeed --keep-last 1 --settle 0.2 -w "$T/run"
        wait_for 20 grep -q "pointer file latest (a symlink naming no checkpoint" d.log ||
                fail "the daemon did not say why the run is kept: $(cat d.log)"
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        # pointed at a checkpoint of the run, it pins that one
        ln -sfn global_step2 "$T/run/latest"
        wait_names "$T/run" global_step2 global_step3 latest
        stop_daemon d.log
}

# A `latest` holding a control character is no name of one line (torn, or
# not a pointer): it may be meant to name any checkpoint, so the run is
# kept whole, as one caught empty is.
test_deepspeed_latest_with_a_control_character_keeps_the_run() {
        local content
        for content in 'global_step1\x7f' 'global_step1\nglobal_st'; do
                deepspeed_run "$T/run"
                printf "$content" >"$T/run/latest"
                assert_exit 0 "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err
                assert_names "$T/run" global_step1 global_step2 global_step3 latest
                assert_grep "cannot read pointer file latest: Bad message (EBADMSG); keeping the whole run" err
                rm -rf "$T/run"
        done
}

# EINTR is no ENOENT either: an lstat of an entry interrupted keeps the run
# (the entry may be a keep file or a symlink pin); a flock probe that fails
# keeps its checkpoint (37: ENOLCK, which the shim takes as a number).
test_eintr_and_flock_errors_keep() {
        deepspeed_run "$T/run"
        rm "$T/run/latest"
        assert_exit 0 with_fault statx global_step1 EINTR "$CKPTD" -1 --preset deepspeed --keep-last 1 \
                -w "$T/run" 2>err
        [ -s "$T/fired" ] || fail "the fault did not fire"
        assert_names "$T/run" global_step1 global_step2 global_step3
        assert_grep "cannot read entry global_step1: Interrupted system call (EINTR)" err
        rm -f "$T/fired"
        # flock pins are read from /proc/locks (no lock taken): a failed
        # read of it keeps every victim
        FAULT_REPEAT=1 assert_exit 0 with_fault open /proc/locks 37 "$CKPTD" -1 --preset deepspeed --keep-last 1 \
                -w "$T/run" 2>err
        [ -s "$T/fired" ] || fail "the fault did not fire"
        assert_names "$T/run" global_step1 global_step2 global_step3
        assert_grep "cannot read /proc/locks: No locks available; keeping every checkpoint to be deleted" err
}

# Which directories another ckptd locks above a bind-mounted watch root
# comes from /proc/self/mountinfo (ckptd(8), One daemon per tree): when it
# cannot be read, nothing is swept, and the one-shot says why.
test_unreadable_mountinfo_sweeps_nothing() {
        deepspeed_run "$T/run"
        local rc=0
        with_fault fopen mountinfo EIO "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err || rc=$?
        [ -s "$T/fired" ] || fail "the fault did not fire"
        [ "$rc" = 1 ] || fail "exit $rc, expected 1: $(cat err)"
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        assert_grep "cannot tell whether watch root $T/run is a bind mount (/proc/self/mountinfo): Input/output error" err
}

# Without any injection: HF under a small fd limit. The walk of each
# checkpoint and the read of its trainer_state.json fail with EMFILE, which
# used to read as "no metric" and deleted best#1.
test_hf_small_fd_limit_deletes_nothing_silently() {
        hf_ckpt 500 0.9 out/checkpoint-500
        hf_ckpt 1000 0.2 out/checkpoint-500
        hf_ckpt 1500 0.6 out/checkpoint-500
        hf_ckpt 2000 0.7 out/checkpoint-500
        local rc n
        # From too few fds to lock the root up to enough for part of the
        # scan: at every limit the best, the pinned and the newest stay, and
        # whatever else is kept is kept with a reason.
        for n in 6 7 8 9 10 11 12 13 14; do
                rc=0
                (ulimit -n "$n" && exec "$CKPTD" -1 -w "$T/out" "${HFLAGS[@]}") 2>err || rc=$?
                assert_exists out/checkpoint-1000
                assert_exists out/checkpoint-500
                assert_exists out/checkpoint-2000
                if [ -e out/checkpoint-1500 ]; then
                        grep -q -e "EMFILE" -e "Too many open files" err || fail "limit $n: kept without a reason: $(cat err)"
                fi
                [ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "limit $n: exit $rc: $(cat err)"
        done
        # with the fds it needs, the policy runs as before
        "$CKPTD" -1 -w "$T/out" "${HFLAGS[@]}" 2>err2
        assert_names out checkpoint-1000 checkpoint-2000 checkpoint-500
}

# A malformed metric file (EINVAL) is no absent one: that checkpoint is kept
# and logged; the others are ranked without it.
test_malformed_metric_keeps_that_checkpoint() {
        hf_ckpt 500 0.9 out/checkpoint-2000
        hf_ckpt 1000 0.2 out/checkpoint-2000
        hf_ckpt 1500 0.6 out/checkpoint-2000
        hf_ckpt 2000 0.7 out/checkpoint-2000
        echo '{"log_history": [' >out/checkpoint-1000/trainer_state.json
        old out/checkpoint-1000/trainer_state.json
        assert_exit 0 "$CKPTD" -1 -w "$T/out" "${HFLAGS[@]}" 2>err
        # 1000 kept (unreadable), best of the rest is 1500, newest 2000
        assert_names out checkpoint-1000 checkpoint-1500 checkpoint-2000
        assert_grep "$T/out/checkpoint-1000: cannot read its metric: Invalid argument (EINVAL); keeping it" err
        "$CKPTD" -l -w "$T/out" "${HFLAGS[@]}" >list
        grep 'checkpoint-1000' list | grep -q 'unreadable' || fail "reason not listed: $(cat list)"
}

# A name whose monitor is not one number (a torch tensor formatted into an
# f-string, a decimal comma, a second value) may carry the best: kept as
# unreadable, never ranked after every number as "no metric". A plain name
# beside them is decided as ever, as is Lightning's doubled "val_loss=".
test_monitor_in_the_name_not_one_number_keeps_that_checkpoint() {
        local n
        mkdir run
        for n in 'epoch=0-val_loss=0.9.ckpt' "epoch=1-val_loss=tensor(0.0100, device='cuda:0').ckpt" \
                'epoch=2-val_loss=0,05.ckpt' 'epoch=3-val_loss=0.9-val_loss=0.01.ckpt' \
                'epoch=4-val_loss=val_loss=0.80.ckpt' 'epoch=5-val_loss=0.5.ckpt' 'epoch=6-val_loss=0.7.ckpt'; do
                mkfile "run/$n" 4
        done
        old run/*
        assert_exit 0 "$CKPTD" -1 -w "$T/run" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 2>err
        assert_names run "epoch=1-val_loss=tensor(0.0100, device='cuda:0').ckpt" 'epoch=2-val_loss=0,05.ckpt' \
                'epoch=3-val_loss=0.9-val_loss=0.01.ckpt' 'epoch=5-val_loss=0.5.ckpt' 'epoch=6-val_loss=0.7.ckpt'
        assert_grep "$T/run/epoch=2-val_loss=0,05.ckpt: cannot read its metric (its name does not give it as one number): Invalid argument (EINVAL); keeping it" err
        assert_grep "deleted $T/run/epoch=4-val_loss=val_loss=0.80.ckpt (policy, val_loss=0.80," err
        assert_grep "kept 3 checkpoints after read errors" err
        # where the run's metric log has the value, the log ranks them
        printf 'epoch,step,val_loss\n1,10,0.01\n2,20,0.05\n3,30,0.3\n5,50,0.5\n6,60,0.7\n' >metrics.csv
        old metrics.csv
        assert_exit 0 "$CKPTD" -1 -w "$T/run" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 2>err
        assert_names run "epoch=1-val_loss=tensor(0.0100, device='cuda:0').ckpt" 'epoch=6-val_loss=0.7.ckpt'
        assert_no_grep "cannot read" err
}

# A daemon or pass that is not root may not open every file of a directory
# checkpoint (mode 000, another user's 0600 file): asked whether one is
# being written, such a file says what its mtime says, as where leases
# cannot be taken, and the run is decided as before, not kept whole.
test_file_not_ours_to_open_in_the_newest_directory() {
        need_root
        mkdir -p ds
        for s in 100 200 300 400; do
                mkdir -p "ds/global_step$s"
                mkfile "ds/global_step$s/mp_rank_00_model_states.pt" 4
        done
        old ds/*/* ds/*
        give_to_nobody
        chmod 000 ds/global_step400/mp_rank_00_model_states.pt
        assert_exit 0 as_nobody "$CKPTD" -1 -w "$T/ds" --preset deepspeed --keep-last 1 2>err
        assert_names ds global_step400
        assert_no_grep "keeping the whole run" err
}

# A run directory that cannot be opened was skipped with rc 0 and no
# message; now it is logged (and nothing in it is touched).
test_unreadable_run_directory_is_logged() {
        need_root
        deepspeed_run "$T/root/a"
        deepspeed_run "$T/root/b"
        give_to_nobody
        chmod 000 "$T/root/a"
        assert_exit 0 as_nobody "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/root" 2>err
        chmod 755 "$T/root/a"
        assert_names "$T/root/a" global_step1 global_step2 global_step3 latest
        assert_names "$T/root/b" global_step1 global_step3 latest
        assert_grep "$T/root/a: cannot read the run directory: Permission denied (EACCES)" err
        assert_grep "(1 run kept whole)" err
}

# A watch root that cannot be listed: nothing could be decided, -1 fails.
test_unreadable_root_fails_once() {
        need_root
        deepspeed_run "$T/run"
        give_to_nobody
        chmod 000 "$T/run"
        assert_exit 1 as_nobody "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err
        chmod 755 "$T/run"
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        # named with its errno, by the lock or the scan, whichever meets it first
        assert_grep "$T/run.*Permission denied" err
}

# A directory checkpoint with a subtree nobody can read: it may hold a write
# from a second ago, so it is kept; the others are decided without it.
test_unreadable_tree_keeps_that_checkpoint() {
        need_root
        deepspeed_run "$T/run"
        rm "$T/run/latest"
        mkdir "$T/run/global_step1/shards"
        give_to_nobody
        chmod 000 "$T/run/global_step1/shards"
        assert_exit 0 as_nobody "$CKPTD" -1 --preset deepspeed --keep-last 1 -w "$T/run" 2>err
        chmod 755 "$T/run/global_step1/shards"
        assert_names "$T/run" global_step1 global_step3
        assert_grep "$T/run/global_step1: cannot read its tree: Permission denied (EACCES); keeping it" err
}

# The floor never evicts what a failed read kept: min_free beyond the disk
# wants everything gone, the run kept whole stays whole (exit 3: unmet).
test_floor_never_evicts_a_run_kept_whole() {
        need_root
        deepspeed_run "$T/run"
        chmod 000 "$T/run/latest"
        give_to_nobody
        assert_exit 3 as_nobody "$CKPTD" -1 --preset deepspeed --keep-last 1 --min-free 100% -w "$T/run" 2>err
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
}

# The daemon: the error is logged once however often the run is retried
# (every check_interval), counted in the metrics file, and once the pointer
# reads again the run is decided.
test_daemon_logs_once_counts_and_retries() {
        need_root
        deepspeed_run "$T/run"
        chmod 000 "$T/run/latest"
        cat >"$T/c.conf" <<EOC
check_interval = 1;
metrics_file = "$T/metrics.prom";
watch = ( { path = "$T/run"; preset = "deepspeed"; keep_last = 1; } );
EOC
        # STATUS= through a notify socket that nobody may write to
        cat >listen.py <<'EOP'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(65536).decode(errors="replace").replace("\n", "|") + "\n")
EOP
        $PY listen.py "$T/notify.sock" "$T/notify" &
        echo $! >>"$T/pids"
        wait_for 20 test -S "$T/notify.sock" || fail "listener did not start"
        give_to_nobody
        NOTIFY_SOCKET=$T/notify.sock "${NOBODY[@]}" "$CKPTD" -c "$T/c.conf" 2>d.log &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        wait_for 20 grep -q '^ckptd_unreadable_runs 1$' "$T/metrics.prom" ||
                fail "no unreadable run in metrics: $(cat "$T/metrics.prom" d.log)"
        # three retries at least (check_interval 1), still one message
        wait_for 20 eval "[ \$(grep -c 'cannot read pointer file latest' d.log) -ge 1 ]" || fail "not logged"
        local deadline=$(($(date +%s) + 4))
        while [ "$(date +%s)" -lt "$deadline" ]; do
                [ -e "$T/run/global_step1" ] && [ -e "$T/run/global_step2" ] || fail "deleted while unreadable"
                sleep 0.2
        done
        [ "$(grep -c 'cannot read pointer file latest' d.log)" = 1 ] || fail "logged more than once: $(cat d.log)"
        wait_for 20 grep -q 'STATUS=.*; 1 run kept whole after read errors' "$T/notify" || fail "STATUS=: $(cat "$T/notify")"
        assert_grep '^ckptd_read_errors_total 1$' "$T/metrics.prom"
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        chmod 644 "$T/run/latest"
        wait_for 20 eval "[ ! -e '$T/run/global_step2' ]" || fail "not retried: $(cat d.log)"
        assert_names "$T/run" global_step1 global_step3 latest
        assert_grep "$T/run: read without errors again" d.log
        wait_for 20 grep -q '^ckptd_unreadable_runs 0$' "$T/metrics.prom" || fail "gauge not cleared"
        status_clear() { tail -n 1 "$T/notify" | grep 'STATUS=watching' | grep -vq 'after read errors'; }
        wait_for 20 status_clear || fail "STATUS= not cleared: $(cat "$T/notify")"
        stop_nobody_daemon
}

# A reload reads the run again: a read error still there is not logged or
# counted again (ckptd_read_errors_total counts each error once).
test_reload_tells_a_read_error_once() {
        deepspeed_run "$T/run"
        rm "$T/run/latest"
        mkdir "$T/run/latest" # EISDIR, root or not
        mkdir rt
        export RUNTIME_DIRECTORY=$T/rt
        cat >"$T/c.conf" <<EOC
metrics_file = "$T/metrics.prom";
watch = ( { path = "$T/run"; preset = "deepspeed"; keep_last = 1; } );
EOC
        start_daemon d.log -c "$T/c.conf"
        wait_for 20 grep -q '^ckptd_read_errors_total 1$' "$T/metrics.prom" ||
                fail "not counted: $(cat "$T/metrics.prom" d.log)"
        for _ in 1 2 3; do
                "$CKPTD" reload "$DPID" >out 2>&1 || fail "reload failed: $(cat out)"
        done
        assert_grep '^ckptd_read_errors_total 1$' "$T/metrics.prom"
        assert_grep '^ckptd_unreadable_runs 1$' "$T/metrics.prom"
        [ "$(grep -c 'cannot read pointer file latest' d.log)" = 1 ] || fail "logged again: $(cat d.log)"
        assert_names "$T/run" global_step1 global_step2 global_step3 latest
        stop_daemon d.log
}

# A run whose watch keeps failing (EACCES from a security module, say) is
# still decided by each rescan of the tree (poll_interval), and the failure
# is said once, not at every rescan.
test_watch_failing_every_rescan_is_said_once() {
        local i
        mkdir -p root/a root/b
        cat >c.conf <<EOC
watch = ( { path = "$T/root"; preset = "deepspeed"; keep_last = 1; poll_interval = 1; } );
EOC
        FAULT_REPEAT=1 with_fault inotify_add_watch root/b EACCES "$CKPTD" -c c.conf --log-target stderr 2>d.log &
        echo "$!" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        # with_fault is a function: the daemon is the background shell's child
        DPID=$(pgrep -P "$!" -x ckptd) || fail "no ckptd under $!"
        echo "$DPID" >>"$T/pids"
        for i in 1 2 3; do
                mkdir "root/b/global_step$i"
                mkfile "root/b/global_step$i/mp_rank_00_model_states.pt" 4
                old "root/b/global_step$i" "root/b/global_step$i"/*
                wait_for 20 eval "[ \"\$(ls root/b)\" = global_step$i ]" || fail "poll $i did not decide b: $(ls root/b) $(cat d.log)"
        done
        [ "$(grep -c 'cannot watch .*root/b: Permission denied' d.log)" = 1 ] ||
                fail "said other than once: $(cat d.log)"
        kill -TERM "$DPID"
        wait_for 20 eval "! kill -0 $DPID 2>/dev/null" || fail "ckptd did not stop"
}

# A run moved in after start-up that cannot be read is reported (at the
# next check_interval, by the rescan of the whole watch), and decided once
# it reads; from then on it is watched: its next save is decided too.
test_daemon_reports_a_new_unreadable_run() {
        need_root
        mkdir -p "$T/root"
        cat >"$T/c.conf" <<EOC
check_interval = 1;
watch = ( { path = "$T/root"; preset = "deepspeed"; keep_last = 1; } );
EOC
        deepspeed_run "$T/staging/new"
        rm "$T/staging/new/latest"
        give_to_nobody
        chmod 000 "$T/staging/new"
        "${NOBODY[@]}" "$CKPTD" -c "$T/c.conf" 2>d.log &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        mv "$T/staging/new" "$T/root/new"
        wait_for 20 grep -q "$T/root/new: cannot read the run directory: Permission denied (EACCES)" d.log ||
                fail "not reported: $(cat d.log)"
        chmod 755 "$T/root/new"
        wait_for 20 eval "[ ! -e '$T/root/new/global_step2' ]" || fail "not decided once readable: $(cat d.log)"
        assert_names "$T/root/new" global_step3
        mkdir "$T/root/new/global_step4"
        mkfile "$T/root/new/global_step4/mp_rank_00_model_states.pt" 4
        chown -R nobody:nogroup "$T/root/new/global_step4"
        wait_for 20 eval "[ ! -e '$T/root/new/global_step3' ]" || fail "the next save was not decided: $(cat d.log)"
        assert_names "$T/root/new" global_step4
        stop_nobody_daemon
}

run_tests
