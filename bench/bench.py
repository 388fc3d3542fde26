#!/usr/bin/python3
"""ckptd benchmarks against the peer baseline (bench/peer_retention.py).

Every figure is measured in this run, ckptd and the peer interleaved, on
fresh copies of the same tree. Writes the raw results as JSON; report.py
turns them into BENCHMARKS.md. Called by bench/run.sh (`make bench`).

  1 oneshot  sweep of 500 runs x 40 checkpoints, keep top 3 + last 1
  2 latency  close() of checkpoint N -> its victim gone (inotify IN_DELETE)
  3 memory   VmHWM and start-up time watching 2000 runs x 10 checkpoints
  4 idle     CPU time and wake-ups over 10 s idle on that tree
  5 newrun   a new run directory on that tree: close() -> victim gone
"""
import argparse
import ctypes
import json
import os
import random
import select
import shutil
import signal
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


def proc_ctxt(pid):
    """voluntary context switches summed over every thread."""
    vol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
        except FileNotFoundError:
            pass
    return vol


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
    for rep in range(a.reps):
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

    # where the time goes: syscalls (strace -c) and a CPU profile (perf)
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


# --- 3, 4, 5: a big tree watched: memory, start-up, idle, a new run ---

def newrun(d, root, who, keep_last):
    """A new run directory on the big tree, its first checkpoints a second
    later: the CPU the daemon spends on it, and close() -> victim gone."""
    run = os.path.join(root, f"new-{who}-{time.monotonic_ns()}")
    loss = lambda e: 1.0 + e / 1000
    cpu0 = proc_cpu(d.p.pid)
    os.mkdir(run)
    watch = DeleteWatch(run)
    time.sleep(1.0)
    # rising losses: epochs 0-2 are the best three, and once epoch
    # keep_last + 3 is closed epoch 3 is the one victim
    for e in range(keep_last + 4):
        fd = os.open(os.path.join(run, ckpt_name(e, loss(e))), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        t_close = time.perf_counter()
    t_gone = watch.wait_gone(ckpt_name(3, loss(3)), 30.0)
    time.sleep(0.5)
    cpu1 = proc_cpu(d.p.pid)
    watch.close()
    shutil.rmtree(run)
    return {"latency": None if t_gone is None else t_gone - t_close, "cpu_ns": cpu1[1] - cpu0[1]}


def bench_daemon(a, work):
    root = os.path.join(work, "big")
    make_tree(root, a.big_runs, a.big_ckpts, seed=42)
    n_files = a.big_runs * a.big_ckpts
    keys = ("startup", "hwm_kib", "rss_kib", "idle_cpu_s", "idle_cpu_ns", "idle_vcsw", "threads",
            "new_latency", "new_cpu_ns")
    res = {who: {k: [] for k in keys} for who in ("ckptd", "peer")}
    for rep in range(a.daemon_reps):
        for who in order(rep):
            # keep 3 best + 10 newest: every checkpoint stays, the tree is
            # reused; settle 0 as in the latency test, for the new run
            d = start(who, a.ckptd, root, 3, a.big_ckpts, settle=0)
            r = res[who]
            r["startup"].append(d.wait_ready())
            time.sleep(a.settle_wait)
            pid = d.p.pid
            r["hwm_kib"].append(proc_status(pid, "VmHWM"))
            r["rss_kib"].append(proc_status(pid, "VmRSS"))
            r["threads"].append(proc_status(pid, "Threads"))
            c0, v0 = proc_cpu(pid), proc_ctxt(pid)
            time.sleep(a.idle)
            c1, v1 = proc_cpu(pid), proc_ctxt(pid)
            r["idle_cpu_s"].append(c1[0] - c0[0])
            r["idle_cpu_ns"].append(c1[1] - c0[1])
            r["idle_vcsw"].append(v1 - v0)
            n = newrun(d, root, who, a.big_ckpts)
            r["new_latency"].append(n["latency"])
            r["new_cpu_ns"].append(n["cpu_ns"])
            d.stop()
            deleted = sum(1 for line in d.lines if ": deleted /" in line and "/new-" not in line)
            if deleted:
                raise RuntimeError(f"{who} deleted {deleted} checkpoints of the big tree")
            log(f"daemon rep {rep} {who}: ready {r['startup'][-1]:.3f}s, HWM {r['hwm_kib'][-1]} KiB, "
                f"idle {r['idle_cpu_ns'][-1] / 1e6:.1f} ms CPU, {r['idle_vcsw'][-1]} wake-ups, "
                f"new run {n['latency']}")
    # with a Prometheus metrics file: ckptd's start-up only
    conf = os.path.join(work, "metrics.conf")
    with open(conf, "w") as f:
        f.write(f'metrics_file = "{os.path.join(work, "ckptd.prom")}";\n'
                f'watch = ( {{ path = "{root}"; pattern = "{PATTERN}"; monitor = "val_loss";\n'
                f'            keep_top_k = 3; keep_last = {a.big_ckpts}; }} );\n')
    res["ckptd"]["startup_metrics"] = []
    for rep in range(a.daemon_reps):
        d = Daemon("ckptd", [a.ckptd, "-c", conf, "--log-target", "stderr"], "ckptd: watching")
        res["ckptd"]["startup_metrics"].append(d.wait_ready())
        d.stop()
        log(f"daemon rep {rep} ckptd with metrics_file: ready {res['ckptd']['startup_metrics'][-1]:.3f}s")
    # the system calls of one start-up each (strace -f -c, not timed)
    res["startup_syscalls"] = {}
    if shutil.which("strace"):
        for who in ("ckptd", "peer"):
            out = os.path.join(work, f"strace.start.{who}.txt")
            cmd, ready = start_cmd(who, a.ckptd, root, 3, a.big_ckpts)
            d = Daemon(who, ["strace", "-f", "-c", "-o", out] + cmd, ready)
            d.wait_ready()
            # stop the traced daemon, not strace (which would detach from it)
            with open(f"/proc/{d.p.pid}/task/{d.p.pid}/children") as f:
                os.kill(int(f.read().split()[0]), signal.SIGTERM)
            d.p.wait(30)
            d.reader.join(5)
            res["startup_syscalls"][who] = strace_counts(out)
    if sum(len(fs) for _, _, fs in os.walk(root)) != n_files:
        raise RuntimeError("the big tree changed")
    shutil.rmtree(root)
    return {"runs": a.big_runs, "ckpts_per_run": a.big_ckpts, "idle_s": a.idle, **res}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckptd", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--oneshot-runs", type=int, default=500)
    ap.add_argument("--oneshot-ckpts", type=int, default=40)
    ap.add_argument("--latency-sessions", type=int, default=2)
    ap.add_argument("--latency-saves", type=int, default=40)
    ap.add_argument("--save-gap", type=float, default=0.05)
    ap.add_argument("--big-runs", type=int, default=2000)
    ap.add_argument("--big-ckpts", type=int, default=10)
    ap.add_argument("--daemon-reps", type=int, default=3)
    ap.add_argument("--settle-wait", type=float, default=3.0)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--only", default="oneshot,latency,daemon")
    a = ap.parse_args()
    t0 = time.monotonic()
    out = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    only = a.only.split(",")
    for name, fn in (("oneshot", bench_oneshot), ("latency", bench_latency), ("daemon", bench_daemon)):
        if name in only:
            t = time.monotonic()
            out[name] = fn(a, a.work)
            log(f"{name}: {time.monotonic() - t:.0f}s")
    out["duration_s"] = time.monotonic() - t0
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    log(f"done in {out['duration_s']:.0f}s")


if __name__ == "__main__":
    main()
