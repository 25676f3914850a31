/*
 * op.c — the drivers every public entry shares: a one-shot call, a plan's
 * creation, execution and destruction. Each goes
 *   validate -> prepare and propose -> agree (tpi_plan_build, or the
 *   execute's own agreement) -> run (tpi_plan_run) -> record (the tuner).
 * The operators' entries (op_*.c) only fill a tpi_args_t.
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

struct tpmm_plan {
  tpi_plan_t p;
};

tpi_gemm_t *tpi_plan_gemm(tpmm_plan_t *plan) { return plan ? plan->p.gemm : NULL; }
tpi_gemm_t *tpi_plan_gemm_w(tpmm_plan_t *plan, int i) {
  return !plan || i < 0 || i >= TPI_MAX_NB ? NULL : i ? plan->p.wgemm[i] : plan->p.gemm;
}

void tpi_plan_schedule(const tpmm_plan_t *plan, int *algo, int *chunks, int *thread) {
  *algo = plan ? plan->p.algo : -1;
  *chunks = plan ? plan->p.chunks : 0;
  *thread = plan ? plan->p.progress_thread : 0;
}

tpi_plan_t *tpi_plan_inner(tpmm_plan_t *plan) { return plan ? &plan->p : NULL; }

int tpi_plan_tuned(const tpmm_plan_t *plan) { return !plan || plan->p.tuner->ncand < 2 || plan->p.tuner->decided; }

tpmm_status_t tpi_plan_predict(tpmm_plan_t *plan, tpi_prediction_t *out) {
  if (!plan) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpi_plan_predict: plan is NULL");
  return tpi_predict(&plan->p, "tpi_plan_predict", out);
}

tpmm_status_t tpi_op_run(const char *op, const tpi_opdesc_t *desc, const char *group, const tpi_args_t *args) {
  tpi_plan_t p;
  TPI_CHECK(tpi_plan_build(&p, op, desc, group, args, 1, TPMM_SUCCESS));
  const double t0 = tpi_now();
  tpmm_status_t st = tpi_plan_run(&p, op);
  tpi_tuner_ran(p.tuner, p.cur, st == TPMM_SUCCESS, tpi_now() - t0);
  tpi_ws_stash(&p);
  tpi_plan_free(&p);
  return st;
}

tpmm_status_t tpi_op_plan_create(const char *op, const tpi_opdesc_t *desc, const char *group, const tpi_args_t *args,
                                 tpmm_plan_t **plan) {
  if (plan) *plan = NULL;
  tpmm_plan_t *pl = plan ? calloc(1, sizeof *pl) : NULL;
  /* a NULL plan pointer or no memory for the plan: this rank still takes part
   * in the agreement, as a failure, so that no rank ends up with a plan its
   * peers lack (or waits for one) */
  tpi_plan_t scratch;
  tpmm_status_t pre = !plan ? tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: plan is NULL", op)
                      : !pl ? tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory", op)
                            : TPMM_SUCCESS;
  tpmm_status_t st = tpi_plan_build(pl ? &pl->p : &scratch, op, desc, group, args, 0, pre);
  if (st != TPMM_SUCCESS) {
    free(pl);
    return st;
  }
  *plan = pl;
  return TPMM_SUCCESS;
}

/* A bad tensor on one rank must not strand the others: agree on the status
 * and on the plan (its fields and number); the same exchange brings every
 * rank the slowest rank's time of the previous execution, for the tuner,
 * whether any rank waits with a timeout (then collectives are posted
 * non-blocking everywhere), and small shards themselves. */
static tpmm_status_t execute(tpi_plan_t *p, const char *op, tpmm_status_t st, int64_t prev_us, int *ran, double *t0) {
  tpi_proposal_t pr = {.prev_us = prev_us, .nonblocking = tpi_params.timeout_ms > 0};
  int64_t w[TPI_PROPOSAL_WORDS];
  tpi_proposal_encode(&pr, w);
  TPI_CHECK(tpi_plan_agree(p, op, st, w, 1));
  *t0 = tpi_now();
  tpi_proposal_decode(w, &pr);
  p->nonblocking = pr.nonblocking > 0;
  tpi_tuner_record(p->tuner, pr.prev_us, p->g);
  tpi_plan_use(p, tpi_tuner_pick(p->tuner));
  *ran = 1;
  return tpi_plan_run(p, op);
}

/* Both execute entries: the local checks and the binding of this call's
 * tensors (a failure is this rank's status in the agreement), then agree,
 * run and record. multi: tpmm_plan_execute_multi (output has nb entries). */
static tpmm_status_t execute_entry(tpmm_plan_t *plan, const char *op, const tpmm_tensor_t *input,
                                   const tpmm_tensor_t *const *output, bool multi, const tpmm_tensor_t *gather_out) {
  tpi_clear_error();
  if (!plan) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: plan is NULL", op);
  tpi_plan_t *p = &plan->p;
  if (!tpi_initialized()) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm is not initialized", op);
  if (p->g->broken)
    return tpi_fail(TPMM_ERR_COMM, "%s: group \"%s\" is unusable after an earlier timeout", op, p->g->name);
  tpmm_status_t st = multi || p->a.multi ? tpi_agmm_rebind_ext(op, &p->a, input, output, multi, gather_out)
                                         : tpi_agmm_rebind(op, &p->a, input, output[0], gather_out);
  const int64_t prev_us = tpi_tuner_report(p->tuner);
  int ran = 0;
  /* the tuner's time starts when the agreement ends, as a one-shot call's: a
   * rank's wait in the agreement is the previous call's skew between ranks,
   * which a runner-up that ends skewed would else hand to the choice's next
   * call (bench/RESULTS.md §38) */
  double t0 = 0;
  st = execute(p, op, st, prev_us, &ran, &t0);
  if (ran) tpi_tuner_ran(p->tuner, p->cur, st == TPMM_SUCCESS, tpi_now() - t0);
  return st;
}

tpmm_status_t tpmm_plan_execute(tpmm_plan_t *plan, const tpmm_tensor_t *input, tpmm_tensor_t *output,
                                tpmm_tensor_t *gather_out) {
  const tpmm_tensor_t *out = output;
  return execute_entry(plan, "tpmm_plan_execute", input, &out, false, gather_out);
}

tpmm_status_t tpmm_plan_execute_multi(tpmm_plan_t *plan, const tpmm_tensor_t *input, tpmm_tensor_t *const *output,
                                      tpmm_tensor_t *gather_out) {
  return execute_entry(plan, "tpmm_plan_execute_multi", input, (const tpmm_tensor_t *const *)output, true, gather_out);
}

void tpmm_plan_destroy(tpmm_plan_t *plan) {
  if (!plan) return;
  tpi_plan_free(&plan->p);
  free(plan);
}
