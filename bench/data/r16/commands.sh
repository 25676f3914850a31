#!/bin/bash
# The runs of bench/RESULTS.md §18, one section each:
#   OUT=dir bench/data/r16/commands.sh ab torch micro
# BEFORE: a build of the commit before the change measured (default /tmp/ab16/build-mpich);
# BUILD: this tree's MPICH build (default build-mpich). RUN=suffix names a run's files.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r16}; mkdir -p $OUT
export OMP_NUM_THREADS=1
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg) steal $(awk '/^cpu /{print $9}' /proc/stat)" >> $OUT/log
case $s in
ab) # one rank, x2 transposed: one-shot and plan against torch.matmul(a, w.t()), BEFORE and this tree alternated
  for i in 1 2 3; do for v in before after; do
    P=${BEFORE:-/tmp/ab16/build-mpich}/python; [ $v = after ] && P=$B/python
    echo "== $v round $i"
    PYTHONPATH=$P timeout 300 mpirun.mpich -n 1 /usr/bin/python3 $ROOT/bench/data/r16/trans_decode_vs_torch.py 2>&1
  done; done > $OUT/ab-dot${RUN:-}.txt ;;
torch) # W = 2 from Python, x2 transposed (torch's Linear layout), both orders, BEFORE and this tree alternated
  for order in tpmm torch; do for v in before after; do
    P=${BEFORE:-/tmp/ab16/build-mpich}/python; [ $v = after ] && P=$B/python
    echo "== $v order $order"
    PYTHONPATH=$P timeout 900 mpirun.mpich -n 2 /usr/bin/python3 $ROOT/bench/torch_compare.py --trans-x2 \
      --decode 1x4096x4096,2x4096x4096,4x4096x5504,8x4096x11008 --prefill "" --order $order \
      --json $OUT/torch-$v-$order${RUN:-}.jsonl 2>&1
  done; done > $OUT/torch-trans${RUN:-}.txt ;;
micro) # the GEMM layer alone, one rank (dot_bench.c), BEFORE's library and this tree's, alternated; vdpbf16ps's rate
  BB=${BEFORE:-/tmp/ab16/build-mpich}  # its sources one level up: their gemm.h
  gcc -O2 -I$BB/../include -I$BB/.. -DNO_CALL_ROWS -o /tmp/tpmm-db-before $ROOT/bench/data/r16/dot_bench.c \
    $BB/libtpmm.a -lmpich -ldnnl -fopenmp -lm -lpthread
  gcc -O2 -I$ROOT/include -I$ROOT -o /tmp/tpmm-db-after $ROOT/bench/data/r16/dot_bench.c $B/libtpmm.a \
    -lmpich -ldnnl -fopenmp -lm -lpthread
  gcc -O2 -o /tmp/tpmm-dpbf16 $ROOT/bench/data/r16/dpbf16_peak.c
  for i in 1 2; do for v in before after; do for mode in oneshot plan; do
    echo "== $v round $i $mode"; /tmp/tpmm-db-$v 4096 4096 1 $mode; done; done; /tmp/tpmm-dpbf16; done \
    > $OUT/micro${RUN:-}.txt 2>&1 ;;
*) echo "unknown section $s" >&2; exit 2 ;;
esac
done
