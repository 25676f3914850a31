#!/bin/bash
# Issue 14, the ring's own block last (reduce_scatter). Run from the repository root, as root (netsim).
# Builds: "new" is this tree's build-mpich; "old" is build-mpich of a worktree of 072d0e6 at $OLD (default
# /tmp/old: git worktree add /tmp/old 072d0e6, then cmake as the README says).
#   OUT=dir bench/data/r38/commands.sh etab    etab.jsonl: 1024 x 1536 x 1024 bf16 over 1 Gbit, plans, both
#        operators (OPS), auto and ring forced at 16 chunks (ALGOS, algo:comm_turn), the trees alternated, three
#        rounds (ROUNDS) of 8 iterations (ITERS)
#   OUT=dir bench/data/r38/commands.sh bound   bound-rs.jsonl: netcpu_pair.py at that point (the link's CPU cost)
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
        for t in old:$OLD new:.; do
          IFS=: read lab dir <<< "$t"
          timeout -k 5 600 bench/netsim.sh run --mpi mpich -- $dir/build-mpich/tools/tpmm-bench --op $op --m 1024 \
            --k 1536 --n 1024 --dtype bf16 --plan --algo $algo --comm-turn $ct --iters ${ITERS:-8} --warmup 2 --peak 0 \
            --json 2>> $OUT/log | sed "s/^{/{\"net\":\"1gbit\",\"round\":$r,\"tree\":\"$lab\",/" >> $OUT/etab.jsonl
        done
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
bound)
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  /usr/bin/python3 bench/netcpu_pair.py build-mpich --pairs 4 --m 1024 --k 1536 --n 1024 \
    --extra "--op matmul_reduce_scatter" --json $OUT/bound-rs.jsonl
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
*) echo "usage: OUT=dir $0 etab|bound" >&2
  exit 2 ;;
esac
