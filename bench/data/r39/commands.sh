#!/bin/bash
# Issue 14's targets on the Zen 5 machine (AMD EPYC family 26): bench/RESULTS.md §44. Run from the repository root,
# as root (netsim), after the README's build (build-mpich). OUT (default bench/data/r39) is where each target writes.
#   bench/data/r39/commands.sh bound     bound-rs.jsonl: what a plain TCP stream over 1 Gbit costs the E point's GEMM
#   bench/data/r39/commands.sh etab      etab.jsonl: the E point (1024 x 1536 x 1024 bf16, 1 Gbit, plans), both
#                                        operators, auto and ring/16, three rounds of 20 iterations
#   [OUT=dir] bench/data/r39/commands.sh sweep1|sweep10   issue 14's W = 2 sweep (with its shared-memory points)
#   bench/data/r39/commands.sh miss      miss-200.jsonl: sweep points above 1.0 again at 200 iterations (POINTS, RATE)
#   bench/data/r39/commands.sh spmlp     spmlp.txt: examples/sp_mlp.py on 2 ranks
#   bench/data/r39/commands.sh ab        ab10.jsonl: the tuner's confirming pairs (OLD, default /tmp/old: a worktree of
#                                        254685b built as the README says) against this tree, alternated, over 10 Gbit
#                                        at reduce_scatter 256 and 1024 x 4096 x 1024, five rounds of 30 iterations
set -eu
OUT=${OUT:-bench/data/r39}
case "${1:-}" in
bound)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  /usr/bin/python3 bench/netcpu_pair.py build-mpich --pairs 4 --m 1024 --k 1536 --n 1024 \
    --extra "--op matmul_reduce_scatter" --json $OUT/bound-rs.jsonl
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
etab) TREES=new:. ALGOS="auto:0 ring:16" ITERS=20 OUT=$OUT exec bench/data/r38/commands.sh etab ;;
sweep10|sweep1) OUT=$OUT exec bench/data/r34/commands.sh $1 ;;
miss) ALGOS=auto ITERS=200 ROUNDS="1 2 3" TREES="new:." OUT=$OUT POINTS="${POINTS:?POINTS=op:m:n ...}" \
  exec bench/data/r35/commands.sh ab "${RATE:?RATE=shm|1gbit|10gbit}" $OUT/miss-200.jsonl ;;
ab) ALGOS=auto ITERS=30 ROUNDS="1 2 3 4 5" TREES="old:${OLD:-/tmp/old} new:." OUT=$OUT \
  POINTS="matmul_reduce_scatter:256:1024 matmul_reduce_scatter:1024:1024" \
  exec bench/data/r35/commands.sh ab 10gbit $OUT/ab10.jsonl ;;
spmlp) bench/data/r35/commands.sh spmlp 2 > $OUT/spmlp.txt 2>&1 ;;
*) echo "usage: $0 bound | etab | sweep1 | sweep10 | miss | ab | spmlp" >&2
  exit 2 ;;
esac
