#!/bin/bash
# Commands of bench/RESULTS.md §38 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, oneDNN 2.6.3):
#   OLD=dir OUT=dir bench/data/r34/commands.sh ab RATE FILE   (root for a link; RATE: shm, 1gbit or 10gbit; OLD: a
#     build of the tree before the change) — issue 14's reduce points (POINTS, op:m:n), each schedule of ALGOS
#     (default "auto"), the tree before (OLD) and this one alternated run by run, ROUNDS (default 1 2 3), plans,
#     ITERS (default 30) timed iterations: T_fused / T_seq of each into FILE; summarize_ab.py FILE makes the table.
#     Since §40 it runs bench/data/r35's ab with TREES="old:$OLD new:." (W and MPI as there; default 2, mpich).
#   pos.c, stream.c (§38.1): the call-position experiment and the steady stream (blocks of back-to-back plan calls,
#     two schedules, barriers only around blocks); pos.txt's header gives their build and run lines.
#   OUT=dir bench/data/r34/commands.sh sweep10|sweep1   (root): issue 14's W = 2 sweep, as bench/data/r33's.
#   xchg.c (§39.1): the exchange primitives alone; xchg.txt's header gives its build and run lines.
#   w4-shm.jsonl (§39.2): the same tpmm-bench lines on 4 ranks, one round of 10 iterations, as
#     W=4 ROUNDS=1 ITERS=10 ALGOS="unfused auto" TREES="old:DIR new:." bench/data/r35/commands.sh ab shm FILE
#     (POINTS: all_reduce and reduce_scatter at 64 x 1024 and 256 x 4096).
set -eu
OUT=${OUT:-bench/data/r34}
export OMP_NUM_THREADS=1
POINTS=${POINTS:-"matmul_reduce_scatter:64:1024 matmul_all_reduce:256:1024"}
case "${1:-}" in
ab) # bench/data/r35's, with the two trees (before §40 its shm runs had one rank: shm-ab.jsonl ran W = 1)
  TREES="old:$OLD new:." OUT=$OUT POINTS="$POINTS" exec bench/data/r35/commands.sh ab "$2" "$3" ;;
sweep10|sweep1)
  D=$1; RATE=10gbit; [ $1 = sweep1 ] && RATE=1gbit
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/$D W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=30 WARMUP=2 NO_PLOT=1 NETSIM=1 NETSIM_RATES="$RATE" bench/sweep.sh
  done ;;
*) echo "usage: OLD=dir OUT=dir $0 ab shm|1gbit|10gbit FILE | OUT=dir $0 sweep10|sweep1" >&2
  exit 2 ;;
esac
