/*
 * algo_unfused.c — "unfused": the reference and the baseline.
 *
 * Description: what a user writes by hand: MPI_Allgather of every shard, then
 *   one GEMM over all m*W gathered rows. No overlap. Kept forever as the
 *   reference every fused schedule must match bit for bit, and as the
 *   baseline tpmm-bench compares against (TPMM_ALGO=unfused forces it).
 * Steps:
 *   1. Small shards have already travelled with the agreement (p->gathered,
 *      the fold: one round trip, as a hand-written MPI_Allgather): copy them
 *      into place. Otherwise pack the local shard to dense rows if needed
 *      (pack.c) and MPI_Allgather it (bytes; rows as a datatype past
 *      INT_MAX; uneven shards, which never fold: MPI_Allgatherv with counts
 *      in a plan workspace, or with MPICH blocks of the largest shard in the
 *      staging rows, moved into place) into gather_out when it is dense, else
 *      into a workspace; non-blocking MPI_Iallgather(v) when any rank has a
 *      timeout (agreed).
 *   2. Copy into a strided gather_out if the workspace was used.
 *   3. One GEMM: output = gathered @ x2 + bias.
 *   gather_index 1 runs x2g.c's schedule instead (tpi_x2g_unfused).
 * Memory: m*W*k elements of workspace unless gather_out is dense and wanted;
 *   m*k if the input needs packing; uneven shards under MPICH, W blocks of
 *   the largest shard when that is at most twice the rows (tpi_unfused_staging).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "x2g.h"

/* Uneven shards: MPI_(I)allgatherv, counts and displacements in the plan's
 * workspace (MPI may read them until the request completes). */
static int allgatherv(tpi_plan_t *p, const char *shard, char *dst, MPI_Datatype type, int64_t unit, MPI_Request *req) {
  const tpi_call_t *a = &p->a;
  int *cnt = p->vcounts, *dsp = p->vcounts + a->W;
  for (int j = 0; j < a->W; j++) {
    cnt[j] = (int)(tpi_shard_rows(a, j) * unit);
    dsp[j] = (int)(tpi_shard_row0(a, j) * unit);
  }
  const int mine = cnt[p->g->rank];
  if (!p->nonblocking) return MPI_Allgatherv(shard, mine, type, dst, cnt, dsp, type, p->g->comm);
  return MPI_Iallgatherv(shard, mine, type, dst, cnt, dsp, type, p->g->comm, req);
}

/* Whether every shard has the same rows (then MPI_Allgather, as by hand). */
static int even(const tpi_call_t *a) {
  for (int j = 1; a->row0 && j < a->W; j++)
    if (tpi_shard_rows(a, j) != tpi_shard_rows(a, 0)) return 0;
  return 1;
}

#ifdef MPICH_VERSION
enum { PAD_UNEVEN = 1 };
#else
enum { PAD_UNEVEN = 0 };
#endif

size_t tpi_unfused_staging(const tpi_call_t *a) {
  /* padding costs W * largest shard in bytes moved and held: only where
   * that is at most twice the real rows (measured at W = 2, 3) */
  if (!PAD_UNEVEN || even(a) || (int64_t)a->W * tpi_rows_max(a) > 2 * tpi_rows_total(a)) return 0;
  return tpi_row_bytes(a) * (size_t)tpi_rows_max(a) * (size_t)a->W;
}

size_t tpi_unfused_gbuf_bytes(const tpi_call_t *a) {
  const size_t rows = tpi_row_bytes(a) * (size_t)tpi_rows_total(a), staged = tpi_unfused_staging(a);
  return rows > staged ? rows : staged;
}

/* MPICH 4.0.2's MPI_Allgatherv takes 67-82 ms where MPI_Allgather of the same
 * bytes takes 1-9 (2 ranks, 8 MiB, one node), and 2.6 s against 24-37 ms with
 * 3 ranks and a rank of 0 rows (bench/RESULTS.md §13): uneven shards travel as
 * an MPI_Allgather of blocks of the largest shard, in place in the plan's
 * staging rows, then move to their rows. Open MPI's MPI_Allgatherv is fine. */
static int padded(tpi_plan_t *p, const char *op, const char *shard, char *dst, MPI_Datatype type, int64_t unit,
                  MPI_Request *req, tpmm_status_t *st) {
  const tpi_call_t *a = &p->a;
  const size_t rb = tpi_row_bytes(a), block = rb * (size_t)tpi_rows_max(a);
  *st = tpi_ws_reserve(&p->gbuf, &p->gbuf_bytes, block * (size_t)a->W, op, "the gathered rows");
  if (*st != TPMM_SUCCESS) return MPI_SUCCESS;
  char *stage = p->gbuf;
  memcpy(stage + block * (size_t)p->g->rank, shard, rb * (size_t)tpi_shard_rows(a, p->g->rank));
  const int count = (int)(tpi_rows_max(a) * unit);
  int rc = p->nonblocking ? MPI_Iallgather(MPI_IN_PLACE, 0, type, stage, count, type, p->g->comm, req)
                          : MPI_Allgather(MPI_IN_PLACE, 0, type, stage, count, type, p->g->comm);
  if (rc != MPI_SUCCESS) return rc;
  if (*req != MPI_REQUEST_NULL) {
    *st = tpi_wait(p->g, op, "MPI_Iallgather of the shards", 1, req, 0);
    if (*st != TPMM_SUCCESS) return MPI_SUCCESS;
  }
  for (int j = 0; j < a->W; j++) /* ascending: a shard never lands past the next one's block */
    memmove(dst + rb * (size_t)tpi_shard_row0(a, j), stage + block * (size_t)j, rb * (size_t)tpi_shard_rows(a, j));
  return MPI_SUCCESS;
}

tpmm_status_t tpi_unfused_gather(tpi_plan_t *p, const char *op, const char *shard, char *dst) {
  const tpi_call_t *a = &p->a;
  /* Shards as plain bytes when the count fits an int (what a user would pass,
   * and MPI's fastest path); else one contiguous datatype per row. Uneven
   * shards: the displacements must fit too. */
  const int64_t row = (int64_t)tpi_row_bytes(a), local = tpi_shard_rows(a, p->g->rank);
  const int ev = even(a), pad = tpi_unfused_staging(a) > 0;
  const int64_t shard_bytes = (ev ? local : pad ? tpi_rows_max(a) : tpi_rows_total(a)) * row;
  MPI_Datatype type = MPI_BYTE;
  int64_t unit = row; /* bytes per row in the counts */
  int rc;
  if (shard_bytes > INT_MAX) {
    rc = MPI_Type_contiguous((int)row, MPI_BYTE, &type);
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Type_contiguous (one row)");
    TPI_LIVE(TPI_LIVE_TYPE, 1);
    rc = MPI_Type_commit(&type);
    if (rc != MPI_SUCCESS) {
      MPI_Type_free(&type), TPI_LIVE(TPI_LIVE_TYPE, -1);
      return tpi_mpi_fail(rc, op, "MPI_Type_commit (one row)");
    }
    unit = 1;
  }
  const int count = (int)(local * unit);
  MPI_Request req = MPI_REQUEST_NULL;
  tpmm_status_t st = TPMM_SUCCESS;
  if (!ev)
    rc = pad ? padded(p, op, shard, dst, type, unit, &req, &st) : allgatherv(p, shard, dst, type, unit, &req);
  else if (!p->nonblocking) /* blocking: the algorithm a user's MPI_Allgather gets */
    rc = MPI_Allgather(shard, count, type, dst, count, type, p->g->comm);
  else
    rc = MPI_Iallgather(shard, count, type, dst, count, type, p->g->comm, &req);
  if (type != MPI_BYTE) MPI_Type_free(&type), TPI_LIVE(TPI_LIVE_TYPE, -1);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Allgather of the shards");
  TPI_CHECK(st);
  if (req != MPI_REQUEST_NULL) TPI_CHECK(tpi_wait(p->g, op, "MPI_Iallgather of the shards", 1, &req, 0));
  return TPMM_SUCCESS;
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  if (a->gather_index) return tpi_x2g_unfused(p, op);
  const size_t es = a->esize;
  const int64_t mw = tpi_rows_total(a);
  if (mw == 0) return TPMM_SUCCESS;
  char *dst;
  if (a->gather_output && a->gout.rs == a->k) {
    dst = a->gout.data;
  } else {
    /* as large as padded()'s staging, so that it never moves dst */
    TPI_CHECK(tpi_ws_reserve(&p->gbuf, &p->gbuf_bytes, tpi_unfused_gbuf_bytes(a), op, "the gathered rows"));
    dst = p->gbuf;
  }
  if (p->gathered) { /* only even shards fold (tpi_ws_reserve_plan) */
    const size_t shard = (size_t)(a->m * a->k) * es;
    for (int j = 0; j < a->W; j++) memcpy(dst + shard * (size_t)j, p->gathered[j], shard);
    __atomic_add_fetch(&tpi_debug.folded, 1, __ATOMIC_RELAXED);
  } else {
    const char *shard;
    TPI_CHECK(tpi_local_shard(p, op, &shard));
    TPI_CHECK(tpi_unfused_gather(p, op, shard, dst));
  }
  if (a->gather_output && dst != a->gout.data) tpi_copy_rows(a, dst, mw, 0);
  const double t0 = p->observe ? tpi_now() : 0;
  TPI_CHECK(tpi_gemm_rows(p, dst, mw, 0, NULL, NULL));
  if (p->observe && p->gemm_status == TPMM_SUCCESS) tpi_tune_cache_seen_time(p->g, tpi_now() - t0);
  return TPMM_SUCCESS;
}

static int usable(const tpi_plan_t *p, char *why, size_t len) {
  (void)p, (void)why, (void)len;
  return 1; /* runs anywhere; lowest priority: only the fallback of auto */
}

static double predict(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  if (*chunks <= 0) *chunks = 1;
  /* folded shards ride the agreement every call makes: no latency of their own */
  return m->t_xfer - (p->folds ? (p->a.W - 1) * m->alpha : 0) + m->t_gemm;
}

const tpi_algo_t tpi_algo_unfused = {TPMM_ALGO_UNFUSED, false, usable, predict, run};
