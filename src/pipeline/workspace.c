/*
 * workspace.c — a plan's workspaces: all reserved before the agreement (so
 * that no rank runs out of memory once data moves), grown on demand, and
 * handed to the group instead of freed when a timeout may leave MPI writing
 * into them.
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"
#include "ring.h"

tpmm_status_t tpi_ws_reserve(void **buf, size_t *cap, size_t bytes, const char *op, const char *what) {
  if (bytes <= *cap && *buf) return TPMM_SUCCESS;
  void *n = NULL;
  if (tpi_debug_fail(what) || posix_memalign(&n, 64, bytes ? bytes : 64) != 0)
    return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for %s (%zu bytes)", op, what, bytes);
  free(*buf);
  *buf = n;
  *cap = bytes;
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_ws_reserve_plan(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  if (!tpi_input_dense(a))
    TPI_CHECK(tpi_ws_reserve(&p->send, &p->send_bytes, (size_t)(a->m * a->k) * a->esize, op, "the packed input shard"));
  if (!(a->gather_output && a->gout.rs == a->k))
    TPI_CHECK(
        tpi_ws_reserve(&p->gbuf, &p->gbuf_bytes, (size_t)(a->m * a->W * a->k) * a->esize, op, "the gathered rows"));
  /* small shards travel with the agreement: where their addresses land */
  const size_t shard = (size_t)(a->m * a->k) * a->esize;
  p->folds = a->W > 1 && shard <= tpi_agree_fold_cap(p->g);
  if (p->folds)
    TPI_CHECK(tpi_ws_reserve((void **)&p->peer, &p->peer_bytes, sizeof(char *) * (size_t)a->W, op,
                             "the folded shards' table"));
  /* The ring's bookkeeping, for any schedule rank 0 may pick and any message
   * size the ranks may agree on (the largest rank's, so no smaller than
   * ours): every rank reserves it, whatever it would pick itself. */
  if (a->W > 1 && a->m > 0)
    TPI_CHECK(tpi_ws_reserve(
        &p->ring_ws, &p->ring_ws_bytes,
        tpi_ring_ws_bound(a->m, a->k * (int64_t)a->esize, a->W, a->comm_turn > 0 ? a->comm_turn : TPI_MAX_AUTO_CHUNKS,
                          tpi_params.segment_bytes),
        op, "the ring's bookkeeping"));
  return TPMM_SUCCESS;
}

void tpi_ws_free_plan(tpi_plan_t *p) {
  if (p->g && p->g->broken) { /* a timed-out operation may still use them: the group keeps them */
    tpi_group_orphan(p->g, p->send);
    tpi_group_orphan(p->g, p->gbuf);
  } else {
    free(p->send);
    free(p->gbuf);
  }
  tpi_red_ws_free(p);
  free(p->ring_ws); /* MPI holds no reference: requests are done or freed */
  free(p->peer);
  p->send = p->gbuf = p->ring_ws = NULL;
  p->peer = NULL;
}
