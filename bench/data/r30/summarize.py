#!/usr/bin/python3
"""bench/data/r30/summarize.py credit.txt: per point and tree, each round's chunks (the plan that ran), T_fused,
T_fused / T_seq and, for --counts, T_fused / T_even; the bitwise check."""
import collections, json, re, sys
rows = collections.defaultdict(list)
plan = {}
for line in open(sys.argv[1]):
    tree, rnd, rest = line.split(" ", 2)
    if rest.startswith("{"):
        d = json.loads(rest)
        key = (d.get("counts") or f"m {d['m']}", d["n"])
        even = d.get("t_even_ms")
        rows[key, tree].append((d.get("algo_run"), d.get("chunks_run"), d["t_fused_ms"], d["t_fused_ms"] / d["t_seq_ms"],
                                d["t_fused_ms"] / even if even else None, d.get("bitwise_equal", d.get("check"))))
print("| point | tree | plan per round | T_fused ms per round | T_fused / T_seq | T_fused / T_even | check |")
print("|---|---|---|---|---|---|---|")
for (key, tree), rs in sorted(rows.items(), key=lambda kv: (str(kv[0][0][0]), kv[0][0][1], kv[0][1])):
    f = lambda i, fmt: ", ".join(fmt % r[i] if r[i] is not None else "-" for r in rs)
    print(f"| {key[0]}, n {key[1]} | {tree} | {', '.join(f'{r[0]}/{r[1]}' for r in rs)} | {f(2, '%.1f')} | "
          f"{f(3, '%.3f')} | {f(4, '%.3f')} | {', '.join(str(r[5]) for r in rs)} |")
