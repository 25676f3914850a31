#!/usr/bin/python3
"""bench/data/r30/summarize_trace.py TRACE [SKIP]: a TPMM_TRACE file of tpmm-bench plan executes, cut into calls
(events apart by > 3 ms), the first SKIP (default 2) left out; per rank the medians over calls of the call's span
and of the summed events by name (count and ms)."""
import collections, json, statistics as st, sys
d = json.load(open(sys.argv[1]))
ev = sorted((e for e in (d["traceEvents"] if isinstance(d, dict) else d) if e.get("ph") == "X"), key=lambda e: e["ts"])
skip = int(sys.argv[2]) if len(sys.argv) > 2 else 2
calls, end = [], None
for e in ev:
    if end is None or e["ts"] - end > 3000:
        calls.append([])
    calls[-1].append(e)
    end = max(end or 0, e["ts"] + e["dur"])
calls = calls[skip:]
for pid in sorted({e["pid"] for e in ev}):
    span, ms, n = [], collections.defaultdict(list), collections.defaultdict(list)
    for c in calls:
        t0 = min(e["ts"] for e in c)
        es = [e for e in c if e["pid"] == pid]
        span.append((max(e["ts"] + e["dur"] for e in es) - t0) / 1e3)
        for name in {e["name"] for e in ev}:
            sel = [e for e in es if e["name"] == name]
            ms[name].append(sum(e["dur"] for e in sel) / 1e3)
            n[name].append(len(sel))
    parts = ", ".join(f"{k} {st.median(n[k]):.0f} x {st.median(ms[k]):.2f} ms" for k in sorted(ms))
    print(f"rank {pid}: {len(calls)} calls, medians: span {st.median(span):.2f} ms; {parts}")
