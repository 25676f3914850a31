#!/usr/bin/env python3
"""bench/data/r34/summarize_ab.py FILE: per point and requested schedule, the trees side by side (rounds in
order): the schedule run, each run's paired T_fused / T_seq and their median."""
import json, statistics as st, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows.setdefault((d["net"], d["op"], d["m"], d["n"], d["algo"]), {}).setdefault(d["tree"], []).append(d)
print("| net | op | m x n | asked | tree | ran | T_fused / T_seq by round | median |")
print("|---|---|---|---|---|---|---|---|")
for key in sorted(rows):
    for tree in ("old", "new"):
        ds = sorted(rows[key].get(tree, []), key=lambda d: d["round"])
        if ds:
            r = [d["fused_over_seq"] for d in ds]
            print("| %s | %s | %d x %d | %s | %s | %s | %s | %.3f |" % (
                key[0], key[1].replace("matmul_", ""), key[2], key[3], key[4], tree,
                ",".join(sorted({"%s/%d" % (d.get("algo_run", "?"), d.get("chunks_run", 0)) for d in ds})),
                ", ".join("%.3f" % x for x in r), st.median(r)))
