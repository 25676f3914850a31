# One rank, bf16, x2 transposed (trans_x2): a one-shot tpmm call against torch.matmul(a, w.t()),
# alternated per repetition, median of the warm ones (the first two dropped).
#   OMP_NUM_THREADS=1 PYTHONPATH=build-mpich/python mpirun.mpich -n 1 /usr/bin/python3 trans_vs_torch.py
import statistics, time
import torch
import tpmm

tpmm.init()
torch.manual_seed(0)
for (M, K, N) in [(1, 4096, 4096), (16, 4096, 4096), (128, 4096, 4096), (1024, 2048, 1024), (1024, 1024, 4096),
                  (1024, 4096, 1024), (512, 4096, 4096)]:
    a = torch.randn(M, K).bfloat16()
    w = torch.randn(N, K).bfloat16()
    t1, t2 = [], []
    for i in range(17):
        t0 = time.perf_counter(); torch.matmul(a, w.t()); t1.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tpmm.all_gather_matmul(a, w, tpmm.WORLD_COMM_GROUP, 1, trans_x2=True, gather_output=False)
        t2.append(time.perf_counter() - t0)
    a1, a2 = statistics.median(t1[2:]) * 1e3, statistics.median(t2[2:]) * 1e3
    print('%4d x %4d x %4d  torch %6.2f ms  tpmm %6.2f ms  tpmm/torch %.2f' % (M, K, N, a1, a2, a2 / a1))
