#!/usr/bin/env bash
# make demo: a simulated training run of 20 epochs with seed-style names, and
# ckptd deciding what to keep: the list, a dry run, then the real sweep.
set -eu
: "${CKPTD:?}"
dir=$(mktemp -d /tmp/ckptd-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
runs=$dir/runs
mkdir -p "$runs"

echo "== a training run saves 20 checkpoints into $runs"
loss=2.0
for epoch in $(seq -w 1 20); do
        # a noisy, mostly falling validation loss
        loss=$(awk -v l="$loss" -v e="$epoch" 'BEGIN { srand(e); printf "%.3f", l * (0.82 + rand() * 0.3) }')
        head -c $((256 * 1024)) /dev/urandom >"$runs/epoch_$epoch-val_loss=$loss.ckpt"
done
touch -d "-1 minute" "$runs"/*
ls "$runs"

flags=(-w "$runs" --pattern 'epoch_{epoch}-val_loss={val_loss}.ckpt' --monitor val_loss
        --mode min --keep-top-k 3 --keep-last 1)
echo
echo "== ckptd -l: what it would keep, and why"
"$CKPTD" -l "${flags[@]}"
echo
echo "== ckptd -1 -n: a dry run"
"$CKPTD" -1 -n "${flags[@]}"
echo
echo "== ckptd -1: the real sweep"
"$CKPTD" -1 "${flags[@]}"
echo
echo "== what is left: the 3 best by val_loss and the newest"
ls "$runs"
