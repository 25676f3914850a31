#!/usr/bin/python3
"""plot_sweep.py — chart of a tpmm-bench sweep (JSON lines from bench/sweep.sh).

    /usr/bin/python3 bench/plot_sweep.py -o bench/out/sweep.png bench/out/*.jsonl

One row of panels per network ("net": shm, 1gbit, 10gbit; "shm" when a line
has none), three panels per row, all against m per rank (log2 axis):
  1. T_fused / T_seq     the issue's first target: <= 1 everywhere (dashed line)
  2. E = (T_seq - T_fused) / min(T_AG, T_GEMM)   target >= 0.9 where
     0.5 <= T_AG/T_GEMM <= 2; those points are drawn filled, others hollow
  3. % of the measured core peak, fused (solid) and standalone GEMM (dotted)
Colour = (dtype, n), line style = W, marker = dtype. The ratio axis is
logarithmic; E is clipped to [-2, 1.2] (points below are drawn on the edge). Also prints a short text summary
(points, T_fused <= T_seq count, E in the balanced band, bitwise failures).

Uses matplotlib from Debian (python3-matplotlib): run with /usr/bin/python3.
"""
import argparse
import collections
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")  # no display here; write files only
import matplotlib.pyplot as plt  # noqa: E402

NET_ORDER = ["shm", "10gbit", "1gbit"]
STYLES = {2: "-", 4: "--", 8: ":"}
MARKERS = {"bf16": "o", "fp16": "s", "fp32": "^"}


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line.startswith("{"):
                    continue  # tolerate stray non-JSON lines
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f"{path}:{lineno}: skipped: {e}", file=sys.stderr)
                    continue
                r.setdefault("net", "shm")
                rows.append(r)
    return rows


def num(v):
    return v if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def summary(rows):
    ok = [r for r in rows if num(r.get("t_fused_ms")) == num(r.get("t_fused_ms"))]
    not_slower = sum(1 for r in ok if num(r["t_fused_ms"]) <= num(r["t_seq_ms"]))
    band = [r for r in ok if 0.5 <= num(r.get("ag_gemm_ratio")) <= 2]
    band_ok = sum(1 for r in band if num(r.get("efficiency")) >= 0.9)
    bad_bits = [r for r in rows if r.get("bitwise_equal") is False]
    print(f"points: {len(rows)}; T_fused <= T_seq at {not_slower}/{len(ok)}; "
          f"E >= 0.9 at {band_ok}/{len(band)} points with 0.5 <= T_AG/T_GEMM <= 2; "
          f"not bit-identical to unfused: {len(bad_bits)}")
    worst = sorted(ok, key=lambda r: num(r["t_seq_ms"]) / num(r["t_fused_ms"]) if num(r["t_fused_ms"]) > 0 else 0)
    for r in worst[:3]:
        print(f"  slowest vs T_seq: net={r['net']} W={r['world_size']} {r['dtype']} m={r['m']} n={r['n']} "
              f"algo={r['algo']}: T_fused {r['t_fused_ms']:.3f} ms vs T_seq {r['t_seq_ms']:.3f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="JSON-lines files from tpmm-bench --json / sweep.sh")
    ap.add_argument("-o", "--out", default="sweep.png", help="output PNG (default sweep.png)")
    ap.add_argument("--title", default=None)
    args = ap.parse_args()

    rows = load(args.files)
    if not rows:
        print("plot_sweep: no data in " + " ".join(args.files), file=sys.stderr)
        return 1
    summary(rows)

    nets = sorted({r["net"] for r in rows}, key=lambda n: (NET_ORDER.index(n) if n in NET_ORDER else 99, n))
    combos = sorted({(r["dtype"], r["n"]) for r in rows})
    cmap = plt.get_cmap("tab10" if len(combos) <= 10 else "tab20")
    colour = {c: cmap(i % cmap.N) for i, c in enumerate(combos)}
    E_LO, E_HI = -2.0, 1.2

    def eclip(v):
        return min(max(v, E_LO), E_HI) if v == v else v

    fig, axes = plt.subplots(len(nets), 3, figsize=(16, 4.2 * len(nets)), squeeze=False)
    for row_i, net in enumerate(nets):
        series = collections.defaultdict(list)
        for r in rows:
            if r["net"] == net:
                key = (r["world_size"], r["dtype"], r["n"], r["algo"], r.get("plan", False), r["k"])
                series[key].append(r)
        ax_ratio, ax_eff, ax_peak = axes[row_i]
        for key, pts in sorted(series.items()):
            W, dt, n, algo, plan, k = key
            pts.sort(key=lambda r: r["m"])
            m = [r["m"] for r in pts]
            col = colour[(dt, n)]
            style = dict(color=col, linestyle=STYLES.get(W, "-."), marker=MARKERS.get(dt, "x"), markersize=4)
            label = f"W={W} {dt} n={n}" + (f" {algo}" if algo != "auto" else "") + (" plan" if plan else "")
            ratio = [num(r["t_fused_ms"]) / num(r["t_seq_ms"]) if num(r["t_seq_ms"]) > 0 else math.nan for r in pts]
            ax_ratio.plot(m, ratio, label=label, **style)
            ax_eff.plot(m, [eclip(num(r.get("efficiency"))) for r in pts], **style)
            # balanced points (where the E target applies) filled, others hollow
            for r in pts:
                bal = 0.5 <= num(r.get("ag_gemm_ratio")) <= 2
                ax_eff.plot([r["m"]], [eclip(num(r.get("efficiency")))], marker=MARKERS.get(dt, "x"), color=col,
                            markerfacecolor=col if bal else "none", markersize=7 if bal else 4)
            ax_peak.plot(m, [num(r.get("pct_peak")) for r in pts], **style)
            ax_peak.plot(m, [num(r.get("pct_peak_gemm")) for r in pts], color=col, linestyle=":", alpha=0.6)

        ax_ratio.axhline(1.0, color="red", linestyle="--", linewidth=1)
        ax_ratio.set_yscale("log")
        ax_ratio.set_ylabel(f"[{net}]  T_fused / T_seq")
        ax_eff.axhline(0.9, color="red", linestyle="--", linewidth=1)
        ax_eff.axhline(0.0, color="grey", linewidth=0.5)
        ax_eff.set_ylabel(f"E (clipped to [{E_LO}, {E_HI}])")
        # E explodes where min(T_AG, T_GEMM) is tiny; keep the interesting range readable
        ax_eff.set_ylim(E_LO - 0.1, E_HI + 0.1)
        ax_peak.set_ylabel("% of core peak")
        if row_i == 0:
            ax_ratio.set_title("T_fused / T_seq (target <= 1, log scale)", fontsize=10)
            ax_eff.set_title("E = (T_seq - T_fused) / min(T_AG, T_GEMM) (target >= 0.9 on filled)", fontsize=10)
            ax_peak.set_title("% of core peak: fused solid, GEMM alone dotted", fontsize=10)
        ax_peak.set_ylim(bottom=0)
        for ax in (ax_ratio, ax_eff, ax_peak):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("m per rank")
            ax.grid(True, which="both", alpha=0.3)
        ax_ratio.legend(fontsize=7, ncol=2)
    ks = sorted({r["k"] for r in rows})
    mpis = sorted({r.get("mpi", "?") for r in rows})
    fig.suptitle(args.title or f"tpmm all_gather_matmul sweep (k={','.join(map(str, ks))}, {', '.join(mpis)}); "
                 "filled E markers: 0.5 <= T_AG/T_GEMM <= 2")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
