#!/usr/bin/env bash
# Fault injection into the running daemon: a scripted session (start-up
# sweep, new checkpoints and a moved `latest`, SIGHUP, a pin added and more
# checkpoints, SIGTERM) once without a fault, counting calls, then again with
# the Nth call of one function failing, for a sample of (function, N, errno).
# After each stage nothing the fault-free session keeps at that stage may be
# gone; no crash, no fd leak at exit, and whatever is kept beyond the
# fault-free session is logged with the error.
#
# Sampled: the daemon's call sequence depends on timing, so N picks a few
# points through each function's count (3 by default, 8 with FAULT_ALL=1 or
# CKPTD_LONG=1, which also runs every errno at each), and a few more through
# the calls on `latest` and on the .keep pins. One case, verbose:
#   FAULT_ONLY=read:3:EIO CKPTD=build/ckptd bash tests/fault/daemon.sh
# (FAULT_ONLY=read:2:EIO:latest fails the 2nd read of a path containing
# "latest".)
. "$(dirname "$0")/lib.bash"

f() { mkdir -p "$(dirname "$1")" && printf '%s\n' "${2:-x}" >"$1"; }
lt() { echo "$T/work/lt/epoch=$1-step=$((($1 + 1) * 10))-val_loss=$2.ckpt"; }

# A DeepSpeed run (keep_last 1, `latest`) and a Lightning run (best 1, last
# 1, .keep pins), settling fast.
build_tree() {
        local s
        for s in 1 2 3; do f "$T/pristine/ds/global_step$s/model.pt"; done
        printf global_step1 >"$T/pristine/ds/latest"
        mkdir -p "$T/pristine/lt"
        f "$T/pristine/lt/epoch=0-step=10-val_loss=0.5.ckpt"
        f "$T/pristine/lt/epoch=1-step=20-val_loss=0.3.ckpt"
        f "$T/pristine/lt/epoch=2-step=30-val_loss=0.6.ckpt"
        f "$T/pristine/lt/epoch=3-step=40-val_loss=0.7.ckpt"
        touch "$T/pristine/lt/epoch=2-step=30-val_loss=0.6.ckpt.keep"
        old_tree "$T/pristine"
        cat >"$T/c.conf" <<EOC
watch = (
  { path = "$T/work/ds"; preset = "deepspeed"; keep_last = 1; settle = 0.3; },
  { path = "$T/work/lt"; preset = "lightning"; monitor = "val_loss"; keep_top_k = 1;
    keep_last = 1; settle = 0.3; } );
EOC
}

# What the fault-free session holds after each stage. `latest` stays at
# global_step3 while 4 and 5 come: the newest, past it and written since,
# is a save under way (pointer_files in ckptd.conf(5)), so in the last stage
# global_step4 is the newest complete one and stays.
STAGE0="ds/global_step1 ds/global_step3 lt/epoch=1-step=20-val_loss=0.3.ckpt lt/epoch=2-step=30-val_loss=0.6.ckpt lt/epoch=3-step=40-val_loss=0.7.ckpt"
STAGE1="ds/global_step3 ds/global_step4 lt/epoch=1-step=20-val_loss=0.3.ckpt lt/epoch=2-step=30-val_loss=0.6.ckpt lt/epoch=4-step=50-val_loss=0.4.ckpt"
STAGE2="ds/global_step3 ds/global_step4 ds/global_step5 lt/epoch=1-step=20-val_loss=0.3.ckpt lt/epoch=2-step=30-val_loss=0.6.ckpt lt/epoch=4-step=50-val_loss=0.4.ckpt lt/epoch=5-step=60-val_loss=0.8.ckpt"

# The checkpoints (not what is inside them, not pins and pointers) in work.
ckpts() {
        (cd "$T/work" && find ds lt -mindepth 1 -maxdepth 1 \( -name 'global_step*' -o -name '*.ckpt' \) \
                -printf '%p\n' | LC_ALL=C sort)
}
ckpts_are() { [ "$(ckpts)" = "$(printf '%s\n' $1 | LC_ALL=C sort)" ]; }
# stage WANT WAIT: wait (up to WAIT s) for the checkpoints to be WANT, then
# record any of WANT that is gone. A fault may keep more; it may not delete.
stage() {
        wait_for "$2" ckpts_are "$1" || true
        local gone
        gone=$(LC_ALL=C comm -23 <(printf '%s\n' $1 | LC_ALL=C sort) <(ckpts) | tr '\n' ' ')
        [ -z "$gone" ] || echo "$gone" >>"$T/gone"
}

# session FUNC N ERRNO: the scripted session on a fresh copy; sets rc.
session() {
        local e=${3%+} wait=${WAIT:-20} pid rep=()
        [ "$3" = "$e" ] || rep=(FAULT_REPEAT=1)
        rm -rf "$T/work" "$T/fired" "$T/fds" "$T/count" "$T/gone" "$T/rt"
        cp -a "$T/pristine" "$T/work"
        # its state file and floor locks in a directory of the test's own: a
        # fault in the unlink at exit leaves the state file behind
        mkdir "$T/rt"
        env LD_PRELOAD="$FAULT_SO" FAULT_FDS="$T/fds" FAULT_LOG="$T/fired" FAULT_COUNT="$T/count" \
                RUNTIME_DIRECTORY="$T/rt" \
                FAULT_MATCH="${MATCH:-}" \
                FAULT_CALL="$1" FAULT_NTH="$2" FAULT_ERRNO="$e" "${rep[@]}" \
                "$CKPTD" -c "$T/c.conf" --log-target stderr 2>"$T/err" &
        pid=$!
        echo "$pid" >>"$T/pids"
        wait_for "$wait" grep -q '^ckptd: watching ' "$T/err" || true
        stage "$STAGE0" "$wait"
        # `latest` moved, then new checkpoints: a directory renamed in, a
        # file (in this order: every state on the way keeps global_step3)
        printf global_step3 >"$T/work/ds/latest"
        mkdir -p "$T/work/ds/tmp4" && f "$T/work/ds/tmp4/model.pt"
        mv "$T/work/ds/tmp4" "$T/work/ds/global_step4"
        f "$(lt 4 0.4)"
        stage "$STAGE1" "$wait"
        kill -HUP "$pid" 2>/dev/null || true
        wait_for "$wait" grep -q 'reloaded' "$T/err" || true
        # a pin added, then newer checkpoints
        touch "$(lt 4 0.4).keep"
        mkdir -p "$T/work/ds/tmp5" && f "$T/work/ds/tmp5/model.pt"
        mv "$T/work/ds/tmp5" "$T/work/ds/global_step5"
        f "$(lt 5 0.8)"
        stage "$STAGE2" "$wait"
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_for 20 eval "! alive $pid"; then
                kill -KILL "$pid" 2>/dev/null || true
                echo "did not stop within 20 s of SIGTERM" >>"$T/err"
        fi
        rc=0
        wait "$pid" || rc=$?
}

# reference MATCH: the session without a fault, counting the calls on paths
# that contain MATCH (all calls if empty), into $T/count.MATCH.
reference() {
        MATCH=$1 session "" 0 ""
        [ "$rc" = 0 ] || fail "the session without a fault exits $rc: $(cat "$T/err")"
        [ ! -s "$T/gone" ] || fail "the session without a fault did not follow the script: $(cat "$T/gone")"
        ckpts_are "$STAGE2" || fail "the session without a fault ends with $(ckpts)"
        cp "$T/count" "$T/count.$1"
        echo "calls in the session${1:+ on $1}: $(tr '\n' ' ' <"$T/count.$1")"
}

# add_cases MATCH POINTS: for each function, POINTS calls spread through its
# count in the reference, each with one errno in turn (all with FAULT_ALL).
add_cases() {
        local fn count n e k
        reference "$1"
        while read -r fn count; do
                [ -n "$1" ] || F_SITES=$((F_SITES + count))
                for ((k = 0; k < $2 && k < count; k++)); do
                        n=$((1 + k * count / $2))
                        for e in $(fault_pick "$fn" "$n"); do cases+=("$fn:$n:$e:$1"); done
                done
        done <"$T/count.$1"
}

# Calls anywhere, and every call on the pointer file and the pins (matched
# by path: FAULT_MATCH), where a fault is most likely to unpin something.
test_daemon_faults() {
        need_shim
        build_tree
        local cases=() c spec
        add_cases "" "$(fault_long && echo 8 || echo 3)"
        tree_names "$T/work" >"$T/r0"
        cp "$T/fds" "$T/fds0"
        if [ -n "${FAULT_ONLY:-}" ]; then
                cases=("$FAULT_ONLY")
        else
                add_cases latest "$(fault_long && echo 16 || echo 6)"
                add_cases .keep "$(fault_long && echo 16 || echo 4)"
        fi
        for c in "${cases[@]}"; do
                IFS=: read -r -a spec <<<"$c"
                # a faulted session waits less for what the fault may prevent
                WAIT=2 MATCH=${spec[3]:-} session "${spec[@]:0:3}"
                fault_judge "${spec[@]:0:3}" "$rc" "FAULT_ONLY=$c CKPTD=$CKPTD bash $0" || true
                if [ -n "${FAULT_ONLY:-}" ]; then
                        {
                                echo "exit $rc; fault: $(cat "$T/fired" 2>/dev/null)"
                                echo "gone before the end: $(cat "$T/gone" 2>/dev/null)"
                                echo "at the end: $(ckpts | tr '\n' ' ')"
                                sed 's/^/  | /' "$T/err"
                        } | tee -a "$FAULT_TOTALS"
                fi
        done
        fault_report daemon
}

FAULT_TOTALS=$(mktemp)
run_tests
cat "$FAULT_TOTALS"
rm -f "$FAULT_TOTALS"
