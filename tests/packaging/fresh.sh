#!/usr/bin/env bash
# make fresh-test: the README's first commands on a bare Debian 12.
#
# Builds a minimal Debian 12 (bookworm) with debootstrap (--variant=minbase,
# plus make, which the user types), copies the source tree in (the files git
# tracks, as a fresh clone has them, with their working-tree contents), and
# runs, as root in a chroot and with nothing run before, each command of
# FRESH_CMDS in turn (default: "make demo" then "make check"). Each must
# exit 0; their output goes to $FRESH_DIR/log/N.log and the time each took
# is printed.
#
#   FRESH_DIR   where the base system is cached and the test root is made
#               (default /var/tmp/ckptd-fresh; the base is kept between
#               runs, the test root is thrown away)
#   MIRROR      Debian mirror for debootstrap and apt (default: the host's
#               first deb.debian.org-style URI, else http://deb.debian.org/debian)
#   FRESH_CMDS  commands, separated by ";" (each runs in the tree's top)
#
# Needs root, debootstrap and network access to the mirror. Takes minutes:
# not part of make check.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
FRESH_DIR=${FRESH_DIR:-/var/tmp/ckptd-fresh}
FRESH_CMDS=${FRESH_CMDS:-make demo; make check}

[ "$(id -u)" = 0 ] || { echo "fresh-test: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "fresh-test: needs debootstrap (bash scripts/deps.sh pkg)" >&2; exit 1; }

if [ -z "${MIRROR:-}" ]; then
        MIRROR=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p; s/^deb \(\[[^]]*\] \)\?\(http[^ ]*\) bookworm .*/\2/p' \
                /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
                grep -v security | head -n1)
        MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

base=$FRESH_DIR/base
if [ ! -e "$base/.ckptd-base-ok" ]; then
        echo "== debootstrap bookworm from $MIRROR into $base"
        rm -rf "$base"
        mkdir -p "$FRESH_DIR"
        t0=$(date +%s)
        debootstrap --variant=minbase --include=make bookworm "$base" "$MIRROR" >"$FRESH_DIR/debootstrap.log" 2>&1 ||
                { tail -n 20 "$FRESH_DIR/debootstrap.log"; exit 1; }
        touch "$base/.ckptd-base-ok"
        echo "   took $(($(date +%s) - t0)) s"
fi

run=$(mktemp -d "$FRESH_DIR/run.XXXXXX")
root=$run/root
mounts=()
cleanup() {
        local i
        for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
                umount -l "${mounts[i]}" 2>/dev/null || true
        done
        # never remove through a mount still there (the bound /dev, /sys)
        if grep -q " ${run}[/ ]" /proc/self/mountinfo; then
                echo "fresh-test: $run still has mounts; left in place" >&2
        else
                rm -rf "$run"
        fi
}
trap cleanup EXIT
mnt() { # mnt DIR ARGS...: mount and remember to unmount
        local d=$1
        shift
        mkdir -p "$d"
        mount "$@" "$d"
        mounts+=("$d")
}

# The base stays pristine: the test root is an overlay on it (a copy where
# overlayfs is missing).
mkdir -p "$run/upper" "$run/work" "$root"
if grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null; then
        mnt "$root" -t overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" ckptd-fresh
else
        cp -a "$base/." "$root/"
fi
mnt "$root/proc" -t proc proc
mnt "$root/sys" --rbind /sys
mnt "$root/dev" --rbind /dev
mnt "$root/run" -t tmpfs tmpfs
mnt "$root/tmp" -t tmpfs tmpfs
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
printf 'deb %s bookworm main\n' "$MIRROR" >"$root/etc/apt/sources.list"

# The tree as a clone has it, and the fixtures it expects at ../shared.
src=/src/ckptd
mkdir -p "$root$src"
(cd "$REPO" && git ls-files -z | tar --null -T - -cf -) | tar -C "$root$src" -xf -
if [ -d "$REPO/../shared" ]; then
        cp -aL "$REPO/../shared" "$root/src/shared"
fi

mkdir -p "$FRESH_DIR/log"
n=0 failed=0
IFS=';' read -ra cmds <<<"$FRESH_CMDS"
for c in "${cmds[@]}"; do
        c=$(echo "$c" | sed 's/^ *//; s/ *$//')
        [ -n "$c" ] || continue
        n=$((n + 1))
        log=$FRESH_DIR/log/$n.log
        echo "== [chroot bookworm] # $c"
        t0=$(date +%s)
        rc=0
        chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
                PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                bash -c "cd $src && $c" >"$log" 2>&1 || rc=$?
        echo "   exit $rc after $(($(date +%s) - t0)) s (log: $log); last lines:"
        tail -n 8 "$log" | sed 's/^/   | /'
        if [ "$rc" != 0 ]; then
                failed=1
                break
        fi
done
[ "$failed" = 0 ] && echo "fresh-test: all $n commands passed" || { echo "fresh-test: FAILED"; exit 1; }
