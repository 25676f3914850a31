#!/bin/bash
# Commands of bench/RESULTS.md §38 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, oneDNN 2.6.3):
#   OLD=dir OUT=dir bench/data/r34/commands.sh ab RATE FILE   (root for a link; RATE: shm, 1gbit or 10gbit; OLD: a
#     build of the tree before the change) — issue 14's reduce points (POINTS, op:m:n), each schedule of ALGOS
#     (default "auto"), the tree before (OLD) and this one alternated run by run, ROUNDS (default 1 2 3), plans,
#     ITERS (default 30) timed iterations: T_fused / T_seq of each into FILE; summarize_ab.py FILE makes the table.
#   bench/data/r34/commands.sh stream   — inv/stream.c's steady stream (blocks of back-to-back plan calls, two
#     schedules, barriers only around blocks); its source is stream.c here, built against build-mpich.
#   OUT=dir bench/data/r34/commands.sh sweep10|sweep1   (root): issue 14's W = 2 sweep, as bench/data/r33's.
set -eu
OUT=${OUT:-bench/data/r34}
export OMP_NUM_THREADS=1
POINTS=${POINTS:-"matmul_reduce_scatter:64:1024 matmul_all_reduce:256:1024"}
case "${1:-}" in
ab)
  RATE=$2 F=$3 run=()
  run=(mpirun.mpich -n 2) # shm: two ranks on this machine (before §40, one: shm-ab.jsonl ran W = 1)
  if [ $RATE != shm ]; then
    bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up 2 $RATE >> $OUT/log 2>&1; run=(bench/netsim.sh run --)
  fi
  for r in ${ROUNDS:-1 2 3}; do
    for pt in $POINTS; do
      IFS=: read op m n <<< "$pt"
      for a in ${ALGOS:-auto}; do
        for t in old:$OLD new:.; do
          IFS=: read lab dir <<< "$t"
          timeout -k 5 600 "${run[@]}" $dir/build-mpich/tools/tpmm-bench --op $op --m $m --k 4096 --n $n \
            --dtype bf16 --plan --algo $a --iters ${ITERS:-30} --warmup 2 --peak 0 --json 2>>$OUT/log |
            sed "s/^{/{\"net\":\"$RATE\",\"round\":$r,\"tree\":\"$lab\",/" >> $F
        done
      done
    done
  done
  if [ $RATE != shm ]; then bench/netsim.sh down >> $OUT/log 2>&1; fi ;;
sweep10|sweep1)
  D=$1; RATE=10gbit; [ $1 = sweep1 ] && RATE=1gbit
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/$D W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=30 WARMUP=2 NO_PLOT=1 NETSIM=1 NETSIM_RATES="$RATE" bench/sweep.sh
  done ;;
*) echo "usage: OLD=dir OUT=dir $0 ab shm|1gbit|10gbit FILE | OUT=dir $0 sweep10|sweep1" >&2
  exit 2 ;;
esac
