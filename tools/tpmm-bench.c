/*
 * tpmm-bench.c — is the fused all_gather_matmul worth it? Measured side by
 * side in one run, because absolute times on a shared machine drift.
 *
 *   mpirun -n W tpmm-bench --m M --k K --n N [--dtype bf16|fp16|fp32] [--algo A]
 *                          [--comm-turn N] [--plan] [--iters I] [--warmup J] [--json]
 *
 * Four measurements per configuration, interleaved within every iteration
 * (the order rotates from one iteration to the next so that none always runs
 * right after another's cache or network state), each preceded by an
 * MPI_Barrier and timed on every rank:
 *   T_AG     MPI_Allgather of the m x k shards alone
 *   T_GEMM   (m*W x k) @ (k x n) alone with tpmm's own GEMM backend (the same
 *            prepared x2 as T_seq, in the layout the fused path uses: with
 *            --plan the plan's own packed copy, so all three read one x2 and
 *            none finds a different copy in cache; for one-shot calls a copy
 *            in place unless m*W rows repay the reorder (TPI_PACK_MIN_ROWS);
 *            preparation is not timed)
 *   T_seq    MPI_Allgather, then that GEMM: what a user writes in ten lines
 *   T_fused  tpmm_all_gather_matmul with the chosen algorithm, or
 *            tpmm_plan_execute on a plan made once (--plan)
 * A time is the slowest rank's time of an iteration (the operation is done
 * when its last rank is), and the reported value is the median over
 * iterations. From those:
 *   E       = (T_seq - T_fused) / min(T_AG, T_GEMM)   1 = communication fully hidden
 *   exposed = T_fused - T_GEMM                           communication not hidden
 *   fused_over_seq = the median of T_fused / T_seq within each iteration
 *   GFLOP/s = 2 m W k n / T, and its % of the measured single-core peak.
 * Correctness: before timing, the operation runs once with TPMM_ALGO=unfused;
 * the fused output and gather_out of the last timed iteration must equal it
 * byte for byte (and the GEMM of T_GEMM must equal it too).
 *
 * Peak: one standalone GEMM of 512 x 4096 x 4096 through the same backend
 * selection (oneDNN unless TPMM_GEMM says otherwise), on rank 0 while the
 * other ranks sleep; best of 10 (a busy machine only ever lowers a run). bf16 uses the bf16 peak; fp16 and fp32 use
 * the fp32 one (fp16 is computed by widening to fp32 on these CPUs).
 *
 * --plan times tpmm_plan_execute on a plan created once (x2 packed), the way
 * a layer called every step would use tpmm. The plan is first executed until
 * its autotuner has settled (tpi_plan_tuned: 2 warm-ups and 3 pairs, 5 where one contradicts a replacement or where
 * the prior keeps out a runner-up that won all three, spaced out where the runner-up is slower), so the timed
 * iterations see the steady state a layer sees after a few steps.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_ext.h"
#include "bench_predict.h"
#include "benchopts.h"
#include "benchutil.h"
#include "src/common/half.h"
#include "src/gemm/gemm.h"
#include "src/pipeline/pipeline.h"
#include "tpmm.h"

enum { T_AG, T_GEMM, T_SEQ, T_FUSED, T_COUNT };

static int rank, W;

typedef struct {
  double t[T_COUNT];                    /* medians, seconds */
  double paired;                        /* median over iterations of T_fused / T_seq of the same iteration */
  double eff_paired;                    /* median over iterations of each iteration's efficiency */
  double t_prepare;                     /* tpi_gemm_create (x2 packing if any), seconds, max over ranks */
  double t_plan;                        /* plan creation, seconds, max over ranks (--plan) */
  int x2_packed;                        /* the standalone GEMM uses x2 in the backend's packed layout */
  int run_algo, run_chunks, run_thread; /* the plan's settled schedule (--plan), algo -1 if unknown */
  int checked;                          /* bitwise comparison done */
  int fused_equal, gather_equal, gemm_equal;
  long long fused_diff;  /* differing output elements, summed over ranks */
  tpi_prediction_t pred; /* --predict: the cost model's (rank 0) */
  /* --predict, paired: median over iterations of predicted / measured, the
   * model calibrated again before each iteration (rank 0) */
  double pred_paired_seq, pred_paired_fused;
} result_t;

/* ---- small helpers ------------------------------------------------------ */

/* Wait for the root's broadcast without spinning: the other ranks must not
 * steal the core the root is measuring on (MPICH's blocking calls busy-poll). */
static void lazy_bcast_double(double *v) {
  MPI_Request rq;
  int done = 0;
  MPI_Ibcast(v, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD, &rq);
  while (!done) {
    MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
    if (!done && rank != 0) nanosleep(&(struct timespec){0, 2000000}, NULL);
  }
}

/* ---- peak ---------------------------------------------------------------- */

/* Best GFLOP/s of a standalone 512 x 4096 x 4096 GEMM of compute dtype dt on
 * rank 0; 0 on failure. Collective (others sleep in lazy_bcast_double). */
static double measure_peak(int dt, char *backend, size_t backend_len) {
  const int64_t M = 512, K = 4096, N = 4096;
  double best = 0;
  snprintf(backend, backend_len, "?");
  if (rank == 0) {
    size_t es = tpmm_dtype_size((tpmm_dtype_t)dt);
    void *a = xmalloc((size_t)(M * K) * es), *b = xmalloc((size_t)(K * N) * es), *c = xmalloc((size_t)(M * N) * es);
    tpi_gemm_t *g = NULL;
    if (a && b && c) {
      rng_state = 12345;
      fill(a, dt, (size_t)(M * K));
      fill(b, dt, (size_t)(K * N));
      tpi_mat_t bm = {(char *)b, K, N, N, 1};
      if (tpi_gemm_create(&g, (tpmm_dtype_t)dt, &bm, NULL, TPMM_FLOAT32, M, M, INT64_MAX) == TPMM_SUCCESS) {
        snprintf(backend, backend_len, "%s", g->be->name);
        for (int it = 0; it < 11; it++) {
          double t0 = MPI_Wtime();
          if (tpi_gemm_run(g, M, a, K, c, N) != TPMM_SUCCESS) {
            best = 0;
            break;
          }
          double gf = 2.0 * M * K * N / (MPI_Wtime() - t0) * 1e-9;
          if (it > 0 && gf > best) best = gf; /* the first run warms up */
        }
      }
    }
    tpi_gemm_destroy(g);
    free(a), free(b), free(c);
  }
  lazy_bcast_double(&best);
  return best;
}

/* ---- one configuration ----------------------------------------------------- */

typedef struct {
  int64_t m, k, n;
  int dt, algo, comm_turn;
} config_t;

/* The schedule a --predict line is about: the plan's settled one, a forced
 * one, or auto's pick (algo), and its chunk count (0: the model's own). */
static void ran(const config_t *c, const result_t *r, int *algo, int *chunks) {
  *algo = r->run_algo >= 0 ? r->run_algo : c->algo ? c->algo : r->pred.algo;
  *chunks = r->run_algo >= 0 ? r->run_chunks : c->comm_turn;
}

/* Runs the configuration; returns 0 on success, else 1 with msg (collective:
 * every rank returns the same value). */
static int run_config(const struct bench_opts *o, const config_t *c, result_t *r, char *msg, size_t msglen) {
  const int64_t m = c->m, k = c->k, n = c->n, mW = c->m * W;
  const size_t es = tpmm_dtype_size((tpmm_dtype_t)c->dt);
  const int iters = o->iters, total = o->warmup + o->iters;
  int ret = 1;
  memset(r, 0, sizeof *r);
  msg[0] = '\0';

  void *in = xmalloc((size_t)(m * k) * es), *x2 = xmalloc((size_t)(k * n) * es);
  void *gath = xmalloc((size_t)(mW * k) * es), *cg = xmalloc((size_t)(mW * n) * es);
  void *out = xmalloc((size_t)(mW * n) * es), *gout = xmalloc((size_t)(mW * k) * es);
  void *out_ref = o->check ? xmalloc((size_t)(mW * n) * es) : NULL;
  void *gout_ref = o->check ? xmalloc((size_t)(mW * k) * es) : NULL;
  double *times = xmalloc(sizeof(double) * T_COUNT * (size_t)iters);
  double *tmax = xmalloc(sizeof(double) * T_COUNT * (size_t)iters);
  /* with a plan only: a one-shot call would recalibrate inside T_fused once the cache was emptied */
  tpi_prediction_t *preds = o->predict && o->plan ? xmalloc(sizeof *preds * (size_t)iters) : NULL;
  r->pred_paired_seq = r->pred_paired_fused = NAN;
  tpi_gemm_t *g = NULL;
  tpmm_plan_t *plan = NULL;
  MPI_Datatype row = MPI_DATATYPE_NULL;
  int ok = in && x2 && gath && cg && out && gout && times && tmax && (!o->check || (out_ref && gout_ref)) &&
           (!o->predict || !o->plan || preds);
  if (!all_ok(ok)) {
    snprintf(msg, msglen, "out of memory on some rank");
    goto done;
  }

  /* Inputs: this rank's shard, and x2 identical on every rank (same seed). */
  rng_state = o->seed * 1000003u + (uint64_t)rank + 1;
  fill(in, c->dt, (size_t)(m * k));
  rng_state = o->seed * 1000003u;
  fill(x2, c->dt, (size_t)(k * n));
  memset(out, 0xff, (size_t)(mW * n) * es); /* NaN in every dtype: a skipped write shows */
  memset(gout, 0xff, (size_t)(mW * k) * es);
  MPI_Type_contiguous((int)(k * (int64_t)es), MPI_BYTE, &row);
  MPI_Type_commit(&row);

  tpmm_tensor_t t_in = {in, (tpmm_dtype_t)c->dt, 2, {m, k}, 0};
  tpmm_tensor_t t_x2 = {x2, (tpmm_dtype_t)c->dt, 2, {k, n}, 0};
  tpmm_tensor_t t_out = {out, (tpmm_dtype_t)c->dt, 2, {mW, n}, 0};
  tpmm_tensor_t t_gout = {gout, (tpmm_dtype_t)c->dt, 2, {mW, k}, 0};
  tpmm_tensor_t t_oref = {out_ref, (tpmm_dtype_t)c->dt, 2, {mW, n}, 0};
  tpmm_tensor_t t_gref = {gout_ref, (tpmm_dtype_t)c->dt, 2, {mW, k}, 0};
  tpmm_all_gather_matmul_opts_t opts = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  opts.comm_turn = c->comm_turn;
  tpmm_status_t st;

  /* The reference: the unfused algorithm, once (tpmm returns the same status on every rank). */
  if (o->check) {
    tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
    memset(out_ref, 0xff, (size_t)(mW * n) * es);
    st = tpmm_all_gather_matmul(&t_in, &t_x2, TPMM_WORLD_COMM_GROUP, W, &opts, &t_oref, &t_gref);
    if (st != TPMM_SUCCESS) {
      snprintf(msg, msglen, "unfused reference: %s: %s", tpmm_status_string(st), tpmm_last_error());
      goto done;
    }
  }
  if ((st = tpmm_set_param(TPMM_PARAM_ALGO, c->algo)) != TPMM_SUCCESS) {
    snprintf(msg, msglen, "tpmm_set_param(ALGO): %s", tpmm_last_error());
    goto done; /* the value comes from argv: the same on every rank */
  }

  /* The standalone GEMM, prepared once (local: agree on success afterwards). */
  double t0 = MPI_Wtime();
  tpi_mat_t x2m = {(char *)x2, k, n, n, 1};
  /* x2's layout as the fused path has it: a plan packs x2 (it is reused for
   * ever); a one-shot call packs only when its own rows repay the reorder. */
  st = tpi_gemm_create(&g, (tpmm_dtype_t)c->dt, &x2m, NULL, TPMM_FLOAT32, mW, mW, o->plan ? INT64_MAX : mW);
  r->x2_packed = st == TPMM_SUCCESS && g->pack;
  r->t_prepare = MPI_Wtime() - t0;
  if (!all_ok(st == TPMM_SUCCESS)) {
    snprintf(msg, msglen, "tpi_gemm_create failed on some rank%s%s", st ? ": " : "", st ? tpmm_last_error() : "");
    goto done;
  }
  r->t_prepare = max_all(r->t_prepare);

  if (o->plan) {
    t0 = MPI_Wtime();
    st = tpmm_all_gather_matmul_plan_create(&t_in, &t_x2, TPMM_WORLD_COMM_GROUP, W, &opts, &t_out, &t_gout, &plan);
    r->t_plan = max_all(MPI_Wtime() - t0);
    if (st != TPMM_SUCCESS) {
      snprintf(msg, msglen, "plan_create: %s: %s", tpmm_status_string(st), tpmm_last_error());
      goto done;
    }
  }
  /* let the plan's autotuner settle (it warms and times its two candidates) */
  for (int i = 0; plan && !tpi_plan_tuned(plan) && i < TPI_TUNE_CALLS_MAX; i++) {
    st = tpmm_plan_execute(plan, &t_in, &t_out, &t_gout);
    if (st != TPMM_SUCCESS) {
      snprintf(msg, msglen, "tpmm_plan_execute: %s: %s", tpmm_status_string(st), tpmm_last_error());
      goto done;
    }
  }
  /* with a plan, T_GEMM and T_seq run on the plan's packed x2 itself */
  tpi_gemm_t *gx = plan ? tpi_plan_gemm(plan) : g;

  /* gath must hold real rows before the first standalone GEMM */
  MPI_Allgather(in, (int)m, row, gath, (int)m, row, MPI_COMM_WORLD);

  int local_bad = 0; /* a local GEMM failure must not desynchronise the barriers */
  for (int it = 0; it < total && !local_bad; it++) {
    /* the model's inputs measured beside this iteration's times: this
     * machine's GEMM speed moves by 2x within seconds (bench/RESULTS.md §22) */
    if (preds && it >= o->warmup &&
        (st = bench_predict(plan, &t_in, &t_x2, &opts, &t_out, &t_gout, W, &preds[it - o->warmup])) != TPMM_SUCCESS) {
      snprintf(msg, msglen, "--predict: %s: %s", tpmm_status_string(st), tpmm_last_error());
      goto done;
    }
    for (int j = 0; j < T_COUNT; j++) {
      int which = (j + it) % T_COUNT;
      MPI_Barrier(MPI_COMM_WORLD);
      double s = MPI_Wtime();
      switch (which) {
        case T_AG: MPI_Allgather(in, (int)m, row, gath, (int)m, row, MPI_COMM_WORLD); break;
        case T_GEMM: local_bad |= tpi_gemm_run(gx, mW, gath, k, cg, n) != TPMM_SUCCESS; break;
        case T_SEQ:
          MPI_Allgather(in, (int)m, row, gath, (int)m, row, MPI_COMM_WORLD);
          local_bad |= tpi_gemm_run(gx, mW, gath, k, cg, n) != TPMM_SUCCESS;
          break;
        case T_FUSED:
          if (plan)
            st = tpmm_plan_execute(plan, &t_in, &t_out, &t_gout);
          else
            st = tpmm_all_gather_matmul(&t_in, &t_x2, TPMM_WORLD_COMM_GROUP, W, &opts, &t_out, &t_gout);
          break;
      }
      double e = MPI_Wtime() - s;
      if (which == T_FUSED && st != TPMM_SUCCESS) {
        /* tpmm's agreement makes this rank-consistent; stop all ranks together */
        snprintf(msg, msglen, "%s: %s: %s", o->plan ? "tpmm_plan_execute" : "tpmm_all_gather_matmul",
                 tpmm_status_string(st), tpmm_last_error());
        goto done;
      }
      if (it >= o->warmup) times[which * iters + (it - o->warmup)] = e;
    }
    local_bad = !all_ok(!local_bad);
  }
  if (local_bad) {
    snprintf(msg, msglen, "tpi_gemm_run failed on some rank");
    goto done;
  }

  tpi_plan_schedule(plan, &r->run_algo, &r->run_chunks, &r->run_thread);
  MPI_Allreduce(times, tmax, T_COUNT * iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  r->paired = median_ratio(tmax + T_FUSED * iters, tmax + T_SEQ * iters, iters);
  r->eff_paired = median_efficiency(tmax + T_SEQ * iters, tmax + T_FUSED * iters, tmax + T_AG * iters,
                                    tmax + T_GEMM * iters, iters);
  for (int j = 0; j < T_COUNT; j++) r->t[j] = median(tmax + j * iters, iters);

  if (o->predict && (st = bench_predict(plan, &t_in, &t_x2, &opts, &t_out, &t_gout, W, &r->pred)) != TPMM_SUCCESS) {
    snprintf(msg, msglen, "--predict: %s: %s", tpmm_status_string(st), tpmm_last_error());
    goto done;
  }
  if (preds && rank == 0) {
    int algo, chunks;
    ran(c, r, &algo, &chunks);
    double *ps = xmalloc(sizeof(double) * 2 * (size_t)iters), *pf = ps + iters;
    for (int i = 0; ps && i < iters; i++) ps[i] = preds[i].t_seq, pf[i] = bench_predict_ran(&preds[i], algo, chunks);
    r->pred_paired_seq = ps ? median_ratio(ps, tmax + T_SEQ * iters, iters) : NAN;
    r->pred_paired_fused = ps ? median_ratio(pf, tmax + T_FUSED * iters, iters) : NAN;
    free(ps);
  }

  if (o->check) {
    long long d_out = count_diff(out, out_ref, (size_t)(mW * n), es);
    long long d_gout = count_diff(gout, gout_ref, (size_t)(mW * k), es);
    long long d_gemm = count_diff(cg, out_ref, (size_t)(mW * n), es);
    long long d_gath = count_diff(gath, gout_ref, (size_t)(mW * k), es);
    long long loc[4] = {d_out, d_gout, d_gemm, d_gath}, sum[4];
    MPI_Allreduce(loc, sum, 4, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    r->checked = 1;
    r->fused_equal = sum[0] == 0 && sum[1] == 0;
    r->fused_diff = sum[0] + sum[1];
    r->gemm_equal = sum[2] == 0;
    r->gather_equal = sum[3] == 0;
  }
  ret = 0;

done:
  tpmm_plan_destroy(plan);
  tpi_gemm_destroy(g);
  if (row != MPI_DATATYPE_NULL) MPI_Type_free(&row);
  free(in), free(x2), free(gath), free(cg), free(out), free(gout), free(out_ref), free(gout_ref);
  free(times), free(tmax), free(preds);
  return ret;
}

/* ---- printing -------------------------------------------------------------- */

static void print_result(const struct bench_opts *o, const config_t *c, const result_t *r, double peak,
                         int *header_done) {
  const double flop = 2.0 * (double)c->m * W * (double)c->k * (double)c->n;
  const double ms[T_COUNT] = {r->t[0] * 1e3, r->t[1] * 1e3, r->t[2] * 1e3, r->t[3] * 1e3};
  const double lo = fmin(r->t[T_AG], r->t[T_GEMM]);
  const double eff = lo > 0 ? (r->t[T_SEQ] - r->t[T_FUSED]) / lo : NAN;
  const double gf = r->t[T_FUSED] > 0 ? flop / r->t[T_FUSED] * 1e-9 : NAN;
  const double gf_gemm = r->t[T_GEMM] > 0 ? flop / r->t[T_GEMM] * 1e-9 : NAN;
  const double pct = peak > 0 ? 100.0 * gf / peak : NAN, pct_gemm = peak > 0 ? 100.0 * gf_gemm / peak : NAN;
  const char *dt = tpmm_bench_dtype_name(c->dt), *algo = tpmm_bench_algo_name(c->algo);
  const char *eq = !r->checked ? "-" : r->fused_equal ? "yes" : "NO";

  if (o->json) {
    printf("{\"m\":%lld,\"k\":%lld,\"n\":%lld,\"dtype\":\"%s\",\"world_size\":%d,\"algo\":\"%s\",\"comm_turn\":%d,",
           (long long)c->m, (long long)c->k, (long long)c->n, dt, W, algo, c->comm_turn);
    printf("\"plan\":%s,\"iters\":%d,\"warmup\":%d,\"mpi\":\"%s\",", o->plan ? "true" : "false", o->iters, o->warmup,
           mpi_name());
    jnum("loadavg", loadavg(), 0);
    jnum("t_ag_ms", ms[T_AG], 0);
    jnum("t_gemm_ms", ms[T_GEMM], 0);
    jnum("t_seq_ms", ms[T_SEQ], 0);
    jnum("t_fused_ms", ms[T_FUSED], 0);
    jnum("fused_over_seq", r->paired, 0);
    jnum("t_prepare_ms", r->t_prepare * 1e3, 0);
    printf("\"x2_packed\":%s,", r->x2_packed ? "true" : "false");
    if (r->run_algo >= 0)
      printf("\"algo_run\":\"%s\",\"chunks_run\":%d,\"progress_thread\":%s,", tpmm_algo_name((tpmm_algo_t)r->run_algo),
             r->run_chunks, r->run_thread ? "true" : "false");
    jnum("t_plan_create_ms", o->plan ? r->t_plan * 1e3 : NAN, 0);
    jnum("efficiency", eff, 0);
    jnum("efficiency_paired", r->eff_paired, 0);
    jnum("exposed_ms", ms[T_FUSED] - ms[T_GEMM], 0);
    jnum("ag_gemm_ratio", r->t[T_GEMM] > 0 ? r->t[T_AG] / r->t[T_GEMM] : NAN, 0);
    jnum("gflops", gf, 0);
    jnum("gflops_gemm", gf_gemm, 0);
    jnum("peak_gflops", peak > 0 ? peak : NAN, 0);
    jnum("pct_peak", pct, 0);
    jnum("pct_peak_gemm", pct_gemm, 0);
    if (o->predict) {
      int ran_algo, ran_chunks;
      ran(c, r, &ran_algo, &ran_chunks);
      bench_predict_json(&r->pred, ran_algo, ran_chunks);
      jnum("pred_paired_t_seq", r->pred_paired_seq, 0);
      jnum("pred_paired_t_fused", r->pred_paired_fused, 0);
    }
    if (r->checked)
      printf("\"bitwise_equal\":%s,\"diff_elements\":%lld,\"gemm_bitwise_equal\":%s,\"gather_equal\":%s}\n",
             r->fused_equal ? "true" : "false", r->fused_diff, r->gemm_equal ? "true" : "false",
             r->gather_equal ? "true" : "false");
    else
      printf("\"bitwise_equal\":null}\n");
  } else {
    if (!*header_done) {
      printf("%6s %6s %6s %5s %3s %-10s %3s | %9s %9s %9s %9s | %6s %9s | %8s %6s %8s %6s | %8s | %s\n", "m", "k", "n",
             "dtype", "W", "algo", "ct", "T_AG ms", "T_GEMM ms", "T_seq ms", "T_fusedms", "E", "exposedms", "GF/s",
             "%peak", "GF/sGEMM", "%peak", "prep ms", "bitwise");
      *header_done = 1;
    }
    char p1[16] = "-", p2[16] = "-"; /* no peak: no percentage */
    if (peak > 0) snprintf(p1, sizeof p1, "%.1f", pct), snprintf(p2, sizeof p2, "%.1f", pct_gemm);
    printf(
        "%6lld %6lld %6lld %5s %3d %-10s %3d | %9.3f %9.3f %9.3f %9.3f | %6.2f %9.3f | %8.1f %6s %8.1f %6s | %8.2f | "
        "%s",
        (long long)c->m, (long long)c->k, (long long)c->n, dt, W, algo, c->comm_turn, ms[0], ms[1], ms[2], ms[3], eff,
        ms[T_FUSED] - ms[T_GEMM], gf, p1, gf_gemm, p2, r->t_prepare * 1e3, eq);
    if (r->checked && !r->fused_equal) printf(" (%lld elements differ)", r->fused_diff);
    if (r->checked && !r->gemm_equal) printf(" [standalone GEMM differs from unfused!]");
    if (r->checked && !r->gather_equal) printf(" [MPI_Allgather differs from gather_out!]");
    if (o->predict) bench_predict_text(&r->pred);
    printf("\n");
  }
  fflush(stdout);
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv) {
  /* One GEMM thread per rank unless asked otherwise (ranks share the cores).
   * tpmm_init reads TPMM_NUM_THREADS; libgomp read OMP_NUM_THREADS when it
   * was loaded, so that one only reaches later readers (the GEMM backend sets
   * its thread count per call anyway). */
  setenv("OMP_NUM_THREADS", "1", 0);
  setenv("TPMM_NUM_THREADS", "1", 0);

  tpmm_status_t st = tpmm_init(&argc, &argv);
  if (st != TPMM_SUCCESS) {
    fprintf(stderr, "tpmm-bench: tpmm_init: %s: %s\n", tpmm_status_string(st), tpmm_last_error());
    return 1;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &W);

  /* Every rank parses the same argv: every rank takes the same branch. */
  static struct bench_opts o;
  char err[256];
  int pr = tpmm_bench_parse(argc, argv, &o, err, sizeof err);
  if (pr != BENCH_PARSE_OK) {
    if (rank == 0) {
      if (pr == BENCH_PARSE_HELP)
        fputs(tpmm_bench_usage, stdout);
      else
        fprintf(stderr, "tpmm-bench: %s\n", err);
    }
    tpmm_finalize();
    return pr == BENCH_PARSE_HELP ? 0 : BENCH_PARSE_ERROR;
  }

  int64_t nthreads = 1;
  tpmm_get_param(TPMM_PARAM_NUM_THREADS, &nthreads);
  if (rank == 0)
    fprintf(stderr,
            "tpmm-bench: tpmm %s, %s, W=%d, %lld GEMM thread(s) per rank, %d iterations (+%d warmup)%s, "
            "load average %.2f\n",
            tpmm_version(), mpi_name(), W, (long long)nthreads, o.iters, o.warmup, o.plan ? ", plan" : "", loadavg());

  /* Peaks, measured once per compute dtype (bf16; fp32 also serves fp16). */
  double peak_bf16 = o.peak, peak_fp32 = o.peak;
  if (o.peak < 0) {
    int need_bf16 = 0, need_fp32 = 0;
    for (int i = 0; i < o.ndtype; i++) *(o.dtype[i] == TPMM_BFLOAT16 ? &need_bf16 : &need_fp32) = 1;
    char be[32];
    if (need_bf16) {
      peak_bf16 = measure_peak(TPMM_BFLOAT16, be, sizeof be);
      if (rank == 0)
        fprintf(stderr, "tpmm-bench: peak bf16 (%s, 512x4096x4096, rank 0): %.1f GFLOP/s\n", be, peak_bf16);
    }
    if (need_fp32) {
      peak_fp32 = measure_peak(TPMM_FLOAT32, be, sizeof be);
      if (rank == 0)
        fprintf(stderr, "tpmm-bench: peak fp32 (%s, 512x4096x4096, rank 0): %.1f GFLOP/s\n", be, peak_fp32);
    }
  }

  int total = o.nm * o.nk * o.nn * o.ndtype * o.nalgo * o.ncomm_turn, idx = 0, failures = 0, header = 0;
  for (int id = 0; id < o.ndtype; id++)
    for (int ia = 0; ia < o.nalgo; ia++)
      for (int ic = 0; ic < o.ncomm_turn; ic++)
        for (int in = 0; in < o.nn; in++)
          for (int ik = 0; ik < o.nk; ik++)
            for (int im = 0; im < o.nm; im++) {
              config_t c = {o.m[im], o.k[ik], o.n[in], o.dtype[id], o.algo[ia], o.comm_turn[ic]};
              result_t r;
              char msg[512];
              idx++;
              if (bench_ext_wanted(&o)) { /* gather x2, uneven shards, several weights */
                const bench_ext_cfg_t e = {c.m, c.k, c.n, c.dt, c.algo, c.comm_turn};
                failures += bench_ext_run(&o, &e, c.dt == TPMM_BFLOAT16 ? peak_bf16 : peak_fp32, &header);
                continue;
              }
              if (rank == 0)
                fprintf(stderr, "[%d/%d] m=%lld k=%lld n=%lld %s W=%d algo=%s comm_turn=%d\n", idx, total,
                        (long long)c.m, (long long)c.k, (long long)c.n, tpmm_bench_dtype_name(c.dt), W,
                        tpmm_bench_algo_name(c.algo), c.comm_turn);
              if (o.op != 0) { /* the reduce operators (bench_reduce.c) */
                failures += bench_reduce(&o, c.m, c.k, c.n, c.dt, c.algo, c.comm_turn, &header);
                continue;
              }
              if (run_config(&o, &c, &r, msg, sizeof msg) != 0) {
                failures++;
                if (rank == 0) fprintf(stderr, "tpmm-bench: skipped: %s\n", msg);
                continue;
              }
              if (rank == 0) print_result(&o, &c, &r, c.dt == TPMM_BFLOAT16 ? peak_bf16 : peak_fp32, &header);
              if (r.checked && (!r.fused_equal || !r.gemm_equal || !r.gather_equal)) failures++;
            }

  tpmm_finalize();
  return failures ? 1 : 0;
}
