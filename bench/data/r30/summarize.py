#!/usr/bin/python3
"""bench/data/r30/summarize.py credit.txt: per point and tree, each round's chunks (the plan that ran), T_fused,
T_fused / T_seq and, for --counts, T_fused / T_even; the bitwise check; then per tree the model's error, the
prediction for the measured plan (the first TPMM_VERBOSE plan line before each JSON line) over T_fused."""
import collections, json, re, statistics, sys
rows = collections.defaultdict(list)
pred, ratio = {}, collections.defaultdict(list)
for line in open(sys.argv[1]):
    tree, rnd, rest = line.split(" ", 2)
    if not rest.startswith("{"):
        m = re.search(r", fused ([0-9.]+) ms", rest)
        if m and tree not in pred:
            pred[tree] = float(m.group(1))
        continue
    if True:
        d = json.loads(rest)
        key = (d.get("counts") or f"m {d['m']}", d["n"])
        even = d.get("t_even_ms")
        rows[key, tree].append((d.get("algo_run"), d.get("chunks_run"), d["t_fused_ms"], d["t_fused_ms"] / d["t_seq_ms"],
                                d["t_fused_ms"] / even if even else None, d.get("bitwise_equal", d.get("check"))))
        if tree in pred:
            ratio[tree].append(pred.pop(tree) / d["t_fused_ms"])
print("| point | tree | plan per round | T_fused ms per round | T_fused / T_seq | T_fused / T_even | check |")
print("|---|---|---|---|---|---|---|")
for (key, tree), rs in sorted(rows.items(), key=lambda kv: (str(kv[0][0][0]), kv[0][0][1], kv[0][1])):
    f = lambda i, fmt: ", ".join(fmt % r[i] if r[i] is not None else "-" for r in rs)
    print(f"| {key[0]}, n {key[1]} | {tree} | {', '.join(f'{r[0]}/{r[1]}' for r in rs)} | {f(2, '%.1f')} | "
          f"{f(3, '%.3f')} | {f(4, '%.3f')} | {', '.join(str(r[5]) for r in rs)} |")
print()
for tree, rs in sorted(ratio.items()):
    err = [abs(r - 1) for r in rs]
    print(f"{tree}: predicted / measured T_fused over {len(rs)} runs: median {statistics.median(rs):.3f}, "
          f"{min(rs):.3f}-{max(rs):.3f}; |error| median {statistics.median(err):.3f}, mean {statistics.mean(err):.3f}")
