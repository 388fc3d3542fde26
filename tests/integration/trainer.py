#!/usr/bin/python3
"""A simulated trainer for tests/integration/daemon.sh.

It saves one checkpoint per epoch into RUN the way real trainers do, and
checks ckptd's work as it goes:

  chunked  Lightning names, written in chunks: open, write, close, pause,
           then reopen (O_APPEND, no O_CREAT) for the next chunk
  rename   the same chunks into NAME.tmp, then rename(2) to NAME
  shards   a directory step-S-val_loss=X of 50 shard files written over
           about a second and a half, no marker
  hf       a Hugging Face checkpoint-S directory: 50 shards, then
           trainer_state.json (the complete_marker, with the metric) last
  torch    torch.save() of a small model's state_dict, Lightning names;
           even epochs straight into NAME, odd ones into NAME.tmp + rename

Checks, any failure exits 1 with a message on stderr:
  - while a checkpoint is written, everything the policy kept so far is still
    there, and the checkpoint itself is never removed under the writer
    (a reopen without O_CREAT, or a shard created in a removed directory,
    fails with ENOENT);
  - right after the last close (or rename) the checkpoint is there, whole
    (size and SHA-256; torch.load for torch), and the daemon's log does not
    name it yet: only then is it announced, "completed NAME" on stdout;
  - within --deadline seconds of that completion (default settle + 1) the run
    holds exactly what the policy says about the completed checkpoints:
    the --top-k lowest val_loss (ties: the older first) plus the
    --keep-last newest, plus the latest completed one (newest-written).
    Nothing else: no tombstone, no leftover.
The next epoch starts only once that state is reached; after the last one
the state must hold for settle + 0.5 s more.
"""

import argparse
import hashlib
import json
import os
import sys
import time

SHARDS = 50


def die(msg):
    print(f"trainer: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


class Trainer:
    def __init__(self, a):
        self.a = a
        self.run = a.run
        self.losses = [float(x) for x in a.losses.split(",")]
        self.completed = []  # (order, loss, name)
        self.deadline = a.deadline if a.deadline is not None else a.settle + 1.0
        self.waits = []
        self.torch = None
        self.model = None

    # --- what the policy keeps ---

    def expected(self):
        best = sorted(self.completed, key=lambda c: (c[1], c[0]))[: self.a.top_k]
        last = sorted(self.completed, key=lambda c: -c[0])[: self.a.keep_last]
        # newest-written: the run's latest completed checkpoint is kept too
        written = self.completed[-1:]
        return {c[2] for c in best + last + written}

    def entries(self):
        try:
            return set(os.listdir(self.run))
        except OSError as e:
            die(f"cannot list {self.run}: {e}")

    def check_kept(self, what):
        """Everything the policy keeps is still there (called mid-write)."""
        missing = self.expected() - self.entries()
        if missing:
            die(f"while writing {what}: kept checkpoint(s) {sorted(missing)} vanished")

    def logged(self, name):
        if not self.a.daemon_log:
            return False
        try:
            with open(self.a.daemon_log, errors="replace") as f:
                return f"{self.run}/{name} (" in f.read()
        except FileNotFoundError:
            return False

    def complete(self, epoch, name, t_done):
        """Announce, then wait for the policy's state."""
        if self.logged(name):
            die(f"the daemon log names {name} before it was complete")
        self.completed.append(((epoch + 1) * 100, self.losses[epoch], name))
        print(f"completed {name}", flush=True)
        want = self.expected()
        while True:
            got = self.entries()
            missing = want - got
            if missing:
                die(f"after {name}: kept checkpoint(s) {sorted(missing)} were deleted; run holds {sorted(got)}")
            elapsed = time.monotonic() - t_done
            if got == want:
                self.waits.append(elapsed)
                return
            if elapsed > self.deadline:
                die(
                    f"after {name}: {elapsed:.2f}s after completion the run holds\n  {sorted(got)}\n"
                    f"expected (top {self.a.top_k} + last {self.a.keep_last} + latest written):\n  {sorted(want)}"
                )
            time.sleep(0.02)

    def hold(self):
        """After the last epoch: the state stays put for settle + 0.5 s (a
        late, wrong deletion would otherwise go unseen)."""
        want = self.expected()
        end = time.monotonic() + self.a.settle + 0.5
        while time.monotonic() < end:
            got = self.entries()
            if got != want:
                die(f"after the last epoch the run changed to {sorted(got)}, expected {sorted(want)}")
            time.sleep(0.05)

    # --- writers ---

    def write_chunks(self, path, name, what):
        """Chunks with pauses; every chunk after the first reopens the file
        without O_CREAT, so a removal under the writer fails with ENOENT."""
        h = hashlib.sha256()
        size = 0
        for i in range(self.a.chunks):
            data = os.urandom(self.a.chunk_kib * 1024)
            flags = os.O_WRONLY | (os.O_CREAT | os.O_EXCL if i == 0 else os.O_APPEND)
            try:
                fd = os.open(path, flags, 0o644)
            except OSError as e:
                die(f"{what}: reopening for chunk {i}: {e} (removed while being written)")
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            h.update(data)
            size += len(data)
            if i + 1 < self.a.chunks:
                time.sleep(self.a.pause)
                self.check_kept(name)
        return size, h.hexdigest()

    def verify_file(self, path, size, digest):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            die(f"{path} right after it was written: {e}")
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            die(f"{path} right after it was written: {len(data)} bytes, expected {size}, or wrong hash")

    def epoch_file(self, e, rename):
        name = f"epoch={e}-step={(e + 1) * 100}-val_loss={self.losses[e]:.4f}.ckpt"
        final = os.path.join(self.run, name)
        target = final + ".tmp" if rename else final
        size, digest = self.write_chunks(target, name, name)
        if rename:
            os.rename(target, final)
        t_done = time.monotonic()
        self.verify_file(final, size, digest)
        return name, t_done

    def write_shards(self, d, name):
        digests = {}
        for i in range(SHARDS):
            shard = f"shard-{i:05d}-of-{SHARDS:05d}.bin"
            data = os.urandom(self.a.shard_kib * 1024)
            try:
                with open(os.path.join(d, shard), "xb") as f:
                    f.write(data)
            except OSError as e:
                die(f"{name}/{shard}: {e} (directory removed while being written)")
            digests[shard] = hashlib.sha256(data).hexdigest()
            time.sleep(self.a.shard_interval)
            if i % 10 == 9:
                self.check_kept(name)
        return digests

    def verify_shards(self, d, name, digests):
        for shard, digest in digests.items():
            try:
                with open(os.path.join(d, shard), "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() != digest:
                        die(f"{name}/{shard}: wrong content")
            except OSError as e:
                die(f"{name}/{shard} right after the checkpoint was written: {e}")

    def epoch_shards(self, e):
        name = f"step-{(e + 1) * 100}-val_loss={self.losses[e]:.4f}"
        d = os.path.join(self.run, name)
        os.mkdir(d)
        digests = self.write_shards(d, name)
        t_done = time.monotonic()
        self.verify_shards(d, name, digests)
        return name, t_done

    def epoch_hf(self, e):
        step = (e + 1) * 100
        name = f"checkpoint-{step}"
        d = os.path.join(self.run, name)
        os.mkdir(d)
        digests = self.write_shards(d, name)
        state = {
            "global_step": step,
            "epoch": float(e + 1),
            "best_model_checkpoint": None,
            "log_history": [
                {"epoch": float(i + 1), "step": (i + 1) * 100, "eval_loss": self.losses[i]} for i in range(e + 1)
            ],
        }
        # the marker goes last, as Trainer._save_checkpoint writes it
        with open(os.path.join(d, "trainer_state.json"), "w") as f:
            json.dump(state, f)
        t_done = time.monotonic()
        self.verify_shards(d, name, digests)
        return name, t_done

    def epoch_torch(self, e):
        torch = self.torch
        name = f"epoch={e}-step={(e + 1) * 100}-val_loss={self.losses[e]:.4f}.ckpt"
        final = os.path.join(self.run, name)
        with torch.no_grad():
            for p in self.model.parameters():
                p.add_(0.01 * (e + 1))
        state = {"epoch": e, "global_step": (e + 1) * 100, "state_dict": self.model.state_dict()}
        if e % 2 == 0:
            torch.save(state, final)
        else:
            torch.save(state, final + ".tmp")
            os.rename(final + ".tmp", final)
        t_done = time.monotonic()
        try:
            back = torch.load(final, weights_only=True)
        except Exception as ex:  # noqa: BLE001 -- any failure to load is the finding
            die(f"torch.load({name}) right after it was saved: {ex}")
        for k, v in state["state_dict"].items():
            if not torch.equal(back["state_dict"][k], v):
                die(f"{name}: {k} differs after reload")
        return name, t_done

    def train(self):
        if self.a.mode == "torch":
            import torch  # slow: only for this mode

            torch.manual_seed(0)
            self.torch = torch
            self.model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 8))
        for e in range(len(self.losses)):
            if self.a.mode == "chunked":
                name, t_done = self.epoch_file(e, rename=False)
            elif self.a.mode == "rename":
                name, t_done = self.epoch_file(e, rename=True)
            elif self.a.mode == "shards":
                name, t_done = self.epoch_shards(e)
            elif self.a.mode == "hf":
                name, t_done = self.epoch_hf(e)
            else:
                name, t_done = self.epoch_torch(e)
            self.complete(e, name, t_done)
        self.hold()
        waits = ", ".join(f"{w:.2f}" for w in self.waits)
        print(f"done: {len(self.losses)} epochs; policy state reached after [{waits}] s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", required=True, choices=["chunked", "rename", "shards", "hf", "torch"])
    ap.add_argument("--run", required=True, help="absolute path of the run directory")
    ap.add_argument("--losses", required=True, help="val_loss per epoch, comma-separated")
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--keep-last", type=int, default=1)
    ap.add_argument("--settle", type=float, required=True, help="the watch's settle, seconds")
    ap.add_argument("--deadline", type=float, help="seconds from completion to the policy's state")
    ap.add_argument("--daemon-log", help="ckptd's stderr, to check it never names a checkpoint early")
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--chunk-kib", type=int, default=64)
    ap.add_argument("--pause", type=float, default=0.15, help="seconds between chunks; keep well below settle")
    ap.add_argument("--shard-kib", type=int, default=4)
    ap.add_argument("--shard-interval", type=float, default=0.03)
    a = ap.parse_args()
    if not os.path.isabs(a.run):
        die("--run must be absolute (the daemon logs absolute paths)")
    Trainer(a).train()


if __name__ == "__main__":
    main()
