#!/bin/bash
# The runs of bench/RESULTS.md §22, one section each:
#   OUT=dir bench/data/r20/commands.sh predict auto link netcpu probe reduce links
# (links/: bench/data/r19/commands.sh links with OUT=bench/data/r20/links, this tree alone, three rounds)
# BEFORE: a build of 806e4d1 (the tree before the model changes, default /tmp/bh/build); BUILD: this tree's
# MPICH build (default build-mpich). Root for the simulated links (bench/netsim.sh).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r20}; mkdir -p $OUT
BB=${BEFORE:-/tmp/bh/build}
export OMP_NUM_THREADS=1
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $OUT/log
case $s in
predict) # issue 13: the cost model against measurements (bench/predict_check.sh), this tree and BEFORE alternated,
  # two rounds, 9 iterations per point; then the table of each run (summarize_predict.py)
  for round in 1 2; do
    for b in after before; do
      if [ $b = after ]; then build=$B; else build=$BB; fi
      OUT=$OUT/predict-$b-$round ITERS=9 WARMUP=2 SETTINGS="shm-2 1gbit-2 10gbit-2 shm-4" BUILD=$build \
        $ROOT/bench/predict_check.sh 2>>$OUT/log
      /usr/bin/python3 $ROOT/bench/summarize_predict.py $OUT/predict-$b-$round/*.jsonl > $OUT/predict-$b-$round.txt
    done
  done ;;
auto) # what auto runs and what it costs against T_seq, this tree and BEFORE alternated, two rounds: all_gather_matmul
  # plans at the predict points over shared memory (W = 2, 4) and simulated 1 / 10 Gbit (W = 2), 9 iterations
  A="--m 16,128,512 --k 4096 --n 1024,4096 --dtype bf16 --plan --algo auto --iters 9 --warmup 2 --peak 0 --json --no-check"
  for round in 1 2; do
    for b in after before; do
      if [ $b = after ]; then build=$B; else build=$BB; fi
      for W in 2 4; do
        timeout -k 5 600 mpirun.mpich -n $W $build/tools/tpmm-bench $A | sed "s/^{/{\"net\":\"shm\",\"build\":\"$b\",/" \
          >> $OUT/auto-shm-W$W.jsonl 2>>$OUT/log
      done
      cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
      for rate in 1gbit 10gbit; do
        bench/netsim.sh rate $rate >> $OUT/log 2>&1
        timeout -k 5 600 bench/netsim.sh run -- $build/tools/tpmm-bench $A | sed "s/^{/{\"net\":\"$rate\",\"build\":\"$b\",/" \
          >> $OUT/auto-$rate-W2.jsonl 2>>$OUT/log
      done
      bench/netsim.sh down >> $OUT/log 2>&1
    done
  done ;;
link) # the 1 Gbit points where `auto` moved, this tree and BEFORE alternated, four rounds, 15 iterations
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  A="--k 4096 --dtype bf16 --plan --algo auto --iters 15 --warmup 2 --peak 0 --json --no-check"
  for round in 1 2 3 4; do
    for b in after before; do
      if [ $b = after ]; then build=$B; else build=$BB; fi
      for pt in "128 1024" "512 1024" "512 4096"; do
        read -r m n <<< "$pt"
        timeout -k 5 300 bench/netsim.sh run -- $build/tools/tpmm-bench $A --m $m --n $n |
          sed "s/^{/{\"net\":\"1gbit\",\"build\":\"$b\",\"round\":$round,/" >> $OUT/link-1gbit.jsonl 2>>$OUT/log
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
netcpu) # issue 13's GEMM-bound bound at 1 Gbit, m = 512, k = n = 4096: eight alternated pairs (bench/netcpu_pair.py)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  /usr/bin/python3 bench/netcpu_pair.py $B --pairs 8 --json $OUT/netcpu-pair.jsonl > $OUT/netcpu-pair.txt 2>>$OUT/log
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
probe) # the link probe of a count set by the first four exchanges' pace: the model over links, two rounds
  for round in 1 2; do
    OUT=$OUT/predict-probe-$round ITERS=9 WARMUP=2 SETTINGS="10gbit-2 1gbit-2" BUILD=$B $ROOT/bench/predict_check.sh 2>>$OUT/log
    /usr/bin/python3 $ROOT/bench/summarize_predict.py $OUT/predict-probe-$round/*.jsonl > $OUT/predict-probe-$round.txt
  done ;;
reduce) # what auto runs for the reduce operators over shared memory, W = 2 (issue 14's sweep points), this tree and
  # BEFORE alternated, two rounds, 9 iterations
  A="--m 16,128,512,2048 --k 4096 --n 1024,4096 --dtype bf16 --plan --algo auto --iters 9 --warmup 2 --peak 0 --json"
  for round in 1 2; do
    for b in after before; do
      if [ $b = after ]; then build=$B; else build=$BB; fi
      for op in matmul_reduce_scatter matmul_all_reduce; do
        timeout -k 5 600 mpirun.mpich -n 2 $build/tools/tpmm-bench --op $op $A |
          sed "s/^{/{\"net\":\"shm\",\"build\":\"$b\",\"op\":\"$op\",/" >> $OUT/reduce-shm-W2.jsonl 2>>$OUT/log
      done
    done
  done ;;
links) # issue 13's balanced point (plan, one-shot after 20 calls), issue 15's gather_index 1 at m = 1024 and
  # issue 14's reduce_scatter target at 1 Gbit, this tree and BEFORE alternated, three rounds
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for round in 1 2 3; do
    for b in after before; do
      if [ $b = after ]; then build=$B; else build=$BB; fi
      R="timeout -k 5 300 bench/netsim.sh run -- $build/tools/tpmm-bench --dtype bf16 --peak 0 --json"
      tag="s/^{/{\"build\":\"$b\",\"round\":$round,/"
      for mode in --plan ""; do
        $R --m 512 --k 4096 --n 1536 --algo auto $mode --iters 20 --warmup 20 | sed "$tag" >> $OUT/ab-agbal.jsonl 2>>$OUT/log
      done
      $R --gather-index 1 --m 1024 --k 2048 --n 1024 --iters 10 --warmup 2 --plan | sed "$tag" >> $OUT/ab-x2g.jsonl 2>>$OUT/log
      $R --op matmul_reduce_scatter --m 1024 --k 1536 --n 1024 --algo auto --plan --iters 15 --warmup 2 |
        sed "$tag" >> $OUT/ab-target.jsonl 2>>$OUT/log
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
*) echo "unknown section $s" >&2; exit 2 ;;
esac
done
