#!/usr/bin/env bash
# Model-based randomized test (issue 8): random sequences of checkpoint
# writes, pins, user deletions and renames, policy changes and floor pressure
# against a reference policy written from the man pages (model.py). Each
# sequence is seeded; a failure prints its seed and the command replaying it.
#
# MODEL_SEED=N runs the sequences from seed N (default: a random base, printed).
# CKPTD_LONG=1 runs the large counts. The floor needs a tmpfs (root); without
# root the one-shot sequences run without a floor.
. "$(dirname "$0")/../lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=("$PY" "$HERE/model.py")
# Sized for 3-4 minutes on a loaded 2-core machine (about 20 ms a
# one-shot step, 200 ms a daemon step); under ASan each ckptd start costs
# five times more, so a sanitizer build runs a tenth of the sequences.
# CKPTD_LONG=1: longer sequences too (about 40 minutes).
ONESHOT_STEPS=5
if [ "${CKPTD_LONG:-0}" = 1 ]; then
        ONESHOT_COUNT=10000 ONESHOT_STEPS=12 DAEMON_COUNT=200
elif ldd "$CKPTD" 2>/dev/null | grep -q libasan; then
        ONESHOT_COUNT=200 DAEMON_COUNT=3
else
        ONESHOT_COUNT=2000 DAEMON_COUNT=12
fi
ONESHOT_COUNT=${MODEL_COUNT:-$ONESHOT_COUNT}
DAEMON_COUNT=${MODEL_COUNT:-$DAEMON_COUNT}
# The summaries (counts, timings) go to the runner's output too, through fd 3.
exec 3>&1
SEED_ARGS=()
[ -z "${MODEL_SEED:-}" ] || SEED_ARGS=(--seed "$MODEL_SEED")

# scratch DIR: a small tmpfs of its own on DIR when we may mount, so that the
# floor's free space is ours alone; prints the --fs flag to use.
scratch() {
        mkdir -p "$1"
        if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=4m tmpfs "$1"; then
                echo --fs
        fi
}

# model DRIVER COUNT STEPS: run the sequences; the replay command names this
# wrapper, so that the same tmpfs is set up.
model() {
        local fs
        fs=$(scratch "$T/fs")
        "${MODEL[@]}" --driver "$1" --count "$2" --steps "$3" --dir "$T/fs" $fs "${SEED_ARGS[@]}" \
                --repro "CKPTD=$CKPTD ${CKPTD_MODEL_ABS_LINKS:+CKPTD_MODEL_ABS_LINKS=$CKPTD_MODEL_ABS_LINKS }${CKPTD_MODEL_DESIGN:+CKPTD_MODEL_DESIGN=$CKPTD_MODEL_DESIGN }${CKPTD_MODEL_OPEN_AT_START:+CKPTD_MODEL_OPEN_AT_START=$CKPTD_MODEL_OPEN_AT_START }${CKPTD_MODEL_INCREMENTAL:+CKPTD_MODEL_INCREMENTAL=$CKPTD_MODEL_INCREMENTAL }${CKPTD_MODEL_LIVE:+CKPTD_MODEL_LIVE=$CKPTD_MODEL_LIVE }${CKPTD_MODEL_RESTARTS:+CKPTD_MODEL_RESTARTS=$CKPTD_MODEL_RESTARTS }MODEL_SEED={seed} MODEL_COUNT=1 MODEL_TRACE=1 ONLY=${FUNCNAME[1]#test_} bash $HERE/model.sh" \
                ${MODEL_TRACE:+--trace} >"$T/model.out" 2>&1 || {
                cat "$T/model.out"
                fail "the model and ckptd disagree (above)"
        }
        grep '^model: ' "$T/model.out" | sed 's/^/    /' >&3
}

# Found by the model (seed 5025 of the daemon driver): removing a pin (a
# .keep, a symlink, a pointer file) must let the daemon delete what only the
# pin kept, without waiting for the run's next checkpoint. Also found by it
# (seed 1247135219): a symlink whose name is a checkpoint's (d).
test_daemon_acts_on_pin_removal() {
        mkdir -p root/a root/b root/c root/d auto/e
        for r in root/a root/b root/c root/d auto/e; do
                mkfile "$r/step=1-loss=0.5.ckpt" 4
                mkfile "$r/step=2-loss=0.5.ckpt" 4
                touch -d "-1 hour" $r/*
        done
        touch "root/a/step=1-loss=0.5.ckpt.keep"
        ln -s "step=1-loss=0.5.ckpt" root/b/last.ckpt
        echo "step=1-loss=0.5.ckpt" >root/c/latest
        ln -s "step=1-loss=0.5.ckpt" "root/d/epoch=99-step=99999-loss=0.0.ckpt"
        # preset auto: a name the watch calls a checkpoint and the layout
        # found in the run (lightning, *.ckpt) does not
        ln -s "step=1-loss=0.5.ckpt" "auto/e/step=9-loss=0.1.pt"
        cat >c.conf <<EOC
watch = ( { path = "$T/root"; preset = "lightning"; keep_top_k = 0; keep_last = 1; settle = 0.2;
            pointer_files = [ "latest" ]; },
          { path = "$T/auto"; preset = "auto"; keep_top_k = 0; keep_last = 1; settle = 0.2; } );
EOC
        "$CKPTD" -c c.conf --log-target stderr 2>d.log &
        echo $! >>"$T/pids"
        wait_for 20 grep -q '^ckptd: watching ' d.log || fail "ckptd did not start: $(cat d.log)"
        for r in a b c d; do assert_exists "root/$r/step=1-loss=0.5.ckpt"; done
        assert_exists "auto/e/step=1-loss=0.5.ckpt"
        rm "root/a/step=1-loss=0.5.ckpt.keep" root/b/last.ckpt root/c/latest "root/d/epoch=99-step=99999-loss=0.0.ckpt"
        rm "auto/e/step=9-loss=0.1.pt"
        wait_for 20 test ! -e "auto/e/step=1-loss=0.5.ckpt" ||
                fail "run auto/e: the pin is gone, its checkpoint stays: $(cat d.log)"
        assert_exists "auto/e/step=2-loss=0.5.ckpt"
        for r in a b c d; do
                wait_for 20 test ! -e "root/$r/step=1-loss=0.5.ckpt" ||
                        fail "run $r: the pin is gone, its checkpoint stays: $(cat d.log)"
                assert_exists "root/$r/step=2-loss=0.5.ckpt"
        done
}

test_oneshot() {
        model oneshot "$ONESHOT_COUNT" "$ONESHOT_STEPS"
}

test_daemon() {
        model daemon "$DAEMON_COUNT" 12
}

# The same without pointer files: the daemon then brings the index of a run
# without pins, whose names carry the monitor, up to date name by name
# (index_update()), where the watch above reads the run whole at every
# decision.
test_daemon_incremental() {
        CKPTD_MODEL_INCREMENTAL=1 model daemon "$DAEMON_COUNT" 12
}

# The same with saves as a live trainer makes them (a number for the
# monitor, dated now, newer than every save before), held to the same
# reference. Where a run keeps the shape a long run has (its runs here are
# small and churn: in a few sequences only), the daemon decides a save from
# the run's last decision; a SANITIZE=1 build checks each such decision
# against the whole run's.
test_daemon_live() {
        CKPTD_MODEL_INCREMENTAL=1 CKPTD_MODEL_LIVE=1 model daemon "$DAEMON_COUNT" 24
}

run_tests
