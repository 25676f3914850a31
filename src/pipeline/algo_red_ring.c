/*
 * algo_red_ring.c — "ring" of the reduce operators: partial blocks sent as
 * they are produced, for groups that span nodes (works everywhere).
 *
 * Description: the GEMM produces the units of chunk c in the order they are
 *   sent (owners r+1, ..., r-1, then the own unit) and each remote unit
 *   leaves with MPI_Isend while the next one is multiplied (reduce_scatter
 *   with C > 1 multiplies its own block last, in one call, once every remote
 *   unit of every chunk is out: tpi_red_own_last); MPI is polled
 *   between GEMM tiles of p->tile rows (it moves no data otherwise). The
 *   sends go straight to the owner (pairwise), not hop by hop: a ring that
 *   adds as it forwards would sum in ring order, and the contract is
 *   group-rank order. Every rank still sends each of its (W-1) remote blocks
 *   once, as a ring reduce-scatter does. An owner receives its units'
 *   partials into one slot per peer (early arrivals wait there), and sums a
 *   unit in rank order once all its W partials are in (tpi_red_sum), between
 *   chunks while later chunks are multiplied (reduce_scatter with C > 1:
 *   after its own block). matmul_all_reduce: the owner
 *   sends the rounded unit to every peer at once (pairwise allgather), which
 *   lands straight in a dense output.
 * Steps:
 *   1. Post the receives: every peer's partial of each own unit (tag c), and,
 *      all_reduce, every owner's rounded unit (tag C + c).
 *   2. For chunk c: GEMM unit (q, c) for q = r+1, ..., r-1 and MPI_Isend it to
 *      q; GEMM the own unit (r, c). Then sum every own unit whose partials
 *      are all in, in chunk order (all_reduce: send it to every peer).
 *      reduce_scatter with C > 1: the own units wait, and after the last
 *      chunk one GEMM call multiplies them all.
 *   3. Wait for the rest of the own units' partials, sum them.
 *   4. all_reduce: wait for the rounded units; copy from the staging rows
 *      when the output is strided. Wait for the sends.
 *   Waits poll MPI against TPMM_TIMEOUT_MS (on timeout every request is
 *   cancelled and the group marked broken); they yield the CPU between polls
 *   where tpi_group_link_yields says so (crowded, or a link's kernel work
 *   would find no idle CPU).
 * Progress: one driver owns every MPI request (driver()): the compute
 *   thread itself between GEMM tiles and in its waits, or, with the
 *   progress thread (TPMM_PROGRESS_THREAD; across nodes chosen where the
 *   transfer is at least a quarter of a GEMM of 20 ms or more, model.c),
 *   a thread that loops on it, napping while the compute thread multiplies.
 *   The compute thread then makes no MPI call after the receives are
 *   posted: it queues its sends (a FIFO of request indices, posted in order
 *   by the driver) and reads per-chunk counters of pending receives.
 * Memory: m*n fp32 partials (sent from in place), W slots of this rank's
 *   rows of fp32 received, 4*W*C requests with their bookkeeping; all_reduce
 *   into a strided output, m*n elements of staging.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
  int *done;        /* [nreq] MPI_Testsome's indices (driver) */
  int *queue;       /* [2*W*C] sends to post, as request indices, in order */
  int *pending;     /* [C] partial receives of each chunk not complete yet */
  int qhead, qtail; /* the queue: qtail written by compute, qhead by the driver */
  int rpending;     /* rounded receives not complete yet */
  int inflight;     /* sends posted and not complete (driver) */
  int closed;       /* compute has queued its last send */
  char *D;          /* all_reduce: the rounded rows, dense (the output or the staging) */
  /* progress thread */
  pthread_t thread;
  int thread_on, idle, stop, finished;
  tpmm_status_t thread_status;
  char thread_msg[256];
} eng_t;

enum { PRECV, RRECV, PSEND, RSEND };
static int ri(const eng_t *E, int kind, int c, int j) { return (kind * E->C + c) * E->W + j; }

size_t tpi_red_reqs_bytes(const tpi_call_t *a, int C) {
  const size_t u = (size_t)a->W * (size_t)C;
  return 4 * u * (sizeof(MPI_Request) + sizeof(int)) + (2 * u + (size_t)C) * sizeof(int);
}

/* Peer j's partial of the own unit of chunk c, in j's receive slot. */
static float *slot(const eng_t *E, int j, int c) {
  const tpi_plan_t *p = E->p;
  return p->red.recv + (size_t)((j * E->own + tpi_red_unit_offset(p, E->C, E->r, c)) * p->a.n);
}

/* Post the send behind request index i (driver). */
static tpmm_status_t post_send(eng_t *E, int i) {
  const tpi_call_t *a = &E->p->a;
  const int kind = i / (E->W * E->C), c = i / E->W % E->C, q = i % E->W;
  int64_t lo, hi;
  tpi_red_unit(E->p, E->C, kind == PSEND ? q : E->r, c, &lo, &hi);
  const double t0 = tpi_now();
  int rc = kind == PSEND ? MPI_Isend(E->p->red.part + lo * a->n, (int)((hi - lo) * a->n), MPI_FLOAT, q, c,
                                     E->p->g->comm, &E->req[i])
                         : MPI_Isend(E->D + (size_t)(lo * a->n) * a->esize, (int)((hi - lo) * a->n * (int64_t)a->esize),
                                     MPI_BYTE, q, E->C + c, E->p->g->comm, &E->req[i]);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, E->op, "MPI_Isend of a block");
  tpi_trace(TPI_EV_SEND, t0, q, c);
  E->inflight++;
  return TPMM_SUCCESS;
}

/* Drive MPI (one thread only): post queued sends, complete whatever has
 * arrived or left, and count it down. */
static tpmm_status_t driver(void *ctx) {
  eng_t *E = ctx;
  for (const int tail = __atomic_load_n(&E->qtail, __ATOMIC_ACQUIRE); E->qhead < tail;)
    TPI_CHECK(post_send(E, E->queue[E->qhead++]));
  int n = 0;
  int rc = MPI_Testsome(E->nreq, E->req, &n, E->done, MPI_STATUSES_IGNORE);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, E->op, "MPI_Testsome on the ring's messages");
  for (int i = 0; i < (n == MPI_UNDEFINED ? 0 : n); i++) {
    const int kind = E->done[i] / (E->W * E->C);
    if (kind == PRECV) __atomic_sub_fetch(&E->pending[E->done[i] / E->W % E->C], 1, __ATOMIC_RELEASE);
    if (kind == RRECV) __atomic_sub_fetch(&E->rpending, 1, __ATOMIC_RELEASE);
    if (kind >= PSEND) E->inflight--;
  }
  return TPMM_SUCCESS;
}

static int sends_done(const eng_t *E) {
  return __atomic_load_n(&E->closed, __ATOMIC_ACQUIRE) && E->qhead == E->qtail && E->inflight == 0;
}

static void *progress_main(void *arg) {
  eng_t *E = arg;
  const long us = E->p->nap_us; /* nap while the compute thread multiplies (ring's measured choice) */
  const struct timespec nap = {us / 1000000, (us % 1000000) * 1000L};
  for (;;) {
    tpmm_status_t st = driver(E);
    if (st != TPMM_SUCCESS) {
      snprintf(E->thread_msg, sizeof E->thread_msg, "%s", tpmm_last_error());
      __atomic_store_n(&E->thread_status, st, __ATOMIC_RELEASE);
      break;
    }
    if ((sends_done(E) && __atomic_load_n(&E->rpending, __ATOMIC_ACQUIRE) == 0) ||
        __atomic_load_n(&E->stop, __ATOMIC_ACQUIRE))
      break;
    if (!__atomic_load_n(&E->idle, __ATOMIC_ACQUIRE))
      nanosleep(&nap, NULL);
    else if (E->crowded)
      sched_yield();
  }
  __atomic_store_n(&E->finished, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* Queue a send (compute thread); without the thread, post it now. */
static tpmm_status_t enqueue(eng_t *E, int i) {
  E->queue[E->qtail] = i;
  __atomic_store_n(&E->qtail, E->qtail + 1, __ATOMIC_RELEASE);
  return E->thread_on ? TPMM_SUCCESS : driver(E);
}

/* Until *counter is 0 (or, counter NULL, the sends are done): drive MPI or
 * watch the thread, against the deadline. */
static tpmm_status_t wait_for(eng_t *E, const int *counter, const char *what) {
  const double t0 = tpi_now();
  __atomic_store_n(&E->idle, 1, __ATOMIC_RELEASE);
  tpmm_status_t st = TPMM_SUCCESS;
  /* the sends: the thread's own counts, so wait for it to finish */
  while (st == TPMM_SUCCESS && (counter        ? __atomic_load_n(counter, __ATOMIC_ACQUIRE) > 0
                                : E->thread_on ? !__atomic_load_n(&E->finished, __ATOMIC_ACQUIRE)
                                               : !sends_done(E))) {
    st = E->thread_on ? __atomic_load_n(&E->thread_status, __ATOMIC_ACQUIRE) : driver(E);
    if (st != TPMM_SUCCESS && E->thread_on) st = tpi_fail(st, "%s", E->thread_msg);
    if (st == TPMM_SUCCESS && E->deadline > 0 && tpi_now() > E->deadline) {
      E->p->g->broken = true;
      st = tpi_fail(TPMM_ERR_TIMEOUT, "%s: timed out after %lld ms waiting for %s on group \"%s\"", E->op,
                    (long long)tpi_params.timeout_ms, what, E->p->g->name);
    }
    if (E->thread_on || E->crowded) sched_yield();
  }
  __atomic_store_n(&E->idle, 0, __ATOMIC_RELEASE);
  tpi_trace(TPI_EV_WAIT, t0, -1, -1);
  return st;
}

static tpmm_status_t post_receives(eng_t *E) {
  const tpi_call_t *a = &E->p->a;
  MPI_Comm comm = E->p->g->comm;
  for (int c = 0; c < E->C; c++)
    for (int j = 0; j < E->W; j++) {
      int64_t lo, hi;
      int rc = MPI_SUCCESS;
      if (j == E->r) continue;
      tpi_red_unit(E->p, E->C, E->r, c, &lo, &hi);
      if (hi > lo) {
        rc = MPI_Irecv(slot(E, j, c), (int)((hi - lo) * a->n), MPI_FLOAT, j, c, comm, &E->req[ri(E, PRECV, c, j)]);
        E->pending[c]++;
      }
      tpi_red_unit(E->p, E->C, j, c, &lo, &hi);
      if (rc == MPI_SUCCESS && E->all && hi > lo) {
        rc = MPI_Irecv(E->D + (size_t)(lo * a->n) * a->esize, (int)((hi - lo) * a->n * (int64_t)a->esize), MPI_BYTE, j,
                       E->C + c, comm, &E->req[ri(E, RRECV, c, j)]);
        E->rpending++;
      }
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
  tpi_red_sum(p, parts, hi - lo, E->D + (size_t)(lo * a->n) * a->esize, a->n);
  for (int t = 1; t < E->W && hi > lo; t++) TPI_CHECK(enqueue(E, ri(E, RSEND, c, (E->r + t) % E->W)));
  return TPMM_SUCCESS;
}

/* Steps 2-4: the chunks (each unit sent once multiplied, then the own units
 * whose partials are all in summed; own_last: the own block after them),
 * the remaining sums, the waits. */
static tpmm_status_t compute(eng_t *E, const char *A) {
  tpi_plan_t *p = E->p;
  tpi_poll_fn poll = E->thread_on ? NULL : driver;
  const int own_last = tpi_red_own_last(p, E->C);
  int summed = 0;
  int64_t lo, hi;
  for (int c = 0; c < E->C; c++) {
    const int once = tpi_red_chunk_once(p, E->C, c, &lo, &hi);
    if (once) TPI_CHECK(tpi_red_gemm(p, A, lo, hi, p->red.part + lo * p->a.n, poll, E));
    for (int t = 1; t <= E->W; t++) {
      const int q = (E->r + t) % E->W;
      if (q == E->r && own_last) continue;
      tpi_red_unit(p, E->C, q, c, &lo, &hi);
      if (!once) TPI_CHECK(tpi_red_gemm(p, A, lo, hi, p->red.part + lo * p->a.n, poll, E));
      if (q != E->r && hi > lo) TPI_CHECK(enqueue(E, ri(E, PSEND, c, q)));
    }
    if (!E->thread_on) TPI_CHECK(driver(E));
    while (!own_last && summed <= c && __atomic_load_n(&E->pending[summed], __ATOMIC_ACQUIRE) == 0)
      TPI_CHECK(sum_own(E, summed++));
  }
  if (own_last) { /* the own block in one call, while the last remote units travel */
    tpi_red_unit(p, 1, E->r, 0, &lo, &hi);
    TPI_CHECK(tpi_red_gemm(p, A, lo, hi, p->red.part + lo * p->a.n, poll, E));
  }
  for (; summed < E->C; summed++) {
    TPI_CHECK(wait_for(E, &E->pending[summed], "the partial blocks of the peers"));
    TPI_CHECK(sum_own(E, summed));
  }
  __atomic_store_n(&E->closed, 1, __ATOMIC_RELEASE);
  TPI_CHECK(wait_for(E, &E->rpending, "the reduced blocks of the peers"));
  return wait_for(E, NULL, "the sends to the peers");
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  if (a->m == 0 || a->n == 0) return TPMM_SUCCESS;
  eng_t E = {.p = p, .op = op, .W = a->W, .r = p->g->rank, .C = tpi_red_chunks(p), .all = tpi_red_all(p)};
  E.crowded = tpi_group_link_yields(p->g);
  E.deadline = tpi_deadline();
  E.own = tpi_red_unit_offset(p, E.C, E.r, E.C);
  E.nreq = 4 * E.W * E.C;
  E.req = p->red.reqs;
  E.done = (int *)(E.req + E.nreq);
  E.queue = E.done + E.nreq;
  E.pending = E.queue + 2 * E.W * E.C;
  for (int i = 0; i < E.nreq; i++) E.req[i] = MPI_REQUEST_NULL;
  memset(E.pending, 0, sizeof(int) * (size_t)E.C);
  E.D = E.all && a->out.rs != a->n ? p->red.stage : a->out.data;
  const char *A;
  tpmm_status_t st = tpi_local_shard(p, op, &A);
  if (st == TPMM_SUCCESS) st = post_receives(&E);
  /* no thread (out of threads): the compute thread drives MPI itself */
  if (st == TPMM_SUCCESS && p->progress_thread && E.W > 1)
    E.thread_on = !tpi_debug_fail("the progress thread") && pthread_create(&E.thread, NULL, progress_main, &E) == 0;
  if (st == TPMM_SUCCESS) st = compute(&E, A);
  if (E.thread_on) {
    __atomic_store_n(&E.stop, 1, __ATOMIC_RELEASE);
    pthread_join(E.thread, NULL);
  }
  if (st != TPMM_SUCCESS) { /* nothing may still write into the workspaces */
    for (int i = 0; i < E.nreq; i++)
      if (E.req[i] != MPI_REQUEST_NULL) MPI_Cancel(&E.req[i]), MPI_Request_free(&E.req[i]);
    return st;
  }
  if (E.D != a->out.data) tpi_red_put(p, E.D, a->m, 0);
  return TPMM_SUCCESS;
}

static int usable(const tpi_plan_t *p, char *why, size_t len) {
  const tpi_call_t *a = &p->a;
  const int64_t block = (a->m + a->W - 1) / a->W + 1;
  if (block * a->n > INT_MAX) {
    if (len)
      snprintf(why, len, "a block of %lld rows of n=%lld fp32 partials exceeds MPI's int count", (long long)block,
               (long long)a->n);
    return TPI_UNUSABLE;
  }
  return 10; /* runs anywhere; across nodes unless a better-suited schedule can run */
}

/* Each rank's partials leave one after another on its link, each once its
 * unit is multiplied and a poll has answered (the lag: paid when the link
 * waits for the message, hidden behind the one before when it is busy, as
 * posted sends queue); the CPU does every GEMM and every sum; the last
 * chunk's sum (all_reduce: and its rounded rows' messages) comes after the
 * link's last partial. all_reduce's earlier rounded messages share the link
 * with the partials. Each byte sent or received takes m->cpu_byte of the CPU. */
static double simulate(const tpi_plan_t *p, const tpi_model_t *m, int C) {
  const tpi_call_t *a = &p->a;
  const int W = a->W, r = p->g->rank, all = tpi_red_all(p);
  const double row_f32 = (double)a->n * 4.0 / m->beta;
  const double row_out = (double)a->n * (double)a->esize / m->beta;
  const double cpu_f32 = (double)a->n * 4.0 * m->cpu_byte, cpu_out = (double)a->n * (double)a->esize * m->cpu_byte;
  const int own_last = tpi_red_own_last(p, C);
  double cpu = 0, link = 0, first = -1, busy = 0, rounded = 0;
  int64_t lo, hi;
  for (int c = 0; c < C; c++) {
    const int once = tpi_red_chunk_once(p, C, c, &lo, &hi);
    if (once) cpu += tpi_red_gemm_time(p, m, hi - lo);
    for (int t = 1; t <= W; t++) {
      const int q = (r + t) % W;
      if (q == r && own_last) continue;
      tpi_red_unit(p, C, q, c, &lo, &hi);
      if (!once) cpu += tpi_red_gemm_time(p, m, hi - lo);
      if (q == r) {
        cpu += tpi_red_sum_time(p, hi - lo) + (W - 1) * (double)(hi - lo) * (cpu_f32 + (all ? 2 * cpu_out : 0));
        rounded = all ? m->lag + (W - 1) * (m->alpha + (double)(hi - lo) * row_out) : 0; /* one burst */
        busy += rounded;
        continue;
      }
      const double x = m->alpha + (double)(hi - lo) * row_f32;
      cpu += (double)(hi - lo) * cpu_f32;
      if (first < 0) first = cpu + m->lag;
      link = fmax(link, cpu + m->lag) + x;
      busy += x;
    }
  }
  if (own_last) { /* the own block's call and sums, once the remote units are sent */
    tpi_red_unit(p, 1, r, 0, &lo, &hi);
    cpu += tpi_red_gemm_time(p, m, hi - lo) + tpi_red_sum_time(p, hi - lo) + (W - 1) * (double)(hi - lo) * cpu_f32;
  }
  tpi_red_unit(p, C, r, C - 1, &lo, &hi);
  const double end = fmax(link + tpi_red_sum_time(p, hi - lo) + rounded, first + busy);
  return fmax(cpu, end) + m->fixed;
}

static double predict(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  return tpi_red_best_chunks(p, m, chunks, simulate);
}

const tpi_algo_t tpi_algo_red_ring = {TPMM_ALGO_RING, true, usable, predict, run};
