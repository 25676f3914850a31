#!/bin/bash
# The runs of bench/RESULTS.md §24 (a CPU without AVX-512: AMD EPYC, family 25 model 1, AVX2 + FMA), one
# section each:   OUT=dir bench/data/r22/commands.sh predict oneshot decode torch links reduce
# BEFORE: a build of 057f3da (the tree before this change), default /tmp/before/build; BUILD: this tree's
# MPICH build (default build-mpich). predict: root (netsim).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r22}; mkdir -p $OUT
BB=${BEFORE:-/tmp/before/build}
export OMP_NUM_THREADS=1
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
case $s in
predict) # issue 13: the cost model against measurements (bench/predict_check.sh), 9 iterations, every setting
  # (SETTINGS to choose). The runs kept: predict-before (BUILD=BEFORE RUN=-before), predict (ea9c1ac, the
  # first crowded clock: RUN=), predict-final (this tree: RUN=-final), predict-w4-thread (RUN=-w4-thread
  # SETTINGS=shm-4, this tree)
  OUT=$OUT/predict${RUN:-} ITERS=9 WARMUP=2 BUILD=$B SETTINGS=${SETTINGS:-"shm-2 shm-4 1gbit-2 1gbit-4 10gbit-2 10gbit-4"} \
    $ROOT/bench/predict_check.sh 2>>$OUT/log
  /usr/bin/python3 $ROOT/bench/summarize_predict.py $OUT/predict${RUN:-}/*.jsonl > $OUT/predict${RUN:-}.txt ;;
oneshot) # one-shot GEMMs of 2-128 rows per rank on an x2 read in place, W = 2, fp32 and bf16, unfused (T_GEMM):
  # this tree against BEFORE, alternated, three rounds
  A="--m 2,4,8,16,32,64 --k 4096 --n 4096 --dtype fp32,bf16 --algo unfused --iters 9 --warmup 2 --peak 0 --json --no-check"
  for round in 1 2 3; do
    for b in after before; do
      if [ $b = after ]; then build=$B; else build=$BB; fi
      mpirun.mpich -n 2 $build/tools/tpmm-bench $A | sed "s/^{/{\"build\":\"$b\",\"round\":$round,/" >> $OUT/oneshot.jsonl
    done
  done ;;
decode) # issue 13's decode target from C on this CPU: fp32 (oneDNN has no bf16 matmul here), both orders
  for order in tpmm hand; do
    mpirun.mpich -n 2 $B/tools/decode_bench --dtype fp32 --order $order --rounds 4 --iters 100 \
      --shapes 1x4096x4096,4x4096x4096,16x4096x4096,1x2048x8192,16x8192x2048 >> $OUT/decode.txt
  done ;;
torch) # issue 13 from Python on this CPU: decode and prefill against torch gloo + torch.matmul, bf16, W = 2, both orders
  cd $ROOT
  for order in tpmm torch; do
    PYTHONPATH=$B/python timeout 1200 mpirun.mpich -n 2 /usr/bin/python3 bench/torch_compare.py --order $order \
      >> $OUT/torch.txt 2>>$OUT/log
  done ;;
links) # issue 13 over simulated 1 Gbit, W = 2: the balanced point of the issue (m = 512, k = 4096, n = 1536; on this
  # CPU the GEMM is the longer part), plan and one-shot after 20 calls, three rounds; then the GEMM-bound bound 1/s
  # beside the plan at the same shape (bench/netcpu_pair.py, 6 pairs)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  R="timeout -k 5 600 bench/netsim.sh run -- $B/tools/tpmm-bench --dtype bf16 --peak 0 --json"
  for i in 1 2 3; do
    for mode in --plan ""; do
      $R --m 512 --k 4096 --n 1536 --algo auto $mode --iters 20 --warmup 20 >> $OUT/links-agbal.jsonl 2>>$OUT/log
    done
  done
  /usr/bin/python3 bench/netcpu_pair.py $B --pairs 6 --m 512 --k 4096 --n 1536 --json $OUT/netcpu-pair.jsonl \
    > $OUT/netcpu-pair.txt 2>>$OUT/log
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
reduce) # issue 14's 1 Gbit target point (plan, 1024 x 1536 x 1024, auto and ring) and issue 15's gather_index 1
  # (plan, m = 1024 and 3072, k = 2048, n = 1024) on this CPU, two rounds
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  R="timeout -k 5 600 bench/netsim.sh run -- $B/tools/tpmm-bench --dtype bf16 --peak 0 --json --plan"
  for i in 1 2; do
    for op in matmul_reduce_scatter matmul_all_reduce; do
      $R --op $op --m 1024 --k 1536 --n 1024 --algo auto,ring --iters 15 --warmup 2 >> $OUT/links-target.jsonl 2>>$OUT/log
    done
    $R --gather-index 1 --m 1024,3072 --k 2048 --n 1024 --iters 10 --warmup 2 >> $OUT/links-x2g.jsonl 2>>$OUT/log
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
esac
echo "== $s end $(date +%T)" >> $OUT/log
done
