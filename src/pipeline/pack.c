/*
 * pack.c — moving rows around: packing the local shard to the canonical
 * dense row-major (m x k) form every transport sends, and copying gathered
 * rows into gather_out. The canonical form makes the transports oblivious to
 * ld and trans_input: they only ever move contiguous rows.
 */
#include <string.h>

#include "pipeline.h"

tpmm_status_t tpi_local_shard(tpi_plan_t *p, const char *op, const char **shard) {
  const tpi_call_t *a = &p->a;
  const tpi_mat_t *in = &a->in;
  if (tpi_input_dense(a)) {
    *shard = in->data;
    return TPMM_SUCCESS;
  }
  TPI_CHECK(tpi_ws_reserve(&p->send, &p->send_bytes, (size_t)(a->m * a->k) * a->esize, op, "the packed input shard"));
  char *d = p->send;
  tpi_copy_dense(d, in->data, a->m, a->k, in->rs, in->cs, a->esize);
  *shard = d;
  return TPMM_SUCCESS;
}

void tpi_copy_rows(const tpi_call_t *a, const char *src, int64_t rows, int64_t g0) {
  const size_t es = a->esize, rb = tpi_row_bytes(a); /* input's rows, or x2's (gather_index 1) */
  char *dst = a->gout.data + (size_t)(g0 * a->gout.rs) * es;
  if ((size_t)a->gout.rs * es == rb) {
    memcpy(dst, src, rb * (size_t)rows);
    return;
  }
  for (int64_t i = 0; i < rows; i++) memcpy(dst + (size_t)(i * a->gout.rs) * es, src + rb * (size_t)i, rb);
}
