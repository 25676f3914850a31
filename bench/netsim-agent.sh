#!/bin/sh
# netsim-agent.sh — the "rsh" of bench/netsim.sh: runs a command on a simulated host.
#
#   netsim-agent.sh [rsh/ssh options] HOST COMMAND WORDS...   (what MPI launchers call)
#   netsim-agent.sh --exec HOST PROGRAM ARGS...               (argv kept as is; netsim.sh run)
#
# Used as MPICH's `-launcher rsh -launcher-exec AGENT` and Open MPI's
# `--mca plm_rsh_agent AGENT`. Like ssh, the first form joins COMMAND WORDS with
# spaces and gives them to a shell, because Open MPI sends a shell command line
# ("PATH=...; export PATH; orted ..."). The command runs:
#   - in HOST's network namespace (ip netns exec, which also gives it a private
#     mount namespace),
#   - in a new UTS namespace with hostname HOST, so each simulated host has its
#     own name and MPI treats the hosts as separate nodes,
#   - with the netsim /etc/hosts bind-mounted over /etc/hosts (only inside that
#     private mount namespace), so host names resolve to the private addresses.
# The environment is inherited (unlike ssh), which is how OMPI_ALLOW_RUN_AS_ROOT
# and the like reach the remote daemons.
#
# Environment: NETSIM_PREFIX / NETSIM_STATE as in netsim.sh.
set -eu

die() { echo "netsim-agent: error: $*" >&2; exit 1; }

PREFIX=${NETSIM_PREFIX:-}
STATE=${NETSIM_STATE:-/tmp/tpmm-netsim${PREFIX:+-$PREFIX}}
HOSTS="$STATE/hosts"

mode=shell
if [ "${1:-}" = "--exec" ]; then
  mode=exec
  shift
else
  # Skip the options a launcher may pass to an rsh/ssh (-x, -n, -l USER, -p PORT, ...).
  while [ $# -gt 0 ]; do
    case "$1" in
      -l | -p | -o | -i | -F) shift 2 ;;
      -*) shift ;;
      *) break ;;
    esac
  done
fi
[ $# -ge 2 ] || die "usage: $0 [--exec] HOST COMMAND..."
host=$1
shift
# A launcher may hand us user@host.
host=${host#*@}

[ -f "$HOSTS" ] || die "no $HOSTS: is the simulated network up? (bench/netsim.sh up N RATE)"
[ -e "/run/netns/$host" ] || die "no simulated host '$host' (namespaces: $(ip netns list | awk '{print $1}' | tr '\n' ' '))"

# The inner script gets HOSTS and HOST as $1 $2 (no quoting games with paths).
if [ "$mode" = exec ]; then
  exec ip netns exec "$host" unshare --uts sh -c \
    'mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && exec "$@"' netsim-agent "$HOSTS" "$host" "$@"
else
  exec ip netns exec "$host" unshare --uts sh -c \
    'mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && eval "$*"' netsim-agent "$HOSTS" "$host" "$@"
fi
