#!/usr/bin/env bash
# Two ckptd processes on sibling trees of one filesystem (/fs/a, /fs/b: two
# configs, or ckptd@a and ckptd@b) share its free space. Each used to read
# statvfs below the floor at the same moment and evict: twice the bytes
# needed. A floor pass now runs under a per-filesystem lock in the runtime
# directory, so the second one reads statvfs after the first has evicted.
#
# Each test repeats a fresh race TRIALS times (default 10): the two passes
# overlap only sometimes, so one lucky trial would prove nothing. Needs root
# (mount).
. "$(dirname "$0")/../lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
FILL=("$PY" "$HERE/floor_fill.py")
TRIALS=${TRIALS:-10}
KIB=1024
C_KIB=1024          # one checkpoint: 1 MiB
FLOOR=$((16 << 20)) # min_free, in bytes
N_CKPT=6            # per root: the best, the newest and 4 evictable ones

free_bytes() {
        local a s
        read -r a s < <(stat -f -c '%a %S' "$1")
        echo $((a * s))
}

# A fresh filesystem with a/ and b/ (each one run of N_CKPT settled
# checkpoints, the best the oldest, so neither best nor newest is a victim)
# and a config for each; the lock directory is the test's own.
setup() {
        local r e loss
        umount "$T/fs" 2>/dev/null || true
        rm -rf "$T/fs" "$T/run"
        mkdir -p "$T/fs" "$T/run"
        mount -t tmpfs -o size=64m tmpfs "$T/fs" || fail "cannot mount a tmpfs"
        for r in a b; do
                mkdir -p "$T/fs/$r/run1"
                for e in $(seq 1 "$N_CKPT"); do
                        loss=0.$((10 + e))
                        mkfile "$T/fs/$r/run1/epoch=$e-step=$((e * 100))-val_loss=$loss.ckpt" "$C_KIB"
                        touch -d "-$((120 - e)) min" "$T/fs/$r/run1/epoch=$e-step=$((e * 100))-val_loss=$loss.ckpt"
                done
                cat >"$T/$r.conf" <<EOF
watch = ( {
        path = "$T/fs/$r";
        preset = "lightning";
        monitor = "val_loss";
        keep_top_k = 10;
        keep_last = 1;
        settle = 0.5;
        min_free = "$FLOOR";
} );
EOF
        done
        export RUNTIME_DIRECTORY=$T/run
}

# Other data leaving half a checkpoint less than the floor: evicting one
# checkpoint is enough.
fill_below_floor() {
        "${FILL[@]}" "$T/fs/other" $((FLOOR - C_KIB * KIB / 2)) >/dev/null || fail "cannot fill"
}

floor_met() { [ "$(free_bytes "$T/fs")" -ge "$FLOOR" ]; }

evictions() { # LOG...
        cat "$@" | grep -c '(floor, ' || true
}

ckpts_left() {
        find "$T/fs/a" "$T/fs/b" -name '*.ckpt' | wc -l
}

start_daemon() { # NAME
        "$CKPTD" --log-target stderr -c "$T/$1.conf" >/dev/null 2>"$T/$1.log" &
        echo $! >"$T/$1.pid"
        echo $! >>"$T/pids"
}

no_sanitizer_reports() {
        local f
        for f in "$@"; do
                ! grep -q -e 'runtime error' -e 'Sanitizer' "$f" || fail "sanitizer report in $f: $(cat "$f")"
        done
}

exited() { # PID: gone, or a zombie waiting for us
        [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

watching() { grep -q '^ckptd: watching [0-9]* director' "$1"; }

stop_daemons() {
        local r p
        for r in a b; do
                p=$(cat "$T/$r.pid")
                kill -TERM "$p" 2>/dev/null || true
                wait_for 20 exited "$p" || fail "ckptd $r did not stop"
                wait "$p" || true
                no_sanitizer_reports "$T/$r.log"
        done
}

# Two daemons running; the disk fills; both are told to check at once
# (SIGHUP: a reload ends with a floor check).
daemon_trial() {
        local n
        setup
        start_daemon a
        start_daemon b
        wait_for 20 watching "$T/a.log" || fail "ckptd a did not start: $(cat "$T/a.log")"
        wait_for 20 watching "$T/b.log" || fail "ckptd b did not start: $(cat "$T/b.log")"
        fill_below_floor
        kill -HUP "$(cat "$T/a.pid")" "$(cat "$T/b.pid")"
        wait_for 20 floor_met ||
                fail "the floor was not met ($(free_bytes "$T/fs") free): $(cat "$T/a.log" "$T/b.log")"
        wait_for 20 grep -q '^ckptd: reloaded' "$T/a.log" || fail "a did not reload"
        wait_for 20 grep -q '^ckptd: reloaded' "$T/b.log" || fail "b did not reload"
        # one that found the lock taken looks again 1 s later: give it
        # time to (wrongly) evict
        sleep 2.5
        n=$(evictions "$T/a.log" "$T/b.log")
        echo "trial $i: $n eviction(s), $(free_bytes "$T/fs") bytes free, floor $FLOOR" >&2
        stop_daemons
        echo "$n" >"$T/n"
}

test_two_daemons_on_one_filesystem_evict_once() {
        need_root
        local i n bad=0
        for i in $(seq 1 "$TRIALS"); do
                daemon_trial
                n=$(cat "$T/n")
                [ "$n" = 1 ] || bad=$((bad + 1))
        done
        echo "figure: daemons: $bad of $TRIALS trials evicted more (or less) than once" >&2
        [ "$bad" = 0 ] || fail "$bad of $TRIALS trials did not evict exactly one checkpoint"
}

test_two_oneshots_on_one_filesystem_evict_once() {
        need_root
        local i n bad=0 pa pb ra rb
        for i in $(seq 1 "$TRIALS"); do
                setup
                fill_below_floor
                "$CKPTD" --log-target stderr -1 -c "$T/a.conf" 2>"$T/a.log" &
                pa=$!
                "$CKPTD" --log-target stderr -1 -c "$T/b.conf" 2>"$T/b.log" &
                pb=$!
                ra=0 rb=0
                wait "$pa" || ra=$?
                wait "$pb" || rb=$?
                no_sanitizer_reports "$T/a.log" "$T/b.log"
                [ "$ra" = 0 ] && [ "$rb" = 0 ] || fail "ckptd -1 exited $ra and $rb: $(cat "$T/a.log" "$T/b.log")"
                n=$(evictions "$T/a.log" "$T/b.log")
                echo "trial $i: $n eviction(s), $(free_bytes "$T/fs") bytes free" >&2
                [ "$n" = 1 ] || bad=$((bad + 1))
                [ "$(ckpts_left)" = $((2 * N_CKPT - n)) ] || fail "logs and files disagree"
        done
        echo "figure: -1: $bad of $TRIALS trials evicted more (or less) than once" >&2
        [ "$bad" = 0 ] || fail "$bad of $TRIALS trials did not evict exactly one checkpoint"
}

# No lock file to be had (here: a runtime directory that does not exist; a
# read-only /run, a user without XDG_RUNTIME_DIR): the floor is enforced
# all the same, and that is said once.
test_no_lock_directory_enforces_without_it() {
        need_root
        setup
        fill_below_floor
        RUNTIME_DIRECTORY=$T/missing assert_exit 0 "$CKPTD" --log-target stderr -1 -c "$T/a.conf" 2>"$T/a.log"
        assert_grep 'enforcing the floor without it' "$T/a.log"
        [ "$(evictions "$T/a.log")" = 1 ] || fail "not evicted once: $(cat "$T/a.log")"
        [ "$(free_bytes "$T/fs")" -ge "$FLOOR" ] || fail "floor not met"
}

# A floor pass of another process in progress: the daemon leaves the
# filesystem alone, and takes over once that one is gone.
test_held_lock_defers_then_enforces() {
        need_root
        local holder
        setup
        start_daemon a
        wait_for 20 watching "$T/a.log" || fail "ckptd a did not start: $(cat "$T/a.log")"
        dev=$(stat -c '%Hd-%Ld' "$T/fs")
        flock -o "$T/run/floor-$dev.lock" sleep 600 &
        holder=$!
        echo "$holder" >>"$T/pids"
        wait_for 10 test -e "$T/run/floor-$dev.lock" || fail "no lock file"
        fill_below_floor
        kill -HUP "$(cat "$T/a.pid")"
        wait_for 20 grep -q '^ckptd: reloaded' "$T/a.log" || fail "a did not reload"
        sleep 2.5 # two retries
        [ "$(evictions "$T/a.log")" = 0 ] || fail "evicted under another's lock: $(cat "$T/a.log")"
        kill "$holder"
        wait_for 20 floor_met || fail "not enforced after the lock was freed"
        [ "$(evictions "$T/a.log")" = 1 ] || fail "not evicted once: $(cat "$T/a.log")"
        kill -TERM "$(cat "$T/a.pid")"
}

# -1 waits for a floor pass of another process (up to 60 s), then reads the
# free space anew and evicts what is still missing.
test_oneshot_waits_for_a_held_lock() {
        need_root
        local holder pid rc=0
        setup
        dev=$(stat -c '%Hd-%Ld' "$T/fs")
        flock -o "$T/run/floor-$dev.lock" sleep 600 &
        holder=$!
        echo "$holder" >>"$T/pids"
        wait_for 10 test -e "$T/run/floor-$dev.lock" || fail "no lock file"
        fill_below_floor
        "$CKPTD" --log-target stderr -1 -c "$T/a.conf" 2>"$T/a.log" &
        pid=$!
        sleep 1 # -1 is at the lock by now, or gets there later: either way
        [ "$(evictions "$T/a.log")" = 0 ] || fail "evicted under another's lock: $(cat "$T/a.log")"
        kill "$holder"
        wait "$pid" || rc=$?
        [ "$rc" = 0 ] || fail "ckptd -1 exited $rc: $(cat "$T/a.log")"
        [ "$(evictions "$T/a.log")" = 1 ] || fail "not evicted once: $(cat "$T/a.log")"
        assert_no_grep 'left to another' "$T/a.log"
        no_sanitizer_reports "$T/a.log"
}

run_tests
