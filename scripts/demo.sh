#!/usr/bin/env bash
# make demo: a simulated training run with ckptd watching it live.
#
# A trainer saves 20 epochs of seed-style checkpoints (epoch_NN-val_loss=X.ckpt),
# writing each in chunks and closing it, some through a temporary name and a
# rename, as real trainers do. ckptd keeps the 3 best by val_loss plus the
# newest and deletes the rest as each save completes. As root the run lives on
# a small tmpfs, and halfway through other data fills the disk: the free-space
# floor evicts kept checkpoints so that the next save still fits.
set -eu
: "${CKPTD:?}"
dir=$(mktemp -d /tmp/ckptd-demo.XXXXXX)
runs=$dir/runs
mkdir -p "$runs"
pid=
cleanup() {
        if [ -n "$pid" ]; then
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
        if mountpoint -q "$runs"; then umount "$runs"; fi
        rm -rf "$dir"
}
trap cleanup EXIT

chunk_kib=512 chunks=4 # 2 MiB a checkpoint
floor=()
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=24m ckptd-demo "$runs" 2>/dev/null; then
        echo "== $runs is a 24 MiB tmpfs; floor: room for two more checkpoints (headroom 2)"
        floor=(--headroom 2)
else
        echo "== $runs is a plain directory (run as root to see the free-space floor on a tmpfs)"
fi

flags=(-w "$runs" --pattern 'epoch_{epoch}-val_loss={val_loss}.ckpt' --monitor val_loss --mode min
        --keep-top-k 3 --keep-last 1 --settle 0.5 "${floor[@]}")
echo "== ckptd ${flags[*]}"
"$CKPTD" "${flags[@]}" 2> >(sed -u 's/^/   ckptd | /') &
pid=$!
sleep 0.5 # give the daemon a moment to print its start line; this is a demo, not a test

loss=2.0
for epoch in $(seq -w 1 20); do
        loss=$(awk -v l="$loss" -v e="$epoch" 'BEGIN { srand(e); printf "%.3f", l * (0.80 + rand() * 0.3) }')
        name="epoch_$epoch-val_loss=$loss.ckpt"
        if [ $((10#$epoch % 3)) = 0 ]; then
                target="$runs/.$name.tmp" # written under a temporary name, then renamed
        else
                target="$runs/$name"
        fi
        for _ in $(seq 1 $chunks); do
                head -c $((chunk_kib * 1024)) /dev/urandom >>"$target"
                sleep 0.1
        done
        [ "$target" = "$runs/$name" ] || mv "$target" "$runs/$name"
        echo "trainer: saved $name"
        if [ "$epoch" = 10 ] && [ ${#floor[@]} -gt 0 ]; then
                echo "trainer: other data grows by 12 MiB on the same disk"
                head -c $((12 * 1024 * 1024)) /dev/zero >"$runs/other-data.bin"
        fi
        sleep 0.6
done

sleep 1
echo
echo "== ckptd -l: what is left, and why"
"$CKPTD" -l "${flags[@]}"
df -h "$runs" | tail -n 1 | awk '{print "== disk: " $2 " size, " $4 " free"}'
