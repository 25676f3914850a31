"""Table of micro.txt or decode.txt (commands.sh micro, decode): per shape, layout, mode and rows, the
backend and the best-of-N time of each round, BEFORE and after, the ratio of their medians over the
rounds and of their best over all rounds (the machine's fast mode, which both reach in some round), and
after's rate at that best (GFLOP/s)."""
import collections, re, statistics, sys

d = collections.defaultdict(list)
v = None
for line in open(sys.argv[1] if len(sys.argv) > 1 else "micro.txt"):
    if line.startswith("== "):
        v = line.split()[1]
        continue
    m = re.match(r"K=(\d+) N=(\d+) trans=(\d) (\w+) off=(\d+) R=(\d+) be=(\w+) best ([\d.]+)", line)
    if m:
        K, N, t, mode, off, R, be, best = m.groups()
        d[(int(K), int(N), int(t), mode, int(R), v)].append((float(best), be))
print("| k x n | x2 | call | rows | before: backend, ms | after: backend, ms | after / before: medians | bests | after GFLOP/s |")
print("|---|---|---|---|---|---|---|---|---|")
for k in sorted({k[:5] for k in d}):
    b, a = d[k + ("before",)], d[k + ("after",)]
    mb, ma = statistics.median(x[0] for x in b), statistics.median(x[0] for x in a)
    bb, ba = min(x[0] for x in b), min(x[0] for x in a)
    print("| %d x %d | %s | %s | %d | %s %s | %s %s | %.2f | %.2f | %.0f |" % (
        k[0], k[1], "(n, k)" if k[2] else "(k, n)", k[3], k[4], b[0][1], " / ".join("%.2f" % x[0] for x in b),
        a[0][1], " / ".join("%.2f" % x[0] for x in a), ma / mb, ba / bb, 2.0 * k[0] * k[1] * k[4] / ba / 1e6))
