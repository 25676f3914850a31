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
 * Threads: runs set OpenMP's count to g->nthreads (TPMM_NUM_THREADS, default
 * 1) and restore it, so ranks sharing a machine do not oversubscribe it.
 */
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "gemm.h"

#define CACHE_SLOTS 16
#define PANEL 256 /* rows per call through the scratch panels */
#define PIN_M 64  /* rows at which the kernel is chosen: not a small shape */
#define SLICE 512 /* K per call with AMX */

/* The calls of one run: the whole K, or the first, middle and last slice
 * (the later ones add to C): k columns of A, B in b_md (k x N). */
enum { FIRST, MIDDLE, LAST, KINDS };
typedef struct {
  int64_t k;
  dnnl_memory_desc_t b_md;
} kind_t;

typedef struct {
  int64_t M, lda; /* the key; lda 0: A through the panel */
  int64_t rows;   /* rows oneDNN runs (> M: padded, through the panels) */
  dnnl_primitive_t prim[KINDS];
  dnnl_memory_t a[KINDS], c[KINDS];
  uint64_t used;
} slot_t;

typedef struct {
  dnnl_stream_t stream;
  dnnl_data_type_t ddt; /* A, B and C; C is fp32 when K is sliced */
  size_t es;
  int64_t kp, nslices; /* K as oneDNN sees it (even for bf16); calls per run */
  kind_t kind[KINDS];
  char impl[128];   /* the pinned kernel: oneDNN's implementation name */
  dnnl_memory_t *b; /* per slice: packed (owned) or a view of plain B */
  void *bcopy;      /* dense kp-row copy of x2 when it cannot be used in place */
  dnnl_memory_desc_t bias_md;
  dnnl_memory_t bias; /* unsliced only; sliced runs add bias32 themselves */
  slot_t slots[CACHE_SLOTS];
  uint64_t clock;
  char *apanel, *cpanel; /* PANEL rows of A (one call's k) and of C (fp32 when sliced) */
} dn_t;

static dnnl_engine_t engine;
static dnnl_status_t engine_status = dnnl_runtime_error;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static void engine_init(void) { engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0); }

static int dn_supports(tpmm_dtype_t dt) { return dt == TPMM_BFLOAT16 || dt == TPMM_FLOAT32; }

static tpmm_status_t dn_fail(dnnl_status_t s, const char *what) {
  if (s == dnnl_out_of_memory) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): %s: out of memory", what);
  return tpi_fail(TPMM_ERR_INTERNAL, "gemm(dnnl): %s failed (dnnl status %d)", what, (int)s);
}
#define DN(call, what)                                      \
  do {                                                      \
    dnnl_status_t dn_s_ = (call);                           \
    if (dn_s_ != dnnl_success) return dn_fail(dn_s_, what); \
  } while (0)

static dnnl_status_t md2(dnnl_memory_desc_t *md, int64_t r, int64_t c, dnnl_data_type_t dt, int64_t rs, int64_t cs) {
  dnnl_dims_t dims = {r, c}, strides = {rs, cs};
  return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}
static int kind_of(const dn_t *d, int64_t s) { return s == 0 ? FIRST : s == d->nslices - 1 ? LAST : MIDDLE; }
static int used(const dn_t *d, int k) { return k == FIRST || (k == LAST && d->nslices > 1) || d->nslices > 2; }

/* The first implementation of call kind k on M rows (A stride lda) named
 * impl, or oneDNN's first choice (impl NULL); dnnl_unimplemented if none. */
static dnnl_status_t make_pd(tpi_gemm_t *g, dn_t *d, int64_t M, int k, int64_t lda, const char *impl,
                             dnnl_primitive_desc_t *pd) {
  dnnl_matmul_desc_t desc;
  dnnl_memory_desc_t a_md, c_md;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  dnnl_primitive_desc_iterator_t it = NULL;
  const int bias = g->bias32 && d->nslices == 1;
  dnnl_status_t s = md2(&a_md, M, d->kind[k].k, d->ddt, lda, 1);
  if (s == dnnl_success) s = md2(&c_md, M, g->N, d->nslices > 1 ? dnnl_f32 : d->ddt, g->N, 1);
  if (s == dnnl_success) s = dnnl_matmul_desc_init(&desc, &a_md, &d->kind[k].b_md, bias ? &d->bias_md : NULL, &c_md);
  if (s == dnnl_success && k != FIRST) s = dnnl_primitive_attr_create(&attr);
  if (s == dnnl_success && attr) s = dnnl_post_ops_create(&po);
  if (s == dnnl_success && po) s = dnnl_post_ops_append_sum(po, 1.0f);
  if (s == dnnl_success && po) s = dnnl_primitive_attr_set_post_ops(attr, po);
  if (s == dnnl_success) s = dnnl_primitive_desc_iterator_create(&it, &desc, attr, engine, NULL);
  for (*pd = NULL; s == dnnl_success; s = dnnl_primitive_desc_iterator_next(it)) {
    const char *name = NULL;
    if (!(*pd = dnnl_primitive_desc_iterator_fetch(it))) continue;
    if (!impl || (dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name &&
                  strcmp(name, impl) == 0))
      break;
    dnnl_primitive_desc_destroy(*pd);
    *pd = NULL;
  }
  if (it) dnnl_primitive_desc_iterator_destroy(it);
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  return *pd ? dnnl_success : s == dnnl_iterator_ends ? dnnl_unimplemented : s;
}

/* Reorder the dense k x N rows at src into the packed memory `to`. */
static tpmm_status_t reorder(dn_t *d, int64_t k, int64_t n, void *src, dnnl_memory_t to) {
  dnnl_memory_desc_t fmd;
  const dnnl_memory_desc_t *tmd;
  dnnl_primitive_desc_t rpd;
  dnnl_primitive_t r = NULL;
  dnnl_memory_t from = NULL;
  DN(md2(&fmd, k, n, d->ddt, n, 1), "x2 md");
  DN(dnnl_memory_get_memory_desc(to, &tmd), "memory_get_memory_desc");
  DN(dnnl_reorder_primitive_desc_create(&rpd, &fmd, engine, tmd, engine, NULL), "reorder_primitive_desc_create");
  dnnl_status_t s = dnnl_primitive_create(&r, rpd);
  dnnl_primitive_desc_destroy(rpd);
  if (s == dnnl_success) s = dnnl_memory_create(&from, &fmd, engine, src);
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  if (s == dnnl_success) s = dnnl_primitive_execute(r, d->stream, 2, args);
  if (s == dnnl_success) s = dnnl_stream_wait(d->stream);
  if (r) dnnl_primitive_destroy(r);
  if (from) dnnl_memory_destroy(from);
  return s == dnnl_success ? TPMM_SUCCESS : dn_fail(s, "reorder of x2");
}

/* Kernel and calls: pin oneDNN's choice at PIN_M rows; slice K for AMX. */
static tpmm_status_t plan_calls(tpi_gemm_t *g, dn_t *d) {
  dnnl_dims_t bdims = {d->kp, g->N};
  d->nslices = 1;
  d->kind[FIRST].k = d->kp;
  DN(dnnl_memory_desc_init_by_tag(&d->kind[FIRST].b_md, 2, bdims, d->ddt, dnnl_ab), "weights md");
  dnnl_primitive_desc_t pd;
  const char *name = "";
  DN(make_pd(g, d, PIN_M, FIRST, d->kp, NULL, &pd), "matmul primitive_desc_create");
  dnnl_status_t s = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
  snprintf(d->impl, sizeof d->impl, "%s", s == dnnl_success && name ? name : "");
  dnnl_primitive_desc_destroy(pd);
  if (!strstr(d->impl, "amx")) d->kp = d->kind[FIRST].k = g->K; /* odd K matters to AMX only */
  if (strstr(d->impl, "amx") && d->kp > SLICE) {
    if (d->kp % SLICE <= 16) d->kp = (d->kp + 31) / 32 * 32; /* AMX takes no K <= 16 */
    d->nslices = (d->kp + SLICE - 1) / SLICE;
    d->kind[FIRST].k = d->kind[MIDDLE].k = SLICE;
    d->kind[LAST].k = d->kp - (d->nslices - 1) * SLICE;
  }
  return TPMM_SUCCESS;
}

/* B per slice: views of x2 (brgemm copies blocks on the fly, ~15 % slower
 * than packed, same bits) or reordered once into the layout oneDNN prefers at
 * the hinted M. Copied first if strided; if only K's zero rows are missing,
 * just the last slice, from row t0. */
static tpmm_status_t prepare_b(tpi_gemm_t *g, dn_t *d, const tpi_mat_t *b) {
  const int dense = b->cs == 1 && b->rs == g->N, copy = !dense || d->kp != g->K;
  const int64_t t0 = dense ? (d->nslices - 1) * SLICE : 0;
  d->b = calloc((size_t)d->nslices, sizeof *d->b);
  if (!d->b || (copy && !(d->bcopy = calloc((size_t)((d->kp - t0) * g->N + 1), d->es))))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for x2");
  if (copy) tpi_copy_dense(d->bcopy, b->data + (size_t)(t0 * b->rs) * d->es, g->K - t0, g->N, b->rs, b->cs, d->es);
  const int64_t m = g->m_hint < PIN_M ? PIN_M : g->m_hint;
  for (int k = 0; k < KINDS; k++) {
    dnnl_dims_t bdims = {d->kind[k].k, g->N};
    dnnl_primitive_desc_t pd;
    if (!used(d, k)) continue;
    DN(dnnl_memory_desc_init_by_tag(&d->kind[k].b_md, 2, bdims, d->ddt, g->pack ? dnnl_format_tag_any : dnnl_ab),
       "weights md");
    if (!g->pack) continue;
    DN(make_pd(g, d, m, k, d->kind[k].k, NULL, &pd), "matmul primitive_desc_create");
    d->kind[k].b_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
  }
  for (int64_t s = 0; s < d->nslices; s++) {
    const kind_t *kd = &d->kind[kind_of(d, s)];
    char *at = copy && s * SLICE >= t0 ? (char *)d->bcopy + (size_t)((s * SLICE - t0) * g->N) * d->es
                                       : b->data + (size_t)(s * SLICE * g->N) * d->es;
    DN(dnnl_memory_create(&d->b[s], &kd->b_md, engine, g->pack ? DNNL_MEMORY_ALLOCATE : at), "weights memory");
    if (g->pack) TPI_CHECK(reorder(d, kd->k, g->N, at, d->b[s]));
  }
  if (g->pack) free(d->bcopy), d->bcopy = NULL;
  return TPMM_SUCCESS;
}

static tpmm_status_t dn_prepare(tpi_gemm_t *g, const tpi_mat_t *b) {
  pthread_once(&engine_once, engine_init);
  DN(engine_status, "engine_create");
  dn_t *d = calloc(1, sizeof *d);
  if (!d) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory");
  g->impl = d;
  d->ddt = g->cdt == TPMM_BFLOAT16 ? dnnl_bf16 : dnnl_f32;
  d->es = d->ddt == dnnl_bf16 ? 2 : 4;
  d->kp = d->ddt == dnnl_bf16 ? g->K + g->K % 2 : g->K;
  DN(dnnl_stream_create(&d->stream, engine, dnnl_stream_default_flags), "stream_create");
  DN(md2(&d->bias_md, 1, g->N, dnnl_f32, g->N, 1), "bias md");
  if (g->bias32) DN(dnnl_memory_create(&d->bias, &d->bias_md, engine, g->bias32), "bias memory");
  TPI_CHECK(plan_calls(g, d));
  return prepare_b(g, d, b);
}

static void slot_clear(slot_t *s) {
  for (int k = 0; k < KINDS; k++)
    if (s->prim[k]) dnnl_primitive_destroy(s->prim[k]), dnnl_memory_destroy(s->a[k]), dnnl_memory_destroy(s->c[k]);
  memset(s, 0, sizeof *s);
}

/* The calls' primitives for `rows` rows with the pinned kernel;
 * dnnl_unimplemented if oneDNN does not offer it there. */
static dnnl_status_t make_slot(tpi_gemm_t *g, dn_t *d, slot_t *v, int64_t rows, int64_t lda, const char *impl) {
  dnnl_status_t s = dnnl_success;
  for (int k = 0; k < KINDS && s == dnnl_success; k++) {
    dnnl_primitive_desc_t pd;
    if (!used(d, k)) continue;
    s = make_pd(g, d, rows, k, lda ? lda : d->kind[k].k, impl, &pd);
    if (s != dnnl_success) break;
    s = dnnl_primitive_create(&v->prim[k], pd);
    if (s == dnnl_success)
      s = dnnl_memory_create(&v->a[k], dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), engine,
                             DNNL_MEMORY_NONE);
    if (s == dnnl_success)
      s = dnnl_memory_create(&v->c[k], dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), engine,
                             DNNL_MEMORY_NONE);
    dnnl_primitive_desc_destroy(pd);
  }
  if (s != dnnl_success) slot_clear(v);
  v->rows = rows;
  return s;
}

/* The cached primitives for M rows (LRU) with the pinned kernel: at M rows, or
 * at the first larger count past the small-shapes that has it; else oneDNN's. */
static tpmm_status_t get_slot(tpi_gemm_t *g, dn_t *d, int64_t M, int64_t lda, slot_t **out) {
  slot_t *v = &d->slots[0];
  for (int i = 0; i < CACHE_SLOTS; i++) {
    slot_t *s = &d->slots[i];
    if (s->prim[FIRST] && s->M == M && s->lda == lda) {
      s->used = ++d->clock;
      *out = s;
      return TPMM_SUCCESS;
    }
    if (s->used < v->used) v = s;
  }
  slot_clear(v);
  const int64_t cand[] = {M, M + 1, 256 / (g->N > 0 ? g->N : 1) + 1, 33, PIN_M};
  dnnl_status_t s = dnnl_unimplemented;
  for (size_t i = 0; i < sizeof cand / sizeof *cand && s == dnnl_unimplemented; i++)
    if (cand[i] >= M && (i == 0 || cand[i] <= PANEL)) s = make_slot(g, d, v, cand[i], i == 0 ? lda : 0, d->impl);
  if (s == dnnl_unimplemented) s = make_slot(g, d, v, M, lda, NULL);
  if (s != dnnl_success) return dn_fail(s, "matmul primitive_create");
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
  dnnl_status_t st = dnnl_primitive_execute(v->prim[k], d->stream, g->bias32 && d->nslices == 1 ? 4 : 3, args);
  if (st == dnnl_success) st = dnnl_stream_wait(d->stream);
  omp_set_num_threads(prev);
  return st == dnnl_success ? TPMM_SUCCESS : dn_fail(st, "matmul execute");
}

/* The calls on M rows (M <= PANEL unless A and C are used in place). Panel
 * rows past M keep what they had: a row of C depends on its row of A alone. */
static tpmm_status_t run_rows(tpi_gemm_t *g, dn_t *d, int64_t M, const char *A, int64_t lda, char *C, int64_t ldc) {
  int copy_a = d->nslices > 1 || d->kp != g->K || lda != g->K;
  slot_t *v = NULL;
  TPI_CHECK(get_slot(g, d, M, copy_a ? 0 : lda, &v));
  copy_a |= v->rows > M;
  const int copy_c = d->nslices > 1 || ldc != g->N || v->rows > M;
  const size_t es = d->es, cs = d->nslices > 1 ? 4 : es, n = (size_t)g->N;
  if (copy_a && !d->apanel && !(d->apanel = calloc(PANEL * (size_t)d->kind[FIRST].k, es)))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for an A panel");
  if (copy_c && !d->cpanel && !(d->cpanel = malloc(PANEL * (n > 0 ? n : 1) * cs)))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for a C panel");
  for (int64_t s = 0; s < d->nslices; s++) {
    const int k = kind_of(d, s);
    const int64_t kk = d->kind[k].k, k0 = s * SLICE, w = g->K - k0 < kk ? g->K - k0 : kk; /* zeros past K */
    for (int64_t i = 0; copy_a && i < M; i++) {
      char *row = d->apanel + (size_t)(i * kk) * es;
      memcpy(row, A + (size_t)(i * lda + k0) * es, (size_t)w * es);
      memset(row + (size_t)w * es, 0, (size_t)(kk - w) * es);
    }
    TPI_CHECK(execute(g, d, v, k, copy_a ? d->apanel : A, d->b[s], copy_c ? d->cpanel : C));
  }
  for (int64_t i = 0; copy_c && i < M; i++) {
    uint16_t *out = (uint16_t *)(C + (size_t)(i * ldc) * es);
    const float *acc = (const float *)d->cpanel + (size_t)i * n; /* sliced: fp32 sums, then bias, rounding */
    if (d->nslices == 1) memcpy(out, d->cpanel + (size_t)i * n * es, n * es);
    for (size_t j = 0; d->nslices > 1 && j < n; j++)
      out[j] = tpi_f32_to_bf16(g->bias32 ? acc[j] + g->bias32[j] : acc[j]);
  }
  return TPMM_SUCCESS;
}

static tpmm_status_t dn_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc) {
  dn_t *d = g->impl;
  const int in_place = d->nslices == 1 && d->kp == g->K && lda == g->K && ldc == g->N;
  const int64_t step = in_place ? M : PANEL;
  for (int64_t r0 = 0; r0 < M; r0 += step) {
    const int64_t rows = M - r0 < step ? M - r0 : step;
    TPI_CHECK(run_rows(g, d, rows, (const char *)A + (size_t)(r0 * lda) * d->es, lda,
                       (char *)C + (size_t)(r0 * ldc) * d->es, ldc));
  }
  return TPMM_SUCCESS;
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

const tpi_gemm_backend_t tpi_gemm_dnnl = {"dnnl", dn_supports, dn_prepare, dn_run, dn_release};
