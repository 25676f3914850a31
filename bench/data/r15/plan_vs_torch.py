# One rank, bf16: a plan (x2 packed) against torch.matmul, alternated per repetition; median of the warm ones.
#   OMP_NUM_THREADS=1 PYTHONPATH=build-mpich/python mpirun.mpich -n 1 /usr/bin/python3 plan_vs_torch.py
import statistics, time, torch, tpmm
tpmm.init()
torch.manual_seed(0)
for (M, K, N) in [(1024, 512, 4096), (1024, 1024, 4096), (1024, 1024, 1024), (1024, 2048, 1024), (1024, 4096, 1024),(256,4096,4096)]:
    a = torch.randn(M, K).bfloat16(); wt = torch.randn(K, N).bfloat16()
    plan = tpmm.plan_all_gather_matmul(a, wt, tpmm.WORLD_COMM_GROUP, 1, gather_output=False)
    ts = {k: [] for k in ['torch', 'plan']}
    for i in range(15):
        t0 = time.perf_counter(); torch.matmul(a, wt); ts['torch'].append(time.perf_counter() - t0)
        t0 = time.perf_counter(); plan(a); ts['plan'].append(time.perf_counter() - t0)
    med = {k: statistics.median(v[2:]) * 1e3 for k, v in ts.items()}
    print('%5d %5d %5d torch %6.2f plan %6.2f  plan/torch %.2f' % (M, K, N, med['torch'], med['plan'], med['plan'] / med['torch']))
# decode with x2 stored transposed (torch's Linear layout): a trans_x2 plan against torch.matmul(a, w.t())
for M in (1, 16):
    a = torch.randn(M, 4096).bfloat16(); w = torch.randn(4096, 4096).bfloat16()
    plan = tpmm.plan_all_gather_matmul(a, w, tpmm.WORLD_COMM_GROUP, 1, gather_output=False, trans_x2=True)
    t1, t2 = [], []
    for i in range(25):
        t0 = time.perf_counter(); torch.matmul(a, w.t()); t1.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); plan(a); t2.append(time.perf_counter() - t0)
    a1, a2 = statistics.median(t1[3:]) * 1e3, statistics.median(t2[3:]) * 1e3
    print('%5d %5d %5d trans_x2 torch %6.2f plan %6.2f  plan/torch %.2f' % (M, 4096, 4096, a1, a2, a2 / a1))
    plan.close()
