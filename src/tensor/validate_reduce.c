/*
 * validate_reduce.c — the one argument check of matmul_reduce_scatter and
 * matmul_all_reduce, in validate.c's style and order: every entry funnels
 * through tpi_mmr_validate, which names the bad argument and its value.
 * Order: missing arguments and values outside their enums (invalid
 * argument), dtypes, shapes, the group, m against the group (reduce_scatter
 * cuts m into W blocks), the output, the bias, comm_turn's range, aliasing.
 */
#include <stdint.h>
#include <string.h>

#include "../common/common.h"
#include "check.h"
#include "tensor.h"

static const tpmm_matmul_reduce_opts_t default_opts = TPMM_MATMUL_REDUCE_OPTS_INIT;

void tpi_mmr_fields(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int world_size,
                    const tpmm_matmul_reduce_opts_t *opts, int64_t f[TPI_F_COUNT]) {
  if (!opts) opts = &default_opts;
  tpi_fields_common(input, x2, world_size, opts->trans_input, opts->trans_x2, opts->comm_turn, opts->bias, f);
  f[TPI_F_REDUCE_OP] = (int)opts->reduce_op; /* as the validator prints it: an enum may be unsigned */
}

void tpi_mmr_fields_ar(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int world_size,
                       const tpmm_matmul_reduce_opts_t *opts, int64_t f[TPI_F_COUNT]) {
  tpi_mmr_fields(input, x2, world_size, opts, f);
  const tpmm_tensor_t *b = opts ? opts->bias : NULL;
  if (!b) return;
  const int dt_ok = b->dtype == TPMM_FLOAT32 || b->dtype == TPMM_BFLOAT16 || b->dtype == TPMM_FLOAT16;
  if ((!b->data && b->shape[0] > 0) || b->ndim != 1 || !dt_ok || f[TPI_F_N] < 0 || b->shape[0] != f[TPI_F_N]) {
    f[TPI_F_BIAS_VALUES] = TPI_AGREE_UNKNOWN;
    return;
  }
  const size_t bytes = (size_t)b->shape[0] * tpmm_dtype_size(b->dtype); /* 16k floats: a few us */
  const uint64_t h = tpi_hash_bytes(b->data, bytes, 0x9e3779b97f4a7c15u ^ bytes);
  f[TPI_F_BIAS_VALUES] = (int64_t)(h & INT64_MAX); /* never TPI_AGREE_UNKNOWN */
}

/* Arguments that must be present and values inside their enums. */
static tpmm_status_t check_present(const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                                   const tpmm_matmul_reduce_opts_t *opts, const tpmm_tensor_t *output) {
  if (!input) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: input is NULL", op);
  if (!x2) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: x2 is NULL", op);
  if (!output) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: output is NULL", op);
  if (opts->comm_turn < 0)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: comm_turn=%d is negative", op, opts->comm_turn);
  if (opts->reduce_op != TPMM_REDUCE_SUM && opts->reduce_op != TPMM_REDUCE_AVG)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: reduce_op=%d is not a tpmm_reduce_op_t (SUM=0, AVG=1)", op,
                    (int)opts->reduce_op);
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_mmr_validate(const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int group_size,
                               int world_size, const tpmm_matmul_reduce_opts_t *opts, const tpmm_tensor_t *output,
                               int all_reduce, int need_data, tpi_call_t *a) {
  if (!opts) opts = &default_opts;
  memset(a, 0, sizeof *a);
  TPI_CHECK(check_present(op, input, x2, opts, output));
  /* dtypes, shapes, the group */
  tpi_operands_t d;
  TPI_CHECK(
      tpi_check_operands(op, input, x2, opts->trans_input, opts->trans_x2, group_size, world_size, need_data, &d));
  const int64_t m = d.m, n = d.n;
  int64_t ld_out;
  if (!all_reduce && m % world_size != 0)
    return tpi_fail(TPMM_ERR_SHAPE, "%s: input: m=%lld is not a multiple of world_size=%d", op, (long long)m,
                    world_size);
  /* the fp32 partial products (m, n) must fit */
  int64_t tmp;
  if (!tpi_mul_ok(m, n, &tmp) || !tpi_mul_ok(tmp, 4, &tmp))
    return tpi_fail(TPMM_ERR_SHAPE, "%s: m=%lld, n=%lld: the partial products overflow the address space", op,
                    (long long)m, (long long)n);
  const int64_t rows = all_reduce ? m : m / world_size;
  TPI_CHECK(tpi_check_output(op, "output", output, input->dtype, rows, n, need_data, &ld_out));
  if (opts->bias) TPI_CHECK(tpi_check_bias(op, "bias", opts->bias, input->dtype, n));
  const int64_t turns = rows > 1 ? rows : 1;
  if (opts->comm_turn > turns)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: comm_turn=%d is larger than the %lld rows %s", op, opts->comm_turn,
                    (long long)rows, all_reduce ? "of the output" : "of each rank's output block");

  tpi_call_operands(a, &d, input, x2, world_size, opts->bias, opts->comm_turn);
  a->out = (tpi_mat_t){(char *)output->data, rows, n, ld_out, 1};
  a->reduce_op = opts->reduce_op;
  return tpi_check_aliasing(op, a);
}
