#!/bin/bash
# Commands of bench/RESULTS.md §41 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, oneDNN 2.6.3), run as root from the repository's top; each runs r35's or r34's scripts:
#   bench/data/r36/commands.sh rs64      rs64-1gbit-auto.jsonl: auto at reduce_scatter 64 x 1024 over 1 Gbit, eight
#                                        runs, TPMM_VERBOSE=1 (the tuner's lines are in log)
#   bench/data/r36/commands.sh sweep10|sweep1   final/: issue 14's W = 2 sweep
#   bench/data/r36/commands.sh miss      miss-200.jsonl: the sweep's points above 1.0 at 200 iterations, three rounds
#   bench/data/r36/commands.sh etarget   etarget.jsonl: issue 14's E target, both operators at 1024 x 1536 x 1024 over
#                                        1 Gbit, plans, auto, three rounds of 8 iterations
#   etarget-ab.jsonl: the same reduce_scatter point, the §30 tree (5ad35e7, built in DIR as build-mpich) and this one
#     alternated: OLD=DIR bench/data/r36/commands.sh etarget-ab
#   bound-rs.jsonl: the GEMM's slowdown under a plain TCP stream beside the plan's E at that point, four pairs:
#     bench/data/r36/commands.sh bound
#   bench/data/r36/commands.sh spmlp     spmlp.txt: examples/sp_mlp.py on 2 ranks (bench/data/r35's spmlp)
#   bench/data/r36/commands.sh trace     ring-rs64-1gbit-trace.json: TPMM_TRACE of forced ring, reduce_scatter
#                                        64 x 1024 over 1 Gbit, 10 iterations
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
etarget)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for r in 1 2 3; do
    for op in matmul_reduce_scatter matmul_all_reduce; do
      timeout -k 5 600 bench/netsim.sh run --mpi mpich -- build-mpich/tools/tpmm-bench --op $op --m 1024 --k 1536 \
        --n 1024 --dtype bf16 --plan --iters 8 --warmup 2 --peak 0 --json 2>> $OUT/log |
        sed "s/^{/{\"net\":\"1gbit\",\"round\":$r,/" >> $OUT/etarget.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
etarget-ab)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for r in 1 2 3; do
    for t in old:$OLD new:.; do
      IFS=: read lab dir <<< "$t"
      timeout -k 5 600 bench/netsim.sh run --mpi mpich -- $dir/build-mpich/tools/tpmm-bench --op matmul_reduce_scatter \
        --m 1024 --k 1536 --n 1024 --dtype bf16 --plan --iters 8 --warmup 2 --peak 0 --json 2>> $OUT/log |
        sed "s/^{/{\"round\":$r,\"tree\":\"$lab\",/" >> $OUT/etarget-ab.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
bound)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  /usr/bin/python3 bench/netcpu_pair.py build-mpich --pairs 4 --m 1024 --k 1536 --n 1024 \
    --extra "--op matmul_reduce_scatter" --json $OUT/bound-rs.jsonl
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
spmlp) bench/data/r35/commands.sh spmlp 2 > $OUT/spmlp.txt 2>&1 ;;
trace)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  TPMM_TRACE=$OUT/ring-rs64-1gbit-trace.json bench/netsim.sh run --mpi mpich -- build-mpich/tools/tpmm-bench \
    --op matmul_reduce_scatter --m 64 --k 4096 --n 1024 --dtype bf16 --plan --algo ring --iters 10 --warmup 2 \
    --json > /dev/null 2>> $OUT/log
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
*) echo "usage: $0 rs64 | sweep10 | sweep1 | miss | etarget | etarget-ab | bound | spmlp | trace" >&2
  exit 2 ;;
esac
