/*
 * gemm_avx2.c — tpmm's own fp32 kernel for CPUs without AVX-512 (AVX2, FMA
 * and F16C): every fp32 GEMM there, and bf16 / fp16 widened to fp32 (gemm.c).
 *
 * Why not oneDNN there: its AVX2 sgemm picks K blocking and row-tail kernels
 * by the call's shape, so a row's bits change with M (bench/RESULTS.md §23),
 * and tpmm's schedules cut GEMMs into chunks that must match the whole.
 * Here each element of C is one FMA chain over k = 0 .. K-1 in order from
 * +0, then + bias: the same for any M, chunking, thread count and x2 layout.
 *
 * x2 is packed once per prepare / rebind into panels of NR columns (K x NR,
 * zero columns past N), widened there from bf16 / fp16 (so the framework
 * keeps no fp32 copy). Unpacked setups (one-shot calls, below
 * TPI_PACK_MIN_ROWS) of a row-major x2 read it in place instead: decode
 * calls of up to AXPY_ROWS rows stream its rows once (run_decode, widening
 * in registers), longer calls pack it per call a KC x NCB block at a time
 * (run_blocked), a partial last panel with its block or as the decode
 * pass streams its rows: nothing is packed at prepare or rebind, which
 * one-shot calls pay on every call (the partial panel's K scattered lines
 * took 0.6-1.1 ms at k = 8192, n = 2048).
 * A: calls of MR rows or more lay it out in MR-row blocks, k-major, CHUNK
 * rows at a time (lay_a), so the kernel's broadcasts read one stream;
 * shorter calls read its rows in place (rows past M read a zero row). The
 * MR x NR = 4 x 24 sums stay in 12 registers across a panel's K (or a block's
 * KC), while the panel (K x 96 bytes; a block's KC x 96) stays in L2 for the
 * row blocks. 4 rows, not 6 x 16: the row counts calls use are mostly powers of
 * two, which 6-row blocks pad (16 to 18, 32 to 36; bench/RESULTS.md §28).
 * Threads split the panels (the column blocks).
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../common/debug.h"
#include "../common/half.h"
#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* CHUNK: a multiple of MR; NC: a multiple of NR (a decode call's sums, in L1 at 1-2 rows); AXPY_ROWS: up to it
 * run_decode's one pass over x2 costs at most run_blocked's packing (bf16 at 1-2 rows: 0.6x), past it its sums
 * through memory cost more (bench/RESULTS.md §23-24) */
enum { MR = TPI_GEMM_AVX2_ROWS, NR = 24, CHUNK = 384, NC = 2016, AXPY_ROWS = 4 };
_Static_assert(AXPY_ROWS <= MR, "run_decode runs one row block");
/* run_blocked: blocks of KC x NCB floats of x2 (288 KiB, in L2), rows prefetched PF ahead (bench/RESULTS.md §24) */
enum { KC = 1024, NCB = 72, PF = 8 };

/* How x2's own row-major rows are read in place (in its dtype, widened in registers; the conversions are
 * exact, so in place and packed give the same bits). */
enum { B_F32, B_BF16, B_F16 };

/* How x2's rows of dtype dt are read in place. */
static int kind_of(tpmm_dtype_t dt) { return dt == TPMM_FLOAT32 ? B_F32 : dt == TPMM_BFLOAT16 ? B_BF16 : B_F16; }

typedef struct {
  float *bp;      /* packed panels: np x K x NR floats; in place: the partial last one, laid out per call */
  float *zero;    /* K zeros: the rows past M */
  int64_t np;     /* panels */
  int inplace;    /* unpacked setups of a row-major x2: read from x2 itself, packed per call in blocks */
  const char *b;  /* ... x2's data */
  int64_t rs;     /* ... its row stride in elements */
  float *ap;      /* A laid out per call in MR-row blocks, k-major (ap[k * MR + r]); grown on use */
  int64_t ap_cap; /* ... its floats */
} av_t;

int tpi_gemm_avx2_usable(void) {
#ifdef HAVE_X86
  static int v = -1; /* a race to the same value */
  int r = __atomic_load_n(&v, __ATOMIC_RELAXED);
  if (r < 0)
    __atomic_store_n(
        &v, r = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"),
        __ATOMIC_RELAXED);
  return r;
#else
  return 0;
#endif
}

int tpi_gemm_reads_in_place(const tpi_gemm_t *g) {
  return g->be == &tpi_gemm_avx2 && g->impl && ((const av_t *)g->impl)->inplace && !g->bwide;
}

static int av_supports(tpmm_dtype_t dt) { return dt == TPMM_FLOAT32; }

static void pack(int kind, int64_t kc, const char *b, int64_t rs, int64_t ncols, float *dst);

/* x2 into the panels (in place: nothing): a row-major x2's by pack, NCB columns at a time with rows
 * prefetched (16 columns a row, one panel after another down x2, took several times as long:
 * bench/RESULTS.md §25), its partial last one too; other strides element by element. */
static tpmm_status_t av_rebind(tpi_gemm_t *g, const tpi_mat_t *b) {
  av_t *v = g->impl;
  const size_t es = tpmm_dtype_size(g->dt);
  v->b = b->data, v->rs = b->rs;
  const int bulk = !v->inplace && b->cs == 1;
  for (int64_t j0 = 0; bulk && j0 < g->N; j0 += NCB)
    pack(kind_of(g->dt), g->K, b->data + (size_t)j0 * es, b->rs * (int64_t)es, g->N - j0 < NCB ? g->N - j0 : NCB,
         v->bp + j0 * g->K);
  for (int64_t p = v->inplace || bulk ? v->np : 0; p < v->np; p++) { /* a strided x2 (cs != 1) */
    float *dst = v->bp + p * g->K * NR;
    const int64_t j0 = p * NR, w = g->N - j0 < NR ? g->N - j0 : NR;
    for (int64_t k = 0; k < g->K; k++) {
      float *d = dst + k * NR;
      for (int64_t j = 0; j < w; j++) d[j] = tpi_gemm_elem_f32(b->data, g->dt, k * b->rs + (j0 + j) * b->cs);
      for (int64_t j = w; j < NR; j++) d[j] = 0.0f;
    }
  }
  return TPMM_SUCCESS;
}

static tpmm_status_t av_prepare(tpi_gemm_t *g, const tpi_mat_t *b) {
  av_t *v = calloc(1, sizeof *v);
  if (!v) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(avx2): out of memory");
  g->impl = v;
  v->np = (g->N + NR - 1) / NR;
  v->inplace = !g->pack && b->cs == 1;
  const int64_t packed = v->inplace ? (g->N % NR ? 1 : 0) : v->np;
  v->bp = aligned_alloc(64, (size_t)((packed * g->K * NR + 16) * (int64_t)sizeof(float) + 63) / 64 * 64);
  v->zero = calloc((size_t)g->K + 1, sizeof(float));
  if (!v->bp || !v->zero) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(avx2): out of memory for x2's panels");
  return av_rebind(g, b);
}

#ifdef HAVE_X86
#define AVX2_TGT __attribute__((target("avx2,fma,f16c")))
/* 8 values of an x2 row in its dtype as an fp32 vector. */
AVX2_TGT static inline __attribute__((always_inline)) __m256 load8(int kind, const char *p) {
  switch (kind) {
    case B_F32: return _mm256_loadu_ps((const float *)p);
    case B_BF16:
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    default: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
  }
}
/* NR = 24 values of an x2 row in its dtype as three fp32 vectors. */
AVX2_TGT static inline __attribute__((always_inline)) void load_b(int kind, const char *p, __m256 b[3]) {
  const size_t es = kind == B_F32 ? 4 : 2;
  b[0] = load8(kind, p), b[1] = load8(kind, p + 8 * es), b[2] = load8(kind, p + 16 * es);
}

/* t[r][0..NR) += a[r] @ panel, r < MR: one FMA chain per element, k in order, from t's sums (+0 for a whole
 * product; an fp32 store and load between K blocks is exact, so a chain split there is the same chain); a[r][k] at a[r]
 * + k * as (1: A's rows, MR: the laid-out blocks); the packed panel's row k at bp + k * NR. */
AVX2_TGT static inline __attribute__((always_inline)) void tile_any(int64_t as, int64_t K, const float *const a[MR],
                                                                    const float *bp, float t[MR][NR]) {
  __m256 c00 = _mm256_loadu_ps(t[0]), c01 = _mm256_loadu_ps(t[0] + 8), c02 = _mm256_loadu_ps(t[0] + 16);
  __m256 c10 = _mm256_loadu_ps(t[1]), c11 = _mm256_loadu_ps(t[1] + 8), c12 = _mm256_loadu_ps(t[1] + 16);
  __m256 c20 = _mm256_loadu_ps(t[2]), c21 = _mm256_loadu_ps(t[2] + 8), c22 = _mm256_loadu_ps(t[2] + 16);
  __m256 c30 = _mm256_loadu_ps(t[3]), c31 = _mm256_loadu_ps(t[3] + 8), c32 = _mm256_loadu_ps(t[3] + 16);
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; k++, bp += NR) {
    const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8), b2 = _mm256_load_ps(bp + 16);
    __m256 x = _mm256_broadcast_ss(a0 + k * as);
    c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01), c02 = _mm256_fmadd_ps(x, b2, c02);
    x = _mm256_broadcast_ss(a1 + k * as);
    c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11), c12 = _mm256_fmadd_ps(x, b2, c12);
    x = _mm256_broadcast_ss(a2 + k * as);
    c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21), c22 = _mm256_fmadd_ps(x, b2, c22);
    x = _mm256_broadcast_ss(a3 + k * as);
    c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31), c32 = _mm256_fmadd_ps(x, b2, c32);
  }
  _mm256_storeu_ps(t[0], c00), _mm256_storeu_ps(t[0] + 8, c01), _mm256_storeu_ps(t[0] + 16, c02);
  _mm256_storeu_ps(t[1], c10), _mm256_storeu_ps(t[1] + 8, c11), _mm256_storeu_ps(t[1] + 16, c12);
  _mm256_storeu_ps(t[2], c20), _mm256_storeu_ps(t[2] + 8, c21), _mm256_storeu_ps(t[2] + 16, c22);
  _mm256_storeu_ps(t[3], c30), _mm256_storeu_ps(t[3] + 8, c31), _mm256_storeu_ps(t[3] + 16, c32);
}

/* tile_any on a packed panel, one loop for each layout of A. */
AVX2_TGT static void tile(int laid, int64_t K, const float *const a[MR], const float *bp, float t[MR][NR]) {
  if (laid)
    tile_any(MR, K, a, bp, t);
  else
    tile_any(1, K, a, bp, t);
}
/* Element j of an x2 row in its dtype, in fp32 (exact). */
AVX2_TGT static inline __attribute__((always_inline)) float elem(int kind, const char *p, int64_t j) {
  if (kind == B_F32) return ((const float *)p)[j];
  const uint16_t h = ((const uint16_t *)p)[j];
  if (kind == B_F16) return _cvtsh_ss(h);
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
/* acc[r][0..nc) = a[r] @ x2's columns [0, nc) for r < rows (acc's rows nc apart), x2 row-major in place
 * (row k at b + k * rs bytes): k outer, so x2 streams row by row; each element the same FMA chain in k
 * order from +0 as tile_any's, through acc (fp32, exact). tp: NULL, or where the tail < NR columns after
 * them are laid out as a packed panel (widened, zero-padded) while their rows stream by, for tile. */
AVX2_TGT static inline __attribute__((always_inline)) void axpy_any(int kind, int64_t K, const float *const a[MR],
                                                                    int rows, const char *b, int64_t rs, int64_t nc,
                                                                    int64_t tail, float *tp, float *acc) {
  const size_t es = kind == B_F32 ? 4 : 2; /* a constant in each instance */
  for (int64_t e = 0; e < rows * nc; e++) acc[e] = 0.0f;
  for (int64_t k = 0; k < K; k++, b += rs) {
    for (int64_t j = 0; tp && j < NR; j++) tp[k * NR + j] = j < tail ? elem(kind, b, nc + j) : 0.0f;
    for (int64_t j = 0; j < nc; j += NR) {
      __m256 bv[3];
      load_b(kind, b + (size_t)j * es, bv);
      for (int r = 0; r < rows; r++) {
        const __m256 x = _mm256_broadcast_ss(a[r] + k);
        float *c = acc + r * nc + j;
        _mm256_storeu_ps(c, _mm256_fmadd_ps(x, bv[0], _mm256_loadu_ps(c)));
        _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(x, bv[1], _mm256_loadu_ps(c + 8)));
        _mm256_storeu_ps(c + 16, _mm256_fmadd_ps(x, bv[2], _mm256_loadu_ps(c + 16)));
      }
    }
  }
}
/* A kc x ncols block of x2 (row-major in place, row k at b + k * rs bytes) into panels of NR columns
 * (panel p at dst + p * kc * NR), widened, a partial last one padded with zero columns. */
AVX2_TGT static inline __attribute__((always_inline)) void pack_any(int kind, int64_t kc, const char *b, int64_t rs,
                                                                    int64_t ncols, float *dst) {
  const size_t es = kind == B_F32 ? 4 : 2;
  const int64_t whole = ncols / NR * NR;
  for (int64_t k = 0; k < kc; k++, b += rs) {
    if (k + PF < kc && ncols > 0) { /* x2's row stride apart: no HW prefetch; the run's every line, its last too */
      for (size_t o = 0; o < (size_t)ncols * es; o += 64) _mm_prefetch(b + PF * rs + o, _MM_HINT_T0);
      _mm_prefetch(b + PF * rs + (size_t)ncols * es - 1, _MM_HINT_T0);
    }
    for (int64_t j = 0; j < whole; j += NR) {
      __m256 bv[3];
      load_b(kind, b + (size_t)j * es, bv);
      float *d = dst + j * kc + k * NR;
      _mm256_store_ps(d, bv[0]), _mm256_store_ps(d + 8, bv[1]), _mm256_store_ps(d + 16, bv[2]);
    }
    if (whole < ncols) {
      float *d = dst + whole * kc + k * NR;
      int64_t j = 0;
      for (; j < ncols - whole; j++) d[j] = elem(kind, b, whole + j);
      for (; j < NR; j++) d[j] = 0.0f;
    }
  }
}
AVX2_TGT static void pack(int kind, int64_t kc, const char *b, int64_t rs, int64_t ncols, float *dst) {
  switch (kind) {
    case B_F32: pack_any(B_F32, kc, b, rs, ncols, dst); break;
    case B_BF16: pack_any(B_BF16, kc, b, rs, ncols, dst); break;
    default: pack_any(B_F16, kc, b, rs, ncols, dst);
  }
}
AVX2_TGT static void axpy(int kind, int64_t K, const float *const a[MR], int rows, const char *b, int64_t rs,
                          int64_t nc, int64_t tail, float *tp, float *acc) {
  switch (kind) {
    case B_F32: axpy_any(B_F32, K, a, rows, b, rs, nc, tail, tp, acc); break;
    case B_BF16: axpy_any(B_BF16, K, a, rows, b, rs, nc, tail, tp, acc); break;
    default: axpy_any(B_F16, K, a, rows, b, rs, nc, tail, tp, acc);
  }
}
#else
static void pack(int kind, int64_t kc, const char *b, int64_t rs, int64_t ncols, float *dst) {
  (void)kind, (void)kc, (void)b, (void)rs, (void)ncols, (void)dst; /* never chosen */
}
static void axpy(int kind, int64_t K, const float *const a[MR], int rows, const char *b, int64_t rs, int64_t nc,
                 int64_t tail, float *tp, float *acc) {
  /* never chosen */
  (void)kind, (void)K, (void)a, (void)rows, (void)b, (void)rs, (void)nc, (void)tail, (void)tp, (void)acc;
}
static void tile(int laid, int64_t K, const float *const a[MR], const float *bp, float t[MR][NR]) {
  (void)laid, (void)K, (void)a, (void)bp, (void)t; /* never chosen: not usable */
}
#endif

/* A's M rows into v->ap in MR-row blocks, k-major, zero rows past M: the kernel's four broadcasts then
 * read one stream instead of four rows. 0: out of memory (the caller reads A's rows instead). */
static int lay_a(tpi_gemm_t *g, av_t *v, int64_t M, const float *A, int64_t lda) {
  const int64_t need = (M + MR - 1) / MR * MR * g->K;
  if (need > v->ap_cap) {
    float *ap = realloc(v->ap, (size_t)need * sizeof(float));
    if (!ap) return 0;
    v->ap = ap, v->ap_cap = need;
  }
  for (int64_t i0 = 0; i0 < M; i0 += MR) {
    float *blk = v->ap + i0 * g->K;
    for (int r = 0; r < MR; r++) {
      const float *row = i0 + r < M ? A + (i0 + r) * lda : v->zero;
      for (int64_t k = 0; k < g->K; k++) blk[k * MR + r] = row[k];
    }
  }
  return 1;
}

/* C (fp32, stride ldc) = A @ x2 (+ bias) on M rows, x2 packed; panels split between threads. */
static void run_rows(tpi_gemm_t *g, int64_t M, const float *A, int64_t lda, float *C, int64_t ldc, const float *bias) {
  av_t *v = g->impl;
  const int laid = M >= MR && v->np > 1 && lay_a(g, v, M, A, lda); /* reused by every panel */
#pragma omp parallel for num_threads(g->nthreads) schedule(static) if (g->nthreads > 1 && v->np > 1)
  for (int64_t p = 0; p < v->np; p++) {
    const int64_t j0 = p * NR, w = g->N - j0 < NR ? g->N - j0 : NR;
    float t[MR][NR];
    for (int64_t i0 = 0; i0 < M; i0 += MR) {
      const float *a[MR];
      for (int r = 0; r < MR; r++) a[r] = laid ? v->ap + i0 * g->K + r : i0 + r < M ? A + (i0 + r) * lda : v->zero;
      memset(t, 0, sizeof t);
      tile(laid, g->K, a, v->bp + p * g->K * NR, t);
      for (int r = 0; r < MR && i0 + r < M; r++) {
        float *c = C + (i0 + r) * ldc + j0;
        for (int64_t j = 0; j < w; j++) c[j] = bias ? t[r][j] + bias[j0 + j] : t[r][j];
      }
    }
  }
}

/* A decode call (at most AXPY_ROWS rows: one row block) on an x2 read in place: by axpy, x2 streamed row by
 * row, in chunks of at most NC columns (threads split those); the last chunk lays out the partial last
 * panel as its rows stream by (v->bp), which tile then runs, as every other path runs its partial panel. */
static void run_decode(tpi_gemm_t *g, int64_t M, const float *A, int64_t lda, float *C, int64_t ldc,
                       const float *bias) {
  av_t *v = g->impl;
  const int kind = kind_of(g->dt);
  const size_t es = tpmm_dtype_size(g->dt);
  /* one thread: chunks of NC columns, the longest runs of each x2 row (narrower ones, 5.3 KB of a 16 KB row,
   * took 1.25x as long beside a second rank: bench/RESULTS.md §28); more: chunks of equal whole panels, as
   * many as a multiple of the threads, so that the threads share the columns evenly */
  const int nt = g->nthreads > 1 ? g->nthreads : 1;
  const int64_t whole = g->N / NR * NR, tail = g->N - whole, nw = (whole + NC - 1) / NC;
  const int64_t nch = nw ? (nw + nt - 1) / nt * nt : 1;
  const int64_t cw = nt == 1 ? NC : (whole / NR + nch - 1) / nch * NR;
  const float *a[MR];
  for (int r = 0; r < MR; r++) a[r] = r < M ? A + r * lda : v->zero;
#pragma omp parallel for num_threads(g->nthreads) schedule(static) if (g->nthreads > 1 && nch > 1)
  for (int64_t ch = 0; ch < nch; ch++) {
    const int64_t j0 = ch * cw < whole ? ch * cw : whole, nc = whole - j0 < cw ? whole - j0 : cw;
    const int last = ch == nch - 1 && tail;
    if (nc == 0 && !last) continue; /* rounding left the last chunks empty */
    float acc[MR * NC], t[MR][NR] = {{0}};
    axpy(kind, g->K, a, (int)M, v->b + (size_t)j0 * es, v->rs * (int64_t)es, nc, tail, last ? v->bp : NULL, acc);
    if (last) tile(0, g->K, a, v->bp, t);
    for (int r = 0; r < M; r++) {
      float *c = C + r * ldc + j0;
      for (int64_t j = 0; j < nc; j++) c[j] = bias ? acc[r * nc + j] + bias[j0 + j] : acc[r * nc + j];
      for (int64_t j = 0; last && j < tail; j++) c[nc + j] = bias ? t[r][j] + bias[whole + j] : t[r][j];
    }
  }
}

/* A call of more than AXPY_ROWS rows on an x2 read in place: x2 packed per call, KC x NCB at a time
 * (threads split the column blocks), each panel of a block then run by every row block while it is in
 * L2. x2's rows (16 KB apart at n = 4096 fp32) are read in NCB-column runs, prefetched: read in place,
 * 64 bytes a row per 16-column panel, they took 2-4.5x as long (bench/RESULTS.md §24). The sums go through C between K
 * blocks (tile_any's note: the same chains). blk: nt blocks of per floats (run_any). */
static void run_blocked(tpi_gemm_t *g, float *blk, size_t per, int nt, int64_t M, const float *A, int64_t lda, float *C,
                        int64_t ldc, const float *bias) {
  av_t *v = g->impl;
  const int kind = kind_of(g->dt);
  const size_t es = tpmm_dtype_size(g->dt);
  const int laid = M >= MR && lay_a(g, v, M, A, lda);
  const int64_t nb = (g->N + NCB - 1) / NCB;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && nb > 1)
  for (int64_t jb = 0; jb < nb; jb++) {
    float *buf = blk + (size_t)omp_get_thread_num() * per;
    const int64_t j0 = jb * NCB, ncols = g->N - j0 < NCB ? g->N - j0 : NCB;
    for (int64_t kb = 0; kb < g->K || kb == 0; kb += KC) { /* once for K = 0: bias only */
      const int64_t kc = g->K - kb < KC ? g->K - kb : KC;
      const int last = kb + kc == g->K;
      pack(kind, kc, v->b + (size_t)(kb * v->rs + j0) * es, v->rs * (int64_t)es, ncols, buf);
      for (int64_t p0 = 0; p0 < ncols; p0 += NR) {
        const int64_t w = ncols - p0 < NR ? ncols - p0 : NR;
        for (int64_t i0 = 0; i0 < M; i0 += MR) {
          const float *a[MR];
          float t[MR][NR] = {{0}};
          for (int r = 0; r < MR; r++)
            a[r] = laid ? v->ap + (i0 * g->K + kb * MR) + r : (i0 + r < M ? A + (i0 + r) * lda : v->zero) + kb;
          if (kb > 0)
            for (int r = 0; r < MR && i0 + r < M; r++)
              memcpy(t[r], C + (i0 + r) * ldc + j0 + p0, (size_t)w * sizeof(float));
          tile(laid, kc, a, buf + p0 * kc, t);
          for (int r = 0; r < MR && i0 + r < M; r++) {
            float *c = C + (i0 + r) * ldc + j0 + p0;
            for (int64_t j = 0; j < w; j++) c[j] = last && bias ? t[r][j] + bias[j0 + p0 + j] : t[r][j];
          }
        }
      }
    }
  }
}

/* At most CHUNK rows at a time, so that A's laid-out copy stays a few MiB: run_rows on packed panels,
 * run_blocked on an x2 in place; decode calls on an x2 in place by run_decode. */
static tpmm_status_t run_any(tpi_gemm_t *g, int64_t M, const float *A, int64_t lda, float *C, int64_t ldc,
                             const float *bias) {
  av_t *v = g->impl;
  if (v->inplace && M <= AXPY_ROWS) {
    run_decode(g, M, A, lda, C, ldc, bias);
    return TPMM_SUCCESS;
  }
  /* run_blocked's blocks, for this call only: unpacked setups are one-shot ones, cached per shape
   * (gemm_cache.c), and keep none; as deep as x2 when K < KC, so a small call takes kilobytes, not 288 KiB */
  const int nt = g->nthreads > 0 ? g->nthreads : 1;
  const size_t per = (size_t)(g->K < KC ? (g->K > 0 ? g->K : 1) : KC) * NCB;
  float *blk = NULL;
  if (v->inplace && M > 0) {
    /* a size of whole 64-byte lines, as aligned_alloc asks; each thread's block starts 32-byte aligned
     * (per * 4 bytes: a multiple of NCB * 4 = 288) */
    blk = tpi_debug_fail("gemm avx2 blocks") ? NULL
                                             : aligned_alloc(64, ((size_t)nt * per * sizeof(float) + 63) / 64 * 64);
    if (!blk)
      return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(avx2): out of memory for x2's blocks (%d threads x %d KiB)", nt,
                      (int)(per * sizeof(float) / 1024));
  }
  for (int64_t r0 = 0; r0 < M; r0 += CHUNK) {
    const int64_t rows = M - r0 < CHUNK ? M - r0 : CHUNK;
    if (v->inplace)
      run_blocked(g, blk, per, nt, rows, A + r0 * lda, lda, C + r0 * ldc, ldc, bias);
    else
      run_rows(g, rows, A + r0 * lda, lda, C + r0 * ldc, ldc, bias);
  }
  free(blk);
  return TPMM_SUCCESS;
}

static tpmm_status_t av_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc) {
  return run_any(g, M, A, lda, C, ldc, g->bias32);
}
static tpmm_status_t av_run_f32(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc) {
  return run_any(g, M, A, lda, C, ldc, NULL);
}

static void av_release(tpi_gemm_t *g) {
  av_t *v = g->impl;
  free(v->bp);
  free(v->zero);
  free(v->ap);
  free(v);
  g->impl = NULL;
}

const tpi_gemm_backend_t tpi_gemm_avx2 = {"avx2",     av_supports, av_prepare, av_run,
                                          av_release, av_rebind,   av_run_f32, 1};
