#!/usr/bin/env python3
"""T_fused / T_seq and the schedule run per point and tree, from commands.sh cpu10/cpu1's output:
   summarize.py FILE"""
import json, re, statistics, sys
from collections import defaultdict

runs = defaultdict(list)
pred = defaultdict(list)
tree, pending = None, None
for line in open(sys.argv[1]):
    tree, _, rest = line.rstrip("\n").split(" ", 2)
    if rest.startswith("{"):
        r = json.loads(rest)
        key = (r["op"].replace("matmul_", ""), r["m"], r["n"])
        alg = r["algo_run"] + ("+t" if r["progress_thread"] else "")
        runs[key, tree].append((r["fused_over_seq"], alg))
        pred[key, tree].append(pending or "-")
        pending = None
    elif "_plan_create" in rest:
        m = re.search(r"predicted unfused ([0-9.]+) ms, fused ([0-9.]+) ms", rest)
        pending = "%.3f" % (float(m.group(2)) / float(m.group(1))) if m else "-"
    elif rest.startswith("["):
        pending = None
print("| point | tree | T_fused / T_seq per round | median | ran | predicted fused / unfused |")
print("|---|---|---|---|---|---|")
for (key, t) in sorted(runs, key=lambda x: (x[0][0], x[0][2], x[0][1], x[1])):
    v = runs[key, t]
    print("| %s %d x %d | %s | %s | %.3f | %s | %s |" % (key[0], key[1], key[2], t,
          " ".join("%.3f" % x for x, _ in v), statistics.median(x for x, _ in v),
          " ".join(a for _, a in v), " ".join(pred[key, t])))
# the model's error where the bench printed a prediction: |predicted fused / unfused - measured T_fused / T_seq|
# over the runs that ran the fused schedule (T_seq is the bench's own collective + GEMM)
err = defaultdict(list)
for (key, t), v in runs.items():
    for (x, alg), p in zip(v, pred[key, t]):
        if p != "-" and not alg.startswith("unfused"):
            err[t].append(abs(float(p) - x))
for t in sorted(err):
    e = sorted(err[t])
    print("model error, %s: median %.3f, mean %.3f over %d fused runs" % (t, e[len(e) // 2], sum(e) / len(e), len(e)))
