/*
 * test_reduce_errors.c — the error table of tpmm_matmul_reduce_scatter and
 * tpmm_matmul_all_reduce (issue 14), under mpirun with 2 or more ranks
 * (CTest runs 2 and 3), one row per case.
 *
 * A row says which ranks apply a mutation to an otherwise valid call (all
 * of them, or only the last), which operators it applies to, the status
 * every rank must return and a substring every rank's message must hold.
 * For each row and operator every rank checks:
 *   - its status is the expected one, and every rank got the same;
 *   - its message holds the substring (ranks that did not fail themselves
 *     see it behind the agreement's "rank R of group ..." prefix);
 *   - the output (poisoned) and the inputs are byte for byte unchanged;
 * and after the table a valid call and a valid plan still work. A forced
 * algorithm the topology cannot run (hier in one node, shm_pull across
 * nodes) is UNSUPPORTED on every rank, whether one rank forces it or all do.
 * Plans:
 * an execute with a bad tensor on the last rank fails on every rank, and
 * executes of different plans on different ranks fail with MISMATCH.
 * A SIGALRM watchdog names a case that hangs.
 */
#include <signal.h>
#include <time.h>

#include "testutil.h"

static int W, rank;
enum { M_BLK = 2, K = 5, N = 4, ARENA = 4096 };
enum { RS = 1, AR = 2, BOTH = 3 };
enum { ALL = -1, LAST = -2 };

/* The mutable pieces of one call. */
typedef struct {
  int all;
  tpmm_tensor_t in, x2, out, bias;
  const tpmm_tensor_t *pin, *px2;
  tpmm_tensor_t *pout;
  const char *group;
  int world_size;
  tpmm_matmul_reduce_opts_t o;
  int algo; /* TPMM_ALGO for this call (auto unless a row forces one) */
} call_t;

static char a_in[ARENA], a_x2[ARENA], a_out[ARENA], a_bias[ARENA];
static char s_in[ARENA], s_x2[ARENA], s_bias[ARENA];
static int unusable_algo; /* hier in one node, else shm_pull: the topology cannot run it */

static void base(call_t *c, int all) {
  memset(c, 0, sizeof *c);
  const int64_t m = (int64_t)M_BLK * W;
  c->all = all;
  c->in = (tpmm_tensor_t){a_in, TPMM_BFLOAT16, 2, {m, K}, 0};
  c->x2 = (tpmm_tensor_t){a_x2, TPMM_BFLOAT16, 2, {K, N}, 0};
  c->out = (tpmm_tensor_t){a_out, TPMM_BFLOAT16, 2, {all ? m : M_BLK, N}, 0};
  c->bias = (tpmm_tensor_t){a_bias, TPMM_BFLOAT16, 1, {N, 0}, 0};
  c->pin = &c->in, c->px2 = &c->x2, c->pout = &c->out;
  c->group = TPMM_WORLD_COMM_GROUP;
  c->world_size = W;
  c->o = (tpmm_matmul_reduce_opts_t)TPMM_MATMUL_REDUCE_OPTS_INIT;
  c->o.bias = &c->bias;
}

/* Every mutation, by name; each one switch branch. */
enum {
  X_INPUT_NULL,
  X_X2_NULL,
  X_OUTPUT_NULL,
  X_INPUT_DATA_NULL,
  X_X2_DATA_NULL,
  X_OUTPUT_DATA_NULL,
  X_BIAS_DATA_NULL,
  X_REDUCE_OP_2,
  X_REDUCE_OP_NEG,
  X_CT_NEG,
  X_CT_BIG,
  X_INPUT_DTYPE99,
  X_X2_DTYPE,
  X_OUTPUT_DTYPE,
  X_BIAS_DTYPE,
  X_BIAS_LEN,
  X_BIAS_NDIM,
  X_INPUT_NDIM1,
  X_K_DIFF,
  X_K_ZERO,
  X_M_ODD,
  X_OUT_ROWS,
  X_OUT_COLS,
  X_OUT_LD,
  X_WS,
  X_GROUP,
  X_ALIAS_INPUT,
  X_ALIAS_BIAS,
  X_M_MORE,
  X_N_MORE,
  X_FP32,
  X_AVG,
  X_TRANS_IN,
  X_TRANS_X2,
  X_NO_BIAS,
  X_BIAS_VALUES,
  X_CT_1,
  X_ALGO_UNUSABLE
};

static void mutate(call_t *c, int x) {
  const int64_t m = (int64_t)M_BLK * W;
  switch (x) {
    case X_INPUT_NULL: c->pin = NULL; break;
    case X_X2_NULL: c->px2 = NULL; break;
    case X_OUTPUT_NULL: c->pout = NULL; break;
    case X_INPUT_DATA_NULL: c->in.data = NULL; break;
    case X_X2_DATA_NULL: c->x2.data = NULL; break;
    case X_OUTPUT_DATA_NULL: c->out.data = NULL; break;
    case X_BIAS_DATA_NULL: c->bias.data = NULL; break;
    case X_REDUCE_OP_2: c->o.reduce_op = (tpmm_reduce_op_t)2; break;
    case X_REDUCE_OP_NEG: c->o.reduce_op = (tpmm_reduce_op_t)-1; break;
    case X_CT_NEG: c->o.comm_turn = -1; break;
    case X_CT_BIG: c->o.comm_turn = (int)c->out.shape[0] + 1; break;
    case X_INPUT_DTYPE99: c->in.dtype = (tpmm_dtype_t)99; break;
    case X_X2_DTYPE: c->x2.dtype = TPMM_FLOAT16; break;
    case X_OUTPUT_DTYPE: c->out.dtype = TPMM_FLOAT32; break;
    case X_BIAS_DTYPE: c->bias.dtype = TPMM_FLOAT16; break;
    case X_BIAS_LEN: c->bias.shape[0] = N + 1; break;
    case X_BIAS_NDIM: c->bias.ndim = 2, c->bias.shape[1] = 1; break;
    case X_INPUT_NDIM1: c->in.ndim = 1; break;
    case X_K_DIFF: c->x2.shape[0] = K + 1; break;
    case X_K_ZERO: c->in.shape[1] = 0, c->x2.shape[0] = 0; break;
    case X_M_ODD: c->in.shape[0] = m + 1, c->out.shape[0] = c->all ? m + 1 : M_BLK; break;
    case X_OUT_ROWS: c->out.shape[0] += 1; break;
    case X_OUT_COLS: c->out.shape[1] = N + 1; break;
    case X_OUT_LD: c->out.ld = N - 1; break;
    case X_WS: c->world_size = W + 1; break;
    case X_GROUP: c->group = "no such group"; break;
    case X_ALIAS_INPUT: c->out.data = a_in; break;
    case X_ALIAS_BIAS: c->out.data = a_bias; break;
    case X_M_MORE: c->in.shape[0] = m + W, c->out.shape[0] = c->all ? m + W : M_BLK + 1; break;
    case X_N_MORE: c->x2.shape[1] = N + 1, c->out.shape[1] = N + 1, c->bias.shape[0] = N + 1; break;
    case X_FP32: c->in.dtype = c->x2.dtype = c->out.dtype = c->bias.dtype = TPMM_FLOAT32; break;
    case X_AVG: c->o.reduce_op = TPMM_REDUCE_AVG; break;
    case X_TRANS_IN: c->o.trans_input = true, c->in.shape[0] = K, c->in.shape[1] = m; break;
    case X_TRANS_X2: c->o.trans_x2 = true, c->x2.shape[0] = N, c->x2.shape[1] = K; break;
    case X_NO_BIAS: c->o.bias = NULL; break;
    case X_BIAS_VALUES: c->bias.data = a_bias + 2 * N; break; /* the arena's next N values */
    case X_CT_1: c->o.comm_turn = 1; break;
    case X_ALGO_UNUSABLE: c->algo = unusable_algo; break;
  }
}

typedef struct {
  int x, ops, who;
  tpmm_status_t st;
  const char *sub;
} row_t;

static const row_t table[] = {
    /* every rank passes the same bad argument */
    {X_INPUT_NULL, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "input is NULL"},
    {X_X2_NULL, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "x2 is NULL"},
    {X_OUTPUT_NULL, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "output is NULL"},
    {X_INPUT_DATA_NULL, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "input: data is NULL"},
    {X_X2_DATA_NULL, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "x2: data is NULL"},
    {X_OUTPUT_DATA_NULL, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "output: data is NULL"},
    {X_BIAS_DATA_NULL, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "bias: data is NULL"},
    {X_REDUCE_OP_2, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "reduce_op=2 is not a tpmm_reduce_op_t"},
    {X_REDUCE_OP_NEG, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "reduce_op=-1"},
    {X_CT_NEG, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "comm_turn=-1 is negative"},
    {X_CT_BIG, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "is larger than the"},
    {X_INPUT_DTYPE99, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "input: dtype=99"},
    {X_X2_DTYPE, BOTH, ALL, TPMM_ERR_DTYPE, "x2: dtype float16 differs from input dtype bfloat16"},
    {X_OUTPUT_DTYPE, BOTH, ALL, TPMM_ERR_DTYPE, "output: dtype float32 differs"},
    {X_BIAS_DTYPE, BOTH, ALL, TPMM_ERR_DTYPE, "bias: dtype float16, expected bfloat16 or float32"},
    {X_BIAS_LEN, BOTH, ALL, TPMM_ERR_SHAPE, "bias: length 5 does not match n=4"},
    {X_BIAS_NDIM, BOTH, ALL, TPMM_ERR_SHAPE, "bias: ndim=2"},
    {X_INPUT_NDIM1, BOTH, ALL, TPMM_ERR_SHAPE, "input: ndim=1"},
    {X_K_DIFF, BOTH, ALL, TPMM_ERR_SHAPE, "x2: k=6 does not match input k=5"},
    {X_K_ZERO, BOTH, ALL, TPMM_ERR_SHAPE, "k=0"},
    {X_M_ODD, RS, ALL, TPMM_ERR_SHAPE, "is not a multiple of world_size"},
    {X_OUT_ROWS, BOTH, ALL, TPMM_ERR_SHAPE, "output: shape"},
    {X_OUT_COLS, BOTH, ALL, TPMM_ERR_SHAPE, "output: shape"},
    {X_OUT_LD, BOTH, ALL, TPMM_ERR_SHAPE, "output: ld=3"},
    {X_WS, BOTH, ALL, TPMM_ERR_WORLD_SIZE, "world_size="},
    {X_GROUP, BOTH, ALL, TPMM_ERR_GROUP, "no such group"},
    {X_ALIAS_INPUT, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "output overlaps input"},
    {X_ALIAS_BIAS, BOTH, ALL, TPMM_ERR_INVALID_ARGUMENT, "output overlaps bias"},
    /* one rank differs: every rank returns MISMATCH naming the field */
    {X_M_MORE, BOTH, LAST, TPMM_ERR_MISMATCH, "disagree on m"},
    {X_N_MORE, BOTH, LAST, TPMM_ERR_MISMATCH, "disagree on n"},
    {X_FP32, BOTH, LAST, TPMM_ERR_MISMATCH, "disagree on dtype"},
    {X_AVG, BOTH, LAST, TPMM_ERR_MISMATCH, "disagree on reduce_op"},
    {X_REDUCE_OP_2, BOTH, LAST, TPMM_ERR_MISMATCH, "disagree on reduce_op"},
    {X_TRANS_IN, BOTH, LAST, TPMM_ERR_MISMATCH, "disagree on trans_input"},
    {X_TRANS_X2, BOTH, LAST, TPMM_ERR_MISMATCH, "disagree on trans_x2"},
    {X_NO_BIAS, BOTH, LAST, TPMM_ERR_MISMATCH, "disagree on bias (present)"},
    /* all_reduce: a rank that sums every row (small partials fold) would add its own */
    {X_BIAS_VALUES, AR, LAST, TPMM_ERR_MISMATCH, "disagree on bias values"},
    {X_CT_1, BOTH, LAST, TPMM_ERR_MISMATCH, "disagree on comm_turn"},
    /* one rank's own bad argument: every rank returns its status (these
     * calls' partials fold: the others multiply before the agreement, the
     * bad rank sends its failure alone) */
    {X_INPUT_DATA_NULL, BOTH, LAST, TPMM_ERR_INVALID_ARGUMENT, "input: data is NULL"},
    /* a tensor it cannot read: its dtype, m, k are not compared, so its own status reaches every rank */
    {X_INPUT_NULL, BOTH, LAST, TPMM_ERR_INVALID_ARGUMENT, "input is NULL"},
    {X_X2_NULL, BOTH, LAST, TPMM_ERR_INVALID_ARGUMENT, "x2 is NULL"},
    {X_X2_DATA_NULL, BOTH, LAST, TPMM_ERR_INVALID_ARGUMENT, "x2: data is NULL"},
    {X_OUTPUT_NULL, BOTH, LAST, TPMM_ERR_INVALID_ARGUMENT, "output is NULL"},
    {X_OUT_LD, BOTH, LAST, TPMM_ERR_SHAPE, "output: ld=3"},
    {X_K_DIFF, BOTH, LAST, TPMM_ERR_SHAPE, "x2: k=6 does not match input k=5"}, /* the fields read k from input */
    {X_ALIAS_INPUT, BOTH, LAST, TPMM_ERR_INVALID_ARGUMENT, "output overlaps input"},
    /* one rank's bad bias: its own status; a dtype it can be read in is an agreed field: MISMATCH, and every
     * rank's message carries the bad rank's reason */
    {X_BIAS_DATA_NULL, BOTH, LAST, TPMM_ERR_INVALID_ARGUMENT, "bias: data is NULL"},
    {X_BIAS_DTYPE, BOTH, LAST, TPMM_ERR_MISMATCH, "bias: dtype float16, expected bfloat16 or float32"},
    {X_BIAS_LEN, BOTH, LAST, TPMM_ERR_SHAPE, "bias: length 5 does not match n=4"},
    {X_BIAS_NDIM, BOTH, LAST, TPMM_ERR_SHAPE, "bias: ndim=2"},
    {X_ALIAS_BIAS, BOTH, LAST, TPMM_ERR_INVALID_ARGUMENT, "output overlaps bias"},
    /* a forced algorithm the group's topology cannot run, on every rank or one */
    {X_ALGO_UNUSABLE, BOTH, ALL, TPMM_ERR_UNSUPPORTED, "cannot run on group"},
    {X_ALGO_UNUSABLE, BOTH, LAST, TPMM_ERR_UNSUPPORTED, "cannot run on group"},
};

static tpmm_status_t run(const call_t *c) {
  tpmm_set_param(TPMM_PARAM_ALGO, c->algo); /* before the call: setting a parameter clears the message */
  return c->all ? tpmm_matmul_all_reduce(c->pin, c->px2, c->group, c->world_size, &c->o, c->pout)
                : tpmm_matmul_reduce_scatter(c->pin, c->px2, c->group, c->world_size, &c->o, c->pout);
}

static void fill_arenas(void) {
  gen_for(a_in, TPMM_BFLOAT16, ARENA / 2, 1, rank, 1);
  gen_for(a_x2, TPMM_BFLOAT16, ARENA / 2, 1, rank, 2);
  gen_for(a_bias, TPMM_BFLOAT16, ARENA / 2, 1, 0, 3);
  memcpy(s_in, a_in, ARENA), memcpy(s_x2, a_x2, ARENA), memcpy(s_bias, a_bias, ARENA);
  poison(a_out, TPMM_BFLOAT16, ARENA / 2);
}

/* Every rank got the same status; inputs and output untouched. */
static void check_all(const char *what, tpmm_status_t st, tpmm_status_t want, const char *sub) {
  expect_status(st, want, what, sub);
  int lo_hi[2] = {(int)st, -(int)st}, r[2];
  MPI_Allreduce(lo_hi, r, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  check(r[0] == -r[1], "%s: ranks returned different statuses (%d..%d)", what, -r[1], r[0]);
  int untouched = 1;
  for (int i = 0; i < ARENA / 2; i++) untouched &= is_poison(a_out, TPMM_BFLOAT16, i);
  check(untouched, "%s: output written on error", what);
  check(!memcmp(s_in, a_in, ARENA) && !memcmp(s_x2, a_x2, ARENA) && !memcmp(s_bias, a_bias, ARENA),
        "%s: an input changed", what);
}

static void valid_call(const char *what, int all) {
  call_t c;
  base(&c, all);
  poison(a_out, TPMM_BFLOAT16, ARENA / 2);
  tpmm_status_t st = run(&c);
  check(st == TPMM_SUCCESS && tpmm_last_error()[0] == '\0', "%s: valid call: %d %s", what, st, tpmm_last_error());
  check(!is_poison(a_out, TPMM_BFLOAT16, 0), "%s: valid call wrote nothing", what);
  fill_arenas();
}

static tpmm_status_t create(call_t *c, tpmm_plan_t **plan) {
  return c->all ? tpmm_matmul_all_reduce_plan_create(c->pin, c->px2, c->group, W, &c->o, c->pout, plan)
                : tpmm_matmul_reduce_scatter_plan_create(c->pin, c->px2, c->group, W, &c->o, c->pout, plan);
}

/* Plans: a bad tensor at execute on the last rank; ranks executing
 * different plans. */
static void plans(int all) {
  const char *name = all ? "plan all_reduce" : "plan reduce_scatter";
  call_t c;
  base(&c, all);
  tpmm_plan_t *p1 = NULL, *p2 = NULL;
  tpmm_status_t st = create(&c, &p1);
  if (st == TPMM_SUCCESS) st = create(&c, &p2);
  check(st == TPMM_SUCCESS, "%s: create: %s", name, tpmm_last_error());
  if (st != TPMM_SUCCESS) return;
  test_case("plan execute with a bad output on the last rank", 30);
  tpmm_tensor_t bad = c.out;
  bad.shape[0] += rank == W - 1;
  st = tpmm_plan_execute(p1, &c.in, &bad, NULL);
  check_all(name, st, TPMM_ERR_SHAPE, "output");
  test_case("plans executed out of order", 30);
  st = tpmm_plan_execute(rank == W - 1 ? p2 : p1, &c.in, &c.out, NULL);
  check_all(name, st, TPMM_ERR_MISMATCH, "plan");
  poison(a_out, TPMM_BFLOAT16, ARENA / 2);
  st = tpmm_plan_execute(p1, &c.in, &c.out, NULL);
  check(st == TPMM_SUCCESS, "%s: a valid execute after the errors: %s", name, tpmm_last_error());
  fill_arenas();
  tpmm_plan_destroy(p1);
  tpmm_plan_destroy(p2);
  /* a plan keeps its bias: all_reduce's must be the same on every rank when it is made; reduce_scatter's
   * owner adds its own */
  test_case("plan made with another bias on the last rank", 30);
  call_t d;
  base(&d, all);
  if (rank == W - 1) mutate(&d, X_BIAS_VALUES);
  st = create(&d, &p1);
  if (all) {
    check_all(name, st, TPMM_ERR_MISMATCH, "disagree on bias values");
  } else {
    check(st == TPMM_SUCCESS, "%s: reduce_scatter with a bias of its own on the last rank: %s", name,
          tpmm_last_error());
    tpmm_plan_destroy(p1);
  }
}

int main(int argc, char **argv) {
  signal(SIGALRM, test_on_alarm);
  test_init(&argc, &argv, &rank, &W);
  fill_arenas();
  unusable_algo = world_can_run(TPMM_ALGO_HIER) ? TPMM_ALGO_SHM_PULL : TPMM_ALGO_HIER;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    for (int all = 0; all < 2; all++) {
      const row_t *t = &table[i];
      if (!(t->ops & (all ? AR : RS))) continue;
      char what[128];
      snprintf(what, sizeof what, "row %zu (%s, %s)", i, all ? "all_reduce" : "reduce_scatter",
               t->who == ALL ? "every rank" : "last rank");
      test_case(what, 30);
      call_t c;
      base(&c, all);
      if (t->who == ALL || rank == W - 1) mutate(&c, t->x);
      check_all(what, run(&c), t->st, t->sub);
    }
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
  for (int all = 0; all < 2; all++) {
    valid_call("after the table", all);
    plans(all);
  }
  alarm(0);
  int rc = finish("test_reduce_errors");
  tpmm_finalize();
  return rc;
}
