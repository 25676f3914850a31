/*
 * op.c — the public entry of all_gather_matmul:
 *   validate (src/tensor) -> agree (src/comm) -> plan -> execute (algo_*.c).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

static const tpi_algo_fn algos[] = {
    [TPMM_ALGO_UNFUSED] = tpi_algo_unfused,
};

/* Choose the algorithm and the chunking for a validated call. */
static tpmm_status_t plan_choose(tpi_plan_t *p, const char *op) {
  int algo = tpi_params.algo;
  if (algo == TPMM_ALGO_AUTO) algo = TPMM_ALGO_UNFUSED;
  if (algo < 0 || algo >= (int)(sizeof algos / sizeof algos[0]) || !algos[algo])
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: TPMM_ALGO=%s is not available in this build", op,
                    tpmm_algo_name((tpmm_algo_t)algo) ? tpmm_algo_name((tpmm_algo_t)algo) : "?");
  p->algo = algo;
  p->chunks = p->a.comm_turn > 0 ? p->a.comm_turn : 1;
  return TPMM_SUCCESS;
}

/* Allocate the workspaces the chosen algorithm will need. */
static tpmm_status_t plan_reserve(tpi_plan_t *p, const char *op) {
  const tpi_agmm_t *a = &p->a;
  const tpi_mat_t *in = &a->in;
  if (!(in->cs == 1 && (in->rs == a->k || a->m <= 1)))
    TPI_CHECK(tpi_ws_reserve(&p->send, &p->send_bytes, (size_t)(a->m * a->k) * a->esize, op, "the packed input shard"));
  if (!(a->gather_output && a->gout.rs == a->k))
    TPI_CHECK(tpi_ws_reserve(&p->gbuf, &p->gbuf_bytes, (size_t)(a->m * a->W * a->k) * a->esize, op,
                             "the gathered rows"));
  return TPMM_SUCCESS;
}

/* Limits of MPI's int counts: a row of k elements is one datatype, m rows a count. */
static tpmm_status_t check_mpi_limits(const tpi_agmm_t *a, const char *op) {
  if (a->k * (int64_t)a->esize > INT_MAX || a->m > INT_MAX)
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: input rows of %lld bytes or m=%lld exceed MPI's int counts", op,
                    (long long)(a->k * (int64_t)a->esize), (long long)a->m);
  return TPMM_SUCCESS;
}

tpmm_status_t tpmm_all_gather_matmul(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                     int world_size, const tpmm_all_gather_matmul_opts_t *opts,
                                     tpmm_tensor_t *output, tpmm_tensor_t *gather_out) {
  static const char op[] = "tpmm_all_gather_matmul";
  tpi_clear_error();
  tpi_group_t *g;
  TPI_CHECK(tpi_group_get(op, group, &g));

  tpi_plan_t p;
  memset(&p, 0, sizeof p);
  p.g = g;
  /* Everything that can fail locally happens before the agreement, so that no
   * rank enters the data phase while a peer has already given up. */
  tpmm_status_t st = tpi_agmm_validate(op, input, x2, g->size, world_size, opts, output, gather_out, &p.a);
  if (st == TPMM_SUCCESS) st = check_mpi_limits(&p.a, op);
  if (st == TPMM_SUCCESS) st = plan_choose(&p, op);
  if (st == TPMM_SUCCESS) st = plan_reserve(&p, op);
  if (st == TPMM_SUCCESS)
    st = tpi_gemm_create(&p.gemm, p.a.dt, &p.a.x2, p.a.bias, p.a.bias_dt, p.a.m * p.a.W > 0 ? p.a.m * p.a.W : 1);
  int64_t f[TPI_F_COUNT];
  tpi_agmm_fields(input, x2, world_size, opts, f);
  st = tpi_agree(g, op, st, f, TPI_F_COUNT, tpi_field_names);
  if (st == TPMM_SUCCESS) st = algos[p.algo](&p, op);
  tpi_gemm_destroy(p.gemm);
  free(p.send);
  free(p.gbuf);
  return st;
}
