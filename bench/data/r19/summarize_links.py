"""Table of commands.sh `links` (links-target, links-agbal, links-x2g .jsonl): per run, the point, what ran,
the four times (ms) and E from their medians next to efficiency_paired. /usr/bin/python3 summarize_links.py"""
import json
print("| round | point | asked | ran | T_comm | T_GEMM | T_seq | T_fused | E | E paired |")
print("|---|---|---|---|---|---|---|---|---|---|")
for what in ("target", "agbal", "x2g"):
    rows = [json.loads(l) for l in open("links-%s.jsonl" % what) if l.startswith("{")]
    per = len(rows) // 3
    for i, r in enumerate(rows):
        op = r.get("op", "all_gather_matmul gi=%d" % r.get("gather_index", 0)).replace("matmul_", "")
        mode = "plan" if r.get("plan") else "one-shot"
        ran = "%s/%s" % (r.get("algo_run"), r.get("chunks_run")) if r.get("algo_run") else "-"
        print("| %d | %s m=%d %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |" % (
            i // per + 1, op, r["m"], mode, r["algo"], ran, r.get("t_comm_ms", r.get("t_ag_ms")), r["t_gemm_ms"],
            r["t_seq_ms"], r["t_fused_ms"], r["efficiency"], r["efficiency_paired"]))
