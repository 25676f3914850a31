/* bench/data/r37/swap.c: §42's live check of the confirming pairs (tune.c). An auto plan's tuner is handed its two
 * candidates the other way round (the runner-up made the choice) and a prior of PRIOR per mille: the scenario of
 * §41.1, a model that put the faster schedule behind (there by a link reading taken in a slow spell). Then CALLS
 * plan calls, each the slowest rank's time; prints the schedule of each call (c: the choice, R: the runner-up), the
 * tuner's pairs and pick, and the median of the calls after it decided. Built against a tree's static library:
 *   mpicc.mpich -O2 -DCONFIRM -I TREE -I TREE/include swap.c TREE/build-mpich/libtpmm.a -ldnnl -fopenmp -lm
 * (-DCONFIRM where the tree has confirming pairs), run as
 *   swap ar|rs m k n PRIOR CALLS  (m: all_reduce's rows; reduce_scatter's rows per rank) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/pipeline/pipeline.h"
#include "tpmm.h"

static int cmp(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 7) return 2;
  tpmm_init(&argc, &argv);
  int r, W;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  const int ar = argv[1][0] == 'a';
  const int64_t m = atoll(argv[2]), k = atoll(argv[3]), n = atoll(argv[4]), prior_pm = atoll(argv[5]);
  const int calls = atoi(argv[6]);
  const int64_t M = ar ? m : m * W; /* input rows; output rows are m either way */
  uint16_t *x = malloc((size_t)(M * k) * 2), *w = malloc((size_t)(k * n) * 2), *o = malloc((size_t)(m * n) * 2);
  for (int64_t i = 0; i < M * k; i++) x[i] = (uint16_t)(0x3f80 + ((i + r) % 7));
  for (int64_t i = 0; i < k * n; i++) w[i] = (uint16_t)(0x3c00 + (i % 13));
  tpmm_tensor_t in = {x, TPMM_BFLOAT16, 2, {M, k}, 0}, x2 = {w, TPMM_BFLOAT16, 2, {k, n}, 0},
                out = {o, TPMM_BFLOAT16, 2, {m, n}, 0};
  tpmm_matmul_reduce_opts_t op = TPMM_MATMUL_REDUCE_OPTS_INIT;
  tpmm_plan_t *plan;
  tpmm_status_t st = ar ? tpmm_matmul_all_reduce_plan_create(&in, &x2, TPMM_WORLD_COMM_GROUP, W, &op, &out, &plan)
                        : tpmm_matmul_reduce_scatter_plan_create(&in, &x2, TPMM_WORLD_COMM_GROUP, W, &op, &out, &plan);
  if (st != TPMM_SUCCESS) {
    if (r == 0) printf("%s\n", tpmm_last_error());
    return 1;
  }
  tpi_plan_t *p = tpi_plan_inner(plan);
  tpi_tuner_t *t = p->tuner;
  if (!t || t->ncand < 2) {
    if (r == 0) printf("no runner-up at this point\n");
    return 1;
  }
  const tpi_cand_t c0 = t->cand[0];
  t->cand[0] = t->cand[1], t->cand[1] = c0;
  t->prior = 1e-3 * (double)prior_pm, t->prior_pm = prior_pm;
  tpi_plan_use(p, 0);
  double *e = malloc(sizeof(double) * (size_t)calls);
  char *seq = calloc((size_t)calls + 1, 1);
  int decided_at = -1;
  for (int i = 0; i < calls; i++) {
    const double t0 = MPI_Wtime();
    tpmm_plan_execute(plan, &in, &out, NULL);
    const double l = MPI_Wtime() - t0;
    MPI_Allreduce(&l, &e[i], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    seq[i] = p->cur ? 'R' : 'c';
    if (decided_at < 0 && t->decided) decided_at = i + 1;
  }
  if (r == 0) {
    printf("{\"op\":\"%s\",\"m\":%lld,\"k\":%lld,\"n\":%lld,\"choice\":\"%s/%d\",\"runner_up\":\"%s/%d\",\"prior\":%.3f,",
           ar ? "matmul_all_reduce" : "matmul_reduce_scatter", (long long)m, (long long)k, (long long)n,
           tpmm_algo_name((tpmm_algo_t)t->cand[0].algo), t->cand[0].chunks,
           tpmm_algo_name((tpmm_algo_t)t->cand[1].algo), t->cand[1].chunks, t->prior);
    printf("\"calls\":\"%s\",\"pairs\":[", seq);
    for (int i = 0; i < t->npairs; i++)
      printf("%s[%.3f,%.3f]", i ? "," : "", t->samples[0][i] * 1e3, t->samples[1][i] * 1e3);
#ifdef CONFIRM
    printf("],\"confirm_from\":%d,", t->confirm_at ? t->confirm_at : -1);
#else
    printf("],\"confirm_from\":null,");
#endif
    printf("\"kept\":%s,\"decided_after\":%d,", t->decided ? (t->winner ? "\"runner_up\"" : "\"choice\"") : "null",
           decided_at);
    const int from = decided_at > 0 ? decided_at : calls;
    if (calls - from >= 5) {
      qsort(e + from, (size_t)(calls - from), sizeof(double), cmp);
      printf("\"median_after_ms\":%.3f}\n", e[from + (calls - from) / 2] * 1e3);
    } else
      printf("\"median_after_ms\":null}\n");
  }
  tpmm_plan_destroy(plan);
  tpmm_finalize();
  return 0;
}
