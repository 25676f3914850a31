#!/bin/bash
# netcpu.sh — what a plain TCP stream over the simulated link costs the
# machine: MIB MiB sent from host 0 to host 1 (bench/netsim.sh up 2 RATE
# first), by two small Python processes that sleep in send/recv, and the
# /proc/stat deltas (user, sys, softirq, idle) of the whole machine over it.
#
#   bench/netcpu.sh [MIB]          (default 120)
#
# Run a benchmark beside it to see what the stream costs a GEMM
# (bench/RESULTS.md §9): `bench/netcpu.sh 700 & mpirun -n 2 tpmm-bench ...`.
# Root only (network namespaces). NETSIM_PREFIX as in netsim.sh.
set -eu -o pipefail
MIB=${1:-120}
P=${NETSIM_PREFIX:-}
NET=${NETSIM_NET:-10.77.0}
PY=/usr/bin/python3
[[ "$MIB" =~ ^[1-9][0-9]*$ ]] || { echo "netcpu: MIB must be a positive integer, got '$MIB'" >&2; exit 1; }
ip netns exec "${P}h1" "$PY" -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$NET.2', 5001)); s.listen(1); c, _ = s.accept(); b = bytearray(1 << 20)
while c.recv_into(b): pass
" &
sleep 0.5
read -r _ u1 _ s1 i1 _ _ sq1 _ </proc/stat
t0=$(date +%s.%N)
ip netns exec "${P}h0" "$PY" -c "
import socket
s = socket.create_connection(('$NET.2', 5001)); b = b'x' * (1 << 20)
for _ in range($MIB): s.sendall(b)
s.close()"
wait
t1=$(date +%s.%N)
read -r _ u2 _ s2 i2 _ _ sq2 _ </proc/stat
hz=$(getconf CLK_TCK)
awk -v t0="$t0" -v t1="$t1" -v u=$((u2 - u1)) -v s=$((s2 - s1)) -v i=$((i2 - i1)) -v sq=$((sq2 - sq1)) \
  -v mib="$MIB" -v hz="$hz" -v ncpu="$(nproc)" 'BEGIN {
  el = t1 - t0
  printf "netcpu: %d MiB in %.3f s (%.2f Gbit/s); machine: user %.2f s, sys %.2f s, softirq %.2f s, idle %.2f s of %.2f CPU-s\n",
    mib, el, mib * 8 * 1.048576 / 1000 / el, u / hz, s / hz, sq / hz, i / hz, ncpu * el }'
