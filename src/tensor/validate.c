/*
 * validate.c — the one argument check of all_gather_matmul (NCCL's argcheck
 * habit): every entry funnels through tpi_agmm_validate, which names the bad
 * argument and its value. Order follows the seed's error table so that a call
 * with several problems reports the one MindSpore would.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../common/common.h"
#include "check.h"
#include "tensor.h"

const char *const tpi_field_names[TPI_F_COUNT] = {[TPI_F_OP] = "operation",
                                                  [TPI_F_PLAN] = "plan",
                                                  [TPI_F_GATHER_INDEX] = "gather_index",
                                                  [TPI_F_NB] = "number of weights",
                                                  [TPI_F_COUNTS] = "#counts",
                                                  [TPI_F_WORLD_SIZE] = "world_size",
                                                  [TPI_F_TRANS_INPUT] = "trans_input",
                                                  [TPI_F_TRANS_X2] = "trans_x2",
                                                  [TPI_F_DTYPE] = "dtype",
                                                  [TPI_F_M] = "m",
                                                  [TPI_F_K] = "k",
                                                  [TPI_F_N] = "n",
                                                  [TPI_F_GATHER_OUTPUT] = "gather_output",
                                                  [TPI_F_COMM_TURN] = "comm_turn",
                                                  [TPI_F_BIAS] = "bias (present)",
                                                  [TPI_F_BIAS_DTYPE] = "bias dtype",
                                                  [TPI_F_REDUCE_OP] = "reduce_op",
                                                  [TPI_F_WEIGHTS] = "#weights' n and bias",
                                                  [TPI_F_BIAS_VALUES] = "#bias values"};

static const tpmm_all_gather_matmul_opts_t default_opts = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;

static int dtype_valid(int dt) { return dt == TPMM_FLOAT16 || dt == TPMM_BFLOAT16 || dt == TPMM_FLOAT32; }

static const char *dtype_name(int dt) {
  switch (dt) {
    case TPMM_FLOAT16: return "float16";
    case TPMM_BFLOAT16: return "bfloat16";
    case TPMM_FLOAT32: return "float32";
  }
  return "invalid";
}

const char *tpi_field_value(int i, int64_t v, char *buf, size_t len) {
  switch (i) {
    case TPI_F_PLAN:
      if (v == 0) return "a one-shot call";
      snprintf(buf, len, "plan %lld of the group", (long long)v); /* numbered in creation order */
      return buf;
    case TPI_F_DTYPE:
    case TPI_F_BIAS_DTYPE: return dtype_valid((int)v) ? dtype_name((int)v) : NULL;
    case TPI_F_TRANS_INPUT:
    case TPI_F_TRANS_X2:
    case TPI_F_GATHER_OUTPUT:
    case TPI_F_BIAS: return v == 0 ? "false" : v == 1 ? "true" : NULL;
    case TPI_F_REDUCE_OP: return v == TPMM_REDUCE_SUM ? "sum" : v == TPMM_REDUCE_AVG ? "avg" : NULL;
  }
  return NULL;
}

void tpi_fields_common(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int world_size, bool trans_input,
                       bool trans_x2, int comm_turn, const tpmm_tensor_t *bias, int64_t f[TPI_F_COUNT]) {
  for (int i = 0; i < TPI_F_COUNT; i++) f[i] = -1;
  f[TPI_F_DTYPE] = input ? input->dtype : TPI_AGREE_UNKNOWN;
  f[TPI_F_M] = input && input->ndim == 2 ? input->shape[trans_input ? 1 : 0] : TPI_AGREE_UNKNOWN;
  f[TPI_F_K] = input && input->ndim == 2 ? input->shape[trans_input ? 0 : 1] : TPI_AGREE_UNKNOWN;
  f[TPI_F_N] = x2 && x2->ndim == 2 ? x2->shape[trans_x2 ? 0 : 1] : TPI_AGREE_UNKNOWN;
  f[TPI_F_WORLD_SIZE] = world_size;
  f[TPI_F_TRANS_INPUT] = trans_input;
  f[TPI_F_TRANS_X2] = trans_x2;
  f[TPI_F_COMM_TURN] = comm_turn;
  f[TPI_F_BIAS] = bias != NULL;
  f[TPI_F_BIAS_DTYPE] = bias ? (int64_t)bias->dtype : 0;
}

void tpi_agmm_fields(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int world_size,
                     const tpmm_all_gather_matmul_opts_t *opts, int64_t f[TPI_F_COUNT]) {
  if (!opts) opts = &default_opts;
  tpi_fields_common(input, x2, world_size, opts->trans_input, opts->trans_x2, opts->comm_turn, opts->bias, f);
  f[TPI_F_GATHER_OUTPUT] = opts->gather_output;
  f[TPI_F_GATHER_INDEX] = opts->gather_index;
}

/* Checks common to every matrix argument: ndim, dims, ld, byte size, data. */
static tpmm_status_t check_matrix(const char *op, const char *name, const tpmm_tensor_t *t, int need_data,
                                  int64_t *ld) {
  if (t->ndim != 2) return tpi_fail(TPMM_ERR_SHAPE, "%s: %s: ndim=%d, expected 2", op, name, t->ndim);
  if (t->shape[0] < 0 || t->shape[1] < 0)
    return tpi_fail(TPMM_ERR_SHAPE, "%s: %s: shape (%lld, %lld) has a negative dimension", op, name,
                    (long long)t->shape[0], (long long)t->shape[1]);
  int64_t l = t->ld ? t->ld : t->shape[1];
  if (l < t->shape[1] || l < 0)
    return tpi_fail(TPMM_ERR_SHAPE, "%s: %s: ld=%lld is smaller than its %lld stored columns", op, name,
                    (long long)t->ld, (long long)t->shape[1]);
  int64_t elems, bytes;
  if (!tpi_mul_ok(t->shape[0], l, &elems) || !tpi_mul_ok(elems, 4, &bytes) || bytes > (int64_t)(SIZE_MAX / 2))
    return tpi_fail(TPMM_ERR_SHAPE, "%s: %s: shape (%lld, %lld) with ld=%lld overflows the address space", op, name,
                    (long long)t->shape[0], (long long)t->shape[1], (long long)l);
  if (need_data && !t->data && t->shape[0] > 0 && t->shape[1] > 0)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s: data is NULL for shape (%lld, %lld)", op, name,
                    (long long)t->shape[0], (long long)t->shape[1]);
  *ld = l;
  return TPMM_SUCCESS;
}

/* Check an output against its required shape and the input dtype. */
static tpmm_status_t check_output(const char *op, const char *name, const tpmm_tensor_t *t, tpmm_dtype_t dt,
                                  int64_t rows, int64_t cols, int need_data, int64_t *ld) {
  if (!dtype_valid(t->dtype))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s: dtype=%d is not a tpmm_dtype_t", op, name, (int)t->dtype);
  if (t->dtype != dt)
    return tpi_fail(TPMM_ERR_DTYPE, "%s: %s: dtype %s differs from input dtype %s", op, name, dtype_name(t->dtype),
                    dtype_name(dt));
  TPI_CHECK(check_matrix(op, name, t, need_data, ld));
  if (t->shape[0] != rows || t->shape[1] != cols)
    return tpi_fail(TPMM_ERR_SHAPE, "%s: %s: shape (%lld, %lld), expected (%lld, %lld)", op, name,
                    (long long)t->shape[0], (long long)t->shape[1], (long long)rows, (long long)cols);
  return TPMM_SUCCESS;
}

/* Byte range [lo, hi) touched by a stored matrix; empty if it has no elements. */
static void extent(const tpi_mat_t *v, size_t es, uintptr_t *lo, uintptr_t *hi) {
  *lo = *hi = 0;
  if (v->rows == 0 || v->cols == 0 || !v->data) return;
  int64_t last = (v->rows - 1) * v->rs + (v->cols - 1) * v->cs;
  *lo = (uintptr_t)v->data;
  *hi = *lo + (uintptr_t)((last + 1) * (int64_t)es);
}

static int overlaps(const tpi_mat_t *a, const tpi_mat_t *b, size_t es) {
  uintptr_t alo, ahi, blo, bhi;
  extent(a, es, &alo, &ahi);
  extent(b, es, &blo, &bhi);
  return alo < ahi && blo < bhi && alo < bhi && blo < ahi;
}

/* Outputs must not share memory with the inputs or with each other. x2 is
 * skipped when its view has no data (plans keep their own copy). */
static tpmm_status_t check_aliasing(const char *op, const tpi_call_t *a) {
  const tpi_mat_t *outs[2] = {&a->out, &a->gout};
  const char *out_names[2] = {"output", "gather_out"};
  /* bias as a 1 x (bytes / esize) row, so that its extent is in bytes */
  tpi_mat_t bias_v = {(char *)a->bias, a->bias ? 1 : 0, a->n * (int64_t)(tpmm_dtype_size(a->bias_dt) / a->esize), 0, 1};
  const tpi_mat_t *ins[3] = {&a->in, &a->x2, &bias_v};
  const char *in_names[3] = {"input", "x2", "bias"};
  for (int o = 0; o < 2; o++)
    for (int i = 0; i < 3; i++)
      if (overlaps(outs[o], ins[i], a->esize))
        return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s overlaps %s in memory", op, out_names[o], in_names[i]);
  if (overlaps(&a->out, &a->gout, a->esize))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: output overlaps gather_out in memory", op);
  return TPMM_SUCCESS;
}

/* The stored layout a tensor must keep for a plan. */
static int same_layout(const tpmm_tensor_t *t, tpmm_dtype_t dt, int64_t r, int64_t c, int64_t ld) {
  return t->dtype == dt && t->ndim == 2 && t->shape[0] == r && t->shape[1] == c && (t->ld ? t->ld : t->shape[1]) == ld;
}

tpmm_status_t tpi_agmm_rebind(const char *op, tpi_call_t *a, const tpmm_tensor_t *input, const tpmm_tensor_t *output,
                              const tpmm_tensor_t *gather_out) {
  if (!input) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: input is NULL", op);
  if (!output) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: output is NULL", op);
  if (a->gather_output && !gather_out)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: gather_out is NULL while the plan has gather_output true", op);
  const int64_t in_r = a->trans_input ? a->k : a->m, in_c = a->trans_input ? a->m : a->k;
  const int64_t in_ld = a->trans_input ? a->in.cs : a->in.rs;
  const struct {
    const tpmm_tensor_t *t;
    const char *name;
    const tpi_mat_t *v;
    int64_t r, c, ld;
  } want[3] = {{input, "input", &a->in, in_r, in_c, in_ld},
               {output, "output", &a->out, a->out.rows, a->out.cols, a->out.rs},
               {gather_out, "gather_out", &a->gout, a->gout.rows, a->gout.cols, a->gout.rs}};
  for (int i = 0; i < (a->gather_output ? 3 : 2); i++) {
    const tpmm_tensor_t *t = want[i].t;
    const int64_t ld = t->ld ? t->ld : t->shape[1]; /* 0: dense, as the plan's was read */
    if (!same_layout(t, a->dt, want[i].r, want[i].c, want[i].ld))
      return tpi_fail(t->dtype != a->dt ? TPMM_ERR_DTYPE : TPMM_ERR_SHAPE,
                      "%s: %s: dtype %s shape (%lld, %lld) ld %lld differs from the plan's %s (%lld, %lld) ld %lld", op,
                      want[i].name, dtype_name(t->dtype), (long long)t->shape[0], (long long)t->shape[1], (long long)ld,
                      dtype_name(a->dt), (long long)want[i].r, (long long)want[i].c, (long long)want[i].ld);
    if (!t->data && want[i].r > 0 && want[i].c > 0)
      return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s: data is NULL", op, want[i].name);
  }
  a->in.data = input->data;
  a->out.data = output->data;
  if (a->gather_output) a->gout.data = gather_out->data;
  return check_aliasing(op, a);
}

tpmm_status_t tpi_check_bias(const char *op, const char *name, const tpmm_tensor_t *b, tpmm_dtype_t dt, int64_t n) {
  if (!tpi_dtype_valid(b->dtype))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s: dtype=%d is not a tpmm_dtype_t", op, name, (int)b->dtype);
  if (b->dtype != dt && b->dtype != TPMM_FLOAT32)
    return tpi_fail(TPMM_ERR_DTYPE, "%s: %s: dtype %s, expected %s%s", op, name, tpi_dtype_name(b->dtype),
                    tpi_dtype_name(dt), dt == TPMM_FLOAT32 ? "" : " or float32");
  if (b->ndim != 1) return tpi_fail(TPMM_ERR_SHAPE, "%s: %s: ndim=%d, expected 1", op, name, b->ndim);
  if (b->shape[0] != n)
    return tpi_fail(TPMM_ERR_SHAPE, "%s: %s: length %lld does not match n=%lld", op, name, (long long)b->shape[0],
                    (long long)n);
  if (!b->data && n > 0)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: %s: data is NULL for n=%lld", op, name, (long long)n);
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_agmm_validate(const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int group_size,
                                int world_size, const tpmm_all_gather_matmul_opts_t *opts, const tpmm_tensor_t *output,
                                const tpmm_tensor_t *gather_out, int need_data, tpi_call_t *a) {
  if (!opts) opts = &default_opts;
  memset(a, 0, sizeof *a);
  /* wrong parameter types */
  if (!input) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: input is NULL", op);
  if (!x2) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: x2 is NULL", op);
  if (!output) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: output is NULL", op);
  if (opts->gather_output && !gather_out)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: gather_out is NULL while gather_output is true", op);
  if (opts->comm_turn < 0)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: comm_turn=%d is negative", op, opts->comm_turn);
  if (opts->gather_index == 1)
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: gather_index=1 (gather x2) is not supported yet; use 0", op);
  if (opts->gather_index != 0)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: gather_index=%d, expected 0 or 1", op, opts->gather_index);
  /* dtypes, shapes, the group */
  tpi_operands_t d;
  TPI_CHECK(
      tpi_check_operands(op, input, x2, opts->trans_input, opts->trans_x2, group_size, world_size, need_data, &d));
  const int64_t m = d.m, k = d.k, n = d.n;
  int64_t ld_out = 0, ld_g = 0;
  /* sizes of the outputs must fit */
  int64_t mw, tmp;
  if (!tpi_mul_ok(m, world_size, &mw) || !tpi_mul_ok(mw, n, &tmp) || !tpi_mul_ok(tmp, 4, &tmp) ||
      !tpi_mul_ok(mw, k, &tmp) || !tpi_mul_ok(tmp, 4, &tmp))
    return tpi_fail(TPMM_ERR_SHAPE, "%s: m*world_size=%lld*%d with k=%lld, n=%lld overflows the address space", op,
                    (long long)m, world_size, (long long)k, (long long)n);
  TPI_CHECK(check_output(op, "output", output, input->dtype, mw, n, need_data, &ld_out));
  if (opts->gather_output) TPI_CHECK(check_output(op, "gather_out", gather_out, input->dtype, mw, k, need_data, &ld_g));
  if (opts->bias) TPI_CHECK(tpi_check_bias(op, "bias", opts->bias, input->dtype, n));
  if (opts->comm_turn > (m > 1 ? m : 1))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: comm_turn=%d is larger than m=%lld rows per rank", op,
                    opts->comm_turn, (long long)m);

  tpi_call_operands(a, &d, input, x2, world_size, opts->bias, opts->comm_turn);
  a->out = (tpi_mat_t){(char *)output->data, mw, n, ld_out, 1};
  if (opts->gather_output) a->gout = (tpi_mat_t){(char *)gather_out->data, mw, k, ld_g, 1};
  a->gather_output = opts->gather_output;
  return check_aliasing(op, a);
}

/* ---- the operands every single-weight operator checks alike (check.h) ---- */
tpmm_status_t tpi_check_operands(const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2, bool ti, bool tx,
                                 int group_size, int world_size, int need_data, tpi_operands_t *d) {
  if (!dtype_valid(input->dtype))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: input: dtype=%d is not a tpmm_dtype_t", op, (int)input->dtype);
  if (!dtype_valid(x2->dtype))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: x2: dtype=%d is not a tpmm_dtype_t", op, (int)x2->dtype);
  if (x2->dtype != input->dtype)
    return tpi_fail(TPMM_ERR_DTYPE, "%s: x2: dtype %s differs from input dtype %s", op, dtype_name(x2->dtype),
                    dtype_name(input->dtype));
  TPI_CHECK(check_matrix(op, "input", input, need_data, &d->ld_in));
  TPI_CHECK(check_matrix(op, "x2", x2, 1, &d->ld_x2));
  d->ti = ti, d->tx = tx;
  d->m = input->shape[ti], d->k = input->shape[!ti], d->n = x2->shape[!tx];
  const int64_t kx = x2->shape[tx];
  if (d->k == 0) return tpi_fail(TPMM_ERR_SHAPE, "%s: input: k=0, expected k >= 1", op);
  if (kx != d->k)
    return tpi_fail(TPMM_ERR_SHAPE, "%s: x2: k=%lld does not match input k=%lld%s", op, (long long)kx, (long long)d->k,
                    tx ? " (x2 is transposed: k is shape[1])" : "");
  if (world_size != group_size)
    return tpi_fail(TPMM_ERR_WORLD_SIZE, "%s: world_size=%d, but the group has %d ranks", op, world_size, group_size);
  return TPMM_SUCCESS;
}

void tpi_call_operands(tpi_call_t *a, const tpi_operands_t *d, const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                       int world_size, const tpmm_tensor_t *bias, int comm_turn) {
  a->dt = input->dtype;
  a->esize = tpmm_dtype_size(input->dtype);
  a->m = d->m, a->k = d->k, a->n = d->n, a->W = world_size;
  a->in = (tpi_mat_t){(char *)input->data, d->m, d->k, d->ti ? 1 : d->ld_in, d->ti ? d->ld_in : 1};
  a->x2 = (tpi_mat_t){(char *)x2->data, d->k, d->n, d->tx ? 1 : d->ld_x2, d->tx ? d->ld_x2 : 1};
  a->bias = bias ? bias->data : NULL;
  a->bias_dt = bias ? bias->dtype : input->dtype;
  a->comm_turn = comm_turn;
  a->trans_input = d->ti;
  a->trans_x2 = d->tx;
}

/* ---- the checks the other validators share (check.h) ---- */
int tpi_dtype_valid(int dt) { return dtype_valid(dt); }
const char *tpi_dtype_name(int dt) { return dtype_name(dt); }
tpmm_status_t tpi_check_matrix(const char *op, const char *name, const tpmm_tensor_t *t, int need_data, int64_t *ld) {
  return check_matrix(op, name, t, need_data, ld);
}
tpmm_status_t tpi_check_output(const char *op, const char *name, const tpmm_tensor_t *t, tpmm_dtype_t dt, int64_t rows,
                               int64_t cols, int need_data, int64_t *ld) {
  return check_output(op, name, t, dt, rows, cols, need_data, ld);
}
tpmm_status_t tpi_check_aliasing(const char *op, const tpi_call_t *a) { return check_aliasing(op, a); }
int tpi_overlaps(const tpi_mat_t *a, const tpi_mat_t *b, size_t es) { return overlaps(a, b, es); }
