#!/bin/bash
# Commands of bench/RESULTS.md §36 (AMD EPYC family 25 model 17, Zen 4, 2 vCPUs, AVX-512 with avx512_bf16, no AMX;
# MPICH 4.0.2, oneDNN 2.6.3):
#   OUT=dir bench/data/r32/commands.sh gemmrows
#   OLD=dir OUT=dir bench/data/r32/commands.sh unev-ab|unev-ab-shm   (root for the simulated link)
#   OUT=dir bench/data/r32/commands.sh gi1-turns|sweep10|sweep1|recheck|gi1-auto   (root)
#   OUT=dir bench/data/r30/commands.sh bound-gi1   (root: gather_index 1's GEMM-bound estimate, netcpu_pair.py)
#   OLD=dir OUT=dir bench/data/r32/commands.sh gi1-ab   (root; OLD: a build of 5ad35e7, §30's tree)
#   OLD=dir OUT=dir bench/data/r32/commands.sh panel-ab|panel-ab-shm|accpanels   (OLD: a build of c99e232; root for panel-ab)
# gemmrows: one rank's packed bf16 / fp32 GEMM on M rows in one call against calls of 256 and 512 (gemm_rows.c),
#   alone and two copies at once, built against the tree before the split (OLD).
# unev-ab: issue 15's uneven shards against the even split, the tree before the split (OLD) and this one
#   alternated run by run, three rounds, over simulated 1 Gbit or in shared memory (unev-ab-shm).
# target15 / uneven / uneven-shm of bench/data/r28/commands.sh were run with OUT=bench/data/r32 on this machine.
set -eu
OUT=${OUT:-bench/data/r32}
export OMP_NUM_THREADS=1
case "${1:-}" in
gemmrows)
  gcc -O2 -I$OLD/src -I$OLD/include bench/data/r32/gemm_rows.c $OLD/build-mpich/libtpmm.a -lmpich -ldnnl -lgomp -lm \
    -lpthread -o /tmp/gemm_rows
  {
    for s in "4096 2048 512 768 1024 1536 2048" "4096 1024 1024 2048 4096" "4096 4096 1024 2048 4096" \
      "1536 1024 1024 2048" "8192 2048 1024 2048" "2048 8192 1024" "4096 512 1024 4096" "3072 2048 1024 2048" \
      "11008 4096 1024" "5120 1024 1024" "6144 1024 1024" "12288 1024 1024" "16384 1024 1024"; do
      /tmp/gemm_rows $s
    done
    DT=fp32 /tmp/gemm_rows 4096 1024 512 1024 2048
    S1=1024 /tmp/gemm_rows 2048 2048 2048 4096
    echo "two at once:"; mpirun.mpich -n 2 /tmp/gemm_rows 4096 2048 1024 2048
  } | tee -a $OUT/gemmrows.txt ;;
unev-ab|unev-ab-shm)
  NET=1gbit; RUN="bench/netsim.sh run --"
  if [ $1 = unev-ab-shm ]; then NET=shm; RUN="mpirun.mpich -n 2"; else
    bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1; fi
  for i in 1 2 3; do
    for args in "--counts 1024,0 --n 4096" "--counts 768,256 --n 4096" "--counts 1024,0 --n 2048"; do
      for t in old new; do
        B=build-mpich; [ $t = old ] && B=$OLD/build-mpich
        timeout -k 5 900 $RUN $B/tools/tpmm-bench --k 4096 $args --dtype bf16 --plan --iters 10 --warmup 2 \
          --peak 0 --json 2>>$OUT/log | sed "s/^{/{\"net\":\"$NET\",\"tree\":\"$t\",\"round\":$i,/" >> $OUT/unev-ab.jsonl
      done
    done
  done
  [ $NET = 1gbit ] && bench/netsim.sh down >> $OUT/log 2>&1 || true ;;
gi1-turns) # issue 15's gather_index 1 point over simulated 1 Gbit (m 1024, k 2048 a rank, n 1024, plans): ring at
  # 1, 2 and 4 chunks and auto, alternated, three rounds (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for a in "--algo auto --comm-turn 0" "--algo ring --comm-turn 1,2,4"; do
      timeout -k 5 900 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --gather-index 1 --m 1024 --k 2048 \
        --n 1024 $a --dtype bf16 --plan --iters 10 --warmup 2 --peak 0 --json 2>>$OUT/log |
        sed "s/^{/{\"round\":$i,/" >> $OUT/gi1-turns.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
gi1-ab) # the same point, ring at 2 and 4 chunks and auto, this tree against OLD (§30's tree, 5ad35e7), alternated
  # run by run, three rounds (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for a in "--algo auto --comm-turn 0" "--algo ring --comm-turn 2" "--algo ring --comm-turn 4"; do
      for t in old new; do
        B=build-mpich; [ $t = old ] && B=$OLD/build-mpich
        timeout -k 5 600 bench/netsim.sh run -- $B/tools/tpmm-bench --gather-index 1 --m 1024 --k 2048 --n 1024 $a \
          --dtype bf16 --plan --iters 10 --warmup 2 --peak 0 --json 2>>$OUT/log |
          sed "s/^{/{\"tree\":\"$t\",\"round\":$i,/" >> $OUT/gi1-ab.jsonl
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
panel-ab|panel-ab-shm) # gather_index 1 with panels of 1024 rows (this tree) against 512 (OLD: c99e232), alternated
  # run by run, three rounds: over simulated 1 Gbit at the target's point (root), or in shared memory at §34.5's points
  NET=1gbit; RUN="bench/netsim.sh run --"; PTS="1024:2048:1024"
  if [ $1 = panel-ab-shm ]; then NET=shm; RUN="mpirun.mpich -n 2"; PTS="64:4096:4096 256:2048:4096 1024:2048:1024 2048:1024:2048"; else
    bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1; fi
  for i in 1 2 3; do
    for pt in $PTS; do
      IFS=: read m k n <<< "$pt"
      for t in old new; do
        B=build-mpich; [ $t = old ] && B=$OLD/build-mpich
        timeout -k 5 600 $RUN $B/tools/tpmm-bench --gather-index 1 --m $m --k $k --n $n --dtype bf16 --plan \
          --iters 10 --warmup 2 --peak 0 --json 2>>$OUT/log |
          sed "s/^{/{\"net\":\"$NET\",\"tree\":\"$t\",\"round\":$i,/" >> $OUT/panel-ab.jsonl
      done
    done
  done
  [ $NET = 1gbit ] && bench/netsim.sh down >> $OUT/log 2>&1 || true ;;
accpanels) # gather_index 1's accumulating panel GEMMs alone (bench/data/r31/acc_panels.c) at panels of 512, 1024 and 2048 x2 rows
  # (K = 4096 in all), one rank, two rounds; OLD: the tree to build against
  gcc -O2 -I$OLD/src -I$OLD/include bench/data/r31/acc_panels.c $OLD/build-mpich/libtpmm.a -lmpich -ldnnl -lgomp -lm \
    -lpthread -o /tmp/accp
  for r in 1 2; do
    for s in "1024 1024" "256 4096" "2048 2048"; do
      set -- $s; /tmp/accp $1 $2 8 512; /tmp/accp $1 $2 4 1024; /tmp/accp $1 $2 2 2048
    done
  done | tee -a $OUT/accpanels.txt ;;
sweep10|sweep1) # issue 14's W = 2 sweep (bf16, plans, auto, 10 timed iterations) in shared memory and over
  # simulated 10 Gbit (into sweep/) or 1 Gbit (into sweep1/), both reduce operators (root);
  # `bench/data/r25/summarize_sweep.py DIR NET` makes the tables
  D=sweep; RATE=10gbit; [ $1 = sweep1 ] && D=sweep1 && RATE=1gbit
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/$D W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=10 WARMUP=1 NO_PLOT=1 NETSIM=1 NETSIM_RATES="$RATE" bench/sweep.sh
  done ;;
recheck) # the sweeps' points above 1.0, again at 30 timed iterations, once each (root)
  for rate in 10gbit 1gbit; do
    bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 $rate >> $OUT/log 2>&1
    P10="matmul_all_reduce:1024:1024 matmul_all_reduce:64:4096 matmul_reduce_scatter:16:1024 matmul_reduce_scatter:256:1024"
    P1="matmul_reduce_scatter:16:1024 matmul_reduce_scatter:16:4096"
    [ $rate = 10gbit ] && PTS=$P10 || PTS=$P1
    for pt in $PTS; do
      IFS=: read op m n <<< "$pt"
      timeout -k 5 600 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --op $op --m $m --k 4096 --n $n --dtype bf16 \
        --plan --iters 30 --warmup 2 --peak 0 --json 2>>$OUT/log | sed "s/^{/{\"net\":\"$rate\",/" >> $OUT/recheck.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
gi1-auto) # gather_index 1 at the 1 Gbit point, auto, four rounds, TPMM_VERBOSE's plan line kept (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3 4; do
    timeout -k 5 600 bench/netsim.sh run -- env TPMM_VERBOSE=1 build-mpich/tools/tpmm-bench --gather-index 1 --m 1024 \
      --k 2048 --n 1024 --dtype bf16 --plan --iters 10 --warmup 2 --peak 0 --json 2>&1 | grep -E "plan_create|^[{]" |
      sed "s/^{/{\"round\":$i,/" >> $OUT/gi1-auto.txt
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
*) echo "usage: OUT=dir $0 gemmrows | OLD=dir OUT=dir $0 unev-ab|unev-ab-shm | OUT=dir $0 gi1-turns|sweep10|sweep1|recheck|gi1-auto | OLD=dir OUT=dir $0 gi1-ab|panel-ab|panel-ab-shm|accpanels" >&2; exit 2 ;;
esac
