/*
 * test_gemm.c — the GEMM layer's reproducibility contract (src/gemm/gemm.h),
 * tested below the pipeline so that a failure names the GEMM shape:
 *
 *   for one prepared x2, the bits of a row of C do not depend on how many rows
 *   are computed together (M), on where A sits (alignment, row stride), on the
 *   output stride, on whether x2 was packed, or on the call (repeats); and
 *   every row is within the dtype-derived tolerance of an fp64 reference.
 *
 * The fused schedules rely on it: they multiply chunks of arriving rows and
 * must match the unfused GEMM of all rows bit for bit.
 *
 * Inputs are built so that the output shows the accumulation's rounding: x2's
 * second half of rows repeats its first half, and every other row of A is
 * [x, -x, tiny], so its exact product is tiny and the fp32 rounding residue
 * of the sum (which depends on the order of the additions) reaches the output
 * even in bf16. The other rows are plain N(0,1). Bias, when present, is tiny.
 *
 * Table: every dtype x k (odd and even; 256 and powers of two, where oneDNN
 * changes kernels) x n (small n, where oneDNN changes kernels with M) x packed
 * or plain x bias or not, on 40 rows; then bf16 on more rows, where oneDNN
 * changes its K blocking; then bf16 at decode-sized hints, x2 either way
 * (tpmm's own kernels, gemm_amx.c and gemm_dot.c: also k = 0, GEMM threads,
 * a plan's copy rebound, and AMX's bits for one layout against the other)
 * and past them. Failures are structural, not luck: any seed shows
 * them. The seed is fixed (1) unless TPMM_TEST_SEED gives another; printed.
 * --quick leaves out n = 512 at k = 4096 and 4097 (n = 64 keeps those k):
 * half the time; on gemm_avx2.c also the threads, rebinds and fp32
 * products of all but the 60-row cases, and the 300-row cases where it
 * runs anyway.
 */
#include <math.h>
#include <oneapi/dnnl/dnnl.h> /* dnnl_version */
#include <signal.h>

#include "../src/common/debug.h"
#include "../src/common/half.h"
#include "../src/gemm/gemm.h"
#include "testutil.h"

enum { ROWS = 40 };

static const int64_t ks[] = {1, 2, 7, 16, 17, 33, 255, 256, 257, 4096, 4097};
static const int64_t ns[] = {1, 3, 17, 64, 512};
static const tpmm_dtype_t dts[] = {TPMM_BFLOAT16, TPMM_FLOAT32, TPMM_FLOAT16};
/* row counts of the chunked runs (cycled): 1 and 2 (oneDNN's small-M
 * kernels), 33 (past its small-shape limit), odd sizes */
static const int64_t chunks[] = {2, 5, 1, 33, 3, 7, 17};

static uint64_t seed;
static int quick; /* --quick */

typedef struct {
  tpmm_dtype_t dt;
  int64_t m, k, n;
  size_t es;
  char *x2, *bias, *a; /* a: m rows, stride k + 3, one element of slack in front */
  int64_t lda;
  int64_t hint; /* m_hint and call_rows of the setups */
  int trans;    /* the GEMM reads xt: x2 stored transposed (n x k) at row stride k + 3 */
  char *xt;
  char desc[96];
} case_t;

static void make_inputs(case_t *c, int with_bias, rng_t *r) {
  const int64_t h = c->k / 2;
  c->x2 = malloc((size_t)(c->k * c->n) * c->es);
  c->lda = c->k + 3;
  c->a = calloc((size_t)(c->m * c->lda + 1), c->es);
  c->bias = with_bias ? malloc((size_t)c->n * 4) : NULL;
  fill_randn(c->x2, c->dt, c->k, c->n, c->n, r);
  memcpy(c->x2 + (size_t)(h * c->n) * c->es, c->x2, (size_t)(h * c->n) * c->es);
  for (int64_t j = 0; c->bias && j < c->n; j++) ((float *)c->bias)[j] = (float)(rng_normal(r) * 0x1p-16);
  if (c->trans) {
    c->xt = malloc((size_t)(c->n * (c->k + 3)) * c->es);
    for (int64_t q = 0; q < c->k; q++)
      for (int64_t j = 0; j < c->n; j++)
        memcpy(c->xt + (size_t)(j * (c->k + 3) + q) * c->es, c->x2 + (size_t)(q * c->n + j) * c->es, c->es);
  }
  char *a = c->a + c->es; /* logical element (i, q) at a[i * lda + q] */
  fill_randn(a, c->dt, c->m, c->k, c->lda, r);
  for (int64_t i = 1; i < c->m; i += 2) {
    for (int64_t q = 0; q < h; q++) set_el(a, c->dt, i * c->lda + h + q, -get_el(a, c->dt, i * c->lda + q));
    if (c->k % 2) set_el(a, c->dt, i * c->lda + c->k - 1, 0x1p-12);
  }
}

/* The x2 the GEMM reads: row major, or the transposed copy. */
static tpi_mat_t x2_view(const case_t *c) {
  if (c->trans) return (tpi_mat_t){c->xt, c->k, c->n, 1, c->k + 3};
  return (tpi_mat_t){c->x2, c->k, c->n, c->n, 1};
}

/* The kernel of tpmm's own the case's setups must run on, by gemm.h's rule: vdpbf16ps for 1-2 rows
 * of a transposed x2, AMX for any rows of either layout, else (no AMX) vdpbf16ps for a few rows of
 * a transposed x2, or of a row-major one in a one-shot setup (gemm_bf16r.c, whose bits the packed
 * setup on oneDNN must equal); NULL: oneDNN or ref. */
static const tpi_gemm_backend_t *own_kernel(const case_t *c, int pack) {
  if (tpi_params.gemm != TPMM_GEMM_DNNL) return NULL;
  const int pre = tpi_gemm_avx2_takes();
  if (c->dt == TPMM_BFLOAT16 && !tpi_debug.pre_avx512) {
    const int dot = c->trans && c->hint <= TPI_DOT_MAX_ROWS && tpi_gemm_dot_usable();
    if (dot && c->hint <= TPI_DOT_FIRST_ROWS) return &tpi_gemm_dot;
    if (tpi_gemm_amx_usable() && !tpi_debug.no_amx) return &tpi_gemm_amx;
    if (dot) return &tpi_gemm_dot;
    if (!c->trans && !pack && tpi_gemm_bf16r_fits(c->hint, c->k) && tpi_params.num_threads <= 1 &&
        tpi_gemm_bf16r_usable())
      return &tpi_gemm_bf16r;
  }
  return pre ? &tpi_gemm_avx2 : NULL; /* ... and without AVX-512, gemm_avx2.c for every dtype */
}

/* Runs rows [0, m) with the given rows per call (0: all at once, -1: the
 * chunks[] cycle), A from the strided copy one element past an aligned
 * address (a_mode 0) or from a dense copy at an aligned address (1) or one
 * element past it (2), C at stride ldc. */
static int run(tpi_gemm_t *g, const case_t *c, int64_t per_call, int a_mode, int64_t ldc, char *out) {
  const char *a = c->a + c->es;
  int64_t lda = c->lda;
  char *copy = NULL;
  if (a_mode) {
    copy = malloc((size_t)(c->m * c->k + 1) * c->es);
    char *dst = copy + (a_mode == 2 ? c->es : 0);
    for (int64_t i = 0; i < c->m; i++)
      memcpy(dst + (size_t)(i * c->k) * c->es, a + (size_t)(i * lda) * c->es, (size_t)c->k * c->es);
    a = dst, lda = c->k;
  }
  int ok = 1, pick = 0;
  for (int64_t r0 = 0; r0 < c->m && ok;) {
    int64_t rows = per_call > 0   ? per_call
                   : per_call < 0 ? chunks[pick++ % (int)(sizeof chunks / sizeof *chunks)]
                                  : c->m;
    if (rows > c->m - r0) rows = c->m - r0;
    ok = tpi_gemm_run(g, rows, a + (size_t)(r0 * lda) * c->es, lda, out + (size_t)(r0 * ldc) * c->es, ldc) ==
         TPMM_SUCCESS;
    r0 += rows;
  }
  free(copy);
  return ok;
}

/* Rows of got (stride ldc) equal to want (dense) bit for bit? */
static int same_bits(const case_t *c, const char *want, const char *got, int64_t ldc) {
  for (int64_t i = 0; i < c->m; i++)
    if (memcmp(want + (size_t)(i * c->n) * c->es, got + (size_t)(i * ldc) * c->es, (size_t)c->n * c->es)) return 0;
  return 1;
}

/* Elements of out (dense) outside the fp64 reference's tolerance. */
static int64_t inaccurate(const case_t *c, const char *out) {
  double *a = malloc((size_t)(c->m * c->k + 1) * sizeof *a), *bt = malloc((size_t)(c->k * c->n + 1) * sizeof *bt);
  for (int64_t i = 0; i < c->m; i++)
    for (int64_t q = 0; q < c->k; q++) a[i * c->k + q] = get_el(c->a + c->es, c->dt, i * c->lda + q);
  for (int64_t q = 0; q < c->k; q++)
    for (int64_t j = 0; j < c->n; j++) bt[j * c->k + q] = get_el(c->x2, c->dt, q * c->n + j);
  int64_t bad = 0;
  for (int64_t i = 0; i < c->m; i++)
    for (int64_t j = 0; j < c->n; j++) {
      double ref = c->bias ? ((const float *)c->bias)[j] : 0.0, mag = fabs(ref);
      for (int64_t q = 0; q < c->k; q++)
        ref += a[i * c->k + q] * bt[j * c->k + q], mag += fabs(a[i * c->k + q] * bt[j * c->k + q]);
      bad += !within_tol(get_el(out, c->dt, i * c->n + j), ref, mag, c->dt, c->k);
    }
  free(a), free(bt);
  return bad;
}

/* Accumulate (tpi_gemm_run_f32 with accumulate = 1, gather_index 1's panels): each element is C + its
 * product (`one`, one row per call), rounded once, as gemm_f32.c states; C holds values of three
 * magnitudes, so a sum that folded C in elsewhere would show. All rows in one call, in calls of 53, and C
 * at row stride n + 3, whose padding is never written. */
static void check_f32_add(const case_t *c, tpi_gemm_t *g, int pack, const char *a, const float *one) {
  const int64_t m = c->m, n = c->n, k = c->k, ldc = n + 3;
  float *base = malloc((size_t)(m * n) * 4), *got = malloc((size_t)((m + 1) * ldc) * 4);
  uint64_t x = seed * 2654435761u + 7;
  for (int64_t i = 0; i < m * n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    base[i] = ((float)(x >> 40) / (float)(1 << 24) - 0.5f) * (i % 3 == 0 ? 1e3f : i % 3 == 1 ? 1.0f : 1e-3f);
  }
  static const struct { int64_t step, ldc; } ways[] = {{0, 0}, {53, 0}, {0, 1}};
  for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
    const int64_t step = ways[w].step ? ways[w].step : m, ld = ways[w].ldc ? ldc : n;
    memset(got, 0xff, (size_t)((m + 1) * ldc) * 4); /* NaN: padding and a guard row */
    for (int64_t i = 0; i < m; i++) memcpy(got + i * ld, base + i * n, (size_t)n * 4);
    int ok = 1;
    for (int64_t r0 = 0; r0 < m && ok; r0 += step)
      ok = tpi_gemm_run_f32(g, m - r0 < step ? m - r0 : step, a + (size_t)(r0 * k) * c->es, k, got + r0 * ld, ld, 1) ==
           TPMM_SUCCESS;
    int64_t bad = 0, poked = 0;
    for (int64_t i = 0; ok && i < m; i++)
      for (int64_t j = 0; j < ld; j++) {
        const float want = base[i * n + j % n] + one[i * n + j % n];
        if (j < n)
          bad += memcmp(&want, got + i * ld + j, 4) != 0;
        else
          poked += ((const uint32_t *)got)[i * ld + j] != 0xffffffffu;
      }
    for (int64_t j = 0; ok && j < ld; j++) poked += ((const uint32_t *)got)[m * ld + j] != 0xffffffffu;
    check(ok && bad == 0 && poked == 0,
          "%s %s (%s): accumulate, %lld rows per call, C stride %lld: %lld elements not C + product, %lld written "
          "outside C: %s (seed %llu)",
          c->desc, pack ? "packed" : "plain", g->be->name, (long long)step, (long long)ld, (long long)bad,
          (long long)poked, ok ? "" : tpmm_last_error(), (unsigned long long)seed);
  }
  free(base), free(got);
}

/* The fp32 product (tpi_gemm_run_f32, what the reduce operators and
 * gather_index 1 call) of all rows at once, in place, and in chunks of 53
 * rows (padded to whole tiles) equals one row per call, bit for bit; rows
 * past m are never written. bf16, and every dtype on gemm_avx2.c, whose
 * products must also equal an fmaf chain in k order. */
static void check_f32(const case_t *c, int pack) {
  tpi_mat_t x2 = x2_view(c);
  tpi_gemm_t *g = NULL;
  if (tpi_gemm_create(&g, c->dt, &x2, NULL, TPMM_FLOAT32, c->hint, c->hint, pack ? INT64_MAX : 1) != TPMM_SUCCESS) {
    check(0, "%s: f32 create: %s", c->desc, tpmm_last_error());
    return;
  }
  const int64_t m = c->m, n = c->n, k = c->k;
  char *a = malloc((size_t)(m * k) * c->es);
  for (int64_t i = 0; i < m; i++)
    memcpy(a + (size_t)(i * k) * c->es, c->a + c->es + (size_t)(i * c->lda) * c->es, (size_t)k * c->es);
  float *one = malloc((size_t)(m * n) * 4), *got = malloc((size_t)((m + 2) * n) * 4);
  int ok = 1;
  for (int64_t i = 0; i < m && ok; i++)
    ok = tpi_gemm_run_f32(g, 1, a + (size_t)(i * k) * c->es, k, one + i * n, n, 0) == TPMM_SUCCESS;
  for (int64_t step = m; ok && step >= 53; step = step == 53 ? 0 : 53) {
    memset(got, 0xff, (size_t)((m + 2) * n) * 4); /* NaN, also in the two guard rows */
    for (int64_t r0 = 0; r0 < m && ok; r0 += step)
      ok = tpi_gemm_run_f32(g, m - r0 < step ? m - r0 : step, a + (size_t)(r0 * k) * c->es, k, got + r0 * n, n, 0) ==
           TPMM_SUCCESS;
    int guard = 1;
    for (int64_t j = 0; j < 2 * n; j++) guard &= ((const uint32_t *)(got + m * n))[j] == 0xffffffffu;
    check(ok && memcmp(one, got, (size_t)(m * n) * 4) == 0 && guard,
          "%s %s: fp32 product, %lld rows per call: not one row per call's bits, or rows past m written (seed %llu)",
          c->desc, pack ? "packed" : "plain", (long long)step, (unsigned long long)seed);
  }
  check(ok, "%s: f32 run: %s", c->desc, tpmm_last_error());
  if (ok) check_f32_add(c, g, pack, a, one);
  if (ok && !pack && g->be == &tpi_gemm_avx2) { /* its documented sum: one fmaf chain per element, k in order
                                                 * from +0; the first and last row blocks and every 7th row */
    int64_t bad = 0;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n && (i < 6 || i >= m - 6 || i % 7 == 0); j++) {
        float acc = 0.0f;
        for (int64_t q = 0; q < k; q++)
          acc = fmaf(tpi_gemm_elem_f32(a, c->dt, i * k + q), tpi_gemm_elem_f32(c->x2, c->dt, q * n + j), acc);
        bad += memcmp(&acc, one + i * n + j, 4) != 0;
      }
    check(bad == 0, "%s %s: %lld fp32 products differ from an fmaf chain in k order (seed %llu)", c->desc,
          pack ? "packed" : "plain", (long long)bad, (unsigned long long)seed);
  }
  free(a), free(one), free(got);
  tpi_gemm_destroy(g);
}

/* One x2, packed or plain: every way of running the rows must give the bits
 * of running them one at a time (returned in one_by_one, dense). */
static void check_layout(const case_t *c, int pack, char *one_by_one) {
  static const struct {
    int64_t per_call;
    int a_mode, ldc_pad;
    const char *what;
  } ways[] = {
      {0, 1, 0, "all rows in one call"},
      {-1, 1, 0, "rows in chunks of 2, 5, 1, 33, 3, 7, 17"},
      {0, 2, 0, "all rows, A dense but one element off its alignment"},
      {0, 0, 5, "all rows, A at row stride k+3, C at row stride n+5"},
      {-1, 0, 0, "chunks, A at row stride k+3"},
      {0, 1, 0, "all rows again (a repeated call)"},
  };
  const char *layout = pack ? "packed" : "plain";
  tpi_mat_t x2 = x2_view(c);
  tpi_gemm_t *g = NULL;
  tpmm_status_t st = tpi_gemm_create(&g, c->dt, &x2, c->bias, TPMM_FLOAT32, c->hint, c->hint, pack ? INT64_MAX : 1);
  check(st == TPMM_SUCCESS, "%s %s: create: %s", c->desc, layout, tpmm_last_error());
  if (st != TPMM_SUCCESS) return;
  /* a few rows run on tpmm's own kernels where the CPU has them (gemm.c) */
  const tpi_gemm_backend_t *own = own_kernel(c, pack);
  check(own ? g->be == own : g->be != &tpi_gemm_dot && g->be != &tpi_gemm_amx && g->be != &tpi_gemm_bf16r,
        "%s %s: backend %s, expected %s", c->desc, layout, g->be->name, own ? own->name : "oneDNN or ref");
  check(run(g, c, 1, 1, c->n, one_by_one), "%s %s: one row per call: %s", c->desc, layout, tpmm_last_error());
  int64_t bad = pack ? 0 : inaccurate(c, one_by_one); /* packed: equal to plain, checked below */
  check(bad == 0, "%s %s: %lld elements outside the fp64 tolerance (seed %llu)", c->desc, layout, (long long)bad,
        (unsigned long long)seed);
  const size_t bytes = (size_t)((c->m + 2) * (c->n + 5)) * c->es; /* two guard rows past m */
  unsigned char *out = malloc(bytes);
  for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
    const int64_t ldc = c->n + ways[w].ldc_pad;
    memset(out, 0xff, bytes); /* NaN: rows left unwritten show */
    int ok = run(g, c, ways[w].per_call, ways[w].a_mode, ldc, (char *)out), guard = 1;
    for (size_t b = (size_t)(c->m * ldc) * c->es; b < bytes; b++) guard &= out[b] == 0xff;
    check(ok && same_bits(c, one_by_one, (char *)out, ldc) && guard,
          "%s %s: %s: not bit-identical to one row per call, or rows past m written (seed %llu)", c->desc, layout,
          ways[w].what, (unsigned long long)seed);
  }
  free(out);
  tpi_gemm_destroy(g);
}

/* All rows through a fresh setup, plain or a plan's, on that many GEMM threads, per_call rows a call (0: all
 * at once), or NULL on failure. */
static char *all_rows(const case_t *c, const tpi_mat_t *x2, int threads, int plan, int64_t per_call) {
  const int keep = tpi_params.num_threads;
  tpi_params.num_threads = threads;
  tpi_gemm_t *g = NULL;
  char *out = malloc((size_t)(c->m * c->n + 1) * c->es);
  const int ok =
      tpi_gemm_create(&g, c->dt, x2, c->bias, TPMM_FLOAT32, c->hint, c->hint, plan ? INT64_MAX : 1) == TPMM_SUCCESS &&
      run(g, c, per_call, 1, c->n, out);
  tpi_params.num_threads = keep;
  tpi_gemm_destroy(g);
  if (!ok) free(out);
  return ok ? out : NULL;
}

/* tpmm's own kernels: three GEMM threads (they split the columns, or x2's
 * panels and row blocks), plain and a plan's setup, give one thread's bits; a plan's setup (its own copy of x2) rebound
 * to other data gives a fresh setup's bits on that data; on AMX, x2 stored the other way gives the same bits (both
 * layouts feed the tiles the same pairs in order). */
static void check_own_setups(const case_t *c, const char *plain) {
  const tpi_mat_t x2 = x2_view(c);
  /* past 256 rows, 2-5 threads: their shares of (x2 panel, row block) pairs start mid-panel and cross
   * into the next (gemm_amx.c's blocked pass) */
  for (int threads = c->m > 256 ? 2 : 3; threads <= (c->m > 256 ? 5 : 3); threads++)
    for (int plan = 0; plan < 2; plan++) {
      char *many = all_rows(c, &x2, threads, plan, 0);
      check(many && memcmp(many, plain, (size_t)(c->m * c->n) * c->es) == 0,
            "%s: %d GEMM threads (%s) not bit-identical to one (seed %llu)", c->desc, threads, plan ? "plan" : "plain",
            (unsigned long long)seed);
      free(many);
    }
  /* decode-sized calls (3 rows) on 3 threads: gemm_avx2.c's in-place decode pass splits the columns */
  char *few = all_rows(c, &x2, 3, 0, 3);
  check(few && memcmp(few, plain, (size_t)(c->m * c->n) * c->es) == 0,
        "%s: 3-row calls on 3 GEMM threads not bit-identical to one thread's (seed %llu)", c->desc,
        (unsigned long long)seed);
  free(few);
  /* x2 negated, same layout */
  const size_t els = (size_t)(c->trans ? c->n * (c->k + 3) : c->k * c->n);
  const char *src = c->trans ? c->xt : c->x2;
  char *neg = malloc(els * c->es + 2);
  memcpy(neg, src, els * c->es);
  for (size_t e = 0; e < els; e++) neg[e * c->es + c->es - 1] ^= (char)0x80; /* the sign bit (little endian) */
  tpi_mat_t x2n = x2;
  x2n.data = neg;
  char *fresh = all_rows(c, &x2n, 1, 0, 0), *got = malloc((size_t)(c->m * c->n + 1) * c->es);
  tpi_gemm_t *g = NULL;
  const int ok = fresh &&
                 tpi_gemm_create(&g, c->dt, &x2, c->bias, TPMM_FLOAT32, c->hint, c->hint, INT64_MAX) == TPMM_SUCCESS &&
                 tpi_gemm_rebind(g, &x2n, c->bias, TPMM_FLOAT32) == TPMM_SUCCESS && run(g, c, -1, 1, c->n, got);
  check(ok && memcmp(fresh, got, (size_t)(c->m * c->n) * c->es) == 0,
        "%s: packed setup rebound to new x2 not bit-identical to a fresh setup on it (seed %llu)", c->desc,
        (unsigned long long)seed);
  tpi_gemm_destroy(g);
  case_t flipped = *c;
  flipped.trans = !c->trans;
  if (own_kernel(c, 0) == &tpi_gemm_amx && own_kernel(&flipped, 0) == &tpi_gemm_amx) {
    /* the other layout: row-major x2 dense, or a transposed copy at row stride k + 1 */
    char *xo = NULL;
    tpi_mat_t other = {c->x2, c->k, c->n, c->n, 1};
    if (!c->trans) {
      xo = malloc((size_t)(c->n * (c->k + 1) + 1) * c->es);
      for (int64_t q = 0; q < c->k; q++)
        for (int64_t j = 0; j < c->n; j++)
          memcpy(xo + (size_t)(j * (c->k + 1) + q) * c->es, c->x2 + (size_t)(q * c->n + j) * c->es, c->es);
      other = (tpi_mat_t){xo, c->k, c->n, 1, c->k + 1};
    }
    char *flip = all_rows(c, &other, 1, 0, 0);
    check(flip && memcmp(flip, plain, (size_t)(c->m * c->n) * c->es) == 0,
          "%s: AMX with x2 stored the other way not bit-identical (seed %llu)", c->desc, (unsigned long long)seed);
    free(flip), free(xo);
  }
  free(neg), free(fresh), free(got);
}

/* A kernel's buffers not allocated (TPMM_DEBUG_FAIL `hook`) fail a one-shot call of 100 rows with
 * TPMM_ERR_NO_MEMORY and a message; the next call on the same setup gives a fresh setup's bits. be: the
 * backend the setup must be on, NULL: not checked. */
static void check_out_of_memory(rng_t *r, tpmm_dtype_t dt, const char *hook, const tpi_gemm_backend_t *be) {
  case_t c = {.dt = dt, .m = 100, .k = 300, .n = 70, .es = dt_size(dt), .hint = 100};
  snprintf(c.desc, sizeof c.desc, "%s m=100 k=300 n=70: \"%s\" out of memory", dt_name(dt), hook);
  test_case(c.desc, 60);
  make_inputs(&c, 1, r);
  const tpi_mat_t x2 = x2_view(&c);
  char *want = all_rows(&c, &x2, 1, 0, 0), *got = malloc((size_t)(c.m * c.n) * c.es);
  tpi_gemm_t *g = NULL;
  check(tpi_gemm_create(&g, c.dt, &x2, c.bias, TPMM_FLOAT32, c.m, c.m, 1) == TPMM_SUCCESS && (!be || g->be == be),
        "%s: create%s: %s", c.desc, be ? " on the kernel under test" : "", tpmm_last_error());
  tpi_debug_set_fail("TPMM_DEBUG_FAIL", hook);
  const tpmm_status_t st = g ? tpi_gemm_run(g, c.m, c.a + c.es, c.lda, got, c.n) : TPMM_ERR_INTERNAL;
  tpi_debug_set_fail("TPMM_DEBUG_FAIL", NULL);
  check(st == TPMM_ERR_NO_MEMORY && strstr(tpmm_last_error(), "out of memory"), "%s: status %s (%s)", c.desc,
        tpmm_status_string(st), tpmm_last_error());
  check(g && want && tpi_gemm_run(g, c.m, c.a + c.es, c.lda, got, c.n) == TPMM_SUCCESS &&
            memcmp(want, got, (size_t)(c.m * c.n) * c.es) == 0,
        "%s: the call after the failure not bit-identical to a fresh setup (seed %llu)", c.desc,
        (unsigned long long)seed);
  tpi_gemm_destroy(g);
  free(want), free(got), free(c.x2), free(c.a), free(c.bias), free(c.xt);
}

/* hint: m_hint and call_rows of the setups; trans: x2 read from a transposed copy. */
static void run_case_as(tpmm_dtype_t dt, int64_t m, int64_t k, int64_t n, int with_bias, int64_t hint, int trans,
                        rng_t *r) {
  case_t c = {.dt = dt, .m = m, .k = k, .n = n, .es = dt_size(dt), .hint = hint, .trans = trans};
  snprintf(c.desc, sizeof c.desc, "%s m=%lld k=%lld n=%lld bias=%d%s hint=%lld", dt_name(dt), (long long)m,
           (long long)k, (long long)n, with_bias, trans ? " x2 transposed" : "", (long long)hint);
  test_case(c.desc, 120);
  make_inputs(&c, with_bias, r);
  char *plain = malloc((size_t)(m * n) * c.es), *packed = malloc((size_t)(m * n) * c.es);
  check_layout(&c, 0, plain);
  check_layout(&c, 1, packed);
  check(memcmp(plain, packed, (size_t)(m * n) * c.es) == 0, "%s: packed x2 is not bit-identical to plain (seed %llu)",
        c.desc, (unsigned long long)seed);
  /* --quick on gemm_avx2.c (sanitizers, valgrind): its own setups and fp32 products at 60 rows only */
  const int lean = quick && own_kernel(&c, 0) == &tpi_gemm_avx2 && m != 60;
  for (int pack = 0; (dt == TPMM_BFLOAT16 || tpi_gemm_avx2_takes()) && m >= 53 && !lean && pack < 2; pack++)
    check_f32(&c, pack);
  if (own_kernel(&c, 0) && !lean) check_own_setups(&c, plain);
  free(plain), free(packed), free(c.x2), free(c.a), free(c.bias), free(c.xt);
}

static void run_case(tpmm_dtype_t dt, int64_t m, int64_t k, int64_t n, int with_bias, rng_t *r) {
  run_case_as(dt, m, k, n, with_bias, m, 0, r);
}

int main(int argc, char **argv) {
  int rank, size;
  test_init(&argc, &argv, &rank, &size);
  signal(SIGALRM, test_on_alarm);
  const char *es = getenv("TPMM_TEST_SEED");
  seed = es ? strtoull(es, NULL, 10) : 1;
  printf("test_gemm: seed=%llu (TPMM_TEST_SEED=%llu reproduces)\n", (unsigned long long)seed, (unsigned long long)seed);
  quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  /* --quick where gemm_avx2.c takes every call: the cases aimed at oneDNN's and AMX's blockings would
   * run that kernel again (the full run keeps them) */
  const int other = !(quick && tpi_gemm_avx2_takes());
  rng_t r = {seed};
  for (size_t d = 0; d < sizeof dts / sizeof *dts; d++)
    for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
      for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
        for (int b = 0; b < 2 && !(quick && ks[ki] >= 4096 && ns[ni] == 512); b++)
          run_case(dts[d], ROWS, ks[ki], ns[ni], b, &r);
  /* more rows: oneDNN's AMX K blocking changes with M (here from 65 rows),
   * and from 1024 rows at k = 4096 it copies A first (with AMX: gemm_amx.c's
   * blocked pass, five row blocks and eight k panels; oneDNN below, where with x2 packed a call of 1030 rows
   * in place runs as calls of 512, 512 and 6 at one thread: k = 4096 is a power of two, gemm_dnnl.c
   * in_place_rows) */
  if (other) {
    run_case(TPMM_BFLOAT16, 300, 4096, 512, 1, &r);
    run_case(TPMM_BFLOAT16, 1030, 4096, 17, 0, &r);
    /* one slice run in place: 309 = 256 + 53 rows, whose 53-row tail runs apart, padded (gemm_dnnl.c) */
    run_case(TPMM_BFLOAT16, 309, 256, 64, 1, &r);
  }
  /* decode-sized hints (gemm_amx.c's passes of up to 32 rows, either layout; gemm_dot.c, transposed); 60 rows, so that
   * the fp32 product runs in 53-row calls too; n = 150: three AMX column groups, the last with a 6-column tail; n = 40
   * and 170: groups ending in three column tiles */
  if (!tpi_gemm_amx_usable())
    printf("test_gemm: NOTE no AMX here: row-major decode cases run on %s\n",
           tpi_gemm_bf16r_usable() ? "gemm_bf16r.c (one-shot) and oneDNN (plans)" : "oneDNN");
  /* with Debian 12's oneDNN 2.6 and AVX512-BF16 without AMX, gemm_bf16r.c's probe must agree with oneDNN: a
   * kernel that turned itself off would leave the decode cases above on oneDNN, passing */
  const dnnl_version_t *dv = dnnl_version();
  if (!tpi_gemm_amx_usable() && tpi_gemm_dot_usable() && tpi_params.gemm == TPMM_GEMM_DNNL && dv->major == 2 &&
      dv->minor == 6) {
    test_case("gemm_bf16r.c agrees with oneDNN on its probe", 10);
    check(tpi_gemm_bf16r_usable(), "gemm_bf16r.c's probe disagreed with oneDNN: the kernel is off");
  }
  if (!tpi_gemm_dot_usable()) printf("test_gemm: NOTE no AVX512-BF16 here: the transposed cases run on oneDNN\n");
  /* 1001, 1024: two 512-deep blocks in oneDNN's kernel without AMX (gemm_bf16r.c); 4097: five of 1024 */
  static const int64_t dk[] = {0, 1, 2, 31, 32, 33, 255, 1001, 1024, 4097}, dn[] = {1, 3, 5, 64, 150, 40, 170};
  /* hints: transposed, gemm_dot.c's bound; row-major, a hint of 13 rows (gemm_bf16r.c where k > 1024, its
   * calls of 60 rows and of the chunks' sizes in passes of up to 16; oneDNN below) */
  static const int64_t dh[] = {1, TPI_DOT_MAX_ROWS, 32}, dr[] = {1, 13, 32};
  for (int trans = 1; trans >= 0; trans--)
    for (size_t ki = 0; ki < sizeof dk / sizeof *dk; ki++)
      for (size_t ni = 0; ni < sizeof dn / sizeof *dn; ni++)
        for (int b = 0; b < 6; b++) {
          if (dn[ni] > 64 && dk[ki] != 33 && dk[ki] != 4097) continue; /* the wide ones at two k */
          if (!trans && b / 2 == 1 && dk[ki] < 1001) continue;         /* 13 rows: where the rule turns */
          run_case_as(TPMM_BFLOAT16, 60, dk[ki], dn[ni], b % 2, trans ? dh[b / 2] : dr[b / 2], trans, &r);
        }
  /* gemm_bf16r.c's column chunks: 57 rows in one call run passes of 16, 16, 16 and 9 rows (8 + 1); 16 rows'
   * sums take 4096 of the 4200 columns at a time (the last chunk three panels and a 8-column one), 9 rows'
   * all of them; 57 >= 53, so the fp32 products run too */
  run_case_as(TPMM_BFLOAT16, 57, 1025, 4200, 1, 1, 0, &r);
  /* its row rule, as gemm.h states it (own_kernel above asks the same function) */
  test_case("gemm_bf16r.c's row rule", 10);
  check(tpi_gemm_bf16r_fits(8, 1) && tpi_gemm_bf16r_fits(8, 1024) && !tpi_gemm_bf16r_fits(9, 1024) &&
            tpi_gemm_bf16r_fits(9, 1025) && tpi_gemm_bf16r_fits(16, 1025) && !tpi_gemm_bf16r_fits(17, 4097),
        "gemm_bf16r.c's row rule is not 8 rows, or 16 where k > 1024");
  /* machines with AMX: the transposed decode cases again on gemm_dot.c, as a CPU without AMX runs them */
  tpi_debug.no_amx = 1;
  for (size_t ki = 0; tpi_gemm_amx_usable() && tpi_gemm_dot_usable() && ki < sizeof dk / sizeof *dk; ki++)
    for (size_t ni = 0; ni < sizeof dn / sizeof *dn; ni++)
      for (int b = 0; b < 4 && !(dn[ni] > 64 && dk[ki] != 33 && dk[ki] != 4097); b++)
        run_case_as(TPMM_BFLOAT16, 60, dk[ki], dn[ni], b % 2, dh[b / 2], 1, &r);
  tpi_debug.no_amx = 0;
  /* n = 600: more column groups than one visit of gemm_amx.c's in-place pass takes (8), the last
   * with a partial tile; both layouts, one and 32 rows per call */
  for (int trans = 0; trans < 2; trans++)
    for (int b = 0; b < 2; b++) run_case_as(TPMM_BFLOAT16, 60, b ? 257 : 33, 600, b, b ? 32 : 4, trans, &r);
  /* gemm_amx.c's blocked pass (plans past 32 rows; one-shot calls past 32, or 192 transposed): 300 rows
   * = a row block of 256 and one of 44 (32 and a 12-row tail); k = 1100: k panels of 512, 512 and 76 (a
   * 12-column tail); n = 600: three x2 panels, the last of 96 columns (88 real); n = 40: one panel, its
   * last column pair one tile. Transposed x2 at row stride k + 3: odd at k = 1100 and 70 (pairs packed
   * through a dense copy), even at k = 1101 (straight); k = 1024, n = 512: whole panels only. 193 and
   * 192 rows: either side of a transposed one-shot call's threshold. */
  for (int trans = 0; other && trans < 2; trans++) {
    run_case_as(TPMM_BFLOAT16, 300, 1100, 600, 1, 300, trans, &r);
    run_case_as(TPMM_BFLOAT16, 300, 70, 40, 0, 300, trans, &r);
    run_case_as(TPMM_BFLOAT16, 300, 1024, 512, 0, 300, trans, &r);
  }
  if (other) {
    run_case_as(TPMM_BFLOAT16, 300, 1101, 600, 1, 300, 1, &r);
    /* a transposed plan made for decode rows keeps x2 dense; 300 rows through it pack its panels per call */
    run_case_as(TPMM_BFLOAT16, 300, 1100, 600, 1, 32, 1, &r);
    /* three row blocks by four x2 panels, for the threads' shares */
    run_case_as(TPMM_BFLOAT16, 600, 1100, 1000, 0, 600, 0, &r);
  }
  run_case_as(TPMM_BFLOAT16, 193, 96, 100, 1, 193, 1, &r);
  run_case_as(TPMM_BFLOAT16, 192, 96, 100, 1, 192, 1, &r);
  if (tpi_gemm_amx_usable()) check_out_of_memory(&r, TPMM_BFLOAT16, "gemm amx buffers", NULL); /* the blocked pass */
  if (tpi_gemm_avx2_usable()) { /* x2's blocks of one-shot calls of more than 4 rows */
    tpi_debug.pre_avx512 = 1;
    check_out_of_memory(&r, TPMM_FLOAT32, "gemm avx2 blocks", &tpi_gemm_avx2);
    tpi_debug.pre_avx512 = 0;
  }
  /* bf16 on oneDNN, as a CPU without AMX runs it: the table's bf16 rows and the larger calls above */
  tpi_debug.no_amx = 1;
  for (size_t ki = 0; tpi_gemm_amx_usable() && ki < sizeof ks / sizeof *ks; ki++)
    for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
      for (int b = 0; b < 2 && !(quick && ks[ki] >= 4096 && ns[ni] == 512); b++)
        run_case(TPMM_BFLOAT16, ROWS, ks[ki], ns[ni], b, &r);
  if (tpi_gemm_amx_usable()) {
    run_case(TPMM_BFLOAT16, 300, 4096, 512, 1, &r);
    run_case(TPMM_BFLOAT16, 1030, 4096, 17, 0, &r);
    run_case(TPMM_BFLOAT16, 309, 256, 64, 1, &r);
    run_case_as(TPMM_BFLOAT16, 60, 1024, 64, 1, 33, 1, &r);
  }
  tpi_debug.no_amx = 0;
  /* every dtype as a CPU without AVX-512 runs it (gemm_avx2.c; bf16 and fp16 widened): the table, row
   * counts past its 4-row blocks and 24-column panels, 2-5 threads, transposed x2, decode hints */
  tpi_debug.pre_avx512 = 1;
  if (!tpi_gemm_avx2_usable()) printf("test_gemm: NOTE no AVX2 here: gemm_avx2.c is not tested\n");
  for (size_t d = 0; tpi_gemm_avx2_usable() && tpi_have_avx512() && d < sizeof dts / sizeof *dts; d++)
    for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
      for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
        for (int b = 0; b < 2 && !(quick && ks[ki] >= 4096 && ns[ni] == 512); b++)
          run_case(dts[d], ROWS, ks[ki], ns[ni], b, &r);
  for (size_t d = 0; tpi_gemm_avx2_usable() && d < sizeof dts / sizeof *dts; d++)
    for (int trans = 0; trans < 2; trans++) {
      if (!quick || tpi_have_avx512()) run_case_as(dts[d], 300, 1100, 600, 1, 300, trans, &r);
      run_case_as(dts[d], 60, 33, 150, 0, 1, trans, &r);
      run_case_as(dts[d], 60, 4097, 40, 1, 4, trans, &r);
    }
  tpi_debug.pre_avx512 = 0;
  int rc = finish("test_gemm");
  tpmm_finalize();
  return rc;
}
