/*
 * agree_cost.c — what the agreement step costs (issue 4: "make the agreement
 * step cheap ... measure its cost at m = 1").
 *
 *   mpirun -n W agree_cost [iters]
 *
 * Times, side by side and interleaved, medians over iterations, max over
 * ranks: (a) tpi_agree with all of all_gather_matmul's fields (the step
 * every call runs), (b) an MPI_Barrier on the same communicator (the floor
 * of any collective), (c) a whole tpmm_all_gather_matmul at m = k = n = 1 and
 * (d) MPI_Allgather of one row plus that 1x1x1 GEMM by hand.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/comm/comm.h"
#include "src/gemm/gemm.h"
#include "tpmm.h"

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (tpmm_init(&argc, &argv) != TPMM_SUCCESS) return 1;
  int iters = argc > 1 ? atoi(argv[1]) : 2000, W, rank;
  if (iters < 10) iters = 10;
  tpmm_get_group_size(TPMM_WORLD_COMM_GROUP, &W);
  tpmm_get_rank(TPMM_WORLD_COMM_GROUP, &rank);
  tpi_group_t *g;
  tpi_group_get("agree_cost", TPMM_WORLD_COMM_GROUP, &g);
  float in = 1.0f, x2 = 2.0f, *out = malloc(sizeof(float) * (size_t)W), *gout = malloc(sizeof(float) * (size_t)W);
  tpmm_tensor_t t_in = {&in, TPMM_FLOAT32, 2, {1, 1}, 0}, t_x2 = {&x2, TPMM_FLOAT32, 2, {1, 1}, 0};
  tpmm_tensor_t t_out = {out, TPMM_FLOAT32, 2, {W, 1}, 0}, t_g = {gout, TPMM_FLOAT32, 2, {W, 1}, 0};
  tpi_mat_t xm = {(char *)&x2, 1, 1, 1, 1};
  tpi_gemm_t *gemm;
  tpi_gemm_create(&gemm, TPMM_FLOAT32, &xm, NULL, TPMM_FLOAT32, W, W, W);
  int64_t f[TPI_F_COUNT];
  tpi_agmm_fields(&t_in, &t_x2, W, NULL, f);
  double *t[4];
  for (int v = 0; v < 4; v++) t[v] = malloc(sizeof(double) * (size_t)iters);
  for (int i = 0; i < iters; i++)
    for (int v = 0; v < 4; v++) {
      MPI_Barrier(g->comm);
      double t0 = MPI_Wtime();
      if (v == 0) tpi_agree(g, "agree_cost", TPMM_SUCCESS, f, TPI_F_COUNT, tpi_field_names, NULL, 0);
      if (v == 1) MPI_Barrier(g->comm);
      if (v == 2) tpmm_all_gather_matmul(&t_in, &t_x2, TPMM_WORLD_COMM_GROUP, W, NULL, &t_out, &t_g);
      if (v == 3) {
        MPI_Allgather(&in, 1, MPI_FLOAT, gout, 1, MPI_FLOAT, g->comm);
        tpi_gemm_run(gemm, W, gout, 1, out, 1);
      }
      double dt = MPI_Wtime() - t0;
      MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, g->comm);
      t[v][i] = dt;
    }
  const char *names[4] = {"agreement (tpi_agree, 12 fields)", "MPI_Barrier", "tpmm_all_gather_matmul 1x1x1",
                          "MPI_Allgather + GEMM by hand 1x1x1"};
  for (int v = 0; v < 4; v++) {
    qsort(t[v], (size_t)iters, sizeof(double), cmp);
    if (rank == 0) printf("agree_cost W=%d: %-36s median %8.2f us\n", W, names[v], 1e6 * t[v][iters / 2]);
    free(t[v]);
  }
  tpi_gemm_destroy(gemm);
  free(out), free(gout);
  tpmm_finalize();
  return 0;
}
