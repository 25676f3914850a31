"""A sequence-parallel transformer MLP with tpmm, forward and backward, on any
number of ranks, checked against the unsharded block and timed against the
same block written with torch.distributed (gloo) collectives.

    OMP_NUM_THREADS=1 PYTHONPATH=build-mpich/python \\
        mpirun.mpich -n 2 /usr/bin/python3 examples/sp_mlp.py [--tokens 512] [--hidden 1024] [--ffn 4096]
                                                              [--dtype bf16|fp32] [--reps 5] [--warmup 10]

The block (Megatron-LM's sequence parallelism): every rank holds `tokens`
rows of the activations x (tokens, hidden), the columns of W1 (hidden, ffn/W)
and the rows of W2 (ffn/W, hidden) that are its own:

    y = reduce_scatter(gelu(allgather(x) @ W1) @ W2)        (tokens, hidden) per rank

With tpmm, each collective is fused with its matmul, in the forward and in the
backward (tpmm.torch):

    h = tpmm.torch.all_gather_matmul(x, W1)      backward: dx by matmul_reduce_scatter, dW1 from the gathered x
    y = tpmm.torch.matmul_reduce_scatter(gelu(h), W2)   backward: da by all_gather_matmul, dW2 from the gathered dy

With torch.distributed, as a user writes it: two autograd functions around the
collectives (forward all-gather / backward reduce-scatter, and the reverse)
and torch.matmul. This torch's gloo (1.13) has no reduce_scatter,
all_gather_into_tensor or all_to_all, and no bfloat16, so the user's
reduce-scatter is an all_reduce followed by taking the own rows, bfloat16
is reduced in float32 (cast, all_reduce, cast back), and bfloat16 is
gathered with dist.all_gather on float16 views of the same bits, then
concatenated.

Checks: the whole block (output and the gradients of x, W1 and W2) against the
unsharded block computed in float64 by plain torch on one rank, at a small
size (--check-tokens etc.; every rank regenerates every rank's shards from the
seed), with a dtype-derived normwise tolerance; then, at the timed size, the
tpmm results against the torch.distributed results.

Timing: after --warmup untimed steps of both (tpmm's autotuner settles on
a schedule for each product within its first 8 calls where the runner-up
is no slower, 12 where one of its timed pairs contradicts the others, and
spaces a slower one's few calls out, as in a training loop), each
repetition runs both versions back to back after a barrier, alternating
which goes first; a repetition's time is the slowest rank's; the
medians are shown with the ratio torch / tpmm (> 1: tpmm is faster). One
GEMM thread per rank for both (OMP_NUM_THREADS=1, torch.set_num_threads(1)).

bf16 is the default: it is what such a block trains in, and in this torch
both versions then run their GEMMs in oneDNN (torch through mkldnn), so the
comparison measures the collectives and their overlap. In fp32, Debian's
torch 1.13 multiplies with a reference BLAS (about 1.5 GFLOP/s on this
machine, against oneDNN's tens), which would swamp everything else.
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
    import torch.nn.functional as F
except ImportError:
    print("sp_mlp: needs torch (python3-torch)", file=sys.stderr)
    sys.exit(77)

import tpmm.torch  # noqa: E402  (after torch: tpmm.torch needs it)

GROUP = tpmm.WORLD_COMM_GROUP
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
UNIT = {torch.bfloat16: 2.0 ** -8, torch.float32: 2.0 ** -24}


# ---- the block with tpmm ----
def tpmm_mlp(x, w1, w2, world):
    h = tpmm.torch.all_gather_matmul(x, w1, GROUP, world)
    return tpmm.torch.matmul_reduce_scatter(F.gelu(h), w2, GROUP, world)


# ---- the same block with torch.distributed (gloo), as a user writes it ----
def gloo_all_gather_rows(t):
    """allgather of row blocks: dist.all_gather into a list, then cat (gloo has
    no all_gather_into_tensor, and no bfloat16: bf16 moves as float16 views)."""
    world = dist.get_world_size()
    bf16 = t.dtype == torch.bfloat16
    src = t.contiguous().view(torch.float16) if bf16 else t.contiguous()
    parts = [torch.empty_like(src) for _ in range(world)]
    dist.all_gather(parts, src)
    g = torch.cat(parts)
    return g.view(torch.bfloat16) if bf16 else g


def gloo_reduce_scatter_rows(t):
    """reduce-scatter of row blocks: gloo has none, so all_reduce and keep the
    own rows (bfloat16 is reduced in float32: gloo cannot sum bfloat16)."""
    world, rank = dist.get_world_size(), dist.get_rank()
    s = t.shape[0] // world
    acc = t.float() if t.dtype == torch.bfloat16 else t.clone()
    dist.all_reduce(acc)
    return acc[rank * s:(rank + 1) * s].to(t.dtype)


def collective_function(fwd, bwd):
    """An autograd function: collective fwd forward, its adjoint bwd backward."""
    class Collective(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return fwd(t)

        @staticmethod
        def backward(ctx, g):
            return bwd(g)
    return Collective


GatherRows = collective_function(gloo_all_gather_rows, gloo_reduce_scatter_rows)
ReduceScatterRows = collective_function(gloo_reduce_scatter_rows, gloo_all_gather_rows)


def torch_mlp(x, w1, w2, world):
    h = torch.matmul(GatherRows.apply(x), w1)
    return ReduceScatterRows.apply(torch.matmul(F.gelu(h), w2))


# ---- data, checks, timing ----
def shards(seed, r, s, hidden, fl, dtype):
    """Rank r's x (s, hidden), W1 columns (hidden, fl), W2 rows (fl, hidden) and
    upstream gradient dy (s, hidden): any rank can make any rank's."""
    g = torch.Generator().manual_seed(seed * 1000 + r)
    x = torch.randn(s, hidden, generator=g)
    w1 = torch.randn(hidden, fl, generator=g) / hidden ** 0.5
    w2 = torch.randn(fl, hidden, generator=g) / (fl * dist.get_world_size()) ** 0.5
    dy = torch.randn(s, hidden, generator=g)
    return [t.to(dtype) for t in (x, w1, w2, dy)]


def fwd_bwd(block, x, w1, w2, dy, world, stamps=None):
    """y and the gradients of x, W1, W2 for the upstream gradient dy."""
    x, w1, w2 = (t.detach().requires_grad_() for t in (x, w1, w2))
    y = block(x, w1, w2, world)
    if stamps is not None:
        stamps.append(time.perf_counter())
    grads = torch.autograd.grad(y, (x, w1, w2), dy)
    return [y.detach()] + list(grads)


def normwise_error(got, ref):
    return ((got.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-300)).item()


NAMES = ("y", "dx", "dW1", "dW2")


def check_unsharded(seed, s, hidden, ffn, dtype, rank, world):
    """The sharded block (tpmm) against the unsharded block in float64, plain
    torch on one rank. Tolerance: 4 roundings of the dtype plus the fp32 sums."""
    fl = ffn // world
    mine = shards(seed, rank, s, hidden, fl, dtype)
    got = fwd_bwd(tpmm_mlp, *mine, world)
    every = [shards(seed, r, s, hidden, fl, dtype) for r in range(world)]
    X = torch.cat([e[0] for e in every]).double().requires_grad_()
    W1 = torch.cat([e[1] for e in every], dim=1).double().requires_grad_()
    W2 = torch.cat([e[2] for e in every]).double().requires_grad_()
    DY = torch.cat([e[3] for e in every]).double()
    Y = F.gelu(X @ W1) @ W2
    dX, dW1, dW2 = torch.autograd.grad(Y, (X, W1, W2), DY)
    rows, cols = slice(rank * s, (rank + 1) * s), slice(rank * fl, (rank + 1) * fl)
    ref = [Y[rows].detach(), dX[rows], dW1[:, cols], dW2[cols]]
    tol = 4 * UNIT[dtype] + max(hidden, ffn, s * world) * 2.0 ** -24
    errs = [normwise_error(a, b) for a, b in zip(got, ref)]
    return errs, tol


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=512, help="tokens (rows of x) per rank")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--ffn", type=int, default=None,
                    help="the MLP's inner width, a multiple of the ranks (default: 4096, rounded down to one)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10,
                    help="untimed steps first: tpmm's autotuner times its two candidates over its first 8 calls "
                    "(a slower runner-up's calls spaced out over more)")
    ap.add_argument("--check-tokens", type=int, default=16)
    ap.add_argument("--check-hidden", type=int, default=64)
    ap.add_argument("--check-ffn-per-rank", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    dtype = DTYPES[args.dtype]

    torch.set_num_threads(1)
    tpmm.init()
    rank, world = tpmm.get_rank(), tpmm.get_group_size()
    if args.ffn is None:
        args.ffn = 4096 - 4096 % world
    if args.ffn % world:
        if rank == 0:
            print(f"sp_mlp: --ffn {args.ffn} is not a multiple of {world} ranks", file=sys.stderr)
        sys.exit(2)
    tmp = gloo_init(rank, world, "tpmm_sp_mlp_")

    # 1. against the unsharded block
    errs, tol = check_unsharded(args.seed, args.check_tokens, args.check_hidden, args.check_ffn_per_rank * world,
                                dtype, rank, world)
    worst = torch.tensor(errs, dtype=torch.float64)
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    ok = bool((worst <= tol).all())
    if rank == 0:
        print(f"tpmm {tpmm.version()}, torch {torch.__version__} gloo; {world} ranks, {args.dtype}, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')}")
        print(f"check vs the unsharded block in float64 ({args.check_tokens} tokens/rank, {args.check_hidden} -> "
              f"{args.check_ffn_per_rank * world} -> {args.check_hidden}): normwise relative errors "
              + ", ".join(f"{n} {e:.1e}" for n, e in zip(NAMES, worst.tolist()))
              + f" (tolerance {tol:.1e}): {'ok' if ok else 'FAILED'}", flush=True)

    # 2. timed: tpmm and torch.distributed side by side
    s, fl = args.tokens, args.ffn // world
    x, w1, w2, dy = shards(args.seed + 1, rank, s, args.hidden, fl, dtype)
    blocks = (tpmm_mlp, torch_mlp)
    results = [fwd_bwd(b, x, w1, w2, dy, world) for b in blocks]  # the results to compare
    for _ in range(args.warmup):
        for b in blocks:
            fwd_bwd(b, x, w1, w2, dy, world)
    diffs = torch.tensor([normwise_error(a, b) for a, b in zip(*results)], dtype=torch.float64)
    dist.all_reduce(diffs, op=dist.ReduceOp.MAX)
    agree_tol = 2 * (4 * UNIT[dtype] + max(args.hidden, args.ffn, s * world) * 2.0 ** -24)
    ok = ok and bool((diffs <= agree_tol).all())
    del results
    times = torch.zeros(2, 2, args.reps, dtype=torch.float64)  # [version][forward, forward+backward][rep]
    for r in range(args.reps):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            dist.barrier()
            stamps = [time.perf_counter()]
            fwd_bwd(blocks[which], x, w1, w2, dy, world, stamps)
            stamps.append(time.perf_counter())
            times[which, 0, r] = stamps[1] - stamps[0]
            times[which, 1, r] = stamps[2] - stamps[0]
    dist.all_reduce(times, op=dist.ReduceOp.MAX)  # the slowest rank per repetition
    med = [[statistics.median(times[v, p].tolist()) * 1e3 for p in range(2)] for v in range(2)]
    # the ratio within each repetition (the machine's speed drifts between them)
    paired = [statistics.median((times[1, p] / times[0, p]).tolist()) for p in range(2)]
    if rank == 0:
        print(f"tpmm vs torch.distributed at {s} tokens/rank, {args.hidden} -> {args.ffn} -> {args.hidden}: "
              "normwise relative differences "
              + ", ".join(f"{n} {e:.1e}" for n, e in zip(NAMES, diffs.tolist()))
              + f" (tolerance {agree_tol:.1e}): {'ok' if bool((diffs <= agree_tol).all()) else 'FAILED'}")
        print(f"{args.reps} reps, median of the slowest rank:")
        print(f"{'':>18} {'forward ms':>11} {'fwd+bwd ms':>11}")
        print(f"{'tpmm':>18} {med[0][0]:>11.1f} {med[0][1]:>11.1f}")
        print(f"{'torch.distributed':>18} {med[1][0]:>11.1f} {med[1][1]:>11.1f}")
        print(f"{'torch / tpmm':>18} {med[1][0] / med[0][0]:>11.2f} {med[1][1] / med[0][1]:>11.2f}")
        print(f"{'same, per rep':>18} {paired[0]:>11.2f} {paired[1]:>11.2f}   (median of each repetition's ratio)")
        print("load average (1/5/15 min): %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    gloo_close(rank, tmp)
    tpmm.finalize()
    sys.exit(0 if ok else 1)


def bcast_str(text, rank, world, maxlen=512):
    """Rank 0's string on every rank, carried by tpmm (gather_out of a float32
    all_gather_matmul, one byte per element): no second MPI binding needed."""
    data = text.encode() if rank == 0 else b""
    row = np.zeros((1, maxlen), np.float32)
    row[0, :len(data)] = np.frombuffer(data, np.uint8)
    _, g = tpmm.all_gather_matmul(row, np.zeros((maxlen, 1), np.float32), GROUP, world)
    return g[0].astype(np.uint8).tobytes().rstrip(b"\0").decode()


def gloo_init(rank, world, prefix):
    """torch.distributed (gloo) over tpmm's ranks: rank 0 picks a rendezvous
    file, tpmm broadcasts its path. Returns its directory (rank 0), for
    gloo_close."""
    tmp = tempfile.mkdtemp(prefix=prefix) if rank == 0 else ""
    path = bcast_str(os.path.join(tmp, "store") if rank == 0 else "", rank, world)
    dist.init_process_group("gloo", init_method="file://" + path, rank=rank, world_size=world)
    return tmp


def gloo_close(rank, tmp):
    """After every rank's last collective: the process group, the rendezvous directory."""
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
