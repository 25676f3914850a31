/*
 * plan.c — building and running a plan: validate, prepare (GEMM, workspaces,
 * the proposal), agree, adopt the agreed schedule; run it through the
 * registry. Every step that can fail locally happens before the agreement,
 * so that no rank enters the data phase while a peer has already given up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/debug.h"
#include "reduce.h"

/* Everything local: validation, the operator's GEMM and workspaces, the
 * proposal, the one-shot tuning cache. */
static tpmm_status_t prepare(tpi_plan_t *p, const char *op, const tpi_args_t *args, int need_data, tpi_proposal_t *pr) {
  TPI_CHECK(p->op->validate(op, args, p->g->size, need_data, &p->a));
  TPI_CHECK(p->op->prepare(p, op, need_data));
  TPI_CHECK(tpi_choose(p, op, pr));
  /* one-shot calls: the group's tuning cache, and the time of the previous
   * one-shot call on this group riding on this agreement (tune.c) */
  if (need_data) {
    TPI_CHECK(tpi_tune_cache_ready(p->g, op));
    pr->prev_us = tpi_tune_cache_report(p->g);
    pr->seen_ns = tpi_tune_cache_seen_report(p->g);
  }
  return TPMM_SUCCESS;
}

/* The agreed proposal becomes the plan's schedule and tuner. */
static void adopt(tpi_plan_t *p, const tpi_proposal_t *pr, const int64_t *fields, int need_data) {
  p->tile = pr->tile > 8 ? pr->tile : 8;
  p->segment_bytes = pr->segment_bytes == INT64_MAX ? 0 : pr->segment_bytes;
  p->nap_us = (int)pr->nap_us;
  p->nonblocking = pr->nonblocking > 0;
  const int ncand = pr->cand[1].algo > 0 ? 2 : 1;
  MPI_Query_thread(&p->thread_level);
  if (need_data) {
    int64_t key[TPI_F_COUNT + 6];
    memcpy(key, fields, sizeof(int64_t) * TPI_F_COUNT);
    key[TPI_F_BIAS_VALUES] = -1;  /* a bias that changes every call (training) keeps its layer's tuner */
    for (int i = 0; i < 2; i++) { /* the candidates are part of the key */
      key[TPI_F_COUNT + 3 * i] = pr->cand[i].algo;
      key[TPI_F_COUNT + 3 * i + 1] = pr->cand[i].chunks;
      key[TPI_F_COUNT + 3 * i + 2] = pr->cand[i].thread;
    }
    p->tuner = tpi_tune_cache_get(p->g, &p->a, pr->prev_us, key, TPI_F_COUNT + 6, pr->cand, ncand, pr->prior_pm);
    tpi_tune_cache_seen_agreed(p->g, pr->seen_ns);    /* the previous call's GEMM time, if it timed one */
    if (p->observe) tpi_tune_cache_seen_key(p->g, p); /* this one's */
  } else {
    tpi_tuner_init(&p->own, pr->cand, ncand, pr->prior_pm, &p->a);
    p->tuner = &p->own;
  }
  tpi_plan_use(p, tpi_tuner_pick(p->tuner));
  /* the plan keeps its own copies of x2 and bias (inside the GEMM) */
  p->a.x2.data = NULL;
  p->a.bias = NULL;
}

tpmm_status_t tpi_plan_build(tpi_plan_t *p, const char *op, const tpi_opdesc_t *desc, const char *group,
                             const tpi_args_t *args, int need_data, tpmm_status_t pre) {
  memset(p, 0, sizeof *p);
  p->op = desc;
  p->oneshot = need_data;
  TPI_CHECK(tpi_group_get(op, group, &p->g));
  if (need_data) tpi_ws_adopt(p);
  tpi_proposal_t pr;
  memset(&pr, 0, sizeof pr);
  tpmm_status_t st = pre;
  if (st == TPMM_SUCCESS) st = prepare(p, op, args, need_data, &pr);
  int64_t w[TPI_PROPOSAL_WORDS];
  desc->fields(args, p->fields);
  p->fields[TPI_F_OP] = desc->kind;
  p->fields[TPI_F_PLAN] = need_data ? 0 : p->g->plans + 1;
  tpi_proposal_encode(&pr, w);
  st = tpi_plan_agree(p, op, st, w, need_data);
  if (st != TPMM_SUCCESS) {
    tpi_ws_stash(p);
    tpi_plan_free(p);
    return st;
  }
  if (!need_data) p->g->plans++; /* every rank: plans are created in the same order */
  tpi_proposal_decode(w, &pr);
  adopt(p, &pr, p->fields, need_data);
  return TPMM_SUCCESS;
}

/* A field's value as the caller wrote it: the operator by its public name, the others as validate.c says. */
static const char *field_value(int i, int64_t v, char *buf, size_t len) {
  if (i != TPI_F_OP) return tpi_field_value(i, v, buf, len);
  const tpi_opdesc_t *d = tpi_op_by_kind(v);
  if (!d) return NULL;
  snprintf(buf, len, "tpmm_%s", d->name);
  return buf;
}

tpmm_status_t tpi_plan_agree(tpi_plan_t *p, const char *op, tpmm_status_t st, int64_t w[TPI_PROPOSAL_WORDS], int data) {
  const tpi_call_t *a = &p->a;
  tpi_fold_t fold = {0, p->peer, 0, NULL, 0};
  if (p->folds == TPI_FOLD_PARTIALS) { /* multiplies: a failure is this rank's status */
    st = tpi_red_fold(p, op, st, data, &fold);
  } else if (st == TPMM_SUCCESS && data && p->folds == TPI_FOLD_SHARD) {
    char *mine = tpi_agree_payload(p->g, TPI_F_COUNT + TPI_PROPOSAL_WORDS); /* NULL: out of memory, reported */
    if (mine) {
      tpi_copy_dense(mine, a->in.data, a->m, a->k, a->in.rs, a->in.cs, a->esize);
      fold.bytes = (size_t)(a->m * a->k) * a->esize;
    }
  }
  p->gathered = NULL;
  TPI_CHECK(tpi_agree_fold(p->g, op, st, p->fields, TPI_F_COUNT, tpi_field_names, field_value, w, TPI_PROPOSAL_WORDS,
                           fold.bytes ? &fold : NULL));
  if (fold.bytes && fold.all) p->gathered = p->peer;
  return TPMM_SUCCESS;
}

void tpi_plan_use(tpi_plan_t *p, int i) {
  const tpi_call_t *a = &p->a;
  const tpi_cand_t *c = &p->tuner->cand[i];
  p->cur = i;
  p->algo = c->algo;
  p->chunks = c->chunks;
  /* unique tags per chunk: W * C must stay within MPI's tag range */
  if (p->chunks > p->g->tag_ub / a->W) p->chunks = p->g->tag_ub / a->W;
  if (p->chunks > tpi_rows_max(a)) p->chunks = tpi_rows_max(a) > 0 ? (int)tpi_rows_max(a) : 1;
  if (p->chunks < 1) p->chunks = 1;
  /* hier polls its rail itself while it waits for node peers */
  p->progress_thread = c->thread && p->thread_level >= MPI_THREAD_SERIALIZED && p->algo != TPMM_ALGO_HIER;
}

tpmm_status_t tpi_plan_run(tpi_plan_t *p, const char *op) {
  const tpi_algo_t *al = tpi_algo_get(p->op, p->algo);
  char why[256] = "";
  if (!al) return tpi_fail(TPMM_ERR_INTERNAL, "%s: plan has no algorithm (%d)", op, p->algo);
  /* the same facts on every rank, so every rank returns this together */
  if (al->usable(p, why, sizeof why) == TPI_UNUSABLE)
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: %s cannot run on group \"%s\": %s", op,
                    tpmm_algo_name((tpmm_algo_t)p->algo), p->g->name, why);
  tpi_debug_stall(); /* test hook: a rank that stalls mid-call */
  p->gemm_status = TPMM_SUCCESS;
  tpmm_status_t st = al->run(p, op);
  /* a communication failure once data moves (MPI, a peer's published buffer
   * unknown) may leave messages or flags that no later call expects: the
   * group is done, as after a timeout (other failures are agreed first) */
  if (st == TPMM_ERR_COMM || st == TPMM_ERR_INTERNAL) p->g->broken = true;
  /* a communication failure (timeout, MPI error) outranks a GEMM failure */
  if (st == TPMM_SUCCESS && p->gemm_status != TPMM_SUCCESS) st = tpi_fail(p->gemm_status, "%s", p->gemm_msg);
  return st;
}

void tpi_plan_free(tpi_plan_t *p) {
  if (!p->gemm_cached) tpi_gemm_destroy(p->gemm);                     /* a cached one is the group's */
  for (int i = 1; i < TPI_MAX_NB; i++) tpi_gemm_destroy(p->wgemm[i]); /* multi's own, never cached */
  tpi_x2g_free(p);
  tpi_ws_free_plan(p);
  free(p->a.row0);
  memset(p, 0, sizeof *p);
}
