#!/usr/bin/python3
"""plot_trace.py — timeline PNG from a tpmm Chrome trace (TPMM_TRACE=file.json).

    TPMM_TRACE=/tmp/t.json mpirun -n 2 build-mpich/tools/tpmm-bench --m 256 --k 4096 --n 4096 --iters 1
    /usr/bin/python3 bench/plot_trace.py /tmp/t.json -o bench/out/timeline.png

Input: Chrome trace events, either a JSON array or {"traceEvents": [...]}.
Complete events {"name", "cat", "ph": "X", "ts": us, "dur": us, "pid": rank,
"tid": thread} are drawn as bars; "B"/"E" pairs are matched into bars too;
other phases (metadata "M", instants, counters) are ignored. Several files
(one per rank, say) may be given; their events are merged. A file that a
crashed writer left without its closing "]" is still read.

One track per (pid, tid): rank 0 at the top, its threads below it. Bars are
coloured by category (--color-by cat, default) or by name; a legend lists
them. Time is in milliseconds from the first event (or from --start). Also
prints per rank: busy time by category and the span, so "how long did rank 1
wait for chunks" can be read without opening Perfetto.

Uses matplotlib from Debian (python3-matplotlib): run with /usr/bin/python3.
"""
import argparse
import collections
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display here; write files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402


def read_events(path):
    with open(path) as f:
        text = f.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # The Chrome format allows a trailing comma and a missing "]" (a writer
        # that died mid-run); repair those two cases only.
        t = text.rstrip().rstrip(",")
        if t.startswith("[") and not t.endswith("]"):
            t += "]"
        data = json.loads(t)
    if isinstance(data, dict):
        data = data.get("traceEvents", [])
    if not isinstance(data, list):
        raise ValueError(f"{path}: not a list of trace events")
    return [e for e in data if isinstance(e, dict)]


def to_bars(events):
    """[(pid, tid, name, cat, start_us, dur_us)] from X events and B/E pairs."""
    bars, open_b = [], collections.defaultdict(list)
    for e in sorted(events, key=lambda e: float(e.get("ts", 0))):
        ph = e.get("ph")
        pid, tid = e.get("pid", 0), e.get("tid", 0)
        if ph == "X":
            bars.append((pid, tid, str(e.get("name", "?")), str(e.get("cat", "")), float(e["ts"]),
                         float(e.get("dur", 0))))
        elif ph == "B":
            open_b[(pid, tid)].append(e)
        elif ph == "E" and open_b[(pid, tid)]:
            b = open_b[(pid, tid)].pop()
            bars.append((pid, tid, str(b.get("name", "?")), str(b.get("cat", "")), float(b["ts"]),
                         float(e["ts"]) - float(b["ts"])))
    return bars


def assign_lanes(bars):
    """Depth of each bar within its (pid, tid): an event that lies inside an
    earlier one on the same track (a whole call around its chunks) goes one
    lane down, as Perfetto stacks nested slices. Returns {bar index: depth}."""
    depth, by_track = {}, collections.defaultdict(list)
    for i, b in enumerate(bars):
        by_track[(b[0], b[1])].append(i)
    for idx in by_track.values():
        idx.sort(key=lambda i: (bars[i][4], -bars[i][5]))
        stack = []  # end times of the enclosing bars
        for i in idx:
            s, e = bars[i][4], bars[i][4] + bars[i][5]
            while stack and stack[-1] <= s:
                stack.pop()
            # partial overlap (not nested) also goes down a lane, so nothing is hidden
            depth[i] = len(stack)
            stack.append(e)
    return depth


def track_key(v):
    """Sort pids/tids numerically when they are numbers, else by text."""
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", nargs="+", help="Chrome trace JSON file(s)")
    ap.add_argument("-o", "--out", default="timeline.png", help="output PNG (default timeline.png)")
    ap.add_argument("--color-by", choices=["cat", "name"], default="cat", help="colour bars by category or name")
    ap.add_argument("--start", type=float, default=None, help="window start, ms from the first event")
    ap.add_argument("--end", type=float, default=None, help="window end, ms from the first event")
    ap.add_argument("--title", default=None)
    ap.add_argument("--labels", action="store_true", help="write event names inside bars wide enough")
    args = ap.parse_args()

    events = []
    for path in args.traces:
        events += read_events(path)
    bars = to_bars(events)
    if not bars:
        print("plot_trace: no complete events ('ph': 'X' or B/E pairs) in " + " ".join(args.traces),
              file=sys.stderr)
        return 1

    t0 = min(b[4] for b in bars)
    lo = args.start if args.start is not None else 0.0
    hi = args.end if args.end is not None else max((b[4] + b[5] - t0) / 1e3 for b in bars)

    lane = assign_lanes(bars)
    tracks = sorted({(b[0], b[1], lane[i]) for i, b in enumerate(bars)},
                    key=lambda pt: (track_key(pt[0]), track_key(pt[1]), pt[2]))
    row = {t: i for i, t in enumerate(tracks)}
    keyf = (lambda b: b[3] or b[2]) if args.color_by == "cat" else (lambda b: b[2])
    keys = sorted({keyf(b) for b in bars})
    cmap = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
    colour = {k: cmap(i % cmap.N) for i, k in enumerate(keys)}

    fig, ax = plt.subplots(figsize=(14, 1.0 + 0.55 * len(tracks)))
    for i, b in enumerate(bars):
        s, d = (b[4] - t0) / 1e3, b[5] / 1e3
        if s + d < lo or s > hi:
            continue
        y = row[(b[0], b[1], lane[i])]
        # a zero-length event still deserves a visible sliver
        ax.broken_barh([(s, max(d, (hi - lo) * 1e-4))], (y - 0.4, 0.8), facecolors=colour[keyf(b)],
                       edgecolors="black", linewidth=0.2)
        if args.labels and d > (hi - lo) * 0.04:
            ax.text(s + d / 2, y, b[2], ha="center", va="center", fontsize=6, clip_on=True)
    ax.set_yticks(range(len(tracks)))
    multi_tid = {p for p, t, d in tracks if len({tt for pp, tt, _ in tracks if pp == p}) > 1}
    ax.set_yticklabels([f"rank {p}" + (f" / tid {t}" if p in multi_tid else "") + (f" .{d}" if d else "")
                        for p, t, d in tracks])
    ax.invert_yaxis()  # rank 0 on top, as in Perfetto
    ax.set_xlim(lo, hi)
    ax.set_xlabel("time (ms)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(handles=[Patch(facecolor=colour[k], label=k) for k in keys], loc="upper left",
              bbox_to_anchor=(1.0, 1.0), fontsize=8, title=args.color_by)
    ax.set_title(args.title or "tpmm timeline: " + ", ".join(args.traces))
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)

    # text summary: busy time per rank and category (overlaps within a track counted once per event)
    busy = collections.defaultdict(float)
    span = {}
    for b in bars:
        busy[(b[0], keyf(b))] += b[5] / 1e3
        s, e = span.get(b[0], (b[4], b[4] + b[5]))
        span[b[0]] = (min(s, b[4]), max(e, b[4] + b[5]))
    for p in sorted(span, key=track_key):
        parts = ", ".join(f"{k} {busy[(p, k)]:.3f}" for k in keys if (p, k) in busy)
        print(f"rank {p}: span {(span[p][1] - span[p][0]) / 1e3:.3f} ms; ms by {args.color_by}: {parts}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
