/*
 * x2g_ring.c — gather_index 1 under "ring" and "bidir_ring": the chunked
 * ring engine (ring.h) carries the shards of x2 (whole panels per chunk)
 * while the GEMM multiplies the input with the shards already here.
 *
 * Steps (rank r):
 *   1. Post the ring's receives and the local shard's sends (ring.h).
 *   2. The local shard's panels into its partial sum; copy it to gather_out.
 *   3. Shards r-1, r-2, ..., r+1 (the order chunk 0 of each arrives; with
 *      bidir_ring a shard's later chunks come the other way, and are waited
 *      for in panel order): each chunk as soon as it is here, polling MPI
 *      between GEMM blocks (the ring forwards what has arrived); then the
 *      shard is complete (x2g.c adds it to the sum in rank order: a shard
 *      that completes before its predecessors waits in a slot).
 *   4. Round the sum once; wait for the sends.
 * Memory: receives land in gather_out when it is dense and wanted, else a
 *   workspace of K*n elements; max(r, W-1-r) slots of m*n floats (x2g.c).
 */
#include "ring.h"
#include "x2g.h"

static tpmm_status_t compute(ring_t *R, const char *A) {
  tpi_plan_t *p = R->p;
  const tpi_call_t *a = &p->a;
  const int W = R->W, C = R->C, r = R->r;
  const size_t rb = tpi_row_bytes(a);
  tpi_poll_fn poll = R->thread_started ? NULL : tpi_ring_poll;
  for (int s = 0; s < W; s++) {
    const int j = (r - s + W) % W;
    const char *rows = j == r ? R->local : R->G + rb * (size_t)tpi_shard_row0(a, j);
    for (int c = 0; c < C; c++) {
      if (j != r) TPI_CHECK(tpi_ring_wait_chunk(R, j, c));
      /* received chunks are in gather_out already when it is where they land */
      TPI_CHECK(tpi_x2g_chunk(p, A, j, c, rows, j == r || R->G != a->gout.data, poll, R));
    }
    tpi_x2g_shard_done(p, j);
  }
  tpi_x2g_finish(p);
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_x2g_ring(tpi_plan_t *p, const char *op, int bidir) {
  const tpi_call_t *a = &p->a;
  char *G;
  TPI_CHECK(tpi_x2g_landing(p, op, &G));
  const char *A;
  TPI_CHECK(tpi_local_shard(p, op, &A));
  TPI_CHECK(tpi_x2g_begin(p, op, p->x2g->order));
  ring_t R;
  TPI_CHECK(tpi_ring_init(&R, p, op, p->g->comm, a->W, p->g->rank, bidir, G, p->x2g->shard));
  tpmm_status_t st = tpi_ring_start(&R);
  if (st == TPMM_SUCCESS) st = compute(&R, A);
  st = tpi_ring_finish(&R, st);
  tpi_ring_free(&R);
  return st;
}
