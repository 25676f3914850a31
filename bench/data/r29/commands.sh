#!/bin/bash
# Commands of bench/RESULTS.md §33 (AMD EPYC family 26, Zen 5, 2 vCPUs; MPICH 4.0.2, oneDNN 2.6.3):
#   OLD=dir NOPRIOR=dir OUT=dir [TREES="new old"] [TAG=] bench/data/r29/commands.sh probe|cpu10|cpu1|gi1-turns|gi1-predict
# Trees: new (this one), old ($OLD: ba4468d, no CPU cost in the model), noprior ($NOPRIOR: the cost in the model
# and in the tuner's prior, choose.c tpi_tune_prior's `if` made false); output into 10gbit$TAG.txt / 1gbit$TAG.txt
set -eu
OUT=${OUT:-bench/data/r29}
export OMP_NUM_THREADS=1
case "${1:-}" in
probe) # the link's CPU cost as group creation measures it (test_topology's line), five groups at each rate (root)
  for rate in 10gbit 1gbit; do
    bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 $rate >> $OUT/log 2>&1
    for i in 1 2 3 4 5; do
      echo "$rate $(bench/netsim.sh run -- build-mpich/tests/test_topology 2>&1 | grep -o 'CPU cost [0-9.]* ns' | head -1)"
    done >> $OUT/probe.txt
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
cpu10|cpu1) # issue 14's points over simulated 10 (or 1) Gbit where the link's CPU cost can move the choice, this tree
  # against $OLD (a build of ba4468d, which has no such term), alternated, three rounds; plans, bf16, k = 4096, auto
  rate=${1#cpu}gbit
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 $rate >> $OUT/log 2>&1
  for i in 1 2 3; do
    for p in "matmul_reduce_scatter 256 1024" "matmul_reduce_scatter 2048 1024" "matmul_reduce_scatter 256 4096" \
             "matmul_reduce_scatter 1024 4096" "matmul_all_reduce 256 4096" "matmul_reduce_scatter 2048 4096" \
             "matmul_all_reduce 1024 4096" "matmul_all_reduce 2048 4096" "matmul_reduce_scatter 1024 1024"; do
      set -- $p
      for tree in ${TREES:-new old}; do
        B=build-mpich/tools/tpmm-bench; [ $tree = old ] && B=$OLD/$B; [ $tree = noprior ] && B=$NOPRIOR/$B
        timeout -k 5 900 bench/netsim.sh run -- env TPMM_VERBOSE=1 $B --op $1 --dtype bf16 --peak 0 --json --plan \
          --m $2 --k 4096 --n $3 --iters 6 --warmup 1 2>&1 | grep -E "algo=|autotune|^[{]" | sed "s/^/$tree $rate /" >> $OUT/$rate${TAG:-}.txt
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
gi1-turns) # issue 15's gather_index 1 point over simulated 1 Gbit at 2, 4, 8, 16 chunks, two runs each (root); auto is
  # target15 of bench/data/r28/commands.sh, run with OUT=bench/data/r29
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for ct in 2 4 8 16; do
    for i in 1 2; do
      timeout -k 5 300 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --gather-index 1 --m 1024 --k 2048 --n 1024 \
        --dtype bf16 --plan --iters 10 --warmup 2 --peak 0 --json --comm-turn $ct 2>>$OUT/log >> $OUT/gi1-turns.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
gi1-predict) # the model's prediction for the same point at auto, 4 and 8 chunks (TPMM_VERBOSE's plan line; root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for ct in 0 4 8; do
    timeout -k 5 300 bench/netsim.sh run -- env TPMM_VERBOSE=1 build-mpich/tools/tpmm-bench --gather-index 1 --m 1024 \
      --k 2048 --n 1024 --dtype bf16 --plan --iters 2 --warmup 1 --peak 0 --json --comm-turn $ct 2>&1 |
      grep plan_create | sed "s/^/comm_turn=$ct /" >> $OUT/gi1-predict.txt
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
*) echo "usage: OLD=dir NOPRIOR=dir OUT=dir $0 probe|cpu10|cpu1|gi1-turns|gi1-predict" >&2; exit 2 ;;
esac
