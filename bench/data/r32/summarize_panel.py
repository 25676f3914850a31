#!/usr/bin/env python3
"""bench/data/r32/summarize_panel.py FILE: panel-ab.jsonl, the two trees side by side per point and round."""
import json, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows.setdefault((d["net"], d["m"], d["k"], d["n"]), {}).setdefault(d["round"], {})[d["tree"]] = d
print("| net | m x k a rank x n | schedule (new) | T_fused ms new / old per round | new / old | T_fused / T_seq new | old | E new | old |")
print("|---|---|---|---|---|---|---|---|---|")
for key in sorted(rows):
    rs = [rows[key][r] for r in sorted(rows[key]) if len(rows[key][r]) == 2]
    f = lambda t, k, fmt: ", ".join(fmt % r[t][k] for r in rs)
    print("| %s | %d x %d x %d | %s | %s | %s | %s | %s | %s | %s |" % (
        key[0], key[1], key[2], key[3], ", ".join("%s/%d" % (r["new"]["algo_run"], r["new"]["chunks_run"]) for r in rs),
        ", ".join("%.1f / %.1f" % (r["new"]["t_fused_ms"], r["old"]["t_fused_ms"]) for r in rs),
        ", ".join("%.3f" % (r["new"]["t_fused_ms"] / r["old"]["t_fused_ms"]) for r in rs),
        f("new", "fused_over_seq", "%.3f"), f("old", "fused_over_seq", "%.3f"),
        f("new", "efficiency", "%.2f"), f("old", "efficiency", "%.2f")))
