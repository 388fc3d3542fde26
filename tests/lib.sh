# shellcheck shell=bash disable=SC2034
# Shared helpers for the integration tests. Source it; define test_* functions;
# end the script with `run_tests`. Each test runs in its own subshell with a
# fresh $T directory; `fail` ends that test. Waiting is done with deadlines.
set -u

: "${CKPTD:?CKPTD must name the ckptd binary}"
# The same ckptd with the removal seam (tests/hook/hook.c): make builds it
# beside $CKPTD.
CKPTD_HOOKED=${CKPTD_HOOKED:-$(dirname "$CKPTD")/ckptd-hooked}
TESTS_TMP=${TESTS_TMP:-/tmp}
PY=/usr/bin/python3
_passed=0
_failed=0
_skipped=0

fail() {
        echo "    FAIL: $*" >&2
        exit 1
}

skip() {
        echo "    skipped: $*" >&2
        exit 77
}

need_root() {
        [ "$(id -u)" = 0 ] || skip "needs root"
}

# wait_for DEADLINE_SEC CMD...: run CMD every 50 ms until it succeeds.
wait_for() {
        local deadline=$(($(date +%s%N) + $1 * 1000000000))
        shift
        while ! "$@"; do
                [ "$(date +%s%N)" -lt "$deadline" ] || return 1
                sleep 0.05
        done
}

# The names in directory $1, sorted, one per line (dot files too).
ls_names() {
        (cd "$1" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort)
}

# assert_names DIR NAME...: DIR holds exactly these names.
assert_names() {
        local dir=$1
        shift
        local want got
        want=$(printf '%s\n' "$@" | LC_ALL=C sort)
        got=$(ls_names "$dir")
        [ "$want" = "$got" ] || fail "$dir holds:
$got
expected:
$want"
}

assert_exists() { [ -e "$1" ] || [ -L "$1" ] || fail "$1 is missing"; }
assert_absent() { [ ! -e "$1" ] && [ ! -L "$1" ] || fail "$1 still exists"; }
assert_grep() { grep -q -- "$1" "$2" || fail "'$1' not in $2: $(cat "$2")"; }
assert_no_grep() { ! grep -q -- "$1" "$2" || fail "'$1' unexpectedly in $2"; }
# assert_exit WANT CMD...
assert_exit() {
        local want=$1 rc=0
        shift
        "$@" || rc=$?
        [ "$rc" = "$want" ] || fail "exit $rc, expected $want: $*"
}

# mkfile NAME SIZE_KIB: a file of SIZE_KIB KiB of non-zero data.
mkfile() {
        head -c "$(($2 * 1024))" /dev/urandom >"$1"
}

# Waiting for a directory's names, and a ckptd in the background.

# names_are DIR NAME...: like assert_names, but a predicate for wait_for.
names_are() {
        local dir=$1
        shift
        [ "$(printf '%s\n' "$@" | LC_ALL=C sort)" = "$(ls_names "$dir" 2>/dev/null)" ]
}

# wait_names DIR NAME...: DIR comes to hold exactly these names within 20 s.
wait_names() {
        wait_for 20 names_are "$@" || assert_names "$@"
}

# alive PID: running, not a zombie waiting to be reaped.
alive() {
        [ -r "/proc/$1/stat" ] && ! awk '{ exit !($3 == "Z") }' "/proc/$1/stat" 2>/dev/null
}

# The voluntary context switches of every thread of PID: each time the
# daemon blocked (in epoll_wait) and was woken again.
wakeups() {
        cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ { n += $2 } END { print n }'
}

# quiet_for_2s: the daemon did not wake for 2 s, longer than the floor's
# one-second checks while writing and the publish a second after a change:
# what it had to look at again, it has.
quiet_for_2s() {
        local a b
        a=$(wakeups "$DPID")
        sleep 2
        b=$(wakeups "$DPID")
        [ "$a" = "$b" ]
}

# start_daemon LOG ARGS...: ckptd in the background, stderr to LOG; sets DPID
# and waits for "watching" (logged at info, after the start-up sweep).
start_daemon() {
        local log=$1
        shift
        "$CKPTD" "$@" 2>"$log" &
        DPID=$!
        echo "$DPID" >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' "$log" || fail "ckptd did not start: $(cat "$log")"
}

# wait_exit PID WANT_RC: PID (a child) exits within 20 s with WANT_RC.
wait_exit() {
        local rc=0
        wait_for 20 eval "! alive $1" || fail "ckptd $1 did not exit within 20 s"
        wait "$1" || rc=$?
        [ "$rc" = "$2" ] || fail "ckptd exited $rc, expected $2"
}

# stop_daemon LOG: SIGTERM; exit 0 within 20 s.
stop_daemon() {
        alive "$DPID" || fail "ckptd died before it was stopped: $(tail -n 20 "$1")"
        kill -TERM "$DPID"
        wait_exit "$DPID" 0
}

run_tests() {
        local t rc
        for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
                if [ -n "${ONLY:-}" ] && [[ $t != *"$ONLY"* ]]; then continue; fi
                T=$(mktemp -d "$TESTS_TMP/ckptd-test.XXXXXX")
                # not in an || list: bash ignores set -e there
                (
                        cd "$T" || exit 1
                        set -e${TRACE:+x}
                        "$t"
                ) >"$T.log" 2>&1
                rc=$?
                case $rc in
                0) echo "  PASS $t"; _passed=$((_passed + 1)) ;;
                77) echo "  SKIP $t ($(tail -n1 "$T.log" | sed 's/^ *//'))"; _skipped=$((_skipped + 1)) ;;
                *) echo "  FAIL $t"; sed 's/^/    | /' "$T.log" | tail -n 40; _failed=$((_failed + 1)) ;;
                esac
                cleanup_after_test "$T"
                rm -rf "$T" "$T.log"
        done
        echo "RESULT $_passed $_failed $_skipped"
}

# _running PID: alive() that no test redefines, for the cleanup.
_running() {
        [ -r "/proc/$1/stat" ] && ! awk '{ exit !($3 == "Z") }' "/proc/$1/stat" 2>/dev/null
}

# Unmount anything a test left mounted below $1 and kill daemons it started.
cleanup_after_test() {
        if [ -f "$1/pids" ]; then
                while read -r p; do kill "$p" 2>/dev/null || true; done <"$1/pids"
                # one a failed test left held by the test seam (a read of
                # its FIFO) never gets to its SIGTERM
                while read -r p; do
                        wait_for 5 eval "! _running $p" || kill -KILL "$p" 2>/dev/null || true
                done <"$1/pids"
        fi
        grep " $1" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
                umount -l "$m" 2>/dev/null || true
        done
}

# notify_listen: a NOTIFY_SOCKET listener at $T/notify.sock, in the
# background; each datagram becomes one line of $T/notify ("|" for newline).
notify_listen() {
        cat >"$T/listen.py" <<'EOP'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).replace(b"\n", b"|") + b"\n")
EOP
        $PY "$T/listen.py" "$T/notify.sock" "$T/notify" &
        echo $! >>"$T/pids"
        wait_for 20 test -S "$T/notify.sock" || fail "listener did not start"
}
