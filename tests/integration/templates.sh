#!/usr/bin/env bash
# Lightning's filename= templates pasted as patterns, on the names Lightning
# 2.2.5 really wrote (fixture lightning-monitor-auto-insert): with
# auto_insert_metric_name=True, with False, with -vN clash copies, and the
# same names in key=value mode (no pattern).
. "$(dirname "$0")/../lib.sh"

FIX=${FIXTURES:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/fixtures}/lightning-monitor-auto-insert
TEMPLATE='epoch_{epoch:02d}-val_loss={val_loss:.3f}'

old() { touch -h -d "-1 hour" "$@"; }

# The fixture's checkpoint directory, copied to ./ckpts and settled.
copy_fixture() {
        [ -f "$FIX/EXPECTED.json" ] || skip "fixture $FIX not found"
        mkdir ckpts
        cp "$FIX"/lightning_logs/version_0/checkpoints/* ckpts/
        old ckpts/*
}

# expected KEY: names from EXPECTED.json, one per line.
#   all: every checkpoint but last.ckpt; best3: the three best by the logged
#   val_loss (finite only); newest: the highest epoch's checkpoint.
expected() {
        $PY - "$FIX/EXPECTED.json" "$1" <<'EOP'
import json, sys
e = json.load(open(sys.argv[1]))
ck = [c for c in e["checkpoints"] if not c.get("is_last")]
if sys.argv[2] == "all":
    names = [c["name"] for c in ck]
elif sys.argv[2] == "best3":
    names = [c["name"] for c in e["best3_by_val_loss"]]
else:
    names = [max(ck, key=lambda c: c["epoch"])["name"]]
print("\n".join(names))
EOP
}

# The names ckptd must keep: the best three, the newest, and last.ckpt.
kept_names() {
        { expected best3; expected newest; echo last.ckpt; } | LC_ALL=C sort -u
}

# run_fixture ARGS...: ckptd -l then -1 -n then -1 on ./ckpts, asserting the
# kept set, that all 12 checkpoints are recognised and last.ckpt is not one.
run_fixture() {
        local n_all names
        n_all=$(expected all | wc -l)
        [ "$n_all" = 12 ] || fail "fixture holds $n_all checkpoints, expected 12"

        "$CKPTD" -l -w "$T/ckpts" --preset lightning --monitor val_loss --keep-top-k 3 "$@" >list 2>err
        assert_grep "(12 checkpoints)" list
        assert_no_grep "last.ckpt" list
        while read -r n; do
                grep -F -- "$n" list | grep -q "keep" || fail "$n not kept: $(cat list)"
        done < <(expected best3)
        grep -F -- "$(expected newest)" list | grep -q "keep" || fail "newest not kept: $(cat list)"
        # the fields come from the names: epoch 7 is nan, epoch 10 is 0.294
        grep -F -- "epoch_epoch=07-" list | grep -q "val_loss=nan" || fail "nan not read: $(cat list)"
        grep -F -- "epoch_epoch=10-" list | grep -q "epoch=10 val_loss=0.294" || fail "fields: $(cat list)"

        "$CKPTD" -1 -n -w "$T/ckpts" --preset lightning --monitor val_loss --keep-top-k 3 "$@" 2>err
        assert_grep "would delete 8 checkpoints" err
        mapfile -t names < <(expected all)
        assert_names ckpts "${names[@]}" last.ckpt

        "$CKPTD" -1 -w "$T/ckpts" --preset lightning --monitor val_loss --keep-top-k 3 "$@" 2>err
        mapfile -t names < <(kept_names)
        [ "${#names[@]}" = 5 ] || fail "kept set: ${names[*]}"
        assert_names ckpts "${names[@]}"
}

# auto_insert_metric_name=True (the default), the template as in the script.
test_fixture_pasted_template() {
        copy_fixture
        run_fixture --pattern "$TEMPLATE"
}

test_fixture_pasted_template_with_extension() {
        copy_fixture
        run_fixture --pattern "$TEMPLATE.ckpt"
}

# No pattern: key=value names read "val_loss=val_loss=0.294" as val_loss and
# "epoch_epoch=10" as epoch.
test_fixture_key_value_mode() {
        copy_fixture
        run_fixture
}

# auto_insert_metric_name=False: the same checkpoints named
# "epoch_10-val_loss=0.294.ckpt", the way Lightning writes them then.
test_no_auto_insert_names() {
        copy_fixture
        local f n
        for f in ckpts/epoch_epoch=*; do
                n=${f#ckpts/epoch_epoch=}
                mv "$f" "ckpts/epoch_${n/val_loss=val_loss=/val_loss=}"
        done
        old ckpts/*
        "$CKPTD" -l -w "$T/ckpts" --preset lightning --pattern "$TEMPLATE" --monitor val_loss --keep-top-k 3 >list 2>err
        assert_grep "(12 checkpoints)" list
        grep -F "epoch_07-val_loss=nan.ckpt" list | grep -q "val_loss=nan" || fail "nan: $(cat list)"
        "$CKPTD" -1 -w "$T/ckpts" --preset lightning --pattern "$TEMPLATE" --monitor val_loss --keep-top-k 3 2>err
        assert_names ckpts epoch_06-val_loss=0.325.ckpt epoch_08-val_loss=0.327.ckpt \
                epoch_10-val_loss=0.294.ckpt epoch_11-val_loss=0.335.ckpt last.ckpt
}

# A clash: Lightning saved epoch 10 again under the same name and wrote
# "-v1" (and last-v1.ckpt). The copy is a checkpoint of its own with the same
# fields, the newer of the two; on equal val_loss the older ranks first.
test_version_suffix_copy() {
        copy_fixture
        local orig=epoch_epoch=10-val_loss=val_loss=0.294
        cp "ckpts/$orig.ckpt" "ckpts/$orig-v1.ckpt"
        cp ckpts/last.ckpt ckpts/last-v1.ckpt
        touch -h -d "-30 min" "ckpts/$orig-v1.ckpt" ckpts/last-v1.ckpt
        for p in "$TEMPLATE" ""; do
                "$CKPTD" -l -w "$T/ckpts" --preset lightning ${p:+--pattern "$p"} --monitor val_loss \
                        --keep-top-k 3 >list 2>err
                assert_grep "(13 checkpoints)" list
                assert_no_grep "last.ckpt" list
                assert_no_grep "last-v1.ckpt" list
                grep -F -- "$orig-v1.ckpt" list | grep -q "keep .* epoch=10 val_loss=0.294 .* best#2$" ||
                        fail "-v1 copy: $(cat list)"
                grep -F -- "$orig.ckpt" list | grep -q "keep .* best#1$" || fail "original: $(cat list)"
        done
        "$CKPTD" -1 -w "$T/ckpts" --preset lightning --pattern "$TEMPLATE" --monitor val_loss --keep-top-k 3 2>err
        assert_names ckpts "$orig.ckpt" "$orig-v1.ckpt" epoch_epoch=06-val_loss=val_loss=0.325.ckpt \
                epoch_epoch=11-val_loss=val_loss=0.335.ckpt last.ckpt last-v1.ckpt
}

# Lightning's own example renames the copy of the newest:
# CHECKPOINT_NAME_LAST = "{epoch}-last" writes epoch=11-last.ckpt (and
# epoch=11-last-v1.ckpt on a clash). Like last.ckpt it is no checkpoint of
# its own: never ranked, never deleted, and the kept set is the fixture's.
test_custom_last_name_copy() {
        copy_fixture
        local newest
        newest=$(expected newest)
        cp "ckpts/$newest" ckpts/epoch=11-last.ckpt
        cp "ckpts/$newest" ckpts/epoch=10-last-v1.ckpt
        old ckpts/*
        "$CKPTD" -l -w "$T/ckpts" --preset lightning --monitor val_loss --keep-top-k 3 >list 2>err
        assert_grep "(12 checkpoints)" list
        assert_no_grep "last.ckpt\|last-v1.ckpt" list
        "$CKPTD" -1 -w "$T/ckpts" --preset lightning --monitor val_loss --keep-top-k 3 --keep-last 1 2>err
        # shellcheck disable=SC2046
        assert_names ckpts $(kept_names) epoch=10-last-v1.ckpt epoch=11-last.ckpt
}

# A metric name with '/' (self.log("val/acc", ...)): Lightning keeps the '/',
# so only auto_insert_metric_name=False gives entry names; the field is
# val/acc and the monitor names it so.
test_slash_metric_name() {
        mkdir ckpts
        local t='epoch={epoch}-step={step}-val_acc={val/acc:.2f}'
        for n in epoch=0-step=3-val_acc=0.45 epoch=1-step=6-val_acc=0.58 epoch=2-step=9-val_acc=0.64 \
                epoch=3-step=12-val_acc=nan epoch=4-step=15-val_acc=0.62 epoch=4-step=15-val_acc=0.62-v1; do
                mkfile "ckpts/$n.ckpt" 1
        done
        mkfile ckpts/last.ckpt 1
        old ckpts/*
        # the clash copy is written after the original
        touch -d "-30 min" ckpts/epoch=4-step=15-val_acc=0.62-v1.ckpt
        "$CKPTD" -l -w "$T/ckpts" --preset lightning --pattern "$t" --monitor val/acc --mode max \
                --keep-top-k 1 >list 2>err
        assert_grep "(6 checkpoints)" list
        grep -F "epoch=2-step=9-val_acc=0.64.ckpt" list | grep -q "keep .* val/acc=0.64 .* best#1$" ||
                fail "val/acc: $(cat list)"
        "$CKPTD" -1 -w "$T/ckpts" --preset lightning --pattern "$t" --monitor val/acc --mode max --keep-top-k 1 2>err
        assert_names ckpts epoch=2-step=9-val_acc=0.64.ckpt epoch=4-step=15-val_acc=0.62-v1.ckpt last.ckpt
}

run_tests
