/*
 * tune.c — where schedules are autotuned: the cost model (choose.c) proposes
 * a schedule and, when its predictions cannot tell them apart, the runner-up
 * (the other of fused / unfused; for the reduce operators across nodes with
 * the fused lead clear, the same ring with the progress thread turned over,
 * choose.c tpi_thread_runner_up); real calls then time both and keep the
 * faster, because a model misses what a measurement sees (the network
 * stack's share of the core, a token bucket's burst).
 *
 * Protocol: call 0 runs the model's choice untimed (a candidate's first
 * call creates windows, GEMM primitives and MPI paths); the choice's later
 * calls are timed, and the runner-up runs when it is due, right after a
 * timed call of the choice: its first call untimed, each later one paired
 * with the choice's call before it (confirming pairs aside, below), until
 * TPI_TUNE_SAMPLES pairs have both times; a pair with a failed call is
 * dropped whole. Due: its calls,
 * this one included, times the excess each is expected to cost (the median
 * pair's ratio - 1, or before any pair the model's predicted ratio - 1,
 * within 0 ... 0.40) stay within tpi_tune_budget (3 %) of all calls
 * so far, so that the first calls cost at most that much over the choice
 * (bench/RESULTS.md §30): a runner-up no slower runs every other call, one
 * predicted 19 % slower first at call 6. The runner-up is kept for good only
 * if it is 2 % faster by the geometric mean of two estimates of its time over
 * the model's choice: the median pair's, and the model's own prediction
 * (which the proposal carries, >= 1; a fused runner-up's without the link's
 * CPU cost, choose.c tpi_tune_prior). Three pairs on this machine scatter
 * about as much as the model's ratio errs (bench/RESULTS.md §16), so the two
 * weigh alike: a runner-up predicted slower must win its pairs by more.
 * Unless it won every pair by 2 % and was predicted at most
 * TPI_TUNE_EVERY_PM per mille of the choice: a model that misses the network
 * stack's share of the CPUs predicted a fused schedule 4 % ahead where three
 * pairs in a row measured it 4-23 % behind (bench/RESULTS.md §32). The band
 * is narrow because these pairs run the choice first: a steady edge of the
 * second call (warm caches, a refilled token bucket) must not decide where
 * the model sees a clear difference. Beyond it, confirming pairs do (below).
 * A replacement that one of its pairs contradicts (the runner-up no faster
 * in it) waits for more pairs, up to TPI_TUNE_SAMPLES_MAX, and each further
 * pair's median decides again: in three pairs, a stall in one makes the
 * median the better of the other two, and close candidates scatter ±5-10 %
 * a pair (bench/RESULTS.md §40.4). Those pairs cost no budget: a runner-up
 * that would win is predicted no slower (excess 0).
 * A runner-up that won every pair, the median by 2 %, but that the prior or
 * a pair won by less keeps out gets the pairs left as confirming pairs: four
 * calls, the runner-up twice, then the choice twice, each candidate timed in
 * its second call, after a call of its own as it would run for good, and the
 * runner-up's first. If it wins each of those by 2 %, neither the call before
 * it nor a pair's second place made it win, and it replaces the choice
 * whatever the prior (a prior read in a slow spell at group creation would
 * keep ring where the pairs measure unfused 11 % faster: bench/RESULTS.md
 * §41.1, §42; unfused 4 % faster over 10 Gbit won one pair of three by 1.4 %
 * only: §44.3). A confirming pair counts in the median like any other, so the
 * geometric mean with the prior is checked after each and may decide either
 * way; one won by under 2 % ends the confirmation there. Also at no budget:
 * its median pair is a win.
 * A runner-up (predicted slower, or it would be the choice) that measured
 * TPI_TUNE_CLEAR times slower in TPI_TUNE_CLEAR_PAIRS pairs and every pair
 * so far ends the exploration: the pairs left would cost their excess again
 * for a median they could not turn (bench/RESULTS.md §24). Two, not one: a
 * slow spell in one pair (a link that recovers, §41) then decides nothing.
 * Pairs, not each candidate's best: the machine's speed changes between
 * calls by more than the candidates differ (bench/RESULTS.md §14, §15), and
 * two calls in a row see the same speed (one-shot calls of other shapes may
 * come between them). A time runs from the end of the call's agreement (a
 * rank's wait in it is the previous call's skew between ranks, which a
 * runner-up that ends skewed would hand to the choice's next call:
 * bench/RESULTS.md §38) and is the slowest rank's: each rank sends its
 * time of the previous call with the next call's agreement, which takes the
 * maximum, so every rank records the same numbers and switches in the same
 * call; a call that failed on any rank is not sampled by any.
 *   Plans:    one tuner per plan (tpmm_plan_execute).
 *   One-shot: a small cache per group, keyed by the call's agreed fields and
 *             candidates, so a layer called every step with a one-shot call
 *             tunes itself too; a group's calls come in the same order on all
 *             its ranks, so every rank's cache evolves identically.
 * Only when nothing is forced (TPMM_ALGO=auto, comm_turn = 0).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

enum { CACHE_ENTRIES = 16 };

typedef struct {
  uint64_t key; /* 0: free */
  uint64_t used;
  tpi_tuner_t t;
} entry_t;

struct tpi_tune_cache {
  entry_t e[CACHE_ENTRIES];
  uint64_t clock;
  int last; /* entry of the group's previous one-shot call, -1: none */
  /* the group's previous one-shot call, if it timed its GEMM for the model (model.c) */
  int seen_set;
  tpi_seen_key_t seen_key;
  int64_t seen_ns; /* this rank's time, 0: not run here */
};

void tpi_tuner_init(tpi_tuner_t *t, const tpi_cand_t *cand, int ncand, int64_t prior_pm, const tpi_call_t *a) {
  memset(t, 0, sizeof *t);
  t->prior = prior_pm > 1000 ? 1e-3 * (double)prior_pm : 1.0;
  t->prior_pm = prior_pm > 1000 ? prior_pm : 1000;
  t->m = a->m, t->k = a->k, t->n = a->n;
  t->ncand = ncand < 2 ? 1 : 2;
  memcpy(t->cand, cand, (size_t)t->ncand * sizeof *cand);
  t->last = -1;
}

/* The median of a[i] / b[i] over the first n (<= TPI_TUNE_SAMPLES_MAX): the runner-up against the model's
 * choice, pair by pair. */
static double median_ratio(const double *a, const double *b, int n) {
  double r[TPI_TUNE_SAMPLES_MAX];
  for (int i = 0; i < n; i++) r[i] = a[i] / b[i];
  return tpi_median_of(r, n);
}

/* The report of a call that failed on some rank: the maximum over ranks is
 * then this, and no rank records a sample of it. */
#define FAILED_CALL (INT64_MAX / 4)

void tpi_tuner_record(tpi_tuner_t *t, int64_t prev_us, const tpi_group_t *g) {
  if (t->ncand < 2 || t->decided || t->last < 0 || prev_us <= 0) return;
  if (prev_us >= FAILED_CALL) { /* the pair is lost */
    t->pending = 0;
    return;
  }
  const double s = 1e-6 * (double)prev_us;
  if (t->last == (t->confirm_at ? 1 : 0)) { /* a pair's first timed call: a confirming pair's is the runner-up's */
    t->pending = s;
    return;
  }
  if (t->pending <= 0) return; /* its partner failed */
  const int i = t->npairs++;
  t->samples[0][i] = t->confirm_at ? s : t->pending, t->samples[1][i] = t->confirm_at ? t->pending : s;
  t->pending = 0;
  int clear = i + 1 >= TPI_TUNE_CLEAR_PAIRS;
  for (int j = 0; j <= i; j++) clear &= t->samples[1][j] >= TPI_TUNE_CLEAR * t->samples[0][j];
  if (i + 1 < TPI_TUNE_SAMPLES && !clear) return;
  const double ratio = median_ratio(t->samples[1], t->samples[0], t->npairs);
  int every = 1, dissent = 0, confirms = 1; /* the runner-up won every pair by 2 %; lost one; won each confirming
                                             * pair by 2 % */
  for (int j = 0; j < t->npairs; j++) {
    const int won = t->samples[1][j] < TPI_TUNE_WIN * t->samples[0][j];
    every &= won, dissent |= t->samples[1][j] >= t->samples[0][j];
    if (t->confirm_at && j >= t->confirm_at) confirms &= won;
  }
  /* won every pair and the median by 2 %, one pair by less: a runner-up 4 % faster scatters that way (the pairs
   * 1.4 %, 9.5 %, 4.3 % of bench/RESULTS.md §44.3), and confirming pairs tell it from a second call's edge */
  const int swept = !dissent && ratio < TPI_TUNE_WIN;
  const int confirmed =
      t->confirm_at && t->npairs - t->confirm_at >= TPI_TUNE_SAMPLES_MAX - TPI_TUNE_SAMPLES && confirms;
  const int win =
      sqrt(ratio * t->prior) < TPI_TUNE_WIN || (every && t->prior_pm <= TPI_TUNE_EVERY_PM) || (swept && confirmed);
  /* a replacement one pair contradicts asks for more pairs: a stall in one of three makes the median the better
   * of the other two (bench/RESULTS.md §40.4) */
  if (win && dissent && t->npairs < TPI_TUNE_SAMPLES_MAX) return;
  /* every pair won, but the prior or a pair won by under 2 % keeps the choice: confirming pairs decide, unless
   * one already missed its 2 % */
  if (!win && swept && confirms && t->npairs < TPI_TUNE_SAMPLES_MAX) {
    if (!t->confirm_at) t->confirm_at = t->npairs;
    return;
  }
  t->decided = 1;
  t->winner = win;
  if (tpi_params.verbose && g->rank == 0) {
    char pairs[TPI_TUNE_SAMPLES_MAX * 24] = "";
    for (int j = 0, at = 0; j < t->npairs && at < (int)sizeof pairs; j++)
      at += snprintf(pairs + at, sizeof pairs - (size_t)at, "%s%.3f/%.3f", j ? " " : "", t->samples[0][j] * 1e3,
                     t->samples[1][j] * 1e3);
    fprintf(stderr,
            "tpmm: autotune on \"%s\" (m=%lld k=%lld n=%lld): %s/%d chunks%s against %s/%d chunks%s, pairs (ms) %s, "
            "median ratio %.3f, predicted %.3f -> %s%s%s%s\n",
            g->name, (long long)t->m, (long long)t->k, (long long)t->n, tpmm_algo_name(t->cand[0].algo),
            t->cand[0].chunks, t->cand[0].thread ? " +thread" : "", tpmm_algo_name(t->cand[1].algo), t->cand[1].chunks,
            t->cand[1].thread ? " +thread" : "", pairs, ratio, t->prior, tpmm_algo_name(t->cand[t->winner].algo),
            t->cand[t->winner].thread ? " +thread" : "",
            t->npairs < TPI_TUNE_SAMPLES ? " (clear after fewer pairs)" : "",
            t->confirm_at ? " (the last pairs confirming)" : "");
  }
}

double tpi_tune_budget = 1e-3 * TPI_TUNE_BUDGET_PM;

/* What a call of the runner-up is expected to cost over the choice's, as a share of it. */
static double excess(const tpi_tuner_t *t) {
  const double e = (t->npairs ? median_ratio(t->samples[1], t->samples[0], t->npairs) : t->prior) - 1;
  return fmin(fmax(e, 0), 1e-3 * TPI_TUNE_EXCESS_MAX_PM);
}

/* Every rank picks the same: runs, runner_runs, pending, phase and the samples are agreed. */
int tpi_tuner_pick(const tpi_tuner_t *t) {
  if (t->ncand < 2) return 0;
  if (t->decided) return t->winner;
  /* after the choice's untimed first call; its warm-up aside, the runner-up pairs with a timed call; in
   * confirming pairs it runs their first two calls */
  const int after = t->confirm_at ? t->phase < 2 : t->runs >= 1 && (t->runner_runs == 0 || t->pending > 0);
  const double spent = (double)(t->runner_runs + 1) * excess(t);
  return after && spent <= tpi_tune_budget * (double)(t->runs + 1) ? 1 : 0;
}

/* Every rank records the same calls (what ran is agreed); whether this rank
 * failed travels in its report, so a sample is kept only if no rank failed. */
void tpi_tuner_ran(tpi_tuner_t *t, int cand, int ok, double elapsed) {
  int timed = cand == 1 ? t->runner_runs > 0 : t->runs > 0; /* each candidate's first call is not */
  if (t->confirm_at && !t->decided) {                       /* a confirming pair: R R C C, the second of each timed */
    const int due = t->phase < 2;
    timed = cand == due && t->phase % 2;
    if (cand == due) t->phase = (t->phase + 1) % 4;
  }
  t->last = t->ncand > 1 && !t->decided && timed ? cand : -1;
  t->last_failed = !ok;
  t->last_elapsed = elapsed;
  if (cand == 1 && !timed) t->pending = 0; /* the next pair's partner comes after the warm-up */
  t->runs++;
  if (cand == 1) t->runner_runs++;
}

int64_t tpi_tuner_report(const tpi_tuner_t *t) {
  if (!t || t->last < 0) return 0;
  return t->last_failed ? FAILED_CALL : (int64_t)(t->last_elapsed * 1e6) + 1;
}

/* ---- the per-group cache of one-shot calls ---- */

tpmm_status_t tpi_tune_cache_ready(tpi_group_t *g, const char *op) {
  if (g->tune) return TPMM_SUCCESS;
  g->tune = tpi_debug_fail("the tuning cache") ? NULL : calloc(1, sizeof *g->tune);
  if (!g->tune) return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for the tuning cache", op);
  g->tune->last = -1;
  return TPMM_SUCCESS;
}

int64_t tpi_tune_cache_report(const tpi_group_t *g) {
  const struct tpi_tune_cache *c = g->tune;
  return c && c->last >= 0 ? tpi_tuner_report(&c->e[c->last].t) : 0;
}

void tpi_tune_cache_seen_key(tpi_group_t *g, const tpi_plan_t *p) {
  struct tpi_tune_cache *c = g->tune;
  if (!c) return;
  tpi_model_seen_key(p, &c->seen_key);
  c->seen_set = 1;
  c->seen_ns = 0;
}

void tpi_tune_cache_seen_time(tpi_group_t *g, double t) {
  if (g->tune && g->tune->seen_set) g->tune->seen_ns = (int64_t)(t * 1e9) + 1;
}

int64_t tpi_tune_cache_seen_report(const tpi_group_t *g) { return g->tune && g->tune->seen_set ? g->tune->seen_ns : 0; }

void tpi_tune_cache_seen_agreed(tpi_group_t *g, int64_t ns) {
  struct tpi_tune_cache *c = g->tune;
  if (!c || !c->seen_set) return; /* every rank set the key, or none */
  if (ns > 0) tpi_model_seen(&c->seen_key, 1e-9 * (double)ns);
  c->seen_set = 0;
}

static uint64_t fingerprint(const int64_t *f, int nf) {
  const uint64_t h = tpi_hash_bytes(f, sizeof(int64_t) * (size_t)nf, 0x9e3779b97f4a7c15u);
  return h ? h : 1; /* 0 marks a free entry */
}

tpi_tuner_t *tpi_tune_cache_get(tpi_group_t *g, const tpi_call_t *a, int64_t prev_us, const int64_t *f, int nf,
                                const tpi_cand_t *cand, int ncand, int64_t prior_pm) {
  struct tpi_tune_cache *c = g->tune;
  if (!c) return NULL;
  if (c->last >= 0) tpi_tuner_record(&c->e[c->last].t, prev_us, g);
  const uint64_t key = fingerprint(f, nf);
  int slot = -1;
  for (int i = 0; i < CACHE_ENTRIES && slot < 0; i++)
    if (c->e[i].key == key) slot = i;
  if (slot < 0) { /* a free entry, else the least recently used */
    slot = 0;
    for (int i = 0; i < CACHE_ENTRIES; i++) {
      if (c->e[i].key == 0) {
        slot = i;
        break;
      }
      if (c->e[i].used < c->e[slot].used) slot = i;
    }
    c->e[slot].key = key;
    tpi_tuner_init(&c->e[slot].t, cand, ncand, prior_pm, a);
  }
  c->e[slot].used = ++c->clock;
  c->last = slot;
  return &c->e[slot].t;
}
