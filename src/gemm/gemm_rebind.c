/*
 * gemm_rebind.c — tpi_gemm_set_b: a prepared, unpacked GEMM pointed at new
 * rows of x2 of the same shape. gather_index 1 multiplies each panel of x2
 * as it arrives; preparing a GEMM per panel cost a primitive descriptor per
 * panel (0.3-0.6 ms each, measured at 512 x 512 x 1024 bf16); a rebind costs
 * a pointer (oneDNN, x2 used in place), one reorder (oneDNN, packed x2), or
 * the conversion of the panel (fp16 widening, the reference backend).
 */
#include <stdlib.h>

#include "../common/half.h"
#include "gemm.h"

tpmm_status_t tpi_gemm_set_b(tpi_gemm_t *g, const void *x2) {
  if (!g->be->set_b) return tpi_fail(TPMM_ERR_INTERNAL, "gemm(%s): x2 cannot be rebound", g->be->name);
  if (g->cdt == g->dt) return g->be->set_b(g, x2);
  /* fp16: widen into bwide (the backend's plain B, or, packed, the reorder's source) */
  if (!g->bwide && !(g->bwide = malloc((size_t)(g->K * g->N + 1) * sizeof(float))))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm: out of memory widening x2 (%lld x %lld)", (long long)g->K,
                    (long long)g->N);
  tpi_f16_to_f32_n(x2, g->bwide, (size_t)(g->K * g->N));
  return g->be->set_b(g, g->bwide);
}
