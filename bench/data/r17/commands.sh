#!/bin/bash
# The runs of bench/RESULTS.md §19, one section each:
#   OUT=dir bench/data/r17/commands.sh micro torch decode prefill
# BEFORE: a build of the commit before the change measured (default /tmp/ab19/build-mpich);
# BUILD: this tree's MPICH build (default build-mpich). RUN=suffix names a run's files.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; BB=${BEFORE:-/tmp/ab19/build-mpich}
OUT=${OUT:-/tmp/tpmm-r17}; mkdir -p $OUT
export OMP_NUM_THREADS=1
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg) steal $(awk '/^cpu /{print $9}' /proc/stat)" >> $OUT/log
case $s in
micro) # the GEMM layer alone, one rank (gemm_bench.c), BEFORE's library and this tree's alternated, three rounds
  for v in before after; do L=$B; [ $v = before ] && L=$BB
    gcc -O2 -I$L/../include -I$L/.. -o /tmp/tpmm-gb-$v $ROOT/bench/data/r17/gemm_bench.c $L/libtpmm.a \
      -lmpich -ldnnl -fopenmp -lm -lpthread; done
  for i in 1 2 3; do for shape in "4096 4096" "4096 11008"; do for t in 0 1; do for mode in oneshot plan; do
    for off in 0 16; do [ $off = 16 ] && [ "$shape" != "4096 4096" ] && continue
      for v in before after; do echo "== $v round $i"; /tmp/tpmm-gb-$v $shape $t $mode $off 9 1,2,4,8,16,32,64; done
  done; done; done; done; done > $OUT/micro${RUN:-}.txt 2>&1 ;;
torch) # W = 2 from Python against torch gloo + torch.matmul: x2 (k, n) and transposed, both orders, BEFORE and after
  for tx in "" --trans-x2; do for order in tpmm torch; do for v in before after; do
    P=$BB/python; [ $v = after ] && P=$B/python
    echo "== $v order $order ${tx:-(k, n)}"
    PYTHONPATH=$P timeout 900 mpirun.mpich -n 2 /usr/bin/python3 $ROOT/bench/torch_compare.py $tx \
      --decode 1x4096x4096,4x4096x5504,8x4096x11008,16x4096x4096 --prefill "" --order $order \
      --json $OUT/torch-$v-$order${tx:+-trans}${RUN:-}.jsonl 2>&1
  done; done; done > $OUT/torch${RUN:-}.txt ;;
decode) # from C against MPI_Allgather + a pre-created oneDNN primitive (tools/decode_bench), BEFORE and after
  for o in tpmm hand; do for v in before after; do
    D=$BB; [ $v = after ] && D=$B
    echo "== $v order $o"
    timeout 900 mpirun.mpich -n 2 $D/tools/decode_bench --order $o --rounds 4 --iters 100 \
      --shapes 1x4096x4096,4x4096x4096,16x4096x4096,1x2048x8192,4x2048x8192,16x2048x8192 2>&1
  done; done > $OUT/decode${RUN:-}.txt ;;
prefill) # W = 2 from Python, prefill through a plan against torch gloo + torch.matmul, this tree only, both orders
  for order in tpmm torch; do
    PYTHONPATH=$B/python timeout 900 mpirun.mpich -n 2 /usr/bin/python3 $ROOT/bench/torch_compare.py \
      --decode "" --prefill 128x4096x4096,512x4096x4096 --order $order --json $OUT/prefill-$order${RUN:-}.jsonl 2>&1
  done > $OUT/prefill${RUN:-}.txt ;;
*) echo "unknown section $s" >&2; exit 2 ;;
esac
done
