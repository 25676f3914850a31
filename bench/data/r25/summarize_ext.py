#!/usr/bin/python3
"""bench/data/r25/ext.jsonl (commands.sh ext): issue 15's multi (T_fused / T_sep, three single-weight plans) and
uneven shards (T_fused / T_even, the same rows split evenly), per point and round."""
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] if len(sys.argv) > 1 else 'bench/data/r25/ext.jsonl')]
print('| net | point | schedule per round | T_AG ms | T_fused ms | T_sep or T_even ms | ratio per round | bitwise |')
print('|---|---|---|---|---|---|---|---|')
key = lambda r: (r['net'], r['counts'] or '', r['n'], r['nb'])
for k in sorted({key(r) for r in rows}, key=lambda k: (k[0] != 'shm', k[1], -k[2])):
    rs = sorted((r for r in rows if key(r) == k), key=lambda r: r['round'])
    multi = rs[0]['nb'] > 1
    point = f"nb 3, m 512, n {k[2]}" if multi else f"counts {k[1]}, n {k[2]}"
    other = [r['t_sep_ms'] if multi else r['t_even_ms'] for r in rs]
    ratio = [r['sep_ratio'] if multi else r['even_ratio'] for r in rs]
    rng = lambda v: f"{min(v):.1f}-{max(v):.1f}"
    print(f"| {k[0]} | {point} | {', '.join(r['algo_run'] for r in rs)} | {rng([r['t_ag_ms'] for r in rs])} | "
          f"{rng([r['t_fused_ms'] for r in rs])} | {rng(other)} | {', '.join(f'{x:.3f}' for x in ratio)} | "
          f"{all(r['bitwise_equal'] and r.get('sep_equal', True) is not False for r in rs)} |")
