/*
 * gemm_dnnl.c — the oneDNN matmul backend (bf16 and fp32).
 *
 * B is reordered once into oneDNN's packed "weights" layout, or used plain.
 * Primitives are cached per (M, lda) in a small LRU: a pipeline running the
 * same chunk shapes again and again creates each primitive once.
 *
 * Bit-reproducibility (a row's bits may not depend on M, on where A sits or
 * on packing): oneDNN 2.6 picks kernel and blocking per call shape, so
 *  - one kernel per x2, oneDNN's choice at PIN_M rows. It gives bf16 "small
 *    shapes" (M <= 32 with M*N <= 256, M == 1 with K == 256) to
 *    avx512_core_bf16 instead of AMX; those calls run on more, zero rows.
 *  - AMX kernels cut K into chunks sized by a cache heuristic (of M and of
 *    B's layout) and add up the chunks' partial sums, so the cut shows in
 *    the bits. With AMX, K is cut here instead: SLICE-column calls summed in
 *    fp32 (sum post-op) in a fixed order, then bias and rounding. A slice is
 *    never cut again: its largest chunk (1408 * SLICE + 768 KiB bytes) is
 *    below oneDNN's cut-off, 3/4 of the L2 (2 MiB per core on AMX CPUs).
 *  - brgemm needs A and C dense (else gemm:jit, whose order depends on M);
 *    with an odd K, AMX copies A with a blocking of its own. So A goes through
 *    a scratch panel when strided, sliced or odd (odd K: a zero column in A, a
 *    zero row in B), C when strided or sliced; other calls run in place (the
 *    other kernels, fp32 and avx512_core_bf16, add in order at any M).
 *
 * Row counts: oneDNN 2.6's AMX kernel blocks some badly (M mod 64 in ~49..62
 * ran 2-30x slower than 16 rows more), so calls of up to PANEL rows run on
 * whole 16-row tiles (extra panel rows, whose results are dropped), and a large in-place
 * call's tail of 49..63 rows runs apart the same way.
 *
 * tpi_gemm_run_f32 runs the same calls with an fp32 C and no bias (primitives
 * cached apart), so its rows have the same M-independence.
 *
 * Threads: runs set OpenMP's count to g->nthreads (TPMM_NUM_THREADS, default
 * 1) and restore it, so ranks sharing a machine do not oversubscribe it.
 */
#include "gemm_dnnl.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"

static int dn_supports(tpmm_dtype_t dt) { return dt == TPMM_FLOAT32 || (dt == TPMM_BFLOAT16 && tpi_dn_has_bf16()); }

static void slot_clear(slot_t *s) {
  for (int k = 0; k < KINDS; k++)
    if (s->prim[k]) dnnl_primitive_destroy(s->prim[k]), dnnl_memory_destroy(s->a[k]), dnnl_memory_destroy(s->c[k]);
  memset(s, 0, sizeof *s);
}

/* The calls' primitives for `rows` rows with the pinned kernel;
 * dnnl_unimplemented if oneDNN does not offer it there. */
static dnnl_status_t make_slot(tpi_gemm_t *g, dn_t *d, slot_t *v, int64_t rows, int64_t lda, const char *impl,
                               int f32) {
  dnnl_status_t s = dnnl_success;
  for (int k = 0; k < KINDS && s == dnnl_success; k++) {
    dnnl_primitive_desc_t pd;
    if (!tpi_dn_used(d, k)) continue;
    s = tpi_dn_make_pd(g, d, rows, k, lda ? lda : d->kind[k].k, impl, f32, &pd);
    if (s != dnnl_success) break;
    s = dnnl_primitive_create(&v->prim[k], pd);
    if (s == dnnl_success)
      s = dnnl_memory_create(&v->a[k], dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), tpi_dn_engine,
                             DNNL_MEMORY_NONE);
    if (s == dnnl_success)
      s = dnnl_memory_create(&v->c[k], dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), tpi_dn_engine,
                             DNNL_MEMORY_NONE);
    dnnl_primitive_desc_destroy(pd);
  }
  if (s != dnnl_success) slot_clear(v);
  v->rows = rows;
  v->f32 = f32;
  return s;
}

/* The cached primitives for M rows (LRU) with the pinned kernel: at M rows, or
 * at the first larger count past the small-shapes that has it; else oneDNN's. */
static tpmm_status_t get_slot(tpi_gemm_t *g, dn_t *d, int64_t M, int64_t lda, int f32, slot_t **out) {
  slot_t *v = &d->slots[0];
  for (int i = 0; i < CACHE_SLOTS; i++) {
    slot_t *s = &d->slots[i];
    if (s->prim[FIRST] && s->M == M && s->lda == lda && s->f32 == f32) {
      s->used = ++d->clock;
      *out = s;
      return TPMM_SUCCESS;
    }
    if (s->used < v->used) v = s;
  }
  slot_clear(v);
  /* AMX: whole 16-row tiles are computed anyway, and oneDNN 2.6 blocks some
   * row counts badly (M mod 64 in 49..62 ran 2-30x slower than 16 rows more,
   * bench/RESULTS.md §17): such calls run on extra panel rows up to whole tiles */
  const int64_t tiles = d->amx && M > 16 && M % 16 && M <= PANEL ? (M + 15) / 16 * 16 : M;
  const int64_t cand[] = {M, tiles, M + 1, 256 / (g->N > 0 ? g->N : 1) + 1, 33, PIN_M};
  dnnl_status_t s = dnnl_unimplemented;
  for (size_t i = 0; i < sizeof cand / sizeof *cand && s == dnnl_unimplemented; i++)
    if (cand[i] >= M && (i == 0 ? tiles == M : i == 1 ? tiles != M : cand[i] <= PANEL))
      s = make_slot(g, d, v, cand[i], i == 0 ? lda : 0, d->impl, f32);
  if (s == dnnl_unimplemented) s = make_slot(g, d, v, M, lda, NULL, f32);
  if (s != dnnl_success) return tpi_dn_fail(s, "matmul primitive_create");
  v->M = M, v->lda = lda;
  v->used = ++d->clock;
  *out = v;
  return TPMM_SUCCESS;
}

static tpmm_status_t execute(tpi_gemm_t *g, dn_t *d, slot_t *v, int k, const void *A, dnnl_memory_t b, void *C) {
  DN(dnnl_memory_set_data_handle(v->a[k], (void *)A), "set A handle");
  DN(dnnl_memory_set_data_handle(v->c[k], C), "set C handle");
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, v->a[k]}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, v->c[k]}, {DNNL_ARG_BIAS, d->bias}};
  int prev = omp_get_max_threads();
  omp_set_num_threads(g->nthreads);
  dnnl_status_t st =
      dnnl_primitive_execute(v->prim[k], d->stream, g->bias32 && d->nslices == 1 && !v->f32 ? 4 : 3, args);
  if (st == dnnl_success) st = dnnl_stream_wait(d->stream);
  omp_set_num_threads(prev);
  return st == dnnl_success ? TPMM_SUCCESS : tpi_dn_fail(st, "matmul execute");
}

/* The calls on M rows (M <= PANEL unless A and C are used in place). Panel
 * rows past M keep what they had: a row of C depends on its row of A alone.
 * f32: C is fp32, without bias or rounding. */
static tpmm_status_t run_rows(tpi_gemm_t *g, dn_t *d, int64_t M, const char *A, int64_t lda, char *C, int64_t ldc,
                              int f32) {
  int copy_a = d->nslices > 1 || d->kp != g->K || lda != g->K;
  slot_t *v = NULL;
  TPI_CHECK(get_slot(g, d, M, copy_a ? 0 : lda, f32, &v));
  copy_a |= v->rows > M;
  const int copy_c = d->nslices > 1 || ldc != g->N || v->rows > M;
  const size_t es = d->es, n = (size_t)g->N;
  if (copy_a && !d->apanel && !(d->apanel = calloc(PANEL * (size_t)d->kind[FIRST].k, es)))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for an A panel");
  /* fp32 wide whatever this call's C: the panel serves tpi_gemm_run and tpi_gemm_run_f32 alike */
  if (copy_c && !d->cpanel && !(d->cpanel = malloc(PANEL * (n > 0 ? n : 1) * 4)))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for a C panel");
  for (int64_t s = 0; s < d->nslices; s++) {
    const int k = tpi_dn_kind_of(d, s);
    const int64_t kk = d->kind[k].k, k0 = s * SLICE, w = g->K - k0 < kk ? g->K - k0 : kk; /* zeros past K */
    for (int64_t i = 0; copy_a && i < M; i++) {
      char *row = d->apanel + (size_t)(i * kk) * es;
      memcpy(row, A + (size_t)(i * lda + k0) * es, (size_t)w * es);
      memset(row + (size_t)w * es, 0, (size_t)(kk - w) * es);
    }
    TPI_CHECK(execute(g, d, v, k, copy_a ? d->apanel : A, d->b[s], copy_c ? d->cpanel : C));
  }
  for (int64_t i = 0; copy_c && f32 && i < M; i++)
    memcpy(C + (size_t)(i * ldc) * 4, d->cpanel + (size_t)i * n * 4, n * 4);
  for (int64_t i = 0; copy_c && !f32 && i < M; i++) {
    uint16_t *out = (uint16_t *)(C + (size_t)(i * ldc) * es);
    const float *acc = (const float *)d->cpanel + (size_t)i * n; /* sliced: fp32 sums, then bias, rounding */
    if (d->nslices == 1)
      memcpy(out, d->cpanel + (size_t)i * n * es, n * es);
    else
      tpi_f32_add_to_bf16_n(acc, g->bias32, out, n);
  }
  return TPMM_SUCCESS;
}

/* The most rows of one in-place call: d->split_rows (set once, gemm_dnnl_prep.c) where C is bf16 (an fp32 C
 * was not measured), else all M. */
static int64_t in_place_rows(const dn_t *d, int64_t M, int f32) {
  return !f32 && d->split_rows > 0 && M > d->split_rows ? d->split_rows : M;
}

static tpmm_status_t run_any(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc, int f32) {
  dn_t *d = g->impl;
  const size_t cs = f32 ? 4 : d->es;
  const int in_place = d->nslices == 1 && d->kp == g->K && lda == g->K && ldc == g->N;
  /* in place, a tail of 49..63 rows past whole 64-row blocks runs apart, padded (get_slot) */
  const int64_t tail = in_place && M > PANEL && M % 64 > 48 && d->amx ? M % 64 : 0;
  const int64_t step = in_place ? in_place_rows(d, M - tail, f32) : PANEL;
  for (int64_t r0 = 0; r0 < M; r0 += step) {
    const int64_t rows = M - r0 < step ? M - r0 : step; /* a tail (AMX) and a split (not AMX) never meet */
    TPI_CHECK(run_rows(g, d, rows, (const char *)A + (size_t)(r0 * lda) * d->es, lda,
                       (char *)C + (size_t)(r0 * ldc) * cs, ldc, f32));
  }
  return TPMM_SUCCESS;
}

static tpmm_status_t dn_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc) {
  return run_any(g, M, A, lda, C, ldc, 0);
}
static tpmm_status_t dn_run_f32(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc) {
  return run_any(g, M, A, lda, C, ldc, 1);
}

static void dn_release(tpi_gemm_t *g) {
  dn_t *d = g->impl;
  for (int i = 0; i < CACHE_SLOTS; i++) slot_clear(&d->slots[i]);
  for (int64_t s = 0; d->b && s < d->nslices; s++)
    if (d->b[s]) dnnl_memory_destroy(d->b[s]);
  free(d->b), free(d->apanel), free(d->cpanel), free(d->bcopy);
  if (d->bias) dnnl_memory_destroy(d->bias);
  if (d->stream) dnnl_stream_destroy(d->stream);
  free(d);
  g->impl = NULL;
}

const tpi_gemm_backend_t tpi_gemm_dnnl = {"dnnl",     dn_supports,   tpi_dn_prepare, dn_run,
                                          dn_release, tpi_dn_rebind, dn_run_f32,     0};
