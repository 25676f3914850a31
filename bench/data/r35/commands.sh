#!/bin/bash
# Commands of bench/RESULTS.md §40 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, Open MPI 4.1.4, oneDNN 2.6.3):
#   TREES="lab:dir ..." OUT=dir bench/data/r35/commands.sh ab RATE FILE   (root for a link; RATE: shm, 1gbit or
#     10gbit) — issue 14's reduce points (POINTS, op:m:n), each schedule of ALGOS (default "auto"), the builds of
#     TREES (default "new:.") alternated run by run, ROUNDS (default 1 2 3), plans, ITERS (default 30) timed
#     iterations, W ranks (default 2; shm: mpirun -n W, a link: W simulated hosts), MPI (mpich or openmpi):
#     one tpmm-bench JSON line a run into FILE; summarize.py FILE makes the table.
#   bench/data/r35/commands.sh spmlp W   — examples/sp_mlp.py on W ranks (MPICH, shared memory), 512 tokens a rank.
#   final/: OUT=bench/data/r35/final bench/data/r34/commands.sh sweep10|sweep1 (issue 14's W = 2 sweep, §40.6).
#   rs64-1gbit.jsonl: POINTS=matmul_reduce_scatter:64:1024 ALGOS="ring unfused auto" ab 1gbit (§40.6);
#   rs64-1gbit-auto.jsonl: the same point, ALGOS=auto ROUNDS="1 2 3 4 5 6 7 8" ITERS=20 ab 1gbit (§40.6).
set -eu
OUT=${OUT:-bench/data/r35}
export OMP_NUM_THREADS=1
POINTS=${POINTS:-"matmul_reduce_scatter:64:1024 matmul_all_reduce:256:1024"}
W=${W:-2} MPI=${MPI:-mpich}
case "${1:-}" in
ab)
  RATE=$2 F=$3 run=()
  if [ $RATE != shm ]; then
    bench/netsim.sh down >/dev/null 2>&1 || true; bench/netsim.sh up $W $RATE >> $OUT/log 2>&1
    run=(bench/netsim.sh run --mpi $MPI --)
  elif [ $MPI = openmpi ]; then
    run=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun.openmpi --oversubscribe -n $W)
  else
    run=(mpirun.mpich -n $W)
  fi
  for r in ${ROUNDS:-1 2 3}; do
    for pt in $POINTS; do
      IFS=: read op m n <<< "$pt"
      for a in ${ALGOS:-auto}; do
        for t in ${TREES:-new:.}; do
          IFS=: read lab dir <<< "$t"
          timeout -k 5 900 "${run[@]}" $dir/build-$MPI/tools/tpmm-bench --op $op --m $m --k 4096 --n $n \
            --dtype bf16 --plan --algo $a --iters ${ITERS:-30} --warmup 2 --peak 0 --json 2>>$OUT/log |
            sed "s/^{/{\"net\":\"$RATE\",\"round\":$r,\"tree\":\"$lab\",/" >> $F
        done
      done
    done
  done
  if [ $RATE != shm ]; then bench/netsim.sh down >> $OUT/log 2>&1; fi ;;
spmlp)
  PYTHONPATH=build-mpich/python timeout -k 5 900 mpirun.mpich -n $2 /usr/bin/python3 examples/sp_mlp.py ;;
*) echo "usage: TREES=... OUT=dir $0 ab shm|1gbit|10gbit FILE | $0 spmlp W" >&2
  exit 2 ;;
esac
