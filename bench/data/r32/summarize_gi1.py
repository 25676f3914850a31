#!/usr/bin/env python3
"""bench/data/r32/summarize_gi1.py FILE: gi1-turns.jsonl's or gi1-ab.jsonl's runs, one line per run."""
import json, sys
print("| round | tree | asked | ran | T_AG ms | T_GEMM ms | T_seq ms | T_fused ms | T_fused / T_seq | E (paired) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    d = json.loads(line)
    asked = "auto" if d["algo"] == "auto" else "%s/%d" % (d["algo"], d["comm_turn"])
    ran = "%s/%d%s" % (d["algo_run"], d["chunks_run"], "+t" if d.get("progress_thread") else "")
    print("| %d | %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.3f | %.2f (%.2f) |" % (
        d["round"], d.get("tree", "new"), asked, ran, d["t_ag_ms"], d["t_gemm_ms"], d["t_seq_ms"], d["t_fused_ms"], d["fused_over_seq"],
        d["efficiency"], d["efficiency_paired"]))
