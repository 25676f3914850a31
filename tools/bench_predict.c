/*
 * bench_predict.c — tpmm-bench --predict (see bench_predict.h).
 */
#include "bench_predict.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>

tpmm_status_t bench_predict(tpmm_plan_t *plan, const tpmm_tensor_t *in, const tpmm_tensor_t *x2,
                            const tpmm_all_gather_matmul_opts_t *opts, tpmm_tensor_t *out, tpmm_tensor_t *gout,
                            int world_size, tpi_prediction_t *pred) {
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  tpmm_plan_t *own = NULL;
  tpmm_status_t st = TPMM_SUCCESS;
  if (!plan) {
    st = tpmm_all_gather_matmul_plan_create(in, x2, TPMM_WORLD_COMM_GROUP, world_size, opts, out, gout, &own);
    if (st != TPMM_SUCCESS) return st;
    plan = own;
  }
  tpi_prediction_t mine;
  MPI_Barrier(MPI_COMM_WORLD);
  tpi_model_forget();
  st = tpi_plan_predict(plan, &mine); /* every rank calibrates, side by side */
  if (rank == 0) *pred = mine;
  MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD);
  tpmm_plan_destroy(own);
  return st;
}

double bench_predict_ran(const tpi_prediction_t *p, int algo, int chunks) {
  if (algo == TPMM_ALGO_UNFUSED) return p->t_seq;
  if (algo == p->fused_algo && (chunks <= 0 || chunks == p->fused_chunks)) return p->t_fused;
  return NAN;
}

static const char *name(int algo) {
  const char *s = algo > 0 ? tpmm_algo_name((tpmm_algo_t)algo) : NULL;
  return s ? s : "none";
}

void bench_predict_text(const tpi_prediction_t *p) {
  printf(" | model T_seq %.3f T_fused %.3f (%s/%d) auto: %s/%d", p->t_seq * 1e3, p->t_fused * 1e3, name(p->fused_algo),
         p->fused_chunks, name(p->algo), p->chunks);
}

static void num(const char *key, double v) {
  if (isfinite(v))
    printf("\"%s\":%.6g,", key, v);
  else
    printf("\"%s\":null,", key);
}

void bench_predict_json(const tpi_prediction_t *p, int algo, int chunks) {
  num("pred_t_seq_ms", p->t_seq * 1e3);
  num("pred_t_fused_ms", p->t_fused * 1e3);
  num("pred_t_gemm_ms", p->t_gemm * 1e3);
  num("pred_t_xfer_ms", p->t_xfer * 1e3);
  num("pred_t_ran_ms", bench_predict_ran(p, algo, chunks) * 1e3);
  printf("\"pred_fused_algo\":\"%s\",\"pred_fused_chunks\":%d,\"pred_algo\":\"%s\",\"pred_chunks\":%d,",
         name(p->fused_algo), p->fused_chunks, name(p->algo), p->chunks);
}
