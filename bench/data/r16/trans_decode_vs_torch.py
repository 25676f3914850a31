# One rank, bf16, x2 transposed (torch's Linear layout): tpmm one-shot calls and a plan against
# torch.matmul(a, w.t()), alternated per repetition, medians of the warm ones (the first two dropped).
#   OMP_NUM_THREADS=1 PYTHONPATH=build-mpich/python mpirun.mpich -n 1 /usr/bin/python3 trans_decode_vs_torch.py
import statistics
import time

import torch
import tpmm

tpmm.init()
torch.manual_seed(0)
torch.set_num_threads(1)
print('   M x    K x     N   torch ms  one-shot ms  plan ms   one-shot/torch  plan/torch')
for (M, K, N) in [(1, 4096, 4096), (2, 4096, 4096), (4, 4096, 4096), (8, 4096, 4096), (16, 4096, 4096),
                  (2, 4096, 11008), (4, 11008, 4096)]:
    a = torch.randn(M, K).bfloat16()
    w = torch.randn(N, K).bfloat16()
    g = tpmm.WORLD_COMM_GROUP
    with tpmm.plan_all_gather_matmul(a, w, g, 1, trans_x2=True, gather_output=False) as plan:
        ts = {'torch': [], 'one': [], 'plan': []}
        for i in range(17):
            t0 = time.perf_counter(); ref = torch.matmul(a, w.t()); ts['torch'].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            o1, _ = tpmm.all_gather_matmul(a, w, g, 1, trans_x2=True, gather_output=False)
            ts['one'].append(time.perf_counter() - t0)
            t0 = time.perf_counter(); o2, _ = plan(a); ts['plan'].append(time.perf_counter() - t0)
        assert torch.equal(o1, o2), 'plan and one-shot differ'
        err = ((o1.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
    t, o, p = (statistics.median(ts[v][2:]) * 1e3 for v in ('torch', 'one', 'plan'))
    print('%4d x %4d x %5d  %8.2f  %11.2f  %7.2f   %14.2f  %10.2f   (max rel diff %.1e)' %
          (M, K, N, t, o, p, o / t, p / t, err), flush=True)
