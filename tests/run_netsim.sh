#!/bin/bash
# run_netsim.sh — tpmm over simulated nodes (bench/netsim.sh): proves the
# cross-node paths work when ranks sit on different "hosts" joined by 1 Gbit
# links, not only over shared memory.
#
#   tests/run_netsim.sh BUILD_DIR [BUILD_DIR2]
#
# Each BUILD_DIR is a tpmm build for one MPI (found from its CMakeCache); give
# an MPICH build and an Open MPI build to test both, e.g.
#   make build BUILD=build-mpich && make build MPI=openmpi BUILD=build-openmpi
#   tests/run_netsim.sh build-mpich build-openmpi
# Every MPI in NETSIM_MPIS (default "mpich openmpi") needs a build; set
# NETSIM_MPIS=mpich to test one MPI on purpose.
#
# Steps, for 2 and then 4 hosts at 1gbit:
#   - test_agmm (BUILD_DIR/NETSIM_TEST NETSIM_TEST_ARGS; defaults tests/test_agmm
#     --quick --algos ring,bidir_ring,auto; unfused always runs)
#     tests/test_topology, tests/test_faults and tests/test_agmm_x2 --quick
#     (gather_index 1) with each MPI, one rank per host; on 2 hosts also
#     test_agmm, test_topology and test_faults with two ranks per host
#     (hier), Open MPI;
#   - the reduce operators: tests/test_reduce (--quick --every 3 --algos
#     ring,auto) and tests/test_reduce_faults --quick with each MPI, one rank
#     per host; on 2 hosts also test_reduce (with hier), test_reduce_faults
#     and test_reduce_errors with two ranks per host, Open MPI;
#   - netsim_probe (tests/netsim_probe.c, built here with mpicc.<mpi>) with each
#     MPI: MPI_Allgather of 16 MiB/rank must arrive intact, h0's eth0 must have
#     received at least the bytes the allgathers need (so the data really
#     crossed the simulated link) and the measured rate must stay below 1.5x
#     the set rate (so the link really is limited);
#   - on 2 hosts, with each MPI, the probe with the links unlimited and at
#     200mbit: limited below 1.5x 200mbit, unlimited above it (so the rate
#     check is one that can fail, even on a loaded machine);
#   - on 2 hosts, with each MPI, at rates up to 4 Gbit (faster ones have a
#     bucket larger than the probe's 4 MiB), the link rate tpmm's cost model
#     measures (src/comm/topology.c, printed by TPMM_VERBOSE) must be at most
#     1.15x the set rate and at least 0.25x (Open MPI moves 0.5-0.6x here):
#     the burst must not count (bench/RESULTS.md §21);
#   - on 2 hosts, with each MPI, at those rates: a matmul_reduce_scatter plan
#     must tune the ring with the progress thread against the ring with polls
#     where its fused lead is clear, else against unfused, decide, and match
#     unfused bit for bit.
# Ends with "netsim: N passed, N failed" counting those runs; exits non-zero if
# any failed. The namespaces are removed on exit whatever happens. Root only:
# as another user it prints SKIPPED and exits 77.
#
# Environment: NETSIM_PREFIX (default "t-": namespaces t-h0.., kept apart from
# a developer's own h0..), NETSIM_RATE (default 1gbit), NETSIM_HOSTS (default
# "2 4"), NETSIM_TEST (path inside BUILD_DIR), NETSIM_TEST_ARGS, NETSIM_TIMEOUT (seconds per run, default 120).
set -u -o pipefail

die() { echo "run_netsim: error: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 BUILD_DIR [BUILD_DIR2]"
# Not root: exit 77, which CTest reports as skipped (SKIP_RETURN_CODE 77);
# CI runs as root, so there this test always runs.
if [ "$(id -u)" != 0 ]; then
  echo "run_netsim: SKIPPED: must run as root (network namespaces, tc)" >&2
  exit 77
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETSIM="$ROOT/bench/netsim.sh"
export NETSIM_PREFIX=${NETSIM_PREFIX-t-}
unset NETSIM_STATE
RATE=${NETSIM_RATE:-1gbit}
HOSTS=${NETSIM_HOSTS:-2 4}
MPIS=${NETSIM_MPIS:-mpich openmpi}
TEST=${NETSIM_TEST:-tests/test_agmm}
# MPI-hosts combinations not run: MPICH 4.0.2 with UCX tcp hangs in
# MPI_Finalize on 4 simulated hosts (also a plain MPI_Allgather program;
# openucx/ucx#8738-like), after the test has printed its result.
SKIP=${NETSIM_SKIP-mpich-4}
# shm_pull is left out: it is single-node by design and refuses a group that
# spans hosts (TPMM_ERR status), which test_agmm would count as failures.
TEST_ARGS=${NETSIM_TEST_ARGS---quick --algos ring,bidir_ring,auto}
TMO=${NETSIM_TIMEOUT:-120}
PROBE_MIB=16
PROBE_ITERS=3
export OMP_NUM_THREADS=1

# ---- which build is which MPI
declare -A BUILD
for d in "$@"; do
  [ -d "$d" ] || die "no build directory $d"
  d=$(cd "$d" && pwd)
  mpi=""
  if [ -f "$d/CMakeCache.txt" ]; then
    case "$(sed -n 's/^MPI_C_COMPILER:[A-Z]*=//p' "$d/CMakeCache.txt")" in
      *openmpi*) mpi=openmpi ;;
      *mpich*) mpi=mpich ;;
    esac
  fi
  if [ -z "$mpi" ] && [ -x "$d/$TEST" ]; then
    if ldd "$d/$TEST" | grep -q libmpich; then mpi=mpich; else mpi=openmpi; fi
  fi
  [ -n "$mpi" ] || die "cannot tell which MPI $d was built with"
  BUILD[$mpi]=$d
done
for mpi in $MPIS; do
  [ -n "${BUILD[$mpi]:-}" ] || die "no $mpi build given (have: ${!BUILD[*]}); pass one or set NETSIM_MPIS"
  [ -x "${BUILD[$mpi]}/$TEST" ] || die "${BUILD[$mpi]}/$TEST missing: build first"
done

# ---- the probe, one binary per MPI, next to that MPI's build
for mpi in $MPIS; do
  mpicc.$mpi -O2 -Wall -Wextra -Wpedantic -Werror -o "${BUILD[$mpi]}/netsim_probe" "$ROOT/tests/netsim_probe.c" ||
    die "building netsim_probe with mpicc.$mpi failed"
done

trap '"$NETSIM" down >/dev/null 2>&1 || echo "run_netsim: WARNING: netsim down failed" >&2' EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
result() { # OK? NAME DETAIL
  if [ "$1" = 0 ]; then
    passed=$((passed + 1))
    echo "run_netsim: ok   $2 $3"
  else
    failed=$((failed + 1))
    echo "run_netsim: FAIL $2 $3"
  fi
}
# in_finalize PROG: 1 if every running process of PROG is inside MPI_Finalize
# (gdb's stacks), else 0; 0 without gdb.
in_finalize() {
  local exe p n=0 in=0
  command -v gdb >/dev/null || { echo 0; return; }
  exe=$(readlink -f "$1")
  for p in $(pgrep -f -- "$1"); do
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$exe" ] || continue
    n=$((n + 1))
    timeout 30 gdb -p "$p" -batch -ex "thread apply all bt" 2>/dev/null | grep -q PMPI_Finalize && in=$((in + 1))
  done
  [ "$n" -gt 0 ] && [ "$n" = "$in" ] && echo 1 || echo 0
}
# run_once PPN MPI PROG ARGS... into $log: sets rc, and fin (1: at the
# timeout every rank of PROG was inside MPI_Finalize).
run_once() {
  local ppn=$1 mpi=$2 job waited=0
  shift 2
  NETSIM_PPN=$ppn timeout -k 5 "$TMO" "$NETSIM" run --mpi "$mpi" -- "$@" >"$log" 2>&1 &
  job=$!
  while kill -0 "$job" 2>/dev/null && [ "$waited" -lt $((TMO - 5)) ]; do
    sleep 1
    waited=$((waited + 1))
  done
  fin=0
  kill -0 "$job" 2>/dev/null && fin=$(in_finalize "$1")
  rc=0
  wait "$job" || rc=$?
}
# run_test NAME PPN MPI PROG ARGS...: PROG on the simulated hosts (PPN ranks
# each); passes if it exits 0 and its closing "N passed, M failed" line says
# 0 failed. MPICH + UCX tcp's cleanup hang (docs/NETSIM.md: every check
# passed, then every rank inside MPI_Finalize, one spinning in UCX) reruns
# the test once; a second hang, or any other, fails.
run_test() {
  local name=$1 ppn=$2 mpi=$3 log t0 t1 rc fin summary ok first=""
  shift 3
  log=$(mktemp)
  t0=$(date +%s.%N)
  run_once "$ppn" "$mpi" "$@"
  summary=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ "$rc" = 124 ] && [ "$fin" = 1 ] && [ "$mpi" = mpich ] && [[ "$summary" =~ \ 0\ failed ]]; then
    sed "s/^/  [$name, first run] /" "$log" | tail -n 5
    first="; the first run passed its checks and hung in MPI_Finalize (UCX's cleanup, docs/NETSIM.md): rerun"
    run_once "$ppn" "$mpi" "$@"
  fi
  t1=$(date +%s.%N)
  sed "s/^/  [$name] /" "$log" | tail -n 40
  summary=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  ok=1
  [ "$rc" = 0 ] && [[ "$summary" =~ \ 0\ failed ]] && ok=0
  if [ "$rc" = 124 ]; then
    if [[ "$summary" =~ \ 0\ failed ]]; then
      # Seen with MPICH 4.0.2 + UCX tcp, also for a plain MPI_Allgather
      # program: one rank spins in MPI_Finalize (ucp_worker_progress)
      # while the others wait in the PMI barrier.
      summary="$summary, but mpirun did not exit within ${TMO}s (MPI_Finalize hang? see docs/NETSIM.md)"
    else
      summary="timed out after ${TMO}s${summary:+ (last: $summary)}"
    fi
  fi
  result $ok "$name" "(rc=$rc, $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s, ${summary:-no summary line}$first)"
  rm -f "$log"
}
rx_bytes() { ip -n "${NETSIM_PREFIX}h0" -s link show eth0 | awk '/RX:/ {getline; print $1; exit}'; }

rate_bits=$(echo "$RATE" | awk 'match(tolower($0), /^[0-9.]+/) {
  v = substr($0, 1, RLENGTH); u = tolower(substr($0, RLENGTH + 1))
  m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : (u == "bit") ? 1 : 0
  if (m) printf "%.0f\n", v * m }')
[ -n "$rate_bits" ] || die "NETSIM_RATE must be like 1gbit or 500mbit, got $RATE"
THROTTLE=200mbit
throttle_bits=200000000

t_start=$(date +%s)
for n in $HOSTS; do
  if ! "$NETSIM" up "$n" "$RATE"; then
    result 1 "up-$n" "(bench/netsim.sh up $n $RATE failed)"
    continue
  fi
  for mpi in $MPIS; do
    if [[ " $SKIP " == *" $mpi-$n "* ]]; then
      echo "run_netsim: skip $mpi on $n hosts (NETSIM_SKIP: MPICH 4.0.2 + UCX tcp hangs in MPI_Finalize on 4 hosts, docs/NETSIM.md)"
      continue
    fi
    # shellcheck disable=SC2086
    run_test "$(basename "$TEST")-$mpi-${n}hosts" 1 "$mpi" "${BUILD[$mpi]}/$TEST" $TEST_ARGS
    # ranks on separate simulated hosts: n nodes to MPI, one machine's CPUs
    run_test "test_topology-$mpi-${n}hosts" 1 "$mpi" "${BUILD[$mpi]}/tests/test_topology"
    # fault injection: no local failure strands a peer across hosts either
    run_test "test_faults-$mpi-${n}hosts" 1 "$mpi" "${BUILD[$mpi]}/tests/test_faults"
    # gather_index 1 across hosts: its ring runs with the progress thread there by default
    run_test "test_agmm_x2-$mpi-${n}hosts" 1 "$mpi" "${BUILD[$mpi]}/tests/test_agmm_x2" --quick --algos ring,bidir_ring,auto
    # the reduce operators across hosts (shm_pull cannot run there)
    run_test "test_reduce-$mpi-${n}hosts" 1 "$mpi" "${BUILD[$mpi]}/tests/test_reduce" --quick --every 3 --algos ring,auto
    run_test "test_reduce_faults-$mpi-${n}hosts" 1 "$mpi" "${BUILD[$mpi]}/tests/test_reduce_faults" --quick
  done
  # hier: two ranks per host, so that every node has node peers and the
  # rail rings cross the simulated links (Open MPI: see NETSIM_SKIP)
  if [ "$n" = 2 ] && [[ " $MPIS " == *" openmpi "* ]]; then
    run_test "$(basename "$TEST")-hier-openmpi-2x2" 2 openmpi "${BUILD[openmpi]}/$TEST" --quick --algos hier,auto
    run_test "test_faults-hier-openmpi-2x2" 2 openmpi "${BUILD[openmpi]}/tests/test_faults"
    run_test "test_topology-openmpi-2x2" 2 openmpi "${BUILD[openmpi]}/tests/test_topology"
    run_test "test_reduce-openmpi-2x2" 2 openmpi "${BUILD[openmpi]}/tests/test_reduce" --quick --every 3 --algos ring,hier,auto
    run_test "test_reduce_faults-hier-openmpi-2x2" 2 openmpi "${BUILD[openmpi]}/tests/test_reduce_faults" --quick
    run_test "test_reduce_errors-openmpi-2x2" 2 openmpi "${BUILD[openmpi]}/tests/test_reduce_errors"
  fi
  for mpi in $MPIS; do
    [[ " $SKIP " == *" $mpi-$n "* ]] && continue
    name="probe-$mpi-${n}hosts"
    log=$(mktemp)
    rx0=$(rx_bytes)
    timeout -k 5 "$TMO" "$NETSIM" run --mpi "$mpi" -- "${BUILD[$mpi]}/netsim_probe" "$PROBE_MIB" "$PROBE_ITERS" >"$log" 2>&1
    rc=$?
    rx1=$(rx_bytes)
    sed "s/^/  [$name] /" "$log" | tail -n 20
    why=""
    gbit=$(sed -n 's/.*recv_gbit_s=\([0-9.]*\).*/\1/p' "$log" | tail -n 1)
    # Each allgather (warm-up included) brings every host (n-1) blocks.
    need=$(((n - 1) * PROBE_MIB * 1048576 * (PROBE_ITERS + 1)))
    got=$((rx1 - rx0))
    [ "$rc" = 0 ] || why="$why probe rc=$rc;"
    # One rank per simulated host, in order: the names the ranks report.
    want=$(seq 0 $((n - 1)) | sed "s/^/${NETSIM_PREFIX}h/" | paste -sd, -)
    hosts=$(sed -n 's/^netsim_probe: hosts=//p' "$log" | tail -n 1)
    [ "$hosts" = "$want" ] || why="$why ranks ran on '$hosts', not '$want';"
    [ "$got" -ge "$need" ] || why="$why h0 eth0 received $got bytes < $need needed (traffic not on the simulated link?);"
    if [ -z "$gbit" ]; then
      why="$why no rate printed;"
    elif ! awk -v g="$gbit" -v r="$rate_bits" 'BEGIN { exit !(g * 1e9 < 1.5 * r) }'; then
      why="$why ${gbit} Gbit/s is not below 1.5x the set $RATE (link not limited?);"
    fi
    result "$([ -z "$why" ] && echo 0 || echo 1)" "$name" \
      "(allgather ${PROBE_MIB} MiB/rank: ${gbit:-?} Gbit/s per rank at $RATE; h0 eth0 rx +$got bytes, need >= $need;$why)"
    rm -f "$log"
  done
  # the cost model's link rate: a plan of a shape whose transfer is not negligible, so that it calibrates
  if [ "$n" = 2 ] && [ "$rate_bits" -le 4000000000 ]; then
    for mpi in $MPIS; do
      name="model-link-$mpi-${n}hosts"
      log=$(mktemp)
      TPMM_VERBOSE=1 timeout -k 5 "$TMO" "$NETSIM" run --mpi "$mpi" -- "${BUILD[$mpi]}/tools/tpmm-bench" --m 512 \
        --k 4096 --n 1024 --plan --iters 1 --warmup 0 --peak 0 --no-check >"$log" 2>&1
      rc=$?
      beta=$(sed -n 's/.* beta=\([0-9.e+-]*\) GB\/s.*/\1/p' "$log" | tail -n 1)
      # 124: the MPICH + UCX tcp hang in MPI_Finalize after everything printed (docs/NETSIM.md)
      ran=$([ "$rc" = 0 ] || { [ "$rc" = 124 ] && grep -q '^ *512 ' "$log"; } && echo 1 || echo 0)
      awk -v b="${beta:-x}" -v r="$rate_bits" -v ran="$ran" \
        'BEGIN { exit !(ran && b != "x" && b * 8e9 <= 1.15 * r && b * 8e9 >= 0.25 * r) }'
      result $? "$name" "(rc=$rc; measured ${beta:-?} GB/s, must be within 0.25-1.15x the set $RATE = $(awk -v r="$rate_bits" 'BEGIN{print r/8e9}') GB/s)"
      [ -n "$beta" ] && [ "$ran" = 1 ] || sed "s/^/  [$name] /" "$log" | tail -n 20
      rm -f "$log"
    done
  fi
  # the reduce operators' tuner across nodes: where the model's fused lead is clear (unfused predicted more
  # than 1.4x: choose.c tpi_explore_margin), the ring with the progress thread against the ring with polls
  # (choose.c tpi_thread_runner_up), else against unfused; decided, bit-identical whichever is kept
  if [ "$n" = 2 ] && [ "$rate_bits" -le 4000000000 ]; then
    for mpi in $MPIS; do
      name="thread-tune-$mpi-${n}hosts"
      log=$(mktemp)
      TPMM_VERBOSE=1 timeout -k 5 "$TMO" "$NETSIM" run --mpi "$mpi" -- "${BUILD[$mpi]}/tools/tpmm-bench" \
        --op matmul_reduce_scatter --m 1024 --k 1536 --n 1024 --plan --iters 1 --warmup 0 --peak 0 --json >"$log" 2>&1
      rc=$?
      tuned=$(sed -n 's/.*"tuned":{"choice":"\([^"]*\)","runner_up":"\([^"]*\)".*"kept":"\([a-z_]*\)".*/\1 \2 \3/p' "$log")
      read -r c u kept <<< "$tuned"
      lead=$(sed -n 's/.*_plan_create on .*predicted unfused \([0-9.]*\) ms, fused \([0-9.]*\) ms.*/\1 \2/p' "$log" |
        awk '{ printf "%.3f", $1 / $2 }')
      # the chunk counts may differ: the model cuts the runner-up's with the thread turned over
      nthread=$( (echo "$c"; echo "$u") | grep -c '+thread$')
      if awk -v l="${lead:-0}" 'BEGIN { exit !(l > 1.4) }'; then
        want="ring with and without the thread"
        pair_ok=$([ "${c%%/*}" = ring ] && [ "${u%%/*}" = ring ] && [ "$nthread" = 1 ] && echo 1 || echo 0)
      else
        want="fused against unfused"
        pair_ok=$( (echo "${c%%/*}"; echo "${u%%/*}") | sort | paste -sd, - | grep -qx 'ring,unfused' && echo 1 || echo 0)
      fi
      # 124: the MPICH + UCX tcp hang in MPI_Finalize after everything printed (docs/NETSIM.md); Open MPI must exit
      ran=$({ [ "$rc" = 0 ] || { [ "$rc" = 124 ] && [ "$mpi" = mpich ]; }; } && echo 1 || echo 0)
      ok=0
      [ "$ran" = 1 ] && grep -q '"bitwise_equal":true' "$log" && [ -n "$lead" ] && [ "$pair_ok" = 1 ] &&
        [ -n "$kept" ] && ok=1
      result $((1 - ok)) "$name" "(rc=$rc; predicted lead ${lead:-?}; tuned: choice ${c:-?}, runner-up ${u:-?}, kept ${kept:-?}; want $want, decided, bit-identical)"
      [ "$ok" = 1 ] || sed "s/^/  [$name] /" "$log" | tail -n 20
      rm -f "$log"
    done
  fi
  # A/B on the first host count: the same probe with the links unlimited and
  # at THROTTLE. At 1 Gbit the "below 1.5x" check alone could pass on a
  # loaded machine even without any limit (unlimited Open MPI TCP over veth
  # measured ~1.2 Gbit/s under load); at a rate far below what the machine
  # can do, limited must be slow and unlimited fast, or the check fails.
  if [ "$n" = "${HOSTS%% *}" ]; then
    for mpi in $MPIS; do
      name="throttle-$mpi-${n}hosts"
      g=()
      for r in none "$THROTTLE"; do
        "$NETSIM" rate "$r" 2>/dev/null
        log=$(mktemp)
        timeout -k 5 "$TMO" "$NETSIM" run --mpi "$mpi" -- "${BUILD[$mpi]}/netsim_probe" "$PROBE_MIB" 1 >"$log" 2>&1 ||
          echo "  [$name] probe at $r failed: $(tail -n 3 "$log")"
        g+=("$(sed -n 's/.*recv_gbit_s=\([0-9.]*\).*/\1/p' "$log" | tail -n 1)")
        rm -f "$log"
      done
      "$NETSIM" rate "$RATE" 2>/dev/null
      awk -v free="${g[0]:-0}" -v lim="${g[1]:-x}" -v r="$throttle_bits" \
        'BEGIN { exit !(lim != "x" && lim > 0 && lim * 1e9 < 1.5 * r && free * 1e9 > 1.5 * r) }'
      result $? "$name" "(unlimited ${g[0]:-?} Gbit/s must be > and at $THROTTLE ${g[1]:-?} Gbit/s < $(awk -v r="$throttle_bits" 'BEGIN{print 1.5*r/1e9}') Gbit/s)"
    done
  fi
done
"$NETSIM" down || result 1 down "(bench/netsim.sh down failed)"
echo "run_netsim: took $(($(date +%s) - t_start)) s"
echo "netsim: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
