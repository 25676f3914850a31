"""The `links` section: per point and round, this tree against BEFORE: what ran, T_GEMM, T_fused and E
(from the medians / paired):
    /usr/bin/python3 bench/data/r20/summarize_ab.py bench/data/r20/ab-*.jsonl"""
import json
import sys

rows = {}
for f in sys.argv[1:]:
    for line in open(f):
        if line.startswith("{"):
            r = json.loads(line)
            op = r.get("op", "all_gather_matmul").replace("matmul_", "")
            if r.get("gather_index"):
                op += " gi=1"
            key = (op, r["m"], "plan" if r.get("plan") else "one-shot")
            rows.setdefault(key, {}).setdefault(r["build"], []).append(r)
print("| point | build | ran per round | T_GEMM ms | T_fused ms | E | E paired |")
print("|---|---|---|---|---|---|---|")
for key, by in sorted(rows.items()):
    for b in ("before", "after"):
        rs = sorted(by.get(b, []), key=lambda r: r["round"])
        j = lambda f: " / ".join(f(r) for r in rs)
        print(f"| {key[0]} m={key[1]} {key[2]} | {'BEFORE' if b == 'before' else 'this tree'} | "
              f"{j(lambda r: '%s/%s' % (r.get('algo_run'), r.get('chunks_run')) if r.get('algo_run') else '-')} | "
              f"{j(lambda r: '%.1f' % r['t_gemm_ms'])} | {j(lambda r: '%.1f' % r['t_fused_ms'])} | "
              f"{j(lambda r: '%.2f' % r['efficiency'])} | {j(lambda r: '%.2f' % r['efficiency_paired'])} |")
