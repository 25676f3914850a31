/*
 * bench_predict.h — tpmm-bench --predict: the cost model's numbers next to a
 * measured point, so the model can be checked against what it predicts.
 */
#ifndef TPMM_BENCH_PREDICT_H
#define TPMM_BENCH_PREDICT_H

#include "src/pipeline/pipeline.h"
#include "tpmm.h"

/* The model's prediction for the configuration: from plan if there is one,
 * else from a plan made for the purpose with the same arguments. Collective,
 * after the timed iterations (and, with --plan, before each one): the GEMM
 * rates are forgotten and calibrated again right there, every rank at once
 * as in a call, so the model runs on the rates of the moment it is checked
 * against (this machine's GEMM speed moves within seconds, bench/RESULTS.md
 * §22). Only rank 0's *out is
 * filled (the model is rank 0's). Returns the status, the same on every rank. */
tpmm_status_t bench_predict(tpmm_plan_t *plan, const tpmm_tensor_t *in, const tpmm_tensor_t *x2,
                            const tpmm_all_gather_matmul_opts_t *opts, tpmm_tensor_t *out, tpmm_tensor_t *gout,
                            int world_size, tpi_prediction_t *pred);

/* The prediction of the schedule that ran (algo, chunks; chunks 0: the
 * model's own): T_seq's for unfused, T_fused's for the model's fused
 * schedule; NaN for anything else. */
double bench_predict_ran(const tpi_prediction_t *pred, int algo, int chunks);

/* Text: " | model T_seq .. T_fused .. (algo/C) auto: algo/C"; JSON: the
 * pred_* fields, each followed by a comma. */
void bench_predict_text(const tpi_prediction_t *pred);
void bench_predict_json(const tpi_prediction_t *pred, int algo, int chunks);

#endif
