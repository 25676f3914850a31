#!/bin/bash
# Commands of bench/RESULTS.md §35 (AMD EPYC family 26, Zen 5, 2 vCPUs; MPICH 4.0.2, oneDNN 2.6.3):
#   A=dir B=dir OUT=dir bench/data/r31/commands.sh accpanels
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
*) echo "usage: A=dir B=dir OUT=dir $0 accpanels" >&2; exit 2 ;;
esac
