#!/bin/bash
# Plans only, one rank: BEFORE's library and this tree's alternated six times per shape (gemm_bench.c,
# built by `commands.sh micro`: /tmp/tpmm-gb-before, /tmp/tpmm-gb-after); prints min and median of the
# six best-of-9 times per (shape, layout, rows).   bench/data/r17/plans.sh > plans.txt
export OMP_NUM_THREADS=1
for i in 1 2 3 4 5 6; do
  for shape in "4096 4096 0" "4096 11008 0" "11008 4096 0" "4096 11008 1" "11008 4096 1"; do
    for v in before after; do /tmp/tpmm-gb-$v $shape plan 0 9 2,8,16,32 | sed "s/^/$v /"; done
  done
done > /tmp/plans-raw.txt
/usr/bin/python3 - <<'PY'
import collections, re, statistics
d = collections.defaultdict(list)
for line in open("/tmp/plans-raw.txt"):
    m = re.match(r"(\w+) K=(\d+) N=(\d+) trans=(\d) plan off=0 R=(\d+) be=(\w+) best ([\d.]+)", line)
    v, K, N, t, R, be, best = m.groups()
    d[(int(K), int(N), int(t), int(R), v)].append((float(best), be))
print("| k x n | x2 | rows | before: backend, min / median ms | after: backend, min / median ms | after / before (medians) |")
print("|---|---|---|---|---|---|")
for key in sorted({k[:4] for k in d}):
    b, a = d[key + ("before",)], d[key + ("after",)]
    mb, ma = statistics.median(x[0] for x in b), statistics.median(x[0] for x in a)
    print("| %d x %d | %s | %d | %s %.2f / %.2f | %s %.2f / %.2f | %.2f |" % (key[0], key[1], "(n, k)" if key[2] else "(k, n)",
          key[3], b[0][1], min(x[0] for x in b), mb, a[0][1], min(x[0] for x in a), ma, ma / mb))
PY
