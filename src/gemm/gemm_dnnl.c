/*
 * gemm_dnnl.c — the oneDNN matmul backend (bf16 and fp32).
 *
 * B is reordered once into the layout oneDNN's matmul prefers (its packed
 * "weights" format); every later run at any M reuses that packed copy.
 * Primitives are cached per (M, lda) in a small LRU, so a pipeline that runs
 * the same chunk shapes again and again creates each primitive once.
 *
 * Bit-reproducibility: oneDNN 2.6 uses its brgemm kernels only when C is
 * dense (ldc == N); with a strided C it falls back to gemm:jit, whose
 * summation order depends on M. So C is always dense here: a strided output
 * is computed into a dense scratch panel (at most PANEL rows) and copied.
 * With brgemm a row of C has the same bits whatever M is, which is what lets
 * the fused schedules match the unfused one bit for bit (tests check it).
 *
 * Threads: oneDNN here runs on OpenMP; each run sets the calling thread's
 * OpenMP thread count to g->nthreads (TPMM_NUM_THREADS, default 1) and
 * restores it, so ranks sharing a machine do not oversubscribe its cores.
 */
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

#define CACHE_SLOTS 16

#define PANEL 256

/* bf16 with an fp32 destination: oneDNN 2.6's brgemm picks its K blocking
 * from M, so a row's fp32 bits depend on M (measured: most M differ from
 * M=512 at k=1536, n=1024). Every such call multiplies exactly F32_ROWS rows
 * (a short tail padded with zero rows), so the bits of a row depend only on
 * the row. 64: as fast as whole-M calls within noise (16 and 32 re-stream x2
 * too often). */
#define F32_ROWS 64
/* ... and with a plain (unpacked) x2, which brgemm repacks on every call:
 * 256 rows per call (gather_index 1's panels: 64 made a panel's GEMM ~1.5x
 * slower than one call on all rows, 256 as fast within noise at m = 512,
 * k = 512, n = 1024). Bits still depend only on the row. */
#define F32_ROWS_PLAIN 256

typedef struct {
  int64_t M, lda;
  int f32; /* fp32 output without bias (tpi_gemm_run_f32) */
  dnnl_primitive_t prim;
  dnnl_memory_t a, c;
  uint64_t used;
} slot_t;

typedef struct {
  dnnl_stream_t stream;
  dnnl_data_type_t ddt;
  dnnl_memory_desc_t b_md; /* packed layout */
  dnnl_memory_t b;         /* packed B (owned) or plain B (borrowed or bcopy) */
  void *bcopy;             /* dense copy of a strided/transposed x2 when not packing */
  dnnl_memory_desc_t bias_md;
  dnnl_memory_t bias;
  slot_t slots[CACHE_SLOTS];
  uint64_t clock;
  char *panel; /* dense C scratch for strided outputs */
  char *f32_a; /* bf16 fp32-output tails: F32_ROWS(_PLAIN) rows of A (stride f32_lda), then of C */
  int64_t f32_lda;
  dnnl_memory_t b_src;        /* tpi_gemm_set_b on a packed B: the new plain rows */
  dnnl_primitive_t b_reorder; /* ... and their reorder into the packed layout */
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

/* Matrix descriptor with explicit strides. */
static dnnl_status_t md2(dnnl_memory_desc_t *md, int64_t r, int64_t c, dnnl_data_type_t dt, int64_t rs, int64_t cs) {
  dnnl_dims_t dims = {r, c}, strides = {rs, cs};
  return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

/* Primitive descriptor for C(M) = A(M) B (+ bias) with B in b_md; f32: C in
 * fp32 and no bias. */
static dnnl_status_t make_pd(tpi_gemm_t *g, dn_t *d, int64_t M, int64_t lda, const dnnl_memory_desc_t *b_md, int f32,
                             dnnl_primitive_desc_t *pd, dnnl_memory_desc_t *a_md, dnnl_memory_desc_t *c_md) {
  dnnl_matmul_desc_t desc;
  dnnl_status_t s = md2(a_md, M, g->K, d->ddt, lda, 1);
  if (s == dnnl_success) s = md2(c_md, M, g->N, f32 ? dnnl_f32 : d->ddt, g->N, 1);
  if (s == dnnl_success) s = dnnl_matmul_desc_init(&desc, a_md, b_md, g->bias32 && !f32 ? &d->bias_md : NULL, c_md);
  if (s == dnnl_success) s = dnnl_primitive_desc_create(pd, &desc, NULL, engine, NULL);
  return s;
}

static tpmm_status_t reorder(dnnl_memory_t from, dnnl_memory_t to, dnnl_stream_t stream) {
  const dnnl_memory_desc_t *fmd, *tmd;
  DN(dnnl_memory_get_memory_desc(from, &fmd), "memory_get_memory_desc");
  DN(dnnl_memory_get_memory_desc(to, &tmd), "memory_get_memory_desc");
  dnnl_primitive_desc_t rpd;
  DN(dnnl_reorder_primitive_desc_create(&rpd, fmd, engine, tmd, engine, NULL), "reorder_primitive_desc_create");
  dnnl_primitive_t r;
  dnnl_status_t s = dnnl_primitive_create(&r, rpd);
  dnnl_primitive_desc_destroy(rpd);
  if (s != dnnl_success) return dn_fail(s, "reorder primitive_create");
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  s = dnnl_primitive_execute(r, stream, 2, args);
  if (s == dnnl_success) s = dnnl_stream_wait(stream);
  dnnl_primitive_destroy(r);
  return s == dnnl_success ? TPMM_SUCCESS : dn_fail(s, "reorder of x2");
}

static tpmm_status_t dn_prepare(tpi_gemm_t *g, const tpi_mat_t *b) {
  pthread_once(&engine_once, engine_init);
  DN(engine_status, "engine_create");
  dn_t *d = calloc(1, sizeof *d);
  if (!d) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory");
  g->impl = d;
  d->ddt = g->cdt == TPMM_BFLOAT16 ? dnnl_bf16 : dnnl_f32;
  DN(dnnl_stream_create(&d->stream, engine, dnnl_stream_default_flags), "stream_create");
  if (g->bias32) {
    dnnl_dims_t bd = {1, g->N};
    DN(dnnl_memory_desc_init_by_tag(&d->bias_md, 2, bd, dnnl_f32, dnnl_ab), "bias md");
    DN(dnnl_memory_create(&d->bias, &d->bias_md, engine, g->bias32), "bias memory");
  }
  dnnl_memory_desc_t a_md, c_md, src_md;
  dnnl_dims_t bdims = {g->K, g->N};
  if (!g->pack) {
    /* Plain row-major B, used in place when it already is; brgemm copies its
     * blocks on the fly (same bits as packed, ~15 % slower, no reorder). */
    const size_t es = d->ddt == dnnl_bf16 ? 2 : 4;
    const char *src = b->data;
    if (!(b->cs == 1 && b->rs == g->N)) {
      d->bcopy = malloc((size_t)(g->K * g->N + 1) * es);
      if (!d->bcopy) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for x2");
      tpi_copy_dense(d->bcopy, src, g->K, g->N, b->rs, b->cs, es);
      src = d->bcopy;
    }
    DN(dnnl_memory_desc_init_by_tag(&d->b_md, 2, bdims, d->ddt, dnnl_ab), "weights md");
    DN(dnnl_memory_create(&d->b, &d->b_md, engine, (void *)src), "weights memory");
    return TPMM_SUCCESS;
  }
  /* Ask oneDNN for its preferred B layout at the hinted M, reorder once. */
  dnnl_memory_desc_t any_md;
  DN(dnnl_memory_desc_init_by_tag(&any_md, 2, bdims, d->ddt, dnnl_format_tag_any), "weights md");
  dnnl_primitive_desc_t pd;
  DN(make_pd(g, d, g->m_hint, g->K, &any_md, 0, &pd, &a_md, &c_md), "matmul primitive_desc_create");
  d->b_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  dnnl_primitive_desc_destroy(pd);
  DN(dnnl_memory_create(&d->b, &d->b_md, engine, DNNL_MEMORY_ALLOCATE), "packed weights memory");
  DN(md2(&src_md, g->K, g->N, d->ddt, b->rs, b->cs), "x2 md");
  dnnl_memory_t srcm;
  DN(dnnl_memory_create(&srcm, &src_md, engine, b->data), "x2 memory");
  tpmm_status_t st = reorder(srcm, d->b, d->stream);
  dnnl_memory_destroy(srcm);
  return st;
}

static void slot_clear(slot_t *s) {
  if (s->prim) dnnl_primitive_destroy(s->prim);
  if (s->a) dnnl_memory_destroy(s->a);
  if (s->c) dnnl_memory_destroy(s->c);
  memset(s, 0, sizeof *s);
}

static tpmm_status_t get_slot(tpi_gemm_t *g, dn_t *d, int64_t M, int64_t lda, int f32, slot_t **out) {
  slot_t *victim = &d->slots[0];
  for (int i = 0; i < CACHE_SLOTS; i++) {
    slot_t *s = &d->slots[i];
    if (s->prim && s->M == M && s->lda == lda && s->f32 == f32) {
      s->used = ++d->clock;
      *out = s;
      return TPMM_SUCCESS;
    }
    if (s->used < victim->used) victim = s;
  }
  slot_clear(victim);
  dnnl_primitive_desc_t pd;
  dnnl_memory_desc_t a_md, c_md;
  dnnl_status_t s = make_pd(g, d, M, lda, &d->b_md, f32, &pd, &a_md, &c_md);
  if (s != dnnl_success) return dn_fail(s, "matmul primitive_desc_create");
  s = dnnl_primitive_create(&victim->prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (s == dnnl_success) s = dnnl_memory_create(&victim->a, &a_md, engine, DNNL_MEMORY_NONE);
  if (s == dnnl_success) s = dnnl_memory_create(&victim->c, &c_md, engine, DNNL_MEMORY_NONE);
  if (s != dnnl_success) {
    slot_clear(victim);
    return dn_fail(s, "matmul primitive_create");
  }
  victim->M = M;
  victim->lda = lda;
  victim->f32 = f32;
  victim->used = ++d->clock;
  *out = victim;
  return TPMM_SUCCESS;
}

static tpmm_status_t run_dense(tpi_gemm_t *g, dn_t *d, int64_t M, const void *A, int64_t lda, void *C, int f32) {
  slot_t *s;
  TPI_CHECK(get_slot(g, d, M, lda, f32, &s));
  DN(dnnl_memory_set_data_handle(s->a, (void *)A), "set A handle");
  DN(dnnl_memory_set_data_handle(s->c, C), "set C handle");
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, s->a}, {DNNL_ARG_WEIGHTS, d->b}, {DNNL_ARG_DST, s->c}, {DNNL_ARG_BIAS, d->bias}};
  int prev = omp_get_max_threads();
  omp_set_num_threads(g->nthreads);
  dnnl_status_t st = dnnl_primitive_execute(s->prim, d->stream, g->bias32 && !f32 ? 4 : 3, args);
  if (st == dnnl_success) st = dnnl_stream_wait(d->stream);
  omp_set_num_threads(prev);
  return st == dnnl_success ? TPMM_SUCCESS : dn_fail(st, "matmul execute");
}

static tpmm_status_t run_any(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc, int f32) {
  dn_t *d = g->impl;
  if (ldc == g->N) return run_dense(g, d, M, A, lda, C, f32);
  const size_t ea = d->ddt == dnnl_bf16 ? 2 : 4, es = f32 ? 4 : ea, rowb = (size_t)g->N * es;
  /* sized for fp32 rows, which either output fits */
  if (!d->panel && !(d->panel = malloc((size_t)g->N * 4 * PANEL)))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for a C panel");
  for (int64_t r0 = 0; r0 < M; r0 += PANEL) {
    int64_t rows = M - r0 < PANEL ? M - r0 : PANEL;
    TPI_CHECK(run_dense(g, d, rows, (const char *)A + (size_t)(r0 * lda) * ea, lda, d->panel, f32));
    for (int64_t i = 0; i < rows; i++)
      memcpy((char *)C + (size_t)((r0 + i) * ldc) * es, d->panel + rowb * (size_t)i, rowb);
  }
  return TPMM_SUCCESS;
}

static tpmm_status_t dn_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc) {
  return run_any(g, M, A, lda, C, ldc, 0);
}
static tpmm_status_t dn_run_f32(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc) {
  dn_t *d = g->impl;
  if (d->ddt != dnnl_bf16) return run_any(g, M, A, lda, C, ldc, 1);
  const int64_t R = g->pack ? F32_ROWS : F32_ROWS_PLAIN;
  const int64_t full = M / R * R, tail = M - full;
  for (int64_t r0 = 0; r0 < full; r0 += R)
    TPI_CHECK(run_any(g, R, (const uint16_t *)A + r0 * lda, lda, C + r0 * ldc, ldc, 1));
  if (tail == 0) return TPMM_SUCCESS;
  const size_t a_bytes = (size_t)(R * lda) * 2;
  if (!d->f32_a || d->f32_lda < lda) {
    free(d->f32_a);
    d->f32_lda = 0;
    if (!(d->f32_a = malloc(a_bytes + (size_t)(R * g->N) * sizeof(float))))
      return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for a row panel");
    d->f32_lda = lda;
  }
  float *c = (float *)(d->f32_a + a_bytes);
  memset(d->f32_a, 0, a_bytes);
  for (int64_t i = 0; i < tail; i++)
    memcpy(d->f32_a + (size_t)(i * lda) * 2, (const uint16_t *)A + (full + i) * lda, (size_t)g->K * 2);
  TPI_CHECK(run_any(g, R, d->f32_a, lda, c, g->N, 1));
  for (int64_t i = 0; i < tail; i++) memcpy(C + (full + i) * ldc, c + i * g->N, (size_t)g->N * sizeof(float));
  return TPMM_SUCCESS;
}

static void dn_release(tpi_gemm_t *g) {
  dn_t *d = g->impl;
  for (int i = 0; i < CACHE_SLOTS; i++) slot_clear(&d->slots[i]);
  if (d->b) dnnl_memory_destroy(d->b);
  if (d->b_src) dnnl_memory_destroy(d->b_src);
  if (d->b_reorder) dnnl_primitive_destroy(d->b_reorder);
  free(d->panel);
  free(d->f32_a);
  free(d->bcopy);
  if (d->bias) dnnl_memory_destroy(d->bias);
  if (d->stream) dnnl_stream_destroy(d->stream);
  free(d);
  g->impl = NULL;
}

/* A packed B: reorder the new plain rows into it (the reorder made once). */
static tpmm_status_t repack(tpi_gemm_t *g, dn_t *d, const void *b) {
  if (!d->b_src) {
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {g->K, g->N};
    DN(dnnl_memory_desc_init_by_tag(&md, 2, dims, d->ddt, dnnl_ab), "x2 md");
    DN(dnnl_memory_create(&d->b_src, &md, engine, (void *)b), "x2 memory");
    dnnl_primitive_desc_t rpd;
    DN(dnnl_reorder_primitive_desc_create(&rpd, &md, engine, &d->b_md, engine, NULL), "reorder_primitive_desc_create");
    dnnl_status_t s = dnnl_primitive_create(&d->b_reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    if (s != dnnl_success) return dn_fail(s, "reorder primitive_create");
  }
  DN(dnnl_memory_set_data_handle(d->b_src, (void *)b), "set x2 handle");
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, d->b_src}, {DNNL_ARG_TO, d->b}};
  DN(dnnl_primitive_execute(d->b_reorder, d->stream, 2, args), "reorder of x2");
  DN(dnnl_stream_wait(d->stream), "reorder of x2");
  return TPMM_SUCCESS;
}

static tpmm_status_t dn_set_b(tpi_gemm_t *g, const void *b) {
  dn_t *d = g->impl;
  if (g->pack) return repack(g, d, b);
  if (d->bcopy) { /* prepared from a strided x2: keep the dense copy */
    memcpy(d->bcopy, b, (size_t)(g->K * g->N) * (d->ddt == dnnl_bf16 ? 2 : 4));
    return TPMM_SUCCESS;
  }
  DN(dnnl_memory_set_data_handle(d->b, (void *)b), "set x2 handle");
  return TPMM_SUCCESS;
}

const tpi_gemm_backend_t tpi_gemm_dnnl = {"dnnl", dn_supports, dn_prepare, dn_run, dn_release, dn_run_f32, dn_set_b};
