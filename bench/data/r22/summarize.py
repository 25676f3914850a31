#!/usr/bin/python3
"""Tables of bench/RESULTS.md §24 from the files bench/data/r22/commands.sh writes:
oneshot.jsonl, decode.txt (and decode-first.txt), links-agbal.jsonl, netcpu-pair.jsonl."""
import json, os, statistics, sys
from collections import defaultdict

d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
def load(name, prefix="{"):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return []
    return [json.loads(l[len(prefix) - 1:] if prefix != "{" else l) for l in open(p) if l.startswith(prefix)]

g = defaultdict(dict)  # (dtype, m, round) -> build -> t_gemm
for r in load("oneshot.jsonl"):
    g[(r["dtype"], r["m"], r["round"])][r["build"]] = r["t_gemm_ms"]
if g:
    print("One-shot T_GEMM, W = 2 (gathered rows = 2 m), k = n = 4096, x2 read in place: this tree / BEFORE")
    print("| dtype | m per rank (GEMM rows) | BEFORE ms | this tree ms | this / BEFORE per round |")
    print("|---|---|---|---|---|")
    for dt, m in sorted({(k[0], k[1]) for k in g}, key=lambda x: (x[0] != "fp32", x[1])):
        rs = [g[k] for k in sorted(g) if k[:2] == (dt, m) and len(g[k]) == 2]
        print("| %s | %d (%d) | %.1f | %.1f | %s |" % (
            dt, m, 2 * m, statistics.median(x["before"] for x in rs), statistics.median(x["after"] for x in rs),
            ", ".join("%.2f" % (x["after"] / x["before"]) for x in rs)))

for name in ("decode-first.txt", "decode.txt"):
    rows = load(name, "JSON {")
    if not rows:
        continue
    print("\n%s: decode_bench --dtype fp32, tpmm / hand (MPI_Allgather + oneDNN fp32 primitive), both orders" % name)
    print("| m x k x n per rank | order | one-shot first 10 cold / fresh / settled | plan cold / fresh / settled |")
    print("|---|---|---|---|")
    for r in rows:
        f = lambda v, w: "%.2f" % (r["%s_first_%s_us" % (v, w)] / r["hand_first_%s_us" % w])
        s = lambda v: "%.2f" % (r["%s_settled_us" % v] / r["hand_settled_us"])
        print("| %dx%dx%d | %s first | %s / %s / %s | %s / %s / %s |" % (
            r["m"], r["k"], r["n"], r["order"], f("tpmm", "cold"), f("tpmm", "fresh"), s("tpmm"),
            f("plan", "cold"), f("plan", "fresh"), s("plan")))

ag = load("links-agbal.jsonl")
if ag:
    print("\nSimulated 1 Gbit, W = 2, m = 512 k = 4096 n = 1536 bf16 (auto): E and paired E per run")
    print("| mode | run | algo run | T_AG ms | T_GEMM ms | T_seq ms | T_fused ms | E | E paired |")
    print("|---|---|---|---|---|---|---|---|---|")
    n = defaultdict(int)
    for r in ag:
        mode = "plan" if r["plan"] else "one-shot"
        n[mode] += 1
        print("| %s | %d | %s/%s | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |" % (
            mode, n[mode], r.get("algo_run"), r.get("chunks_run"), r["t_ag_ms"], r["t_gemm_ms"], r["t_seq_ms"],
            r["t_fused_ms"], r["efficiency"], r["efficiency_paired"]))

nc = load("netcpu-pair.jsonl")
if nc:
    print("\nThe GEMM-bound bound (bench/netcpu_pair.py): per pair")
    keys = list(nc[0].keys())
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in nc:
        print("| " + " | ".join(("%.3f" % v) if isinstance(v, float) else str(v) for v in r.values()) + " |")
