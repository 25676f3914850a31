#!/bin/bash
# Commands of bench/RESULTS.md §37 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, oneDNN 2.6.3):
#   OLD=dir OUT=dir bench/data/r33/commands.sh red-ab RATE   (root; RATE: 1gbit, 10gbit or shm; OLD: a build of
#     the tree before the change)
# red-ab: issue 14's reduce points above 1.0 in §36.6, the tree before (OLD) and this one alternated run by run,
#   three rounds, plans, auto, 30 timed iterations: T_fused / T_seq of each.
set -eu
OUT=${OUT:-bench/data/r33}
export OMP_NUM_THREADS=1
POINTS=${POINTS:-"matmul_reduce_scatter:16:1024 matmul_reduce_scatter:16:4096 matmul_all_reduce:64:4096 matmul_all_reduce:16:1024 matmul_reduce_scatter:256:1024"}
one() { # tree op m n rate round
  local bin=$1/build-mpich/tools/tpmm-bench run=()
  [ "$5" != shm ] && run=(bench/netsim.sh run --)
  timeout -k 5 600 "${run[@]}" $bin --op $2 --m $3 --k 4096 --n $4 --dtype bf16 --plan --iters 30 --warmup 2 \
    --peak 0 --json 2>>$OUT/log | sed "s/^{/{\"net\":\"$5\",\"round\":$6,\"tree\":\"$7\",/" >> $OUT/red-ab.jsonl
}
case "${1:-}" in
red-ab)
  RATE=$2
  if [ $RATE != shm ]; then bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 $RATE >> $OUT/log 2>&1; fi
  for r in 1 2 3; do
    for pt in $POINTS; do
      IFS=: read op m n <<< "$pt"
      one $OLD $op $m $n $RATE $r old
      one . $op $m $n $RATE $r new
    done
  done
  if [ $RATE != shm ]; then bench/netsim.sh down >> $OUT/log 2>&1; fi ;;
*) echo "usage: OLD=dir OUT=dir $0 red-ab 1gbit|10gbit|shm" >&2; exit 2 ;;
esac
