"""tpi_explore_margin's rule (bench/RESULTS.md §12): the 90th percentile of the model's error on
T_fused / T_seq at W = 2, over --predict lines:
    /usr/bin/python3 bench/data/r20/margin.py bench/data/r20/predict-w2-after-*/*.jsonl"""
import json
import sys

e = []
for f in sys.argv[1:]:
    for line in open(f):
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r["world_size"] != 2 or r.get("pred_t_ran_ms") is None:
            continue
        e.append(abs((r["pred_t_ran_ms"] / r["pred_t_seq_ms"]) / (r["t_fused_ms"] / r["t_seq_ms"]) - 1))
e.sort()
n = len(e)
print(f"{n} points: median {e[n // 2]:.3f}, 90th percentile {e[min(n - 1, round(0.9 * (n - 1)))]:.3f}")
