#!/usr/bin/python3
"""Turn bench.py's results into BENCHMARKS.md (on stdout).

Tables and the one-line reading of each are computed from the figures of
this run; bench/notes.md (the analysis, written by hand against a given
commit) is appended as it is.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def med(xs):
    return statistics.median(xs)


def q(xs, p):
    return statistics.quantiles(sorted(xs), n=100, method="inclusive")[p - 1] if len(xs) > 1 else xs[0]


def ms(x):
    return f"{x * 1e3:.1f}" if x >= 0.01 else f"{x * 1e3:.2f}"


def spread(xs, f):
    return f"{f(min(xs))}–{f(max(xs))}"


def ratio(a, b):
    if b == 0:
        return "—" if a == 0 else "∞"
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def compare(a, b, what, lower_better=True):
    """'ckptd takes 2.3× the peer's time' style sentence piece."""
    if b == 0 or a == 0:
        return f"ckptd {a:g} vs peer {b:g} {what}"
    r = a / b
    if 0.95 <= r <= 1.05:
        return f"ckptd and the peer are level on {what} ({ratio(a, b)})"
    better = (r < 1) == lower_better
    return f"ckptd is {'better' if better else 'worse'} on {what}: {ratio(a, b)} the peer's"


def row(label, xs_c, xs_p, f, unit=""):
    mc, mp = med(xs_c), med(xs_p)
    return (f"| {label} | {f(mc)}{unit} ({spread(xs_c, f)}) | {f(mp)}{unit} ({spread(xs_p, f)}) "
            f"| {ratio(mc, mp)} |")


def oneshot(o):
    c, p = o["sweep"]["ckptd"], o["sweep"]["peer"]
    n = o["runs"] * o["ckpts_per_run"]
    out = ["## 1. One-shot sweep\n",
           f"{o['runs']} runs × {o['ckpts_per_run']} checkpoints ({n} empty files, an hour old), "
           f"keep the 3 best by val_loss + the newest; a fresh tree for every repetition, "
           f"{len(c)} repetitions each, interleaved; only the sweep is timed (process start to exit, "
           f"interpreter start-up included for the peer). Both leave the same {o['kept']} files.\n",
           "| one-shot, median (min–max) | ckptd `-1` | peer `--once` | ckptd/peer |",
           "|---|---|---|---|",
           row("wall time, ms", [t["wall"] for t in c], [t["wall"] for t in p], ms),
           row("user CPU, ms", [t["user"] for t in c], [t["user"] for t in p], ms),
           row("system CPU, ms", [t["sys"] for t in c], [t["sys"] for t in p], ms),
           row("deleted", [t["deleted"] for t in c], [t["deleted"] for t in p], lambda x: f"{x:.0f}"),
           ""]
    if all(t["maxrss_kib"] for t in c + p):
        out.insert(-2, row("max RSS (GNU time), MiB", [t["maxrss_kib"] / 1024 for t in c],
                           [t["maxrss_kib"] / 1024 for t in p], lambda x: f"{x:.1f}"))
    if all("inproc" in t for t in p):
        out.insert(-1, f"| peer's sweep alone (its own clock, no interpreter start-up), ms | | "
                       f"{ms(med([t['inproc'] for t in p]))} ({spread([t['inproc'] for t in p], ms)}) | "
                       f"{ratio(med([t['wall'] for t in c]), med([t['inproc'] for t in p]))} |")
    ro = o["readonly"]
    out += ["Read-only modes on one unchanged tree (same size), interleaved:\n",
            "| read-only, median (min–max) | ckptd | peer `--once -n` | ckptd/peer |",
            "|---|---|---|---|",
            row("`ckptd -1 -n`, wall ms", [t["wall"] for t in ro["ckptd_dry"]],
                [t["wall"] for t in ro["peer_dry"]], ms),
            row("`ckptd -l`, wall ms", [t["wall"] for t in ro["ckptd_list"]],
                [t["wall"] for t in ro["peer_dry"]], ms),
            ""]
    wc, wp = med([t["wall"] for t in c]), med([t["wall"] for t in p])
    out.append(f"**Reading:** {compare(wc, wp, 'one-shot wall time')} "
               f"({ms(wc)} vs {ms(wp)} ms for {n} checkpoints, "
               f"{wc / n * 1e6:.1f} vs {wp / n * 1e6:.1f} µs per checkpoint).\n")
    cap = o["default_cap"]
    out.append(f"The ad-hoc command as the README writes it (`ckptd -1 -w DIR --pattern ... --keep-top-k 3 "
               f"--keep-last 1`, default `max_delete_per_sweep = 1000`) deleted {cap['deleted']} of "
               f"{c[0]['deleted']} and exited {cap['rc']}; the timed runs use a config file "
               f"with `max_delete_per_sweep = 1000000` so both do the same work.\n")
    prof = o.get("profile", {})
    sc, sp = prof.get("syscalls_ckptd"), prof.get("syscalls_peer")
    if sc and sp:
        names = sorted(set(sc) | set(sp), key=lambda k: -(sc.get(k, 0) + sp.get(k, 0)))[:10]
        out += ["System calls for one sweep of the same tree (`strace -f -c`, not timed), "
                "per checkpoint:\n",
                "| syscall | ckptd | peer |", "|---|---|---|"]
        out += [f"| {k} | {sc.get(k, 0) / n:.2f} | {sp.get(k, 0) / n:.2f} |" for k in names]
        out.append(f"| **all** | {sum(sc.values()) / n:.2f} | {sum(sp.values()) / n:.2f} |\n")
    if prof.get("perf_ckptd_dso"):
        out += ["`perf record -e cpu-clock` of `ckptd -1` on the same tree, by DSO and by symbol "
                "(self time, ≥ 1%):\n", "```"] + prof["perf_ckptd_dso"] + [""] + \
               prof.get("perf_ckptd", []) + ["```\n"]
    return out


def latency(l):
    c, p = l["latency"]["ckptd"], l["latency"]["peer"]
    out = ["## 2. Live latency\n",
           "One run, `--settle 0` for ckptd; a writer creates checkpoints one after another "
           "(open, 4 KiB write, close, then 50–60 ms pause) with rising val_loss, so closing epoch N "
           "makes epoch N−1 (the previous newest) the one victim. Latency = the writer's close() "
           "returning → the victim's name leaving the directory (IN_DELETE or IN_MOVED_FROM, read by "
           "the harness through its own inotify watch; ckptd renames a victim to a tombstone before it "
           "unlinks it). The peer reacts to watchdog's on_closed/on_moved (python3-watchdog 2.x has "
           "FileClosedEvent, so no debounce is needed). Sessions alternate ckptd/peer.\n",
           "| latency | ckptd | peer | ckptd/peer |", "|---|---|---|---|",
           f"| saves measured (missed) | {len(c)} ({l['missed']['ckptd']}) | {len(p)} ({l['missed']['peer']}) | |",
           f"| median, ms | {ms(med(c))} | {ms(med(p))} | {ratio(med(c), med(p))} |",
           f"| IQR, ms | {ms(q(c, 25))}–{ms(q(c, 75))} | {ms(q(p, 25))}–{ms(q(p, 75))} | |",
           f"| min–max, ms | {ms(min(c))}–{ms(max(c))} | {ms(min(p))}–{ms(max(p))} | |",
           f"| p90, ms | {ms(q(c, 90))} | {ms(q(p, 90))} | {ratio(q(c, 90), q(p, 90))} |",
           f"| daemon CPU per save, ms | {l['cpu_ns']['ckptd'] / 1e6 / l['saves']['ckptd']:.2f} | "
           f"{l['cpu_ns']['peer'] / 1e6 / l['saves']['peer']:.2f} | "
           f"{ratio(l['cpu_ns']['ckptd'] / l['saves']['ckptd'], l['cpu_ns']['peer'] / l['saves']['peer'])} |",
           "",
           f"**Reading:** {compare(med(c), med(p), 'median close→deleted latency')} "
           f"({ms(med(c))} vs {ms(med(p))} ms); "
           f"{compare(l['cpu_ns']['ckptd'] / l['saves']['ckptd'], l['cpu_ns']['peer'] / l['saves']['peer'], 'CPU per save')}.\n"]
    return out


def daemon(d):
    c, p = d["ckptd"], d["peer"]
    n = d["runs"] * d["ckpts_per_run"]
    kib = lambda x: f"{x / 1024:.1f}"
    out = ["## 3. Memory and start-up\n",
           f"Both daemons watch one tree of {d['runs']} run directories × {d['ckpts_per_run']} "
           f"checkpoints ({n} files, an hour old) with keep top 3 + last {d['ckpts_per_run']}, so "
           f"the first sweep decides every checkpoint and deletes none and the tree is reused; "
           f"{len(c['startup'])} start-ups each, alternating. Start-up = spawn → ckptd's "
           f"\"watching\" log line / the peer's \"ready\" line (its watches are added and its first "
           f"sweep is done). Memory is read from /proc/PID/status 3 s after that. The strace table "
           f"below comes from one more start-up of each under `strace -f -c` (not timed).\n",
           "| daemon, median (min–max) | ckptd | peer | ckptd/peer |", "|---|---|---|---|",
           row("start-up, ms", c["startup"], p["startup"], ms),
           row("VmHWM (peak RSS), MiB", c["hwm_kib"], p["hwm_kib"], kib),
           row("VmRSS after start-up, MiB", c["rss_kib"], p["rss_kib"], kib),
           row("threads", c["threads"], p["threads"], lambda x: f"{x:.0f}"),
           row("start-up with `metrics_file` set (peer: plain), ms", c["startup_metrics"], p["startup"], ms),
           ""]
    sc, sp = d.get("startup_syscalls", {}).get("ckptd"), d.get("startup_syscalls", {}).get("peer")
    if sc and sp:
        names = sorted(set(sc) | set(sp), key=lambda k: -(sc.get(k, 0) + sp.get(k, 0)))[:8]
        out += ["System calls of one start-up, per checkpoint of the tree:\n",
                "| syscall | ckptd | peer |", "|---|---|---|"]
        out += [f"| {k} | {sc.get(k, 0) / n:.2f} | {sp.get(k, 0) / n:.2f} |" for k in names]
        out += [f"| **all** | {sum(sc.values()) / n:.2f} | {sum(sp.values()) / n:.2f} |", ""]
    out += [f"**Reading:** {compare(med(c['hwm_kib']), med(p['hwm_kib']), 'peak memory')}, and "
           f"{compare(med(c['startup']), med(p['startup']), 'start-up time')} "
           f"({ms(med(c['startup']))} vs {ms(med(p['startup']))} ms).\n"]
    out += ["## 4. Idle cost\n",
           f"Right after the memory reading, {d['idle_s']:.0f} s with nothing happening in the tree: "
           "CPU time summed over the threads' /proc/PID/task/*/schedstat (ns), utime+stime from "
           "/proc/PID/stat (10 ms ticks), and wake-ups = voluntary context switches summed over all "
           "threads.\n",
           "| idle, median (min–max) | ckptd | peer | ckptd/peer |", "|---|---|---|---|",
           row(f"CPU over {d['idle_s']:.0f} s, ms", [x / 1e9 for x in c["idle_cpu_ns"]],
               [x / 1e9 for x in p["idle_cpu_ns"]], ms),
           row("utime+stime, ms", c["idle_cpu_s"], p["idle_cpu_s"], lambda x: f"{x * 1e3:.0f}"),
           row("wake-ups", c["idle_vcsw"], p["idle_vcsw"], lambda x: f"{x:.0f}"),
           "",
           f"**Reading:** ckptd woke {med(c['idle_vcsw']):.0f} and the peer {med(p['idle_vcsw']):.0f} "
           f"times in {d['idle_s']:.0f} s idle (medians), using {ms(med(c['idle_cpu_ns']) / 1e9)} and "
           f"{ms(med(p['idle_cpu_ns']) / 1e9)} ms of CPU; ckptd's first timer after start-up is its "
           f"`check_interval` free-space check (30 s by default), outside this window.\n"]
    lc = [x for x in c["new_latency"] if x is not None]
    lp = [x for x in p["new_latency"] if x is not None]
    out += ["## 5. A new run on the big tree\n",
            f"Still on the {d['runs']}-run tree: `mkdir` a new run directory, 1 s later write "
            f"{d['ckpts_per_run'] + 4} checkpoints into it back to back (rising val_loss: closing "
            f"the last one makes epoch 3 the victim). CPU = what the daemon used from the mkdir to "
            f"0.5 s after the victim went; latency = last close() → victim gone. ckptd runs with "
            f"`--settle 0` in sections 3–5 (it changes nothing at start-up: the files are old). With "
            f"back-to-back writes a sweep armed by an earlier close often runs just after the last "
            f"one, so this latency (3 samples) is not the per-save latency of section 2.\n",
            "| new run, median (min–max) | ckptd | peer | ckptd/peer |", "|---|---|---|---|",
            row("daemon CPU, ms", [x / 1e9 for x in c["new_cpu_ns"]], [x / 1e9 for x in p["new_cpu_ns"]], ms)]
    if lc and lp:
        out.append(row("close → victim gone, ms", lc, lp, ms))
    out += ["",
            f"**Reading:** {compare(med(c['new_cpu_ns']), med(p['new_cpu_ns']), 'CPU for a new run')}"
            + (f"; {compare(med(lc), med(lp), 'latency in the new run')}" if lc and lp else "") + ".\n"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--ckptd", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--command", default="make bench")
    a = ap.parse_args()
    with open(a.results) as f:
        r = json.load(f)
    top = os.path.dirname(HERE)
    head = sh("git", "-C", top, "rev-parse", "--short", "HEAD")
    dirty = sh("git", "-C", top, "status", "--porcelain", "--untracked-files=no")
    fs = os.environ.get("BENCH_FS") or sh("stat", "-f", "-c", "%T", a.work)
    wd = sh("/usr/bin/python3", "-c", "import watchdog.version as v; print(v.VERSION_STRING)")
    mem = sh("awk", "/MemTotal/ {printf \"%.1f GiB\", $2/1048576}", "/proc/meminfo")
    out = ["# ckptd benchmarks\n",
           "ckptd against a peer baseline measured in the same run: `bench/peer_retention.py`, the "
           "Python script an ML engineer would write instead (os.scandir for the one-shot sweep, "
           "Debian's python3-watchdog inotify observer for the live mode, the same name pattern and "
           "policy: per run directory, recursive, keep the k best by val_loss + the newest by epoch, "
           "os.remove the rest). ckptd and the peer run interleaved on fresh, identical trees; every "
           "figure is a median over repetitions with min–max or IQR, and every ratio is ckptd/peer "
           "from this run (below 1 favours ckptd for times and sizes). The machine is a noisy 2-core "
           "VM: read differences under ~20% as noise. Nothing here is used by the tests.\n",
           "## Machine and command\n",
           f"- CPU: {cpu_model()}, `nproc` = {os.cpu_count()}; memory {mem}",
           f"- kernel: {platform.release()}; trees on {fs}",
           f"- ckptd: `{sh(a.ckptd, '-V')}`, built by `make` (`-O2 -g`), tree at {head}"
           + (" with uncommitted changes (other work in progress)" if dirty else ""),
           f"- peer: /usr/bin/python3 {platform.python_version()}, python3-watchdog {wd}",
           f"- run: {r['started']}, {r['duration_s']:.0f} s in all",
           f"- command: `{a.command}` (= `CKPTD=$PWD/build/ckptd bash bench/run.sh`: "
           "bench/bench.py measures, bench/report.py writes this file)\n"]
    if "oneshot" in r:
        out += oneshot(r["oneshot"])
    if "latency" in r:
        out += latency(r["latency"])
    if "daemon" in r:
        out += daemon(r["daemon"])
    notes = os.path.join(HERE, "notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            out.append(f.read().rstrip("\n") + "\n")
    print("\n".join(out).rstrip("\n"))


if __name__ == "__main__":
    main()
