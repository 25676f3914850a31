#!/bin/bash
# The runs of bench/RESULTS.md §17, one section each:
#   OUT=dir bench/data/r15/commands.sh ab micro predict   (predict: root, for the simulated links)
# BEFORE: a build of the commit before the change measured (default /tmp/ab15/build-mpich);
# BUILD: this tree's MPICH build (default build-mpich). RUN=suffix names a run's files.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd); B=${BUILD:-$ROOT/build-mpich}; OUT=${OUT:-/tmp/tpmm-r15}; mkdir -p $OUT
export OMP_NUM_THREADS=1
for s in "$@"; do
echo "== $s start $(date +%T) load $(cut -d' ' -f1 /proc/loadavg) steal $(awk '/^cpu /{print $9}' /proc/stat)" >> $OUT/log
case $s in
ab) # packing a transposed x2 straight from its strides, side by side with BEFORE, alternated
  for i in 1 2 3; do for v in before after; do
    P=${BEFORE:-/tmp/ab15/build-mpich}/python; [ $v = after ] && P=$B/python
    echo "== $v round $i: trans_vs_torch"
    PYTHONPATH=$P mpirun.mpich -n 1 /usr/bin/python3 $ROOT/bench/data/r15/trans_vs_torch.py 2>&1
    echo "== $v round $i: sp_mlp --reps 21"
    PYTHONPATH=$P mpirun.mpich -n 2 /usr/bin/python3 $ROOT/examples/sp_mlp.py --reps 21 2>&1 | grep -E "torch / tpmm|per rep"
  done; done > $OUT/ab-packdirect${RUN:-}.txt ;;
micro) # the packer alone: copy + pack against packing straight from the transpose (this tree's sources)
  gcc -O2 -o /tmp/tpmm-ptb $ROOT/bench/data/r15/pack_trans_bench.c $ROOT/src/gemm/gemm_dnnl_pack.c \
    $ROOT/src/common/copy.c $ROOT/src/common/half.c -I$ROOT/src/common -I$ROOT/include -I$ROOT -ldnnl -lm
  for i in 1 2 3; do for sh in "4096 4096" "1024 4096" "4096 1024"; do /tmp/tpmm-ptb $sh; done; done > $OUT/micro${RUN:-}.txt ;;
predict) # the cost model against measurements, the commit before (BEFORE) and this tree, settings alternated
  for set in shm-2 1gbit-2 shm-4 10gbit-2; do for v in before after; do
    BB=${BEFORE:-/tmp/ab15/build-mpich}; [ $v = after ] && BB=$B
    BUILD=$BB OUT=$OUT/predict-$v${RUN:-} SETTINGS=$set $ROOT/bench/predict_check.sh
  done; done
  for v in before after; do python3 $ROOT/bench/summarize_predict.py $OUT/predict-$v${RUN:-}/*.jsonl > $OUT/predict-$v${RUN:-}.txt; done ;;
esac
echo "== $s end $(date +%T)" >> $OUT/log
done
