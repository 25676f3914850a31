#!/usr/bin/python3
"""Summary of bench/data/r24/calib.txt: per shape and tree, tpmm's first call
in round 0 (the cold call, calibration included), the cold and fresh first-10
ratios against hand, and the settled ratio (min-max over runs)."""
import json, re, sys, statistics as st
rows = {}
tree = None
first_call = None
for line in open(sys.argv[1] if len(sys.argv) > 1 else 'bench/data/r24/calib.txt'):
    m = re.match(r'### tree=(\w+)', line)
    if m: tree = m.group(1)
    m = re.match(r'\s+tpmm\s+.*\(\S+ us\)\s+(\d+)', line)
    if m: first_call = int(m.group(1))
    if line.startswith('JSON '):
        j = json.loads(line[5:])
        key = (f"{j['m']}x{j['k']}x{j['n']}", tree)
        r = rows.setdefault(key, {'first': [], 'cold': [], 'fresh': [], 'settled': []})
        r['first'].append(first_call / 1e3)
        r['cold'].append(j['tpmm_first_cold_us'] / j['hand_first_cold_us'])
        r['fresh'].append(j['tpmm_first_fresh_us'] / j['hand_first_fresh_us'])
        r['settled'].append(j['tpmm_settled_us'] / j['hand_settled_us'])
print('| shape | tree | tpmm first call, ms (median, min-max) | first 10 cold / hand | first 10 fresh / hand | settled / hand |')
print('|---|---|---|---|---|---|')
fmt = lambda v, d=2: f"{st.median(v):.{d}f} ({min(v):.{d}f}-{max(v):.{d}f})"
for (shape, tree), r in sorted(rows.items()):
    print(f"| {shape} | {tree} | {fmt(r['first'], 0)} | {fmt(r['cold'])} | {fmt(r['fresh'])} | {fmt(r['settled'])} |")
