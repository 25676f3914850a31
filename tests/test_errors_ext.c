/*
 * test_errors_ext.c — every error of tpmm_all_gather_matmul_v and _multi,
 * of their plans and of tpmm_plan_execute_multi (issue 15), on 2 or more
 * ranks. One table row per case: who passes the bad argument (every rank,
 * or one), which entry is called, the status and a substring of the message
 * every rank must return. For each row every rank checks:
 *   - its status is the expected one (so all ranks agree);
 *   - its message contains the substring (a peer's carries it behind the
 *     agreement's "rank R of group ... rejected its arguments" prefix);
 *   - output(s) and gather_out (poisoned) are untouched;
 * and a valid call right afterwards succeeds (the library is still usable).
 * A watchdog names the case that hung. Seed: TPMM_TEST_SEED or the clock.
 */
#include <signal.h>

#include "testutil.h"

enum { NB = 3, K = 5, MAXW = 64 };
static int W, rank;
static uint64_t seed;

/* Entry points a row calls. EXEC* create a valid plan first, then execute it. */
enum { V, V_PLAN, V1, MULTI, MULTI_PLAN, EXEC_ON_MULTI, EXECM_ON_V, EXECM }; /* V1: _v with gather_index 1 */

typedef struct {
  tpmm_tensor_t in, x2[NB], out[NB], gout, bias[NB];
  const tpmm_tensor_t *px2[NB], *pbias[NB];
  tpmm_tensor_t *pout[NB];
  const tpmm_tensor_t *const *x2s, *const *biases;
  tpmm_tensor_t *const *outs;
  int64_t counts[MAXW];
  const int64_t *pcounts;
  int nb, ws;
  tpmm_all_gather_matmul_opts_t o;
} call_t;

static char *arena[4 + 2 * NB]; /* in, gout, spare, 2 spare, x2[], out[] */
enum { ARENA = 1 << 16 };

static int64_t rows_of(int q) { return q % 3 == 1 ? 0 : 2 + q % 2; } /* a zero-row rank when W >= 2 */
static int64_t n_of(int i) { return 4 + i; }

static void base(call_t *c) {
  memset(c, 0, sizeof *c);
  int64_t total = 0;
  for (int q = 0; q < W; q++) c->counts[q] = rows_of(q), total += rows_of(q);
  const tpmm_dtype_t dt = TPMM_BFLOAT16;
  c->in = (tpmm_tensor_t){arena[0], dt, 2, {rows_of(rank), K}, 0};
  c->gout = (tpmm_tensor_t){arena[1], dt, 2, {total, K}, 0};
  for (int i = 0; i < NB; i++) {
    c->x2[i] = (tpmm_tensor_t){arena[4 + i], dt, 2, {K, n_of(i)}, 0};
    c->out[i] = (tpmm_tensor_t){arena[4 + NB + i], dt, 2, {total, n_of(i)}, 0};
    c->bias[i] = (tpmm_tensor_t){arena[2], TPMM_FLOAT32, 1, {n_of(i), 0}, 0};
    c->px2[i] = &c->x2[i], c->pout[i] = &c->out[i], c->pbias[i] = i == 1 ? &c->bias[i] : NULL;
  }
  c->x2s = c->px2, c->biases = c->pbias, c->outs = c->pout;
  c->pcounts = c->counts, c->nb = NB, c->ws = W;
  c->o = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
}

/* A multi call (and the v plan it is mixed with): even shards of 2 rows. */
static void even(call_t *c) {
  for (int q = 0; q < W; q++) c->counts[q] = 2;
  c->in.shape[0] = 2;
  c->gout.shape[0] = 2 * W;
  for (int i = 0; i < NB; i++) c->out[i].shape[0] = 2 * W;
}

typedef struct {
  const char *name;
  int who; /* -1: every rank, else that rank */
  int entry;
  tpmm_status_t status;
  const char *sub;
  void (*mutate)(call_t *c);
} row_t;

/* ---- mutations ---- */
static void counts_null(call_t *c) { c->pcounts = NULL; }
static void counts_neg(call_t *c) { c->counts[W - 1] = -1; }
static void counts_other(call_t *c) {
  c->counts[0] -= 1, c->counts[W > 1 ? 1 : 0] += 1;
} /* the same total, none negative */
static void counts_huge(call_t *c) { c->counts[0] = INT64_MAX / 2, c->counts[W - 1] = INT64_MAX / 2; }
static void counts_local(call_t *c) { c->in.shape[0] += 1; }
static void out_rows(call_t *c) { c->out[0].shape[0] += 1; }
static void gout_rows(call_t *c) { c->gout.shape[0] -= 1; }
static void comm_turn_big(call_t *c) { c->o.comm_turn = 4; } /* largest shard: 3 rows */
static void world_plus(call_t *c) { c->ws = W + 1; }
static void nb_zero(call_t *c) { c->nb = 0; }
static void nb_big(call_t *c) { c->nb = 17; }
static void nb_two(call_t *c) { c->nb = 2; }
static void x2_dtype(call_t *c) { c->x2[1].dtype = TPMM_FLOAT32; }
static void x2_k(call_t *c) { c->x2[1].shape[0] = K + 1; }
static void x2_n(call_t *c) { c->x2[2].shape[1] += 1, c->out[2].shape[1] += 1; }
static void x2_arr_null(call_t *c) { c->x2s = NULL; }
static void x2_one_null(call_t *c) { c->px2[1] = NULL; }
static void out_one_null(call_t *c) { c->pout[1] = NULL; }
static void out_arr_null(call_t *c) { c->outs = NULL; }
static void out_cols(call_t *c) { c->out[1].shape[1] += 1; }
static void out_alias(call_t *c) { c->out[2].data = c->out[0].data; }
static void opts_bias(call_t *c) { c->o.bias = &c->bias[0]; }
static void gi_one(call_t *c) { c->o.gather_index = 1; }
static void bias_len(call_t *c) { c->bias[1].shape[0] += 1; }
static void bias_dtype(call_t *c) { c->bias[1].dtype = TPMM_FLOAT16; }
static void none(call_t *c) { (void)c; }
/* gather_index 1: x2 (K x n) shards of rows_of(q) rows; input (2, K) */
static void gi1(call_t *c) {
  int64_t total = 0;
  for (int q = 0; q < W; q++) total += c->counts[q];
  c->o.gather_index = 1;
  c->x2[0].shape[0] = rows_of(rank), c->in.shape[0] = 2, c->in.shape[1] = total;
  c->out[0].shape[0] = 2, c->gout.shape[0] = total, c->gout.shape[1] = n_of(0);
}
static void in_cols(call_t *c) { c->in.shape[1] += 1; }
static void x2_rows(call_t *c) { c->x2[0].shape[0] += 1; }
static void gout_cols(call_t *c) { c->gout.shape[1] += 1; }
/* rank 0 alone asks for gather_index 1 (the others gather input) */
static void gi1_mixed(call_t *c) { gi1(c); }

static const row_t rows[] = {
    {"v: counts NULL", -1, V, TPMM_ERR_INVALID_ARGUMENT, "counts is NULL", counts_null},
    {"v plan: counts NULL", -1, V_PLAN, TPMM_ERR_INVALID_ARGUMENT, "counts is NULL", counts_null},
    {"v: counts negative", -1, V, TPMM_ERR_INVALID_ARGUMENT, "is negative", counts_neg},
    {"v: counts sum overflows", -1, V, TPMM_ERR_SHAPE, "counts sum past", counts_huge},
    {"v: one rank's counts differ", 0, V, TPMM_ERR_MISMATCH, "disagree on counts", counts_other},
    /* counts it cannot read (nor sum) are not compared: its own error reaches every rank */
    {"v: one rank's counts NULL", 0, V, TPMM_ERR_INVALID_ARGUMENT, "counts is NULL", counts_null},
    {"v: one rank's counts negative", 0, V, TPMM_ERR_INVALID_ARGUMENT, "is negative", counts_neg},
    {"v: counts[rank] is not the local rows", 0, V, TPMM_ERR_SHAPE, "counts[0]=", counts_local},
    {"v plan: counts[rank] is not the local rows", 0, V_PLAN, TPMM_ERR_SHAPE, "counts[0]=", counts_local},
    {"v: output rows", -1, V, TPMM_ERR_SHAPE, "output: shape", out_rows},
    {"v: gather_out rows", -1, V, TPMM_ERR_SHAPE, "gather_out: shape", gout_rows},
    {"v: comm_turn above the largest shard", -1, V, TPMM_ERR_INVALID_ARGUMENT, "comm_turn=4", comm_turn_big},
    {"v: world_size", -1, V, TPMM_ERR_WORLD_SIZE, "world_size=", world_plus},
    {"multi: nb 0", -1, MULTI, TPMM_ERR_INVALID_ARGUMENT, "nb=0", nb_zero},
    {"multi: nb 17", -1, MULTI, TPMM_ERR_INVALID_ARGUMENT, "nb=17", nb_big},
    {"multi plan: nb 17", -1, MULTI_PLAN, TPMM_ERR_INVALID_ARGUMENT, "nb=17", nb_big},
    {"multi: x2[1] dtype", -1, MULTI, TPMM_ERR_DTYPE, "x2[1]: dtype", x2_dtype},
    {"multi: x2[1] k", -1, MULTI, TPMM_ERR_SHAPE, "x2[1]: k=6", x2_k},
    {"multi: x2 NULL", -1, MULTI, TPMM_ERR_INVALID_ARGUMENT, "x2 is NULL", x2_arr_null},
    {"multi: x2[1] NULL", -1, MULTI, TPMM_ERR_INVALID_ARGUMENT, "x2[1] is NULL", x2_one_null},
    /* a weight it cannot read is not compared: its own error reaches every rank */
    {"multi: one rank's x2[1] NULL", 0, MULTI, TPMM_ERR_INVALID_ARGUMENT, "x2[1] is NULL", x2_one_null},
    {"multi: output NULL", -1, MULTI, TPMM_ERR_INVALID_ARGUMENT, "output is NULL", out_arr_null},
    {"multi: output[1] NULL", -1, MULTI, TPMM_ERR_INVALID_ARGUMENT, "output[1] is NULL", out_one_null},
    {"multi: output[1] columns", -1, MULTI, TPMM_ERR_SHAPE, "output[1]: shape", out_cols},
    {"multi: outputs overlap", -1, MULTI, TPMM_ERR_INVALID_ARGUMENT, "overlap", out_alias},
    {"multi: opts->bias", -1, MULTI, TPMM_ERR_INVALID_ARGUMENT, "opts->bias", opts_bias},
    {"multi: gather_index 1", -1, MULTI, TPMM_ERR_UNSUPPORTED, "gather_index=1", gi_one},
    {"multi: bias[1] length", -1, MULTI, TPMM_ERR_SHAPE, "bias[1]: length", bias_len},
    {"multi: bias[1] dtype", -1, MULTI, TPMM_ERR_DTYPE, "bias[1]: dtype", bias_dtype},
    {"multi: one rank's nb", 0, MULTI, TPMM_ERR_MISMATCH, "disagree on number of weights", nb_two},
    {"multi: one rank's x2[2] n", 0, MULTI, TPMM_ERR_MISMATCH, "disagree on", x2_n},
    {"multi: one rank's output[1] columns", 0, MULTI, TPMM_ERR_SHAPE, "output[1]: shape", out_cols},
    {"gather_index 1: input k is not the sum of counts", -1, V1, TPMM_ERR_SHAPE, "but input has k=", in_cols},
    {"gather_index 1: counts[rank] is not x2's rows", 0, V1, TPMM_ERR_SHAPE, "counts[0]=", x2_rows},
    {"gather_index 1: output rows", -1, V1, TPMM_ERR_SHAPE, "output: shape", out_rows},
    {"gather_index 1: gather_out columns", -1, V1, TPMM_ERR_SHAPE, "gather_out: shape", gout_cols},
    {"gather_index 1: comm_turn above the largest shard", -1, V1, TPMM_ERR_INVALID_ARGUMENT, "comm_turn=4",
     comm_turn_big},
    {"gather_index 1: counts NULL", -1, V1, TPMM_ERR_INVALID_ARGUMENT, "counts is NULL", counts_null},
    {"gather_index 1: one rank gathers input", 0, V, TPMM_ERR_MISMATCH, "disagree on gather_index", gi1_mixed},
    {"execute on a multi plan", -1, EXEC_ON_MULTI, TPMM_ERR_INVALID_ARGUMENT, "tpmm_plan_execute_multi", none},
    {"one rank: execute on a multi plan", 0, EXEC_ON_MULTI, TPMM_ERR_INVALID_ARGUMENT, "tpmm_plan_execute_multi", none},
    {"execute_multi on a v plan", -1, EXECM_ON_V, TPMM_ERR_INVALID_ARGUMENT, "run it with tpmm_plan_execute", none},
    {"execute_multi: output NULL", -1, EXECM, TPMM_ERR_INVALID_ARGUMENT, "output is NULL", out_arr_null},
    {"execute_multi: one rank's output[1]", 0, EXECM, TPMM_ERR_SHAPE, "output[1]: dtype", out_cols},
    {"execute_multi: one rank's output[1] NULL", 0, EXECM, TPMM_ERR_INVALID_ARGUMENT, "output[1] is NULL",
     out_one_null},
};

static tpmm_status_t call_v(call_t *c, int plan) {
  if (!plan)
    return tpmm_all_gather_matmul_v(&c->in, c->px2[0], TPMM_WORLD_COMM_GROUP, c->ws, c->pcounts, &c->o, c->pout[0],
                                    &c->gout);
  tpmm_plan_t *p = NULL;
  tpmm_status_t st = tpmm_all_gather_matmul_v_plan_create(&c->in, c->px2[0], TPMM_WORLD_COMM_GROUP, c->ws, c->pcounts,
                                                          &c->o, c->pout[0], &c->gout, &p);
  tpmm_plan_destroy(p);
  return st;
}

static tpmm_status_t call_multi(call_t *c, int plan) {
  if (!plan)
    return tpmm_all_gather_matmul_multi(&c->in, c->nb, c->x2s, c->biases, TPMM_WORLD_COMM_GROUP, c->ws, &c->o, c->outs,
                                        &c->gout);
  tpmm_plan_t *p = NULL;
  tpmm_status_t st = tpmm_all_gather_matmul_multi_plan_create(&c->in, c->nb, c->x2s, c->biases, TPMM_WORLD_COMM_GROUP,
                                                              c->ws, &c->o, c->outs, &c->gout, &p);
  tpmm_plan_destroy(p);
  return st;
}

/* A valid plan (made from ok), executed with c (mutated on its ranks). */
static tpmm_status_t call_exec(const row_t *r, call_t *ok, call_t *c) {
  tpmm_plan_t *p = NULL;
  tpmm_status_t st =
      r->entry == EXECM_ON_V
          ? tpmm_all_gather_matmul_v_plan_create(&ok->in, ok->px2[0], TPMM_WORLD_COMM_GROUP, W, ok->pcounts, &ok->o,
                                                 ok->pout[0], &ok->gout, &p)
          : tpmm_all_gather_matmul_multi_plan_create(&ok->in, NB, ok->x2s, ok->biases, TPMM_WORLD_COMM_GROUP, W, &ok->o,
                                                     ok->outs, &ok->gout, &p);
  check(st == TPMM_SUCCESS, "%s: the valid plan: %s", r->name, tpmm_last_error());
  if (st != TPMM_SUCCESS) return st;
  const int single = r->entry == EXEC_ON_MULTI && (r->who < 0 || r->who == rank);
  st = single ? tpmm_plan_execute(p, &c->in, c->pout[0], &c->gout)
              : tpmm_plan_execute_multi(p, &c->in, c->outs, &c->gout);
  tpmm_plan_destroy(p);
  return st;
}

static int untouched(void) {
  int ok = 1;
  for (int b = 0; b < 4 + 2 * NB; b++)
    if (b == 1 || b >= 4 + NB) /* gather_out and outputs */
      for (int i = 0; i < ARENA / 2 && ok; i++) ok &= ((uint16_t *)arena[b])[i] == 0x7fc1;
  return ok;
}

static void run_row(const row_t *r) {
  test_case(r->name, 30);
  for (int b = 0; b < 4 + 2 * NB; b++)
    if (b == 1 || b >= 4 + NB) poison(arena[b], TPMM_BFLOAT16, ARENA / 2);
  call_t ok, c;
  base(&ok), base(&c);
  if (r->entry >= MULTI) even(&ok), even(&c);
  if (r->entry == V1) gi1(&c);
  if (r->who < 0 || r->who == rank) r->mutate(&c);
  tpmm_status_t st = r->entry <= V1                                ? call_v(&c, r->entry == V_PLAN)
                     : r->entry == MULTI || r->entry == MULTI_PLAN ? call_multi(&c, r->entry == MULTI_PLAN)
                                                                   : call_exec(r, &ok, &c);
  expect_status(st, r->status, r->name, r->sub);
  check(untouched(), "%s: an output was written by a failing call", r->name);
  /* still usable: the valid call of the same entry */
  st = r->entry <= V1 ? call_v(&ok, 0) : call_multi(&ok, 0);
  check(st == TPMM_SUCCESS, "%s: the valid call afterwards: %d %s", r->name, st, tpmm_last_error());
}

int main(int argc, char **argv) {
  test_init(&argc, &argv, &rank, &W);
  signal(SIGALRM, test_on_alarm);
  if (W < 2 || W > MAXW) {
    if (rank == 0) printf("test_errors_ext: W=%d outside 2..%d: skipped\n", W, MAXW);
    tpmm_finalize();
    return 77;
  }
  seed = test_seed("test_errors_ext", W);
  for (int b = 0; b < 4 + 2 * NB; b++) arena[b] = malloc(ARENA);
  for (int b = 0; b < 4 + NB; b++) gen_for(arena[b], TPMM_BFLOAT16, ARENA / 2, seed, rank, b); /* inputs, bias */
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    if (rows[i].who < W) run_row(&rows[i]);
  for (int b = 0; b < 4 + 2 * NB; b++) free(arena[b]);
  int rc = finish("test_errors_ext");
  tpmm_finalize();
  return rc;
}
