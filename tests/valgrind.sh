#!/bin/bash
# valgrind.sh — memcheck over a 2-rank run of the seed example (issue 4
# "Tools in CI"): no definite leaks, no invalid reads or writes.
#
#   tests/valgrind.sh [BUILD_DIR]      (default build-mpich; an Open MPI build works too)
#
# Runs  mpirun -n 2 valgrind --leak-check=full --errors-for-leak-kinds=definite
#       --error-exitcode=42 --smc-check=all-non-file BUILD_DIR/seed_example
# with the oneDNN backend (the default): its JIT code runs under valgrind
# (--smc-check covers generated code; valgrind hides AVX-512, so oneDNN picks
# its AVX2 kernels). tests/valgrind.supp suppresses two MPI-internal reports
# only: MPICH's msync() probe of pages in MPI_Win_allocate_shared, and one
# block hwloc leaks while MPI_Init loads the topology. Every other error or
# definite leak fails, whichever library it is in. Each rank's log is kept in
# a temporary directory and printed on failure. Ends with
# "valgrind: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build-mpich}
cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
MPIEXEC=$(cache MPIEXEC_EXECUTABLE)
PREFLAGS=$(cache MPIEXEC_PREFLAGS)
case "$MPIEXEC" in *openmpi*) export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ;; esac
export OMP_NUM_THREADS=1
[ -x "$BUILD/seed_example" ] || { echo "valgrind: $BUILD/seed_example not built"; exit 1; }
logs=$(mktemp -d)
t0=$SECONDS
# shellcheck disable=SC2086
timeout 900 "$MPIEXEC" -n 2 $PREFLAGS valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
  --errors-for-leak-kinds=definite --error-exitcode=42 --smc-check=all-non-file --num-callers=30 \
  --suppressions="$PWD/tests/valgrind.supp" --log-file="$logs/vg.%p.log" "$BUILD/seed_example" >"$logs/out" 2>&1
rc=$?
pass=0 fail=0
[ $rc -eq 0 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "valgrind: FAIL exit status $rc"; tail -5 "$logs/out"; }
grep -q "gather_out bit-exact on all ranks: yes" "$logs/out" && pass=$((pass + 1)) ||
  { fail=$((fail + 1)); echo "valgrind: FAIL the example's own check"; tail -5 "$logs/out"; }
for f in "$logs"/vg.*.log; do
  errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f")
  lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f")
  supp=$(sed -n 's/.*(suppressed: \([0-9]*\) from.*/\1/p' "$f")
  if [ "${errs:-x}" = 0 ] && [ "${lost:-0}" = 0 ]; then
    pass=$((pass + 1))
    echo "valgrind: ok   $(basename "$f"): 0 errors, definitely lost ${lost:-0} bytes ($supp suppressed)"
  else
    fail=$((fail + 1))
    echo "valgrind: FAIL $(basename "$f"): ${errs:-?} errors, definitely lost ${lost:-?} bytes"
    grep -E -A20 "Invalid|uninitialised|definitely lost in|Syscall param|Mismatched" "$f" | head -80
  fi
done
echo "valgrind: seed_example under memcheck took $((SECONDS - t0)) s"
rm -rf "$logs"
echo "valgrind: $pass passed, $fail failed"
[ $fail -eq 0 ]
