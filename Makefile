# tpmm — top-level entry points. The real build is CMake; this file picks the
# MPI, installs missing Debian packages and runs the right commands.
#
#   make demo            build, then run the seed example on 2 ranks
#   make test            build, then run the default test suite (CTest, JOBS CPUs;
#                        the long tests: tests/CMakeLists.txt)
#   make bench           run the benchmark sweep (bench/sweep.sh)
#   make format          apply .clang-format; make format-check fails on a difference
#   make install PREFIX=/usr/local
#   MPI=openmpi make test   the same with Open MPI instead of MPICH

MPI     ?= mpich
BUILD   ?= build-$(MPI)
PREFIX  ?= /usr/local
JOBS    ?= 2
CMAKE_ARGS ?=

ifeq ($(MPI),openmpi)
  MPICC   := mpicc.openmpi
  MPIEXEC := /usr/bin/mpirun.openmpi
  PREFLAGS := --oversubscribe
  export OMPI_ALLOW_RUN_AS_ROOT := 1
  export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
  export OMPI_MCA_rmaps_base_oversubscribe := 1
else ifeq ($(MPI),mpich)
  MPICC   := mpicc.mpich
  MPIEXEC := /usr/bin/mpirun.mpich
  PREFLAGS :=
else
  $(error MPI must be mpich or openmpi)
endif
export OMP_NUM_THREADS ?= 1

.PHONY: all deps build demo test bench install clean format format-check
all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPI_C_COMPILER=$(MPICC) \
	  -DMPIEXEC_EXECUTABLE=$(MPIEXEC) "-DMPIEXEC_PREFLAGS=$(PREFLAGS)" \
	  -DPython3_EXECUTABLE=/usr/bin/python3 $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(MPIEXEC) -n 2 $(PREFLAGS) $(BUILD)/seed_example

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	BUILD=$(BUILD) MPIEXEC=$(MPIEXEC) sh bench/sweep.sh

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

FORMAT_FILES = $(wildcard src/*/*.c src/*/*.h include/*.h tests/*.c tests/*.h tests/fuzz/*.c tools/*.c tools/*.h python/*.c python/*.h)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build-mpich build-openmpi
