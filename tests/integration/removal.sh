#!/usr/bin/env bash
# The removal engine: tombstones are ckptd's own (recorded in the state
# directory), groups never survive an interruption looking whole, SIGKILL at
# random points of directory and group removals, deep trees.
#
# CKPTD_LONG=1 runs thousands of kills instead of hundreds.
. "$(dirname "$0")/../lib.sh"

if [ -n "${CKPTD_LONG:-}" ]; then KILLS=${KILLS:-1500}; else KILLS=${KILLS:-100}; fi
# KILL_REPORT=FILE: where the kill loops add how their kills landed.
KILL_REPORT=${KILL_REPORT:-/dev/null}

# Every test keeps its records in its own state directory.
state_env() { export STATE_DIRECTORY=$T/state; }

# on_tmpfs: as root, the test's runs live on a tmpfs of their own (the loops
# and deep trees measure ckptd, not a shared disk's fsync latency).
on_tmpfs() {
        mkdir -p runs
        if [ "$(id -u)" = 0 ]; then mount -t tmpfs -o size=256m tmpfs runs; fi
}

# records: how many removal records the state directory holds.
records() { find "$T/state/tombstones" -name '*.rec' 2>/dev/null | wc -l; }

tombstones() { find "$1" -maxdepth 1 -name '.ckptd-trash-*' | wc -l; }

oneshot() { "$CKPTD" -1 -w "$T/runs" --pattern "$1" --keep-last 1 2>>"$T/err"; }

# killed_at HOOK PATTERN: ckptd -1 --keep-last 1 over runs, killed where
# CKPTD_TEST_HOOK=HOOK blocks it.
killed_at() {
        local pid
        rm -f hook
        mkfifo hook
        CKPTD_TEST_HOOK="$1:$T/hook" "$CKPTD_HOOKED" -1 -w "$T/runs" --pattern "$2" --keep-last 1 2>err &
        pid=$!
        echo $pid >>"$T/pids"
        hook_wait $pid
        echo k >hook
        wait $pid || true
}

# hook_wait PID: ckptd blocks in CKPTD_TEST_HOOK's FIFO.
hook_wait() {
        wait_for 10 sh -c "ls -l /proc/$1/fd 2>/dev/null | grep -q hook" || fail "ckptd never reached the hook"
}

# --- finding 2: a tombstone name is not an order to delete -------------------

# forged_run: a group-writable run where one member renamed another member's
# results/ to a tombstone name.
forged_run() {
        mkdir -p runs/results
        chmod 2775 runs
        mkfile runs/results/metrics.bin 4
        mv runs/results runs/.ckptd-trash-results
        mkfile runs/.ckptd-trash-model.pt 4
        for s in 1 2; do mkdir "runs/step-$s"; mkfile "runs/step-$s/shard" 4; done
        touch -d "-1 hour" runs/step-*/* runs/step-*
}

test_forged_tombstone_survives_oneshot() {
        state_env
        forged_run
        oneshot 'step-{step}'
        assert_exists runs/.ckptd-trash-results/metrics.bin
        assert_exists runs/.ckptd-trash-model.pt
        assert_no_grep "interrupted removal" err
        assert_names runs .ckptd-trash-model.pt .ckptd-trash-results step-2
        # and again: a second pass does not change its mind
        oneshot 'step-{step}'
        assert_exists runs/.ckptd-trash-results/metrics.bin
}

test_forged_tombstone_survives_daemon_start_and_reload() {
        state_env
        forged_run
        cat >ckptd.conf <<EOF
watch = ( { path = "$T/runs"; pattern = "step-{step}"; keep_last = 1; settle = 1; } );
EOF
        "$CKPTD" -c "$T/ckptd.conf" 2>d.log &
        pid=$!
        echo $pid >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        wait_for 20 eval '[ ! -e runs/step-1 ]' || fail "step-1 was not deleted"
        kill -HUP $pid
        wait_for 20 grep -q '^ckptd: reloaded ' d.log || fail "no reload: $(cat d.log)"
        # a new checkpoint makes it sweep the run once more
        mkdir runs/step-3
        mkfile runs/step-3/shard 4
        wait_for 20 eval '[ ! -e runs/step-2 ]' || fail "step-2 was not deleted"
        kill $pid
        wait $pid || true
        assert_exists runs/.ckptd-trash-results/metrics.bin
        assert_exists runs/.ckptd-trash-model.pt
        assert_no_grep "interrupted removal" d.log
}

# A recorded tombstone whose inode was replaced is not finished either.
test_swapped_recorded_tombstone_survives() {
        state_env
        mkdir runs
        for s in 1 2; do mkdir "runs/step-$s"; mkfile "runs/step-$s/shard" 4; done
        touch -d "-1 hour" runs/*/* runs/*
        killed_at tombstoned 'step-{step}'
        [ "$(records)" = 1 ] || fail "expected one record, have $(records)"
        mv runs/.ckptd-trash-step-1 saved
        mkdir runs/.ckptd-trash-step-1
        mkfile runs/.ckptd-trash-step-1/victim 4
        oneshot 'step-{step}'
        assert_exists runs/.ckptd-trash-step-1/victim
        assert_exists saved/shard
        [ "$(records)" = 0 ] || fail "the stale record was kept"
}

# interrupted_removal: runs/step-1 and step-2, and ckptd -1 killed once it
# has renamed step-1 to its recorded tombstone.
interrupted_removal() {
        state_env
        mkdir runs
        for s in 1 2; do mkdir "runs/step-$s"; mkfile "runs/step-$s/shard" 4; done
        touch -d "-1 hour" runs/*/* runs/*
        killed_at tombstoned 'step-{step}'
        assert_exists runs/.ckptd-trash-step-1/shard
}

# An interrupted removal is finished by the daemon's start-up.
test_daemon_start_finishes_recorded_tombstone() {
        interrupted_removal
        "$CKPTD" -w "$T/runs" --pattern 'step-{step}' --keep-last 1 2>d.log &
        pid=$!
        echo $pid >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        assert_grep "finished 1 interrupted removal" d.log
        assert_names runs step-2
        [ "$(records)" = 0 ] || fail "record left behind"
        kill $pid
        wait $pid || true
}

# The watch spelled otherwise at the next start (a symlink above it) is the
# same directory: the removal interrupted under the first spelling is
# finished all the same, not left as a hidden half of a checkpoint.
test_interrupted_removal_finished_under_another_spelling() {
        interrupted_removal
        ln -s . up
        cat >c.conf <<EOC
watch = ( { path = "$T/up/runs"; pattern = "step-{step}"; keep_last = 1; } );
EOC
        "$CKPTD" -1 -c c.conf 2>err2 || fail "-1 failed: $(cat err2)"
        assert_grep "finished 1 interrupted removal" err2
        assert_names runs step-2
        [ "$(records)" = 0 ] || fail "record left behind"
}

# A reload that names the root another way (through a symlink) while a big
# directory's removal goes on from the event loop leaves that removal to
# itself: not finished a second time from its record by the reload, and no
# false "cannot finish deleting" after.
test_reload_respelling_the_root_during_a_removal() {
        state_env
        mkdir -p runs/step-1 runs/step-2
        (cd runs/step-1 && seq 3000 | xargs touch)
        mkfile runs/step-2/shard 4
        touch -d "-1 hour" runs/step-1/* runs/step-*
        ln -s . up
        echo "watch = ( { path = \"$T/runs\"; pattern = \"step-{step}\"; keep_last = 1; settle = 0.2; } );" >c.conf
        mkfifo hook
        CKPTD_TEST_HOOK="tombstoned:$T/hook" "$CKPTD_HOOKED" -c c.conf 2>d.log 3>&- &
        DPID=$!
        echo $DPID >>"$T/pids"
        hook_wait $DPID
        # blocked between the tombstone and the walk: the reload waits in
        # the loop, ahead of the removal's next step (idle priority)
        echo "watch = ( { path = \"$T/up/runs\"; pattern = \"step-{step}\"; keep_last = 1; settle = 0.2; } );" >c.conf
        kill -HUP $DPID
        echo c >hook
        wait_for 20 grep -q "reloaded" d.log || fail "no reload: $(cat d.log)"
        wait_for 20 eval '[ "$(tombstones runs)" = 0 ]' || fail "the removal did not end: $(cat d.log)"
        "$CKPTD" status >/dev/null 2>&1 || true
        kill $DPID
        wait $DPID || true
        assert_names runs step-2
        assert_no_grep "cannot finish deleting" d.log
        [ "$(records)" = 0 ] || fail "record left behind"
}

# A directory checkpoint whose removal fails half-way (a shard that cannot
# be unlinked, as an immutable file) is no checkpoint any more: the error
# names what is left of it, its tombstone, and the exit status says it; the
# next run whose files can go finishes it.
test_half_removed_directory_names_what_is_left() {
        local rc=0 left
        [ -n "${FAULT_SO:-}" ] && [ -e "$FAULT_SO" ] || skip "no FAULT_SO"
        state_env
        mkdir runs
        for s in 1 2; do
                mkdir "runs/step-$s"
                mkfile "runs/step-$s/a" 4
                mkfile "runs/step-$s/stuck" 4
        done
        touch -d "-1 hour" runs/*/* runs/*
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD=$FAULT_SO \
                FAULT_CALL=unlinkat FAULT_NTH=1 FAULT_REPEAT=1 FAULT_ERRNO=EPERM FAULT_MATCH=stuck \
                "$CKPTD" -1 -w "$T/runs" --pattern 'step-{step}' --keep-last 1 2>d.log || rc=$?
        [ "$rc" = 1 ] || fail "exit $rc, not 1: $(cat d.log)"
        left=$(cd runs && echo .ckptd-trash-step-1*)
        assert_exists "runs/$left/stuck"
        assert_grep "^ckptd: error: cannot finish deleting $T/runs/step-1 (.* freed): Operation not permitted; what is left of it is $T/runs/$left, tried again at the next start$" d.log
        assert_no_grep "cannot delete " d.log
        # nor is it counted as kept: step-2 is, and a failure is said
        assert_grep "^ckptd: deleted 0 checkpoints, freed [1-9][0-9.]*K; kept 1 ([0-9.]*K); 1 deletion failed$" d.log
        "$CKPTD" -1 -w "$T/runs" --pattern 'step-{step}' --keep-last 1 2>d.log || fail "second pass: $(cat d.log)"
        assert_grep "finished 1 interrupted removal" d.log
        assert_names runs step-2
}

# No usable state directory: the removal still happens (the floor must be
# able to free space on a full disk), unrecorded, and ckptd says so.
test_unusable_state_directory() {
        export STATE_DIRECTORY=$T/state
        mkdir -m 0777 state
        chmod 0777 state
        mkdir runs
        for s in 1 2; do mkdir "runs/step-$s"; mkfile "runs/step-$s/shard" 4; done
        touch -d "-1 hour" runs/*/* runs/*
        oneshot 'step-{step}'
        assert_names runs step-2
        assert_grep "cannot use the state directory" err
        [ ! -e state/tombstones ] || fail "records written into a directory others can write"
}

# --- finding 9: groups -------------------------------------------------------

# tf_group STEP SHARDS: TensorFlow's ckpt-STEP.index + data shards, an hour old.
tf_group() {
        local n=$2 i name names=()
        for ((i = 0; i < n; i++)); do
                printf -v name 'runs/ckpt-%s.data-%05d-of-%05d' "$1" $i "$n"
                names+=("$name")
        done
        touch "${names[@]}" "runs/ckpt-$1.index"
        echo "ckpt $1" >"runs/ckpt-$1.index"
        touch -d "-1 hour" "${names[@]}" "runs/ckpt-$1.index"
}

# group_consistent STEP SHARDS: the group is whole under its names or its
# index is gone.
group_consistent() {
        local have
        [ -e "runs/ckpt-$1.index" ] || return 0
        have=$(find runs -maxdepth 1 -name "ckpt-$1.data-*" | wc -l)
        [ "$have" = "$2" ] || fail "ckpt-$1.index present with $have of $2 shards: $(ls -a runs | head -20)"
}

test_group_killed_after_first_rename() {
        state_env
        mkdir runs
        tf_group 1 200
        tf_group 2 200
        killed_at renamed 'ckpt-{step}.*'
        assert_absent runs/ckpt-1.index
        [ "$(find runs -maxdepth 1 -name 'ckpt-1.data-*' | wc -l)" = 200 ] ||
                fail "expected the kill right after the first rename"
        oneshot 'ckpt-{step}.*'
        assert_grep "finished 1 interrupted removal" err
        [ "$(find runs -maxdepth 1 -name 'ckpt-1.*' | wc -l)" = 0 ] || fail "ckpt-1 members left: $(ls runs | head)"
        [ "$(find runs -maxdepth 1 -name 'ckpt-2.*' | wc -l)" = 201 ] || fail "ckpt-2 lost members"
        [ "$(tombstones runs)" = 0 ] || fail "tombstones left"
        [ "$(records)" = 0 ] || fail "records left"
}

# A group whose removal was committed and then killed still shows its data
# shards under their own names. The next start, of -1 or of the daemon,
# finishes that removal before it scans and decides: the leftover takes no
# place among the newest, where it would cost the checkpoint before it.
test_interrupted_group_takes_no_place() {
        local mode pid
        state_env
        for mode in oneshot daemon; do
                rm -rf runs
                mkdir runs
                tf_group 1 2
                tf_group 2 2
                tf_group 3 2
                touch runs/ckpt-1.keep # so that the one victim is ckpt-2
                killed_at renamed 'ckpt-{step}.*'
                assert_absent runs/ckpt-2.index
                [ "$(find runs -maxdepth 1 -name 'ckpt-2.data-*' | wc -l)" = 2 ] ||
                        fail "$mode: expected the kill right after the first rename: $(ls -a runs)"
                rm runs/ckpt-1.keep
                if [ $mode = oneshot ]; then
                        "$CKPTD" -1 -w "$T/runs" --pattern 'ckpt-{step}.*' --keep-last 2 2>err2 ||
                                fail "$mode: exit $?: $(cat err2)"
                else
                        "$CKPTD" -w "$T/runs" --pattern 'ckpt-{step}.*' --keep-last 2 2>err2 &
                        pid=$!
                        echo $pid >>"$T/pids"
                        wait_for 20 grep -q '^ckptd: watching ' err2 || fail "ckptd did not start: $(cat err2)"
                fi
                assert_grep "finished 1 interrupted removal" err2
                assert_names runs ckpt-1.data-00000-of-00002 ckpt-1.data-00001-of-00002 ckpt-1.index \
                        ckpt-3.data-00000-of-00002 ckpt-3.data-00001-of-00002 ckpt-3.index
                [ "$(records)" = 0 ] || fail "$mode: records left"
                if [ $mode = daemon ]; then
                        kill $pid
                        wait $pid || true
                fi
        done
}

# --- kill -9 at random points ------------------------------------------------

# kill_after PID USEC: SIGKILL PID after USEC microseconds.
kill_after() {
        sleep "$(printf '0.%06d' "$2")"
        kill -9 "$1" 2>/dev/null || true
}

# kill_run PATTERN: one sweep killed at a random point around $center usec
# (between center/2 and 3*center/2), so the kills keep landing inside the
# removal whatever the machine's speed; aim OUTCOME moves the center: after
# a kill before the removal later, after one too late earlier.
kill_run() {
        local pid
        "$CKPTD" -1 -w "$T/runs" --pattern "$1" --keep-last 1 2>/dev/null &
        pid=$!
        kill_after $pid $((center / 2 + (RANDOM * 32768 + RANDOM) % (center + 1)))
        wait $pid 2>/dev/null || true
}

aim() {
        case $1 in
        early) [ $center -ge 400000 ] || center=$((center * 9 / 8)) ;;
        late) [ $center -le 1000 ] || center=$((center * 7 / 8)) ;;
        esac
}

test_kill_random_dir_removals() {
        state_env
        local i whole=0 tomb=0 gone=0 files=2000 center=20000
        on_tmpfs
        for ((i = 0; i < KILLS; i++)); do
                find runs -mindepth 1 -delete
                mkdir -p runs/step-1/sub runs/step-2
                (cd runs/step-1 && touch f{0000..0999} sub/g{0000..0999})
                echo x >runs/step-2/shard
                touch -d "-1 hour" runs/step-1 runs/step-1/* runs/step-1/sub/* runs/step-2 runs/step-2/*
                kill_run 'step-{step}'
                if [ -e runs/step-1 ]; then
                        n=$(find runs/step-1 -type f | wc -l)
                        [ "$n" = $files ] || fail "iteration $i: step-1 present with $n of $files files"
                        whole=$((whole + 1))
                        aim early
                elif [ "$(tombstones runs)" -gt 0 ]; then
                        tomb=$((tomb + 1))
                else
                        gone=$((gone + 1))
                        aim late
                fi
                oneshot 'step-{step}'
                [ ! -e runs/step-1 ] || fail "iteration $i: step-1 survived the next -1"
                [ "$(tombstones runs)" = 0 ] || fail "iteration $i: tombstone left after -1: $(ls -a runs)"
                [ "$(records)" = 0 ] || fail "iteration $i: $(records) records left after -1"
                [ -e runs/step-2/shard ] || fail "iteration $i: step-2 lost"
        done
        echo "dir removals, $KILLS kills: $whole whole, $tomb tombstoned, $gone gone" | tee -a "$KILL_REPORT" >&2
        [ $tomb -gt 0 ] || fail "no kill landed inside a removal ($whole whole, $gone gone)"
}

test_kill_random_group_removals() {
        state_env
        local i whole=0 half=0 gone=0 center=20000
        on_tmpfs
        for ((i = 0; i < KILLS; i++)); do
                find runs -mindepth 1 -delete
                tf_group 1 2000
                tf_group 2 1
                kill_run 'ckpt-{step}.*'
                group_consistent 1 2000
                if [ -e runs/ckpt-1.index ]; then
                        whole=$((whole + 1))
                        aim early
                elif [ "$(find runs -maxdepth 1 -name 'ckpt-1.data-*' | wc -l)" -gt 0 ] ||
                        [ "$(tombstones runs)" -gt 0 ]; then
                        half=$((half + 1))
                else
                        gone=$((gone + 1))
                        aim late
                fi
                oneshot 'ckpt-{step}.*'
                [ "$(find runs -maxdepth 1 -name 'ckpt-1.*' | wc -l)" = 0 ] ||
                        fail "iteration $i: ckpt-1 members survived the next -1: $(ls runs | head)"
                [ "$(tombstones runs)" = 0 ] || fail "iteration $i: tombstone left after -1"
                [ "$(records)" = 0 ] || fail "iteration $i: $(records) records left after -1"
                [ -e runs/ckpt-2.index ] || fail "iteration $i: ckpt-2 lost"
        done
        echo "group removals, $KILLS kills: $whole whole, $half interrupted, $gone gone" | tee -a "$KILL_REPORT" >&2
        [ $half -gt 0 ] || fail "no kill landed inside a group removal ($whole whole, $gone gone)"
}

# --- finding 8: deep trees ---------------------------------------------------

# A chain deeper than PATH_MAX many times over is removed (the walk climbs
# back with ".." instead of re-opening from the base); rm -rf compares.
test_deep_tree_removed() {
        state_env
        local depth=${DEPTH:-20000}
        on_tmpfs
        $PY - "$T/runs/step-1" "$depth" <<'EOF'
import os, sys
base, depth = sys.argv[1], int(sys.argv[2])
os.makedirs(base)
fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
for i in range(depth):
    os.mkdir("d", dir_fd=fd)
    nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
os.close(fd)
EOF
        mkdir runs/step-2
        # older than settle, so that step-1 is complete
        wait_for 20 eval '[ $(( $(date +%s) - $(stat -c %Y runs/step-2) )) -ge 3 ]'
        oneshot 'step-{step}'
        assert_names runs step-2
        [ "$(records)" = 0 ] || fail "record left"
}

# A removal of many entries pets the systemd watchdog as it goes: the event
# loop that normally does is busy with it.
test_long_removal_pets_the_watchdog() {
        state_env
        on_tmpfs
        mkdir runs/step-1 runs/step-2
        for d in 1 2 3 4 5 6 7 8 9 10 11 12; do
                mkdir "runs/step-1/d$d"
                (cd "runs/step-1/d$d" && touch f{0000..4999})
        done
        touch -d "-1 hour" runs/step-1
        # step-2 is saved after step-1, as a trainer does (newest-written)
        touch runs/step-2/model
        wait_for 20 eval '[ $(( $(date +%s) - $(stat -c %Y runs/step-2/model) )) -ge 3 ]'
        $PY - "$CKPTD" "$T" <<'EOF' >pings || fail "listener failed: $(cat pings)"
import os, socket, subprocess, sys
ckptd, t = sys.argv[1], sys.argv[2]
path = t + "/notify"
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.1)
env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="20000")
p = subprocess.Popen([ckptd, "-1", "-w", t + "/runs", "--pattern", "step-{step}", "--keep-last", "1"], env=env)
pings = 0
while True:
    try:
        pings += s.recv(4096).count(b"WATCHDOG=1")
    except socket.timeout:
        if p.poll() is not None:
            break
print(pings, p.returncode)
EOF
        assert_names runs step-2
        read -r n rc <pings
        [ "$rc" = 0 ] || fail "ckptd exited $rc"
        [ "$n" -ge 2 ] || fail "$n WATCHDOG=1 during the removal of 60000 entries"
}

run_tests
