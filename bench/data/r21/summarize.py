#!/usr/bin/python3
"""Tables of bench/RESULTS.md §23 from gemm.jsonl, halves.jsonl and check.jsonl (bench/data/r21/commands.sh)."""
import json, os, statistics, sys
from collections import defaultdict

d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
def load(name):
    p = os.path.join(d, name)
    return [json.loads(l) for l in open(p) if l.startswith("{")] if os.path.exists(p) else []

g = defaultdict(dict)  # (round, m) -> build -> t_gemm
for r in load("gemm.jsonl"):
    g[(r["round"], r["m"])][r["build"]] = r["t_gemm_ms"]
print("fp32 T_GEMM, plans, W = 2 (gathered rows = 2 m), k = 4096, n = 1024: AVX2 kernel / oneDNN per round")
print("| m per rank | oneDNN ms (median of rounds) | AVX2 kernel ms | AVX2 / oneDNN per round |")
print("|---|---|---|---|")
for m in sorted({m for _, m in g}):
    rs = [g[k] for k in sorted(g) if k[1] == m and len(g[k]) == 2]
    ratios = ", ".join("%.2f" % (x["after"] / x["before"]) for x in rs)
    print("| %d | %.2f | %.2f | %s |" % (m, statistics.median(x["before"] for x in rs),
                                        statistics.median(x["after"] for x in rs), ratios))

h = defaultdict(list)  # (build, dtype, m) -> t_gemm
for r in load("halves.jsonl"):
    h[(r["build"], r["dtype"], r["m"])].append(r["t_gemm_ms"])
if h:
    print("\nT_GEMM by dtype (median of rounds, ms): this tree, and fp16 on BEFORE")
    print("| m per rank | fp32 | bf16 | fp16 | fp16 BEFORE |")
    print("|---|---|---|---|---|")
    for m in sorted({k[2] for k in h}):
        med = lambda b, t: "%.2f" % statistics.median(h[(b, t, m)]) if h[(b, t, m)] else "-"
        print("| %d | %s | %s | %s | %s |" % (m, med("after", "fp32"), med("after", "bf16"), med("after", "fp16"),
                                             med("before", "fp16")))

c = load("check.jsonl")
if c:
    eq = sum(1 for r in c if r.get("bitwise_equal") is True)
    print("\nbit-identical to unfused: %d of %d points (%s)" % (eq, len(c), ", ".join(sorted(
        {"%s W=%d" % (r.get("op", "all_gather_matmul"), r["W"]) for r in c}))))
    for r in c:
        if r.get("bitwise_equal") is not True:
            print("  not equal:", {k: r.get(k) for k in ("W", "op", "m", "dtype", "algo", "comm_turn", "plan",
                                                         "bitwise_equal")})
