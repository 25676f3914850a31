"""The `reduce` section: what auto runs for each reduce operator over shared memory at W = 2, and
T_fused / T_seq (paired), BEFORE against this tree, per round; bit-equality of every line:
    /usr/bin/python3 bench/data/r20/summarize_reduce.py bench/data/r20/reduce-shm-W2.jsonl"""
import json
import sys

rows, unequal = {}, 0
for line in open(sys.argv[1]):
    if line.startswith("{"):
        r = json.loads(line)
        unequal += r.get("bitwise_equal") is False
        rows.setdefault((r["op"], r["n"], r["m"]), {}).setdefault(r["build"], []).append(r)
print("| op | n | m | BEFORE: ran, T_fused / T_seq per round | this tree |")
print("|---|---|---|---|---|")
for (op, n, m), by in sorted(rows.items()):
    cells = [" / ".join(f"{r.get('algo_run', '?')}/{r.get('chunks_run', '?')} {r['fused_over_seq']:.2f}"
                        for r in by.get(b, [])) for b in ("before", "after")]
    print(f"| {op.replace('matmul_', '')} | {n} | {m} | {cells[0]} | {cells[1]} |")
print(f"\nlines not bit-identical to unfused: {unequal}")
