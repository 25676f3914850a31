#!/bin/bash
# Commands of bench/RESULTS.md §35 (AMD EPYC family 26, Zen 5, 2 vCPUs; MPICH 4.0.2, oneDNN 2.6.3):
#   A=dir B=dir OUT=dir bench/data/r31/commands.sh accpanels
#   OUT=dir bench/data/r31/commands.sh bound10|trace10   (root: simulated 10 Gbit)
# accpanels: gather_index 1's accumulating panel GEMMs alone (acc_panels.c) built against two trees' libtpmm.a,
# alternated, three rounds. §35's run: A = a build with oneDNN's sum post-op adding the panels (tried, not kept),
# B = 1a8393d (products into scratch, then an add: the tree's way).
set -eu
OUT=${OUT:-bench/data/r31}
export OMP_NUM_THREADS=1
case "${1:-}" in
accpanels)
  for t in A B; do
    gcc -O2 -I$PWD/src -I$PWD/include bench/data/r31/acc_panels.c ${!t}/build-mpich/libtpmm.a -o /tmp/acc-$t \
      -lmpich -ldnnl -lgomp -lm -lpthread
  done
  for r in 1 2 3; do
    for s in "256 4096 8" "1024 1024 4" "2048 2048 2" "64 4096 8" "1024 1024 8"; do
      for t in A B; do echo "$t $r: $(/tmp/acc-$t $s)"; done
    done
  done | tee -a $OUT/accpanels.txt ;;
bound10) # issue 14's 10 Gbit miss: the GEMM's slowdown under a plain TCP stream over the link beside the plan
  # (netcpu_pair.py), at reduce_scatter 1024 x 4096 x 1024 (input 2048 rows), four pairs
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 10gbit >/dev/null
  /usr/bin/python3 bench/netcpu_pair.py build-mpich --pairs 4 --m 1024 --k 4096 --n 1024 \
    --extra "--op matmul_reduce_scatter" --json $OUT/bound10.jsonl
  bench/netsim.sh down >/dev/null ;;
trace10) # where the ring's call goes at that point: traced plan executes (summarize_trace.py, medians per rank)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 10gbit >/dev/null
  rm -f /tmp/trace10.json
  bench/netsim.sh run -- env TPMM_TRACE=/tmp/trace10.json build-mpich/tools/tpmm-bench --op matmul_reduce_scatter \
    --m 1024 --k 4096 --n 1024 --plan --peak 0 --iters 8 --warmup 2 --algo ring --no-check --json | grep "^{"
  /usr/bin/python3 bench/data/r30/summarize_trace.py /tmp/trace10.json > $OUT/trace10.txt
  bench/netsim.sh down >/dev/null ;;
*) echo "usage: A=dir B=dir OUT=dir $0 accpanels | OUT=dir $0 bound10|trace10" >&2; exit 2 ;;
esac
