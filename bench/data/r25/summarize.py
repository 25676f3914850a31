#!/usr/bin/python3
"""Summary of bench/data/r25/decode.txt: per shape and tree, tpmm's one-shot and plan ratios against hand
(first 10 calls cold and fresh, settled median), median and min-max over the runs of both orders."""
import json, re, sys, statistics as st
if len(sys.argv) > 1 and sys.argv[1].endswith('gemm.txt'):
    # gemm.txt: "<tree> MxKxN dnnl <ms> ms tpmm <ms> ms ratio <r> packed <ms> maxdiff <d>", per rep
    g = {}
    for line in open(sys.argv[1]):
        w = line.split()
        r = g.setdefault((w[1], w[0]), {'oneshot / dnnl': [], 'packed ms': [], 'oneshot ms': []})
        r['oneshot / dnnl'].append(float(w[9])), r['packed ms'].append(float(w[11])), r['oneshot ms'].append(float(w[6]))
    print('| GEMM (rows x k x n) | tree | one-shot / oneDNN per rep | one-shot ms (median) | packed ms (median) |')
    print('|---|---|---|---|---|')
    for (shape, tree), r in sorted(g.items(), key=lambda kv: (int(kv[0][0].split('x')[0]), kv[0][0], kv[0][1])):
        print(f"| {shape} | {tree} | {', '.join(f'{v:.2f}' for v in r['oneshot / dnnl'])} | "
              f"{st.median(r['oneshot ms']):.1f} | {st.median(r['packed ms']):.1f} |")
    sys.exit(0)
rows = {}
tree = None
for line in open(sys.argv[1] if len(sys.argv) > 1 else 'bench/data/r25/decode.txt'):
    m = re.match(r'### tree=(\w+)', line)
    if m: tree = m.group(1)
    if line.startswith('JSON '):
        j = json.loads(line[5:].replace('nan', 'NaN'))
        r = rows.setdefault((f"{j['m']}x{j['k']}x{j['n']}", tree), {})
        for who in ('tpmm', 'plan'):
            for what in ('first_cold', 'first_fresh', 'settled'):
                r.setdefault(f'{who} {what}', []).append(j[f'{who}_{what}_us'] / j[f'hand_{what}_us'])
fmt = lambda v: f"{st.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
cols = ['tpmm first_cold', 'tpmm first_fresh', 'tpmm settled', 'plan first_cold', 'plan settled']
print('| shape (per rank) | tree | ' + ' | '.join(c.replace('_', ' ') + ' / hand' for c in cols) + ' |')
print('|---|---|' + '---|' * len(cols))
for (shape, tree), r in sorted(rows.items(), key=lambda kv: (int(kv[0][0].split('x')[0]), kv[0])):
    print(f'| {shape} | {tree} | ' + ' | '.join(fmt(r[c]) for c in cols) + ' |')
