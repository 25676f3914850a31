/* bench/data/r28/unev.c: plan executes of all_gather_matmul_v, bf16, k = 4096, W = 2, counts c0,c1, each after a
 * barrier and a 20 ms pause (so that a trace's calls stand apart); prints the slowest rank's time per call.
 *   unev c0 c1 n comm_turn [iters]      (TPMM_TRACE=file for the timeline; summarize_trace.py reads it) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tpmm.h"
int main(int argc, char **argv) {
  tpmm_init(&argc, &argv);
  int r, W; MPI_Comm_rank(MPI_COMM_WORLD, &r); MPI_Comm_size(MPI_COMM_WORLD, &W);
  int64_t counts[2] = {atoll(argv[1]), atoll(argv[2])}; int64_t n = atoll(argv[3]); int ct = atoi(argv[4]);
  int iters = argc > 5 ? atoi(argv[5]) : 8;
  const int64_t k = 4096, M = counts[0] + counts[1];
  uint16_t *x = malloc((counts[r] ? counts[r] : 1) * k * 2), *w = malloc(k * n * 2), *o = malloc(M * n * 2);
  for (int64_t i = 0; i < counts[r] * k; i++) x[i] = 0x3f80 + (i % 7);
  for (int64_t i = 0; i < k * n; i++) w[i] = 0x3c00 + (i % 13);
  tpmm_tensor_t in = {x, TPMM_BFLOAT16, 2, {counts[r], k}, 0}, x2 = {w, TPMM_BFLOAT16, 2, {k, n}, 0},
                out = {o, TPMM_BFLOAT16, 2, {M, n}, 0};
  tpmm_all_gather_matmul_opts_t op = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  op.gather_output = false; op.comm_turn = ct;
  tpmm_plan_t *p;
  if (tpmm_all_gather_matmul_v_plan_create(&in, &x2, TPMM_WORLD_COMM_GROUP, W, counts, &op, &out, NULL, &p)) { printf("%s\n", tpmm_last_error()); return 1; }
  double best = 1e9, tot = 0; int cnt = 0;
  for (int i = 0; i < iters; i++) {
    MPI_Barrier(MPI_COMM_WORLD);
    usleep(20000);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    tpmm_status_t st = tpmm_plan_execute(p, &in, &out, NULL);
    double t = MPI_Wtime() - t0, tm;
    MPI_Allreduce(&t, &tm, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (r == 0) printf("iter %d st %d %.1f ms (rank0 %.1f)\n", i, st, tm * 1e3, t * 1e3);
    if (i >= 2) { tot += tm; cnt++; }
  }
  if (r == 0) printf("mean %.1f ms\n", tot / cnt * 1e3);
  tpmm_plan_destroy(p);
  tpmm_finalize();

}
