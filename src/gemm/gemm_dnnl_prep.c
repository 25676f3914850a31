/*
 * gemm_dnnl_prep.c — the oneDNN backend's preparation of x2: the engine, the
 * kernel pinned per x2, K cut into slices with AMX, and B reordered once
 * into the packed layout or used in place (gemm_dnnl.c says why).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_dnnl.h"

dnnl_engine_t tpi_dn_engine;
static dnnl_status_t engine_status = dnnl_runtime_error;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static void engine_init(void) { engine_status = dnnl_engine_create(&tpi_dn_engine, dnnl_cpu, 0); }

/* Whether oneDNN multiplies bf16 on this CPU: a 64-cube bf16 matmul has an
 * implementation (oneDNN 2.6 has none before avx512_core). */
static int bf16_ok;
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;
static void bf16_probe(void) {
  dnnl_memory_desc_t md;
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  pthread_once(&engine_once, engine_init);
  if (engine_status != dnnl_success || tpi_dn_md2(&md, 64, 64, dnnl_bf16, 64, 1) != dnnl_success ||
      dnnl_matmul_desc_init(&desc, &md, &md, NULL, &md) != dnnl_success)
    return;
  bf16_ok = dnnl_primitive_desc_create(&pd, &desc, NULL, tpi_dn_engine, NULL) == dnnl_success;
  if (pd) dnnl_primitive_desc_destroy(pd);
}
int tpi_dn_has_bf16(void) {
  pthread_once(&bf16_once, bf16_probe);
  return bf16_ok;
}

tpmm_status_t tpi_dn_fail(dnnl_status_t s, const char *what) {
  if (s == dnnl_out_of_memory) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): %s: out of memory", what);
  return tpi_fail(TPMM_ERR_INTERNAL, "gemm(dnnl): %s failed (dnnl status %d)", what, (int)s);
}

dnnl_status_t tpi_dn_md2(dnnl_memory_desc_t *md, int64_t r, int64_t c, dnnl_data_type_t dt, int64_t rs, int64_t cs) {
  dnnl_dims_t dims = {r, c}, strides = {rs, cs};
  return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

/* The first implementation of call kind k on M rows (A stride lda) named
 * impl, or oneDNN's first choice (impl NULL); dnnl_unimplemented if none. */
dnnl_status_t tpi_dn_make_pd(tpi_gemm_t *g, dn_t *d, int64_t M, int k, int64_t lda, const char *impl, int f32,
                             dnnl_primitive_desc_t *pd) {
  dnnl_matmul_desc_t desc;
  dnnl_memory_desc_t a_md, c_md;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  dnnl_primitive_desc_iterator_t it = NULL;
  const int bias = g->bias32 && d->nslices == 1 && !f32;
  dnnl_status_t s = tpi_dn_md2(&a_md, M, d->kind[k].k, d->ddt, lda, 1);
  if (s == dnnl_success) s = tpi_dn_md2(&c_md, M, g->N, d->nslices > 1 || f32 ? dnnl_f32 : d->ddt, g->N, 1);
  if (s == dnnl_success) s = dnnl_matmul_desc_init(&desc, &a_md, &d->kind[k].b_md, bias ? &d->bias_md : NULL, &c_md);
  if (s == dnnl_success && k != FIRST) s = dnnl_primitive_attr_create(&attr);
  if (s == dnnl_success && attr) s = dnnl_post_ops_create(&po);
  if (s == dnnl_success && po) s = dnnl_post_ops_append_sum(po, 1.0f);
  if (s == dnnl_success && po) s = dnnl_primitive_attr_set_post_ops(attr, po);
  if (s == dnnl_success) s = dnnl_primitive_desc_iterator_create(&it, &desc, attr, tpi_dn_engine, NULL);
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

/* Reorder the k x n B at src (B[r][c] at src[r * rs + c * cs], rows from
 * kvalid on zero) into the packed memory `to`: by gemm_dnnl_pack.c where it
 * knows the layout, else by oneDNN, which takes dense rows only (the copy). */
static tpmm_status_t reorder(dn_t *d, int64_t k, int64_t n, int64_t kvalid, const char *src, int64_t rs, int64_t cs,
                             dnnl_memory_t to) {
  dnnl_memory_desc_t fmd;
  const dnnl_memory_desc_t *tmd;
  dnnl_primitive_desc_t rpd;
  dnnl_primitive_t r = NULL;
  dnnl_memory_t from = NULL;
  void *handle = NULL;
  DN(dnnl_memory_get_memory_desc(to, &tmd), "memory_get_memory_desc");
  DN(dnnl_memory_get_data_handle(to, &handle), "memory_get_data_handle");
  if (tpi_dn_pack(tmd, src, rs, cs, kvalid, handle)) return TPMM_SUCCESS;
  if (rs != n || cs != 1 || kvalid != k)
    return tpi_fail(TPMM_ERR_INTERNAL, "gemm(dnnl): x2 neither packed here nor dense for oneDNN's reorder");
  DN(tpi_dn_md2(&fmd, k, n, d->ddt, n, 1), "x2 md");
  DN(dnnl_reorder_primitive_desc_create(&rpd, &fmd, tpi_dn_engine, tmd, tpi_dn_engine, NULL),
     "reorder_primitive_desc_create");
  dnnl_status_t s = dnnl_primitive_create(&r, rpd);
  dnnl_primitive_desc_destroy(rpd);
  if (s == dnnl_success) s = dnnl_memory_create(&from, &fmd, tpi_dn_engine, (void *)src);
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  if (s == dnnl_success) s = dnnl_primitive_execute(r, d->stream, 2, args);
  if (s == dnnl_success) s = dnnl_stream_wait(d->stream);
  if (r) dnnl_primitive_destroy(r);
  if (from) dnnl_memory_destroy(from);
  return s == dnnl_success ? TPMM_SUCCESS : tpi_dn_fail(s, "reorder of x2");
}

/* Kernel and calls: pin oneDNN's choice at PIN_M rows; slice K for AMX. */
static tpmm_status_t plan_calls(tpi_gemm_t *g, dn_t *d) {
  dnnl_dims_t bdims = {d->kp, g->N};
  d->nslices = 1;
  d->kind[FIRST].k = d->kp;
  DN(dnnl_memory_desc_init_by_tag(&d->kind[FIRST].b_md, 2, bdims, d->ddt, dnnl_ab), "weights md");
  dnnl_primitive_desc_t pd;
  const char *name = "";
  DN(tpi_dn_make_pd(g, d, PIN_M, FIRST, d->kp, NULL, 0, &pd), "matmul primitive_desc_create");
  dnnl_status_t s = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
  snprintf(d->impl, sizeof d->impl, "%s", s == dnnl_success && name ? name : "");
  dnnl_primitive_desc_destroy(pd);
  d->amx = strstr(d->impl, "amx") != NULL;
  if (!d->amx) d->kp = d->kind[FIRST].k = g->K; /* odd K matters to AMX only */
  if (d->amx && d->kp > SLICE) {
    if (d->kp % SLICE <= 16) d->kp = (d->kp + 31) / 32 * 32; /* AMX takes no K <= 16 */
    d->nslices = (d->kp + SLICE - 1) / SLICE;
    d->kind[FIRST].k = d->kind[MIDDLE].k = SLICE;
    d->kind[LAST].k = d->kp - (d->nslices - 1) * SLICE;
  }
  return TPMM_SUCCESS;
}

/* Whether plain B needs a copy: all of x2 when strided; when only K's zero
 * rows are missing, just the last slice, from row *t0. */
static int b_copy(const tpi_gemm_t *g, const dn_t *d, const tpi_mat_t *b, int64_t *t0) {
  const int dense = b->cs == 1 && b->rs == g->N;
  *t0 = dense ? (d->nslices - 1) * SLICE : 0;
  return !dense || d->kp != g->K;
}

/* Slice s of plain B: in the copy (from row t0 on), else in x2. */
static char *slice_at(const tpi_gemm_t *g, const dn_t *d, const tpi_mat_t *b, int copy, int64_t t0, int64_t s) {
  return copy && s * SLICE >= t0 ? (char *)d->bcopy + (size_t)((s * SLICE - t0) * g->N) * d->es
                                 : b->data + (size_t)(s * SLICE * g->N) * d->es;
}

/* The rows of x2 that b_copy says need copying, into the copy (made on first
 * use: packing frees it). */
static tpmm_status_t load_copy(const tpi_gemm_t *g, dn_t *d, const tpi_mat_t *b, int64_t t0) {
  if (!d->bcopy && !(d->bcopy = calloc((size_t)((d->kp - t0) * g->N + 1), d->es)))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for x2");
  tpi_copy_dense(d->bcopy, b->data + (size_t)(t0 * b->rs) * d->es, g->K - t0, g->N, b->rs, b->cs, d->es);
  return TPMM_SUCCESS;
}

/* Whether every slice's layout is one gemm_dnnl_pack.c writes: then x2 is
 * packed straight from its own strides (transposed, odd K) with no copy. */
static int packs_direct(const dn_t *d) {
  for (int k = 0; k < KINDS; k++)
    if (tpi_dn_used(d, k) && !tpi_dn_pack_knows(&d->kind[k].b_md)) return 0;
  return 1;
}

/* Every slice of B packed into its memory: straight from x2 with its own
 * strides (packs_direct), else from the dense copy or x2. */
static tpmm_status_t pack_slices(const tpi_gemm_t *g, dn_t *d, const tpi_mat_t *b, int copy, int64_t t0) {
  const int direct = packs_direct(d);
  if (copy && !direct) TPI_CHECK(load_copy(g, d, b, t0));
  for (int64_t s = 0; s < d->nslices; s++) {
    const int64_t k = d->kind[tpi_dn_kind_of(d, s)].k, left = g->K - s * SLICE;
    if (direct)
      TPI_CHECK(reorder(d, k, g->N, left < k ? left : k, b->data + (size_t)(s * SLICE * b->rs) * d->es, b->rs, b->cs,
                        d->b[s]));
    else
      TPI_CHECK(reorder(d, k, g->N, k, slice_at(g, d, b, copy, t0, s), g->N, 1, d->b[s]));
  }
  return TPMM_SUCCESS;
}

/* B's descriptor per call kind: plain rows, or the packed layout oneDNN
 * prefers at the hinted M. */
static tpmm_status_t weights_mds(tpi_gemm_t *g, dn_t *d) {
  const int64_t m = g->m_hint < PIN_M ? PIN_M : g->m_hint;
  for (int k = 0; k < KINDS; k++) {
    dnnl_dims_t bdims = {d->kind[k].k, g->N};
    dnnl_primitive_desc_t pd;
    if (!tpi_dn_used(d, k)) continue;
    DN(dnnl_memory_desc_init_by_tag(&d->kind[k].b_md, 2, bdims, d->ddt, g->pack ? dnnl_format_tag_any : dnnl_ab),
       "weights md");
    if (!g->pack) continue;
    DN(tpi_dn_make_pd(g, d, m, k, d->kind[k].k, NULL, 0, &pd), "matmul primitive_desc_create");
    d->kind[k].b_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
  }
  return TPMM_SUCCESS;
}

/* B per slice: views of x2 (brgemm copies blocks on the fly, ~15 % slower
 * than packed, same bits) or reordered once into the layout oneDNN prefers at
 * the hinted M. Plain B is copied first if strided or K is padded (b_copy):
 * oneDNN 2.6's brgemm reads a transposed B in place only when dense, and K's
 * slices of one never are, so trans_x2 is copied or packed. */
static tpmm_status_t prepare_b(tpi_gemm_t *g, dn_t *d, const tpi_mat_t *b) {
  int64_t t0;
  const int copy = b_copy(g, d, b, &t0);
  d->copy_t0 = copy ? t0 : -1;
  if (!(d->b = calloc((size_t)d->nslices, sizeof *d->b)))
    return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory for x2");
  TPI_CHECK(weights_mds(g, d));
  if (g->pack == TPI_PACK_IF_DIRECT) { /* settled here: packed only if straight from x2 */
    g->pack = packs_direct(d);
    if (!g->pack) TPI_CHECK(weights_mds(g, d));
  }
  if (copy && !g->pack) TPI_CHECK(load_copy(g, d, b, t0));
  for (int64_t s = 0; s < d->nslices; s++)
    DN(dnnl_memory_create(&d->b[s], &d->kind[tpi_dn_kind_of(d, s)].b_md, tpi_dn_engine,
                          g->pack ? DNNL_MEMORY_ALLOCATE : slice_at(g, d, b, copy, t0, s)),
       "weights memory");
  if (!g->pack) return TPMM_SUCCESS;
  TPI_CHECK(pack_slices(g, d, b, copy, t0));
  free(d->bcopy), d->bcopy = NULL;
  return TPMM_SUCCESS;
}

/* The slices' memories keep their descriptors and primitives take B per
 * execute. Plain B: only the handles move, and the copy is redone. Packed
 * B: the copy (made again on first use: packing freed it) and the packing
 * are redone into the same memories. */
tpmm_status_t tpi_dn_rebind(tpi_gemm_t *g, const tpi_mat_t *b) {
  dn_t *d = g->impl;
  int64_t t0;
  const int copy = b_copy(g, d, b, &t0);
  if (copy ? (!d->bcopy && !g->pack) || t0 != d->copy_t0 : d->copy_t0 >= 0)
    return tpi_fail(TPMM_ERR_INTERNAL, "gemm(dnnl): rebind to an x2 of another layout");
  if (g->pack) return pack_slices(g, d, b, copy, t0);
  if (copy) TPI_CHECK(load_copy(g, d, b, t0));
  for (int64_t s = 0; s < d->nslices; s++)
    DN(dnnl_memory_set_data_handle(d->b[s], slice_at(g, d, b, copy, t0, s)), "memory_set_data_handle of x2");
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_dn_prepare(tpi_gemm_t *g, const tpi_mat_t *b) {
  pthread_once(&engine_once, engine_init);
  DN(engine_status, "engine_create");
  dn_t *d = calloc(1, sizeof *d);
  if (!d) return tpi_fail(TPMM_ERR_NO_MEMORY, "gemm(dnnl): out of memory");
  g->impl = d;
  d->ddt = g->cdt == TPMM_BFLOAT16 ? dnnl_bf16 : dnnl_f32;
  d->es = d->ddt == dnnl_bf16 ? 2 : 4;
  d->kp = d->ddt == dnnl_bf16 ? g->K + g->K % 2 : g->K;
  DN(dnnl_stream_create(&d->stream, tpi_dn_engine, dnnl_stream_default_flags), "stream_create");
  DN(tpi_dn_md2(&d->bias_md, 1, g->N, dnnl_f32, g->N, 1), "bias md");
  if (g->bias32) DN(dnnl_memory_create(&d->bias, &d->bias_md, tpi_dn_engine, g->bias32), "bias memory");
  TPI_CHECK(plan_calls(g, d));
  TPI_CHECK(prepare_b(g, d, b));
  /* With x2 packed, avx512_core_bf16's brgemm ran bf16 calls of 512 rows 4-7 % faster than one call of
   * 1024-4096 where K is 4096, 8192 or 16384 (a power of two: A's rows 8 KiB apart and more), no faster at
   * other K or in fp32 (bench/RESULTS.md §36.1); a row's bits do not depend on M. Only there: a plain x2
   * is copied into the kernel's layout on every call. Per thread, so that many threads still share rows
   * (one thread measured). */
  const int64_t K = g->K;
  if (d->es == 2 && g->pack == 1 && strstr(d->impl, "avx512_core_bf16") && K >= 4096 && (K & (K - 1)) == 0)
    d->split_rows = SPLIT_ROWS * (g->nthreads > 1 ? g->nthreads : 1);
  return TPMM_SUCCESS;
}
