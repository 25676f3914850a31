/*
 * gemm_dnnl.h — what the oneDNN backend's two files share: its state per
 * prepared x2 (dn_t), the calls a run makes (kind_t), the primitives cached
 * per call shape (slot_t). gemm_dnnl_prep.c prepares x2 and pins the kernel;
 * gemm_dnnl.c runs. Private to src/gemm.
 */
#ifndef TPMM_GEMM_DNNL_H
#define TPMM_GEMM_DNNL_H

#include <oneapi/dnnl/dnnl.h>

#include "gemm.h"

#define CACHE_SLOTS 16
#define PANEL 256      /* rows per call through the scratch panels */
#define PIN_M 64       /* rows at which the kernel is chosen: not a small shape */
#define SPLIT_ROWS 512 /* rows a thread's in-place call takes at most where K is a large power of two */
#define SLICE 512      /* K per call with AMX */

/* The calls of one run: the whole K, or the first, middle and last slice
 * (the later ones add to C): k columns of A, B in b_md (k x N). */
enum { FIRST, MIDDLE, LAST, KINDS };
typedef struct {
  int64_t k;
  dnnl_memory_desc_t b_md;
} kind_t;

typedef struct {
  int64_t M, lda; /* the key; lda 0: A through the panel */
  int f32;        /* the key: fp32 C without bias (tpi_gemm_run_f32) */
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
  char impl[128];     /* the pinned kernel: oneDNN's implementation name */
  int amx;            /* ... an AMX one */
  int64_t split_rows; /* bf16 in-place calls past this many rows are cut into calls of it; 0: never */
  dnnl_memory_t *b;   /* per slice: packed (owned) or a view of plain B */
  void *bcopy;        /* dense kp-row copy of x2 when it cannot be used in place */
  int64_t copy_t0;    /* plain B: first row of x2 in bcopy, -1: no copy */
  dnnl_memory_desc_t bias_md;
  dnnl_memory_t bias; /* unsliced only; sliced runs add bias32 themselves */
  slot_t slots[CACHE_SLOTS];
  uint64_t clock;
  char *apanel, *cpanel; /* PANEL rows of A (one call's k) and of C (fp32 when sliced) */
} dn_t;

extern dnnl_engine_t tpi_dn_engine;

tpmm_status_t tpi_dn_fail(dnnl_status_t s, const char *what);
/* Whether oneDNN has a bf16 matmul for this CPU (probed once). */
int tpi_dn_has_bf16(void);
#define DN(call, what)                                          \
  do {                                                          \
    dnnl_status_t dn_s_ = (call);                               \
    if (dn_s_ != dnnl_success) return tpi_dn_fail(dn_s_, what); \
  } while (0)

dnnl_status_t tpi_dn_md2(dnnl_memory_desc_t *md, int64_t r, int64_t c, dnnl_data_type_t dt, int64_t rs, int64_t cs);
static inline int tpi_dn_kind_of(const dn_t *d, int64_t s) {
  return s == 0 ? FIRST : s == d->nslices - 1 ? LAST : MIDDLE;
}
static inline int tpi_dn_used(const dn_t *d, int k) {
  return k == FIRST || (k == LAST && d->nslices > 1) || d->nslices > 2;
}
/* The first implementation of call kind k on M rows (A stride lda) named
 * impl, or oneDNN's first choice (impl NULL); f32: C in fp32 without bias;
 * dnnl_unimplemented if none. */
dnnl_status_t tpi_dn_make_pd(tpi_gemm_t *g, dn_t *d, int64_t M, int k, int64_t lda, const char *impl, int f32,
                             dnnl_primitive_desc_t *pd);
/* Whether md (a bf16 B) is the brgemm layout gemm_dnnl_pack.c writes. */
int tpi_dn_pack_knows(const dnnl_memory_desc_t *md);
/* Pack the k x n bf16 B of md into dst, B[r][c] at src[r * rs + c * cs]
 * (elements) for r < kvalid and zero below: 1 if tpi_dn_pack_knows(md) and
 * kvalid <= its rows (then byte for byte oneDNN's reorder of the same rows),
 * 0 (nothing written) else. */
int tpi_dn_pack(const dnnl_memory_desc_t *md, const void *src, int64_t rs, int64_t cs, int64_t kvalid, void *dst);
/* The backend's prepare: the engine, the pinned kernel, x2 (packed or plain). */
tpmm_status_t tpi_dn_prepare(tpi_gemm_t *g, const tpi_mat_t *b);
/* The backend's rebind: plain B's views moved to b, its copy (strided x2, odd
 * K) redone; packed B packed again from b. */
tpmm_status_t tpi_dn_rebind(tpi_gemm_t *g, const tpi_mat_t *b);

#endif
