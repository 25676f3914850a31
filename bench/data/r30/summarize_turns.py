#!/usr/bin/python3
"""bench/data/r30/summarize_turns.py turns.txt: per point and comm_turn (ring forced), each round's chunks, T_fused
and, for --counts, T_fused / T_even; E paired."""
import collections, json, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    rnd, rest = line.split(" ", 1)
    if rest.startswith("{"):
        d = json.loads(rest)
        key = ("gi1 " if d.get("gather_index") else f"counts {d.get('counts')} ") + f"{d['m']}x{d['k']}x{d['n']}"
        rows[key, d["comm_turn"]].append((d["chunks_run"], d["t_fused_ms"], None, d.get("even_ratio"),
                                         d["efficiency_paired"], d.get("bitwise_equal")))
print("| point | comm_turn | chunks | T_fused ms per round | T_fused / T_even | E paired | bitwise |")
print("|---|---|---|---|---|---|---|")
for (key, ct), rs in sorted(rows.items()):
    j = lambda i, f: ", ".join(f % r[i] if r[i] is not None else "-" for r in rs)
    print(f"| {key} | {ct} | {j(0, '%d')} | {j(1, '%.1f')} | {j(3, '%.3f')} | {j(4, '%.2f')} | "
          f"{j(5, '%s')} |")
