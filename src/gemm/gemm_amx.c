/*
 * gemm_amx.c — tpmm's own bf16 kernel on AMX, for every call where the CPU
 * and OS allow it: x2 read once, in place, whichever way it is stored, by
 * calls of a few rows; packed once per call by larger ones, and kept by a
 * plan (laid out for the tiles, or dense when transposed and planned for
 * decode rows).
 *
 * Why: through oneDNN 2.6 a one-shot call copies x2 before it multiplies
 * (row-major: oneDNN reorders it for its AMX kernel; transposed: tpmm's K
 * slices are never dense, gemm_dnnl.c), a pass that costs 2-10x the
 * memory-bound product at a few rows (bench/RESULTS.md §19); and larger
 * calls through oneDNN must be cut into 512-deep K slices summed in fp32, to
 * keep their bits independent of M, at about a quarter of AMX's peak
 * (bench/RESULTS.md §20).
 *
 * The sum, whatever M, which rows run together, how x2 is stored or which
 * pass runs: C[i][j] starts at +0 and takes tdpbf16ps over k blocks of 32 in
 * order (zeros past K, on both sides), in fp32; bias and one rounding last
 * (tpi_f32_add_to_bf16_n), as the other backends do. Storing the fp32 sums
 * between k blocks and loading them back changes no bit.
 *
 * Passes of up to MR rows (decode):
 *   row-major x2:  C = A . B; k-pair rows of B are interleaved on the fly
 *                  into the tile's VNNI layout; the k loop is outermost and
 *                  each visit reads x2 along its rows for 512 columns, C's
 *                  fp32 sums waiting in c32 between visits.
 *   transposed:    C^T = B^T . A^T; x2's rows are the left tiles, loaded
 *                  straight from memory, and A^T is laid out once a pass.
 *   plans:         from the plan's copy (VNNI tiles per 64-column group
 *                  and k block), C in tiles across K; a transposed x2
 *                  planned for up to MR rows is kept dense instead and
 *                  read as above.
 * The blocked pass (more rows: plans past MR, one-shot calls past
 * PACK_ROWS, or PACK_ROWS_TRANS with x2 transposed): x2 in panels of NC
 * columns, taken from the plan's VNNI copy or packed once per call
 * (pack_groups, k panel by k panel as the first row block reaches it);
 * for MC rows at a time, C's sums stay in
 * cblk across k panels of KC, each 32 x 32 block of C in four tiles across
 * a k panel (big_panel). A panel's k panel, cblk and a row pass's A fit in
 * L2.
 * All feed tdpbf16ps the same pairs in the same order, so an element's sum
 * is one dot product of its row of A and column of B (tests/test_gemm.c
 * checks rows one at a time against all at once, and the layouts against
 * each other, bit for bit).
 *
 * GCC's tile loads are asm statements that declare no memory operand, so a
 * stack buffer filled for one (kbuf) is fenced before and after it
 * (STACK_FENCE): else the compiler may drop or move the stores.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/debug.h"
#include "../common/half.h"
#include "gemm.h"

enum { ROWMAJOR = 1, TRANS = 2 };

/* How the kernel reads x2: rows contiguous in n, or columns contiguous in k; 0: neither. */
static int amx_layout(const tpi_mat_t *x2) { return x2->cs == 1 ? ROWMAJOR : x2->rs == 1 ? TRANS : 0; }

int tpi_gemm_amx_takes(tpmm_dtype_t dt, const tpi_mat_t *x2) {
  return dt == TPMM_BFLOAT16 && amx_layout(x2) && tpi_gemm_amx_usable();
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,amx-tile,amx-bf16")))

enum {
  KB = 32,                /* k per tile step: 16 pairs, one 64-byte tile row of A */
  TN = 16,                /* columns per C tile */
  GN = 4 * TN,            /* columns per group: four C tiles */
  MR = TPI_GEMM_AMX_ROWS, /* rows per pass: two tiles' height */
  GV = 8,                 /* column groups per visit of the in-place row-major pass (32 KiB of kbuf, in L1) */
  /* the blocked pass (more than MR rows): x2 in panels of NC columns packed once, C's fp32 sums for MC rows
   * of a panel kept in cblk between KC-deep k panels (cblk, the x2 panel's k panel and a row pass's A fit in L2) */
  NC = 4 * GN,
  MC = 256,
  KCB = 16,      /* k blocks per k panel: KC = 512 */
  CLD = NC + TN, /* cblk's row stride: a tile's rows in different cache sets */
  /* one-shot calls of more rows pack x2 panel by panel; fewer read it in place, once per MR rows (a row-major
   * x2 through the interleave, a transposed one straight into tiles, which costs half as much) */
  PACK_ROWS = MR,
  PACK_ROWS_TRANS = 192,
  ABIG_KEEP = 4 << 20 /* a setup that packs per call (one-shot ones are cached per shape) keeps at most this
                         many elements of A's layout */
};

typedef struct {
  int layout;
  const uint16_t *b; /* read in place: row k at b + k * ld (ROWMAJOR), column j at b + j * ld (TRANS); x2,
                        or a TRANS plan's dense copy */
  int64_t ld;
  int64_t npad, kpad; /* N, K rounded up to TN, KB */
  uint16_t *copy;     /* plans, zero padded: per GN-column group, per k block, four VNNI tiles (16 pairs x TN
                         columns; pack_groups); TRANS plans of decode rows (m_hint <= MR): dense npad x kpad */
  int vnni;           /* copy holds VNNI tiles */
  uint16_t *ap;       /* A of a pass, for the tiles (lay_out_a): ROWMAJOR per k block mp rows of KB (M, or MR
                         zero padded past 16 rows); TRANS A^T, kpad/2 x M pairs; zeros past K */
  uint16_t *ntail;    /* TRANS one-shot: x2's last N % TN columns, TN x kpad, zero padded */
  float *c32;         /* MR rows of cld: sums before bias and rounding */
  int64_t cld;        /* npad + TN: a tile's 16 rows of c32 fall in different cache sets even when N is
                         a power of two */
  /* the blocked pass, grown on demand: A for every row pass (abig), per thread an x2 panel (bpan, one-shot
   * calls) and the sums of MC rows of it (cblk) */
  uint16_t *abig, *bpan;
  float *cblk;
  int64_t abig_n, bpan_n, cblk_n; /* elements each holds */
} amx_t;

/* A plan's copy in the tiles' layout: the plan passes (rm_plan_cols) and the blocked pass read it as is. Else
 * x2 is read in place (a TRANS plan's dense copy counts as in place) and packed per call for the blocked pass. */
static int packed(const amx_t *d) { return d->copy && d->vnni; }

typedef struct __attribute__((aligned(64))) {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tilecfg_t;

int tpi_gemm_amx_usable(void) {
  static int v = -1; /* as tpi_have_avx512: a race to the same value, kept defined */
  int r = __atomic_load_n(&v, __ATOMIC_RELAXED);
  if (r >= 0) return r;
  unsigned a, b, c, d;
  r = tpi_have_avx512() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1) && (d >> 24 & 1);
  if (r) { /* the OS saves tile state (XCR0 bits 17, 18), and Linux lets this process use it */
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    r = (lo >> 17 & 3) == 3 && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
  }
  __atomic_store_n(&v, r, __ATOMIC_RELAXED);
  return r;
}

#define STACK_FENCE() __asm__ volatile("" ::: "memory")

/* C tiles 0-3 to +0, where every sum starts. */
TGT static inline void zero_c(void) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}

static int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* Interleave rows k and k+1 (row k at r0, NULL past K) of 64 columns, `valid` of them real,
 * into the VNNI rows of four tiles: out[t * tstride] takes columns 16t..16t+15 as (k, k+1) pairs. */
TGT static inline void interleave64(const uint16_t *r0, const uint16_t *r1, int64_t valid, uint16_t *out,
                                    int64_t tstride) {
  const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37, 5,
                                      36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
  for (int h = 0; h < 2; h++) {
    const int64_t v = valid - 32 * h;
    const __mmask32 m = v >= 32 ? ~(__mmask32)0 : v > 0 ? ((__mmask32)1 << v) - 1 : 0;
    const __m512i x = r0 ? _mm512_maskz_loadu_epi16(m, r0 + 32 * h) : _mm512_setzero_si512();
    const __m512i y = r1 ? _mm512_maskz_loadu_epi16(m, r1 + 32 * h) : _mm512_setzero_si512();
    _mm512_store_si512(out + (2 * h) * tstride, _mm512_permutex2var_epi16(x, lo, y));
    _mm512_store_si512(out + (2 * h + 1) * tstride, _mm512_permutex2var_epi16(x, hi, y));
  }
}

/* The tiles of a pass of M rows (MR = 32: two row halves, 16 and M - 16).
 *   row-major:  C 0-3, A 4 (rows 0-15) and 7 (the rest), B 5 and 6; one half: C 0-3 are four column
 *               tiles, two halves (plans; in place runs the halves in turn as one of 16 rows each):
 *               C 0, 1 rows 0-15 and C 2, 3 the rest, of two column tiles.
 *   transposed: C^T 0-3, x2's rows 5 and 6, A^T 4 (rows 0-15 of A) and 7 (the rest); one half: C^T 0-3
 *               are four column tiles, two halves: C^T 0, 1 column tile 0 (row halves), 2, 3 tile 1. */
static void configure(tilecfg_t *cfg, int trans, int64_t M) {
  const int two = M > 16;
  const int64_t m0 = two ? 16 : M, m1 = M - 16;
  memset(cfg, 0, sizeof *cfg);
  cfg->palette = 1;
  for (int t = 0; t < 8; t++) cfg->rows[t] = 16, cfg->colsb[t] = 64;
  if (trans) {
    for (int t = 0; t < 5; t++) cfg->colsb[t] = (uint16_t)(m0 * 4);
    if (two) cfg->colsb[1] = cfg->colsb[3] = cfg->colsb[7] = (uint16_t)(m1 * 4);
  } else {
    for (int t = 0; t < 5; t++) cfg->rows[t] = (uint8_t)m0;
    if (two) cfg->rows[2] = cfg->rows[3] = cfg->rows[7] = (uint8_t)m1;
  }
}

/* c (M rows, stride ldc) = A . B on columns [j0, j1) (j0 a multiple of GN, j1 of TN), x2 row-major, in place. Each
 * visit interleaves one k block of GV column groups into kbuf, so that x2 is read along its rows in runs of GV x 128
 * bytes (shorter runs measured slower and less steady), and runs it for every row half of A: x2 is read once whatever
 * M. A is laid out for mp rows (M, or 32 zero padded: both halves' tiles 16 rows high). C's sums wait in c between
 * visits. */
TGT static void rm_cols(const amx_t *d, int64_t K, int64_t N, int64_t M, float *c, int64_t ldc, int64_t j0,
                        int64_t j1) {
  tilecfg_t cfg;
  const int64_t mp = M > 16 ? MR : M;
  configure(&cfg, 0, M > 16 ? 16 : M);
  _tile_loadconfig(&cfg);
  uint16_t kbuf[GV][4][16 * KB] __attribute__((aligned(64)));
  for (int64_t k0 = 0; k0 < K; k0 += KB) {
    const int first = k0 == 0;
    for (int64_t jv = j0; jv < j1; jv += GV * GN) {
      const int ng = (int)((j1 - jv + GN - 1) / GN < GV ? (j1 - jv + GN - 1) / GN : GV);
      STACK_FENCE(); /* the previous visit's tile loads have read kbuf */
      for (int p = 0; p < 16; p++) {
        const int64_t k = k0 + 2 * p;
        const uint16_t *r0 = k < K ? d->b + k * d->ld : NULL, *r1 = k + 1 < K ? d->b + (k + 1) * d->ld : NULL;
        for (int g = 0; g < ng; g++) {
          const int64_t j = jv + g * GN;
          interleave64(r0 ? r0 + j : NULL, r1 ? r1 + j : NULL, N - j, kbuf[g][0] + p * KB, 16 * KB);
        }
      }
      STACK_FENCE(); /* kbuf is written before its tile loads */
      for (int g = 0; g < ng; g++) {
        const int64_t j = jv + g * GN;
        const int nt = j1 - j >= GN ? 4 : (int)((j1 - j) / TN);
        for (int64_t r0 = 0; r0 < M; r0 += 16) {
          float *cr = c + r0 * ldc + j;
          if (first) {
            zero_c();
          } else {
            _tile_loadd(0, cr, ldc * 4);
            if (nt > 1) _tile_loadd(1, cr + TN, ldc * 4);
            if (nt > 2) _tile_loadd(2, cr + 2 * TN, ldc * 4);
            if (nt > 3) _tile_loadd(3, cr + 3 * TN, ldc * 4);
          }
          _tile_loadd(4, d->ap + k0 * mp + r0 * KB, KB * 2);
          _tile_loadd(5, kbuf[g][0], KB * 2);
          _tile_dpbf16ps(0, 4, 5);
          if (nt > 1) {
            _tile_loadd(6, kbuf[g][1], KB * 2);
            _tile_dpbf16ps(1, 4, 6);
          }
          if (nt > 2) {
            _tile_loadd(5, kbuf[g][2], KB * 2);
            _tile_dpbf16ps(2, 4, 5);
          }
          if (nt > 3) {
            _tile_loadd(6, kbuf[g][3], KB * 2);
            _tile_dpbf16ps(3, 4, 6);
          }
          _tile_stored(0, cr, ldc * 4);
          if (nt > 1) _tile_stored(1, cr + TN, ldc * 4);
          if (nt > 2) _tile_stored(2, cr + 2 * TN, ldc * 4);
          if (nt > 3) _tile_stored(3, cr + 3 * TN, ldc * 4);
        }
      }
    }
  }
  _tile_release();
}

/* The same sums from a plan's copy, whose blocks let the k loop run innermost with C in tiles. */
TGT static void rm_plan_cols(const amx_t *d, int64_t K, int64_t M, float *c, int64_t ldc, int64_t j0, int64_t j1) {
  tilecfg_t cfg;
  configure(&cfg, 0, M);
  _tile_loadconfig(&cfg);
  const int64_t nkb = d->kpad / KB, step = M > 16 ? 2 * TN : GN, mp = M > 16 ? MR : M;
  for (int64_t j = j0; j < j1; j += step) {
    const int nt = j1 - j >= step ? (int)(step / TN) : (int)((j1 - j) / TN);
    const uint16_t *blk = d->copy + j / GN * nkb * GN * KB + j % GN / TN * 16 * KB;
    zero_c();
    for (int64_t k0 = 0; k0 < K; k0 += KB, blk += GN * KB) {
      _tile_loadd(4, d->ap + k0 * mp, KB * 2);
      _tile_loadd(5, blk, 64);
      _tile_dpbf16ps(0, 4, 5);
      if (M > 16) { /* two row halves, two column tiles */
        _tile_loadd(7, d->ap + k0 * mp + 16 * KB, KB * 2);
        _tile_dpbf16ps(2, 7, 5);
        if (nt > 1) {
          _tile_loadd(6, blk + 16 * KB, 64);
          _tile_dpbf16ps(1, 4, 6);
          _tile_dpbf16ps(3, 7, 6);
        }
        continue;
      }
      if (nt > 1) {
        _tile_loadd(6, blk + 16 * KB, 64);
        _tile_dpbf16ps(1, 4, 6);
      }
      if (nt > 2) {
        _tile_loadd(5, blk + 32 * KB, 64);
        _tile_dpbf16ps(2, 4, 5);
      }
      if (nt > 3) {
        _tile_loadd(6, blk + 48 * KB, 64);
        _tile_dpbf16ps(3, 4, 6);
      }
    }
    /* tile t holds rows r0.. of columns col..: (0, j) (0, j + TN) (0 | 16, j + 2TN | j) (0 | 16, ...) */
    const int two = M > 16;
    _tile_stored(0, c + j, ldc * 4);
    if (nt > 1) _tile_stored(1, c + j + TN, ldc * 4);
    if (two) _tile_stored(2, c + 16 * ldc + j, ldc * 4);
    if (two && nt > 1) _tile_stored(3, c + 16 * ldc + j + TN, ldc * 4);
    if (!two && nt > 2) _tile_stored(2, c + j + 2 * TN, ldc * 4);
    if (!two && nt > 3) _tile_stored(3, c + j + 3 * TN, ldc * 4);
  }
  _tile_release();
}

/* Tile t of a group, transposed x2: k pairs of columns jt..jt+15 of C, i.e. a 16 x 16 transpose of 4-byte
 * pairs from x2's rows jt.. (zeros past K and N). */
static void trans_tile(const amx_t *d, int64_t K, int64_t N, int64_t jt, int64_t k0, uint16_t *out) {
  if (jt + TN <= N && k0 + KB <= K) {
    if (d->ld % 2 == 0) {
      tpi_copy_tile64(out, TN, d->b + jt * d->ld + k0, d->ld / 2, 4);
      return;
    }
    uint16_t rows[TN * KB] __attribute__((aligned(64))); /* odd ld: pairs straddle, so the rows go dense first */
    for (int c = 0; c < TN; c++) memcpy(rows + c * KB, d->b + (jt + c) * d->ld + k0, KB * 2);
    tpi_copy_tile64(out, TN, rows, TN, 4);
    return;
  }
  for (int p = 0; p < 16; p++)
    for (int c = 0; c < TN; c++)
      for (int e = 0; e < 2; e++) {
        const int64_t k = k0 + 2 * p + e;
        out[p * KB + 2 * c + e] = jt + c < N && k < K ? d->b[(jt + c) * d->ld + k] : 0;
      }
}

/* Columns [j0, j1) and k blocks [kb0, kb1) of x2 (d->b, either layout; j0 a multiple of GN) as the tiles read them: per
 * GN-column group, per k block, four VNNI tiles of 16 k pairs x TN columns, zeros past K and N. Group g of the range
 * starts at dst + g * nkb * GN * KB. A plan's copy, or one panel of a one-shot call. */
TGT static void pack_groups(const amx_t *d, int64_t K, int64_t N, int64_t j0, int64_t j1, int64_t kb0, int64_t kb1,
                            uint16_t *dst) {
  const int64_t nkb = d->kpad / KB, gstride = nkb * GN * KB;
  if (d->layout == ROWMAJOR) /* along x2's rows: a pair of rows for every group, then the next pair */
    for (int64_t k0 = kb0 * KB; k0 < kb1 * KB; k0 += KB)
      for (int p = 0; p < 16; p++) {
        const int64_t k = k0 + 2 * p;
        const uint16_t *r0 = k < K ? d->b + k * d->ld : NULL, *r1 = k + 1 < K ? d->b + (k + 1) * d->ld : NULL;
        for (int64_t j = j0; j < j1; j += GN)
          interleave64(r0 ? r0 + j : NULL, r1 ? r1 + j : NULL, N - j,
                       dst + (j - j0) / GN * gstride + k0 / KB * GN * KB + p * KB, 16 * KB);
      }
  else /* along x2's rows too: 64 of them (a group) over every k block, then the next group */
    for (int64_t j = j0; j < j1; j += GN)
      for (int64_t k0 = kb0 * KB; k0 < kb1 * KB; k0 += KB)
        for (int t = 0; t < 4; t++)
          trans_tile(d, K, N, j + t * TN, k0, dst + (j - j0) / GN * gstride + k0 / KB * GN * KB + t * 16 * KB);
}

/* The blocked pass on one panel and row block: sums of rows [ib, ib + MC) (abig, zero rows past M) by the
 * panel's columns [jc, jc + jn) (bp, packed groups; jn a multiple of TN), kept in cb across the k panels,
 * each 32 x 32 block of C in tiles across a k panel (A: two tiles of row halves, x2: two of column halves);
 * then out to C's rows < M: fp32 as they are, or bias and one rounding. */
TGT static void big_panel(const amx_t *d, int64_t M, int64_t K, int64_t N, uint16_t *bp, int64_t jc, int64_t jn,
                          int64_t ib, int pack, float *cb, void *C, int64_t ldc, const float *bias, int f32) {
  const int64_t nkb = d->kpad / KB, mpad = round_up(M, MR), ie = ib + MC < mpad ? ib + MC : mpad;
  for (int64_t kb0 = 0; kb0 < nkb; kb0 += KCB) {
    const int64_t kb1 = kb0 + KCB < nkb ? kb0 + KCB : nkb;
    if (pack) pack_groups(d, K, N, jc, jc + jn, kb0, kb1, bp); /* a one-shot call's panel, used at once from L2 */
    for (int64_t i = ib; i < ie; i += MR)
      for (int64_t jp = 0; jp < jn; jp += 2 * TN) {
        const int two = jp + TN < jn;
        float *c = cb + (i - ib) * CLD + jp;
        const uint16_t *a = d->abig + (i / MR * nkb + kb0) * MR * KB;
        const uint16_t *b = bp + jp / GN * nkb * GN * KB + kb0 * GN * KB + jp % GN / TN * 16 * KB;
        if (kb0 == 0) {
          zero_c();
        } else {
          _tile_loadd(0, c, CLD * 4);
          _tile_loadd(2, c + 16 * CLD, CLD * 4);
          if (two) _tile_loadd(1, c + TN, CLD * 4);
          if (two) _tile_loadd(3, c + 16 * CLD + TN, CLD * 4);
        }
        for (int64_t kb = kb0; kb < kb1; kb++, a += MR * KB, b += GN * KB) {
          _tile_loadd(4, a, KB * 2);
          _tile_loadd(7, a + 16 * KB, KB * 2);
          _tile_loadd(5, b, 64);
          _tile_dpbf16ps(0, 4, 5);
          _tile_dpbf16ps(2, 7, 5);
          if (two) {
            _tile_loadd(6, b + 16 * KB, 64);
            _tile_dpbf16ps(1, 4, 6);
            _tile_dpbf16ps(3, 7, 6);
          }
        }
        _tile_stored(0, c, CLD * 4);
        _tile_stored(2, c + 16 * CLD, CLD * 4);
        if (two) _tile_stored(1, c + TN, CLD * 4);
        if (two) _tile_stored(3, c + 16 * CLD + TN, CLD * 4);
      }
  }
  const int64_t n = jn < N - jc ? jn : N - jc;
  for (int64_t r = ib; r < ie && r < M; r++)
    if (f32)
      memcpy((float *)C + r * ldc + jc, cb + (r - ib) * CLD, (size_t)n * sizeof(float));
    else
      tpi_f32_add_to_bf16_n(cb + (r - ib) * CLD, bias ? bias + jc : NULL, (uint16_t *)C + r * ldc + jc, (size_t)n);
}

/* x2's rows for columns jj.. of C (16 of them, a k block) into tile bt: in place, through kbuf for
 * the last, partial k block, or from `tail` past nfull. */
#define TR_LOAD(bt, jj)                                                                                            \
  do {                                                                                                             \
    const uint16_t *src_ = (jj) < nfull ? b + (jj)*ld + k0 : tail + ((jj)-nfull) * kpad + k0;                      \
    const int64_t st_ = (jj) < nfull ? ld * 2 : kpad * 2;                                                          \
    if (k0 + KB <= K || (jj) >= nfull)                                                                             \
      _tile_loadd(bt, src_, st_);                                                                                  \
    else {                                                                                                         \
      STACK_FENCE();                                                                                               \
      for (int r = 0; r < 16; r++) _mm512_store_si512(kbuf + r * KB, _mm512_maskz_loadu_epi16(km, src_ + r * ld)); \
      STACK_FENCE();                                                                                               \
      _tile_loadd(bt, kbuf, KB * 2);                                                                               \
    }                                                                                                              \
  } while (0)

/* C^T tile t (16 columns of C from col, rows r0.. of C, `rows` of them) into c through ct. */
#define TR_OUT(t, col, r0, rows)                                                             \
  do {                                                                                       \
    _tile_stored(t, ct, 64);                                                                 \
    for (int i = 0; i < 16; i++)                                                             \
      for (int64_t m = 0; m < (rows); m++) c[((r0) + m) * ldc + (col) + i] = ct[i * 16 + m]; \
  } while (0)

/* c (M rows, stride ldc) = A . B on columns [j0, j1) (multiples of TN), x2 transposed: column j at b + j * ld,
 * the first nfull columns in place (whole k blocks read straight, the last partial one masked), the rest
 * in `tail`, tile rows of kpad. */
TGT static void tr_cols(const amx_t *d, int64_t K, int64_t M, const uint16_t *b, int64_t ld, int64_t nfull,
                        const uint16_t *tail, float *c, int64_t ldc, int64_t j0, int64_t j1) {
  tilecfg_t cfg;
  configure(&cfg, 1, M);
  _tile_loadconfig(&cfg);
  uint16_t kbuf[16 * KB] __attribute__((aligned(64)));
  float ct[16 * 16] __attribute__((aligned(64)));
  const int64_t kpad = d->kpad, step = M > 16 ? 2 * TN : GN, m1 = M - 16;
  const __mmask32 km = K % KB ? ((__mmask32)1 << (K % KB)) - 1 : ~(__mmask32)0;
  for (int64_t j = j0; j < j1; j += step) {
    const int nt = j1 - j >= step ? (int)(step / TN) : (int)((j1 - j) / TN);
    zero_c();
    for (int64_t k0 = 0; k0 < kpad; k0 += KB) {
      _tile_loadd(4, d->ap + k0 * M, M * 4);
      if (M > 16) { /* two row halves of A, two column tiles */
        _tile_loadd(7, d->ap + k0 * M + 2 * 16, M * 4);
        TR_LOAD(5, j);
        _tile_dpbf16ps(0, 5, 4);
        _tile_dpbf16ps(1, 5, 7);
        if (nt > 1) {
          TR_LOAD(6, j + TN);
          _tile_dpbf16ps(2, 6, 4);
          _tile_dpbf16ps(3, 6, 7);
        }
        continue;
      }
      TR_LOAD(5, j);
      _tile_dpbf16ps(0, 5, 4);
      if (nt > 1) {
        TR_LOAD(6, j + TN);
        _tile_dpbf16ps(1, 6, 4);
      }
      if (nt > 2) {
        TR_LOAD(5, j + 2 * TN);
        _tile_dpbf16ps(2, 5, 4);
      }
      if (nt > 3) {
        TR_LOAD(6, j + 3 * TN);
        _tile_dpbf16ps(3, 6, 4);
      }
    }
    if (M > 16) {
      TR_OUT(0, j, 0, 16);
      TR_OUT(1, j, 16, m1);
      if (nt > 1) TR_OUT(2, j + TN, 0, 16);
      if (nt > 1) TR_OUT(3, j + TN, 16, m1);
      continue;
    }
    TR_OUT(0, j, 0, M);
    if (nt > 1) TR_OUT(1, j + TN, 0, M);
    if (nt > 2) TR_OUT(2, j + 2 * TN, 0, M);
    if (nt > 3) TR_OUT(3, j + 3 * TN, 0, M);
  }
  _tile_release();
}

/* `rows` rows of A (M real, zeros past them and past K) as row-major tiles read them: per k block, `rows`
 * rows of KB, at dst + (kb * rows + m) * KB. */
TGT static void lay_rows(uint16_t *dst, int64_t rows, int64_t K, int64_t kpad, int64_t M, const uint16_t *A,
                         int64_t lda) {
  for (int64_t m = 0; m < rows; m++)
    for (int64_t k0 = 0; k0 < kpad; k0 += KB) {
      const int64_t n = m >= M ? 0 : K - k0 >= KB ? KB : K - k0;
      const __mmask32 mask = n == KB ? ~(__mmask32)0 : ((__mmask32)1 << n) - 1;
      _mm512_store_si512(dst + (k0 / KB * rows + m) * KB,
                         n ? _mm512_maskz_loadu_epi16(mask, A + m * lda + k0) : _mm512_setzero_si512());
    }
}

/* A as a pass's tiles read it: row-major x2, per k block mp rows of KB (a tile of contiguous rows; mp = M, or
 * MR past 16 rows, zero padded); transposed, A^T, pair p of rows 0..M-1 as (A[m][2p], A[m][2p+1]); zeros
 * past K. */
static void lay_out_a(amx_t *d, int64_t K, int64_t M, const uint16_t *A, int64_t lda) {
  if (d->layout != TRANS || packed(d)) {
    lay_rows(d->ap, M <= 16 ? M : MR, K, d->kpad, M, A, lda);
    return;
  }
  for (int64_t m = 0; m < M; m++)
    for (int64_t p = 0; p < d->kpad / 2; p++) {
      d->ap[(p * M + m) * 2] = 2 * p < K ? A[m * lda + 2 * p] : 0;
      d->ap[(p * M + m) * 2 + 1] = 2 * p + 1 < K ? A[m * lda + 2 * p + 1] : 0;
    }
}

/* c32 (M <= MR rows, stride cld) = A . B, threads splitting the columns (an element's sum is the same
 * whoever computes it). */
static void amx_pass(tpi_gemm_t *g, int64_t M, const uint16_t *A, int64_t lda) {
  amx_t *d = g->impl;
  const int trans = d->layout == TRANS && !packed(d);
  const int64_t K = g->K, unit = trans ? TN : GN, units = (d->npad + unit - 1) / unit;
  if (K == 0) { /* no k blocks: every sum is the +0 it starts at */
    memset(d->c32, 0, (size_t)(M * d->cld) * sizeof(float));
    return;
  }
  lay_out_a(d, K, M, A, lda);
  const int nt = g->nthreads > 1 ? g->nthreads : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int t = 0; t < nt; t++) {
    const int64_t j0 = units * t / nt * unit, j1 = units * (t + 1) / nt * unit;
    if (j0 == j1) continue;
    if (trans)
      tr_cols(d, K, M, d->b, d->ld, d->copy ? d->npad : g->N / TN * TN, d->ntail, d->c32, d->cld, j0, j1);
    else if (d->copy)
      rm_plan_cols(d, K, M, d->c32, d->cld, j0, j1 < d->npad ? j1 : d->npad);
    else
      rm_cols(d, K, g->N, M, d->c32, d->cld, j0, j1 < d->npad ? j1 : d->npad);
  }
}

/* Grow p (elements of es bytes, 64-byte aligned) to hold n; *have: what it holds. */
static int grow(void **p, int64_t *have, int64_t n, size_t es) {
  if (n <= *have) return 1;
  free(*p);
  *p = aligned_alloc(64, (size_t)round_up(n * (int64_t)es, 64));
  *have = *p ? n : 0;
  return *p != NULL;
}

/* The blocked pass's buffers for mpad rows and nt threads: abig, cblk, and (one-shot) bpan. */
static int big_buffers(amx_t *d, int64_t mpad, int nt) {
  return grow((void **)&d->abig, &d->abig_n, mpad * d->kpad, 2) &&
         grow((void **)&d->cblk, &d->cblk_n, nt * MC * CLD, sizeof(float)) &&
         (packed(d) || grow((void **)&d->bpan, &d->bpan_n, nt * d->kpad * NC, 2));
}

/* A for the blocked pass: per pass of MR rows, per k block, MR rows of KB (64 bytes, one tile row), zeros
 * past M and K. */
static void lay_out_big(amx_t *d, int64_t K, int64_t M, const uint16_t *A, int64_t lda) {
  for (int64_t r0 = 0; r0 < M; r0 += MR)
    lay_rows(d->abig + r0 * d->kpad, MR, K, d->kpad, M - r0 < MR ? M - r0 : MR, A + r0 * lda, lda);
}

/* Thread t of nt in the blocked pass: its share of the (x2 panel, row block) pairs, panel by panel, so
 * that a one-shot call packs each panel once per thread that takes part of it. */
TGT static void big_thread(const tpi_gemm_t *g, int t, int nt, int64_t M, void *C, int64_t ldc, int f32) {
  const amx_t *d = g->impl;
  const int64_t nkb = d->kpad / KB, panels = (d->npad + NC - 1) / NC, nib = (round_up(M, MR) + MC - 1) / MC;
  uint16_t *bpan = packed(d) ? NULL : d->bpan + t * d->kpad * NC;
  float *cb = d->cblk + t * MC * CLD;
  tilecfg_t cfg;
  configure(&cfg, 0, 16);
  _tile_loadconfig(&cfg);
  for (int64_t it = panels * nib * t / nt, done = -1; it < panels * nib * (t + 1) / nt; it++) {
    const int64_t pi = it / nib, jc = pi * NC, jn = d->npad - jc < NC ? d->npad - jc : NC;
    /* a one-shot call packs the panel k panel by k panel as its first row block reaches it */
    big_panel(d, M, g->K, g->N, bpan ? bpan : d->copy + jc / GN * nkb * GN * KB, jc, jn, it % nib * MC,
              bpan && done != pi, cb, C, ldc, g->bias32, f32);
    done = pi; /* the panel this thread's bpan holds */
  }
  _tile_release();
}

/* The blocked pass: A laid out once for every row pass (lay_out_big), then threads split the (x2 panel, row
 * block) pairs; a one-shot call packs each panel as it comes (x2 read once per thread on it). */
static tpmm_status_t amx_big(tpi_gemm_t *g, int64_t M, const uint16_t *A, int64_t lda, void *C, int64_t ldc, int f32) {
  amx_t *d = g->impl;
  const int64_t K = g->K, mpad = round_up(M, MR);
  const int nt = g->nthreads > 1 ? g->nthreads : 1;
  if (tpi_debug_fail("gemm amx buffers") || !big_buffers(d, mpad, nt))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(amx): out of memory for %lld rows of A (k = %lld)", (long long)M,
                    (long long)K);
  lay_out_big(d, K, M, A, lda);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int t = 0; t < nt; t++) big_thread(g, t, nt, M, C, ldc, f32);
  if (!packed(d) && d->abig_n > ABIG_KEEP) free(d->abig), d->abig = NULL, d->abig_n = 0;
  return TPMM_SUCCESS;
}

/* M rows: the blocked pass where x2 is packed (plans) or worth packing, else passes of MR rows; fp32 sums into
 * C (f32), or bias and one rounding to bf16. The sums are the same either way. */
static tpmm_status_t amx_rows(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc, int f32) {
  amx_t *d = g->impl;
  if (g->K > 0 && M > MR && (packed(d) || M > (d->layout == TRANS ? PACK_ROWS_TRANS : PACK_ROWS)))
    return amx_big(g, M, A, lda, C, ldc, f32);
  for (int64_t r0 = 0; r0 < M; r0 += MR) {
    const int64_t rows = M - r0 < MR ? M - r0 : MR;
    amx_pass(g, rows, (const uint16_t *)A + r0 * lda, lda);
    for (int64_t i = 0; i < rows; i++)
      if (f32)
        memcpy((float *)C + (r0 + i) * ldc, d->c32 + i * d->cld, (size_t)g->N * sizeof(float));
      else
        tpi_f32_add_to_bf16_n(d->c32 + i * d->cld, g->bias32, (uint16_t *)C + (r0 + i) * ldc, (size_t)g->N);
  }
  return TPMM_SUCCESS;
}

static tpmm_status_t amx_f32(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc) {
  return amx_rows(g, M, A, lda, C, ldc, 1);
}

static tpmm_status_t amx_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc) {
  return amx_rows(g, M, A, lda, C, ldc, 0);
}

/* x2 for the kernel: in place (with the transposed N tail copied), or into the plan's copy. */
static tpmm_status_t amx_rebind(tpi_gemm_t *g, const tpi_mat_t *b) {
  amx_t *d = g->impl;
  if (amx_layout(b) != d->layout)
    return tpi_fail(TPMM_ERR_INTERNAL, "gemm(amx): x2's strides (%lld, %lld) are not the layout prepared",
                    (long long)b->rs, (long long)b->cs);
  const int64_t K = g->K, N = g->N;
  d->b = (const uint16_t *)b->data, d->ld = d->layout == ROWMAJOR ? b->rs : b->cs;
  if (packed(d))
    pack_groups(d, K, N, 0, d->npad, 0, d->kpad / KB, d->copy);
  else if (d->copy) { /* dense transposed, read in place from now on */
    for (int64_t j = 0; j < N; j++) memcpy(d->copy + j * d->kpad, d->b + j * d->ld, (size_t)K * 2);
    d->b = d->copy, d->ld = d->kpad;
  } else if (d->layout == TRANS)
    for (int64_t j = N / TN * TN; j < N; j++)
      memcpy(d->ntail + (j - N / TN * TN) * d->kpad, d->b + j * d->ld, (size_t)K * 2);
  return TPMM_SUCCESS;
}

static tpmm_status_t amx_prepare(tpi_gemm_t *g, const tpi_mat_t *b) {
  amx_t *d = calloc(1, sizeof *d);
  if (!d) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(amx): out of memory");
  g->impl = d;
  d->layout = amx_layout(b);
  d->npad = round_up(g->N, TN), d->kpad = round_up(g->K, KB), d->cld = d->npad + TN;
  /* a transposed x2's decode plans keep it dense: tr_cols reads its rows as tiles faster than rm_plan_cols
   * reads VNNI tiles at up to MR rows (bench/RESULTS.md §20) */
  d->vnni = d->layout == ROWMAJOR || g->m_hint > MR;
  const size_t cbytes = (size_t)(round_up(g->N, d->vnni ? GN : TN) * d->kpad) * 2 + 64;
  if (g->pack) { /* plans only (gemm.c) */
    if (!(d->copy = aligned_alloc(64, round_up((int64_t)cbytes, 64))))
      return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(amx): out of memory copying x2 (%lld x %lld)", (long long)g->K,
                      (long long)g->N);
    memset(d->copy, 0, cbytes);
  } else if (d->layout == TRANS) {
    if (!(d->ntail = calloc((size_t)(TN * d->kpad) + 32, 2)))
      return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(amx): out of memory");
  }
  /* a plan of more rows has the blocked pass's buffers now, so that running out of memory fails here */
  if (g->pack && g->m_hint > MR && g->K > 0 &&
      !big_buffers(d, round_up(g->m_hint, MR), g->nthreads > 1 ? g->nthreads : 1))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(amx): out of memory for %lld rows of A (k = %lld)", (long long)g->m_hint,
                    (long long)g->K);
  if (!(d->ap = aligned_alloc(64, (size_t)round_up(d->kpad * MR * 2, 64))))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(amx): out of memory");
  if (!(d->c32 = aligned_alloc(64, (size_t)round_up(MR * d->cld * (int64_t)sizeof(float) + 64, 64))))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(amx): out of memory for %d x %lld floats", MR, (long long)d->cld);
  return amx_rebind(g, b);
}

static void amx_release(tpi_gemm_t *g) {
  amx_t *d = g->impl;
  free(d->copy), free(d->ap), free(d->ntail), free(d->c32), free(d->abig), free(d->bpan), free(d->cblk);
  free(d);
  g->impl = NULL;
}

static int amx_supports(tpmm_dtype_t dt) { return dt == TPMM_BFLOAT16 && tpi_gemm_amx_usable(); }

const tpi_gemm_backend_t tpi_gemm_amx = {"amx",       amx_supports, amx_prepare, amx_run,
                                         amx_release, amx_rebind,   amx_f32,     0};
#else
int tpi_gemm_amx_usable(void) { return 0; } /* no AMX: tpi_gemm_create never picks amx */
static int amx_supports(tpmm_dtype_t dt) { return (void)dt, 0; }
const tpi_gemm_backend_t tpi_gemm_amx = {"amx", amx_supports, NULL, NULL, NULL, NULL, NULL, 0};
#endif
