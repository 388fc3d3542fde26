# shellcheck shell=bash disable=SC2034
# Shared by tests/fault/*.sh: runs ckptd under build/fault.so (tests/fault/fault.c)
# and judges one faulted run against the run without a fault.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# The shim is never built sanitized: with `make SANITIZE=1` CKPTD is
# build/san/ckptd and the shim is still build/fault.so.
if [ -z "${FAULT_SO:-}" ]; then
        FAULT_SO=$(cd "$(dirname "$CKPTD")" && pwd)/fault.so
        [ -f "$FAULT_SO" ] || FAULT_SO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/fault.so
fi
# ASan wants to come first in the library list; the shim only forwards.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

# The errnos a faulted call returns, and the text ckptd's %m prints for each.
# ENOENT comes last: it is a control, not one of the six of the default.
FAULT_ERRNOS=(EIO EACCES EROFS ENOMEM EINTR EMFILE ENOENT)
declare -A FAULT_STRERROR=(
        [EIO]="Input/output error" [EACCES]="Permission denied" [EROFS]="Read-only file system"
        [ENOMEM]="Cannot allocate memory" [EINTR]="Interrupted system call"
        [EMFILE]="Too many open files" [ENOENT]="No such file or directory")

# CKPTD_LONG=1 or FAULT_ALL=1: every errno at every call site, and each
# errno also as a lasting failure (every call from the Nth on fails).
fault_long() { [ "${FAULT_ALL:-${CKPTD_LONG:-0}}" = 1 ]; }

need_shim() {
        [ -f "$FAULT_SO" ] || skip "no $FAULT_SO (make build/fault.so)"
}

# tops: of sorted relative paths on stdin, those whose parent is not listed
# (what was deleted or added, not everything inside it).
tops() {
        awk '{ p = $0; sub("/[^/]*$", "", p); if (p == $0 || !(p in seen)) print; seen[$0] = 1 }'
}

# old DIR: everything below DIR was written an hour ago (complete, settled).
old_tree() {
        find "$1" -exec touch -h -d "-1 hour" {} +
}

# tree_names DIR: every path below DIR, sorted.
tree_names() {
        (cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort)
}

# The cases to run for one call site: "ERRNO", or "ERRNO+" for a lasting
# failure. By default one errno per site, in turn, so that each errno meets
# every kind of call across the sites; FAULT_ALL=1 runs them all.
# fault_pick FUNC N
fault_pick() {
        local e
        if fault_long; then
                for e in "${FAULT_ERRNOS[@]}" EIO+ EACCES+; do echo "$e"; done
                return
        fi
        echo "${FAULT_ERRNOS[($2 + 5 * ${#1}) % 6]}"
}

# fault_spread COUNT CAP: the call indexes to fail, 1..COUNT, or CAP of
# them spread from the first to the last (CAP 0: all).
fault_spread() {
        local count=$1 cap=$2 k n last=0
        if [ "$cap" = 0 ] || [ "$count" -le "$cap" ]; then
                seq 1 "$count"
                return
        fi
        for ((k = 0; k < cap; k++)); do
                n=$((1 + k * (count - 1) / (cap - 1)))
                [ "$n" = "$last" ] || echo "$n"
                last=$n
        done
}

# Totals of one test, and its offenders (the first few are printed).
F_RUNS=0 F_WRONG=0 F_CRASH=0 F_LEAK=0 F_UNLOGGED=0 F_ENOENT=0 F_SITES=0

# fault_judge FUNC N ERRNO RC REPRODUCE: compare $T/work, $T/err and $T/fds
# of a faulted run with the reference ($T/r0, $T/fds0) and count.
#  - crash: killed by a signal (ASan aborts too) or hung, or an exit status
#    other than 0, 1, 3
#  - wrong deletion: a name the reference keeps is gone. Under ENOENT that
#    can be right (a definite "absent"), so any change is only counted.
#  - leak: an fd open at exit that the reference did not have
#  - unlogged skip: something the reference deletes is kept, and stderr does
#    not name the error
fault_judge() {
        local f=$1 n=$2 e=$3 rc=$4 repro=$5 base=${3%+} what="" site unlogged=0 out=$T/offenders
        site="$f#$n $e"
        [ -s "$T/fired" ] && site="$site ($(cut -d' ' -f4- "$T/fired" | head -n1))"
        F_RUNS=$((F_RUNS + 1))
        case $rc in
        0 | 1 | 3) ;;
        *)
                F_CRASH=$((F_CRASH + 1))
                what="CRASH exit $rc: $(tail -n 2 "$T/err" | tr '\n' ' ')"
                ;;
        esac
        tree_names "$T/work" >"$T/r"
        # $T/gone: what a daemon session lost before its end (daemon.sh)
        if ! cmp -s "$T/r0" "$T/r" || [ -s "$T/gone" ]; then
                local gone extra
                gone=$({ cat "$T/gone" 2>/dev/null; LC_ALL=C comm -23 "$T/r0" "$T/r" | tops; } |
                        tr ' ' '\n' | grep . | LC_ALL=C sort -u | head -n 3 | tr '\n' ' ')
                extra=$(LC_ALL=C comm -13 "$T/r0" "$T/r" | tops | head -n 2 | tr '\n' ' ')
                # ENOENT is a definite "absent": what ckptd then deletes or
                # keeps (a vanished entry is neither deleted nor reported)
                # may change, and is only counted
                if [ "$base" = ENOENT ]; then
                        F_ENOENT=$((F_ENOENT + 1))
                elif [ -n "$gone" ]; then
                        F_WRONG=$((F_WRONG + 1))
                        what="${what:+$what; }WRONG DELETION of $gone(exit $rc)"
                fi
                if [ -n "$extra" ] && [ "$base" != ENOENT ] &&
                        ! grep -qF -e "${FAULT_STRERROR[$base]}" -e "$base" "$T/err"; then
                        F_UNLOGGED=$((F_UNLOGGED + 1))
                        [ -n "$what" ] || unlogged=1
                        what="${what:+$what; }UNLOGGED SKIP: kept $extra(exit $rc, no message says '${FAULT_STRERROR[$base]}')"
                fi
        fi
        if [ -f "$T/fds" ] && ! cmp -s "$T/fds0" "$T/fds"; then
                local leaked
                leaked=$(LC_ALL=C comm -13 <(LC_ALL=C sort "$T/fds0") <(LC_ALL=C sort "$T/fds") | head -n 3 | tr '\n' ' ')
                if [ -n "$leaked" ]; then
                        F_LEAK=$((F_LEAK + 1))
                        what="${what:+$what; }FD LEAK: $leaked"
                fi
        fi
        [ "$unlogged" = 0 ] || out=$T/unlogged
        if [ -n "$what" ]; then
                echo "$site: $what" >>"$out"
                echo "    reproduce: $repro" >>"$out"
        fi
        [ -z "$what" ]
}

# fault_report NAME: the totals line and the first offenders; fails the test
# on any wrong deletion, crash, leak or unlogged skip.
fault_report() {
        echo "$1: $F_SITES call sites, $F_RUNS faulted runs$(fault_long && echo ' (all errnos)')$( [ "${FAULT_STRIDE:-1}" = 1 ] || echo " (every ${FAULT_STRIDE}th site)"):" \
                "$F_WRONG wrong deletions, $F_CRASH crashes, $F_LEAK fd leaks," \
                "$F_UNLOGGED unlogged skips ($F_ENOENT outcomes changed by ENOENT, allowed)"
        echo "FAULT-TOTALS $1 sites=$F_SITES runs=$F_RUNS wrong=$F_WRONG crash=$F_CRASH" \
                "leak=$F_LEAK unlogged=$F_UNLOGGED enoent=$F_ENOENT" >>"${FAULT_TOTALS:-/dev/null}"
        # the worst first: deletions, crashes and leaks, then unlogged skips
        local show=${FAULT_SHOW:-8} k
        for k in offenders unlogged; do
                [ -s "$T/$k" ] || continue
                echo "first $k (of $(($(wc -l <"$T/$k") / 2))):"
                head -n $((2 * show)) "$T/$k" | sed 's/^/  /'
                show=3
        done
        [ "$F_WRONG" = 0 ] && [ "$F_CRASH" = 0 ] && [ "$F_LEAK" = 0 ] && [ "$F_UNLOGGED" = 0 ] ||
                fail "$1: faults changed what ckptd deletes, or were not handled"
}
