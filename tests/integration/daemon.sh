#!/usr/bin/env bash
# The live daemon on real directories and a real inotify: trainers writing
# checkpoints, runs and roots coming and going, queue overflow, SIGHUP reload,
# sd_notify, idle wake-ups, journal fields, SIGTERM in the middle of a sweep.
. "$(dirname "$0")/../lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
TRAINER=$HERE/trainer.py

# lname EPOCH LOSS: a Lightning ModelCheckpoint name; LPAT: their pattern.
lname() { echo "epoch=$1-step=$((($1 + 1) * 100))-val_loss=$2.ckpt"; }
LPAT='epoch={epoch}-step={step}-val_loss={val_loss}.ckpt'

# lrun DIR LOSS...: one Lightning checkpoint per loss, epochs 0.., an hour old.
lrun() {
        local dir=$1 e=0 l
        shift
        mkdir -p "$dir"
        for l in "$@"; do
                printf 'ckpt %s\n' "$l" >"$dir/$(lname $e "$l")"
                e=$((e + 1))
        done
        touch -d "-1 hour" "$dir"/*.ckpt
}

# exchange A B: swap two paths at once, renameat2(2) RENAME_EXCHANGE.
exchange() {
        "$PY" -c 'import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) != 0:
    sys.exit("renameat2: errno %d" % ctypes.get_errno())' "$1" "$2" || fail "cannot exchange $1 and $2"
}

# count PATTERN FILE: matching lines (0 when none).
count() { grep -c -- "$1" "$2" || true; }

# at_least N PATTERN FILE: a predicate for wait_for.
at_least() { [ "$(count "$2" "$3")" -ge "$1" ]; }

# woke_since COUNT N: the daemon woke N times since wakeups said COUNT.
woke_since() { [ $(($(wakeups "$DPID") - $1)) -ge "$2" ]; }

# --- 1. trainers: never a checkpoint deleted while written; exact state ---

# Six simulated trainers under one daemon, each in a run of its own and each
# checking, after every epoch, that within settle + 1 s the run holds exactly
# top-k + last of its completed checkpoints, and that nothing was removed
# under it (trainer.py says how). The strict watch keeps no "last", so a
# checkpoint taken for complete too early (after its first chunk, or halfway
# through its shards) would be deleted under the writer, which then fails.
# The hf watch has settle 5: its state must come within 2.5 s, from the
# trainer_state.json marker alone.
test_trainers_never_lose_a_checkpoint_being_written() {
        mkdir -p light/chunked light/rename light/torch strict shards hf
        cat >c.conf <<EOC
log_level = "info";
watch = (
  { path = "$T/light"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 3; keep_last = 1; settle = 1.5; },
  { path = "$T/strict"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 2; keep_last = 0; settle = 1.5; },
  { path = "$T/shards"; pattern = "step-{step}-val_loss={val_loss}"; kind = "dir"; monitor = "val_loss";
    keep_top_k = 2; keep_last = 0; settle = 1.5; },
  { path = "$T/hf"; preset = "huggingface"; monitor = "eval_loss"; keep_top_k = 2; keep_last = 1; settle = 5; }
);
EOC
        start_daemon d.log -c c.conf
        # new bests at epochs 1, 3 and 6; epoch 4 the worst yet
        local losses=0.90,0.70,0.80,0.50,0.95,0.60,0.40
        local strict=0.50,0.60,0.90,0.40,0.95,0.30
        local common=(--settle 1.5 --daemon-log "$T/d.log")
        run_trainer() {
                local tag=$1
                shift
                echo "$4" >"$tag.run" # after --mode M --run
                $PY "$TRAINER" "$@" >"$tag.out" 2>"$tag.err" &
                echo $! >>"$T/pids"
                echo $! >"$tag.pid"
        }
        run_trainer chunked --mode chunked --run "$T/light/chunked" --losses $losses "${common[@]}"
        run_trainer rename --mode rename --run "$T/light/rename" --losses $losses "${common[@]}"
        run_trainer torch --mode torch --run "$T/light/torch" --losses $losses "${common[@]}"
        run_trainer strict --mode chunked --run "$T/strict" --losses $strict --top-k 2 --keep-last 0 "${common[@]}"
        run_trainer shards --mode shards --run "$T/shards" --losses $strict --top-k 2 --keep-last 0 "${common[@]}"
        run_trainer hf --mode hf --run "$T/hf" --losses $losses --top-k 2 --keep-last 1 --settle 5 --deadline 2.5 \
                --daemon-log "$T/d.log"
        local tag rc bad=""
        for tag in chunked rename torch strict shards hf; do
                wait_for 90 eval "! alive $(cat $tag.pid)" || fail "trainer $tag still running after 90 s"
                rc=0
                wait "$(cat $tag.pid)" || rc=$?
                echo "trainer $tag (exit $rc): $(tail -n1 $tag.out)"
                [ "$rc" = 0 ] || bad="$bad
$tag: $(cat $tag.err)"
        done
        [ -z "$bad" ] || fail "trainers failed:$bad
daemon log:
$(cat d.log)"
        # every deletion the daemon logged is of a checkpoint a trainer had
        # announced as complete
        for tag in chunked rename torch strict shards hf; do
                sed -n "s|^completed |$(cat $tag.run)/|p" $tag.out
        done | LC_ALL=C sort -u >completed
        sed -n 's|^ckptd: deleted \(.*\) (policy, .*|\1|p' d.log | LC_ALL=C sort -u >deleted
        [ -s deleted ] || fail "nothing was deleted: $(cat d.log)"
        [ -z "$(LC_ALL=C comm -23 deleted completed)" ] ||
                fail "deleted but never completed: $(LC_ALL=C comm -23 deleted completed)"
        assert_no_grep 'cannot\|changed since' d.log
        stop_daemon d.log
}

# --- 2. runs and roots that appear after start-up ---

# An empty run created after start-up, nested runs created in one go
# (mkdir -p races the watch), and prepared runs moved in with their files:
# each is swept, and each stays watched (a later checkpoint is handled).
test_runs_created_or_moved_in_after_startup() {
        mkdir root
        start_daemon d.log -w "$T/root" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 \
                --settle 0.5
        # created empty, then written
        mkdir root/new
        for e in 0 1 2 3; do printf x >"root/new/$(lname $e 0.$((5 + e)))"; done
        wait_names root/new "$(lname 0 0.5)" "$(lname 3 0.8)"
        # nested runs created at once, written right away
        mkdir -p root/deep/x/y
        for e in 0 1 2; do printf x >"root/deep/x/y/$(lname $e 0.$((7 - e)))"; done
        wait_names root/deep/x/y "$(lname 2 0.5)"
        # prepared runs moved in whole, one of them nested
        lrun prep/run2 0.9 0.3 0.8 0.7 0.6
        lrun prep/team/run3 0.5 0.4 0.6 0.9
        mv prep/run2 root/
        mv prep/team root/
        wait_names root/run2 "$(lname 1 0.3)" "$(lname 4 0.6)"
        wait_names root/team/run3 "$(lname 1 0.4)" "$(lname 3 0.9)"
        # all of them are watched now: a new best replaces best and last
        printf x >"root/new/$(lname 4 0.1)"
        printf x >"root/team/run3/$(lname 4 0.2)"
        printf x >"root/deep/x/y/$(lname 3 0.1)"
        wait_names root/new "$(lname 4 0.1)"
        wait_names root/team/run3 "$(lname 4 0.2)"
        wait_names root/deep/x/y "$(lname 3 0.1)"
        stop_daemon d.log
}

# save NAME...: each a save as trainers make it, written beside and renamed
# into place.
save() {
        local n
        for n in "$@"; do
                printf 'ckpt\n' >"root/run/.$n.tmp"
                mv "root/run/.$n.tmp" "root/run/$n"
        done
}

# After a start whose decision deleted nothing, the first save that deletes
# asks whether the newest is still written; it is not, and the saves after
# it are decided from that save's decision: the new best stays the best
# when worse saves follow (the one before it is not made best again).
test_saves_after_a_start_that_deleted_nothing_keep_the_best() {
        lrun root/run 0.5 0.1
        touch -d "-2 hours" "root/run/$(lname 0 0.5)"
        start_daemon d.log -w "$T/root" --pattern "$LPAT" --monitor val_loss --keep-top-k 1 --keep-last 2 \
                --settle 0
        assert_names root/run "$(lname 0 0.5)" "$(lname 1 0.1)"
        save "$(lname 2 0.05)"
        wait_names root/run "$(lname 1 0.1)" "$(lname 2 0.05)"
        save "$(lname 3 0.9)"
        wait_names root/run "$(lname 2 0.05)" "$(lname 3 0.9)"
        save "$(lname 4 0.8)"
        wait_names root/run "$(lname 2 0.05)" "$(lname 3 0.9)" "$(lname 4 0.8)"
        save "$(lname 5 0.7)" "$(lname 6 0.01)"
        wait_names root/run "$(lname 5 0.7)" "$(lname 6 0.01)"
        stop_daemon d.log
}

# The last written is kept whatever its order (a run restarted, a tree
# copied in). A decision of the run with no new checkpoint (a save begun and
# given up) leaves it the last written: saves newer by order but not by
# mtime (copied in with their times) do not take its place, nor push it out
# as the oldest of keep_last.
test_a_decision_with_no_save_keeps_the_last_written() {
        lrun root/run 0.1 0.9 0.8 0.7
        touch -d "-2 hours" "root/run/$(lname 0 0.1)"
        touch -d "-10 minutes" "root/run/$(lname 2 0.8)"
        touch -d "-40 minutes" "root/run/$(lname 3 0.7)"
        start_daemon d.log -w "$T/root" --pattern "$LPAT" --monitor val_loss --keep-top-k 1 --keep-last 2 \
                --settle 0.2
        wait_names root/run "$(lname 0 0.1)" "$(lname 2 0.8)" "$(lname 3 0.7)"
        # a save begun and given up: the run is decided again, with no new
        # checkpoint
        printf 'part\n' >"root/run/$(lname 9 0.5)"
        rm "root/run/$(lname 9 0.5)"
        wait_for 30 quiet_for_2s || fail "ckptd never idles: it keeps waking up"
        # copied in with its times: newer by order, not by mtime
        printf 'ckpt\n' >"root/run/.$(lname 4 0.95).tmp"
        touch -d "-30 minutes" "root/run/.$(lname 4 0.95).tmp"
        mv "root/run/.$(lname 4 0.95).tmp" "root/run/$(lname 4 0.95)"
        printf 'ckpt\n' >"root/run/.$(lname 5 0.99).tmp"
        touch -d "-20 minutes" "root/run/.$(lname 5 0.99).tmp"
        mv "root/run/.$(lname 5 0.99).tmp" "root/run/$(lname 5 0.99)"
        wait_names root/run "$(lname 0 0.1)" "$(lname 2 0.8)" "$(lname 4 0.95)" "$(lname 5 0.99)"
        stop_daemon d.log
}

# A run directory replaced while watched: a prepared run renamed over an
# empty known one (rename(2) replaces an empty directory), a run removed and
# made again under its name, one swapped in whole, two runs swapped. Each
# new directory is decided, and so are its later saves: it is watched, not
# only scanned once.
test_run_replaced_is_watched_again() {
        mkdir -p root/a root/b
        lrun root/b 0.5 0.6
        start_daemon d.log -w "$T/root" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 \
                --settle 0.5
        wait_names root/b "$(lname 0 0.5)" "$(lname 1 0.6)"
        lrun prep/a 0.9 0.3 0.8 0.7
        mv -T prep/a root/a
        wait_names root/a "$(lname 1 0.3)" "$(lname 3 0.7)"
        printf x >"root/a/$(lname 4 0.2)"
        wait_names root/a "$(lname 4 0.2)"
        rm -r root/b
        lrun root/b.new 0.4 0.6 0.5
        mv root/b.new root/b
        wait_names root/b "$(lname 0 0.4)" "$(lname 2 0.5)"
        printf x >"root/b/$(lname 3 0.1)"
        wait_names root/b "$(lname 3 0.1)"
        # swapped in whole (renameat2 RENAME_EXCHANGE, mv --exchange)
        lrun prep/c 0.9 0.4 0.8
        exchange prep/c root/a
        wait_names root/a "$(lname 1 0.4)" "$(lname 2 0.8)"
        printf x >"root/a/$(lname 3 0.2)"
        wait_names root/a "$(lname 3 0.2)"
        # two runs of the root swapped
        exchange root/a root/b
        printf x >"root/a/$(lname 4 0.05)"
        printf x >"root/b/$(lname 4 0.05)"
        wait_names root/a "$(lname 4 0.05)"
        wait_names root/b "$(lname 4 0.05)"
        stop_daemon d.log
}

# The watched root itself removed, then created again (twice), and moved
# away then replaced: each new root gets retention; the old one moved away
# is no longer the daemon's business.
test_root_deleted_and_recreated_is_watched_again() {
        mkdir root
        start_daemon d.log -w "$T/root" --preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 \
                --settle 0.5
        local fds0
        fds0=$(ls /proc/$DPID/fd | wc -l)
        for round in 1 2; do
                rm -rf root
                wait_for 20 at_least $round 'is gone' d.log || fail "root removal not noticed: $(cat d.log)"
                mkdir -p root/run
                for e in 0 1 2 3; do printf x >"root/run/$(lname $e 0.$((9 - e * 2)))"; done
                printf x >"root/$(lname 0 0.5)"
                printf x >"root/$(lname 1 0.6)"
                printf x >"root/$(lname 2 0.7)"
                wait_names root/run "$(lname 3 0.3)"
                wait_names root run "$(lname 0 0.5)" "$(lname 2 0.7)"
        done
        assert_grep "$T/root is back" d.log
        # moved away, replaced by a prepared tree
        mv root root.away
        wait_for 20 at_least 3 'is gone' d.log || fail "root move not noticed: $(cat d.log)"
        printf x >"root.away/$(lname 5 0.8)"
        printf x >"root.away/$(lname 6 0.9)"
        lrun prep/run 0.4 0.2 0.6
        mv prep root
        wait_names root/run "$(lname 1 0.2)" "$(lname 2 0.6)"
        # and a fresh checkpoint there is handled after settle, by which time
        # anything written in root.away would have been swept too
        printf x >"root/run/$(lname 3 0.1)"
        wait_names root/run "$(lname 3 0.1)"
        assert_names root.away run "$(lname 0 0.5)" "$(lname 2 0.7)" "$(lname 5 0.8)" "$(lname 6 0.9)"
        [ "$(ls /proc/$DPID/fd | wc -l)" = "$fds0" ] || fail "fds $fds0 -> $(ls /proc/$DPID/fd | wc -l)"
        stop_daemon d.log
}

# A directory above the root moved away (the operator archives the tree)
# takes the root with it out of the watch: the daemon deletes nothing more
# in it, and a new tree made at the watched path gets retention. The
# parent moved is an event; a directory further up moved is seen at the
# next sweep or check_interval, before anything is deleted.
test_directory_above_the_root_moved_away() {
        for moved in data b; do
                rm -rf b archive
                mkdir -p b/data/runs/run
                printf x >b/data/runs/run/ckpt-1.pt
                cat >c.conf <<EOC
check_interval = 1;
watch = ( { path = "$T/b/data/runs"; pattern = "ckpt-{step}.pt"; keep_last = 1; settle = 0; } );
EOC
                start_daemon d.log -c c.conf
                if [ $moved = data ]; then
                        mv b/data archive
                        wait_for 20 grep -q "is gone" d.log || fail "the move was not noticed: $(cat d.log)"
                        old=archive/runs/run
                else
                        mv b archive
                        old=archive/data/runs/run
                fi
                # written in the tree moved away: nothing deleted there
                printf x >$old/ckpt-2.pt
                mkdir -p b/data/runs/run
                printf x >b/data/runs/run/ckpt-1.pt
                printf x >b/data/runs/run/ckpt-2.pt
                wait_names b/data/runs/run ckpt-2.pt
                assert_names $old ckpt-1.pt ckpt-2.pt
                stop_daemon d.log
                assert_names $old ckpt-1.pt ckpt-2.pt
        done
}

# metrics_inside_a_run: c.conf, a run whose metrics file is written inside
# it, keep_last 1.
metrics_inside_a_run() {
        mkdir runs
        cat >c.conf <<EOC
check_interval = 3600;
metrics_file = "$T/runs/ckptd.prom";
watch = ( { path = "$T/runs"; pattern = "step_{step}.pt"; keep_last = 1; settle = 0; } );
EOC
}

# The metrics file written inside a watched run (renamed over its old
# copy after each sweep) does not wake the run: the daemon idles.
test_metrics_file_inside_a_run_lets_the_daemon_idle() {
        metrics_inside_a_run
        start_daemon d.log -c c.conf
        printf a >runs/step_1.pt
        printf b >runs/step_2.pt
        wait_names runs ckptd.prom step_2.pt
        wait_for 30 quiet_for_2s || fail "ckptd never idles: it keeps waking up"
        printf c >runs/step_3.pt
        wait_names runs ckptd.prom step_3.pt
        stop_daemon d.log
}

# A symlink that pins a checkpoint, named like the metrics file's
# temporary copy in that run, is a pin like any other: not ckptd's own.
test_symlink_named_like_the_metrics_file_still_pins() {
        metrics_inside_a_run
        printf a >runs/step_1.pt
        printf b >runs/step_2.pt
        start_daemon d.log -c c.conf
        wait_names runs ckptd.prom step_2.pt
        ln -s step_2.pt runs/ckptd.prom.tmp.1
        # the run's next saves: step_3 goes, step_2 stays, pinned
        printf c >runs/step_3.pt
        printf d >runs/step_4.pt
        wait_names runs ckptd.prom ckptd.prom.tmp.1 step_2.pt step_4.pt
        stop_daemon d.log
}

# A trainer's own log written beside its checkpoints wakes no decision: in a
# run with a pointer file, read whole at each decision, 20 log writes read
# the pointer file no more (fault.so counts its opens); the pointer file
# moved on releases what it pinned at once, with no new save.
test_only_names_that_pin_wake_a_run() {
        [ -n "${FAULT_SO:-}" ] && [ -e "$FAULT_SO" ] || skip "no FAULT_SO"
        mkdir runs
        printf a >runs/ckpt_1.pt
        printf b >runs/ckpt_2.pt
        echo ckpt_1.pt >runs/latest
        cat >c.conf <<EOC
check_interval = 3600;
watch = ( { path = "$T/runs"; pattern = "ckpt_{step}.pt"; pointer_files = [ "latest" ]; keep_last = 1;
            settle = 0; } );
EOC
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_MATCH=latest FAULT_COUNT="$T/count" start_daemon d.log -c c.conf
        for i in $(seq 1 20); do
                echo "$i" >>runs/train.log
                "$CKPTD" status >/dev/null 2>&1 || fail "status failed"
        done
        assert_names runs ckpt_1.pt ckpt_2.pt latest train.log
        echo ckpt_2.pt >runs/latest
        wait_names runs ckpt_2.pt latest train.log
        stop_daemon d.log
        n=$(awk '$1 == "openat2" { print $2 }' count)
        [ -n "$n" ] && [ "$n" -le 4 ] || fail "the pointer file was read ${n:-no} times: $(cat count)"
}

# A symlink pin under a name the scan ignores (Lightning's last.ckpt) that
# a file is renamed over, or hard-linked over, releases its target at once:
# the name the file came from is no pin, and the run is decided all the same.
test_file_over_an_ignored_symlink_releases_at_once() {
        local how
        for how in rename link; do
                rm -rf runs
                lrun runs 0.9 0.8 0.7
                ln -s "$(lname 0 0.9)" runs/last.ckpt
                start_daemon d.log -w "$T/runs" --preset lightning --monitor val_loss --keep-top-k 1 \
                        --keep-last 1 --settle 0
                wait_names runs "$(lname 0 0.9)" "$(lname 2 0.7)" last.ckpt
                if [ $how = rename ]; then
                        printf x >runs/save.tmp
                        mv runs/save.tmp runs/last.ckpt
                else
                        ln -f "runs/$(lname 2 0.7)" runs/last.ckpt
                fi
                wait_names runs "$(lname 2 0.7)" last.ckpt
                stop_daemon d.log
        done
}

# A metric_log of the run's own, however its path is spelled and however
# it is put in place (written, hard-linked in, its directory swapped in),
# decides the run again at once: the names carry no monitor, and the log
# written later ranks them.
test_metric_log_of_the_run_written_decides_at_once() {
        local how log entry csv='epoch,step,val_loss\n0,9,0.1\n1,19,0.9\n2,29,0.5\n'
        # a glob longer than a name can be still matches one
        local long
        long="[$(printf 'm%.0s' $(seq 300))]etrics.csv"
        for how in write:metrics.csv write:./metrics.csv write:../run/metrics.csv link:metrics.csv \
                dir:logs/metrics.csv "write:$long"; do
                log=${how#*:}
                rm -rf run
                mkdir run
                for s in 0 1 2; do : >"run/epoch=$s-step=$((s * 10 + 10)).ckpt"; done
                touch -d "-10 min" run/*
                cat >c.conf <<EOC
watch = ( { path = "$T/run"; preset = "lightning"; metric_log = "$log"; monitor = "val_loss";
            keep_top_k = 1; keep_last = 1; settle = 0; recursive = false; } );
EOC
                start_daemon d.log -c c.conf
                assert_names run "epoch=0-step=10.ckpt" "epoch=1-step=20.ckpt" "epoch=2-step=30.ckpt"
                case ${how%%:*} in
                write) printf "$csv" >run/metrics.csv ;;
                link)
                        printf "$csv" >run/m.part
                        ln run/m.part run/metrics.csv
                        rm run/m.part
                        ;;
                dir)
                        mkdir run/logs.new
                        printf "$csv" >run/logs.new/metrics.csv
                        mv run/logs.new run/logs
                        ;;
                esac
                wait_for 20 test ! -e "run/epoch=1-step=20.ckpt" || fail "$how: not decided: $(ls run) $(cat d.log)"
                entry=metrics.csv
                [ "${how%%:*}" = dir ] && entry=logs
                assert_names run "epoch=0-step=10.ckpt" "epoch=2-step=30.ckpt" "$entry"
                stop_daemon d.log
        done
}

# A watch path whose parent is missing too is looked for at every
# check_interval, and said once, not at every look; made later, it is
# watched and kept.
test_missing_parent_is_said_once() {
        local before
        cat >c.conf <<EOC
check_interval = 1;
watch = ( { path = "$T/a/b/runs"; pattern = "step_{step}.pt"; keep_last = 1; settle = 0; } );
EOC
        start_daemon d.log -c c.conf
        before=$(wakeups "$DPID")
        # three looks, a second apart
        wait_for 20 woke_since "$before" 3 || fail "no look at check_interval"
        mkdir -p a/b/runs
        printf a >a/b/runs/step_1.pt
        printf b >a/b/runs/step_2.pt
        wait_names a/b/runs step_2.pt
        [ "$(count 'cannot watch the parent of' d.log)" = 1 ] || fail "said more than once: $(cat d.log)"
        stop_daemon d.log
}

# A symlink in a run pins its target whatever its name, one named like the
# daemon's own tombstones too, when it is made while the daemon watches.
test_symlink_named_like_a_tombstone_pins() {
        mkdir runs
        printf a >runs/step_1.pt
        start_daemon d.log -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 --settle 0
        ln -s step_1.pt runs/.ckptd-trash-x
        printf b >runs/step_2.pt
        printf c >runs/step_3.pt
        wait_for 20 grep -q "deleted $T/runs/step_2.pt" d.log || fail "step_2.pt not deleted: $(cat d.log)"
        assert_names runs .ckptd-trash-x step_1.pt step_3.pt
        stop_daemon d.log
}

# --- 3. inotify queue overflow ---

# fs.inotify.max_queued_events is read once, when an inotify instance is
# created (inotify_new_group() copies it to group->max_events), so it is
# lowered just while ckptd starts and restored at once: other inotify users
# on the machine keep the normal limit. 20k files in one burst, among them
# checkpoints and a new run with checkpoints, overflow a 128-event queue many
# times over; the rescan must end in the right state and the new run must be
# watched.
test_overflow_rescan_ends_in_the_right_state() {
        need_root
        local knob=/proc/sys/fs/inotify/max_queued_events old
        mkdir -p root/run
        # a lock, so that two runs of this test at once cannot take each
        # other's lowered value for the one to restore
        exec 9>"$TESTS_TMP/ckptd-test-max_queued_events.lock"
        flock -w 60 9 || fail "cannot lock $TESTS_TMP/ckptd-test-max_queued_events.lock"
        old=$(cat $knob)
        # shellcheck disable=SC2064 # the value to restore is known now
        trap "echo $old >$knob" EXIT
        echo 128 >$knob
        # 9>&-: the daemon must not inherit (and so hold) the lock
        start_daemon d.log -w "$T/root" --pattern 'step_{step}.pt' --keep-last 2 --settle 0.5 9>&-
        echo "$old" >$knob
        trap - EXIT
        exec 9>&-
        # The daemon is stopped for the middle of the burst, so the queue
        # overflows however fast it drains: it sees events before, the
        # overflow, and events after.
        $PY - "$T/root" "$DPID" <<'EOP'
import os, signal, sys
root, pid = sys.argv[1], int(sys.argv[2])
step = 0
for i in range(20000):
    if i == 5000:
        os.kill(pid, signal.SIGSTOP)
    if i == 15000:
        os.kill(pid, signal.SIGCONT)
    if i == 10000:
        os.mkdir(f"{root}/newrun")
    if i % 500 == 0:
        step += 1
        d = f"{root}/newrun" if i > 10000 and step % 2 else f"{root}/run"
        name = f"{d}/step_{step}.pt"
    else:
        name = f"{root}/run/noise-{i}.bin"
    with open(name, "wb") as f:
        f.write(b"x")
EOP
        # steps 1..40: odd steps above 20 went to newrun
        wait_for 20 eval '[ "$(find root/run -name "step_*" | wc -l)" = 2 ]' || fail "run: $(find root/run -name 'step_*')"
        [ "$(find root/run -name 'noise-*' | wc -l)" = 19960 ] || fail "non-checkpoints touched"
        assert_exists root/run/step_40.pt
        assert_exists root/run/step_38.pt
        wait_names root/newrun step_37.pt step_39.pt
        assert_grep 'inotify queue overflow; rescanning everything' d.log
        # the run that arrived during the overflow is watched
        printf x >root/newrun/step_41.pt
        wait_names root/newrun step_39.pt step_41.pt
        stop_daemon d.log
}

# Hundreds of checkpoints moved into a run at once (a run copied back from
# an archive) are more than the daemon notes name by name: the run is read
# by one scan instead, and the burst decided like any save.
test_burst_of_names_is_decided_whole() {
        lrun runs 0.9 0.3 0.8 0.5 0.7 0.4
        mkdir in
        # a pattern, not the lightning preset: its metric logs make every
        # decision of a run a scan of the whole run
        start_daemon d.log -w "$T/runs" --pattern "$LPAT" --monitor val_loss --keep-top-k 3 --keep-last 1 --settle 0.5
        # epochs 6..905, all worse than the run's best but for epoch 400,
        # the best of all; the newest, epoch 905, is kept as the last
        $PY - "$T/in" "$T/runs" <<'EOP'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
names = []
for e in range(6, 906):
    loss = "0.10" if e == 400 else "0.99"
    names.append(f"epoch={e}-step={(e + 1) * 100}-val_loss={loss}.ckpt")
for n in names:
    with open(os.path.join(src, n), "wb") as f:
        f.write(b"ckpt")
for n in names:
    os.rename(os.path.join(src, n), os.path.join(dst, n))
EOP
        wait_for 20 eval '[ "$(ls runs | wc -l)" = 4 ]' || fail "runs: $(ls runs | wc -l) left"
        assert_names runs "$(lname 400 0.10)" "$(lname 1 0.3)" "$(lname 5 0.4)" "$(lname 905 0.99)"
        stop_daemon d.log
}

# --- 3b. changes that no name event reports ---

# A checkpoint given to another user (chown raises IN_ATTRIB only) is ranked
# with that user's checkpoints from then on: user 1001's next save displaces
# 1001's own older one, never the one now 1002's.
test_chown_moves_a_checkpoint_to_its_new_owner() {
        need_root
        mkdir -p runs
        chmod 1777 runs
        echo a >"runs/$(lname 0 0.5)"
        echo b >"runs/$(lname 1 0.9)"
        chown 1001 runs/*.ckpt
        touch -d "-1 hour" runs/*.ckpt
        start_daemon d.log -w "$T/runs" --pattern "$LPAT" --monitor val_loss --keep-top-k 1 --keep-last 1 --settle 1
        chown 1002 "runs/$(lname 0 0.5)"
        echo c >"runs/tmp.part"
        chown 1001 runs/tmp.part
        mv runs/tmp.part "runs/$(lname 2 0.3)"
        # on disk 1001 has epochs 1 and 2 (2 the best and last), 1002 epoch 0
        wait_for 10 test ! -e "runs/$(lname 1 0.9)" || fail "epoch 1 kept: $(ls runs)"
        assert_names runs "$(lname 0 0.5)" "$(lname 2 0.3)"
        stop_daemon d.log
}

# Without a step or epoch the mtime orders a run; a checkpoint whose mtime
# is set without a write (utimensat(2): rsync --times, touch -d) takes its
# new place in that order.
test_mtime_set_without_a_write_moves_a_checkpoint() {
        mkdir -p runs
        local r=runs/run
        mkdir $r
        echo a >$r/ckpt-val_loss=0.1.pt
        echo b >$r/ckpt-val_loss=0.5.pt
        echo c >$r/ckpt-val_loss=0.6.pt
        touch -d "-4 hours" $r/ckpt-val_loss=0.1.pt
        touch -d "-3 hours" $r/ckpt-val_loss=0.5.pt
        touch -d "-2 hours" $r/ckpt-val_loss=0.6.pt
        start_daemon d.log -w "$T/runs" --pattern 'ckpt-val_loss={val_loss}.pt' --monitor val_loss --keep-top-k 1 \
                --keep-last 2 --settle 1
        $PY -c 'import os, sys, time; t = time.time() - 3600; os.utime(sys.argv[1], (t, t))' $r/ckpt-val_loss=0.5.pt
        echo d >$r/ckpt-val_loss=0.7.pt
        # by mtime 0.7 and 0.5 are the newest two now, 0.1 the best
        wait_for 10 test ! -e $r/ckpt-val_loss=0.6.pt || fail "0.6 kept: $(ls $r)"
        assert_names $r ckpt-val_loss=0.1.pt ckpt-val_loss=0.5.pt ckpt-val_loss=0.7.pt
        stop_daemon d.log
}

# A metric file rewritten inside a complete directory checkpoint (an
# evaluation job correcting it) ranks that checkpoint by the new value.
test_metric_file_rewritten_inside_a_checkpoint() {
        mkdir -p runs/run
        mk() {
                mkdir "$1.t"
                echo x >"$1.t/model.bin"
                printf '{"loss": %s}\n' "$2" >"$1.t/metrics.json"
                mv "$1.t" "$1"
        }
        mk runs/run/step-1 0.2
        mk runs/run/step-2 0.5
        touch -d "-10 min" runs/run/*/* runs/run/step-*
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "step-{step}"; kind = "dir"; metric_file = "metrics.json";
            monitor = "loss"; keep_top_k = 1; keep_last = 1; settle = 1; } );
EOC
        start_daemon d.log -c c.conf
        printf '{"loss": 0.9}\n' >runs/run/step-1/metrics.json.new
        mv runs/run/step-1/metrics.json.new runs/run/step-1/metrics.json
        mk runs/run/step-3 0.7
        # step-2 (0.5) is the best now, step-3 the last
        wait_for 10 test ! -e runs/run/step-1 || fail "step-1 kept: $(ls runs/run)"
        assert_names runs/run step-2 step-3
        stop_daemon d.log
}

# Lightning's default names carry no monitor: the lightning preset takes it
# from the training log (../metrics.csv), which changes with no event of the
# run. Such a run is read whole at each decision, so a save whose name does
# carry the monitor ranks the older checkpoints by what the log says now.
test_metric_log_written_later_ranks_the_older_checkpoints() {
        local ck=logs/version_0/checkpoints
        mkdir -p $ck
        : >"$ck/epoch=0-step=10.ckpt"
        : >"$ck/epoch=1-step=20.ckpt"
        touch -d "-10 min" $ck/*
        cat >c.conf <<EOC
watch = ( { path = "$T/logs"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 1; keep_last = 1;
            settle = 0; } );
EOC
        start_daemon d.log -c c.conf
        # no log yet, so no name carries the monitor: nothing is pruned
        assert_names $ck "epoch=0-step=10.ckpt" "epoch=1-step=20.ckpt"
        printf 'epoch,step,val_loss\n0,9,0.1\n1,19,0.9\n2,29,0.5\n' >logs/version_0/metrics.csv
        : >"$ck/epoch=2-step=30-val_loss=0.5.ckpt.tmp"
        mv "$ck/epoch=2-step=30-val_loss=0.5.ckpt.tmp" "$ck/epoch=2-step=30-val_loss=0.5.ckpt"
        # epoch 0 (0.1 in the log) is the best, epoch 2 the newest
        wait_for 20 test ! -e "$ck/epoch=1-step=20.ckpt" || fail "epoch 1 kept: $(ls $ck) $(cat d.log)"
        assert_names $ck "epoch=0-step=10.ckpt" "epoch=2-step=30-val_loss=0.5.ckpt"
        stop_daemon d.log
}

# A file inside a complete directory checkpoint opened and written again
# (no event reaches the run: the directory is not watched inside any more)
# keeps that checkpoint while it is open, however old the daemon's record.
test_directory_checkpoint_written_again_is_in_use() {
        mkdir -p runs/run
        local d
        for d in step-1-val_loss=0.5 step-2-val_loss=0.9; do
                mkdir runs/run/$d
                head -c 100000 /dev/zero >runs/run/$d/model.bin
        done
        touch -d "-2 hours" runs/run/*/model.bin runs/run/step-*
        cat >c.conf <<EOC
log_level = "info";
watch = ( { path = "$T/runs"; pattern = "step-{step}-val_loss={val_loss}"; kind = "dir"; monitor = "val_loss";
            keep_top_k = 1; keep_last = 1; settle = 1; } );
EOC
        start_daemon d.log -c c.conf
        $PY -c 'import sys, time
f = open(sys.argv[1], "r+b"); f.write(b"x" * 4096); f.flush()
open(sys.argv[2], "w").close(); time.sleep(60)' runs/run/step-2-val_loss=0.9/model.bin writer.ready &
        echo $! >>"$T/pids"
        wait_for 10 test -e writer.ready || fail "the writer did not start"
        mkdir runs/run/step-3-val_loss=0.7.t
        echo x >runs/run/step-3-val_loss=0.7.t/model.bin
        mv runs/run/step-3-val_loss=0.7.t runs/run/step-3-val_loss=0.7
        wait_for 10 grep -q 'step-2-val_loss=0.9.*another process has it open' d.log ||
                fail "step-2 not found in use: $(cat d.log)"
        assert_exists runs/run/step-2-val_loss=0.9
        stop_daemon d.log
}

# --- 4. SIGHUP ---

# reloads LOG: how many reloads LOG reports.
reloads() { count '^ckptd: reloaded ' "$1"; }

test_sighup_applies_changed_keep_top_k() {
        lrun runs 0.9 0.3 0.8 0.5 0.7 0.4 0.6 0.85
        conf() {
                cat >c.conf <<EOC
log_level = "info";
watch = ( { path = "$T/runs"; preset = "lightning"; monitor = "val_loss"; keep_top_k = $1; keep_last = 1;
            settle = 0.5; } );
EOC
        }
        conf 3
        start_daemon d.log -c c.conf
        wait_names runs "$(lname 1 0.3)" "$(lname 3 0.5)" "$(lname 5 0.4)" "$(lname 7 0.85)"
        conf 1
        kill -HUP "$DPID"
        wait_for 20 at_least 1 '^ckptd: reloaded ' d.log || fail "no reload: $(cat d.log)"
        wait_names runs "$(lname 1 0.3)" "$(lname 7 0.85)"
        stop_daemon d.log
}

# three_watches NAME: watches a, b and c in c.conf, 6 old checkpoints each
# (a's NAME_<step>.pt, the others' step_<step>.pt), keep 1, cap 2.
three_watches() {
        local w s n
        for w in a b c; do
                n=step
                [ "$w" != a ] || n=$1
                mkdir "$w"
                for s in 1 2 3 4 5 6; do : >"$w/${n}_$s.pt"; done
        done
        touch -d "-1 hour" ./*/*.pt
        cat >c.conf <<EOC
log_level = "info";
max_delete_per_sweep = 2;
watch = ( { path = "$T/a"; pattern = "${1}_{step}.pt"; keep_last = 1; },
          { path = "$T/b"; pattern = "step_{step}.pt"; keep_last = 1; },
          { path = "$T/c"; pattern = "step_{step}.pt"; keep_last = 1; } );
EOC
}

left() { # how many files a, b and c hold
        echo "$(ls a | wc -l) $(ls b | wc -l) $(ls c | wc -l)"
}

# max_delete_per_sweep caps the start-up sweep of all watches together, and
# each reload's (ckptd.conf(5)), and the next such sweep starts after the
# watch where the cap stopped the last: three watches of 6 old checkpoints
# each, keep 1, cap 2: two deletions in a at start-up, then two in b at a
# reload, then two in c at the next.
test_deletion_cap_is_one_for_all_watches() {
        three_watches step
        start_daemon d.log -c c.conf
        [ "$(count '^ckptd: deleted ' d.log)" = 2 ] || fail "start-up deleted past the cap: $(cat d.log)"
        [ "$(count 'deletion cap (max_delete_per_sweep) reached' d.log)" = 1 ] || fail "cap: $(cat d.log)"
        [ "$(left)" = "4 6 6" ] || fail "start-up: $(ls a b c)"
        kill -HUP "$DPID"
        wait_for 20 at_least 4 '^ckptd: deleted ' d.log || fail "the reload deleted nothing: $(cat d.log)"
        wait_for 20 at_least 2 'deletion cap (max_delete_per_sweep) reached' d.log || fail "cap: $(cat d.log)"
        [ "$(count '^ckptd: deleted ' d.log)" = 4 ] || fail "the reload deleted past the cap: $(cat d.log)"
        [ "$(left)" = "4 4 6" ] || fail "reload: $(ls a b c)"
        kill -HUP "$DPID"
        wait_for 20 at_least 6 '^ckptd: deleted ' d.log || fail "the reload deleted nothing: $(cat d.log)"
        wait_for 20 at_least 3 'deletion cap (max_delete_per_sweep) reached' d.log || fail "cap: $(cat d.log)"
        [ "$(left)" = "4 4 4" ] || fail "second reload: $(ls a b c)"
        stop_daemon d.log
}

# A removal that fails deletes nothing and leaves the cap to the others:
# the first watch's checkpoints cannot be unlinked (EPERM, as on an
# immutable file), and the other two still get the start-up sweep's two.
# Failures have a bound of their own per watch, the cap: two of its five
# victims are tried and logged, the rest wait for the next sweep.
test_failed_removals_are_bounded_and_leave_the_cap_to_others() {
        three_watches stuck
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=unlinkat FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=EPERM FAULT_MATCH=stuck_ \
                start_daemon d.log -c c.conf
        [ "$(count '^ckptd: error: cannot delete .*stuck_' d.log)" = 2 ] || fail "a: $(cat d.log)"
        assert_grep "removals in $T/a keep failing" d.log
        [ "$(count '^ckptd: deleted ' d.log)" = 2 ] || fail "not two deletions: $(cat d.log)"
        [ "$(left)" = "6 4 6" ] || fail "a lost a checkpoint, or b did not get the cap: $(ls a b c)"
        stop_daemon d.log
}

# So are victims whose checks fail: directory checkpoints whose files
# cannot be asked whether they are in use (the lease fails with EIO) are
# kept, each logged, and after max_delete_per_sweep of them the rest wait
# for the next sweep rather than a line each at every sweep.
test_failed_checks_are_bounded() {
        local s
        for s in 1 2 3 4 5 6; do
                mkdir -p "a/stuck_$s"
                if [ $s = 6 ]; then : >a/stuck_6/kept.bin; else : >"a/stuck_$s/shard.bin"; fi
        done
        touch -d "-10 minutes" a/*/* a/*
        cat >c.conf <<EOC
max_delete_per_sweep = 2;
watch = ( { path = "$T/a"; pattern = "stuck_{step}"; kind = "dir"; keep_last = 1; } );
EOC
        local rc=0
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=fcntl FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=EIO FAULT_MATCH=shard.bin \
                "$CKPTD" -1 -c c.conf 2>err || rc=$?
        [ "$(count "cannot check whether it is in use" err)" = 2 ] || fail "not two failed checks: $(cat err)"
        assert_grep "removals in $T/a keep failing" err
        assert_names a stuck_1 stuck_2 stuck_3 stuck_4 stuck_5 stuck_6
        # kept, as after a read error: no failed deletion
        [ "$rc" = 0 ] || fail "exit $rc: $(cat err)"
}

# A broken config on SIGHUP: logged with FILE:LINE, the daemon keeps running
# under the old policy (keep_top_k 2, where the defaults would keep 3), and a
# good config after it is taken again.
test_sighup_with_broken_config_keeps_the_old_policy() {
        lrun runs 0.9 0.3 0.8 0.5 0.7
        cat >c.conf <<EOC
log_level = "info";
watch = ( { path = "$T/runs"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 2; keep_last = 1;
            settle = 0.5; } );
EOC
        start_daemon d.log -c c.conf
        wait_names runs "$(lname 1 0.3)" "$(lname 3 0.5)" "$(lname 4 0.7)"
        cat >c.conf <<EOC
log_level = "info";
watch = ( { path = "$T/runs"; preset = "lightning";
            keep_top_k = ; } );
EOC
        kill -HUP "$DPID"
        wait_for 20 grep -q "c.conf:3" d.log || fail "no FILE:LINE: $(cat d.log)"
        assert_grep 'keeping the running configuration' d.log
        alive "$DPID" || fail "ckptd died on a broken config"
        [ "$(reloads d.log)" = 0 ] || fail "a broken config was reported as reloaded"
        # old policy: top 2 + last 1
        printf x >"runs/$(lname 5 0.2)"
        printf x >"runs/$(lname 6 0.95)"
        wait_names runs "$(lname 1 0.3)" "$(lname 5 0.2)" "$(lname 6 0.95)"
        # and a good config is taken again
        cat >c.conf <<EOC
log_level = "info";
watch = ( { path = "$T/runs"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 1; keep_last = 1;
            settle = 0.5; } );
EOC
        kill -HUP "$DPID"
        wait_names runs "$(lname 5 0.2)" "$(lname 6 0.95)"
        stop_daemon d.log
}

# 200 SIGHUPs one after the other (each waited for: standard signals do not
# queue, so a flood would coalesce into fewer reloads): same fd count, same
# number of inotify watches, and the daemon still works.
test_200_sighups_keep_fds_stable() {
        lrun root/a 0.5 0.4 0.3
        lrun root/b/c 0.5 0.4 0.3
        mkdir -p root/d/e/f
        cat >c.conf <<EOC
log_level = "info";
watch = ( { path = "$T/root"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 1; keep_last = 1;
            settle = 0.5; } );
EOC
        start_daemon d.log -c c.conf
        wait_names root/a "$(lname 2 0.3)"
        local fds0 fds1 watches0 watches1 inotify_fd i deadline
        inotify_fd=$(find /proc/$DPID/fd -lname 'anon_inode:inotify' -printf '%f\n' | head -n1)
        fds0=$(ls /proc/$DPID/fd | wc -l)
        watches0=$(grep -c '^inotify wd:' /proc/$DPID/fdinfo/$inotify_fd)
        deadline=$(($(date +%s) + 60))
        for i in $(seq 1 200); do
                kill -HUP "$DPID"
                while [ "$(reloads d.log)" -lt "$i" ]; do
                        alive "$DPID" || fail "ckptd died at SIGHUP $i: $(tail -n 20 d.log)"
                        [ "$(date +%s)" -lt "$deadline" ] || fail "only $(reloads d.log) of $i reloads in 60 s"
                        sleep 0.01
                done
        done
        fds1=$(ls /proc/$DPID/fd | wc -l)
        watches1=$(grep -c '^inotify wd:' /proc/$DPID/fdinfo/$inotify_fd)
        echo "fds $fds0 -> $fds1, inotify watches $watches0 -> $watches1"
        [ "$fds0" = "$fds1" ] || fail "fd count changed over 200 reloads: $fds0 -> $fds1"
        [ "$watches0" = "$watches1" ] || fail "inotify watches changed over 200 reloads: $watches0 -> $watches1"
        # still at work, in an old run and a new one
        printf x >"root/a/$(lname 3 0.1)"
        mkdir root/d/e/f/g
        for e in 0 1 2; do printf x >"root/d/e/f/g/$(lname $e 0.$((5 - e)))"; done
        wait_names root/a "$(lname 3 0.1)"
        wait_names root/d/e/f/g "$(lname 2 0.3)"
        stop_daemon d.log
}

# --- 5. sd_notify ---

# has_field FIELD FILE: some recorded message carries exactly FIELD (e.g.
# READY=1; the message's newlines are recorded as |).
has_field() { grep -qE "(^[0-9]+ |\|)$1(\||\$)" "$2"; }

# listen.py SOCKET OUT DIR: record every datagram on SOCKET as one line of
# OUT, "<CLOCK_MONOTONIC usec> <message, newlines as |>"; when the first
# READY=1 arrives, write the names in DIR to OUT.at-ready.
write_listener() {
        cat >listen.py <<'EOP'
import os, socket, sys, time
path, out, watch_dir = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
ready_seen = False
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(65536).decode(errors="replace")
        now = time.monotonic_ns() // 1000
        if "READY=1" in msg.split("\n") and not ready_seen:
            ready_seen = True
            with open(out + ".tmp", "w") as g:
                g.write("".join(n + "\n" for n in sorted(os.listdir(watch_dir))))
            os.rename(out + ".tmp", out + ".at-ready")
        f.write(f"{now} {msg.strip().replace(chr(10), '|')}\n")
EOP
}

# start_listener DIR: a listener on $T/notify.sock, recording to $T/notify.
start_listener() {
        write_listener
        $PY listen.py "$T/notify.sock" "$T/notify" "$1" &
        echo $! >>"$T/pids"
        wait_for 20 test -S "$T/notify.sock" || fail "listener did not start"
}

# READY=1 only after the start-up sweep: 300 excess checkpoints are already
# gone when it arrives. Then STATUS=, WATCHDOG=1 (WATCHDOG_PID is the
# daemon's own pid: the shell execs ckptd), RELOADING=1 with a current
# MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 and exit 0 on SIGTERM.
test_sd_notify_protocol() {
        mkdir runs
        for s in $(seq 1 300); do printf x >"runs/step_$s.pt"; done
        touch -d "-1 hour" runs/*
        cat >c.conf <<EOC
log_level = "info";
watch = ( { path = "$T/runs"; pattern = "step_{step}.pt"; keep_last = 2; settle = 0.5; } );
EOC
        start_listener "$T/runs"
        NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=2000000 \
                bash -c 'export WATCHDOG_PID=$$; exec "$@"' ckptd "$CKPTD" -c "$T/c.conf" 2>d.log &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_for 20 test -e notify.at-ready || fail "no READY=1: $(cat notify d.log 2>/dev/null)"
        assert_names runs step_299.pt step_300.pt
        [ "$(cat notify.at-ready)" = "$(printf 'step_299.pt\nstep_300.pt')" ] ||
                fail "READY=1 came before the start-up sweep ended; runs then held $(wc -l <notify.at-ready) names"
        wait_for 20 grep -q '[ |]STATUS=' notify || fail "no STATUS=: $(cat notify)"
        wait_for 20 has_field WATCHDOG=1 notify || fail "no WATCHDOG=1: $(cat notify)"
        local n
        n=$(wc -l <notify)
        # the messages from RELOADING=1 on, once they include a READY=1
        reload_seen() {
                tail -n +$((n + 1)) notify | sed -n '/RELOADING=1/,$p' >after-reload
                has_field READY=1 after-reload
        }
        kill -HUP "$DPID"
        wait_for 20 reload_seen || fail "no RELOADING=1 then READY=1: $(cat notify)"
        # MONOTONIC_USEC is CLOCK_MONOTONIC now: at most the time it arrived, and close to it
        head -n1 after-reload | awk '{
                if (!match($0, /MONOTONIC_USEC=[0-9]+/)) { print "no MONOTONIC_USEC"; exit 1 }
                v = substr($0, RSTART + 15, RLENGTH - 15) + 0
                if (v > $1 || $1 - v > 5000000) { print "MONOTONIC_USEC " v " vs received " $1; exit 1 } }' ||
                fail "bad RELOADING=1 message: $(cat notify)"
        kill -TERM "$DPID"
        wait_exit "$DPID" 0
        wait_for 20 has_field STOPPING=1 notify || fail "no STOPPING=1: $(cat notify)"
}

# --- 6. idle ---

# An idle daemon sleeps. Measured from /proc/PID/task/*/status
# voluntary_ctxt_switches: a single-threaded sd-event daemon blocks only in
# epoll_wait, so each voluntary switch is one wake-up. After some activity
# (a chunked checkpoint, a tmp + rename, a directory checkpoint, a
# non-checkpoint removed) we wait, with a deadline, for a full second without
# a wake-up (a 1 Hz timer left running never gets there), then count wake-ups
# over 5 s with check_interval 3600, no watchdog and no polled filesystem:
# there should be none. (Measured when written: 0 in 5 s, and strace -e
# epoll_wait agrees; with WATCHDOG_USEC=2 s, strace shows 3 epoll_wait
# returns in 5 s, the watchdog's pings.)
test_idle_daemon_sleeps() {
        mkdir -p root/run
        cat >c.conf <<EOC
log_level = "info";
check_interval = 3600;
watch = ( { path = "$T/root"; pattern = "step_{step}*"; keep_last = 1; settle = 0.5; } );
EOC
        start_daemon d.log -c c.conf
        printf a >root/run/step_1.pt
        printf b >>root/run/step_1.pt
        printf c >root/run/step_2.pt.tmp
        mv root/run/step_2.pt.tmp root/run/step_2.pt
        mkdir root/run/step_3
        printf d >root/run/step_3/shard
        printf e >root/run/other
        rm root/run/other
        wait_names root/run step_3
        wait_for 30 quiet_for_2s || fail "ckptd never idles: it keeps waking up"
        local w0 w1
        w0=$(wakeups "$DPID")
        sleep 5 # the measurement window, not a synchronisation
        w1=$(wakeups "$DPID")
        echo "idle wake-ups in 5 s: $((w1 - w0))"
        [ $((w1 - w0)) -le 1 ] || fail "idle daemon woke up $((w1 - w0)) times in 5 s"
        stop_daemon d.log
}

# Lightning's layout puts the checkpoints directory beside the logs that a
# trainer appends to all the time (metrics.csv, TensorBoard's events file).
# The daemon watches that parent only for its root's name coming and going:
# the appends do not wake it.
test_writes_beside_the_root_do_not_wake_the_daemon() {
        mkdir -p job/checkpoints
        cat >c.conf <<EOC
check_interval = 3600;
watch = ( { path = "$T/job/checkpoints"; pattern = "step_{step}*"; keep_last = 1; settle = 0; } );
EOC
        start_daemon d.log -c c.conf
        printf a >job/checkpoints/step_1.pt
        printf b >job/checkpoints/step_2.pt
        wait_names job/checkpoints step_2.pt
        # the logs exist already (their creation is news of the parent)
        : >job/metrics.csv
        : >job/events.out.tfevents.1
        wait_for 30 quiet_for_2s || fail "ckptd never idles: it keeps waking up"
        local w0 w1 i
        w0=$(wakeups "$DPID")
        for i in $(seq 1 100); do
                printf 'step %d\n' "$i" >>job/metrics.csv
                printf 'event %d\n' "$i" >>job/events.out.tfevents.1
                sleep 0.01 # a trainer's pace, so that each append could wake it
        done
        w1=$(wakeups "$DPID")
        echo "wake-ups over 200 appends beside the root: $((w1 - w0))"
        [ $((w1 - w0)) -le 1 ] || fail "200 appends beside the root woke ckptd $((w1 - w0)) times"
        # the parent watch still tells the root's removal and return
        rm -r job/checkpoints
        wait_for 20 grep -q "is gone" d.log || fail "the root's removal went unnoticed: $(cat d.log)"
        mkdir job/checkpoints
        wait_for 20 grep -q "is back" d.log || fail "the root's return went unnoticed: $(cat d.log)"
        printf a >job/checkpoints/step_3.pt
        printf b >job/checkpoints/step_4.pt
        wait_names job/checkpoints step_4.pt
        stop_daemon d.log
}

# --- 7. journal ---

test_journal_fields() {
        [ -S /run/systemd/journal/socket ] || skip "journald is not running here (tests/systemd covers the journal)"
        command -v journalctl >/dev/null || skip "no journalctl"
        lrun runs 0.9 0.3 0.5
        "$CKPTD" --log-target journal -w "$T/runs" --preset lightning --monitor val_loss --keep-top-k 1 \
                --keep-last 1 --settle 0.5 2>d.log &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        local path
        path=$T/runs/$(lname 0 0.9)
        wait_names runs "$(lname 1 0.3)" "$(lname 2 0.5)"
        wait_for 20 eval "journalctl -o json CKPTD_PATH='$path' | grep -q CKPTD_ACTION" ||
                fail "no journal entry for $path"
        journalctl -o json CKPTD_PATH="$path" | $PY -c '
import json, sys
e = json.loads(sys.stdin.readline())
want = {"CKPTD_ACTION": "delete", "CKPTD_REASON": "policy", "CKPTD_MONITOR": "val_loss",
        "MESSAGE_ID": "5b7c0d1a3e2f4a6b8c9d0e1f2a3b4c01"}
for k, v in want.items():
    assert e.get(k) == v, (k, e.get(k))
assert float(e["CKPTD_VALUE"]) == 0.9 and int(e["CKPTD_BYTES"]) >= 0 and e["CKPTD_RUN"] == ".", e
' || fail "journal fields"
        stop_daemon d.log
}

# --- SIGTERM in the middle of a sweep ---

# dirs N: N directory checkpoints step-1..N of three files each, an hour old.
dirs() {
        local s
        mkdir runs
        (cd runs && mkdir $(seq -f 'step-%g' 1 "$1"))
        for s in $(seq 1 "$1"); do
                printf 1 >runs/step-$s/a
                printf 2 >runs/step-$s/b
                printf 3 >runs/step-$s/c
        done
        touch -d "-1 hour" runs/*/* runs/*
}

# intact: every step-* dir has its three files, and no tombstone is left.
assert_intact() {
        local d
        [ -z "$(find runs -maxdepth 1 -name '.ckptd-*')" ] || fail "tombstones left: $(find runs -name '.ckptd-*')"
        for d in runs/step-*; do
                [ "$(ls "$d" | tr '\n' ' ')" = "a b c " ] || fail "$d is half removed: $(ls "$d")"
        done
}

# Deterministic: the test seam holds each removal after its tombstone rename
# (CKPTD_TEST_HOOK, ckptd-hooked, tests/hook/hook.c) until the test writes a byte. Three go
# through, the fourth is held, SIGTERM arrives, the fourth is let go: it is
# finished (no tombstone), no fifth is started, exit 0, STOPPING=1 sent.
test_sigterm_finishes_the_removal_in_hand() {
        dirs 500
        cat >c.conf <<EOC
log_level = "info";
max_delete_per_sweep = 10000;
watch = ( { path = "$T/runs"; pattern = "step-{step}"; keep_last = 1; settle = 0.5; } );
EOC
        start_listener "$T/runs"
        mkfifo hook
        exec 3<>hook # read-write: never blocks, and keeps the FIFO open between removals
        NOTIFY_SOCKET=$T/notify.sock CKPTD_TEST_HOOK="tombstoned:$T/hook" "$CKPTD_HOOKED" -c c.conf 2>d.log 3>&- &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        printf ccc >&3
        wait_for 20 at_least 3 '^ckptd: deleted ' d.log || fail "no deletions: $(cat d.log)"
        wait_for 20 eval '[ -n "$(find runs -maxdepth 1 -name ".ckptd-trash-*")" ]' ||
                fail "the fourth removal did not start"
        # kill(2) has made SIGTERM pending (blocked in ckptd) when it returns
        kill -TERM "$DPID"
        printf c >&3
        wait_exit "$DPID" 0
        exec 3>&-
        [ "$(count '^ckptd: deleted ' d.log)" = 4 ] || fail "expected 4 deletions: $(cat d.log)"
        [ "$(ls runs | wc -l)" = 496 ] || fail "$(ls runs | wc -l) left, expected 496"
        assert_intact
        wait_for 20 has_field STOPPING=1 notify || fail "no STOPPING=1: $(cat notify)"
        # stopped before the start-up ended: never READY=1 after STOPPING=1
        ! sed -n '/STOPPING=1/,$p' notify | grep -qE '(^[0-9]+ |\|)READY=1(\||$)' ||
                fail "READY=1 after STOPPING=1: $(cat notify)"
}

# The same without a seam: 499 removals at start-up, SIGTERM as soon as the
# first is logged. Exit 0 soon, and every checkpoint whole or gone.
test_sigterm_during_a_long_startup_sweep() {
        dirs 500
        cat >c.conf <<EOC
log_level = "info";
max_delete_per_sweep = 10000;
watch = ( { path = "$T/runs"; pattern = "step-{step}"; keep_last = 1; settle = 0.5; } );
EOC
        "$CKPTD" -c c.conf 2>d.log &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_for 20 at_least 1 '^ckptd: deleted ' d.log || fail "no deletions: $(cat d.log)"
        kill -TERM "$DPID"
        wait_exit "$DPID" 0
        local deleted left
        deleted=$(count '^ckptd: deleted ' d.log)
        left=$(ls runs | wc -l)
        echo "deleted $deleted of 499 before stopping"
        [ $((deleted + left)) = 500 ] || fail "$deleted logged + $left left != 500"
        assert_intact
}

# --- review findings, each a user-visible failure once ---

# Two runs made due by one read of events, X first. While X's removal is
# held (the seam: a slow removal), A changes: a keep file pins its victim,
# or its directory is replaced by another. A is decided only after those
# events are read, and from the directory there now, so neither its pinned
# checkpoint nor the only one of the directory moved in goes. A later save
# (its deletion logged) shows A was decided.
other_run_changed_during_a_sweep() {
        mkdir -p root/X root/A B
        mkfile root/X/e1-l0.8.pt 4
        mkfile root/X/e2-l0.7.pt 4
        for s in e9-l0.9 e10-l0.1 e11-l0.2; do mkfile "root/A/$s.pt" 4; done
        for s in e5-l0.5 e6-l0.9 e7-l0.95 e8-l0.99; do mkfile "B/$s.pt" 4; done
        touch -d "-1 hour" root/X/* B/*
        touch -d "-10 min" root/A/*
        mkfifo hook
        exec 3<>hook # read-write: never blocks, and keeps the FIFO open between removals
        printf x >&3 # A's e9 goes at the start
        CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -w "$T/root" --pattern 'e{epoch}-l{loss}.pt' \
                --monitor loss --keep-top-k 2 --keep-last 1 --settle 0 2>d.log 3>&- &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        assert_grep "deleted $T/root/A/e9-l0.9.pt" d.log
        # both saves read at once: X's e1 and A's e10 (keep) or new e5 (swap) become victims
        kill -STOP "$DPID"
        mkfile root/X/e3-l0.6.pt 4
        case $1 in
        keep) mkfile root/A/e12-l0.05.pt 4 ;;
        swap) mkfile root/A/e5-l0.5.pt 4 ;;
        esac
        kill -CONT "$DPID"
        wait_for 20 eval "ls -l /proc/$DPID/fd 2>/dev/null | grep -q hook" || fail "X's removal was not held: $(cat d.log)"
        case $1 in
        keep) : >root/A/e11-l0.2.pt.keep ;;
        swap) mv root/A A.old && mv B root/A ;;
        esac
        printf xxxxxxxxxx >&3 # the removals go on
        case $1 in
        keep)
                mkfile root/A/e13-l0.01.pt 4
                wait_for 20 grep -q "deleted $T/root/A/e10-l0.1.pt" d.log || fail "A was not decided: $(cat d.log)"
                assert_names root/A e11-l0.2.pt e11-l0.2.pt.keep e12-l0.05.pt e13-l0.01.pt
                ;;
        swap)
                wait_for 20 grep -q "deleted $T/root/A/e7-l0.95.pt" d.log || fail "A was not read again: $(cat d.log)"
                assert_names root/A e5-l0.5.pt e6-l0.9.pt e8-l0.99.pt
                assert_names A.old e10-l0.1.pt e11-l0.2.pt e5-l0.5.pt
                ;;
        esac
        exec 3>&-
        assert_names root/X e2-l0.7.pt e3-l0.6.pt
}

test_keep_file_made_while_another_run_is_swept() { other_run_changed_during_a_sweep keep; }
test_run_directory_replaced_while_another_run_is_swept() { other_run_changed_during_a_sweep swap; }

# dry_run = true by reload stops deletions at once.
test_reload_to_dry_run_stops_deleting() {
        mkdir runs
        conf() {
                cat >c.conf <<EOC
dry_run = $1;
watch = ( { path = "$T/runs"; pattern = "step_{step}.pt"; keep_last = 1; settle = 0.2; } );
EOC
        }
        conf false
        start_daemon d.log -c c.conf
        conf true
        kill -HUP "$DPID"
        wait_for 20 at_least 1 '^ckptd: reloaded ' d.log || fail "no reload: $(cat d.log)"
        for s in 1 2 3; do printf x >"runs/step_$s.pt"; done
        wait_for 20 at_least 2 'would delete' d.log || fail "no would-delete: $(cat d.log)"
        assert_names runs step_1.pt step_2.pt step_3.pt
        stop_daemon d.log
}

# A hard link made to a checkpoint (IN_CREATE, never IN_CLOSE_WRITE) is a
# checkpoint like any other, not one "being written" forever.
test_hard_link_in_is_not_written_forever() {
        mkdir runs
        printf x >saved.pt
        start_daemon d.log -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 --settle 0.2
        ln saved.pt runs/step_1.pt
        printf y >runs/step_2.pt
        wait_names runs step_2.pt
        stop_daemon d.log
}

# The root and its parent removed and made again (rm -rf exp; mkdir -p
# exp/ckpts): found again at the next check_interval.
# A tree archived from two levels above the watch path, with a symlink
# left where the watch directory was (no event of the watch or its parent):
# the symlink is never followed, so the watch is lost and said to be a
# symlink, and nothing is deleted in the tree moved away.
test_root_moved_away_behind_a_symlink_is_lost() {
        mkdir -p g/p/runs/a
        cat >c.conf <<EOC
check_interval = 1;
watch = ( { path = "$T/g/p/runs"; pattern = "step_{step}.pt"; keep_last = 1; settle = 0.2; } );
EOC
        start_daemon d.log -c c.conf
        mv g g2 && mkdir -p g/p && ln -s ../../g2/p/runs g/p/runs
        for s in 1 2 3; do printf x >"g2/p/runs/a/step_$s.pt"; done
        wait_for 20 eval '"$CKPTD" status 2>/dev/null | grep -q "watch: *$T/g/p/runs: A SYMLINK, not followed"' ||
                fail "status: $("$CKPTD" status 2>&1); $(cat d.log)"
        assert_grep "$T/g/p/runs no longer leads to the directory watched" d.log
        assert_names g2/p/runs/a step_1.pt step_2.pt step_3.pt
        stop_daemon d.log
}

test_root_and_parent_recreated() {
        mkdir -p exp/ckpts
        cat >c.conf <<EOC
check_interval = 1;
watch = ( { path = "$T/exp/ckpts"; pattern = "step_{step}.pt"; keep_last = 1; settle = 0.2; } );
EOC
        start_daemon d.log -c c.conf
        rm -rf exp
        mkdir -p exp/ckpts
        wait_for 20 at_least 1 'is back' d.log || fail "the root was not found again: $(cat d.log)"
        for s in 1 2; do printf x >"exp/ckpts/step_$s.pt"; done
        wait_names exp/ckpts step_2.pt
        stop_daemon d.log
}

# A directory checkpoint is not complete the moment its marker appears when
# another rank still writes into it: with keep_last 0 and no metric yet it
# would be deleted by the policy at once.
test_marker_then_more_writes_waits_for_quiet() {
        mkdir out
        cat >c.conf <<EOC
watch = ( { path = "$T/out"; pattern = "checkpoint-{step}"; kind = "dir"; keep_last = 0; keep_every = 1000000;
            complete_marker = "trainer_state.json"; settle = 30; } );
EOC
        start_daemon d.log -c c.conf
        mkdir out/checkpoint-7
        printf '{}' >out/checkpoint-7/trainer_state.json
        # ranks still writing after the marker, for 2 s
        for i in 1 2 3 4 5 6 7 8; do
                printf x >"out/checkpoint-7/rng_state_$i.pth"
                sleep 0.25 # the writer's pace, not a synchronisation
                [ -e out/checkpoint-7/trainer_state.json ] || fail "deleted while rank $i still wrote"
        done
        # the next save, renamed in whole: the run's latest written from
        # now on (newest-written keeps the latest; step 7 was it so far)
        mkdir out/tmp-8
        printf '{}' >out/tmp-8/trainer_state.json
        mv out/tmp-8 out/checkpoint-8
        # once quiet, the policy (nothing keeps step 7) deletes it; within
        # settle (30 s) at the latest, however slow the machine
        wait_for 45 eval '[ ! -e out/checkpoint-7 ]' || fail "never completed: $(cat d.log)"
        assert_names out checkpoint-8
        stop_daemon d.log
}

# inotify watches held by every process of this user (/proc/PID/fdinfo).
user_watches() {
        cat /proc/[0-9]*/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true
}

# The watch limit reached: one warning, and the runs beyond it are polled
# every poll_interval instead of going unmanaged.
test_watch_limit_falls_back_to_polling() {
        need_root
        local knob=/proc/sys/fs/inotify/max_user_watches old used
        for r in $(seq 1 30); do mkdir -p "root/run$r"; done
        cat >c.conf <<EOC
watch = ( { path = "$T/root"; pattern = "step_{step}.pt"; keep_last = 1; settle = 0.2; poll_interval = 1; } );
EOC
        exec 9>"$TESTS_TMP/ckptd-test-max_user_watches.lock"
        flock -w 60 9 || fail "cannot lock $TESTS_TMP/ckptd-test-max_user_watches.lock"
        old=$(cat $knob)
        # shellcheck disable=SC2064 # the value to restore is known now
        trap "echo $old >$knob" EXIT
        used=$(user_watches)
        # room for the root, its parent and a few runs, not for 30
        echo $((used + 8)) >$knob
        start_daemon d.log -c c.conf 9>&-
        echo "$old" >$knob
        trap - EXIT
        exec 9>&-
        assert_grep 'inotify watch limit reached' d.log
        [ "$(count 'watch limit reached' d.log)" = 1 ] || fail "warned more than once: $(cat d.log)"
        for r in 1 15 30; do
                for st in 1 2 3; do printf x >"root/run$r/step_$st.pt"; done
        done
        for r in 1 15 30; do wait_names "root/run$r" step_3.pt; done
        stop_daemon d.log
}

# The metrics file: checkpoints per run, deletions and bytes by reason.
test_metrics_file_counts_deletions() {
        mkdir runs
        cat >c.conf <<EOC
metrics_file = "$T/m.prom";
watch = ( { path = "$T/runs"; pattern = "step_{step}.pt"; keep_last = 2; settle = 0.2; } );
EOC
        start_daemon d.log -c c.conf
        for st in 1 2 3 4 5; do head -c 8192 /dev/urandom >"runs/step_$st.pt"; done
        wait_names runs step_4.pt step_5.pt
        has_metrics() {
                grep -q '^ckptd_deleted_total{reason="policy"} 3$' m.prom &&
                        grep -q "^ckptd_checkpoints{watch=\"$T/runs\",run=\".\"} 2$" m.prom
        }
        wait_for 20 has_metrics || fail "metrics: $(cat m.prom)"
        freed=$(sed -n 's/^ckptd_freed_bytes_total{reason="policy"} //p' m.prom)
        [ "$freed" -ge $((3 * 8192)) ] || fail "freed bytes $freed"
        assert_grep '^ckptd_deleted_total{reason="floor"} 0$' m.prom
        stop_daemon d.log
}

run_tests
