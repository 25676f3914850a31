#!/bin/bash
# Commands of bench/RESULTS.md §34 (AMD EPYC family 26, Zen 5, 2 vCPUs; MPICH 4.0.2, oneDNN 2.6.3):
#   OLD=dir OUT=dir bench/data/r30/commands.sh bound-gi1|credit|mpis|turns|ownpack|packtrace
# Trees: new (this one), old ($OLD: a build of 63e96f1, whose ring model multiplies chunks whole).
set -eu
OUT=${OUT:-bench/data/r30}
export OMP_NUM_THREADS=1
case "${1:-}" in
bound-gi1) # issue 15's gather_index 1 point beside the GEMM's slowdown under a plain TCP stream (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  /usr/bin/python3 bench/netcpu_pair.py build-mpich --pairs 4 --m 1024 --k 2048 --n 1024 --extra "--gather-index 1" \
    --json $OUT/bound-gi1.jsonl
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
credit) # all_gather_matmul over simulated 1 Gbit where the chunk count moves, this tree against $OLD alternated point
  # by point; plans, bf16, auto (TPMM_VERBOSE's plan line beside each JSON line)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  # rounds 3 and 4: ROUNDS="3 4" POINTS=4 (the first four points)
  P=("--counts 1024,0 --m 512 --n 4096" "--counts 1024,0 --m 512 --n 2048" "--counts 768,256 --m 512 --n 4096"
     "--m 512 --n 1536" "--m 512 --n 4096" "--m 128 --n 4096")
  for i in ${ROUNDS:-1 2}; do
    for p in "${P[@]:0:${POINTS:-6}}"; do
      for tree in new old; do
        B=build-mpich/tools/tpmm-bench; [ $tree = old ] && B=$OLD/$B
        timeout -k 5 600 bench/netsim.sh run -- env TPMM_VERBOSE=1 $B $p --k 4096 --dtype bf16 --plan \
          --iters 6 --warmup 1 --peak 0 --json 2>&1 | grep -E "plan_create|^[{]" | sed "s/^/$tree $i /" >> $OUT/credit.txt
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
mpis) # issues 14 and 15's points under MPICH and Open MPI (build-openmpi: MPI=openmpi make build), alternated point
  # by point, in shared memory and over simulated 1 Gbit, two rounds; plans, bf16, auto (root)
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  P=("--op matmul_reduce_scatter --m 1024 --k 1536 --n 1024" "--op matmul_all_reduce --m 1024 --k 1536 --n 1024"
     "--m 512 --k 4096 --n 4096" "--k 4096 --m 512 --n 1024 --nb 3" "--counts 1024,0 --m 512 --k 4096 --n 4096"
     "--gather-index 1 --m 1024 --k 2048 --n 1024")
  for net in shm 1gbit; do
    [ $net = 1gbit ] && { bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1; }
    for i in 1 2; do
      for p in "${P[@]}"; do
        [ $net = shm ] && [ "${p#--gather}" != "$p" ] && continue
        for mpi in mpich openmpi; do
          R="mpirun.$mpi -n 2"; [ $net = 1gbit ] && R="bench/netsim.sh run --mpi $mpi --"
          timeout -k 5 600 $R build-$mpi/tools/tpmm-bench $p --dtype bf16 --plan --iters 8 --warmup 2 --peak 0 \
            --json 2>>$OUT/log | sed "s/^{/{\"net\":\"$net\",\"mpi\":\"$mpi\",\"round\":$i,/" >> $OUT/mpis.jsonl
        done
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
turns) # the engine at fixed chunk counts where the models differ (ring forced, TPMM_VERBOSE's predictions): counts
  # 1024,0 at n = 4096 (comm_turn 1-12, and auto) and issue 15's gather_index 1 point (4, 8, 16), two rounds (root)
  bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1
  for i in 1 2; do
    for a in "--counts 1024,0 --m 512 --k 4096 --n 4096 --comm-turn 0,1,2,4,8,12" \
             "--gather-index 1 --m 1024 --k 2048 --n 1024 --comm-turn 4,8,16"; do
      timeout -k 5 900 bench/netsim.sh run -- env TPMM_VERBOSE=1 build-mpich/tools/tpmm-bench $a --algo ring \
        --dtype bf16 --plan --iters 6 --warmup 1 --peak 0 --json 2>&1 | grep -E "plan_create|^[{]" | sed "s/^/$i /" \
        >> $OUT/turns.txt
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
ownpack) # gather_index 1 plans with the own shard's panels packed at creation (this tree) against $OLD (packed on
  # every call), alternated point by point, three rounds: shared memory, four shapes, and issue 15's 1 Gbit point
  for net in shm 1gbit; do
    R="mpirun.mpich -n 2"
    if [ $net = 1gbit ]; then
      bench/netsim.sh down >/dev/null 2>&1; bench/netsim.sh up 2 1gbit >> $OUT/log 2>&1; R="bench/netsim.sh run --"
    fi
    for i in 1 2 3; do
      for a in "--m 1024 --k 2048 --n 1024" "--m 256 --k 2048 --n 4096" "--m 2048 --k 1024 --n 2048" \
               "--m 64 --k 4096 --n 4096"; do
        [ $net = 1gbit ] && [ "$a" != "--m 1024 --k 2048 --n 1024" ] && continue
        for tree in new old; do
          B=build-mpich/tools/tpmm-bench; [ $tree = old ] && B=$OLD/$B
          timeout -k 5 600 $R $B --gather-index 1 $a --dtype bf16 --plan --iters 8 --warmup 2 --peak 0 --json \
            2>>$OUT/log | sed "s/^{/{\"net\":\"$net\",\"tree\":\"$tree\",\"round\":$i,/" >> $OUT/ownpack.jsonl
        done
      done
    done
  done
  bench/netsim.sh down >> $OUT/log 2>&1 ;;
packtrace) # where a gather_index 1 plan's call goes in shared memory (m 256, k 2048 a rank, n 4096): traced executes
  # of this tree and of $OLD, summarize_trace.py per run
  for tree in old new; do
    B=build-mpich/tools/tpmm-bench; [ $tree = old ] && B=$OLD/$B
    rm -f /tmp/packtrace.json
    mpirun.mpich -n 2 env TPMM_TRACE=/tmp/packtrace.json $B --gather-index 1 --m 256 --k 2048 --n 4096 --dtype bf16 \
      --plan --algo shm_pull --iters 8 --warmup 2 --peak 0 --json --no-check 2>>$OUT/log | sed "s/^/$tree /" >> $OUT/packtrace.txt
    /usr/bin/python3 $OUT/summarize_trace.py /tmp/packtrace.json | sed "s/^/$tree /" >> $OUT/packtrace.txt
  done ;;
*) echo "usage: OLD=dir OUT=dir $0 bound-gi1|credit|mpis|turns|ownpack|packtrace" >&2; exit 2 ;;
esac
