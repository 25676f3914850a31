#!/usr/bin/python3
"""bench/data/r30/summarize_mpis.py mpis.jsonl: per network, point and MPI, each round's plan, T_fused / T_seq, E
(paired in brackets) and, for --nb / --counts, T_fused / T_sep or T_even; the bitwise checks."""
import collections, json, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    op = d.get("op", "all_gather_matmul")
    pt = (f"{op.replace('matmul_', '')} " if op != "all_gather_matmul" else "") + \
         (f"gi1 " if d.get("gather_index") else "") + (f"nb {d['nb']} " if d.get("nb", 1) > 1 else "") + \
         (f"counts {d['counts']} " if d.get("counts") else "") + f"{d['m']}x{d['k']}x{d['n']}"
    rows[d["net"], pt, d["mpi"]].append(d)
print("| net | point | MPI | plan per round | T_comm ms | T_GEMM ms | T_fused / T_seq | E (paired) | T_fused / T_sep or T_even | bitwise |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (net, pt, mpi), ds in sorted(rows.items()):
    comm = [d.get("t_ag_ms") or d.get("t_comm_ms") or 0 for d in ds]
    other = [d.get("sep_ratio") or d.get("even_ratio") for d in ds]
    plans = ", ".join("%s/%s" % (d.get("algo_run"), d.get("chunks_run")) for d in ds)
    print(f"| {net} | {pt} | {mpi} | {plans} | "
          f"{min(comm):.1f}-{max(comm):.1f} | {min(d['t_gemm_ms'] for d in ds):.1f}-{max(d['t_gemm_ms'] for d in ds):.1f} | "
          f"{', '.join('%.3f' % d['fused_over_seq'] for d in ds)} | "
          f"{', '.join('%.2f (%.2f)' % (d['efficiency'], d['efficiency_paired']) for d in ds)} | "
          f"{', '.join('%.3f' % o if o else '-' for o in other)} | "
          f"{', '.join(str(d.get('bitwise_equal')) for d in ds)} |")
