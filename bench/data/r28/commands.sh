#!/bin/bash
# Commands of bench/RESULTS.md §32 (AMD EPYC family 26, Zen 5, 2 vCPUs; MPICH 4.0.2, oneDNN 2.6.3):
#   OUT=dir bench/data/r28/commands.sh sweep|sweep-tuned|uneven|uneven-shm|unevtrace|sweep-thread|sweep-final|kernel|tuner10|threads10|target14|target15
set -eu
OUT=${OUT:-bench/data/r28}
export OMP_NUM_THREADS=1
case "${1:-}" in
sweep) # issue 14's W = 2 sweep (bf16, plans, auto, 10 timed iterations) over shared memory and simulated 1 and
  # 10 Gbit, both reduce operators (root); `bench/data/r25/summarize_sweep.py DIR NET` makes the tables
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/sweep W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=10 WARMUP=1 NO_PLOT=1 NETSIM=1 NETSIM_RATES="1gbit 10gbit" bench/sweep.sh
  done ;;
sweep-tuned) # the same sweep on the tree with tune.c's every-pair rule (eb7cabc), into sweep-tuned/
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/sweep-tuned W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=10 WARMUP=1 NO_PLOT=1 NETSIM=1 NETSIM_RATES="1gbit 10gbit" bench/sweep.sh
  done ;;
uneven|uneven-shm) # issue 15: uneven shards against the even split of the same rows, W = 2, bf16, k = 4096, plans,
  # three rounds; over simulated 1 Gbit (root) or shared memory
  F=$1; NET=shm; [ $1 = uneven ] && NET=1gbit && { bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1; }
  RUN="mpirun.mpich -n 2"; [ $1 = uneven ] && RUN="bench/netsim.sh run --"
  for i in 1 2 3; do
    for args in "--counts 768,256 --n 2048" "--counts 1024,0 --n 2048" "--counts 768,256 --n 4096" \
      "--counts 1024,0 --n 4096"; do
      timeout -k 5 900 $RUN build-mpich/tools/tpmm-bench --k 4096 $args --dtype bf16 --plan --iters 10 --warmup 2 \
        --peak 0 --json 2>>$OUT/log | sed "s/^{/{\"net\":\"$NET\",\"round\":$i,/" >> $OUT/$F.jsonl
    done
  done
  [ $1 = uneven ] && bench/netsim.sh down >> $OUT/log 2>&1 ;;
unevtrace) # issue 15: where 1024,0 loses its time at n = 4096: traced plan executes (unev.c, auto and 4 chunks) against
  # 512,512, over simulated 1 Gbit and shared memory (root); summarize_trace.py per run
  mpicc.mpich -O2 -Iinclude $OUT/unev.c -Lbuild-mpich -ltpmm -Wl,-rpath,$PWD/build-mpich -o /tmp/unev
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for net in 1gbit shm; do
    RUN="bench/netsim.sh run --"; [ $net = shm ] && RUN="mpirun.mpich -n 2"
    for c in "1024 0 4096 0" "1024 0 4096 4" "512 512 4096 0"; do
      rm -f /tmp/unev.json
      echo "### $net counts,n,comm_turn: $c" >> $OUT/unevtrace.txt
      $RUN env TPMM_TRACE=/tmp/unev.json /tmp/unev $c 10 | tail -1 >> $OUT/unevtrace.txt
      /usr/bin/python3 $OUT/summarize_trace.py /tmp/unev.json >> $OUT/unevtrace.txt
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
kernel) # one rank's bf16 GEMM at 1-16 rows on this CPU: oneDNN with x2 as stored / gemm_bf16r.c / oneDNN packed
  # (bench/data/r27/gemm_bf16r.c), one run
  gcc -O2 -fopenmp -I. -Iinclude bench/data/r27/gemm_bf16r.c build-mpich/libtpmm.a -ldnnl -lm \
    $(mpicc.mpich -show | sed 's/^gcc//') -o /tmp/gemm_bf16r
  for shape in "1 4096 4096" "2 4096 4096" "4 4096 4096" "8 4096 4096" "8 8192 2048" "12 4096 4096" "16 4096 4096" \
    "16 8192 2048" "9 8192 2048" "16 4096 1024" "16 1024 4096" "4 2048 16384"; do
    echo "$(/tmp/gemm_bf16r $shape | tr '\n' ' ')" >> $OUT/kernel.txt
  done ;;
tuner10) # issue 14 over simulated 10 Gbit: what the autotuner measured (TPMM_VERBOSE) at two points where ring+thread
  # ran slower than T_seq in the sweep, and the plan's result; two rounds (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 10gbit >> $OUT/log 2>&1
  for i in 1 2; do
    for p in "matmul_reduce_scatter 1024 1024" "matmul_all_reduce 256 4096"; do
      set -- $p
      timeout -k 5 600 bench/netsim.sh run -- env TPMM_VERBOSE=1 build-mpich/tools/tpmm-bench --op $1 --dtype bf16 \
        --peak 0 --json --plan --m $2 --k 4096 --n $3 --iters 6 --warmup 1 2>&1 | grep -E "autotune|^[{]" >> $OUT/tuner10.txt
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
threads10) # the same reduce_scatter point, 1024 x 4096 x 1024: ring (auto chunks) and unfused plans alternated, each
  # after a barrier, without and with the progress thread, two rounds (root; alt.c)
  mpicc.mpich -O2 -Iinclude $OUT/alt.c -Lbuild-mpich -ltpmm -Wl,-rpath,$PWD/build-mpich -o /tmp/alt
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 10gbit >> $OUT/log 2>&1
  for th in 0 1 0 1; do
    echo "### TPMM_PROGRESS_THREAD=$th" >> $OUT/threads10.txt
    bench/netsim.sh run -- env TPMM_PROGRESS_THREAD=$th /tmp/alt 1024 4096 1024 10 1 0 >> $OUT/threads10.txt 2>&1
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
sweep-thread) # the same sweep on the tree whose reduce operators take the progress thread only where the transfer is a
  # quarter of the GEMM (model.c), into sweep-thread/
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/sweep-thread W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=10 WARMUP=1 NO_PLOT=1 NETSIM=1 NETSIM_RATES="1gbit 10gbit" bench/sweep.sh
  done ;;
target14) # issue 14's E target over simulated 1 Gbit (1024 x 1536 x 1024, plans, both operators) and examples/sp_mlp.py
  # at 512 tokens per rank in shared memory, three rounds each, on the final tree (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for op in matmul_reduce_scatter matmul_all_reduce; do
      timeout -k 5 600 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --plan --op $op --m 1024 --k 1536 --n 1024 \
        --dtype bf16 --iters 10 --warmup 2 --peak 0 --json 2>>$OUT/log | sed "s/^{/{\"round\":$i,/" >> $OUT/target14.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1
  for i in 1 2 3; do
    PYTHONPATH=build-mpich/python timeout 900 mpirun.mpich -n 2 /usr/bin/python3 examples/sp_mlp.py --tokens 512 \
      >> $OUT/spmlp.txt 2>&1
  done ;;
target15) # issue 15's gather_index 1 point over simulated 1 Gbit and multi (3 weights against three single-weight
  # plans) in shared memory and over simulated 1 Gbit, W = 2, bf16, plans, three rounds, as §30.4-30.5 (root)
  for net in shm 1gbit; do
    R="mpirun.mpich -n 2"
    if [ $net = 1gbit ]; then
      bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1; R="bench/netsim.sh run --"
    fi
    for i in 1 2 3; do
      for args in "--k 4096 --m 512 --n 1024 --nb 3" "--k 4096 --m 512 --n 256 --nb 3" \
        "--gather-index 1 --m 256,1024 --k 2048 --n 1024"; do
        [ $net = shm ] && [ "${args#--gather}" != "$args" ] && continue
        timeout -k 5 900 $R build-mpich/tools/tpmm-bench $args --dtype bf16 --plan --iters 10 --warmup 2 \
          --peak 0 --json 2>>$OUT/log | sed "s/^{/{\"net\":\"$net\",\"round\":$i,/" >> $OUT/target15.jsonl
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
sweep-final) # the same sweep on the final tree (2b7936b), into sweep-final/
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/sweep-final W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=10 WARMUP=1 NO_PLOT=1 NETSIM=1 NETSIM_RATES="1gbit 10gbit" bench/sweep.sh
  done ;;
*) echo "usage: OUT=dir $0 sweep|sweep-tuned|uneven|uneven-shm|unevtrace|sweep-thread|sweep-final|kernel|tuner10|threads10|target14|target15" >&2; exit 2 ;;
esac
