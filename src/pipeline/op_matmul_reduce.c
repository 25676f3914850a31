/*
 * op_matmul_reduce.c — the operators matmul_reduce_scatter and
 * matmul_all_reduce: their public entries and their hooks (tpi_opdesc_t):
 * argument checks, agreed fields, what a plan prepares, and the sizes the
 * cost model weighs. Their schedules share reduce.h.
 */
#include <limits.h>

#include "reduce.h"

tpmm_status_t tpi_mmr_validate_rs(const char *op, const tpi_args_t *args, int group_size, int need_data,
                                  tpi_call_t *a) {
  return tpi_mmr_validate(op, args->input, args->x2[0], group_size, args->world_size, args->mmr, args->output[0], 0,
                          need_data, a);
}

tpmm_status_t tpi_mmr_validate_ar(const char *op, const tpi_args_t *args, int group_size, int need_data,
                                  tpi_call_t *a) {
  return tpi_mmr_validate(op, args->input, args->x2[0], group_size, args->world_size, args->mmr, args->output[0], 1,
                          need_data, a);
}

void tpi_mmr_fields_args(const tpi_args_t *args, int64_t f[TPI_F_COUNT]) {
  tpi_mmr_fields(args->input, args->x2[0], args->world_size, args->mmr, f);
}

void tpi_mmr_fields_args_ar(const tpi_args_t *args, int64_t f[TPI_F_COUNT]) {
  tpi_mmr_fields_ar(args->input, args->x2[0], args->world_size, args->mmr, f);
}

/* The GEMM has no bias: the bias is added once, after the reduction. x2 is
 * packed for plans and used in place by one-shot calls, as for
 * all_gather_matmul: the bits do not depend on it (gemm.h). */
tpmm_status_t tpi_mmr_prepare(tpi_plan_t *p, const char *op, int need_data) {
  const tpi_call_t *a = &p->a;
  if (a->n > INT_MAX / 4 || a->m > INT_MAX)
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: n=%lld or m=%lld exceed MPI's int counts of rows", op, (long long)a->n,
                    (long long)a->m);
  const int64_t lifetime = need_data ? a->m : INT64_MAX;
  TPI_CHECK(tpi_gemm_cached(p, op, a->dt, &a->x2, NULL, a->dt, a->m > 0 ? a->m : 1, a->m, lifetime));
  return tpi_red_reserve(p, op);
}

/* Over one link, per peer: a block of fp32 partials (all_reduce: and its
 * rounded sums back). */
void tpi_mmr_sizes(const tpi_plan_t *p, double *shard_bytes, int64_t *gemm_rows) {
  const tpi_call_t *a = &p->a;
  const double block = (double)((a->m + a->W - 1) / a->W) * (double)a->n;
  *shard_bytes = block * (tpi_red_all(p) ? 4.0 + (double)a->esize : 4.0);
  *gemm_rows = tpi_gemm_cost_rows(p->gemm, a->m);
}

static tpi_args_t args_of(const tpmm_tensor_t *input, const tpmm_tensor_t *const *x2, int world_size,
                          const tpmm_matmul_reduce_opts_t *opts, const tpmm_tensor_t *const *output) {
  return (tpi_args_t){.input = input, .x2 = x2, .nb = 1, .world_size = world_size, .mmr = opts, .output = output};
}

static tpmm_status_t one_shot(const char *name, const tpi_opdesc_t *desc, const tpmm_tensor_t *input,
                              const tpmm_tensor_t *x2, const char *group, int world_size,
                              const tpmm_matmul_reduce_opts_t *opts, const tpmm_tensor_t *output) {
  tpi_clear_error();
  const tpi_args_t args = args_of(input, &x2, world_size, opts, &output);
  return tpi_op_run(name, desc, group, &args);
}

tpmm_status_t tpmm_matmul_reduce_scatter(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                         int world_size, const tpmm_matmul_reduce_opts_t *opts, tpmm_tensor_t *output) {
  return one_shot("tpmm_matmul_reduce_scatter", &tpi_op_matmul_reduce_scatter, input, x2, group, world_size, opts,
                  output);
}

tpmm_status_t tpmm_matmul_all_reduce(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                     int world_size, const tpmm_matmul_reduce_opts_t *opts, tpmm_tensor_t *output) {
  return one_shot("tpmm_matmul_all_reduce", &tpi_op_matmul_all_reduce, input, x2, group, world_size, opts, output);
}

tpmm_status_t tpmm_matmul_reduce_scatter_plan_create(const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                                                     const char *group, int world_size,
                                                     const tpmm_matmul_reduce_opts_t *opts, const tpmm_tensor_t *output,
                                                     tpmm_plan_t **plan) {
  tpi_clear_error();
  const tpi_args_t args = args_of(input, &x2, world_size, opts, &output);
  return tpi_op_plan_create("tpmm_matmul_reduce_scatter_plan_create", &tpi_op_matmul_reduce_scatter, group, &args,
                            plan);
}

tpmm_status_t tpmm_matmul_all_reduce_plan_create(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                                 int world_size, const tpmm_matmul_reduce_opts_t *opts,
                                                 const tpmm_tensor_t *output, tpmm_plan_t **plan) {
  tpi_clear_error();
  const tpi_args_t args = args_of(input, &x2, world_size, opts, &output);
  return tpi_op_plan_create("tpmm_matmul_all_reduce_plan_create", &tpi_op_matmul_all_reduce, group, &args, plan);
}
