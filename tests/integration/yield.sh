#!/usr/bin/env bash
# A removal of a huge checkpoint goes on between the daemon's other events:
# another run's victim is deleted long before it ends, and the daemon keeps
# answering (STATUS=, WATCHDOG=1) meanwhile.
#
# YIELD_FILES sets the size of the huge checkpoint (default 200000 files).
. "$(dirname "$0")/../lib.sh"

NFILES=${YIELD_FILES:-200000}

# huge DIR: NFILES empty files in directories of 1000 below DIR.
huge() {
        $PY - "$1" "$NFILES" <<'EOF'
import os, sys
base, n = sys.argv[1], int(sys.argv[2])
os.mkdir(base)
for d in range((n + 999) // 1000):
    p = f"{base}/d{d}"
    os.mkdir(p)
    for i in range(min(1000, n - d * 1000)):
        os.close(os.open(f"{p}/f{i}", os.O_WRONLY | os.O_CREAT, 0o644))
EOF
}

test_huge_removal_does_not_hold_other_runs() {
        need_root
        export STATE_DIRECTORY=$T/state
        mkdir fs
        mount -t tmpfs -o size=2g,nr_inodes=2m tmpfs fs
        mkdir -p fs/root/A fs/root/B fs/stage
        huge fs/root/A/step-1
        mkdir fs/root/B/step-1
        echo 1 >fs/root/B/step-1/w
        # the next checkpoints, written aside and renamed in whole, as trainers do
        for x in A B; do
                mkdir "fs/stage/$x"
                echo 2 >"fs/stage/$x/w"
        done
        # older than --settle: every checkpoint counts as complete
        wait_for 20 eval '[ $(( $(date +%s) - $(stat -c %Y fs/root/A/step-1/d0) )) -ge 2 ]'
        $PY - "$CKPTD" "$T" <<'EOF' >times.txt || fail "driver failed: $(cat times.txt) $(tail -n 20 d.log)"
import os, socket, subprocess, sys, threading, time
ckptd, t = sys.argv[1], sys.argv[2]
root, stage = t + "/fs/root", t + "/fs/stage"
sock = t + "/notify"
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock)
s.settimeout(0.1)
msgs = []  # (monotonic time, datagram)
stop = False
def listen():
    while not stop:
        try:
            msgs.append((time.monotonic(), s.recv(4096).decode(errors="replace")))
        except socket.timeout:
            pass
threading.Thread(target=listen, daemon=True).start()
env = dict(os.environ, NOTIFY_SOCKET=sock, WATCHDOG_USEC="2000000")
log = open(t + "/d.log", "w")
p = subprocess.Popen([ckptd, "-w", root, "--pattern", "step-{step}", "--keep-last", "1", "--settle", "0.5"],
                     env=env, stderr=log)
with open(t + "/pids", "a") as f:
    print(p.pid, file=f)
def wait(pred, sec, what):
    end = time.monotonic() + sec
    while not pred():
        if time.monotonic() > end or p.poll() is not None:
            sys.exit(f"{what} (ckptd: {p.poll()})")
        time.sleep(0.005)
    return time.monotonic()
wait(lambda: any("READY=1" in m for _, m in msgs), 60, "no READY=1")
def tombs(run):
    return [n for n in os.listdir(root + "/" + run) if n.startswith(".ckptd-trash-")]
t0 = time.monotonic()
os.rename(stage + "/A", root + "/A/step-2")
a_gone = wait(lambda: not os.path.exists(root + "/A/step-1"), 60, "A/step-1 not renamed")
b0 = time.monotonic()
os.rename(stage + "/B", root + "/B/step-2")
b_gone = wait(lambda: not os.path.exists(root + "/B/step-1"), 120, "B/step-1 not deleted")
a_tomb_at_b = len(tombs("A"))
a_done = wait(lambda: not tombs("A"), 300, "A's tombstone not removed")
# STATUS= follows a change within a second (ckptd(8)): B's deletion shows by then
status = [m for at, m in msgs if b0 <= at <= b_gone + 1.5 and "STATUS=" in m]
pings = sorted(at for at, m in msgs if "WATCHDOG=1" in m and a_gone <= at <= a_done)
gaps = [b - a for a, b in zip([a_gone] + pings, pings + [a_done])]
p.terminate()
rc = p.wait(30)
stop = True
print(f"{a_gone - t0:.3f} {b_gone - b0:.3f} {a_done - a_gone:.3f} {a_tomb_at_b} {len(status)} {max(gaps):.3f} {rc}")
EOF
        read -r a_gone b_wait a_removal a_tomb_at_b n_status gap rc <times.txt
        echo "A renamed after ${a_gone}s; B's victim deleted after ${b_wait}s; A's tree removed in ${a_removal}s; longest watchdog gap ${gap}s" >&2
        echo "A renamed after ${a_gone}s; B waited ${b_wait}s; A removed in ${a_removal}s; watchdog gap ${gap}s" >>"${YIELD_REPORT:-/dev/null}"
        [ "$rc" = 0 ] || fail "ckptd exited $rc: $(tail -n 20 d.log)"
        assert_names fs/root/A step-2
        assert_names fs/root/B step-2
        # B's victim went while A's tree was still being removed
        [ "$a_tomb_at_b" = 1 ] || fail "B waited for A's removal: B after ${b_wait}s, A's removal took ${a_removal}s"
        [ "$n_status" -ge 1 ] || fail "no STATUS= while A was being removed"
        awk -v g="$gap" 'BEGIN { exit !(g < 2) }' || fail "no WATCHDOG=1 for ${gap}s during the removal"
        assert_grep "deleted $T/fs/root/A/step-1" d.log
        assert_grep "deleted $T/fs/root/B/step-1" d.log
        [ "$(find "$T/state" -name '*.rec' | wc -l)" = 0 ] || fail "a removal record is left"
}

# SIGTERM while a removal goes on: exit 0 at once, its record kept; the next
# start finishes it.
test_sigterm_leaves_the_removal_to_the_next_start() {
        need_root
        export STATE_DIRECTORY=$T/state
        mkdir fs
        mount -t tmpfs -o size=2g,nr_inodes=2m tmpfs fs
        mkdir -p fs/root fs/stage/step-2
        huge fs/root/step-1
        echo 2 >fs/stage/step-2/w
        wait_for 20 eval '[ $(( $(date +%s) - $(stat -c %Y fs/root/step-1/d0) )) -ge 2 ]'
        "$CKPTD" -w "$T/fs/root" --pattern 'step-{step}' --keep-last 1 --settle 0.5 2>d.log &
        pid=$!
        echo "$pid" >>pids
        wait_for 60 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        mv fs/stage/step-2 fs/root/step-2
        wait_for 60 eval '[ ! -e fs/root/step-1 ]' || fail "step-1 was not renamed"
        kill -TERM "$pid"
        start=$(date +%s%N)
        rc=0
        wait "$pid" || rc=$?
        [ "$rc" = 0 ] || fail "ckptd exited $rc: $(tail -n 20 d.log)"
        echo "SIGTERM to exit: $((($(date +%s%N) - start) / 1000000)) ms; tombstones left: $(find fs/root -maxdepth 1 -name '.ckptd-trash-*' | wc -l)" >>"${YIELD_REPORT:-/dev/null}"
        if [ -n "$(find fs/root -maxdepth 1 -name '.ckptd-trash-*')" ]; then
                assert_grep "removal under way; the next start finishes it" d.log
                [ "$(find state -name '*.rec' | wc -l)" = 1 ] || fail "no record of the removal left"
        fi
        "$CKPTD" -w "$T/fs/root" --pattern 'step-{step}' --keep-last 1 --settle 0.5 2>d2.log &
        pid=$!
        echo "$pid" >>pids
        wait_for 60 grep -q '^ckptd: watching ' d2.log || fail "ckptd did not restart: $(cat d2.log)"
        assert_names fs/root step-2
        [ "$(find state -name '*.rec' | wc -l)" = 0 ] || fail "a removal record is left"
        kill -TERM "$pid"
        wait "$pid" || fail "ckptd exited $?"
}

# The floor counts what a removal under way has yet to free: it evicts
# nothing more for room that is about to come back.
test_floor_counts_a_removal_under_way() {
        need_root
        export STATE_DIRECTORY=$T/state
        mkdir fs stage
        mount -t tmpfs -o size=600m,nr_inodes=1m tmpfs fs
        mkdir -p fs/root/A/step-1 fs/root/B/step-1 fs/root/B/step-2 stage/step-2
        # A's step-1: 40000 files of 8 KiB (320 MiB); B: two of 60 MiB
        $PY - fs/root/A/step-1 <<'EOF2'
import os, sys
data = b"x" * 8192
for d in range(40):
    p = f"{sys.argv[1]}/d{d}"
    os.mkdir(p)
    for i in range(1000):
        with open(f"{p}/f{i}", "wb") as f:
            f.write(data)
EOF2
        mkfile fs/root/B/step-1/w 61440
        mkfile fs/root/B/step-2/w 61440
        mkfile stage/step-2/w 102400
        touch -d "-1 hour" fs/root/B/step-1/w fs/root/B/step-2/w stage/step-2/w
        wait_for 20 eval '[ $(( $(date +%s) - $(stat -c %Y fs/root/A/step-1/d39) )) -ge 2 ]'
        "$CKPTD" -w "$T/fs/root" --pattern 'step-{step}' --keep-last 2 --min-free 100M --settle 0.5 2>d.log &
        pid=$!
        echo "$pid" >>pids
        wait_for 60 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        assert_no_grep evicted d.log
        # A's step-3 (100 MiB) leaves less than the floor free until A's
        # step-1 is gone, which the policy deletes (keep_last 2)
        mkdir fs/root/A/step-2
        cp -a stage/step-2 fs/root/A/step-3
        wait_for 60 eval '[ ! -e fs/root/A/step-1 ]' || fail "A/step-1 was not deleted: $(cat d.log)"
        wait_for 120 eval '[ -z "$(find fs/root/A -maxdepth 1 -name ".ckptd-trash-*")" ]' ||
                fail "A's tombstone was not removed"
        kill -TERM "$pid"
        wait "$pid" || fail "ckptd exited $?"
        assert_names fs/root/B step-1 step-2
        assert_no_grep evicted d.log
}

run_tests
