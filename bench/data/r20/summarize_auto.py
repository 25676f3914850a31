"""What auto ran and T_fused / T_seq (paired, per iteration), this tree against BEFORE, per round:
    /usr/bin/python3 bench/data/r20/summarize_auto.py bench/data/r20/auto-*.jsonl"""
import sys

from jsonl import by_point_and_build

rows = by_point_and_build(sys.argv[1:], lambda r: (r["net"], r["world_size"], r["m"], r["n"]))
print("| link | W | m | n | BEFORE: ran, T_fused / T_seq per round | this tree: ran, T_fused / T_seq per round |")
print("|---|---|---|---|---|---|")
for key in sorted(rows, key=lambda k: (k[0] != "shm", k[0], k[1], k[3], k[2])):
    cells = []
    for b in ("before", "after"):
        rs = rows[key].get(b, [])
        cells.append(" / ".join(f"{r['algo_run']}/{r['chunks_run']}{'+t' if r.get('progress_thread') else ''} "
                                f"{r['fused_over_seq']:.2f}" for r in rs))
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {cells[0]} | {cells[1]} |")
