#!/bin/bash
# Run record of bench/RESULTS.md §31 (AMD EPYC family 25 model 17, AVX-512 with avx512_bf16, no AMX). From the
# repository root, this tree built in build-mpich and BEFORE (58af988, the tree of §30) in $BEFORE.
#   OUT=dir bench/data/r27/commands.sh kernel|kdecode|ktorch|ktorch3|uneven|uneven-before|turns|predict4
set -eu
OUT=${OUT:-bench/data/r27}
BEFORE=${BEFORE:-/tmp/before/build}
export OMP_NUM_THREADS=1
case "${1:-}" in
kernel) # one rank's GEMM at 2-16 rows: oneDNN with x2 as stored / gemm_bf16r.c / oneDNN packed, three runs; the
  # shapes of up to 8 rows on both trees (one pass per 8 rows before; x2 in column chunks now past 8192 columns)
  for tree in after before; do
    L=build-mpich/libtpmm.a; [ $tree = before ] && L=$BEFORE/libtpmm.a
    gcc -O2 -fopenmp -I. -Iinclude $OUT/gemm_bf16r.c $L -ldnnl -lm $(mpicc.mpich -show | sed 's/^gcc//') \
      -o /tmp/gemm_bf16r-$tree
  done
  for rep in 1 2 3; do
    for shape in "12 4096 4096" "16 4096 4096" "16 8192 2048" "16 2048 8192" "16 4096 5504" "16 4096 11008" \
      "16 3584 2304" "9 8192 2048" "9 4096 4096" "10 8192 2048" "11 4096 4096" "9 4096 5504" "16 1024 4096" \
      "16 4096 1024"; do
      /tmp/gemm_bf16r-after $shape >> $OUT/kernel.txt
    done
    for shape in "2 4096 4096" "8 4096 4096" "8 8192 2048" "8 4096 11008" "4 2048 16384"; do
      for tree in before after; do echo "tree=$tree $(/tmp/gemm_bf16r-$tree $shape | tr '\n' ' ')" >> $OUT/kernel-small.txt; done
    done
  done ;;
kdecode) # issue 13's decode from C at 6 and 8 rows per rank (12, 16 gathered), both trees, both orders, three reps
  for rep in 1 2 3; do
    for order in tpmm hand; do
      for tree in before after; do
        B=build-mpich; [ $tree = before ] && B=$BEFORE
        echo "### tree=$tree order=$order rep=$rep" >> $OUT/kdecode.txt
        mpirun.mpich -n 2 $B/tools/decode_bench --order $order --rounds 2 --iters 40 \
          --shapes 8x4096x4096,8x8192x2048,8x2048x8192,6x4096x4096 >> $OUT/kdecode.txt 2>&1
      done
    done
  done ;;
ktorch) # issue 13 from Python against torch gloo + torch.matmul at 6 and 8 tokens per rank, both trees, both orders
  for order in tpmm torch; do
    for tree in before after; do
      B=build-mpich; [ $tree = before ] && B=$BEFORE
      echo "### tree=$tree order=$order" >> $OUT/ktorch.txt
      PYTHONPATH=$B/python timeout 1800 mpirun.mpich -n 2 /usr/bin/python3 bench/torch_compare.py \
        --order $order --prefill "" --decode 8x4096x11008,8x4096x4096,6x4096x11008 \
        --json $OUT/ktorch-$tree-$order.jsonl >> $OUT/ktorch.txt 2>&1
    done
  done ;;
ktorch3) # the same on this tree alone, three more repetitions of both orders (first calls are noisy here)
  for rep in 1 2 3; do
    for order in tpmm torch; do
      echo "### tree=after order=$order rep=$rep" >> $OUT/ktorch3.txt
      PYTHONPATH=build-mpich/python timeout 1800 mpirun.mpich -n 2 /usr/bin/python3 bench/torch_compare.py \
        --order $order --prefill "" --decode 8x4096x11008,8x4096x4096,6x4096x11008 \
        --json $OUT/ktorch3-$order.jsonl >> $OUT/ktorch3.txt 2>&1
    done
  done ;;
uneven|uneven-before) # issue 15's uneven shards over simulated 1 Gbit where the GEMM is longer than the largest
  # shard's transfer (n = 2048 and 4096), against the even split of the same rows, W = 2, bf16, plans, three rounds
  # (root); uneven-before: BEFORE's tpmm-bench (the model's rank-0 view)
  B=build-mpich; F=uneven; [ $1 = uneven-before ] && B=$BEFORE && F=uneven-before
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2 3; do
    for args in "--counts 768,256 --n 2048" "--counts 1024,0 --n 2048" "--counts 768,256 --n 4096" \
      "--counts 1024,0 --n 4096"; do
      timeout -k 5 900 bench/netsim.sh run -- $B/tools/tpmm-bench --k 4096 $args --dtype bf16 --plan \
        --iters 10 --warmup 2 --peak 0 --json 2>>$OUT/log | sed "s/^{/{\"net\":\"1gbit\",\"round\":$i,/" >> $OUT/$F.jsonl
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
turns) # uneven 1024,0 over simulated 1 Gbit, n = 2048 and 4096, plans at comm_turn 1-16 against the even split at
  # the same comm_turn, W = 2, bf16, 6 iterations (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for n in 2048 4096; do
    timeout -k 5 1800 bench/netsim.sh run -- build-mpich/tools/tpmm-bench --k 4096 --counts 1024,0 --n $n --dtype bf16 \
      --plan --iters 6 --warmup 2 --peak 0 --comm-turn 1,2,4,8,16 --json 2>>$OUT/log >> $OUT/turns.jsonl
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
predict4) # issue 13's scaling model against measurements at W = 4 (four ranks on two vCPUs: crowded), shared memory
  # and simulated 1 / 10 Gbit (root)
  OUT=$OUT/predict4 SETTINGS="shm-4 1gbit-4 10gbit-4" bench/predict_check.sh >> $OUT/predict4.log 2>&1
  /usr/bin/python3 bench/summarize_predict.py $OUT/predict4/*.jsonl --markdown > $OUT/predict4-table.md ;;
*) echo "usage: OUT=dir $0 kernel|kdecode|ktorch|ktorch3|uneven|uneven-before|turns|predict4" >&2; exit 2 ;;
esac
