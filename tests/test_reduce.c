/*
 * test_reduce.c — correctness of tpmm_matmul_reduce_scatter and
 * tpmm_matmul_all_reduce on whatever world size mpirun gives (CTest runs 1,
 * 2, 3, 4 and, labelled long, 8 ranks).
 *
 * For each configuration (operator, dtype, m, k, n, transposes, bias of the
 * input dtype or fp32, SUM or AVG, comm_turn, strides) every rank:
 *   - draws its own input and x2 from the run's seed (printed;
 *     TPMM_TEST_SEED reproduces a run), so that any rank can regenerate any
 *     peer's tensors for the reference; the bias is the same on every rank;
 *   - poisons its output and the output's row padding with NaN before each
 *     call;
 *   - runs every algorithm (unfused first; auto 10 times on every third
 *     configuration, so that the autotuner times both its candidates) and
 *     checks: the output within the
 *     dtype-derived tolerance of an fp64 reference of its rows, every
 *     algorithm and a second comm_turn bit-identical to unfused, each call
 *     bit-identical to the previous one, padding never written;
 *   - then a plan of one algorithm, created once and executed with fresh
 *     inputs, each execution bit-identical to the one-shot unfused call on
 *     the same inputs.
 * Tolerance for element (i, j), ref = sum_q sum_k a_q*b_q [/W] + bias,
 * mag = sum |terms| + |bias|, with k*W products summed in fp32 (k per
 * partial, W - 1 additions across ranks):
 *     |out - ref| <= eps_out * |ref| + (k + W + 2) * 2^-24 * mag + tiny_out
 * An algorithm the world's topology cannot run (shm_pull across nodes, hier
 * in one node or with uneven nodes) must return TPMM_ERR_UNSUPPORTED on
 * every rank, one-shot and at plan creation; it is skipped then. hier runs
 * where MPICH splits one machine into nodes (MPIR_CVAR_NUM_CLIQUES=2: ranks
 * alternate between the two, so a node's ranks are not consecutive).
 * The fold (small partials travel with the agreement; every run, whatever
 * --every says): every dtype, blocks of 0, 1 and 3 rows, bias, AVG; the
 * folded unfused call, auto, a plan, and calls where some rank does not
 * fold (TPMM_DEBUG_NO_FOLD's switch on rank 0, or ring forced on some
 * ranks) are each bit-identical to unfused without the fold, and
 * tpi_debug.folded shows which of them folded (the sum's rank order shows
 * from W = 3: fp32 addition of two terms commutes); ranks that disagree on
 * m, with payloads of two sizes or one rank without, all return
 * TPMM_ERR_MISMATCH and write no output.
 * Finally (W >= 2) two groups over the same ranks in opposite orders run
 * both operators at once from two threads; each must match its own unfused
 * call bit for bit.
 *
 * Options: --quick (fewer shapes), --every N (only every N-th configuration:
 * the default suite's 3 and 4 ranks on 2 cores), --algos a,b,c (default:
 * every algorithm of the reduce operators and auto).
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "src/common/common.h"
#include "src/common/debug.h"
#include "src/pipeline/pipeline.h"
#include "testutil.h"

typedef struct {
  int all; /* matmul_all_reduce, else matmul_reduce_scatter */
  tpmm_dtype_t dt;
  int64_t m, k, n; /* m: the input's rows (the same on every rank) */
  int trans_in, trans_x2, bias, avg, comm_turn, strided;
} cfg_t;

static int W, rank;
static uint64_t seed;
static int algos[8], n_algos;
static int runs_here[TPMM_ALGO_HIER + 1]; /* world_can_run, per algorithm */

static void describe(const cfg_t *c, char *s, size_t len) {
  snprintf(s, len, "%s %s m=%lld k=%lld n=%lld W=%d trans_input=%d trans_x2=%d bias=%d avg=%d comm_turn=%d strided=%d",
           c->all ? "all_reduce" : "reduce_scatter", dt_name(c->dt), (long long)c->m, (long long)c->k, (long long)c->n,
           W, c->trans_in, c->trans_x2, c->bias, c->avg, c->comm_turn, c->strided);
}

/* The tensors of one configuration on this rank, and everything the
 * reference needs. */
typedef struct {
  const cfg_t *c;
  int64_t rows, row0, in_r, in_c, ld_in, x2_r, x2_c, ld_x2, ld_out;
  void *in, *x2, *out, *out0, *bias;
  tpmm_dtype_t bias_dt;
  tpmm_tensor_t t_in, t_x2, t_out, t_bias;
  tpmm_matmul_reduce_opts_t o;
} call_t;

/* Stored input of world rank q, draw `draw` (fresh inputs per plan execution). */
static void gen_input(const call_t *t, void *buf, int q, int idx, int draw) {
  gen_for(buf, t->c->dt, t->in_r * t->ld_in, seed + (uint64_t)idx * 7919, q, 1 + 4 * draw);
}
static void gen_x2(const call_t *t, void *buf, int q, int idx) {
  gen_for(buf, t->c->dt, t->x2_r * t->ld_x2, seed + (uint64_t)idx * 7919, q, 2);
}

static void setup(call_t *t, const cfg_t *c, int idx) {
  memset(t, 0, sizeof *t);
  t->c = c;
  const size_t es = dt_size(c->dt);
  const int64_t pad = c->strided ? 3 : 0;
  t->rows = c->all ? c->m : c->m / W;
  t->row0 = c->all ? 0 : rank * t->rows;
  t->in_r = c->trans_in ? c->k : c->m, t->in_c = c->trans_in ? c->m : c->k, t->ld_in = t->in_c + pad;
  t->x2_r = c->trans_x2 ? c->n : c->k, t->x2_c = c->trans_x2 ? c->k : c->n, t->ld_x2 = t->x2_c + pad;
  t->ld_out = c->n + pad;
  t->in = malloc((size_t)(t->in_r * t->ld_in + 1) * es);
  t->x2 = malloc((size_t)(t->x2_r * t->ld_x2 + 1) * es);
  t->out = malloc((size_t)(t->rows * t->ld_out + 1) * es);
  t->out0 = malloc((size_t)(t->rows * t->ld_out + 1) * es);
  t->bias_dt = c->bias == 2 ? TPMM_FLOAT32 : c->dt;
  t->bias = c->bias ? malloc((size_t)(c->n + 1) * 4) : NULL;
  gen_input(t, t->in, rank, idx, 0);
  gen_x2(t, t->x2, rank, idx);
  if (t->bias) gen_for(t->bias, t->bias_dt, c->n, seed + (uint64_t)idx * 7919, 0, 3); /* the same on every rank */
  t->t_in = (tpmm_tensor_t){t->in, c->dt, 2, {t->in_r, t->in_c}, t->ld_in};
  t->t_x2 = (tpmm_tensor_t){t->x2, c->dt, 2, {t->x2_r, t->x2_c}, t->ld_x2};
  t->t_out = (tpmm_tensor_t){t->out, c->dt, 2, {t->rows, c->n}, t->ld_out};
  t->t_bias = (tpmm_tensor_t){t->bias, t->bias_dt, 1, {c->n, 0}, 0};
  t->o = (tpmm_matmul_reduce_opts_t)TPMM_MATMUL_REDUCE_OPTS_INIT;
  t->o.bias = t->bias ? &t->t_bias : NULL;
  t->o.reduce_op = c->avg ? TPMM_REDUCE_AVG : TPMM_REDUCE_SUM;
  t->o.comm_turn = c->comm_turn;
  t->o.trans_input = c->trans_in;
  t->o.trans_x2 = c->trans_x2;
}

static void teardown(call_t *t) { free(t->in), free(t->x2), free(t->out), free(t->out0), free(t->bias); }

static tpmm_status_t call_op(call_t *t, const char *group, const tpmm_matmul_reduce_opts_t *o) {
  return t->c->all ? tpmm_matmul_all_reduce(&t->t_in, &t->t_x2, group, W, o, &t->t_out)
                   : tpmm_matmul_reduce_scatter(&t->t_in, &t->t_x2, group, W, o, &t->t_out);
}

/* Logical (rows x cols) fp64 copy of a stored matrix (transposed if t). */
static double *logical(const void *buf, tpmm_dtype_t dt, int64_t rows, int64_t cols, int64_t ld, int t) {
  double *d = malloc((size_t)(rows * cols + 1) * sizeof(double));
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) d[i * cols + j] = get_el(buf, dt, t ? j * ld + i : i * ld + j);
  return d;
}

/* This rank's output rows against fp64 over every rank's input draw `draw`.
 * Returns the number of elements outside tolerance. */
static int check_ref(const call_t *t, int idx, int draw) {
  const cfg_t *c = t->c;
  const size_t es = dt_size(c->dt);
  const int64_t rows = t->rows, n = c->n, k = c->k;
  double *ref = calloc((size_t)(rows * n + 1), sizeof(double)), *mag = calloc((size_t)(rows * n + 1), sizeof(double));
  void *in = malloc((size_t)(t->in_r * t->ld_in + 1) * es), *x2 = malloc((size_t)(t->x2_r * t->ld_x2 + 1) * es);
  for (int q = 0; q < W; q++) {
    gen_input(t, in, q, idx, draw);
    gen_x2(t, x2, q, idx);
    double *A = logical(in, c->dt, c->m, k, t->ld_in, c->trans_in),
           *B = logical(x2, c->dt, k, n, t->ld_x2, c->trans_x2);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t p = 0; p < k; p++) {
        const double a = A[(t->row0 + i) * k + p];
        for (int64_t j = 0; j < n; j++) {
          ref[i * n + j] += a * B[p * n + j];
          mag[i * n + j] += fabs(a * B[p * n + j]);
        }
      }
    free(A), free(B);
  }
  int bad = 0;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < n; j++) {
      double r = ref[i * n + j], g = mag[i * n + j];
      if (c->avg) r /= W, g /= W;
      if (t->bias) {
        const double b = get_el(t->bias, t->bias_dt, j);
        r += b, g += fabs(b);
      }
      const double got = get_el(t->out, c->dt, i * t->ld_out + j);
      if (!within_tol(got, r, g, c->dt, k + W)) {
        if (bad++ < 3)
          fprintf(stderr, "[rank %d] out[%lld,%lld] = %.9g, ref %.9g\n", rank, (long long)i, (long long)j, got, r);
      }
    }
  free(ref), free(mag), free(in), free(x2);
  return bad;
}

/* Padding of the output rows and the element past the end never written. */
static int padding_ok(const call_t *t) {
  int ok = is_poison(t->out, t->c->dt, t->rows * t->ld_out);
  for (int64_t i = 0; i < t->rows && ok; i++)
    for (int64_t j = t->c->n; j < t->ld_out; j++) ok &= is_poison(t->out, t->c->dt, i * t->ld_out + j);
  return ok;
}

static size_t out_bytes(const call_t *t) { return (size_t)(t->rows * t->ld_out + 1) * dt_size(t->c->dt); }

/* An algorithm this world cannot run: UNSUPPORTED on every rank, naming why. */
static void expect_unsupported(tpmm_status_t st, const char *an, const char *desc) {
  char what[200];
  snprintf(what, sizeof what, "[%s] %s: on this topology", an, desc);
  expect_status(st, TPMM_ERR_UNSUPPORTED, what, "cannot run on group");
  check(all_ranks_equal(st, TPMM_ERR_UNSUPPORTED), "%s: not UNSUPPORTED on every rank", what);
}

/* One algorithm, reps calls; the first call of unfused is the reference. */
static int run_algo(call_t *t, const char *desc, int algo, int idx) {
  const char *an = tpmm_algo_name((tpmm_algo_t)algo);
  if (!runs_here[algo]) {
    tpmm_set_param(TPMM_PARAM_ALGO, algo);
    expect_unsupported(call_op(t, TPMM_WORLD_COMM_GROUP, &t->o), an, desc);
    return 1;
  }
  const int64_t turns = t->rows > 1 ? t->rows : 1;
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  /* auto: 10 calls, so that the group's autotuner times both candidates and
   * runs its winner; a fused algorithm also with another comm_turn */
  const int reps = algo == TPMM_ALGO_AUTO && idx % 3 == 0 ? 10 : 2,
            extra = algo != TPMM_ALGO_UNFUSED && algo != TPMM_ALGO_AUTO;
  for (int rep = 0; rep < reps + extra; rep++) {
    tpmm_matmul_reduce_opts_t o = t->o;
    if (rep == reps) o.comm_turn = t->c->comm_turn == 1 ? (int)turns : 1; /* one row per unit, or one chunk */
    poison(t->out, t->c->dt, t->rows * t->ld_out + 1);
    tpmm_status_t st = call_op(t, TPMM_WORLD_COMM_GROUP, &o);
    check(st == TPMM_SUCCESS, "[%s] %s: status %d: %s", an, desc, st, tpmm_last_error());
    if (st != TPMM_SUCCESS) return 0;
    if (algo == TPMM_ALGO_UNFUSED && rep == 0) {
      int bad = check_ref(t, idx, 0);
      check(bad == 0, "[%s] %s: %d elements differ from the fp64 reference (seed %llu)", an, desc, bad,
            (unsigned long long)seed);
      memcpy(t->out0, t->out, out_bytes(t));
    } else {
      check(memcmp(t->out0, t->out, out_bytes(t)) == 0, "[%s] %s: output is not bit-identical to unfused%s", an, desc,
            rep == reps ? " with another comm_turn" : "");
    }
    check(padding_ok(t), "[%s] %s: output written outside its elements", an, desc);
  }
  return 1;
}

/* A plan of one algorithm, created once, executed with fresh inputs. */
static void run_plan(call_t *t, const char *desc, int algo, int idx) {
  const char *an = tpmm_algo_name((tpmm_algo_t)algo);
  tpmm_plan_t *plan = NULL;
  tpmm_tensor_t p_in = t->t_in, p_out = t->t_out;
  p_in.data = p_out.data = NULL; /* shapes only at creation */
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  tpmm_status_t st =
      t->c->all
          ? tpmm_matmul_all_reduce_plan_create(&p_in, &t->t_x2, TPMM_WORLD_COMM_GROUP, W, &t->o, &p_out, &plan)
          : tpmm_matmul_reduce_scatter_plan_create(&p_in, &t->t_x2, TPMM_WORLD_COMM_GROUP, W, &t->o, &p_out, &plan);
  if (!runs_here[algo]) {
    expect_unsupported(st, an, desc);
    return;
  }
  check(st == TPMM_SUCCESS && plan, "[plan %s] %s: create: status %d: %s", an, desc, st, tpmm_last_error());
  const int execs = algo == TPMM_ALGO_AUTO ? 10 : 2;
  for (int e = 0; e < execs && st == TPMM_SUCCESS; e++) {
    gen_input(t, t->in, rank, idx, 1 + e); /* fresh inputs; x2 is the plan's */
    tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
    poison(t->out, t->c->dt, t->rows * t->ld_out + 1);
    st = call_op(t, TPMM_WORLD_COMM_GROUP, &t->o);
    check(st == TPMM_SUCCESS, "[plan %s] %s: unfused reference: %s", an, desc, tpmm_last_error());
    if (e == 0 && st == TPMM_SUCCESS) check(check_ref(t, idx, 1) == 0, "[plan %s] %s: fresh input vs fp64", an, desc);
    memcpy(t->out0, t->out, out_bytes(t));
    tpmm_set_param(TPMM_PARAM_ALGO, algo);
    poison(t->out, t->c->dt, t->rows * t->ld_out + 1);
    if (st == TPMM_SUCCESS) st = tpmm_plan_execute(plan, &t->t_in, &t->t_out, NULL);
    check(st == TPMM_SUCCESS, "[plan %s] %s: execute %d: status %d: %s", an, desc, e, st, tpmm_last_error());
    check(st != TPMM_SUCCESS || memcmp(t->out0, t->out, out_bytes(t)) == 0,
          "[plan %s] %s: execute %d is not bit-identical to the one-shot unfused call", an, desc, e);
  }
  tpmm_plan_destroy(plan);
}

static int every = 1; /* --every N: only every N-th configuration */

static void run_cfg(const cfg_t *c, int idx) {
  if (idx % every) return;
  char desc[156];
  describe(c, desc, sizeof desc);
  test_case(desc, 120);
  call_t t;
  setup(&t, c, idx);
  int ok = 1;
  for (int ai = 0; ai < n_algos && ok; ai++) ok = run_algo(&t, desc, algos[ai], idx);
  if (ok) run_plan(&t, desc, algos[(idx / every) % n_algos], idx); /* every algorithm in turn, whatever --every */
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
  teardown(&t);
}

/* ---- the fold: small partials travel with the agreement ---- */

static int64_t folded(void) { return __atomic_load_n(&tpi_debug.folded, __ATOMIC_RELAXED); }

/* One call with algo on this rank (left set: the caller resets it) and its
 * fold switched off or not (TPMM_DEBUG_NO_FOLD's switch, read when a call
 * is prepared). */
static tpmm_status_t call_fold(call_t *t, int algo, int no_fold) {
  tpi_debug.no_fold = no_fold;
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  poison(t->out, t->c->dt, t->rows * t->ld_out + 1);
  tpmm_status_t st = call_op(t, TPMM_WORLD_COMM_GROUP, &t->o);
  tpi_debug.no_fold = 0;
  return st;
}

/* A plan made with the fold on (auto), executed with fresh inputs, each
 * execution against the unfused call that does not fold. */
static void fold_plan(call_t *t, const char *desc, int idx, int expect) {
  tpmm_plan_t *plan = NULL;
  tpmm_tensor_t p_in = t->t_in, p_out = t->t_out;
  p_in.data = p_out.data = NULL; /* made under auto */
  tpmm_status_t st =
      t->c->all
          ? tpmm_matmul_all_reduce_plan_create(&p_in, &t->t_x2, TPMM_WORLD_COMM_GROUP, W, &t->o, &p_out, &plan)
          : tpmm_matmul_reduce_scatter_plan_create(&p_in, &t->t_x2, TPMM_WORLD_COMM_GROUP, W, &t->o, &p_out, &plan);
  check(st == TPMM_SUCCESS, "[fold plan] %s: create: %s", desc, tpmm_last_error());
  for (int e = 0; e < 2 && st == TPMM_SUCCESS; e++) {
    gen_input(t, t->in, rank, idx, 1 + e);
    st = call_fold(t, TPMM_ALGO_UNFUSED, 1);
    tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
    check(st == TPMM_SUCCESS, "[fold plan] %s: the unfused call: %s", desc, tpmm_last_error());
    memcpy(t->out0, t->out, out_bytes(t));
    poison(t->out, t->c->dt, t->rows * t->ld_out + 1);
    const int64_t f0 = folded();
    if (st == TPMM_SUCCESS) st = tpmm_plan_execute(plan, &t->t_in, &t->t_out, NULL);
    check(st == TPMM_SUCCESS, "[fold plan] %s: execute %d: %s", desc, e, tpmm_last_error());
    check(st != TPMM_SUCCESS || memcmp(t->out0, t->out, out_bytes(t)) == 0,
          "[fold plan] %s: execute %d is not bit-identical to unfused without the fold", desc, e);
    check(folded() - f0 == expect, "[fold plan] %s: execute %d folded %lld times, expected %d", desc, e,
          (long long)(folded() - f0), expect);
  }
  tpmm_plan_destroy(plan);
}

/* Folded calls within the fp64 reference and bit-identical to the unfused
 * call that does not fold; so are calls where some rank does not fold
 * (switched off, or another TPMM_ALGO): then no rank uses the fold. */
static void fold_cfg(const cfg_t *c, int idx) {
  char desc[156];
  describe(c, desc, sizeof desc);
  test_case(desc, 120);
  call_t t;
  setup(&t, c, idx);
  const int expect = W > 1 && c->m > 0;
  tpmm_status_t st = call_fold(&t, TPMM_ALGO_UNFUSED, 1);
  check(st == TPMM_SUCCESS && check_ref(&t, idx, 0) == 0, "[fold] %s: unfused without the fold: %s", desc,
        tpmm_last_error());
  memcpy(t.out0, t.out, out_bytes(&t));
  const struct {
    int algo, no_fold, folds;
    const char *what;
  } runs[] = {
      {TPMM_ALGO_UNFUSED, 0, expect, "unfused"},
      {TPMM_ALGO_AUTO, 0, expect, "auto"},
      {TPMM_ALGO_UNFUSED, rank == 0, 0, "unfused, rank 0 without the fold"},
      {rank == 0 ? TPMM_ALGO_RING : TPMM_ALGO_AUTO, 0, 0, "ring forced on rank 0, auto elsewhere"},
      {rank == 0 ? TPMM_ALGO_AUTO : TPMM_ALGO_RING, 0, 0, "auto on rank 0, ring forced elsewhere"},
  };
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    const int64_t f0 = folded();
    st = call_fold(&t, runs[i].algo, runs[i].no_fold);
    check(st == TPMM_SUCCESS, "[fold: %s] %s: %s", runs[i].what, desc, tpmm_last_error());
    check(memcmp(t.out0, t.out, out_bytes(&t)) == 0, "[fold: %s] %s: not bit-identical to unfused without the fold",
          runs[i].what, desc);
    check(padding_ok(&t), "[fold: %s] %s: output written outside its elements", runs[i].what, desc);
    check(folded() - f0 == runs[i].folds, "[fold: %s] %s: folded %lld times, expected %d", runs[i].what, desc,
          (long long)(folded() - f0), runs[i].folds);
  }
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
  fold_plan(&t, desc, idx, expect);
  teardown(&t);
}

/* Ranks that disagree on m, the last one with a larger payload or with none
 * (its partials beyond the fold cap): TPMM_ERR_MISMATCH on every rank, no
 * output written, and the group still works. */
static void fold_mismatch(int all, int idx) {
  const int64_t m = 2 * W, more[2] = {3 * W, 1024 * W}; /* 1024 rows of 17 floats: > 64 KiB */
  for (int v = 0; v < 2; v++) {
    cfg_t c = {all, TPMM_FLOAT32, rank == W - 1 ? more[v] : m, 7, 17, 0, 0, 1, 0, 0, 0};
    char desc[96];
    snprintf(desc, sizeof desc, "[fold] %s: m=%lld on rank %d only", all ? "all_reduce" : "reduce_scatter",
             (long long)more[v], W - 1);
    test_case(desc, 60);
    call_t t;
    setup(&t, &c, idx + v);
    tpmm_status_t st = call_fold(&t, TPMM_ALGO_AUTO, 0);
    expect_status(st, TPMM_ERR_MISMATCH, desc, "disagree on m");
    int untouched = 1;
    for (int64_t i = 0; i < t.rows * t.ld_out + 1; i++) untouched &= is_poison(t.out, c.dt, i);
    check(untouched, "%s: output written on error", desc);
    teardown(&t);
    c.m = m;
    setup(&t, &c, idx + v);
    st = call_fold(&t, TPMM_ALGO_AUTO, 0);
    check(st == TPMM_SUCCESS && check_ref(&t, idx + v, 0) == 0, "%s: the next call: %s", desc, tpmm_last_error());
    teardown(&t);
  }
}

/* Every dtype, blocks of 0, 1 and 3 rows (all_reduce: one row more, not a
 * multiple of W), bias of both dtypes, SUM and AVG, one-shot and plans. */
static void fold_all(int idx) {
  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  static const int64_t mbs[] = {0, 1, 3};
  for (int all = 0; all < 2; all++) {
    for (int d = 0; d < 3; d++)
      for (int mi = 0; mi < 3; mi++) {
        const int v = d * 3 + mi;
        cfg_t c = {all,
                   dts[d],
                   mbs[mi] * W + (all && mi == 2),
                   mi == 1 ? 7 : 33,
                   17,
                   v % 2,
                   (v / 2) % 2,
                   v % 3,
                   (v + all) % 2,
                   0,
                   (v / 3) % 2};
        fold_cfg(&c, idx++);
      }
    if (W > 1) fold_mismatch(all, idx), idx += 2;
  }
}

/* ---- two groups at once ---- */
typedef struct {
  call_t *t;
  const char *group;
  tpmm_status_t st;
} job_t;

static void *job_main(void *arg) {
  job_t *j = arg;
  for (int i = 0; i < 3 && j->st == TPMM_SUCCESS; i++) j->st = call_op(j->t, j->group, &j->t->o);
  return NULL;
}

/* Groups "fwd" (world order) and "rev" (reversed): both operators on both
 * groups from two threads at once, then each against its own unfused call. */
static void two_groups(int all, int idx) {
  static const char *const names[2] = {"fwd", "rev"};
  cfg_t c = {all, TPMM_BFLOAT16, 4 * W, 96, 40, 0, 1, 1, 0, 0, 0};
  char desc[128];
  snprintf(desc, sizeof desc, "two groups, %s", all ? "all_reduce" : "reduce_scatter");
  test_case(desc, 120);
  call_t t[2];
  job_t jobs[2];
  pthread_t th[2];
  for (int g = 0; g < 2; g++) {
    setup(&t[g], &c, idx + g);
    jobs[g] = (job_t){&t[g], names[g], TPMM_SUCCESS};
  }
  for (int g = 0; g < 2; g++) pthread_create(&th[g], NULL, job_main, &jobs[g]);
  for (int g = 0; g < 2; g++) pthread_join(th[g], NULL);
  for (int g = 0; g < 2; g++) {
    check(jobs[g].st == TPMM_SUCCESS, "%s: group %s: status %d", desc, names[g], jobs[g].st);
    memcpy(t[g].out0, t[g].out, out_bytes(&t[g]));
    tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
    tpmm_status_t st = call_op(&t[g], names[g], &t[g].o);
    tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
    check(st == TPMM_SUCCESS && memcmp(t[g].out0, t[g].out, out_bytes(&t[g])) == 0,
          "%s: group %s: concurrent result differs from its unfused call (status %d)", desc, names[g], st);
    teardown(&t[g]);
  }
}

static void two_groups_all(void) {
  int fwd[64], rev[64];
  for (int i = 0; i < W; i++) fwd[i] = i, rev[i] = W - 1 - i;
  if (tpmm_create_group("fwd", W, fwd) != TPMM_SUCCESS || tpmm_create_group("rev", W, rev) != TPMM_SUCCESS) {
    check(0, "two groups: create: %s", tpmm_last_error());
    return;
  }
  two_groups(0, 9000);
  two_groups(1, 9010);
  tpmm_destroy_group("fwd");
  tpmm_destroy_group("rev");
}

int main(int argc, char **argv) {
  signal(SIGALRM, test_on_alarm);
  test_init(&argc, &argv, &rank, &W);
  tpi_tune_budget = INFINITY; /* auto's runner-up runs in its first calls, however much slower (tune.c) */
  int quick = 0;
  const char *algo_list = "unfused,shm_pull,ring,hier,auto";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) quick = 1;
    if (strcmp(argv[i], "--algos") == 0 && i + 1 < argc) algo_list = argv[++i];
    if (strcmp(argv[i], "--every") == 0 && i + 1 < argc) every = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
  }
  algos[n_algos++] = TPMM_ALGO_UNFUSED; /* first: the others compare to it */
  char buf[256];
  snprintf(buf, sizeof buf, "%s", algo_list);
  for (char *tok = strtok(buf, ","); tok && n_algos < 8; tok = strtok(NULL, ","))
    for (int a = 0; a <= TPMM_ALGO_HIER; a++)
      if (strcmp(tok, tpmm_algo_name((tpmm_algo_t)a)) == 0 && a != TPMM_ALGO_UNFUSED) algos[n_algos++] = a;
  for (int a = 0; a <= TPMM_ALGO_HIER; a++) runs_here[a] = world_can_run((tpmm_algo_t)a);
  const char *es = getenv("TPMM_TEST_SEED");
  seed = es ? strtoull(es, NULL, 10) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (rank == 0)
    printf("test_reduce: W=%d seed=%llu (TPMM_TEST_SEED=%llu reproduces), shm_pull %s, hier %s\n", W,
           (unsigned long long)seed, (unsigned long long)seed, runs_here[TPMM_ALGO_SHM_PULL] ? "runs" : "unsupported",
           runs_here[TPMM_ALGO_HIER] ? "runs" : "unsupported");

  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  /* m in rows per rank's block (times W), k odd and even, n odd and even */
  static const int64_t mbs[] = {0, 1, 5, 64}, ks[] = {1, 7, 256, 515}, ns[] = {64, 3};
  rng_t pick = {seed * 31 + 7};
  int idx = 0;
  for (int all = 0; all < 2; all++)
    for (int d = 0; d < 3; d++) {
      /* 1. shapes, options drawn at random */
      for (int mi = 0; mi < 4; mi++)
        for (int ki = 0; ki < 4; ki++) {
          if (quick && (mi + ki + d) % 4) continue;
          cfg_t c = {all, dts[d], mbs[mi] * W, ks[ki], ns[(mi + ki) % 2], 0, 0, 0, 0, 0, 0};
          if (all && mi == 2) c.m += W > 1 ? W - 1 : 0; /* all_reduce: m need not be a multiple of W */
          c.trans_in = (int)rng_range(&pick, 0, 1);
          c.trans_x2 = (int)rng_range(&pick, 0, 1);
          c.bias = (int)rng_range(&pick, 0, 2);
          c.avg = (int)rng_range(&pick, 0, 1);
          static const int turns[] = {0, 1, 3};
          c.comm_turn = turns[rng_range(&pick, 0, 2)];
          const int64_t rows = all ? c.m : c.m / W;
          if (c.comm_turn > (rows > 1 ? rows : 1)) c.comm_turn = 1;
          c.strided = (int)rng_range(&pick, 0, 1);
          run_cfg(&c, idx++);
        }
      /* 2. every option combination on a small odd shape */
      for (int opt = 0; opt < 2 * 2 * 3 * 2 * 2; opt++) {
        if (quick ? opt % 11 : opt % 2) continue;
        int v = opt;
        cfg_t c = {all, dts[d], 3 * W, 33, 17, 0, 0, 0, 0, 0, 0};
        c.trans_in = v % 2, v /= 2;
        c.trans_x2 = v % 2, v /= 2;
        c.bias = v % 3, v /= 3;
        c.avg = v % 2, v /= 2;
        c.strided = v % 2;
        c.comm_turn = opt % 3 == 2 ? 2 : 0;
        run_cfg(&c, idx++);
      }
    }
  /* all_reduce with fewer rows than ranks (owners of no row) and one more */
  for (int i = 0; i < 2; i++) {
    cfg_t c = {1, i ? TPMM_FLOAT32 : TPMM_BFLOAT16, i ? W + 1 : 1, 33, 17, i, 0, 1 + i, i, 0, i};
    run_cfg(&c, idx++);
    c.comm_turn = (int)c.m; /* one row per chunk */
    run_cfg(&c, idx++);
  }
  fold_all(8000); /* every run, whatever --every says */
  if (W >= 2 && W <= 64) two_groups_all();
  int rc = finish("test_reduce");
  tpmm_finalize();
  return rc;
}
