#!/bin/bash
# Commands of bench/RESULTS.md §41 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, oneDNN 2.6.3), run as root from the repository's top; each runs r35's or r34's scripts:
#   bench/data/r36/commands.sh rs64      rs64-1gbit-auto.jsonl: auto at reduce_scatter 64 x 1024 over 1 Gbit, eight
#                                        runs, TPMM_VERBOSE=1 (the tuner's lines are in log)
#   bench/data/r36/commands.sh sweep10|sweep1   final/: issue 14's W = 2 sweep
#   bench/data/r36/commands.sh miss      miss-200.jsonl: the sweep's points above 1.0 at 200 iterations, three rounds
# Tables: bench/data/r35/summarize.py FILE (each .md beside its .jsonl); sweeps: bench/data/r25/summarize_sweep.py
# DIR shm|netsim-10gbit|netsim-1gbit.
set -eu
export OUT=bench/data/r36
case "${1:-}" in
rs64) TPMM_VERBOSE=1 POINTS=matmul_reduce_scatter:64:1024 ALGOS=auto ROUNDS="1 2 3 4 5 6 7 8" ITERS=30 \
  exec bench/data/r35/commands.sh ab 1gbit $OUT/rs64-1gbit-auto.jsonl ;;
sweep10|sweep1) OUT=$OUT/final exec bench/data/r34/commands.sh $1 ;;
miss)
  F=$OUT/miss-200.jsonl
  export ALGOS=auto ITERS=200 ROUNDS="1 2 3"
  POINTS=matmul_reduce_scatter:16:1024 bench/data/r35/commands.sh ab shm $F
  POINTS="matmul_reduce_scatter:64:1024 matmul_reduce_scatter:16:4096" bench/data/r35/commands.sh ab 10gbit $F
  POINTS=matmul_reduce_scatter:64:1024 bench/data/r35/commands.sh ab 1gbit $F ;;
*) echo "usage: $0 rs64 | sweep10 | sweep1 | miss" >&2
  exit 2 ;;
esac
