#!/bin/bash
# Run record of bench/RESULTS.md §28. From the repository root, with the tree of this section built in build-mpich
# and BEFORE (f66c278, the tree before it) built in $BEFORE.
#   OUT=dir bench/data/r25/commands.sh decode|fixed|binding|gemm|rs-thread|ext|rs-forced|sweep-10gbit
# decode-kernel.txt is the decode section run when build-mpich held f7d8db2 (the 4 x 24 kernel alone),
# decode-calib.txt 5528557 (and the sliced calibration), decode-review.txt f32dfd1 (and the review's fixes, no
# packing at rebind), decode.txt the final tree of §28 (one-thread decode chunks back to NC columns); gemm.txt ran on
# the tree of 5528557 (the kernel of 28.1).
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
fixed) # issue 13's fixed cost at m = k = n = 1 (and 1 x 64 x 64) on this CPU, five runs each (fixed.txt: the tree of
  # 5528557, alone); fixed-pair.txt: BEFORE and the final tree alternated, FIXED_FILE=fixed-pair.txt FIXED_BEFORE=1
  F=$OUT/${FIXED_FILE:-fixed.txt}
  for i in 1 2 3 4 5; do
    for B in ${FIXED_BEFORE:+$BEFORE} build-mpich; do
      echo "### $B" >> $F
      mpirun.mpich -n 2 $B/tools/plan_overhead --oneshot >> $F 2>&1
      mpirun.mpich -n 2 $B/tools/plan_overhead --oneshot 1 64 64 >> $F 2>&1
    done
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
rs-thread) # issue 14's two fused losses over 1 Gbit (§27): reduce_scatter 256 x 1024 and 64 x 4096 (k = 4096), the
  # progress thread forced off / on / auto's choice, plans, three rounds (root; bench/netsim.sh)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for pt in 0 1 auto; do
      for mn in "256 1024" "64 4096"; do
        set -- $mn
        env $([ $pt = auto ] || echo TPMM_PROGRESS_THREAD=$pt) timeout -k 5 600 bench/netsim.sh run -- \
          build-mpich/tools/tpmm-bench --op matmul_reduce_scatter --dtype bf16 --peak 0 --json --plan \
          --m $1 --k 4096 --n $2 --iters 15 --warmup 2 2>>$OUT/log | sed "s/^{/{\"progress\":\"$pt\",\"round\":$i,/" \
          >> $OUT/rs-thread.jsonl
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
ext) # issue 15's multi (3 weights against three single-weight plans) and uneven shards (against the even split of the
  # same rows), W = 2, bf16, plans, shared memory and simulated 1 Gbit, three rounds (root; bench/netsim.sh)
  for net in shm 1gbit; do
    R="mpirun.mpich -n 2"
    if [ $net = 1gbit ]; then
      bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1; R="bench/netsim.sh run --"
    fi
    for i in 1 2 3; do
      for args in "--m 512 --n 1024 --nb 3" "--m 512 --n 256 --nb 3" "--counts 768,256 --n 1024" "--counts 1024,0 --n 1024"; do
        timeout -k 5 900 $R build-mpich/tools/tpmm-bench --k 4096 $args --dtype bf16 --plan --iters 10 --warmup 2 \
          --peak 0 --json 2>>$OUT/log | sed "s/^{/{\"net\":\"$net\",\"round\":$i,/" >> $OUT/ext.jsonl
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
rs-forced) # the same reduce_scatter 256 x 1024 over 1 Gbit with unfused and ring forced, each iterated in its own run,
  # three rounds (root; bench/netsim.sh)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    timeout -k 5 600 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --op matmul_reduce_scatter --dtype bf16 \
      --peak 0 --json --plan --m 256 --k 4096 --n 1024 --iters 15 --warmup 2 --algo unfused,ring 2>>$OUT/log |
      sed "s/^{/{\"round\":$i,/" >> $OUT/rs-forced.jsonl
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
sweep-10gbit) # issue 14's W = 2 sweep over simulated 10 Gbit (bf16, plans, auto), as §27's at 1 Gbit (root)
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/sweep-10gbit W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=3 WARMUP=1 NO_PLOT=1 NETSIM=1 NETSIM_RATES=10gbit bench/sweep.sh
  done ;;
*) echo "usage: $0 decode|fixed|binding|gemm|rs-thread|ext|rs-forced|sweep-10gbit" >&2; exit 2 ;;
esac
