import time, statistics, torch, numpy as np, sys
# run: OMP_NUM_THREADS=1 PYTHONPATH=build-mpich/python mpirun -n 1 /usr/bin/python3 bench/data/r12/gemm_vs_torch.py
import tpmm
tpmm.init()

torch.manual_seed(0)
for (M, K, N, tx) in [(1024, 1024, 2048, False), (1024, 2048, 1024, True), (1024, 4096, 4096, False)]:
    a = torch.randn(M, K).bfloat16()
    w = torch.randn(N, K).bfloat16() if tx else torch.randn(K, N).bfloat16()
    g = tpmm.WORLD if hasattr(tpmm, 'WORLD') else None
    t1, t2 = [], []
    for i in range(9):
        t0 = time.perf_counter(); y = torch.matmul(a, w.t() if tx else w); t1.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); o, _ = tpmm.all_gather_matmul(a, w, tpmm.WORLD_COMM_GROUP, 1, trans_x2=tx, gather_output=False); t2.append(time.perf_counter() - t0)
    print(M, K, N, 'trans' if tx else 'plain', 'torch %.2f ms tpmm %.2f ms' % (statistics.median(t1[2:]) * 1e3, statistics.median(t2[2:]) * 1e3))
