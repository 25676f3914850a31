"""What the Python binding adds to a plan call, measured side by side with the C call.

    OMP_NUM_THREADS=1 PYTHONPATH=build-mpich/python mpirun.mpich -n 2 /usr/bin/python3 bench/py_overhead.py
        [--m 1 --k 1 --n 1] [--dtype float32|float16|bfloat16] [--kind numpy|torch] [--rounds 60] [--reps 200]

Every round runs the same plan `reps` times in two ways, one right after the
other: in C (Plan.bench: tpmm_plan_execute in a loop with the GIL released
once, no Python between executions, each execution timed) and from Python
(`plan(input)` in a loop: input checks, new outputs, the C call; each call
timed). Medians of per-call times keep out the calls a busy machine
preempted; the binding's cost is the difference of the two medians, per
round (both ways run in the same conditions, so drift cancels), and the
script prints its median and quartiles over rounds. Rank 0 prints; the calls
are collective, so every rank sees the same per-call time. The order of the
two ways alternates between rounds.
"""
import argparse
import statistics
import sys
import time

import numpy as np

import tpmm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--m", type=int, default=1)
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--dtype", default="float32", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--kind", default="numpy", choices=["numpy", "torch"])
    ap.add_argument("--gather-output", default=1, type=int, choices=[0, 1])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--reps", type=int, default=200)
    a = ap.parse_args()

    tpmm.init()
    rank, W = tpmm.get_rank(), tpmm.get_group_size()
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((a.m, a.k)).astype(np.float32)
    w = rng.standard_normal((a.k, a.n)).astype(np.float32)
    bf16 = a.dtype == "bfloat16"
    if a.kind == "torch":
        import torch
        dt = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[a.dtype]
        x, w = torch.from_numpy(x).to(dt), torch.from_numpy(w).to(dt)
        kw = {}
    elif bf16:
        x, w = tpmm.float32_to_bf16(x), tpmm.float32_to_bf16(w)
        kw = {"bf16_bits": True}
    else:
        x, w = x.astype(a.dtype), w.astype(a.dtype)
        kw = {}

    plan = tpmm.plan_all_gather_matmul(x, w, tpmm.WORLD_COMM_GROUP, W, gather_output=bool(a.gather_output), **kw)
    # the C loop's arguments: the same input, outputs allocated once
    out, gout = plan(x)
    if a.kind == "torch":
        c_args = (x.data_ptr(), plan._code, 2, a.m, a.k, a.k, out.data_ptr(), gout.data_ptr())
    else:
        c_args = (x, plan._code, 2, a.m, a.k, a.k, out, gout)
    for _ in range(50):  # the autotuner's first calls, page faults, caches
        plan(x)
    plan._c.bench(50, *c_args)

    # what allocating the outputs alone costs (part of the binding's work;
    # for torch, torch's own per-tensor cost)
    shapes = [tuple(out.shape), tuple(gout.shape)]
    if a.kind == "torch":
        def alloc():
            return [torch.empty(s, dtype=x.dtype, device="cpu") for s in shapes]
    else:
        def alloc():
            return [np.empty(s, dtype=x.dtype) for s in shapes]

    def timed(fn):
        ts, t = [], clock()
        for _ in range(a.reps):
            fn()
            t2 = clock()
            ts.append(t2 - t)
            t = t2
        return ts

    c_all, py_all, al_all, diff = [], [], [], []
    clock = time.perf_counter
    for r in range(a.rounds):
        for way in (("c", "py") if r % 2 == 0 else ("py", "c")):
            if way == "c":
                cs = plan._c.bench(a.reps, *c_args)
            else:
                ps = timed(lambda: plan(x))
        al_all += timed(alloc)
        c_all += cs
        py_all += ps
        diff.append(statistics.median(ps) - statistics.median(cs))
    plan.close()

    if rank == 0:
        us = 1e6
        q = statistics.quantiles(diff, n=4)
        print(f"py_overhead W={W} m={a.m} k={a.k} n={a.n} {a.dtype} {a.kind} gather_output={a.gather_output}: "
              f"{a.rounds} rounds x {a.reps} calls each way, medians of per-call times")
        print(f"  C      tpmm_plan_execute in a loop   {us * statistics.median(c_all):8.2f} us")
        print(f"  Python plan(input) in a loop         {us * statistics.median(py_all):8.2f} us")
        print(f"  binding overhead (Python - C)        {us * statistics.median(diff):8.2f} us   "
              f"(median of per-round differences; quartiles {us * q[0]:.2f} .. {us * q[2]:.2f})")
        print(f"    of which the 2 outputs' allocation {us * statistics.median(al_all):8.2f} us   "
              f"({'torch.empty' if a.kind == 'torch' else 'np.empty'} alone, same run)")
        sys.stdout.flush()
    tpmm.finalize()


if __name__ == "__main__":
    main()
