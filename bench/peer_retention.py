#!/usr/bin/python3
"""The peer baseline: what an ML engineer writes instead of ckptd.

Same policy as `ckptd --pattern T --monitor M --keep-top-k K --keep-last N`:
parse checkpoint names with a template such as
'epoch_{epoch}-val_loss={val_loss}.ckpt', and in every directory of the tree
(each one a run of its own) keep the K best by the monitored metric (min,
ties to the older, NaN last) plus the N newest by the order field, and
os.remove() the rest.

  peer_retention.py --once  ROOT ...   one sweep with os.scandir, then exit
  peer_retention.py --watch ROOT ...   sweep, then follow python3-watchdog's
                                       inotify observer: on_closed / on_moved
                                       of a checkpoint re-sweeps its directory

It logs "peer: deleted PATH" per deletion on stderr (as ckptd logs
"ckptd: deleted PATH"), and "peer: ready ..." once the first sweep is done.
It is written to be reasonably efficient: one scandir per directory (d_type,
no stat), a compiled regular expression, a sweep of one directory per event.
It does what a careful script does about files still being written (a name
created and not yet closed is left alone) and nothing more: no settle time,
no pins, no free-space floor, no safety checks beyond not following symlinks.
Debian's python3-watchdog imports only under /usr/bin/python3.
"""
import argparse
import math
import os
import re
import signal
import sys
import threading
import time

NUMBER = r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"


def compile_template(template):
    """'epoch_{epoch}-val_loss={val_loss}.ckpt' -> compiled regex with groups."""
    out = []
    for part in re.split(r"(\{[^}]*\}|\*)", template):
        if part == "*":
            out.append(".*")
        elif part.startswith("{") and part.endswith("}"):
            name = part[1:-1].split(":", 1)[0]
            out.append(f"(?P<{name}>{NUMBER})")
        elif part:
            out.append(re.escape(part))
    return re.compile("".join(out) + r"\Z", re.IGNORECASE)


class Policy:
    def __init__(self, args):
        self.rx = compile_template(args.pattern)
        groups = self.rx.groupindex
        self.monitor = args.monitor
        self.order = next((f for f in ("step", "epoch") if f in groups), None)
        self.top_k = args.keep_top_k
        self.last = args.keep_last
        self.sign = 1.0 if args.mode == "min" else -1.0
        self.dry_run = args.dry_run
        self.in_flight = set()  # created, not yet closed (live mode)
        self.lock = threading.Lock()
        self.deleted = 0

    def parse(self, name):
        if name.startswith(".") or name.endswith(".tmp"):
            return None
        m = self.rx.match(name)
        if not m:
            return None
        metric = float(m.group(self.monitor)) if self.monitor else math.nan
        order = float(m.group(self.order)) if self.order else 0.0
        return (order, metric)

    def victims(self, ckpts):
        """ckpts: list of (name, (order, metric)) -> names to delete."""
        keep = set()
        if self.top_k != 0 and self.monitor:
            # NaN ranks after every number; ties go to the older one
            ranked = sorted(
                ckpts,
                key=lambda c: (math.isnan(c[1][1]), self.sign * c[1][1], c[1][0]),
            )
            keep.update(c[0] for c in (ranked if self.top_k < 0 else ranked[: self.top_k]))
        if self.last > 0:
            keep.update(c[0] for c in sorted(ckpts, key=lambda c: c[1][0], reverse=True)[: self.last])
        return [c[0] for c in ckpts if c[0] not in keep]

    def apply(self, path, ckpts):
        for name in self.victims(ckpts):
            full = os.path.join(path, name)
            if full in self.in_flight:
                continue
            if self.dry_run:
                sys.stderr.write(f"peer: would delete {full}\n")
            else:
                try:
                    os.remove(full)
                except FileNotFoundError:
                    continue
                sys.stderr.write(f"peer: deleted {full}\n")
            self.deleted += 1

    def sweep_dir(self, path):
        """Live mode: one run directory."""
        ckpts = []
        try:
            with os.scandir(path) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        f = self.parse(e.name)
                        if f:
                            ckpts.append((e.name, f))
        except (FileNotFoundError, NotADirectoryError):
            return
        with self.lock:
            self.apply(path, ckpts)

    def sweep_tree(self, root):
        """One scandir per directory: its checkpoints and its subdirectories."""
        runs = 0
        stack = [root]
        while stack:
            path = stack.pop()
            ckpts = []
            try:
                with os.scandir(path) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            if not e.name.startswith("."):
                                stack.append(e.path)
                        elif e.is_file(follow_symlinks=False):
                            f = self.parse(e.name)
                            if f:
                                ckpts.append((e.name, f))
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            if ckpts:
                runs += 1
                with self.lock:
                    self.apply(path, ckpts)
        return runs


def watch(policy, roots):
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class Handler(FileSystemEventHandler):
        def on_created(self, ev):
            if not ev.is_directory:
                policy.in_flight.add(ev.src_path)

        def on_deleted(self, ev):
            policy.in_flight.discard(ev.src_path)

        def on_closed(self, ev):
            policy.in_flight.discard(ev.src_path)
            if policy.parse(os.path.basename(ev.src_path)):
                policy.sweep_dir(os.path.dirname(ev.src_path))

        def on_moved(self, ev):
            policy.in_flight.discard(ev.src_path)
            if not ev.is_directory and policy.parse(os.path.basename(ev.dest_path)):
                policy.sweep_dir(os.path.dirname(ev.dest_path))

    # Threads inherit the mask: TERM and INT wait for sigwait() below.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    t0 = time.monotonic()
    observer = Observer()
    handler = Handler()
    for root in roots:
        observer.schedule(handler, root, recursive=True)
    observer.start()  # watches first, then the sweep: nothing slips between
    runs = sum(policy.sweep_tree(root) for root in roots)
    print(f"peer: ready: {runs} runs swept, {policy.deleted} deleted in "
          f"{time.monotonic() - t0:.3f}s", file=sys.stderr, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    observer.stop()
    observer.join()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true")
    mode.add_argument("--watch", action="store_true")
    ap.add_argument("roots", nargs="+")
    ap.add_argument("--pattern", required=True)
    ap.add_argument("--monitor")
    ap.add_argument("--mode", choices=("min", "max"), default="min")
    ap.add_argument("--keep-top-k", type=int, default=3)
    ap.add_argument("--keep-last", type=int, default=1)
    ap.add_argument("-n", "--dry-run", action="store_true")
    args = ap.parse_args()
    policy = Policy(args)
    if args.watch:
        watch(policy, args.roots)
        return
    t0 = time.monotonic()
    runs = sum(policy.sweep_tree(root) for root in args.roots)
    print(f"peer: {runs} runs, {'would delete' if args.dry_run else 'deleted'} "
          f"{policy.deleted} in {time.monotonic() - t0:.3f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
