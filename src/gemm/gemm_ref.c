/*
 * gemm_ref.c — the reference GEMM backend: portable C, bf16 and fp32 (fp16 is
 * widened by the framework). Exists so that every dtype works without
 * oneDNN (TPMM_GEMM=ref) and as an independent check in tests.
 * Each C element is an fp32 sum in k order, bias added last, one rounding.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "gemm.h"

typedef struct {
  float *b;   /* dense K x N fp32 */
  float *row; /* K floats of A, N floats of accumulators */
} ref_t;

static int ref_supports(tpmm_dtype_t dt) { return dt == TPMM_BFLOAT16 || dt == TPMM_FLOAT32; }

/* B into the dense fp32 copy (the reference always copies). */
static tpmm_status_t ref_rebind(tpi_gemm_t *g, const tpi_mat_t *b) {
  ref_t *r = g->impl;
  for (int64_t i = 0; i < g->K; i++)
    for (int64_t j = 0; j < g->N; j++) {
      int64_t off = i * b->rs + j * b->cs;
      r->b[i * g->N + j] =
          g->cdt == TPMM_BFLOAT16 ? tpi_bf16_to_f32(((const uint16_t *)b->data)[off]) : ((const float *)b->data)[off];
    }
  return TPMM_SUCCESS;
}

static tpmm_status_t ref_prepare(tpi_gemm_t *g, const tpi_mat_t *b) {
  ref_t *r = calloc(1, sizeof *r);
  if (!r) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(ref): out of memory");
  g->impl = r;
  r->b = malloc((size_t)(g->K * g->N + 1) * sizeof(float));
  r->row = malloc((size_t)(g->K + g->N + 1) * sizeof(float));
  if (!r->b || !r->row) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(ref): out of memory for B");
  return ref_rebind(g, b);
}

/* acc = row i of A @ B, an fp32 sum in k order. */
static float *ref_row(tpi_gemm_t *g, ref_t *r, const void *A, int64_t lda, int64_t i) {
  float *a = r->row, *acc = r->row + g->K;
  if (g->cdt == TPMM_BFLOAT16)
    tpi_bf16_to_f32_n((const uint16_t *)A + i * lda, a, (size_t)g->K);
  else
    a = (float *)A + i * lda;
  for (int64_t j = 0; j < g->N; j++) acc[j] = 0.0f;
  for (int64_t k = 0; k < g->K; k++) {
    const float aik = a[k], *bk = r->b + k * g->N;
    for (int64_t j = 0; j < g->N; j++) acc[j] += aik * bk[j];
  }
  return acc;
}

static tpmm_status_t ref_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc) {
  ref_t *r = g->impl;
  for (int64_t i = 0; i < M; i++) {
    float *acc = ref_row(g, r, A, lda, i);
    if (g->bias32)
      for (int64_t j = 0; j < g->N; j++) acc[j] += g->bias32[j];
    if (g->cdt == TPMM_BFLOAT16)
      tpi_f32_to_bf16_n(acc, (uint16_t *)C + i * ldc, (size_t)g->N);
    else
      for (int64_t j = 0; j < g->N; j++) ((float *)C)[i * ldc + j] = acc[j];
  }
  return TPMM_SUCCESS;
}

static tpmm_status_t ref_run_f32(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc) {
  ref_t *r = g->impl;
  for (int64_t i = 0; i < M; i++) memcpy(C + i * ldc, ref_row(g, r, A, lda, i), (size_t)g->N * sizeof(float));
  return TPMM_SUCCESS;
}

static void ref_release(tpi_gemm_t *g) {
  ref_t *r = g->impl;
  free(r->b);
  free(r->row);
  free(r);
  g->impl = NULL;
}

const tpi_gemm_backend_t tpi_gemm_ref = {"ref",       ref_supports, ref_prepare, ref_run,
                                         ref_release, ref_rebind,   ref_run_f32, 0};
