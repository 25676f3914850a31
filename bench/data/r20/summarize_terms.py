"""The model's two terms apart, BEFORE against this tree, pooled over the `predict` rounds: the
transfer (pred_t_xfer against T_AG, MPI_Allgather alone) and the whole GEMM (pred_t_gemm against
T_GEMM), median |error| per setting, and the m = 16 GEMMs (where the floor decides) apart:
    /usr/bin/python3 bench/data/r20/summarize_terms.py bench/data/r20"""
import glob
import json
import os
import statistics
import sys

d = sys.argv[1]
print("| setting | term | BEFORE median \\|error\\| (points) | this tree |")
print("|---|---|---|---|")
res = {}
for b in ("before", "after"):
    for f in glob.glob(os.path.join(d, f"predict-{b}-*", "*.jsonl")):
        for line in open(f):
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            s = f"{r['net']} W={r['world_size']}"
            res.setdefault((s, "transfer"), {}).setdefault(b, []).append(abs(r["pred_t_xfer_ms"] / r["t_ag_ms"] - 1))
            term = "GEMM, m = 16" if r["m"] == 16 else "GEMM, m ≥ 128"
            res.setdefault((s, term), {}).setdefault(b, []).append(abs(r["pred_t_gemm_ms"] / r["t_gemm_ms"] - 1))
for key in sorted(res):
    c = [f"{statistics.median(res[key][b]) * 100:.0f} % ({len(res[key][b])})" if b in res[key] else "-"
         for b in ("before", "after")]
    print(f"| {key[0]} | {key[1]} | {c[0]} | {c[1]} |")
