#!/usr/bin/python3
"""Other data on a checkpoint disk, for the free-space floor tests.

    floor_fill.py FILE FREE_BYTES

Grows (fallocate) or shrinks (ftruncate) FILE until the filesystem holding it
has FREE_BYTES free as statvfs counts it (f_bavail * f_frsize), within a few
blocks: ext4 spends a little on extent blocks. FREE_BYTES 0 fills the
filesystem completely: then even one more block cannot be written, which is
checked by writing one. Prints the free bytes it left.
"""
import errno
import os
import sys

SLACK_BLOCKS = 16


def avail(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_frsize


def try_grow(fd, nbytes):
    try:
        os.posix_fallocate(fd, os.fstat(fd).st_size, nbytes)
        return True
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        return False


def fill(fd, directory):
    """Take every block an unprivileged writer could get, and then some."""
    free, bs = avail(directory)
    step = max(free, bs)
    while step >= bs:
        if not try_grow(fd, step):
            step //= 2
            continue
        free, _ = avail(directory)
        step = min(step, max(free, bs))
    # statvfs may still show a block or two that a write cannot get; prove
    # that nothing more fits, as root, which ext4's root reserve would let in.
    probe = os.path.join(directory, ".floor_fill_probe")
    try:
        with open(probe, "wb") as f:
            f.write(b"x" * bs)
            f.flush()
            os.fsync(f.fileno())
        os.unlink(probe)
        return False
    except OSError as e:
        if os.path.exists(probe):
            os.unlink(probe)
        if e.errno != errno.ENOSPC:
            raise
        return True


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, target = sys.argv[1], int(sys.argv[2])
    directory = os.path.dirname(os.path.abspath(path))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if target == 0:
            if not fill(fd, directory):
                sys.exit(f"{directory}: could still write a block after filling")
        else:
            for _ in range(20):
                free, bs = avail(directory)
                size = os.fstat(fd).st_size
                if free > target + SLACK_BLOCKS * bs:
                    if not try_grow(fd, (free - target) // bs * bs):
                        sys.exit(f"{directory}: cannot grow {path} by {free - target} bytes")
                elif free < target:
                    if size == 0:
                        sys.exit(f"{directory}: only {free} bytes free, {target} wanted")
                    os.ftruncate(fd, max(0, size - (target - free + bs - 1) // bs * bs))
                else:
                    break
    finally:
        os.close(fd)
    print(avail(directory)[0])


if __name__ == "__main__":
    main()
