#!/usr/bin/python3
"""bench/data/r28/summarize_uneven.py FILE...: per net, counts and n: T_AG, T_GEMM, chunks, T_fused, T_even and
uneven / even per round (commands.sh uneven, uneven-shm)."""
import json, sys
from collections import defaultdict
rows = defaultdict(list)
for f in sys.argv[1:]:
    for l in open(f):
        if l.startswith('{'):
            d = json.loads(l)
            rows[(d['net'], d['counts'], d['n'])].append(d)
print('| net | counts, n | T_AG ms | T_GEMM ms | chunks (auto) | T_fused ms | T_even ms | uneven / even per round | bitwise |')
print('|---|---|---|---|---|---|---|---|---|')
rng = lambda v: f"{min(v):.1f}-{max(v):.1f}"
for (net, c, n), ds in sorted(rows.items()):
    print(f"| {net} | {c}, {n} | {rng([d['t_ag_ms'] for d in ds])} | {rng([d['t_gemm_ms'] for d in ds])} | "
          f"{'-'.join(sorted({str(d['chunks_run']) for d in ds}))} | {rng([d['t_fused_ms'] for d in ds])} | "
          f"{rng([d['t_even_ms'] for d in ds])} | {', '.join('%.3f' % d['even_ratio'] for d in ds)} | "
          f"{all(d['bitwise_equal'] for d in ds)} |")
