/*
 * gemm.c — the GEMM framework: backend choice, bias conversion, and the
 * widening path for half types the backend cannot multiply natively: fp16
 * always (no library here has it), bf16 where oneDNN has no bf16 kernel for
 * the CPU (before AVX-512: oneDNN 2.6 needs avx512_core for bf16).
 *
 * Widening: x2 is converted to fp32 once (then packed by the fp32 backend);
 * each run converts A in row panels of `panel` rows to fp32 (exact for both
 * types), multiplies with the fp32 backend into an fp32 tile and rounds that
 * tile once (round-to-nearest-even). Products of two halves are exact in
 * fp32, so the result is the contract's: fp32 accumulation, one rounding.
 * The panel keeps the scratch in L2/L3 and makes the conversions O(M(K+N))
 * against the O(MNK) multiply.
 */
#include "gemm.h"

#include <stdlib.h>

#include "../common/debug.h"
#include "../common/half.h"
#include "gemm_dnnl.h" /* tpi_dn_has_bf16 */

/* The backends by tpmm_gemm_t (TPMM_PARAM_GEMM, bounded by param.c). */
static const tpi_gemm_backend_t *const backends[] = {
    [TPMM_GEMM_DNNL] = &tpi_gemm_dnnl, [TPMM_GEMM_REF] = &tpi_gemm_ref};

void tpi_gemm_widen_n(tpmm_dtype_t dt, const uint16_t *src, float *dst, size_t n) {
  if (dt == TPMM_FLOAT16)
    tpi_f16_to_f32_n(src, dst, n);
  else
    tpi_bf16_to_f32_n(src, dst, n);
}

void tpi_gemm_narrow_n(tpmm_dtype_t dt, const float *src, uint16_t *dst, size_t n) {
  if (dt == TPMM_FLOAT16)
    tpi_f32_to_f16_n(src, dst, n);
  else
    tpi_f32_to_bf16_n(src, dst, n);
}

float tpi_gemm_elem_f32(const void *p, tpmm_dtype_t dt, int64_t i) {
  switch (dt) {
    case TPMM_FLOAT16: return tpi_f16_to_f32(((const uint16_t *)p)[i]);
    case TPMM_BFLOAT16: return tpi_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
  }
}

/* d = the strided half matrix v (dtype dt), dense in fp32. */
static void widen_into(tpmm_dtype_t dt, float *d, const tpi_mat_t *v) {
  for (int64_t i = 0; i < v->rows; i++) {
    const uint16_t *row = (const uint16_t *)v->data + i * v->rs;
    if (v->cs == 1)
      tpi_gemm_widen_n(dt, row, d + i * v->cols, (size_t)v->cols);
    else
      for (int64_t j = 0; j < v->cols; j++) d[i * v->cols + j] = tpi_gemm_elem_f32(row, dt, j * v->cs);
  }
}

/* Dense fp32 copy of a strided half matrix. */
static float *widen_matrix(tpmm_dtype_t dt, const tpi_mat_t *v) {
  float *d = malloc((size_t)(v->rows * v->cols > 0 ? v->rows * v->cols : 1) * sizeof(float));
  if (d) widen_into(dt, d, v);
  return d;
}

int tpi_gemm_packs(tpmm_dtype_t dt, const tpi_mat_t *x2, int64_t lifetime_rows) {
  const int trans = dt == TPMM_BFLOAT16 && x2->cs != 1;
  if (lifetime_rows >= TPI_PACK_MIN_ROWS || (trans && lifetime_rows >= TPI_PACK_TRANS_MIN_ROWS)) return 1;
  return trans && lifetime_rows > 0 ? TPI_PACK_IF_DIRECT : 0;
}

const tpi_gemm_backend_t *tpi_gemm_own_kernel(tpmm_dtype_t dt, const tpi_mat_t *x2, int64_t call_rows) {
  if (tpi_params.gemm != TPMM_GEMM_DNNL || (dt == TPMM_BFLOAT16 && tpi_debug.pre_avx512)) return NULL;
  const int dot = tpi_gemm_dot_takes(dt, x2, call_rows);
  if (dot && call_rows <= TPI_DOT_FIRST_ROWS) return &tpi_gemm_dot;
  if (!tpi_debug.no_amx && tpi_gemm_amx_takes(dt, x2)) return &tpi_gemm_amx;
  return dot ? &tpi_gemm_dot : NULL;
}

int tpi_gemm_avx2_takes(void) {
  return tpi_params.gemm == TPMM_GEMM_DNNL && tpi_gemm_avx2_usable() &&
         (!tpi_have_avx512() || !tpi_dn_has_bf16() || tpi_debug.pre_avx512);
}

/* Whether a setup of dt (not on one of tpmm's own bf16 kernels) is widened to fp32. */
static int widened(tpmm_dtype_t dt) {
  const tpi_gemm_backend_t *be = backends[tpi_params.gemm];
  return !be->supports(dt) || (dt == TPMM_BFLOAT16 && be == &tpi_gemm_dnnl && tpi_debug.pre_avx512);
}

int tpi_gemm_rebinds_packed(tpmm_dtype_t dt) { return !widened(dt) || tpi_gemm_avx2_takes(); }

static __thread const tpi_gemm_backend_t *forced; /* tpi_gemm_create_on's backend, else NULL */

tpmm_status_t tpi_gemm_create_on(tpi_gemm_t **out, const tpi_gemm_backend_t *be, const tpi_mat_t *x2, const float *bias,
                                 int64_t rows) {
  forced = be;
  const tpmm_status_t st = tpi_gemm_create(out, TPMM_BFLOAT16, x2, bias, TPMM_FLOAT32, rows, rows, 1);
  forced = NULL;
  return st;
}

tpmm_status_t tpi_gemm_create(tpi_gemm_t **out, tpmm_dtype_t dt, const tpi_mat_t *x2, const void *bias,
                              tpmm_dtype_t bias_dt, int64_t m_hint, int64_t call_rows, int64_t lifetime_rows) {
  static const char op[] = "gemm";
  tpmm_status_t st;
  tpi_gemm_t *g = calloc(1, sizeof *g);
  if (!g) return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory", op);
  g->dt = g->cdt = dt;
  g->K = x2->rows;
  g->N = x2->cols;
  g->nthreads = tpi_params.num_threads;
  g->m_hint = m_hint > 0 ? m_hint : 1;
  g->pack = tpi_gemm_packs(dt, x2, lifetime_rows);
  g->be = backends[tpi_params.gemm];
  const tpi_gemm_backend_t *own = g->be == &tpi_gemm_dnnl ? tpi_gemm_own_kernel(dt, x2, call_rows) : NULL;
  if (!forced && !own && g->be == &tpi_gemm_dnnl && tpi_gemm_bf16r_takes(dt, x2, call_rows, lifetime_rows))
    own = &tpi_gemm_bf16r; /* after AMX and dot: one-shot calls only */
  if (forced) g->be = forced, own = forced == &tpi_gemm_dnnl ? NULL : forced;
  if (own) g->be = own, g->pack = lifetime_rows == INT64_MAX; /* read in place; plans keep a copy */
  if (!own && widened(dt)) {
    g->cdt = TPMM_FLOAT32; /* a half type the backend cannot multiply */
    if (!g->be->supports(TPMM_FLOAT32)) g->be = &tpi_gemm_ref;
  }
  if (g->cdt == TPMM_FLOAT32 && tpi_gemm_avx2_takes())
    g->be = &tpi_gemm_avx2; /* oneDNN's AVX2 sgemm is not M-independent (gemm_avx2.c) */
  if (g->pack == TPI_PACK_IF_DIRECT && g->be != &tpi_gemm_dnnl) g->pack = 0; /* only dnnl packs directly */
  if (bias) {
    g->bias32 = malloc((size_t)(g->N > 0 ? g->N : 1) * sizeof(float));
    if (!g->bias32) goto oom;
    for (int64_t j = 0; j < g->N; j++) g->bias32[j] = tpi_gemm_elem_f32(bias, bias_dt, j);
  }
  if (g->cdt != dt) {
    /* widen: B to fp32 once (or the backend does as it packs); A/C scratch for one panel */
    if (!g->be->widens && !(g->bwide = widen_matrix(dt, x2))) goto oom; /* kept: an unpacked backend reads it */
    tpi_mat_t b = g->bwide ? (tpi_mat_t){(char *)g->bwide, x2->rows, x2->cols, x2->cols, 1} : *x2;
    st = g->be->prepare(g, &b);
    if (st != TPMM_SUCCESS) goto fail;
    if (g->pack && g->bwide) {
      free(g->bwide);
      g->bwide = NULL;
    }
    /* fixed: m_hint-sized panels made small-m plans stream all of x2 per few rows (bench/RESULTS.md §1) */
    g->panel = 256;
    g->a32 = malloc((size_t)(g->panel * (g->K > 0 ? g->K : 1)) * sizeof(float));
    g->c32 = malloc((size_t)(g->panel * (g->N > 0 ? g->N : 1)) * sizeof(float));
    if (!g->a32 || !g->c32) goto oom;
  } else {
    g->cdt = dt;
    st = g->be->prepare(g, x2);
    if (st != TPMM_SUCCESS) goto fail;
  }
  *out = g;
  return TPMM_SUCCESS;
oom:
  st = tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory preparing x2 (%lld x %lld)", op, (long long)x2->rows,
                (long long)x2->cols);
fail:
  tpi_gemm_destroy(g);
  return st;
}

int64_t tpi_gemm_row_bound(const tpi_gemm_t *g) { return g->be == &tpi_gemm_dot ? TPI_DOT_MAX_ROWS : 0; }

int64_t tpi_gemm_row_block(const tpi_gemm_t *g) {
  return g->be == &tpi_gemm_avx2 ? TPI_GEMM_AVX2_ROWS : g->be == &tpi_gemm_amx ? TPI_GEMM_AMX_ROWS : 1;
}

int64_t tpi_gemm_cost_rows(const tpi_gemm_t *g, int64_t M) {
  const int64_t f = TPI_GEMM_F32_ROWS;
  return g->cdt == TPMM_BFLOAT16 && g->be == &tpi_gemm_dnnl ? (M + f - 1) / f * f : M;
}

tpmm_status_t tpi_gemm_rebind(tpi_gemm_t *g, const tpi_mat_t *x2, const void *bias, tpmm_dtype_t bias_dt) {
  if ((g->pack && g->cdt != g->dt && !g->be->widens) || !g->be->rebind || x2->rows != g->K || x2->cols != g->N ||
      !bias != !g->bias32)
    return tpi_fail(TPMM_ERR_INTERNAL, "gemm: rebind of a packed widened x2, or to another shape or bias");
  for (int64_t j = 0; bias && j < g->N; j++) g->bias32[j] = tpi_gemm_elem_f32(bias, bias_dt, j);
  if (!g->bwide) return g->be->rebind(g, x2);
  widen_into(g->dt, g->bwide, x2); /* widened: the backend reads this copy */
  const tpi_mat_t b = {(char *)g->bwide, x2->rows, x2->cols, x2->cols, 1};
  return g->be->rebind(g, &b);
}

tpmm_status_t tpi_gemm_set_b(tpi_gemm_t *g, const void *x2) {
  const tpi_mat_t b = {(char *)x2, g->K, g->N, g->N, 1};
  return tpi_gemm_rebind(g, &b, NULL, g->dt);
}

tpmm_status_t tpi_gemm_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc) {
  if (M == 0 || g->N == 0) return TPMM_SUCCESS;
  if (g->cdt == g->dt) return g->be->run(g, M, A, lda, C, ldc);
  /* widened, one panel at a time */
  for (int64_t r0 = 0; r0 < M; r0 += g->panel) {
    int64_t rows = M - r0 < g->panel ? M - r0 : g->panel;
    const uint16_t *a = (const uint16_t *)A + r0 * lda;
    for (int64_t i = 0; i < rows; i++) tpi_gemm_widen_n(g->dt, a + i * lda, g->a32 + i * g->K, (size_t)g->K);
    TPI_CHECK(g->be->run(g, rows, g->a32, g->K, g->c32, g->N));
    uint16_t *c = (uint16_t *)C + r0 * ldc;
    for (int64_t i = 0; i < rows; i++) tpi_gemm_narrow_n(g->dt, g->c32 + i * g->N, c + i * ldc, (size_t)g->N);
  }
  return TPMM_SUCCESS;
}

void tpi_gemm_destroy(tpi_gemm_t *g) {
  if (!g) return;
  if (g->be && g->impl) g->be->release(g);
  free(g->bias32);
  free(g->bwide);
  free(g->a32);
  free(g->c32);
  free(g->acc32);
  free(g);
}
