"""Table of the torch-*.jsonl files (commands.sh torch): per decode shape and x2 layout, torch's time over
tpmm's (one-shot and plan), the worst of the first-10 sum cold, fresh and the settled median, for each
order (tpmm first / torch first), BEFORE and after. > 1: tpmm faster."""
import json, os, sys

def worst(r, who):
    return min(r["torch_first_cold_ms"] / r[who + "_first_cold_ms"], r["torch_first_fresh_ms"] / r[who + "_first_fresh_ms"],
               r["torch_settled_ms"] / r[who + "_settled_ms"])

rows = {}
for v in ("before", "after"):
    for order in ("tpmm", "torch"):
        for tx in ("", "-trans"):
            name = "torch-%s-%s%s.jsonl" % (v, order, tx)
            for line in open(name) if v == "after" or os.path.exists(name) else []:  # a run of one build: after only
                r = json.loads(line)
                key = (tx != "", r["m"], r["k"], r["n"])
                rows.setdefault(key, {})[(v, order)] = r
print("| x2 | decode m x k x n (rows per call) | one-shot before | one-shot after | plan before | plan after | settled ms after: torch / one-shot / plan |")
print("|---|---|---|---|---|---|---|")
for key in sorted(rows):
    d = rows[key]
    f = lambda v, who: " / ".join("%.2f" % worst(d[(v, o)], who) if (v, o) in d else "-" for o in ("tpmm", "torch"))
    a = d[("after", "tpmm")]
    print("| %s | %d x %d x %d (%d) | %s | **%s** | %s | **%s** | %.2f / %.2f / %.2f |" % (
        "(n, k)" if key[0] else "(k, n)", key[1], key[2], key[3], key[1] * a["W"], f("before", "tpmm"),
        f("after", "tpmm"), f("before", "plan"), f("after", "plan"), a["torch_settled_ms"], a["tpmm_settled_ms"],
        a["plan_settled_ms"]))
