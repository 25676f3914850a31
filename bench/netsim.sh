#!/bin/bash
# netsim.sh — simulated nodes for tpmm: N "hosts" in network namespaces joined
# by a rate-limited virtual switch, and an mpirun wrapper that puts one rank on
# each host, so the cross-node paths (ring, TCP transports) run over links of a
# chosen bandwidth instead of shared memory.
#
#   bench/netsim.sh up N RATE        e.g. up 4 1gbit   (RATE: 100mbit, 1gbit, 10gbit, ... or "none")
#   bench/netsim.sh down             remove everything `up` made (also after a failed `up`)
#   bench/netsim.sh status           hosts, addresses, qdiscs, byte counters
#   bench/netsim.sh rate RATE        change every link's rate in place (or "none")
#   bench/netsim.sh run [--mpi mpich|openmpi] [--dry-run] -- PROGRAM ARGS...
#                                    one rank per host (NETSIM_PPN=K: K per host, placed
#                                    round-robin over the hosts); OMP_NUM_THREADS=1 and
#                                    TPMM_* passed on
#
# Layout (why: the root namespace is never touched, so nothing can leak out of
# the sandbox and nothing on the machine can route into it):
#
#   ns h0   eth0 10.77.0.1/24 ──veth── p0 ┐
#   ns h1   eth0 10.77.0.2/24 ──veth── p1 ├─ br0   (in ns "netsim-sw", no address)
#   ...                                   ┘
#
# Each link is limited in both directions with tbf: on the host's eth0 (what the
# host sends) and on the bridge port (what the host receives). netem is not in
# this kernel, so there is bandwidth but no added latency.
#
# Processes "on" a host run under bench/netsim-agent.sh, which enters the
# host's namespace with its own UTS namespace (hostname h<i>) and a private
# /etc/hosts, so MPI sees N distinct nodes and resolves them to the private
# addresses. mpirun itself runs on h0.
#
# Environment:
#   NETSIM_PREFIX  prefix for namespace/host names (default empty: h0, h1, ...);
#                  lets two users (or CI and a developer) keep separate sets.
#   NETSIM_STATE   state dir (default /tmp/tpmm-netsim[-PREFIX]): hosts, hostfiles.
#   NETSIM_NET     first three octets of the private /24 (default 10.77.0).
#   NETSIM_BURST, NETSIM_LIMIT  tbf burst/limit override (default scaled to RATE).
#   NETSIM_MTU     MTU of the veths (default 1500).
# Must run as root (namespaces, tc).
set -eu -o pipefail

PREFIX=${NETSIM_PREFIX:-}
STATE=${NETSIM_STATE:-/tmp/tpmm-netsim${PREFIX:+-$PREFIX}}
NET=${NETSIM_NET:-10.77.0}
MTU=${NETSIM_MTU:-1500}
SW="${PREFIX}netsim-sw"
HERE=$(cd "$(dirname "$0")" && pwd)
AGENT="$HERE/netsim-agent.sh"

die() { echo "netsim: error: $*" >&2; exit 1; }
say() { echo "netsim: $*" >&2; }

need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces and tc qdiscs); try: sudo $0 $*"
  command -v ip >/dev/null 2>&1 || die "'ip' not found (Debian package iproute2)"
  command -v tc >/dev/null 2>&1 || die "'tc' not found (Debian package iproute2)"
  command -v unshare >/dev/null 2>&1 || die "'unshare' not found (Debian package util-linux)"
}

ns_exists() { [ -e "/run/netns/$1" ]; }

# RATE in bits/s, from tc's bit units (bit, kbit, mbit, gbit, tbit; SI, as tc).
rate_bits() {
  echo "$1" | awk '
    match(tolower($0), /^[0-9]+(\.[0-9]+)?/) {
      v = substr($0, 1, RLENGTH); u = tolower(substr($0, RLENGTH + 1))
      m = (u == "bit") ? 1 : (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : (u == "tbit") ? 1e12 : -1
      if (m > 0 && v > 0) { printf "%.0f\n", v * m; exit 0 }
    }
    { exit 1 }'
}

# ---------------------------------------------------------------- down
# Removes what the state file lists (written before each object is created,
# so a half-finished `up` is covered) plus the switch namespace. Processes
# still inside a namespace would keep it (and its veths) alive after the name
# is gone, so they are ended first: they can only be ranks/daemons that a
# netsim run started.
cmd_down() {
  need_root down
  list=""
  [ -f "$STATE/namespaces" ] && list=$(cat "$STATE/namespaces")
  ns_exists "$SW" && list="$list $SW"
  # Hosts of an earlier `up` whose state dir is gone (/tmp cleared, a new
  # session on the same machine): ours if named like ours and addressed in
  # our /24. Without this, `up` fails on "ip netns add h0: File exists".
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
    [[ "$ns" =~ ^${PREFIX}h[0-9]+$ ]] || continue
    case " $list " in *" $ns "*) continue ;; esac
    ip -n "$ns" -4 addr show dev eth0 2>/dev/null | grep -q "inet ${NET//./\\.}\." && list="$list $ns"
  done
  for ns in $list; do
    ns_exists "$ns" || continue
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
      sleep 0.3
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
  done
  left=""
  for ns in $list; do ns_exists "$ns" && left="$left $ns"; done
  [ -z "$left" ] || die "could not remove namespaces:$left"
  rm -rf "$STATE"
  say "down"
}

# ---------------------------------------------------------------- up
# Sets BURST and LIMIT for RATE (dies on a bad RATE).
shape_params() {
  if [ "$RATE" = none ]; then
    BURST=- LIMIT=-
    return 0
  fi
  local bits
  bits=$(rate_bits "$RATE") || die "RATE must be like 100mbit, 1gbit, 10gbit (tc bit units) or none, got '$RATE'"
  # burst = ~4 ms of traffic (512kb at 1 Gbit, the measured working value):
  # smaller starves fast links on a 250 Hz timer, larger lets bursts pass unthrottled.
  # limit = 8 bursts of queue.
  BURST=${NETSIM_BURST:-$(awk -v b="$bits" 'BEGIN { x = b / 8 * 0.0042; if (x < 65536) x = 65536; printf "%d\n", x }')}
  LIMIT=${NETSIM_LIMIT:-$(awk -v b="$BURST" 'BEGIN { printf "%d\n", b * 8 }')}
}

tbf() { # NS DEV: limit egress of DEV in NS (RATE none: no qdisc of ours)
  if [ "$RATE" = none ]; then
    ip netns exec "$1" tc qdisc del dev "$2" root 2>/dev/null || true
    return 0
  fi
  ip netns exec "$1" tc qdisc replace dev "$2" root tbf rate "$RATE" burst "$BURST" limit "$LIMIT" ||
    die "tc tbf on $1/$2 failed (rate $RATE burst $BURST limit $LIMIT)"
}

cmd_up() {
  [ $# -eq 2 ] || die "usage: $0 up N RATE   (e.g. up 4 1gbit)"
  N=$1 RATE=$2
  need_root up
  [[ "$NET" =~ ^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){2}$ ]] ||
    die "NETSIM_NET must be three octets like 10.77.0, got '$NET'"
  case "$N" in '' | *[!0-9]*) die "N must be a number, got '$N'" ;; esac
  [ "$N" -ge 1 ] && [ "$N" -le 250 ] || die "N must be 1..250, got $N"
  shape_params

  cmd_down >/dev/null 2>&1 || true # a clean re-create after a previous up
  mkdir -p "$STATE"
  : >"$STATE/namespaces"

  echo "$SW" >>"$STATE/namespaces"
  ip netns add "$SW" || die "ip netns add $SW failed"
  ip -n "$SW" link set lo up
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up

  {
    echo "127.0.0.1 localhost"
    echo "::1 localhost ip6-localhost ip6-loopback"
  } >"$STATE/hosts"
  : >"$STATE/hostfile.mpich"
  : >"$STATE/hostfile.openmpi"
  i=0
  while [ "$i" -lt "$N" ]; do
    h="${PREFIX}h$i"
    addr="$NET.$((i + 1))"
    echo "$h" >>"$STATE/namespaces"
    ip netns add "$h" || die "ip netns add $h failed"
    ip -n "$h" link set lo up
    # Created inside the switch namespace with its peer moved straight into
    # the host's, so neither end ever exists in the root namespace.
    ip -n "$SW" link add "p$i" mtu "$MTU" type veth peer name eth0 mtu "$MTU" netns "$h" ||
      die "veth p$i <-> $h/eth0 failed"
    ip -n "$SW" link set "p$i" master br0
    ip -n "$SW" link set "p$i" up
    ip -n "$h" addr add "$addr/24" dev eth0
    ip -n "$h" link set eth0 up
    tbf "$h" eth0
    tbf "$SW" "p$i"
    echo "$addr $h" >>"$STATE/hosts"
    echo "$h:1" >>"$STATE/hostfile.mpich"
    echo "$h slots=1" >>"$STATE/hostfile.openmpi"
    i=$((i + 1))
  done
  write_config

  # Every host must reach another across the switch before we say "up". No
  # ping on a minimal Debian: a TCP connect to a closed port answered with
  # "refused" proves the path (ARP + IP both ways) just as well.
  i=0
  while [ "$i" -lt "$N" ]; do
    peer="$NET.$(((i + 1) % N + 1))"
    ok=0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      out=$(ip netns exec "${PREFIX}h$i" timeout 2 bash -c "exec 3<>/dev/tcp/$peer/9" 2>&1 || true)
      if [[ "$out" == *refused* ]]; then
        ok=1
        break
      fi
      sleep 0.2
    done
    [ "$ok" = 1 ] || die "${PREFIX}h$i cannot reach $peer over the simulated switch"
    i=$((i + 1))
  done
  say "up: $N hosts ${PREFIX}h0..${PREFIX}h$((N - 1)) on $NET.0/24, rate $RATE (burst $BURST, limit $LIMIT), state in $STATE"
}

write_config() {
  {
    echo "N=$N"
    echo "RATE=$RATE"
    echo "BURST=$BURST"
    echo "LIMIT=$LIMIT"
    echo "NET=$NET.0/24"
    echo "PREFIX=$PREFIX"
  } >"$STATE/config"
}

# ---------------------------------------------------------------- rate
# Changes the rate of every link in place (no re-creation, running programs
# keep their connections): for sweeps over rates, and for A/B checks.
cmd_rate() {
  [ $# -eq 1 ] || die "usage: $0 rate RATE   (e.g. rate 10gbit, or none)"
  RATE=$1
  need_root rate
  [ -f "$STATE/config" ] || die "not up: run '$0 up N RATE' first"
  N=$(sed -n 's/^N=//p' "$STATE/config")
  NET=$(sed -n 's/^NET=//p' "$STATE/config")
  NET=${NET%.0/24}
  shape_params
  local i=0
  while [ "$i" -lt "$N" ]; do
    tbf "${PREFIX}h$i" eth0
    tbf "$SW" "p$i"
    i=$((i + 1))
  done
  write_config
  say "rate: $N hosts now at $RATE (burst $BURST, limit $LIMIT)"
}

# ---------------------------------------------------------------- status
cmd_status() {
  need_root status
  [ -f "$STATE/config" ] || { echo "netsim: not up (no $STATE/config)"; return 0; }
  cat "$STATE/config"
  echo "state: $STATE"
  for h in $(cat "$STATE/namespaces"); do
    [ "$h" = "$SW" ] && continue
    if ! ns_exists "$h"; then echo "$h: MISSING"; continue; fi
    a=$(ip -n "$h" -o -4 addr show dev eth0 | awk '{print $4}')
    q=$(ip netns exec "$h" tc qdisc show dev eth0 | head -n 1)
    s=$(ip -n "$h" -s link show eth0 | awk '/RX:/ {getline; rx=$1} /TX:/ {getline; tx=$1} END {print "rx_bytes=" rx " tx_bytes=" tx}')
    echo "$h: eth0 $a $s | $q"
  done
  ns_exists "$SW" && ip netns exec "$SW" tc qdisc show | grep -v noqueue | sed "s/^/$SW: /"
}

# ---------------------------------------------------------------- run
cmd_run() {
  local mpi=mpich dry=0 N net prog
  while [ $# -gt 0 ]; do
    case "$1" in
      --mpi) [ $# -ge 2 ] || die "--mpi needs mpich or openmpi"; mpi=$2; shift 2 ;;
      --mpi=*) mpi=${1#--mpi=}; shift ;;
      --dry-run) dry=1; shift ;;
      --) shift; break ;;
      *) die "run: unknown option '$1' (usage: $0 run [--mpi mpich|openmpi] -- PROGRAM ARGS...)" ;;
    esac
  done
  [ $# -ge 1 ] || die "run: no PROGRAM (usage: $0 run [--mpi mpich|openmpi] -- PROGRAM ARGS...)"
  need_root run
  [ -f "$STATE/config" ] || die "not up: run '$0 up N RATE' first"
  N=$(sed -n 's/^N=//p' "$STATE/config")
  net=$(sed -n 's/^NET=//p' "$STATE/config")
  prog=$1
  shift
  # Ranks start in mpirun's directory, but make the program path absolute anyway.
  case "$prog" in
    /*) ;;
    */*) [ -e "$prog" ] || die "no such program: $prog"; prog="$(cd "$(dirname "$prog")" && pwd)/$(basename "$prog")" ;;
  esac

  # NETSIM_PPN ranks per host (default 1): hostfiles with that many slots.
  local ppn=${NETSIM_PPN:-1} hf_mpich="$STATE/hostfile.mpich" hf_ompi="$STATE/hostfile.openmpi"
  [[ "$ppn" =~ ^[1-9][0-9]*$ ]] || die "NETSIM_PPN must be a positive integer, got '$ppn'"
  if [ "$ppn" != 1 ]; then
    hf_mpich="$STATE/hostfile.mpich.ppn$ppn"
    hf_ompi="$STATE/hostfile.openmpi.ppn$ppn"
    sed "s/:1\$/:$ppn/" "$STATE/hostfile.mpich" >"$hf_mpich"
    sed "s/slots=1\$/slots=$ppn/" "$STATE/hostfile.openmpi" >"$hf_ompi"
  fi
  N=$((N * ppn))

  # Environment for the ranks: one OpenMP thread, every TPMM_* variable.
  local -a tpmm_vars cmd
  mapfile -t tpmm_vars < <(compgen -e | grep -E '^(TPMM_|UCX_RNDV|UCX_TCP_|UCX_ZCOPY|UCX_MAX_|MPIR_CVAR_|OMPI_MCA_btl_tcp)' || true)
  export OMP_NUM_THREADS=1
  case "$mpi" in
    mpich)
      command -v mpirun.mpich >/dev/null 2>&1 || die "mpirun.mpich not found (Debian package mpich)"
      # -iface eth0: the hydra control channel and the rank addresses use the
      # simulated link. UCX_TLS without sm, or UCX would find that the "hosts"
      # share a kernel and silently move the data through shared memory.
      cmd=(mpirun.mpich -np "$N" -f "$hf_mpich" -launcher rsh -launcher-exec "$AGENT"
           -iface eth0 -genv OMP_NUM_THREADS 1 -genv UCX_NET_DEVICES eth0 -genv UCX_TLS tcp,self)
      for v in "${tpmm_vars[@]}"; do cmd+=(-genv "$v" "${!v}"); done
      ;;
    openmpi)
      command -v mpirun.openmpi >/dev/null 2>&1 || die "mpirun.openmpi not found (Debian package openmpi-bin)"
      export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
      # pml ob1 + btl tcp,self: TCP between the hosts, no shared memory (vader)
      # and no UCX pml that could find a shared-memory path of its own.
      # --bind-to none: every simulated host's daemon sees the same machine
      # and bound its first rank to CPU 0, so all ranks shared one vCPU
      # (found in the third session: GEMMs ran at half speed, TCP at half rate).
      cmd=(mpirun.openmpi -np "$N" --hostfile "$hf_ompi" --map-by node --bind-to none
           --mca plm_rsh_agent "$AGENT" --mca plm_rsh_no_tree_spawn 1
           --mca oob_tcp_if_include "$net" --mca btl_tcp_if_include "$net"
           --mca pml ob1 --mca btl tcp,self
           -x OMP_NUM_THREADS -x UCX_NET_DEVICES=eth0 -x UCX_TLS=tcp,self)
      for v in "${tpmm_vars[@]}"; do cmd+=(-x "$v"); done
      ;;
    *) die "--mpi must be mpich or openmpi, got '$mpi'" ;;
  esac
  cmd+=("$prog" "$@")
  if [ "$dry" = 1 ]; then
    printf '%q ' "$AGENT" --exec "${PREFIX}h0" "${cmd[@]}"
    echo
    return 0
  fi
  exec "$AGENT" --exec "${PREFIX}h0" "${cmd[@]}"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down ;;
  status) shift; cmd_status ;;
  rate) shift; cmd_rate "$@" ;;
  run) shift; cmd_run "$@" ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
