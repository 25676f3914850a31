/*
 * op_all_gather_matmul.c — the operator all_gather_matmul: its public
 * entries and its hooks (tpi_opdesc_t): argument checks, agreed fields, what
 * a plan prepares, and the sizes the cost model weighs.
 */
#include "pipeline.h"

tpmm_status_t tpi_agmm_validate_args(const char *op, const tpi_args_t *args, int group_size, int need_data,
                                     tpi_call_t *a) {
  if (tpi_agmm_is_ext(args)) return tpi_agmm_validate_ext(op, args, group_size, need_data, a);
  TPI_CHECK(tpi_agmm_validate(op, args->input, args->x2[0], group_size, args->world_size, args->agmm, args->output[0],
                              args->gather_out, need_data, a));
  a->nb = 1;
  return TPMM_SUCCESS;
}

void tpi_agmm_fields_args(const tpi_args_t *args, int64_t f[TPI_F_COUNT]) {
  if (tpi_agmm_is_ext(args))
    tpi_agmm_fields_ext(args, f);
  else
    tpi_agmm_fields(args->input, args->x2[0], args->world_size, args->agmm, f);
}

tpmm_status_t tpi_agmm_prepare(tpi_plan_t *p, const char *op, int need_data) {
  const tpi_call_t *a = &p->a;
  if (a->row0 || a->nb > 1 || a->gather_index) return tpi_agmm_prepare_ext(p, op, need_data);
  if (a->k * (int64_t)a->esize > INT32_MAX || a->m > INT32_MAX)
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: input rows of %lld bytes or m=%lld exceed MPI's int counts", op,
                    (long long)(a->k * (int64_t)a->esize), (long long)a->m);
  TPI_CHECK(tpi_gemm_cached(p, op, a->dt, &a->x2, a->bias, a->bias_dt, a->m > 0 ? a->m : 1, a->m * a->W,
                            need_data ? a->m * a->W : INT64_MAX));
  return tpi_ws_reserve_plan(p, op);
}

void tpi_agmm_sizes(const tpi_plan_t *p, double *shard_bytes, int64_t *gemm_rows) {
  const tpi_call_t *a = &p->a;
  *shard_bytes = (double)tpi_rows_max(a) * (double)tpi_row_bytes(a); /* the largest shard sets the pace */
  *gemm_rows = tpi_rows_total(a);
}

static tpi_args_t args_of(const tpmm_tensor_t *input, const tpmm_tensor_t *const *x2, int world_size,
                          const tpmm_all_gather_matmul_opts_t *opts, const tpmm_tensor_t *const *output,
                          const tpmm_tensor_t *gather_out) {
  return (tpi_args_t){.input = input,
                      .x2 = x2,
                      .nb = 1,
                      .world_size = world_size,
                      .agmm = opts,
                      .output = output,
                      .gather_out = gather_out};
}

tpmm_status_t tpmm_all_gather_matmul(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                     int world_size, const tpmm_all_gather_matmul_opts_t *opts, tpmm_tensor_t *output,
                                     tpmm_tensor_t *gather_out) {
  tpi_clear_error();
  const tpmm_tensor_t *out = output;
  const tpi_args_t args = args_of(input, &x2, world_size, opts, &out, gather_out);
  return tpi_op_run("tpmm_all_gather_matmul", &tpi_op_all_gather_matmul, group, &args);
}

tpmm_status_t tpmm_all_gather_matmul_plan_create(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                                 int world_size, const tpmm_all_gather_matmul_opts_t *opts,
                                                 const tpmm_tensor_t *output, const tpmm_tensor_t *gather_out,
                                                 tpmm_plan_t **plan) {
  tpi_clear_error();
  const tpi_args_t args = args_of(input, &x2, world_size, opts, &output, gather_out);
  return tpi_op_plan_create("tpmm_all_gather_matmul_plan_create", &tpi_op_all_gather_matmul, group, &args, plan);
}
