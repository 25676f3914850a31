/*
 * gemm_cache.c — one-shot calls keep their GEMM setup: a small LRU per group
 * of tpi_gemm_t (oneDNN stream, pinned kernel, B views or packed memories,
 * created primitives), so that a call with a shape seen before only points
 * the setup at its x2 and bias, or packs them again (tpi_gemm_rebind),
 * instead of building it.
 *
 * Key: everything the setup depends on except data pointers — the operator,
 * the dtype, K, N, x2's strides, whether there is a bias and its dtype, the
 * GEMM threads, the backend, the hinted M and call rows, whether x2 is packed. Data
 * pointers are not in it: every hit rebinds, so freed or reused buffers are
 * safe.
 * Ownership: the cache owns its entries; a plan holding one (gemm_cached)
 * never destroys it; the group frees the cache (gemm_cache_release).
 * Plans' setups (lifetime INT64_MAX) are their own, and packed fp16 ones
 * (their fp32 widening is gone) cannot be rebound: neither is cached.
 * Threads: operations on one group are serialised by contract, so at most
 * one call uses an entry at a time.
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

enum { ENTRIES = 8 };

typedef struct { /* int64_t only: no padding, compared bytewise */
  int64_t op, dt, k, n, rs, cs, bias, bias_dt, nthreads, backend, m_hint, call_rows, pack;
} setup_t;

typedef struct {
  setup_t key;
  tpi_gemm_t *gemm; /* NULL: free */
  uint64_t used;
} entry_t;

struct tpi_gemm_cache {
  entry_t e[ENTRIES];
  uint64_t clock;
};

static void release(tpi_group_t *g) {
  for (int i = 0; g->gemm_cache && i < ENTRIES; i++) tpi_gemm_destroy(g->gemm_cache->e[i].gemm);
  free(g->gemm_cache);
  g->gemm_cache = NULL;
}

/* The entry for key: its own, else a free one, else the least recently used (emptied). */
static entry_t *find(struct tpi_gemm_cache *c, const setup_t *key, int *hit) {
  entry_t *v = &c->e[0];
  for (int i = 0; i < ENTRIES; i++) {
    entry_t *e = &c->e[i];
    if (e->gemm && memcmp(&e->key, key, sizeof *key) == 0) return *hit = 1, e;
    if (!v->gemm) continue;
    if (!e->gemm || e->used < v->used) v = e;
  }
  *hit = 0;
  tpi_gemm_destroy(v->gemm);
  v->gemm = NULL;
  return v;
}

tpmm_status_t tpi_gemm_cached(tpi_plan_t *p, const char *op, tpmm_dtype_t dt, const tpi_mat_t *x2, const void *bias,
                              tpmm_dtype_t bias_dt, int64_t m_hint, int64_t call_rows, int64_t lifetime_rows) {
  tpi_group_t *g = p->g;
  p->gemm_cached = 0;
  const int pack = tpi_gemm_packs(dt, x2, lifetime_rows);
  if (lifetime_rows == INT64_MAX || (pack && !tpi_gemm_rebinds_packed(dt)))
    return tpi_gemm_create(&p->gemm, dt, x2, bias, bias_dt, m_hint, call_rows, lifetime_rows);
  if (!g->gemm_cache) {
    if (!(g->gemm_cache = calloc(1, sizeof *g->gemm_cache)))
      return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for the GEMM cache", op);
    g->gemm_cache_release = release;
  }
  const setup_t key = {p->op->kind,
                       dt,
                       x2->rows,
                       x2->cols,
                       x2->rs,
                       x2->cs,
                       bias != NULL,
                       bias ? bias_dt : 0,
                       tpi_params.num_threads,
                       tpi_params.gemm,
                       m_hint,
                       call_rows,
                       pack};
  int hit;
  entry_t *e = find(g->gemm_cache, &key, &hit);
  if (hit && tpi_gemm_rebind(e->gemm, x2, bias, bias_dt) != TPMM_SUCCESS) {
    tpi_clear_error(); /* not expected; a fresh setup stands in */
    tpi_gemm_destroy(e->gemm);
    e->gemm = NULL;
  }
  if (!e->gemm) TPI_CHECK(tpi_gemm_create(&e->gemm, dt, x2, bias, bias_dt, m_hint, call_rows, lifetime_rows));
  e->key = key;
  e->used = ++g->gemm_cache->clock;
  p->gemm = e->gemm;
  p->gemm_cached = 1;
  return TPMM_SUCCESS;
}
