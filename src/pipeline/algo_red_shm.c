/*
 * algo_red_shm.c — "shm_pull" of the reduce operators: the ranks of one node
 * exchange partial products through the group's MPI-3 shared window.
 *
 * Description: every rank multiplies straight into its segment of the window
 *   (fp32 partials, one ready flag per unit, shm.h), chunk by chunk, each
 *   chunk's units in the order (r+1, ..., r-1, r) so that peers' units are
 *   out first (at one chunk, the automatic count, all rows in one GEMM
 *   call). After chunk c it sums its own unit of chunk c-1, reading the
 *   W partials in place in rank order (tpi_red_sum). At any chunk count,
 *   ranks in step do not wait: every unit of a chunk is flagged before any
 *   rank sums one. No MPI call and no copy of a partial in the data
 *   phase.
 *   matmul_all_reduce: the owner writes its rounded unit to a second region
 *   of its segment and flags it; every rank copies the peers' rounded units
 *   into its output at the end.
 * Steps (rank r, seq = the call's number on the group):
 *   1. Wait until every peer has finished reading the previous call (its
 *      done_seq), so that overwriting this rank's segment is safe.
 *   2. For chunk c = 0..C-1: for q = r+1, ..., r: GEMM unit (q, c) into the
 *      segment (one call for all where whole() says so), ready[q*C + c] =
 *      seq. Then, if c > 0, sum unit (r, c-1):
 *      spin on every rank j's ready[r*C + c-1], sum, round into the output
 *      (all_reduce: into the rounded region, flag ready[W*C + c-1], copy).
 *   3. Sum unit (r, C-1).
 *   4. all_reduce: for every chunk and peer q, spin on q's ready[W*C + c] and
 *      copy its rounded rows into the output.
 *   5. done_seq = seq.
 *   Every spin honours TPMM_TIMEOUT_MS (then the group is marked broken).
 * Memory: per rank in the window, m*n fp32 partials (all_reduce: and m*n
 *   rounded elements) and W*C (+C) flags, kept in the group between calls.
 */
#include <stdio.h>

#include "../comm/shm.h"
#include "../common/trace.h"
#include "reduce.h"

typedef struct {
  tpi_plan_t *p;
  const char *op;
  tpi_shm_t *s;
  int C, W, r, all;
  uint64_t seq;
  double deadline;
} shm_run_t;

static float *partials(const shm_run_t *S, int j) { return (float *)tpi_shm_rows(S->s, j); }
/* all_reduce: the rounded rows, after the partials in each segment */
static char *rounded(const shm_run_t *S, int j) {
  return tpi_shm_rows(S->s, j) + (size_t)(S->p->a.m * S->p->a.n) * sizeof(float);
}

/* Sum this rank's unit of chunk c, in rank order, from every segment. */
static tpmm_status_t sum_own(const shm_run_t *S, int c) {
  tpi_plan_t *p = S->p;
  const tpi_call_t *a = &p->a;
  int64_t lo, hi;
  tpi_red_unit(p, S->C, S->r, c, &lo, &hi);
  const float *parts[S->W];
  const double t0 = tpi_now();
  for (int j = 0; j < S->W; j++) {
    TPI_CHECK(tpi_shm_wait(p->g, S->op, &tpi_shm_hdr(S->s, j)->ready[S->r * S->C + c], S->seq, "a partial product", j,
                           S->deadline, NULL, NULL));
    parts[j] = partials(S, j) + lo * a->n;
  }
  tpi_trace(TPI_EV_WAIT, t0, S->r, c);
  if (!S->all) {
    tpi_red_sum(p, parts, hi - lo, a->out.data + (size_t)(tpi_red_out_row(p, lo) * a->out.rs) * a->esize, a->out.rs);
    return TPMM_SUCCESS;
  }
  char *dst = rounded(S, S->r) + (size_t)(lo * a->n) * a->esize;
  tpi_red_sum(p, parts, hi - lo, dst, a->n);
  __atomic_store_n(&tpi_shm_hdr(S->s, S->r)->ready[S->W * S->C + c], S->seq, __ATOMIC_RELEASE);
  tpi_red_put(p, dst, hi - lo, lo);
  return TPMM_SUCCESS;
}

/* all_reduce, step 4: the peers' rounded units into the output. */
static tpmm_status_t gather(const shm_run_t *S) {
  tpi_plan_t *p = S->p;
  for (int c = 0; c < S->C; c++)
    for (int t = 1; t < S->W; t++) {
      const int q = (S->r + t) % S->W;
      int64_t lo, hi;
      tpi_red_unit(p, S->C, q, c, &lo, &hi);
      const double t0 = tpi_now();
      TPI_CHECK(tpi_shm_wait(p->g, S->op, &tpi_shm_hdr(S->s, q)->ready[S->W * S->C + c], S->seq, "a reduced block", q,
                             S->deadline, NULL, NULL));
      tpi_trace(TPI_EV_WAIT, t0, q, c);
      tpi_red_put(p, rounded(S, q) + (size_t)(lo * p->a.n) * p->a.esize, hi - lo, lo);
    }
  return TPMM_SUCCESS;
}

/* Chunk c in one GEMM call rather than one per unit: always at one chunk,
 * where nothing would overlap a unit's GEMM but a peer's skew, and each
 * further call re-reads x2 (bench/RESULTS.md §38). hier keeps its units:
 * it sends a remote node's as soon as they are multiplied. */
static int whole(const tpi_plan_t *p, int C, int c, int64_t *lo, int64_t *hi) {
  if (C > 1) return tpi_red_chunk_once(p, C, c, lo, hi);
  *lo = 0, *hi = p->a.m;
  return 1;
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  tpi_group_t *g = p->g;
  if (a->m == 0 || a->n == 0) return TPMM_SUCCESS;
  shm_run_t S = {p, op, NULL, tpi_red_chunks(p), a->W, g->rank, tpi_red_all(p), 0, tpi_deadline()};
  const size_t part_bytes = (size_t)(a->m * a->n) * sizeof(float);
  TPI_CHECK(tpi_shm_reserve(g, op, part_bytes + (S.all ? (size_t)(a->m * a->n) * a->esize : 0),
                            S.W * S.C + (S.all ? S.C : 0)));
  S.s = g->shm;
  S.seq = ++S.s->seq;
  const char *A;
  TPI_CHECK(tpi_local_shard(p, op, &A));
  /* 1. the peers are done reading this segment */
  double t0 = tpi_now();
  for (int j = 0; j < S.W; j++)
    if (j != S.r)
      TPI_CHECK(tpi_shm_wait(g, op, &tpi_shm_hdr(S.s, j)->done_seq, S.seq - 1, "the end of the previous call", j,
                             S.deadline, NULL, NULL));
  tpi_trace(TPI_EV_WAIT, t0, -1, -1);
  /* 2-3. partials chunk by chunk, the own unit of the previous chunk summed in between */
  tpi_shm_hdr_t *me = tpi_shm_hdr(S.s, S.r);
  for (int c = 0; c < S.C; c++) {
    int64_t lo, hi;
    const int once = whole(p, S.C, c, &lo, &hi);
    if (once) TPI_CHECK(tpi_red_gemm(p, A, lo, hi, partials(&S, S.r) + lo * a->n, NULL, NULL));
    for (int t = 1; t <= S.W; t++) {
      const int q = (S.r + t) % S.W;
      tpi_red_unit(p, S.C, q, c, &lo, &hi);
      if (!once) TPI_CHECK(tpi_red_gemm(p, A, lo, hi, partials(&S, S.r) + lo * a->n, NULL, NULL));
      __atomic_store_n(&me->ready[q * S.C + c], S.seq, __ATOMIC_RELEASE);
    }
    if (c > 0) TPI_CHECK(sum_own(&S, c - 1));
  }
  TPI_CHECK(sum_own(&S, S.C - 1));
  if (S.all) TPI_CHECK(gather(&S));
  /* 5. done reading the peers */
  __atomic_store_n(&me->done_seq, S.seq, __ATOMIC_RELEASE);
  return TPMM_SUCCESS;
}

/* One core per rank does the GEMM and its sums in turn. Automatic: one
 * chunk, one GEMM call; more chunks only add GEMM calls, each re-reading x2
 * (bench/RESULTS.md §15, §38). */
static double predict(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  const tpi_call_t *a = &p->a;
  const int64_t own = (a->m + a->W - 1) / a->W;
  if (*chunks <= 0) *chunks = 1;
  double gemm = 0;
  for (int c = 0; c < *chunks; c++) {
    int64_t lo, hi;
    const int once = whole(p, *chunks, c, &lo, &hi);
    for (int q = 0; q < (once ? 1 : a->W); q++) {
      if (!once) tpi_red_unit(p, *chunks, q, c, &lo, &hi);
      gemm += tpi_red_gemm_time(p, m, hi - lo);
    }
  }
  const double copy = tpi_red_all(p) ? (double)(a->m * a->n) * (double)a->esize / 8e9 : 0;
  return gemm + tpi_red_sum_time(p, own) + copy;
}

const tpi_algo_t tpi_algo_red_shm = {TPMM_ALGO_SHM_PULL, true, tpi_shm_usable, predict, run}; /* usable: as shm_pull */
