#!/bin/bash
# The runs of bench/RESULTS.md §17, one section each:
#   OUT=dir bench/data/r15/commands.sh ab micro predict links tiles scan plan torch   (predict, links, tiles: root)
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
links) # simulated 1 Gbit, W = 2: the issue targets the row-count padding moves, BEFORE and this tree alternated
  # (a run may hang in MPI_Finalize after printing, MPICH over UCX tcp: timeout ends it, docs/NETSIM.md)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  R="timeout -k 5 60 bench/netsim.sh run --"
  for i in 1 2 3; do for v in before after; do
    BB=${BEFORE:-/tmp/ab15/build-mpich}; [ $v = after ] && BB=$B; F=$OUT/links-$v${RUN:-}
    for op in matmul_reduce_scatter matmul_all_reduce; do
      $R $BB/tools/tpmm-bench --op $op --m 1024 --k 1536 --n 1024 --dtype bf16 --algo auto,ring --plan --iters 15 \
        --warmup 2 --peak 0 --json >> $F-target.jsonl 2>>$OUT/net.log
    done
    for mode in --plan ""; do
      $R $BB/tools/tpmm-bench --m 512 --k 4096 --n 1536 --dtype bf16 --algo auto $mode --iters 20 --warmup 20 \
        --peak 0 --json >> $F-agbal.jsonl 2>>$OUT/net.log
    done
    $R $BB/tools/tpmm-bench --gather-index 1 --m 512,1024 --k 2048 --n 1024 --iters 10 --warmup 2 --algo auto,ring \
      --plan --peak 0 --json >> $F-x2g.jsonl 2>>$OUT/net.log
  done; done
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
tiles) # the rare slow runs of the 1 Gbit reduce_scatter target, traced: 14 runs of ring/8 with TPMM_TRACE
  # (tiles-before.txt: BUILD=the tree before the row-count padding; tiles-after.txt: this tree)
  cd $ROOT; bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/net.log 2>&1
  T=$(mktemp -d)
  for i in $(seq 1 14); do
    TPMM_TRACE=$T/run$i.json timeout -k 5 90 bench/netsim.sh run -- $B/tools/tpmm-bench --op matmul_reduce_scatter \
      --m 1024 --k 1536 --n 1024 --dtype bf16 --algo ring --comm-turn 8 --plan --iters 15 --warmup 2 --peak 0 --json \
      > $T/run$i.jsonl 2>>$OUT/net.log
    echo "run $i rc=$? $(python3 -c "import json;r=json.loads(open('$T/run$i.jsonl').readline());print(r['t_seq_ms'],r['t_fused_ms'])")"
  done > $OUT/tiles${RUN:-}.txt
  for i in $(seq 1 14); do python3 -c "
import json, statistics, sys
from collections import defaultdict
ev = json.load(open(sys.argv[1])); ev = ev['traceEvents'] if isinstance(ev, dict) else ev
d = defaultdict(list)
for e in ev:
    if e.get('name') == 'gemm': d[e['args']['b']].append(e['dur'] / 1000)
print(sys.argv[2], ' '.join('%d:%d/%.1fms' % (k, len(v), statistics.median(v)) for k, v in sorted(d.items(), key=lambda x: -len(x[1]))[:4]))
" $T/run$i.json run$i; done >> $OUT/tiles${RUN:-}.txt
  bench/netsim.sh down >> $OUT/net.log 2>&1 ;;
scan) # one rank's GEMM (fp32 result, as the reduce rings run it) at every M = 1..256, four (k, n), x2 packed
  gcc -O2 -I$ROOT/include -I$ROOT $ROOT/bench/data/r15/gemm_rows_scan.c $B/libtpmm.a -o /tmp/tpmm-scan -lmpich -ldnnl \
    -lgomp -lm -lpthread
  for kn in "1536 1024" "1024 4096" "4096 4096" "4096 1024"; do
    mpirun.mpich -n 1 /tmp/tpmm-scan $kn 1 256 1 > $OUT/scan${RUN:-}-${kn/ /x}.txt
  done ;;
plan) # one rank: plans against torch.matmul, two runs
  for i in 1 2; do PYTHONPATH=$B/python mpirun.mpich -n 1 /usr/bin/python3 $ROOT/bench/data/r15/plan_vs_torch.py; done \
    > $OUT/plan_vs_torch${RUN:-}.txt 2>&1 ;;
torch) # issue 13 from Python: torch_compare, decode and prefill, both orders
  for o in tpmm torch; do
    PYTHONPATH=$B/python mpirun.mpich -n 2 /usr/bin/python3 $ROOT/bench/torch_compare.py \
      --decode 1x4096x4096,8x4096x11008,4x4096x5504 --order $o --json $OUT/torch-$o${RUN:-}.jsonl \
      > $OUT/torch-$o${RUN:-}.txt 2>&1
  done ;;
esac
echo "== $s end $(date +%T)" >> $OUT/log
done
