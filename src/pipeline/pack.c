/*
 * pack.c — moving rows around: packing the local shard to the canonical
 * dense row-major (m x k) form every transport sends, and copying gathered
 * rows into gather_out. The canonical form makes the transports oblivious to
 * ld and trans_input: they only ever move contiguous rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/trace.h"
#include "pipeline.h"

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

tpmm_status_t tpi_local_shard(tpi_plan_t *p, const char *op, const char **shard) {
  const tpi_agmm_t *a = &p->a;
  const tpi_mat_t *in = &a->in;
  if (in->cs == 1 && (in->rs == a->k || a->m <= 1)) {
    *shard = in->data;
    return TPMM_SUCCESS;
  }
  TPI_CHECK(tpi_ws_reserve(&p->send, &p->send_bytes, (size_t)(a->m * a->k) * a->esize, op, "the packed input shard"));
  char *d = p->send;
  tpi_copy_dense(d, in->data, a->m, a->k, in->rs, in->cs, a->esize);
  *shard = d;
  return TPMM_SUCCESS;
}

void tpi_copy_rows(const tpi_agmm_t *a, const char *src, int64_t rows, int64_t g0) {
  const size_t es = a->esize, rb = (size_t)a->k * es;
  char *dst = a->gout.data + (size_t)(g0 * a->gout.rs) * es;
  if (a->gout.rs == a->k) {
    memcpy(dst, src, rb * (size_t)rows);
    return;
  }
  for (int64_t i = 0; i < rows; i++) memcpy(dst + (size_t)(i * a->gout.rs) * es, src + rb * (size_t)i, rb);
}

tpmm_status_t tpi_gemm_rows(tpi_plan_t *p, const char *A, int64_t rows, int64_t g0, tpi_poll_fn poll, void *ctx) {
  const tpi_agmm_t *a = &p->a;
  const int64_t tile = poll && p->tile > 0 ? p->tile : rows;
  for (int64_t r0 = 0; r0 < rows; r0 += tile) {
    int64_t t = rows - r0 < tile ? rows - r0 : tile;
    if (p->gemm_status != TPMM_SUCCESS) break; /* failed earlier in this call: only move data */
    double t0 = tpi_now();
    tpmm_status_t st = tpi_debug_fail("gemm tile")
                           ? tpi_fail(TPMM_ERR_NO_MEMORY, "gemm: out of memory (TPMM_DEBUG_FAIL)")
                           : tpi_gemm_run(p->gemm, t, A + (size_t)(r0 * a->k) * a->esize, a->k,
                                          a->out.data + (size_t)((g0 + r0) * a->out.rs) * a->esize, a->out.rs);
    if (st != TPMM_SUCCESS) {
      /* keep the message: later (successful) steps must not lose it */
      p->gemm_status = st;
      snprintf(p->gemm_msg, sizeof p->gemm_msg, "%s", tpi_error_message());
      break;
    }
    tpi_trace(TPI_EV_GEMM, t0, g0 + r0, t);
    if (poll && r0 + t < rows) TPI_CHECK(poll(ctx));
  }
  return TPMM_SUCCESS;
}
