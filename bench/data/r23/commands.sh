#!/bin/bash
# The runs of bench/RESULTS.md §25 (a CPU without AVX-512: AMD EPYC, family 25 model 1, AVX2 + FMA), one
# section each:   OUT=dir bench/data/r23/commands.sh x2g ...
# BEFORE: a build of 714b49f (the tree before this change), default /tmp/before/build; BUILD: this tree's
# MPICH build (default build-mpich). Sections over simulated links run as root (netsim).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r23}; mkdir -p $OUT
BB=${BEFORE:-/tmp/before/build}
export OMP_NUM_THREADS=1
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
case $s in
x2g) # issue 15's gather_index 1 over simulated 1 Gbit, W = 2, plans, bf16, k = 2048 per rank, n = 1024:
  # m = 128-384 (near balance on this CPU: T_GEMM 18-57 ms against T_AG 32) and 1024 (GEMM-bound);
  # three rounds alternating BEFORE and this tree
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for t in before this; do
      b=$B; [ $t = before ] && b=$BB
      timeout -k 5 600 bench/netsim.sh run -- $b/tools/tpmm-bench --dtype bf16 --peak 0 --json --plan \
        --gather-index 1 --m 128,192,256,384,1024 --k 2048 --n 1024 --iters 10 --warmup 2 \
        2>>$OUT/log | sed "s/^{/{\"tree\":\"$t\",\"round\":$i,/" >> $OUT/x2g.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
bound) # the GEMM-bound bound side by side (bench/netcpu_pair.py: s = the GEMM's slowdown under a plain TCP stream
  # over the link, then the plan's E over the link beside it): gather_index 1 at m = 192 and 256 (issue 15), the
  # reduce operators at issue 14's target point (1024 x 1536 x 1024); 4 pairs each
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for m in 192 256; do
    /usr/bin/python3 bench/netcpu_pair.py $B --pairs 4 --m $m --k 2048 --n 1024 --extra "--gather-index 1" \
      --json $OUT/bound.jsonl >> $OUT/bound.txt 2>>$OUT/log
  done
  for op in matmul_reduce_scatter matmul_all_reduce; do
    /usr/bin/python3 bench/netcpu_pair.py $B --pairs 4 --m 1024 --k 1536 --n 1024 --extra "--op $op" \
      --json $OUT/bound.jsonl >> $OUT/bound.txt 2>>$OUT/log
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
reduce) # issue 14's 1 Gbit target point (plan, 1024 x 1536 x 1024, bf16, auto), both operators, three rounds
  # alternating BEFORE and this tree
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for t in before this; do
      b=$B; [ $t = before ] && b=$BB
      for op in matmul_reduce_scatter matmul_all_reduce; do
        timeout -k 5 600 bench/netsim.sh run -- $b/tools/tpmm-bench --dtype bf16 --peak 0 --json --plan --op $op \
          --m 1024 --k 1536 --n 1024 --iters 15 --warmup 2 \
          2>>$OUT/log | sed "s/^{/{\"tree\":\"$t\",\"round\":$i,/" >> $OUT/reduce.jsonl
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
progress) # polls against the progress thread (TPMM_PROGRESS_THREAD=0 / 1) at issue 14's target point and issue 13's
  # balanced point (m = 512, k = 4096, n = 1536), this tree, plans, three rounds alternated
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for pt in 0 1; do
      for op in matmul_reduce_scatter matmul_all_reduce all_gather_matmul; do
        shape="--m 1024 --k 1536 --n 1024"; [ $op = all_gather_matmul ] && shape="--m 512 --k 4096 --n 1536"
        TPMM_PROGRESS_THREAD=$pt timeout -k 5 600 bench/netsim.sh run -- $B/tools/tpmm-bench --dtype bf16 --peak 0 \
          --json --plan --op $op $shape --iters 15 --warmup 2 \
          2>>$OUT/log | sed "s/^{/{\"progress\":$pt,\"round\":$i,/" >> $OUT/progress.jsonl
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
traces) # the traces §25 reads (TPMM_TRACE, 3 iterations after 1 warm-up; the last call per rank): gather_index 1 at
  # m = 128 and 256 (trace-x2g128.json, trace-x2g256.json), and reduce_scatter at issue 14's point with polls
  # (trace-rs-polls.json). trace-x2g128-before.json: the same m = 128 run on BEFORE with the `pack` event added
  # (ecfd407 without its gemm_avx2.c change), not a commit of its own
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  T="timeout -k 5 600 bench/netsim.sh run -- $B/tools/tpmm-bench --dtype bf16 --peak 0 --json --plan --iters 3 --warmup 1"
  for m in 128 256; do
    TPMM_TRACE=$OUT/trace-x2g$m.json $T --gather-index 1 --m $m --k 2048 --n 1024 >> $OUT/traces.jsonl 2>>$OUT/log
  done
  TPMM_PROGRESS_THREAD=0 TPMM_TRACE=$OUT/trace-rs-polls.json $T --op matmul_reduce_scatter --m 1024 --k 1536 \
    --n 1024 >> $OUT/traces.jsonl 2>>$OUT/log
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
*) echo "unknown section $s" >&2; exit 2 ;;
esac
echo "== $s end $(date +%T)" >> $OUT/log
done
