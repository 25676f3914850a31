/*
 * choose.c — where the schedule is chosen: a forced TPMM_ALGO if it can run,
 * else the highest-priority fused algorithm the registry offers here, kept
 * only if the cost model predicts it beats the operator's baseline; the
 * chunk count from the same prediction (comm_turn = N forces N).
 *
 * The choice is rank 0's (every rank calibrates, alongside, but rank 0's
 * model decides) and reaches the others through the agreement, so every
 * rank runs the same schedule; except
 * for calls whose partials fold into the agreement (algo_red_unfused.c):
 * every rank has multiplied before it agrees, so auto keeps unfused. With
 * it goes the runner-up (the other of fused / baseline) when the model
 * cannot tell the two apart: tune.c times both on real calls and keeps the
 * faster. Where the fused lead is clear, the reduce operators' runner-up
 * across nodes is the same schedule with the progress thread's choice
 * turned over (tpi_thread_runner_up).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pipeline.h"

/* The runner-up is timed against the model's choice only when their
 * predictions are this close (relative): the 90th percentile of the model's
 * error on T_fused / T_seq at W = 2 (bench/RESULTS.md §22), so a candidate
 * predicted slower by more never runs. */
double tpi_explore_margin = 0.40;

/* The usable fused algorithm of highest priority, or NULL. */
static const tpi_algo_t *best_fused(const tpi_plan_t *p) {
  const tpi_algo_t *best = NULL;
  int best_prio = TPI_UNUSABLE;
  for (int id = 0; id < p->op->nalgos; id++) {
    const tpi_algo_t *al = p->op->algos[id];
    if (!al || !al->fused) continue;
    const int prio = al->usable(p, NULL, 0); /* no reason: none is shown */
    if (prio > best_prio) best = al, best_prio = prio;
  }
  return best;
}

/* The fused algorithm auto weighs against the baseline, or NULL: none when
 * there is nothing to overlap, or when the call's partials fold (every rank
 * has multiplied for unfused before it agrees). */
static const tpi_algo_t *weighed_fused(const tpi_plan_t *p) {
  const tpi_call_t *a = &p->a;
  return a->W > 1 && tpi_rows_max(a) > 0 && a->n > 0 && p->folds != TPI_FOLD_PARTIALS ? best_fused(p) : NULL;
}

/* Every rank: a forced algorithm must be offered and usable here. */
static tpmm_status_t check_forced(const tpi_plan_t *p, const char *op, int id) {
  const tpi_algo_t *al = tpi_algo_get(p->op, id);
  if (!al)
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: TPMM_ALGO=%s is not an algorithm of %s", op,
                    tpmm_algo_name((tpmm_algo_t)id) ? tpmm_algo_name((tpmm_algo_t)id) : "?", p->op->name);
  char why[256] = "";
  if (al->usable(p, why, sizeof why) == TPI_UNUSABLE)
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: TPMM_ALGO=%s cannot run on group \"%s\": %s", op,
                    tpmm_algo_name((tpmm_algo_t)id), p->g->name, why);
  return TPMM_SUCCESS;
}

static void verbose(const tpi_plan_t *p, const char *op, const tpi_proposal_t *pr, const tpi_model_t *m,
                    const double t_pred[2]) {
  const tpi_call_t *a = &p->a;
  const tpi_group_t *g = p->g;
  char model[96] = "";
  if (t_pred[1] > 0)
    snprintf(model, sizeof model, "predicted unfused %.3f ms, fused %.3f ms; ", t_pred[0] * 1e3, t_pred[1] * 1e3);
  fprintf(stderr,
          "tpmm: %s on \"%s\": m=%lld k=%lld n=%lld W=%d nodes=%d (%d on this machine%s) -> algo=%s chunks=%d "
          "tile=%lld rows (%.2f ms) progress=%s nap=%d us (%sg0=%.1f us g1=%.3f us/row floor=%.1f us alpha=%.1f us "
          "beta=%.3g GB/s cpu=%.2f ns/B)\n",
          op, g->name, (long long)a->m, (long long)a->k, (long long)a->n, a->W, g->n_nodes, g->kernel_ranks,
          tpi_group_crowded(g) ? ", crowded: waits yield" : "", tpmm_algo_name((tpmm_algo_t)pr->cand[0].algo),
          pr->cand[0].chunks, (long long)m->tile, tpi_model_gemm(m, (double)m->tile) * 1e3,
          m->thread ? "thread" : "polls", m->nap_us, model, m->g0 * 1e6, m->g1 * 1e6, m->floor * 1e6, m->alpha * 1e6,
          m->beta * 1e-9, m->cpu_byte * 1e9);
}

/* The tuner's prior: the runner-up's predicted time over the choice's, per
 * mille (>= 1000). A fused runner-up's leaves out the link's CPU cost: the
 * probe's reading of it scatters from group to group about as much as the
 * term itself, and a pair of calls measures it directly; counted in the
 * choice it makes the first calls the baseline's, left out here it lets the
 * pairs decide (bench/RESULTS.md §33). A baseline runner-up's keeps it: the
 * cost only narrows the fused choice's lead, so the pairs decide sooner. */
int64_t tpi_tune_prior(const tpi_plan_t *p, const tpi_model_t *m, const tpi_algo_t *fused, int chunks,
                       const double t_pred[2]) {
  double base = t_pred[0], alt = t_pred[1];
  if (alt > base && m->cpu_byte > 0) { /* the baseline chosen, fused the runner-up */
    tpi_model_t m0 = *m;
    m0.cpu_byte = 0;
    int c = chunks;
    alt = fused->predict(p, &m0, &c);
  }
  const double lo = fmin(base, t_pred[1]), hi = alt > base ? alt : base;
  return lo > 0 && hi > lo ? (int64_t)llround(1000 * hi / lo) : 1000;
}

/* The tuner's slot, free when the fused lead is clear, times the reduce
 * operators' ring with the progress thread against polls: model.c's rule
 * for them is right on one CPU and wrong on another, either way by shape
 * (bench/RESULTS.md §43), and the model has no term for it, so the prior is
 * 1.0. Only where the rule decides (TPMM_PROGRESS_THREAD=2, comm_turn 0),
 * across nodes, and a thread can drive MPI (hier never takes one). */
int tpi_thread_runner_up(const tpi_plan_t *p, const tpi_model_t *m, const tpi_algo_t *fused, tpi_proposal_t *pr) {
  const int red = p->op->kind == TPI_OP_MATMUL_REDUCE_SCATTER || p->op->kind == TPI_OP_MATMUL_ALL_REDUCE;
  if (!red || pr->prior_pm || p->a.comm_turn != 0 || tpi_params.progress_thread != 2 || p->g->n_nodes < 2 ||
      tpi_mpi_thread_level() < MPI_THREAD_SERIALIZED || fused->id == TPMM_ALGO_HIER)
    return 0;
  tpi_model_t m2 = *m;
  int chunks = 0;
  tpi_model_set_thread(&m2, !m->thread);
  fused->predict(p, &m2, &chunks);
  pr->cand[1] = (tpi_cand_t){fused->id, chunks > 0 ? chunks : 1, !m->thread};
  pr->prior_pm = 1000;
  return 1;
}

tpmm_status_t tpi_choose(tpi_plan_t *p, const char *op, tpi_proposal_t *pr) {
  const tpi_call_t *a = &p->a;
  memset(pr, 0, sizeof *pr);
  pr->segment_bytes = tpi_params.segment_bytes > 0 ? tpi_params.segment_bytes : INT64_MAX;
  pr->nonblocking = tpi_params.timeout_ms > 0;
  const int forced = tpi_params.algo;
  if (forced != TPMM_ALGO_AUTO) TPI_CHECK(check_forced(p, op, forced));
  const int folds = p->folds == TPI_FOLD_PARTIALS;
  double t_seen = 0;
  const tpi_comm_share_t share =
      forced == TPMM_ALGO_AUTO && !folds ? tpi_model_comm_share(p, &t_seen) : TPI_COMM_WEIGHED;
  const int uncalibrated = forced == TPMM_ALGO_AUTO && (folds || share != TPI_COMM_WEIGHED);
  p->observe = share == TPI_COMM_OBSERVE;
  if (p->g->rank != 0) {
    /* Multiply beside rank 0's calibration, so that it times the GEMM as
     * the call runs it: with every rank busy (ranks sharing a core slow each
     * other, bench/RESULTS.md §16). The model itself is rank 0's; a failure
     * here only loses that company. */
    tpi_model_t m;
    if (!uncalibrated && tpi_model_build(p, op, &m) != TPMM_SUCCESS) tpi_clear_error();
    return TPMM_SUCCESS;
  }

  const tpi_algo_t *base = tpi_algo_get(p->op, p->op->baseline);
  if (uncalibrated) {
    /* no fused schedule can beat it by more than 2 % of the GEMM's floor (x2
     * streamed at 10 GB/s per thread) or of its time seen on earlier calls,
     * or every rank multiplies for unfused before it agrees: no GEMM runs to
     * calibrate (a decode shape's first call would pay several,
     * bench/RESULTS.md §12, §30); tile and nap stay 0, which unfused never
     * uses */
    pr->cand[0] = (tpi_cand_t){base->id, a->comm_turn > 0 ? a->comm_turn : 1, 0};
    if (tpi_params.verbose) {
      char why[96];
      if (folds)
        snprintf(why, sizeof why, "partials fold into the agreement");
      else if (share == TPI_COMM_OBSERVE)
        snprintf(why, sizeof why, "transfer under a tenth of the GEMM's floor: its GEMM timed first");
      else if (t_seen > 0)
        snprintf(why, sizeof why, "transfer negligible beside the GEMM's %.3f ms seen", t_seen * 1e3);
      else
        snprintf(why, sizeof why, "transfer negligible");
      fprintf(stderr, "tpmm: %s on \"%s\": m=%lld k=%lld n=%lld W=%d -> algo=%s (%s, not calibrated)\n", op, p->g->name,
              (long long)a->m, (long long)a->k, (long long)a->n, a->W, tpmm_algo_name((tpmm_algo_t)base->id), why);
    }
    return TPMM_SUCCESS;
  }
  tpi_model_t m;
  TPI_CHECK(tpi_model_build(p, op, &m)); /* calibrates once per shape */
  const tpi_algo_t *pick = forced != TPMM_ALGO_AUTO ? tpi_algo_get(p->op, forced) : base;
  int chunks = a->comm_turn;
  double t_pred[2] = {0, 0};
  const tpi_algo_t *fused = forced == TPMM_ALGO_AUTO ? weighed_fused(p) : NULL;
  if (fused) {
    int c0 = a->comm_turn;
    t_pred[0] = base->predict(p, &m, &c0);
    t_pred[1] = fused->predict(p, &m, &chunks);
    pick = t_pred[1] > t_pred[0] ? base : fused;
    const double lo = fmin(t_pred[0], t_pred[1]), hi = fmax(t_pred[0], t_pred[1]);
    if (a->comm_turn == 0 && hi <= (1 + tpi_explore_margin) * lo) { /* the runner-up, for the tuner */
      const int alt_fused = pick == base;
      pr->cand[1] = (tpi_cand_t){alt_fused ? fused->id : base->id, alt_fused ? chunks : 1, alt_fused ? m.thread : 0};
      pr->prior_pm = tpi_tune_prior(p, &m, fused, chunks, t_pred);
    }
    if (pick == fused) tpi_thread_runner_up(p, &m, fused, pr);
  } else {
    pick->predict(p, &m, &chunks);
  }
  pr->cand[0] = (tpi_cand_t){pick->id, chunks > 0 ? chunks : 1, m.thread};
  pr->tile = m.tile;
  pr->nap_us = m.nap_us;
  if (tpi_params.verbose) verbose(p, op, pr, &m, t_pred);
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_predict(tpi_plan_t *p, const char *op, tpi_prediction_t *out) {
  tpi_model_t m;
  TPI_CHECK(tpi_model_build(p, op, &m));
  memset(out, 0, sizeof *out);
  const tpi_algo_t *base = tpi_algo_get(p->op, p->op->baseline), *fused = weighed_fused(p);
  int c = p->a.comm_turn;
  out->t_seq = base->predict(p, &m, &c);
  out->algo = base->id;
  out->chunks = 1;
  out->t_fused = out->t_seq;
  if (fused) {
    int cf = p->a.comm_turn;
    const double t = fused->predict(p, &m, &cf);
    out->fused_algo = fused->id, out->fused_chunks = cf, out->t_fused = t;
    if (t < out->t_seq) out->algo = fused->id, out->chunks = cf;
  }
  out->t_gemm = m.t_gemm;
  out->t_xfer = m.t_xfer;
  return TPMM_SUCCESS;
}
