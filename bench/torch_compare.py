"""tpmm.all_gather_matmul vs what a PyTorch user writes today on CPU:
torch.distributed (gloo) all-gather, then torch.matmul. bf16, side by side.

    OMP_NUM_THREADS=1 PYTHONPATH=build-mpich/python \\
        mpirun.mpich -n 2 /usr/bin/python3 bench/torch_compare.py [--reps 7] [--shapes 128x4096x4096,...]

Shapes are m (rows per rank) x k x n, as in a tensor-parallel layer (the
defaults: a 4096-wide attention projection and an 11008-wide MLP, with 128
and 512 tokens per rank). Each repetition runs both variants back to back
after a barrier, alternating which goes first; a repetition's time is the
slowest rank's; the table shows medians over repetitions and the ratio
torch / tpmm (> 1: tpmm is faster). One GEMM thread per rank for both
(OMP_NUM_THREADS=1, torch.set_num_threads(1)).

This torch's gloo has no all_gather_into_tensor and no bfloat16, so the
torch side gathers float16 views of the bf16 bits with dist.all_gather
and concatenates (the same bytes move; the cat is part of its cost).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

import tpmm

try:
    import torch
    import torch.distributed as dist
except ImportError:
    print("torch_compare: python3-torch is not installed (scripts/install-deps.sh --full)", file=sys.stderr)
    sys.exit(2)


def bcast_str(text, rank, size, maxlen=512):
    """Rank 0's string on every rank, carried by tpmm (gather_out, one byte per
    float32 element). Debian's mpi4py is built for Open MPI, so it is not used."""
    data = text.encode() if rank == 0 else b""
    row = np.zeros((1, maxlen), np.float32)
    row[0, :len(data)] = np.frombuffer(data, np.uint8)
    _, g = tpmm.all_gather_matmul(row, np.zeros((maxlen, 1), np.float32), tpmm.WORLD_COMM_GROUP, size)
    return g[0].astype(np.uint8).tobytes().rstrip(b"\0").decode()


def torch_agmm(a, b, size):
    parts = [torch.empty_like(a).view(torch.float16) for _ in range(size)]
    dist.all_gather(parts, a.view(torch.float16))
    return torch.matmul(torch.cat(parts).view(torch.bfloat16), b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--shapes", default="128x4096x4096,128x4096x11008,512x4096x4096,512x4096x11008")
    args = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]

    torch.set_num_threads(1)
    tpmm.init()
    rank, size = tpmm.get_rank(), tpmm.get_group_size()
    tmp = tempfile.mkdtemp(prefix="tpmm_bench_") if rank == 0 else ""
    path = bcast_str(os.path.join(tmp, "store") if rank == 0 else "", rank, size)
    dist.init_process_group("gloo", init_method="file://" + path, rank=rank, world_size=size)
    if rank == 0:
        print(f"tpmm {tpmm.version()} (TPMM_ALGO={os.environ.get('TPMM_ALGO', 'auto')}) vs torch {torch.__version__} "
              f"gloo; {size} ranks, bf16, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')}, "
              f"{args.reps} reps, median of the slowest rank")
        print(f"{'m/rank':>7} {'k':>6} {'n':>6} | {'tpmm ms':>9} {'torch ms':>9} | {'torch/tpmm':>10} | "
              f"{'tpmm GF/s':>9} {'max rel diff':>12}")
    gen = torch.Generator().manual_seed(1234 + rank)
    for m, k, n in shapes:
        a = torch.randn(m, k, generator=gen).to(torch.bfloat16)
        b = (torch.randn(k, n, generator=gen) / k ** 0.5).to(torch.bfloat16)
        # warm-up (allocations, oneDNN primitive creation) and a result check
        out, _ = tpmm.all_gather_matmul(a, b, tpmm.WORLD_COMM_GROUP, size, gather_output=False)
        ref = torch_agmm(a, b, size)
        diff = ((out.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
        times = torch.zeros(2, args.reps, dtype=torch.float64)
        for r in range(args.reps):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for which in order:
                dist.barrier()
                t0 = time.perf_counter()
                if which == 0:
                    tpmm.all_gather_matmul(a, b, tpmm.WORLD_COMM_GROUP, size, gather_output=False)
                else:
                    torch_agmm(a, b, size)
                times[which, r] = time.perf_counter() - t0
        dist.all_reduce(times, op=dist.ReduceOp.MAX)  # slowest rank per repetition
        t_tpmm = statistics.median(times[0].tolist())
        t_torch = statistics.median(times[1].tolist())
        if rank == 0:
            gf = 2.0 * m * size * k * n / t_tpmm / 1e9
            print(f"{m:>7} {k:>6} {n:>6} | {t_tpmm * 1e3:>9.1f} {t_torch * 1e3:>9.1f} | {t_torch / t_tpmm:>10.2f} | "
                  f"{gf:>9.1f} {diff:>12.2e}", flush=True)
        del a, b, out, ref
    if rank == 0:
        # absolute times drift with load on a shared machine; say how busy it was
        print("load average (1/5/15 min): %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
