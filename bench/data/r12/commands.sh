#!/bin/bash
# The runs of bench/RESULTS.md §14, one section each:
#   OUT=dir bench/data/r12/commands.sh decode fixed torch red ba net spmlp predict
# BUILD: this tree's MPICH build (default build-mpich); BEFORE: a build of
# commit dac0dd1 for the `ba` section (default /tmp/bb). net and predict: root.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r12}; mkdir -p $OUT
export OMP_NUM_THREADS=1
ld() { cut -d' ' -f1 /proc/loadavg; }
for s in "$@"; do
echo "== $s start $(date +%T) load $(ld)" >> $OUT/log
case $s in
decode)
  for o in tpmm hand; do
    mpirun.mpich -n 2 $B/tools/decode_bench --order $o --rounds 4 --iters 100 \
      --shapes 1x1x1,1x4096x4096,4x4096x4096,16x4096x4096,1x2048x8192,4x2048x8192,16x2048x8192 > $OUT/decode-$o.txt 2>&1
  done ;;
fixed)
  for i in 1 2 3 4 5; do mpirun.mpich -n 2 $B/tools/plan_overhead --oneshot >> $OUT/fixed.txt 2>&1; mpirun.mpich -n 2 $B/tools/plan_overhead --oneshot 1 64 64 >> $OUT/fixed.txt 2>&1; done
  ;;
torch)
  for o in tpmm torch; do
    PYTHONPATH=$B/python mpirun.mpich -n 2 /usr/bin/python3 $ROOT/bench/torch_compare.py \
      --decode 1x4096x4096,8x4096x11008,4x4096x5504 --order $o --json $OUT/torch-$o.jsonl > $OUT/torch-$o.txt 2>&1
  done ;;
red)
  for op in matmul_reduce_scatter matmul_all_reduce; do
    mpirun.mpich -n 2 $B/tools/tpmm-bench --op $op --m 16,128,512,2048 --k 4096 --n 1024,4096 --dtype bf16 --plan \
      --iters 10 --warmup 2 --peak 0 --json > $OUT/red-shm-W2-$op.jsonl 2>>$OUT/red.err
  done ;;
ba)
  for r in 1 2 3; do for v in bb bl; do
    BIN=${BEFORE:-/tmp/bb}/tools/tpmm-bench; [ $v = bl ] && BIN=$B/tools/tpmm-bench
    mpirun.mpich -n 1 $BIN --m 512 --k 4096 --n 4096 --dtype bf16,fp32,fp16 --plan --iters 5 --warmup 2 --peak 0 --json > $OUT/ba-s1-$v-$r.jsonl 2>/dev/null
    mpirun.mpich -n 2 $BIN --m 16,128,512,2048 --k 4096 --n 1024 --dtype bf16 --plan --iters 10 --warmup 2 --peak 0 --json > $OUT/ba-w2-$v-$r.jsonl 2>/dev/null
  done; done ;;
spmlp)
  PYTHONPATH=$B/python mpirun.mpich -n 2 /usr/bin/python3 $ROOT/examples/sp_mlp.py > $OUT/spmlp.txt 2>&1 ;;
net)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  R="bench/netsim.sh run --"
  # issue 13: balanced point, plan and one-shot settled, with --predict
  $R $B/tools/tpmm-bench --m 512 --k 4096 --n 1536,4096 --dtype bf16 --plan --predict --iters 7 --warmup 1 --peak 0 --json > $OUT/net-agmm-plan.jsonl 2>>$OUT/net.log
  $R $B/tools/tpmm-bench --m 512 --k 4096 --n 1536,4096 --dtype bf16 --predict --iters 7 --warmup 12 --peak 0 --json > $OUT/net-agmm-oneshot.jsonl 2>>$OUT/net.log
  # GEMM-bound bound: the stream must outlast the run
  bench/netcpu.sh 1500 > $OUT/netcpu.txt 2>&1 & sleep 1
  mpirun.mpich -n 2 $B/tools/tpmm-bench --m 512 --k 4096 --n 4096 --dtype bf16 --algo unfused --plan --iters 7 --warmup 1 --peak 0 --json > $OUT/net-bound-with-stream.jsonl 2>>$OUT/net.log
  wait
  mpirun.mpich -n 2 $B/tools/tpmm-bench --m 512 --k 4096 --n 4096 --dtype bf16 --algo unfused --plan --iters 7 --warmup 1 --peak 0 --json > $OUT/net-bound-quiet.jsonl 2>>$OUT/net.log
  # issue 14: the target point, both ops
  for op in matmul_reduce_scatter matmul_all_reduce; do
    $R $B/tools/tpmm-bench --op $op --m 1024 --k 1536 --n 1024 --dtype bf16 --algo auto,ring --plan --iters 15 --warmup 2 --peak 0 --json > $OUT/net-$op.jsonl 2>>$OUT/net.log
  done
  # issue 15: gather_index 1, multi, uneven
  $R $B/tools/tpmm-bench --gather-index 1 --m 512,1024 --k 2048 --n 1024 --iters 10 --warmup 2 --algo auto,ring --plan --peak 0 --json > $OUT/net-x2g.jsonl 2>>$OUT/net.log
  $R $B/tools/tpmm-bench --m 512 --k 4096 --n 1024 --nb 3 --plan --iters 10 --warmup 2 --peak 0 --json > $OUT/net-multi.jsonl 2>>$OUT/net.log
  $R $B/tools/tpmm-bench --k 4096 --n 1024 --counts 768,256 --plan --iters 10 --warmup 2 --peak 0 --json > $OUT/net-uneven.jsonl 2>>$OUT/net.log
  $R $B/tools/tpmm-bench --k 4096 --n 1024 --counts 1024,0 --plan --iters 10 --warmup 2 --peak 0 --json >> $OUT/net-uneven.jsonl 2>>$OUT/net.log
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
predict)
  cd $ROOT; SETTINGS="${SETTINGS:-shm-2 shm-4 1gbit-2 10gbit-2}" BUILD=$B OUT=$OUT/predict bench/predict_check.sh > $OUT/predict.log 2>&1 ;;
esac
echo "== $s end $(date +%T) load $(ld)" >> $OUT/log
done
