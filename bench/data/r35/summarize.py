#!/usr/bin/env python3
"""bench/data/r35/summarize.py FILE: per link, W, MPI, point and requested schedule, each tree's runs side by side
(rounds in order): the schedule run, each run's paired T_fused / T_seq and their median; bitwise_equal of all."""
import json, statistics as st, sys
rows, trees = {}, []
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d["tree"] not in trees:
        trees.append(d["tree"])
    key = (d["net"], d["world_size"], d["mpi"].split("-")[0], d["op"], d["m"], d["n"], d["algo"])
    rows.setdefault(key, {}).setdefault(d["tree"], []).append(d)
print("| net | W | MPI | op | m x n | asked | tree | ran | T_fused / T_seq by round | median | bitwise |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for key in sorted(rows):
    for tree in trees:
        ds = sorted(rows[key].get(tree, []), key=lambda d: d["round"])
        if ds:
            r = [d["fused_over_seq"] for d in ds]
            print("| %s | %d | %s | %s | %d x %d | %s | %s | %s | %s | %.3f | %s |" % (
                key[0], key[1], key[2], key[3].replace("matmul_", ""), key[4], key[5], key[6], tree,
                ",".join(sorted({"%s/%d" % (d.get("algo_run", "?"), d.get("chunks_run", 0)) for d in ds})),
                ", ".join("%.3f" % x for x in r), st.median(r), all(d["bitwise_equal"] for d in ds)))
