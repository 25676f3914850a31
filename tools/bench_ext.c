/*
 * bench_ext.c — tpmm-bench's measurements of issue 15, side by side in one
 * run like the base mode (tpmm-bench.c), interleaved within every iteration
 * (rotating order, an MPI_Barrier before each), every time the slowest
 * rank's, the median over iterations:
 *
 *   T_AG     MPI_Allgatherv of the shards alone (input's rows, or x2's rows
 *            with --gather-index 1)
 *   T_GEMM   the GEMM on the gathered rows alone, tpmm's GEMM backend:
 *              gather_index 0: every weight over all gathered rows (the same
 *              prepared x2 as the fused path: with --plan the plan's own);
 *              gather_index 1: input (m x K) @ gathered x2 (K x n), the way a
 *              user would: x2 is new every call, so the GEMM is prepared on
 *              it (in place, not packed) inside the timing
 *   T_seq    T_AG's allgather, then T_GEMM's GEMM
 *   T_fused  tpmm_all_gather_matmul (gather_index 1), _v (--counts) or _multi
 *            (--nb), or the plan of it (--plan)
 *   T_sep    --nb N: N separate single-weight calls (plans), N gathers
 *   T_even   --counts: the same total split evenly (when W divides it)
 * E = (T_seq - T_fused) / min(T_AG, T_GEMM); sep = T_fused / T_sep;
 * even = T_fused / T_even. Outputs and gather_out of the last timed call
 * must equal the unfused algorithm's bit for bit (and, --nb, the separate
 * calls' outputs the multi call's).
 */
#include "bench_ext.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "src/gemm/gemm.h"
#include "src/pipeline/pipeline.h"
#include "tpmm.h"

/* X_PAIRED: fused_over_seq; X_EFF: efficiency_paired */
enum { X_AG, X_GEMM, X_SEQ, X_FUSED, X_SEP, X_EVEN, X_COUNT, X_PAIRED = X_COUNT, X_EFF };
enum { MAXNB = 16 };

typedef struct {
  const struct bench_opts *o;
  const bench_ext_cfg_t *c;
  int W, rank, gi, nb, even_ok;
  size_t es, rb;                   /* element and gathered-row bytes */
  int64_t local, total, mo, gcols; /* this rank's extent, all, output rows, gather_out columns */
  int *cnt, *dsp;                  /* rows per rank for MPI_Allgatherv */
  void *in, *x2[MAXNB], *out[MAXNB], *ref[MAXNB], *sep[MAXNB], *gout, *gref, *gath, *cg[MAXNB];
  void *in_even, *x2_even; /* the even split's local operand */
  tpmm_tensor_t t_in, t_x2[MAXNB], t_out[MAXNB], t_sep[MAXNB], t_g, t_even;
  const tpmm_tensor_t *px2[MAXNB];
  tpmm_tensor_t *pout[MAXNB];
  tpmm_all_gather_matmul_opts_t opts;
  int64_t counts[BENCH_MAX_VALUES], even_counts[BENCH_MAX_VALUES];
  tpmm_plan_t *plan, *sep_plan[MAXNB], *even_plan;
  tpi_gemm_t *g[MAXNB];
  MPI_Datatype row;
} bx_t;

int bench_ext_wanted(const struct bench_opts *o) { return o->gather_index || o->ncounts || o->nb > 1; }

static void *zalloc(size_t bytes) { return calloc(bytes ? bytes : 1, 1); }

/* Sizes and buffers; 0 on success (collective: every rank the same answer). */
static int setup(bx_t *b, char *msg, size_t len) {
  const struct bench_opts *o = b->o;
  const bench_ext_cfg_t *c = b->c;
  b->gi = o->gather_index, b->nb = o->nb, b->es = tpmm_dtype_size((tpmm_dtype_t)c->dt);
  if (b->W > BENCH_MAX_VALUES) {
    snprintf(msg, len, "the extended modes run on at most %d ranks", BENCH_MAX_VALUES);
    return 1;
  }
  if (o->ncounts && o->ncounts != b->W) {
    snprintf(msg, len, "--counts has %d values for %d ranks", o->ncounts, b->W);
    return 1;
  }
  b->cnt = malloc(sizeof(int) * (size_t)b->W), b->dsp = malloc(sizeof(int) * (size_t)b->W);
  b->total = 0;
  for (int q = 0; q < b->W; q++) {
    b->counts[q] = o->ncounts ? o->counts[q] : b->gi ? c->k : c->m;
    b->cnt[q] = (int)b->counts[q], b->dsp[q] = (int)b->total, b->total += b->counts[q];
  }
  b->local = b->counts[b->rank];
  b->even_ok = o->ncounts && b->total % b->W == 0;
  for (int q = 0; q < b->W; q++) b->even_counts[q] = b->total / b->W;
  const int64_t k = c->k, n = c->n, m = c->m;
  b->rb = (size_t)(b->gi ? n : k) * b->es, b->mo = b->gi ? m : b->total, b->gcols = b->gi ? n : k;
  const size_t es = b->es, ins = b->gi ? (size_t)(m * b->total) : (size_t)(b->local * k);
  b->in = zalloc(ins * es), b->gath = zalloc((size_t)b->total * b->rb);
  b->gout = zalloc((size_t)b->total * b->rb), b->gref = zalloc((size_t)b->total * b->rb);
  rng_state = o->seed * 1000003u + (uint64_t)b->rank + 1;
  fill(b->in, c->dt, ins);
  for (int i = 0; i < b->nb; i++) {
    const int64_t xr = b->gi ? b->local : k;
    b->x2[i] = zalloc((size_t)(xr * n) * es);
    rng_state = o->seed * 1000003u + (uint64_t)(b->gi ? b->rank : 0) * 7 + (uint64_t)i * 977;
    fill(b->x2[i], c->dt, (size_t)(xr * n));
    b->out[i] = zalloc((size_t)(b->mo * n) * es), b->ref[i] = zalloc((size_t)(b->mo * n) * es);
    b->sep[i] = zalloc((size_t)(b->mo * n) * es), b->cg[i] = zalloc((size_t)(b->mo * n) * es);
    b->t_x2[i] = (tpmm_tensor_t){b->x2[i], (tpmm_dtype_t)c->dt, 2, {xr, n}, 0};
    b->t_out[i] = (tpmm_tensor_t){b->out[i], (tpmm_dtype_t)c->dt, 2, {b->mo, n}, 0};
    b->t_sep[i] = (tpmm_tensor_t){b->sep[i], (tpmm_dtype_t)c->dt, 2, {b->mo, n}, 0};
    b->px2[i] = &b->t_x2[i], b->pout[i] = &b->t_out[i];
  }
  b->t_in = b->gi ? (tpmm_tensor_t){b->in, (tpmm_dtype_t)c->dt, 2, {m, b->total}, 0}
                  : (tpmm_tensor_t){b->in, (tpmm_dtype_t)c->dt, 2, {b->local, k}, 0};
  b->t_g = (tpmm_tensor_t){b->gout, (tpmm_dtype_t)c->dt, 2, {b->total, b->gcols}, 0};
  if (b->even_ok) { /* the even split: input rows (gi 0) or x2 rows (gi 1) of total / W */
    const int64_t e = b->total / b->W, sz = e * (b->gi ? n : k);
    void *p = zalloc((size_t)sz * es);
    rng_state = o->seed * 31 + (uint64_t)b->rank;
    fill(p, c->dt, (size_t)sz);
    *(b->gi ? &b->x2_even : &b->in_even) = p;
    b->t_even = (tpmm_tensor_t){p, (tpmm_dtype_t)c->dt, 2, {e, b->gi ? n : k}, 0};
  }
  b->opts = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  b->opts.gather_index = b->gi, b->opts.comm_turn = c->comm_turn;
  MPI_Type_contiguous((int)b->rb, MPI_BYTE, &b->row);
  MPI_Type_commit(&b->row);
  int ok = b->in && b->gath && b->gout && b->gref;
  for (int i = 0; i < b->nb; i++) ok &= b->x2[i] && b->out[i] && b->ref[i] && b->sep[i] && b->cg[i];
  if (!all_ok(ok)) snprintf(msg, len, "out of memory on some rank");
  return !all_ok(ok);
}

static void teardown(bx_t *b) {
  tpmm_plan_destroy(b->plan), tpmm_plan_destroy(b->even_plan);
  for (int i = 0; i < b->nb; i++) {
    tpmm_plan_destroy(b->sep_plan[i]);
    if (!b->o->plan) tpi_gemm_destroy(b->g[i]);
    free(b->x2[i]), free(b->out[i]), free(b->ref[i]), free(b->sep[i]), free(b->cg[i]);
  }
  if (b->row != MPI_DATATYPE_NULL) MPI_Type_free(&b->row);
  free(b->cnt), free(b->dsp), free(b->in), free(b->gath), free(b->gout), free(b->gref);
  free(b->in_even), free(b->x2_even);
}

/* The operation under test: fused (which = X_FUSED) into out[] / gather_out,
 * or the even split (X_EVEN) into the same buffers. */
static tpmm_status_t op(bx_t *b, int which) {
  const char *G = TPMM_WORLD_COMM_GROUP;
  if (which == X_EVEN) {
    const tpmm_tensor_t *x2 = b->gi ? &b->t_even : b->px2[0], *in = b->gi ? &b->t_in : &b->t_even;
    if (b->even_plan) return tpmm_plan_execute(b->even_plan, in, b->pout[0], &b->t_g);
    return tpmm_all_gather_matmul(in, x2, G, b->W, &b->opts, b->pout[0], &b->t_g);
  }
  if (b->plan)
    return b->nb > 1 ? tpmm_plan_execute_multi(b->plan, &b->t_in, b->pout, &b->t_g)
                     : tpmm_plan_execute(b->plan, &b->t_in, b->pout[0], &b->t_g);
  if (b->nb > 1)
    return tpmm_all_gather_matmul_multi(&b->t_in, b->nb, b->px2, NULL, G, b->W, &b->opts, b->pout, &b->t_g);
  if (b->o->ncounts)
    return tpmm_all_gather_matmul_v(&b->t_in, b->px2[0], G, b->W, b->counts, &b->opts, b->pout[0], &b->t_g);
  return tpmm_all_gather_matmul(&b->t_in, b->px2[0], G, b->W, &b->opts, b->pout[0], &b->t_g);
}

/* The nb separate single-weight calls (plans), into sep[]. */
static tpmm_status_t separate(bx_t *b) {
  tpmm_status_t st = TPMM_SUCCESS;
  for (int i = 0; i < b->nb && st == TPMM_SUCCESS; i++)
    st = b->sep_plan[i] ? tpmm_plan_execute(b->sep_plan[i], &b->t_in, &b->t_sep[i], &b->t_g)
                        : tpmm_all_gather_matmul(&b->t_in, b->px2[i], TPMM_WORLD_COMM_GROUP, b->W, &b->opts,
                                                 &b->t_sep[i], &b->t_g);
  return st;
}

/* Whether every plan's tuner has decided. */
static int all_tuned(const bx_t *b) {
  int tuned = tpi_plan_tuned(b->plan) && tpi_plan_tuned(b->even_plan);
  for (int i = 0; i < b->nb && b->nb > 1; i++) tuned &= tpi_plan_tuned(b->sep_plan[i]);
  return tuned;
}

/* Plans (and their tuners settled), or the standalone GEMMs' x2. */
static tpmm_status_t prepare(bx_t *b) {
  const char *G = TPMM_WORLD_COMM_GROUP;
  tpmm_status_t st = TPMM_SUCCESS;
  if (b->o->plan) {
    if (b->nb > 1)
      st = tpmm_all_gather_matmul_multi_plan_create(&b->t_in, b->nb, b->px2, NULL, G, b->W, &b->opts, b->pout, &b->t_g,
                                                    &b->plan);
    else if (b->o->ncounts)
      st = tpmm_all_gather_matmul_v_plan_create(&b->t_in, b->px2[0], G, b->W, b->counts, &b->opts, b->pout[0], &b->t_g,
                                                &b->plan);
    else
      st = tpmm_all_gather_matmul_plan_create(&b->t_in, b->px2[0], G, b->W, &b->opts, b->pout[0], &b->t_g, &b->plan);
    for (int i = 0; i < b->nb && b->nb > 1 && st == TPMM_SUCCESS; i++)
      st = tpmm_all_gather_matmul_plan_create(&b->t_in, b->px2[i], G, b->W, &b->opts, &b->t_sep[i], &b->t_g,
                                              &b->sep_plan[i]);
    if (b->even_ok && st == TPMM_SUCCESS)
      st = tpmm_all_gather_matmul_plan_create(b->gi ? &b->t_in : &b->t_even, b->gi ? &b->t_even : b->px2[0], G, b->W,
                                              &b->opts, b->pout[0], &b->t_g, &b->even_plan);
    for (int i = 0; !all_tuned(b) && i < TPI_TUNE_CALLS_MAX && st == TPMM_SUCCESS; i++) {
      st = op(b, X_FUSED);
      if (st == TPMM_SUCCESS && b->nb > 1) st = separate(b);
      if (st == TPMM_SUCCESS && b->even_ok) st = op(b, X_EVEN);
    }
  }
  if (b->gi || st != TPMM_SUCCESS) return st;
  int ok = 1; /* gather_index 0: the standalone GEMM on the plan's x2, or one prepared alike */
  for (int i = 0; i < b->nb; i++) {
    if (b->plan) {
      b->g[i] = tpi_plan_gemm_w(b->plan, i);
    } else {
      tpi_mat_t x = {(char *)b->x2[i], b->c->k, b->c->n, b->c->n, 1};
      ok &= tpi_gemm_create(&b->g[i], (tpmm_dtype_t)b->c->dt, &x, NULL, TPMM_FLOAT32, b->total, b->total, b->total) ==
            TPMM_SUCCESS;
    }
  }
  return all_ok(ok) ? TPMM_SUCCESS : TPMM_ERR_INTERNAL;
}

/* What a user writes: MPI_Allgather of bytes for equal shards, MPI_Allgatherv
 * otherwise (rows as a datatype only past INT_MAX bytes), as tpmm's unfused. */
static int allgather(bx_t *b) {
  const void *mine = b->gi ? b->x2[0] : b->in;
  int even = 1;
  for (int q = 1; q < b->W; q++) even &= b->cnt[q] == b->cnt[0];
  if ((double)b->total * (double)b->rb > 2147483647.0)
    return MPI_Allgatherv(mine, b->cnt[b->rank], b->row, b->gath, b->cnt, b->dsp, b->row, MPI_COMM_WORLD);
  const int bytes = (int)((size_t)b->local * b->rb);
  if (even) return MPI_Allgather(mine, bytes, MPI_BYTE, b->gath, bytes, MPI_BYTE, MPI_COMM_WORLD);
  int cnt[BENCH_MAX_VALUES], dsp[BENCH_MAX_VALUES];
  for (int q = 0; q < b->W; q++) cnt[q] = (int)((size_t)b->cnt[q] * b->rb), dsp[q] = (int)((size_t)b->dsp[q] * b->rb);
  return MPI_Allgatherv(mine, bytes, MPI_BYTE, b->gath, cnt, dsp, MPI_BYTE, MPI_COMM_WORLD);
}

/* The standalone GEMM on the gathered rows; 0 on success. */
static int gemm(bx_t *b) {
  const bench_ext_cfg_t *c = b->c;
  if (!b->gi) {
    int bad = 0;
    for (int i = 0; i < b->nb; i++) bad |= tpi_gemm_run(b->g[i], b->total, b->gath, c->k, b->cg[i], c->n) != 0;
    return bad;
  }
  tpi_gemm_t *g = NULL;
  tpi_mat_t x = {(char *)b->gath, b->total, c->n, c->n, 1};
  int bad = tpi_gemm_create(&g, (tpmm_dtype_t)c->dt, &x, NULL, TPMM_FLOAT32, c->m, c->m, c->m) != TPMM_SUCCESS;
  if (!bad) bad = tpi_gemm_run(g, c->m, b->in, b->total, b->cg[0], c->n) != TPMM_SUCCESS;
  tpi_gemm_destroy(g);
  return bad;
}

/* The interleaved iterations; t[0..X_COUNT) medians of the slowest rank
 * (NAN: not measured), t[X_PAIRED] and t[X_EFF] per-iteration medians. 0 on
 * success. */
static int measure(bx_t *b, double t[X_COUNT + 2], char *msg, size_t len) {
  const int iters = b->o->iters, total = b->o->warmup + iters;
  double *times = calloc((size_t)(X_COUNT * iters), sizeof(double)), *tmax = calloc((size_t)(X_COUNT * iters), 8);
  int local_bad = 0, ret = 1;
  for (int it = 0; it < total && !local_bad; it++) {
    for (int j = 0; j < X_COUNT; j++) {
      const int which = (j + it) % X_COUNT;
      if ((which == X_SEP && b->nb < 2) || (which == X_EVEN && !b->even_ok)) continue;
      MPI_Barrier(MPI_COMM_WORLD);
      const double s = MPI_Wtime();
      tpmm_status_t st = TPMM_SUCCESS;
      switch (which) {
        case X_AG: allgather(b); break;
        case X_GEMM: local_bad |= gemm(b); break;
        case X_SEQ: allgather(b), local_bad |= gemm(b); break;
        case X_FUSED: st = op(b, X_FUSED); break;
        case X_SEP: st = separate(b); break;
        default: st = op(b, X_EVEN);
      }
      const double e = MPI_Wtime() - s;
      if (st != TPMM_SUCCESS) { /* agreed: every rank stops here */
        snprintf(msg, len, "%s: %s", tpmm_status_string(st), tpmm_last_error());
        goto done;
      }
      if (it >= b->o->warmup) times[which * iters + it - b->o->warmup] = e;
    }
    local_bad = !all_ok(!local_bad);
  }
  if (local_bad) {
    snprintf(msg, len, "the standalone GEMM failed on some rank");
    goto done;
  }
  MPI_Allreduce(times, tmax, X_COUNT * iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  t[X_PAIRED] = median_ratio(tmax + X_FUSED * iters, tmax + X_SEQ * iters, iters);
  t[X_EFF] = median_efficiency(tmax + X_SEQ * iters, tmax + X_FUSED * iters, tmax + X_AG * iters, tmax + X_GEMM * iters,
                               iters);
  for (int j = 0; j < X_COUNT; j++) t[j] = median(tmax + j * iters, iters);
  if (b->nb < 2) t[X_SEP] = NAN;
  if (!b->even_ok) t[X_EVEN] = NAN;
  ret = 0;
done:
  free(times), free(tmax);
  return ret;
}

/* Differing elements, summed over ranks: fused vs unfused (outputs and
 * gather_out), separate calls vs multi. */
static void compare(bx_t *b, long long diff[2]) {
  long long loc[2] = {0, 0};
  const size_t on = (size_t)(b->mo * b->c->n);
  for (int i = 0; i < b->nb; i++) {
    loc[0] += count_diff(b->out[i], b->ref[i], on, b->es);
    if (b->nb > 1) loc[1] += count_diff(b->sep[i], b->out[i], on, b->es);
  }
  loc[0] += count_diff(b->gout, b->gref, (size_t)b->total * b->rb / b->es, b->es);
  MPI_Allreduce(loc, diff, 2, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
}

static void print(const bx_t *b, const double t[X_COUNT + 2], const long long diff[2], double peak, int *header) {
  const bench_ext_cfg_t *c = b->c;
  const double flop = 2.0 * (double)b->mo * (double)(b->gi ? b->total : c->k) * (double)c->n * b->nb;
  const double lo = fmin(t[X_AG], t[X_GEMM]), eff = lo > 0 ? (t[X_SEQ] - t[X_FUSED]) / lo : NAN;
  const double sep = t[X_FUSED] / t[X_SEP], even = t[X_FUSED] / t[X_EVEN];
  const double gf = flop / t[X_FUSED] * 1e-9, pct = peak > 0 ? 100 * gf / peak : NAN;
  char counts[256] = "", *p = counts;
  for (int q = 0; q < b->W && b->o->ncounts && p < counts + sizeof counts - 24; q++)
    p += snprintf(p, 24, "%s%lld", q ? "," : "", (long long)b->counts[q]);
  int algo = -1, chunks = 0, thread = 0;
  tpi_plan_schedule(b->plan, &algo, &chunks, &thread);
  if (b->o->json) {
    printf("{\"m\":%lld,\"k\":%lld,\"n\":%lld,\"dtype\":\"%s\",\"world_size\":%d,\"algo\":\"%s\",\"comm_turn\":%d,",
           (long long)c->m, (long long)c->k, (long long)c->n, tpmm_bench_dtype_name(c->dt), b->W,
           tpmm_bench_algo_name(c->algo), c->comm_turn);
    printf("\"gather_index\":%d,\"nb\":%d,\"counts\":\"%s\",\"plan\":%s,\"iters\":%d,\"mpi\":\"%s\",", b->gi, b->nb,
           counts, b->o->plan ? "true" : "false", b->o->iters, mpi_name());
    if (algo >= 0) printf("\"algo_run\":\"%s\",\"chunks_run\":%d,", tpmm_algo_name((tpmm_algo_t)algo), chunks);
    jnum("loadavg", loadavg(), 0), jnum("t_ag_ms", t[X_AG] * 1e3, 0), jnum("t_gemm_ms", t[X_GEMM] * 1e3, 0);
    jnum("t_seq_ms", t[X_SEQ] * 1e3, 0), jnum("t_fused_ms", t[X_FUSED] * 1e3, 0);
    jnum("fused_over_seq", t[X_PAIRED], 0);
    jnum("t_sep_ms", t[X_SEP] * 1e3, 0), jnum("t_even_ms", t[X_EVEN] * 1e3, 0), jnum("efficiency", eff, 0);
    jnum("efficiency_paired", t[X_EFF], 0);
    jnum("sep_ratio", sep, 0), jnum("even_ratio", even, 0), jnum("gflops", gf, 0), jnum("pct_peak", pct, 0);
    printf("\"bitwise_equal\":%s,\"sep_equal\":%s}\n", diff[0] ? "false" : "true",
           b->nb < 2 ? "null"
           : diff[1] ? "false"
                     : "true");
  } else {
    if (!*header)
      printf("%6s %6s %6s %5s %3s %2s %2s %-10s %3s | %9s %9s %9s %9s %9s %9s | %6s %6s %6s | %s\n", "m", "k", "n",
             "dtype", "W", "gi", "nb", "algo", "ct", "T_AG ms", "T_GEMM ms", "T_seq ms", "T_fusedms", "T_sep ms",
             "T_even ms", "E", "sep", "even", "bitwise / counts");
    *header = 1;
    printf(
        "%6lld %6lld %6lld %5s %3d %2d %2d %-10s %3d | %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f | %6.2f %6.3f %6.3f | %s%s "
        "%s\n",
        (long long)c->m, (long long)c->k, (long long)c->n, tpmm_bench_dtype_name(c->dt), b->W, b->gi, b->nb,
        tpmm_bench_algo_name(c->algo), c->comm_turn, t[X_AG] * 1e3, t[X_GEMM] * 1e3, t[X_SEQ] * 1e3, t[X_FUSED] * 1e3,
        t[X_SEP] * 1e3, t[X_EVEN] * 1e3, eff, sep, even, diff[0] ? "NO" : "yes",
        b->nb > 1 && diff[1] ? " (separate calls differ!)" : "", counts);
  }
  fflush(stdout);
}

int bench_ext_run(const struct bench_opts *o, const bench_ext_cfg_t *c, double peak, int *header_done) {
  bx_t b;
  memset(&b, 0, sizeof b);
  b.o = o, b.c = c, b.row = MPI_DATATYPE_NULL;
  MPI_Comm_rank(MPI_COMM_WORLD, &b.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &b.W);
  char msg[512] = "";
  int ret = 1;
  double t[X_COUNT + 2];
  long long diff[2] = {0, 0};
  if (setup(&b, msg, sizeof msg)) goto done;
  if (o->check) { /* the reference: the unfused algorithm, once */
    tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
    tpmm_status_t st = op(&b, X_FUSED);
    for (int i = 0; i < b.nb; i++) memcpy(b.ref[i], b.out[i], (size_t)(b.mo * c->n) * b.es);
    memcpy(b.gref, b.gout, (size_t)b.total * b.rb);
    if (st != TPMM_SUCCESS) {
      snprintf(msg, sizeof msg, "unfused reference: %s", tpmm_last_error());
      goto done;
    }
  }
  tpmm_set_param(TPMM_PARAM_ALGO, c->algo);
  tpmm_status_t st = prepare(&b);
  if (st != TPMM_SUCCESS) {
    snprintf(msg, sizeof msg, "preparing: %s: %s", tpmm_status_string(st), tpmm_last_error());
    goto done;
  }
  allgather(&b); /* real rows before the first standalone GEMM */
  if (measure(&b, t, msg, sizeof msg)) goto done;
  if (b.even_ok) op(&b, X_FUSED); /* the fused outputs last, for the comparison */
  if (o->check) compare(&b, diff);
  if (b.rank == 0) print(&b, t, diff, peak, header_done);
  ret = o->check && (diff[0] || diff[1]);
done:
  if (ret && msg[0] && b.rank == 0) fprintf(stderr, "tpmm-bench: skipped: %s\n", msg);
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
  teardown(&b);
  return ret;
}
