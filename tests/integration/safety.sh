#!/usr/bin/env bash
# Safety of deletion: races, mounts, interrupted removals.
. "$(dirname "$0")/../lib.sh"

# A checkpoint directory is swapped for a symlink to the outside after the
# decision and before the removal: nothing outside the root is touched.
test_swap_between_decision_and_removal() {
        mkdir -p runs outside
        for s in 1 2; do mkdir "runs/step-$s"; mkfile "runs/step-$s/shard" 4; done
        mkfile outside/precious 4
        touch -d "-1 hour" runs/*/* runs/*
        mkfifo hook
        CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -1 -w "$T/runs" --pattern 'step-{step}' \
                --keep-last 1 2>err &
        pid=$!
        echo $pid >>"$T/pids"
        # the daemon blocks in the hook; swap the victim, then let it go on
        wait_for 10 sh -c "ls -l /proc/$pid/fd 2>/dev/null | grep -q hook"
        mv runs/step-1 runs/moved-away
        ln -s "$T/outside" runs/step-1
        echo c >hook
        wait $pid || true
        assert_exists outside/precious
        assert_exists runs/moved-away/shard
        assert_exists runs/step-1
        assert_grep "changed since it was scanned" err
}

# A keep file made beside a victim after its run was read, before its
# removal, in a pass that has gone on for over a second (here held while it
# removes the one before it), keeps it.
test_keep_file_made_during_a_pass_keeps_its_checkpoint() {
        mkdir runs
        for s in 1 2 3; do mkfile "runs/step-$s" 4; done
        touch -d "-1 hour" runs/*
        mkfifo hook
        t0=$(date +%s%N)
        CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -1 -w "$T/runs" --pattern 'step-{step}' \
                --keep-last 1 2>err &
        pid=$!
        echo $pid >>"$T/pids"
        wait_for 10 sh -c "ls -l /proc/$pid/fd 2>/dev/null | grep -q hook" || fail "no hook: $(cat err)"
        touch runs/step-2.keep
        # the pass began over a second ago
        wait_for 10 sh -c "[ \$((\$(date +%s%N) - $t0)) -gt 1200000000 ]"
        echo c >hook
        # a removal of step-2 would block in the hook again
        wait_exit $pid 0
        assert_names runs step-2 step-2.keep step-3
        assert_grep "keeping $T/runs/step-2 (" err
}

# A run, or the tree above the watch path, moved away during a pass (an
# operator archiving it while a long start-up pass deletes): the removal
# already past its checks (held at the seam) may go, and nothing more is
# removed in the tree moved away, which is no longer under the watch path.
moved_during_a_pass() {
        mkdir -p runs/a outside
        for s in 1 2 3 4 5; do mkfile "runs/a/step-$s" 4; done
        touch -d "-1 hour" runs/a/*
        rm -f hook && mkfifo hook
        exec 3<>hook
        CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -1 -w "$T/runs" --pattern 'step-{step}' \
                --keep-last 1 2>err 3>&- &
        pid=$!
        echo $pid >>"$T/pids"
        wait_for 10 sh -c "ls -l /proc/$pid/fd 2>/dev/null | grep -q hook" || fail "no hook: $(cat err)"
        case $1 in
        run) mv runs/a outside/a ;;
        root) mv runs outside/runs ;;
        symlink) mv runs outside/runs && ln -s outside/runs runs ;;
        esac
        printf xxxxx >&3
        wait_exit $pid 0
        exec 3>&-
        local moved=outside/a
        [ "$1" != run ] && moved=outside/runs/a
        assert_names "$moved" step-2 step-3 step-4 step-5
        case $1 in
        run) assert_grep "$T/runs/a was moved away or replaced during the pass; deleting nothing more in it" err ;;
        *) assert_grep "$T/runs no longer leads to the directory watched" err ;;
        esac
        [ "$(grep -c '^ckptd: deleted /' err)" = 1 ] || fail "more than the one held was said deleted: $(cat err)"
}

test_run_moved_away_during_a_pass() { moved_during_a_pass run; }
test_root_moved_away_during_a_pass() { moved_during_a_pass root; }
# a symlink left at the watch path is never followed
test_root_moved_away_behind_a_symlink_during_a_pass() { moved_during_a_pass symlink; }

# A run whose whole path (watch path and run path) is longer than PATH_MAX
# is read and removed through the directories held open: asking whether it
# is still in place does not refuse its victims.
test_run_beyond_path_max_is_swept() {
        local c w d i
        c=$(printf 'd%.0s' $(seq 200))
        w=$T/w
        for i in $(seq 10); do w=$w/$c; done
        mkdir -p "$w"
        d=$c
        for i in $(seq 10); do d=$d/$c; done
        (cd "$w" && mkdir -p "$d" && cd "$d" && for i in 1 2 3 4 5; do mkfile "step-$i" 4; done &&
                touch -d "-1 hour" step-*) || fail "cannot make the tree"
        [ "$(printf %s "$w/$d" | wc -c)" -gt 4096 ] || fail "the path is not longer than PATH_MAX"
        "$CKPTD" -1 -w "$w" --pattern 'step-{step}' --keep-last 1 2>err || fail "ckptd -1 failed: $(cat err)"
        (cd "$w" && cd "$d" && ls) >left
        [ "$(cat left)" = step-5 ] || fail "left: $(cat left); $(cat err)"
}

# The same for a pointer file: `latest` set by hand to name a victim during
# a pass that has gone on for over a second keeps that victim; so does one
# that cannot be read by then (it may name it), and one caught half
# rewritten in place, its writer closed between two writes ("global_" of
# "global_step3": it names nothing yet, written within settle), or caught
# with a part that names another ("global_step3" of "global_step30": the
# victim whose name it begins stays, the one it names stays). A `latest`
# that is a symlink to the newest keeps no other.
test_pointer_file_rewritten_during_a_pass_keeps_what_it_names() {
        local how steps newest
        for how in name unreadable torn part symlink; do
                rm -rf runs
                mkdir runs
                steps="1 2 3 4" newest=4
                [ "$how" != part ] || steps="1 3 30 40" newest=40
                for s in $steps; do mkdir "runs/global_step$s" && mkfile "runs/global_step$s/model.pt" 4; done
                if [ "$how" = symlink ]; then ln -s global_step4 runs/latest; else echo "global_step$newest" >runs/latest; fi
                touch -d "-1 hour" runs/*/* runs/*
                rm -f hook && mkfifo hook
                exec 3<>hook # read-write: never blocks, and keeps the FIFO open between removals
                t0=$(date +%s%N)
                CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -1 -w "$T/runs" --preset deepspeed --keep-last 1 \
                        2>err 3>&- &
                pid=$!
                echo $pid >>"$T/pids"
                wait_for 10 sh -c "ls -l /proc/$pid/fd 2>/dev/null | grep -q hook" || fail "no hook: $(cat err)"
                case $how in
                name) echo global_step2 >runs/latest.new && mv runs/latest.new runs/latest ;;
                unreadable) rm runs/latest && mkdir runs/latest ;;
                torn) printf global_ >runs/latest ;;
                part) printf global_step3 >runs/latest ;;
                esac
                # the pass began over a second ago
                wait_for 10 sh -c "[ \$((\$(date +%s%N) - $t0)) -gt 1200000000 ]"
                printf cccc >&3
                wait_exit $pid 0
                exec 3>&-
                case $how in
                name)
                        assert_names runs global_step2 global_step4 latest
                        assert_grep "keeping $T/runs/global_step2 (pointer): a pointer file names it since it was decided" err
                        ;;
                unreadable)
                        assert_names runs global_step2 global_step3 global_step4 latest
                        assert_grep "runs/global_step2: cannot read whether a pointer file names it: .*; keeping it" err
                        ;;
                torn)
                        printf step3 >>runs/latest # the writer's second write
                        assert_names runs global_step2 global_step3 global_step4 latest
                        assert_grep "runs/global_step3: a pointer file written just now names no checkpoint" err
                        ;;
                part)
                        printf 0 >>runs/latest
                        assert_names runs global_step3 global_step30 global_step40 latest
                        assert_grep "runs/global_step30: a pointer file written just now names no checkpoint" err
                        ;;
                symlink)
                        assert_names runs global_step4 latest
                        assert_no_grep "keeping\|cannot read" err
                        ;;
                esac
        done
}

# A victim saved again in place after its run was read, before its
# removal (a trainer restarted into the run, writing the same name again,
# closed by the time ckptd gets to it): not what was decided, so it stays.
# (A directory's files: check_verify, test_tree_written_since.)
test_victim_saved_again_in_place_before_its_removal_is_kept() {
        mkdir runs
        for s in 1 2 3; do mkfile "runs/step-$s" 4; done
        touch -d "-2 hours" runs/*
        mkfifo hook
        CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -1 -w "$T/runs" --pattern 'step-{step}' \
                --keep-last 2 2>err &
        pid=$!
        echo $pid >>"$T/pids"
        wait_for 10 sh -c "ls -l /proc/$pid/fd 2>/dev/null | grep -q hook" || fail "no hook: $(cat err)"
        printf 'saved again' >runs/step-1
        echo c >hook
        wait_exit $pid 0
        assert_names runs step-1 step-2 step-3
        assert_grep "$T/runs/step-1 changed since it was scanned, not deleting it" err
}

# The daemon does not watch inside a complete directory checkpoint: one
# written again in place there raises no event it sees. Kept as changed when
# it comes up as a victim, it is read again and decided again soon, with no
# further event (the run's training may be over), not kept on its old
# record for as long as the daemon runs.
test_daemon_reads_a_victim_kept_as_changed_again() {
        mkdir runs
        for s in 1 2 3; do
                mkdir "runs/step-$s"
                mkfile "runs/step-$s/model.pt" 4
        done
        touch -d "-2 hours" runs/*/* runs/*
        start_daemon log -w "$T/runs" --pattern 'step-{step}' --keep-last 2 --settle 0.2
        wait_names runs step-2 step-3
        printf 'saved again' >runs/step-2/model.pt
        mkdir runs/step-4
        mkfile runs/step-4/model.pt 4
        wait_for 20 grep -q "step-2 changed since it was scanned, not deleting it" log ||
                fail "step-2 not kept as changed: $(cat log)"
        # read again: step-4 is written after it, step-2 a victim as it is now
        wait_names runs step-3 step-4
        stop_daemon log
}

# A mount made inside a complete directory checkpoint after the daemon read
# it: found by the walk before its removal, which keeps it whole.
test_daemon_keeps_a_victim_mounted_inside_since_whole() {
        need_root
        mkdir -p runs other
        for s in 1 2 3; do
                mkdir -p "runs/step-$s/sub"
                mkfile "runs/step-$s/shard" 4
        done
        mkfile other/precious 4
        touch -d "-2 hours" runs/*/* runs/*
        start_daemon log -w "$T/runs" --pattern 'step-{step}' --keep-last 3 --settle 0.2
        # a bind mount of this filesystem in step-1, another filesystem in step-2
        mount --bind "$T/other" runs/step-1/sub || fail "cannot bind-mount"
        mount -t tmpfs tmpfs runs/step-2/sub || fail "cannot mount tmpfs"
        mkdir runs/step-4 runs/step-5
        mkfile runs/step-4/shard 4
        mkfile runs/step-5/shard 4
        for s in 1 2; do
                wait_for 20 grep -q "step-$s: a mount point is inside it, which ckptd never enters; keeping it whole" \
                        log || fail "step-$s not kept whole: $(cat log)"
                # read again: a read error of its tree, kept, and said once
                wait_for 20 grep -q "step-$s: cannot read its tree (a mount point inside it" log ||
                        fail "step-$s not read again: $(cat log)"
        done
        assert_names runs step-1 step-2 step-3 step-4 step-5
        assert_exists runs/step-1/shard
        assert_exists runs/step-2/shard
        assert_exists other/precious
        ! compgen -G 'runs/.ckptd-trash-*' >/dev/null || fail "half removed: $(ls -a runs)"
        stop_daemon log
        umount runs/step-1/sub
        umount runs/step-2/sub
}

# The seam above is only in the test build: the ckptd that is installed
# ignores CKPTD_TEST_HOOK, so a stray variable cannot stall its removals.
test_installed_ckptd_has_no_removal_seam() {
        mkdir runs
        for s in 1 2; do mkfile "runs/step-$s" 4; done
        touch -d "-1 hour" runs/*
        mkfifo hook
        CKPTD_TEST_HOOK="before:$T/hook" timeout 20 "$CKPTD" -1 -w "$T/runs" \
                --pattern 'step-{step}' --keep-last 1 2>err || fail "exit $?: $(cat err)"
        assert_names runs step-2
        ! grep -q CKPTD_TEST_HOOK "$CKPTD" || fail "CKPTD_TEST_HOOK is in $CKPTD"
}

# A removal killed after the tombstone rename is finished by the next run,
# and the checkpoint's name is never seen again.
test_interrupted_removal_is_finished_next_time() {
        mkdir runs
        for s in 1 2; do
                mkdir "runs/step-$s"
                for i in $(seq 1 50); do mkfile "runs/step-$s/shard-$i" 1; done
        done
        touch -d "-1 hour" runs/*/* runs/*
        mkfifo hook
        CKPTD_TEST_HOOK="tombstoned:$T/hook" "$CKPTD_HOOKED" -1 -w "$T/runs" --pattern 'step-{step}' \
                --keep-last 1 2>err &
        pid=$!
        echo $pid >>"$T/pids"
        wait_for 10 sh -c "ls -l /proc/$pid/fd 2>/dev/null | grep -q hook"
        echo k >hook
        rc=0
        wait $pid || rc=$?
        [ "$rc" = 137 ] || fail "expected the hook to kill ckptd, exit $rc"
        assert_absent runs/step-1
        compgen -G 'runs/.ckptd-trash-*' >/dev/null || fail "no tombstone left: $(ls -a runs)"
        "$CKPTD" -1 -w "$T/runs" --pattern 'step-{step}' --keep-last 1 2>err2
        assert_names runs step-2
        assert_grep "finished 1 interrupted removal" err2
}

# A bind mount inside a checkpoint directory is not crossed, and the
# checkpoint it is in, which cannot be removed whole, is kept whole.
test_bind_mount_inside_run_is_not_crossed() {
        need_root
        mkdir -p runs/step-1/mnt runs/step-2 runs/step-3 other
        mkfile other/precious 4
        for s in 1 2 3; do mkfile "runs/step-$s/shard" 4; done
        mount --bind "$T/other" runs/step-1/mnt
        touch -d "-1 hour" runs/*/* runs/*
        "$CKPTD" -1 -w "$T/runs" --pattern 'step-{step}' --keep-last 1 2>err || true
        assert_exists runs/step-1/mnt/precious
        assert_exists runs/step-1/shard
        assert_grep "step-1: cannot read its tree (a mount point inside it" err
        # it takes no place among the last: step-2 is the victim
        assert_names runs step-1 step-3
        umount runs/step-1/mnt
        assert_exists other/precious
}

# The daemon reads the tree of a checkpoint it is told of: one with a
# mount point inside is kept whole, and said so.
test_daemon_keeps_a_checkpoint_with_a_mount_inside_whole() {
        need_root
        mkdir -p runs/r/step-1 runs/r/step-2 runs/r/step-3/mnt other
        for s in 1 2 3; do mkfile "runs/r/step-$s/shard" 4; done
        mkfile other/precious 4
        touch -d "-1 hour" runs/r/*/* runs/r/*
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "step-{step}"; kind = "dir"; keep_top_k = 0; keep_last = 1;
            settle = 1; } );
EOC
        mount --bind "$T/other" runs/r/step-3/mnt || fail "cannot bind-mount"
        # renamed in while the daemon watches: read as a new save
        mv runs/r/step-3 runs/r/step-0.tmp
        start_daemon d.log -c c.conf
        mkdir runs/r/step-4
        mkfile runs/r/step-4/shard 4
        mv runs/r/step-0.tmp runs/r/step-5
        wait_for 20 grep -q "step-5: cannot read its tree (a mount point inside it" d.log ||
                fail "not said: $(cat d.log)"
        # step-5 takes no place among the last: step-4 is kept, the rest go
        wait_for 20 test ! -e runs/r/step-2 || fail "step-2 kept: $(ls runs/r) $(cat d.log)"
        assert_exists runs/r/step-5/shard
        assert_exists runs/r/step-5/mnt/precious
        assert_exists runs/r/step-4/shard
        stop_daemon d.log
        umount runs/r/step-5/mnt
        assert_exists other/precious
}

# A file bind-mounted over one of an old directory victim's files after the
# daemon read it (the same filesystem, the same st_dev, an old file that
# is not opened): a mount point all the same, found by the walk before the
# removal, which keeps the victim whole.
test_file_bind_mount_inside_a_victim_keeps_it_whole() {
        need_root
        mkdir -p runs other
        for s in 1 2; do
                mkdir "runs/step-$s"
                mkfile "runs/step-$s/shard" 4
        done
        mkfile other/precious 4
        touch -d "-2 hours" runs/*/* runs/* other/precious
        start_daemon log -w "$T/runs" --pattern 'step-{step}' --keep-last 2 --settle 0.2
        mount --bind "$T/other/precious" runs/step-1/shard || fail "cannot bind-mount a file"
        mkdir runs/step-3
        mkfile runs/step-3/shard 4
        wait_for 20 grep -q "step-1: a mount point is inside it, which ckptd never enters; keeping it whole" log ||
                fail "step-1 not kept whole: $(cat log)"
        stop_daemon log
        ! compgen -G 'runs/.ckptd-trash-*' >/dev/null || fail "half removed: $(ls -a runs)"
        umount runs/step-1/shard
        assert_names runs step-1 step-2 step-3
        assert_exists other/precious
}

# On an overlay whose layers are on other filesystems, a file reports its
# layer's device, not the overlay's: no mount point for all that, and
# directory victims there are removed as anywhere.
test_directory_victims_on_an_overlay_are_removed() {
        need_root
        mkdir -p lower up merged
        mount -t tmpfs tmpfs up || fail "cannot mount tmpfs"
        mkdir up/u up/w
        mount -t overlay overlay -o "lowerdir=$T/lower,upperdir=$T/up/u,workdir=$T/up/w" merged ||
                { umount up; skip "no overlayfs"; }
        mkdir merged/runs
        for s in 1 2 3; do
                mkdir "merged/runs/step-$s"
                mkfile "merged/runs/step-$s/shard" 4
        done
        touch -d "-2 hours" merged/runs/*/* merged/runs/*
        "$CKPTD" -1 -w "$T/merged/runs" --pattern 'step-{step}' --keep-last 1 2>err || fail "-1 failed: $(cat err)"
        assert_names merged/runs step-3
        ! grep -q "mount point" err || fail "a layer taken for a mount: $(cat err)"
        umount merged
        umount up
}

# A bind-mounted run directory below the root is another filesystem: not a run.
test_bind_mounted_run_is_not_entered() {
        need_root
        mkdir -p root/local root/mounted other
        for s in 1 2 3; do mkfile "other/step_$s.pt" 1; mkfile "root/local/step_$s.pt" 1; done
        touch -d "-1 hour" other/* root/local/*
        mount --bind "$T/other" root/mounted
        # bind mounts of the same filesystem share st_dev: RESOLVE_NO_XDEV still refuses
        "$CKPTD" -1 -w "$T/root" --pattern 'step_{step}.pt' --keep-last 1 2>err || true
        umount root/mounted
        assert_names other step_1.pt step_2.pt step_3.pt
        assert_names root/local step_3.pt
}

# The daemon, a name at a time: a directory with a checkpoint's name that is
# a mount point (another filesystem, or a bind mount of this one) is no
# checkpoint, so it neither takes a place among the newest nor is removed.
test_daemon_takes_no_mount_point_for_a_checkpoint() {
        need_root
        mkdir -p runs/r/step-1 runs/r/step-2 other
        mkfile runs/r/step-1/shard 4
        mkfile runs/r/step-2/shard 4
        mkfile other/precious 4
        touch -d "-1 hour" runs/r/*/* runs/r/*
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "step-{step}"; kind = "dir"; keep_top_k = 0; keep_last = 2;
            settle = 2; } );
EOC
        start_daemon d.log -c c.conf
        mkdir runs/r/step-9
        mount --bind "$T/other" runs/r/step-9 || fail "cannot bind-mount"
        mkdir runs/r/step-10.tmp
        mkfile runs/r/step-10.tmp/shard 4
        mv runs/r/step-10.tmp runs/r/step-10
        # the newest two are step-10 and step-2: step-9 is a mount point
        wait_for 20 test ! -e runs/r/step-1 || fail "step-1 kept: $(ls runs/r) $(cat d.log)"
        assert_exists runs/r/step-2/shard
        assert_exists other/precious
        stop_daemon d.log
        umount runs/r/step-9
}

# Hard links: deleting a checkpoint removes only its link.
test_hard_link_keeps_other_name() {
        mkdir runs
        for s in 1 2; do mkfile "runs/step_$s.pt" 4; done
        ln runs/step_1.pt saved.pt
        touch -d "-1 hour" runs/*
        sum=$(md5sum <saved.pt)
        "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 2>err
        assert_names runs step_2.pt
        [ "$(md5sum <saved.pt)" = "$sum" ] || fail "the other link lost its data"
}

run_tests
