/*
 * agmm_case.h — one all_gather_matmul call with uneven shards, as
 * test_agmm_v.c (gather_index 0: input gathered) and test_agmm_x2.c
 * (gather_index 1: x2 gathered) build and check it:
 *   - the gathered operand is drawn for every rank from the run's seed, so
 *     that each rank holds the whole of it (for the reference and for
 *     gather_out) without communication; this rank's shard is stored in its
 *     layout (transposed or not, padded or not);
 *   - the other operand and the bias are drawn for this rank;
 *   - agmm_sweep runs the call under every algorithm and as a plan, outputs
 *     poisoned before each call: unfused against the fp64 reference with the
 *     dtype-derived tolerance, every other run bit-identical to unfused,
 *     gather_out bit for bit, padding untouched.
 */
#ifndef TPMM_AGMM_CASE_H
#define TPMM_AGMM_CASE_H

#include "testutil.h"

/* A configuration. The shard counts come from the test. */
typedef struct {
  tpmm_dtype_t dt;
  int pattern; /* the test's shard counts */
  int64_t d;   /* gather_index 0: k; 1: m (the dimension the counts leave free) */
  int64_t n;
  int ti, tx, bias, gout, ct, strided; /* bias: 0 none, 1 of the dtype, 2 float32 */
} agmm_cfg_t;

typedef struct {
  const agmm_cfg_t *c;
  int gi;    /* gather_index */
  int plain; /* call tpmm_all_gather_matmul (equal counts) instead of _v */
  int W;
  int64_t *counts, *row0, total; /* the gathered operand's rows per rank, where each starts, their sum */
  void *G;                       /* the gathered operand, logical (total x k or n) and dense */
  void *out0;                    /* unfused's output, for the bit comparisons */
  tpmm_tensor_t in, x2, out, gout, bias;
  tpmm_all_gather_matmul_opts_t o;
} agmm_case_t;

/* A stored (rows x cols) matrix, transposed or not, padded by pad columns. */
static inline tpmm_tensor_t agmm_stored(tpmm_dtype_t dt, int64_t rows, int64_t cols, int trans, int64_t pad) {
  const int64_t r = trans ? cols : rows, c = trans ? rows : cols;
  return (tpmm_tensor_t){calloc((size_t)(r * (c + pad) + 1), dt_size(dt)), dt, 2, {r, c}, c + pad};
}

/* An output of (rows x cols), padded by pad columns (poisoned before use). */
static inline tpmm_tensor_t agmm_output(tpmm_dtype_t dt, int64_t rows, int64_t cols, int64_t pad) {
  return (tpmm_tensor_t){malloc((size_t)(rows * (cols + pad) + 1) * dt_size(dt)), dt, 2, {rows, cols}, cols + pad};
}

/* The bytes of a stored matrix and of the element past its end. */
static inline size_t agmm_bytes(const tpmm_tensor_t *t) {
  return (size_t)(t->shape[0] * t->ld + 1) * dt_size(t->dtype);
}

/* Case x of configuration c (configuration number idx) with counts[W]. */
static inline void agmm_setup(agmm_case_t *x, const agmm_cfg_t *c, int gi, const int64_t *counts, int W, uint64_t seed,
                              int idx) {
  const tpmm_dtype_t dt = c->dt;
  const size_t es = dt_size(dt);
  const int64_t pad = c->strided ? 3 : 0, n = c->n;
  memset(x, 0, sizeof *x);
  x->c = c, x->gi = gi, x->W = W;
  x->counts = malloc(sizeof(int64_t) * (size_t)W), x->row0 = malloc(sizeof(int64_t) * (size_t)(W + 1));
  memcpy(x->counts, counts, sizeof(int64_t) * (size_t)W);
  x->row0[0] = 0;
  for (int q = 0; q < W; q++) x->row0[q + 1] = x->row0[q] + counts[q];
  x->total = x->row0[W];
  /* the gathered operand: input (total x k) or x2 (K x n); tag 1 + idx: fresh rows per configuration */
  const int64_t gw = gi ? n : c->d, mine = counts[t_rank];
  x->G = malloc((size_t)(x->total * gw + 1) * es);
  for (int q = 0; q < W; q++)
    gen_for((char *)x->G + (size_t)(x->row0[q] * gw) * es, dt, counts[q] * gw, seed, q, 1 + idx % 50);
  /* this rank's shard of it in its stored layout, then the other operand */
  const int ts = gi ? c->tx : c->ti;
  tpmm_tensor_t *shard = gi ? &x->x2 : &x->in, *other = gi ? &x->in : &x->x2;
  *shard = agmm_stored(dt, mine, gw, ts, pad);
  const char *src = (char *)x->G + (size_t)(x->row0[t_rank] * gw) * es;
  for (int64_t i = 0; i < mine; i++)
    for (int64_t j = 0; j < gw; j++)
      memcpy((char *)shard->data + (size_t)(ts ? j * shard->ld + i : i * shard->ld + j) * es,
             src + (size_t)(i * gw + j) * es, es);
  rng_t r = {seed ^ (0x100000001b3ull * (uint64_t)(idx + 1)) ^ ((uint64_t)t_rank << 48)};
  *other = gi ? agmm_stored(dt, c->d, x->total, c->ti, pad) : agmm_stored(dt, c->d, n, c->tx, pad);
  fill_randn(other->data, dt, other->shape[0], other->shape[1], other->ld, &r);
  const tpmm_dtype_t bdt = c->bias == 2 ? TPMM_FLOAT32 : dt;
  x->bias = (tpmm_tensor_t){c->bias ? malloc((size_t)(n + 1) * 4) : NULL, bdt, 1, {n, 0}, 0};
  if (x->bias.data) fill_randn(x->bias.data, bdt, 1, n, n, &r);
  x->out = agmm_output(dt, gi ? c->d : x->total, n, pad);
  x->gout = agmm_output(dt, x->total, gw, pad);
  x->out0 = malloc(agmm_bytes(&x->out));
  x->o = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  x->o.bias = x->bias.data ? &x->bias : NULL, x->o.gather_index = gi;
  x->o.gather_output = c->gout, x->o.comm_turn = c->ct, x->o.trans_input = c->ti, x->o.trans_x2 = c->tx;
}

static inline void agmm_teardown(agmm_case_t *x) {
  free(x->counts), free(x->row0), free(x->G), free(x->out0);
  free(x->in.data), free(x->x2.data), free(x->bias.data), free(x->out.data), free(x->gout.data);
}

/* Outputs, their padding and the element past their end poisoned. */
static inline void agmm_poison(agmm_case_t *x) {
  poison(x->out.data, x->c->dt, x->out.shape[0] * x->out.ld + 1);
  poison(x->gout.data, x->c->dt, x->gout.shape[0] * x->gout.ld + 1);
}

static inline tpmm_status_t agmm_call(agmm_case_t *x) {
  if (x->plain) return tpmm_all_gather_matmul(&x->in, &x->x2, TPMM_WORLD_COMM_GROUP, x->W, &x->o, &x->out, &x->gout);
  return tpmm_all_gather_matmul_v(&x->in, &x->x2, TPMM_WORLD_COMM_GROUP, x->W, x->counts, &x->o, &x->out, &x->gout);
}

static inline tpmm_status_t agmm_plan_create(agmm_case_t *x, tpmm_plan_t **plan) {
  tpmm_tensor_t p_in = x->in, p_out = x->out, p_g = x->gout;
  p_in.data = p_out.data = p_g.data = NULL;
  tpmm_tensor_t *pg = x->c->gout ? &p_g : NULL;
  if (x->plain)
    return tpmm_all_gather_matmul_plan_create(&p_in, &x->x2, TPMM_WORLD_COMM_GROUP, x->W, &x->o, &p_out, pg, plan);
  return tpmm_all_gather_matmul_v_plan_create(&p_in, &x->x2, TPMM_WORLD_COMM_GROUP, x->W, x->counts, &x->o, &p_out, pg,
                                              plan);
}

/* Output elements outside the fp64 tolerance; the first three printed. */
static inline int agmm_check_reference(const agmm_case_t *x) {
  const agmm_cfg_t *c = x->c;
  const tpmm_dtype_t dt = c->dt;
  const size_t es = dt_size(dt);
  const int64_t k = x->gi ? x->total : c->d;
  /* a (rows x k) and b (k x n): element (i, j) at p[i * rs + j * cs] */
  const void *a = x->gi ? x->in.data : x->G, *b = x->gi ? x->G : x->x2.data;
  const int64_t a_rs = x->gi ? (c->ti ? 1 : x->in.ld) : k, a_cs = x->gi ? (c->ti ? x->in.ld : 1) : 1;
  const int64_t b_rs = x->gi ? c->n : (c->tx ? 1 : x->x2.ld), b_cs = x->gi ? 1 : (c->tx ? x->x2.ld : 1);
  int bad = 0;
  for (int64_t i = 0; i < x->out.shape[0]; i++)
    for (int64_t j = 0; j < c->n; j++) {
      double mag;
      double ref = ref_dot((const char *)a + (size_t)(i * a_rs) * es, a_cs, (const char *)b + (size_t)(j * b_cs) * es,
                           b_rs, dt, k, x->bias.data ? get_el(x->bias.data, x->bias.dtype, j) : 0.0, &mag);
      double got = get_el(x->out.data, dt, i * x->out.ld + j);
      if (!within_tol(got, ref, mag, dt, k) && bad++ < 3)
        fprintf(stderr, "[rank %d] out[%lld,%lld] = %.9g, ref %.9g\n", t_rank, (long long)i, (long long)j, got, ref);
    }
  return bad;
}

/* out's padding and the element past it untouched; gather_out untouched, or
 * each row the gathered operand's (logical orientation, whatever the
 * transposes) bit for bit with its padding untouched. */
static inline int agmm_check_layout(const agmm_case_t *x) {
  const tpmm_dtype_t dt = x->c->dt;
  const size_t es = dt_size(dt);
  const int64_t n = x->out.shape[1], ld = x->out.ld, gw = x->gout.shape[1], ld_g = x->gout.ld;
  int ok = is_poison(x->out.data, dt, x->out.shape[0] * ld);
  for (int64_t i = 0; i < x->out.shape[0]; i++)
    for (int64_t j = n; j < ld; j++) ok &= is_poison(x->out.data, dt, i * ld + j);
  for (int64_t i = 0; i < x->total * ld_g + 1 && !x->c->gout; i++) ok &= is_poison(x->gout.data, dt, i);
  for (int64_t i = 0; i < x->total && x->c->gout; i++) {
    ok &= memcmp((char *)x->gout.data + (size_t)(i * ld_g) * es, (char *)x->G + (size_t)(i * gw) * es,
                 (size_t)gw * es) == 0;
    for (int64_t j = gw; j < ld_g; j++) ok &= is_poison(x->gout.data, dt, i * ld_g + j);
  }
  return ok;
}

/* x under every algorithm of algos (algos[0] is unfused: checked against
 * fp64, its output kept in out0; every other one bit-identical to it), then
 * as a plan of algos[idx % n_algos] executed twice. An algorithm the group
 * cannot run returns UNSUPPORTED on every rank and is skipped. Sets
 * TPMM_PARAM_ALGO back to auto. Collective. */
static inline void agmm_sweep(agmm_case_t *x, const char *desc, const int *algos, int n_algos, int idx, uint64_t seed) {
  const size_t bytes = agmm_bytes(&x->out);
  const char *what = x->gi ? "x2" : "rows";
  for (int ai = 0; ai < n_algos; ai++) {
    const char *an = tpmm_algo_name((tpmm_algo_t)algos[ai]);
    tpmm_set_param(TPMM_PARAM_ALGO, algos[ai]);
    agmm_poison(x);
    tpmm_status_t st = agmm_call(x);
    if (st == TPMM_ERR_UNSUPPORTED && ai > 0) continue; /* this group cannot run it (every rank) */
    check(st == TPMM_SUCCESS, "[%s] %s: status %d: %s", an, desc, st, tpmm_last_error());
    if (st != TPMM_SUCCESS) break;
    if (ai == 0) {
      const int bad = agmm_check_reference(x);
      check(bad == 0, "[%s] %s: %d output elements differ from the fp64 reference (seed %llu)", an, desc, bad,
            (unsigned long long)seed);
      memcpy(x->out0, x->out.data, bytes);
    } else {
      check(memcmp(x->out0, x->out.data, bytes) == 0, "[%s] %s: output is not bit-identical to unfused", an, desc);
    }
    check(agmm_check_layout(x), "[%s] %s: gather_out not the gathered %s, or padding written", an, desc, what);
  }
  const int algo = algos[idx % n_algos];
  const char *an = tpmm_algo_name((tpmm_algo_t)algo);
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  tpmm_plan_t *plan = NULL;
  tpmm_status_t st = agmm_plan_create(x, &plan);
  for (int rep = 0; rep < 2 && st == TPMM_SUCCESS; rep++) { /* each execute checked: the second reuses the first's */
    agmm_poison(x);
    st = tpmm_plan_execute(plan, &x->in, &x->out, &x->gout);
    if (st != TPMM_SUCCESS) break;
    check(memcmp(x->out0, x->out.data, bytes) == 0, "[plan %s, execute %d] %s: output is not bit-identical to unfused",
          an, rep + 1, desc);
    check(agmm_check_layout(x), "[plan %s, execute %d] %s: gather_out or padding wrong", an, rep + 1, desc);
  }
  tpmm_plan_destroy(plan);
  if (!(st == TPMM_ERR_UNSUPPORTED && algo != TPMM_ALGO_UNFUSED))
    check(st == TPMM_SUCCESS, "[plan %s] %s: status %d: %s", an, desc, st, tpmm_last_error());
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
}

#endif
