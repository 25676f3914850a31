#!/bin/bash
# Run record of bench/RESULTS.md §26 and of docs/RELIABILITY.md's soak findings. From the repository root, with the tree
# of this section built in build-mpich and BEFORE (c90234e) built in $BEFORE.
#   OUT=dir bench/data/r24/commands.sh calib|soak|sweep|sweep-1gbit|recheck
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
soak) # docs/RELIABILITY.md's soak findings. The outputs in soak/ are of the trees named in their file
  # names: moving-threshold (every operator, glibc's default mmap threshold), fixed-threshold,
  # before-fixes (heap sampled with caches emptied; agree.c and shm.c as in c90234e), half-growth
  # (the window grown by half again, not kept); live-*.txt are the preload's call sites still
  # holding memory at exit (live, bytes, frames), per process, N calls.
  gcc -O1 -shared -fPIC -o /tmp/live.so $OUT/soak/live.c -ldl -lpthread
  TPMM_TEST_SEED=779 mpirun.mpich -n 4 build-mpich/tests/test_soak 10000 > $OUT/soak/mpich-779.txt 2>&1
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TPMM_TEST_SEED=781 \
    mpirun.openmpi -n 4 --oversubscribe build-openmpi/tests/test_soak 10000 > $OUT/soak/openmpi-781.txt 2>&1
  for N in 400 1600; do # writes /tmp/mt/live.<pid> per rank (live.c's dump)
    mkdir -p /tmp/mt && TPMM_TEST_SEED=779 mpirun.mpich -n 4 -env LD_PRELOAD /tmp/live.so build-mpich/tests/test_soak $N
  done ;;
sweep) # issue 14's W = 2 sweep on this CPU (bf16, plans, auto): both reduce operators over shared memory
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/sweep W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=3 WARMUP=1 NO_PLOT=1 bench/sweep.sh
  done ;;
sweep-1gbit) # the same over simulated 1 Gbit (root; bench/netsim.sh), with a second shared-memory round
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/sweep-1gbit W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=3 WARMUP=1 NO_PLOT=1 NETSIM=1 NETSIM_RATES=1gbit bench/sweep.sh
  done ;;
recheck) # the sweep's points above 1.0, again with 15 timed iterations, twice
  for rep in 1 2; do
    for pt in "matmul_all_reduce 1024 1024" "matmul_all_reduce 64 4096" "matmul_reduce_scatter 16 1024" \
              "matmul_reduce_scatter 64 4096" "matmul_reduce_scatter 256 4096"; do
      set -- $pt
      mpirun.mpich -n 2 build-mpich/tools/tpmm-bench --op $1 --m $2 --k 4096 --n $3 --dtype bf16 --plan \
        --iters 15 --warmup 2 --json >> $OUT/sweep/recheck.jsonl
    done
  done ;;
*) echo "usage: $0 calib|soak|sweep|sweep-1gbit|recheck" >&2; exit 2 ;;
esac
