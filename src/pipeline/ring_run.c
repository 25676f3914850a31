/*
 * ring_run.c — the chunked ring engine of ring.h at work, shared by the
 * ring schedules (algo_ring.c) and hier's rails (algo_hier.c).
 *
 * Description: every rank's shard is cut into C chunks (plan.c picks C;
 *   shards of different sizes each into C, tpi_shard_chunk_lo, so a short
 *   shard has short or empty chunks, which arrive at once). A
 *   chunk travels around the ring hop by hop; each rank multiplies a chunk as
 *   soon as it has arrived and forwards it to the next rank. The local shard
 *   is multiplied first, which hides the first transfers. bidir_ring sends
 *   the first half of each shard's chunks clockwise and the second half
 *   counter-clockwise (XLA's bidirectional collective matmul), so each link
 *   carries traffic both ways and a shard crosses at most W/2 hops.
 * Progress: MPI moves nothing unless called. Either the compute thread polls
 *   (tpi_ring_poll) between GEMM tiles of p->tile rows (~1 ms of work each), or,
 *   with TPMM_PROGRESS_THREAD=1, a thread owns every MPI request and polls,
 *   and the compute thread only reads per-chunk arrival flags. In both modes
 *   exactly one thread touches the requests. A rank that waits polls without
 *   pause, except where it must give its CPU away (tpi_group_link_yields: a
 *   crowded machine, where a peer on the same CPUs must get to send, RESULTS.md
 *   section 10; or a link whose kernel work finds no idle CPU, section 15):
 *   there it yields between polls.
 * Steps:
 *   1. Post receives for every chunk of every other shard (unique tags
 *      shard*C + chunk), and sends of the local chunks to the neighbours.
 *   2. Copy the local shard into gather_out; GEMM the local chunks.
 *   3. Until all chunks are done: GEMM the chunks in the order they are
 *      expected to arrive (shard r-1, r-2, ...), each from its leading rows
 *      that have arrived while the rest of it travels (whole messages,
 *      wait_rows), so the last wait ends with one message's GEMM; copy a
 *      chunk to gather_out if it was received elsewhere; poll, which forwards
 *      arrived messages that still have hops.
 *   4. Wait for the sends. On timeout: cancel everything, mark the group broken.
 *   A GEMM that fails (tpi_gemm_rows) does not stop steps 2-4: the rank
 *   keeps receiving and forwarding so that its peers finish, and reports
 *   the failure when the data has moved (a progress thread that cannot be
 *   started is replaced by polls).
 * Messages: a chunk travels as messages of at most TPMM_SEGMENT_BYTES (the
 *   largest rank's value, agreed: it shapes the tags), so a forwarded chunk can leave
 *   before all of it has arrived. Send window: at most TPMM_SEND_WINDOW
 *   (default 2; local) messages are in flight per direction; the rest wait in
 *   a FIFO and are posted by the polls as earlier ones complete. Posting all
 *   at once let MPI interleave them on the wire, so every chunk of a shard
 *   arrived at the end of the transfer and the ring hid only the local
 *   shard's GEMM (E ~ 0.5 at 1 Gbit); in order, chunk c arrives after
 *   (c+1)/C of the transfer. Two rather than one, so that the next message's
 *   rendezvous is under way when one completes (RESULTS.md section 7).
 * Memory: receives land in their final place: gather_out when it is dense
 *   and wanted, else a workspace of m*W*k elements. Per message 2 requests
 *   and 3 ints, per chunk 2 ints of bookkeeping, in a plan workspace that
 *   plan.c reserves before the agreement (tpi_ring_ws_bound), so that no
 *   rank can run out of memory once its peers are sending.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/trace.h"
#include "ring_geom.h"

static tpmm_status_t pump(ring_t *R, int d) {
  int *q = R->sendq + (size_t)d * R->nmsg;
  while (R->qhead[d] < R->qtail[d] && (R->window == 0 || R->inflight[d] < R->window)) {
    int msg = q[R->qhead[d]++], idx = msg / R->S, s = msg % R->S, j = idx / R->C, c = idx % R->C;
    int to = d == 0 ? right(R) : left(R);
    double t0 = tpi_now();
    int rc = MPI_Isend(seg_ptr(R, j, c, s), (int)((size_t)seg_rows_of(R, j, c, s) * row_bytes(R)), MPI_BYTE, to, msg,
                       R->comm, &R->send[msg]);
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, R->op, "MPI_Isend of a chunk");
    if (s == 0) tpi_trace(TPI_EV_SEND, t0, j, c);
    R->inflight[d]++;
  }
  return TPMM_SUCCESS;
}

/* Queue segment s of chunk (j, c) for its direction; post it if the window allows. */
static tpmm_status_t queue_send(ring_t *R, int j, int c, int s) {
  int d = dir_of(R, c) > 0 ? 0 : 1;
  R->sendq[(size_t)d * R->nmsg + R->qtail[d]++] = (j * R->C + c) * R->S + s;
  return pump(R, d);
}

static int sends_done(const ring_t *R) {
  return R->qhead[0] == R->qtail[0] && R->qhead[1] == R->qtail[1] && R->inflight[0] == 0 && R->inflight[1] == 0;
}

/* Drive MPI: detect arrived segments, forward those with hops left, mark
 * chunks whose segments are all in, and post queued sends as the window
 * frees. Called by exactly one thread. */
tpmm_status_t tpi_ring_poll(void *ctx) {
  ring_t *R = ctx;
  if (R->pending_recv > 0) {
    int *done = R->done_idx, n = 0; /* Testsome may complete every message at once */
    int rc = MPI_Testsome(R->nmsg, R->recv, &n, done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, R->op, "MPI_Testsome on chunk receives");
    if (n == MPI_UNDEFINED) n = 0;
    for (int i = 0; i < n; i++) {
      int idx = done[i] / R->S, s = done[i] % R->S, j = idx / R->C, c = idx % R->C;
      if (hops(R, j, c) < R->W - 1) TPI_CHECK(queue_send(R, j, c, s));
      R->pending_recv--;
      __atomic_store_n(&R->seg_in[done[i]], 1, __ATOMIC_RELEASE);
      if (--R->seg_left[idx] > 0) continue;
      __atomic_store_n(&R->arrived[idx], 1, __ATOMIC_RELEASE);
      if (R->on_arrive) R->on_arrive(R->arrive_ctx, j, c);
    }
  }
  if (R->inflight[0] + R->inflight[1] > 0) {
    int *done = R->done_idx, n = 0;
    int rc = MPI_Testsome(R->nmsg, R->send, &n, done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, R->op, "MPI_Testsome on chunk sends");
    if (n == MPI_UNDEFINED) n = 0;
    for (int i = 0; i < n; i++) R->inflight[dir_of(R, done[i] / R->S % R->C) > 0 ? 0 : 1]--;
    if (n > 0) {
      TPI_CHECK(pump(R, 0));
      TPI_CHECK(pump(R, 1));
    }
  }
  return TPMM_SUCCESS;
}

void tpi_ring_cancel(ring_t *R) {
  for (int i = 0; i < R->nmsg; i++) {
    if (R->recv[i] != MPI_REQUEST_NULL) MPI_Cancel(&R->recv[i]), MPI_Request_free(&R->recv[i]);
    if (R->send[i] != MPI_REQUEST_NULL) MPI_Cancel(&R->send[i]), MPI_Request_free(&R->send[i]);
  }
}

static void *progress_loop(ring_t *R);
static void *progress_main(void *arg) {
  ring_t *R = arg;
  progress_loop(R);
  __atomic_store_n(&R->finished, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void *progress_loop(ring_t *R) {
  /* Sleep between polls: the thread shares a core with the GEMM on a busy
   * machine, and waking it every 20 us cost more GEMM time than it saved
   * (bench/RESULTS.md: 20 / 100 / 300 / 1000 us at 1 Gbit). */
  const long us = R->p->nap_us;
  struct timespec nap = {us / 1000000, (us % 1000000) * 1000L};
  for (;;) {
    tpmm_status_t st = tpi_ring_poll(R);
    if (st != TPMM_SUCCESS) {
      snprintf(R->thread_msg, sizeof R->thread_msg, "%s", tpmm_last_error());
      __atomic_store_n(&R->thread_status, st, __ATOMIC_RELEASE);
      return NULL;
    }
    if ((R->pending_recv == 0 && sends_done(R)) || __atomic_load_n(&R->stop, __ATOMIC_ACQUIRE)) return NULL;
    /* nap only while the compute thread multiplies: when it waits for a
     * chunk, answering MPI at once is all that is left to do */
    if (!__atomic_load_n(&R->idle, __ATOMIC_ACQUIRE))
      nanosleep(&nap, NULL);
    else if (R->crowded)
      sched_yield(); /* a peer on this machine may need the CPU to send */
  }
}

/* Rows of chunk (j, c) that are in G from its first row on without a gap
 * (segments may complete out of order). */
static int ready_rows(const ring_t *R, int j, int c) {
  const int idx = j * R->C + c;
  if (__atomic_load_n(&R->arrived[idx], __ATOMIC_ACQUIRE)) return chunk_rows(R, j, c);
  int rows = 0;
  for (int s = 0; s < seg_count(R, j, c) && __atomic_load_n(&R->seg_in[idx * R->S + s], __ATOMIC_ACQUIRE); s++)
    rows += seg_rows_of(R, j, c, s);
  return rows;
}

/* Wait until more than `have` leading rows of chunk (j, c) are in G; *ready
 * gets how many are. The compute thread multiplies them while the rest of
 * the chunk travels, so that the wait for the last chunk ends with one
 * message's GEMM instead of a whole chunk's. */
static tpmm_status_t wait_rows(ring_t *R, int j, int c, int have, int *ready) {
  const int idx = j * R->C + c;
  double t0 = tpi_now();
  int n = ready_rows(R, j, c);
  if (n <= have) {
    char what[128];
    snprintf(what, sizeof what, "a chunk from a neighbour (rank %d; chunk %d of rank %d's rows)",
             grank(R, dir_of(R, c) > 0 ? left(R) : right(R)), c, grank(R, j));
    /* the progress thread, if any, needs the CPU this thread would spin on */
    tpi_spin_t s = {R->deadline, R->thread_started || R->crowded};
    tpmm_status_t st = TPMM_SUCCESS;
    __atomic_store_n(&R->idle, 1, __ATOMIC_RELEASE);
    while (st == TPMM_SUCCESS && n <= have) {
      if (R->thread_started) {
        tpmm_status_t ts = __atomic_load_n(&R->thread_status, __ATOMIC_ACQUIRE);
        if (ts != TPMM_SUCCESS) st = tpi_fail(ts, "%s", R->thread_msg);
      } else {
        st = tpi_ring_poll(R);
      }
      if (st == TPMM_SUCCESS) st = tpi_spin(R->p->g, R->op, what, &s);
      n = ready_rows(R, j, c);
    }
    __atomic_store_n(&R->idle, 0, __ATOMIC_RELEASE);
    TPI_CHECK(st);
  }
  tpi_trace(TPI_EV_WAIT, t0, idx / R->C, idx % R->C);
  *ready = n;
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_ring_start(ring_t *R) {
  const int W = R->W, C = R->C, r = R->r;
  for (int j = 0; j < W; j++) {
    if (j == r) continue;
    for (int c = 0; c < C; c++) {
      int from = dir_of(R, c) > 0 ? left(R) : right(R);
      R->seg_left[j * C + c] = seg_count(R, j, c);
      if (seg_count(R, j, c) == 0) { /* an empty chunk (a short shard): here from the start */
        __atomic_store_n(&R->arrived[j * C + c], 1, __ATOMIC_RELEASE);
        if (R->on_arrive) R->on_arrive(R->arrive_ctx, j, c);
      }
      for (int s = 0; s < seg_count(R, j, c); s++) {
        int msg = (j * C + c) * R->S + s;
        int rc = MPI_Irecv(seg_ptr(R, j, c, s), (int)((size_t)seg_rows_of(R, j, c, s) * row_bytes(R)), MPI_BYTE, from,
                           msg, R->comm, &R->recv[msg]);
        if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, R->op, "MPI_Irecv of a chunk");
        R->pending_recv++;
      }
    }
  }
  for (int c = 0; c < C && W > 1; c++)
    for (int s = 0; s < seg_count(R, r, c); s++) TPI_CHECK(queue_send(R, r, c, s));
  if (R->p->progress_thread && W > 1) {
    /* no thread (out of threads or memory): polls do the same job, and the
     * peers, already sending, must not be stranded by a local failure */
    R->thread_started =
        !tpi_debug_fail("the progress thread") && pthread_create(&R->thread, NULL, progress_main, R) == 0;
  }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_ring_compute(ring_t *R) {
  tpi_plan_t *p = R->p;
  const tpi_call_t *a = &p->a;
  const int W = R->W, C = R->C, r = R->r;
  tpi_poll_fn poll = R->thread_started ? NULL : tpi_ring_poll;
  /* the local shard first: it hides the first transfers */
  if (a->gather_output) {
    double t0 = tpi_now();
    tpi_copy_rows(a, R->local, a->m, out_row(R, r, 0));
    tpi_trace(TPI_EV_COPY, t0, r, a->m);
  }
  for (int c = 0; c < C; c++)
    TPI_CHECK(tpi_gemm_rows(p, R->local + row_bytes(R) * (size_t)chunk_lo(R, r, c), chunk_rows(R, r, c),
                            out_row(R, r, c), poll, R));
  /* then the others, in the order they are expected to arrive: clockwise
   * chunks of shard r-s and counter-clockwise chunks of shard r+s at step s */
  for (int s = 1; s < W; s++)
    for (int c = 0; c < C; c++) {
      int j = dir_of(R, c) > 0 ? (r - s + W) % W : (r + s) % W;
      if (hops(R, j, c) != s) continue;
      /* as much of the chunk as has arrived, then the rest as it comes */
      for (int done = 0, ready = 0; done < chunk_rows(R, j, c); done = ready) {
        TPI_CHECK(wait_rows(R, j, c, done, &ready));
        TPI_CHECK(tpi_gemm_rows(p, chunk_ptr(R, j, c) + row_bytes(R) * (size_t)done, ready - done,
                                out_row(R, j, c) + done, poll, R));
      }
      if (a->gather_output && R->G != a->gout.data) {
        double t0 = tpi_now();
        tpi_copy_rows(a, chunk_ptr(R, j, c), chunk_rows(R, j, c), out_row(R, j, c));
        tpi_trace(TPI_EV_COPY, t0, j, c);
      }
    }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_ring_finish(ring_t *R, tpmm_status_t st) {
  char what[96];
  snprintf(what, sizeof what, "the sends to the neighbours (ranks %d and %d)", grank(R, left(R)), grank(R, right(R)));
  tpi_spin_t s = {R->deadline, true};
  if (R->thread_started) {
    if (st != TPMM_SUCCESS) __atomic_store_n(&R->stop, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&R->idle, 1, __ATOMIC_RELEASE); /* nothing left to multiply */
    /* the thread exits when all sends are done, or on stop/error */
    while (st == TPMM_SUCCESS) {
      tpmm_status_t ts = __atomic_load_n(&R->thread_status, __ATOMIC_ACQUIRE);
      if (ts != TPMM_SUCCESS) {
        st = tpi_fail(ts, "%s", R->thread_msg);
        break;
      }
      if (__atomic_load_n(&R->finished, __ATOMIC_ACQUIRE)) break;
      st = tpi_spin(R->p->g, R->op, what, &s);
      if (st != TPMM_SUCCESS) __atomic_store_n(&R->stop, 1, __ATOMIC_RELEASE);
    }
    pthread_join(R->thread, NULL);
    R->thread_started = 0;
  }
  while (st == TPMM_SUCCESS && !sends_done(R)) {
    st = tpi_ring_poll(R);
    if (st == TPMM_SUCCESS && !sends_done(R)) st = tpi_spin(R->p->g, R->op, what, &s);
  }
  if (st != TPMM_SUCCESS) tpi_ring_cancel(R);
  return st;
}

tpmm_status_t tpi_ring_wait_chunk(ring_t *R, int j, int c) {
  for (int ready = 0; ready < chunk_rows(R, j, c);) TPI_CHECK(wait_rows(R, j, c, ready, &ready));
  return TPMM_SUCCESS;
}
