/*
 * gemm_f32.c — the GEMM with an fp32 result: C32 (+)= A @ x2, no bias, no
 * rounding. The reduce operators sum such partial products across ranks
 * before they add the bias and round once; gather_index=1 accumulates them.
 *
 * Every backend computes the product itself (its run_f32): oneDNN with an
 * fp32 destination, the reference in k order. fp16 (and bf16 where the
 * backend has no bf16 kernel) is widened as in tpi_gemm_run (gemm.c): A
 * panels converted to fp32, the fp32 backend multiplies straight into C.
 *
 * accumulate = 1 multiplies a panel into scratch and adds it to C element by
 * element here, so that the sum's order (C + product, once per call) does not
 * depend on how a backend would fold an accumulation into its kernel.
 * The bits of a row never depend on M: each backend's product row is
 * M-independent (gemm.h) and the addition is elementwise.
 */
#include <stdlib.h>

#include "../common/half.h"
#include "gemm.h"

enum { ACC_PANEL = 256 }; /* rows multiplied into scratch per step of accumulate = 1 */

/* C32 = A @ x2 for M rows, whatever the dtype. */
static tpmm_status_t product(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc) {
  if (g->cdt == g->dt) return g->be->run_f32(g, M, A, lda, C, ldc);
  for (int64_t r0 = 0; r0 < M; r0 += g->panel) { /* widened: A to fp32, one panel at a time */
    const int64_t rows = M - r0 < g->panel ? M - r0 : g->panel;
    const uint16_t *a = (const uint16_t *)A + r0 * lda;
    for (int64_t i = 0; i < rows; i++) tpi_gemm_widen_n(g->dt, a + i * lda, g->a32 + i * g->K, (size_t)g->K);
    TPI_CHECK(g->be->run_f32(g, rows, g->a32, g->K, C + r0 * ldc, ldc));
  }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_gemm_run_f32(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc,
                               int accumulate) {
  if (M == 0 || g->N == 0) return TPMM_SUCCESS;
  if (!accumulate) return product(g, M, A, lda, C, ldc);
  if (!g->acc32 && !(g->acc32 = malloc((size_t)(ACC_PANEL * g->N) * sizeof(float))))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm: out of memory for an accumulation panel (%d x %lld floats)", ACC_PANEL,
                    (long long)g->N);
  const size_t es = g->dt == TPMM_FLOAT32 ? 4 : 2;
  for (int64_t r0 = 0; r0 < M; r0 += ACC_PANEL) {
    const int64_t rows = M - r0 < ACC_PANEL ? M - r0 : ACC_PANEL;
    TPI_CHECK(product(g, rows, (const char *)A + (size_t)(r0 * lda) * es, lda, g->acc32, g->N));
    for (int64_t i = 0; i < rows; i++) {
      float *c = C + (r0 + i) * ldc;
      const float *p = g->acc32 + i * g->N;
      for (int64_t j = 0; j < g->N; j++) c[j] += p[j];
    }
  }
  return TPMM_SUCCESS;
}
