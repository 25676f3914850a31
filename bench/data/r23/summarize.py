#!/usr/bin/python3
"""Tables of bench/RESULTS.md §25 from the raw output beside this script (usage: summarize.py [section ...])."""
import json, os, statistics, sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))


def rows(name):
    path = os.path.join(HERE, name)
    return [json.loads(l) for l in open(path) if l.startswith("{")] if os.path.exists(path) else []


def x2g():
    print("| m | tree | T_AG ms | T_GEMM ms | T_fused / T_seq per round | E per round | E paired | bitwise |")
    print("|---|---|---|---|---|---|---|---|")
    by = defaultdict(list)
    for d in rows("x2g.jsonl"):
        by[(d["m"], d["tree"])].append(d)
    for (m, t), ds in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1] != "before")):
        f = lambda k: ", ".join("%.2f" % d[k] for d in ds)
        rng = lambda k: "%.1f-%.1f" % (min(d[k] for d in ds), max(d[k] for d in ds))
        print("| %d | %s | %s | %s | %s | %s | %s | %s |" % (m, t, rng("t_ag_ms"), rng("t_gemm_ms"), f("fused_over_seq"),
              f("efficiency"), f("efficiency_paired"), all(d["bitwise_equal"] for d in ds)))


def runs(name, key):
    """Per (operator, key value): the runs' schedule, T_GEMM, T_fused, T_fused / T_seq, E and E paired."""
    print("| operator | %s | runs (schedule/chunks, +thread) | T_GEMM ms | T_fused ms | T_fused / T_seq | E | E paired |" % key)
    print("|---|---|---|---|---|---|---|---|")
    by = defaultdict(list)
    for d in rows(name):
        by[(d.get("op", "all_gather_matmul"), d[key])].append(d)
    for (op, v), ds in sorted(by.items()):
        j = lambda f: ", ".join(f(d) for d in ds)
        print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            op, v, j(lambda d: "%s/%d%s" % (d["algo_run"], d["chunks_run"], "+thread" if d.get("progress_thread") else "")),
            j(lambda d: "%.0f" % d["t_gemm_ms"]), j(lambda d: "%.0f" % d["t_fused_ms"]),
            j(lambda d: "%.2f" % d["fused_over_seq"]), j(lambda d: "%.2f" % d["efficiency"]),
            j(lambda d: "%.2f" % d["efficiency_paired"])))


def reduce_tile():
    runs("reduce-tile.jsonl", "tree")


def reduce():
    runs("reduce.jsonl", "tree")


def progress():
    runs("progress.jsonl", "progress")


def bound():
    print("| point | pairs: s (GEMM under a TCP stream / quiet) | bound 1/s, median | E paired | E paired / bound, median |")
    print("|---|---|---|---|---|")
    by = defaultdict(list)
    for d in rows("bound.jsonl"):
        by[(d["extra"], round(d["t_gemm_quiet_ms"] / 100))].append(d)
    groups = defaultdict(list)
    for d in rows("bound.jsonl"):
        groups[d["extra"] + (", m = %d" % (192 if d["t_gemm_quiet_ms"] < 33 else 256 if d["t_gemm_quiet_ms"] < 60 else 1024))].append(d)
    for g, ds in groups.items():
        print("| %s | %s | %.2f | %s | %.2f |" % (g, ", ".join("%.2f" % d["s"] for d in ds),
              1 / statistics.median(d["s"] for d in ds), ", ".join("%.2f" % d["efficiency_paired"] for d in ds),
              statistics.median(d["efficiency_paired"] * d["s"] for d in ds)))


def traces():
    """Over every call of each trace: the `pack` events (x2's panels bound per call) and the waits of 1 ms or more."""
    print("| trace | rank | pack events: count, min / median / max ms | waits of 1 ms or more: count, max ms |")
    print("|---|---|---|---|")
    for name in ("trace-x2g128-before.json", "trace-x2g128.json", "trace-x2g256.json", "trace-rs-polls.json"):
        path = os.path.join(HERE, name)
        if not os.path.exists(path):
            continue
        ev = [e for e in json.load(open(path)) if e.get("ph") == "X"]
        for pid in sorted({e["pid"] for e in ev}):
            pk = sorted(e["dur"] / 1e3 for e in ev if e["pid"] == pid and e["name"] == "pack")
            wt = [e["dur"] / 1e3 for e in ev if e["pid"] == pid and e["name"] == "wait" and e["dur"] >= 1000]
            print("| %s | %d | %s | %s |" % (
                name, pid, "%d, %.2f / %.2f / %.2f" % (len(pk), pk[0], statistics.median(pk), pk[-1]) if pk else "-",
                "%d, %.1f" % (len(wt), max(wt)) if wt else "0"))


for s in sys.argv[1:] or ["x2g", "bound", "reduce_tile", "progress", "reduce", "traces"]:
    globals()[s]()
