/*
 * gemm_dot.c — tpmm's own bf16 kernel for decode-sized calls with x2
 * transposed (torch's Linear layout): x2 read once, in place, no packing.
 *
 * Why: oneDNN 2.6 keeps a row's bits M-independent only through 512-column
 * K slices (gemm_dnnl.c), and its AMX kernel reads a transposed slice only
 * packed, so a one-shot call packed x2 every time: a pass over x2 that costs
 * 10x the memory-bound product at M = 1 (bench/RESULTS.md §18). This kernel
 * is bound by vdpbf16ps beyond a few rows, so it takes only small M
 * (TPI_DOT_MAX_ROWS; where AMX exists, TPI_DOT_FIRST_ROWS, and gemm_amx.c the
 * rest: tpi_gemm_own_kernel picks).
 *
 * The sum, whatever M or which rows run together: C[i][j] is 16 fp32 lanes,
 * lane l taking the k pairs (32t + 2l, 32t + 2l + 1), t = 0, 1, ..., in
 * order through vdpbf16ps (zeros past K), then the lanes added in one fixed
 * tree, (l, l+8), (l, l+4), (l, l+2), (0, 1); bias and one rounding last
 * (tpi_f32_add_to_bf16_n), as the sliced oneDNN path does.
 * Plans (x2 packed) keep a dense transposed copy and run the same sums.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "gemm.h"

/* The layout the kernel reads: column j of B contiguous in k. */
static int stored_transposed(const tpi_mat_t *x2) { return x2->rs == 1 && x2->cs != 1; }

int tpi_gemm_dot_takes(tpmm_dtype_t dt, const tpi_mat_t *x2, int64_t call_rows) {
  return dt == TPMM_BFLOAT16 && call_rows <= TPI_DOT_MAX_ROWS && stored_transposed(x2) && tpi_gemm_dot_usable();
}

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE inline __attribute__((always_inline))

typedef struct {
  const uint16_t *b; /* column j of B (contiguous in k) at b + j * ld */
  int64_t ld;
  uint16_t *copy; /* plans: dense transposed copy, owned */
  float *c32;     /* ROWS rows of fp32 sums before bias and rounding */
} dot_t;

enum { ROWS = 16 }; /* rows per pass through c32 in tpi_gemm_run */

int tpi_gemm_dot_usable(void) {
  static int v = -1; /* as tpi_have_avx512: a race to the same value, kept defined */
  int r = __atomic_load_n(&v, __ATOMIC_RELAXED);
  if (r < 0) __atomic_store_n(&v, r = tpi_have_avx512() && __builtin_cpu_supports("avx512bf16"), __ATOMIC_RELAXED);
  return r;
}

/* The fixed lane tree on one dot-product register. */
TGT static INLINE float lane_sum(__m512 v) {
  const __m256 a =
      _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

/* out[i][j] = row i of A . column j of B for RI rows and CJ columns, B transposed. */
TGT static INLINE void dot_block(int RI, int CJ, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb,
                                 int64_t K, float *out, int64_t ldo) {
  __m512 acc[4][4]; /* RI x CJ used; the pragmas keep them in registers */
#pragma GCC unroll 4
  for (int i = 0; i < RI; i++)
#pragma GCC unroll 4
    for (int j = 0; j < CJ; j++) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    const __mmask32 m = K - k >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << (K - k)) - 1;
    __m512i b[4];
#pragma GCC unroll 4
    for (int j = 0; j < CJ; j++) b[j] = _mm512_maskz_loadu_epi16(m, B + j * ldb + k);
#pragma GCC unroll 4
    for (int i = 0; i < RI; i++) {
      const __m512i a = _mm512_maskz_loadu_epi16(m, A + i * lda + k);
#pragma GCC unroll 4
      for (int j = 0; j < CJ; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a, (__m512bh)b[j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < RI; i++)
#pragma GCC unroll 4
    for (int j = 0; j < CJ; j++) out[i * ldo + j] = lane_sum(acc[i][j]);
}

#define DOT_CASE(ri, cj) dot_block(ri, cj, A, lda, B, ldb, K, out, ldo)
TGT static void dot_rows_cols(int ri, int cj, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, int64_t K,
                              float *out, int64_t ldo) {
  switch (ri * 8 + cj) {
    case 8 + 4: DOT_CASE(1, 4); break;
    case 16 + 4: DOT_CASE(2, 4); break;
    case 24 + 4: DOT_CASE(3, 4); break;
    case 32 + 4: DOT_CASE(4, 4); break;
    case 8 + 1: DOT_CASE(1, 1); break;
    case 16 + 1: DOT_CASE(2, 1); break;
    case 24 + 1: DOT_CASE(3, 1); break;
    default: DOT_CASE(4, 1); break;
  }
}

/* C32 rows [0, M) of columns [j0, j1), B transposed. */
TGT static void run_trans(const tpi_gemm_t *g, const dot_t *d, int64_t M, const uint16_t *A, int64_t lda, float *C,
                          int64_t ldc, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1;) {
    const int cj = j1 - j >= 4 ? 4 : 1;
    for (int64_t i = 0; i < M; i += 4)
      dot_rows_cols(M - i >= 4 ? 4 : (int)(M - i), cj, A + i * lda, lda, d->b + j * d->ld, d->ld, g->K, C + i * ldc + j,
                    ldc);
    j += cj;
  }
}

static tpmm_status_t dot_f32(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc) {
  dot_t *d = g->impl;
  /* threads split the columns: an element's sum is the same whoever computes it */
  const int nt = g->nthreads > 1 ? g->nthreads : 1;
  const int64_t units = (g->N + 3) / 4;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int t = 0; t < nt; t++) {
    const int64_t j0 = units * t / nt * 4, j1 = units * (t + 1) / nt * 4;
    run_trans(g, d, M, A, lda, C, ldc, j0, j1 < g->N ? j1 : g->N);
  }
  return TPMM_SUCCESS;
}

static tpmm_status_t dot_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc) {
  dot_t *d = g->impl;
  for (int64_t r0 = 0; r0 < M; r0 += ROWS) {
    const int64_t rows = M - r0 < ROWS ? M - r0 : ROWS;
    TPI_CHECK(dot_f32(g, rows, (const uint16_t *)A + r0 * lda, lda, d->c32, g->N));
    for (int64_t i = 0; i < rows; i++)
      tpi_f32_add_to_bf16_n(d->c32 + i * g->N, g->bias32, (uint16_t *)C + (r0 + i) * ldc, (size_t)g->N);
  }
  return TPMM_SUCCESS;
}

/* x2 (transposed, column j at b->data + j * b->cs) for the kernel: in place, or into the plan's dense copy. */
static tpmm_status_t dot_rebind(tpi_gemm_t *g, const tpi_mat_t *b) {
  dot_t *d = g->impl;
  if (!stored_transposed(b))
    return tpi_fail(TPMM_ERR_INTERNAL, "gemm(dot): x2 not stored transposed (strides %lld, %lld)", (long long)b->rs,
                    (long long)b->cs);
  if (!d->copy) {
    d->b = (const uint16_t *)b->data, d->ld = b->cs;
    return TPMM_SUCCESS;
  }
  for (int64_t j = 0; j < g->N; j++)
    memcpy(d->copy + j * g->K, (const uint16_t *)b->data + j * b->cs, (size_t)g->K * 2);
  return TPMM_SUCCESS;
}

static tpmm_status_t dot_prepare(tpi_gemm_t *g, const tpi_mat_t *b) {
  dot_t *d = calloc(1, sizeof *d);
  if (!d) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dot): out of memory");
  g->impl = d;
  if (g->pack) { /* plans only (gemm.c) */
    if (!(d->copy = malloc((size_t)(g->K * g->N + 1) * 2)))
      return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dot): out of memory copying x2 (%lld x %lld)", (long long)g->K,
                      (long long)g->N);
    d->b = d->copy, d->ld = g->K;
  }
  TPI_CHECK(dot_rebind(g, b));
  if (!(d->c32 = malloc((size_t)(ROWS * g->N + 1) * sizeof(float))))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dot): out of memory for %d x %lld floats", ROWS, (long long)g->N);
  return TPMM_SUCCESS;
}

static void dot_release(tpi_gemm_t *g) {
  dot_t *d = g->impl;
  free(d->copy), free(d->c32);
  free(d);
  g->impl = NULL;
}

static int dot_supports(tpmm_dtype_t dt) { return dt == TPMM_BFLOAT16 && tpi_gemm_dot_usable(); }

const tpi_gemm_backend_t tpi_gemm_dot = {"dot",       dot_supports, dot_prepare, dot_run,
                                         dot_release, dot_rebind,   dot_f32,     0};
#else
int tpi_gemm_dot_usable(void) { return 0; } /* no AVX512-BF16: tpi_gemm_create never picks dot */
static int dot_supports(tpmm_dtype_t dt) { return (void)dt, 0; }
const tpi_gemm_backend_t tpi_gemm_dot = {"dot", dot_supports, NULL, NULL, NULL, NULL, NULL, 0};
#endif
