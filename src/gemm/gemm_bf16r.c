/*
 * gemm_bf16r.c — tpmm's own bf16 kernel for decode-sized one-shot calls on
 * AVX-512 CPUs without AMX, x2 row-major, read once and in place.
 *
 * Why: oneDNN 2.6's kernel here (brg:avx512_core_bf16) copies a plain x2
 * into its blocked layout on every call, a second pass over x2 that costs a
 * decode call about as much as the product: a one-shot call at 2 x 4096 x
 * 4096 took 1.7x a plan's (bench/RESULTS.md §30). This kernel pairs x2's
 * rows k and k+1 in registers (vpunpck{l,h}wd) as it streams them; calls
 * of 9-16 rows run their two 8-row register blocks through each panel of x2
 * in turn, so x2 still comes from memory once.
 *
 * The sum is oneDNN's, bit for bit, so plans (oneDNN's packed copy) and
 * larger calls give the same bits: C[i][j] takes vdpbf16ps over the k pairs
 * (k, k+1), k even, in order (zero past K), in blocks of 1024 k (512 where
 * K <= 1024), each block from +0; the first block's sum is the total, each
 * later one is added to it as the first operand (blk + total: its NaN wins,
 * as oneDNN's); then total + bias and one rounding (vcvtneps2bf16). A probe
 * against oneDNN on first use (odd K over three 1024 blocks and over two 512
 * ones, a column tail, bias, NaNs in every block) must agree bit for bit, or
 * the kernel is never used (another oneDNN, another blocking).
 */
#include <stdlib.h>
#include <string.h>

#include "../common/debug.h"
#include "../common/half.h" /* tpi_have_avx512 */
#include "gemm.h"
#include "gemm_dnnl.h" /* tpi_dn_has_bf16 */

static int stored_row_major(const tpi_mat_t *x2) { return x2->cs == 1 && x2->rs >= x2->cols; }

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE inline __attribute__((always_inline))

/* R rows of A per register block; passes of up to MR rows share each panel of x2 (one pass over x2 from
 * memory); columns in chunks whose block sums for the pass's rows fit in BR_L2 bytes (blk; tot as much) */
enum { R = 8, MR = TPI_BF16R_MAX_ROWS, BR_COLS = 32, BR_STRIP = 32, BR_L2 = 256 << 10 };

/* oneDNN's k block on these CPUs (brgemm_matmul_utils.cpp, avx512 without AMX; bench/RESULTS.md §30.7) */
static int64_t k_block(int64_t K) { return K > 1024 ? 1024 : 512; }

typedef struct {
  const uint16_t *b; /* row k of x2 at b + k * ld */
  int64_t ld;
  float *blk, *tot; /* rows x nc fp32 each: the block's sums, the running total (columns as unpack orders them) */
  int64_t np;       /* N rounded up to BR_COLS */
} bf16r_t;

/* The columns per chunk for passes of `rows` rows, a multiple of BR_COLS (0 where N is): all of them where
 * the sums fit. */
static int64_t chunk_cols(int64_t np, int64_t rows) {
  int64_t nc = BR_L2 / (int64_t)sizeof(float) / (rows > 0 ? rows : 1) / BR_COLS * BR_COLS;
  nc = nc < BR_COLS ? BR_COLS : nc;
  return nc < np ? nc : np;
}

/* The lanes of a panel with `left` columns before N: all 32, or the first `left`. */
static INLINE __mmask32 panel_mask(int64_t left) { return left >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << left) - 1; }

/* a + b, a the first source: its NaN wins when both are NaN (no compiler may swap them) */
TGT static INLINE __m512 add_first(__m512 a, __m512 b) {
  __m512 r;
  __asm__("vaddps %2, %1, %0" : "=v"(r) : "v"(a), "v"(b));
  return r;
}

/* blk (RI rows, stride nc) += rows [0, RI) of A times the panel of x2's rows [k0, k1) (k0 even) at columns
 * [j0, j0 + BR_COLS) (m masks past N). In a panel, dword lane 4L + q of unpacklo is column 8L + q, of unpackhi
 * 8L + 4 + q (blk keeps that order). pbm 0: x2 alone; 1: also keeps the pairs in pb; 2: takes them from pb
 * (x2's rows, ld apart, share one L1 set where ld is a multiple of 4 KiB, and leave L1 before later rows
 * come: 9 x 8192 x 2048 took 5.4 ms reading x2 again, 3.4 from pb). */
TGT static INLINE void panel(int RI, int pbm, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, int64_t K,
                             int64_t j0, __mmask32 m, int64_t k0, int64_t k1, float *blk, int64_t nc, __m512i *pb) {
  __m512 acc[R][2];
#pragma GCC unroll 8
  for (int i = 0; i < RI; i++)
    acc[i][0] = _mm512_loadu_ps(blk + i * nc), acc[i][1] = _mm512_loadu_ps(blk + i * nc + 16);
  for (int64_t k = k0; k < k1; k += 2) {
    const int pair = k + 1 < K;
    __m512i lo, hi;
    if (pbm == 2) {
      lo = _mm512_load_si512(pb + (k - k0)), hi = _mm512_load_si512(pb + (k - k0) + 1);
    } else {
      const uint16_t *r0 = B + k * ldb + j0;
      _mm_prefetch((const char *)(r0 + 4 * BR_COLS), _MM_HINT_T0);
      const __m512i x0 = _mm512_maskz_loadu_epi16(m, r0);
      const __m512i x1 = pair ? _mm512_maskz_loadu_epi16(m, r0 + ldb) : _mm512_setzero_si512();
      if (pair) _mm_prefetch((const char *)(r0 + ldb + 4 * BR_COLS), _MM_HINT_T0);
      lo = _mm512_unpacklo_epi16(x0, x1), hi = _mm512_unpackhi_epi16(x0, x1);
      if (pbm == 1) _mm512_store_si512(pb + (k - k0), lo), _mm512_store_si512(pb + (k - k0) + 1, hi);
    }
#pragma GCC unroll 8
    for (int i = 0; i < RI; i++) {
      uint32_t w = A[i * lda + k];
      if (pair) memcpy(&w, A + i * lda + k, 4); /* (k, k+1): k in the low half, as x2's pairs */
      const __m512i a = _mm512_set1_epi32((int)w);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], (__m512bh)a, (__m512bh)lo);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], (__m512bh)a, (__m512bh)hi);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < RI; i++)
    _mm512_storeu_ps(blk + i * nc, acc[i][0]), _mm512_storeu_ps(blk + i * nc + 16, acc[i][1]);
}

/* One block of RI <= R rows through every panel of the chunk (the loop specialised with the block). */
TGT static INLINE void panels(int RI, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, int64_t K,
                              int64_t N, int64_t c0, int64_t nc, int64_t k0, int64_t k1, float *blk) {
  for (int64_t j0 = 0; j0 < nc && c0 + j0 < N; j0 += BR_COLS)
    panel(RI, 0, A, lda, B, ldb, K, j0 + c0, panel_mask(N - c0 - j0), k0, k1, blk + j0, nc, NULL);
}

/* CASE(ri) specialised for a block of `rows` rows, 1 <= rows <= R. */
#define BLOCK_SWITCH(rows, CASE) \
  switch (rows) {                \
    case 1: CASE(1); break;      \
    case 2: CASE(2); break;      \
    case 3: CASE(3); break;      \
    case 4: CASE(4); break;      \
    case 5: CASE(5); break;      \
    case 6: CASE(6); break;      \
    case 7: CASE(7); break;      \
    default: CASE(8); break;     \
  }
#define PANELS_CASE(ri) panels(ri, A, lda, B, ldb, K, N, c0, nc, k0, k1, blk)
#define PANEL_CASE(ri) panel(ri, i0 ? 2 : 1, Ai, lda, B, ldb, K, j0 + c0, m, k0, k1, blk + i0 * nc + j0, nc, pb)
/* blk += rows [0, M) of A times x2's rows [k0, k1) at columns [c0, c0 + nc): a strip of x2's rows read along
 * them, a panel after the other (each row a stream); past R rows, every R-row block of A through each panel
 * in turn, so that x2 comes from memory once. */
TGT static void strip(int64_t M, const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, int64_t K, int64_t N,
                      int64_t c0, int64_t nc, int64_t k0, int64_t k1, float *blk) {
  if (M <= R) { /* one block: the panel loop specialised with it (a switch per panel costs 8-row calls 10 %) */
    BLOCK_SWITCH(M, PANELS_CASE);
    return;
  }
  __m512i pb[BR_STRIP]; /* the panel's pairs, (lo, hi) per k pair, for the blocks after the first */
  for (int64_t j0 = 0; j0 < nc && c0 + j0 < N; j0 += BR_COLS) {
    const __mmask32 m = panel_mask(N - c0 - j0);
    for (int64_t i0 = 0; i0 < M; i0 += R) {
      const uint16_t *Ai = A + i0 * lda;
      BLOCK_SWITCH(M - i0 < R ? (int)(M - i0) : R, PANEL_CASE);
    }
  }
}

/* fp32 sums (f32: C is float, no bias) or bias and one rounding to bf16, M rows, up to MR at a time, over
 * column chunks whose sums stay in L2. */
TGT static void run_rows(const tpi_gemm_t *g, int64_t M, const uint16_t *A, int64_t lda, void *C, int64_t ldc,
                         int f32) {
  const bf16r_t *d = g->impl;
  const int64_t K = g->K, N = g->N, kblk = k_block(K);
  const __m512i ix0 = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
  const __m512i ix1 = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
  for (int64_t r0 = 0; r0 < M; r0 += MR) {
    const int64_t mr = M - r0 < MR ? M - r0 : MR, nc = chunk_cols(d->np, mr);
    const uint16_t *Ar = A + r0 * lda;
    for (int64_t c0 = 0; c0 < N; c0 += nc) {
      memset(d->tot, 0, (size_t)(mr * nc) * sizeof(float)); /* K = 0: +0 */
      for (int64_t kb = 0; kb < K; kb += kblk) {
        const int64_t kb1 = K - kb < kblk ? K : kb + kblk;
        memset(d->blk, 0, (size_t)(mr * nc) * sizeof(float));
        for (int64_t k = kb; k < kb1; k += BR_STRIP)
          strip(mr, Ar, lda, d->b, d->ld, K, N, c0, nc, k, kb1 - k < BR_STRIP ? kb1 : k + BR_STRIP, d->blk);
        if (kb == 0) { /* the first block is the total (a -0 stays -0) */
          memcpy(d->tot, d->blk, (size_t)(mr * nc) * sizeof(float));
          continue;
        }
        for (int64_t e = 0; e < mr * nc; e += 16) /* the block's sum first */
          _mm512_storeu_ps(d->tot + e, add_first(_mm512_loadu_ps(d->blk + e), _mm512_loadu_ps(d->tot + e)));
      }
      for (int64_t i = 0; i < mr; i++)
        for (int64_t j0 = 0; j0 < nc && c0 + j0 < N; j0 += BR_COLS) {
          const float *t = d->tot + i * nc + j0;
          const __m512 lo = _mm512_loadu_ps(t), hi = _mm512_loadu_ps(t + 16);
          const __m512 s2[2] = {_mm512_permutex2var_ps(lo, ix0, hi), _mm512_permutex2var_ps(lo, ix1, hi)};
          for (int q = 0; q < 2 && c0 + j0 + 16 * q < N; q++) {
            const int64_t j = c0 + j0 + 16 * q, left = N - j;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
            __m512 s = s2[q];
            if (f32) {
              _mm512_mask_storeu_ps((float *)C + (r0 + i) * ldc + j, m, s);
              continue;
            }
            if (g->bias32) s = add_first(s, _mm512_maskz_loadu_ps(m, g->bias32 + j));
            _mm256_mask_storeu_epi16((uint16_t *)C + (r0 + i) * ldc + j, m, (__m256i)_mm512_cvtneps_pbh(s));
          }
        }
    }
  }
}

static tpmm_status_t bf16r_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc) {
  run_rows(g, M, A, lda, C, ldc, 0);
  return TPMM_SUCCESS;
}

static tpmm_status_t bf16r_f32(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc) {
  run_rows(g, M, A, lda, C, ldc, 1);
  return TPMM_SUCCESS;
}

static tpmm_status_t bf16r_rebind(tpi_gemm_t *g, const tpi_mat_t *b) {
  bf16r_t *d = g->impl;
  if (!stored_row_major(b))
    return tpi_fail(TPMM_ERR_INTERNAL, "gemm(bf16r): x2 not row-major (strides %lld, %lld)", (long long)b->rs,
                    (long long)b->cs);
  d->b = (const uint16_t *)b->data, d->ld = b->rs;
  return TPMM_SUCCESS;
}

static tpmm_status_t bf16r_prepare(tpi_gemm_t *g, const tpi_mat_t *b) {
  bf16r_t *d = calloc(1, sizeof *d);
  if (!d) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(bf16r): out of memory");
  g->impl = d;
  d->np = (g->N + BR_COLS - 1) / BR_COLS * BR_COLS;
  int64_t sz = BR_COLS; /* floats: the largest rows x chunk of a call */
  for (int64_t r = 1; r <= MR; r++) {
    const int64_t f = r * chunk_cols(d->np, r);
    sz = f > sz ? f : sz;
  }
  d->blk = malloc((size_t)sz * sizeof(float));
  d->tot = malloc((size_t)sz * sizeof(float));
  if (!d->blk || !d->tot)
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(bf16r): out of memory for 2 x %lld floats", (long long)sz);
  return bf16r_rebind(g, b);
}

static void bf16r_release(tpi_gemm_t *g) {
  bf16r_t *d = g->impl;
  if (d) free(d->blk), free(d->tot);
  free(d);
  g->impl = NULL;
}

/* the CPU check is gemm_dot.c's: AVX-512 with AVX512-BF16 */
static int bf16r_supports(tpmm_dtype_t dt) { return dt == TPMM_BFLOAT16 && tpi_gemm_dot_usable(); }

const tpi_gemm_backend_t tpi_gemm_bf16r = {"bf16r",       bf16r_supports, bf16r_prepare, bf16r_run,
                                           bf16r_release, bf16r_rebind,   bf16r_f32,     0};

/* One probe shape: this kernel against oneDNN's (plain x2), NaNs of distinct payloads in every k block of
 * row 0. 1: the same bits, 0: not, -1: a setup or run failed (not decided). */
static int probe_shape(int64_t pk, int64_t blk) {
  enum { PM = 3, PN = 80 };
  uint16_t *A = malloc((size_t)(PM * pk) * 2), *B = malloc((size_t)(pk * PN) * 2), *C0 = malloc(PM * PN * 2),
           *C1 = malloc(PM * PN * 2);
  float bias[PN];
  int ok = -1;
  tpi_gemm_t *g0 = NULL, *g1 = NULL;
  if (!A || !B || !C0 || !C1) goto done;
  uint32_t x = 2463534242u;
  for (int64_t i = 0; i < PM * pk; i++)
    x ^= x << 13, x ^= x >> 17, x ^= x << 5, A[i] = (uint16_t)(0x3c00 + (x & 0x3ff));
  for (int64_t i = 0; i < pk * PN; i++)
    x ^= x << 13, x ^= x >> 17, x ^= x << 5, B[i] = (uint16_t)((x & 0x8000) | (0x3c00 + (x & 0x3ff)));
  for (int j = 0; j < PN; j++) bias[j] = (float)(j % 7) - 3.0f;
  for (int64_t k = 5, p = 0; k < pk; k += blk, p++) A[k] = (uint16_t)(p % 2 ? 0xffa3 + p : 0x7fc1 + p);
  const tpi_mat_t x2 = {(char *)B, pk, PN, PN, 1};
  if (tpi_gemm_create_on(&g0, &tpi_gemm_dnnl, &x2, bias, PM) != TPMM_SUCCESS ||
      tpi_gemm_create_on(&g1, &tpi_gemm_bf16r, &x2, bias, PM) != TPMM_SUCCESS ||
      tpi_gemm_run(g0, PM, A, pk, C0, PN) != TPMM_SUCCESS || tpi_gemm_run(g1, PM, A, pk, C1, PN) != TPMM_SUCCESS)
    goto done;
  ok = memcmp(C0, C1, PM * PN * 2) == 0;
done:
  tpi_clear_error();
  tpi_gemm_destroy(g0), tpi_gemm_destroy(g1);
  free(A), free(B), free(C0), free(C1);
  return ok;
}

int tpi_gemm_bf16r_usable(void) {
  static int v = -1; /* a failed probe (out of memory) decides nothing: the next call probes again */
  int r = __atomic_load_n(&v, __ATOMIC_RELAXED);
  if (r >= 0) return r;
  if (!tpi_gemm_dot_usable() || !tpi_dn_has_bf16()) {
    r = 0;
  } else {
    const int a = probe_shape(2 * 1024 + 3, 1024), b = a == 1 ? probe_shape(1001, 512) : a;
    if (a < 0 || b < 0) return 0;
    r = a == 1 && b == 1;
  }
  __atomic_store_n(&v, r, __ATOMIC_RELAXED);
  return r;
}
#else
int tpi_gemm_bf16r_usable(void) { return 0; } /* no AVX512-BF16: tpi_gemm_create never picks it */
static int bf16r_supports(tpmm_dtype_t dt) { return (void)dt, 0; }
const tpi_gemm_backend_t tpi_gemm_bf16r = {"bf16r", bf16r_supports, NULL, NULL, NULL, NULL, NULL, 0};
#endif

int tpi_gemm_bf16r_fits(int64_t call_rows, int64_t k) {
  return call_rows <= TPI_BF16R_SHORT_K_ROWS || (call_rows <= TPI_BF16R_MAX_ROWS && k > TPI_BF16R_SHORT_K);
}

int tpi_gemm_bf16r_takes(tpmm_dtype_t dt, const tpi_mat_t *x2, int64_t call_rows, int64_t lifetime_rows) {
  /* one GEMM thread (the default): with more, oneDNN's threads stream x2 faster than one core */
  return dt == TPMM_BFLOAT16 && tpi_params.gemm == TPMM_GEMM_DNNL && tpi_params.num_threads <= 1 &&
         !tpi_debug.pre_avx512 && tpi_gemm_bf16r_fits(call_rows, x2->rows) && lifetime_rows != INT64_MAX &&
         stored_row_major(x2) && tpi_gemm_bf16r_usable();
}
