#!/usr/bin/python3
"""A trainer's checkpoint saves, for the free-space floor tests.

Saves one checkpoint per epoch the way Lightning's ModelCheckpoint with
save_top_k=-1 does: every epoch, key=value names
(epoch=E-step=S-val_loss=V.ckpt), written in place, fsynced. Between saves it
"trains" for --interval seconds. Before the save of each epoch in --grow-at,
other data on the same disk (--grow FILE) grows by --grow-bytes.

Prints "saved E" per save. A save that fails with ENOSPC prints
"ENOSPC epoch=E after N bytes" and exits 1: what the trainer would die of.
Other data that cannot grow exits 3; any other error exits 2.

With --chunk and --chunk-delay a save is written slowly, and before each
chunk it prints "chunk I/N present K NAME...": the K other checkpoints in
the directory at that moment.
"""
import argparse
import errno
import os
import sys
import time


def ckpt_name(epoch, loss):
    return f"epoch={epoch}-step={(epoch + 1) * 100}-val_loss={loss:.4f}.ckpt"


def others(directory, mine):
    return sorted(n for n in os.listdir(directory) if n.endswith(".ckpt") and n != mine)


class NoSpace(Exception):
    def __init__(self, written):
        super().__init__(written)
        self.written = written


def save(path, size, data, chunk, delay, tmp=False):
    """Write size bytes to path, fully, and fsync; NoSpace on ENOSPC. With
    tmp, write ".NAME.tmp" beside it and rename it to NAME once written."""
    final = path
    if tmp:
        path = os.path.join(os.path.dirname(final), "." + os.path.basename(final) + ".tmp")
    done = 0
    n_chunks = (size + chunk - 1) // chunk
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        for i in range(n_chunks):
            if delay:
                names = others(os.path.dirname(path), os.path.basename(path))
                print(f"chunk {i + 1}/{n_chunks} present {len(names)} {' '.join(names)}", flush=True)
            view = memoryview(data)[:min(chunk, size - done)]
            while view:  # a short write is no error: write the rest
                n = os.write(fd, view)
                done += n
                view = view[n:]
            if delay and i + 1 < n_chunks:
                time.sleep(delay)
        os.fsync(fd)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise NoSpace(done) from e
        raise
    finally:
        os.close(fd)
    if os.stat(path).st_size != size:
        raise OSError(errno.EIO, f"{path}: {os.stat(path).st_size} bytes, expected {size}")
    if tmp:
        os.rename(path, final)


def grow(path, nbytes):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.posix_fallocate(fd, os.fstat(fd).st_size, nbytes)
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--size", type=int, required=True, help="bytes per checkpoint")
    ap.add_argument("--losses", required=True, help="val_loss per epoch, comma-separated")
    ap.add_argument("--first-epoch", type=int, default=0)
    ap.add_argument("--interval", type=float, default=0.0, help="seconds of training between saves")
    ap.add_argument("--chunk", type=int, default=0, help="write in chunks of this many bytes")
    ap.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    ap.add_argument("--tmp", action="store_true", help="write under a temporary name, then rename")
    ap.add_argument("--grow", help="a file of other data on the same disk")
    ap.add_argument("--grow-at", default="", help="epochs before whose save it grows")
    ap.add_argument("--grow-bytes", type=int, default=0)
    a = ap.parse_args()

    losses = [float(x) for x in a.losses.split(",")]
    grow_at = {int(x) for x in a.grow_at.split(",") if x}
    chunk = a.chunk if a.chunk > 0 else a.size
    data = os.urandom(min(chunk, a.size))
    for i, loss in enumerate(losses):
        epoch = a.first_epoch + i
        if i > 0 and a.interval > 0:
            time.sleep(a.interval)  # the training epoch, not a synchronisation
        if epoch in grow_at and a.grow:
            try:
                grow(a.grow, a.grow_bytes)
            except OSError as e:
                print(f"cannot grow {a.grow} before epoch {epoch}: {e}", flush=True)
                return 3
        path = os.path.join(a.dir, ckpt_name(epoch, loss))
        try:
            save(path, a.size, data, chunk, a.chunk_delay, a.tmp)
        except NoSpace as e:
            print(f"ENOSPC epoch={epoch} after {e.written} bytes", flush=True)
            return 1
        except OSError as e:
            print(f"error at epoch {epoch}: {e}", flush=True)
            return 2
        print(f"saved {epoch}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
