"""Table of decode.txt (commands.sh decode): per shape and order, tpmm one-shot and plan over hand-written
(MPI_Allgather + a pre-created oneDNN primitive): first-10 sum cold, fresh, and the settled median,
BEFORE and after. < 1: tpmm faster."""
import json, sys

runs = {}
v = o = None
for line in open(sys.argv[1] if len(sys.argv) > 1 else "decode.txt"):
    if line.startswith("== "):
        _, v, _, o = line.split()[:4]
    elif line.startswith("JSON "):
        r = json.loads(line[5:])
        runs.setdefault((r["m"], r["k"], r["n"], o), {})[v] = r

def ratios(r, who):
    return "%.2f / %.2f / %.2f" % tuple(r[who + s] / r["hand" + s] for s in ("_first_cold_us", "_first_fresh_us", "_settled_us"))

print("| m x k x n per rank (rows per call) | order | one-shot ÷ hand before | one-shot ÷ hand after | plan ÷ hand before | plan ÷ hand after | hand settled ms (after) |")
print("|---|---|---|---|---|---|---|")
for key in sorted(runs, key=lambda k: (k[3] != "tpmm", k[1], k[0])):
    d = runs[key]
    if "before" not in d or "after" not in d: continue
    print("| %d x %d x %d (%d) | %s first | %s | **%s** | %s | **%s** | %.2f |" % (
        key[0], key[1], key[2], 2 * key[0], key[3], ratios(d["before"], "tpmm"), ratios(d["after"], "tpmm"),
        ratios(d["before"], "plan"), ratios(d["after"], "plan"), d["after"]["hand_settled_us"] / 1e3))
