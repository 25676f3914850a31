/*
 * algo_ring.c — "ring" and "bidir_ring": chunked ring allgather with the
 * GEMM of chunk i running while chunk i+1 travels. Made for groups that span
 * nodes (works everywhere).
 *
 * Description: every rank's shard is cut into C chunks (plan.c picks C). A
 *   chunk travels around the ring hop by hop; each rank multiplies a chunk as
 *   soon as it has arrived and forwards it to the next rank. The local shard
 *   is multiplied first, which hides the first transfers. bidir_ring sends
 *   the first half of each shard's chunks clockwise and the second half
 *   counter-clockwise (XLA's bidirectional collective matmul), so each link
 *   carries traffic both ways and a shard crosses at most W/2 hops.
 * Progress: MPI moves nothing unless called. Either the compute thread polls
 *   (ring_poll) between GEMM tiles of p->tile rows (~1 ms of work each), or,
 *   with TPMM_PROGRESS_THREAD=1, a thread owns every MPI request and polls,
 *   and the compute thread only reads per-chunk arrival flags. In both modes
 *   exactly one thread touches the requests.
 * Steps:
 *   1. Post receives for every chunk of every other shard (unique tags
 *      shard*C + chunk), and sends of the local chunks to the neighbours.
 *   2. Copy the local shard into gather_out; GEMM the local chunks.
 *   3. Until all chunks are done: GEMM any arrived chunk (shard order
 *      r-1, r-2, ... preferred); copy it to gather_out if it was received
 *      elsewhere; poll, which forwards arrived chunks that still have hops.
 *   4. Wait for the sends. On timeout: cancel everything, mark the group broken.
 * Memory: receives land in their final place: gather_out when it is dense
 *   and wanted, else a workspace of m*W*k elements. 3 bytes + 2 requests per
 *   chunk of bookkeeping.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/trace.h"
#include "pipeline.h"
#include "ring.h"


static size_t row_bytes(const ring_t *R) { return (size_t)R->p->a.k * R->p->a.esize; }
/* Output row block (group rank) of ring member j's shard. */
static int64_t out_row(const ring_t *R, int j, int c) {
  return (int64_t)(R->out_rank ? R->out_rank[j] : j) * R->p->a.m + tpi_chunk_lo(R->p->a.m, R->C, c);
}

/* Direction of chunk c: +1 clockwise (to the right), -1 counter-clockwise. */
static int dir_of(const ring_t *R, int c) { return R->bidir && c >= (R->C + 1) / 2 ? -1 : +1; }
static int right(const ring_t *R) { return (R->r + 1) % R->W; }
static int left(const ring_t *R) { return (R->r + R->W - 1) % R->W; }
/* Hops chunk (j, c) has made when it reaches this rank. */
static int hops(const ring_t *R, int j, int c) {
  return dir_of(R, c) > 0 ? (R->r - j + R->W) % R->W : (j - R->r + R->W) % R->W;
}

static char *chunk_ptr(const ring_t *R, int j, int c) {
  return R->G + row_bytes(R) * (size_t)(j * R->p->a.m + tpi_chunk_lo(R->p->a.m, R->C, c));
}
static int chunk_rows(const ring_t *R, int c) {
  return (int)(tpi_chunk_lo(R->p->a.m, R->C, c + 1) - tpi_chunk_lo(R->p->a.m, R->C, c));
}

static tpmm_status_t post_send(ring_t *R, const char *buf, int j, int c) {
  int rows = chunk_rows(R, c);
  int to = dir_of(R, c) > 0 ? right(R) : left(R);
  int rc = MPI_Isend(buf, (int)(rows * row_bytes(R)), MPI_BYTE, to, j * R->C + c, R->comm,
                     &R->send[j * R->C + c]);
  return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, R->op, "MPI_Isend of a chunk");
}

/* Drive MPI: detect arrived chunks, forward those with hops left, and let
 * pending sends progress. Called by exactly one thread. */
tpmm_status_t tpi_ring_poll(void *ctx) {
  ring_t *R = ctx;
  if (R->pending_recv > 0) {
    int *idx = R->done_idx, n = 0; /* Testsome may complete all W*C at once */
    int rc = MPI_Testsome(R->W * R->C, R->recv, &n, idx, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, R->op, "MPI_Testsome on chunk receives");
    if (n == MPI_UNDEFINED) n = 0;
    for (int i = 0; i < n; i++) {
      int j = idx[i] / R->C, c = idx[i] % R->C;
      if (hops(R, j, c) < R->W - 1) TPI_CHECK(post_send(R, chunk_ptr(R, j, c), j, c));
      __atomic_store_n(&R->arrived[idx[i]], 1, __ATOMIC_RELEASE);
      if (R->on_arrive) R->on_arrive(R->arrive_ctx, j, c);
      R->pending_recv--;
    }
  }
  int flag;
  int rc = MPI_Testall(R->W * R->C, R->send, &flag, MPI_STATUSES_IGNORE);
  return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, R->op, "MPI_Testall on chunk sends");
}

void tpi_ring_cancel(ring_t *R) {
  for (int i = 0; i < R->W * R->C; i++) {
    if (R->recv[i] != MPI_REQUEST_NULL) MPI_Cancel(&R->recv[i]), MPI_Request_free(&R->recv[i]);
    if (R->send[i] != MPI_REQUEST_NULL) MPI_Cancel(&R->send[i]), MPI_Request_free(&R->send[i]);
  }
}

tpmm_status_t tpi_ring_timed_out(ring_t *R, const char *what) {
  R->p->g->broken = true;
  return tpi_fail(TPMM_ERR_TIMEOUT, "%s: timed out after %lld ms waiting for %s on group \"%s\"", R->op,
                  (long long)tpi_params.timeout_ms, what, R->p->g->name);
}

static void *progress_loop(ring_t *R);
static void *progress_main(void *arg) {
  ring_t *R = arg;
  progress_loop(R);
  __atomic_store_n(&R->finished, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void *progress_loop(ring_t *R) {
  struct timespec nap = {0, 20000}; /* 20 us: MPI gets called ~50x per ms */
  for (;;) {
    tpmm_status_t st = tpi_ring_poll(R);
    if (st != TPMM_SUCCESS) {
      snprintf(R->thread_msg, sizeof R->thread_msg, "%s", tpmm_last_error());
      __atomic_store_n(&R->thread_status, st, __ATOMIC_RELEASE);
      return NULL;
    }
    int flag = 0;
    if (R->pending_recv == 0) MPI_Testall(R->W * R->C, R->send, &flag, MPI_STATUSES_IGNORE);
    if (flag || __atomic_load_n(&R->stop, __ATOMIC_ACQUIRE)) return NULL;
    nanosleep(&nap, NULL);
  }
}

/* Wait (polling or watching the progress thread) until chunk idx arrived. */
tpmm_status_t tpi_ring_wait_chunk(ring_t *R, int idx) {
  double t0 = tpi_now();
  while (!__atomic_load_n(&R->arrived[idx], __ATOMIC_ACQUIRE)) {
    if (R->p->progress_thread) {
      tpmm_status_t ts = __atomic_load_n(&R->thread_status, __ATOMIC_ACQUIRE);
      if (ts != TPMM_SUCCESS) return tpi_fail(ts, "%s", R->thread_msg);
      sched_yield();
    } else {
      TPI_CHECK(tpi_ring_poll(R));
    }
    if (R->deadline > 0 && tpi_now() > R->deadline) return tpi_ring_timed_out(R, "a chunk from a neighbour");
  }
  tpi_trace(TPI_EV_WAIT, t0, idx / R->C, idx % R->C);
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_ring_start(ring_t *R) {
  const int W = R->W, C = R->C, r = R->r;
  for (int j = 0; j < W; j++) {
    if (j == r) continue;
    for (int c = 0; c < C; c++) {
      int from = dir_of(R, c) > 0 ? left(R) : right(R);
      int rc = MPI_Irecv(chunk_ptr(R, j, c), (int)(chunk_rows(R, c) * row_bytes(R)), MPI_BYTE, from, j * C + c,
                         R->comm, &R->recv[j * C + c]);
      if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, R->op, "MPI_Irecv of a chunk");
      R->pending_recv++;
    }
  }
  for (int c = 0; c < C && W > 1; c++)
    TPI_CHECK(post_send(R, R->local + row_bytes(R) * (size_t)tpi_chunk_lo(R->p->a.m, C, c), r, c));
  if (R->p->progress_thread && W > 1) {
    if (pthread_create(&R->thread, NULL, progress_main, R) != 0)
      return tpi_fail(TPMM_ERR_INTERNAL, "%s: could not start the progress thread", R->op);
    R->thread_started = 1;
  }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_ring_compute(ring_t *R) {
  tpi_plan_t *p = R->p;
  const tpi_agmm_t *a = &p->a;
  const int W = R->W, C = R->C, r = R->r;
  tpi_poll_fn poll = R->thread_started ? NULL : tpi_ring_poll;
  /* the local shard first: it hides the first transfers */
  if (a->gather_output) {
    double t0 = tpi_now();
    tpi_copy_rows(a, R->local, a->m, out_row(R, r, 0));
    tpi_trace(TPI_EV_COPY, t0, r, a->m);
  }
  for (int c = 0; c < C; c++)
    TPI_CHECK(tpi_gemm_rows(p, R->local + row_bytes(R) * (size_t)tpi_chunk_lo(a->m, C, c), chunk_rows(R, c),
                            out_row(R, r, c), poll, R));
  /* then the others, in the order they are expected to arrive: clockwise
   * chunks of shard r-s and counter-clockwise chunks of shard r+s at step s */
  for (int s = 1; s < W; s++)
    for (int c = 0; c < C; c++) {
      int j = dir_of(R, c) > 0 ? (r - s + W) % W : (r + s) % W;
      if (hops(R, j, c) != s) continue;
      TPI_CHECK(tpi_ring_wait_chunk(R, j * C + c));
      TPI_CHECK(tpi_gemm_rows(p, chunk_ptr(R, j, c), chunk_rows(R, c), out_row(R, j, c), poll, R));
      if (a->gather_output && R->G != a->gout.data) {
        double t0 = tpi_now();
        tpi_copy_rows(a, chunk_ptr(R, j, c), chunk_rows(R, c), out_row(R, j, c));
        tpi_trace(TPI_EV_COPY, t0, j, c);
      }
    }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_ring_finish(ring_t *R, tpmm_status_t st) {
  const int W = R->W, C = R->C;
  if (R->thread_started) {
    if (st != TPMM_SUCCESS) __atomic_store_n(&R->stop, 1, __ATOMIC_RELEASE);
    /* the thread exits when all sends are done, or on stop/error */
    while (st == TPMM_SUCCESS) {
      tpmm_status_t ts = __atomic_load_n(&R->thread_status, __ATOMIC_ACQUIRE);
      if (ts != TPMM_SUCCESS) {
        st = tpi_fail(ts, "%s", R->thread_msg);
        break;
      }
      if (__atomic_load_n(&R->finished, __ATOMIC_ACQUIRE)) break;
      if (R->deadline > 0 && tpi_now() > R->deadline) {
        __atomic_store_n(&R->stop, 1, __ATOMIC_RELEASE);
        st = tpi_ring_timed_out(R, "the sends to the neighbours");
        break;
      }
      sched_yield();
    }
    pthread_join(R->thread, NULL);
    R->thread_started = 0;
  }
  while (st == TPMM_SUCCESS) {
    int flag;
    int rc = MPI_Testall(W * C, R->send, &flag, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) st = tpi_mpi_fail(rc, R->op, "MPI_Testall on chunk sends");
    if (rc != MPI_SUCCESS || flag) break;
    if (R->deadline > 0 && tpi_now() > R->deadline) st = tpi_ring_timed_out(R, "the sends to the neighbours");
    sched_yield();
  }
  if (st != TPMM_SUCCESS) tpi_ring_cancel(R);
  return st;
}

tpmm_status_t tpi_ring_init(ring_t *R, tpi_plan_t *p, const char *op, MPI_Comm comm, int W, int r, int bidir,
                            char *G, const char *local) {
  memset(R, 0, sizeof *R);
  R->p = p;
  R->op = op;
  R->comm = comm;
  R->W = W;
  R->r = r;
  R->C = p->chunks;
  R->bidir = bidir && W > 2 && R->C >= 2;
  R->deadline = tpi_deadline();
  R->G = G;
  R->local = local;
  size_t n = (size_t)W * (size_t)R->C;
  R->recv = malloc(n * sizeof(MPI_Request));
  R->send = malloc(n * sizeof(MPI_Request));
  R->arrived = calloc(n, sizeof(int));
  R->done_idx = malloc(n * sizeof(int));
  if (!R->recv || !R->send || !R->arrived || !R->done_idx) {
    tpi_ring_free(R);
    return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for %zu chunk requests", op, n);
  }
  for (size_t i = 0; i < n; i++) R->recv[i] = R->send[i] = MPI_REQUEST_NULL;
  return TPMM_SUCCESS;
}

void tpi_ring_free(ring_t *R) {
  free(R->recv);
  free(R->send);
  free(R->arrived);
  free(R->done_idx);
  R->recv = R->send = NULL;
  R->arrived = R->done_idx = NULL;
}

static tpmm_status_t ring_common(tpi_plan_t *p, const char *op, int bidir) {
  const tpi_agmm_t *a = &p->a;
  if (a->m * a->W == 0) return TPMM_SUCCESS;
  const char *local;
  TPI_CHECK(tpi_local_shard(p, op, &local));
  char *G = a->gather_output && a->gout.rs == a->k ? a->gout.data : p->gbuf;
  ring_t R;
  TPI_CHECK(tpi_ring_init(&R, p, op, p->g->comm, a->W, p->g->rank, bidir, G, local));
  tpmm_status_t st = tpi_ring_start(&R);
  if (st == TPMM_SUCCESS) st = tpi_ring_compute(&R);
  st = tpi_ring_finish(&R, st);
  tpi_ring_free(&R);
  return st;
}

tpmm_status_t tpi_algo_ring(tpi_plan_t *p, const char *op) { return ring_common(p, op, 0); }
tpmm_status_t tpi_algo_bidir_ring(tpi_plan_t *p, const char *op) { return ring_common(p, op, 1); }
