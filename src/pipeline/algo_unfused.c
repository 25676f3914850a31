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
 *      INT_MAX) into gather_out when it is dense, else into a workspace;
 *      non-blocking MPI_Iallgather when any rank has a timeout (agreed).
 *   2. Copy into a strided gather_out if the workspace was used.
 *   3. One GEMM: output = gathered @ x2 + bias.
 * Memory: m*W*k elements of workspace unless gather_out is dense and wanted;
 *   m*k if the input needs packing.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "pipeline.h"

static tpmm_status_t allgather(tpi_plan_t *p, const char *op, char *dst) {
  const tpi_call_t *a = &p->a;
  const size_t es = a->esize;
  const char *shard;
  TPI_CHECK(tpi_local_shard(p, op, &shard));
  /* Shards as plain bytes when the count fits an int (what a user would pass,
   * and MPI's fastest path); else one contiguous datatype per row. */
  const int64_t shard_bytes = a->m * a->k * (int64_t)es;
  MPI_Datatype type = MPI_BYTE;
  int count = (int)shard_bytes, rc;
  if (shard_bytes > INT_MAX) {
    rc = MPI_Type_contiguous((int)(a->k * (int64_t)es), MPI_BYTE, &type);
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Type_contiguous (one row)");
    TPI_LIVE(TPI_LIVE_TYPE, 1);
    rc = MPI_Type_commit(&type);
    if (rc != MPI_SUCCESS) {
      MPI_Type_free(&type), TPI_LIVE(TPI_LIVE_TYPE, -1);
      return tpi_mpi_fail(rc, op, "MPI_Type_commit (one row)");
    }
    count = (int)a->m;
  }
  MPI_Request req = MPI_REQUEST_NULL;
  if (!p->nonblocking) /* blocking: the algorithm a user's MPI_Allgather gets */
    rc = MPI_Allgather(shard, count, type, dst, count, type, p->g->comm);
  else
    rc = MPI_Iallgather(shard, count, type, dst, count, type, p->g->comm, &req);
  if (type != MPI_BYTE) MPI_Type_free(&type), TPI_LIVE(TPI_LIVE_TYPE, -1);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Allgather of the input shards");
  if (req != MPI_REQUEST_NULL) TPI_CHECK(tpi_wait(p->g, op, "MPI_Iallgather of the input shards", 1, &req, 0));
  return TPMM_SUCCESS;
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  const size_t es = a->esize;
  const int64_t mw = a->m * a->W;
  if (mw == 0) return TPMM_SUCCESS;
  char *dst;
  if (a->gather_output && a->gout.rs == a->k) {
    dst = a->gout.data;
  } else {
    TPI_CHECK(tpi_ws_reserve(&p->gbuf, &p->gbuf_bytes, (size_t)(mw * a->k) * es, op, "the gathered rows"));
    dst = p->gbuf;
  }
  if (p->gathered) {
    const size_t shard = (size_t)(a->m * a->k) * es;
    for (int j = 0; j < a->W; j++) memcpy(dst + shard * (size_t)j, p->gathered[j], shard);
  } else {
    TPI_CHECK(allgather(p, op, dst));
  }
  if (a->gather_output && dst != a->gout.data) tpi_copy_rows(a, dst, mw, 0);
  return tpi_gemm_rows(p, dst, mw, 0, NULL, NULL);
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
