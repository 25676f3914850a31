/*
 * algo_shm_pull.c — "shm_pull": zero-copy pipeline for the ranks of one node.
 *
 * Description: every rank publishes its shard in its segment of the group's
 *   MPI-3 shared window, chunk by chunk with a ready flag each (shm.h). It
 *   multiplies its local shard first, then reads its peers' chunks in place,
 *   in order (rank + step) mod W, straight into the GEMM — no staging copy
 *   for compute and no MPI call in the data phase, so nothing waits for MPI
 *   progress. gather_out rows are copied from the peers' segments between
 *   GEMM chunks. If the input already lives in a symmetric buffer
 *   (tpmm_alloc_shared) and is dense, even the publishing copy disappears:
 *   peers read the caller's input where it is.
 * Steps:
 *   1. Wait until every peer has finished reading the previous call (its
 *      done_seq), so overwriting this rank's segment is safe.
 *   2. Publish: copy chunk c of the local shard, then ready[c] = seq; or, by
 *      reference, record the buffer id/offset and set every ready flag.
 *   3. GEMM the local shard (from local memory), copy it to gather_out.
 *   4. For step s = 1..W-1, peer j = (r + s) mod W, chunk c: spin until
 *      ready[c] == seq, GEMM the rows in place, copy them to gather_out.
 *   5. done_seq = seq. By reference, also wait until every peer is done with
 *      this call, because the caller may change its input after we return.
 *   Every spin honours TPMM_TIMEOUT_MS (then the group is marked broken).
 * Memory: one segment per rank of m*k elements (m: the largest shard, so that
 *   every rank asks for the same window) plus a page of flags, kept in
 *   the group between calls and grown when a call needs more.
 */
#include <stdio.h>
#include <string.h>

#include "../comm/shm.h"
#include "../common/trace.h"
#include "x2g.h"

/* 1-2. Wait until the peers have read the previous call, then publish this
 * rank's chunks (by reference when the input is a symmetric buffer). */
static tpmm_status_t publish(tpi_plan_t *p, const char *op, const char *local, tpi_symbuf_t *sb, uint64_t seq,
                             double deadline) {
  const tpi_call_t *a = &p->a;
  tpi_group_t *g = p->g;
  tpi_shm_t *s = g->shm;
  const int W = a->W, r = g->rank, C = p->chunks;
  const size_t rb = (size_t)a->k * a->esize;
  tpi_shm_hdr_t *me = tpi_shm_hdr(s, r);
  double t0 = tpi_now();
  for (int j = 0; j < W; j++)
    if (j != r)
      TPI_CHECK(tpi_shm_wait(g, op, &tpi_shm_hdr(s, j)->done_seq, seq - 1, "the end of the previous call", j, deadline,
                             NULL, NULL));
  tpi_trace(TPI_EV_WAIT, t0, -1, -1);
  t0 = tpi_now();
  if (sb) {
    me->sym_id = sb->id;
    me->sym_off = (uint64_t)(local - sb->peer[r]);
    me->by_ref = 1;
    for (int c = 0; c < C; c++) __atomic_store_n(&me->ready[c], seq, __ATOMIC_RELEASE);
  } else {
    me->by_ref = 0;
    char *mine = tpi_shm_rows(s, r);
    for (int c = 0; c < C; c++) {
      int64_t lo = tpi_shard_chunk_lo(a, r, C, c), hi = tpi_shard_chunk_lo(a, r, C, c + 1);
      memcpy(mine + rb * (size_t)lo, local + rb * (size_t)lo, rb * (size_t)(hi - lo));
      __atomic_store_n(&me->ready[c], seq, __ATOMIC_RELEASE);
    }
  }
  tpi_trace(TPI_EV_PUBLISH, t0, r, C);
  return TPMM_SUCCESS;
}

/* 4. Chunk c of peer j: wait for its flag, multiply its rows in place, copy
 * them to gather_out. */
static tpmm_status_t pull_chunk(tpi_plan_t *p, const char *op, int j, int c, uint64_t seq, double deadline) {
  const tpi_call_t *a = &p->a;
  tpi_group_t *g = p->g;
  tpi_shm_hdr_t *h = tpi_shm_hdr(g->shm, j);
  const size_t rb = (size_t)a->k * a->esize;
  double t0 = tpi_now();
  TPI_CHECK(tpi_shm_wait(g, op, &h->ready[c], seq, "a published chunk", j, deadline, NULL, NULL));
  tpi_trace(TPI_EV_WAIT, t0, j, c);
  const char *rows;
  if (__atomic_load_n(&h->by_ref, __ATOMIC_ACQUIRE)) {
    tpi_symbuf_t *pb = tpi_shm_symbuf_by_id(g, h->sym_id);
    if (!pb)
      return tpi_fail(TPMM_ERR_INTERNAL, "%s: rank %d published from unknown buffer %llu", op, j,
                      (unsigned long long)h->sym_id);
    rows = pb->peer[j] + h->sym_off;
  } else {
    rows = tpi_shm_rows(g->shm, j);
  }
  int64_t lo = tpi_shard_chunk_lo(a, j, p->chunks, c), hi = tpi_shard_chunk_lo(a, j, p->chunks, c + 1);
  return tpi_gemm_chunk(p, rows + rb * (size_t)lo, j, lo, hi, c, NULL, NULL);
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  tpi_group_t *g = p->g;
  if (a->gather_index) return tpi_x2g_shm_pull(p, op); /* x2 is gathered (x2g_run.c) */
  if (tpi_rows_total(a) == 0) return TPMM_SUCCESS;
  const int W = a->W, r = g->rank, C = p->chunks;
  const size_t rb = (size_t)a->k * a->esize, shard_bytes = rb * (size_t)a->m;
  const double deadline = tpi_deadline();
  const char *local;
  TPI_CHECK(tpi_local_shard(p, op, &local));
  TPI_CHECK(tpi_shm_reserve(g, op, rb * (size_t)tpi_rows_max(a), C)); /* the same on every rank */
  const uint64_t seq = ++g->shm->seq;
  tpi_symbuf_t *sb = local == a->in.data ? tpi_shm_find_symbuf(g, local, shard_bytes) : NULL;
  TPI_CHECK(publish(p, op, local, sb, seq, deadline));
  /* 3. local shard (traced as one chunk numbered by its rows) */
  TPI_CHECK(tpi_gemm_chunk(p, local, r, 0, a->m, a->m, NULL, NULL));
  /* 4. peers, in place */
  for (int step = 1; step < W; step++)
    for (int c = 0; c < C; c++) TPI_CHECK(pull_chunk(p, op, (r + step) % W, c, seq, deadline));
  /* 5. done */
  __atomic_store_n(&tpi_shm_hdr(g->shm, r)->done_seq, seq, __ATOMIC_RELEASE);
  if (sb) {
    const double t0 = tpi_now();
    for (int j = 0; j < W; j++)
      if (j != r)
        TPI_CHECK(tpi_shm_wait(g, op, &tpi_shm_hdr(g->shm, j)->done_seq, seq, "the end of this call", j, deadline, NULL,
                               NULL));
    tpi_trace(TPI_EV_WAIT, t0, -2, -2);
  }
  return TPMM_SUCCESS;
}

int tpi_shm_usable(const tpi_plan_t *p, char *why, size_t len) {
  if (p->g->n_nodes == 1) return 30; /* in one node, reading in place beats any message */
  if (len) snprintf(why, len, "shm_pull needs every rank on one node (the group spans %d)", p->g->n_nodes);
  return TPI_UNUSABLE;
}

static double predict(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  if (*chunks <= 0) *chunks = 1; /* reads in place: chunks only add GEMM calls */
  /* publishing the shard, and one flag hand-off between ranks (alpha) */
  const double publish = m->alpha + (double)(p->a.m * p->a.k * (int64_t)p->a.esize) / m->beta_copy;
  const double calls = (double)p->a.W * *chunks; /* as if equal: uneven shards cost a little more */
  return publish + calls * tpi_model_gemm(m, (double)tpi_rows_total(&p->a) / calls);
}

const tpi_algo_t tpi_algo_shm_pull = {TPMM_ALGO_SHM_PULL, true, tpi_shm_usable, predict, run};
