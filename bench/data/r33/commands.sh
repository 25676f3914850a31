#!/bin/bash
# Commands of bench/RESULTS.md §37 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, oneDNN 2.6.3):
#   OLD=dir OUT=dir bench/data/r33/commands.sh red-ab RATE   (root; RATE: 1gbit, 10gbit or shm; OLD: a build of
#     the tree before the change)
#   OLD=dir HDR=dir NEW=dir OUT=dir bench/data/r33/commands.sh tree3 RATE FILE   (root; three builds alternated)
# red-ab: issue 14's reduce points above 1.0 in §36.6, the tree before (OLD) and this one alternated run by run,
#   three rounds, plans, auto, 30 timed iterations: T_fused / T_seq of each (POINTS narrows them; early-posted.jsonl
#   and header-1gbit.jsonl were taken with it, renamed from red-ab.jsonl).
# tree3: the same at one rate with three trees alternated point by point: OLD 1c5942c, HDR (the compact payload
#   offset alone: branch tried/early-agreement with tpi_red_early returning 0 for plans), NEW (the branch's head,
#   or f78ff76 for tree3-posted.jsonl); ITERS (default 30) and ROUNDS (default 1 2 3) as set.
# summarize_ab.py FILE makes the tables of §37.
#   OUT=dir bench/data/r33/commands.sh sweep10|sweep1   (root): issue 14's W = 2 sweep on the final tree, as
#     bench/data/r32's but at 30 timed iterations a point, into OUT/sweep10 or OUT/sweep1 (shared memory and the
#     link); `bench/data/r25/summarize_sweep.py DIR NET` makes the tables.
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
tree3)
  RATE=$2 F=$3
  bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 $RATE >> $OUT/log 2>&1
  for r in ${ROUNDS:-1 2 3}; do
    for pt in $POINTS; do
      IFS=: read op m n <<< "$pt"
      for t in old:$OLD hdr:$HDR new:$NEW; do
        IFS=: read lab dir <<< "$t"
        timeout -k 5 600 bench/netsim.sh run -- $dir/build-mpich/tools/tpmm-bench --op $op --m $m --k 4096 --n $n \
          --dtype bf16 --plan --iters ${ITERS:-30} --warmup 2 --peak 0 --json 2>>$OUT/log |
          sed "s/^{/{\"net\":\"$RATE\",\"round\":$r,\"tree\":\"$lab\",/" >> $F
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
sweep10|sweep1)
  D=$1; RATE=10gbit; [ $1 = sweep1 ] && RATE=1gbit
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/$D W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=30 WARMUP=2 NO_PLOT=1 NETSIM=1 NETSIM_RATES="$RATE" bench/sweep.sh
  done ;;
*) echo "usage: OLD=dir OUT=dir $0 red-ab 1gbit|10gbit|shm | OLD=dir HDR=dir NEW=dir OUT=dir $0 tree3 RATE FILE" >&2
  exit 2 ;;
esac
