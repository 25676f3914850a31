/*
 * validate_ext.c — the argument check of all_gather_matmul's uneven shards
 * (tpmm_all_gather_matmul_v), several weights (_multi) and gather_index 1,
 * in validate.c's manner: every check names the argument and its value, in
 * the order of the seed's error table (pointers and ranges, dtypes, shapes,
 * group, outputs, bias), and every rank checks the same facts.
 *
 * Extents: gather_index 0 gathers input's rows (m_q on rank q); 1 gathers
 * x2's rows (k_q on rank q; input then has K = sum of k_q columns). Even
 * calls have m_q = m (k_q = k); tpmm_all_gather_matmul_v passes counts[q].
 * counts[own rank] against the local extent needs the rank: the operator's
 * prepare checks it (op_all_gather_matmul.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "check.h"
#include "tensor.h"

static const tpmm_all_gather_matmul_opts_t default_opts = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;

/* What the checks learn, in order. */
typedef struct {
  const tpmm_all_gather_matmul_opts_t *o;
  int nb, gi, ti, tx, W;
  int64_t m, k;                     /* input: rows and columns (logical) */
  int64_t kx, n[TPI_MAX_NB];        /* x2: rows (the same for every weight) and columns */
  int64_t ld_in, ld_x2[TPI_MAX_NB]; /* stored row strides */
  int64_t ld_out[TPI_MAX_NB], ld_g; /* outputs' row strides */
  int64_t total, max;               /* the gathered extent and the largest shard */
  char xname[TPI_MAX_NB][16], oname[TPI_MAX_NB][16], bname[TPI_MAX_NB][16]; /* "x2" or "x2[i]" */
} ext_t;

int tpi_agmm_is_ext(const tpi_args_t *args) {
  const tpmm_all_gather_matmul_opts_t *o = args->agmm ? args->agmm : &default_opts;
  return args->uneven || args->multi || o->gather_index == 1;
}

/* FNV-1a over n int64 values, kept non-negative (never TPI_AGREE_UNKNOWN). */
static int64_t hash64(const int64_t *v, int n) {
  uint64_t h = 1469598103934665603u;
  for (int i = 0; i < n; i++)
    for (int b = 0; b < 8; b++) h = (h ^ (uint8_t)((uint64_t)v[i] >> (8 * b))) * 1099511628211u;
  return (int64_t)(h & INT64_MAX);
}

void tpi_agmm_fields_ext(const tpi_args_t *args, int64_t f[TPI_F_COUNT]) {
  const tpmm_all_gather_matmul_opts_t *o = args->agmm ? args->agmm : &default_opts;
  const int nb = args->nb >= 1 && args->nb <= TPI_MAX_NB ? args->nb : 0;
  tpi_agmm_fields(args->input, args->x2 && nb > 0 ? args->x2[0] : NULL, args->world_size, args->agmm, f);
  if (args->uneven) { /* counts has world_size entries (its contract) */
    const int W = args->world_size;
    int neg = 0; /* a negative count fails this rank's validation: its counts are not compared */
    int64_t sum = 0;
    for (int q = 0; args->counts && q < W; q++) neg |= args->counts[q] < 0, sum += neg ? 0 : args->counts[q];
    f[TPI_F_COUNTS] = args->counts && W >= 1 && !neg ? hash64(args->counts, W) : TPI_AGREE_UNKNOWN;
    if (o->gather_index == 0) /* the gathered rows: the same on every rank */
      f[TPI_F_M] = args->counts && !neg ? sum : TPI_AGREE_UNKNOWN;
  }
  f[TPI_F_NB] = args->multi ? args->nb : 1;
  if (!args->multi) return;
  int64_t w[3 * TPI_MAX_NB];
  int unread = 0;
  for (int i = 0; i < nb; i++) {
    const tpmm_tensor_t *x = args->x2 ? args->x2[i] : NULL, *b = args->bias ? args->bias[i] : NULL;
    unread |= !x || x->ndim != 2;
    w[3 * i] = x && x->ndim == 2 ? x->shape[o->trans_x2 ? 0 : 1] : -1;
    w[3 * i + 1] = b != NULL;
    w[3 * i + 2] = b ? (int64_t)b->dtype : 0;
  }
  f[TPI_F_WEIGHTS] = unread ? TPI_AGREE_UNKNOWN : hash64(w, 3 * nb);
}

/* Pointers and ranges: every one a cheap local fact. */
static tpmm_status_t check_pointers(const char *op, const tpi_args_t *args, ext_t *e) {
  const tpmm_all_gather_matmul_opts_t *o = e->o;
  if (args->multi) {
    if (args->nb < 1 || args->nb > TPI_MAX_NB)
      return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: nb=%d, expected 1 to %d weights", op, args->nb, TPI_MAX_NB);
    if (o->bias)
      return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: opts->bias is set; multi takes one bias per weight in bias[]",
                      op);
    if (o->gather_index == 1)
      return tpi_fail(
          TPMM_ERR_UNSUPPORTED,
          "%s: gather_index=1 is not supported with a list of weights (tpmm_all_gather_matmul_multi); use 0", op);
  }
  if (!args->input) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: input is NULL", op);
  if (!args->x2) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: x2 is NULL", op);
  if (!args->output) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: output is NULL", op);
  for (int i = 0; i < e->nb; i++) {
    if (!args->x2[i]) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, e->xname[i]);
    if (!args->output[i]) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, e->oname[i]);
  }
  if (o->gather_output && !args->gather_out)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: gather_out is NULL while gather_output is true", op);
  if (args->uneven && !args->counts) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: counts is NULL", op);
  if (o->comm_turn < 0) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: comm_turn=%d is negative", op, o->comm_turn);
  if (o->gather_index != 0 && o->gather_index != 1)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: gather_index=%d, expected 0 or 1", op, o->gather_index);
  return TPMM_SUCCESS;
}

static tpmm_status_t check_dtypes(const char *op, const tpi_args_t *args, const ext_t *e) {
  const tpmm_tensor_t *in = args->input;
  if (!tpi_dtype_valid(in->dtype))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: input: dtype=%d is not a tpmm_dtype_t", op, (int)in->dtype);
  for (int i = 0; i < e->nb; i++)
    if (!tpi_dtype_valid(args->x2[i]->dtype))
      return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s: dtype=%d is not a tpmm_dtype_t", op, e->xname[i],
                      (int)args->x2[i]->dtype);
  for (int i = 0; i < e->nb; i++)
    if (args->x2[i]->dtype != in->dtype)
      return tpi_fail(TPMM_ERR_DTYPE, "%s: %s: dtype %s differs from input dtype %s", op, e->xname[i],
                      tpi_dtype_name(args->x2[i]->dtype), tpi_dtype_name(in->dtype));
  return TPMM_SUCCESS;
}

/* input and every x2 as matrices; the inner dimensions agree. */
static tpmm_status_t check_shapes(const char *op, const tpi_args_t *args, int need_data, ext_t *e) {
  TPI_CHECK(tpi_check_matrix(op, "input", args->input, need_data, &e->ld_in));
  e->m = args->input->shape[e->ti], e->k = args->input->shape[!e->ti];
  if (e->k == 0) return tpi_fail(TPMM_ERR_SHAPE, "%s: input: k=0, expected k >= 1", op);
  for (int i = 0; i < e->nb; i++) {
    const tpmm_tensor_t *x = args->x2[i];
    TPI_CHECK(tpi_check_matrix(op, e->xname[i], x, 1, &e->ld_x2[i]));
    const int64_t kx = x->shape[e->tx];
    e->n[i] = x->shape[!e->tx];
    if (i == 0) e->kx = kx;
    if (e->gi == 0 && kx != e->k)
      return tpi_fail(TPMM_ERR_SHAPE, "%s: %s: k=%lld does not match input k=%lld%s", op, e->xname[i], (long long)kx,
                      (long long)e->k, e->tx ? " (x2 is transposed: k is shape[1])" : "");
  }
  return TPMM_SUCCESS;
}

/* The shards: counts (uneven) or W equal ones; their sum and largest. */
static tpmm_status_t check_counts(const char *op, const tpi_args_t *args, int group_size, ext_t *e) {
  if (args->world_size != group_size)
    return tpi_fail(TPMM_ERR_WORLD_SIZE, "%s: world_size=%d, but the group has %d ranks", op, args->world_size,
                    group_size);
  const int64_t local = e->gi ? e->kx : e->m;
  e->total = 0, e->max = 0;
  for (int q = 0; q < e->W; q++) {
    const int64_t c = args->uneven ? args->counts[q] : local;
    if (c < 0) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: counts[%d]=%lld is negative", op, q, (long long)c);
    if (__builtin_add_overflow(e->total, c, &e->total) || e->total > INT64_MAX / 8)
      return tpi_fail(TPMM_ERR_SHAPE, "%s: counts sum past %lld rows (counts[%d]=%lld)", op, (long long)(INT64_MAX / 8),
                      q, (long long)c);
    if (c > e->max) e->max = c;
  }
  if (e->gi == 1 && e->total != e->k)
    return tpi_fail(TPMM_ERR_SHAPE, "%s: x2: %s %lld rows of x2 over %d ranks, but input has k=%lld", op,
                    args->uneven ? "counts gather" : "equal shards of", (long long)(args->uneven ? e->total : e->kx),
                    e->W, (long long)e->k);
  return TPMM_SUCCESS;
}

/* The outputs' sizes fit, shapes and dtypes match; the biases; comm_turn. */
static tpmm_status_t check_outputs(const char *op, const tpi_args_t *args, int need_data, ext_t *e) {
  const tpmm_dtype_t dt = args->input->dtype;
  const int64_t rows = e->gi ? e->m : e->total, gcols = e->gi ? e->n[0] : e->k;
  int64_t tmp;
  for (int i = 0; i < e->nb; i++)
    if (!tpi_mul_ok(rows, e->n[i], &tmp) || !tpi_mul_ok(tmp, 4, &tmp) || !tpi_mul_ok(e->total, gcols, &tmp) ||
        !tpi_mul_ok(tmp, 4, &tmp))
      return tpi_fail(TPMM_ERR_SHAPE, "%s: %lld gathered rows with k=%lld, n=%lld overflow the address space", op,
                      (long long)e->total, (long long)e->k, (long long)e->n[i]);
  for (int i = 0; i < e->nb; i++)
    TPI_CHECK(tpi_check_output(op, e->oname[i], args->output[i], dt, rows, e->n[i], need_data, &e->ld_out[i]));
  if (e->o->gather_output)
    TPI_CHECK(tpi_check_output(op, "gather_out", args->gather_out, dt, e->total, gcols, need_data, &e->ld_g));
  for (int i = 0; i < e->nb; i++) {
    const tpmm_tensor_t *b = args->multi ? (args->bias ? args->bias[i] : NULL) : e->o->bias;
    if (b) TPI_CHECK(tpi_check_bias(op, e->bname[i], b, dt, e->n[i]));
  }
  if (e->o->comm_turn > (e->max > 1 ? e->max : 1))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: comm_turn=%d is larger than the largest shard's %lld rows", op,
                    e->o->comm_turn, (long long)e->max);
  return TPMM_SUCCESS;
}

/* Outputs must not share memory with the inputs or with each other. */
static tpmm_status_t check_aliasing(const char *op, const tpi_call_t *a) {
  const int nb = a->nb;
  tpi_mat_t ins[1 + 2 * TPI_MAX_NB], outs[1 + TPI_MAX_NB];
  int nin = 0, nout = 0;
  ins[nin++] = a->in;
  for (int i = 0; i < nb; i++) {
    const tpi_mat_t *x = i ? &a->w[i].x2 : &a->x2;
    const void *bias = i ? a->w[i].bias : a->bias;
    const tpmm_dtype_t bdt = i ? a->w[i].bias_dt : a->bias_dt;
    ins[nin++] = *x;
    /* bias as a 1 x (bytes / esize) row, so that its extent is in bytes */
    ins[nin++] = (tpi_mat_t){(char *)bias, bias ? 1 : 0, x->cols * (int64_t)(tpmm_dtype_size(bdt) / a->esize), 0, 1};
    outs[nout++] = i ? a->w[i].out : a->out;
  }
  outs[nout++] = a->gout;
  for (int o = 0; o < nout; o++) {
    for (int i = 0; i < nin; i++)
      if (tpi_overlaps(&outs[o], &ins[i], a->esize))
        return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s overlaps %s in memory", op,
                        o == nout - 1 ? "gather_out" : "an output", i == 0 ? "input" : "a weight or bias");
    for (int p = o + 1; p < nout; p++)
      if (tpi_overlaps(&outs[o], &outs[p], a->esize))
        return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: outputs overlap in memory (%d and %d)", op, o, p);
  }
  return TPMM_SUCCESS;
}

/* The validated call from what the checks learnt. */
static tpmm_status_t fill(const char *op, const tpi_args_t *args, const ext_t *e, tpi_call_t *a) {
  const tpmm_tensor_t *in = args->input;
  const int64_t rows = e->gi ? e->m : e->total;
  a->dt = in->dtype, a->esize = tpmm_dtype_size(in->dtype);
  a->m = e->m, a->k = e->k, a->n = e->n[0], a->W = e->W;
  a->in = (tpi_mat_t){(char *)in->data, e->m, e->k, e->ti ? 1 : e->ld_in, e->ti ? e->ld_in : 1};
  if (e->o->gather_output)
    a->gout = (tpi_mat_t){(char *)args->gather_out->data, e->total, e->gi ? e->n[0] : e->k, e->ld_g, 1};
  a->comm_turn = e->o->comm_turn;
  a->gather_output = e->o->gather_output, a->trans_input = e->ti, a->trans_x2 = e->tx;
  a->gather_index = e->gi, a->nb = e->nb, a->multi = args->multi, a->m_max = e->max;
  for (int i = 0; i < e->nb; i++) {
    const tpmm_tensor_t *x = args->x2[i], *b = args->multi ? (args->bias ? args->bias[i] : NULL) : e->o->bias;
    const tpi_mat_t xv = {(char *)x->data, e->kx, e->n[i], e->tx ? 1 : e->ld_x2[i], e->tx ? e->ld_x2[i] : 1};
    const tpi_mat_t ov = {(char *)args->output[i]->data, rows, e->n[i], e->ld_out[i], 1};
    if (i == 0) {
      a->x2 = xv, a->out = ov, a->bias = b ? b->data : NULL, a->bias_dt = b ? b->dtype : in->dtype;
    } else {
      a->w[i] = (tpi_weight_t){xv, ov, b ? b->data : NULL, b ? b->dtype : in->dtype};
    }
  }
  if (args->uneven || e->gi == 1) { /* the shards' first rows */
    a->row0 = tpi_debug_fail("the shards' rows") ? NULL : malloc(sizeof(int64_t) * (size_t)(e->W + 1));
    if (!a->row0) return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for the shards' rows", op);
    a->row0[0] = 0;
    for (int q = 0; q < e->W; q++) a->row0[q + 1] = a->row0[q] + (args->uneven ? args->counts[q] : e->kx);
  }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_agmm_validate_ext(const char *op, const tpi_args_t *args, int group_size, int need_data,
                                    tpi_call_t *a) {
  memset(a, 0, sizeof *a);
  ext_t e;
  memset(&e, 0, sizeof e);
  e.o = args->agmm ? args->agmm : &default_opts;
  e.nb = args->multi ? args->nb : 1;
  e.gi = e.o->gather_index, e.ti = e.o->trans_input, e.tx = e.o->trans_x2, e.W = args->world_size;
  for (int i = 0; i < e.nb && i < TPI_MAX_NB; i++) {
    snprintf(e.xname[i], sizeof e.xname[i], args->multi ? "x2[%d]" : "x2", i);
    snprintf(e.oname[i], sizeof e.oname[i], args->multi ? "output[%d]" : "output", i);
    snprintf(e.bname[i], sizeof e.bname[i], args->multi ? "bias[%d]" : "bias", i);
  }
  TPI_CHECK(check_pointers(op, args, &e));
  TPI_CHECK(check_dtypes(op, args, &e));
  TPI_CHECK(check_shapes(op, args, need_data, &e));
  TPI_CHECK(check_counts(op, args, group_size, &e));
  TPI_CHECK(check_outputs(op, args, need_data, &e));
  TPI_CHECK(fill(op, args, &e, a));
  tpmm_status_t st = check_aliasing(op, a);
  if (st != TPMM_SUCCESS) {
    free(a->row0);
    a->row0 = NULL;
  }
  return st;
}

static int same_layout(const tpmm_tensor_t *t, tpmm_dtype_t dt, const tpi_mat_t *v) {
  return t->dtype == dt && t->ndim == 2 && t->shape[0] == v->rows && t->shape[1] == v->cols &&
         (t->ld ? t->ld : t->shape[1]) == v->rs;
}

tpmm_status_t tpi_agmm_rebind_ext(const char *op, tpi_call_t *a, const tpmm_tensor_t *input,
                                  const tpmm_tensor_t *const *output, bool multi, const tpmm_tensor_t *gather_out) {
  if (multi != a->multi)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: the plan was made by %s: run it with %s", op,
                    a->multi ? "tpmm_all_gather_matmul_multi_plan_create" : "a single-weight plan_create",
                    a->multi ? "tpmm_plan_execute_multi" : "tpmm_plan_execute");
  if (!output) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: output is NULL", op);
  for (int i = 0; i < a->nb; i++) {
    const tpmm_tensor_t *t = output[i];
    const tpi_mat_t *v = i ? &a->w[i].out : &a->out;
    if (!t) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: output[%d] is NULL", op, i);
    if (!same_layout(t, a->dt, v))
      return tpi_fail(t->dtype != a->dt ? TPMM_ERR_DTYPE : TPMM_ERR_SHAPE,
                      "%s: output[%d]: dtype %s shape (%lld, %lld) ld %lld differs from the plan's %s (%lld, %lld) "
                      "ld %lld",
                      op, i, tpi_dtype_name(t->dtype), (long long)t->shape[0], (long long)t->shape[1], (long long)t->ld,
                      tpi_dtype_name(a->dt), (long long)v->rows, (long long)v->cols, (long long)v->rs);
    if (!t->data && v->rows > 0 && v->cols > 0)
      return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: output[%d]: data is NULL", op, i);
  }
  /* input, output[0] and gather_out as for one weight, then the others */
  TPI_CHECK(tpi_agmm_rebind(op, a, input, output[0], gather_out));
  for (int i = 1; i < a->nb; i++) a->w[i].out.data = output[i]->data;
  return check_aliasing(op, a);
}
