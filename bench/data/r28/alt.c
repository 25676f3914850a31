/* bench/data/r28/alt.c: matmul_reduce_scatter plans, ring (forced at creation; with a 7th argument auto) and unfused,
 * alternated back to back (barrier 0) or each after a barrier (1); the slowest rank's time of each call.
 *   alt m_per_rank k n iters barrier comm_turn [auto] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include "tpmm.h"
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
  tpmm_init(&argc, &argv);
  int r, W; MPI_Comm_rank(MPI_COMM_WORLD, &r); MPI_Comm_size(MPI_COMM_WORLD, &W);
  int64_t mr = atoll(argv[1]), k = atoll(argv[2]), n = atoll(argv[3]); int iters = atoi(argv[4]), bar = atoi(argv[5]);
  int ct = argc > 6 ? atoi(argv[6]) : 0;
  int64_t M = mr * W;
  uint16_t *x = malloc(M * k * 2), *w = malloc(k * n * 2), *o = malloc(mr * n * 2);
  for (int64_t i = 0; i < M * k; i++) x[i] = 0x3f80 + ((i + r) % 7);
  for (int64_t i = 0; i < k * n; i++) w[i] = 0x3c00 + (i % 13);
  tpmm_tensor_t in = {x, TPMM_BFLOAT16, 2, {M, k}, 0}, x2 = {w, TPMM_BFLOAT16, 2, {k, n}, 0}, out = {o, TPMM_BFLOAT16, 2, {mr, n}, 0};
  tpmm_matmul_reduce_opts_t op = TPMM_MATMUL_REDUCE_OPTS_INIT;
  op.comm_turn = ct;
  tpmm_plan_t *p[2];
  tpmm_set_param(TPMM_PARAM_ALGO, argc > 7 ? TPMM_ALGO_AUTO : TPMM_ALGO_RING);
  if (tpmm_matmul_reduce_scatter_plan_create(&in, &x2, TPMM_WORLD_COMM_GROUP, W, &op, &out, &p[0])) { printf("%s\n", tpmm_last_error()); return 1; }
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
  op.comm_turn = 0;
  if (tpmm_matmul_reduce_scatter_plan_create(&in, &x2, TPMM_WORLD_COMM_GROUP, W, &op, &out, &p[1])) { printf("%s\n", tpmm_last_error()); return 1; }
  double *t[2] = {malloc(iters * sizeof(double)), malloc(iters * sizeof(double))};
  for (int i = -2; i < iters; i++)
    for (int j = 0; j < 2; j++) {
      if (bar) MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      tpmm_plan_execute(p[j], &in, &out, NULL);
      double e = MPI_Wtime() - t0, em;
      MPI_Allreduce(&e, &em, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (i >= 0) t[j][i] = em * 1e3;
    }
  if (r == 0) {
    printf("barrier=%d ring:", bar);
    for (int i = 0; i < iters; i++) printf(" %.1f", t[0][i]);
    printf("\n           unfused:");
    for (int i = 0; i < iters; i++) printf(" %.1f", t[1][i]);
    qsort(t[0], iters, sizeof(double), cmp), qsort(t[1], iters, sizeof(double), cmp);
    printf("\n  medians ring %.2f unfused %.2f\n", t[0][iters / 2], t[1][iters / 2]);
  }
  tpmm_plan_destroy(p[0]), tpmm_plan_destroy(p[1]);
  tpmm_finalize();
}
