#!/usr/bin/python3
"""bench/data/r30/summarize_ownpack.py ownpack.jsonl: per network and shape, each tree's schedule, T_fused and
T_fused / T_seq per round, and new / old T_fused per round; the bitwise checks."""
import collections, json, sys
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows[d["net"], f"{d['m']}x{d['k']}x{d['n']}"].setdefault(d["tree"], []).append(d)
print("| net | m x k a rank x n | plan (new) | T_fused ms new / old per round | T_fused / T_seq new | old | new / old | bitwise |")
print("|---|---|---|---|---|---|---|---|")
for (net, pt), t in sorted(rows.items()):
    n, o = t["new"], t["old"]
    print(f"| {net} | {pt} | {n[0]['algo_run']}/{n[0]['chunks_run']} | "
          f"{', '.join('%.1f / %.1f' % (a['t_fused_ms'], b['t_fused_ms']) for a, b in zip(n, o))} | "
          f"{', '.join('%.3f' % a['fused_over_seq'] for a in n)} | {', '.join('%.3f' % b['fused_over_seq'] for b in o)} | "
          f"{', '.join('%.3f' % (a['t_fused_ms'] / b['t_fused_ms']) for a, b in zip(n, o))} | "
          f"{all(a['bitwise_equal'] for a in n + o)} |")
