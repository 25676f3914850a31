"""The cost model against measurements: a table from tpmm-bench --predict lines.

    /usr/bin/python3 bench/summarize_predict.py bench/out/predict/*.jsonl [--markdown]

Per point: measured and predicted T_seq and T_fused (the fused schedule that
ran; its prediction is the model's for that schedule, pred_t_ran_ms), their
errors (predicted / measured - 1), and the fused-vs-unfused ratio
T_fused / T_seq measured and predicted, whose error is what the autotuner's
margin (tpi_explore_margin) has to cover. Then: the median and worst of
|error| over all predicted times; the same for the paired errors (each
iteration's prediction from a calibration just before it, tpmm-bench's
pred_paired_*: what is left once the machine's drift between the plan's
calibration and the run is out); the 50th / 90th percentile and the worst of
the ratio's |error|.
"""
import argparse
import json
import statistics
import sys


def pct(values, q):
    v = sorted(values)
    if not v:
        return float("nan")
    i = q * (len(v) - 1)
    lo = int(i)
    return v[lo] if lo + 1 >= len(v) else v[lo] + (v[lo + 1] - v[lo]) * (i - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    rows = []
    for f in a.files:
        for line in open(f):
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    errs, ratio_errs = [], []
    out = []
    for r in rows:
        setting = f"{r.get('net', '?')} W={r['world_size']}"
        ps, pf = r.get("pred_t_seq_ms"), r.get("pred_t_ran_ms")
        ms, mf = r["t_seq_ms"], r["t_fused_ms"]
        if ps is None:
            continue
        es = ps / ms - 1
        errs.append((abs(es), setting, r, "T_seq"))
        ef = rr_m = rr_p = er = None
        if pf is not None:
            ef = pf / mf - 1
            errs.append((abs(ef), setting, r, "T_fused"))
            rr_m, rr_p = mf / ms, pf / ps
            er = rr_p / rr_m - 1
            ratio_errs.append((abs(er), setting, r))
        out.append((setting, r, ps, ms, es, pf, mf, ef, rr_p, rr_m, er))

    def f(v, fmt):
        return "-" if v is None else fmt % v

    sched = lambda r: f"{r.get('algo_run', r['algo'])}/{r.get('chunks_run', '?')}"
    if a.markdown:
        print("| setting | m | n | schedule | T_seq meas | pred | err | T_fused meas | pred | err | "
              "T_fused/T_seq meas | pred | err | load |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for s, r, ps, ms, es, pf, mf, ef, rp, rm, er in out:
            print(f"| {s} | {r['m']} | {r['n']} | {sched(r)} | {ms:.3f} | {ps:.3f} | {es * 100:+.0f} % | {mf:.3f} | "
                  f"{f(pf, '%.3f')} | {f(ef and ef * 100, '%+.0f %%')} | {f(rm, '%.2f')} | {f(rp, '%.2f')} | "
                  f"{f(er and er * 100, '%+.0f %%')} | {r.get('loadavg', 0):.1f} |")
    else:
        for s, r, ps, ms, es, pf, mf, ef, rp, rm, er in out:
            print(f"{s:14} m={r['m']:5} n={r['n']:5} {sched(r):14} T_seq {ms:9.3f} pred {ps:9.3f} ({es * 100:+5.0f} %)"
                  f"  T_fused {mf:9.3f} pred {f(pf, '%9.3f')} ({f(ef and ef * 100, '%+5.0f')} %)"
                  f"  ratio {f(rm, '%.2f')} pred {f(rp, '%.2f')} ({f(er and er * 100, '%+4.0f')} %)")
    if errs:
        e = [x[0] for x in errs]
        worst = max(errs, key=lambda x: x[0])
        print(f"\n{len(e)} predicted times: median |error| {statistics.median(e) * 100:.1f} %, "
              f"worst {worst[0] * 100:.0f} % ({worst[3]} at {worst[1]} m={worst[2]['m']} n={worst[2]['n']})")
        by = {}
        for x in errs:
            by.setdefault(x[1], []).append(x[0])
        print("per setting, median |error|: " + ", ".join(f"{k} {statistics.median(v) * 100:.0f} %"
                                                         for k, v in sorted(by.items())))
    paired = []
    for r in rows:
        for key, name in (("pred_paired_t_seq", "T_seq"), ("pred_paired_t_fused", "T_fused")):
            if r.get(key) is not None:
                paired.append((abs(r[key] - 1), f"{r.get('net', '?')} W={r['world_size']}", r, name))
    if paired:
        e = [x[0] for x in paired]
        worst = max(paired, key=lambda x: x[0])
        by = {}
        for x in paired:
            by.setdefault(x[1], []).append(x[0])
        print(f"paired (the model calibrated again before each iteration, median of predicted / measured): "
              f"{len(e)} times, median |error| {statistics.median(e) * 100:.1f} %, worst {worst[0] * 100:.0f} % "
              f"({worst[3]} at {worst[1]} m={worst[2]['m']} n={worst[2]['n']}); per setting: "
              + ", ".join(f"{k} {statistics.median(v) * 100:.0f} %" for k, v in sorted(by.items())))
    if ratio_errs:
        e = [x[0] for x in ratio_errs]
        worst = max(ratio_errs, key=lambda x: x[0])
        print(f"T_fused/T_seq ratio, {len(e)} points: |error| median {pct(e, 0.5) * 100:.1f} %, "
              f"90th percentile {pct(e, 0.9) * 100:.1f} %, worst {worst[0] * 100:.0f} % "
              f"({worst[1]} m={worst[2]['m']} n={worst[2]['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
