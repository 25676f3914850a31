/*
 * plan_overhead.c — the fixed cost of a tpmm call at tiny m, measured against
 * its own parts side by side, interleaved, in one run (medians, rank 0).
 * bf16, unfused, no bias.
 *
 *   mpirun -n 2 plan_overhead [m k n]             (default 1 4096 1024; medians of 200)
 *
 * prints tpmm_plan_execute, a plain MPI_Allgather of the shards and the
 * plan's GEMM shape run through tpi_gemm (x2 packed, as in the plan). The
 * difference is what tpmm adds per call (agreement, bookkeeping).
 *
 *   mpirun -n 2 plan_overhead --oneshot [m k n]   (default 1 1 1; medians of 400)
 *
 * prints the one-shot tpmm_all_gather_matmul, tpmm_plan_execute and the
 * hand-written call (a plain MPI_Allgather of the shards, then the GEMM
 * through a tpi_gemm made once, x2 plain as a one-shot call leaves it), and
 * what each adds.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/gemm/gemm.h"
#include "tpmm.h"

#define MAX_REPS 400

/* What one timed step runs. */
enum { ONESHOT, PLAN, ALLGATHER, GEMM, HAND };

typedef struct {
  int W;
  int64_t m, k, n;
  uint16_t *in, *x2, *out, *g;
  tpmm_tensor_t ti, tx, to, tg;
  tpmm_plan_t *plan;
  tpi_gemm_t *gemm;
} bench_t;

static void step(bench_t *b, int what) {
  const int bytes = (int)(b->m * b->k * 2);
  switch (what) {
    case ONESHOT: tpmm_all_gather_matmul(&b->ti, &b->tx, TPMM_WORLD_COMM_GROUP, b->W, NULL, &b->to, &b->tg); break;
    case PLAN: tpmm_plan_execute(b->plan, &b->ti, &b->to, &b->tg); break;
    case ALLGATHER: MPI_Allgather(b->in, bytes, MPI_BYTE, b->g, bytes, MPI_BYTE, MPI_COMM_WORLD); break;
    case GEMM: tpi_gemm_run(b->gemm, b->m * b->W, b->g, b->k, b->out, b->n); break;
    default: step(b, ALLGATHER), step(b, GEMM);
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (tpmm_init(&argc, &argv) != TPMM_SUCCESS) return 1;
  const int oneshot = argc > 1 && strcmp(argv[1], "--oneshot") == 0, reps = oneshot ? 400 : 200;
  char **arg = argv + oneshot;
  const int narg = argc - oneshot;
  bench_t b;
  int rank;
  tpmm_get_group_size(TPMM_WORLD_COMM_GROUP, &b.W);
  tpmm_get_rank(TPMM_WORLD_COMM_GROUP, &rank);
  const int64_t m = narg > 3 ? atoll(arg[1]) : 1,
                k = narg > 3  ? atoll(arg[2])
                    : oneshot ? 1
                              : 4096,
                n = narg > 3  ? atoll(arg[3])
                    : oneshot ? 1
                              : 1024,
                W = b.W;
  b.m = m, b.k = k, b.n = n;
  b.in = calloc((size_t)(m * k), 2), b.x2 = calloc((size_t)(k * n), 2);
  b.out = calloc((size_t)(m * W * n), 2), b.g = calloc((size_t)(m * W * k), 2);
  b.ti = (tpmm_tensor_t){b.in, TPMM_BFLOAT16, 2, {m, k}, 0}, b.tx = (tpmm_tensor_t){b.x2, TPMM_BFLOAT16, 2, {k, n}, 0};
  b.to = (tpmm_tensor_t){b.out, TPMM_BFLOAT16, 2, {m * W, n}, 0};
  b.tg = (tpmm_tensor_t){b.g, TPMM_BFLOAT16, 2, {m * W, k}, 0};
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
  if (tpmm_all_gather_matmul_plan_create(&b.ti, &b.tx, TPMM_WORLD_COMM_GROUP, b.W, NULL, &b.to, &b.tg, &b.plan) !=
      TPMM_SUCCESS) {
    fprintf(stderr, "plan_create: %s\n", tpmm_last_error());
    return 1;
  }
  /* the plan's setup (x2 packed for its lifetime), or a one-shot call's */
  tpi_mat_t xm = {(char *)b.x2, k, n, n, 1};
  tpi_gemm_create(&b.gemm, TPMM_BFLOAT16, &xm, NULL, TPMM_BFLOAT16, oneshot ? m * W : m, m * W,
                  oneshot ? m * W : INT64_MAX);
  const int steps[3] = {oneshot ? ONESHOT : PLAN, oneshot ? PLAN : ALLGATHER, oneshot ? HAND : GEMM};
  static double t[3][MAX_REPS];
  for (int it = 0; it < reps; it++)
    for (int v = 0; v < 3; v++) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double a = MPI_Wtime();
      step(&b, steps[v]);
      t[v][it] = MPI_Wtime() - a;
    }
  for (int v = 0; v < 3; v++) qsort(t[v], (size_t)reps, sizeof(double), cmp);
  const double t0 = 1e6 * t[0][reps / 2], t1 = 1e6 * t[1][reps / 2], t2 = 1e6 * t[2][reps / 2];
  if (rank == 0 && oneshot)
    printf(
        "oneshot_overhead W=%d m=%lld k=%lld n=%lld bf16: one-shot %.1f us (+%.1f), plan %.1f us (+%.1f), "
        "hand-written %.1f us\n",
        b.W, (long long)m, (long long)k, (long long)n, t0, t0 - t2, t1, t1 - t2, t2);
  else if (rank == 0)
    printf(
        "plan_overhead W=%d m=%lld k=%lld n=%lld bf16: plan_execute %.1f us, MPI_Allgather %.1f us, GEMM %.1f us, "
        "tpmm adds %.1f us\n",
        b.W, (long long)m, (long long)k, (long long)n, t0, t1, t2, t0 - t1 - t2);
  tpmm_plan_destroy(b.plan);
  tpi_gemm_destroy(b.gemm);
  free(b.in), free(b.x2), free(b.out), free(b.g);
  tpmm_finalize();
  return 0;
}
