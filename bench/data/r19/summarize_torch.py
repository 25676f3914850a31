"""Table of commands.sh `torch` (run in its torch/ folder): per decode shape and x2 layout, torch's time over
tpmm's, one-shot and plan, the worst of the cold first-10 sum, a fresh one and the settled median, tpmm
first / torch first. > 1: tpmm faster. /usr/bin/python3 summarize_torch.py"""
import json

def worst(r, who):
    return min(r["torch_first_cold_ms"] / r[who + "_first_cold_ms"], r["torch_first_fresh_ms"] / r[who + "_first_fresh_ms"],
               r["torch_settled_ms"] / r[who + "_settled_ms"])

rows = {}
for order in ("tpmm", "torch"):
    for tx in ("", "-trans"):
        for line in open("torch-%s%s.jsonl" % (order, tx)):
            r = json.loads(line)
            rows.setdefault((tx != "", r["m"], r["k"], r["n"]), {})[order] = r
print("| x2 | decode m x k x n (rows per call) | one-shot | plan | settled ms: torch / one-shot / plan |")
print("|---|---|---|---|---|")
for key in sorted(rows):
    d = rows[key]
    f = lambda who: " / ".join("%.2f" % worst(d[o], who) for o in ("tpmm", "torch"))
    a = d["tpmm"]
    print("| %s | %d x %d x %d (%d) | %s | %s | %.2f / %.2f / %.2f |" % (
        "(n, k)" if key[0] else "(k, n)", key[1], key[2], key[3], key[1] * a["W"], f("tpmm"), f("plan"),
        a["torch_settled_ms"], a["tpmm_settled_ms"], a["plan_settled_ms"]))
