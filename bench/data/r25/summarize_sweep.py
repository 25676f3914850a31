#!/usr/bin/python3
"""bench/data/r25/sweep-10gbit/*-netsim-10gbit-W2.jsonl (commands.sh sweep-10gbit): per operator and n, each m's
T_fused / T_seq, the schedule auto's plan ran ("+t": with the progress thread), t_comm / t_gemm and E, as §27.
Arguments: the folder, then the network of the files (netsim-10gbit by default; shm, netsim-1gbit), then W (2)."""
import glob, json, statistics as st, sys
d = sys.argv[1] if len(sys.argv) > 1 else 'bench/data/r25/sweep-10gbit'
ratios, bits = [], True
print('| op | n | m=16 | m=64 | m=256 | m=1024 | m=2048 |')
print('|---|---|---|---|---|---|---|')
net = sys.argv[2] if len(sys.argv) > 2 else 'netsim-10gbit'
W = sys.argv[3] if len(sys.argv) > 3 else '2'
for f in sorted(glob.glob(f'{d}/*-{net}-W{W}.jsonl')):
    rows = [json.loads(l) for l in open(f) if l.startswith('{')]
    for n in sorted({r['n'] for r in rows}):
        cells = []
        for m in (16, 64, 256, 1024, 2048):
            r = next((r for r in rows if r['n'] == n and r['m'] == m), None)
            if not r:
                cells.append('-')
                continue
            ratios.append(r['fused_over_seq'])
            bits &= r.get('bitwise_equal', False)
            t = '+t' if r.get('progress_thread') else ''
            cells.append(f"{r['fused_over_seq']:.3f} {r['algo_run']}{t} ({100 * r['t_comm_ms'] / r['t_gemm_ms']:.0f} %, "
                         f"E {r['efficiency']:.2f})")
        print(f"| {rows[0]['op']} | {n} | " + ' | '.join(cells) + ' |')
if ratios:
    print(f"\nmedian {st.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}), {len(ratios)} points, "
          f"at or below 1.0: {sum(x <= 1 for x in ratios)}, every output bit-identical: {bits}")
