"""Project tpmm's cost model to clusters this machine cannot be: W = N nodes x L
ranks per node, `hier` (a ring per rail across nodes, shared windows within
a node) against the unfused baseline, over links of a given rate.

    /usr/bin/python3 bench/project.py --calibrate build-mpich [--runs 4] [--save FILE]   # measure here, then project
    /usr/bin/python3 bench/project.py --rates FILE.json            # the same from saved rates
        [--k 8192] [--n-total 28672] [--W 8,16,32,64] [--L 4] [--links 10,25,100]
        [--m 1,4,16,64,256,1024,4096] [--alpha-us 20] [--markdown]

The formulas are src/pipeline/model.c's, written out again (without its
crowded-machine terms: a projected rank has a core of its own):
  G(M) = max(F, g0 + M * g1): the GEMM of M rows of (k, n) on one core; F =
    x2's bytes / 10 GB/s (a chunk's GEMM streams x2 from memory, overlapped
    with its arithmetic; model.c times a 1-row call instead where a call has
    up to 127 rows, which a projection has no machine to time). --calibrate times a one-rank
    plan of 256 rows with unfused forced, --runs times (a pause apart), and
    takes g0 = 0, g1 = the fastest run's 256-row GEMM / 256: the machine's
    GEMM speed moves between modes, and tpmm's own two-point fit (64 and 256
    rows, TPMM_VERBOSE, kept in the file as g0_calibrated, g1_calibrated)
    scatters more than the GEMM itself.
  The ring: a shard of m rows is cut into C chunks; chunks cross a link back
    to back in order, the i-th arriving at (i+1) * x, x = alpha + lag + chunk
    bytes / bandwidth; a rank multiplies what it has, then each chunk as soon
    as it is there and the previous GEMM is done (model.c's tpi_model_ring);
    the chunk count is the best of model.c's ladder (more chunks only for a
    gain of 2 %); a progress thread when the GEMM between two polls (a tile,
    or a whole shard when that is shorter: polls come once a call) exceeds
    2 ms (its lag is its nap: 300 us when the transfer is the longer part,
    else 1000 us; its fixed cost 100 us + 2 naps).
What this script adds for several ranks per node (model.c's hier prediction
is the plain ring over all W ranks, an upper bound): the L rails of a node
share its link, so a rail moves a chunk at bandwidth / L; when a node's
chunk c arrives, it has arrived on every rail, and the rank multiplies L
chunks (its own rail's and its node peers', read in place). The node's own L
shards are there from the start (shared memory). The baseline is
MPI_Allgather + one GEMM: every node receives (N - 1) * L shards over its
link, plus (L - 1) shards from node peers at shared-memory speed (6 GB/s,
model.c's BETA_SHM, copied twice: into MPI's shared cells and out), then
G(m * W).
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

STREAM_BW = 10e9  # model.c: bytes/s one core streams x2 at
BETA_SHM, ALPHA_SHM = 6e9, 2e-6
MPI_SHM_COPIES = 2  # model.c: an MPI collective within a node copies in and out of shared cells
TILE_SECONDS, THREAD_TILE_SECONDS = 1e-3, 2e-3
NAP_COMM_BOUND, NAP_GEMM_BOUND = 300e-6, 1000e-6
LADDER = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
ES = 2  # bf16


def calibrate(build, k, ns, runs, pause):
    """g0, g1 (s) per n from `runs` runs of tpmm on this machine (one rank, a plan), `pause` s apart."""
    bench = os.path.join(build, "tools", "tpmm-bench")
    env = dict(os.environ, TPMM_VERBOSE="1", OMP_NUM_THREADS="1", TPMM_NUM_THREADS="1")
    seen = {n: {"t_gemm_m256_ms": [], "g0_calibrated": [], "g1_calibrated": [], "loadavg": []} for n in ns}
    for run in range(runs):
        if run:
            time.sleep(pause)
        for n in ns:
            p = subprocess.run(["mpirun.mpich", "-n", "1", bench, "--m", "256", "--k", str(k), "--n", str(n), "--plan",
                                "--algo", "unfused", "--no-check", "--iters", "5", "--warmup", "1", "--peak", "0", "--json"],
                               env=env, capture_output=True, text=True, check=True)
            g = re.search(r"g0=([0-9.]+) us g1=([0-9.]+) us/row", p.stderr)
            line = json.loads(p.stdout.strip().splitlines()[-1])
            s = seen[n]
            s["t_gemm_m256_ms"].append(line["t_gemm_ms"])
            s["g0_calibrated"].append(float(g.group(1)) * 1e-6)
            s["g1_calibrated"].append(float(g.group(2)) * 1e-6)
            s["loadavg"].append(line["loadavg"])
            print(f"run {run + 1}/{runs} k={k} n={n}: GEMM of 256 rows {line['t_gemm_ms']:.3f} ms (tpmm's fit: g0 "
                  f"{s['g0_calibrated'][-1] * 1e6:.1f} us, g1 {s['g1_calibrated'][-1] * 1e6:.3f} us/row; load "
                  f"{line['loadavg']:.2f})", file=sys.stderr)
    return {n: dict(g0=0.0, g1=min(s["t_gemm_m256_ms"]) * 1e-3 / 256, **s) for n, s in seen.items()}


def chunk_lo(m, C, c):
    return m * c // C


def gemm(rows, g0, g1, floor):
    """model.c's tpi_model_gemm: the arithmetic, or x2 read from memory."""
    return max(floor, g0 + rows * g1)


def progress(g0, g1, floor, t_gemm, t_xfer, N, m):
    """model.c's progress(): who drives MPI, its lag and fixed cost."""
    tile = math.ceil(max(TILE_SECONDS, 4 * max(g0, floor)) / g1) if g1 > 0 else 64
    tile_s = gemm(min(tile, m), g0, g1, floor)  # polls come at least once a call, a shard at most
    thread = N > 1 and tile_s > THREAD_TILE_SECONDS
    nap = NAP_GEMM_BOUND if t_gemm > t_xfer else NAP_COMM_BOUND
    return (nap, 100e-6 + 2 * nap) if thread else (tile_s / 2, 0.0)


def hier_time(m, k, N, L, C, g0, g1, floor, alpha, beta, lag):
    """The rail ring with L rails sharing a node's link (see the docstring)."""
    t = 0.0
    for c in range(C):  # the node's own L shards, from shared memory
        t += L * gemm(chunk_lo(m, C, c + 1) - chunk_lo(m, C, c), g0, g1, floor)
    for s in range(1, N):
        for c in range(C):
            rows = chunk_lo(m, C, c + 1) - chunk_lo(m, C, c)
            x = alpha + lag + rows * k * ES * L / beta
            arrive = ((s - 1) * C + c + 1) * x
            t = max(t, arrive) + L * gemm(rows, g0, g1, floor)
    return t


def project(m, k, n, N, L, g0, g1, alpha, beta):
    W = N * L
    floor = k * n * ES / STREAM_BW
    shard = m * k * ES
    t_gemm = gemm(m * W, g0, g1, floor)
    t_xfer = (N - 1) * (alpha + L * shard / beta) + (L - 1) * (ALPHA_SHM + MPI_SHM_COPIES * shard / BETA_SHM)
    t_seq = t_xfer + t_gemm
    lag, fixed = progress(g0, g1, floor, t_gemm, t_xfer, N, m)
    best, best_c = math.inf, 1
    for C in LADDER:
        if C > max(1, min(m, 64)):
            break
        t = hier_time(m, k, N, L, C, g0, g1, floor, alpha, beta, lag)
        if t < best * 0.98:
            best, best_c = t, C
    t_fused = best + fixed
    return {"W": W, "N": N, "L": L, "m": m, "t_gemm": t_gemm, "t_xfer": t_xfer, "t_seq": t_seq,
            "t_fused": t_fused, "chunks": best_c, "floor": floor, "fixed": fixed}


def limit(r):
    """What bounds the gain at a point, in words."""
    gain = r["t_seq"] / r["t_fused"]
    if gain < 1:
        over = r["t_fused"] - (r["t_gemm"] + r["fixed"])
        return "fusing loses: each chunk's GEMM re-reads x2 (F) and the thread's naps cost more than the transfer" \
            if over > 0 else "fusing loses"
    ratio = r["t_xfer"] / r["t_gemm"]
    if ratio < 0.2:
        return "GEMM-bound: at most the transfer (%.0f %% of the GEMM) to hide" % (100 * ratio)
    if ratio > 5:
        return "link-bound: the GEMM (%.0f %% of the transfer) is all there is to hide" % (100 / ratio)
    return "balanced: up to min(T_xfer, T_gemm) hidden; left: the last chunk, per-chunk x2 reads, naps"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calibrate", metavar="BUILD", help="measure g0, g1 with BUILD/tools/tpmm-bench")
    ap.add_argument("--rates", help="JSON file of rates (written by --calibrate with --save)")
    ap.add_argument("--save", help="write the calibrated rates here")
    ap.add_argument("--runs", type=int, default=4, help="--calibrate: runs, the fastest counts")
    ap.add_argument("--pause", type=float, default=15.0, help="--calibrate: seconds between runs")
    ap.add_argument("--k", type=int, default=8192)
    ap.add_argument("--n-total", type=int, default=28672, help="n over all ranks; a rank has n-total / W")
    ap.add_argument("--W", default="8,16,32,64")
    ap.add_argument("--L", type=int, default=4, help="ranks per node")
    ap.add_argument("--links", default="10,25,100", help="Gbit/s per node link")
    ap.add_argument("--m", default="1,4,16,64,256,1024,4096")
    ap.add_argument("--alpha-us", type=float, default=20.0, help="latency per message over the link")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    Ws = [int(v) for v in a.W.split(",")]
    ms = [int(v) for v in a.m.split(",")]
    links = [float(v) for v in a.links.split(",")]
    ns = sorted({a.n_total // W for W in Ws})
    if a.calibrate:
        rates = calibrate(a.calibrate, a.k, ns, a.runs, a.pause)
        if a.save:
            with open(a.save, "w") as f:
                json.dump({"k": a.k, "rates": {str(n): r for n, r in rates.items()}}, f, indent=1)
    elif a.rates:
        with open(a.rates) as f:
            saved = json.load(f)
        if saved["k"] != a.k:
            sys.exit(f"project: {a.rates} has k={saved['k']}, not {a.k}")
        rates = {int(n): r for n, r in saved["rates"].items()}
    else:
        sys.exit("project: --calibrate BUILD or --rates FILE")

    print(f"k={a.k}, n={a.n_total}/W per rank, bf16, L={a.L} ranks per node, alpha={a.alpha_us:g} us, "
          f"one core per rank; T in ms; gain = T_seq / T_fused (the fused schedule when the model picks it)")
    for gbit in links:
        beta = gbit * 1e9 / 8
        if a.markdown:
            print(f"\n**{gbit:g} Gbit/s per node**\n")
            print("| W (N x L) | m | T_gemm | T_xfer | T_seq | T_fused (C) | gain | limit |")
            print("|---|---|---|---|---|---|---|---|")
        else:
            print(f"\n{gbit:g} Gbit/s per node")
        for W in Ws:
            N, L = max(1, W // a.L), min(a.L, W)
            n = a.n_total // W
            g0, g1 = rates[n]["g0"], rates[n]["g1"]
            for m in ms:
                r = project(m, a.k, n, N, L, g0, g1, a.alpha_us * 1e-6, beta)
                gain = r["t_seq"] / r["t_fused"]
                if a.markdown:
                    print(f"| {W} ({N}x{L}) | {m} | {r['t_gemm'] * 1e3:.3g} | {r['t_xfer'] * 1e3:.3g} | "
                          f"{r['t_seq'] * 1e3:.3g} | {r['t_fused'] * 1e3:.3g} ({r['chunks']}) | "
                          f"{'**%.2f**' % gain if gain > 1.02 else '%.2f' % gain} | {limit(r)} |")
                else:
                    print(f"  W={W:3} ({N}x{L}) m={m:5} T_gemm {r['t_gemm'] * 1e3:9.3f} T_xfer {r['t_xfer'] * 1e3:9.3f} "
                          f"T_seq {r['t_seq'] * 1e3:9.3f} T_fused {r['t_fused'] * 1e3:9.3f} C={r['chunks']:2} "
                          f"gain {gain:5.2f}  {limit(r)}")


if __name__ == "__main__":
    main()
