/*
 * x2g_run.c — gather_index 1 under "unfused" and "shm_pull": both hand the
 * shards of x2 to the accumulation (x2g.c) in group-rank order, so the sum
 * never waits in a slot.
 *
 * unfused (the reference every schedule matches bit for bit):
 *   1. MPI_(I)allgather(v) of the x2 shards (algo_unfused.c's gather) into
 *      gather_out when it is dense and wanted, else a workspace; copy to a
 *      strided gather_out.
 *   2. Every shard's panels, shard by shard in rank order; output rounded once.
 * shm_pull (every rank on one node):
 *   1. Wait until the node peers have read the previous call's segment.
 *   2. Publish the local shard in this rank's segment of the group's shared
 *      window, chunk by chunk (whole panels), a ready flag per chunk.
 *   3. For shard j = 0..W-1 in rank order, chunk by chunk: the local shard from
 *      local memory, a peer's from its segment once its flag is up (in place,
 *      no copy for the GEMM); copy the rows to gather_out.
 *   4. done_seq = seq.
 * Memory: unfused: K*n elements unless gather_out is dense and wanted.
 *   shm_pull: a segment of the largest shard's rows (x n) per rank plus a page
 *   of flags, kept in the group; the input packed (m x K) if it is not dense.
 */
#include <sched.h>
#include <string.h>

#include "../comm/shm.h"
#include "../common/trace.h"
#include "x2g.h"

/* The order every shard is completed in: rank order. */
static tpmm_status_t begin_in_rank_order(tpi_plan_t *p, const char *op) {
  int order[p->a.W];
  for (int j = 0; j < p->a.W; j++) order[j] = j;
  return tpi_x2g_begin(p, op, order);
}

tpmm_status_t tpi_x2g_unfused(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  const size_t rb = tpi_row_bytes(a);
  char *G;
  TPI_CHECK(tpi_x2g_landing(p, op, &G));
  const char *A;
  TPI_CHECK(tpi_local_shard(p, op, &A));
  TPI_CHECK(tpi_unfused_gather(p, op, p->x2g->shard, G));
  if (a->gather_output && G != a->gout.data) tpi_copy_rows(a, G, tpi_rows_total(a), 0);
  TPI_CHECK(begin_in_rank_order(p, op));
  for (int j = 0; j < a->W; j++) {
    const char *B = G + rb * (size_t)tpi_shard_row0(a, j);
    TPI_CHECK(tpi_x2g_rows(p, A, j, 0, tpi_shard_rows(a, j), B, NULL, NULL));
    tpi_x2g_shard_done(p, j);
  }
  tpi_x2g_finish(p);
  return TPMM_SUCCESS;
}

static tpmm_status_t spin(tpi_plan_t *p, const char *op, const volatile uint64_t *word, uint64_t want, double deadline,
                          int peer) {
  for (uint64_t spins = 0; __atomic_load_n(word, __ATOMIC_ACQUIRE) < want;)
    if (++spins % 64 == 0) {
      if (deadline > 0 && tpi_now() > deadline) {
        p->g->broken = true;
        return tpi_fail(TPMM_ERR_TIMEOUT, "%s: timed out after %lld ms waiting for rank %d in group \"%s\"", op,
                        (long long)tpi_params.timeout_ms, peer, p->g->name);
      }
      sched_yield();
    }
  return TPMM_SUCCESS;
}

/* Step 3 for shard j: its chunks, from local memory or the owner's segment. */
static tpmm_status_t shm_shard(tpi_plan_t *p, const char *op, const char *A, int j, uint64_t seq, double deadline) {
  tpi_shm_t *s = p->g->shm;
  const int C = p->chunks, mine = j == p->g->rank;
  const char *rows = mine ? p->x2g->shard : tpi_shm_rows(s, j);
  for (int c = 0; c < C; c++) {
    if (!mine) {
      const double t0 = tpi_now();
      TPI_CHECK(spin(p, op, &tpi_shm_hdr(s, j)->ready[c], seq, deadline, j));
      tpi_trace(TPI_EV_WAIT, t0, j, c);
    }
    TPI_CHECK(tpi_x2g_chunk(p, A, j, c, rows, 1, NULL, NULL));
  }
  tpi_x2g_shard_done(p, j);
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_x2g_shm_pull(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  tpi_group_t *g = p->g;
  const int W = a->W, r = g->rank, C = p->chunks;
  const size_t rb = tpi_row_bytes(a);
  const double deadline = tpi_deadline();
  const char *A;
  TPI_CHECK(tpi_local_shard(p, op, &A));
  TPI_CHECK(tpi_shm_reserve(g, op, rb * (size_t)tpi_rows_max(a), C)); /* the same on every rank */
  tpi_shm_t *s = g->shm;
  const uint64_t seq = ++s->seq;
  tpi_shm_hdr_t *me = tpi_shm_hdr(s, r);
  /* 1-2. peers done with our segment, then publish */
  for (int j = 0; j < W; j++)
    if (j != r) TPI_CHECK(spin(p, op, &tpi_shm_hdr(s, j)->done_seq, seq - 1, deadline, j));
  me->by_ref = 0;
  for (int c = 0; c < C; c++) {
    const int64_t lo = tpi_shard_chunk_lo(a, r, C, c), hi = tpi_shard_chunk_lo(a, r, C, c + 1);
    memcpy(tpi_shm_rows(s, r) + rb * (size_t)lo, p->x2g->shard + rb * (size_t)lo, rb * (size_t)(hi - lo));
    __atomic_store_n(&me->ready[c], seq, __ATOMIC_RELEASE);
  }
  /* 3. every shard in rank order */
  tpmm_status_t st = begin_in_rank_order(p, op);
  for (int j = 0; j < W && st == TPMM_SUCCESS; j++) st = shm_shard(p, op, A, j, seq, deadline);
  if (st != TPMM_SUCCESS) return st;
  tpi_x2g_finish(p);
  /* 4. done */
  __atomic_store_n(&me->done_seq, seq, __ATOMIC_RELEASE);
  return TPMM_SUCCESS;
}
