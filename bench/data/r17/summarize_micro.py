"""Table of micro.txt (commands.sh micro): per shape, layout, mode, x2 offset and rows, the backend and
the best-of-9 time of each round, BEFORE and after, and the ratio of their medians over the rounds."""
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
        d[(int(N), int(t), mode, int(off), int(R), v)].append((float(best), be))
print("| k x n | x2 | call | x2 offset | rows | before: backend, ms | after: backend, ms | after / before |")
print("|---|---|---|---|---|---|---|---|")
for k in sorted({k[:5] for k in d}):
    b, a = d[k + ("before",)], d[k + ("after",)]
    ratio = statistics.median(x[0] for x in a) / statistics.median(x[0] for x in b)
    print("| 4096 x %d | %s | %s | %d | %d | %s %s | %s %s | %.2f |" % (
        k[0], "(n, k)" if k[1] else "(k, n)", k[2], k[3], k[4], b[0][1], " / ".join("%.2f" % x[0] for x in b),
        a[0][1], " / ".join("%.2f" % x[0] for x in a), ratio))
