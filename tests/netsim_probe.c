/*
 * netsim_probe.c — measures plain MPI_Allgather bandwidth, to prove that the
 * simulated links of bench/netsim.sh really carry and really limit the traffic.
 *
 *   mpirun -n W ./netsim_probe [MIB_PER_RANK [ITERS]]     (defaults 16 MiB, 3 iterations)
 *
 * Each rank contributes MIB_PER_RANK MiB filled with a pattern derived from its
 * rank; after every allgather each rank checks every received block, so a
 * broken transport fails instead of looking fast. One warm-up round, then ITERS
 * timed rounds separated by barriers; the time of a round is the slowest
 * rank's. Printed rate = bytes each rank receives from its peers, (W-1)·size,
 * over the median round time, in Gbit/s (10^9 bit/s, as tc counts).
 *
 * Output (rank 0):
 *   netsim_probe: hosts=NAME0,NAME1,...   (MPI_Get_processor_name of each rank, in rank order)
 *   netsim_probe: ranks=W mib_per_rank=S iters=I median_s=T recv_gbit_s=R
 *   netsim_probe: N passed, N failed      (data checks, one per round)
 * Exit status non-zero if any check failed.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Word j of rank r's block: distinct per rank and position, cheap to check. */
static uint64_t pattern(int rank, size_t j, int round) {
  return ((uint64_t)rank << 48) ^ ((uint64_t)round << 40) ^ (uint64_t)j * 0x9e3779b97f4a7c15ull;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  long mib = argc > 1 ? atol(argv[1]) : 16;
  int iters = argc > 2 ? atoi(argv[2]) : 3;
  if (mib < 1 || iters < 1 || iters > 100) {
    if (rank == 0) fprintf(stderr, "usage: netsim_probe [MIB_PER_RANK>=1 [ITERS 1..100]]\n");
    MPI_Finalize();
    return 2;
  }
  /* Where each rank runs: the caller checks that it is one rank per simulated host. */
  char name[MPI_MAX_PROCESSOR_NAME] = {0}, *names = malloc((size_t)size * MPI_MAX_PROCESSOR_NAME);
  int len;
  MPI_Get_processor_name(name, &len);
  MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("netsim_probe: hosts=");
    for (int r = 0; r < size; r++)
      printf("%s%.*s", r ? "," : "", MPI_MAX_PROCESSOR_NAME, names + (size_t)r * MPI_MAX_PROCESSOR_NAME);
    printf("\n");
  }
  free(names);

  size_t words = (size_t)mib * 1024 * 1024 / sizeof(uint64_t);
  uint64_t *send = malloc(words * sizeof *send);
  uint64_t *recv = malloc(words * sizeof *recv * (size_t)size);
  if (!send || !recv) {
    fprintf(stderr, "netsim_probe: rank %d: out of memory\n", rank);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

  double times[100];
  int passed = 0, failed = 0;
  for (int round = -1; round < iters; round++) { /* round -1 is the warm-up */
    for (size_t j = 0; j < words; j++) send[j] = pattern(rank, j, round + 1);
    /* Poison, so a block that never arrived cannot pass the check. */
    memset(recv, 0xff, words * sizeof *recv * (size_t)size);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    MPI_Allgather(send, (int)(words * sizeof *send), MPI_BYTE, recv, (int)(words * sizeof *send), MPI_BYTE,
                  MPI_COMM_WORLD);
    double t = MPI_Wtime() - t0, tmax;
    MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);

    int bad = 0;
    for (int r = 0; r < size && !bad; r++)
      for (size_t j = 0; j < words; j++)
        if (recv[(size_t)r * words + j] != pattern(r, j, round + 1)) {
          fprintf(stderr, "netsim_probe: rank %d round %d: block of rank %d wrong at word %zu\n", rank, round, r, j);
          bad = 1;
          break;
        }
    int anybad;
    MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (round >= 0) {
      times[round] = tmax;
      if (anybad)
        failed++;
      else
        passed++;
    } else if (anybad) {
      failed++;
    }
  }

  qsort(times, (size_t)iters, sizeof times[0], cmp_double);
  double med = iters % 2 ? times[iters / 2] : 0.5 * (times[iters / 2 - 1] + times[iters / 2]);
  double bits = (double)(size - 1) * (double)words * sizeof(uint64_t) * 8.0;
  if (rank == 0) {
    printf("netsim_probe: ranks=%d mib_per_rank=%ld iters=%d median_s=%.4f recv_gbit_s=%.3f\n", size, mib, iters, med,
           med > 0 ? bits / med / 1e9 : 0.0);
    printf("netsim_probe: %d passed, %d failed\n", passed, failed);
  }
  free(send);
  free(recv);
  MPI_Finalize();
  return failed ? 1 : 0;
}
