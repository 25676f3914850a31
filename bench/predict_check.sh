#!/bin/bash
# predict_check.sh — the cost model against measurements: tpmm-bench --predict
# at a few points per setting, over shared memory (W = 2, 4) and simulated
# 1 / 10 Gbit links (W = 2, 4; root, bench/netsim.sh).
#
#   bench/predict_check.sh                      # everything, into $OUT
#   SETTINGS="shm-2 1gbit-2" bench/predict_check.sh
#
# Every point runs a plan of the fused schedule the model would weigh
# (shm_pull within a node, ring across 2 nodes, bidir_ring across 4), so
# that T_fused is that schedule's time and T_seq (MPI_Allgather + GEMM) is
# measured beside it in the same run; --predict adds the model's T_seq and
# T_fused for the same plan. bench/summarize_predict.py makes the table.
#
# Environment: BUILD [build-mpich], OUT [bench/out/predict], M_LIST [16,128,512],
# N_LIST [1024,4096], K [4096], DTYPE [bf16], ITERS [5], WARMUP [1],
# SETTINGS [shm-2 shm-4 1gbit-2 1gbit-4 10gbit-2 10gbit-4], RUN_TIMEOUT [1200].
set -eu -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-build-mpich}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
OUT=${OUT:-$ROOT/bench/out/predict}
M_LIST=${M_LIST:-16,128,512}
N_LIST=${N_LIST:-1024,4096}
K=${K:-4096}
DTYPE=${DTYPE:-bf16}
ITERS=${ITERS:-5}
WARMUP=${WARMUP:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-1200}
SETTINGS=${SETTINGS:-"shm-2 shm-4 1gbit-2 1gbit-4 10gbit-2 10gbit-4"}
export OMP_NUM_THREADS=1 TPMM_NUM_THREADS=${TPMM_NUM_THREADS:-1}
export NETSIM_PREFIX=${NETSIM_PREFIX:-pc-}
mkdir -p "$OUT"
trap '"$HERE/netsim.sh" down >/dev/null 2>&1 || true' EXIT

for s in $SETTINGS; do
  net=${s%-*} W=${s#*-}
  if [ "$net" = shm ]; then algo=shm_pull; elif [ "$W" = 2 ]; then algo=ring; else algo=bidir_ring; fi
  file="$OUT/$net-W$W.jsonl"
  echo "predict_check: $net W=$W ($algo) -> $file, load $(cut -d' ' -f1 /proc/loadavg)" >&2
  args=(--m "$M_LIST" --k "$K" --n "$N_LIST" --dtype "$DTYPE" --algo "$algo" --plan --predict --json
    --iters "$ITERS" --warmup "$WARMUP" --peak 0 --no-check)
  if [ "$net" = shm ]; then
    timeout -k 10 "$RUN_TIMEOUT" mpirun.mpich -n "$W" "$BUILD/tools/tpmm-bench" "${args[@]}" |
      sed -u "s/^{/{\"net\":\"shm\",/" >"$file" || echo "predict_check: $s: exit $?" >&2
  else
    "$HERE/netsim.sh" up "$W" "$net" >/dev/null
    # MPICH over UCX tcp may hang in MPI_Finalize after printing everything (docs/NETSIM.md)
    timeout -k 10 "$RUN_TIMEOUT" "$HERE/netsim.sh" run -- "$BUILD/tools/tpmm-bench" "${args[@]}" |
      sed -u "s/^{/{\"net\":\"$net\",/" >"$file" || echo "predict_check: $s: exit $?" >&2
    "$HERE/netsim.sh" down >/dev/null
  fi
done
