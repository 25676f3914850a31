#!/bin/bash
# Run record of bench/RESULTS.md §30 (AMD EPYC family 25 model 17, AVX-512 with avx512_bf16, no AMX: bf16 and
# fp32 on oneDNN). From the repository root, this tree built in build-mpich and BEFORE (2227022, the tree before
# §30) in $BEFORE.
#   OUT=dir bench/data/r26/commands.sh decode|links|bound|ext|fixed|binding|torch|spmlp|predict|sweep|sweep10|recheck|recheck10|kernel|kdecode|ktorch|blocking
set -eu
OUT=${OUT:-bench/data/r26}
BEFORE=${BEFORE:-/tmp/before/build}
export OMP_NUM_THREADS=1
case "${1:-}" in
decode) # issue 13's decode target from C, bf16, both trees, both orders, three repetitions
  for rep in 1 2 3; do
    for order in tpmm hand; do
      for tree in before after; do
        B=build-mpich; [ $tree = before ] && B=$BEFORE
        echo "### tree=$tree order=$order rep=$rep" >> $OUT/decode.txt
        mpirun.mpich -n 2 $B/tools/decode_bench --order $order --rounds 2 --iters 40 \
          --shapes 1x4096x4096,4x4096x4096,16x4096x4096,16x8192x2048,16x2048x8192 >> $OUT/decode.txt 2>&1
      done
    done
  done ;;
links) # simulated 1 Gbit, W = 2: issue 13's balanced point (plan and one-shot), issue 14's target point (plans, both
  # reduce operators), issue 15's gather_index 1 point (plan); three rounds (root; bench/netsim.sh)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for what in agmm-plan agmm-oneshot rs ar gi1; do
      case $what in
        agmm-plan) args="--plan --m 512 --k 4096 --n 1536" ;;
        agmm-oneshot) args="--m 512 --k 4096 --n 1536" ;;
        rs) args="--plan --op matmul_reduce_scatter --m 1024 --k 1536 --n 1024" ;;
        ar) args="--plan --op matmul_all_reduce --m 1024 --k 1536 --n 1024" ;;
        gi1) args="--plan --gather-index 1 --m 256,1024 --k 2048 --n 1024" ;;
      esac
      timeout -k 5 600 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --dtype bf16 --peak 0 --json $args \
        --iters 15 --warmup 2 2>>$OUT/log | sed "s/^{/{\"what\":\"$what\",\"round\":$i,/" >> $OUT/links.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
bound) # issue 13's GEMM-bound balanced point (512 x 4096 x 1536, plan) and gather_index 1 at m = 1024 beside the bound
  # 1 / s of bench/netcpu_pair.py (the GEMM's slowdown under a plain TCP stream), 4 pairs each (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  /usr/bin/python3 bench/netcpu_pair.py build-mpich --pairs 4 --m 512 --k 4096 --n 1536 --extra "--dtype bf16" \
    --json $OUT/bound.jsonl >> $OUT/bound.txt 2>>$OUT/log
  /usr/bin/python3 bench/netcpu_pair.py build-mpich --pairs 4 --m 1024 --k 2048 --n 1024 \
    --extra "--dtype bf16 --gather-index 1" --json $OUT/bound.jsonl >> $OUT/bound.txt 2>>$OUT/log
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
ext) # issue 15's multi (3 weights against three single-weight plans) and uneven shards (against the even split of the
  # same rows), W = 2, bf16, plans, shared memory and simulated 1 Gbit, three rounds (root; bench/netsim.sh)
  for net in shm 1gbit; do
    R="mpirun.mpich -n 2"
    if [ $net = 1gbit ]; then
      bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1; R="bench/netsim.sh run --"
    fi
    for i in 1 2 3; do
      for args in "--m 512 --n 1024 --nb 3" "--m 512 --n 256 --nb 3" "--counts 768,256 --n 1024" "--counts 1024,0 --n 1024"; do
        timeout -k 5 900 $R build-mpich/tools/tpmm-bench --k 4096 $args --dtype bf16 --plan --iters 10 --warmup 2 \
          --peak 0 --json 2>>$OUT/log | sed "s/^{/{\"net\":\"$net\",\"round\":$i,/" >> $OUT/ext.jsonl
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
fixed) # issue 13's fixed cost at m = k = n = 1 (and 1 x 64 x 64), BEFORE and this tree alternated, five runs each
  for i in 1 2 3 4 5; do
    for B in $BEFORE build-mpich; do
      echo "### $B" >> $OUT/fixed.txt
      mpirun.mpich -n 2 $B/tools/plan_overhead --oneshot >> $OUT/fixed.txt 2>&1
      mpirun.mpich -n 2 $B/tools/plan_overhead --oneshot 1 64 64 >> $OUT/fixed.txt 2>&1
    done
  done ;;
binding) # issue 13's binding overhead per plan call, numpy and torch
  for kind in numpy torch; do
    PYTHONPATH=build-mpich/python mpirun.mpich -n 2 /usr/bin/python3 bench/py_overhead.py --kind $kind \
      >> $OUT/py_overhead.txt 2>&1
  done ;;
torch) # issue 13 from Python against torch gloo + torch.matmul (bf16, W = 2): decode from the first call and
  # settled, prefill through a plan; both orders
  for order in tpmm torch; do
    PYTHONPATH=build-mpich/python timeout 1800 mpirun.mpich -n 2 /usr/bin/python3 bench/torch_compare.py \
      --order $order --json $OUT/torch-$order.jsonl >> $OUT/torch.txt 2>&1
  done ;;
spmlp) # issue 14's examples/sp_mlp.py at 512 tokens per rank, W = 2, three runs
  for i in 1 2 3; do
    PYTHONPATH=build-mpich/python timeout 900 mpirun.mpich -n 2 /usr/bin/python3 examples/sp_mlp.py --tokens 512 \
      >> $OUT/spmlp.txt 2>&1
  done ;;
predict) # issue 13's scaling model against measurements: shared memory and simulated 1 / 10 Gbit, W = 2 (root)
  OUT=$OUT/predict SETTINGS="shm-2 1gbit-2 10gbit-2" bench/predict_check.sh >> $OUT/predict.log 2>&1
  /usr/bin/python3 bench/summarize_predict.py $OUT/predict/*.jsonl --markdown > $OUT/predict-table.md ;;
sweep) # issue 14's W = 2 sweep (bf16, plans, auto, 3 timed iterations) over shared memory and simulated 1 Gbit,
  # both reduce operators (root); bench/data/r25/summarize_sweep.py makes the tables
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/sweep W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=3 WARMUP=1 NO_PLOT=1 NETSIM=1 NETSIM_RATES=1gbit bench/sweep.sh
  done ;;
sweep10) # issue 14's W = 2 sweep over simulated 10 Gbit, as `sweep` (root; the tree of gemm_bf16r.c)
  for op in matmul_reduce_scatter matmul_all_reduce; do
    OP=$op OUT=$OUT/sweep-10gbit W_LIST=2 M_LIST=16,64,256,1024,2048 N_LIST=1024,4096 K=4096 DTYPES=bf16 PLAN=1 \
      ITERS=3 WARMUP=1 NO_PLOT=1 NETSIM=1 NETSIM_RATES=10gbit bench/sweep.sh
  done ;;
recheck10) # the 10 Gbit sweep's 8 points above 1.0 at 30 iterations, once each (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 10gbit >> $OUT/log 2>&1
  for p in "matmul_all_reduce 16 1024" "matmul_all_reduce 256 1024" "matmul_all_reduce 64 4096" \
    "matmul_reduce_scatter 16 1024" "matmul_reduce_scatter 1024 1024" "matmul_reduce_scatter 2048 1024" \
    "matmul_reduce_scatter 256 4096" "matmul_reduce_scatter 1024 4096"; do
    set -- $p
    timeout -k 5 600 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --op $1 --dtype bf16 --peak 0 --json --plan \
      --m $2 --k 4096 --n $3 --iters 30 --warmup 2 2>>$OUT/log >> $OUT/recheck10.jsonl
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
recheck) # the sweep's one loss over 1 Gbit (all_reduce m = 16, n = 1024, 3 iterations) at 30 iterations, three runs
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    timeout -k 5 300 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --op matmul_all_reduce --dtype bf16 --peak 0 \
      --json --plan --m 16 --k 4096 --n 1024 --iters 30 --warmup 2 2>>$OUT/log | sed "s/^{/{\"round\":$i,/" \
      >> $OUT/recheck.jsonl
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
kernel) # §30.7: one rank's GEMM at decode rows, oneDNN plain / gemm_bf16r.c / oneDNN packed, three runs
  gcc -O2 -fopenmp -I. -Iinclude $OUT/gemm_bf16r.c build-mpich/libtpmm.a -ldnnl -lm \
    $(mpicc.mpich -show | sed 's/^gcc//') -o /tmp/gemm_bf16r
  for rep in 1 2 3; do
    for shape in "2 4096 4096" "8 4096 4096" "2 8192 2048" "8 8192 2048" "2 2048 8192" "8 2048 8192"; do
      /tmp/gemm_bf16r $shape >> $OUT/kernel.txt
    done
  done ;;
kdecode) # §30.7: issue 13's decode from C with gemm_bf16r.c (this tree), both orders, three repetitions
  for rep in 1 2 3; do
    for order in tpmm hand; do
      echo "### tree=after order=$order rep=$rep" >> $OUT/kdecode.txt
      mpirun.mpich -n 2 build-mpich/tools/decode_bench --order $order --rounds 2 --iters 40 \
        --shapes 1x4096x4096,4x4096x4096,1x8192x2048,4x8192x2048,4x2048x8192 >> $OUT/kdecode.txt 2>&1
    done
  done ;;
ktorch) # §30.7: issue 13 from Python against torch with gemm_bf16r.c, both orders
  for order in tpmm torch; do
    PYTHONPATH=build-mpich/python timeout 1800 mpirun.mpich -n 2 /usr/bin/python3 bench/torch_compare.py \
      --order $order --prefill "" --decode 1x4096x4096,4x4096x11008,8x4096x11008 \
      --json $OUT/ktorch-$order.jsonl >> $OUT/ktorch.txt 2>&1
  done ;;
blocking) # §30.7: oneDNN's bf16 blocking on this CPU, by experiment (exp_blocking.c)
  gcc -O2 -mavx512f -mavx512bf16 -fopenmp -I. -Iinclude $OUT/exp_blocking.c build-mpich/libtpmm.a -ldnnl -lm \
    $(mpicc.mpich -show | sed 's/^gcc//') -o /tmp/exp_blocking
  for kb in 4096 2048 1024 512 256; do echo "KB=$kb MODE=2: $(KB=$kb MODE=2 /tmp/exp_blocking 4096 1024 16)"; done
  for args in "8192 2048 16" "2048 8192 4" "4096 4096 2" "4096 4096 1" "11008 512 8" "4095 256 3" "3000 256 2" \
    "1536 1024 32" "8192 256 64"; do echo "KB=1024 MODE=2: $(KB=1024 MODE=2 /tmp/exp_blocking $args)"; done
  for k in 768 1001 1024 1025 2048; do for kb in 1024 512; do
    echo "KB=$kb MODE=2: $(KB=$kb MODE=2 /tmp/exp_blocking $k 4096 8)"
  done; done
  for mode in 0 1 2 3; do for env in "BIAS=1" "NAN=1" "BIAS=1 NAN=1"; do
    echo "MODE=$mode $env: $(env $env MODE=$mode KB=1024 /tmp/exp_blocking 4096 256 4)"
  done; done ;;
esac
