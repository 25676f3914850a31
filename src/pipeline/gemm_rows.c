/*
 * gemm_rows.c — where the pipelines call the GEMM: a block of gathered rows
 * times the prepared x2, in tiles with a progress poll between tiles (MPI
 * moves data only inside MPI calls), into the output rows; and the step of
 * the schedules that read shards in place (GEMM, then the copy to gather_out).
 */
#include <stdio.h>

#include "../common/trace.h"
#include "pipeline.h"

/* Rows [r0, r0+t) of A times weight i into its output rows g0 + r0... */
static tpmm_status_t weight_rows(tpi_plan_t *p, int i, const char *A, int64_t t, int64_t g) {
  const tpi_call_t *a = &p->a;
  const tpi_mat_t *out = i ? &a->w[i].out : &a->out;
  if (tpi_debug_fail("gemm tile")) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm: out of memory (TPMM_DEBUG_FAIL)");
  return tpi_gemm_run(i ? p->wgemm[i] : p->gemm, t, A, a->k, out->data + (size_t)(g * out->rs) * a->esize, out->rs);
}

tpmm_status_t tpi_gemm_rows(tpi_plan_t *p, const char *A, int64_t rows, int64_t g0, tpi_poll_fn poll, void *ctx) {
  const tpi_call_t *a = &p->a;
  const int64_t tile = poll && p->tile > 0 ? p->tile : rows;
  for (int64_t r0 = 0; r0 < rows; r0 += tile) {
    int64_t t = rows - r0 < tile ? rows - r0 : tile;
    if (p->gemm_status != TPMM_SUCCESS) break;      /* failed earlier in this call: only move data */
    const double t0 = tpi_trace_on ? tpi_now() : 0; /* the clock only for the trace */
    tpmm_status_t st = TPMM_SUCCESS;
    /* every weight on these rows before the next poll (multi) */
    for (int i = 0; i < (a->nb > 1 ? a->nb : 1) && st == TPMM_SUCCESS; i++)
      st = weight_rows(p, i, A + (size_t)(r0 * a->k) * a->esize, t, g0 + r0);
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

tpmm_status_t tpi_gemm_chunk(tpi_plan_t *p, const char *src, int j, int64_t lo, int64_t hi, int64_t c, tpi_poll_fn poll,
                             void *ctx) {
  const tpi_call_t *a = &p->a;
  const int64_t g0 = tpi_shard_row0(a, j) + lo;
  TPI_CHECK(tpi_gemm_rows(p, src, hi - lo, g0, poll, ctx));
  if (a->gather_output) {
    const double t0 = tpi_now();
    tpi_copy_rows(a, src, hi - lo, g0);
    tpi_trace(TPI_EV_COPY, t0, j, c);
  }
  return TPMM_SUCCESS;
}
