#!/usr/bin/env bash
# In use means untouchable: a checkpoint another process has open (a trainer
# writing it in place, an eval job reading it) is not deleted while open, and
# is deleted by the next sweep after it is closed. Flock pins are read from
# /proc/locks: ckptd never takes a lock on a checkpoint.
. "$(dirname "$0")/../lib.sh"

# hold MODE PATH: a python process holding PATH open, in the background.
# MODE "read": an eval job that opened it and reads; "write": a trainer that
# writes the final name in place in one big write() (Lightning 2.0-2.3) and
# has not closed it yet, mtime an hour old as at the start of a long write
# ("fresh": as just written);
# "publish", "link" and "link-unlink": a trainer that writes PATH.tmp and
# renames it to PATH, or links it there (and removes PATH.tmp), before it
# closes it; TMP, when given, instead of PATH.tmp.
# Waits until the file is open; the pid goes to $T/pids and $HELD.
hold() {
        rm -f "$T/ready"
        $PY - "$1" "$2" "$T/ready" "${3:-$2.tmp}" <<'EOF' &
import os, sys, time
mode, path, ready, tmp = sys.argv[1:5]
if mode == "read":
    fd = os.open(path, os.O_RDONLY)
    os.read(fd, 4096)
elif mode == "rdwr":
    fd = os.open(path, os.O_RDWR)  # as np.memmap(mode="r+") holds it
elif mode == "wronly":
    fd = os.open(path, os.O_WRONLY)  # a save again in place, nothing written yet
elif mode in ("publish", "link", "link-unlink"):
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"\1" * (1 << 20))
    (os.rename if mode == "publish" else os.link)(tmp, path)
    if mode == "link-unlink":
        os.unlink(tmp)
else:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"\1" * (8 << 20))
    if mode == "write":
        old = time.time() - 3600
        os.utime(fd, (old, old))
open(ready, "w").close()
time.sleep(600)
EOF
        HELD=$!
        echo $HELD >>"$T/pids"
        wait_for 10 test -e "$T/ready" || fail "the holder of $2 did not start"
}

# release PID: the holder exits and its files are closed.
release() {
        kill "$1"
        wait "$1" 2>/dev/null || true
}

# small_disk SIZE: a tmpfs of SIZE on disk/, a filesystem of the floor's own
# (root only).
small_disk() {
        need_root
        mkdir -p disk
        mount -t tmpfs -o size="$1" tmpfs "$T/disk" || fail "cannot mount a tmpfs"
}

# fill_disk MIB: MIB of disk/ taken by another file, and a write in the
# run disk/out, which wakes the floor.
fill_disk() {
        head -c $(($1 << 20)) /dev/zero >disk/filler
        : >disk/out/train.log
}

# wait_taken NAME: the daemon's log says NAME was taken for a save still
# being written, and the decision that took it has ended (an answer to
# status comes after it).
wait_taken() {
        wait_for 20 grep -q "$1: in use: taken for a save still being written" log ||
                fail "$1 was not taken as being written: $(cat log)"
        "$CKPTD" status >/dev/null 2>&1 || fail "status failed"
}

# five plain checkpoints an hour old
five() {
        mkdir -p runs
        for s in 1 2 3 4 5; do mkfile "runs/ckpt_$s.pt" 4; done
        touch -d "-1 hour" runs/*
}

test_oneshot_keeps_open_files_until_closed() {
        five
        hold read "$T/runs/ckpt_1.pt"
        reader=$HELD
        hold write "$T/runs/ckpt_2.pt"
        writer=$HELD
        # the newest by order is the newest written too, so that rule keeps
        # nothing else
        touch -d "-30 minutes" runs/ckpt_5.pt
        "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 2>err
        assert_names runs ckpt_1.pt ckpt_2.pt ckpt_5.pt
        assert_grep "keeping $T/runs/ckpt_1.pt (in-use): another process has it open" err
        assert_grep "keeping $T/runs/ckpt_2.pt (in-use): another process has it open" err
        release $reader
        release $writer
        "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 2>err
        assert_names runs ckpt_5.pt
        assert_no_grep "in-use" err
}

test_daemon_start_keeps_open_files_and_deletes_after_close() {
        five
        hold read "$T/runs/ckpt_1.pt"
        reader=$HELD
        hold write "$T/runs/ckpt_3.pt"
        writer=$HELD
        touch -d "-30 minutes" runs/ckpt_5.pt
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0.2
        assert_names runs ckpt_1.pt ckpt_3.pt ckpt_5.pt
        assert_grep "ckpt_1.pt (in-use)" log
        assert_grep "ckpt_3.pt (in-use)" log
        release $reader
        release $writer
        # the next sweep of the run: a new checkpoint renamed into place
        mkfile new.tmp 4
        mv new.tmp runs/ckpt_6.pt
        wait_names runs ckpt_6.pt
        stop_daemon log
}

# The floor protects the newest complete checkpoint of a run. A save written
# in place whose mtime is an hour old looks complete and newest; it is open
# for writing, so the floor protects the one before it instead: while the
# save is written, the run keeps a complete checkpoint to resume from.
test_floor_keeps_the_newest_before_a_save_being_written() {
        small_disk 24m
        mkdir disk/runs
        for s in 1 2 3; do mkfile "disk/runs/ckpt_$s.pt" 1024; done
        touch -d "-2 hours" disk/runs/*
        hold write "$T/disk/runs/ckpt_9.pt"
        rc=0
        "$CKPTD" -1 -w "$T/disk/runs" --pattern 'ckpt_{step}.pt' --keep-last 10 \
                --min-free 23M 2>err || rc=$?
        assert_names disk/runs ckpt_3.pt ckpt_9.pt
        assert_grep "ckpt_9.pt: in use: taken for a save still being written" err
        # the save's bytes count as room the floor kept for it: met
        [ "$rc" = 0 ] || fail "exit $rc: $(cat err)"
}

# runs/ckpt_1..3.pt and ckpt_9.pt, a save held open for writing ($writer),
# all with mtimes two hours old: the save looks complete to a scan.
mid_write_run() {
        mkdir -p runs
        for s in 1 2 3; do mkfile "runs/ckpt_$s.pt" 4; done
        hold write "$T/runs/ckpt_9.pt"
        writer=$HELD
        touch -d "-2 hours" runs/*
}

# A daemon started while a save is written in place (one long write, its
# mtime an hour old) takes it for complete from the scan. Before its first
# sweep deletes what the save would displace from keep_last, the save is
# found open, taken as still being written, and the one before it stays;
# once the save is closed, the sweep goes on.
test_start_mid_write_keeps_what_the_save_would_displace() {
        mid_write_run
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 2 --settle 0
        wait_names runs ckpt_2.pt ckpt_3.pt ckpt_9.pt
        assert_grep "ckpt_9.pt: in use: taken for a save still being written" log
        release $writer
        wait_names runs ckpt_3.pt ckpt_9.pt
        stop_daemon log
}

# The same in one pass: ckptd -1 run while a save is written in place (its
# mtime two hours old) takes it for complete from its scan; the save is
# found open before anything it would displace from keep_last is deleted.
# A dry run says what the real pass does.
test_oneshot_mid_write_keeps_what_the_save_would_displace() {
        mid_write_run
        rc=0
        "$CKPTD" -1 -n -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 2 2>err || rc=$?
        [ "$rc" = 0 ] || fail "dry run: exit $rc: $(cat err)"
        assert_names runs ckpt_1.pt ckpt_2.pt ckpt_3.pt ckpt_9.pt
        assert_grep "$T/runs/ckpt_9.pt: in use: taken for a save still being written, not for its place" err
        assert_grep "would delete $T/runs/ckpt_1.pt" err
        assert_no_grep "would delete $T/runs/ckpt_2.pt" err
        rc=0
        "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 2 2>err || rc=$?
        [ "$rc" = 0 ] || fail "exit $rc: $(cat err)"
        assert_names runs ckpt_2.pt ckpt_3.pt ckpt_9.pt
        assert_grep "$T/runs/ckpt_9.pt: in use: taken for a save still being written, not for its place" err
        # closed, the save counts: the next pass goes on
        release $writer
        "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 2 2>err
        assert_names runs ckpt_3.pt ckpt_9.pt
        assert_no_grep "in use" err
}

# A HF Trainer restarted from scratch into its old output_dir saves
# checkpoint-1000 again in place: its trainer_state.json, the marker, is
# the old run's until the save ends. A pass (or a start) while the model
# file is open takes it for a save being written, as it does without a
# marker: the new run's only complete checkpoint is not displaced by it.
test_marked_directory_written_again_in_place_displaces_nothing() {
        local s
        for s in 500 1000; do
                mkdir -p "out/checkpoint-$s"
                mkfile "out/checkpoint-$s/model.safetensors" 4
                printf '{"global_step": %s, "log_history": [{"eval_loss": 0.5, "step": %s}]}\n' $s $s \
                        >"out/checkpoint-$s/trainer_state.json"
        done
        touch -d "-3 hours" out/checkpoint-1000/* out/checkpoint-1000
        touch -d "-2 minutes" out/checkpoint-500/* out/checkpoint-500
        hold fresh "$T/out/checkpoint-1000/model.safetensors"
        writer=$HELD
        for mode in -1 -l; do
                "$CKPTD" "$mode" -w "$T/out" --preset huggingface --keep-last 1 >list 2>err ||
                        fail "$mode: exit $?: $(cat err)"
                assert_names out checkpoint-1000 checkpoint-500
        done
        assert_grep "$T/out/checkpoint-1000: in use: taken for a save still being written, not for its place" err
        grep 'checkpoint-500' list | grep -q keep || fail "-l would delete checkpoint-500: $(cat list)"
        release $writer
        "$CKPTD" -1 -w "$T/out" --preset huggingface --keep-last 1 2>err
        assert_names out checkpoint-1000
}

# The same in the running daemon, whose floor reads such a run again before
# it evicts from it (its metric is in a file): the directory written again
# in place has a new mtime, and no event said so (nothing watches inside a
# complete directory). The floor asks it before it protects it as the
# newest written, and keeps the one it would displace; so does the run's
# next decision (a pin added), which reads such a run whole.
test_floor_asks_a_marked_directory_written_again_in_place() {
        local s loss
        small_disk 44m
        for s in 100:0.9 250:0.3 500:0.5 1000:0.1; do
                loss=${s#*:} s=${s%:*}
                mkdir -p "disk/out/checkpoint-$s"
                mkfile "disk/out/checkpoint-$s/model.safetensors" 4096
                printf '{"global_step": %s, "log_history": [{"eval_loss": %s, "step": %s}]}\n' $s "$loss" $s \
                        >"disk/out/checkpoint-$s/trainer_state.json"
        done
        # the old run's last save, its best; the restarted run's three, the
        # first of which the start deletes (the placed ones asked then)
        touch -d "-3 hours" disk/out/checkpoint-1000/* disk/out/checkpoint-1000
        touch -d "-6 minutes" disk/out/checkpoint-100/* disk/out/checkpoint-100
        touch -d "-4 minutes" disk/out/checkpoint-250/* disk/out/checkpoint-250
        touch -d "-2 minutes" disk/out/checkpoint-500/* disk/out/checkpoint-500
        start_daemon log -w "$T/disk/out" --preset huggingface --monitor eval_loss --keep-top-k 2 --keep-last 1 \
                --settle 0.2 --min-free 12M
        wait_names disk/out checkpoint-1000 checkpoint-250 checkpoint-500
        # the restarted run saves step 1000 again, in place; the disk fills
        hold fresh "$T/disk/out/checkpoint-1000/model.safetensors"
        writer=$HELD
        fill_disk 20
        wait_taken checkpoint-1000
        assert_exists disk/out/checkpoint-500
        # room again; a pin added: the run's next decision
        rm disk/filler
        : >"disk/out/checkpoint-250.keep"
        "$CKPTD" status >/dev/null 2>&1 || fail "status failed"
        wait_for 20 eval '[ "$(grep -c "checkpoint-1000: in use: taken" log)" -ge 2 ]' ||
                fail "not asked again: $(cat log)"
        # the decision that took it has ended
        "$CKPTD" status >/dev/null 2>&1 || fail "status failed"
        assert_exists disk/out/checkpoint-500
        release $writer
        stop_daemon log
}

# dcp_save DIR AGE [KIB]: a torch.distributed.checkpoint save (one shard and its
# .metadata, the marker), complete, last written AGE ago (touch -d).
dcp_save() {
        mkdir -p "$1"
        mkfile "$1/__0_0.distcp" "${3:-4096}"
        echo meta >"$1/.metadata"
        touch -d "$2" "$1"/* "$1/.metadata" "$1"
}

# A run whose index events keep current (dcp: no metric file, no pins) is
# never read again, so nothing shows the daemon a complete directory written
# again in place (a training resumed from step-750 saves step 1000 again,
# under the old .metadata). The decision that deletes (step-750's min_age
# run out) asks the complete directories it keeps for their place, though
# the run was not read again since the start asked them.
test_decision_asks_a_placed_directory_of_an_incremental_run() {
        dcp_save out/step-500 "-2 hours" 1024
        dcp_save out/step-750 "-1 second" 1024
        dcp_save out/step-1000 "-1 second" 1024
        start_daemon log -w "$T/out" --preset dcp --keep-last 1 --min-age 20 --settle 0.2
        # the start deleted one: its placed ones were asked then
        wait_names out step-1000 step-750
        hold fresh "$T/out/step-1000/__0_0.distcp"
        writer=$HELD
        wait_for 40 grep -q "step-1000: in use: taken for a save still being written" log ||
                fail "step-1000 was not asked: $(cat log)"
        "$CKPTD" status >/dev/null 2>&1 || fail "status failed"
        assert_exists out/step-750
        release $writer
        stop_daemon log
}

# The floor's side of it: an hour after the start, nothing but the floor's
# own question stands between the directory written again in place and the
# eviction of the one it displaces. Before its first eviction from a run,
# the floor asks the old directories it protects there for their place.
test_floor_asks_an_old_placed_directory_of_an_incremental_run() {
        small_disk 44m
        dcp_save disk/out/step-750 "-3 hours"
        dcp_save disk/out/step-1000 "-2 hours"
        start_daemon log -w "$T/disk/out" --preset dcp --keep-last 2 --settle 0.2 --min-free 12M
        hold fresh "$T/disk/out/step-1000/__0_0.distcp"
        writer=$HELD
        fill_disk 22
        wait_taken step-1000
        assert_exists disk/out/step-750
        release $writer
        stop_daemon log
}

# What such a question finds in use keeps the room of one more checkpoint,
# not every victim of its run: a file held open read-write for hours (an
# np.memmap in mode "r+") takes the newest out of its place, the one before
# it is protected instead, and the floor still evicts the oldest. Its bytes
# are no room kept for a save: the floor's shortfall is said.
test_floor_held_old_directory_keeps_one_more_and_evicts_the_rest() {
        small_disk 40m
        dcp_save disk/out/step-500 "-4 hours"
        dcp_save disk/out/step-750 "-3 hours"
        dcp_save disk/out/step-1000 "-2 hours"
        hold rdwr "$T/disk/out/step-1000/__0_0.distcp"
        holder=$HELD
        start_daemon log -w "$T/disk/out" --preset dcp --keep-last 3 --settle 0.2 --min-free 16M
        # two evictions' worth short: step-500 and step-750 would go
        fill_disk 18
        wait_for 20 test ! -e disk/out/step-500 || fail "the floor evicted nothing: $(cat log)"
        wait_taken step-1000
        assert_exists disk/out/step-750
        assert_exists disk/out/step-1000
        assert_grep "critical: free space on the filesystem of .* short of the floor" log
        release $holder
        stop_daemon log
}

# The place a directory so taken leaves goes to the one before it, which is
# asked whatever its age: here a save again in place of step-750, ten
# minutes old by its files, which no pass asked (neither the newest by
# order, step-1000, nor the last written, step-250, whose eval.json is a
# minute old). Both taken, step-500 is the newest complete one and stays;
# -1 -n names the same evictions (none); the floor is not met (exit 3).
test_oneshot_floor_asks_each_place_a_held_directory_moves_to() {
        local dry="" rc
        small_disk 40m
        dcp_save disk/out/step-250 "-5 hours"
        dcp_save disk/out/step-500 "-4 hours"
        dcp_save disk/out/step-750 "-10 minutes"
        dcp_save disk/out/step-1000 "-2 hours"
        echo '{}' >disk/out/step-250/eval.json
        touch -d "-1 minute" disk/out/step-250/eval.json disk/out/step-250
        hold rdwr "$T/disk/out/step-1000/__0_0.distcp"
        holder=$HELD
        hold wronly "$T/disk/out/step-750/__0_0.distcp"
        writer=$HELD
        head -c $((20 << 20)) /dev/zero >disk/filler
        for dry in -n ""; do
                rc=0
                "$CKPTD" -1 $dry -w "$T/disk/out" --preset dcp --keep-last 4 --min-free 16M 2>err || rc=$?
                [ "$rc" = 3 ] || fail "-1 $dry exited $rc, not 3 (the floor not met): $(cat err)"
                assert_grep "step-1000: in use: taken" err
                assert_grep "step-750: in use: taken" err
                assert_no_grep "would delete /\|evicted /" err
        done
        assert_names disk/out step-1000 step-250 step-500 step-750
        release $writer
        release $holder
}

# -l lists what the pass would do: the save found open is incomplete, and
# the one it would displace is kept.
test_list_mid_write_says_what_the_pass_does() {
        mid_write_run
        "$CKPTD" -l -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 2 >out 2>err || fail "-l failed: $(cat err)"
        assert_grep "delete .* ckpt_1.pt " out
        assert_grep "keep .* ckpt_2.pt *last$" out
        assert_grep "keep .* ckpt_9.pt *incomplete$" out
        assert_names runs ckpt_1.pt ckpt_2.pt ckpt_3.pt ckpt_9.pt
        release $writer
}

# An eval job reading the newest save holds nothing back: after a scan the
# policy (one pass, and the daemon at start) and the floor ask only whether
# a process writes it, so it takes its place at once and what it displaces
# goes.
test_reader_of_the_newest_holds_nothing_back_after_a_scan() {
        mkdir -p runs
        for s in 1 2 3 9; do mkfile "runs/ckpt_$s.pt" 4; done
        touch -d "-2 hours" runs/*
        hold read "$T/runs/ckpt_9.pt"
        reader=$HELD
        "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 2 2>err || fail "exit: $(cat err)"
        assert_names runs ckpt_3.pt ckpt_9.pt
        assert_no_grep "in use" err
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0
        wait_names runs ckpt_9.pt
        assert_no_grep "in use" log
        stop_daemon log
        release $reader
        [ "$(id -u)" = 0 ] || return 0
        mkdir -p disk
        mount -t tmpfs -o size=24m tmpfs "$T/disk" || fail "cannot mount a tmpfs"
        mkdir disk/runs
        for s in 1 2 3 9; do mkfile "disk/runs/ckpt_$s.pt" 1024; done
        touch -d "-2 hours" disk/runs/*
        hold read "$T/disk/runs/ckpt_9.pt"
        reader=$HELD
        "$CKPTD" -1 -w "$T/disk/runs" --pattern 'ckpt_{step}.pt' --keep-last 10 --min-free 23M 2>err ||
                fail "exit: $(cat err)"
        assert_names disk/runs ckpt_9.pt
        assert_no_grep "in use" err
        release $reader
}

# The save found open at start stays taken for being written while it is
# open: a later decision of the run (here at the next save, renamed in),
# which reads the unsettled checkpoints again from the disk, where its old
# mtime says complete, does not let it displace a complete one from
# keep_last while it is still written.
test_start_mid_write_stays_taken_at_the_next_save() {
        mid_write_run
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 2 --settle 0
        wait_names runs ckpt_2.pt ckpt_3.pt ckpt_9.pt
        mkfile new.tmp 4
        mv new.tmp runs/ckpt_10.pt
        # the sweep of that save deletes ckpt_2.pt; an answer to status
        # comes after the sweep's end (one event loop)
        wait_for 20 grep -q "deleted $T/runs/ckpt_2.pt" log || fail "ckpt_2.pt not deleted: $(cat log)"
        "$CKPTD" status >/dev/null 2>&1 || fail "status failed"
        assert_names runs ckpt_3.pt ckpt_9.pt ckpt_10.pt
        # closed, the save counts at the sweep its close starts
        release $writer
        wait_names runs ckpt_9.pt ckpt_10.pt
        stop_daemon log
}

# A group of files (TensorFlow's index and data) whose data file was
# published while still written, just before the daemon starts, displaces
# nothing until it is closed: every file of the group is asked.
test_group_published_while_open_displaces_nothing_until_closed() {
        mkdir runs
        mkfile runs/ckpt-1.index 1
        mkfile runs/ckpt-1.data-00000-of-00001 4
        touch -d "-1 hour" runs/ckpt-1.*
        hold publish "$T/runs/ckpt-2.data-00000-of-00001" "$T/ckpt-2.tmp"
        writer=$HELD
        mkfile runs/ckpt-2.index 1
        start_daemon log -w "$T/runs" --pattern 'ckpt-{step}.*' --keep-last 1 --settle 2
        wait_taken "ckpt-2.data-00000-of-00001"
        assert_names runs ckpt-1.data-00000-of-00001 ckpt-1.index ckpt-2.data-00000-of-00001 ckpt-2.index
        release $writer
        wait_names runs ckpt-2.data-00000-of-00001 ckpt-2.index
        stop_daemon log
}

# A close says nothing of whose open it was: another process that opens a
# save for writing and closes it (touch; an eval job opening it r+) while
# its trainer still writes it completes nothing, and what the save would
# displace stays until the trainer closes it.
test_a_close_by_another_process_completes_nothing() {
        mkdir runs
        mkfile runs/ckpt_9.pt 4
        touch -d "-2 hours" runs/ckpt_9.pt
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0.5
        hold write "$T/runs/ckpt_10.pt"
        writer=$HELD
        touch runs/ckpt_10.pt
        wait_taken "ckpt_10.pt"
        assert_names runs ckpt_10.pt ckpt_9.pt
        release $writer
        wait_names runs ckpt_10.pt
        stop_daemon log
}

# A save written in place since before the daemon started (one long
# write, its mtime old) looks complete to the scan, whose decision deletes
# nothing (min_age keeps the one before it). When min_age runs out, the
# decision that would delete asks first: the save is found open and what
# it would displace stays until it is closed.
test_start_mid_write_then_min_age_keeps_what_the_save_would_displace() {
        mkdir runs
        mkfile runs/ckpt_9.pt 4
        hold write "$T/runs/ckpt_10.pt"
        writer=$HELD
        # the save's last write began after ckpt_9 was written
        touch -d "-5 seconds" runs/ckpt_9.pt
        touch -m -d "-4 seconds" runs/ckpt_10.pt
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0 --min-age 8
        wait_taken "ckpt_10.pt"
        assert_names runs ckpt_10.pt ckpt_9.pt
        release $writer
        wait_names runs ckpt_10.pt
        stop_daemon log
}

# The same where the save's old mtime ranks it among the best, not as the
# newest (a daemon restarted while a trainer writes its best in place):
# the scan's decision deletes nothing (min_age keeps the others); when
# min_age runs out, every checkpoint kept for its place is asked, not only
# the newest, and what the open save would displace from the best stays.
test_start_mid_write_then_min_age_asks_the_best_too() {
        local a=epoch=0-step=10-val_loss=0.5.ckpt b=epoch=1-step=20-val_loss=0.1.ckpt c=epoch=2-step=30-val_loss=0.9.ckpt
        mkdir runs
        mkfile "runs/$a" 4
        mkfile "runs/$c" 4
        hold write "$T/runs/$b"
        writer=$HELD
        touch -d "-5 seconds" "runs/$a"
        touch -d "-4 seconds" "runs/$c"
        start_daemon log -w "$T/runs" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 \
                --settle 0 --min-age 8
        wait_taken "$b"
        assert_names runs "$a" "$b" "$c"
        release $writer
        wait_names runs "$b" "$c"
        stop_daemon log
}

# And where it ranks among the newest by its mtime, not as the newest: a
# run ordered by mtime, where another process completed a save after the
# one still written began. The scan's decision deletes nothing (that save
# has not settled); when it has, every checkpoint kept for its place is
# asked, and what the open one would displace from keep_last stays. The
# later save is dated ahead of the clock: unsettled at the scan however
# slow the start, it settles on the daemon's own clock, settle after.
test_start_mid_write_then_a_later_save_asks_every_placed_one() {
        local a=val_loss=0.3-id=1.ckpt b=val_loss=0.3-id=2.ckpt c=val_loss=0.3-id=3.ckpt
        mkdir runs
        mkfile "runs/$a" 4
        touch -d "-2 hours" "runs/$a"
        hold write "$T/runs/$b" # dated an hour ago
        writer=$HELD
        mkfile "runs/$c" 4
        touch -d "+1 hour" "runs/$c"
        start_daemon log -w "$T/runs" --preset lightning --monitor val_loss --keep-top-k 0 --keep-last 2 --settle 3
        wait_taken "$b"
        assert_names runs "$a" "$b" "$c"
        release $writer
        wait_names runs "$b" "$c"
        stop_daemon log
}

# After the start the daemon asks the kept checkpoints of each run in idle
# time, not at the run's first save. Run a is free and so asked; a save
# written again in place there after that is an event, and what it would
# displace stays while it is open. Run b has one held open since before
# the start, and run c one with another link (outside the watch, whose
# writes raise no event in the run): each is left to its first decision
# that deletes, which asks again and keeps what the save being written
# (through that other name in c, after the start) would displace.
test_placed_asked_in_idle_time_stand_until_an_event() {
        local r i
        for r in a b c; do
                mkdir -p "runs/$r"
                for i in 1 2; do mkfile "runs/$r/ckpt_$i.pt" 4; done
        done
        mkfile runs/a/ckpt_3.pt 4
        mkfile runs/c/ckpt_3.pt 4
        mkdir stage
        ln runs/c/ckpt_3.pt stage/latest.pt
        touch -d "-2 hours" runs/*/*
        hold write "$T/runs/b/ckpt_3.pt"
        local held_b=$HELD
        start_daemon log --log-level debug -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 3 --settle 0
        wait_for 20 grep -q "checkpoints of 3 runs scanned whole for writers in idle time" log ||
                fail "not asked in idle time: $(cat log)"
        assert_grep "$T/runs/b: not every checkpoint free of writers: asked again at its first decision" log
        assert_grep "$T/runs/c: not every checkpoint free of writers: asked again at its first decision" log
        assert_no_grep "$T/runs/a: not every checkpoint" log
        hold write "$T/runs/a/ckpt_3.pt"
        local held_a=$HELD
        hold write "$T/stage/latest.pt"
        local held_c=$HELD
        # read in this order: c's decision ends after a's and b's
        mkfile runs/a/ckpt_4.pt 4
        mkfile runs/b/ckpt_4.pt 4
        mkfile runs/c/ckpt_4.pt 4
        wait_taken "b/ckpt_3.pt"
        wait_taken "c/ckpt_3.pt"
        for r in a b c; do assert_names "runs/$r" ckpt_1.pt ckpt_2.pt ckpt_3.pt ckpt_4.pt; done
        assert_no_grep "a/ckpt_3.pt: in use" log
        release $held_a
        release $held_b
        release $held_c
        for r in a b c; do wait_names "runs/$r" ckpt_2.pt ckpt_3.pt ckpt_4.pt; done
        stop_daemon log
}

# A save published under its final name before its writer closes it
# (renamed or linked in while open: no close seen) takes no place while
# open: the newest complete one stays until it is closed.
test_save_published_while_open_displaces_nothing_until_closed() {
        for mode in publish link link-unlink; do
                rm -rf runs
                mkdir runs
                mkfile runs/ckpt_1.pt 4
                start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0
                # stopped, the daemon reads the link's creation once its
                # first name is gone: a file with one link, whose close
                # comes under the name removed
                [ $mode != link-unlink ] || kill -STOP $DPID
                hold $mode "$T/runs/ckpt_2.pt"
                writer=$HELD
                [ $mode != link-unlink ] || kill -CONT $DPID
                # taken for one being written: asked every second
                [ $mode = link-unlink ] ||
                        wait_for 20 grep -q "ckpt_2.pt: in use: taken for a save still being written" log ||
                        fail "$mode: the open save was not taken as being written: $(cat log)"
                # the next event of the run: a decision that deletes
                mkfile runs/other.txt 1
                "$CKPTD" status >/dev/null 2>&1 || fail "status failed"
                assert_exists runs/ckpt_1.pt
                release $writer
                wait_for 20 test ! -e runs/ckpt_1.pt || fail "$mode: ckpt_1.pt kept after the close: $(cat log)"
                assert_exists runs/ckpt_2.pt
                stop_daemon log
        done
}

# The published save kept for another reason (keep_every) is the newest
# written all the same: while it is open, the one written before it keeps
# that place.
test_save_published_while_open_and_kept_for_every_displaces_nothing() {
        mkdir runs
        mkfile runs/ckpt_1-loss=0.3.pt 4
        mkfile runs/ckpt_3-loss=0.5.pt 4
        touch -d "-100 seconds" runs/ckpt_1-loss=0.3.pt
        touch -d "-50 seconds" runs/ckpt_3-loss=0.5.pt
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}-loss={loss}.pt' --monitor loss --mode min \
                --keep-top-k 1 --keep-last 0 --keep-every 2 --settle 0
        hold publish "$T/runs/ckpt_4-loss=0.9.pt"
        writer=$HELD
        wait_taken "ckpt_4-loss=0.9.pt"
        assert_exists "runs/ckpt_3-loss=0.5.pt"
        release $writer
        wait_names runs "ckpt_1-loss=0.3.pt" "ckpt_4-loss=0.9.pt"
        stop_daemon log
}

# A save still written, swapped with an older one (renameat2()
# RENAME_EXCHANGE), is asked as one renamed in: the older one stays.
test_save_swapped_in_while_open_displaces_nothing_until_closed() {
        mkdir runs
        mkfile runs/ckpt_3.pt 4
        touch -d "-1 hour" runs/ckpt_3.pt
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0
        hold write "$T/runs/ckpt_2.pt"
        writer=$HELD
        $PY - "$T/runs/ckpt_2.pt" "$T/runs/ckpt_3.pt" <<'EOF2' || fail "renameat2 failed"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
if libc.renameat2(AT_FDCWD, sys.argv[1].encode(), AT_FDCWD, sys.argv[2].encode(), RENAME_EXCHANGE) != 0:
    sys.exit(os.strerror(ctypes.get_errno()))
EOF2
        wait_taken "ckpt_3.pt"
        assert_exists runs/ckpt_2.pt
        release $writer
        wait_names runs ckpt_3.pt
        stop_daemon log
}

# Only a writer holds a save back: one an eval job opened as it was
# renamed into place counts at once, and displaces the one before it.
test_save_read_as_it_is_published_counts_at_once() {
        mkdir runs
        mkfile runs/ckpt_1.pt 4
        mkfile ckpt_2.tmp 4
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0
        hold read "$T/ckpt_2.tmp"
        reader=$HELD
        mv ckpt_2.tmp runs/ckpt_2.pt
        wait_for 20 test ! -e runs/ckpt_1.pt || fail "ckpt_1.pt kept: $(cat log)"
        assert_no_grep "in use" log
        release $reader
        stop_daemon log
}

# A save open for writing when the daemon starts displaces nothing until it
# is closed: one published just before (renamed in: not settled at the
# scan, asked once it has settled), and one linked in (its close comes
# under the name it was linked from: asked until it is free).
test_save_open_at_start_displaces_nothing_until_closed() {
        for spec in "publish 2" "link 0"; do
                set -- $spec
                rm -rf runs
                mkdir runs
                mkfile runs/ckpt_1.pt 4
                touch -d "-1 hour" runs/ckpt_1.pt
                hold $1 "$T/runs/ckpt_2.pt"
                writer=$HELD
                start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle $2
                wait_taken "ckpt_2.pt"
                assert_exists runs/ckpt_1.pt
                release $writer
                wait_for 20 test ! -e runs/ckpt_1.pt || fail "$1: ckpt_1.pt kept after the close: $(cat log)"
                assert_exists runs/ckpt_2.pt
                stop_daemon log
        done
}

# The same in a run nested below the watch root, whose directory name holds
# a tab: the line names the save by its real path, escaped, and the floor
# keeps the run's newest complete one beside it.
test_floor_names_the_nested_save_being_written_by_its_full_path() {
        small_disk 24m
        run="disk/runs/exp/a"$'\t'"b"
        mkdir -p "$run"
        for s in 1 2 3; do mkfile "$run/ckpt_$s.pt" 1024; done
        touch -d "-2 hours" "$run"/*
        hold write "$T/$run/ckpt_9.pt"
        rc=0
        "$CKPTD" -1 -w "$T/disk/runs" --pattern 'ckpt_{step}.pt' --keep-last 10 \
                --min-free 23M 2>err || rc=$?
        assert_names "$run" ckpt_3.pt ckpt_9.pt
        grep -qF -- "$T/disk/runs/exp/a\tb/ckpt_9.pt: in use: taken for a save still being written" err ||
                fail "the save is not named by its escaped full path: $(cat err)"
        [ "$rc" = 0 ] || fail "exit $rc: $(cat err)"
}

# A reload rescans every watch: a save held open for writing is kept (seen
# being written, which the reload carries; were it not, by the check before
# deletion), and goes at the next sweep after it is closed.
test_reload_during_a_long_write_keeps_it() {
        five
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "ckpt_{step}.pt"; keep_top_k = 0; keep_last = 1; settle = 0.2; } );
EOC
        start_daemon log -c "$T/c.conf"
        wait_names runs ckpt_5.pt
        # a restarted trainer writes an older step in place, slowly
        hold write "$T/runs/ckpt_2.pt"
        writer=$HELD
        touch -d "-30 minutes" runs/ckpt_5.pt
        # returns once the reloaded watches are swept
        "$CKPTD" reload "$DPID" >out 2>&1 || fail "reload failed: $(cat out log)"
        assert_grep "reloaded $T/c.conf" log
        assert_names runs ckpt_2.pt ckpt_5.pt
        release $writer
        mkfile new.tmp 4
        mv new.tmp runs/ckpt_6.pt
        wait_names runs ckpt_6.pt
        stop_daemon log
}

# What the daemon saw being written survives a reload: a save closed
# between two writes, whose mtime lags the clock (a clock stepped forward,
# a file server's), stays unsettled for settle after its last write seen,
# as without the reload; before, the rescan took it as complete by its
# mtime and deleted what it displaces while it was half written.
test_reload_keeps_a_save_seen_being_written_unsettled() {
        local t0 deadline
        mkdir a b
        mkfile a/ckpt_1.pt 4
        mkfile b/ckpt_1.pt 4
        touch -d "-2 hours" a/* b/*
        cat >c.conf <<EOC
watch = ( { path = "$T/a"; pattern = "ckpt_{step}.pt"; keep_last = 1; settle = 8; },
          { path = "$T/b"; pattern = "ckpt_{step}.pt"; keep_last = 1; settle = 0; } );
EOC
        start_daemon log -c "$T/c.conf"
        t0=$(date +%s%N)
        mkfile a/ckpt_2.pt 4
        touch -d "-1 hour" a/ckpt_2.pt
        # b's save after it: once b's victim is gone, a's events were read
        mkfile b.tmp 4
        mv b.tmp b/ckpt_2.pt
        wait_names b ckpt_2.pt
        kill -HUP "$DPID"
        wait_for 30 grep -q "reloaded $T/c.conf" log || fail "no reload: $(cat log)"
        # a's save displaces nothing within settle of its write
        deadline=$((t0 / 1000000 + 6000))
        while [ "$(($(date +%s%N) / 1000000))" -lt "$deadline" ]; do
                [ -e a/ckpt_1.pt ] || fail "deleted within settle of the save's last write: $(cat log)"
                sleep 0.2
        done
        # the rest of it, then quiet: it displaces ckpt_1
        head -c 4096 /dev/zero >>a/ckpt_2.pt
        touch -d "-1 hour" a/ckpt_2.pt
        wait_for 30 test ! -e a/ckpt_1.pt || fail "never settled: $(cat log)"
        assert_names a ckpt_2.pt
        stop_daemon log
}

# A save closed while a reload builds its watches anew: the close is an
# event no watch saw, so what the reload carries of the save (seen being
# written) is asked of the disk, which says it is free; it settles and
# displaces its predecessor then, not an hour later. Many runs make the
# reload's scan long enough to close it during it.
test_reload_with_a_save_closed_during_it() {
        local i
        mkdir -p root/zz
        for i in $(seq 1 3000); do mkdir "root/d$i"; done
        mkfile root/zz/ckpt-1.pt 4
        touch -d "-1 hour" root/zz/ckpt-1.pt
        cat >c.conf <<EOC
watch = ( { path = "$T/root"; pattern = "ckpt-{step}.pt"; keep_last = 1; settle = 0.5; } );
EOC
        start_daemon log -c "$T/c.conf"
        $PY - "$T" "$DPID" <<'EOP' || fail "the writer failed: $(cat log)"
import os, signal, sys, time
t, pid = sys.argv[1], int(sys.argv[2])
f = open(t + "/root/zz/ckpt-2.pt", "wb")
f.write(b"y" * 4096)
f.flush()
time.sleep(1.0)  # seen being written, past settle
os.kill(pid, signal.SIGHUP)
deadline = time.time() + 60
while b"reloaded" not in open(t + "/log", "rb").read():
    if time.time() > deadline:
        sys.exit(1)
    time.sleep(0.001)
f.close()
EOP
        wait_for 20 test ! -e root/zz/ckpt-1.pt || fail "the save never settled: $(ls root/zz) $(cat log)"
        assert_names root/zz ckpt-2.pt
        stop_daemon log
}

# The same after an inotify queue overflow, which rescans everything: the
# daemon's queue is made small (max_queued_events applies to instances made
# after it is set) and a burst of events overflows it.
test_overflow_rescan_during_a_long_write_keeps_it() {
        local q=/proc/sys/fs/inotify/max_queued_events old
        [ -w "$q" ] || skip "cannot set $q"
        old=$(cat "$q")
        five
        echo 16 >"$q"
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0.2
        wait_for 10 grep -q "watching 1 directory" log || true # then put it back, whatever happened
        echo "$old" >"$q"
        wait_names runs ckpt_5.pt
        hold write "$T/runs/ckpt_2.pt"
        writer=$HELD
        touch -d "-30 minutes" runs/ckpt_5.pt
        # stopped for the burst, so the queue overflows however fast it drains
        kill -STOP "$DPID"
        for i in $(seq 1 200); do : >"runs/x$i.tmp"; done
        kill -CONT "$DPID"
        wait_for 30 grep -q "inotify queue overflow" log || fail "no overflow: $(cat log)"
        wait_for 30 grep -q "ckpt_2.pt (in-use)" log || fail "not kept as in use: $(cat log)"
        assert_exists runs/ckpt_2.pt
        release $writer
        rm -f runs/x*.tmp
        mkfile new.tmp 4
        mv new.tmp runs/ckpt_6.pt
        wait_names runs ckpt_6.pt
        stop_daemon log
}

# A directory checkpoint with a file inside written recently and still open.
test_directory_with_an_open_file_is_kept() {
        mkdir -p runs/step-1 runs/step-2 runs/step-3
        for s in 1 2 3; do mkfile "runs/step-$s/shard" 4; done
        touch -d "-1 hour" runs/step-1/shard runs/step-1 runs/step-3/shard runs/step-3
        # step-2's shard changed 10 minutes ago and a writer has it open
        hold write "$T/runs/step-2/shard"
        touch -d "-10 minutes" runs/step-2/shard runs/step-2
        touch -d "-5 minutes" runs/step-3/shard runs/step-3
        "$CKPTD" -1 -w "$T/runs" --pattern 'step-{step}' --keep-last 1 2>err
        assert_names runs step-2 step-3
        assert_grep "keeping $T/runs/step-2 (in-use)" err
        release $HELD
        "$CKPTD" -1 -w "$T/runs" --pattern 'step-{step}' --keep-last 1 2>err
        assert_names runs step-3
}

# A directory checkpoint written in place with no marker (a generic
# layout, Accelerate's checkpoint_N, DeepSpeed or Megatron without their
# pointer) whose shard is still open for writing, its mtimes an hour old as
# a long write leaves them, takes no place among the newest: what it would
# displace stays, in one pass and in a daemon started meanwhile. Closed, it
# counts.
test_directory_save_open_for_writing_displaces_nothing() {
        mkdir -p runs/step_100 runs/step_200 runs/step_300
        mkfile runs/step_100/model.pt 4
        mkfile runs/step_200/model.pt 4
        hold write "$T/runs/step_300/model.pt"
        writer=$HELD
        touch -d "-2 hours" runs/*/* runs/*
        "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}' --keep-last 1 2>err || fail "-1 failed: $(cat err)"
        assert_names runs step_200 step_300
        assert_grep "$T/runs/step_300: in use: taken for a save still being written, not for its place" err
        start_daemon log -w "$T/runs" --pattern 'step_{step}' --keep-last 1 --settle 0.2
        wait_taken step_300
        assert_names runs step_200 step_300
        release $writer
        wait_names runs step_300
}

# The same in a daemon that sees the directory made: a pause in the write
# longer than settle, the shard still open, is no end of the save.
test_directory_save_pausing_with_a_shard_open_displaces_nothing() {
        mkdir -p runs/step_100
        mkfile runs/step_100/model.pt 4
        touch -d "-2 hours" runs/step_100/model.pt runs/step_100
        start_daemon log -w "$T/runs" --pattern 'step_{step}' --keep-last 1 --settle 0.2
        mkdir runs/step_200
        hold write "$T/runs/step_200/model.pt"
        writer=$HELD
        wait_taken step_200
        wait_for 30 quiet_for_2s || fail "ckptd never idles"
        assert_names runs step_100 step_200
        release $writer
        wait_names runs step_200
}

# A directory renamed in whole while a file inside it is still open for
# writing: renamed in says nothing of its writers, as for a file; it takes
# no place until closed.
test_directory_save_renamed_in_while_open_displaces_nothing() {
        mkdir -p runs/step_50 runs/step_100 stage
        mkfile runs/step_50/model.pt 4
        mkfile runs/step_100/model.pt 4
        touch -d "-2 hours" runs/*/model.pt runs/*
        start_daemon log -w "$T/runs" --pattern 'step_{step}' --keep-last 1 --settle 0.2
        # decided at start: the save comes to a run it has decided
        wait_names runs step_100
        hold fresh "$T/stage/model.pt"
        writer=$HELD
        mv stage runs/step_200
        wait_taken step_200
        wait_for 30 quiet_for_2s || fail "ckptd never idles"
        assert_names runs step_100 step_200
        release $writer
        wait_names runs step_200
}

# A flock on a victim keeps it; ckptd itself calls flock(2) on no checkpoint
# (a probe that takes the lock would make the holder's own flock -n fail).
test_flock_pin_read_without_locking() {
        command -v strace >/dev/null || skip "no strace"
        five
        flock -s runs/ckpt_2.pt sleep 600 &
        echo $! >>"$T/pids"
        wait_for 10 sh -c "! flock -n -x runs/ckpt_2.pt true"
        # LeakSanitizer's exit check cannot run under ptrace
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
                strace -f -y -e trace=flock -o trace "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt_{step}.pt' \
                --keep-last 1 2>err
        assert_names runs ckpt_2.pt ckpt_5.pt
        "$CKPTD" -l -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 >list
        grep 'ckpt_2.pt' list | grep -q 'flock' || fail "flock pin not listed: $(cat list)"
        ! grep -q "runs/ckpt" trace || fail "ckptd called flock(2) on a checkpoint: $(grep runs/ckpt trace)"
}

# Where no lease can be taken (NFS, fs.leases-enable = 0; here every lease
# on a checkpoint fails with EINVAL), nothing says a plain file is not
# flocked but /proc/locks: a flocked victim is kept, the others go.
test_flock_pin_without_leases_keeps_it() {
        [ -n "${FAULT_SO:-}" ] && [ -e "$FAULT_SO" ] || skip "no FAULT_SO"
        five
        flock -o -s runs/ckpt_3.pt sleep 600 &
        echo $! >>"$T/pids"
        wait_for 10 sh -c "! flock -n -x runs/ckpt_3.pt true"
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=fcntl FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=EINVAL FAULT_MATCH=ckpt_ \
                start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0.2
        assert_names runs ckpt_3.pt ckpt_5.pt
        assert_grep "keeping $T/runs/ckpt_3.pt (flock): another process holds a flock on it" log
        stop_daemon log
}

# A flock on a file inside an old directory checkpoint keeps it in -1 too,
# where the scan just read the tree and found nothing changed within the hour.
test_flock_inside_an_old_directory_keeps_it() {
        local s
        mkdir -p runs/step-1/sub runs/step-2
        for s in 1 2; do mkfile "runs/step-$s/shard" 4; done
        mkfile runs/step-1/sub/optim 4
        touch -d "-2 hours" runs/step-1/sub/optim runs/step-1/sub runs/step-1/shard runs/step-1 \
                runs/step-2/shard runs/step-2
        flock -o -s runs/step-1/sub/optim sleep 600 &
        echo $! >>"$T/pids"
        wait_for 10 sh -c "! flock -n -x runs/step-1/sub/optim true"
        "$CKPTD" -1 -w "$T/runs" --pattern 'step-{step}' --keep-last 1 2>err
        assert_names runs step-1 step-2
        assert_grep "keeping $T/runs/step-1 (flock): another process holds a flock on it" err
}

# The daemon checks a victim's flock right before deleting it.
test_daemon_keeps_a_flocked_victim() {
        five
        flock -o -s runs/ckpt_3.pt sleep 600 &
        holder=$!
        echo $holder >>"$T/pids"
        wait_for 10 sh -c "! flock -n -x runs/ckpt_3.pt true"
        start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0.2
        assert_names runs ckpt_3.pt ckpt_5.pt
        assert_grep "keeping $T/runs/ckpt_3.pt (flock): another process holds a flock on it" log
        release $holder
        mkfile new.tmp 4
        mv new.tmp runs/ckpt_6.pt
        wait_names runs ckpt_6.pt
        stop_daemon log
}

# When the in-use check of a checkpoint kept for its place fails (EIO), no
# save of the run is known not to be written: the run is kept whole, as an
# unreadable one, said once, rather than one placed checkpoint at a time.
test_placed_check_error_keeps_the_run_whole() {
        [ -n "${FAULT_SO:-}" ] && [ -e "$FAULT_SO" ] || skip "no FAULT_SO"
        mkdir -p runs
        for s in 1 2 3 9; do mkfile "runs/ckpt_$s.pt" 4; done
        touch -d "-2 hours" runs/*
        rc=0
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO FAULT_CALL=openat2 FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=EIO FAULT_MATCH=ckpt_ \
                "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 2 2>err || rc=$?
        [ "$rc" = 0 ] || fail "exit $rc: $(cat err)"
        assert_names runs ckpt_1.pt ckpt_2.pt ckpt_3.pt ckpt_9.pt
        [ "$(grep -c "cannot read whether ckpt_3.pt is in use: .*keeping the whole run" err)" = 1 ] ||
                fail "not said once: $(cat err)"
        assert_no_grep "cannot check whether" err
}

# A checkpoint kept for its place that is no longer the file scanned when
# it is asked (a save renamed over it: what stands there may still be
# written; here its open fails with ENOENT) is taken as being written, and
# what it would displace stays.
test_placed_replaced_since_the_scan_keeps_what_it_would_displace() {
        [ -n "${FAULT_SO:-}" ] && [ -e "$FAULT_SO" ] || skip "no FAULT_SO"
        mkdir -p runs
        for s in 9 10; do mkfile "runs/ckpt_$s.pt" 4; done
        touch -d "-2 hours" runs/*
        rc=0
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO FAULT_CALL=openat2 FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=ENOENT FAULT_MATCH=ckpt_10 \
                "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 2>err || rc=$?
        [ "$rc" = 0 ] || fail "exit $rc: $(cat err)"
        assert_names runs ckpt_10.pt ckpt_9.pt
        assert_grep "ckpt_10.pt: changed since it was scanned: taken for a save still being written" err
}

# A save renamed in that is not the file read when it is asked (gone, or
# another renamed over it, told here by its open failing with ENOENT)
# displaces nothing: the daemon takes it as being written, asks again, and
# only then lets it displace what it would.
test_save_replaced_before_it_is_asked_displaces_nothing_until_asked_again() {
        [ -n "${FAULT_SO:-}" ] && [ -e "$FAULT_SO" ] || skip "no FAULT_SO"
        mkdir -p runs
        for s in 8 9; do mkfile "runs/ckpt_$s.pt" 4; done
        touch -d "-2 hours" runs/*
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=openat2 FAULT_NTH=1 FAULT_ERRNO=ENOENT FAULT_MATCH=ckpt_10 \
                start_daemon log -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0
        wait_names runs ckpt_9.pt
        mkfile runs/save.tmp 4
        mv runs/save.tmp runs/ckpt_10.pt
        wait_for 20 grep -q "ckpt_10.pt: changed since it was scanned: taken for a save still being written" log ||
                fail "ckpt_10.pt was not taken: $(cat log)"
        assert_names runs ckpt_10.pt ckpt_9.pt
        wait_names runs ckpt_10.pt
        stop_daemon log
}

# oneshot_without_leases GROW: ckptd -1 where every lease on a checkpoint
# fails with EINVAL (as on NFS, or with fs.leases-enable = 0), stopped after
# the scan at the victim's removal; GROW=1 appends to the victim meanwhile.
oneshot_without_leases() {
        mkdir -p runs
        mkfile runs/ckpt_1.pt 4
        mkfile runs/ckpt_2.pt 4
        touch -d "-1 hour" runs/*
        rm -f hook
        mkfifo hook
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO FAULT_CALL=fcntl FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=EINVAL FAULT_MATCH=ckpt_ \
                CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -1 -w "$T/runs" --pattern 'ckpt_{step}.pt' \
                --keep-last 1 2>err &
        pid=$!
        echo $pid >>"$T/pids"
        wait_for 10 sh -c "ls -l /proc/$pid/fd 2>/dev/null | grep -q hook" || fail "no hook: $(cat err)"
        if [ "$1" = 1 ]; then
                mkfile more 64
                cat more >>runs/ckpt_1.pt
        fi
        echo c >hook
        wait $pid || fail "ckptd -1 failed: $(cat err)"
}

# Without leases: size and mtime must be the scan's; a file written between
# the scan and the removal is kept, an unchanged one deleted.
test_without_leases_size_and_mtime_decide() {
        [ -n "${FAULT_SO:-}" ] && [ -e "$FAULT_SO" ] || skip "no FAULT_SO"
        oneshot_without_leases 1
        assert_names runs ckpt_1.pt ckpt_2.pt
        assert_grep "ckpt_1.pt changed since it was scanned" err
        # the operator is told that the weaker check is in force
        [ "$(grep -c "cannot take leases on some checkpoints on the file system of $T/runs (device [0-9]*:[0-9]*, no leases on this file system: Invalid argument)" err)" = 1 ] ||
                fail "the fallback was not said once: $(cat err)"
        rm -rf runs
        oneshot_without_leases 0
        assert_names runs ckpt_2.pt
        assert_grep "deleted $T/runs/ckpt_1.pt" err
}

# A daemon that is not root, on checkpoints another user owns (root's, in
# a directory it may write), gets no lease (EACCES): it falls back to size
# and mtime, as on NFS, and says so once, naming the watch, not at every
# sweep.
test_user_daemon_without_leases_says_so_once() {
        need_root
        mkdir -p runs
        for i in 1 2 3; do mkfile runs/ckpt_$i.pt 4; done
        touch -d "-1 hour" runs/*
        mkdir st
        chown nobody:nogroup runs st # root's files in nobody's directory
        chmod 755 "$T"
        setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all -- \
                env STATE_DIRECTORY="$T/st" RUNTIME_DIRECTORY="$T/st" \
                "$CKPTD" -w "$T/runs" --pattern 'ckpt_{step}.pt' --keep-last 1 --settle 0 2>log &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_names runs ckpt_3.pt
        for i in 4 5; do
                mkfile runs/save.tmp 4
                mv runs/save.tmp runs/ckpt_$i.pt
                wait_names runs ckpt_$i.pt
        done
        assert_grep "deleted $T/runs/ckpt_3.pt" log
        assert_grep "deleted $T/runs/ckpt_4.pt" log
        [ "$(grep -c "cannot take leases on some checkpoints on the file system of $T/runs (device [0-9]*:[0-9]*, another user's, or not readable, and without CAP_LEASE: Permission denied)" log)" = 1 ] ||
                fail "not said once: $(cat log)"
        stop_daemon log
}

run_tests
