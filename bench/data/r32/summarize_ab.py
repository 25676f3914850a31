#!/usr/bin/env python3
"""bench/data/r32/summarize_ab.py FILE: unev-ab.jsonl's runs, the trees side by side per point and round."""
import json, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    key = (d["net"], d["counts"], d["n"])
    rows.setdefault(key, {}).setdefault(d["round"], {})[d["tree"]] = d
print("| net | counts, n | tree | T_GEMM ms | T_fused ms | T_even ms | T_fused / T_even per round | T_fused / T_seq |")
print("|---|---|---|---|---|---|---|---|")
for key in sorted(rows):
    for tree in ("old", "new"):
        ds = [rows[key][r][tree] for r in sorted(rows[key]) if tree in rows[key][r]]
        if not ds:
            continue
        rng = lambda f: "%.1f-%.1f" % (min(d[f] for d in ds), max(d[f] for d in ds))
        print("| %s | %s, %d | %s | %s | %s | %s | %s | %s |" % (
            key[0], key[1], key[2], tree, rng("t_gemm_ms"), rng("t_fused_ms"), rng("t_even_ms"),
            ", ".join("%.3f" % d["even_ratio"] for d in ds), ", ".join("%.3f" % d["fused_over_seq"] for d in ds)))
