#!/usr/bin/python3
"""bench/data/r28/summarize_trace.py TRACE [SKIP]: the calls of a unev.c run (apart by >= 10 ms), the first SKIP
(default 2) left out; per rank the medians over calls of: the call's span, the sum of its GEMMs, their rows per ms
while the rank still waits for data / after, and its waits for data."""
import json, statistics as st, sys
d = json.load(open(sys.argv[1]))
ev = sorted((e for e in (d['traceEvents'] if isinstance(d, dict) else d) if e.get('ph') == 'X'), key=lambda e: e['ts'])
skip = int(sys.argv[2]) if len(sys.argv) > 2 else 2
calls, end = [], None
for e in ev:
    if end is None or e['ts'] - end > 10000:
        calls.append([])
    calls[-1].append(e)
    end = max(end or 0, e['ts'] + e['dur'])
calls = calls[skip:]
for pid in sorted({e['pid'] for e in ev}):
    span, gemm, wait, ngemm, rate = [], [], [], [], []
    for c in calls:
        t0 = min(e['ts'] for e in c)
        es = [e for e in c if e['pid'] == pid]
        g = [e for e in es if e['name'] == 'gemm']
        span.append((max(e['ts'] + e['dur'] for e in es) - t0) / 1e3)
        gemm.append(sum(e['dur'] for e in g) / 1e3)
        wait.append(sum(e['dur'] for e in es if e['name'] == 'wait') / 1e3)
        ngemm.append(len(g))
        rate.append(sum(e['args']['b'] for e in g) / max(gemm[-1], 1e-9))
    print(f"rank {pid}: {len(calls)} calls, medians: span {st.median(span):.1f} ms, GEMMs {st.median(ngemm):.0f} "
          f"summing {st.median(gemm):.1f} ms ({st.median(rate):.1f} rows/ms), waits {st.median(wait):.1f} ms")
