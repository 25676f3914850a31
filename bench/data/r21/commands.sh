#!/bin/bash
# The runs of bench/RESULTS.md §23 (a CPU without AVX-512: AMD EPYC, family 25 model 1, AVX2 + FMA), one
# section each:   OUT=dir bench/data/r21/commands.sh gemm halves check torch
# BEFORE: a build of 0329380 (oneDNN's fp32 kernel; its bf16 calls fail on such a CPU), default
# /tmp/before/build; BUILD: this tree's MPICH build (default build-mpich).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r21}; mkdir -p $OUT
BB=${BEFORE:-/tmp/before/build}
export OMP_NUM_THREADS=1
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
case $s in
gemm) # fp32 plans, W = 2 over shared memory: T_GEMM on tpmm's AVX2 kernel (this tree) against oneDNN's (BEFORE),
  # alternated, three rounds, 7 iterations per point
  A="--m 1,4,16,64,256,1024 --k 4096 --n 1024 --dtype fp32 --plan --iters 7 --warmup 2 --peak 0 --json --no-check"
  for round in 1 2 3; do
    for b in after before; do
      if [ $b = after ]; then build=$B; else build=$BB; fi
      mpirun.mpich -n 2 $build/tools/tpmm-bench $A | sed "s/^{/{\"build\":\"$b\",\"round\":$round,/" >> $OUT/gemm.jsonl
    done
  done ;;
halves) # bf16 and fp16 beside fp32 on this tree (both widened to fp32 here), and fp16 on BEFORE (oneDNN fp32,
  # widened by the framework), alternated, two rounds
  A="--m 1,16,256,1024 --k 4096 --n 1024 --plan --iters 7 --warmup 2 --peak 0 --json --no-check"
  for round in 1 2; do
    for d in fp32 bf16 fp16; do
      mpirun.mpich -n 2 $B/tools/tpmm-bench $A --dtype $d | sed "s/^{/{\"build\":\"after\",\"round\":$round,/" \
        >> $OUT/halves.jsonl
    done
    mpirun.mpich -n 2 $BB/tools/tpmm-bench $A --dtype fp16 | sed "s/^{/{\"build\":\"before\",\"round\":$round,/" \
      >> $OUT/halves.jsonl
  done ;;
check) # every schedule bit-identical to unfused on this CPU (tpmm-bench's check), bf16 and fp32, one-shot and plans
  for W in 2 3; do
    for algo in unfused ring bidir_ring shm_pull auto; do
      for p in "" --plan; do
        mpirun.mpich -n $W $B/tools/tpmm-bench --m 7,130 --k 1000 --n 300 --dtype bf16,fp32,fp16 --algo $algo \
          --comm-turn 0,3 $p --iters 2 --warmup 1 --peak 0 --json | sed "s/^{/{\"W\":$W,/" >> $OUT/check.jsonl
      done
    done
    for op in matmul_reduce_scatter matmul_all_reduce; do
      mpirun.mpich -n $W $B/tools/tpmm-bench --op $op --m 9,64 --k 1000 --n 300 --dtype bf16,fp32 --comm-turn 0,2 \
        --iters 2 --warmup 1 --peak 0 --json | sed "s/^{/{\"W\":$W,/" >> $OUT/check.jsonl
    done
  done ;;
torch) # decode and prefill from Python against torch gloo + torch.matmul, bf16, W = 2 (bench/torch_compare.py)
  cd $ROOT && PYTHONPATH=$B/python mpirun.mpich -n 2 /usr/bin/python3 bench/torch_compare.py > $OUT/torch.txt 2>>$OUT/log ;;
esac
echo "== $s end $(date +%T)" >> $OUT/log
done
