/*
 * gemm_dnnl_pack.c — where x2 is packed: bf16 B written straight into the
 * blocked layout oneDNN's brgemm asks for, byte for byte what oneDNN's own
 * reorder writes (tests/test_pack.c compares them), several times faster
 * and without a reorder primitive to create per slice (bench/RESULTS.md §16).
 *
 * The layout (oneDNN's BA16a64b2a for a k x n B): blocks of 32 rows x 64
 * columns, 4 KiB each, column blocks outer; inside a block, row pairs
 * (k, k+1) of the 64 columns interleaved element by element, [16][64][2];
 * padding rows and columns zero. Any other layout goes to oneDNN's reorder
 * (from a dense copy if x2 is not dense). One thread: a call's threads are the GEMM's (a
 * plan packs once; a one-shot call with x2 transposed packs every time).
 */
#include <string.h>

#include "../common/half.h"
#include "gemm_dnnl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

enum { KB = 32, NB = 64, BLOCK_ELEMS = KB * NB };

/* Is md, for a bf16 B, the layout this file writes? */
int tpi_dn_pack_knows(const dnnl_memory_desc_t *md) {
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  return md->ndims == 2 && md->data_type == dnnl_bf16 && md->format_kind == dnnl_blocked && md->offset0 == 0 &&
         md->extra.flags == 0 && md->padded_offsets[0] == 0 && md->padded_offsets[1] == 0 &&
         md->padded_dims[0] % KB == 0 && md->padded_dims[1] % NB == 0 && md->padded_dims[0] >= md->dims[0] &&
         md->padded_dims[1] >= md->dims[1] && b->inner_nblks == 3 && b->inner_blks[0] == 16 && b->inner_idxs[0] == 0 &&
         b->inner_blks[1] == NB && b->inner_idxs[1] == 1 && b->inner_blks[2] == 2 && b->inner_idxs[2] == 0 &&
         b->strides[0] == BLOCK_ELEMS && b->strides[1] == md->padded_dims[0] * NB;
}

/* One row pair of one block, any strides: out[2j + t] = B[r + t][c0 + j],
 * 0 past the valid rows or the edge. */
static void pair_scalar(uint16_t *out, const uint16_t *s, int64_t rs, int64_t cs, int64_t r, int64_t kvalid, int64_t c0,
                        int64_t cols) {
  for (int64_t j = 0; j < NB; j++)
    for (int t = 0; t < 2; t++) out[2 * j + t] = r + t < kvalid && j < cols ? s[(r + t) * rs + (c0 + j) * cs] : 0;
}

#ifdef HAVE_X86
/* Dense rows (cs = 1): a whole pair (both rows, 64 columns) by two-source permutes. */
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

/* Transposed x2 (rs = 1, B[r][c] at s[c * cs + r]): a row pair (r, r+1) of
 * one column is one 32-bit word, so a whole block is a 64 x 16 transpose of
 * words; 16 columns at a time, 16 x 16 words in registers (unpacks within
 * 128-bit lanes, then lane shuffles). */
__attribute__((target("avx512f"))) static void block_trans_avx512(uint16_t *blk, const uint16_t *s, int64_t cs) {
  for (int jj = 0; jj < NB / 16; jj++) {
    __m512i r[16], t[16], u[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512(s + (16 * jj + i) * cs);
    for (int i = 0; i < 8; i++) {
      t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* u[4g + q]: word q of each lane, rows 4g..4g+3 */
      u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
      u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
      u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
      u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int q = 0; q < 4; q++) { /* word p = 4 * lane + q of the 16 rows, into pair p's 16 columns */
      const __m512i v0 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x88), w0 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xdd);
      const __m512i v1 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x88),
                    w1 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xdd);
      const __m512i o[4] = {_mm512_shuffle_i32x4(v0, v1, 0x88), _mm512_shuffle_i32x4(w0, w1, 0x88),
                            _mm512_shuffle_i32x4(v0, v1, 0xdd), _mm512_shuffle_i32x4(w0, w1, 0xdd)};
      for (int lane = 0; lane < 4; lane++) _mm512_storeu_si512(blk + (4 * lane + q) * 2 * NB + 32 * jj, o[lane]);
    }
  }
}
#endif

/* Block (kb, nb) of B, from any strides. */
static void pack_block(const dnnl_memory_desc_t *md, const uint16_t *s, int64_t rs, int64_t cs, int64_t kvalid,
                       int64_t kb, int64_t nb, uint16_t *d, int fast) {
  const int64_t n = md->dims[1], cols = n - nb < NB ? n - nb : NB;
  uint16_t *blk = d + (size_t)(nb / NB * md->format_desc.blocking.strides[1] + kb / KB * BLOCK_ELEMS);
#ifdef HAVE_X86
  if (fast && rs == 1 && cols == NB && kb + KB <= kvalid) {
    block_trans_avx512(blk, s + nb * cs + kb, cs);
    return;
  }
#endif
  for (int64_t p = 0; p < KB / 2; p++) {
    const int64_t r = kb + 2 * p;
    uint16_t *out = blk + p * 2 * NB;
#ifdef HAVE_X86
    if (fast && cs == 1 && cols == NB && r + 1 < kvalid) {
      pair_avx512(out, s + r * rs + nb, s + (r + 1) * rs + nb);
      continue;
    }
#endif
    pair_scalar(out, s, rs, cs, r, kvalid, nb, cols > 0 ? cols : 0);
  }
}

int tpi_dn_pack(const dnnl_memory_desc_t *md, const void *src, int64_t rs, int64_t cs, int64_t kvalid, void *dst) {
  if (!tpi_dn_pack_knows(md) || kvalid > md->dims[0]) return 0;
  const int64_t kp = md->padded_dims[0], np = md->padded_dims[1];
  int fast = 0;
#ifdef HAVE_X86
  fast = tpi_have_avx512();
#endif
  /* walk x2 along its memory: row blocks outer for dense rows; for a
   * transpose every block reads 64 far-apart rows, and column blocks outer
   * make the next block continue the same rows (lines, TLB entries) */
  if (rs == 1)
    for (int64_t nb = 0; nb < np; nb += NB)
      for (int64_t kb = 0; kb < kp; kb += KB) pack_block(md, src, rs, cs, kvalid, kb, nb, dst, fast);
  else
    for (int64_t kb = 0; kb < kp; kb += KB)
      for (int64_t nb = 0; nb < np; nb += NB) pack_block(md, src, rs, cs, kvalid, kb, nb, dst, fast);
  return 1;
}
