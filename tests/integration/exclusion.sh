#!/usr/bin/env bash
# What one owner, one daemon or one clock must not do to another: checkpoints
# of several owners in one sticky run, two ckptd processes on one tree, and
# wall-clock steps under a running daemon.
. "$(dirname "$0")/../lib.sh"

VICTIM=ckptd-victim
ATTACKER=ckptd-attacker

# need_users: the two unprivileged users of the owner tests.
need_users() {
        need_root
        local u
        for u in $VICTIM $ATTACKER; do
                id -u "$u" >/dev/null 2>&1 || useradd --system --no-create-home "$u" 2>/dev/null ||
                        id -u "$u" >/dev/null 2>&1 || skip "cannot create user $u"
        done
        chmod 755 "$T"
}

# as USER CMD...: run CMD as USER.
as() {
        local u=$1
        shift
        setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"
}

# sticky_run DIR: a world-writable sticky directory (/tmp's mode).
sticky_run() {
        mkdir -p "$1"
        chmod 1777 "$1"
}

# steps DIR N...: step_N.pt files, an hour old.
steps() {
        local dir=$1 n
        shift
        mkdir -p "$dir"
        for n in "$@"; do echo "$n" >"$dir/step_$n.pt"; done
        touch -d "-1 hour" "$dir"/*.pt
}

# conf FILE DIR KEEP_LAST: a config with one watch.
conf() {
        cat >"$1" <<EOC
watch = ( { path = "$2"; pattern = "step_{step}.pt"; keep_last = $3; settle = 0.2; } );
EOC
}

# --- one ckptd per tree ---

test_lock_second_daemon_on_root_refused() {
        steps "$T/runs" 1 2 3
        conf a.conf "$T/runs" 3
        conf b.conf "$T/runs" 1
        start_daemon a.log -c a.conf
        local rc=0
        timeout 20 "$CKPTD" -c b.conf 2>b.log || rc=$?
        [ "$rc" = 1 ] || fail "second daemon: exit $rc, expected 1: $(cat b.log)"
        assert_grep "locked by pid $DPID (ckptd)" b.log
        assert_names runs step_1.pt step_2.pt step_3.pt
        alive "$DPID" || fail "the first daemon died"
}

# A reload that adds a watch another ckptd holds leaves it to that one:
# status says it is locked, not missing.
test_lock_reload_adding_a_held_root_says_locked() {
        local apid
        steps "$T/runs" 1 2 3
        mkdir -p own rt
        export RUNTIME_DIRECTORY=$T/rt
        conf a.conf "$T/runs" 3
        conf b.conf "$T/own" 1
        start_daemon a.log -c a.conf
        apid=$DPID
        start_daemon b.log -c b.conf
        cat >b.conf <<EOC
watch = ( { path = "$T/own"; pattern = "step_{step}.pt"; keep_last = 1; settle = 0.2; },
          { path = "$T/runs"; pattern = "step_{step}.pt"; keep_last = 1; settle = 0.2; } );
EOC
        "$CKPTD" reload "$DPID" >out 2>&1 || fail "reload failed: $(cat out)"
        wait_for 20 grep -q "not watching $T/runs while it is locked" b.log || fail "no word of the lock: $(cat b.log)"
        "$CKPTD" status >st 2>&1 || fail "status failed: $(cat st)"
        assert_grep "watch: *$T/runs: LOCKED by another ckptd: not watched" st
        assert_no_grep "MISSING" st
        assert_names runs step_1.pt step_2.pt step_3.pt
        alive "$apid" || fail "the first daemon died"
}

# A reload keeps the lock of every watch it keeps: another ckptd waiting for
# the tree (lock_wait = -1) does not get it while the reload goes through the
# watches before it. The test seam holds the reload in a removal in the
# first watch; the second is locked by the reloading daemon all the while,
# and only its exit lets the other in.
test_lock_held_through_a_reload() {
        local apid bpid
        steps "$T/a" 1 2 3
        steps "$T/b" 1 2 3 4 5
        cat >a.conf <<EOC
watch = ( { path = "$T/a"; pattern = "step_{step}.pt"; keep_last = 3; settle = 0.2; },
          { path = "$T/b"; pattern = "step_{step}.pt"; keep_last = 5; settle = 0.2; } );
EOC
        conf b.conf "$T/b" 1
        echo 'lock_wait = -1;' >>b.conf
        mkfifo hook
        exec 3<>hook # read-write: never blocks
        CKPTD_TEST_HOOK="before:$T/hook" "$CKPTD_HOOKED" -c a.conf 2>a.log 3>&- &
        apid=$!
        echo "$apid" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' a.log || fail "ckptd did not start: $(cat a.log)"
        "$CKPTD" -c b.conf 2>b.log 3>&- &
        bpid=$!
        echo "$bpid" >>"$T/pids"
        wait_for 20 grep -q 'waiting for the lock' b.log || fail "the second daemon does not wait: $(cat b.log)"

        sed -i 's/keep_last = 3;/keep_last = 2;/' a.conf
        kill -HUP "$apid"
        wait_for 20 eval '[ "$(readlink /proc/$apid/fd/* 2>/dev/null | grep -c "$T/hook")" -gt 0 ]' ||
                fail "the reload did not reach the removal: $(cat a.log)"
        # held in the first watch: the second is still its
        holds_ex() {
                awk -v p="$1" -v i=":$(stat -c %i "$2") " '$2 == "FLOCK" && $4 == "WRITE" && $5 == p && index($0, i)' \
                        /proc/locks | grep -q .
        }
        holds_ex "$apid" "$T/b" || fail "the reloading daemon let go of $T/b: $(grep FLOCK /proc/locks)"
        printf c >&3
        wait_for 20 eval '[ ! -e a/step_1.pt ]' || fail "the reload did not go on: $(cat a.log)"
        assert_names b step_1.pt step_2.pt step_3.pt step_4.pt step_5.pt
        assert_no_grep 'deleted' b.log
        kill -TERM "$apid"
        wait_exit "$apid" 0
        exec 3>&-
        # then the other one has it, and its policy
        wait_for 20 eval '[ "$(ls b)" = step_5.pt ]' || fail "the waiting daemon did not take over: $(cat b.log)"
        kill -TERM "$bpid"
        wait_exit "$bpid" 0
}

# A reload takes the directories above a watch as its path names them now:
# one moved above it (the path through a symlink, the symlink turned) is
# locked anew, so another ckptd on the new directory above is refused.
test_lock_reload_follows_a_directory_moved_above() {
        local apid rc=0
        mkdir -p x y rt
        export RUNTIME_DIRECTORY=$T/rt
        steps "$T/x/m/a" 1 2 3
        ln -s x L
        conf a.conf "$T/L/m/a" 3
        start_daemon a.log -c a.conf
        apid=$DPID
        mv x/m y/m
        ln -sfn y L
        "$CKPTD" reload "$apid" >out 2>&1 || fail "reload failed: $(cat out)"
        conf b.conf "$T/y" 1
        timeout 20 "$CKPTD" -1 -c b.conf 2>b.log || rc=$?
        [ "$rc" = 1 ] || fail "a ckptd on the directory above: exit $rc, expected 1: $(cat b.log)"
        assert_grep "locked by pid $apid (ckptd)" b.log
        assert_names y/m/a step_1.pt step_2.pt step_3.pt
        alive "$apid" || fail "the first daemon died"
}

test_lock_overlapping_roots_refused_both_orders() {
        steps "$T/runs/x" 1 2 3
        conf outer.conf "$T/runs" 1
        conf inner.conf "$T/runs/x" 1
        conf inner3.conf "$T/runs/x" 3
        conf outer3.conf "$T/runs" 3
        # a daemon on the inner directory, then one on the outer
        start_daemon i.log -c inner3.conf
        assert_exit 1 timeout 20 "$CKPTD" -c outer.conf
        "$CKPTD" -c outer.conf 2>o.log || true
        assert_grep "locked by pid $DPID" o.log
        kill "$DPID"
        wait_exit "$DPID" 0
        # the other way round
        start_daemon o2.log -c outer3.conf
        "$CKPTD" -c inner.conf 2>i2.log && fail "inner daemon started under the outer one"
        assert_grep "above watch root $T/runs/x, is locked by pid $DPID" i2.log
        assert_names runs/x step_1.pt step_2.pt step_3.pt
}

test_lock_siblings_do_not_conflict() {
        steps "$T/runs/x" 1 2 3
        steps "$T/runs/y" 1 2 3
        conf x.conf "$T/runs/x" 3
        start_daemon x.log -c x.conf
        "$CKPTD" -1 -w "$T/runs/y" --pattern 'step_{step}.pt' --keep-last 1 2>y.log || fail "sibling -1: $(cat y.log)"
        assert_names runs/y step_3.pt
        assert_names runs/x step_1.pt step_2.pt step_3.pt
}

test_lock_oneshot_refused_while_daemon_runs() {
        steps "$T/runs" 1 2 3
        conf a.conf "$T/runs" 3
        start_daemon a.log -c a.conf
        assert_exit 1 "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1
        "$CKPTD" -1 -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 2>o.log || true
        assert_grep "locked by pid $DPID (ckptd)" o.log
        assert_grep "not sweeping" o.log
        assert_names runs step_1.pt step_2.pt step_3.pt
        # told to wait: it sweeps once the daemon is gone
        "$CKPTD" -1 --lock-wait 30 -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 2>w.log &
        local opid=$!
        wait_for 20 grep -q "waiting up to 30 s" w.log || fail "no wait: $(cat w.log)"
        kill "$DPID"
        wait_exit "$DPID" 0
        wait_exit "$opid" 0
        assert_names runs step_3.pt
}

# A second ckptd that reaches the daemon's runs by another way (its watch
# spelled through a symlink, a bind mount of a run directory as a
# container's volume, a user's pass below a mode 711 directory it may not
# open) is refused as on the plain path: two policies on one run delete
# each other's keeps.
test_lock_oneshot_by_another_way_refused() {
        steps "$T/data/runs/exp1" 1 2 3
        conf a.conf "$T/data" 3
        start_daemon a.log -c a.conf
        ln -s "$T/data/runs" "$T/alias"
        conf b.conf "$T/alias/exp1" 1
        assert_exit 1 "$CKPTD" -1 -c b.conf
        "$CKPTD" -1 -c b.conf 2>o.log || true
        assert_grep "$T/data, above watch root $T/alias/exp1, is locked by pid $DPID (ckptd)" o.log
        mkdir "$T/mnt"
        mount --bind "$T/data/runs/exp1" "$T/mnt" || skip "cannot bind mount"
        "$CKPTD" -1 -w "$T/mnt" --pattern 'step_{step}.pt' --keep-last 1 2>m.log || true
        umount "$T/mnt"
        assert_grep "$T/data, above watch root $T/mnt, is locked by pid $DPID (ckptd)" m.log
        assert_names data/runs/exp1 step_1.pt step_2.pt step_3.pt
}

# A unit's namespace lays a tmpfs over the source of its bind mount
# (ProtectHome=tmpfs with BindPaths=, PrivateTmp=): the whole file system
# is not reachable there, so only the directories above where the watch is
# are locked, and the watch works as before.
test_lock_bind_mount_whose_source_is_hidden_works() {
        command -v unshare >/dev/null || skip "no unshare"
        steps "$T/home/alice/ckpt/exp1" 1 2 3
        mkdir -p "$T/srv/ckpt"
        local rc=0
        unshare -m --propagation private sh -c '
                mount --bind "$1/home/alice/ckpt" "$1/srv/ckpt" && mount -t tmpfs tmpfs "$1/home" &&
                        exec "$2" -1 -n -w "$1/srv/ckpt" --pattern "step_{step}.pt" --keep-last 1' \
                sh "$T" "$CKPTD" 2>o.log || rc=$?
        [ "$rc" = 0 ] || fail "exit $rc: $(cat o.log)"
        assert_grep "would delete $T/srv/ckpt/exp1/step_1.pt" o.log
}

test_lock_oneshot_below_a_directory_it_cannot_open_refused() {
        need_users
        steps "$T/shared/bob/exp1" 1 2 3
        chown -R $VICTIM "$T/shared/bob"
        chmod 711 "$T/shared"
        conf a.conf "$T/shared" 3
        start_daemon a.log -c a.conf
        local rc=0
        as $VICTIM env HOME="$T/shared/bob" RUNTIME_DIRECTORY= STATE_DIRECTORY= XDG_RUNTIME_DIR= \
                "$CKPTD" -1 -w "$T/shared/bob/exp1" --pattern 'step_{step}.pt' --keep-last 1 2>o.log || rc=$?
        [ "$rc" = 1 ] || fail "exit $rc, expected 1: $(cat o.log)"
        assert_grep "$T/shared, above watch root $T/shared/bob/exp1, is locked by pid $DPID (ckptd)" o.log
        assert_names shared/bob/exp1 step_1.pt step_2.pt step_3.pt
        # from a PID namespace of its own /proc/locks lists no holder
        # outside it: that says nothing, and nothing is swept
        command -v unshare >/dev/null || return 0
        rc=0
        unshare -p --fork --mount-proc -m setpriv --reuid=$VICTIM --regid=$VICTIM --clear-groups -- \
                env HOME="$T/shared/bob" RUNTIME_DIRECTORY= STATE_DIRECTORY= XDG_RUNTIME_DIR= \
                "$CKPTD" -1 -w "$T/shared/bob/exp1" --pattern 'step_{step}.pt' --keep-last 1 2>p.log || rc=$?
        [ "$rc" = 1 ] || fail "in a PID namespace: exit $rc, expected 1: $(cat p.log)"
        assert_grep "from this PID namespace /proc/locks does not show whether another ckptd watches it" p.log
        assert_names shared/bob/exp1 step_1.pt step_2.pt step_3.pt
}

# One config may watch /runs (not recursively) and /runs/x: its own locks
# do not conflict, in either order; another process still finds both taken.
test_lock_nested_watches_of_one_config() {
        steps "$T/runs" 1 2 3
        steps "$T/runs/x" 1 2 3
        cat >c.conf <<EOC
watch = ( { path = "$T/runs/x"; pattern = "step_{step}.pt"; keep_last = 1; },
          { path = "$T/runs"; recursive = false; pattern = "step_{step}.pt"; keep_last = 2; } );
EOC
        "$CKPTD" -1 -c c.conf 2>o.log || fail "-1: $(cat o.log)"
        assert_names runs/x step_3.pt
        start_daemon d.log -c c.conf
        assert_names runs step_2.pt step_3.pt x
        "$CKPTD" -1 -w "$T/runs" --no-recursive --pattern 'step_{step}.pt' --keep-last 1 2>p.log &&
                fail "a second process on /runs was not refused"
        assert_grep "locked by pid $DPID" p.log
}

test_lock_wait_config_option() {
        conf a.conf "$T/runs" 1
        mkdir runs
        echo 'lock_wait = -2;' >>a.conf
        assert_exit 1 "$CKPTD" -t -c a.conf
        sed -i 's/lock_wait = -2/lock_wait = -1/' a.conf
        "$CKPTD" -t -c a.conf >/dev/null || fail "lock_wait = -1 refused"
}

# --- wall-clock steps ---

HERE=$(cd "$(dirname "$0")" && pwd)
YEAR=$((365 * 86400))

# need_shim: build the CLOCK_REALTIME shim into $T/clockshift.so; the offset
# in seconds is read from $T/offset on every call.
need_shim() {
        command -v cc >/dev/null || skip "no C compiler for the clock shim"
        cc -shared -fPIC -O2 -o "$T/clockshift.so" "$HERE/clockshift.c" -ldl || fail "cannot build the clock shim"
        echo 0 >"$T/offset"
        echo "$YEAR" >"$T/offset"
        [ "$(shifted date +%Y)" -gt "$(date +%Y)" ] || fail "the clock shim does not shift the wall clock"
        echo 0 >"$T/offset"
}

# shifted CMD...: CMD with the wall clock moved by $T/offset seconds (env
# execs CMD, so `shifted ... &` leaves CMD's pid in $!).
shifted() {
        env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" CLOCKSHIFT_FILE="$T/offset" LD_PRELOAD="$T/clockshift.so" "$@"
}

# A year forward under a running daemon: the young checkpoints it has seen
# stay young (they were 9 of 10 deleted within 2.5 s).
test_clock_step_forward_ages_nothing() {
        need_shim
        mkdir runs
        for n in 1 2 3 4 5 6 7 8 9 10; do echo "$n" >"runs/step_$n.pt"; done
        env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" CLOCKSHIFT_FILE="$T/offset" LD_PRELOAD="$T/clockshift.so" "$CKPTD" -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 --min-age 3600 --settle 0.2 \
                2>d.log &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        echo "$YEAR" >offset
        # a save after the step (mtime from the new clock) and one from two
        # hours before it: the sweep they cause deletes only the latter
        echo 11 >t11 && touch -d "-2 hours" t11
        echo 12 >t12 && touch -d "@$(($(date +%s) + YEAR))" t12
        mv t11 runs/step_11.pt
        mv t12 runs/step_12.pt
        wait_for 20 test ! -e runs/step_11.pt || fail "the old checkpoint was not deleted: $(cat d.log)"
        assert_names runs step_1.pt step_2.pt step_3.pt step_4.pt step_5.pt step_6.pt step_7.pt step_8.pt \
                step_9.pt step_10.pt step_12.pt
}

# The same across a reload: what the daemon timed survives SIGHUP.
test_clock_step_forward_then_reload() {
        need_shim
        mkdir runs rt
        export RUNTIME_DIRECTORY=$T/rt
        for n in 1 2 3 4 5; do echo "$n" >"runs/step_$n.pt"; done
        cat >c.conf <<EOC
watch = ( { path = "$T/runs"; pattern = "step_{step}.pt"; keep_last = 1; min_age = 3600; settle = 0.2; } );
EOC
        env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" CLOCKSHIFT_FILE="$T/offset" LD_PRELOAD="$T/clockshift.so" "$CKPTD" -c c.conf 2>d.log &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        echo "$YEAR" >offset
        kill -HUP "$DPID"
        wait_for 20 grep -q 'reloaded' d.log || fail "no reload: $(cat d.log)"
        # a checkpoint from before the step, renamed in: deleted once swept
        echo 0 >t0 && touch -d "-2 hours" t0 && mv t0 runs/step_0.pt
        wait_for 20 test ! -e runs/step_0.pt || fail "the old checkpoint was not deleted: $(cat d.log)"
        assert_names runs step_1.pt step_2.pt step_3.pt step_4.pt step_5.pt
        # the watch spelled through a symlink above it is the same
        # directory: what was timed is still its (ckptd reload returns once
        # it is swept)
        ln -s . up
        sed -i "s|path = \"$T/runs\"|path = \"$T/up/runs\"|" c.conf
        "$CKPTD" reload "$DPID" >out 2>&1 || fail "reload failed: $(cat out)"
        assert_no_grep "symlink" d.log
        assert_names runs step_1.pt step_2.pt step_3.pt step_4.pt step_5.pt
}

# A day back, one sweep: every checkpoint is "from the future", unsettled and
# kept, so the floor can evict nothing; that is a floor unmet (exit 3), and
# the log names the clock, not "0 deleted" with exit 0.
test_clock_step_back_oneshot_reports_floor_unmet() {
        need_root
        mkdir fs
        mount -t tmpfs -o size=8m tmpfs fs || fail "cannot mount a tmpfs"
        mkdir fs/run
        for n in 1 2 3 4; do mkfile "fs/run/step_$n.pt" 1024; done
        touch -d "+1 day" fs/run/*.pt
        local rc=0
        "$CKPTD" -1 -w "$T/fs/run" --pattern 'step_{step}.pt' --keep-last 1 --min-free 100% 2>o.log || rc=$?
        [ "$rc" = 3 ] || fail "exit $rc, expected 3: $(cat o.log)"
        assert_grep "in the future" o.log
        assert_names fs/run step_1.pt step_2.pt step_3.pt step_4.pt
}

# A day back under the daemon: checkpoints from the future settle on the
# daemon's own clock, are young for min_age after it first saw them, then
# the policy decides them (they were kept forever).
test_clock_step_back_daemon_settles_and_ages() {
        mkdir runs
        for n in 1 2 3 4; do echo "$n" >"runs/step_$n.pt"; done
        touch -d "+1 day" runs/*.pt
        start_daemon d.log -w "$T/runs" --pattern 'step_{step}.pt' --keep-last 1 --min-age 2 --settle 0.3
        assert_names runs step_1.pt step_2.pt step_3.pt step_4.pt
        wait_for 20 names_are runs step_4.pt || fail "not decided: $(ls runs) $(cat d.log)"
}

# --- sticky and shared runs: each owner's checkpoints are a run of their own ---

test_sticky_run_keeps_each_owners_newest() {
        need_users
        sticky_run run
        as $VICTIM mkdir run/checkpoint-100 run/checkpoint-200
        as $VICTIM sh -c 'echo w >run/checkpoint-100/model.bin; echo w >run/checkpoint-200/model.bin'
        as $ATTACKER mkdir run/checkpoint-999999
        as $ATTACKER touch -d "-2 hours" run/checkpoint-999999
        touch -d "-1 hour" run/checkpoint-100 run/checkpoint-200 run/*/model.bin
        "$CKPTD" -1 --pattern 'checkpoint-{step}' --keep-last 1 -w "$T/run" 2>o.log || fail "-1: $(cat o.log)"
        # the victim's run keeps its newest; the attacker's file decided
        # nothing about the victim's
        assert_names run checkpoint-200 checkpoint-999999
}

test_sticky_run_daemon() {
        need_users
        sticky_run run
        as $VICTIM sh -c 'echo a >run/step_100.pt; echo b >run/step_200.pt'
        touch -d "-1 hour" run/*.pt
        start_daemon d.log -w "$T/run" --pattern 'step_{step}.pt' --keep-last 1 --settle 0.2
        wait_for 20 names_are run step_200.pt || fail "victim's run not decided: $(ls run)"
        # the attacker's saves: a backdated one, then a newer one of theirs
        as $ATTACKER sh -c 'echo x >run/.t && touch -d "-2 hours" run/.t && mv run/.t run/step_999999.pt'
        as $ATTACKER sh -c 'echo y >run/.t && mv run/.t run/step_1000000.pt'
        wait_for 20 names_are run step_200.pt step_1000000.pt ||
                fail "run holds $(ls run): $(cat d.log)"
}

test_sticky_run_plain_files_and_list() {
        need_users
        sticky_run run
        as $VICTIM sh -c 'echo a >run/step_100.pt; echo b >run/step_200.pt'
        as $ATTACKER sh -c 'echo x >run/step_999999.pt'
        touch -d "-1 hour" run/*.pt
        "$CKPTD" -l --pattern 'step_{step}.pt' --keep-last 1 -w "$T/run" >l.out 2>&1 || fail "-l: $(cat l.out)"
        grep 'step_200.pt' l.out | grep -q keep || fail "-l would delete the victim's newest: $(cat l.out)"
        "$CKPTD" -1 --pattern 'step_{step}.pt' --keep-last 1 -w "$T/run" 2>o.log || fail "-1: $(cat o.log)"
        assert_names run step_200.pt step_999999.pt
}

# A link the attacker makes to one of the victim's files (fs.protected_
# hardlinks lets it: a file the attacker may write), named to rank first:
# the link's owner is the file's, so it took the place of the victim's
# real best, which the policy then deleted. Two names of one file now take
# no place: both kept, the victim's best and newest too; in the daemon, the
# link made while it watches is read with the whole run.
test_sticky_run_link_to_anothers_file_takes_no_place() {
        need_users
        local e v n
        sticky_run run
        for e in 1:0.100 2:0.500 3:0.400 4:0.300; do
                n="run/epoch=${e%%:*}-val_loss=${e#*:}.ckpt"
                as $VICTIM sh -c "echo $e >'$n'"
                touch -d "-$((60 - ${e%%:*})) min" "$n"
        done
        chmod 666 "run/epoch=2-val_loss=0.500.ckpt"
        as $ATTACKER ln "run/epoch=2-val_loss=0.500.ckpt" "run/epoch=0-val_loss=0.001.ckpt"
        v=(--preset lightning --monitor val_loss --keep-top-k 1 --keep-last 1 --settle 0.2)
        "$CKPTD" -1 -w "$T/run" "${v[@]}" 2>o.log || fail "-1: $(cat o.log)"
        assert_names run "epoch=0-val_loss=0.001.ckpt" "epoch=1-val_loss=0.100.ckpt" \
                "epoch=2-val_loss=0.500.ckpt" "epoch=4-val_loss=0.300.ckpt"
        assert_grep "another checkpoint's name in the run is a hard link to the same file" o.log
        # the daemon, the link made while it watches
        rm "run/epoch=0-val_loss=0.001.ckpt"
        as $VICTIM sh -c "echo 3 >'run/epoch=3-val_loss=0.400.ckpt'"
        touch -d "-57 min" "run/epoch=3-val_loss=0.400.ckpt"
        start_daemon d.log -w "$T/run" "${v[@]}"
        wait_for 20 names_are run "epoch=1-val_loss=0.100.ckpt" "epoch=4-val_loss=0.300.ckpt" ||
                fail "not decided: $(ls run) $(cat d.log)"
        as $VICTIM sh -c "echo 5 >'run/epoch=5-val_loss=0.900.ckpt'"
        chmod 666 "run/epoch=5-val_loss=0.900.ckpt"
        wait_for 20 names_are run "epoch=1-val_loss=0.100.ckpt" "epoch=5-val_loss=0.900.ckpt" ||
                fail "not decided: $(ls run) $(cat d.log)"
        as $ATTACKER ln "run/epoch=5-val_loss=0.900.ckpt" "run/epoch=6-val_loss=0.001.ckpt"
        wait_for 20 grep -q "hard link to the same file" d.log || fail "not said: $(cat d.log)"
        assert_names run "epoch=1-val_loss=0.100.ckpt" "epoch=5-val_loss=0.900.ckpt" "epoch=6-val_loss=0.001.ckpt"
        stop_daemon d.log
}

# Tombstone names made beforehand by another user (the name, and .1 to .99
# after it) do not stop a directory checkpoint's removal: past the first,
# the tombstone's name ends in a suffix no one can guess.
test_sticky_run_tombstone_names_taken_beforehand() {
        need_users
        local s k
        sticky_run run
        for s in 1 2 3; do
                as $VICTIM mkdir "run/checkpoint-$s"
                as $VICTIM sh -c "echo w >run/checkpoint-$s/model.bin"
        done
        touch -d "-1 hour" run/checkpoint-*/model.bin run/checkpoint-*
        for s in 1 2; do
                as $ATTACKER touch "run/.ckptd-trash-checkpoint-$s"
                for k in $(seq 1 99); do as $ATTACKER touch "run/.ckptd-trash-checkpoint-$s.$k"; done
        done
        "$CKPTD" -1 --pattern 'checkpoint-{step}' --keep-last 1 -w "$T/run" 2>o.log || fail "-1: $(cat o.log)"
        [ ! -e run/checkpoint-1 ] && [ ! -e run/checkpoint-2 ] || fail "not removed: $(cat o.log)"
        [ "$(ls run)" = checkpoint-3 ] || fail "run holds $(ls run)"
        [ "$(find run -maxdepth 1 -name '.ckptd-trash-*' | wc -l)" = 200 ] || fail "the attacker's names changed"
}

test_sticky_run_group_of_two_owners_is_kept() {
        need_users
        sticky_run run
        as $VICTIM sh -c 'echo i >run/ckpt-7.index; echo d >run/ckpt-7.data-00000-of-00001'
        # a member the attacker slipped into the victim's group, sorted first
        as $ATTACKER sh -c 'echo x >run/ckpt-7.aaa; echo i >run/ckpt-999.index'
        touch -d "-1 hour" run/*
        "$CKPTD" -1 --pattern 'ckpt-{step}.*' --keep-last 1 -w "$T/run" 2>o.log || fail "-1: $(cat o.log)"
        assert_names run ckpt-7.aaa ckpt-7.data-00000-of-00001 ckpt-7.index ckpt-999.index
}

test_sticky_run_floor_protects_each_owners_newest() {
        need_users
        mkdir fs
        mount -t tmpfs -o size=8m tmpfs fs || fail "cannot mount a tmpfs"
        sticky_run fs/run
        as $VICTIM sh -c 'head -c 1048576 /dev/urandom >fs/run/step_100.pt; head -c 1048576 /dev/urandom >fs/run/step_200.pt'
        as $ATTACKER sh -c 'head -c 1048576 /dev/urandom >fs/run/step_999999.pt'
        touch -d "-1 hour" fs/run/*.pt
        # a floor no eviction can reach: everything unprotected goes
        assert_exit 3 "$CKPTD" -1 --pattern 'step_{step}.pt' --keep-last 2 --min-free 100% -w "$T/fs/run"
        assert_names fs/run step_200.pt step_999999.pt
}

run_tests
