#!/bin/bash
# The runs of bench/RESULTS.md §15, one section each:
#   OUT=dir bench/data/r13/commands.sh shm chunks net spmlp gemm torch target x2g ab
# BUILD: this tree's MPICH build (default build-mpich). net: root (netsim).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r13}; mkdir -p $OUT
export OMP_NUM_THREADS=1
SWEEP="--m 16,128,512,2048 --k 4096 --n 1024,4096 --dtype bf16 --plan"
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
case $s in
shm) # issue 14: the W = 2 sweep over shared memory, both reduce operators
  for op in matmul_reduce_scatter matmul_all_reduce; do
    mpirun.mpich -n 2 $B/tools/tpmm-bench --op $op $SWEEP --iters 15 --warmup 2 --peak 0 --json \
      > $OUT/red-shm-W2-$op-paired.jsonl 2>>$OUT/red.err
  done ;;
chunks) # shm_pull's chunk count and unfused side by side (the choice in algo_red_shm.c)
  mpirun.mpich -n 2 $B/tools/tpmm-bench --op matmul_reduce_scatter --m 64,128,256 --k 4096 --n 1024 --dtype bf16 --plan \
    --algo unfused,shm_pull --comm-turn 1,8 --iters 15 --warmup 2 --peak 0 --json > $OUT/red-shm-chunks.jsonl 2>>$OUT/red.err ;;
net) # issue 14: the same sweep over simulated 1 and 10 Gbit, W = 2
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for rate in 1gbit 10gbit; do
    bench/netsim.sh rate $rate >> $OUT/net.log 2>&1
    for op in matmul_reduce_scatter matmul_all_reduce; do
      bench/netsim.sh run -- $B/tools/tpmm-bench --op $op $SWEEP --iters 7 --warmup 1 --peak 0 --json \
        > $OUT/red-$rate-W2-$op.jsonl 2>>$OUT/net.log
    done
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
spmlp) # issue 14: the sequence-parallel MLP against torch.distributed, three runs
  for i in 1 2 3; do
    PYTHONPATH=$B/python mpirun.mpich -n 2 /usr/bin/python3 $ROOT/examples/sp_mlp.py --reps 21 2>&1 | tail -6 | head -5
  done > $OUT/spmlp.txt ;;
gemm) # one rank, no collective: tpmm's one-shot bf16 GEMM against torch.matmul
  PYTHONPATH=$B/python mpirun.mpich -n 1 /usr/bin/python3 $ROOT/bench/data/r12/gemm_vs_torch.py > $OUT/gemm_vs_torch.txt 2>&1 ;;
torch) # issue 13: prefill through a plan (and one decode shape) against torch.distributed + torch.matmul
  for o in tpmm torch; do
    PYTHONPATH=$B/python mpirun.mpich -n 2 /usr/bin/python3 $ROOT/bench/torch_compare.py --decode 1x4096x4096 \
      --rounds 2 --order $o --json $OUT/torch-$o.jsonl > $OUT/torch-$o.txt 2>&1
  done ;;
target) # issue 14: the 1 Gbit target point, both operators, auto and ring
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for op in matmul_reduce_scatter matmul_all_reduce; do
    bench/netsim.sh run -- $B/tools/tpmm-bench --op $op --m 1024 --k 1536 --n 1024 --dtype bf16 --algo auto,ring --plan \
      --iters 15 --warmup 2 --peak 0 --json > $OUT/net-target-$op.jsonl 2>>$OUT/net.log
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
x2g) # issue 15: gather_index 1 at 1 Gbit, W = 2, plans, with link waits yielding
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  bench/netsim.sh run -- $B/tools/tpmm-bench --gather-index 1 --m 512,1024 --k 2048 --n 1024 --iters 10 --warmup 2 \
    --algo auto,ring --plan --peak 0 --json > $OUT/net-x2g.jsonl 2>>$OUT/net.log
  bench/netsim.sh run -- $B/tools/tpmm-bench --gather-index 1 --m 512,1024 --k 2048 --n 1024 --iters 8 --warmup 2 \
    --algo ring --comm-turn 2,4,8,16 --plan --peak 0 --json > $OUT/x2g-ct.jsonl 2>>$OUT/net.log
  TPMM_TRACE=$OUT/trace-x2g-ring4-1gbit.json bench/netsim.sh run -- $B/tools/tpmm-bench --gather-index 1 --m 1024 \
    --k 2048 --n 1024 --iters 3 --warmup 1 --algo ring --comm-turn 4 --plan --peak 0 --no-check --json > /dev/null 2>>$OUT/net.log
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
ab) # the bf16 rounding change side by side: BEFORE = a build of 2868bff (default /tmp/ab/build), alternated
  for i in 1 2; do for v in before after; do
    P=${BEFORE:-/tmp/ab/build}/python; [ $v = after ] && P=$B/python
    echo "== $v round $i: gemm_vs_torch"
    PYTHONPATH=$P mpirun.mpich -n 1 /usr/bin/python3 $ROOT/bench/data/r12/gemm_vs_torch.py 2>&1 | tail -3
    echo "== $v round $i: sp_mlp --reps 21"
    PYTHONPATH=$P mpirun.mpich -n 2 /usr/bin/python3 $ROOT/examples/sp_mlp.py --reps 21 2>&1 | grep -E "torch / tpmm|per rep"
  done; done > $OUT/ab-bf16.txt ;;
esac
echo "== $s end $(date +%T)" >> $OUT/log
done
