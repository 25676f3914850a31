#!/bin/bash
# Run record of bench/RESULTS.md §30 (AMD EPYC family 25 model 17, AVX-512 with avx512_bf16, no AMX: bf16 and
# fp32 on oneDNN). From the repository root, this tree built in build-mpich and BEFORE (2227022, the tree before
# §30) in $BEFORE.
#   OUT=dir bench/data/r26/commands.sh decode|links|ext
set -eu
OUT=${OUT:-bench/data/r26}
BEFORE=${BEFORE:-/tmp/before/build}
export OMP_NUM_THREADS=1
case "${1:-}" in
decode) # issue 13's decode target from C, bf16, both trees, both orders, three repetitions
  for rep in 1 2 3; do
    for order in tpmm hand; do
      for tree in before after; do
        B=build-mpich; [ $tree = before ] && B=$BEFORE
        echo "### tree=$tree order=$order rep=$rep" >> $OUT/decode.txt
        mpirun.mpich -n 2 $B/tools/decode_bench --order $order --rounds 2 --iters 40 \
          --shapes 1x4096x4096,4x4096x4096,16x4096x4096,16x8192x2048,16x2048x8192 >> $OUT/decode.txt 2>&1
      done
    done
  done ;;
links) # simulated 1 Gbit, W = 2: issue 13's balanced point (plan and one-shot), issue 14's target point (plans, both
  # reduce operators), issue 15's gather_index 1 point (plan); three rounds (root; bench/netsim.sh)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for what in agmm-plan agmm-oneshot rs ar gi1; do
      case $what in
        agmm-plan) args="--plan --m 512 --k 4096 --n 1536" ;;
        agmm-oneshot) args="--m 512 --k 4096 --n 1536" ;;
        rs) args="--plan --op matmul_reduce_scatter --m 1024 --k 1536 --n 1024" ;;
        ar) args="--plan --op matmul_all_reduce --m 1024 --k 1536 --n 1024" ;;
        gi1) args="--plan --gather-index 1 --m 256,1024 --k 2048 --n 1024" ;;
      esac
      timeout -k 5 600 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --dtype bf16 --peak 0 --json $args \
        --iters 15 --warmup 2 2>>$OUT/log | sed "s/^{/{\"what\":\"$what\",\"round\":$i,/" >> $OUT/links.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
esac
