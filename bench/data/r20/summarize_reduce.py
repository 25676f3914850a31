"""The `reduce` section: what auto runs for each reduce operator over shared memory at W = 2, and
T_fused / T_seq (paired), BEFORE against this tree, per round; bit-equality of every line:
    /usr/bin/python3 bench/data/r20/summarize_reduce.py bench/data/r20/reduce-shm-W2.jsonl"""
import sys

from jsonl import by_point_and_build, lines

rows = by_point_and_build(sys.argv[1:2], lambda r: (r["op"], r["n"], r["m"]))
unequal = sum(r.get("bitwise_equal") is False for r in lines(sys.argv[1:2]))
print("| op | n | m | BEFORE: ran, T_fused / T_seq per round | this tree |")
print("|---|---|---|---|---|")
for (op, n, m), by in sorted(rows.items()):
    cells = [" / ".join(f"{r.get('algo_run', '?')}/{r.get('chunks_run', '?')} {r['fused_over_seq']:.2f}"
                        for r in by.get(b, [])) for b in ("before", "after")]
    print(f"| {op.replace('matmul_', '')} | {n} | {m} | {cells[0]} | {cells[1]} |")
print(f"\nlines not bit-identical to unfused: {unequal}")
