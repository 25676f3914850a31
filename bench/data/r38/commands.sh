#!/bin/bash
# Issue 14, the ring's own block last (reduce_scatter). Run from the repository root, as root (netsim).
# Builds: "new" is this tree's build-mpich; "old" is build-mpich of a worktree of 072d0e6 at $OLD (default
# /tmp/old: git worktree add /tmp/old 072d0e6, then cmake as the README says).
#   OUT=dir bench/data/r38/commands.sh etab    etab.jsonl: 1024 x 1536 x 1024 bf16 over 1 Gbit, plans, both
#        operators (OPS), auto and ring forced at 16 chunks (ALGOS, algo:comm_turn), the trees alternated, three
#        rounds (ROUNDS) of 8 iterations (ITERS); TREES="lab:dir ..." (default "old:$OLD new:.")
#   OUT=dir bench/data/r38/commands.sh polls   thread-polls.jsonl: this tree's ring forced, TPMM_PROGRESS_THREAD 0
#        and 1 alternated, at five 1 Gbit points, two rounds of 20 iterations
#   OUT=dir bench/data/r38/commands.sh trace   ring16-trace.json: TPMM_TRACE of ring/16 forced at the E point
#        (reduce_scatter, a40ae5e's build)
#   OUT=dir bench/data/r38/commands.sh miss    miss-200.jsonl: the sweeps' points above 1.0 again, 200 iterations,
#        three rounds
#   OUT=dir bench/data/r34/commands.sh sweep1|sweep10   issue 14's W = 2 sweep over simulated 1 / 10 Gbit
# Files and trees:
# - etab-order8.jsonl (etab as above), etab-order.jsonl (OPS=matmul_reduce_scatter ALGOS="auto:0 ring:4 ring:16"
#   ITERS=20), thread-polls.jsonl and ring16-trace.json: a40ae5e's build as "new" (the own block last, no thread
#   tuning).
# - etab.jsonl (ALGOS=auto:0 ITERS=20), the sweeps and miss-200.jsonl: 13200b6's build (the code of this commit).
#   One etab run (old tree, round 2) hung in MPI_Finalize after its line was out (MPICH + UCX, docs/NETSIM.md)
#   and was killed by hand; so did the trace run (a40ae5e's build) after writing its trace.
# - bound-rs-start.jsonl: `bench/data/r36/commands.sh bound` on 072d0e6 before any change (it appends to
#   bench/data/r36/bound-rs.jsonl; the lines were moved here).
set -e
OUT=${OUT:?OUT=dir}
OLD=${OLD:-/tmp/old}
mkdir -p $OUT
case $1 in
etab)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for r in ${ROUNDS:-1 2 3}; do
    for op in ${OPS:-matmul_reduce_scatter matmul_all_reduce}; do
      for a in ${ALGOS:-auto:0 ring:16}; do
        IFS=: read algo ct <<< "$a"
        for t in ${TREES:-old:$OLD new:.}; do
          IFS=: read lab dir <<< "$t"
          timeout -k 5 600 bench/netsim.sh run --mpi mpich -- $dir/build-mpich/tools/tpmm-bench --op $op --m 1024 \
            --k 1536 --n 1024 --dtype bf16 --plan --algo $algo --comm-turn $ct --iters ${ITERS:-8} --warmup 2 --peak 0 \
            --json 2>> $OUT/log | sed "s/^{/{\"net\":\"1gbit\",\"round\":$r,\"tree\":\"$lab\",/" >> $OUT/etab.jsonl
        done
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
polls)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for r in 1 2; do
    for pt in matmul_reduce_scatter:256:4096:4096 matmul_reduce_scatter:1024:4096:1024 matmul_all_reduce:1024:4096:1024 \
      matmul_all_reduce:256:4096:4096 matmul_all_reduce:1024:1536:1024; do
      IFS=: read op m k n <<< "$pt"
      for t in 0 1; do
        TPMM_PROGRESS_THREAD=$t timeout -k 5 300 bench/netsim.sh run --mpi mpich -- build-mpich/tools/tpmm-bench --op $op \
          --m $m --k $k --n $n --dtype bf16 --plan --algo ring --iters 20 --warmup 2 --peak 0 --json 2>> $OUT/log |
          sed "s/^{/{\"round\":$r,\"pt\":$t,/" >> $OUT/thread-polls.jsonl
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
miss)
  F=$OUT/miss-200.jsonl
  export ALGOS=auto ITERS=200 ROUNDS="1 2 3"
  POINTS="matmul_all_reduce:16:1024 matmul_reduce_scatter:16:1024 matmul_reduce_scatter:16:4096" \
    bench/data/r35/commands.sh ab 1gbit $F
  POINTS=matmul_all_reduce:16:4096 bench/data/r35/commands.sh ab 10gbit $F ;;
trace)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  TPMM_TRACE=$OUT/ring16-trace.json timeout -k 5 300 bench/netsim.sh run --mpi mpich -- build-mpich/tools/tpmm-bench \
    --op matmul_reduce_scatter --m 1024 --k 1536 --n 1024 --dtype bf16 --plan --algo ring --comm-turn 16 --iters 4 \
    --warmup 1 --peak 0 --json > /dev/null 2>> $OUT/log
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
*) echo "usage: OUT=dir $0 etab|polls|miss|trace" >&2
  exit 2 ;;
esac
