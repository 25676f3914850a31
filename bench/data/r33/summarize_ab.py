#!/usr/bin/env python3
"""bench/data/r33/summarize_ab.py FILE: red-ab.jsonl's runs, the trees side by side per point (rounds in order)."""
import json, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    key = (d["net"], d["op"], d["m"], d["n"])
    rows.setdefault(key, {}).setdefault(d["tree"], []).append(d)
print("| net | op | m x n | tree | schedule | T_seq ms | T_fused ms | T_fused / T_seq per round |")
print("|---|---|---|---|---|---|---|---|")
for key in sorted(rows):
    for tree in ("old", "new"):
        ds = rows[key].get(tree, [])
        if not ds:
            continue
        rng = lambda f: "%.3f-%.3f" % (min(d[f] for d in ds), max(d[f] for d in ds))
        print("| %s | %s | %d x %d | %s | %s | %s | %s | %s |" % (
            key[0], key[1].replace("matmul_", ""), key[2], key[3], tree, ",".join(sorted({d.get("algo_run", "?") for d in ds})),
            rng("t_seq_ms"), rng("t_fused_ms"), ", ".join("%.3f" % d["fused_over_seq"] for d in ds)))
