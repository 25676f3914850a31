#!/usr/bin/env python3
"""Every run of commands.sh cpu10 pooled per tree: geometric mean, worst and count over 1.02 of T_fused / T_seq,
over the points where the predicted transfer is a small share of the GEMM and over the three large ones:
   pool.py FILE..."""
import json, math, sys
from collections import defaultdict

BIG = {("all_reduce", 1024, 4096), ("all_reduce", 2048, 4096), ("reduce_scatter", 2048, 4096)}
v = defaultdict(list)
for f in sys.argv[1:]:
    for line in open(f):
        tree, _, rest = line.rstrip("\n").split(" ", 2)
        if not rest.startswith("{"):
            continue
        r = json.loads(rest)
        key = (r["op"].replace("matmul_", ""), r["m"], r["n"])
        v[tree, key in BIG].append(r["fused_over_seq"])
print("| tree | points | runs | geometric mean | worst | over 1.02 |")
print("|---|---|---|---|---|---|")
for (tree, big) in sorted(v):
    x = v[tree, big]
    g = math.exp(sum(map(math.log, x)) / len(x))
    print("| %s | %s | %d | %.3f | %.3f | %d |" % (tree, "large" if big else "small", len(x), g, max(x),
          sum(1 for y in x if y > 1.02)))
