/*
 * gemm_dnnl_pack.c — where x2 is packed: bf16 B written straight into the
 * blocked layout oneDNN's brgemm asks for, byte for byte what oneDNN's own
 * reorder writes (tests/test_pack.c compares them), several times faster
 * and without a reorder primitive to create per slice (bench/RESULTS.md §16).
 *
 * The layout (oneDNN's BA16a64b2a for a k x n B): blocks of 32 rows x 64
 * columns, 4 KiB each, column blocks outer; inside a block, row pairs
 * (k, k+1) of the 64 columns interleaved element by element, [16][64][2];
 * padding rows and columns zero. Any other layout goes to oneDNN's reorder.
 * One thread: plans pack once, and a call's threads are the GEMM's.
 */
#include <string.h>

#include "../common/half.h"
#include "gemm_dnnl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

enum { KB = 32, NB = 64, BLOCK_ELEMS = KB * NB };

/* Is md, for a k x n bf16 B, the layout this file writes? */
static int recognised(const dnnl_memory_desc_t *md, int64_t k, int64_t n) {
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  return md->ndims == 2 && md->data_type == dnnl_bf16 && md->format_kind == dnnl_blocked && md->dims[0] == k &&
         md->dims[1] == n && md->offset0 == 0 && md->extra.flags == 0 && md->padded_offsets[0] == 0 &&
         md->padded_offsets[1] == 0 && md->padded_dims[0] % KB == 0 && md->padded_dims[1] % NB == 0 &&
         md->padded_dims[0] >= k && md->padded_dims[1] >= n && b->inner_nblks == 3 && b->inner_blks[0] == 16 &&
         b->inner_idxs[0] == 0 && b->inner_blks[1] == NB && b->inner_idxs[1] == 1 && b->inner_blks[2] == 2 &&
         b->inner_idxs[2] == 0 && b->strides[0] == BLOCK_ELEMS && b->strides[1] == md->padded_dims[0] * NB;
}

/* One row pair of one block: out[2j + t] = row t's column j (0 past the edge). */
static void pair_scalar(uint16_t *out, const uint16_t *r0, const uint16_t *r1, int64_t cols) {
  for (int64_t j = 0; j < NB; j++) {
    out[2 * j] = r0 && j < cols ? r0[j] : 0;
    out[2 * j + 1] = r1 && j < cols ? r1[j] : 0;
  }
}

#ifdef HAVE_X86
/* The same for a whole pair (both rows, 64 columns): two-source permutes. */
__attribute__((target("avx512f,avx512bw"))) static void pair_avx512(uint16_t *out, const uint16_t *r0,
                                                                    const uint16_t *r1) {
  /* lo[i] = i odd ? 32 + i/2 : i/2 (r0 and r1 alternate), hi: 16 further */
  const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37, 5,
                                      36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
  for (int h = 0; h < 2; h++) {
    const __m512i a = _mm512_loadu_si512(r0 + 32 * h), b = _mm512_loadu_si512(r1 + 32 * h);
    _mm512_storeu_si512(out + 64 * h, _mm512_permutex2var_epi16(a, lo, b));
    _mm512_storeu_si512(out + 64 * h + 32, _mm512_permutex2var_epi16(a, hi, b));
  }
}
#endif

int tpi_dn_pack(const dnnl_memory_desc_t *md, const void *src, int64_t k, int64_t n, void *dst) {
  if (!recognised(md, k, n)) return 0;
  const int64_t kp = md->padded_dims[0], np = md->padded_dims[1];
  const uint16_t *s = src;
  uint16_t *d = dst;
#ifdef HAVE_X86
  const int fast = tpi_have_avx512();
#endif
  for (int64_t kb = 0; kb < kp; kb += KB) /* row blocks outer: x2 is read along its rows */
    for (int64_t nb = 0; nb < np; nb += NB) {
      uint16_t *blk = d + (size_t)(nb / NB * md->format_desc.blocking.strides[1] + kb / KB * BLOCK_ELEMS);
      const int64_t cols = n - nb < NB ? n - nb : NB;
      for (int64_t p = 0; p < KB / 2; p++) {
        const int64_t r = kb + 2 * p;
        const uint16_t *r0 = r < k ? s + (size_t)(r * n + nb) : NULL,
                       *r1 = r + 1 < k ? s + (size_t)((r + 1) * n + nb) : NULL;
        uint16_t *out = blk + p * 2 * NB;
#ifdef HAVE_X86
        if (fast && r0 && r1 && cols == NB) {
          pair_avx512(out, r0, r1);
          continue;
        }
#endif
        pair_scalar(out, r0, r1, cols > 0 ? cols : 0);
      }
    }
  return 1;
}
