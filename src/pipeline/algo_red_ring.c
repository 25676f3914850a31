/*
 * algo_red_ring.c — "ring" of the reduce operators: partial blocks sent as
 * they are produced, for groups that span nodes (works everywhere).
 *
 * Description: the GEMM produces the units of chunk c in the order they are
 *   sent (owners r+1, ..., r-1, then the own unit) and each remote unit
 *   leaves with MPI_Isend while the next one is multiplied; MPI is polled
 *   between GEMM tiles of p->tile rows (it moves no data otherwise). The
 *   sends go straight to the owner (pairwise), not hop by hop: a ring that
 *   adds as it forwards would sum in ring order, and the contract is
 *   group-rank order. Every rank still sends each of its (W-1) remote blocks
 *   once, as a ring reduce-scatter does. An owner receives its units'
 *   partials into one slot per peer (early arrivals wait there), and sums a
 *   unit in rank order once all its W partials are in (tpi_red_sum), between
 *   chunks while later chunks are multiplied. matmul_all_reduce: the owner
 *   sends the rounded unit to every peer at once (pairwise allgather), which
 *   lands straight in a dense output.
 * Steps:
 *   1. Post the receives: every peer's partial of each own unit (tag c), and,
 *      all_reduce, every owner's rounded unit (tag C + c).
 *   2. For chunk c: GEMM unit (q, c) for q = r+1, ..., r-1 and MPI_Isend it to
 *      q; GEMM the own unit (r, c). Then sum every own unit whose partials
 *      are all in, in chunk order (all_reduce: send it to every peer).
 *   3. Wait for the rest of the own units' partials, sum them.
 *   4. all_reduce: wait for the rounded units; copy from the staging rows
 *      when the output is strided. Wait for the sends.
 *   Waits poll MPI against TPMM_TIMEOUT_MS (on timeout every request is
 *   cancelled and the group marked broken); they yield the CPU between polls
 *   on a crowded machine (tpi_group_crowded).
 * Progress: polls between GEMM tiles only (TPMM_PROGRESS_THREAD does not
 *   apply to this schedule yet).
 * Memory: m*n fp32 partials (sent from in place), W slots of this rank's
 *   rows of fp32 received, 4*W*C requests; all_reduce into a strided output,
 *   m*n elements of staging.
 */
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>

#include "../common/trace.h"
#include "reduce.h"

typedef struct {
  tpi_plan_t *p;
  const char *op;
  int W, r, C, all;
  bool crowded;
  double deadline;
  int64_t own;      /* rows of this rank's units, all chunks */
  int nreq;         /* 4*W*C */
  MPI_Request *req; /* [partial recv | rounded recv | partial send | rounded send], each [c*W + peer] */
  int *done;        /* MPI_Testsome's indices */
  char *D;          /* all_reduce: the rounded rows, dense (the output or the staging) */
  int summed;       /* own units summed so far (chunk order) */
} eng_t;

enum { PRECV, RRECV, PSEND, RSEND };
static MPI_Request *rq(const eng_t *E, int kind, int c, int j) {
  return &E->req[(size_t)kind * E->W * E->C + (size_t)c * E->W + j];
}
/* Peer j's partial of the own unit of chunk c, in j's receive slot. */
static float *slot(const eng_t *E, int j, int c) {
  const tpi_plan_t *p = E->p;
  return p->red.recv + (size_t)((j * E->own + tpi_red_unit_offset(p, E->C, E->r, c)) * p->a.n);
}

/* Drive MPI: complete whatever has arrived or left. */
static tpmm_status_t poll(void *ctx) {
  eng_t *E = ctx;
  int n = 0;
  int rc = MPI_Testsome(E->nreq, E->req, &n, E->done, MPI_STATUSES_IGNORE);
  return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, E->op, "MPI_Testsome on the ring's messages");
}

static int all_null(const MPI_Request *r, int n) {
  for (int i = 0; i < n; i++)
    if (r[i] != MPI_REQUEST_NULL) return 0;
  return 1;
}

/* Poll until requests [r, r+n) are complete. */
static tpmm_status_t wait_reqs(eng_t *E, MPI_Request *r, int n, const char *what) {
  const double t0 = tpi_now();
  while (!all_null(r, n)) {
    TPI_CHECK(poll(E));
    if (E->deadline > 0 && tpi_now() > E->deadline) {
      E->p->g->broken = true;
      return tpi_fail(TPMM_ERR_TIMEOUT, "%s: timed out after %lld ms waiting for %s on group \"%s\"", E->op,
                      (long long)tpi_params.timeout_ms, what, E->p->g->name);
    }
    if (E->crowded) sched_yield();
  }
  tpi_trace(TPI_EV_WAIT, t0, -1, n);
  return TPMM_SUCCESS;
}

static tpmm_status_t post_receives(eng_t *E) {
  const tpi_call_t *a = &E->p->a;
  MPI_Comm comm = E->p->g->comm;
  for (int c = 0; c < E->C; c++)
    for (int j = 0; j < E->W; j++) {
      int64_t lo, hi;
      if (j == E->r) continue;
      tpi_red_unit(E->p, E->C, E->r, c, &lo, &hi);
      int rc = hi > lo ? MPI_Irecv(slot(E, j, c), (int)((hi - lo) * a->n), MPI_FLOAT, j, c, comm, rq(E, PRECV, c, j))
                       : MPI_SUCCESS;
      tpi_red_unit(E->p, E->C, j, c, &lo, &hi);
      if (rc == MPI_SUCCESS && E->all && hi > lo)
        rc = MPI_Irecv(E->D + (size_t)(lo * a->n) * a->esize, (int)((hi - lo) * a->n * (int64_t)a->esize), MPI_BYTE, j,
                       E->C + c, comm, rq(E, RRECV, c, j));
      if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, E->op, "MPI_Irecv of a block");
    }
  return TPMM_SUCCESS;
}

/* Sum the own unit of chunk c (its partials are in); all_reduce: send it. */
static tpmm_status_t sum_own(eng_t *E, int c) {
  tpi_plan_t *p = E->p;
  const tpi_call_t *a = &p->a;
  int64_t lo, hi;
  tpi_red_unit(p, E->C, E->r, c, &lo, &hi);
  const float *parts[E->W];
  for (int j = 0; j < E->W; j++) parts[j] = j == E->r ? p->red.part + lo * a->n : slot(E, j, c);
  if (!E->all) {
    tpi_red_sum(p, parts, hi - lo, a->out.data + (size_t)(tpi_red_out_row(p, lo) * a->out.rs) * a->esize, a->out.rs);
    return TPMM_SUCCESS;
  }
  char *rows = E->D + (size_t)(lo * a->n) * a->esize;
  tpi_red_sum(p, parts, hi - lo, rows, a->n);
  for (int t = 1; t < E->W && hi > lo; t++) {
    const int q = (E->r + t) % E->W;
    int rc = MPI_Isend(rows, (int)((hi - lo) * a->n * (int64_t)a->esize), MPI_BYTE, q, E->C + c, p->g->comm,
                       rq(E, RSEND, c, q));
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, E->op, "MPI_Isend of a reduced block");
  }
  return TPMM_SUCCESS;
}

/* Step 2 (one chunk) and the sums that can run after it. */
static tpmm_status_t chunk(eng_t *E, const char *A, int c) {
  tpi_plan_t *p = E->p;
  const tpi_call_t *a = &p->a;
  for (int t = 1; t <= E->W; t++) {
    const int q = (E->r + t) % E->W;
    int64_t lo, hi;
    tpi_red_unit(p, E->C, q, c, &lo, &hi);
    float *P = p->red.part + lo * a->n;
    TPI_CHECK(tpi_red_gemm(p, A, lo, hi, P, poll, E));
    if (q == E->r || hi == lo) continue;
    const double t0 = tpi_now();
    int rc = MPI_Isend(P, (int)((hi - lo) * a->n), MPI_FLOAT, q, c, p->g->comm, rq(E, PSEND, c, q));
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, E->op, "MPI_Isend of a partial block");
    tpi_trace(TPI_EV_SEND, t0, q, c);
  }
  TPI_CHECK(poll(E));
  while (E->summed <= c && all_null(rq(E, PRECV, E->summed, 0), E->W)) TPI_CHECK(sum_own(E, E->summed++));
  return TPMM_SUCCESS;
}

static tpmm_status_t steps(eng_t *E) {
  const char *A;
  TPI_CHECK(tpi_local_shard(E->p, E->op, &A));
  TPI_CHECK(post_receives(E));
  for (int c = 0; c < E->C; c++) TPI_CHECK(chunk(E, A, c));
  for (; E->summed < E->C; E->summed++) {
    TPI_CHECK(wait_reqs(E, rq(E, PRECV, E->summed, 0), E->W, "the partial blocks of the peers"));
    TPI_CHECK(sum_own(E, E->summed));
  }
  if (E->all) TPI_CHECK(wait_reqs(E, rq(E, RRECV, 0, 0), E->W * E->C, "the reduced blocks of the peers"));
  return wait_reqs(E, rq(E, PSEND, 0, 0), 2 * E->W * E->C, "the sends to the peers");
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  if (a->m == 0 || a->n == 0) return TPMM_SUCCESS;
  eng_t E = {.p = p, .op = op, .W = a->W, .r = p->g->rank, .C = tpi_red_chunks(p), .all = tpi_red_all(p)};
  E.crowded = tpi_group_crowded(p->g);
  E.deadline = tpi_deadline();
  E.own = tpi_red_unit_offset(p, E.C, E.r, E.C);
  E.nreq = 4 * E.W * E.C;
  E.req = p->red.reqs;
  E.done = (int *)(E.req + E.nreq);
  for (int i = 0; i < E.nreq; i++) E.req[i] = MPI_REQUEST_NULL;
  const int staged = E.all && a->out.rs != a->n;
  E.D = staged ? p->red.stage : a->out.data;
  tpmm_status_t st = steps(&E);
  if (st != TPMM_SUCCESS) { /* nothing may still write into the workspaces */
    for (int i = 0; i < E.nreq; i++)
      if (E.req[i] != MPI_REQUEST_NULL) MPI_Cancel(&E.req[i]), MPI_Request_free(&E.req[i]);
    return st;
  }
  if (staged) tpi_red_put(p, E.D, a->m, 0);
  return TPMM_SUCCESS;
}

static int usable(const tpi_plan_t *p, char *why, size_t len) {
  const tpi_call_t *a = &p->a;
  const int64_t block = (a->m + a->W - 1) / a->W + 1;
  if (block * a->n > INT_MAX) {
    snprintf(why, len, "a block of %lld rows of n=%lld fp32 partials exceeds MPI's int count", (long long)block,
             (long long)a->n);
    return TPI_UNUSABLE;
  }
  return 10; /* runs anywhere; across nodes unless a better-suited schedule can run */
}

/* Each rank's partials leave one after another on its link, each once its
 * unit is multiplied (a message costs alpha plus a poll's lag); the CPU does
 * every GEMM and every sum; the last chunk's sum (all_reduce: and its
 * rounded rows' messages) comes after the link's last partial. all_reduce's
 * earlier rounded messages share the link with the partials. */
static double simulate(const tpi_plan_t *p, const tpi_model_t *m, int C) {
  const tpi_call_t *a = &p->a;
  const int W = a->W, r = p->g->rank, all = tpi_red_all(p);
  const double alpha = m->alpha + m->lag, row_f32 = (double)a->n * 4.0 / m->beta;
  const double row_out = (double)a->n * (double)a->esize / m->beta;
  double cpu = 0, link = 0, first = -1, busy = 0, rounded = 0;
  int64_t lo, hi;
  for (int c = 0; c < C; c++)
    for (int t = 1; t <= W; t++) {
      const int q = (r + t) % W;
      tpi_red_unit(p, C, q, c, &lo, &hi);
      cpu += m->g0 + (double)(hi - lo) * m->g1;
      if (q == r) {
        cpu += tpi_red_sum_time(p, hi - lo);
        rounded = all ? (W - 1) * (alpha + (double)(hi - lo) * row_out) : 0;
        busy += rounded;
        continue;
      }
      const double x = alpha + (double)(hi - lo) * row_f32;
      if (first < 0) first = cpu;
      link = fmax(link, cpu) + x;
      busy += x;
    }
  tpi_red_unit(p, C, r, C - 1, &lo, &hi);
  const double end = fmax(link + tpi_red_sum_time(p, hi - lo) + rounded, first + busy);
  return fmax(cpu, end) + m->fixed;
}

static double predict(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  static const int ladder[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
  const int64_t rows = tpi_red_all(p) ? p->a.m : p->a.m / p->a.W;
  if (*chunks > 0) return simulate(p, m, *chunks);
  double best = 1e30;
  *chunks = 1;
  for (size_t i = 0; i < sizeof ladder / sizeof ladder[0] && ladder[i] <= (rows > 0 ? rows : 1); i++) {
    const double t = simulate(p, m, ladder[i]);
    if (t < best * 0.98) best = t, *chunks = ladder[i]; /* more chunks only for a clear gain */
  }
  return best;
}

const tpi_algo_t tpi_algo_red_ring = {TPMM_ALGO_RING, true, usable, predict, run};
