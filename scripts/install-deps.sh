#!/bin/sh
# Install tpmm's Debian dependencies when missing.
#   scripts/install-deps.sh           the build and test set
#   scripts/install-deps.sh --full    also python3-torch and gnuplot (torch comparison, plots), the
#                                     sanitizers' and valgrind's packages, and gdb (run_netsim.sh
#                                     tells MPICH + UCX's MPI_Finalize hang from others by the stacks)
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu
PKGS="cmake make gcc pkg-config libmpich-dev mpich libopenmpi-dev openmpi-bin libdnnl-dev
      python3 python3-dev python3-numpy python3-pytest python3-mpi4py iproute2"
if [ "${1:-}" = "--full" ]; then
  PKGS="$PKGS python3-torch gnuplot-nox clang clang-format libclang-rt-14-dev valgrind gdb"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y -o DPkg::Lock::Timeout=600$missing"
if [ "$(id -u)" = 0 ]; then
  echo "install-deps: installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || true
  $cmd
else
  echo "install-deps: missing Debian packages. Run as root:" >&2
  echo "  apt-get update && $cmd" >&2
  exit 1
fi
