/*
 * x2g.c — gather_index 1 (not implemented yet).
 */
#include "pipeline.h"

tpmm_status_t tpi_x2g_prepare(tpi_plan_t *p, const char *op, int need_data) {
  (void)p, (void)need_data;
  return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: gather_index=1 (gather x2) is not supported yet; use 0", op);
}

void tpi_x2g_free(tpi_plan_t *p) { p->x2g = NULL; }
