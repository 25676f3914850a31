#!/bin/bash
# Commands of bench/RESULTS.md §34 (AMD EPYC family 26, Zen 5, 2 vCPUs; MPICH 4.0.2, oneDNN 2.6.3):
#   OLD=dir OUT=dir bench/data/r30/commands.sh bound-gi1|credit
# Trees: new (this one), old ($OLD: a build of 63e96f1, whose ring model multiplies chunks whole).
set -eu
OUT=${OUT:-bench/data/r30}
export OMP_NUM_THREADS=1
case "${1:-}" in
bound-gi1) # issue 15's gather_index 1 point beside the GEMM's slowdown under a plain TCP stream (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  /usr/bin/python3 bench/netcpu_pair.py build-mpich --pairs 4 --m 1024 --k 2048 --n 1024 --extra "--gather-index 1" \
    --json $OUT/bound-gi1.jsonl
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
credit) # all_gather_matmul over simulated 1 Gbit where the chunk count moves, this tree against $OLD alternated point
  # by point; plans, bf16, auto (TPMM_VERBOSE's plan line beside each JSON line)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  # rounds 3 and 4: ROUNDS="3 4" POINTS=4 (the first four points)
  P=("--counts 1024,0 --m 512 --n 4096" "--counts 1024,0 --m 512 --n 2048" "--counts 768,256 --m 512 --n 4096"
     "--m 512 --n 1536" "--m 512 --n 4096" "--m 128 --n 4096")
  for i in ${ROUNDS:-1 2}; do
    for p in "${P[@]:0:${POINTS:-6}}"; do
      for tree in new old; do
        B=build-mpich/tools/tpmm-bench; [ $tree = old ] && B=$OLD/$B
        timeout -k 5 600 bench/netsim.sh run -- env TPMM_VERBOSE=1 $B $p --k 4096 --dtype bf16 --plan \
          --iters 6 --warmup 1 --peak 0 --json 2>&1 | grep -E "plan_create|^[{]" | sed "s/^/$tree $i /" >> $OUT/credit.txt
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
*) echo "usage: OLD=dir OUT=dir $0 bound-gi1|credit" >&2; exit 2 ;;
esac
