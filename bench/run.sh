#!/usr/bin/env bash
# make bench: ckptd against the peer baseline (bench/peer_retention.py), both
# measured in this run, interleaved, on fresh copies of the same trees; the
# figures go to BENCHMARKS.md. About 6-10 minutes on 2 cores for a daemon near
# its targets, 3 of them the idle windows (B8); a slow daemon takes longer,
# though the one-shot repetitions (B5) and the one-run saves (B7) are capped.
#
#   CKPTD=build/ckptd bash bench/run.sh
#
# BENCH_DIR: make the trees there, on its filesystem (default: a fresh ext4,
# see below); named in the report, removed afterwards.
# BENCH_ARGS: extra arguments for bench/bench.py (e.g. --reps 3).
# BENCH_OUT: the report (default: BENCHMARKS.md beside the Makefile).
# KFLOOR: the contract's system calls alone (default build/kfloor; make
# bench builds it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
: "${CKPTD:?CKPTD must name the ckptd binary (make bench sets it)}"
out=${BENCH_OUT:-$top/BENCHMARKS.md}
py=/usr/bin/python3 # Debian's python3-watchdog imports only here

[ -x "$CKPTD" ] || { echo "bench: $CKPTD is not executable" >&2; exit 1; }
if ! "$py" -c 'import watchdog.observers' 2>/dev/null; then
        echo "bench: the peer needs python3-watchdog: apt-get install -y python3-watchdog" >&2
        exit 1
fi

# The trees go on a fresh ext4 (with its journal, as on a training box) in a
# RAM-backed image, so the disk of a shared VM adds no noise: as root, with
# losetup and mkfs.ext4, unless BENCH_DIR says where. (This VM's own root
# ext4 has no journal, and ext4 then scans for recently deleted inodes on
# every create, fs/ext4/ialloc.c: 10-17 s per 20k-file tree instead of 0.4 s.)
img='' mnt=''
cleanup() {
        [ -n "$mnt" ] && umount "$mnt" 2>/dev/null
        [ -n "$img" ] && rm -f "$img"
        rm -rf "$work"
}
if [ -n "${BENCH_DIR:-}" ]; then
        mkdir -p "$BENCH_DIR"
        work=$(mktemp -d "$BENCH_DIR/ckptd-bench.XXXXXX")
else
        work=$(mktemp -d "${TMPDIR:-/tmp}/ckptd-bench.XXXXXX")
        shm=/dev/shm
        [ "$(stat -f -c %T "$shm" 2>/dev/null)" = tmpfs ] || shm=${TMPDIR:-/tmp}
        if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then
                img=$shm/ckptd-bench.$$.img
                if truncate -s 2G "$img" && mkfs.ext4 -q -F -N 400000 "$img" && mount -o loop "$img" "$work"; then
                        mnt=$work
                        BENCH_FS="ext4 on a loop device, image in RAM ($shm)"
                else
                        echo "bench: cannot mount a loop ext4, using $work as it is" >&2
                        rm -f "$img"
                        img=
                fi
        fi
fi
trap cleanup EXIT
export BENCH_FS=${BENCH_FS:-$(stat -f -c %T "$work")}

echo "bench: $CKPTD against bench/peer_retention.py in $work" >&2
# shellcheck disable=SC2086 # BENCH_ARGS is a list of words
"$py" "$here/bench.py" --ckptd "$CKPTD" --kfloor "${KFLOOR:-$top/build/kfloor}" --work "$work" \
        --out "$work/results.json" ${BENCH_ARGS:-}
# the raw figures, to re-render the report: bench/report.py --results ...
mkdir -p "$top/build" && cp "$work/results.json" "$top/build/bench-results.json"
"$py" "$here/report.py" --results "$work/results.json" --ckptd "$CKPTD" --work "$work" \
        --command "make bench${BENCH_ARGS:+ BENCH_ARGS='$BENCH_ARGS'}" >"$out.tmp"
mv "$out.tmp" "$out"
echo "bench: wrote $out (raw figures: build/bench-results.json)" >&2
