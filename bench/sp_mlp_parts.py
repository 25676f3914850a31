"""Where examples/sp_mlp.py's time goes: each collective product of the
sequence-parallel MLP, tpmm against the torch.distributed (gloo) version,
side by side in one run.

    OMP_NUM_THREADS=1 PYTHONPATH=build-mpich/python \\
        mpirun.mpich -n 2 /usr/bin/python3 bench/sp_mlp_parts.py [--tokens 512] [--hidden 1024] [--ffn 4096] [--reps 11] [--warmup 9]

Rows: the four products that carry a collective (forward: x @ W1 after the
all-gather, a @ W2 before the reduce-scatter; backward: dy @ W2^T after the
all-gather of dy, dh @ W1^T before the reduce-scatter of dx), each as

    tpmm            the one-shot call tpmm.torch makes (auto schedule)
    tpmm unfused    the same call with TPMM_ALGO=unfused (GEMM, then the exchange)
    tpmm plan       a plan made beforehand (x2 packed, workspaces kept): the call without its setup
    torch           gloo collective + torch.matmul, as examples/sp_mlp.py writes it

and the GEMM alone (torch.matmul) for scale. bf16 (see sp_mlp.py for why).
Every variant is called --warmup times first, so that tpmm's autotuner has
settled (it times its two candidates over a call signature's first 9 calls where the runner-up is no
slower, 13 where one pair contradicts the others, spaced over more where it is slower: the medians then
hold a few of its calls).
Each repetition runs every variant after a barrier, in a rotating order; a
repetition's time is the slowest rank's; medians.
"""
import argparse
import os
import statistics
import sys
import time

import tpmm

try:
    import torch
    import torch.distributed as dist
except ImportError:
    print("sp_mlp_parts: needs torch (python3-torch)", file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import sp_mlp  # noqa: E402  (the torch.distributed version and the rendezvous)

G = tpmm.WORLD_COMM_GROUP


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--ffn", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--warmup", type=int, default=9, help="untimed calls first (tpmm's autotuner needs 9)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tpmm.init()
    rank, W = tpmm.get_rank(), tpmm.get_group_size()
    tmp = sp_mlp.gloo_init(rank, W, "tpmm_parts_")

    s, h, fl, dt = args.tokens, args.hidden, args.ffn // W, torch.bfloat16
    g = torch.Generator().manual_seed(7 + rank)
    x, dy = torch.randn(s, h, generator=g).to(dt), torch.randn(s, h, generator=g).to(dt)
    a, dh = torch.randn(s * W, fl, generator=g).to(dt), torch.randn(s * W, fl, generator=g).to(dt)
    w1, w2 = (torch.randn(h, fl, generator=g) / h ** 0.5).to(dt), (torch.randn(fl, h, generator=g) / fl ** 0.5).to(dt)
    xg = torch.randn(s * W, h, generator=g).to(dt)
    ag, rs = sp_mlp.gloo_all_gather_rows, sp_mlp.gloo_reduce_scatter_rows

    plans = [tpmm.plan_all_gather_matmul(x, w1, G, W), tpmm.plan_matmul_reduce_scatter(a, w2, G, W),
             tpmm.plan_all_gather_matmul(dy, w2, G, W, trans_x2=True),
             tpmm.plan_matmul_reduce_scatter(dh, w1, G, W, trans_x2=True)]
    calls = [lambda: tpmm.all_gather_matmul(x, w1, G, W), lambda: tpmm.matmul_reduce_scatter(a, w2, G, W),
             lambda: tpmm.all_gather_matmul(dy, w2, G, W, trans_x2=True),
             lambda: tpmm.matmul_reduce_scatter(dh, w1, G, W, trans_x2=True)]

    def unfused(fn):
        def run():
            tpmm.set_param(tpmm.PARAM_ALGO, tpmm.ALGO_UNFUSED)
            try:
                return fn()
            finally:
                tpmm.set_param(tpmm.PARAM_ALGO, tpmm.ALGO_AUTO)
        return run

    rows = [
        ("fwd  ag(x) @ W1", [calls[0], unfused(calls[0]), lambda: plans[0](x),
                             lambda: torch.matmul(ag(x), w1), lambda: torch.matmul(xg, w1)]),
        ("fwd  rs(a @ W2)", [calls[1], unfused(calls[1]), lambda: plans[1](a),
                             lambda: rs(torch.matmul(a, w2)), lambda: torch.matmul(a, w2)]),
        ("bwd  ag(dy) @ W2^T", [calls[2], unfused(calls[2]), lambda: plans[2](dy),
                                lambda: torch.matmul(ag(dy), w2.t()), lambda: torch.matmul(xg, w2.t())]),
        ("bwd  rs(dh @ W1^T)", [calls[3], unfused(calls[3]), lambda: plans[3](dh),
                                lambda: rs(torch.matmul(dh, w1.t())), lambda: torch.matmul(dh, w1.t())]),
    ]
    cols = ("tpmm", "tpmm unfused", "tpmm plan", "torch", "GEMM alone")
    t = torch.zeros(len(rows), len(cols), args.reps, dtype=torch.float64)
    for fns in [r[1] for r in rows]:
        for f in fns:
            for _ in range(max(1, args.warmup)):
                f()
    for r in range(args.reps):
        for i, (_, fns) in enumerate(rows):
            for j in [(r + d) % len(fns) for d in range(len(fns))]:
                dist.barrier()
                t0 = time.perf_counter()
                fns[j]()
                t[i, j, r] = time.perf_counter() - t0
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if rank == 0:
        print(f"{W} ranks, bf16, {s} tokens/rank, {h} -> {args.ffn} -> {h}; {args.reps} reps, median ms of the "
              "slowest rank")
        print(f"{'product':<20}" + "".join(f"{c:>14}" for c in cols))
        for i, (name, _) in enumerate(rows):
            print(f"{name:<20}" + "".join(f"{statistics.median(t[i, j].tolist()) * 1e3:>14.1f}"
                                          for j in range(len(cols))))
        print("load average (1/5/15 min): %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    for p in plans:
        p.close()
    sp_mlp.gloo_close(rank, tmp)


if __name__ == "__main__":
    main()
