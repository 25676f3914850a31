#!/bin/bash
# Install tpmm into a temporary prefix and build the seed example out of tree
# against the installed copy, once with pkg-config and once with
# find_package(tpmm), and README's minimal C example; run them on 2 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(mktemp -d /tmp/tpmm-prefix.XXXXXX)
work=$(mktemp -d /tmp/tpmm-oot.XXXXXX)
trap 'rm -rf "$prefix" "$work"' EXIT
make install PREFIX="$prefix" >/dev/null
pass=0 fail=0
run() { if "$@"; then pass=$((pass + 1)); else echo "FAILED: $*"; fail=$((fail + 1)); fi; }

# pkg-config, static and shared
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
run mpicc.mpich -O2 -o "$work/seed_pc" examples/seed_example.c $(pkg-config --cflags --libs tpmm) -lm \
    -Wl,-rpath,"$(pkg-config --variable=libdir tpmm)"
run mpirun.mpich -n 2 "$work/seed_pc"

# README's minimal C example, as printed there (the first C block), warnings as errors
awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on' README.md > "$work/readme.c"
run mpicc.mpich -O2 -Wall -Werror -o "$work/readme" "$work/readme.c" $(pkg-config --cflags --libs tpmm) \
    -Wl,-rpath,"$(pkg-config --variable=libdir tpmm)"
run mpirun.mpich -n 2 "$work/readme"
# ... as README builds it: a plain compiler, the MPI's flags from tpmm.pc's Requires
run cc -O2 -o "$work/readme_cc" "$work/readme.c" $(pkg-config --cflags --libs tpmm) \
    -Wl,-rpath,"$(pkg-config --variable=libdir tpmm)"
run mpirun.mpich -n 2 "$work/readme_cc"

# a program of the other MPI (Open MPI's mpicc) with this tpmm (MPICH): tpmm_init says so instead of crashing
cat > "$work/other.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <tpmm.h>
int main(int argc, char **argv) {
  tpmm_status_t st = tpmm_init(&argc, &argv);
  printf("%s\n", tpmm_last_error());
  return st == TPMM_ERR_UNSUPPORTED && strstr(tpmm_last_error(), argv[1]) ? 0 : 1;
}
C
run mpicc.openmpi -O2 -o "$work/other" "$work/other.c" -I"$prefix/include" -L"$(pkg-config --variable=libdir tpmm)" \
    -ltpmm -Wl,-rpath,"$(pkg-config --variable=libdir tpmm)"
run env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 mpirun.openmpi -n 1 "$work/other" \
    "built against MPICH"
# ... and the mirror: an MPICH program with tpmm built against Open MPI (build-openmpi, where `MPI=openmpi make
# test` made it, as CI does before this check)
if [ -f build-openmpi/libtpmm.so ]; then
  run mpicc.mpich -O2 -o "$work/other_mpich" "$work/other.c" -Iinclude -L"$PWD/build-openmpi" -ltpmm \
      -Wl,-rpath,"$PWD/build-openmpi"
  run timeout 60 mpirun.mpich -n 1 "$work/other_mpich" "built against Open MPI"
else
  echo "install_check: no build-openmpi/libtpmm.so; the MPICH program with an Open MPI tpmm is not checked"
fi

# CMake package
mkdir -p "$work/cm"
cp examples/seed_example.c "$work/cm/"
cat > "$work/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(use_tpmm C)
find_package(tpmm REQUIRED)
add_executable(seed seed_example.c)
target_link_libraries(seed PRIVATE tpmm::tpmm m)
CM
run cmake -S "$work/cm" -B "$work/cm/b" -DCMAKE_PREFIX_PATH="$prefix" -DMPI_C_COMPILER=mpicc.mpich >/dev/null
run cmake --build "$work/cm/b"
run mpirun.mpich -n 2 "$work/cm/b/seed"
echo "install_check: $pass passed, $fail failed"
[ "$fail" = 0 ]
