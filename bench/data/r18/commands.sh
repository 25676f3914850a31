#!/bin/bash
# The runs of bench/RESULTS.md §20, one section each:
#   OUT=dir bench/data/r18/commands.sh ab micro decode prefill spmlp links sweep x2g
# BEFORE: a build of the commit before the change measured (default /tmp/b20/build, c9ab50a);
# BUILD: this tree's MPICH build (default build-mpich). RUN=suffix names a run's files.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; BB=${BEFORE:-/tmp/b20/build}
OUT=${OUT:-/tmp/tpmm-r18}; mkdir -p $OUT
export OMP_NUM_THREADS=1
gb() { for v in before after; do L=$B; [ $v = before ] && L=$BB
  gcc -O2 -I$L/../include -I$L/.. -o /tmp/tpmm-gb18-$v $ROOT/bench/data/r17/gemm_bench.c $L/libtpmm.a \
    -lmpich -ldnnl -fopenmp -lm -lpthread; done; }
abl() { cp $BB/libtpmm.so.0.1.0 /tmp/tpmm-ab-before.so; cp $B/libtpmm.so.0.1.0 /tmp/tpmm-ab-after.so
  mpicc.mpich -O2 -I$ROOT/include -o /tmp/tpmm-ab $ROOT/bench/data/r18/ab.c -ldl; }
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg) steal $(awk '/^cpu /{print $9}' /proc/stat)" >> $OUT/log
case $s in
ab) # BEFORE's libtpmm.so and this tree's in one process, calls in turns (ab.c): one rank, then W = 2
  abl
  for shape in "4096 4096" "4096 11008" "1024 2048" "2048 1024"; do for t in 0 1; do for mode in oneshot plan; do
    mpirun.mpich -n 1 /tmp/tpmm-ab /tmp/tpmm-ab-before.so /tmp/tpmm-ab-after.so $shape $t $mode 7 64,128,256,512,1024,2048
  done; done; done > $OUT/ab${RUN:-}.txt 2>&1
  for t in 0 1; do for mode in oneshot plan; do
    timeout 900 mpirun.mpich -n 2 /tmp/tpmm-ab /tmp/tpmm-ab-before.so /tmp/tpmm-ab-after.so 4096 4096 $t $mode 7 \
      1,4,16,32,64,128,512
  done; done >> $OUT/ab${RUN:-}.txt 2>&1 ;;
micro) # the GEMM layer alone, one rank, prefill-sized calls: BEFORE's library and this tree's alternated, three rounds
  gb
  for i in 1 2 3; do for shape in "4096 4096" "4096 11008" "1024 2048" "2048 1024"; do for t in 0 1; do
    for mode in oneshot plan; do for v in before after; do echo "== $v round $i"
      /tmp/tpmm-gb18-$v $shape $t $mode 0 5 64,128,256,512,1024,2048
  done; done; done; done; done > $OUT/micro${RUN:-}.txt 2>&1 ;;
decode) # the same, decode-sized calls (plans of a transposed x2 changed layout), 4096 x 4096
  gb
  for i in 1 2 3; do for t in 0 1; do for mode in oneshot plan; do for v in before after; do echo "== $v round $i"
    /tmp/tpmm-gb18-$v 4096 4096 $t $mode 0 9 1,2,4,8,16,32
  done; done; done; done > $OUT/decode${RUN:-}.txt 2>&1 ;;
prefill) # W = 2 from Python, prefill through a plan and one-shot against torch gloo + torch.matmul, BEFORE and after, both orders
  for order in tpmm torch; do for v in before after; do P=$BB/python; [ $v = after ] && P=$B/python
    echo "== $v order $order"
    PYTHONPATH=$P timeout 900 mpirun.mpich -n 2 /usr/bin/python3 $ROOT/bench/torch_compare.py \
      --decode "" --prefill 128x4096x4096,512x4096x4096 --order $order --json $OUT/prefill-$v-$order${RUN:-}.jsonl 2>&1
  done; done > $OUT/prefill${RUN:-}.txt ;;
spmlp) # examples/sp_mlp.py at 512 tokens per rank, BEFORE and after alternated, twice
  for i in 1 2; do for v in before after; do P=$BB/python; [ $v = after ] && P=$B/python
    echo "== $v round $i"
    PYTHONPATH=$P timeout 900 mpirun.mpich -n 2 /usr/bin/python3 $ROOT/examples/sp_mlp.py --reps 11 2>&1
  done; done > $OUT/spmlp${RUN:-}.txt ;;
links) # simulated 1 Gbit, W = 2 (root): issue 14's target point, issue 13's balanced point, issue 15's gather_index 1;
  # BEFORE and this tree alternated, two rounds (a run may hang in MPI_Finalize after printing, MPICH over UCX
  # tcp: timeout ends it, docs/NETSIM.md)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  R="timeout -k 5 120 bench/netsim.sh run --"
  for i in 1 2; do for v in before after; do
    D=$BB; [ $v = after ] && D=$B; F=$OUT/links-$v${RUN:-}
    for op in matmul_reduce_scatter matmul_all_reduce; do
      $R $D/tools/tpmm-bench --op $op --m 1024 --k 1536 --n 1024 --dtype bf16 --algo auto,ring --plan --iters 15 \
        --warmup 2 --peak 0 --json >> $F-target.jsonl 2>>$OUT/net.log
    done
    for mode in --plan ""; do
      $R $D/tools/tpmm-bench --m 512 --k 4096 --n 1536 --dtype bf16 --algo auto $mode --iters 20 --warmup 20 \
        --peak 0 --json >> $F-agbal.jsonl 2>>$OUT/net.log
    done
    $R $D/tools/tpmm-bench --gather-index 1 --m 512,1024 --k 2048 --n 1024 --iters 10 --warmup 2 --algo auto,ring \
      --plan --peak 0 --json >> $F-x2g.jsonl 2>>$OUT/net.log
  done; done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
x2g) # simulated 1 Gbit, W = 2 (root): gather_index 1 at rows where the GEMM now matches the transfer, this tree,
  # three runs (auto, ring forced)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for i in 1 2 3; do
    timeout -k 5 180 bench/netsim.sh run -- $B/tools/tpmm-bench --gather-index 1 --m 1024,2048,3072 --k 2048 --n 1024 \
      --iters 10 --warmup 2 --algo auto,ring --plan --peak 0 --json >> $OUT/x2g-balanced${RUN:-}.jsonl 2>>$OUT/net.log
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
sweep) # issue 14's W = 2 sweep over shared memory, this tree: plans, bf16, k = 4096, auto
  for op in matmul_reduce_scatter matmul_all_reduce; do
    timeout 1200 mpirun.mpich -n 2 $B/tools/tpmm-bench --op $op --m 16,128,512,2048 --k 4096 --n 1024,4096 \
      --dtype bf16 --plan --iters 15 --warmup 2 --peak 0 --json
  done > $OUT/sweep${RUN:-}.jsonl 2>$OUT/sweep${RUN:-}.log ;;
*) echo "unknown section $s" >&2; exit 2 ;;
esac
done
