#!/bin/bash
# sanitize.sh — AddressSanitizer + UndefinedBehaviorSanitizer over the 2-rank
# suite (issue 4 "Tools in CI").
#
#   tests/sanitize.sh [BUILD_DIR]        (default build-asan; MPI=openmpi for Open MPI)
#
# Configures BUILD_DIR with -DTPMM_SANITIZE=ON (gcc, -fsanitize=address,undefined,
# -fno-sanitize-recover=undefined: any UB report aborts the rank), builds the
# tests and runs, each on 2 ranks under mpirun:
#   test_agmm --quick, test_errors, test_numerics, seed_example, test_ws_stash
#   (one-shot calls' borrowed workspaces), and on one rank test_copy,
#   test_pack and test_gemm --quick (the transposing copy, the x2 packer, the
#   GEMM's panels and padded row counts) (and the timeout workspace
#   regression and test_faults on 3 ranks)
# with ASAN_OPTIONS=detect_leaks=1. LeakSanitizer also sees leaks inside MPI,
# UCX, hwloc and oneDNN (their one-time allocations at init that are never
# freed); tests/lsan.supp suppresses those libraries only, so a leak whose
# allocation stack is in libtpmm or the tests is still an error. Stacks are
# unwound slowly (fast_unwind_on_malloc=0): hwloc dlcloses its plugins, and
# the fast unwinder then loses the frames that name the library.
# ASan's exit code is 23, so a report fails the run even if the test's own
# tally is clean. Ends with "sanitize: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build-asan}
MPI=${MPI:-mpich}
if [ "$MPI" = openmpi ]; then
  MPICC=mpicc.openmpi MPIEXEC=/usr/bin/mpirun.openmpi PREFLAGS=--oversubscribe
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
else
  MPICC=mpicc.mpich MPIEXEC=/usr/bin/mpirun.mpich PREFLAGS=
fi
export OMP_NUM_THREADS=1
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc -DMPI_C_COMPILER=$MPICC \
    -DMPIEXEC_EXECUTABLE=$MPIEXEC "-DMPIEXEC_PREFLAGS=$PREFLAGS" -DTPMM_SANITIZE=ON -DTPMM_BUILD_PYTHON=OFF \
    >"$BUILD.configure.log" 2>&1 || { cat "$BUILD.configure.log"; exit 1; }
  rm -f "$BUILD.configure.log"
fi
cmake --build "$BUILD" -j 2 --target test_agmm test_errors test_numerics test_timeout test_faults test_ws_stash test_copy test_pack test_gemm seed_example >/dev/null ||
  { cmake --build "$BUILD" -j 1 --target test_agmm test_errors test_numerics test_timeout test_faults test_ws_stash test_copy test_pack test_gemm seed_example; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:exitcode=23:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
pass=0 fail=0
run() {
  local name=$1
  shift
  local log
  log=$(mktemp)
  local t0=$SECONDS
  # shellcheck disable=SC2086
  timeout 900 "$MPIEXEC" -n "${NP:-2}" $PREFLAGS "$@" >"$log" 2>&1
  local rc=$?
  local reports
  reports=$(grep -cE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log")
  if [ $rc -eq 0 ] && [ "$reports" -eq 0 ]; then
    pass=$((pass + 1))
    echo "sanitize: ok   $name ($((SECONDS - t0)) s): $(grep -E "passed, .* failed" "$log" | tail -1)"
  else
    fail=$((fail + 1))
    echo "sanitize: FAIL $name (exit $rc, $reports sanitizer reports):"
    grep -E -A30 "ERROR: (Address|Leak)Sanitizer|runtime error:|FAIL" "$log" | head -80
  fi
  rm -f "$log"
}
run "test_agmm --quick" "$BUILD/tests/test_agmm" --quick
run "test_errors" "$BUILD/tests/test_errors"
run "test_numerics" "$BUILD/tests/test_numerics"
run "seed_example" "$BUILD/seed_example"
run "test_ws_stash" "$BUILD/tests/test_ws_stash"
NP=1 run "test_copy" "$BUILD/tests/test_copy"
NP=1 run "test_pack" "$BUILD/tests/test_pack"
NP=1 run "test_gemm --quick" "$BUILD/tests/test_gemm" --quick
# regression: the unfused workspace must outlive an abandoned MPI_Iallgather
NP=3 run "test_timeout --known-bug-gbuf (3 ranks)" "$BUILD/tests/test_timeout" --known-bug-gbuf
# the error paths of fault injection (drained rings, cancelled requests)
NP=3 run "test_faults (3 ranks)" "$BUILD/tests/test_faults"
echo "sanitize: $pass passed, $fail failed"
[ $fail -eq 0 ]
