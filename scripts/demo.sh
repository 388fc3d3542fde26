#!/usr/bin/env bash
# make demo: a training run that fills its disk, first alone, then with ckptd.
#
# A trainer saves 16 epochs of 2 MiB checkpoints (epoch_NN-val_loss=X.ckpt),
# writing each in chunks, some through a temporary name and a rename, as real
# trainers do; after epoch 3 other data takes 12 MiB of the same disk. As
# root the run lives on a 24 MiB tmpfs: alone, the trainer dies with ENOSPC;
# with ckptd (keep the 3 best by val_loss and the newest, keep room for two
# more saves) it finishes. The demo ends with what ckptd freed and kept, in
# bytes, and a chart of free space over time. Not root: a plain directory,
# no disk to fill, the same policy.
set -eu
: "${CKPTD:?}"
dir=$(mktemp -d /tmp/ckptd-demo.XXXXXX)
runs=$dir/runs
mkdir -p "$runs"
pid='' tailpid=''
cleanup() {
        [ -z "$tailpid" ] || kill "$tailpid" 2>/dev/null || true
        if [ -n "$pid" ]; then
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
        if mountpoint -q "$runs"; then umount "$runs"; fi
        rm -rf "$dir"
}
trap cleanup EXIT

MiB=1048576
epochs=16 chunks=4 chunk=$((MiB / 2)) # 2 MiB a checkpoint
other_after=3 other=$((12 * MiB))
# The trainer's pace with ckptd: a pause after each chunk written and after
# each epoch, the time a real trainer spends computing.
chunk_pause=0.03 epoch_pause=0.2
# pause SECONDS: sleep without starting a process (a read that times out on
# a FIFO nobody writes to).
mkfifo "$dir/pause"
exec {pause_fd}<>"$dir/pause"
pause() { read -rt "$1" -u "$pause_fd" _ || true; }
disk=$((24 * MiB))
onfs=
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=$disk ckptd-demo "$runs" 2>/dev/null; then
        onfs=1
fi

free_bytes() {
        local a
        read -ra a < <(stat -f -c '%a %S' "$runs")
        echo $((a[0] * a[1]))
}

# The validation loss of each epoch, made up once (deterministic).
mapfile -t losses < <(awk -v n=$epochs 'BEGIN {
        l = 2.0
        for (e = 1; e <= n; e++) { srand(e); l = l * (0.80 + rand() * 0.3); printf "%.3f\n", l; l = sprintf("%.3f", l) + 0 }
}')

# train [SAMPLES]: run the trainer; 0 when every epoch was saved. With a
# file name, it records "milliseconds free_bytes written_bytes" after each
# chunk. Only stat and head are run per chunk, so that the pace is the
# trainer's and not that of starting processes on a loaded machine.
train() {
        local samples=${1:-} e epoch name target written=0 c a
        for ((e = 1; e <= epochs; e++)); do
                printf -v epoch %02d "$e"
                name="epoch_$epoch-val_loss=${losses[e - 1]}.ckpt"
                target="$runs/$name"
                [ $((e % 3)) != 0 ] || target="$runs/.$name.tmp" # renamed once written
                for ((c = 0; c < chunks; c++)); do
                        if ! head -c $chunk /dev/urandom 2>/dev/null >>"$target"; then
                                echo "trainer: epoch $epoch: cannot save $name: No space left on device"
                                echo "trainer: training crashed after $((e - 1)) of $epochs epochs"
                                return 1
                        fi
                        written=$((written + chunk))
                        if [ -n "$samples" ]; then
                                read -ra a < <(stat -f -c '%a %S' "$runs")
                                echo "$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000)) $((a[0] * a[1])) $written" >>"$samples"
                                pause "$chunk_pause"
                        fi
                done
                [ "$target" = "$runs/$name" ] || mv "$target" "$runs/$name"
                [ -z "$samples" ] || echo "trainer: saved $name"
                if [ "$e" = "$other_after" ] && [ -n "$onfs" ]; then
                        [ -z "$samples" ] || echo "trainer: other data takes $((other / MiB)) MiB of the same disk"
                        if ! head -c $other /dev/zero 2>/dev/null >"$runs/other-data.bin"; then
                                echo "trainer: epoch $epoch: No space left on device (other data)"
                                return 1
                        fi
                fi
                [ -z "$samples" ] || pause "$epoch_pause"
        done
}

t0=$EPOCHREALTIME
policy=(--pattern 'epoch_{epoch}-val_loss={val_loss}.ckpt' --monitor val_loss --mode min
        --keep-top-k 3 --keep-last 1)
if [ -n "$onfs" ]; then
        echo "== the run directory is a $((disk / MiB)) MiB tmpfs; $epochs checkpoints of 2 MiB, and $((other / MiB)) MiB of other data, will not fit"
        echo "== 1. without ckptd"
        if train; then
                echo "trainer: all $epochs epochs saved (the disk was larger than planned)"
        fi
        find "$runs" -mindepth 1 -delete
        policy+=(--headroom 2)
        echo
        echo "== 2. with ckptd: keep the 3 best by val_loss and the newest; keep room for two more saves (--headroom 2)"
else
        echo "== $runs is a plain directory (as root, the demo fills a small tmpfs)"
        echo "== with ckptd: keep the 3 best by val_loss and the newest"
fi

flags=(-w "$runs" "${policy[@]}" --settle 0.2)
echo "== ckptd ${flags[*]}"
: >"$dir/ckptd.log" # there before tail opens it
"$CKPTD" "${flags[@]}" 2>>"$dir/ckptd.log" {pause_fd}>&- &
pid=$!
tail -s 0.1 -n +1 -f "$dir/ckptd.log" | sed -u "s|$runs/||; s/^/   ckptd | /" &
tailpid=$!
# the daemon is ready once it says it is watching
for _ in $(seq 1 50); do grep -q watching "$dir/ckptd.log" && break; pause 0.1; done

t0=$EPOCHREALTIME
start_free=$(free_bytes)
ok=1
train "$dir/samples" || ok=
# the last save settles and ckptd decides on it: wait (at most 3 s) until
# nothing is unsettled and the policy has nothing left to delete
for _ in $(seq 1 30); do
        "$CKPTD" -l "${flags[@]}" 2>&1 | grep -qE '^  delete |incomplete' || break
        pause 0.1
done
kill "$tailpid" 2>/dev/null || true
wait "$tailpid" 2>/dev/null || true
tailpid=
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=

echo
echo "== ckptd -l: what is left, and why"
"$CKPTD" -l "${flags[@]}" 2>&1 | sed "s|$runs/||"

# Free space over time: one column per sample, highest at the top.
if [ -n "$onfs" ]; then
        echo
        echo "== free space on the $((disk / MiB)) MiB disk over the run (# free with ckptd; ! where the disk would be full without it)"
        awk -v rows=8 -v disk="$disk" -v start="$start_free" -v other="$other" -v MiB=$MiB '
        { t[n] = $1; free[n] = $2; wr[n] = $3; n++ }
        END {
                cols = n < 64 ? n : 64
                for (c = 0; c < cols; c++) {
                        i = int(c * n / cols); f[c] = free[i]
                        # without ckptd nothing is ever freed
                        lost = wr[i] + (wr[i] > 3 * 2 * MiB ? other : 0)
                        full[c] = start - lost <= 0
                }
                for (r = rows; r >= 1; r--) {
                        level = disk * (r - 0.5) / rows
                        line = sprintf("%5.1f MiB |", disk * r / rows / MiB)
                        for (c = 0; c < cols; c++) line = line (f[c] >= level ? "#" : " ")
                        print line
                }
                line = "          +"
                for (c = 0; c < cols; c++) line = line (full[c] ? "!" : "-")
                print line
                printf "           0 s%" (cols - 3) "s\n", sprintf("%.0f s", t[n - 1] / 1000)
        }' "$dir/samples"
fi

# What ckptd freed and kept, in bytes.
saved=$(awk -v c=$((chunks * chunk)) 'END { printf "%d", $3 / c }' "$dir/samples")
kept_n=0 kept=0
for f in "$runs"/epoch_*.ckpt; do
        [ -e "$f" ] || continue
        kept_n=$((kept_n + 1)) kept=$((kept + $(stat -c %s "$f")))
done
written=$((saved * chunks * chunk))
echo
if [ -n "$ok" ]; then
        echo "== trainer: all $epochs epochs saved: $written bytes of checkpoints${onfs:+ on a $disk-byte disk}"
else
        echo "== trainer: failed after $saved checkpoints even with ckptd"
fi
echo "== ckptd freed $((written - kept)) bytes ($((saved - kept_n)) checkpoints) and kept $kept bytes ($kept_n checkpoints)"
[ -z "$onfs" ] || echo "== free at the end: $(free_bytes) bytes"
[ -n "$ok" ]
