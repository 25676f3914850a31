"""Tables of commands.sh `hold`: one-shot fused calls, BEFORE (x2 packed by every chunk call) against this
tree (packed once per call), three rounds alternated. /usr/bin/python3 summarize_hold.py [suffix]"""
import collections, json, statistics, sys
sfx = sys.argv[1] if len(sys.argv) > 1 else ""
d = collections.defaultdict(lambda: collections.defaultdict(list))
for l in open("hold-shm%s.jsonl" % sfx):
    r = json.loads(l)
    d[(r["m"], r["n"], r["comm_turn"])][r["build"]].append(r)
print("| m per rank | n | chunks | T_fused ms BEFORE (3 rounds) | after | after / BEFORE, medians | T_fused / T_seq BEFORE | after |")
print("|---|---|---|---|---|---|---|---|")
for key in sorted(d):
    b = [r["t_fused_ms"] for r in d[key]["before"]]
    a = [r["t_fused_ms"] for r in d[key]["after"]]
    fb = [r["fused_over_seq"] for r in d[key]["before"]]
    fa = [r["fused_over_seq"] for r in d[key]["after"]]
    print("| %d | %d | %d | %s | %s | %.2f | %s | %s |" % (key + (" / ".join("%.1f" % x for x in b), " / ".join(
        "%.1f" % x for x in a), statistics.median(a) / statistics.median(b), " / ".join("%.2f" % x for x in fb),
        " / ".join("%.2f" % x for x in fa))))
print()
print("| round | build | T_AG | T_GEMM | T_seq | T_fused | E | E paired |")
print("|---|---|---|---|---|---|---|---|")
for i, l in enumerate(open("hold-1gbit%s.jsonl" % sfx)):
    r = json.loads(l)
    print("| %d | %s | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |" % (i // 2 + 1, r["build"], r["t_ag_ms"], r["t_gemm_ms"],
          r["t_seq_ms"], r["t_fused_ms"], r["efficiency"], r["efficiency_paired"]))
