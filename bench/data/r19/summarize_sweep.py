"""Issue 14's W = 2 sweep (commands.sh shm / net): per link, op and n, fused_over_seq (the median of each
iteration's T_fused / T_seq) and the schedule auto ran, at m = 16 ... 2048; bold: at or below T_seq.
/usr/bin/python3 summarize_sweep.py [suffix]"""
import json, os, sys
sfx = sys.argv[1] if len(sys.argv) > 1 else ""
print("| link | op | n | m = 16 | 128 | 512 | 2048 |")
print("|---|---|---|---|---|---|---|")
ok = tot = 0
bits = True
for rate in ("shm", "1gbit", "10gbit"):
    for op in ("matmul_reduce_scatter", "matmul_all_reduce"):
        f = "red-%s-W2-%s%s.jsonl" % (rate, op, sfx)
        if not os.path.exists(f):
            continue
        rows = {}
        for l in open(f):
            if l.startswith("{"):
                r = json.loads(l)
                rows[(r["n"], r["m"])] = r
        for n in (1024, 4096):
            cells = []
            for m in (16, 128, 512, 2048):
                r = rows[(n, m)]
                v = r["fused_over_seq"]
                tot += 1
                bits = bits and r["bitwise_equal"] is True
                c = "%.2f %s/%d" % (v, r["algo_run"], r["chunks_run"])
                if v <= 1.0:
                    ok += 1
                    c = "**" + c + "**"
                cells.append(c)
            print("| %s | %s | %d | %s |" % (rate.replace("gbit", " Gbit"), op[7:], n, " | ".join(cells)))
print()
print("%d of %d at or below T_seq; bit-identical at every point: %s" % (ok, tot, bits))
