"""The `link` section: per point, each round's schedule and T_fused / T_seq (paired), E (paired), this tree
against BEFORE, and the medians over rounds:
    /usr/bin/python3 bench/data/r20/summarize_link.py bench/data/r20/link-1gbit.jsonl"""
import statistics
import sys

from jsonl import by_point_and_build

rows = by_point_and_build(sys.argv[1:2], lambda r: (r["m"], r["n"]))
print("| m | n | build | ran per round | T_fused / T_seq per round | median | E paired per round | median |")
print("|---|---|---|---|---|---|---|---|")
for (m, n), by in sorted(rows.items()):
    for b in ("before", "after"):
        rs = by.get(b, [])
        ran = " / ".join(f"{r['algo_run']}/{r['chunks_run']}{'+t' if r.get('progress_thread') else ''}" for r in rs)
        fos = [r["fused_over_seq"] for r in rs]
        e = [r["efficiency_paired"] for r in rs]
        print(f"| {m} | {n} | {'BEFORE' if b == 'before' else 'this tree'} | {ran} | "
              f"{' / '.join(f'{v:.2f}' for v in fos)} | {statistics.median(fos):.2f} | "
              f"{' / '.join(f'{v:.2f}' for v in e)} | {statistics.median(e):.2f} |")
