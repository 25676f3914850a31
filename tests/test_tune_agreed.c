/*
 * test_tune_agreed.c — the autotuner learns only from agreed data (issue 12):
 * a GEMM that fails on one rank in the middle of a plan's tuning must not
 * leave the ranks with different samples, hence different schedules (which
 * would then run different data phases against each other). For several
 * failure points, every execute's schedule is compared across ranks.
 * The test initialises MPI itself, so that rank 1 alone gets the fault
 * (TPMM_DEBUG_FAIL, read by tpmm_init) and tpmm can be restarted per point.
 * And a plan's call is timed from the end of its agreement: a rank that
 * arrives early waits there for the previous call's skew, which must not be
 * charged to the schedule of this call (rank 1 arrives 100 ms late).
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "src/pipeline/pipeline.h"
#include "testutil.h"

enum { M = 64, K = 64, N = 64, EXECUTES = 14 };
static const tpmm_dtype_t DT = TPMM_BFLOAT16;

static void run_point(int fail_at, int rank, int W) {
  char ev[64];
  snprintf(ev, sizeof ev, "gemm tile:%d", fail_at);
  if (rank == 1) setenv("TPMM_DEBUG_FAIL", ev, 1);
  if (tpmm_init(NULL, NULL) != TPMM_SUCCESS) {
    fprintf(stderr, "tpmm_init: %s\n", tpmm_last_error());
    exit(1);
  }
  unsetenv("TPMM_DEBUG_FAIL");
  tpi_explore_margin = INFINITY; /* always time both candidates, */
  tpi_tune_budget = INFINITY;    /* back to back (tune.c) */
  uint16_t *in = calloc(M * K, 2), *x2 = calloc(K * N, 2), *out = calloc((size_t)M * W * N, 2);
  gen_for(in, DT, M * K, 7, rank, 1);
  gen_for(x2, DT, K * N, 7, rank, 2);
  tpmm_tensor_t ti = {in, DT, 2, {M, K}, 0}, tx = {x2, DT, 2, {K, N}, 0}, to = {out, DT, 2, {M * W, N}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.gather_output = false;
  tpmm_plan_t *plan = NULL;
  char name[96];
  snprintf(name, sizeof name, "GEMM failure on rank 1 at tile event %d", fail_at);
  test_case(name, 60);
  expect_status(tpmm_all_gather_matmul_plan_create(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, &o, &to, NULL, &plan),
                TPMM_SUCCESS, name, NULL);
  int failures = 0;
  for (int i = 0; i < EXECUTES && plan; i++) {
    tpmm_status_t st = tpmm_plan_execute(plan, &ti, &to, NULL);
    failures += st != TPMM_SUCCESS;
    check(st == TPMM_SUCCESS || (rank == 1 && st == TPMM_ERR_NO_MEMORY), "%s: execute %d: status %d (%s)", name, i, st,
          tpmm_last_error());
    int algo, chunks, thread, lo[2], hi[2];
    tpi_plan_schedule(plan, &algo, &chunks, &thread);
    int mine[2] = {algo, chunks}, neg[2] = {-algo, -chunks};
    MPI_Allreduce(mine, hi, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(neg, lo, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    check(hi[0] == -lo[0] && hi[1] == -lo[1], "%s: after execute %d the ranks run different schedules", name, i);
  }
  check(rank != 1 || failures == 1, "%s: the injected failure fired %d times on rank 1", name, failures);
  tpmm_plan_destroy(plan);
  free(in), free(x2), free(out);
  tpmm_finalize();
}

static void run_late_rank(int rank, int W) {
  const char *name = "rank 1 late to every execute: no rank's timed call includes the wait";
  if (tpmm_init(NULL, NULL) != TPMM_SUCCESS) {
    fprintf(stderr, "tpmm_init: %s\n", tpmm_last_error());
    exit(1);
  }
  tpi_explore_margin = INFINITY, tpi_tune_budget = INFINITY;
  uint16_t *in = calloc(M * K, 2), *x2 = calloc(K * N, 2), *out = calloc((size_t)M * W * N, 2);
  gen_for(in, DT, M * K, 7, rank, 1);
  gen_for(x2, DT, K * N, 7, rank, 2);
  tpmm_tensor_t ti = {in, DT, 2, {M, K}, 0}, tx = {x2, DT, 2, {K, N}, 0}, to = {out, DT, 2, {M * W, N}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.gather_output = false;
  tpmm_plan_t *plan = NULL;
  test_case(name, 60);
  expect_status(tpmm_all_gather_matmul_plan_create(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, &o, &to, NULL, &plan),
                TPMM_SUCCESS, name, NULL);
  int timed = 0, slow = 0, seen[2] = {0, 0};
  for (int i = 0; i < EXECUTES && plan; i++) {
    if (rank == 1) usleep(100000);
    expect_status(tpmm_plan_execute(plan, &ti, &to, NULL), TPMM_SUCCESS, name, NULL);
    const tpi_tuner_t *t = tpi_plan_inner(plan)->tuner;
    if (t->last >= 0) timed++, seen[t->last] = 1, slow += t->last_elapsed >= 0.05;
  }
  check(seen[0] && seen[1], "%s: timed calls of the choice %d, of the runner-up %d; want both", name, seen[0], seen[1]);
  /* every one of them would carry the 100 ms; one may meet a stall of the machine's own */
  check(slow <= 1, "%s: %d of %d timed calls took 50 ms or more on rank %d (a GEMM of %d rows)", name, slow, timed,
        rank, M * W);
  tpmm_plan_destroy(plan);
  free(in), free(x2), free(out);
  tpmm_finalize();
}

int main(int argc, char **argv) {
  int provided, rank, W;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  t_rank = rank;
  signal(SIGALRM, test_on_alarm);
  for (int at = 2; at <= 6; at++) run_point(at, rank, W);
  run_late_rank(rank, W);
  alarm(0);
  const int rc = finish("test_tune_agreed");
  MPI_Finalize();
  return rc;
}
