/*
 * op_all_gather_matmul_ext.c — all_gather_matmul's uneven shards
 * (tpmm_all_gather_matmul_v) and several weights in one gather
 * (tpmm_all_gather_matmul_multi): their public entries, and what a plan of
 * such a call (or of gather_index 1) prepares. They are the same operator as
 * tpmm_all_gather_matmul, with the same algorithms: the validated call
 * carries the shards' rows (tpi_call_t.row0) and the weights (nb, w[]).
 */
#include <limits.h>

#include "pipeline.h"

tpmm_status_t tpi_agmm_prepare_ext(tpi_plan_t *p, const char *op, int need_data) {
  tpi_call_t *a = &p->a;
  const int r = p->g->rank;
  const int64_t local = a->gather_index ? a->x2.rows : a->m;
  if (a->row0 && tpi_shard_rows(a, r) != local)
    return tpi_fail(TPMM_ERR_SHAPE, "%s: counts[%d]=%lld, but this rank's %s has %lld rows", op, r,
                    (long long)tpi_shard_rows(a, r), a->gather_index ? "x2" : "input", (long long)local);
  if (tpi_row_bytes(a) > INT32_MAX || tpi_rows_total(a) > INT32_MAX)
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: gathered rows of %zu bytes or %lld rows exceed MPI's int counts", op,
                    tpi_row_bytes(a), (long long)tpi_rows_total(a));
  if (a->gather_index) return tpi_x2g_prepare(p, op, need_data);
  /* the same m_hint and lifetime as a call with one of the weights alone, so
   * that every output has that call's bits */
  const int64_t hint = tpi_rows_max(a) > 0 ? tpi_rows_max(a) : 1, life = need_data ? tpi_rows_total(a) : INT64_MAX;
  TPI_CHECK(tpi_gemm_create(&p->gemm, a->dt, &a->x2, a->bias, a->bias_dt, hint, tpi_rows_total(a), life));
  for (int i = 1; i < a->nb; i++)
    TPI_CHECK(tpi_gemm_create(&p->wgemm[i], a->dt, &a->w[i].x2, a->w[i].bias, a->w[i].bias_dt, hint, tpi_rows_total(a),
                              life));
  for (int i = 1; i < a->nb && !need_data; i++) /* the plan keeps its copies (in the GEMMs) */
    a->w[i].x2.data = NULL, a->w[i].bias = NULL;
  return tpi_ws_reserve_plan(p, op);
}

static tpi_args_t args_v(const tpmm_tensor_t *input, const tpmm_tensor_t *const *x2, int world_size,
                         const int64_t *counts, const tpmm_all_gather_matmul_opts_t *opts,
                         const tpmm_tensor_t *const *output, const tpmm_tensor_t *gather_out) {
  return (tpi_args_t){.input = input,
                      .x2 = x2,
                      .nb = 1,
                      .world_size = world_size,
                      .counts = counts,
                      .agmm = opts,
                      .output = output,
                      .gather_out = gather_out,
                      .uneven = true};
}

static tpi_args_t args_multi(const tpmm_tensor_t *input, int nb, const tpmm_tensor_t *const *x2,
                             const tpmm_tensor_t *const *bias, int world_size,
                             const tpmm_all_gather_matmul_opts_t *opts, tpmm_tensor_t *const *output,
                             const tpmm_tensor_t *gather_out) {
  return (tpi_args_t){.input = input,
                      .x2 = x2,
                      .bias = bias,
                      .nb = nb,
                      .world_size = world_size,
                      .agmm = opts,
                      .output = (const tpmm_tensor_t *const *)output,
                      .gather_out = gather_out,
                      .multi = true};
}

tpmm_status_t tpmm_all_gather_matmul_v(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                       int world_size, const int64_t *counts, const tpmm_all_gather_matmul_opts_t *opts,
                                       tpmm_tensor_t *output, tpmm_tensor_t *gather_out) {
  tpi_clear_error();
  const tpmm_tensor_t *out = output;
  const tpi_args_t args = args_v(input, &x2, world_size, counts, opts, &out, gather_out);
  return tpi_op_run("tpmm_all_gather_matmul_v", &tpi_op_all_gather_matmul, group, &args);
}

tpmm_status_t tpmm_all_gather_matmul_v_plan_create(const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                                                   const char *group, int world_size, const int64_t *counts,
                                                   const tpmm_all_gather_matmul_opts_t *opts,
                                                   const tpmm_tensor_t *output, const tpmm_tensor_t *gather_out,
                                                   tpmm_plan_t **plan) {
  tpi_clear_error();
  const tpi_args_t args = args_v(input, &x2, world_size, counts, opts, &output, gather_out);
  return tpi_op_plan_create("tpmm_all_gather_matmul_v_plan_create", &tpi_op_all_gather_matmul, group, &args, plan);
}

tpmm_status_t tpmm_all_gather_matmul_multi(const tpmm_tensor_t *input, int nb, const tpmm_tensor_t *const *x2,
                                           const tpmm_tensor_t *const *bias, const char *group, int world_size,
                                           const tpmm_all_gather_matmul_opts_t *opts, tpmm_tensor_t *const *output,
                                           tpmm_tensor_t *gather_out) {
  tpi_clear_error();
  const tpi_args_t args = args_multi(input, nb, x2, bias, world_size, opts, output, gather_out);
  return tpi_op_run("tpmm_all_gather_matmul_multi", &tpi_op_all_gather_matmul, group, &args);
}

tpmm_status_t tpmm_all_gather_matmul_multi_plan_create(const tpmm_tensor_t *input, int nb,
                                                       const tpmm_tensor_t *const *x2, const tpmm_tensor_t *const *bias,
                                                       const char *group, int world_size,
                                                       const tpmm_all_gather_matmul_opts_t *opts,
                                                       tpmm_tensor_t *const *output, tpmm_tensor_t *gather_out,
                                                       tpmm_plan_t **plan) {
  tpi_clear_error();
  const tpi_args_t args = args_multi(input, nb, x2, bias, world_size, opts, output, gather_out);
  return tpi_op_plan_create("tpmm_all_gather_matmul_multi_plan_create", &tpi_op_all_gather_matmul, group, &args, plan);
}
