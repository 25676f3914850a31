/*
 * copy.c — strided matrix copy into dense rows, the one routine behind
 * packing an input shard and copying a strided or transposed x2.
 *
 * A transposed operand (rs == 1) is the common strided case (trans_x2,
 * trans_input). Element copies there were a large share of a one-shot bf16
 * GEMM's time (bench/RESULTS.md §16), so it goes through register transposes:
 * with AVX-512, tiles of 64-byte rows (32 x 32 2-byte or 16 x 16 4-byte
 * elements), one load and one store per row, whatever the strides' cache
 * aliasing. Other strides, and CPUs without AVX-512, copy element by
 * element in 32x32 blocks. Either way a copy moves bits.
 */
#include <string.h>

#include "common.h"
#include "half.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

enum { BLOCK = 32 };

#ifdef HAVE_X86
/* d[r * ds + c] = s[c * ss + r] for one T x T tile of 64-byte rows (T = 32
 * 2-byte or 16 4-byte elements): log2 T stages, stage b swapping bit b of the
 * row and the column index by pairing rows r and r + b (two-source permutes). */
__attribute__((target("avx512f,avx512bw"))) static inline void tile64_t(const char *s, int64_t ss, char *d, int64_t ds,
                                                                        const int es) {
  const int T = 64 / es;
  const __m512i iota = es == 2 ? _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15,
                                                  14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
                               : _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  __m512i a[32];
#pragma GCC unroll 32
  for (int i = 0; i < T; i++) a[i] = _mm512_loadu_si512(s + (size_t)(i * ss) * es);
#pragma GCC unroll 5
  for (int b = T / 2; b >= 1; b /= 2) {
    /* lo[c] = c & b ? T + c - b : c, hi[c] = c & b ? T + c : c + b */
    const __m512i vb = es == 2 ? _mm512_set1_epi16((short)b) : _mm512_set1_epi32(b);
    const __m512i vt = es == 2 ? _mm512_set1_epi16((short)T) : _mm512_set1_epi32(T);
    const __mmask64 m = es == 2 ? _mm512_test_epi16_mask(iota, vb) : _mm512_test_epi32_mask(iota, vb);
    const __m512i up = es == 2 ? _mm512_add_epi16(iota, vb) : _mm512_add_epi32(iota, vb);
    const __m512i down =
        es == 2 ? _mm512_sub_epi16(_mm512_add_epi16(iota, vt), vb) : _mm512_sub_epi32(_mm512_add_epi32(iota, vt), vb);
    const __m512i tc = es == 2 ? _mm512_add_epi16(iota, vt) : _mm512_add_epi32(iota, vt);
    const __m512i il =
        es == 2 ? _mm512_mask_mov_epi16(iota, (__mmask32)m, down) : _mm512_mask_mov_epi32(iota, (__mmask16)m, down);
    const __m512i ih =
        es == 2 ? _mm512_mask_mov_epi16(up, (__mmask32)m, tc) : _mm512_mask_mov_epi32(up, (__mmask16)m, tc);
#pragma GCC unroll 32
    for (int r = 0; r < T; r++) {
      if (r & b) continue;
      const __m512i x = a[r], y = a[r + b];
      a[r] = es == 2 ? _mm512_permutex2var_epi16(x, il, y) : _mm512_permutex2var_epi32(x, il, y);
      a[r + b] = es == 2 ? _mm512_permutex2var_epi16(x, ih, y) : _mm512_permutex2var_epi32(x, ih, y);
    }
  }
#pragma GCC unroll 32
  for (int i = 0; i < T; i++) _mm512_storeu_si512(d + (size_t)(i * ds) * es, a[i]);
}
__attribute__((target("avx512f,avx512bw"))) static void tile64(const char *s, int64_t ss, char *d, int64_t ds,
                                                               size_t es) {
  if (es == 2)
    tile64_t(s, ss, d, ds, 2);
  else
    tile64_t(s, ss, d, ds, 4);
}
#endif

/* Rows [i0, i1) x columns [j0, j1) of a strided source, element by element. */
static void copy_scalar(char *dst, const char *src, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t cols,
                        int64_t rs, int64_t cs, size_t es) {
  for (int64_t i = i0; i < i1; i++)
    for (int64_t j = j0; j < j1; j++) {
      if (es == 2)
        ((uint16_t *)dst)[i * cols + j] = ((const uint16_t *)src)[i * rs + j * cs];
      else
        ((uint32_t *)dst)[i * cols + j] = ((const uint32_t *)src)[i * rs + j * cs];
    }
}

void tpi_copy_tile64(void *dst, int64_t ds, const void *src, int64_t ss, size_t es) {
#ifdef HAVE_X86
  tile64(src, ss, dst, ds, es);
#else
  const int64_t T = 64 / (int64_t)es;
  copy_scalar(dst, src, 0, T, 0, T, ds, 1, ss, es);
#endif
}

void tpi_copy_dense(void *dst, const void *src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, size_t es) {
  char *d = dst;
  const char *s = src;
  if (cs == 1) {
    for (int64_t i = 0; i < rows; i++)
      memcpy(d + (size_t)(i * cols) * es, s + (size_t)(i * rs) * es, (size_t)cols * es);
    return;
  }
#ifdef HAVE_X86
  if (rs == 1 && tpi_have_avx512()) {
    const int64_t T = 64 / (int64_t)es, ie = rows / T * T, je = cols / T * T;
    for (int64_t j = 0; j < je; j += T) /* T source rows at a time, read along */
      for (int64_t i = 0; i < ie; i += T)
        tile64(s + (size_t)(i + j * cs) * es, cs, d + (size_t)(i * cols + j) * es, cols, es);
    copy_scalar(d, s, ie, rows, 0, cols, cols, 1, cs, es);
    copy_scalar(d, s, 0, ie, je, cols, cols, 1, cs, es);
    return;
  }
#endif
  /* blocks keep both sides in cache */
  for (int64_t i0 = 0; i0 < rows; i0 += BLOCK)
    for (int64_t j0 = 0; j0 < cols; j0 += BLOCK)
      copy_scalar(d, s, i0, i0 + BLOCK < rows ? i0 + BLOCK : rows, j0, j0 + BLOCK < cols ? j0 + BLOCK : cols, cols, rs,
                  cs, es);
}
