"""The GEMM-bound bound, side by side: s = the GEMM's slowdown under a plain TCP stream over the
simulated link (bench/netcpu.sh), from pairs of short runs alternated (this machine's GEMM moves
between two speeds every few seconds, so only neighbours in time compare), and beside each pair the
fused plan's E over the link at the same shape. Root; bench/netsim.sh up 2 RATE first.

    /usr/bin/python3 bench/netcpu_pair.py BUILD [--pairs 8] [--m 512 --k 4096 --n 4096] [--json FILE]
                                          [--extra "--gather-index 1" | "--op matmul_reduce_scatter" ...]

Per pair: T_GEMM quiet, T_GEMM with the stream (tpmm-bench --algo unfused, two ranks computing, no
MPI traffic during T_GEMM), s = their ratio; then the plan over the link (auto): E (paired per
iteration) and E / (1 / s). Then the medians over pairs.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def bench(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, check=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--m", default="512")
    ap.add_argument("--k", default="4096")
    ap.add_argument("--n", default="4096")
    ap.add_argument("--json", help="append each pair as a JSON line here")
    ap.add_argument("--extra", default="", help="more tpmm-bench flags for both runs (the operator, gather_index)")
    a = ap.parse_args()
    tb = os.path.join(a.build, "tools", "tpmm-bench")
    shape = ["--m", a.m, "--k", a.k, "--n", a.n, "--dtype", "bf16", "--plan", "--peak", "0", "--json"] + a.extra.split()
    gemm = ["mpirun.mpich", "-n", "2", tb] + shape + ["--algo", "unfused", "--no-check", "--iters", "5",
                                                       "--warmup", "1"]
    fused = [os.path.join(HERE, "netsim.sh"), "run", "--", tb] + shape + ["--algo", "auto", "--iters", "9",
                                                                         "--warmup", "2"]
    out = open(a.json, "a") if a.json else None
    rows = []
    for i in range(a.pairs):
        quiet = bench(gemm)["t_gemm_ms"]
        stream = subprocess.Popen([os.path.join(HERE, "netcpu.sh"), "100000"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.7)  # the stream at its rate before the GEMM starts
        try:
            busy = bench(gemm)["t_gemm_ms"]
        finally:
            os.killpg(stream.pid, signal.SIGTERM)
            stream.wait()
            time.sleep(0.5)
        f = bench(fused)
        s = busy / quiet
        f["t_ag_ms"] = f.get("t_ag_ms", f.get("t_comm_ms"))  # the reduce operators' collective alone
        row = {"pair": i + 1, "extra": a.extra, "t_gemm_quiet_ms": quiet, "t_gemm_stream_ms": busy, "s": s,
               "efficiency_paired": f["efficiency_paired"], "efficiency": f["efficiency"],
               "t_ag_ms": f["t_ag_ms"], "t_gemm_ms": f["t_gemm_ms"], "t_fused_ms": f["t_fused_ms"],
               "algo_run": f.get("algo_run"), "chunks_run": f.get("chunks_run")}
        rows.append(row)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()
        print(f"pair {i + 1}: T_GEMM quiet {quiet:.1f} ms, with the stream {busy:.1f} ms, s {s:.2f}, bound 1/s "
              f"{1 / s:.2f}; over the link: T_AG {f['t_ag_ms']:.1f} T_GEMM {f['t_gemm_ms']:.1f} T_fused "
              f"{f['t_fused_ms']:.1f} ({f.get('algo_run')}/{f.get('chunks_run')}), E {f['efficiency']:.2f} "
              f"(paired {f['efficiency_paired']:.2f}), E paired / bound {f['efficiency_paired'] * s:.2f}", flush=True)
    med = lambda k: statistics.median(r[k] for r in rows)
    print(f"median over {len(rows)} pairs: s {med('s'):.2f} (bound {1 / med('s'):.2f}), E paired "
          f"{med('efficiency_paired'):.2f}, E paired / bound {statistics.median(r['efficiency_paired'] * r['s'] for r in rows):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
