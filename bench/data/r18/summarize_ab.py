"""Table of ab.txt (commands.sh ab), one rank: per shape, x2 layout and call, the median over iterations
of after / before (B / A: each iteration runs both, back to back, in turns), by rows per call."""
import collections, re, sys

d = collections.OrderedDict()
rows = []
for line in open(sys.argv[1] if len(sys.argv) > 1 else "ab.txt"):
    m = re.match(r"W=1 K=(\d+) N=(\d+) trans=(\d) (\w+) R=(\d+) .* B/A median ([\d.]+)", line)
    if m:
        K, N, t, mode, R, r = m.groups()
        d.setdefault((K, N, t, mode), {})[int(R)] = float(r)
        if int(R) not in rows:
            rows.append(int(R))
print("| k x n | x2 | call | " + " | ".join("%d rows" % r for r in rows) + " |")
print("|---|---|---|" + "---|" * len(rows))
for (K, N, t, mode), v in d.items():
    print("| %s x %s | %s | %s | %s |" % (K, N, "(n, k)" if t == "1" else "(k, n)", mode,
                                         " | ".join("%.2f" % v[r] if r in v else "" for r in rows)))
