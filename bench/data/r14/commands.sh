#!/bin/bash
# The runs of bench/RESULTS.md §16, one section each:
#   OUT=dir bench/data/r14/commands.sh ab target x2g shm net agbal spmlp parts
# (RUN=suffix: a run's files get it; the sweeps' -c and -e files were renamed to it by hand)
# BUILD: this tree's MPICH build (default build-mpich). target, x2g: root (netsim).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r14}; mkdir -p $OUT
export OMP_NUM_THREADS=1
SWEEP="--m 16,128,512,2048 --k 4096 --n 1024,4096 --dtype bf16 --plan"
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg) steal $(awk '/^cpu /{print $9}' /proc/stat)" >> $OUT/log
case $s in
ab) # the transposed copy side by side: BEFORE = a build of b66b701 (default /tmp/ab/build-mpich), alternated
  for i in 1 2; do for v in before after; do
    P=${BEFORE:-/tmp/ab/build-mpich}/python; [ $v = after ] && P=$B/python
    echo "== $v round $i: gemm_vs_torch"
    PYTHONPATH=$P mpirun.mpich -n 1 /usr/bin/python3 $ROOT/bench/data/r12/gemm_vs_torch.py 2>&1 | tail -3
    echo "== $v round $i: sp_mlp --reps 21"
    PYTHONPATH=$P mpirun.mpich -n 2 /usr/bin/python3 $ROOT/examples/sp_mlp.py --reps 21 2>&1 | grep -E "torch / tpmm|per rep"
  done; done > $OUT/ab-transpose.txt ;;
target) # issue 14: the 1 Gbit target point, both operators, auto and ring
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for op in matmul_reduce_scatter matmul_all_reduce; do
    bench/netsim.sh run -- $B/tools/tpmm-bench --op $op --m 1024 --k 1536 --n 1024 --dtype bf16 --algo auto,ring --plan \
      --iters 15 --warmup 2 --peak 0 --json > $OUT/net-target-$op${RUN:-}.jsonl 2>>$OUT/net.log
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
x2g) # issue 15: gather_index 1 at 1 Gbit, W = 2, plans
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  bench/netsim.sh run -- $B/tools/tpmm-bench --gather-index 1 --m 512,1024 --k 2048 --n 1024 --iters 10 --warmup 2 \
    --algo auto,ring --plan --peak 0 --json > $OUT/net-x2g${RUN:-}.jsonl 2>>$OUT/net.log
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
shm) # issue 14: the W = 2 sweep over shared memory, both reduce operators
  for op in matmul_reduce_scatter matmul_all_reduce; do
    mpirun.mpich -n 2 $B/tools/tpmm-bench --op $op $SWEEP --iters 15 --warmup 2 --peak 0 --json \
      > $OUT/red-shm-W2-$op${RUN:-}.jsonl 2>>$OUT/red.err
  done ;;
net) # issue 14: the same sweep over simulated 1 and 10 Gbit, W = 2
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for rate in 1gbit 10gbit; do
    bench/netsim.sh rate $rate >> $OUT/net.log 2>&1
    for op in matmul_reduce_scatter matmul_all_reduce; do
      bench/netsim.sh run -- $B/tools/tpmm-bench --op $op $SWEEP --iters 7 --warmup 1 --peak 0 --json \
        > $OUT/red-$rate-W2-$op${RUN:-}.jsonl 2>>$OUT/net.log
    done
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
agbal) # issue 13: the balanced 1 Gbit W = 2 point, plan and one-shot after 20 calls
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for mode in --plan ""; do
    bench/netsim.sh run -- $B/tools/tpmm-bench --m 512 --k 4096 --n 1536 --dtype bf16 --algo auto $mode --iters 20 \
      --warmup 20 --peak 0 --json >> $OUT/net-agbal${RUN:-}.jsonl 2>>$OUT/net.log
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
spmlp) # issue 14: the sequence-parallel MLP against torch.distributed, three runs
  for i in 1 2 3; do
    PYTHONPATH=$B/python mpirun.mpich -n 2 /usr/bin/python3 $ROOT/examples/sp_mlp.py --reps 21 2>&1 | tail -6 | head -5
  done > $OUT/spmlp${RUN:-}.txt ;;
chunks) # the reduce_scatter target point with every chunk count forced, polls and progress thread
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  for pt in 0 1; do
    TPMM_PROGRESS_THREAD=$pt bench/netsim.sh run -- $B/tools/tpmm-bench --op matmul_reduce_scatter --m 1024 --k 1536 \
      --n 1024 --dtype bf16 --algo ring --comm-turn 1,2,4,8,16,32 --plan --iters 11 --warmup 2 --peak 0 --json \
      >> $OUT/net-rs-chunks${RUN:-}.jsonl 2>>$OUT/net.log
  done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
tuner) # issue 14's 10 Gbit reduce_scatter sweep with the tuner's decisions (TPMM_VERBOSE)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 10gbit >> $OUT/net.log 2>&1
  TPMM_VERBOSE=1 bench/netsim.sh run -- $B/tools/tpmm-bench --op matmul_reduce_scatter $SWEEP --iters 7 --warmup 1 \
    --peak 0 --json > $OUT/red-10gbit-tuner${RUN:-}.jsonl 2> $OUT/tuner-10gbit${RUN:-}.log
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
micro) # the transposed copy and the packer alone, one core (built from this tree's sources)
  D=$ROOT/bench/data/r14
  gcc -O2 -o /tmp/tpmm-tb $D/transpose_bench.c $ROOT/src/common/copy.c $ROOT/src/common/half.c -I$ROOT/src/common -I$ROOT/include -lm
  gcc -O2 -o /tmp/tpmm-pb $D/pack_bench.c $ROOT/src/gemm/gemm_dnnl_pack.c $ROOT/src/common/half.c -I$ROOT/include -I$ROOT -ldnnl -lm
  git -C $ROOT show b66b701:src/common/copy.c > /tmp/tpmm-copy-before.c # the element-by-element copy
  gcc -O2 -o /tmp/tpmm-tb0 $D/transpose_bench.c /tmp/tpmm-copy-before.c -I$ROOT/src/common -I$ROOT/include -lm
  for sz in "2048 1024" "4096 4096" "1024 2048"; do echo "before:"; /tmp/tpmm-tb0 $sz; echo "after:"; /tmp/tpmm-tb $sz; done > $OUT/micro${RUN:-}.txt
  for sz in "4096 4096" "2048 1024" "512 4096"; do /tmp/tpmm-pb $sz; done >> $OUT/micro${RUN:-}.txt ;;
parts) # where sp_mlp's time goes, product by product
  PYTHONPATH=$B/python mpirun.mpich -n 2 /usr/bin/python3 $ROOT/bench/sp_mlp_parts.py > $OUT/sp_mlp_parts${RUN:-}.txt 2>&1 ;;
esac
echo "== $s end $(date +%T)" >> $OUT/log
done
