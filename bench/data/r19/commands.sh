#!/bin/bash
# The runs of bench/RESULTS.md §21, one section each:
#   OUT=dir bench/data/r19/commands.sh net misses target predict links hold shm torch window thread x2g
# BEFORE: a build of the commit before the change measured (hold: 346b59c~1, default /tmp/bh/build).
# BUILD: this tree's MPICH build (default build-mpich). RUN=suffix names a run's files. net, target: root (netsim).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r19}; mkdir -p $OUT
BB=${BEFORE:-/tmp/bh/build}
export OMP_NUM_THREADS=1
SWEEP="--m 16,128,512,2048 --k 4096 --n 1024,4096 --dtype bf16 --plan"
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg) steal $(awk '/^cpu /{print $9}' /proc/stat)" >> $OUT/log
case $s in
net) # issue 14's W = 2 sweep over simulated 1 and 10 Gbit, both reduce operators (a run may hang in MPI_Finalize
  # after printing, MPICH over UCX tcp: timeout ends it, docs/NETSIM.md)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for rate in 1gbit 10gbit; do
    bench/netsim.sh rate $rate >> $OUT/net.log 2>&1
    for op in matmul_reduce_scatter matmul_all_reduce; do
      timeout -k 5 900 bench/netsim.sh run -- $B/tools/tpmm-bench --op $op $SWEEP --iters 7 --warmup 1 --peak 0 --json \
        > $OUT/red-$rate-W2-$op${RUN:-}.jsonl 2>>$OUT/net.log
    done
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
target) # issue 14's 1 Gbit target point, both operators, auto and ring forced
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for op in matmul_reduce_scatter matmul_all_reduce; do
    timeout -k 5 300 bench/netsim.sh run -- $B/tools/tpmm-bench --op $op --m 1024 --k 1536 --n 1024 --dtype bf16 \
      --algo auto,ring --plan --iters 15 --warmup 2 --peak 0 --json >> $OUT/target-$op${RUN:-}.jsonl 2>>$OUT/net.log
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
misses) # the points of `net` above T_seq, again with 30 iterations instead of 7 (7 left them within their scatter)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  R="timeout -k 5 300 bench/netsim.sh run -- $B/tools/tpmm-bench --dtype bf16 --plan --k 4096 --iters 30 --warmup 3 --peak 0 --json"
  $R --op matmul_all_reduce --m 16 --n 1024,4096 > $OUT/misses-1gbit${RUN:-}.jsonl 2>>$OUT/net.log
  $R --op matmul_reduce_scatter --m 16,128 --n 1024 >> $OUT/misses-1gbit${RUN:-}.jsonl 2>>$OUT/net.log
  bench/netsim.sh rate 10gbit >> $OUT/net.log 2>&1
  $R --op matmul_all_reduce --m 512 --n 1024 > $OUT/misses-10gbit${RUN:-}.jsonl 2>>$OUT/net.log
  $R --op matmul_all_reduce --m 128 --n 4096 >> $OUT/misses-10gbit${RUN:-}.jsonl 2>>$OUT/net.log
  $R --op matmul_reduce_scatter --m 512,2048 --n 1024 >> $OUT/misses-10gbit${RUN:-}.jsonl 2>>$OUT/net.log
  $R --op matmul_reduce_scatter --m 128,512 --n 4096 >> $OUT/misses-10gbit${RUN:-}.jsonl 2>>$OUT/net.log
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
predict) # issue 13: the cost model against measurements (bench/predict_check.sh), 9 iterations per point
  OUT=$OUT/predict${RUN:-} ITERS=9 WARMUP=2 SETTINGS="shm-2 1gbit-2 10gbit-2 shm-4" BUILD=$B $ROOT/bench/predict_check.sh 2>>$OUT/log
  /usr/bin/python3 $ROOT/bench/summarize_predict.py $OUT/predict${RUN:-}/*.jsonl > $OUT/predict${RUN:-}.txt ;;
links) # simulated 1 Gbit, W = 2, three rounds (E and efficiency_paired): issue 14's target point (auto, ring),
  # issue 13's balanced point (plan, one-shot after 20 calls), issue 15's gather_index 1 where the GEMM matches the transfer
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  R="timeout -k 5 300 bench/netsim.sh run -- $B/tools/tpmm-bench --dtype bf16 --peak 0 --json"
  for i in 1 2 3; do
    for op in matmul_reduce_scatter matmul_all_reduce; do
      $R --op $op --m 1024 --k 1536 --n 1024 --algo auto,ring --plan --iters 15 --warmup 2 >> $OUT/links-target${RUN:-}.jsonl 2>>$OUT/net.log
    done
    for mode in --plan ""; do
      $R --m 512 --k 4096 --n 1536 --algo auto $mode --iters 20 --warmup 20 >> $OUT/links-agbal${RUN:-}.jsonl 2>>$OUT/net.log
    done
    $R --gather-index 1 --m 1024,3072 --k 2048 --n 1024 --iters 10 --warmup 2 --plan >> $OUT/links-x2g${RUN:-}.jsonl 2>>$OUT/net.log
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
hold) # one-shot fused calls, BEFORE (x2 packed by every chunk call) and a build of tpi_gemm_hold (x2 packed once per
  # call; tried and reverted: BUILD=that build, RUN=-upfront / -lazy / -keep for its three versions, RESULTS §21)
  # alternated, three rounds: shared memory W = 2 (shm_pull forced, 1 and 4 chunks), then simulated 1 Gbit (auto)
  for i in 1 2 3; do for v in before after; do D=$BB; [ $v = after ] && D=$B
    timeout 600 mpirun.mpich -n 2 $D/tools/tpmm-bench --m 128,512 --k 4096 --n 1536,4096 --dtype bf16 --algo shm_pull \
      --comm-turn 1,4 --iters 9 --warmup 2 --peak 0 --json | sed -u "s/^{/{\"build\":\"$v\",/" >> $OUT/hold-shm${RUN:-}.jsonl
  done; done
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for i in 1 2 3; do for v in before after; do D=$BB; [ $v = after ] && D=$B
    timeout -k 5 300 bench/netsim.sh run -- $D/tools/tpmm-bench --m 512 --k 4096 --n 1536 --dtype bf16 --algo auto \
      --iters 20 --warmup 20 --peak 0 --json 2>>$OUT/net.log | sed -u "s/^{/{\"build\":\"$v\",/" >> $OUT/hold-1gbit${RUN:-}.jsonl
  done; done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
shm) # issue 14's W = 2 sweep over shared memory, both reduce operators, 15 iterations
  for op in matmul_reduce_scatter matmul_all_reduce; do
    timeout 1200 mpirun.mpich -n 2 $B/tools/tpmm-bench --op $op $SWEEP --iters 15 --warmup 2 --peak 0 --json \
      > $OUT/red-shm-W2-$op${RUN:-}.jsonl 2>>$OUT/shm.log
  done ;;
torch) # issue 13: decode from Python against torch gloo + torch.matmul, this tree, x2 (k, n) and transposed, both orders
  mkdir -p $OUT/torch
  for tx in "" --trans-x2; do for order in tpmm torch; do
    echo "== order $order ${tx:-(k, n)}"
    PYTHONPATH=$B/python timeout 900 mpirun.mpich -n 2 /usr/bin/python3 $ROOT/bench/torch_compare.py $tx \
      --decode 1x4096x4096,4x4096x5504,8x4096x11008,16x4096x4096 --prefill "" --order $order \
      --json $OUT/torch/torch-after-$order${tx:+-trans}${RUN:-}.jsonl 2>&1
  done; done > $OUT/torch/torch${RUN:-}.txt
  (cd $OUT/torch && /usr/bin/python3 $ROOT/bench/data/r17/summarize_torch.py > torch-table${RUN:-}.md) ;;
window) # TPMM_SEND_WINDOW 2 (the default) and 4 alternated at 1 Gbit, three rounds: gather_index 1 at m = 1024, then
  # the balanced all_gather_matmul point (plan, one-shot); the window is the "window" field of each line
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  R="timeout -k 5 200 bench/netsim.sh run -- $B/tools/tpmm-bench --peak 0 --json"
  for i in 1 2 3; do for w in 2 4; do
    TPMM_SEND_WINDOW=$w $R --gather-index 1 --m 1024 --k 2048 --n 1024 --iters 10 --warmup 2 --plan 2>/dev/null |
      sed "s/^{/{\"window\":$w,/" >> $OUT/window-x2g${RUN:-}.jsonl
  done; done
  for i in 1 2 3; do for w in 2 4; do for mode in --plan ""; do
    TPMM_SEND_WINDOW=$w $R --m 512 --k 4096 --n 1536 --dtype bf16 --algo auto $mode --iters 20 --warmup 20 2>/dev/null |
      sed "s/^{/{\"window\":$w,/" >> $OUT/window-agbal${RUN:-}.jsonl
  done; done; done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
thread) # TPMM_PROGRESS_THREAD 0 (polls) and 1 (the thread) alternated at 1 Gbit, three rounds: gather_index 1 at
  # m = 1024, then 512 and 3072, then the reduce_scatter target point (the tree before gather_index 1 took the thread
  # by default; the setting is the "thread" field of each line)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  R="timeout -k 5 300 bench/netsim.sh run -- $B/tools/tpmm-bench --peak 0 --json --plan"
  for args in "--gather-index 1 --m 1024 --k 2048 --n 1024 --iters 10 --warmup 2:x2g-1024" \
              "--gather-index 1 --m 512,3072 --k 2048 --n 1024 --iters 8 --warmup 2:x2g" \
              "--op matmul_reduce_scatter --m 1024 --k 1536 --n 1024 --iters 15 --warmup 2:rs"; do
    for i in 1 2 3; do for t in 0 1; do
      TPMM_PROGRESS_THREAD=$t $R ${args%%:*} 2>/dev/null | sed "s/^{/{\"thread\":$t,/" >> $OUT/thread-${args##*:}${RUN:-}.jsonl
    done; done
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
x2g) # issue 15's gather_index 1 points of `links` alone, three rounds (RUN=-final: gather_index 1 with the thread)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for i in 1 2 3; do
    timeout -k 5 300 bench/netsim.sh run -- $B/tools/tpmm-bench --gather-index 1 --m 1024,3072 --k 2048 --n 1024 \
      --iters 10 --warmup 2 --plan --peak 0 --json >> $OUT/links-x2g${RUN:-}.jsonl 2>>$OUT/net.log
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
*) echo "unknown section $s" >&2; exit 2 ;;
esac
done
