"""tpmm against what a PyTorch user writes today on CPU: torch.distributed
(gloo) all-gather, then torch.matmul. bf16, side by side in one run.

    OMP_NUM_THREADS=1 PYTHONPATH=build-mpich/python \\
        mpirun.mpich -n 2 /usr/bin/python3 bench/torch_compare.py \\
        [--decode 1x4096x4096,8x4096x11008] [--prefill 128x4096x4096,512x4096x4096] \\
        [--first 10] [--rounds 4] [--reps 40] [--prefill-reps 7] [--order tpmm|torch] [--trans-x2]

Shapes are m (rows per rank) x k x n, as in a tensor-parallel layer.

Decode shapes (a few rows per rank, a layer called once per generated token)
are measured as a user meets them, from the first call:
  torch  dist.all_gather on a fresh process group (dist.new_group), then
         torch.cat and torch.matmul
  tpmm   tpmm.all_gather_matmul on a fresh tpmm group (one-shot calls)
  plan   a tpmm plan made (untimed, like loading the weights) on a fresh
         group, then plan(input)
Per round, each variant gets its fresh group and its first F calls are timed
one by one (barrier before each; the slowest rank's time); the sum is
reported. The variants' order rotates from round to round; round 0 is the
first time this process meets the shape ("cold": oneDNN's kernels, tpmm's
GEMM calibration), later rounds are reported as the median over rounds
("fresh group"). --order picks who goes first in round 0: run both.
Then every variant runs R more calls, interleaved, on its last group:
"settled" medians.

Prefill shapes (hundreds of rows per rank) compare a tpmm plan (the way a
layer called every step uses tpmm) and a one-shot call with torch, settled
medians of interleaved repetitions.

--trans-x2 stores the weight as torch's Linear does, (n, k): torch multiplies
by w.t() (what F.linear does), tpmm gets trans_x2=True.

Ratios are torch / tpmm (> 1: tpmm is faster). One GEMM thread per rank for
both (OMP_NUM_THREADS=1, torch.set_num_threads(1)). Results are compared with
torch's (max relative difference).

This torch's gloo has no all_gather_into_tensor and no bfloat16, so the
torch side gathers float16 views of the bf16 bits with dist.all_gather and
concatenates them (the same bytes move; the cat is part of its cost), which
is what a user of this torch has to write.
"""
import argparse
import json
import os
import statistics
import sys
import time

import tpmm

try:
    import torch
    import torch.distributed as dist
except ImportError:
    print("torch_compare: python3-torch is not installed (scripts/install-deps.sh --full)", file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import sp_mlp  # noqa: E402  (the rendezvous of torch.distributed over tpmm's ranks)

NAMES = ["torch", "tpmm", "plan"]


def torch_agmm(a, b, size, group=None, trans_x2=False):
    """What a user of torch 1.13 + gloo writes (no bf16, no all_gather_into_tensor in gloo)."""
    parts = [torch.empty_like(a).view(torch.float16) for _ in range(size)]
    dist.all_gather(parts, a.view(torch.float16), group=group)
    return torch.matmul(torch.cat(parts).view(torch.bfloat16), b.t() if trans_x2 else b)


def parse_shapes(text):
    return [tuple(int(v) for v in s.split("x")) for s in text.split(",") if s]


class Variants:
    """The three ways to run one shape, each on its own (fresh) group."""

    def __init__(self, a, b, size, serial, trans_x2):
        self.a, self.b, self.size, self.serial, self.trans_x2 = a, b, size, serial, trans_x2
        self.tgroup = None
        self.groups = {}
        self.plan = None
        self.out = {}

    def fresh(self, v):
        if v == "torch":
            # new_group is collective over every rank, in the same order everywhere
            self.tgroup = dist.new_group(list(range(self.size)))
            return
        if v == "plan" and self.plan is not None:
            self.plan.close()
            self.plan = None
        if v in self.groups:
            tpmm.destroy_group(self.groups[v])
        name = f"tc_{v}_{next(self.serial)}"
        tpmm.create_group(name, list(range(self.size)))
        self.groups[v] = name
        if v == "plan":
            self.plan = tpmm.plan_all_gather_matmul(self.a, self.b, name, self.size, gather_output=False,
                                                    trans_x2=self.trans_x2)

    def call(self, v):
        if v == "torch":
            self.out[v] = torch_agmm(self.a, self.b, self.size, self.tgroup, self.trans_x2)
        elif v == "tpmm":
            self.out[v], _ = tpmm.all_gather_matmul(self.a, self.b, self.groups[v], self.size, gather_output=False,
                                                    trans_x2=self.trans_x2)
        else:
            self.out[v], _ = self.plan(self.a)

    def max_rel_diff(self):
        """The largest relative difference of tpmm's and the plan's outputs from torch's."""
        return max(max_rel_diff(self.out["tpmm"], self.out["torch"]), max_rel_diff(self.out["plan"], self.out["torch"]))

    def close(self):
        if self.plan is not None:
            self.plan.close()
        for name in self.groups.values():
            tpmm.destroy_group(name)


def timed(var, v):
    dist.barrier()
    t0 = time.perf_counter()
    var.call(v)
    return time.perf_counter() - t0


def slowest(values):
    """Per-entry maximum over ranks."""
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def max_rel_diff(out, ref):
    return ((out.float() - ref.float()).abs().max() / ref.float().abs().max()).item()


def serial_numbers():
    i = 0
    while True:
        yield i
        i += 1


def variants(shape, size, gen, serial, trans_x2):
    """bf16 inputs of shape m x k x n drawn from gen (the weight (n, k) with trans_x2), and their Variants."""
    m, k, n = shape
    a = torch.randn(m, k, generator=gen).to(torch.bfloat16)
    b = (torch.randn(k, n, generator=gen) / k ** 0.5).to(torch.bfloat16)
    return Variants(a, b.t().contiguous() if trans_x2 else b, size, serial, trans_x2)


def run_decode(shape, args, rank, size, gen, serial, results):
    m, k, n = shape
    var, names = variants(shape, size, gen, serial, args.trans_x2), NAMES
    start = 0 if args.order == "torch" else 1
    first_sums = {v: [] for v in names}
    cold_calls = {}
    for r in range(args.rounds):
        for j in range(len(names)):
            v = names[(j + r + start) % len(names)]
            var.fresh(v)
            ts = slowest([timed(var, v) for _ in range(args.first)])
            first_sums[v].append(sum(ts))
            if r == 0:
                cold_calls[v] = ts
    settled = {v: [] for v in names}
    for it in range(args.reps):
        for j in range(len(names)):
            v = names[(j + it) % len(names)]
            settled[v].append(timed(var, v))
    for v in names:
        settled[v] = statistics.median(slowest(settled[v]))
    diff = var.max_rel_diff()
    var.close()
    if rank != 0:
        return
    cold = {v: first_sums[v][0] for v in names}
    fresh = {v: statistics.median(first_sums[v][1:]) if args.rounds > 1 else float("nan") for v in names}
    print(f"decode {m}x{k}x{n}{' x2 transposed' if args.trans_x2 else ''} (GEMM {m * size}x{k}x{n}), load {os.getloadavg()[0]:.2f}, max rel diff {diff:.1e}")
    print(f"  {'':6} {'first-10 cold ms':>17} {'fresh ms':>9} {'settled ms':>11} | "
          f"{'torch/x cold':>12} {'fresh':>6} {'settled':>7} {'worst':>6} | round-0 calls, ms")
    for v in names:
        line = f"  {v:6} {cold[v] * 1e3:>17.2f} {fresh[v] * 1e3:>9.2f} {settled[v] * 1e3:>11.3f} | "
        if v != "torch":
            rc, rf, rs = cold["torch"] / cold[v], fresh["torch"] / fresh[v], settled["torch"] / settled[v]
            line += f"{rc:>12.2f} {rf:>6.2f} {rs:>7.2f} {min(rc, rf, rs):>6.2f} | "
        else:
            line += f"{'':>35} | "
        line += " ".join(f"{t * 1e3:.2f}" for t in cold_calls[v])
        print(line, flush=True)
    results.append({"kind": "decode", "m": m, "k": k, "n": n, "W": size, "order": args.order,
                    "trans_x2": args.trans_x2,
                    "first": args.first, "rounds": args.rounds, "reps": args.reps,
                    "loadavg": os.getloadavg()[0], "max_rel_diff": diff,
                    **{f"{v}_first_cold_ms": cold[v] * 1e3 for v in names},
                    **{f"{v}_first_fresh_ms": fresh[v] * 1e3 for v in names},
                    **{f"{v}_settled_ms": settled[v] * 1e3 for v in names}})


def run_prefill(shape, args, rank, size, gen, serial, results):
    m, k, n = shape
    var, names = variants(shape, size, gen, serial, args.trans_x2), NAMES
    for v in names:
        var.fresh(v)
    for v in names:  # warm-up: allocations, kernels, the tuners (a plan settles in 9 calls where its runner-up
        # is no slower, 13 where one pair contradicts the others; a slower one's few calls are spaced out and fall
        # among the timed ones)
        for _ in range(10 if v == "plan" else 2):
            var.call(v)
    times = {v: [] for v in names}
    for it in range(args.prefill_reps):
        for j in range(len(names)):
            v = names[(j + it) % len(names)]
            times[v].append(timed(var, v))
    med = {v: statistics.median(slowest(times[v])) for v in names}
    diff = var.max_rel_diff()
    var.close()
    if rank != 0:
        return
    gf = 2.0 * m * size * k * n / med["plan"] / 1e9
    print(f"prefill {m}x{k}x{n}{' x2 transposed' if args.trans_x2 else ''}: torch {med['torch'] * 1e3:.1f} ms, tpmm plan {med['plan'] * 1e3:.1f} ms "
          f"({med['torch'] / med['plan']:.2f}x, {gf:.0f} GFLOP/s), one-shot {med['tpmm'] * 1e3:.1f} ms "
          f"({med['torch'] / med['tpmm']:.2f}x); load {os.getloadavg()[0]:.2f}, max rel diff {diff:.1e}", flush=True)
    results.append({"kind": "prefill", "m": m, "k": k, "n": n, "W": size, "reps": args.prefill_reps,
                    "trans_x2": args.trans_x2,
                    "loadavg": os.getloadavg()[0], "max_rel_diff": diff,
                    **{f"{v}_settled_ms": med[v] * 1e3 for v in names}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--decode", default="1x4096x4096,8x4096x11008")
    ap.add_argument("--prefill", default="128x4096x4096,512x4096x4096")
    ap.add_argument("--first", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--reps", type=int, default=40, help="settled decode calls per variant")
    ap.add_argument("--prefill-reps", type=int, default=7)
    ap.add_argument("--order", default="tpmm", choices=["tpmm", "torch"], help="who goes first in round 0")
    ap.add_argument("--trans-x2", action="store_true", help="weights stored (n, k), as torch's Linear")
    ap.add_argument("--json", default="", help="also write one JSON object per shape to this file")
    args = ap.parse_args()

    torch.set_num_threads(1)
    tpmm.init()
    rank, size = tpmm.get_rank(), tpmm.get_group_size()
    tmp = sp_mlp.gloo_init(rank, size, "tpmm_bench_")
    dist.barrier()
    if rank == 0:
        print(f"tpmm {tpmm.version()} (TPMM_ALGO={os.environ.get('TPMM_ALGO', 'auto')}) vs torch {torch.__version__} "
              f"gloo; {size} ranks, bf16, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')}; "
              f"decode: first {args.first} calls x {args.rounds} rounds (round 0: {args.order} first), "
              f"{args.reps} settled; prefill: {args.prefill_reps} reps; slowest rank; load {os.getloadavg()[0]:.2f}",
              flush=True)
    gen = torch.Generator().manual_seed(1234 + rank)
    serial = serial_numbers()
    results = []
    for shape in parse_shapes(args.decode):
        run_decode(shape, args, rank, size, gen, serial, results)
    for shape in parse_shapes(args.prefill):
        run_prefill(shape, args, rank, size, gen, serial, results)
    if rank == 0:
        # absolute times drift with load on a shared machine; say how busy it was
        print("load average (1/5/15 min): %.2f %.2f %.2f" % os.getloadavg(), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                for r in results:
                    f.write(json.dumps(r) + "\n")
    sp_mlp.gloo_close(rank, tmp)


if __name__ == "__main__":
    main()
