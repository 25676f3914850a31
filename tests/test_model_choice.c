/*
 * test_model_choice.c — the cost model's pick at small shards (issue 13):
 * a shard that travels with the agreement (≤ the fold cap) costs unfused no
 * latency of its own, while shm_pull adds a publishing copy, a flag hand-off
 * and a GEMM call per shard, so within a node the model must pick unfused
 * and never offer shm_pull as the runner-up (before, it picked shm_pull at
 * m = k = n = 1 and every call paid the shared window's hand-off). Checked on
 * every rank through tpi_plan_predict (rank 0's model) and the schedule that
 * each of a plan's executions runs.
 * And where the transfer is under 2 % of the GEMM's least time (decode
 * shapes), the choice is the baseline's without a calibration run: the first
 * call of the shape pays no GEMMs beyond its own. So it is where the reduce
 * operators' partials fold into the agreement (every rank multiplies for
 * unfused before it agrees): unfused, predicted and run, no calibration;
 * with the fold switched off the same shape calibrates. Every rank
 * calibrates where rank 0 does (it multiplies beside rank 0's calibration).
 * --crowded (more busy threads than CPUs): a group's creation times a
 * collective's wait (sync_s), which reaches the model's transfer, and its
 * model charges each GEMM busy threads / CPUs of a calibration timed in
 * CPU time (the time with a CPU to itself, however many ranks calibrate at
 * once: a 50 ms sleep moves the crowded group's clock by almost nothing and
 * the uncrowded one's by 50 ms): the same cached rates give a 1-rank
 * group's GEMM time and the crowded group's that many times it. The wait's
 * buffer failing on rank 0 (TPMM_DEBUG_FAIL "the crowded wait") fails the
 * creation on every rank, and the next one succeeds.
 * The progress thread's rule for TPMM_PROGRESS_THREAD=2 (model.c), at the
 * points bench/RESULTS.md §21 and §25 measured: the reduce operators across
 * nodes take the thread where their transfer is a quarter of a GEMM of 20 ms
 * or more, or of one whose tiles outlast 2 ms (1 Gbit, 1024 x 1536 x 1024),
 * not at 10 Gbit's 5-15 % (§32), all_gather_matmul keeps its polls there,
 * and no group within a node ever gets the thread.
 * Uneven shards (issue 15): the ring's prediction is its slowest rank's, so a
 * rank with no rows of its own waits for the first chunk: at 1024 + 0 rows
 * over 1 Gbit one chunk costs the whole transfer before any GEMM, whichever
 * rank holds the rows, and the model cuts more chunks.
 * The link's CPU cost a byte (cpu_byte, measured by topology.c where a group
 * spans nodes): on a link too fast to bind, the fused schedules' predictions
 * grow by it times the bytes the rank sends and receives, and by nothing
 * else: all_gather_matmul's ring and bidir_ring (own shard out, W - 1 shards
 * in, W - 2 forwarded), at even and 1024 + 0 shards; the reduce operators'
 * ring (partials out and in; all_reduce also its rounded rows out and in);
 * hier, all_gather_matmul's and the reduce operators', at 2 nodes x 2 ranks:
 * its rail's bytes only.
 * The baseline's prediction does not move: its transfer holds that cost.
 */
#include <math.h>
#include <signal.h>
#include <unistd.h>

#include "src/comm/group.h"
#include "src/common/common.h"
#include "src/common/debug.h"
#include "src/gemm/gemm.h"
#include "src/pipeline/pipeline.h"
#include "testutil.h"

/* bf16 tensors of one call at (m, k, n), random, and the test case's name. */
typedef struct {
  uint16_t *in, *x2, *out;
  tpmm_tensor_t ti, tx, to;
  tpmm_all_gather_matmul_opts_t o;
  char name[96];
} call_t;

static void setup(call_t *c, const char *what, int64_t m, int64_t k, int64_t n, int rank, int W) {
  const tpmm_dtype_t dt = TPMM_BFLOAT16;
  c->in = calloc((size_t)(m * k), 2), c->x2 = calloc((size_t)(k * n), 2), c->out = calloc((size_t)(m * W * n), 2);
  gen_for(c->in, dt, m * k, 3, rank, 1);
  gen_for(c->x2, dt, k * n, 3, rank, 2);
  c->ti = (tpmm_tensor_t){c->in, dt, 2, {m, k}, 0};
  c->tx = (tpmm_tensor_t){c->x2, dt, 2, {k, n}, 0};
  c->to = (tpmm_tensor_t){c->out, dt, 2, {m * W, n}, 0};
  c->o = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  c->o.gather_output = false;
  snprintf(c->name, sizeof c->name, "%s at m=%lld k=%lld n=%lld W=%d", what, (long long)m, (long long)k, (long long)n,
           W);
  test_case(c->name, 60);
}

/* A reduce operator's operands on this rank, bf16 from `seed`: input (mb W, k), x2 (k, n), output of mb rows
 * (reduce_scatter) or mb W (all_reduce). red_free releases them. */
typedef struct {
  uint16_t *in, *x2, *out;
  tpmm_tensor_t ti, tx, to;
} red_operands_t;

static void red_operands(red_operands_t *r, int all, int64_t mb, int64_t k, int64_t n, int W, int rank, int seed) {
  const int64_t m = mb * W, rows = all ? m : mb;
  r->in = calloc((size_t)(m * k), 2), r->x2 = calloc((size_t)(k * n), 2), r->out = calloc((size_t)(rows * n), 2);
  gen_for(r->in, TPMM_BFLOAT16, m * k, seed, rank, 1);
  gen_for(r->x2, TPMM_BFLOAT16, k * n, seed, rank, 2);
  r->ti = (tpmm_tensor_t){r->in, TPMM_BFLOAT16, 2, {m, k}, 0};
  r->tx = (tpmm_tensor_t){r->x2, TPMM_BFLOAT16, 2, {k, n}, 0};
  r->to = (tpmm_tensor_t){r->out, TPMM_BFLOAT16, 2, {rows, n}, 0};
}

static void red_free(red_operands_t *r) { free(r->in), free(r->x2), free(r->out); }

/* A plan of the operator on r's tensors over the world group (NULL on failure, reported). */
static tpmm_plan_t *red_plan(red_operands_t *r, int all, int W, const char *what) {
  const tpmm_matmul_reduce_opts_t o = TPMM_MATMUL_REDUCE_OPTS_INIT;
  tpmm_plan_t *plan = NULL;
  expect_status(
      all ? tpmm_matmul_all_reduce_plan_create(&r->ti, &r->tx, TPMM_WORLD_COMM_GROUP, W, &o, &r->to, &plan)
          : tpmm_matmul_reduce_scatter_plan_create(&r->ti, &r->tx, TPMM_WORLD_COMM_GROUP, W, &o, &r->to, &plan),
      TPMM_SUCCESS, what, NULL);
  return plan;
}

/* tpi_model_auto_thread at chosen (tile, transfer, GEMM) times, in ms. */
static void thread_rule(void) {
  static const struct {
    int op, gi, nodes;
    double tile, xfer, gemm;
    int want;
    const char *why;
  } t[] = {
      {TPI_OP_MATMUL_REDUCE_SCATTER, 0, 2, 1, 33, 90, 1, "reduce_scatter at issue 14's 1 Gbit point"},
      {TPI_OP_MATMUL_ALL_REDUCE, 0, 2, 1, 70, 90, 1, "all_reduce at issue 14's 1 Gbit point"},
      {TPI_OP_MATMUL_ALL_REDUCE, 0, 4, 1, 23, 90, 1, "a transfer just over a quarter of the GEMM"},
      {TPI_OP_MATMUL_ALL_REDUCE, 0, 2, 1, 22, 90, 0, "a transfer just under a quarter of the GEMM"},
      {TPI_OP_MATMUL_REDUCE_SCATTER, 0, 2, 3.5, 2.5, 45, 0, "reduce_scatter at 10 Gbit: 3.5 ms tiles, 5 % transfer"},
      {TPI_OP_MATMUL_REDUCE_SCATTER, 0, 1, 1, 33, 90, 0, "within a node"},
      {TPI_OP_MATMUL_REDUCE_SCATTER, 0, 2, 3, 60, 15, 1, "3 ms tiles, a 15 ms GEMM, the transfer the longer part"},
      {TPI_OP_MATMUL_REDUCE_SCATTER, 0, 2, 1, 60, 15, 0, "1 ms tiles and a 15 ms GEMM"},
      {TPI_OP_MATMUL_ALL_REDUCE, 0, 2, 3, 50, 90, 1, "all_reduce with 3 ms tiles and a long transfer"},
      {TPI_OP_MATMUL_ALL_REDUCE, 0, 2, 1, 15, 19, 0, "a GEMM under 20 ms"},
      {TPI_OP_ALL_GATHER_MATMUL, 0, 2, 1, 33, 90, 0, "all_gather_matmul with 1 ms tiles"},
      {TPI_OP_ALL_GATHER_MATMUL, 0, 2, 3, 33, 90, 1, "all_gather_matmul with 3 ms tiles"},
      {TPI_OP_ALL_GATHER_MATMUL, 0, 1, 3, 33, 90, 0, "3 ms tiles within a node"},
      {TPI_OP_ALL_GATHER_MATMUL, 1, 2, 1, 80, 100, 1, "gather_index 1, the transfer about the longer part"},
      {TPI_OP_ALL_GATHER_MATMUL, 1, 2, 1, 50, 100, 0, "gather_index 1, the GEMM the longer part"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    const int got =
        tpi_model_auto_thread(t[i].op, t[i].gi, t[i].nodes, 1e-3 * t[i].tile, 1e-3 * t[i].xfer, 1e-3 * t[i].gemm);
    check(got == t[i].want, "progress thread rule, %s: %s, expected %s", t[i].why, got ? "thread" : "polls",
          t[i].want ? "thread" : "polls");
  }
}

static void point(int64_t m, int64_t k, int64_t n, int rank, int W) {
  call_t c;
  setup(&c, "model pick", m, k, n, rank, W);
  tpmm_tensor_t ti = c.ti, tx = c.tx, to = c.to;
  const tpmm_all_gather_matmul_opts_t o = c.o;
  const char *name = c.name;
  tpmm_plan_t *plan = NULL;
  expect_status(tpmm_all_gather_matmul_plan_create(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, &o, &to, NULL, &plan),
                TPMM_SUCCESS, name, NULL);
  /* the runner-up is timed where rank 0's model puts it within the margin (its rates are cached from the
   * plan's choice): only beyond it must no execution run it */
  double ratio = 0;
  if (plan && rank == 0) {
    tpi_prediction_t pr;
    expect_status(tpi_plan_predict(plan, &pr), TPMM_SUCCESS, name, NULL);
    check(pr.algo == TPMM_ALGO_UNFUSED, "%s: the model picks %s (unfused %.2f us, %s %.2f us)", name,
          tpmm_algo_name((tpmm_algo_t)pr.algo), pr.t_seq * 1e6, tpmm_algo_name((tpmm_algo_t)pr.fused_algo),
          pr.t_fused * 1e6);
    ratio = pr.t_seq > 0 ? pr.t_fused / pr.t_seq : 0;
  }
  MPI_Bcast(&ratio, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (ratio <= 1 + tpi_explore_margin) {
    if (rank == 0) printf("%s: runner-up predicted %.2fx, within the margin: the tuner may time it\n", name, ratio);
    tpmm_plan_destroy(plan);
    plan = NULL;
  }
  for (int i = 0; plan && i < TPI_TUNE_CALLS + 2; i++) {
    expect_status(tpmm_plan_execute(plan, &ti, &to, NULL), TPMM_SUCCESS, name, NULL);
    int algo, chunks, thread;
    tpi_plan_schedule(plan, &algo, &chunks, &thread);
    check(algo == TPMM_ALGO_UNFUSED, "%s: execution %d runs %s", name, i, tpmm_algo_name((tpmm_algo_t)algo));
  }
  tpmm_plan_destroy(plan);
  free(c.in), free(c.x2), free(c.out);
}

/* Plan and one-shot calls at (m, k, n): whether rank 0 calibrated. */
static void calibrates(int64_t m, int64_t k, int64_t n, int rank, int W, int expect) {
  call_t c;
  setup(&c, "calibration", m, k, n, rank, W);
  tpmm_tensor_t ti = c.ti, tx = c.tx, to = c.to;
  const tpmm_all_gather_matmul_opts_t o = c.o;
  const char *name = c.name;
  const int before = tpi_model_calibrations;
  expect_status(tpmm_all_gather_matmul(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, &o, &to, NULL), TPMM_SUCCESS, name, NULL);
  /* a call of fewer than 64 rows is timed at up to the power of two at or above them (at least 8), not at 64:
   * those runs cost a decode call several times its own GEMM (bench/RESULTS.md §26) */
  int64_t span = 8;
  while (span < m * W) span *= 2;
  if (expect && m * W < 64)
    check(tpi_model_calibrations > before && tpi_model_span == span,
          "%s: rank %d: calibrated at %lld rows, expected %lld", name, rank, (long long)tpi_model_span,
          (long long)span);
  /* a one-shot call's x2 of 64 MiB or more is timed on slices of its rows (model.c, time_slices), where the
   * slice's setup is the call's: always on gemm_avx2.c */
  const int big = (double)k * (double)n * 2 >= 64 << 20;
  if (expect && tpi_gemm_avx2_takes())
    check(tpi_model_sliced == (big ? 8 : 0), "%s: rank %d: calibrated on %d slices of x2, expected %d", name, rank,
          tpi_model_sliced, big ? 8 : 0);
  if (expect && big && tpi_model_sliced) { /* scaled to the whole x2: within 3x of a run of the span over all of it */
    const int64_t rows = tpi_model_span;
    const double fit = tpi_model_fit[0] + (double)rows * tpi_model_fit[1];
    tpi_gemm_t *g = NULL;
    const tpi_mat_t x2 = {(char *)c.x2, k, n, n, 1};
    void *A = calloc((size_t)(rows * k), 2), *C = calloc((size_t)(rows * n), 2);
    double best = 1e30;
    if (A && C && tpi_gemm_create(&g, TPMM_BFLOAT16, &x2, NULL, TPMM_BFLOAT16, m, rows, 1) == TPMM_SUCCESS)
      for (int rep = 0; rep < 3; rep++) {
        const double t0 = tpi_now();
        if (tpi_gemm_run(g, rows, A, k, C, n) != TPMM_SUCCESS) break;
        if (rep) best = fmin(best, tpi_now() - t0); /* the first warms */
      }
    check(best < 1e30 && fit > best / 3 && fit < best * 3,
          "%s: rank %d: sliced fit %.1f ms for %lld rows, a whole run %.1f ms", name, rank, fit * 1e3, (long long)rows,
          best * 1e3);
    tpi_gemm_destroy(g);
    free(A), free(C);
  }
  tpmm_plan_t *plan = NULL;
  expect_status(tpmm_all_gather_matmul_plan_create(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, &o, &to, NULL, &plan),
                TPMM_SUCCESS, name, NULL);
  tpmm_plan_destroy(plan);
  if (expect) /* a plan's packed x2 is timed whole */
    check(tpi_model_sliced == 0, "%s: rank %d: the plan calibrated on %d slices of x2", name, rank, tpi_model_sliced);
  /* one-shot (x2 in place) and plan (packed) are calibrated apart; every
   * rank multiplies beside rank 0's calibration (choose.c) */
  check((tpi_model_calibrations - before > 0) == expect, "%s: rank %d: %d calibrations, expected %s", name, rank,
        tpi_model_calibrations - before, expect ? "some" : "none");
  free(c.in), free(c.x2), free(c.out);
}

/* A one-shot call whose transfer is 2-10 % of the GEMM's floor (x2 at 10 GB/s) runs unfused uncalibrated
 * and times its GEMM; the next call's agreement carries the slowest rank's time, so the calls after two
 * such times (from the fourth) weigh the transfer against the least of them, the same on every rank:
 * calibrated only if the transfer is 2 % of it or more (model.c, tpi_model_comm_share). A plan of the
 * shape calibrates at once, and so does a reduce operator's one-shot call (its baseline times nothing).
 * 16 x 8192 x 2048 bf16: 256 KiB shard, 32 MiB x2, the transfer 2.6 % of the floor at W = 2, 7.9 % at 4. */
static void observes(int rank, int W) {
  if (W > 4) return;
  call_t c;
  setup(&c, "observe first", 16, 8192, 2048, rank, W);
  const tpmm_all_gather_matmul_opts_t o = c.o;
  const int before = tpi_model_calibrations;
  tpi_model_seen_share = 0;
  for (int i = 0; i < 3; i++) {
    expect_status(tpmm_all_gather_matmul(&c.ti, &c.tx, TPMM_WORLD_COMM_GROUP, W, &o, &c.to, NULL), TPMM_SUCCESS, c.name,
                  NULL);
    check(tpi_model_calibrations == before && tpi_model_seen_share == 0,
          "%s: rank %d: call %d calibrated (%d) or weighed a GEMM time seen (%.4f)", c.name, rank, i,
          tpi_model_calibrations - before, tpi_model_seen_share);
  }
  expect_status(tpmm_all_gather_matmul(&c.ti, &c.tx, TPMM_WORLD_COMM_GROUP, W, &o, &c.to, NULL), TPMM_SUCCESS, c.name,
                NULL);
  const double share = tpi_model_seen_share;
  check(share > 0 && share < 0.10, "%s: rank %d: the fourth call weighed the transfer at %.4f of a GEMM seen", c.name,
        rank, share);
  /* every rank weighed the same agreed time */
  double lo = share, hi = share;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  check(lo == hi, "%s: rank %d: the ranks weighed the transfer at %.4f ... %.4f of the GEMM seen", c.name, rank, lo,
        hi);
  check((tpi_model_calibrations > before) == (share >= TPI_NEGLIGIBLE_COMM),
        "%s: rank %d: transfer %.4f of the GEMM seen, %d calibrations", c.name, rank, share,
        tpi_model_calibrations - before);
  const int one_shot = tpi_model_calibrations;
  tpmm_plan_t *plan = NULL;
  expect_status(tpmm_all_gather_matmul_plan_create(&c.ti, &c.tx, TPMM_WORLD_COMM_GROUP, W, &o, &c.to, NULL, &plan),
                TPMM_SUCCESS, c.name, NULL);
  tpmm_plan_destroy(plan);
  check(tpi_model_calibrations > one_shot, "%s: rank %d: the plan did not calibrate", c.name, rank);
  free(c.in), free(c.x2), free(c.out);
  if (W != 2) return;
  /* reduce_scatter, 64 x 8192 x 2048: 128 KiB of partials to the peer (over the fold's cap), 4 % of the floor */
  red_operands_t r;
  red_operands(&r, 0, 32, 8192, 2048, W, rank, 5);
  const tpmm_matmul_reduce_opts_t ro = TPMM_MATMUL_REDUCE_OPTS_INIT;
  const int rs_before = tpi_model_calibrations;
  expect_status(tpmm_matmul_reduce_scatter(&r.ti, &r.tx, TPMM_WORLD_COMM_GROUP, W, &ro, &r.to), TPMM_SUCCESS, c.name,
                NULL);
  check(tpi_model_calibrations > rs_before, "%s: rank %d: reduce_scatter 64 x 8192 x 2048 did not calibrate", c.name,
        rank);
  red_free(&r);
}

/* Plans of more shapes than the rate cache holds: the newest shape stays cached (its next plan calibrates
 * nothing), the oldest made room (its next plan calibrates again). Before, a full cache kept its first
 * shapes and every later one calibrated on every plan. */
static void cache_turns_over(int rank, int W) {
  enum { SHAPES = 70 };
  test_case("the rate cache past its size", 120);
  int first = -1, last = -1;
  for (int i = 0; i <= SHAPES + 1; i++) {
    const int shape = i == SHAPES ? SHAPES - 1 : i == SHAPES + 1 ? 0 : i; /* then the newest, then the oldest */
    call_t c;
    setup(&c, "cache", 64, 256, 64 + 16 * shape, rank, W);
    const int before = tpi_model_calibrations;
    tpmm_plan_t *plan = NULL;
    expect_status(tpmm_all_gather_matmul_plan_create(&c.ti, &c.tx, TPMM_WORLD_COMM_GROUP, W, &c.o, &c.to, NULL, &plan),
                  TPMM_SUCCESS, c.name, NULL);
    tpmm_plan_destroy(plan);
    if (i == SHAPES) last = tpi_model_calibrations - before;
    if (i == SHAPES + 1) first = tpi_model_calibrations - before;
    free(c.in), free(c.x2), free(c.out);
  }
  check(last == 0, "rate cache: rank %d: the newest of %d shapes calibrated again (%d) instead of being cached", rank,
        SHAPES, last);
  check(first > 0, "rate cache: rank %d: the oldest of %d shapes was still cached", rank, SHAPES);
}

/* A reduce plan and one-shot call whose partials fold (no_fold 0) or not. */
static void reduce_fold(int all, int64_t mb, int64_t k, int64_t n, int rank, int W, int no_fold) {
  const int64_t m = mb * W;
  red_operands_t r;
  red_operands(&r, all, mb, k, n, W, rank, 5);
  const tpmm_matmul_reduce_opts_t o = TPMM_MATMUL_REDUCE_OPTS_INIT;
  char name[96];
  snprintf(name, sizeof name, "%s m=%lld k=%lld n=%lld W=%d%s", all ? "all_reduce" : "reduce_scatter", (long long)m,
           (long long)k, (long long)n, W, no_fold ? ", fold off" : "");
  test_case(name, 60);
  tpi_debug.no_fold = no_fold;
  const int before = tpi_model_calibrations;
  expect_status(all ? tpmm_matmul_all_reduce(&r.ti, &r.tx, TPMM_WORLD_COMM_GROUP, W, &o, &r.to)
                    : tpmm_matmul_reduce_scatter(&r.ti, &r.tx, TPMM_WORLD_COMM_GROUP, W, &o, &r.to),
                TPMM_SUCCESS, name, NULL);
  tpmm_plan_t *plan = red_plan(&r, all, W, name);
  tpi_debug.no_fold = 0;
  check((tpi_model_calibrations - before > 0) == no_fold, "%s: rank %d: %d calibrations, expected %s", name, rank,
        tpi_model_calibrations - before, no_fold ? "some" : "none");
  if (plan && rank == 0 && !no_fold) {
    tpi_prediction_t pr;
    expect_status(tpi_plan_predict(plan, &pr), TPMM_SUCCESS, name, NULL);
    check(pr.algo == TPMM_ALGO_UNFUSED && pr.fused_algo == 0, "%s: the model picks %s, weighs %s", name,
          tpmm_algo_name((tpmm_algo_t)pr.algo), tpmm_algo_name((tpmm_algo_t)pr.fused_algo));
  }
  for (int i = 0; plan && !no_fold && i < TPI_TUNE_CALLS + 2; i++) {
    expect_status(tpmm_plan_execute(plan, &r.ti, &r.to, NULL), TPMM_SUCCESS, name, NULL);
    int algo, chunks, thread;
    tpi_plan_schedule(plan, &algo, &chunks, &thread);
    check(algo == TPMM_ALGO_UNFUSED, "%s: execution %d runs %s", name, i, tpmm_algo_name((tpmm_algo_t)algo));
  }
  tpmm_plan_destroy(plan);
  red_free(&r);
}

/* The calibration's operands are data: every dtype's values in [-1, 1] (rounded), of
 * both signs, no run of zeros, not periodic at a power of two (calibrating on
 * zeros measured the GEMM 10-17 % fast). */
static void fill_is_data(void) {
  test_case("the calibration's operands", 10);
  enum { N = 3 * 4096 + 5 };
  static const tpmm_dtype_t dts[] = {TPMM_BFLOAT16, TPMM_FLOAT16, TPMM_FLOAT32};
  static const char *const names[] = {"bf16", "fp16", "fp32"};
  for (int d = 0; d < 3; d++) {
    const size_t es = tpmm_dtype_size(dts[d]);
    unsigned char *b = malloc(N * es);
    memset(b, 0, N * es);
    tpi_model_fill(b, N, dts[d]);
    int zeros = 0, neg = 0, out = 0, same = 0;
    for (size_t i = 0; i < N; i++) {
      const double v = get_el(b, dts[d], (int64_t)i);
      zeros += v == 0, neg += v < 0, out += !(v >= -1 && v <= 1);
      same += i >= 4096 && v == get_el(b, dts[d], (int64_t)i - 4096);
    }
    check(zeros < N / 100 && neg > N / 3 && neg < 2 * N / 3 && out == 0 && same < N / 100,
          "tpi_model_fill(%s): %d zeros, %d negative, %d outside [-1, 1], %d equal to the value 4096 before, of %d",
          names[d], zeros, neg, out, same, N);
    free(b);
  }
}

/* A plan of m rows per rank on group and its prediction (this rank's model). */
static void predict_on(const char *group, int64_t m, int rank, int W, tpi_prediction_t *pr) {
  call_t c;
  setup(&c, group, m, 256, 320, rank, W);
  tpmm_plan_t *plan = NULL;
  memset(pr, 0, sizeof *pr);
  expect_status(tpmm_all_gather_matmul_plan_create(&c.ti, &c.tx, group, W, &c.o, &c.to, NULL, &plan), TPMM_SUCCESS,
                c.name, NULL);
  if (plan) expect_status(tpi_plan_predict(plan, pr), TPMM_SUCCESS, c.name, NULL);
  tpmm_plan_destroy(plan);
  free(c.in), free(c.x2), free(c.out);
}

static void crowded(int rank, int W) {
  test_case("a crowded machine", 60);
  const long cpus = tpi_group_world()->online_cpus;
  /* a machine with CPUs to spare is crowded by GEMM threads: every rank runs cpus of them */
  int64_t threads = 1;
  if ((long)W <= cpus) threads = cpus, tpmm_set_param(TPMM_PARAM_NUM_THREADS, threads);
  char solo[32];
  snprintf(solo, sizeof solo, "solo%d", rank);
  const int all[] = {0, 1, 2, 3, 4, 5, 6, 7}, me[] = {rank};
  expect_status(tpmm_create_group("crowd", W, all), TPMM_SUCCESS, "create crowd", NULL);
  expect_status(tpmm_create_group(solo, 1, me), TPMM_SUCCESS, "create solo", NULL);
  tpi_group_t *gc = NULL, *gs = NULL;
  tpi_group_get("test", "crowd", &gc), tpi_group_get("test", solo, &gs);
  if (gc && gs) {
    check(tpi_group_crowded(gc) && !tpi_group_crowded(gs), "rank %d: crowded %d / solo %d", rank, tpi_group_crowded(gc),
          tpi_group_crowded(gs));
    check(gc->sync_s > 0 && gs->sync_s == 0, "rank %d: sync_s %g on the crowded group, %g alone", rank, gc->sync_s,
          gs->sync_s);
    const double c0 = tpi_model_clock(gc), s0 = tpi_model_clock(gs);
    usleep(50000);
    const double dc = tpi_model_clock(gc) - c0, ds = tpi_model_clock(gs) - s0;
    check(dc < 0.02 && ds >= 0.05, "rank %d: a 50 ms sleep moved the calibration clock %.3g ms crowded, %.3g ms alone",
          rank, dc * 1e3, ds * 1e3);
    /* 32 rows a rank on W ranks and 32 * W alone: one GEMM of the same rows, x2 packed, one cached calibration */
    tpi_prediction_t ps, pc;
    predict_on(solo, 32 * W, rank, 1, &ps);
    predict_on("crowd", 32, rank, W, &pc);
    check(pc.t_xfer >= gc->sync_s, "rank %d: the crowded group's transfer %.3g ms is below its measured wait %.3g ms",
          rank, pc.t_xfer * 1e3, gc->sync_s * 1e3);
    const double f = (double)gc->kernel_ranks * (double)threads / (double)cpus;
    check(ps.t_gemm > 0 && fabs(pc.t_gemm / ps.t_gemm - f) < 1e-9 * f,
          "rank %d: GEMM %.3g ms crowded, %.3g ms alone: %.6f times, expected %.6f", rank, pc.t_gemm * 1e3,
          ps.t_gemm * 1e3, ps.t_gemm > 0 ? pc.t_gemm / ps.t_gemm : 0.0, f);
  }
  tpmm_destroy_group(solo);
  tpmm_destroy_group("crowd");
  /* the wait's buffer failing on rank 0 alone fails the creation on every rank, none left waiting */
  creation_fails_everywhere("the crowded wait", "crowd", W, all, rank);
  tpmm_set_param(TPMM_PARAM_NUM_THREADS, 1);
}

/* tpi_model_ring at counts {1024, 0} and {0, 1024}, k = 4096 bf16, a 1 Gbit link and 80 us a row of GEMM, with
 * chunks multiplied whole (msg_rows 0, as hier's node peers do): the rank with no rows waits for a chunk. */
static void uneven_views(void) {
  test_case("the ring's model at uneven shards: the slowest rank", 10);
  int64_t ends[2][3] = {{0, 1024, 1024}, {0, 0, 1024}};
  const tpi_model_t m = {.g1 = 80e-6, .alpha = 50e-6, .beta = 125e6};
  const double xfer = 1024.0 * 4096 * 2 / m.beta, gemm = 1024 * m.g1;
  double one[2];
  for (int v = 0; v < 2; v++) {
    tpi_plan_t p = {0};
    p.a.W = 2, p.a.k = 4096, p.a.n = 2048, p.a.esize = 2, p.a.row0 = ends[v], p.a.m_max = 1024;
    one[v] = tpi_model_ring(&p, &m, 0, 1);
    int chunks = 0;
    tpi_model_ring_best(&p, &m, 0, &chunks);
    check(one[v] >= xfer + gemm, "counts %s: one chunk predicted %.1f ms, below the idle rank's %.1f + %.1f ms",
          v ? "0,1024" : "1024,0", one[v] * 1e3, xfer * 1e3, gemm * 1e3);
    check(chunks >= 4, "counts %s: the model cut %d chunks; one of 1/4 of the rows waits %.1f ms",
          v ? "0,1024" : "1024,0", chunks, xfer / 4 * 1e3);
  }
  check(fabs(one[0] - one[1]) < 1e-12, "1024,0 predicted %.6f ms, 0,1024 %.6f ms", one[0] * 1e3, one[1] * 1e3);
  /* W = 4, counts 1024,0,0,0, 4 chunks of 256 rows (x on the link, G = 1 ms + 256 rows of GEMM a call): empty
   * chunks cost nothing; one way round, rank 3 gets each chunk 3 hops on (3x + 4G); both ways (bidir), rank 3
   * gets the last two chunks one hop back and rank 2, two hops either way, is the slowest (2x + 4G) */
  int64_t ends4[5] = {0, 1024, 1024, 1024, 1024};
  tpi_plan_t p = {0};
  p.a.W = 4, p.a.k = 4096, p.a.n = 2048, p.a.esize = 2, p.a.row0 = ends4, p.a.m_max = 1024;
  const tpi_model_t m1 = {.g0 = 1e-3, .g1 = 80e-6, .alpha = 50e-6, .beta = 125e6};
  const double x = m1.alpha + 256.0 * 4096 * 2 / m1.beta, G = m1.g0 + 256 * m1.g1;
  const double uni = tpi_model_ring(&p, &m1, 0, 4), bi = tpi_model_ring(&p, &m1, 1, 4);
  check(fabs(uni - (3 * x + 4 * G)) < 1e-12, "W=4 1024,0,0,0 one way: %.4f ms, expected 3x + 4G = %.4f ms", uni * 1e3,
        (3 * x + 4 * G) * 1e3);
  check(fabs(bi - (2 * x + 4 * G)) < 1e-12, "W=4 1024,0,0,0 both ways: %.4f ms, expected 2x + 4G = %.4f ms", bi * 1e3,
        (2 * x + 4 * G) * 1e3);
  /* a link a thousand times faster: nothing hides the holder's view, which must not pay for the 12 empty chunks */
  const tpi_model_t m2 = {.g0 = 1e-3, .g1 = 80e-6, .alpha = 50e-6, .beta = 125e9};
  const double x2 = m2.alpha + 256.0 * 4096 * 2 / m2.beta, fast = tpi_model_ring(&p, &m2, 0, 4);
  check(fabs(fast - (3 * x2 + 4 * G)) < 1e-12, "W=4 1024,0,0,0 on a fast link: %.4f ms, expected 3x + 4G = %.4f ms",
        fast * 1e3, (3 * x2 + 4 * G) * 1e3);
}

/* gather_index 1's chunk count (tpi_model_ring_best): 2048 x2 rows a rank (two panels of 1024), n = 1024 bf16,
 * 1 Gbit. Where the own shard's GEMM outlasts the peer's transfer the model sees one chunk and two alike; two
 * are taken (one chunk waits for the whole shard when the GEMM runs faster than calibrated, bench/RESULTS.md
 * §36.4), never more than the panels. Where the transfer is the longer part two win outright. */
static void gi1_chunks(void) {
  test_case("gather_index 1: the ring's chunk count where the model cannot tell", 10);
  static const double g1[] = {25e-6, 5e-6};
  int64_t ends[3] = {0, 2048, 4096}; /* a gather_index 1 call carries its shards' ends, as uneven ones do */
  for (int i = 0; i < 2; i++) {
    const tpi_model_t m = {.g1 = g1[i], .alpha = 50e-6, .beta = 125e6};
    tpi_plan_t p = {0};
    p.a.W = 2, p.a.gather_index = 1, p.a.m = 2048, p.a.k = 4096, p.a.n = 1024, p.a.esize = 2;
    p.a.row0 = ends, p.a.m_max = 2048;
    int chunks = 0;
    const double pick = tpi_model_ring_best(&p, &m, 0, &chunks), one = tpi_model_ring(&p, &m, 0, 1);
    check(chunks == 2 && pick == tpi_model_ring(&p, &m, 0, 2),
          "GEMM %.0f ms a shard, transfer %.0f ms: %d chunks (one predicted %.2f ms, the pick %.2f ms), expected 2",
          2048 * g1[i] * 1e3, 2048.0 * 1024 * 2 / m.beta * 1e3, chunks, one * 1e3, pick * 1e3);
  }
  /* uneven, 2048 rows and none: the empty shard does not widen the cap, one rank's 2 panels are still cut */
  int64_t skew[3] = {0, 2048, 2048};
  const tpi_model_t m = {.g1 = 25e-6, .alpha = 50e-6, .beta = 125e6};
  tpi_plan_t p = {0};
  p.a.W = 2, p.a.gather_index = 1, p.a.m = 2048, p.a.k = 2048, p.a.n = 1024, p.a.esize = 2;
  p.a.row0 = skew, p.a.m_max = 2048;
  int chunks = 0;
  tpi_model_ring_best(&p, &m, 0, &chunks);
  check(chunks == 2, "counts 2048,0: %d chunks, expected 2", chunks);
}

/* The same shapes with the ring's messages of 256 KiB (32 rows of k = 4096 bf16), which the engine forwards and
 * multiplies as they arrive: a chunk's GEMM starts with its first message, and where the link is the slower it
 * ends one message's GEMM after the last; a chunk s hops away comes s - 1 messages after its own transfer.
 * tpi_model_build sets the message size for gather_index 0 only (gather_index 1 multiplies whole panels);
 * hier's prediction leaves it out (node peers' chunks). */
static void message_credit(int rank, int W) {
  test_case("the ring's model multiplies a chunk's messages as they arrive", 10);
  const double rb = 4096.0 * 2;
  int64_t ends[3] = {0, 0, 1024};
  tpi_plan_t p = {0};
  p.a.W = 2, p.a.k = 4096, p.a.n = 2048, p.a.esize = 2, p.a.row0 = ends, p.a.m_max = 1024;
  /* GEMM the longer part: the idle rank starts on the first message and is then GEMM-bound, in any chunking */
  const tpi_model_t m = {.g1 = 80e-6, .alpha = 50e-6, .beta = 125e6, .msg_bytes = 256 << 10};
  const double xs = m.alpha + 32 * rb / m.beta, want = xs + 1024 * m.g1;
  const double one = tpi_model_ring(&p, &m, 0, 1);
  int chunks = 0;
  tpi_model_ring_best(&p, &m, 0, &chunks);
  check(fabs(one - want) < 1e-12, "0,1024, one chunk: %.4f ms, expected the first message + the GEMM = %.4f ms",
        one * 1e3, want * 1e3);
  check(chunks == 1, "0,1024, GEMM-bound: the model cut %d chunks where a first message's wait is all one saves",
        chunks);
  /* the link four times slower: the last message's GEMM after the whole transfer, C alphas on the link */
  tpi_model_t slow = m;
  slow.beta = m.beta / 4;
  for (int C = 1; C <= 4; C *= 4) {
    const double t = tpi_model_ring(&p, &slow, 0, C), w = C * slow.alpha + 1024 * rb / slow.beta + 32 * m.g1;
    check(fabs(t - w) < 1e-12, "0,1024 link-bound, %d chunks: %.4f ms, expected the transfer + 32 rows = %.4f ms", C,
          t * 1e3, w * 1e3);
  }
  /* W = 3, counts 1024,0,0 (rank 2 gets rank 0's rows two hops on, forwarded message by message): GEMM-bound, two
   * messages' wait and the GEMM, one chunk (a call costs g0 and at least F, x2's read: chunks of a message or
   * less, whose first would come a hop sooner, cost more calls than that saves); link-bound, the transfer, one
   * message more, the last one's GEMM */
  int64_t ends3[4] = {0, 1024, 1024, 1024};
  tpi_plan_t p3 = p;
  p3.a.W = 3, p3.a.row0 = ends3;
  tpi_model_t m3 = m;
  m3.g0 = 312e-6, m3.floor = 3.4e-3;
  const double one3 = tpi_model_ring(&p3, &m3, 0, 1), want3 = 2 * xs + m3.g0 + 1024 * m.g1;
  tpi_model_ring_best(&p3, &m3, 0, &chunks);
  check(fabs(one3 - want3) < 1e-12 && chunks == 1,
        "W=3 1024,0,0: one chunk %.4f ms, expected two messages + the GEMM = %.4f ms; %d chunks cut", one3 * 1e3,
        want3 * 1e3, chunks);
  const double xsl = slow.alpha + 32 * rb / slow.beta, x1 = slow.alpha + 1024 * rb / slow.beta;
  const double slow3 = tpi_model_ring(&p3, &slow, 0, 1), wslow3 = x1 + xsl + 32 * m.g1;
  check(fabs(slow3 - wslow3) < 1e-12, "W=3 1024,0,0 link-bound: %.4f ms, expected x + one message + 32 rows = %.4f ms",
        slow3 * 1e3, wslow3 * 1e3);
  /* even shards, link-bound: the own GEMM, then the remote chunk's last message (of 500 rows: 20) */
  int64_t even[3] = {0, 500, 1000};
  p.a.row0 = even, p.a.m_max = 500;
  const double te = tpi_model_ring(&p, &slow, 0, 1), we = slow.alpha + 500 * rb / slow.beta + 20 * m.g1;
  check(fabs(te - we) < 1e-12, "500,500 link-bound: %.4f ms, expected %.4f ms", te * 1e3, we * 1e3);
  /* ... with the link's CPU cost: the last message's 20 rows in and their cost after the transfer */
  tpi_model_t sc = slow;
  sc.cpu_byte = 1e-9;
  const double tc = tpi_model_ring(&p, &sc, 0, 1), wc = we + 20 * rb * 1e-9;
  check(fabs(tc - wc) < 1e-12, "500,500 link-bound, 1 ns/B: %.4f ms, expected %.4f ms", tc * 1e3, wc * 1e3);
  /* messages of whole chunks: the chunk's GEMM after its arrival */
  slow.msg_bytes = 0;
  const double tw = tpi_model_ring(&p, &slow, 0, 1), ww = slow.alpha + 500 * rb / slow.beta + 500 * m.g1;
  check(fabs(tw - ww) < 1e-12, "whole chunks, link-bound: %.4f ms, expected the chunk's GEMM = %.4f ms", tw * 1e3,
        ww * 1e3);
  /* hier at 2 nodes x 2 ranks on a slow link: the whole chunk's GEMM whatever msg_bytes says */
  int64_t e4[5] = {0, 512, 1024, 1536, 2048};
  tpi_group_t gg = {0};
  gg.n_nodes = 2, gg.node_size = 2;
  tpi_plan_t h = {0};
  h.g = &gg, h.a.W = 4, h.a.k = 4096, h.a.n = 2048, h.a.esize = 2, h.a.row0 = e4, h.a.m_max = 512;
  const tpi_algo_t *hier = tpi_algo_get(&tpi_op_all_gather_matmul, TPMM_ALGO_HIER);
  tpi_model_t hm = slow;
  int c1 = 1, c2 = 1;
  const double whole = hier->predict(&h, &hm, &c1);
  hm.msg_bytes = 256 << 10;
  check(hier->predict(&h, &hm, &c2) == whole, "hier counted its node peers' chunks by messages");
  if (W < 2) return;
  /* tpi_model_build: TPMM_SEGMENT_BYTES for gather_index 0, 0 for gather_index 1 */
  int64_t seg = 0;
  tpmm_get_param(TPMM_PARAM_SEGMENT_BYTES, &seg);
  for (int gi = 0; gi < 2; gi++) {
    const int64_t mm = 16, k = 96, n = 64, xr = gi ? 32 : k, xa = gi ? mm : mm * W;
    uint16_t *in = calloc((size_t)(mm * W * k), 2), *x2 = calloc((size_t)(k * n), 2);
    uint16_t *out = calloc((size_t)(xa * n), 2);
    gen_for(in, TPMM_BFLOAT16, mm * W * k, 7, rank, 1);
    gen_for(x2, TPMM_BFLOAT16, k * n, 7, rank, 2);
    tpmm_tensor_t ti = {in, TPMM_BFLOAT16, 2, {mm, gi ? xr * W : k}, 0}, tx = {x2, TPMM_BFLOAT16, 2, {xr, n}, 0};
    tpmm_tensor_t to = {out, TPMM_BFLOAT16, 2, {xa, n}, 0};
    tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
    o.gather_index = gi, o.gather_output = false;
    tpmm_plan_t *plan = NULL;
    expect_status(tpmm_all_gather_matmul_plan_create(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, &o, &to, NULL, &plan),
                  TPMM_SUCCESS, gi ? "a gather_index 1 plan" : "a plan", NULL);
    tpi_plan_t *ip = tpi_plan_inner(plan);
    tpi_model_t bm;
    if (ip && tpi_model_build(ip, "message_credit", &bm) == TPMM_SUCCESS) {
      const int64_t want_bytes = gi ? 0 : seg;
      check(bm.msg_bytes == want_bytes, "gather_index %d: messages of %lld bytes, want %lld", gi,
            (long long)bm.msg_bytes, (long long)want_bytes);
    } else {
      check(0, "gather_index %d: no model built", gi);
    }
    tpmm_plan_destroy(plan);
    free(in), free(x2), free(out);
  }
}

/* One prediction with cpu_byte 0 and one with 1 ns a byte, on a link too fast to bind. */
static double cpu_delta(const tpi_plan_t *p, tpi_model_t m, double (*f)(const tpi_plan_t *, const tpi_model_t *, int),
                        int C) {
  m.alpha = m.lag = m.fixed = 0, m.beta = 1e18, m.cpu_byte = 0;
  const double t0 = f(p, &m, C);
  m.cpu_byte = 1e-9;
  return f(p, &m, C) - t0;
}
static double ring_uni(const tpi_plan_t *p, const tpi_model_t *m, int C) { return tpi_model_ring(p, m, 0, C); }
static double ring_bi(const tpi_plan_t *p, const tpi_model_t *m, int C) { return tpi_model_ring(p, m, 1, C); }
static double red_ring(const tpi_plan_t *p, const tpi_model_t *m, int C) {
  int chunks = C;
  return tpi_algo_get(p->op, TPMM_ALGO_RING)->predict(p, m, &chunks);
}
static double ag_hier(const tpi_plan_t *p, const tpi_model_t *m, int C) {
  int chunks = C;
  return tpi_algo_get(&tpi_op_all_gather_matmul, TPMM_ALGO_HIER)->predict(p, m, &chunks);
}
static double red_hier(const tpi_plan_t *p, const tpi_model_t *m, int C) {
  int chunks = C;
  return tpi_algo_get(p->op, TPMM_ALGO_HIER)->predict(p, m, &chunks);
}
static double red_base(const tpi_plan_t *p, const tpi_model_t *m, int C) {
  int chunks = C;
  return tpi_algo_get(p->op, TPMM_ALGO_UNFUSED)->predict(p, m, &chunks);
}

/* The tuner's prior where the link's CPU cost decides (choose.c tpi_tune_prior): all_gather_matmul's ring at
 * W = 2 on a 1 GB/s link, the baseline predicted 5 % slower than ring without the cost and 10 % faster than ring
 * with it: the prior is 1000 (no handicap), not 1100; without a cost measured, or with ring chosen, it is the
 * predictions' ratio. */
static void tune_prior(void) {
  test_case("the tuner's prior leaves out the link's CPU cost", 60);
  int64_t ends[3] = {0, 512, 1024};
  tpi_plan_t p = {0};
  p.a.W = 2, p.a.k = 4096, p.a.n = 2048, p.a.esize = 2, p.a.row0 = ends, p.a.m_max = 512;
  tpi_model_t m = {.g0 = 1e-4, .g1 = 80e-6, .alpha = 10e-6, .beta = 1e9};
  const tpi_algo_t *ring = tpi_algo_get(&tpi_op_all_gather_matmul, TPMM_ALGO_RING);
  const double f0 = ring_uni(&p, &m, 4), t_base = 1.05 * f0;
  m.cpu_byte = 1e-9;
  const double per_ns = ring_uni(&p, &m, 4) - f0;
  m.cpu_byte = 1e-9 * (1.1 * t_base - f0) / per_ns;
  const double f1 = ring_uni(&p, &m, 4);
  double t_pred[2] = {t_base, f1};
  int64_t pm = tpi_tune_prior(&p, &m, ring, 4, t_pred);
  check(per_ns > 0 && fabs(f1 / t_base - 1.1) < 1e-9 && pm == 1000,
        "ring %.6f ms with %.3f ns/B, %.6f without, unfused %.6f: prior %lld, want 1000", f1 * 1e3, m.cpu_byte * 1e9,
        f0 * 1e3, t_base * 1e3, (long long)pm);
  t_pred[0] = 0.9 * f0; /* ring slower without the cost too: its prediction without it */
  pm = tpi_tune_prior(&p, &m, ring, 4, t_pred);
  check(pm == llround(1000 / 0.9), "ring %.3f of unfused without the cost: prior %lld, want %lld", 1 / 0.9,
        (long long)pm, llround(1000 / 0.9));
  t_pred[0] = t_base;
  m.cpu_byte = 0; /* the same predictions where no cost was measured: their ratio */
  pm = tpi_tune_prior(&p, &m, ring, 4, t_pred);
  check(pm == llround(1000 * f1 / t_base), "no CPU cost measured: prior %lld, want %lld", (long long)pm,
        llround(1000 * f1 / t_base));
  m.cpu_byte = 1e-9; /* ring chosen: the baseline's handicap is the predictions' ratio */
  t_pred[1] = 0.8 * t_base;
  pm = tpi_tune_prior(&p, &m, ring, 4, t_pred);
  check(pm == 1250, "ring chosen at 0.8 of unfused: prior %lld, want 1250", (long long)pm);
}

static void link_cpu(int rank, int W) {
  test_case("the link's CPU cost a byte in the fused schedules' models", 60);
  const tpi_model_t m = {.g0 = 1e-4, .g1 = 80e-6};
  const double rb = 4096.0 * 2, tol = 1e-9; /* k = 4096 bf16; 1 ns a byte over ~ms */
  for (int w = 2; w <= 4; w += 2) {
    int64_t ends[5];
    for (int j = 0; j <= w; j++) ends[j] = 512 * j;
    tpi_plan_t p = {0};
    p.a.W = w, p.a.k = 4096, p.a.n = 2048, p.a.esize = 2, p.a.row0 = ends, p.a.m_max = 512;
    const double want = 2.0 * (w - 1) * 512 * rb * 1e-9;
    for (int bi = 0; bi < 2; bi++) {
      const double d = cpu_delta(&p, m, bi ? ring_bi : ring_uni, 4);
      check(fabs(d - want) < tol, "W=%d %s, 512 rows a rank: +%.6f ms, expected 2(W-1) shards' bytes = %.6f ms", w,
            bi ? "bidir_ring" : "ring", d * 1e3, want * 1e3);
    }
  }
  int64_t ends[3] = {0, 1024, 1024};
  tpi_plan_t p = {0};
  p.a.W = 2, p.a.k = 4096, p.a.n = 2048, p.a.esize = 2, p.a.row0 = ends, p.a.m_max = 1024;
  const double d = cpu_delta(&p, m, ring_uni, 4), want = 1024 * rb * 1e-9;
  check(fabs(d - want) < tol, "W=2 1024,0: +%.6f ms, expected one side's 1024 rows = %.6f ms", d * 1e3, want * 1e3);
  { /* hier at 2 nodes x 2 ranks: its rail's bytes, 2(N-1) shards, not the ring's 2(W-1) */
    int64_t e4[5] = {0, 512, 1024, 1536, 2048};
    tpi_group_t gg = {0};
    gg.n_nodes = 2, gg.node_size = 2;
    tpi_plan_t h = {0};
    h.g = &gg, h.a.W = 4, h.a.k = 4096, h.a.n = 2048, h.a.esize = 2, h.a.row0 = e4, h.a.m_max = 512;
    const double dh = cpu_delta(&h, m, ag_hier, 4), want_h = 2.0 * 512 * rb * 1e-9;
    check(fabs(dh - want_h) < tol, "hier, 2 nodes x 2 ranks: +%.6f ms, expected 2(N-1) shards' bytes = %.6f ms",
          dh * 1e3, want_h * 1e3);
  }
  if (W < 2) return;
  /* the reduce operators on this group's real plans: m = 24 W rows, 2 chunks, n = 320 fp32 partials */
  for (int all = 0; all < 2; all++) {
    const int64_t mb = 24, k = 256, n = 320;
    red_operands_t r;
    red_operands(&r, all, mb, k, n, W, rank, 7);
    tpmm_plan_t *plan = red_plan(&r, all, W, "a reduce plan");
    tpi_plan_t *ip = tpi_plan_inner(plan);
    tpi_model_t rm;
    if (ip && tpi_model_build(ip, "link_cpu", &rm) == TPMM_SUCCESS) {
      /* partials: (W-1) mb rows out and as many in; all_reduce's rounded rows: (W-1) mb out and in */
      const double partials = 2.0 * (W - 1) * mb * n * 4, rounded = all ? 2.0 * (W - 1) * mb * n * 2 : 0;
      const double dr = cpu_delta(ip, rm, red_ring, 2), want_r = (partials + rounded) * 1e-9;
      check(fabs(dr - want_r) < tol, "%s W=%d: ring +%.6f ms, expected %.0f bytes' = %.6f ms",
            all ? "all_reduce" : "reduce_scatter", W, dr * 1e3, partials + rounded, want_r * 1e3);
      const double db = cpu_delta(ip, rm, red_base, 1);
      check(db == 0, "%s W=%d: unfused +%.6f ms, expected none", all ? "all_reduce" : "reduce_scatter", W, db * 1e3);
      /* hier at 2 nodes x 2 ranks, rank 0's view (the plan made 4 ranks wide): partials for node 1's two
       * ranks out, for node 0's two in; all_reduce: its own rounded rows out and in */
      tpi_group_t gg = *ip->g;
      int g4[4] = {0, 1, 2, 3};
      gg.n_nodes = 2, gg.node_size = 2, gg.node_index = 0, gg.rank = 0, gg.grank_of = g4;
      tpi_plan_t h = *ip;
      h.g = &gg, h.a.W = 4, h.a.m = 4 * mb;
      tpi_model_t hm = rm;
      hm.tile = 0, hm.g0 = hm.floor = 0; /* no poll lag: the charges add up whatever the order */
      const double hp = 2.0 * 2 * mb * n * 4, hr = all ? 2.0 * mb * n * 2 : 0;
      const double dh = cpu_delta(&h, hm, red_hier, 2), want_h = (hp + hr) * 1e-9;
      check(fabs(dh - want_h) < tol, "%s hier 2 x 2: +%.6f ms, expected %.0f bytes' = %.6f ms",
            all ? "all_reduce" : "reduce_scatter", dh * 1e3, hp + hr, want_h * 1e3);
    } else {
      check(0, "a reduce plan's model: %s", tpmm_last_error());
    }
    tpmm_plan_destroy(plan);
    red_free(&r);
  }
}

/* tpi_thread_runner_up (choose.c): with the fused lead clear, the reduce operators across nodes get the same
 * schedule with the progress thread turned over as the tuner's runner-up, at the prior 1.0 and with the chunks
 * the model cuts for it; not within a node, not all_gather_matmul, not hier, not where a runner-up is set, nor
 * where TPMM_PROGRESS_THREAD or comm_turn is forced. */
static void thread_runner_up(int rank, int W) {
  if (W < 2 || tpi_mpi_thread_level() < MPI_THREAD_SERIALIZED) return; /* no thread to turn over */
  const int64_t mb = 24, k = 256, n = 320;
  red_operands_t r;
  red_operands(&r, 0, mb, k, n, W, rank, 9);
  tpmm_plan_t *plan = red_plan(&r, 0, W, "a reduce_scatter plan");
  tpi_plan_t *ip = tpi_plan_inner(plan);
  tpi_model_t m;
  if (!ip || tpi_model_build(ip, "thread_runner_up", &m) != TPMM_SUCCESS) {
    check(0, "a reduce_scatter plan's model: %s", tpmm_last_error());
    tpmm_plan_destroy(plan);
    red_free(&r);
    return;
  }
  tpi_group_t gg = *ip->g;
  gg.n_nodes = 2;
  tpi_plan_t p = *ip;
  p.g = &gg;
  p.a.comm_turn = 0;
  const tpi_algo_t *ring = tpi_algo_get(p.op, TPMM_ALGO_RING), *hier = tpi_algo_get(p.op, TPMM_ALGO_HIER);
  int64_t saved = 0;
  tpmm_get_param(TPMM_PARAM_PROGRESS_THREAD, &saved);
  tpmm_set_param(TPMM_PARAM_PROGRESS_THREAD, 2);
  for (int th = 0; th < 2; th++) {
    tpi_model_t mt = m, mf = m;
    tpi_model_set_thread(&mt, th);
    tpi_model_set_thread(&mf, !th);
    int want_c = 0;
    ring->predict(&p, &mf, &want_c);
    tpi_proposal_t pr = {0};
    const int did = tpi_thread_runner_up(&p, &mt, ring, &pr);
    check(did && pr.cand[1].algo == TPMM_ALGO_RING && pr.cand[1].thread == !th && pr.cand[1].chunks == want_c &&
              pr.prior_pm == 1000,
          "ring chosen with thread %d, 2 nodes: runner-up %d (algo %d, %d chunks, thread %d, prior %lld), want ring, "
          "%d chunks, thread %d, prior 1000",
          th, did, pr.cand[1].algo, pr.cand[1].chunks, pr.cand[1].thread, (long long)pr.prior_pm, want_c, !th);
    check(mt.thread == th, "the chosen model's thread changed to %d", mt.thread);
  }
  struct {
    const char *what;
    int nodes, comm_turn, param, prior, hier, agmm;
  } no[] = {{"within a node", 1, 0, 2, 0, 0, 0},           {"comm_turn 4", 2, 4, 2, 0, 0, 0},
            {"TPMM_PROGRESS_THREAD=1", 2, 0, 1, 0, 0, 0},  {"TPMM_PROGRESS_THREAD=0", 2, 0, 0, 0, 0, 0},
            {"a runner-up already set", 2, 0, 2, 1, 0, 0}, {"hier", 2, 0, 2, 0, 1, 0},
            {"all_gather_matmul", 2, 0, 2, 0, 0, 1}};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
    tpi_plan_t q = p;
    gg.n_nodes = no[i].nodes;
    q.a.comm_turn = no[i].comm_turn;
    if (no[i].agmm) q.op = &tpi_op_all_gather_matmul;
    tpmm_set_param(TPMM_PARAM_PROGRESS_THREAD, no[i].param);
    tpi_proposal_t pr = {0};
    if (no[i].prior) pr.cand[1] = (tpi_cand_t){TPMM_ALGO_UNFUSED, 1, 0}, pr.prior_pm = 1040;
    const int did = tpi_thread_runner_up(&q, &m, no[i].hier ? hier : ring, &pr);
    check(!did && pr.cand[1].algo == (no[i].prior ? TPMM_ALGO_UNFUSED : 0) && pr.prior_pm == (no[i].prior ? 1040 : 0),
          "%s: runner-up %d (algo %d, prior %lld), want none added", no[i].what, did, pr.cand[1].algo,
          (long long)pr.prior_pm);
  }
  tpmm_set_param(TPMM_PARAM_PROGRESS_THREAD, saved);
  tpmm_plan_destroy(plan);
  red_free(&r);
}

int main(int argc, char **argv) {
  if (tpmm_init(&argc, &argv) != TPMM_SUCCESS) return 1;
  int rank, W;
  tpmm_get_rank(TPMM_WORLD_COMM_GROUP, &rank);
  tpmm_get_group_size(TPMM_WORLD_COMM_GROUP, &W);
  t_rank = rank;
  signal(SIGALRM, test_on_alarm);
  if (argc > 1 && strcmp(argv[1], "--crowded") == 0) {
    if (W <= 8) crowded(rank, W);
    alarm(0);
    const int rc = finish("test_model_choice --crowded");
    tpmm_finalize();
    return rc;
  }
  fill_is_data();
  thread_rule();
  uneven_views();
  gi1_chunks();
  message_credit(rank, W);
  link_cpu(rank, W);
  tune_prior();
  thread_runner_up(rank, W);
  point(1, 1, 1, rank, W);
  point(1, 64, 64, rank, W);
  point(8, 256, 256, rank, W); /* 4 KiB shards */
  if (W > 1) {
    calibrates(1, 4096, 2048, rank, W, 0); /* decode: 8 KiB shard, 16 MiB x2 (below 2 % up to W = 8) */
    calibrates(64, 256, 256, rank, W, 1);  /* 32 KiB shard, 128 KiB x2 */
    calibrates(12, 320, 256, rank, W, 1);  /* 6 KiB shard: 24-48 rows (W = 2-4) timed at up to 32 or 64 */
    /* 1 MiB shard, 64 MiB x2: the one-shot call's timed on slices (its transfer, 5 % of the floor at W = 2,
     * would otherwise have the first calls time their GEMM instead: observes) */
    tpi_model_observe_first = 0;
    calibrates(64, 8192, 4096, rank, W, 1);
    tpi_model_observe_first = 1;
    observes(rank, W);
    /* 14 KiB (reduce_scatter) and about 9 KiB (all_reduce) of partials per peer, x2 of 115-130 KiB; shapes
     * of their own, so that the calibration with the fold off is not in the cache */
    for (int all = 0; all < 2; all++)
      for (int no_fold = 0; no_fold < 2; no_fold++)
        reduce_fold(all, all ? 8 / W + 1 : 16, all ? 296 : 264, 224, rank, W, no_fold);
    cache_turns_over(rank, W);
  }
  alarm(0);
  const int rc = finish("test_model_choice");
  tpmm_finalize();
  return rc;
}
