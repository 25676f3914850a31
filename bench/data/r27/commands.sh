#!/bin/bash
# Run record of bench/RESULTS.md §31 (AMD EPYC family 25 model 17, AVX-512 with avx512_bf16, no AMX). From the
# repository root, this tree built in build-mpich and BEFORE (58af988, the tree of §30) in $BEFORE.
#   OUT=dir bench/data/r27/commands.sh kernel|kdecode|ktorch
set -eu
OUT=${OUT:-bench/data/r27}
BEFORE=${BEFORE:-/tmp/before/build}
export OMP_NUM_THREADS=1
case "${1:-}" in
kernel) # one rank's GEMM at 8-16 rows: oneDNN with x2 as stored / gemm_bf16r.c / oneDNN packed, three runs
  gcc -O2 -fopenmp -I. -Iinclude $OUT/gemm_bf16r.c build-mpich/libtpmm.a -ldnnl -lm \
    $(mpicc.mpich -show | sed 's/^gcc//') -o /tmp/gemm_bf16r
  for rep in 1 2 3; do
    for shape in "8 4096 4096" "12 4096 4096" "16 4096 4096" "16 8192 2048" "16 2048 8192" "16 4096 5504" \
      "16 4096 11008" "16 3584 2304" "9 8192 2048" "16 1024 4096" "16 4096 1024"; do
      /tmp/gemm_bf16r $shape >> $OUT/kernel.txt
    done
  done ;;
kdecode) # issue 13's decode from C at 6 and 8 rows per rank (12, 16 gathered), both trees, both orders, three reps
  for rep in 1 2 3; do
    for order in tpmm hand; do
      for tree in before after; do
        B=build-mpich; [ $tree = before ] && B=$BEFORE
        echo "### tree=$tree order=$order rep=$rep" >> $OUT/kdecode.txt
        mpirun.mpich -n 2 $B/tools/decode_bench --order $order --rounds 2 --iters 40 \
          --shapes 8x4096x4096,8x8192x2048,8x2048x8192,6x4096x4096 >> $OUT/kdecode.txt 2>&1
      done
    done
  done ;;
ktorch) # issue 13 from Python against torch gloo + torch.matmul at 6 and 8 tokens per rank, both trees, both orders
  for order in tpmm torch; do
    for tree in before after; do
      B=build-mpich; [ $tree = before ] && B=$BEFORE
      echo "### tree=$tree order=$order" >> $OUT/ktorch.txt
      PYTHONPATH=$B/python timeout 1800 mpirun.mpich -n 2 /usr/bin/python3 bench/torch_compare.py \
        --order $order --prefill "" --decode 8x4096x11008,8x4096x4096,6x4096x11008 \
        --json $OUT/ktorch-$tree-$order.jsonl >> $OUT/ktorch.txt 2>&1
    done
  done ;;
*) echo "usage: OUT=dir $0 kernel|kdecode|ktorch" >&2; exit 2 ;;
esac
