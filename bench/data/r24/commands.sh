#!/bin/bash
# Run record of bench/RESULTS.md §26. From the repository root, with the tree
# of this section built in build-mpich and BEFORE (c90234e) built in $BEFORE.
#   OUT=dir bench/data/r24/commands.sh calib
set -eu
OUT=${OUT:-bench/data/r24}
BEFORE=${BEFORE:-/tmp/before/build}
export OMP_NUM_THREADS=1
case "${1:-}" in
calib) # issue 13: the first call's calibration at decode shapes that calibrate (transfer >= 2 % of the GEMM's floor)
  for rep in 1 2 3 4; do
    for order in tpmm hand; do
      for tree in before after; do
        B=build-mpich; [ $tree = before ] && B=$BEFORE
        echo "### tree=$tree order=$order rep=$rep" >> $OUT/calib.txt
        mpirun.mpich -n 2 $B/tools/decode_bench --dtype fp32 --order $order --rounds 2 --iters 30 \
          --shapes 16x8192x2048,8x16384x1024 >> $OUT/calib.txt 2>&1
      done
    done
  done ;;
*) echo "usage: $0 calib" >&2; exit 2 ;;
esac
