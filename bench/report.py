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
    out = ["## B5. One-shot sweep\n",
           f"{o['runs']} runs × {o['ckpts_per_run']} checkpoints ({n} empty files, an hour old), "
           f"keep the 3 best by val_loss + the newest; a fresh tree for every repetition, "
           f"{len(c)} repetitions each, interleaved"
           + (f" (fewer than 5: ckptd's first sweep took {o['reps_cut']['first_s']:.0f} s, and the "
              f"repetitions are kept within {o['reps_cut']['budget_s']:.0f} s of ckptd sweeps; the strace "
              f"and perf runs of one more sweep are left out)" if o.get("reps_cut") else "")
           + f"; only the sweep is timed (process start to exit, "
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
    out = ["## Live latency: close() → victim gone\n",
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


MIB = 1024.0


def us(x):
    return f"{x * 1e6:.1f}" if x < 1e-3 else f"{x * 1e6:.0f}"


def mib(kib):
    return f"{kib / MIB:.1f}"


def met(ok):
    return "**met**" if ok else "not met"


def idle_per60(i):
    return [v * 60.0 / i["window_s"] for v in i["vcsw"]]


def targets(r):
    """The summary rows: (id, measure, target, ckptd, baseline, ratio, met)."""
    rows = []
    b = r.get("big")
    if b:
        sc, s = b["scan"], b["sessions"]
        f1 = med([t["wall"] for t in sc["find"]])
        c1 = med([t["wall"] for t in sc["ckptd"]])
        rows.append(("B1", f"`ckptd -1 -n`, {b['runs'] * b['ckpts_per_run']} checkpoints in {b['runs']} runs, "
                     "warm cache", "≤ 1.3× find",
                     f"{ms(c1)} ms", f"find {ms(f1)} ms", ratio(c1, f1), met(c1 <= 1.3 * f1)))
        fr = med(s["ckptd"]["find_wall"])
        cr = med(s["ckptd"]["startup"])
        rows.append(("B1", "daemon start → READY=1, same tree", "≤ 1.3× find",
                     f"{ms(cr)} ms", f"find {ms(fr)} ms", ratio(cr, fr), met(cr <= 1.3 * fr)))
        c2, p2 = med(s["ckptd"]["save_cpu_ns"]) / 1e9, med(s["peer"]["save_cpu_ns"]) / 1e9
        rows.append(("B2", f"CPU per new checkpoint, {b['runs']} runs × {b['ckpts_per_run']} watched, "
                     f"{b['saves']} saves",
                     "≤ 40 µs and ≤ 0.1× peer", f"{us(c2)} µs", f"peer {us(p2)} µs", ratio(c2, p2),
                     met(c2 <= 40e-6 and c2 <= 0.1 * p2)))
        lc, lp = s["ckptd"]["latency"], s["peer"]["latency"]
        if lc:
            rows.append(("B3", "rename into place → victim gone, settle 0, p50 / p99",
                         "p50 ≤ 0.2 ms, p99 ≤ 1 ms", f"{ms(q(lc, 50))} / {ms(q(lc, 99))} ms",
                         f"peer {ms(q(lp, 50))} / {ms(q(lp, 99))} ms" if lp else "—",
                         f"{ratio(q(lc, 50), q(lp, 50))} / {ratio(q(lc, 99), q(lp, 99))}" if lp else "",
                         met(q(lc, 50) <= 0.2e-3 and q(lc, 99) <= 1e-3)))
        hc, rc = med(s["ckptd"]["hwm_kib"]), med(s["ckptd"]["rss_kib"])
        hp, rp = med(s["peer"]["hwm_kib"]), med(s["peer"]["rss_kib"])
        rows.append(("B4", f"VmHWM / VmRSS tracking {b['runs'] * b['ckpts_per_run']} checkpoints",
                     "both ≤ 12 MiB",
                     f"{mib(hc)} / {mib(rc)} MiB", f"peer {mib(hp)} / {mib(rp)} MiB",
                     f"{ratio(hc, hp)} / {ratio(rc, rp)}", met(hc <= 12 * MIB and rc <= 12 * MIB)))
    o = r.get("oneshot")
    if o:
        c5, p5 = med([t["wall"] for t in o["sweep"]["ckptd"]]), med([t["wall"] for t in o["sweep"]["peer"]])
        n = o["runs"] * o["ckpts_per_run"]
        dl = med([t["deleted"] for t in o["sweep"]["ckptd"]])
        rows.append(("B5", f"one-shot sweep deleting {dl:.0f} of {n}", "≤ 0.8× peer",
                     f"{ms(c5)} ms", f"peer {ms(p5)} ms", ratio(c5, p5), met(c5 <= 0.8 * p5)))
    d = r.get("dirckpt")
    if d:
        c6, p6 = med([t["wall"] for t in d["ckptd"]]), med([t["wall"] for t in d["rm"]])
        rows.append(("B6", f"removing a {d['files']}-file directory checkpoint", "≤ 1.1× rm -rf",
                     f"{ms(c6)} ms", f"rm -rf {ms(p6)} ms", ratio(c6, p6), met(c6 <= 1.1 * p6)))
    u = r.get("onerun")
    if u and b and u["blocks"]:
        c7, c2 = med(u["blocks"]) / 1e9, med(b["sessions"]["ckptd"]["save_cpu_ns"]) / 1e9
        rows.append(("B7", f"CPU per new checkpoint, {u['ckpts']} in one run", "≤ 2× B2",
                     f"{us(c7)} µs", f"B2 {us(c2)} µs", ratio(c7, c2), met(c7 <= 2 * c2)))
    i = b.get("idle") if b else None
    if i:
        w = med(idle_per60(i))
        rows.append(("B8", "wake-ups in 60 s idle, watchdog off", "≤ 3", f"{w:.0f}", "—", "",
                     met(w <= 3)))
    return rows


def summary_table(r):
    rows = targets(r)
    if not rows:
        return []
    out = ["## Targets\n",
           "Medians of this run; the baseline is measured in the same run. Details, spreads and "
           "commands in the sections below.\n",
           "| # | measure | target | ckptd | baseline | ratio | |", "|---|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(x) + " |" for x in rows]
    below = floor_bounds(r)
    if below:
        out += ["", "**Against the kernel's own cost** (the contract's system calls alone, measured in this "
                "run, see \"The contract's system calls alone\"): " + "; ".join(below) + "."]
    return out + [""]


# --- the contract's system calls alone (bench/kfloor.c) ---

def kseq(r, name):
    """A kfloor sequence of this run, or None."""
    k = r.get("kfloor") or {}
    return (k.get("sequences") or {}).get(name)


def kper(seq, key="wall_us", stat="median"):
    """Seconds per unit (save, victim, entry, file) of a kfloor sequence."""
    return seq[key][stat] / seq["units"] / 1e6


def floor_rows(r):
    """(operation, ckptd or None, floor, unit formatter, calls per unit, baseline name, baseline measured
    or None, baseline's floor or None): one per figure that has a floor."""
    rows = []
    b, o, d = r.get("big"), r.get("oneshot"), r.get("dirckpt")
    sv = kseq(r, "save")
    if sv:
        c2 = med(b["sessions"]["ckptd"]["save_cpu_ns"]) / 1e9 if b else None
        rows.append(("B2: CPU per new checkpoint, µs", c2, kper(sv, "cpu_us"), us, sv["syscalls"],
                     "", None, None))
        lc = b["sessions"]["ckptd"]["latency"] if b else []
        if "latency_us" in sv:
            rows.append(("B3: rename → victim gone, p50, ms", q(lc, 50) if lc else None,
                         kper(sv, "latency_us"), ms, None, "", None, None))
    def scaled(label, ours, base, n, seq, base_name, base_seq):
        """A whole operation: ckptd's and the baseline's wall times beside
        the floors of their calls, per unit times n units."""
        rows.append((label, ours, kper(seq) * n, ms, seq["syscalls"] / seq["units"], base_name, base,
                     kper(base_seq) * n))

    def wall(ts):
        return med([t["wall"] for t in ts])

    sw, pw = kseq(r, "sweep_run"), kseq(r, "peer_run")
    if sw and pw:
        n = o["runs"] * o["ckpts_per_run"] if o else 20000
        scaled(f"B5: one-shot sweep of {n} checkpoints, wall ms", wall(o["sweep"]["ckptd"]) if o else None,
               wall(o["sweep"]["peer"]) if o else None, n, sw, "peer `--once`", pw)
    v, pv = kseq(r, "victim"), kseq(r, "peer_victim")
    if v and pv:
        rows.append(("B5: one victim (its lease says its flock pin), CPU µs", None, kper(v, "cpu_us"), us,
                     v["syscalls"], "peer: unlink + a line", None, kper(pv, "cpu_us")))
    dr, rm = kseq(r, "dir_remove"), kseq(r, "rm_dir")
    if dr and rm:
        scaled(f"B6: removing a {dr['units']}-file directory, wall ms", wall(d["ckptd"]) if d else None,
               wall(d["rm"]) if d else None, dr["units"], dr, "rm -rf", rm)
    sc, fd = kseq(r, "scan_dir"), kseq(r, "find_dir")
    if sc and fd:
        n = b["runs"] * b["ckpts_per_run"] if b else 100000
        scaled(f"B1: `ckptd -1 -n` on {n} checkpoints, wall ms", wall(b["scan"]["ckptd"]) if b else None,
               wall(b["scan"]["find"]) if b else None, n, sc, "find", fd)
    return rows


def floor_bounds(r):
    """Which targets lie below what the kernel takes for the contract here."""
    out = []
    b, o, d = r.get("big"), r.get("oneshot"), r.get("dirckpt")

    def say(tid, rule, target_s, floor_s, f, unit):
        t = f"{tid}'s target, {rule}{f(target_s)} {unit},"
        if floor_s > target_s:
            out.append(f"{t} is below the contract's calls alone ({f(floor_s)} {unit}): not reachable on "
                       "this machine")
        else:
            out.append(f"{t} is above them ({f(floor_s)} {unit})")

    sv = kseq(r, "save")
    if sv:
        say("B2", "", 40e-6, kper(sv, "cpu_us"), us, "µs")
        if "latency_us" in sv:
            say("B3", "p50 ", 0.2e-3, kper(sv, "latency_us"), ms, "ms")
    sw = kseq(r, "sweep_run")
    if sw and o:
        n = o["runs"] * o["ckpts_per_run"]
        say("B5", "0.8× the peer = ", 0.8 * med([t["wall"] for t in o["sweep"]["peer"]]), kper(sw) * n, ms, "ms")
    dr = kseq(r, "dir_remove")
    if dr and d:
        say("B6", "1.1× rm -rf = ", 1.1 * med([t["wall"] for t in d["rm"]]), kper(dr) * dr["units"], ms, "ms")
    sc = kseq(r, "scan_dir")
    if sc and b:
        n = b["runs"] * b["ckpts_per_run"]
        say("B1", "1.3× find = ", 1.3 * med([t["wall"] for t in b["scan"]["find"]]), kper(sc) * n, ms, "ms")
    return out


def kfloor(k, r):
    out = ["## The contract's system calls alone\n"]
    if "sequences" not in k:
        return out + [f"Not measured in this run: {k.get('error', 'no figures')}.\n"]
    out += [f"`build/kfloor` (bench/kfloor.c, `{k.get('command', 'kfloor WORK')}`) makes the same kind of files "
            "on the same file system and performs, per operation, only the system calls ckptd's safety "
            "contract makes (victim opened with `openat2` beneath its run, `fstat`, `fcntl(F_SETLEASE)`, "
            "which also answers its flock pin, `fstatat` of the watch path and of the run's `..` (a tree moved "
            "away during a pass), `unlinkat` on the run's fd, `close`, a log line to /dev/null; "
            "`/proc/locks` read once per run for directory checkpoints and groups; the scan's "
            "`statx` with `STATX_MNT_ID`), with no index, policy or parsing; beside them, the calls of what "
            "ckptd is compared with (find's `fstatat`, the peer's `unlink` of the whole path and a line, "
            "rm -rf's `unlinkat`). Per save, a thread plays the trainer (`NAME.tmp`, 4 KiB, close, "
            "rename) while the timed thread sleeps in `epoll_wait` on a real inotify watch, as the daemon "
            "does: its CPU (CLOCK_THREAD_CPUTIME_ID) includes being woken twice; its latency is the "
            "trainer's `rename()` → the victim's `unlinkat()` returning. Scaled figures (B1, B5, B6) are "
            "per entry, checkpoint or file times the bench's count, in-process (no exec, no process "
            "start-up): a lower bound for ckptd's and the baseline's wall time. Medians; the clocks' own "
            f"cost ({k['clock_overhead_us']['cpu']:.2f} µs) is taken off.\n",
            "| operation | ckptd, this run | contract's calls alone | ckptd/floor | system calls per unit "
            "| compared with | measured | its calls alone | contract/its floor |",
            "|---|---|---|---|---|---|---|---|---|"]
    for op, c, fl, f, calls, base, bm, bf in floor_rows(r):
        out.append(f"| {op} | {f(c) if c is not None else '—'} | {f(fl)} | "
                   f"{ratio(c, fl) if c is not None else ''} | {f'{calls:.2f}' if calls is not None else ''} | "
                   f"{base} | {f(bm) if bm is not None else ''} | {f(bf) if bf is not None else ''} | "
                   f"{ratio(fl, bf) if bf else ''} |")
    seqs = k["sequences"]
    out += ["", "Per operation as timed (median, quartiles; CPU and wall µs per operation, system calls "
            "per operation as made):\n",
            "| sequence | what | operations | system calls | CPU µs | wall µs |", "|---|---|---|---|---|---|"]
    for name, sq in seqs.items():
        if "cpu_us" not in sq:
            continue
        out.append(f"| {name} | {sq['what']} | {sq['ops']} | {sq['syscalls']:.0f} | "
                   f"{sq['cpu_us']['median']:.1f} ({sq['cpu_us']['q1']:.1f}–{sq['cpu_us']['q3']:.1f}) | "
                   f"{sq['wall_us']['median']:.1f} ({sq['wall_us']['q1']:.1f}–{sq['wall_us']['q3']:.1f}) |")
    v, pv, lk = seqs.get("victim"), seqs.get("peer_victim"), seqs.get("proc_locks")
    if v and pv and "cpu_us" in v and "cpu_us" in pv:
        out += ["", f"**Reading:** the contract costs {ratio(v['cpu_us']['median'], pv['cpu_us']['median'])} "
                f"the peer's calls per victim ({v['cpu_us']['median']:.1f} vs {pv['cpu_us']['median']:.1f} µs "
                f"CPU, {v['syscalls']:.0f} vs {pv['syscalls']:.0f} calls)"
                + (f"; a run of directory checkpoints or groups adds one /proc/locks read "
                   f"({lk['cpu_us']['median']:.1f} µs)" if lk and "cpu_us" in lk
                   else "") + "."]
    return out + [""]


def big(b):
    sc, s = b["scan"], b["sessions"]
    c, p = s["ckptd"], s["peer"]
    n = b["runs"] * b["ckpts_per_run"]
    per = b["ckpts_per_run"]
    out = [f"## B1. Scanning {n} checkpoints: one-shot and start-up\n",
           f"One tree of {b['runs']} run directories × {per} checkpoints ({n} empty files, an hour "
           f"old, on the file system named above, warm in the page cache), policy keep the 3 best by "
           f"val_loss + the newest {per - 3}: every checkpoint is kept (the 3 oldest of each run are "
           f"its best), so the tree is reused. Baseline: `find ROOT -printf '%s %p\\n' >/dev/null` "
           f"(one stat per entry and a line out, the least any tool that knows sizes does). "
           f"{len(sc['find'])} repetitions each, interleaved.\n",
           "| scan, median (min–max) | ckptd `-1 -n -c CONF` | find | ckptd/find | peer `--once -n` |",
           "|---|---|---|---|---|",
           f"| wall time, ms | {ms(med([t['wall'] for t in sc['ckptd']]))} "
           f"({spread([t['wall'] for t in sc['ckptd']], ms)}) | {ms(med([t['wall'] for t in sc['find']]))} "
           f"({spread([t['wall'] for t in sc['find']], ms)}) | "
           f"{ratio(med([t['wall'] for t in sc['ckptd']]), med([t['wall'] for t in sc['find']]))} | "
           f"{ms(med([t['wall'] for t in sc['peer']]))} ({spread([t['wall'] for t in sc['peer']], ms)}) |"]
    for k, lab in (("user", "user CPU"), ("sys", "system CPU")):
        out.append(f"| {lab}, ms | {ms(med([t[k] for t in sc['ckptd']]))} | {ms(med([t[k] for t in sc['find']]))} | "
                   f"{ratio(med([t[k] for t in sc['ckptd']]), med([t[k] for t in sc['find']]))} | "
                   f"{ms(med([t[k] for t in sc['peer']]))} |")
    if all(t["maxrss_kib"] for t in sc["ckptd"] + sc["find"]):
        out.append(f"| max RSS, MiB | {mib(med([t['maxrss_kib'] for t in sc['ckptd']]))} | "
                   f"{mib(med([t['maxrss_kib'] for t in sc['find']]))} | | "
                   f"{mib(med([t['maxrss_kib'] for t in sc['peer']]))} |")
    out += ["",
            f"Start-up: `ckptd -c CONF` (the same policy, `settle = 0`) as a daemon with "
            f"`NOTIFY_SOCKET` pointing at a datagram socket the harness reads, as systemd's "
            f"`Type=notify` does; start-up = spawn → READY=1 received. The peer's is spawn → its "
            f"\"ready\" line (watches added, first sweep done). {len(c['startup'])} start-ups each, "
            f"alternating; a `find` run just before each is the baseline.\n",
            "| start-up, median (min–max) | ckptd | find | peer | ckptd/find | ckptd/peer |",
            "|---|---|---|---|---|---|",
            f"| spawn → ready, ms | {ms(med(c['startup']))} ({spread(c['startup'], ms)}) | "
            f"{ms(med(c['find_wall']))} ({spread(c['find_wall'], ms)}) | "
            f"{ms(med(p['startup']))} ({spread(p['startup'], ms)}) | "
            f"{ratio(med(c['startup']), med(c['find_wall']))} | {ratio(med(c['startup']), med(p['startup']))} |",
            ""]
    out += ["## B2, B3. New checkpoints in a big watched tree\n",
            f"The same tree watched; in each session {b['saves']} saves, one at a time, each into a "
            f"different run, as a trainer saves: write `NAME.tmp` (4 KiB), close, 3–6 ms later "
            f"`rename()` it to NAME, wait for the victim to go, 3–6 ms pause. NAME is worse than the "
            f"run's 3 best, so it displaces the oldest of the newest {per - 3}: one deletion per save. "
            f"CPU = the daemon's on-CPU time over the saves (summed /proc/PID/task/*/schedstat, "
            f"user+system, ns), divided by the saves; utime+stime from /proc/PID/stat is shown too "
            f"(10 ms ticks, too coarse for one save). Latency = rename() called → the victim's name "
            f"leaving its run (IN_DELETE or IN_MOVED_FROM, the harness's own inotify watch); the clock starts just before "
            f"`rename()`, so a harness preempted after it errs long, not short. The saves begin once the "
            f"daemon is quiet after ready (at least 1 s, then until it spends under 2 ms of CPU in 200 ms): "
            f"ckptd asks every checkpoint of a run scanned whole whether it is being written (ckptd(8) "
            f"\"In use\") in idle time after READY=1; that CPU is shown apart, once per start, not per save. "
            f"Each of these saves is its run's first since the start. "
            f"Then, in the same session, {b['saves']} more saves, one more into each of the same runs: "
            f"the cost of a save in a run decided before (\"the same runs' next save\"; B2's target is "
            f"judged on the first). After "
            f"each session the harness checks that exactly the victims went and puts the tree back. "
            f"{len(c['saves'])} sessions each, alternating.\n",
            "| saves, median (min–max) | ckptd | peer | ckptd/peer |", "|---|---|---|---|",
            row("CPU per save (schedstat), µs", [x / 1e9 for x in c["save_cpu_ns"]],
                [x / 1e9 for x in p["save_cpu_ns"]], us),
            row("CPU per save (utime+stime), µs", c["save_cpu_s"], p["save_cpu_s"], us),
            row("CPU per save, the same runs' next save (schedstat), µs", [x / 1e9 for x in c["next_cpu_ns"]],
                [x / 1e9 for x in p["next_cpu_ns"]], us),
            row("CPU from ready to quiet, before the saves (schedstat), ms",
                [x / 1e9 for x in c["ready_cpu_ns"]], [x / 1e9 for x in p["ready_cpu_ns"]], ms),
            row("ready to quiet, wall time, s", c["ready_quiet"], p["ready_quiet"],
                lambda x: f"{x:.2f}"),
            f"| sessions never quiet before the saves (60 s) | {sum(c.get('never_quiet', []))} | "
            f"{sum(p.get('never_quiet', []))} | |",
            f"| saves timed (missed) | {sum(c['saves'])} ({sum(c['missed'])}) | "
            f"{sum(p['saves'])} ({sum(p['missed'])}) | |"]
    lc, lp = c["latency"], p["latency"]
    if lc and lp:
        out += [f"| latency p50, ms | {ms(q(lc, 50))} | {ms(q(lp, 50))} | {ratio(q(lc, 50), q(lp, 50))} |",
                f"| latency p90, ms | {ms(q(lc, 90))} | {ms(q(lp, 90))} | {ratio(q(lc, 90), q(lp, 90))} |",
                f"| latency p99, ms | {ms(q(lc, 99))} | {ms(q(lp, 99))} | {ratio(q(lc, 99), q(lp, 99))} |",
                f"| latency min–max, ms | {ms(min(lc))}–{ms(max(lc))} | {ms(min(lp))}–{ms(max(lp))} | |"]
    nc, np_ = c["next_latency"], p["next_latency"]
    if nc and np_:
        out += [f"| the next save: latency p50, ms | {ms(q(nc, 50))} | {ms(q(np_, 50))} | "
                f"{ratio(q(nc, 50), q(np_, 50))} |",
                f"| the next save: latency p99, ms | {ms(q(nc, 99))} | {ms(q(np_, 99))} | "
                f"{ratio(q(nc, 99), q(np_, 99))} |"]
    out += ["",
            f"## B4. Memory while tracking {n} checkpoints\n",
            "From /proc/PID/status of the same sessions: once quiet after ready (see B2), and after the saves "
            "(VmHWM is the peak since spawn, start-up included).\n",
            "| memory, median (min–max) | ckptd | peer | ckptd/peer |", "|---|---|---|---|",
            row("VmHWM after the saves, MiB", c["hwm_kib"], p["hwm_kib"], mib),
            row("VmRSS after the saves, MiB", c["rss_kib"], p["rss_kib"], mib),
            row("VmHWM once quiet after ready, MiB", c["hwm_start_kib"], p["hwm_start_kib"], mib),
            row("VmRSS once quiet after ready, MiB", c["rss_start_kib"], p["rss_start_kib"], mib),
            row("threads", c["threads"], p["threads"], lambda x: f"{x:.0f}"),
            ""]
    return out


def cpu_vs_b2(xs_ns, b):
    """The row of CPU per save against B2's ckptd sessions (b: the big
    results, or None)."""
    c = med(xs_ns) / 1e9
    c2 = med(b["sessions"]["ckptd"]["save_cpu_ns"]) / 1e9 if b else None
    return (f"| CPU per save, µs | {us(c)} ({spread([x / 1e9 for x in xs_ns], us)}) | "
            + (f"{us(c2)} | {ratio(c, c2)} |" if c2 else "— | |"))


def onerun(u, b):
    out = [f"## B7. One run of {u['ckpts']} checkpoints\n"]
    if not u["blocks"]:
        return out + ["No save completed.\n"]
    out += [f"One run of {u['ckpts']} checkpoints (the 3 oldest the best, keep 3 best + newest "
            f"{u['ckpts'] - 3}), ckptd only, one daemon; the same saves as B2, all into that run, in "
            f"{len(u['blocks'])} blocks of up to {u.get('block', max(u['saves']))} saves, each block "
            f"stopped after {u['cap_s'] / max(1, u.get('nblocks', len(u['blocks']))):.0f} s; "
            f"{sum(u['saves'])} saves in all ({', '.join(str(x) for x in u['saves'])} per block). "
            f"CPU per save per block (schedstat), median over the blocks. Start-up on this run took "
            f"{ms(u['startup'])} ms; VmHWM {mib(u['hwm_kib'])} MiB.\n",
            "| one run | ckptd, median (min–max) | B2 (100 per run) | ratio |", "|---|---|---|---|",
            cpu_vs_b2(u["blocks"], b)]
    if u["latency"]:
        out.append(f"| latency p50 / p99, ms | {ms(q(u['latency'], 50))} / {ms(q(u['latency'], 99))} | | |")
    return out + [""]


def lightning(l, b):
    out = ["## B2 under the lightning preset\n"]
    if not l["saves"]:
        return out + ["No save completed.\n"]
    out += [f"B2's tree and saves ({l['runs']} runs × {l['ckpts_per_run']}, {med(l['saves']):.0f} saves a session, "
            f"{len(l['saves'])} sessions) with Lightning's key=value names, the monitor in each "
            "(`epoch=12-val_loss=0.8123.ckpt`), watched with `preset = \"lightning\"`, whose metric logs "
            "(`../metrics.csv`, TensorBoard's events file) rank only names without the monitor; ckptd only, "
            "B2's ckptd sessions the baseline.\n",
            "| lightning preset | ckptd, median (min–max) | B2 (a pattern) | ratio |", "|---|---|---|---|",
            cpu_vs_b2(l["save_cpu_ns"], b)]
    if l["latency"]:
        lb = b["sessions"]["ckptd"]["latency"] if b else []
        out.append(f"| latency p50 / p99, ms | {ms(q(l['latency'], 50))} / {ms(q(l['latency'], 99))} | "
                   + (f"{ms(q(lb, 50))} / {ms(q(lb, 99))} | |" if lb else "| |"))
    return out + [""]


def burst(u):
    c, p = u["daemon"], u["oneshot"]

    def sec(x):
        return f"{x:.2f}"

    def cpu(xs):
        return [x["cpu_ns"] / 1e9 for x in xs]

    def wall(xs):
        return [x["wall"] for x in xs]

    return ["## Burst. Many names into one run at once\n",
            f"A run holding its 3 best checkpoints gets {u['names']} worse ones renamed in from beside "
            f"it as fast as `rename()` goes (a tree copied or moved in), with keep 3 best + newest 1 "
            f"and `settle = 0`; the end is the run holding its 3 best and the newest alone. The "
            f"daemon's CPU (schedstat) and wall time from the first rename to that end, against "
            f"`ckptd -1 -c CONF` (process start to exit, user+sys) deciding the same {u['names'] + 3} "
            f"names already in the run: one whole pass. {len(c)} repetitions each, interleaved. "
            f"Past 512 names waiting in a run the daemon decides it from one scan of the whole run "
            f"(ckptd(8)). The peer has no figure here: python3-watchdog reports a name moved in from "
            f"outside the tree as created, and the peer waits for its close, which never comes.\n",
            "| burst, median (min–max) | daemon | ckptd -1 | daemon/-1 |", "|---|---|---|---|",
            row("CPU, s", cpu(c), cpu(p), sec),
            row("wall time, s", wall(c), wall(p), sec),
            ""]


def dirckpt(d):
    c, p = d["ckptd"], d["rm"]
    return ["## B6. Removing a directory checkpoint\n",
            f"A run with two directory checkpoints, `checkpoint-100` ({d['files']} empty files) and "
            f"`checkpoint-200`; `ckptd -1 -c CONF` with `kind = \"dir\"; keep_last = 1; settle = 0` "
            f"removes the first (process start to exit), against `rm -rf checkpoint-100` on an "
            f"identical fresh tree. {len(c)} repetitions, interleaved.\n",
            "| removal, median (min–max) | ckptd | rm -rf | ckptd/rm |", "|---|---|---|---|",
            row("wall time, ms", [t["wall"] for t in c], [t["wall"] for t in p], ms),
            row("user CPU, ms", [t["user"] for t in c], [t["user"] for t in p], ms),
            row("system CPU, ms", [t["sys"] for t in c], [t["sys"] for t in p], ms),
            ""]


def idle(i):
    w = i["window_s"]
    scaled = "" if w == 60 else f" (each scaled to 60 s: ×{60 / w:g})"
    return ["## B8. Idle\n",
            f"A ckptd daemon on the B1 tree with `NOTIFY_SOCKET` set and no `WATCHDOG_USEC` "
            f"(watchdog off), 2 s after READY=1: {len(i['vcsw'])} consecutive windows of {w:.0f} s "
            f"with nothing happening (a window is long, so fewer than 5). Wake-ups = voluntary "
            f"context switches summed over its threads (/proc/PID/task/*/status): each time it "
            f"slept and was woken.\n",
            "| idle | per window, median (min–max) |", "|---|---|",
            f"| wake-ups per 60 s{scaled} | {med(idle_per60(i)):.0f} "
            f"({spread(idle_per60(i), lambda x: f'{x:.0f}')}) |",
            f"| involuntary switches | {med(i['nvcsw']):.0f} |",
            f"| sd_notify messages | {med(i['notify']):.0f} |",
            f"| CPU, µs | {med(i['cpu_ns']) / 1e3:.0f} ({spread([x / 1e3 for x in i['cpu_ns']], lambda x: f'{x:.0f}')}) |",
            ""]


def dominates(b):
    pf = b.get("perf", {})
    if not pf:
        return []
    out = ["## What dominates (perf)\n"]
    for k, what in (("scan", "`ckptd -1 -n -c CONF` on the B1 tree"),
                    ("saves", f"the B2 daemon over {b['saves']} saves (`perf record -p`, start-up excluded)")):
        if k in pf:
            out += [f"`perf record -F 4999 -e cpu-clock` of {what}, by DSO and by symbol (self time, ≥ 1%):\n",
                    "```"] + pf[k]["dso"] + [""] + pf[k]["sym"] + ["```\n"]
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
    out += summary_table(r)
    if "big" in r:
        out += big(r["big"])
    if "oneshot" in r:
        out += oneshot(r["oneshot"])
    if "dirckpt" in r:
        out += dirckpt(r["dirckpt"])
    if "lightning" in r:
        out += lightning(r["lightning"], r.get("big"))
    if "onerun" in r:
        out += onerun(r["onerun"], r.get("big"))
    if "burst" in r:
        out += burst(r["burst"])
    if "big" in r and r["big"].get("idle"):
        out += idle(r["big"]["idle"])
    if "latency" in r:
        out += latency(r["latency"])
    if "kfloor" in r:
        out += kfloor(r["kfloor"], r)
    if "big" in r:
        out += dominates(r["big"])
    notes = os.path.join(HERE, "notes.md")
    if os.path.exists(notes):
        with open(notes) as f:
            out.append(f.read().rstrip("\n") + "\n")
    print("\n".join(out).rstrip("\n"))


if __name__ == "__main__":
    main()
