#!/usr/bin/python3
"""ckptd benchmarks against the peer baseline (bench/peer_retention.py).

Every figure is measured in this run, ckptd and the peer interleaved, on
fresh copies of the same tree. Writes the raw results as JSON; report.py
turns them into BENCHMARKS.md. Called by bench/run.sh (`make bench`).

  big      B1 `ckptd -1 -n` and start-up -> READY=1 on 1000 runs x 100
           checkpoints against find; B2/B3 CPU per save and rename ->
           victim gone over 500 saves; B4 VmHWM/VmRSS; B8 idle wake-ups
  onerun   B7 CPU per save in one run of 20000 checkpoints
  burst    20000 checkpoints renamed into one run at once: daemon CPU
           against ckptd -1 deciding the same run
  dirckpt  B6 removing a 10000-file directory checkpoint against rm -rf
  oneshot  B5 sweep of 500 runs x 40 checkpoints, keep top 3 + last 1
  latency  close() of checkpoint N -> its victim gone (inotify IN_DELETE)
  kfloor   the same operations as the system calls of the safety contract
           alone (build/kfloor, bench/kfloor.c), and those of find, the
           peer and rm -rf, timed in the same work directory

--only picks phases; the sizes and repetitions are options (see --help).
"""
import argparse
import ctypes
import json
import os
import random
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

PATTERN = "epoch_{epoch}-val_loss={val_loss}.ckpt"
HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer_retention.py")
PY = "/usr/bin/python3"  # Debian's python3-watchdog is only importable here
OLD = time.time() - 3600  # long settled

IN_MOVED_FROM = 0x40
IN_DELETE = 0x200
libc = ctypes.CDLL(None, use_errno=True)


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def ckpt_name(epoch, loss):
    return f"epoch_{epoch}-val_loss={loss:.4f}.ckpt"


def make_tree(root, runs, per_run, seed, size=0):
    """runs x per_run checkpoints with random losses, an hour old."""
    rnd = random.Random(seed)
    data = b"\0" * size
    os.makedirs(root)
    for r in range(runs):
        d = os.path.join(root, f"run{r:04d}")
        os.mkdir(d)
        for e in range(per_run):
            p = os.path.join(d, ckpt_name(e, rnd.uniform(0.1, 2.0)))
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            if data:
                os.write(fd, data)
            os.close(fd)
            os.utime(p, (OLD, OLD))
    os.sync()


def listing(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        out.extend(os.path.relpath(os.path.join(d, f), root) for f in sorted(files))
    return out


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def timed(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
    """Wall time, user+sys CPU (os.wait4) and max RSS of one command. The
    RSS comes from GNU time: a child that Python starts with vfork() (as
    subprocess does) inherits the harness's own peak in ru_maxrss."""
    rss_file = None
    if GNU_TIME:
        fd, rss_file = tempfile.mkstemp(prefix="bench-rss.")
        os.close(fd)
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file] + cmd
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=stderr)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    rss = None
    if rss_file:
        with open(rss_file) as f:
            rss = int(f.read().split()[-1])
        os.unlink(rss_file)
    return {"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "maxrss_kib": rss, "rc": p.returncode}


def summary(xs):
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "q1": q[0], "q3": q[2],
            "n": len(xs), "values": xs}


# --- process inspection (/proc) ---

def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def proc_cpu(pid):
    """utime+stime (all threads, clock ticks -> s) and schedstat run time (ns)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14, 15
    run_ns = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run_ns += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK"), run_ns


def wait_quiet(pid, at_least=1.0, window=0.2, busy_ns=2e6, cap=60.0):
    """Sleep at_least seconds, then until pid spends under busy_ns of CPU in
    a window (its work after ready done), cap seconds at most. Returns
    whether it was quiet: False, still busy at the cap."""
    time.sleep(at_least)
    end = time.monotonic() + cap
    last = proc_cpu(pid)[1]
    while time.monotonic() < end:
        time.sleep(window)
        now = proc_cpu(pid)[1]
        if now - last < busy_ns:
            return True
        last = now
    log(f"note: pid {pid} still busy {cap:.0f} s after ready: what it does is timed with what follows")
    return False


def proc_ctxt(pid, key="voluntary_ctxt_switches"):
    """context switches summed over every thread: voluntary ones are the
    wake-ups (the thread slept and was woken)."""
    vol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        vol += int(line.split()[1])
        except FileNotFoundError:
            pass
    return vol


def proc_nvctxt(pid):
    return proc_ctxt(pid, "nonvoluntary_ctxt_switches")


# --- the two daemons ---

class Daemon:
    """A daemon in the foreground, its stderr read line by line."""

    def __init__(self, who, cmd, ready_word):
        self.who = who
        self.lines = []
        self.ready = threading.Event()
        self.ready_word = ready_word
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stderr:
            self.lines.append(line.rstrip("\n"))
            if not self.ready.is_set() and self.ready_word in line:
                self.t_ready = time.perf_counter()
                self.ready.set()

    def wait_ready(self, timeout=120):
        if not self.ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"{self.who} did not get ready: {self.lines[-5:]}")
        return self.t_ready - self.t0

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.reader.join(5)
        return self.p.returncode


def policy_args(top_k, last):
    return ["--pattern", PATTERN, "--monitor", "val_loss", "--keep-top-k", str(top_k), "--keep-last", str(last)]


def start_cmd(who, ckptd, root, top_k, last, settle=None):
    if who == "ckptd":
        cmd = [ckptd, "-w", root] + policy_args(top_k, last) + ["--log-target", "stderr"]
        if settle is not None:
            cmd += ["--settle", str(settle)]
        return cmd, "ckptd: watching"
    return [PY, PEER, "--watch", root] + policy_args(top_k, last), "peer: ready"


def start(who, ckptd, root, top_k, last, settle=None):
    cmd, ready = start_cmd(who, ckptd, root, top_k, last, settle)
    return Daemon(who, cmd, ready)


def order(rep):
    """Interleave, alternating who goes first."""
    return ("ckptd", "peer") if rep % 2 == 0 else ("peer", "ckptd")


# --- 1: one-shot sweep ---

def write_config(path, root, cap):
    with open(path, "w") as f:
        f.write(f'max_delete_per_sweep = {cap};\n'
                f'watch = ( {{ path = "{root}"; pattern = "{PATTERN}"; monitor = "val_loss";\n'
                f'            keep_top_k = 3; keep_last = 1; }} );\n')


def bench_oneshot(a, work):
    runs, per = a.oneshot_runs, a.oneshot_ckpts
    tree = os.path.join(work, "oneshot")
    conf = os.path.join(work, "oneshot.conf")
    # The default max_delete_per_sweep (1000) would stop ckptd -1 after 1000
    # of the 18000 deletions; the config raises it so both do the same work.
    write_config(conf, tree, 1000000)
    cmds = {
        "ckptd": [a.ckptd, "-1", "-c", conf, "--log-target", "stderr"],
        "peer": [PY, PEER, "--once", tree] + policy_args(3, 1),
    }
    res = {"runs": runs, "ckpts_per_run": per, "sweep": {"ckptd": [], "peer": []}}
    kept = {}
    reps = a.reps
    rep = 0
    while rep < reps:
        for who in order(rep):
            make_tree(tree, runs, per, seed=rep)
            err = os.path.join(work, f"oneshot.{who}.err")
            with open(err, "w") as ef:
                t = timed(cmds[who], stderr=ef)
            with open(err) as ef:
                lines = ef.read().splitlines()
            t["deleted"] = sum(1 for line in lines if ": deleted /" in line)
            if who == "peer":  # "peer: 500 runs, deleted N in 0.123s": the sweep alone
                t["inproc"] = float(lines[-1].rsplit(" ", 1)[1].rstrip("s"))
            if t["rc"] != 0:
                raise RuntimeError(f"{who} one-shot exited {t['rc']}")
            kept[who] = listing(tree)
            res["sweep"][who].append(t)
            log(f"oneshot rep {rep} {who}: {t['wall']:.3f}s, deleted {t['deleted']}")
            shutil.rmtree(tree)
        if kept["ckptd"] != kept["peer"]:
            raise RuntimeError("ckptd and the peer kept different checkpoints")
        if rep == 0:
            # a long repetition: fewer of them, within --oneshot-budget
            # seconds of ckptd sweeps, and said so in the report
            first = res["sweep"]["ckptd"][0]["wall"]
            reps = max(1, min(a.reps, int(a.oneshot_budget / first)))
            if reps < a.reps:
                res["reps_cut"] = {"first_s": first, "budget_s": a.oneshot_budget}
                log(f"oneshot: a sweep took {first:.0f}s, {reps} repetitions")
        rep += 1
    res["kept"] = len(kept["ckptd"])

    # the same command as the README's ad-hoc example: the default cap
    make_tree(tree, runs, per, seed=0)
    err = os.path.join(work, "oneshot.cap.err")
    with open(err, "w") as ef:
        t = timed([a.ckptd, "-1", "-w", tree] + policy_args(3, 1) + ["--log-target", "stderr"], stderr=ef)
    with open(err) as ef:
        t["deleted"] = sum(1 for line in ef if ": deleted /" in line)
    res["default_cap"] = t

    # read-only modes on one unchanged tree (the tree made just above is
    # untouched apart from those 1000: make a fresh one)
    shutil.rmtree(tree)
    make_tree(tree, runs, per, seed=0)
    before = listing(tree)
    ro = {
        "ckptd_list": [a.ckptd, "-l", "-w", tree] + policy_args(3, 1),
        "ckptd_dry": [a.ckptd, "-1", "-n", "-c", conf, "--log-target", "stderr"],
        "peer_dry": [PY, PEER, "--once", "-n", tree] + policy_args(3, 1),
    }
    res["readonly"] = {k: [] for k in ro}
    for rep in range(a.reps):
        keys = list(ro) if rep % 2 == 0 else list(reversed(ro))
        for k in keys:
            out = os.path.join(work, f"ro.{k}.out")
            with open(out, "w") as of:
                t = timed(ro[k], stdout=of, stderr=of)
            if t["rc"] != 0:
                raise RuntimeError(f"{k} exited {t['rc']}")
            res["readonly"][k].append(t)
            log(f"readonly rep {rep} {k}: {t['wall']:.3f}s")
    if listing(tree) != before:
        raise RuntimeError("a read-only mode changed the tree")
    shutil.rmtree(tree)

    # where the time goes: syscalls (strace -c) and a CPU profile (perf),
    # each one more sweep: not when a sweep is long
    if "reps_cut" not in res:
        res["profile"] = profile_oneshot(a, work, tree, conf, cmds)
    return res


def strace_counts(out):
    calls = {}
    with open(out) as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[0][0].isdigit() and p[-1] != "total":
                calls[p[-1]] = int(p[3])
    return calls


def profile_oneshot(a, work, tree, conf, cmds):
    prof = {}
    if shutil.which("strace"):
        for who in ("ckptd", "peer"):
            make_tree(tree, a.oneshot_runs, a.oneshot_ckpts, seed=0)
            out = os.path.join(work, f"strace.{who}.txt")
            subprocess.run(["strace", "-f", "-c", "-o", out] + cmds[who],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            prof[f"syscalls_{who}"] = strace_counts(out)
            shutil.rmtree(tree)
    if shutil.which("perf"):
        make_tree(tree, a.oneshot_runs, a.oneshot_ckpts, seed=0)
        data = os.path.join(work, "perf.data")
        r = subprocess.run(["perf", "record", "-q", "-F", "4999", "-e", "cpu-clock", "-o", data, "--"]
                           + cmds["ckptd"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                  "--sort", "dso,sym", "--percent-limit", "1"],
                                 capture_output=True, text=True)
            prof["perf_ckptd"] = [line.strip() for line in rep.stdout.splitlines()
                                  if line.strip() and not line.startswith("#")][:12]
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso"],
                                 capture_output=True, text=True)
            prof["perf_ckptd_dso"] = [line.strip() for line in rep.stdout.splitlines()
                                      if line.strip() and not line.startswith("#")][:6]
        shutil.rmtree(tree)
    return prof


# --- 2: live latency ---

class DeleteWatch:
    """A name leaving one directory: inotify IN_DELETE or IN_MOVED_FROM (ckptd
    first renames a victim to a .ckptd-trash- tombstone, then unlinks that),
    read by the harness itself."""

    def __init__(self, path):
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, path.encode(), IN_DELETE | IN_MOVED_FROM) < 0:
            raise OSError(ctypes.get_errno(), "inotify")
        self.poll = select.poll()
        self.poll.register(self.fd, select.POLLIN)
        self.gone = {}

    def _read(self):
        now = time.perf_counter()
        buf = os.read(self.fd, 65536)
        i = 0
        while i < len(buf):
            _, _, _, n = struct.unpack_from("iIII", buf, i)
            name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode()
            self.gone.setdefault(name, now)
            i += 16 + n

    def wait_gone(self, name, timeout):
        deadline = time.perf_counter() + timeout
        while name not in self.gone:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            if self.poll.poll(left * 1000):
                self._read()
        return self.gone[name]

    def close(self):
        os.close(self.fd)


def latency_session(a, work, who, saves):
    root = os.path.join(work, f"live-{who}")
    run = os.path.join(root, "run0")
    os.makedirs(run)
    d = start(who, a.ckptd, root, 3, 1, settle=0)
    d.wait_ready()
    watch = DeleteWatch(run)
    cpu0 = proc_cpu(d.p.pid)
    data = b"\0" * 4096
    lat = []
    missed = 0
    # Losses rise: epochs 0-2 stay the best three, so once epoch N (N >= 4)
    # is closed, epoch N-1 (the previous "last") is the one victim.
    loss = lambda e: 1.0 + e / 1000
    for e in range(4 + saves):
        fd = os.open(os.path.join(run, ckpt_name(e, loss(e))), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
        t_close = time.perf_counter()
        if e >= 4:
            t_gone = watch.wait_gone(ckpt_name(e - 1, loss(e - 1)), 5.0)
            if t_gone is None:
                missed += 1
            else:
                lat.append(t_gone - t_close)
        time.sleep(a.save_gap + random.uniform(0, 0.01))
    cpu1 = proc_cpu(d.p.pid)
    watch.close()
    rc = d.stop()
    left = sorted(os.listdir(run))
    shutil.rmtree(root)
    expect = sorted(ckpt_name(e, loss(e)) for e in (0, 1, 2, 3 + saves))
    if left != expect:
        raise RuntimeError(f"{who}: left {left}, expected {expect}")
    return {"latency": lat, "missed": missed, "rc": rc, "cpu_s": cpu1[0] - cpu0[0],
            "cpu_ns": cpu1[1] - cpu0[1], "saves": saves}


def bench_latency(a, work):
    res = {"latency": {"ckptd": [], "peer": []}, "cpu_ns": {"ckptd": 0, "peer": 0},
           "saves": {"ckptd": 0, "peer": 0}, "missed": {"ckptd": 0, "peer": 0}}
    for rep in range(a.latency_sessions):
        for who in order(rep):
            s = latency_session(a, work, who, a.latency_saves)
            res["latency"][who] += s["latency"]
            res["cpu_ns"][who] += s["cpu_ns"]
            res["saves"][who] += s["saves"]
            res["missed"][who] += s["missed"]
            log(f"latency session {rep} {who}: median {statistics.median(s['latency']) * 1e3:.2f} ms"
                f" over {len(s['latency'])}, missed {s['missed']}")
    return res


# --- the targets on big trees: B1 start-up, B2/B3 new checkpoints, B4 memory,
# B6 a directory checkpoint, B7 one huge run, B8 idle ---

class Notify:
    """An sd_notify(3) socket the harness listens on (NOTIFY_SOCKET): the
    time READY=1 arrives, as systemd would see it."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.ready = threading.Event()
        self.msgs = []
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                msg = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.perf_counter()
            self.msgs.append((now, msg.decode(errors="replace")))
            if not self.ready.is_set() and "READY=1" in msg.decode(errors="replace").split("\n"):
                self.t_ready = now
                self.ready.set()

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()
        os.unlink(self.path)


def daemon_env(notify=None):
    """The environment of a daemon under a Type=notify unit with no
    WatchdogSec=: NOTIFY_SOCKET only."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    if notify:
        env["NOTIFY_SOCKET"] = notify
    return env


class NotifyDaemon(Daemon):
    """ckptd as a Type=notify service: ready = READY=1 on NOTIFY_SOCKET."""

    def __init__(self, cmd, sock_path):
        self.notify = Notify(sock_path)
        self.who = "ckptd"
        self.lines = []
        self.ready = self.notify.ready
        self.ready_word = "\0"
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=daemon_env(sock_path))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def wait_ready(self, timeout=180):
        if not self.ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"ckptd sent no READY=1: {self.lines[-5:]}")
        return self.notify.t_ready - self.t0

    def stop(self):
        rc = super().stop()
        self.notify.close()
        return rc


class GoneWatch:
    """Names leaving any of some directories (IN_DELETE or IN_MOVED_FROM),
    read by the harness through one inotify instance of its own."""

    def __init__(self, dirs):
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.wd = {}
        for d in dirs:
            wd = libc.inotify_add_watch(self.fd, d.encode(), IN_DELETE | IN_MOVED_FROM)
            if wd < 0:
                raise OSError(ctypes.get_errno(), "inotify_add_watch", d)
            self.wd[wd] = d
        self.poll = select.poll()
        self.poll.register(self.fd, select.POLLIN)
        self.gone = {}

    def _read(self):
        now = time.perf_counter()
        try:
            buf = os.read(self.fd, 262144)
        except BlockingIOError:
            return
        i = 0
        while i < len(buf):
            wd, _, _, n = struct.unpack_from("iIII", buf, i)
            name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode()
            self.gone.setdefault((self.wd.get(wd), name), now)
            i += 16 + n

    def wait_gone(self, d, name, timeout):
        key = (d, name)
        deadline = time.perf_counter() + timeout
        while key not in self.gone:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            if self.poll.poll(left * 1000):
                self._read()
        return self.gone[key]

    def close(self):
        os.close(self.fd)


BEST = 3  # the 3 oldest checkpoints of a run are its best: keep_top_k = 3


def big_loss(rnd, e):
    """The three oldest of a run are its best; every later one is worse than
    them, so with keep_top_k 3 + keep_last (n - 3) all n are kept and a new,
    worse checkpoint displaces exactly the oldest of the newest n - 3."""
    return rnd.uniform(0.05, 0.09) if e < BEST else rnd.uniform(0.5, 2.0)


def lightning_name(epoch, loss):
    """Lightning's key=value name with the monitor in it (filename=
    "{epoch}-{val_loss:.4f}", auto_insert_metric_name)."""
    return f"epoch={epoch}-val_loss={loss:.4f}.ckpt"


def make_runs(root, runs, per_run, seed, namer=ckpt_name):
    """runs x per_run empty checkpoints, an hour old; returns {run dir: names
    by epoch}."""
    rnd = random.Random(seed)
    os.makedirs(root)
    tree = {}
    for r in range(runs):
        d = os.path.join(root, f"run{r:04d}")
        os.mkdir(d)
        names = []
        for e in range(per_run):
            name = namer(e, big_loss(rnd, e))
            p = os.path.join(d, name)
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            os.utime(p, (OLD, OLD))
            names.append(name)
        tree[d] = names
    os.sync()
    return tree


def count_files(root):
    return sum(len(fs) for _, _, fs in os.walk(root))


def daemon_config(path, root, per_run, extra=""):
    with open(path, "w") as f:
        f.write(f'max_delete_per_sweep = 1000000;\n{extra}'
                f'watch = ( {{ path = "{root}"; pattern = "{PATTERN}"; monitor = "val_loss";\n'
                f'            keep_top_k = {BEST}; keep_last = {per_run - BEST}; settle = 0; }} );\n')


def start_big(who, a, root, conf, per_run, sock):
    if who == "ckptd":
        return NotifyDaemon([a.ckptd, "-c", conf, "--log-target", "stderr"], sock)
    return Daemon("peer", [PY, PEER, "--watch", root] + policy_args(BEST, per_run - BEST), "peer: ready")


def save_plan(tree, per_run, n, seed, runs=None, namer=ckpt_name, first=0):
    """n new checkpoints, each a worse one in a run (spread over the runs, or
    all in `runs`): (run, new name, the victim it displaces). first: saves
    each run has had since the tree was made (a plan made again with the
    same n and first=1 saves once more into the same runs)."""
    rnd = random.Random(seed)
    dirs = sorted(tree) if runs is None else runs
    step = max(1, len(dirs) // n)
    plan, count = [], {}
    for i in range(n):
        d = dirs[(i * step) % len(dirs)]
        j = count.get(d, first)
        count[d] = j + 1
        plan.append((d, namer(per_run + j, rnd.uniform(0.5, 2.0)), tree[d][BEST + j]))
    return plan


def save_loop(d, plan, gap, deadline=None):
    """Each save as a trainer makes it: write NAME.tmp (4 KiB), close, and
    a few ms later rename it to NAME; latency = rename() returning -> the
    displaced checkpoint's name leaving the run. Returns (latencies, saves
    done, missed)."""
    watch = GoneWatch(sorted({p[0] for p in plan}))
    data = b"\0" * 4096
    lat, missed, done = [], 0, 0
    try:
        for run, new, victim in plan:
            if deadline and time.perf_counter() > deadline:
                break
            tmp = os.path.join(run, new + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)
            time.sleep(gap + random.uniform(0, gap))
            # the clock starts before rename(): were the harness preempted
            # between rename() returning and reading the clock, a daemon
            # quicker than that would show a latency of almost nothing
            t = time.perf_counter()
            os.rename(tmp, os.path.join(run, new))
            g = watch.wait_gone(run, victim, 5.0)
            done += 1
            if g is None:
                missed += 1
            else:
                lat.append(g - t)
            time.sleep(gap + random.uniform(0, gap))
    finally:
        watch.close()
    return lat, done, missed


def check_and_restore(who, tree, plan, done):
    """The run directories hold exactly the original names less the victims
    plus the new ones; then put the tree back as it was."""
    for run, new, victim in plan[:done]:
        if os.path.exists(os.path.join(run, victim)):
            raise RuntimeError(f"{who}: {victim} in {run} was not deleted")
        os.unlink(os.path.join(run, new))
        p = os.path.join(run, victim)
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.utime(p, (OLD, OLD))
    for run in {p[0] for p in plan}:
        left = sorted(n for n in os.listdir(run))
        if left != sorted(tree[run]):
            extra = set(left) ^ set(tree[run])
            raise RuntimeError(f"{who}: {run} differs from the original after the saves: {sorted(extra)[:5]}")


def perf_report(data):
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                          "--sort", "dso,sym", "--percent-limit", "1"], capture_output=True, text=True)
    sym = [line.strip() for line in rep.stdout.splitlines() if line.strip() and not line.startswith("#")][:14]
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso"],
                         capture_output=True, text=True)
    dso = [line.strip() for line in rep.stdout.splitlines() if line.strip() and not line.startswith("#")][:6]
    return {"dso": dso, "sym": sym}


def bench_big(a, work):
    root = os.path.join(work, "big")
    runs, per = a.big_runs, a.big_ckpts
    t = time.monotonic()
    tree = make_runs(root, runs, per, seed=42)
    n_files = runs * per
    log(f"big tree: {n_files} checkpoints in {runs} runs made in {time.monotonic() - t:.1f}s")
    conf = os.path.join(work, "big.conf")
    daemon_config(conf, root, per)
    res = {"runs": runs, "ckpts_per_run": per, "saves": a.saves}

    # B1, one-shot: find as the floor, ckptd -1 -n, the peer --once -n
    cmds = {
        "find": ["find", root, "-printf", "%s %p\\n"],
        "ckptd": [a.ckptd, "-1", "-n", "-c", conf, "--log-target", "stderr"],
        "peer": [PY, PEER, "--once", "-n", root] + policy_args(BEST, per - BEST),
    }
    timed(cmds["find"])  # warm the cache
    res["scan"] = {k: [] for k in cmds}
    for rep in range(a.reps):
        keys = list(cmds) if rep % 2 == 0 else list(reversed(cmds))
        for k in keys:
            tm = timed(cmds[k])
            if tm["rc"] != 0:
                raise RuntimeError(f"{k} exited {tm['rc']}")
            res["scan"][k].append(tm)
        log(f"B1 scan rep {rep}: " + ", ".join(f"{k} {res['scan'][k][-1]['wall'] * 1e3:.0f} ms" for k in cmds))

    # B1 start-up, B4 memory, B2/B3 saves: daemon sessions, alternating
    keys = ("startup", "rss_start_kib", "hwm_start_kib", "hwm_kib", "rss_kib", "threads", "save_cpu_ns",
            "save_cpu_s", "saves", "missed", "latency", "find_wall", "next_cpu_ns", "next_latency",
            "ready_cpu_ns", "ready_quiet", "never_quiet")
    sess = {who: {k: [] for k in keys} for who in ("ckptd", "peer")}
    for rep in range(a.big_reps):
        for who in order(rep):
            r = sess[who]
            r["find_wall"].append(timed(cmds["find"])["wall"])  # the floor, next to each start-up
            d = start_big(who, a, root, conf, per, os.path.join(work, f"notify.{rep}.sock"))
            r["startup"].append(d.wait_ready())
            pid = d.p.pid
            # the work it does after ready (ckptd: asking the kept
            # checkpoints in idle time), before the saves, timed apart
            q0, t0 = proc_cpu(pid), time.monotonic()
            r["never_quiet"].append(0 if wait_quiet(pid) else 1)
            r["ready_quiet"].append(time.monotonic() - t0)
            r["ready_cpu_ns"].append(proc_cpu(pid)[1] - q0[1])
            r["rss_start_kib"].append(proc_status(pid, "VmRSS"))
            r["hwm_start_kib"].append(proc_status(pid, "VmHWM"))
            r["threads"].append(proc_status(pid, "Threads"))
            plan = save_plan(tree, per, a.saves, seed=rep)
            c0 = proc_cpu(pid)
            lat, done, missed = save_loop(root, plan, a.save_gap_big)
            time.sleep(0.3)
            c1 = proc_cpu(pid)
            r["hwm_kib"].append(proc_status(pid, "VmHWM"))
            r["rss_kib"].append(proc_status(pid, "VmRSS"))
            # the same runs' next save: each run decided since the start
            plan2 = save_plan(tree, per, a.saves, seed=rep + 1000, first=1)
            n0 = proc_cpu(pid)
            lat2, done2, missed2 = save_loop(root, plan2, a.save_gap_big)
            time.sleep(0.3)
            n1 = proc_cpu(pid)
            d.stop()
            r["save_cpu_ns"].append((c1[1] - c0[1]) / done)
            r["save_cpu_s"].append((c1[0] - c0[0]) / done)
            r["saves"].append(done)
            r["missed"].append(missed)
            r["latency"] += lat
            r["next_cpu_ns"].append((n1[1] - n0[1]) / done2)
            r["next_latency"] += lat2
            check_and_restore(who, tree, plan[:done] + plan2[:done2], done + done2)
            extra = [line for line in d.lines if (": deleted /" in line or "would delete" in line)]
            if len(extra) != done + done2 - missed - missed2 and who == "ckptd":
                log(f"note: ckptd logged {len(extra)} deletions for {done + done2} saves")
            log(f"B2 rep {rep} {who}: ready {r['startup'][-1]:.3f}s, {r['save_cpu_ns'][-1] / 1e3:.1f} us CPU "
                f"per save, latency median {statistics.median(lat) * 1e3:.2f} ms, HWM {r['hwm_kib'][-1]} KiB, "
                f"missed {missed}; the next save {r['next_cpu_ns'][-1] / 1e3:.1f} us CPU, latency median "
                f"{statistics.median(lat2) * 1e3:.2f} ms")
    res["sessions"] = sess
    if count_files(root) != n_files:
        raise RuntimeError("the big tree changed")

    # what dominates: perf on ckptd -1 -n and on the daemon during saves
    res["perf"] = {}
    if shutil.which("perf"):
        data = os.path.join(work, "perf.b1.data")
        r = subprocess.run(["perf", "record", "-q", "-F", "4999", "-e", "cpu-clock", "-o", data, "--"]
                           + cmds["ckptd"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            res["perf"]["scan"] = perf_report(data)
        d = start_big("ckptd", a, root, conf, per, os.path.join(work, "notify.perf.sock"))
        d.wait_ready()
        wait_quiet(d.p.pid)  # as B2's sessions: its work after ready is not the saves'
        data = os.path.join(work, "perf.b2.data")
        pr = subprocess.Popen(["perf", "record", "-q", "-F", "4999", "-e", "cpu-clock", "-o", data,
                               "-p", str(d.p.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        plan = save_plan(tree, per, a.saves, seed=99)
        _, done, _ = save_loop(root, plan, a.save_gap_big)
        pr.send_signal(signal.SIGINT)
        pr.wait(30)
        d.stop()
        check_and_restore("ckptd", tree, plan, done)
        if os.path.exists(data) and os.path.getsize(data) > 0:
            res["perf"]["saves"] = perf_report(data)

    # B8: idle, watchdog off (no WATCHDOG_USEC), NOTIFY_SOCKET set
    if a.idle_windows:
        d = start_big("ckptd", a, root, conf, per, os.path.join(work, "notify.idle.sock"))
        d.wait_ready()
        time.sleep(2.0)
        pid = d.p.pid
        res["idle"] = {"window_s": a.idle, "vcsw": [], "nvcsw": [], "cpu_ns": [], "notify": []}
        for w in range(a.idle_windows):
            v0, c0, n0, m0 = proc_ctxt(pid), proc_cpu(pid), proc_nvctxt(pid), len(d.notify.msgs)
            time.sleep(a.idle)
            v1, c1, n1, m1 = proc_ctxt(pid), proc_cpu(pid), proc_nvctxt(pid), len(d.notify.msgs)
            res["idle"]["vcsw"].append(v1 - v0)
            res["idle"]["nvcsw"].append(n1 - n0)
            res["idle"]["cpu_ns"].append(c1[1] - c0[1])
            res["idle"]["notify"].append(m1 - m0)
            log(f"B8 window {w}: {v1 - v0} wake-ups in {a.idle:.0f}s, {(c1[1] - c0[1]) / 1e3:.0f} us CPU")
        d.stop()
    shutil.rmtree(root)
    return res


def bench_onerun(a, work):
    """B7: one run of 20k checkpoints; the same saves as B2, CPU per save."""
    root = os.path.join(work, "onerun")
    per = a.onerun_ckpts
    tree = make_runs(root, 1, per, seed=7)
    conf = os.path.join(work, "onerun.conf")
    daemon_config(conf, root, per)
    run = next(iter(tree))
    res = {"ckpts": per, "blocks": [], "saves": [], "latency": [], "cap_s": a.onerun_cap,
           "block": a.onerun_saves, "nblocks": a.onerun_blocks}
    d = start_big("ckptd", a, root, conf, per, os.path.join(work, "notify.onerun.sock"))
    res["startup"] = d.wait_ready()
    time.sleep(1.0)
    pid = d.p.pid
    plan = save_plan(tree, per, a.onerun_saves * a.onerun_blocks, seed=7, runs=[run])
    done_all = 0
    for b in range(a.onerun_blocks):
        # each block stops after its share of the time cap: a daemon that
        # rescans the run per save still gets its blocks measured
        part = plan[done_all:done_all + a.onerun_saves]
        c0 = proc_cpu(pid)
        lat, done, missed = save_loop(root, part, a.save_gap_big,
                                      time.perf_counter() + a.onerun_cap / a.onerun_blocks)
        time.sleep(0.2)
        c1 = proc_cpu(pid)
        done_all += done
        if done:
            res["blocks"].append((c1[1] - c0[1]) / done)
            res["saves"].append(done)
            res["latency"] += lat
            log(f"B7 block {b}: {done} saves, {(c1[1] - c0[1]) / done / 1e3:.1f} us CPU per save, missed {missed}")
    res["hwm_kib"] = proc_status(pid, "VmHWM")
    d.stop()
    check_and_restore("ckptd", tree, plan, done_all)
    shutil.rmtree(root)
    return res


def bench_lightning(a, work):
    """B2's tree and saves under the lightning preset: Lightning's key=value
    names, the monitor in each, and the preset's metric logs (read only for
    a name without the monitor); ckptd only, B2's ckptd the baseline."""
    root = os.path.join(work, "lightning")
    runs, per = a.big_runs, a.big_ckpts
    tree = make_runs(root, runs, per, seed=42, namer=lightning_name)
    conf = os.path.join(work, "lightning.conf")
    with open(conf, "w") as f:
        f.write(f'max_delete_per_sweep = 1000000;\n'
                f'watch = ( {{ path = "{root}"; preset = "lightning"; monitor = "val_loss";\n'
                f'            keep_top_k = {BEST}; keep_last = {per - BEST}; settle = 0; }} );\n')
    res = {"runs": runs, "ckpts_per_run": per, "save_cpu_ns": [], "saves": [], "missed": [], "latency": []}
    for rep in range(a.big_reps):
        d = start_big("ckptd", a, root, conf, per, os.path.join(work, f"notify.lightning.{rep}.sock"))
        d.wait_ready()
        time.sleep(1.0)
        pid = d.p.pid
        plan = save_plan(tree, per, a.saves, seed=rep, namer=lightning_name)
        c0 = proc_cpu(pid)
        lat, done, missed = save_loop(root, plan, a.save_gap_big)
        time.sleep(0.3)
        c1 = proc_cpu(pid)
        d.stop()
        res["save_cpu_ns"].append((c1[1] - c0[1]) / done)
        res["saves"].append(done)
        res["missed"].append(missed)
        res["latency"] += lat
        check_and_restore("ckptd", tree, plan, done)
        log(f"B2 lightning rep {rep}: {res['save_cpu_ns'][-1] / 1e3:.1f} us CPU per save, latency median "
            f"{statistics.median(lat) * 1e3:.2f} ms, missed {missed}")
    shutil.rmtree(root)
    return res


def bench_burst(a, work):
    """A burst: a run that holds its 3 best gets N checkpoints renamed in
    from beside it as fast as rename() goes (a tree copied or moved in), and
    is left with its 3 best + the newest. The daemon's CPU (schedstat) and
    wall time from the first rename to that end state, against `ckptd -1`
    deciding the same run in one pass (the peer never deletes a name moved
    in: watchdog reports it as created, and it waits for a close)."""
    root = os.path.join(work, "burst")
    stage = os.path.join(work, "burst-stage")
    conf = os.path.join(work, "burst.conf")
    daemon_config(conf, root, BEST + 1)
    res = {"names": a.burst_names, "daemon": [], "oneshot": []}
    rnd = random.Random(11)
    names = [ckpt_name(e, big_loss(rnd, e)) for e in range(BEST + a.burst_names)]
    want = sorted(names[:BEST] + names[-1:])
    run = os.path.join(root, "run0")

    def make(staged):
        os.makedirs(run)
        os.makedirs(stage)
        for i, name in enumerate(names):
            p = os.path.join(stage if staged and i >= BEST else run, name)
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            os.utime(p, (OLD, OLD))
        os.sync()

    def check(who):
        left = sorted(os.listdir(run))
        if left != want:
            raise RuntimeError(f"burst: {who} left {len(left)} names, not the 3 best + newest")
        shutil.rmtree(root)
        shutil.rmtree(stage)

    for rep in range(a.reps):
        for who in (("daemon", "oneshot") if rep % 2 == 0 else ("oneshot", "daemon")):
            make(who == "daemon")
            if who == "oneshot":
                t = timed([a.ckptd, "-1", "-c", conf])
                if t["rc"] != 0:
                    raise RuntimeError(f"burst: ckptd -1 exited {t['rc']}")
                res[who].append({"cpu_ns": (t["user"] + t["sys"]) * 1e9, "wall": t["wall"]})
                check(who)
                continue
            d = start_big("ckptd", a, root, conf, BEST + 1, os.path.join(work, "notify.burst.sock"))
            d.wait_ready()
            time.sleep(0.5)
            c0 = proc_cpu(d.p.pid)
            t0 = time.perf_counter()
            for name in names[BEST:]:
                os.rename(os.path.join(stage, name), os.path.join(run, name))
            while time.perf_counter() < t0 + a.burst_cap and sorted(os.listdir(run)) != want:
                time.sleep(0.01)
            t1 = time.perf_counter()
            c1 = proc_cpu(d.p.pid)
            d.stop()
            res[who].append({"cpu_ns": c1[1] - c0[1], "wall": t1 - t0})
            check(who)
        log(f"burst rep {rep}: daemon {res['daemon'][-1]['cpu_ns'] / 1e9:.2f}s CPU, "
            f"-1 {res['oneshot'][-1]['cpu_ns'] / 1e9:.2f}s CPU")
    return res


def bench_dirckpt(a, work):
    """B6: ckptd -1 removing a directory checkpoint of 10k files, against
    rm -rf of an identical tree."""
    res = {"files": a.dir_files, "ckptd": [], "rm": []}
    conf = os.path.join(work, "dir.conf")
    root = os.path.join(work, "dirckpt")
    with open(conf, "w") as f:
        f.write(f'watch = ( {{ path = "{root}"; pattern = "checkpoint-{{step}}"; kind = "dir";\n'
                f'            keep_last = 1; settle = 0; }} );\n')

    def make():
        run = os.path.join(root, "run0")
        big = os.path.join(run, "checkpoint-100")
        os.makedirs(big)
        for i in range(a.dir_files):
            os.close(os.open(os.path.join(big, f"shard-{i:05d}.bin"), os.O_WRONLY | os.O_CREAT, 0o644))
        os.utime(big, (OLD, OLD))
        new = os.path.join(run, "checkpoint-200")
        os.mkdir(new)
        os.close(os.open(os.path.join(new, "model.bin"), os.O_WRONLY | os.O_CREAT, 0o644))
        os.utime(new, (OLD, OLD))
        os.sync()
        return big

    for rep in range(a.reps):
        for who in (("ckptd", "rm") if rep % 2 == 0 else ("rm", "ckptd")):
            big = make()
            cmd = ([a.ckptd, "-1", "-c", conf, "--log-target", "stderr"] if who == "ckptd"
                   else ["rm", "-rf", big])
            tm = timed(cmd)
            if tm["rc"] != 0 or os.path.lexists(big):
                raise RuntimeError(f"{who} did not remove {big} (exit {tm['rc']})")
            left = os.listdir(os.path.join(root, "run0"))
            if left != ["checkpoint-200"]:
                raise RuntimeError(f"{who} left {left}")
            res[who].append(tm)
            shutil.rmtree(root)
        log(f"B6 rep {rep}: ckptd {res['ckptd'][-1]['wall'] * 1e3:.1f} ms, rm -rf {res['rm'][-1]['wall'] * 1e3:.1f} ms")
    return res


def bench_kfloor(a, work):
    """The kernel's own cost of each operation: build/kfloor makes the same
    kind of files in the work directory and times only the system calls
    ckptd's safety contract makes (and those of find, the peer, rm -rf)."""
    if not os.access(a.kfloor, os.X_OK):
        log(f"kfloor: {a.kfloor} is not built (make build/kfloor), skipped")
        return {"error": f"{a.kfloor} not built"}
    cmd = [a.kfloor, "-s", str(a.kfloor_saves), "-r", str(a.kfloor_runs), "-f", str(a.dir_files),
           "-d", str(a.reps), work]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        # e.g. a filesystem without leases: the report says so, the other
        # phases' figures stand
        err = f"kfloor exited {p.returncode}" + (f": {p.stderr.strip()}" if p.stderr.strip() else "")
        log(err)
        return {"error": err}
    res = json.loads(p.stdout)
    res["command"] = " ".join(os.path.basename(x) if i == 0 else x for i, x in enumerate(cmd[:-1])) + " WORK"
    for k, v in res["sequences"].items():
        log(f"kfloor {k}: {v['cpu_us']['median'] / v['units']:.2f} us CPU per {v['unit']}, "
            f"{v['syscalls'] / v['units']:.2f} system calls")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckptd", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--oneshot-runs", type=int, default=500)
    ap.add_argument("--oneshot-ckpts", type=int, default=40)
    ap.add_argument("--oneshot-budget", type=float, default=90.0)
    ap.add_argument("--latency-sessions", type=int, default=2)
    ap.add_argument("--latency-saves", type=int, default=40)
    ap.add_argument("--save-gap", type=float, default=0.05)
    ap.add_argument("--big-runs", type=int, default=1000)
    ap.add_argument("--big-ckpts", type=int, default=100)
    ap.add_argument("--big-reps", type=int, default=5)
    ap.add_argument("--saves", type=int, default=500)
    ap.add_argument("--save-gap-big", type=float, default=0.003)
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--idle-windows", type=int, default=3)
    ap.add_argument("--dir-files", type=int, default=10000)
    ap.add_argument("--onerun-ckpts", type=int, default=20000)
    ap.add_argument("--onerun-saves", type=int, default=100)
    ap.add_argument("--onerun-blocks", type=int, default=5)
    ap.add_argument("--onerun-cap", type=float, default=40.0)
    ap.add_argument("--burst-names", type=int, default=20000)
    ap.add_argument("--burst-cap", type=float, default=300.0)
    ap.add_argument("--kfloor", default=os.path.join(os.path.dirname(HERE), "build", "kfloor"))
    ap.add_argument("--kfloor-saves", type=int, default=2000)
    ap.add_argument("--kfloor-runs", type=int, default=100)
    ap.add_argument("--only", default="big,lightning,onerun,burst,dirckpt,oneshot,latency,kfloor")
    a = ap.parse_args()
    t0 = time.monotonic()
    out = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    only = a.only.split(",")
    phases = (("big", bench_big), ("lightning", bench_lightning), ("onerun", bench_onerun), ("burst", bench_burst), ("dirckpt", bench_dirckpt),
              ("oneshot", bench_oneshot), ("latency", bench_latency), ("kfloor", bench_kfloor))
    for name, fn in phases:
        if name in only:
            t = time.monotonic()
            out[name] = fn(a, a.work)
            out[name]["phase_s"] = time.monotonic() - t
            log(f"{name}: {time.monotonic() - t:.0f}s")
            out["duration_s"] = time.monotonic() - t0
            with open(a.out, "w") as f:  # what is done so far, should a later phase fail
                json.dump(out, f, indent=1)
    out["duration_s"] = time.monotonic() - t0
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    log(f"done in {out['duration_s']:.0f}s")


if __name__ == "__main__":
    main()
