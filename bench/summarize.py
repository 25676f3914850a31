#!/usr/bin/env python3
"""summarize.py — markdown tables of a sweep (bench/sweep.sh's *.jsonl), as in bench/RESULTS.md.

    bench/summarize.py bench/out/r3/*.jsonl
    bench/summarize.py --base bench/out/r2 bench/out/r3/*.jsonl   # cells "old → new" where r2 has the point

Per file: how many points have T_fused <= T_seq, within 5 %, bit-identical; then one row per
(dtype, n) with T_fused / T_seq per m (bold: <= 1), T_AG / T_GEMM at the two largest m, and E at
the points where 0.5 <= T_AG / T_GEMM <= 2 (issue 3's balanced points).
Standard library only.
"""
import argparse
import json
import os
import sys


def load(path):
    pts = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            pts[(d["dtype"], d["n"], d["m"])] = d
    return pts


def comm(d):
    """T_AG, or the reduce operators' T_comm (tpmm-bench --op)."""
    return d["t_ag_ms"] if "t_ag_ms" in d else d["t_comm_ms"]


def ratio(d):
    return d["t_fused_ms"] / d["t_seq_ms"] if d["t_seq_ms"] > 0 else float("nan")


def cell(r, old=None):
    s = f"{r:.2f}"
    s = f"**{s}**" if r <= 1.0 else s
    if old is not None:
        o = f"{old:.2f}"
        return f"{o} → {s}"
    return s


def table(path, base_dir):
    pts = load(path)
    base = {}
    if base_dir:
        bp = os.path.join(base_dir, os.path.basename(path))
        if os.path.exists(bp):
            base = load(bp)
    ms = sorted({k[2] for k in pts})
    rows = sorted({(k[0], k[1]) for k in pts})
    n_le = sum(1 for d in pts.values() if ratio(d) <= 1.0)
    n_5 = sum(1 for d in pts.values() if ratio(d) <= 1.05)
    n_bit = sum(1 for d in pts.values() if d.get("bitwise_equal"))
    out = [f"#### {os.path.basename(path)}: {len(pts)} points, T_fused ≤ T_seq {n_le}, within 5 % {n_5}, "
           f"bit-identical {n_bit}"]
    out.append("| dtype | n | " + " | ".join(f"m={m}" for m in ms) + " | T_AG/T_GEMM | E (balanced points) |")
    out.append("|---|---|" + "---|" * len(ms) + "---|---|")
    for dt, n in rows:
        cells, bal = [], []
        for m in ms:
            d = pts.get((dt, n, m))
            if not d:
                cells.append("")
                continue
            b = base.get((dt, n, m))
            cells.append(cell(ratio(d), ratio(b) if b else None))
            ag = comm(d) / d["t_gemm_ms"] if d["t_gemm_ms"] > 0 else 0
            if 0.5 <= ag <= 2:
                bal.append(f"m={m}: {d['efficiency']:.2f}")
        have = [m for m in ms if (dt, n, m) in pts][-2:]
        ags = " ".join(f"{comm(pts[(dt, n, m)]) / pts[(dt, n, m)]['t_gemm_ms']:.2f}" for m in have)
        out.append(f"| {dt} | {n} | " + " | ".join(cells) + f" | {ags} | {', '.join(bal) or '—'} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", help="directory of an earlier sweep with files of the same names")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    for f in a.files:
        print(table(f, a.base))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
