#!/usr/bin/env python3
"""bench/data/r33/summarize_ab.py FILE: the trees side by side per point (rounds in order): T_fused - T_seq of
each run's medians, and the paired T_fused / T_seq."""
import json, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    key = (d["net"], d["op"], d["m"], d["n"])
    rows.setdefault(key, {}).setdefault(d["tree"], []).append(d)
print("| net | op | m x n | tree | schedule | T_seq ms | T_fused - T_seq, us | T_fused / T_seq (paired) |")
print("|---|---|---|---|---|---|---|---|")
for key in sorted(rows):
    for tree in ("old", "hdr", "new"):
        ds = sorted(rows[key].get(tree, []), key=lambda d: d["round"])
        if not ds:
            continue
        print("| %s | %s | %d x %d | %s | %s | %.2f-%.2f | %s | %s |" % (
            key[0], key[1].replace("matmul_", ""), key[2], key[3], tree,
            ",".join(sorted({d.get("algo_run", "?") for d in ds})),
            min(d["t_seq_ms"] for d in ds), max(d["t_seq_ms"] for d in ds),
            ", ".join("%+.0f" % (1e3 * (d["t_fused_ms"] - d["t_seq_ms"])) for d in ds),
            ", ".join("%.3f" % d["fused_over_seq"] for d in ds)))
