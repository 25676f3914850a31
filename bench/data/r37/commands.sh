#!/bin/bash
# Commands of bench/RESULTS.md §42 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, Open MPI 4.1.4, oneDNN 2.6.3):
#   OUT=dir bench/data/r37/commands.sh osweep10|osweep1   (root): issue 14's W = 2 sweep, as bench/data/r34's
#     sweep10 / sweep1, under Open MPI (build-openmpi; mpirun.openmpi --oversubscribe in shared memory).
#     Tables: bench/data/r25/summarize_sweep.py DIR shm|netsim-10gbit|netsim-1gbit.
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
*) echo "usage: OUT=dir $0 osweep10|osweep1" >&2
  exit 2 ;;
esac
