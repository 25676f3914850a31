"""Table of the links section's jsonl files (links-{before,after}[-RUN]-{target,agbal,x2g}.jsonl): per file
and line, the point, the schedule auto ran, T_comm (or T_AG), T_GEMM, T_seq, T_fused and E."""
import glob, json, os, sys

d = sys.argv[1] if len(sys.argv) > 1 else "."
print("| build | what | op | m | plan | algo asked | ran | T_comm | T_GEMM | T_seq | T_fused | E |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for what in ("target", "agbal", "x2g"):
    for v in ("before", "after"):
        for f in sorted(glob.glob(os.path.join(d, "links-%s*-%s.jsonl" % (v, what)))):
            for line in open(f):
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                tc = r.get("t_comm_ms", r.get("t_ag_ms", r.get("t_allgather_ms")))
                print("| %s | %s | %s | %s | %s | %s | %s/%s | %s | %.1f | %.1f | %.1f | %.2f |" % (
                    v, what, r.get("op", "all_gather_matmul") + (" gi=1" if r.get("gather_index") else ""), r["m"],
                    "plan" if r.get("plan") else "one-shot", r.get("algo"), r.get("algo_run"), r.get("chunks_run"),
                    "%.1f" % tc if tc is not None else "?", r["t_gemm_ms"], r["t_seq_ms"], r["t_fused_ms"],
                    r["efficiency"]))
