#!/usr/bin/python3
"""Model-based randomized test of ckptd's retention policy and floor.

Random sequences of what trainers and users do to a tree of runs (checkpoint
writes with metrics that tie, are NaN or missing; pins added and removed;
deletions and renames; run directories replaced; other policies; floor
pressure) are applied to a real
directory and to a model of it. After each step ckptd decides, and the
directory must equal the model: nothing the model keeps may be gone, nothing
it deletes may remain.

The reference policy below is written from the documentation (ckptd.conf(5)
POLICY, COMPLETENESS, FREE-SPACE FLOOR; ckptd(8)), not from lib/policy.c or
lib/floor.c. Where the pages leave a choice open, the reading taken is said
where it is made (look for "Reading:").

Two drivers:
  oneshot  each step mutates the tree, then runs `ckptd -1 -c CONF` and
           compares exactly, floor included (on a tmpfs given with --fs).
  daemon   a live ckptd (settle small, SIGHUP for every policy change,
           saves left open across a step); after each step it waits, with a
           deadline, for the directory to equal the model, and checks at
           every look that nothing the model keeps is gone. Its floor is
           held to invariants (see daemon_settle), not to one exact choice.

Each sequence has its own seed; a failure prints it and the command that
replays it (with --trace, which prints every step).

Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time

KIB = 1024
PAGE = 4096

# The runs of the tree and what gives each its order (DESIGN "order": step,
# else epoch, else mtime). "." is the watch root itself, also a run.
RUNS = {".": "step", "a": "step", "b": "epoch", "c": "mtime"}

# Metric texts: equal values written differently tie ("0.2", "0.20"), NaN and
# inf are in the names as Lightning writes them, None is "no metric".
METRICS = ["0.1", "0.2", "0.20", "0.25", "0.3", "0.5", "1", "1.0", "inf", "nan", None]

# Age classes, seconds before now: "fresh" is within settle when settle is
# 30 (one-shot), "recent" is within min_age when min_age is 600, "old" is
# neither. The margins are far wider than a sequence lasts.
AGES = {"fresh": 1, "recent": 120, "old": 7200}
SETTLE_ONESHOT = (0, 30)
MIN_AGES = (0, 600)

# Never checkpoints, never touched (ckptd.conf(5) PATTERNS, the lightning
# preset): temporary names, dot files, names without a field, last*.ckpt.
MISC_NAMES = ["notes.txt", "step=77-loss=0.1.ckpt.tmp", ".hidden.ckpt", "best.ckpt",
              "last.ckpt", "last-v2.ckpt", "tmp-checkpoint-12", "events.out"]
LINK_NAMES = ["last.ckpt", "best", "link-1", "epoch=99-step=99999-loss=0.0.ckpt"]
POINTER = "latest"
# Symlinks with an absolute target that points at a checkpoint of the run:
# A symlink with an absolute target pins its target as a relative one does
# (ckptd(8)). On; CKPTD_MODEL_ABS_LINKS=0 leaves them out.
ABS_LINKS = os.environ.get("CKPTD_MODEL_ABS_LINKS") != "0"
# Two rules of the design contract: the most recently completed checkpoint
# of a run is kept ("newest-written"; a tie of mtimes singles out none), and
# a run where a monitor is set but no complete checkpoint carries it is not
# pruned by policy. On; CKPTD_MODEL_DESIGN=0 leaves them out.
DESIGN_RULES = os.environ.get("CKPTD_MODEL_DESIGN") != "0"
# A daemon restarted while a save is still open for writing, its mtime old
# (Lightning 2.0-2.3 write the final name in one long write()): ckptd asks
# the kernel whether another process has it open before deleting (a lease)
# and keeps it. On; CKPTD_MODEL_OPEN_AT_START=0 leaves it out.
OPEN_AT_START = os.environ.get("CKPTD_MODEL_OPEN_AT_START") != "0"
# A pointer file "latest" pins what it names: on. The daemon reads a run
# of a watch with pointer files whole at every decision (what the pointer
# says may change with any entry); CKPTD_MODEL_INCREMENTAL=1 leaves them
# out, so that it brings the index of a run without pins, and whose names
# carry the monitor, up to date name by name (index_update() in
# daemon/index.c). model.sh runs both.
INCREMENTAL = os.environ.get("CKPTD_MODEL_INCREMENTAL") == "1"
# CKPTD_MODEL_LIVE=1: most saves as a live trainer makes them, a number for
# the monitor and dated now, each newer than the last: the daemon may decide
# those from the run's last decision (policy_decide_appended()).
LIVE = os.environ.get("CKPTD_MODEL_LIVE") == "1"
# CKPTD_MODEL_RESTARTS=W: the weight of a daemon restart among the steps
# (0.5; 6 restarts twelve times as often, for a soak). A seed replays the
# same sequence only with the same weight.
RESTARTS = float(os.environ.get("CKPTD_MODEL_RESTARTS", "0.5"))
LIVE_METRICS = [m for m in METRICS if m not in ("nan", None)]
POINTERS = not INCREMENTAL


class Failure(Exception):
    pass


# What the sequences exercised, printed at the end: a model test that never
# evicts proves nothing about the floor.
STATS = {}


def count(what, n=1):
    STATS[what] = STATS.get(what, 0) + n


def fnum(text):
    """The value of a metric text; None for no metric."""
    return None if text is None else float(text)


class Ckpt:
    __slots__ = ("run", "name", "order", "metric", "mtime", "size", "writing")

    def __init__(self, run, name, order, metric, mtime, size):
        self.run, self.name, self.order, self.metric = run, name, order, metric
        self.mtime, self.size = mtime, size
        self.writing = None  # the open file while a trainer still writes it (daemon)

    def __repr__(self):
        return "%s/%s" % (self.run, self.name)


def ckpt_name(source, order, metric_text, ident):
    m = "" if metric_text is None else "-loss=%s" % metric_text
    if source == "step":
        # Some carry an epoch as well: step decides the order.
        return ("epoch=%d-" % (order % 7) if ident % 2 else "") + "step=%d%s.ckpt" % (order, m)
    if source == "epoch":
        return "epoch=%d%s.ckpt" % (order, m)
    # mtime order: a field that is neither step nor epoch keeps it a checkpoint
    return ("loss=%s-" % metric_text if metric_text is not None else "") + "id=%d.ckpt" % ident


class Policy:
    def __init__(self, monitor, mode, top_k, last, every, min_age, settle, min_free, target_free):
        self.monitor, self.mode, self.top_k, self.last = monitor, mode, top_k, last
        self.every, self.min_age, self.settle = every, min_age, settle
        self.min_free, self.target_free = min_free, target_free

    def keeps_nothing(self):
        """ckptd.conf(5): a policy that can keep nothing is an error."""
        if self.top_k == 0 and self.last == 0 and self.every == 0:
            return True
        return not self.monitor and self.last == 0 and self.every == 0

    def __repr__(self):
        return ("monitor=%s mode=%s top_k=%d last=%d every=%d min_age=%d settle=%g min_free=%d target_free=%s" %
                (self.monitor, self.mode, self.top_k, self.last, self.every, self.min_age, self.settle,
                 self.min_free, self.target_free))

    def config(self, root, settle=None, check_interval=30):
        w = ['path = "%s"' % root, 'preset = "lightning"', 'mode = "%s"' % self.mode,
             "keep_top_k = %d" % self.top_k, "keep_last = %d" % self.last, "keep_every = %d" % self.every,
             "min_age = %d" % self.min_age, "settle = %s" % (self.settle if settle is None else settle)]
        if POINTERS:
            w.append('pointer_files = [ "%s" ]' % POINTER)
        if self.monitor:
            w.append('monitor = "%s"' % self.monitor)
        if self.min_free:
            w.append('min_free = "%d"' % self.min_free)
        if self.target_free is not None:
            w.append('target_free = "%d"' % self.target_free)
        return ("log_level = \"info\";\ncheck_interval = %d;\nmax_delete_per_sweep = 100000;\n"
                "watch = ( { %s; } );\n" % (check_interval, "; ".join(w)))


def random_policy(rng, settles):
    while True:
        p = Policy(monitor=rng.choice(["loss", "loss", None]), mode=rng.choice(["min", "max"]),
                   top_k=rng.choice([-1, 0, 1, 1, 2, 3]), last=rng.choice([0, 1, 1, 2, 3]),
                   every=rng.choice([0, 0, 0, 2, 3, 5]), min_age=rng.choice(MIN_AGES + (0, 0) if LIVE else MIN_AGES),
                   settle=rng.choice(settles), min_free=0, target_free=None)
        if not p.keeps_nothing():
            return p


# ---------------------------------------------------------------- the model


class Model:
    """The tree as the model knows it, and the reference policy."""

    def __init__(self, root):
        self.root = root
        self.ckpts = {}  # (run, name) -> Ckpt
        self.other = {}  # relative path -> "f" (file) or "l" (symlink): never touched
        self.links = {}  # (run, link name) -> target text
        self.pointers = {}  # run -> content
        self.pointer_mtimes = {}  # run -> the pointer file's mtime

    def path(self, run, name):
        return os.path.normpath(os.path.join(self.root, run, name))

    def expected(self):
        """Every relative path the tree should hold, with its type."""
        want = {}
        for run in RUNS:
            if run != ".":
                want[run] = "d"
        for (run, name) in self.ckpts:
            want[os.path.normpath(os.path.join(run, name))] = "f"
        for rel, kind in self.other.items():
            want[rel] = kind
        for (run, name) in self.links:
            want[os.path.normpath(os.path.join(run, name))] = "l"
        for run in self.pointers:
            want[os.path.normpath(os.path.join(run, POINTER))] = "f"
        return want

    # --- pins (ckptd.conf(5) POLICY "pinned")

    def pinned(self, c):
        run_dir = os.path.join(self.root, c.run)
        if os.path.normpath(os.path.join(c.run, c.name + ".keep")) in self.other:
            return "keep"
        for (run, _link), target in self.links.items():
            if run != c.run:
                continue
            # "a symlink in the run points to it": relative targets from the run
            dest = target if os.path.isabs(target) else os.path.join(run_dir, target)
            if os.path.normpath(dest) == os.path.normpath(os.path.join(run_dir, c.name)):
                return "symlink"
        return "pointer" if self.pointer_names(c) else None

    def pointer_names(self, c):
        content = self.pointers.get(c.run)
        if content is None:
            return False
        # Reading: the content without surrounding white space is the
        # name, or the order value written as a number.
        text = content.strip()
        if text == c.name:
            return True
        if RUNS[c.run] != "mtime":
            try:
                return float(text) == c.order
            except ValueError:
                pass
        return False

    def pointer_under_way(self, run, cks):
        """ckptd.conf(5) pointer_files: a trainer writes its pointer after
        the save it names, so the run's newest checkpoint, ordered past
        everything the pointer names and written since it was, is a save
        under way: incomplete. Not in a run ordered by mtime, and not where
        the pointer names nothing in the run."""
        if run not in self.pointers or RUNS[run] == "mtime" or not cks:
            return None
        named = [c.order for c in cks if self.pointer_names(c)]
        newest = max(cks, key=lambda c: c.order)
        if not named or self.pointer_names(newest) or newest.order <= max(named) or \
                newest.mtime <= self.pointer_mtimes[run]:
            return None
        return newest

    def pointer_torn(self, run, cks, pol, now):
        """ckptd(8): a pointer naming no checkpoint of the run, modified
        within settle (and not more than a minute ahead), may be a part of
        a name its writer closed between two writes: the run is kept whole
        (unreadable). Quiet for settle, a name of none says nothing."""
        if run not in self.pointers or not cks or pol.settle <= 0:
            return False
        if not now - pol.settle <= self.pointer_mtimes[run] <= now + 60:
            return False
        return not any(self.pointer_names(c) for c in cks)

    # --- the reference policy, one run at a time

    def decide_run(self, run, pol, now):
        """{ckpt: set of keep reasons} for the run's checkpoints; empty set = delete."""
        cks = [c for c in self.ckpts.values() if c.run == run]
        why = {c: set() for c in cks}
        complete = []
        under_way = self.pointer_under_way(run, cks)
        for c in cks:
            # COMPLETENESS: at start (one-shot) what exists is complete
            # unless it changed within the last settle seconds.
            if c.writing or now - c.mtime < pol.settle or c is under_way:
                why[c].add("incomplete")
            else:
                complete.append(c)
        rank = self.ranks(complete, pol)
        for c, r in rank.items():
            if pol.top_k < 0 or r <= pol.top_k:
                why[c].add("best#%d" % r)
        newest = sorted(complete, key=lambda c: c.order, reverse=True)
        for c in newest[:pol.last]:
            why[c].add("last")
        for c in complete:
            if pol.every and RUNS[run] != "mtime" and c.order % pol.every == 0:
                why[c].add("every")
            p = self.pinned(c)
            if p:
                why[c].add("pinned(%s)" % p)
            if now - c.mtime < pol.min_age:
                why[c].add("young")
        if DESIGN_RULES and complete:
            # by mtime, among the complete: a save still open for writing
            # with an old mtime (a restart mid-write) is found by its check
            # before anything it would displace is deleted
            seen = complete
            top = max(c.mtime for c in seen)
            newest_written = [c for c in seen if c.mtime == top]
            if len(newest_written) == 1:
                why[newest_written[0]].add("newest-written")
            if pol.monitor and all(c.metric is None for c in complete):
                for c in complete:
                    why[c].add("no-monitor-in-run")
        if self.pointer_torn(run, cks, pol, now):
            for c in cks:
                why[c].add("unreadable")
        return why, rank

    @staticmethod
    def ranks(complete, pol):
        """Best rank (1 = best) of the complete checkpoints with a numeric metric.

        Reading: "a checkpoint whose metric is missing or NaN ranks after
        every number" is taken to mean it has no place among the best at all
        (keep_top_k, -1 included, keeps only numbers; the floor treats it as
        worse than any ranked one). Ties: the older (lower order) first."""
        if not pol.monitor:
            return {}
        ranked = [c for c in complete if c.metric is not None and not math.isnan(c.metric)]
        sign = 1 if pol.mode == "min" else -1
        ranked.sort(key=lambda c: (sign * c.metric, c.order))
        return {c: i + 1 for i, c in enumerate(ranked)}

    def decide(self, pol, now):
        verdict = {}
        ranks = {}
        for run in RUNS:
            why, rank = self.decide_run(run, pol, now)
            verdict.update(why)
            ranks.update(rank)
        return verdict, ranks

    @staticmethod
    def floor_newest(complete):
        """The newest of a run for the floor: by order, and the last one
        written when that is another (a tie of mtimes singles out none)."""
        newest = [max(complete, key=lambda c: c.order)] if complete else []
        if DESIGN_RULES and complete:
            top = max(c.mtime for c in complete)
            written = [c for c in complete if c.mtime == top]
            if len(written) == 1:
                newest.append(written[0])
        return newest

    def floor_protected(self, pol, now):
        """The checkpoints the floor may never evict, now: incomplete,
        pinned, the best and the newest complete one of each run."""
        prot = set()
        for run in RUNS:
            why, rank = self.decide_run(run, pol, now)
            complete = [c for c in why if "incomplete" not in why[c]]
            newest = self.floor_newest(complete)
            for c in why:
                if any(c is n for n in newest) or rank.get(c) == 1 or "incomplete" in why[c] or \
                        "unreadable" in why[c] or self.pinned(c):
                    prot.add((c.run, c.name))
        return prot

    def floor_victims(self, pol, now, free):
        """The floor's evictions over what the policy kept, in order, and
        whether the floor is met afterwards (FREE-SPACE FLOOR)."""
        floor = pol.min_free
        target = max(floor, pol.target_free or 0)
        if free >= floor:
            return [], True  # nothing to do, and not unmet
        cands = []
        writing = 0
        for run in RUNS:
            # The floor ranks what is there now: the policy's deletions are gone.
            why, rank = self.decide_run(run, pol, now)
            # a run kept whole (unreadable): the floor never evicts from it
            complete = [c for c in why if "incomplete" not in why[c] and "unreadable" not in why[c]]
            writing += sum(c.size for c in why if "incomplete" in why[c])
            newest = self.floor_newest(complete)
            for c in complete:
                if any(c is n for n in newest) or rank.get(c) == 1 or self.pinned(c):
                    continue
                cands.append((c, rank.get(c)))

        # Worst first: the highest best-rank first, a checkpoint with no rank
        # (no metric, NaN, no monitor) counting as worse than any; then the
        # older. Reading: "older" across runs compares order values.
        def worst(item):
            c, r = item
            return (0 if r is None else 1, -(r or 0), c.order)

        cands.sort(key=worst)
        victims = []
        for c, _r in cands:
            if free >= target:
                break
            victims.append(c)
            free += c.size
        # Reading (not in the pages; space.c says why): the bytes of a save
        # still being written count as room when judging "unmet", since the
        # floor was kept for that save. Evictions aim at the real free space.
        return victims, free + writing >= floor


def blocks(path):
    return os.lstat(path).st_blocks * 512


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def scan_tree(root):
    got = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                got[rel] = "l"
            elif os.path.isdir(p):
                got[rel] = "d"
            else:
                got[rel] = "f"
    return got


# ---------------------------------------------------------------- sequences


def inotify_watched(pid):
    """The inodes pid's inotify fds watch (proc(5), /proc/PID/fdinfo:
    "inotify wd:N ino:HEX ...")."""
    inos = set()
    fdinfo = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                for line in f:
                    if line.startswith("inotify "):
                        inos.update(int(w[4:], 16) for w in line.split() if w.startswith("ino:"))
        except OSError:
            pass  # closed meanwhile
    return inos


class Sequence:
    def __init__(self, args, seed, driver):
        self.args, self.seed, self.driver = args, seed, driver
        self.rng = random.Random(seed)
        self.base = args.dir
        self.root = os.path.join(self.base, "w")
        self.ballast = os.path.join(self.base, "ballast")
        self.model = Model(self.root)
        self.next_order = self.rng.randrange(1, 20)
        self.next_id = 1
        self.last_now = 0.0  # the mtime of the last save dated now
        self.step_no = 0
        self.log = []
        self.restart = False
        self.daemon = None  # the daemon driver's Daemon
        settles = SETTLE_ONESHOT if driver == "oneshot" else (0,)
        self.settles = settles
        self.policy = random_policy(self.rng, settles)

    def trace(self, msg):
        self.log.append("step %d: %s" % (self.step_no, msg))
        if self.args.trace:
            print("  step %d: %s" % (self.step_no, msg), flush=True)

    # --- setting up

    def setup(self):
        for p in (self.root, self.ballast):
            if os.path.lexists(p):
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
        os.mkdir(self.root)
        for run in RUNS:
            if run != ".":
                os.mkdir(os.path.join(self.root, run))

    # --- writing files the way trainers do

    def put_file(self, rel, data, mtime=None, atomic=False):
        path = os.path.join(self.root, rel)
        if atomic:
            # daemon: written under a temporary name, dated, then renamed
            # into place (IN_MOVED_TO), as trainers that save atomically do
            tmp = os.path.join(os.path.dirname(path), ".tmp-model-" + os.path.basename(path))
            with open(tmp, "wb") as f:
                f.write(data)
            if mtime is not None:
                os.utime(tmp, (mtime, mtime))
            os.rename(tmp, path)
        else:
            with open(path, "wb") as f:
                f.write(data)
            if mtime is not None:
                os.utime(path, (mtime, mtime))

    def new_order(self):
        self.next_order += self.rng.randrange(1, 4)
        return self.next_order

    def new_ckpt(self, run, metric_text=None, mtime=None, size=None):
        source = RUNS[run]
        ident = self.next_id
        self.next_id += 1
        if source == "mtime":
            # Unique mtimes: the order is the mtime.
            order = mtime
        else:
            order = self.new_order()
        name = ckpt_name(source, order, metric_text, ident)
        return Ckpt(run, name, order, fnum(metric_text), mtime, size)

    def mtime_for(self, cls):
        if cls == "now":
            # written now, after every save before it
            self.last_now = max(time.time(), self.last_now + 0.002)
            return self.last_now
        # distinct sub-second parts so that mtime order never ties: 10 us
        # apart at least from every other checkpoint's, also one written a
        # step earlier (the file system keeps nanoseconds, ckptd reads them
        # back as seconds in a double, 0.24 us apart at today's times)
        while True:
            self.next_id += 1
            t = time.time() - AGES[cls] - self.next_id * 0.001 - self.rng.random() * 0.0005
            if all(c.mtime is None or abs(t - c.mtime) >= 1e-5 for c in self.model.ckpts.values()):
                return t

    def do_write(self):
        run = self.rng.choice(list(RUNS))
        for _ in range(self.rng.choice([1, 1, 2, 3])):
            metric = self.rng.choice(LIVE_METRICS if LIVE else METRICS)
            cls = self.rng.choice(["now"] * 6 + ["old", "fresh"] if LIVE else ["old", "old", "recent", "fresh"])
            size = self.rng.choice([1, 1, 2, 4]) * PAGE
            mtime = self.mtime_for(cls)
            c = self.new_ckpt(run, metric, mtime, size)
            if RUNS[run] == "mtime":
                c.order = mtime
            self.put_file(os.path.join(run, c.name), os.urandom(size), mtime, atomic=self.driver == "daemon")
            self.model.ckpts[(run, c.name)] = c
            self.trace("write %s (%s, %d KiB)" % (c, cls, size // KIB))

    def pick_ckpt(self):
        keys = sorted(k for k, c in self.model.ckpts.items() if not c.writing)
        if not keys:
            return None
        return self.model.ckpts[self.rng.choice(keys)]

    def do_pin(self):
        c = self.pick_ckpt()
        run = c.run if c else self.rng.choice(list(RUNS))
        name = c.name if c else "step=1-loss=0.1.ckpt"
        if self.rng.random() < 0.15:
            name = "step=%d-loss=0.1.ckpt" % self.new_order()  # a pin of nothing
        kind = self.rng.choice(["keep", "link"] + (["pointer"] if POINTERS else []))
        if kind == "keep":
            rel = os.path.normpath(os.path.join(run, name + ".keep"))
            self.put_file(rel, b"", atomic=self.driver == "daemon")
            self.model.other[rel] = "f"
            self.trace("pin %s/%s with .keep" % (run, name))
        elif kind == "link":
            link = self.rng.choice(LINK_NAMES)
            form = self.rng.choice(["rel", "rel", "dot"] + (["abs"] if ABS_LINKS else []))
            target = {"rel": name, "dot": "./" + name,
                      "abs": os.path.join(self.root, run, name)}[form]
            path = os.path.join(self.root, run, link)
            if self.driver == "daemon":
                tmp = os.path.join(self.root, run, ".tmp-model-link")
                os.symlink(target, tmp)
                os.rename(tmp, path)
            else:
                if os.path.lexists(path):
                    os.unlink(path)
                os.symlink(target, path)
            self.model.other.pop(os.path.normpath(os.path.join(run, link)), None)  # replaced
            self.model.links[(run, link)] = target
            self.trace("pin %s/%s with symlink %s -> %s" % (run, name, link, target))
        else:
            if c and RUNS[run] != "mtime" and name == c.name and self.rng.random() < 0.5:
                content = "%d" % c.order
            else:
                content = name
            content += self.rng.choice(["", "\n"])
            self.put_file(os.path.join(run, POINTER), content.encode(), atomic=True)
            self.model.pointers[run] = content
            self.model.pointer_mtimes[run] = os.stat(self.model.path(run, POINTER)).st_mtime
            self.trace("pointer %s/%s := %r" % (run, POINTER, content))

    def do_unpin(self):
        pins = [("keep", r) for r, k in self.model.other.items() if r.endswith(".keep")]
        pins += [("link", k) for k in self.model.links]
        pins += [("pointer", r) for r in self.model.pointers]
        if not pins:
            return
        kind, key = self.rng.choice(sorted(pins, key=str))
        if kind == "keep":
            os.unlink(os.path.join(self.root, key))
            del self.model.other[key]
        elif kind == "link":
            os.unlink(os.path.join(self.root, key[0], key[1]))
            del self.model.links[key]
        else:
            os.unlink(os.path.join(self.root, key, POINTER))
            del self.model.pointers[key]
        self.trace("unpin %s %s" % (kind, key))

    def do_user_delete(self):
        c = self.pick_ckpt()
        if not c:
            return
        try:
            os.unlink(self.model.path(c.run, c.name))
        except FileNotFoundError:
            # the daemon's floor took it since the last look: not checked
            if self.driver != "daemon" or not self.args.fs:
                raise
            self.trace("%s was evicted meanwhile" % c)
        del self.model.ckpts[(c.run, c.name)]
        self.trace("user deletes %s" % c)

    def do_user_rename(self):
        c = self.pick_ckpt()
        if not c:
            return
        old = self.model.path(c.run, c.name)
        del self.model.ckpts[(c.run, c.name)]
        if self.rng.random() < 0.2:
            # out of the pattern: an ordinary file from now on
            rel = os.path.normpath(os.path.join(c.run, c.name + ".bak"))
            try:
                os.rename(old, os.path.join(self.root, rel))
            except FileNotFoundError:
                if self.driver != "daemon" or not self.args.fs:
                    raise
                self.trace("%s was evicted meanwhile" % c)
                return
            self.model.other[rel] = "f"
            self.trace("user renames %s out of the pattern" % c)
            return
        text = None if c.metric is None else self.metric_text_of(c)
        n = self.new_ckpt(c.run, text, c.mtime, c.size)
        if RUNS[c.run] == "mtime":
            n.order = c.order
        try:
            os.rename(old, self.model.path(n.run, n.name))
        except FileNotFoundError:
            if self.driver != "daemon" or not self.args.fs:
                raise
            self.trace("%s was evicted meanwhile" % c)
            return
        self.model.ckpts[(n.run, n.name)] = n
        self.trace("user renames %s to %s" % (c, n.name))

    @staticmethod
    def metric_text_of(c):
        for part in c.name[:-len(".ckpt")].split("-"):
            if part.startswith("loss="):
                return part[len("loss="):]
        return None

    def do_misc(self):
        run = self.rng.choice(list(RUNS))
        name = self.rng.choice(MISC_NAMES)
        rel = os.path.normpath(os.path.join(run, name))
        if rel in self.model.other or any(os.path.normpath(os.path.join(r, n)) == rel for r, n in self.model.links):
            return
        self.put_file(rel, os.urandom(self.rng.choice([0, 100, PAGE])), time.time() - 7200,
                      atomic=self.driver == "daemon")
        self.model.other[rel] = "f"
        self.trace("misc file %s" % rel)

    def do_policy(self):
        old = self.policy
        self.policy = random_policy(self.rng, self.settles)
        self.policy.min_free, self.policy.target_free = old.min_free, old.target_free
        self.trace("policy %s" % self.policy)

    def do_floor(self):
        if not self.args.fs:
            return
        p = self.policy
        if self.rng.random() < 0.3:
            p.min_free, p.target_free = 0, None
            self.trace("floor off")
            return
        free = free_bytes(self.root)
        p.min_free = max(PAGE, free + self.rng.randrange(-4, 24) * PAGE)
        p.target_free = p.min_free + self.rng.randrange(0, 8) * PAGE if self.rng.random() < 0.3 else None
        self.trace("floor min_free=%d target_free=%s (free now %d)" % (p.min_free, p.target_free, free))

    def do_slow_write(self):
        """daemon: a save written in place under its final name and still
        open at the end of the step (incomplete: never deleted, no place
        among best or last); the next step finishes it."""
        if self.driver != "daemon":
            return
        run = self.rng.choice(list(RUNS))
        metric = self.rng.choice(METRICS)
        c = self.new_ckpt(run, metric, time.time(), PAGE)
        f = open(self.model.path(run, c.name), "wb")
        f.write(os.urandom(PAGE // 2))
        f.flush()
        c.writing = f
        c.mtime = os.fstat(f.fileno()).st_mtime
        if RUNS[run] == "mtime":
            c.order = c.mtime
        self.model.ckpts[(run, c.name)] = c
        self.trace("start writing %s" % c)

    def do_abandon(self):
        """daemon: a save begun under its final name and given up (written,
        closed and removed within the step): nothing to keep, but its run
        is decided again with no new checkpoint."""
        if self.driver != "daemon":
            return
        run = self.rng.choice(list(RUNS))
        c = self.new_ckpt(run, self.rng.choice(LIVE_METRICS), time.time(), PAGE)
        path = self.model.path(run, c.name)
        with open(path, "wb") as f:
            f.write(os.urandom(PAGE))
        os.unlink(path)
        count("saves given up")
        self.trace("abandon %s" % c.name)

    def finish_writes(self):
        for c in self.model.ckpts.values():
            if c.writing:
                c.writing.write(os.urandom(PAGE // 2))
                c.writing.close()
                c.writing = None
                c.mtime = os.stat(self.model.path(c.run, c.name)).st_mtime
                if RUNS[c.run] == "mtime":
                    c.order = c.mtime
                self.trace("finish writing %s" % c)

    def do_restart(self):
        """daemon: stopped and started again (start-up scan), maybe while a
        save is still being written: it is in use and must stay."""
        if self.driver != "daemon":
            return
        if OPEN_AT_START and self.rng.random() < 0.6:
            # a save in progress whose mtime says "old" (Lightning 2.0-2.3
            # write in one long write(), mtime stays at its start): the
            # start-up scan takes it for complete, and only the in-use check
            # keeps it
            self.do_slow_write()
            c = [c for c in self.model.ckpts.values() if c.writing][-1]
            c.mtime = time.time() - AGES["old"]
            os.utime(c.writing.fileno(), (c.mtime, c.mtime))
            if RUNS[c.run] == "mtime":
                c.order = c.mtime
        self.restart = True
        self.trace("restart ckptd")

    def do_replace_run(self):
        """daemon: a run's directory replaced under its name: moved away, an
        empty directory made in its place, and the run renamed back over
        it (rename(2) replaces an empty directory). The files are the same,
        the directory another: it must be watched as the first was."""
        if self.driver != "daemon":
            return
        run = self.rng.choice([r for r in RUNS if r != "."])
        path = os.path.join(self.root, run)
        away = os.path.join(self.base, "replaced")
        os.rename(path, away)
        os.mkdir(path)
        # once the daemon watches the empty one, which is then replaced
        ino = os.stat(path).st_ino
        self.daemon.wait(lambda: ino in inotify_watched(self.daemon.proc.pid),
                         "the new directory %s was never watched" % run)
        os.rename(away, path)
        # and the run, in the directory it is in now
        ino = os.stat(path).st_ino
        self.daemon.wait(lambda: ino in inotify_watched(self.daemon.proc.pid),
                         "run %s is not watched in the directory renamed over the empty one" % run)
        count("run directories replaced")
        self.trace("replace run directory %s" % run)

    def mutate(self):
        actions = [(self.do_write, 14 if LIVE else 6), (self.do_pin, 0.5 if LIVE else 2), (self.do_unpin, 1.5), (self.do_user_delete, 1),
                   (self.do_user_rename, 1), (self.do_misc, 1), (self.do_policy, 1.5),
                   (self.do_floor, 1.5 if self.args.fs else 0),
                   (self.do_slow_write, 1 if self.driver == "daemon" else 0),
                   (self.do_abandon, 1 if self.driver == "daemon" else 0),
                   (self.do_restart, RESTARTS if self.driver == "daemon" else 0),
                   (self.do_replace_run, 0.5 if self.driver == "daemon" else 0)]
        fn = self.rng.choices([a for a, _ in actions], weights=[w for _, w in actions])[0]
        fn()

    # --- checking

    def diff(self, want, got):
        missing = sorted(k for k in want if k not in got or got[k] != want[k])
        extra = sorted(k for k in got if k not in want)
        return missing, extra

    def explain(self, verdict, ranks):
        lines = ["  policy: %s" % self.policy]
        for c in sorted(verdict, key=lambda c: (c.run, c.order)):
            lines.append("    %-45s order=%-14s metric=%-5s age=%6.0fs size=%d: %s" % (
                str(c), c.order, c.metric, time.time() - c.mtime, c.size,
                ",".join(sorted(verdict[c])) or "delete"))
        return "\n".join(lines)

    def fail(self, what, detail):
        raise Failure("%s\n%s" % (what, detail))


# ---------------------------------------------------------------- one-shot


def sanitizer_report(text):
    """An ASan/UBSan build reports here (UBSan goes on after a report, so
    the exit status alone would not tell)."""
    return "runtime error" in text or "Sanitizer" in text


def run_ckptd(args, argv, timeout=60):
    r = subprocess.run([args.ckptd] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, text=True, errors="replace")
    if sanitizer_report(r.stderr):
        raise Failure("sanitizer report from ckptd %s\n%s" % (" ".join(argv), r.stderr))
    return r


def oneshot_step(seq):
    args, model, pol = seq.args, seq.model, seq.policy
    conf = os.path.join(seq.base, "ckptd.conf")
    bad = seq.rng.random() < 0.03
    with open(conf, "w") as f:
        if bad:
            # a policy that can keep nothing: an error, and nothing is touched
            if seq.rng.random() < 0.5:
                f.write(Policy(pol.monitor, pol.mode, 0, 0, 0, 0, 0, 0, None).config(seq.root))
            else:
                f.write(Policy(None, pol.mode, 3, 0, 0, 0, 0, 0, None).config(seq.root))
        else:
            f.write(pol.config(seq.root))
    dry = not bad and seq.rng.random() < 0.05
    before = scan_tree(seq.root)
    if args.trace:
        r = run_ckptd(args, ["-l", "-c", conf])
        print(r.stdout, r.stderr, flush=True)
    now = time.time()
    verdict, ranks = model.decide(pol, now)
    # the policy's deletions free their blocks before the floor looks
    free = free_bytes(seq.root) if args.fs else 0
    deleted = [c for c, why in verdict.items() if not why]
    if not bad:  # a dry run counts them as freed too
        for c in deleted:
            free += blocks(model.path(c.run, c.name))
    r = run_ckptd(args, ["-1"] + (["-n"] if dry else []) + ["-c", conf, "--log-target", "stderr"])
    after = time.time()
    # the margins make this impossible unless the machine stalled for long
    for c in model.ckpts.values():
        for thr in (pol.settle, pol.min_age):
            if thr and now - c.mtime < thr <= after - c.mtime + 1:
                seq.trace("%s crossed an age threshold during ckptd: step not judged" % c)
                return
    got = scan_tree(seq.root)
    for c in deleted:
        del model.ckpts[(c.run, c.name)]
    victims, met = model.floor_victims(pol, now, free) if args.fs else ([], True)
    if bad or dry:
        for c in deleted:
            model.ckpts[(c.run, c.name)] = c
        # a dry run decides as a real one would, so it exits 3 as that would
        if r.returncode != (1 if bad else 0 if met else 3):
            seq.fail("ckptd -1 %s exited %d" % ("with a bad config" if bad else "-n", r.returncode), r.stderr)
        missing, extra = seq.diff(before, got)
        if missing or extra:
            seq.fail("ckptd -1 %s changed the tree: gone %s, new %s" % ("bad config" if bad else "-n",
                                                                        missing, extra), r.stderr)
        seq.trace("%s: nothing changed" % ("bad config" if bad else "dry run"))
        return
    for c in victims:
        del model.ckpts[(c.run, c.name)]
    want = model.expected()
    missing, extra = seq.diff(want, got)
    want_rc = 0 if met else 3
    seq.trace("ckptd -1: deleted %s; evicted %s; rc %d" % (deleted, victims, r.returncode))
    count("ckptd -1 runs")
    count("policy deletions", len(deleted))
    count("floor evictions", len(victims))
    count("floor unmet", 0 if met else 1)
    count("kept for a pin", sum(1 for why in verdict.values() if any(w.startswith("pinned") for w in why)))
    count("kept only as incomplete", sum(1 for why in verdict.values() if why == {"incomplete"}))
    count("kept only as young", sum(1 for why in verdict.values() if why == {"young"}))
    count("kept only by every", sum(1 for why in verdict.values() if why == {"every"}))
    if missing or extra or r.returncode != want_rc:
        for c in deleted + victims:
            verdict.setdefault(c, set()).add("EVICT" if c in victims else "")
        seq.fail("after ckptd -1 (rc %d, model %d): gone but kept by the model: %s; "
                 "present but deleted by the model: %s" % (r.returncode, want_rc, missing, extra),
                 "%s\n  floor: free before %d\n  ckptd stderr:\n%s" % (
                     seq.explain(verdict, ranks), free, r.stderr))


def run_oneshot(seq):
    seq.setup()
    if seq.args.fs:
        # Some ballast beside the root so that floors cost something.
        with open(seq.ballast, "wb") as f:
            f.write(b"\1" * (seq.rng.randrange(0, 32) * PAGE))
    for _ in range(seq.args.steps):
        seq.step_no += 1
        for _ in range(seq.rng.choice([1, 1, 2])):
            seq.mutate()
        oneshot_step(seq)


# ---------------------------------------------------------------- daemon

DAEMON_SETTLE = 0.2  # seconds; the model judges the state after it
DEADLINE = 20  # seconds for ckptd to reach the model's state on a loaded machine


class Daemon:
    def __init__(self, seq):
        self.seq = seq
        self.conf = os.path.join(seq.base, "ckptd.conf")
        self.logpath = os.path.join(seq.base, "ckptd.log")
        self.proc = None
        self.reloads = 0
        self.before = ""  # the logs of the daemons before this one (restarts)

    def write_conf(self):
        with open(self.conf + ".new", "w") as f:
            f.write(self.seq.policy.config(self.seq.root, settle=DAEMON_SETTLE, check_interval=1))
        os.rename(self.conf + ".new", self.conf)

    def this_log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def log(self):
        """Every daemon's, restarts included: a removal the daemon before a
        restart made is found gone after it."""
        return self.before + self.this_log()

    def start(self):
        if self.proc:
            self.before += self.this_log()
        self.reloads = 0
        self.write_conf()
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen([self.seq.args.ckptd, "-c", self.conf, "--log-target", "stderr"],
                                     stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        self.wait(lambda: "ckptd: watching " in self.this_log(), "ckptd did not start")

    def wait(self, cond, what, deadline=DEADLINE):
        end = time.monotonic() + deadline
        while not cond():
            self.alive()
            if time.monotonic() > end:
                self.seq.fail(what, "  ckptd log:\n" + self.log()[-6000:])
            time.sleep(0.05)

    def alive(self):
        if self.proc.poll() is not None:
            self.seq.fail("ckptd exited %d" % self.proc.returncode, "  ckptd log:\n" + self.log()[-6000:])

    def reload(self):
        self.write_conf()
        self.reloads += 1
        self.proc.send_signal(signal.SIGHUP)
        self.wait(lambda: self.this_log().count("ckptd: reloaded") >= self.reloads, "no reload after SIGHUP")

    def stop(self, quiet=False):
        """SIGTERM: ckptd must exit 0 and have no sanitizer report (unless
        quiet: a failure is already on its way)."""
        if quiet:
            try:
                self.proc.kill()
                self.proc.wait()
            except (AttributeError, ProcessLookupError):
                pass
            return
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = "a timeout"
            if rc != 0:
                raise Failure("ckptd exited %s on SIGTERM\n%s" % (rc, self.log()[-4000:]))
            if sanitizer_report(self.log()):
                raise Failure("sanitizer report from the daemon\n%s" % self.log()[-8000:])
        if self.proc:
            self.logf.close()


def daemon_settle(seq, d, pre_protected, pre_min_free=0, tally=True):
    """Waits until the tree equals the model; at every look, nothing the
    model keeps may be gone.

    With a floor, the daemon's evictions depend on when its checks ran
    (while a save was being written, after it, every check_interval), so
    the floor is held to invariants instead of one exact choice: what was
    protected both before and after the step (pinned, best, newest,
    incomplete) is never evicted; whatever goes is logged as evicted (or
    deleted by the policy of a state in between); the policy is judged
    again over what is left; and once quiet, free space is at the floor
    unless nothing evictable is left."""
    model, pol = seq.model, seq.policy
    # without a floor before or after the step, nothing may be evicted
    fs = seq.args.fs and (pre_min_free or pol.min_free)
    end = time.monotonic() + DEADLINE
    looks = 0
    start = dict(model.ckpts)
    gone = []  # what went that the model kept
    policy_ok = set()  # what the policy deleted in some state of this step
    while True:
        now = time.time()
        verdict, ranks = model.decide(pol, now)
        before = dict(model.ckpts)
        deleted = [c for c, why in verdict.items() if not why]
        for c in deleted:
            del model.ckpts[(c.run, c.name)]
            policy_ok.add((c.run, c.name))
        both = pre_protected & model.floor_protected(pol, now)
        want = model.expected()
        by_rel = {os.path.normpath(os.path.join(c.run, c.name)): c for c in model.ckpts.values()}
        got = scan_tree(seq.root)
        looks += 1
        missing, extra = seq.diff(want, got)
        # With a floor, what goes may have been evicted (if the floor could
        # take it) or deleted by the policy of a state the floor made (the
        # log tells which, checked below).
        def may_go(m):
            if not fs or m not in by_rel:
                return False
            key = (by_rel[m].run, by_rel[m].name)
            return key not in both or key in policy_ok

        vanished = [by_rel[m] for m in missing if may_go(m)]
        missing = [m for m in missing if not may_go(m)]
        if vanished:
            # the floor took them: judge the policy and the floor again
            # without them before the rest that went. The floor evicts one
            # at a time, and each eviction changes what the policy keeps:
            # with the one evicted gone, an older one may come into
            # keep_last and, the best of the run, take that protection from
            # the one protected before, which the next eviction may then
            # take (the contract's best and newest are of the state the
            # floor is in).
            model.ckpts = before
            for c in vanished:
                del model.ckpts[(c.run, c.name)]
            gone += vanished
            continue
        if missing:
            seq.fail("gone but kept by the model%s: %s (look %d)" % (
                " and protected from the floor before and after the step" if fs else "", missing, looks),
                     "%s\n  ckptd log:\n%s" % (seq.explain(verdict, ranks), d.log()[-6000:]))
        if not extra and fs and pol.min_free:
            # the floor is quiet once free space is at the floor (evictions
            # go on to the target in the same pass) or nothing evictable is
            # left
            prot = model.floor_protected(pol, now)
            left = [c for c in model.ckpts.values() if (c.run, c.name) not in prot]
            if free_bytes(seq.root) < pol.min_free and left:
                extra = ["(floor: %d free, floor %d, %d evictable)" % (free_bytes(seq.root), pol.min_free, len(left))]
        if not extra:
            break
        d.alive()
        if time.monotonic() > end:
            seq.fail("not deleted within %d s though the model deletes them: %s" % (DEADLINE, extra),
                     "%s\n  ckptd log:\n%s" % (seq.explain(verdict, ranks), d.log()[-6000:]))
        model.ckpts = before
        time.sleep(0.05)

    def said(c):
        """The lines that say c was removed: by the floor, by the policy."""
        path = model.path(c.run, c.name)
        return ("ckptd: evicted %s (floor" % path, "ckptd: deleted %s (policy" % path)

    # Judged again in the order the daemon removed them, each eviction
    # against the state the floor took it from: the order the model found
    # them gone in above can accept two evictions the floor could only take
    # the other way round.
    removed = [c for k, c in start.items() if k not in model.ckpts]
    for c in removed:
        d.wait(lambda: any(line in d.log() for line in said(c)), "%s is gone, but ckptd did not say it removed it" % c)
    log = d.log()
    evicted = 0
    kept = model.ckpts
    model.ckpts = dict(start)
    for c in sorted(removed, key=lambda c: max(log.rfind(line) for line in said(c))):
        floor, policy = (log.rfind(line) for line in said(c))
        if floor > policy:
            evicted += 1
            if (c.run, c.name) in pre_protected & model.floor_protected(pol, time.time()):
                seq.fail("%s evicted, though protected from the floor before the step and when the floor took it" % c,
                         "  ckptd log:\n" + log[-6000:])
        elif (c.run, c.name) not in policy_ok:
            seq.fail("%s deleted by the policy, which kept it in every state of the step" % c,
                     "  ckptd log:\n" + log[-6000:])
        del model.ckpts[(c.run, c.name)]
    model.ckpts = kept
    seq.trace("ckptd deleted %s, and %s went (%d looks)" % (deleted, gone, looks))
    if tally:
        count("daemon steps")
        count("kept while being written", sum(1 for c in model.ckpts.values() if c.writing))
    count("policy deletions", len(removed) - evicted)
    count("floor evictions", evicted)
    count("kept for a pin", sum(1 for why in verdict.values() if any(w.startswith("pinned") for w in why)))


def run_daemon(seq):
    seq.setup()
    d = Daemon(seq)
    seq.daemon = d
    try:
        d.start()
        daemon_settle(seq, d, set())
        for _ in range(seq.args.steps):
            seq.step_no += 1
            old = repr(seq.policy)
            pre_min_free = seq.policy.min_free
            # a look first: what went since the last step must have been allowed to
            pre = seq.model.floor_protected(seq.policy, time.time())
            daemon_settle(seq, d, pre, pre_min_free, tally=False)
            pre = seq.model.floor_protected(seq.policy, time.time())
            seq.finish_writes()
            seq.mutate()
            if seq.restart:
                seq.restart = False
                d.stop()
                d.start()
                count("daemon restarts")
                count("restarts with a save open", any(c.writing for c in seq.model.ckpts.values()))
            elif repr(seq.policy) != old:
                d.reload()
            daemon_settle(seq, d, pre, pre_min_free)
        seq.step_no += 1
        pre = seq.model.floor_protected(seq.policy, time.time())
        seq.finish_writes()
        daemon_settle(seq, d, pre, seq.policy.min_free)
        # quiescence: nothing more happens once it is reached
        time.sleep(2 * DAEMON_SETTLE + 1.5)
        seq.step_no += 1
        daemon_settle(seq, d, seq.model.floor_protected(seq.policy, time.time()), seq.policy.min_free)
    except BaseException:
        d.stop(quiet=True)
        raise
    finally:
        for c in seq.model.ckpts.values():
            if c.writing:
                c.writing.close()
    d.stop()


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driver", choices=["oneshot", "daemon"], default="oneshot")
    ap.add_argument("--dir", required=True, help="scratch directory (a tmpfs for floor tests)")
    ap.add_argument("--fs", action="store_true", help="--dir is a tmpfs of its own: test the floor")
    ap.add_argument("--seed", type=int, help="the first sequence's seed (default: random)")
    ap.add_argument("--count", type=int, default=100, help="sequences")
    ap.add_argument("--steps", type=int, default=12, help="steps per sequence")
    ap.add_argument("--trace", action="store_true", help="print every step")
    ap.add_argument("--repro", default="", help="the command that replays a seed, printed on failure")
    args = ap.parse_args()
    if not args.repro:
        knobs = "".join("%s=%s " % (k, os.environ[k])
                        for k in ("CKPTD_MODEL_ABS_LINKS", "CKPTD_MODEL_DESIGN", "CKPTD_MODEL_OPEN_AT_START",
                                  "CKPTD_MODEL_INCREMENTAL", "CKPTD_MODEL_LIVE")
                        if k in os.environ)
        args.repro = knobs + "CKPTD=%s %s %s --driver %s --dir %s%s --seed {seed} --count 1 --steps %d --trace" % (
            os.environ.get("CKPTD", "build/ckptd"), sys.executable, sys.argv[0], args.driver, args.dir,
            " --fs" if args.fs else "", args.steps)
    args.ckptd = os.environ.get("CKPTD")
    if not args.ckptd:
        sys.exit("CKPTD must name the ckptd binary")
    base = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    print("model: %s driver, %d sequences of %d steps from seed %d%s" % (
        args.driver, args.count, args.steps, base, ", floor on tmpfs" if args.fs else ""), flush=True)
    t0 = time.monotonic()
    steps = 0
    for i in range(args.count):
        seed = base + i
        seq = Sequence(args, seed, args.driver)
        try:
            if args.driver == "oneshot":
                run_oneshot(seq)
            else:
                run_daemon(seq)
        except Failure as e:
            # the seed and the command last: a runner may show only the tail
            what, _, detail = str(e).partition("\n")
            print("model: steps of seed %d:\n  %s" % (seed, "\n  ".join(seq.log)))
            print(detail)
            print("model: FAILED at seed %d, step %d: %s" % (seed, seq.step_no, what))
            print("model: reproduce with: %s" % args.repro.replace("{seed}", str(seed)), flush=True)
            sys.exit(1)
        steps += seq.step_no
    dt = time.monotonic() - t0
    print("model: %d sequences, %d steps passed in %.1f s (%.1f ms a step)" % (
        args.count, steps, dt, 1000 * dt / max(steps, 1)), flush=True)
    print("model: " + ", ".join("%s %d" % kv for kv in sorted(STATS.items())), flush=True)


if __name__ == "__main__":
    main()
