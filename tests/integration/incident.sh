#!/usr/bin/env bash
# The incident replayed on the tree Lightning 2.2.5 really wrote: 47
# epoch=N-step=M.ckpt (save_top_k=-1, default filename, no metric in the
# names), val_loss only in the loggers' metrics.csv (version_0) and event
# file (version_1). ckptd cuts it to the 3 best by val_loss + the newest.
. "$(dirname "$0")/../lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURES=${CKPTD_FIXTURES:-$HERE/../../../shared/fixtures}
INCIDENT=$FIXTURES/lightning-default-47
CK=lightning-default-47/lightning_logs/version_0/checkpoints
BEST=(epoch=45-step=138.ckpt epoch=39-step=120.ckpt epoch=31-step=96.ckpt)
NEWEST=epoch=46-step=141.ckpt

# A fresh copy of the fixture (cp -a keeps its old mtimes: all complete).
incident() {
        [ -d "$INCIDENT" ] || skip "fixture $INCIDENT not found (set CKPTD_FIXTURES)"
        cp -a "$INCIDENT" . || fail "cannot copy the fixture"
        # The fixture was installed in name order (epoch=9 last); Lightning
        # wrote them in epoch order, and that is what a run leaves behind.
        local f s now
        now=$(date +%s)
        for f in "$CK"/epoch=*.ckpt; do
                s=${f##*-step=}
                touch -h -d "@$((now - 7200 + ${s%.ckpt}))" "$f"
        done
}

# The 47 names but the given ones.
all_but() {
        local e keep
        for e in $(seq 0 46); do
                n="epoch=$e-step=$((3 * (e + 1))).ckpt"
                for keep in "$@"; do [ "$n" = "$keep" ] && continue 2; done
                echo "$n"
        done
}

lightning() { # extra args
        "$CKPTD" -1 "$@" -w "$T/$CK" --preset lightning --monitor val_loss --keep-top-k 3 --keep-last 1
}

test_incident_dry_run_then_apply() {
        incident
        lightning -n 2>err || fail "ckptd -1 -n failed: $(cat err)"
        assert_grep "would delete 43 checkpoints" err
        # told in bytes, as the incident is
        local would
        would=$(sed -n 's/^ckptd: would delete 43 checkpoints, would free \([0-9.]*[BKMGT]\); would keep 4 (.*)$/\1/p' err)
        [ -n "$would" ] || fail "no bytes it would free: $(tail -n 3 err)"
        local n
        for n in $(all_but "${BEST[@]}" "$NEWEST"); do
                grep -qF "would delete $T/$CK/$n " err || fail "$n not among the would-deletes: $(cat err)"
        done
        for n in "${BEST[@]}" "$NEWEST"; do
                ! grep -qF "/$n " err || fail "$n would be deleted: $(grep -F "/$n " err)"
        done
        [ "$(grep -c 'would delete /' err)" = 43 ] || fail "not 43 would-deletes: $(cat err)"
        [ "$(find "$CK" -name '*.ckpt' | wc -l)" = 47 ] || fail "-n deleted something"

        "$CKPTD" -l -w "$T/$CK" --preset lightning --monitor val_loss --keep-top-k 3 --keep-last 1 >list
        grep -F "epoch=45-step=138.ckpt" list | grep -q "val_loss=0.302953" || fail "no val_loss from the log: $(cat list)"

        lightning 2>err || fail "ckptd -1 failed: $(cat err)"
        assert_names "$CK" "${BEST[@]}" "$NEWEST"
        assert_grep "^ckptd: deleted 43 checkpoints, freed $would; kept 4 (" err
        # the logs themselves are never touched
        assert_exists lightning-default-47/lightning_logs/version_0/metrics.csv
        assert_exists lightning-default-47/lightning_logs/version_1/events.out.tfevents.1796171316.vm
}

# Only the event file, in the sibling version_1 (two loggers): a glob.
test_incident_tfevents_sibling() {
        incident
        rm lightning-default-47/lightning_logs/version_0/metrics.csv
        # without it the preset's ../ finds nothing: no metric, best keeps none
        cat >c.conf <<EOC
watch = ( { path = "$T/$CK"; preset = "lightning"; monitor = "val_loss";
            keep_top_k = 3; keep_last = 1;
            metric_log = "../../version_*/events.out.tfevents.*"; } );
EOC
        "$CKPTD" -t -c c.conf >/dev/null 2>err || fail "config rejected: $(cat err)"
        "$CKPTD" -1 -c c.conf 2>err || fail "ckptd -1 failed: $(cat err)"
        assert_names "$CK" "${BEST[@]}" "$NEWEST"
}

# A log that exists but cannot be read: nothing that depends on it goes.
test_incident_unreadable_log_keeps_all() {
        incident
        rm lightning-default-47/lightning_logs/version_0/metrics.csv
        mkdir lightning-default-47/lightning_logs/version_0/metrics.csv
        lightning 2>err || true
        [ "$(find "$CK" -name '*.ckpt' | wc -l)" = 47 ] || fail "deleted with an unreadable log: $(cat err)"
        assert_grep "metric log" err
}

# The run resumed into its version directory (a fixed CSVLogger version, as
# a requeued job has): CSVLogger removes metrics.csv and logs from epoch 40
# on. Epochs 0-39 lost their rows, not their value: they are kept, told as
# such, and the epochs the log holds are ranked among themselves.
test_incident_log_restarted_on_resume() {
        incident
        local csv=lightning-default-47/lightning_logs/version_0/metrics.csv e
        awk -F, 'NR == 1 || $1 >= 40' "$csv" >csv.new && mv csv.new "$csv"
        touch -d "-1 hour" "$csv"
        lightning 2>err || fail "ckptd -1 failed: $(cat err)"
        for e in $(seq 0 39); do
                assert_exists "$CK/epoch=$e-step=$((3 * (e + 1))).ckpt"
        done
        assert_grep "epoch=39-step=120.ckpt: cannot read its metric log (which begins after it: its rows were lost): No data available (ENODATA); keeping it" err
        assert_grep "epoch=31-step=96.ckpt: cannot read its metric log (which begins after it" err
        assert_exists "$CK/epoch=45-step=138.ckpt"
        assert_exists "$CK/$NEWEST"
        # of epochs 40-46, the 3 best of what was logged and the newest
        [ "$(find "$CK" -name '*.ckpt' | wc -l)" = 44 ] || fail "left: $(ls "$CK")"
}

# The event file damaged in the middle (the fixture's CRC mismatch at the
# record of epoch 23, the records after it intact), the only log: what it
# logged before the damage ranks, what lies past it is kept, and the error
# says the log is damaged, not that the value may still come.
test_incident_damaged_tfevents() {
        incident
        local v0=lightning-default-47/lightning_logs/version_0 e
        rm "$v0/metrics.csv" lightning-default-47/lightning_logs/version_1/events.out.tfevents.*
        cp "$FIXTURES/tfevents-truncated/crc-mismatch/events.out.tfevents.1796171316.vm" "$v0/"
        touch -d "-1 hour" "$v0"/events.out.tfevents.*
        lightning 2>err || fail "ckptd -1 failed: $(cat err)"
        for e in $(seq 23 46); do
                assert_exists "$CK/epoch=$e-step=$((3 * (e + 1))).ckpt"
                assert_grep "epoch=$e-step=$((3 * (e + 1))).ckpt: cannot read its metric log (damaged before it, never read past there): Bad message (EBADMSG); keeping it" err
        done
        assert_no_grep "not logged yet" err
        # of epochs 0-22, ranked by what was read, the best 3 stay
        [ "$(find "$CK" -name '*.ckpt' | wc -l)" = 27 ] || fail "left: $(ls "$CK")"
}

# The trainer is still writing: metrics.csv holds epochs 0-20 only (as
# CSVLogger leaves it between flushes). The best 3 of those are kept, and so
# is every later checkpoint: its val_loss is not logged yet.
test_incident_log_behind() {
        incident
        local csv=lightning-default-47/lightning_logs/version_0/metrics.csv
        awk -F, 'NR == 1 || $1 <= 20' "$csv" >csv.tmp && cat csv.tmp >"$csv"
        touch -d "-1 hour" "$csv"
        lightning 2>err || fail "ckptd -1 failed: $(cat err)"
        # epochs 0-20 by val_loss: 17 (0.41898), 20 (0.43147), 22 is past
        local best
        best=$(/usr/bin/python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
c = sorted((x for x in e["checkpoints"] if x["epoch"] <= 20), key=lambda x: x["val_loss_csv"])
print(" ".join(x["name"] for x in c[:3]))' "$INCIDENT/EXPECTED.json")
        local later
        later=$(for e in $(seq 21 46); do echo "epoch=$e-step=$((3 * (e + 1))).ckpt"; done)
        # shellcheck disable=SC2086
        assert_names "$CK" $best $later
}

run_tests
