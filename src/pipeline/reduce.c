/*
 * reduce.c — the pieces every reduce schedule shares (reduce.h): units,
 * workspaces, the partial GEMM's call site, and the one fixed-order sum that
 * makes every schedule give the same bits.
 */
#include "reduce.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "../common/trace.h"

#define SUM_BW 8e9 /* bytes/s the sum streams its partials at (one core, in cache or not) */

/* Rows this rank owns with at most C chunks: the receive slots' height. */
static int64_t own_rows_bound(const tpi_call_t *a, int all, int64_t C) {
  if (!all) return a->m / a->W;
  const int64_t b = (a->m + a->W - 1) / a->W + C; /* each chunk rounds its part up by at most one row */
  return b < a->m ? b : a->m;
}

/* The most chunks the ranks may agree on: comm_turn, or the model's limit. */
static int64_t max_chunks(const tpi_call_t *a) { return a->comm_turn > 0 ? a->comm_turn : TPI_MAX_AUTO_CHUNKS; }

static float to_f32(const void *b, tpmm_dtype_t dt, int64_t j) {
  switch (dt) {
    case TPMM_FLOAT16: return tpi_f16_to_f32(((const uint16_t *)b)[j]);
    case TPMM_BFLOAT16: return tpi_bf16_to_f32(((const uint16_t *)b)[j]);
    default: return ((const float *)b)[j];
  }
}

tpmm_status_t tpi_red_reserve(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  tpi_red_ws_t *w = &p->red;
  const size_t n = (size_t)a->n, m = (size_t)a->m, W = (size_t)a->W, f = sizeof(float);
  const int all = tpi_red_all(p);
  if (!tpi_input_dense(a))
    TPI_CHECK(tpi_ws_reserve(&p->send, &p->send_bytes, m * (size_t)a->k * a->esize, op, "the packed input"));
  TPI_CHECK(tpi_ws_reserve((void **)&w->part, &w->part_bytes, m * n * f, op, "the partial products"));
  TPI_CHECK(tpi_ws_reserve((void **)&w->acc, &w->acc_bytes, n * f, op, "a row of sums"));
  if (a->bias) {
    TPI_CHECK(tpi_ws_reserve((void **)&w->bias, &w->bias_bytes, n * f, op, "the bias in fp32"));
    for (int64_t j = 0; j < a->n; j++) w->bias[j] = to_f32(a->bias, a->bias_dt, j);
  }
  const int64_t C = max_chunks(a), units = C < (int64_t)m ? C : m > 0 ? (int64_t)m : 1;
  if (W > 1) {
    const size_t own = (size_t)own_rows_bound(a, all, C);
    TPI_CHECK(tpi_ws_reserve((void **)&w->recv, &w->recv_bytes, W * own * n * f, op, "the peers' partials"));
  }
  TPI_CHECK(tpi_ws_reserve(&w->reqs, &w->reqs_bytes, tpi_red_reqs_bytes(a, (int)units), op, "the ring's requests"));
  p->folds = tpi_red_folds(p) ? TPI_FOLD_PARTIALS : TPI_FOLD_NONE;
  if (p->folds) /* where the addresses of the partials that come with the agreement land */
    TPI_CHECK(tpi_ws_reserve((void **)&p->peer, &p->peer_bytes, sizeof(char *) * W, op, "the folded partials' table"));
  if (all && a->out.rs != a->n)
    TPI_CHECK(tpi_ws_reserve(&w->stage, &w->stage_bytes, m * n * a->esize, op, "the rounded rows"));
  return TPMM_SUCCESS;
}

void tpi_red_ws_free(tpi_plan_t *p) {
  tpi_red_ws_t *w = &p->red;
  if (p->g && p->g->broken) { /* an abandoned collective may still write them */
    tpi_group_orphan(p->g, w->part);
    tpi_group_orphan(p->g, w->recv);
    tpi_group_orphan(p->g, w->stage);
    tpi_group_orphan(p->g, w->reqs); /* the unfused schedule's count arrays */
  } else {
    free(w->part);
    free(w->recv);
    free(w->stage);
    free(w->reqs);
  }
  free(w->bias);
  free(w->acc);
  memset(w, 0, sizeof *w);
}

int tpi_red_chunks(const tpi_plan_t *p) {
  const tpi_call_t *a = &p->a;
  const int64_t rows = tpi_red_all(p) ? a->m : a->m / a->W, cmax = max_chunks(a);
  int64_t C = p->chunks;
  if (C > cmax) C = cmax; /* the workspaces hold no more */
  if (C > rows) C = rows;
  if (C > p->g->tag_ub / 2) C = p->g->tag_ub / 2; /* the ring tags partials c, rounded rows C + c */
  return C < 1 ? 1 : (int)C;
}

void tpi_red_unit(const tpi_plan_t *p, int C, int q, int c, int64_t *lo, int64_t *hi) {
  const tpi_call_t *a = &p->a;
  if (tpi_red_all(p)) {
    const int64_t c0 = tpi_chunk_lo(a->m, C, c), len = tpi_chunk_lo(a->m, C, c + 1) - c0;
    *lo = c0 + tpi_chunk_lo(len, a->W, q);
    *hi = c0 + tpi_chunk_lo(len, a->W, q + 1);
  } else {
    const int64_t mb = a->m / a->W;
    *lo = q * mb + tpi_chunk_lo(mb, C, c);
    *hi = q * mb + tpi_chunk_lo(mb, C, c + 1);
  }
}

int tpi_red_chunk_once(const tpi_plan_t *p, int C, int c, int64_t *lo, int64_t *hi) {
  const tpi_call_t *a = &p->a;
  if (!tpi_red_all(p) && C > 1) return 0;
  *lo = tpi_red_all(p) ? tpi_chunk_lo(a->m, C, c) : 0;
  *hi = tpi_red_all(p) ? tpi_chunk_lo(a->m, C, c + 1) : a->m;
  return (*hi - *lo + a->W - 1) / a->W < TPI_GEMM_F32_ROWS;
}

double tpi_red_gemm_time(const tpi_plan_t *p, const tpi_model_t *m, int64_t rows) {
  return tpi_model_gemm(m, (double)tpi_gemm_cost_rows(p->gemm, rows));
}

int64_t tpi_red_unit_offset(const tpi_plan_t *p, int C, int q, int c) {
  int64_t off = 0, lo, hi;
  for (int i = 0; i < c; i++) {
    tpi_red_unit(p, C, q, i, &lo, &hi);
    off += hi - lo;
  }
  return off;
}

tpmm_status_t tpi_red_gemm(tpi_plan_t *p, const char *A, int64_t lo, int64_t hi, float *P, tpi_poll_fn poll,
                           void *ctx) {
  const tpi_call_t *a = &p->a;
  const int64_t rows = hi - lo, tile = poll && p->tile > 0 ? p->tile : rows;
  for (int64_t r0 = 0; r0 < rows; r0 += tile) {
    const int64_t t = rows - r0 < tile ? rows - r0 : tile;
    float *dst = P + r0 * a->n;
    if (p->gemm_status == TPMM_SUCCESS) {
      const double t0 = tpi_now();
      tpmm_status_t st =
          tpi_debug_fail("gemm tile")
              ? tpi_fail(TPMM_ERR_NO_MEMORY, "gemm: out of memory (TPMM_DEBUG_FAIL)")
              : tpi_gemm_run_f32(p->gemm, t, A + (size_t)((lo + r0) * a->k) * a->esize, a->k, dst, a->n, 0);
      if (st != TPMM_SUCCESS) { /* keep the message: later steps must not lose it */
        p->gemm_status = st;
        snprintf(p->gemm_msg, sizeof p->gemm_msg, "%s", tpi_error_message());
      }
      tpi_trace(TPI_EV_GEMM, t0, lo + r0, t);
    }
    if (p->gemm_status != TPMM_SUCCESS)
      for (int64_t i = 0; i < t * a->n; i++) dst[i] = __builtin_nanf("");
    if (poll && r0 + t < rows) TPI_CHECK(poll(ctx));
  }
  return TPMM_SUCCESS;
}

/* Row i of the sum into acc: part[0] + part[1] + ... in that order (the
 * first copied, not added to 0: keeps -0), / w for AVG, + bias; in fp32,
 * elementwise, so sixteen lanes at a time give the scalar loop's bits. */
static void sum_row_scalar(const float *const *part, int W, int64_t i, int64_t n, const float *div, const float *bias,
                           float *acc) {
  memcpy(acc, part[0] + i * n, (size_t)n * sizeof(float));
  for (int q = 1; q < W; q++) {
    const float *x = part[q] + i * n;
    for (int64_t j = 0; j < n; j++) acc[j] += x[j];
  }
  for (int64_t j = 0; div && j < n; j++) acc[j] /= *div;
  for (int64_t j = 0; bias && j < n; j++) acc[j] += bias[j];
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static void sum_row_avx512(const float *const *part, int W, int64_t i, int64_t n,
                                                              const float *div, const float *bias, float *acc) {
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1u);
    __m512 v = _mm512_maskz_loadu_ps(m, part[0] + i * n + j);
    for (int q = 1; q < W; q++) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, part[q] + i * n + j));
    if (div) v = _mm512_div_ps(v, _mm512_set1_ps(*div));
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + j));
    _mm512_mask_storeu_ps(acc + j, m, v);
  }
}
#endif

void tpi_red_sum(tpi_plan_t *p, const float *const *part, int64_t rows, void *dst, int64_t ldd) {
  const tpi_call_t *a = &p->a;
  const int64_t n = a->n;
  const float w = (float)a->W, *div = a->reduce_op == TPMM_REDUCE_AVG ? &w : NULL, *bias = p->red.bias;
  float *acc = p->red.acc;
  void (*sum_row)(const float *const *, int, int64_t, int64_t, const float *, const float *, float *) = sum_row_scalar;
#if defined(__x86_64__)
  if (tpi_have_avx512()) sum_row = sum_row_avx512;
#endif
  const double t0 = tpi_now();
  for (int64_t i = 0; i < rows; i++) {
    sum_row(part, a->W, i, n, div, bias, acc);
    char *d = (char *)dst + (size_t)(i * ldd) * a->esize;
    if (a->dt == TPMM_BFLOAT16)
      tpi_f32_to_bf16_n(acc, (uint16_t *)d, (size_t)n);
    else if (a->dt == TPMM_FLOAT16)
      tpi_f32_to_f16_n(acc, (uint16_t *)d, (size_t)n);
    else
      memcpy(d, acc, (size_t)n * sizeof(float));
  }
  tpi_trace(TPI_EV_REDUCE, t0, rows, a->W);
}

void tpi_red_put(const tpi_plan_t *p, const char *src, int64_t rows, int64_t o0) {
  const tpi_call_t *a = &p->a;
  const size_t rb = (size_t)a->n * a->esize;
  for (int64_t i = 0; i < rows; i++) memcpy(a->out.data + (size_t)((o0 + i) * a->out.rs) * a->esize, src + rb * i, rb);
}

double tpi_red_best_chunks(const tpi_plan_t *p, const tpi_model_t *m, int *chunks,
                           double (*time)(const tpi_plan_t *p, const tpi_model_t *m, int C)) {
  static const int ladder[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
  enum { N = sizeof ladder / sizeof ladder[0] };
  const int64_t rows = tpi_red_all(p) ? p->a.m : p->a.m / p->a.W;
  if (*chunks > 0) return time(p, m, *chunks);
  double t[N], best = 1e30;
  size_t n = 0;
  for (; n < N && ladder[n] <= (rows > 0 ? rows : 1); n++) best = fmin(best, t[n] = time(p, m, ladder[n]));
  /* Where the model cannot tell chunk counts apart, the most: over links,
   * large messages cross slower under polls than the model says and small
   * ones did not (bench/RESULTS.md §16). */
  *chunks = 1;
  double chosen = t[0];
  for (size_t i = 0; i < n; i++)
    if (t[i] <= best * (1 + TPI_RED_CHUNK_MARGIN)) *chunks = ladder[i], chosen = t[i];
  return chosen;
}

double tpi_red_sum_time(const tpi_plan_t *p, int64_t rows) {
  return (double)rows * (double)p->a.n * 4.0 * (p->a.W + 1) / SUM_BW;
}
