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

/* NULL, or 1-D (n,) of the input's dtype or float32, with data. */
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
  if (!tpi_dtype_valid(input->dtype))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: input: dtype=%d is not a tpmm_dtype_t", op, (int)input->dtype);
  if (!tpi_dtype_valid(x2->dtype))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: x2: dtype=%d is not a tpmm_dtype_t", op, (int)x2->dtype);
  if (x2->dtype != input->dtype)
    return tpi_fail(TPMM_ERR_DTYPE, "%s: x2: dtype %s differs from input dtype %s", op, tpi_dtype_name(x2->dtype),
                    tpi_dtype_name(input->dtype));
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_mmr_validate(const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int group_size,
                               int world_size, const tpmm_matmul_reduce_opts_t *opts, const tpmm_tensor_t *output,
                               int all_reduce, int need_data, tpi_call_t *a) {
  if (!opts) opts = &default_opts;
  memset(a, 0, sizeof *a);
  TPI_CHECK(check_present(op, input, x2, opts, output));
  /* shapes */
  int64_t ld_in, ld_x2, ld_out;
  TPI_CHECK(tpi_check_matrix(op, "input", input, need_data, &ld_in));
  TPI_CHECK(tpi_check_matrix(op, "x2", x2, 1, &ld_x2));
  const int ti = opts->trans_input, tx = opts->trans_x2;
  const int64_t m = input->shape[ti], k = input->shape[!ti], kx = x2->shape[tx], n = x2->shape[!tx];
  if (k == 0) return tpi_fail(TPMM_ERR_SHAPE, "%s: input: k=0, expected k >= 1", op);
  if (kx != k)
    return tpi_fail(TPMM_ERR_SHAPE, "%s: x2: k=%lld does not match input k=%lld%s", op, (long long)kx, (long long)k,
                    tx ? " (x2 is transposed: k is shape[1])" : "");
  /* group */
  if (world_size != group_size)
    return tpi_fail(TPMM_ERR_WORLD_SIZE, "%s: world_size=%d, but the group has %d ranks", op, world_size, group_size);
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

  a->dt = input->dtype;
  a->esize = tpmm_dtype_size(input->dtype);
  a->m = m;
  a->k = k;
  a->n = n;
  a->W = world_size;
  a->in = (tpi_mat_t){(char *)input->data, m, k, ti ? 1 : ld_in, ti ? ld_in : 1};
  a->x2 = (tpi_mat_t){(char *)x2->data, k, n, tx ? 1 : ld_x2, tx ? ld_x2 : 1};
  a->out = (tpi_mat_t){(char *)output->data, rows, n, ld_out, 1};
  a->bias = opts->bias ? opts->bias->data : NULL;
  a->bias_dt = opts->bias ? opts->bias->dtype : input->dtype;
  a->comm_turn = opts->comm_turn;
  a->trans_input = ti;
  a->trans_x2 = tx;
  a->reduce_op = opts->reduce_op;
  return tpi_check_aliasing(op, a);
}
