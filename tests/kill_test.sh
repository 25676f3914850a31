#!/bin/bash
# kill_test.sh — a rank killed mid-call (issue 4): the job must end within
# seconds and leave nothing behind in /dev/shm (nor SysV shared memory).
#
#   tests/kill_test.sh BUILD_DIR [ALGO ...]     (default: shm_pull ring unfused)
#
# BUILD_DIR is a configured and built tree (make build BUILD=...); the MPI
# launcher and its flags come from its CMakeCache.txt, so the same script
# covers MPICH and Open MPI builds. For each algorithm, tests/kill_victim runs
# on 3 ranks, sets up shm_pull's shared windows and a tpmm_alloc_shared
# buffer, then rank 1 raise(SIGKILL)s itself while ranks 0 and 2 are inside
# tpmm_all_gather_matmul with no TPMM_TIMEOUT_MS. Checks:
#   - the launcher ends the job in under LIMIT seconds (default 10; a 'timeout'
#     at LIMIT+5 s stops a hang) with a non-zero exit status;
#   - no kill_victim process of this build is left;
#   - /dev/shm and the SysV shared-memory segments (ipcs -m) are the same as
#     before the run (polled for up to 3 s: launchers clean up asynchronously).
# The shared-memory files that existed mid-run are listed, to show the check
# is not vacuous (MPICH unlinks its files right after mapping them; Open MPI
# keeps vader_segment.* and osc_sm.* there while the job runs).
# Ends with "kill_test: N passed, N failed"; exit status 1 on any failure.
set -u
BUILD=${1:?usage: tests/kill_test.sh BUILD_DIR [ALGO ...]}
shift
ALGOS=${*:-shm_pull ring unfused}
LIMIT=${LIMIT:-10}
VICTIM=$(cd "$BUILD" && pwd)/tests/kill_victim
[ -x "$VICTIM" ] || { echo "kill_test: $VICTIM not built (make build BUILD=$BUILD)"; exit 1; }
cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
MPIEXEC=$(cache MPIEXEC_EXECUTABLE)
PREFLAGS=$(cache MPIEXEC_PREFLAGS)
case "$MPIEXEC" in
  *openmpi*) export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ;;
esac
export OMP_NUM_THREADS=1
unset TPMM_TIMEOUT_MS TPMM_ALGO

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "kill_test: FAIL: $*"; }
shm_state() { ls -A /dev/shm | sort; ipcs -m 2>/dev/null | awk '$1 ~ /^0x/ {print "sysv " $2}' | sort; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "kill_test: $MPIEXEC $PREFLAGS, algorithms: $ALGOS"
for algo in $ALGOS; do
  before=$(shm_state)
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  timeout -k 2 $((LIMIT + 5)) "$MPIEXEC" -n 3 $PREFLAGS "$VICTIM" --kill "$algo" >"$log" 2>&1 &
  job=$!
  # mid-run listing, once the ranks are about to enter the call
  for _ in $(seq 50); do grep -q "rank 1 dies" "$log" && break; sleep 0.1; done
  during=$(ls -A /dev/shm | tr '\n' ' ')
  wait $job
  rc=$?
  secs=$(echo "$(date +%s.%N) - $t0" | bc)
  echo "kill_test: [$algo] exit status $rc after ${secs} s; /dev/shm during the run: ${during:-<empty>}"
  grep -q "rank 1 dies while the others are in $algo" "$log" && ok || bad "[$algo] the victim did not reach the kill: $(tail -3 "$log")"
  [ "$rc" -ne 0 ] && ok || bad "[$algo] exit status 0 although a rank was killed"
  if [ "$rc" -eq 124 ] || [ "$(echo "$secs >= $LIMIT" | bc)" = 1 ]; then
    bad "[$algo] the job took ${secs} s (limit $LIMIT s): it hung"
  else
    ok
  fi
  grep -q "the call returned" "$log" && bad "[$algo] a surviving rank returned from the call: $(grep "the call returned" "$log")" || ok
  left=""
  for _ in $(seq 30); do
    left=$(comm -13 <(echo "$before") <(shm_state))
    [ -z "$left" ] && break
    sleep 0.1
  done
  [ -z "$left" ] && ok || bad "[$algo] left behind in shared memory: $(echo "$left" | tr '\n' ' ')"
  pgrep -f "^$VICTIM" >/dev/null && bad "[$algo] kill_victim processes still running: $(pgrep -f "^$VICTIM" | tr '\n' ' ')" || ok
done
echo "kill_test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
