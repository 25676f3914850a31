/*
 * oneshot_overhead.c — the fixed cost of a one-shot tpmm_all_gather_matmul
 * against hand-written code and a plan, measured side by side, interleaved
 * (medians of REPS, rank 0):
 *
 *   mpirun -n 2 oneshot_overhead [m k n]   (default 1 1 1; bf16, unfused, no bias)
 *
 * prints the one-shot call, tpmm_plan_execute and the hand-written call (a
 * plain MPI_Allgather of the shards, then the GEMM through a tpi_gemm made
 * once, x2 plain as a one-shot call leaves it), and what each adds.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/gemm/gemm.h"
#include "tpmm.h"

#define REPS 400

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (tpmm_init(&argc, &argv) != TPMM_SUCCESS) return 1;
  int W, rank;
  tpmm_get_group_size(TPMM_WORLD_COMM_GROUP, &W);
  tpmm_get_rank(TPMM_WORLD_COMM_GROUP, &rank);
  int64_t m = argc > 3 ? atoll(argv[1]) : 1, k = argc > 3 ? atoll(argv[2]) : 1, n = argc > 3 ? atoll(argv[3]) : 1;
  uint16_t *in = calloc((size_t)(m * k), 2), *x2 = calloc((size_t)(k * n), 2);
  uint16_t *out = calloc((size_t)(m * W * n), 2), *g = calloc((size_t)(m * W * k), 2);
  tpmm_tensor_t ti = {in, TPMM_BFLOAT16, 2, {m, k}, 0}, tx = {x2, TPMM_BFLOAT16, 2, {k, n}, 0};
  tpmm_tensor_t to = {out, TPMM_BFLOAT16, 2, {m * W, n}, 0}, tg = {g, TPMM_BFLOAT16, 2, {m * W, k}, 0};
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
  tpmm_plan_t *p;
  if (tpmm_all_gather_matmul_plan_create(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, NULL, &to, &tg, &p) != TPMM_SUCCESS) {
    fprintf(stderr, "plan_create: %s\n", tpmm_last_error());
    return 1;
  }
  tpi_mat_t xm = {(char *)x2, k, n, n, 1};
  tpi_gemm_t *gm;
  tpi_gemm_create(&gm, TPMM_BFLOAT16, &xm, NULL, TPMM_BFLOAT16, m * W, m * W);
  static double t[3][REPS];
  for (int it = 0; it < REPS; it++) {
    double a;
    MPI_Barrier(MPI_COMM_WORLD), a = MPI_Wtime();
    tpmm_all_gather_matmul(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, NULL, &to, &tg);
    t[0][it] = MPI_Wtime() - a;
    MPI_Barrier(MPI_COMM_WORLD), a = MPI_Wtime();
    tpmm_plan_execute(p, &ti, &to, &tg);
    t[1][it] = MPI_Wtime() - a;
    MPI_Barrier(MPI_COMM_WORLD), a = MPI_Wtime();
    MPI_Allgather(in, (int)(m * k * 2), MPI_BYTE, g, (int)(m * k * 2), MPI_BYTE, MPI_COMM_WORLD);
    tpi_gemm_run(gm, m * W, g, k, out, n);
    t[2][it] = MPI_Wtime() - a;
  }
  for (int v = 0; v < 3; v++) qsort(t[v], REPS, sizeof(double), cmp);
  const double os = 1e6 * t[0][REPS / 2], pl = 1e6 * t[1][REPS / 2], hw = 1e6 * t[2][REPS / 2];
  if (rank == 0)
    printf(
        "oneshot_overhead W=%d m=%lld k=%lld n=%lld bf16: one-shot %.1f us (+%.1f), plan %.1f us (+%.1f), "
        "hand-written %.1f us\n",
        W, (long long)m, (long long)k, (long long)n, os, os - hw, pl, pl - hw, hw);
  tpmm_plan_destroy(p);
  tpi_gemm_destroy(gm);
  free(in), free(x2), free(out), free(g);
  tpmm_finalize();
  return 0;
}
