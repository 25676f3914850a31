#!/bin/bash
# Run record of bench/RESULTS.md §28. From the repository root, with the tree of this section built in build-mpich
# and BEFORE (f66c278, the tree before it) built in $BEFORE.
#   OUT=dir bench/data/r25/commands.sh decode|fixed|binding|gemm
# decode-kernel.txt is the same section run when build-mpich held f7d8db2 (the 4 x 24 kernel alone); decode.txt
# holds 5528557 (the kernel and the sliced calibration).
set -eu
OUT=${OUT:-bench/data/r25}
BEFORE=${BEFORE:-/tmp/before/build}
export OMP_NUM_THREADS=1
case "${1:-}" in
decode) # issue 13's decode target from C: fp32 (oneDNN has no bf16 matmul on this CPU), both trees, both orders
  for rep in 1 2 3; do
    for order in tpmm hand; do
      for tree in before after; do
        B=build-mpich; [ $tree = before ] && B=$BEFORE
        echo "### tree=$tree order=$order rep=$rep" >> $OUT/decode.txt
        mpirun.mpich -n 2 $B/tools/decode_bench --dtype fp32 --order $order --rounds 2 --iters 40 \
          --shapes 1x4096x4096,4x4096x4096,16x4096x4096,16x8192x2048,16x2048x8192 >> $OUT/decode.txt 2>&1
      done
    done
  done ;;
fixed) # issue 13's fixed cost at m = k = n = 1 (and 1 x 64 x 64) on this CPU, five runs each
  for i in 1 2 3 4 5; do
    mpirun.mpich -n 2 build-mpich/tools/plan_overhead --oneshot >> $OUT/fixed.txt 2>&1
    mpirun.mpich -n 2 build-mpich/tools/plan_overhead --oneshot 1 64 64 >> $OUT/fixed.txt 2>&1
  done ;;
binding) # issue 13's binding overhead per plan call, numpy and torch
  for kind in numpy torch; do
    PYTHONPATH=build-mpich/python mpirun.mpich -n 2 /usr/bin/python3 bench/py_overhead.py --kind $kind \
      >> $OUT/py_overhead.txt 2>&1
  done ;;
gemm) # one rank's GEMM against oneDNN fp32 at decode row counts (gemm_pair.c); BEFORE's library in $BEFORE
  for tree in before after; do
    B=build-mpich; [ $tree = before ] && B=$BEFORE
    gcc -O2 -fopenmp -Isrc -Iinclude $OUT/gemm_pair.c $B/libtpmm.a -ldnnl -lm $(mpicc.mpich -show | sed 's/^gcc//') \
      -o /tmp/gemm_pair_$tree
  done
  for rep in 1 2 3; do
    for shape in "8 4096 4096" "16 4096 4096" "32 4096 4096" "32 8192 2048" "64 4096 4096" "128 4096 4096"; do
      for tree in before after; do echo "$tree $(/tmp/gemm_pair_$tree $shape 15)" >> $OUT/gemm.txt; done
    done
  done ;;
*) echo "usage: $0 decode|fixed|binding|gemm" >&2; exit 2 ;;
esac
