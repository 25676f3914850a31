#!/bin/bash
# Commands of bench/RESULTS.md §42 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, Open MPI 4.1.4, oneDNN 2.6.3):
#   OUT=dir bench/data/r37/commands.sh osweep10|osweep1   (root): issue 14's W = 2 sweep, as bench/data/r34's
#     sweep10 / sweep1, under Open MPI (build-openmpi; mpirun.openmpi --oversubscribe in shared memory).
#     Tables: bench/data/r25/summarize_sweep.py DIR shm|netsim-10gbit|netsim-1gbit.
#     The files here ran build-openmpi of 1addc45, the tree before the confirming pairs (their "tuned" has no
#     confirm_from); etarget's Open MPI runs too, its MPICH runs build-mpich of 1d2711a. Nothing rebuilds: build
#     the tree wanted first.
#   bench/data/r37/commands.sh swap   (root; OLD=DIR: a build of 1addc45, the tree before the confirming pairs, in
#     DIR/build-mpich) swap-ar1024-1gbit.txt: swap.c against both trees, alternated, three rounds, all_reduce
#     1024 x 4096 x 1024 over 1 Gbit, the tuner's candidates the other way round with a prior of 1.31, 60 calls.
#   OUT=dir bench/data/r37/commands.sh w4shm: the same sweep's points on 4 ranks in shared memory (MPICH; 4 ranks
#     on the 2 vCPUs), 20 timed iterations a point.
#   bench/data/r37/commands.sh etarget   (root) etarget.jsonl: issue 14's E target, both operators at
#     1024 x 1536 x 1024 over 1 Gbit, plans, auto, MPICH and Open MPI alternated, three rounds of 8 iterations.
set -eu
OUT=${OUT:-bench/data/r37}
export OMP_NUM_THREADS=1
case "${1:-}" in
osweep10|osweep1)
  D=$1; RATE=10gbit; [ $1 = osweep1 ] && RATE=1gbit
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/$D W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=30 WARMUP=2 NO_PLOT=1 NETSIM=1 NETSIM_RATES="$RATE" NETSIM_MPI=openmpi BUILD=build-openmpi \
      MPIEXEC=mpirun.openmpi MPIEXEC_PREFLAGS=--oversubscribe bench/sweep.sh
  done ;;
w4shm)
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/w4shm W_LIST=4 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=20 WARMUP=2 NO_PLOT=1 bench/sweep.sh
  done ;;
swap)
  for t in old:$OLD new:.; do
    IFS=: read lab dir <<< "$t"; D=""; [ $lab = new ] && D=-DCONFIRM
    mpicc.mpich -O2 $D -I $dir -I $dir/include bench/data/r37/swap.c $dir/build-mpich/libtpmm.a -ldnnl -fopenmp -lm \
      -o /tmp/swap-$lab
  done
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit > /dev/null
  for r in 1 2 3; do
    for lab in old new; do
      echo -n "$lab "; timeout 600 bench/netsim.sh run --mpi mpich -- /tmp/swap-$lab ar 1024 4096 1024 1310 60
    done
  done | tee $OUT/swap-ar1024-1gbit.txt
  bench/netsim.sh down > /dev/null ;;
etarget)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  for r in 1 2 3; do
    for mpi in mpich openmpi; do
      for op in matmul_reduce_scatter matmul_all_reduce; do
        timeout -k 5 600 bench/netsim.sh run --mpi $mpi -- build-$mpi/tools/tpmm-bench --op $op --m 1024 --k 1536 \
          --n 1024 --dtype bf16 --plan --iters 8 --warmup 2 --peak 0 --json 2>> $OUT/log |
          sed "s/^{/{\"net\":\"1gbit\",\"mpi_run\":\"$mpi\",\"round\":$r,/" >> $OUT/etarget.jsonl
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
*) echo "usage: OUT=dir $0 osweep10|osweep1|w4shm|swap|etarget" >&2
  exit 2 ;;
esac
