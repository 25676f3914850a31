"""The `links` section: per point and round, this tree against BEFORE: what ran, T_GEMM, T_fused and E
(from the medians / paired):
    /usr/bin/python3 bench/data/r20/summarize_ab.py bench/data/r20/ab-*.jsonl"""
import sys

from jsonl import by_point_and_build


def point(r):
    op = r.get("op", "all_gather_matmul").replace("matmul_", "") + (" gi=1" if r.get("gather_index") else "")
    return (op, r["m"], "plan" if r.get("plan") else "one-shot")


rows = by_point_and_build(sys.argv[1:], point)
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
