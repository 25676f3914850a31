/*
 * gemm_rows.c — where the pipelines call the GEMM: a block of gathered rows
 * times the prepared x2, in tiles with a progress poll between tiles (MPI
 * moves data only inside MPI calls), into the output rows.
 */
#include <stdio.h>

#include "../common/trace.h"
#include "pipeline.h"

tpmm_status_t tpi_gemm_rows(tpi_plan_t *p, const char *A, int64_t rows, int64_t g0, tpi_poll_fn poll, void *ctx) {
  const tpi_call_t *a = &p->a;
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
