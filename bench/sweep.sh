#!/bin/bash
# sweep.sh — the benchmark sweep of issue 3, with tools/tpmm-bench.
#
#   bench/sweep.sh                 full sweep within one node (W = 2, 4); hours
#   QUICK=1 bench/sweep.sh         a handful of points, under two minutes
#   NETSIM=1 bench/sweep.sh        also simulated nodes at 1 and 10 Gbit (root)
#
# Sweep (issue 3): m per rank 1..2048 (powers of two), k = 4096,
# n in {1024, 4096, 11008}, bf16 and fp16; W = 2, 4 over shared memory and,
# with NETSIM=1, over simulated 1 Gbit and 10 Gbit links (bench/netsim.sh).
#
# Output: one JSON object per configuration, one file per network and W, in
# $OUT (default bench/out): shm-W2.jsonl, netsim-1gbit-W4.jsonl, ... (prefixed
# quick- in QUICK mode). Each line is tpmm-bench's --json line with "net"
# added. Then bench/plot_sweep.py draws $OUT/sweep.png (quick-sweep.png).
#
# The single-core peak is measured once at the start (1 rank, 512x4096x4096)
# and passed to every run with --peak, so that "% of peak" means the same
# thing in every file.
#
# Environment (defaults in brackets):
#   BUILD [build-mpich]  build directory holding tools/tpmm-bench
#   MPIEXEC [mpirun.mpich]  launcher for the shared-memory runs
#   MPIEXEC_PREFLAGS []  extra launcher flags (--oversubscribe for Open MPI)
#   OUT [bench/out]      output directory
#   W_LIST, M_LIST, N_LIST, K, DTYPES, ALGOS   override the sweep's axes
#                        (M_LIST and N_LIST comma-separated, the others space-separated)
#   ITERS, WARMUP        timed / untimed iterations per point
#   PLAN=1               pass --plan (needs the plan API in the library)
#   COMM_TURN [0]        comma-separated list for --comm-turn
#   NETSIM_RATES [1gbit 10gbit], NETSIM_MPI [mpich]   simulated-network runs
#   RUN_TIMEOUT [60 quick, 14400 full]  seconds per tpmm-bench process
#   NO_PLOT=1            do not call the plotter
#   OP [all_gather_matmul]  tpmm-bench --op; matmul_reduce_scatter / matmul_all_reduce
#                        prefix the files with the operator (plot_sweep.py reads
#                        all_gather_matmul's fields only: use NO_PLOT=1)
# `make bench` runs this with sh: re-run under bash (arrays, pipefail).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -eu -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-build-mpich}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BENCH="$BUILD/tools/tpmm-bench"
MPIEXEC=${MPIEXEC:-mpirun.mpich}
MPIEXEC_PREFLAGS=${MPIEXEC_PREFLAGS:-}
OUT=${OUT:-$ROOT/bench/out}
QUICK=${QUICK:-0}
NETSIM=${NETSIM:-0}
PY=/usr/bin/python3 # Debian's, which has matplotlib; the python3 on PATH may not
export OMP_NUM_THREADS=1
export TPMM_NUM_THREADS=${TPMM_NUM_THREADS:-1}

if [ "$QUICK" = 1 ]; then
  W_LIST=${W_LIST:-"2 4"}
  M_LIST=${M_LIST:-1,64,512}
  N_LIST=${N_LIST:-1024}
  DTYPES=${DTYPES:-"bf16 fp16"}
  ITERS=${ITERS:-3}
  WARMUP=${WARMUP:-1}
  NETSIM_RATES=${NETSIM_RATES:-1gbit}
  RUN_TIMEOUT=${RUN_TIMEOUT:-60}
  tag=quick-
else
  W_LIST=${W_LIST:-"2 4"}
  M_LIST=${M_LIST:-1,2,4,8,16,32,64,128,256,512,1024,2048}
  N_LIST=${N_LIST:-1024,4096,11008}
  DTYPES=${DTYPES:-"bf16 fp16"}
  ITERS=${ITERS:-5}
  WARMUP=${WARMUP:-1}
  NETSIM_RATES=${NETSIM_RATES:-"1gbit 10gbit"}
  RUN_TIMEOUT=${RUN_TIMEOUT:-14400}
  tag=
fi
K=${K:-4096}
OP=${OP:-all_gather_matmul}
[ "$OP" = all_gather_matmul ] || tag="$tag$OP-"
ALGOS=${ALGOS:-auto}
COMM_TURN=${COMM_TURN:-0}
PLAN_FLAG=
[ "${PLAN:-0}" = 1 ] && PLAN_FLAG=--plan

die() { echo "sweep: error: $*" >&2; exit 1; }
say() { echo "sweep: $*" >&2; }

[ -x "$BENCH" ] || die "$BENCH not found: build first (make build BUILD=$(basename "$BUILD"))"
command -v "$MPIEXEC" >/dev/null 2>&1 || die "launcher $MPIEXEC not found"
mkdir -p "$OUT"
start=$(date +%s)

# Peaks, once: tpmm-bench prints them on stderr when --peak is not given.
peaks=$(timeout -k 10 300 "$MPIEXEC" $MPIEXEC_PREFLAGS -n 1 "$BENCH" --m 1 --k 64 --n 64 --dtype bf16,fp32 --iters 1 --warmup 0 \
          --no-check 2>&1 >/dev/null | sed -n 's/.*peak \([a-z0-9]*\) .*: \([0-9.]*\) GFLOP\/s.*/\1=\2/p')
PEAK_bf16=$(echo "$peaks" | sed -n 's/^bf16=//p')
PEAK_fp32=$(echo "$peaks" | sed -n 's/^fp32=//p')
[ -n "$PEAK_bf16" ] && [ -n "$PEAK_fp32" ] || die "could not measure the peak (got: $peaks)"
say "peak (1 rank, 1 thread, 512x4096x4096): bf16 $PEAK_bf16 GFLOP/s, fp32 $PEAK_fp32 GFLOP/s (fp16 uses fp32's)"
peak_for() { if [ "$1" = bf16 ]; then echo "$PEAK_bf16"; else echo "$PEAK_fp32"; fi; }

# Run one tpmm-bench process per dtype and algorithm; tag every line with the network.
#   bench_into FILE NET LAUNCHER...   (LAUNCHER... ends where tpmm-bench's path goes)
# Every run is under `timeout RUN_TIMEOUT`: MPICH 4.0.2 over UCX tcp (the
# simulated network) sometimes hangs in MPI_Finalize, even in a plain
# Allgather program. A run that printed all its lines before being killed
# counts as a success (tpmm-bench flushes each line as it is measured).
list_len() { echo "$1" | tr ',' '\n' | grep -c .; }
bench_into() {
  local file=$1 net=$2
  shift 2
  local dt algo rc=0 st before got want
  want=$(($(list_len "$M_LIST") * $(list_len "$N_LIST") * $(list_len "$COMM_TURN")))
  for dt in $DTYPES; do
    for algo in $ALGOS; do
      before=$(wc -l <"$file")
      st=0
      timeout -k 10 "$RUN_TIMEOUT" "$@" "$BENCH" --op "$OP" --m "$M_LIST" --k "$K" --n "$N_LIST" --dtype "$dt" --algo "$algo" \
        --comm-turn "$COMM_TURN" --iters "$ITERS" --warmup "$WARMUP" --peak "$(peak_for "$dt")" $PLAN_FLAG --json |
        sed -u "s/^{/{\"net\":\"$net\",/" >>"$file" || st=$?
      got=$(($(wc -l <"$file") - before))
      if [ "$st" = 124 ] && [ "$got" -ge "$want" ]; then
        say "warning: $dt $algo ($net) printed all $got results, then hung and was killed after ${RUN_TIMEOUT}s (MPI_Finalize?)"
      elif [ "$st" != 0 ]; then
        say "$dt $algo ($net): exit status $st, $got of $want results"
        rc=1
      fi
    done
  done
  return $rc
}

failed=0
files=()
for W in $W_LIST; do
  file="$OUT/${tag}shm-W$W.jsonl"
  : >"$file"
  files+=("$file")
  say "shared memory, W=$W -> $file"
  bench_into "$file" shm "$MPIEXEC" $MPIEXEC_PREFLAGS -n "$W" || { failed=1; say "some runs failed (W=$W)"; }
done

if [ "$NETSIM" = 1 ]; then
  NETSIM_SH="$HERE/netsim.sh"
  [ -x "$NETSIM_SH" ] || die "$NETSIM_SH not found"
  # our own namespace set, so a concurrent user of netsim.sh is not disturbed
  export NETSIM_PREFIX=${NETSIM_PREFIX:-sw}
  trap '"$NETSIM_SH" down >/dev/null 2>&1 || true' EXIT
  for rate in $NETSIM_RATES; do
    for W in $W_LIST; do
      file="$OUT/${tag}netsim-$rate-W$W.jsonl"
      : >"$file"
      files+=("$file")
      say "simulated nodes, $rate, W=$W -> $file"
      "$NETSIM_SH" up "$W" "$rate" >/dev/null
      bench_into "$file" "$rate" "$NETSIM_SH" run --mpi "${NETSIM_MPI:-mpich}" -- || {
        failed=1
        say "some runs failed ($rate, W=$W)"
      }
      "$NETSIM_SH" down >/dev/null
    done
  done
fi

say "done in $(($(date +%s) - start)) s; results in ${files[*]}"
if [ "${NO_PLOT:-0}" != 1 ]; then
  "$PY" "$HERE/plot_sweep.py" -o "$OUT/${tag}sweep.png" "${files[@]}" || { failed=1; say "plot failed"; }
fi
exit $failed
