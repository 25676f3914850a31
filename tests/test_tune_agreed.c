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

/* One plan of the test's shape, tuning both candidates back to back
 * (tune.c); TPMM_DEBUG_FAIL is `fail` on rank 1 while tpmm_init reads it. */
typedef struct {
  uint16_t *in, *x2, *out;
  tpmm_tensor_t ti, tx, to;
  tpmm_plan_t *plan;
} point_t;

static void point_open(point_t *p, const char *name, const char *fail, int rank, int W) {
  if (rank == 1 && fail) setenv("TPMM_DEBUG_FAIL", fail, 1);
  if (tpmm_init(NULL, NULL) != TPMM_SUCCESS) {
    fprintf(stderr, "tpmm_init: %s\n", tpmm_last_error());
    exit(1);
  }
  unsetenv("TPMM_DEBUG_FAIL");
  tpi_explore_margin = INFINITY, tpi_tune_budget = INFINITY;
  p->in = calloc(M * K, 2), p->x2 = calloc(K * N, 2), p->out = calloc((size_t)M * W * N, 2);
  gen_for(p->in, DT, M * K, 7, rank, 1);
  gen_for(p->x2, DT, K * N, 7, rank, 2);
  p->ti = (tpmm_tensor_t){p->in, DT, 2, {M, K}, 0};
  p->tx = (tpmm_tensor_t){p->x2, DT, 2, {K, N}, 0};
  p->to = (tpmm_tensor_t){p->out, DT, 2, {M * W, N}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.gather_output = false;
  p->plan = NULL;
  test_case(name, 60);
  expect_status(
      tpmm_all_gather_matmul_plan_create(&p->ti, &p->tx, TPMM_WORLD_COMM_GROUP, W, &o, &p->to, NULL, &p->plan),
      TPMM_SUCCESS, name, NULL);
}

static void point_close(point_t *p) {
  tpmm_plan_destroy(p->plan);
  free(p->in), free(p->x2), free(p->out);
  tpmm_finalize();
}

static void run_point(int fail_at, int rank, int W) {
  char ev[64], name[96];
  snprintf(ev, sizeof ev, "gemm tile:%d", fail_at);
  snprintf(name, sizeof name, "GEMM failure on rank 1 at tile event %d", fail_at);
  point_t p;
  point_open(&p, name, ev, rank, W);
  int failures = 0;
  for (int i = 0; i < EXECUTES && p.plan; i++) {
    tpmm_status_t st = tpmm_plan_execute(p.plan, &p.ti, &p.to, NULL);
    failures += st != TPMM_SUCCESS;
    check(st == TPMM_SUCCESS || (rank == 1 && st == TPMM_ERR_NO_MEMORY), "%s: execute %d: status %d (%s)", name, i, st,
          tpmm_last_error());
    int algo, chunks, thread, lo[2], hi[2];
    tpi_plan_schedule(p.plan, &algo, &chunks, &thread);
    int mine[2] = {algo, chunks}, neg[2] = {-algo, -chunks};
    MPI_Allreduce(mine, hi, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(neg, lo, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    check(hi[0] == -lo[0] && hi[1] == -lo[1], "%s: after execute %d the ranks run different schedules", name, i);
  }
  check(rank != 1 || failures == 1, "%s: the injected failure fired %d times on rank 1", name, failures);
  point_close(&p);
}

static void run_late_rank(int rank, int W) {
  const char *name = "rank 1 late to every execute: no rank's timed call includes the wait";
  point_t p;
  point_open(&p, name, NULL, rank, W);
  int timed = 0, slow = 0, seen[2] = {0, 0};
  for (int i = 0; i < EXECUTES && p.plan; i++) {
    if (rank == 1) usleep(100000);
    expect_status(tpmm_plan_execute(p.plan, &p.ti, &p.to, NULL), TPMM_SUCCESS, name, NULL);
    const tpi_tuner_t *t = tpi_plan_inner(p.plan)->tuner;
    if (t->last >= 0) timed++, seen[t->last] = 1, slow += t->last_elapsed >= 0.05;
  }
  check(seen[0] && seen[1], "%s: timed calls of the choice %d, of the runner-up %d; want both", name, seen[0], seen[1]);
  /* every one of them would carry the 100 ms; one may meet a stall of the machine's own */
  check(slow <= 1, "%s: %d of %d timed calls took 50 ms or more on rank %d (a GEMM of %d rows)", name, slow, timed,
        rank, M * W);
  point_close(&p);
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
