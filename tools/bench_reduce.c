/*
 * bench_reduce.c — tpmm-bench --op matmul_reduce_scatter | matmul_all_reduce:
 * is the fused GEMM + reduction worth it? Measured side by side in one run.
 *
 * --m is the rows of each rank's output block: every rank's input is
 * (m*W, k), its x2 (k, n) (weights differ per rank); reduce_scatter's output
 * is (m, n), all_reduce's (m*W, n). Per iteration, interleaved (the order
 * rotates), each after an MPI_Barrier and timed on every rank:
 *   T_comm    the collective a user writes over the (m*W, n) fp32 partials:
 *             MPI_Reduce_scatter_block / MPI_Allreduce (MPI_SUM)
 *   T_comm16  the same collective over 2-byte elements (MPI_SHORT): the bytes
 *             partials in the input dtype would move (fp16/bf16 only; a time
 *             stand-in, its sums mean nothing)
 *   T_GEMM    the fp32 partial GEMM (m*W x k) @ (k x n) with tpmm's own
 *             backend (tpi_gemm_run_f32; with --plan the plan's packed x2)
 *   T_seq     that GEMM, the collective, one rounding to the output dtype
 *   T_fused   the operator (tpmm_plan_execute with --plan)
 * A time is the slowest rank's; the value the median over iterations.
 *   E = (T_seq - T_fused) / min(T_comm, T_GEMM)
 *   fused_over_seq: the median over iterations of T_fused / T_seq of the
 *             same iteration (the machine's speed drifts between iterations)
 * tuned (--plan): the autotuner's candidates, its pairs and its pick.
 * bitwise_equal: the fused output of the last iteration against the
 * operator's own unfused schedule, run once before timing (T_seq's MPI sum
 * order is MPI's, so it is timed, not compared).
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "src/common/half.h"
#include "src/gemm/gemm.h"
#include "src/pipeline/pipeline.h"
#include "tpmm.h"

enum { R_COMM, R_COMM16, R_GEMM, R_SEQ, R_FUSED, R_COUNT };

typedef struct {
  int all, W, rank, dt;
  int64_t m, M, k, n, rows; /* rows: of the output */
  size_t es;
  void *in, *x2, *out, *ref, *seq;
  float *part, *red;
  tpmm_tensor_t t_in, t_x2, t_out;
  tpmm_matmul_reduce_opts_t opts;
  tpmm_plan_t *plan;
  tpi_gemm_t *g;
} rb_t;

static tpmm_status_t fused(rb_t *b, tpmm_tensor_t *out) {
  if (b->plan) return tpmm_plan_execute(b->plan, &b->t_in, out, NULL);
  return b->all ? tpmm_matmul_all_reduce(&b->t_in, &b->t_x2, TPMM_WORLD_COMM_GROUP, b->W, &b->opts, out)
                : tpmm_matmul_reduce_scatter(&b->t_in, &b->t_x2, TPMM_WORLD_COMM_GROUP, b->W, &b->opts, out);
}

static void comm(rb_t *b, MPI_Datatype type) {
  if (b->all)
    MPI_Allreduce(b->part, b->red, (int)(b->M * b->n), type, MPI_SUM, MPI_COMM_WORLD);
  else
    MPI_Reduce_scatter_block(b->part, b->red, (int)(b->m * b->n), type, MPI_SUM, MPI_COMM_WORLD);
}

static void round_out(rb_t *b) {
  const size_t cnt = (size_t)(b->rows * b->n);
  if (b->dt == TPMM_BFLOAT16)
    tpi_f32_to_bf16_n(b->red, b->seq, cnt);
  else if (b->dt == TPMM_FLOAT16)
    tpi_f32_to_f16_n(b->red, b->seq, cnt);
  else
    memcpy(b->seq, b->red, cnt * sizeof(float));
}

/* One measurement; returns its time on this rank, -1 if a call failed here. */
static double measure(rb_t *b, int which) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double s = MPI_Wtime();
  int ok = 1;
  switch (which) {
    case R_COMM: comm(b, MPI_FLOAT); break;
    case R_COMM16:
      if (b->es == 2) comm(b, MPI_SHORT);
      break;
    case R_GEMM: ok = tpi_gemm_run_f32(b->g, b->M, b->in, b->k, b->part, b->n, 0) == TPMM_SUCCESS; break;
    case R_SEQ:
      ok = tpi_gemm_run_f32(b->g, b->M, b->in, b->k, b->part, b->n, 0) == TPMM_SUCCESS;
      comm(b, MPI_FLOAT);
      round_out(b);
      break;
    case R_FUSED: ok = fused(b, &b->t_out) == TPMM_SUCCESS; break;
  }
  const double e = MPI_Wtime() - s;
  return ok ? e : -1;
}

/* Inputs, the unfused reference, the GEMM (or the plan, settled). */
static int setup(rb_t *b, const struct bench_opts *o, int algo, int comm_turn, char *msg, size_t len) {
  const size_t in_n = (size_t)(b->M * b->k), out_n = (size_t)(b->rows * b->n);
  b->in = xmalloc(in_n * b->es), b->x2 = xmalloc((size_t)(b->k * b->n) * b->es);
  b->out = xmalloc(out_n * b->es), b->ref = xmalloc(out_n * b->es), b->seq = xmalloc(out_n * b->es);
  b->part = xmalloc((size_t)(b->M * b->n) * sizeof(float)), b->red = xmalloc(out_n * sizeof(float));
  if (!all_ok(b->in && b->x2 && b->out && b->ref && b->seq && b->part && b->red))
    return snprintf(msg, len, "out of memory on some rank"), 1;
  rng_state = o->seed * 1000003u + (uint64_t)b->rank + 1;
  fill(b->in, b->dt, in_n);
  rng_state = o->seed * 1000003u + 7919u * ((uint64_t)b->rank + 1); /* each rank its own weights */
  fill(b->x2, b->dt, (size_t)(b->k * b->n));
  memset(b->out, 0xff, out_n * b->es); /* NaN in every dtype: a skipped write shows */
  const tpmm_dtype_t dt = (tpmm_dtype_t)b->dt;
  b->t_in = (tpmm_tensor_t){b->in, dt, 2, {b->M, b->k}, 0};
  b->t_x2 = (tpmm_tensor_t){b->x2, dt, 2, {b->k, b->n}, 0};
  b->t_out = (tpmm_tensor_t){b->out, dt, 2, {b->rows, b->n}, 0};
  b->opts = (tpmm_matmul_reduce_opts_t)TPMM_MATMUL_REDUCE_OPTS_INIT;
  b->opts.comm_turn = comm_turn;
  tpmm_tensor_t t_ref = b->t_out;
  t_ref.data = b->ref;
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
  tpmm_status_t st = o->check ? fused(b, &t_ref) : TPMM_SUCCESS;
  if (st == TPMM_SUCCESS) st = tpmm_set_param(TPMM_PARAM_ALGO, algo);
  if (st == TPMM_SUCCESS && o->plan)
    st = b->all ? tpmm_matmul_all_reduce_plan_create(&b->t_in, &b->t_x2, TPMM_WORLD_COMM_GROUP, b->W, &b->opts,
                                                     &b->t_out, &b->plan)
                : tpmm_matmul_reduce_scatter_plan_create(&b->t_in, &b->t_x2, TPMM_WORLD_COMM_GROUP, b->W, &b->opts,
                                                         &b->t_out, &b->plan);
  for (int i = 0; b->plan && !tpi_plan_tuned(b->plan) && i < TPI_TUNE_CALLS_MAX && st == TPMM_SUCCESS; i++)
    st = fused(b, &b->t_out);
  if (st != TPMM_SUCCESS) return snprintf(msg, len, "%s: %s", tpmm_status_string(st), tpmm_last_error()), 1;
  if (b->plan) {
    b->g = tpi_plan_gemm(b->plan);
    return 0;
  }
  /* as the one-shot call prepares it: bf16 x2 always packed (op_matmul_reduce.c) */
  tpi_mat_t x2m = {(char *)b->x2, b->k, b->n, b->n, 1};
  st = tpi_gemm_create(&b->g, dt, &x2m, NULL, dt, b->M, b->M, dt == TPMM_BFLOAT16 ? INT64_MAX : b->M);
  if (!all_ok(st == TPMM_SUCCESS)) return snprintf(msg, len, "tpi_gemm_create failed on some rank"), 1;
  return 0;
}

/* JSON "tuned": a plan's two candidates ("+thread": with the progress thread), each pair's times (ms, the choice's time
 * first), the first confirming pair (tune.c; -1: none), and what was kept, so that a point where auto lost can be
 * traced to the pairs or to the model; null where nothing was tuned. */
static void json_tuned(tpmm_plan_t *plan) {
  const tpi_plan_t *p = tpi_plan_inner(plan);
  const tpi_tuner_t *t = p ? p->tuner : NULL;
  if (!t || t->ncand < 2) {
    printf("\"tuned\":null,");
    return;
  }
  printf("\"tuned\":{\"choice\":\"%s/%d%s\",\"runner_up\":\"%s/%d%s\",\"prior\":%.3f,\"pairs\":[",
         tpmm_algo_name((tpmm_algo_t)t->cand[0].algo), t->cand[0].chunks, t->cand[0].thread ? "+thread" : "",
         tpmm_algo_name((tpmm_algo_t)t->cand[1].algo), t->cand[1].chunks, t->cand[1].thread ? "+thread" : "", t->prior);
  for (int i = 0; i < t->npairs; i++)
    printf("%s[%.3f,%.3f]", i ? "," : "", t->samples[0][i] * 1e3, t->samples[1][i] * 1e3);
  printf("],\"confirm_from\":%d,\"kept\":", t->confirm_at ? t->confirm_at : -1);
  if (t->decided)
    printf("\"%s\"},", t->winner ? "runner_up" : "choice");
  else
    printf("null},");
}

static void print(const struct bench_opts *o, const rb_t *b, int algo, int comm_turn, const double *t, double paired,
                  double eff_paired, int checked, long long diff, int *header_done) {
  const double ms[R_COUNT] = {t[0] * 1e3, t[1] * 1e3, t[2] * 1e3, t[3] * 1e3, t[4] * 1e3};
  const double lo = fmin(t[R_COMM], t[R_GEMM]), eff = lo > 0 ? (t[R_SEQ] - t[R_FUSED]) / lo : NAN;
  const double flop = 2.0 * (double)b->M * (double)b->k * (double)b->n;
  int ra = -1, rc = 0, rt = 0;
  tpi_plan_schedule(b->plan, &ra, &rc, &rt);
  const char *op = tpmm_bench_op_name(o->op), *dt = tpmm_bench_dtype_name(b->dt);
  const char *eq = !checked ? "-" : diff ? "NO" : "yes";
  if (o->json) {
    printf("{\"op\":\"%s\",\"m\":%lld,\"k\":%lld,\"n\":%lld,\"dtype\":\"%s\",\"world_size\":%d,\"algo\":\"%s\",", op,
           (long long)b->m, (long long)b->k, (long long)b->n, dt, b->W, tpmm_bench_algo_name(algo));
    printf("\"comm_turn\":%d,\"plan\":%s,\"iters\":%d,\"warmup\":%d,\"mpi\":\"%s\",", comm_turn,
           o->plan ? "true" : "false", o->iters, o->warmup, mpi_name());
    jnum("loadavg", loadavg(), 0);
    jnum("t_comm_ms", ms[R_COMM], 0);
    jnum("t_comm16_ms", b->es == 2 ? ms[R_COMM16] : NAN, 0);
    jnum("t_gemm_ms", ms[R_GEMM], 0);
    jnum("t_seq_ms", ms[R_SEQ], 0);
    jnum("t_fused_ms", ms[R_FUSED], 0);
    jnum("fused_over_seq", paired, 0);
    if (ra >= 0)
      printf("\"algo_run\":\"%s\",\"chunks_run\":%d,\"progress_thread\":%s,", tpmm_algo_name((tpmm_algo_t)ra), rc,
             rt ? "true" : "false");
    if (b->plan) json_tuned(b->plan);
    jnum("efficiency", eff, 0);
    jnum("efficiency_paired", eff_paired, 0);
    jnum("exposed_ms", ms[R_FUSED] - ms[R_GEMM], 0);
    jnum("comm_gemm_ratio", t[R_GEMM] > 0 ? t[R_COMM] / t[R_GEMM] : NAN, 0);
    jnum("gflops", t[R_FUSED] > 0 ? flop / t[R_FUSED] * 1e-9 : NAN, 0);
    if (checked)
      printf("\"bitwise_equal\":%s,\"diff_elements\":%lld}\n", diff ? "false" : "true", diff);
    else
      printf("\"bitwise_equal\":null}\n");
  } else {
    if (!*header_done)
      printf("%-21s %6s %6s %6s %5s %3s %-8s %3s | %9s %9s %9s %9s %9s | %6s | %s\n", "op", "m", "k", "n", "dtype", "W",
             "algo", "ct", "T_comm ms", "T_c16 ms", "T_GEMM ms", "T_seq ms", "T_fusedms", "E", "bitwise");
    *header_done = 1;
    printf("%-21s %6lld %6lld %6lld %5s %3d %-8s %3d | %9.3f %9.3f %9.3f %9.3f %9.3f | %6.2f | %s\n", op,
           (long long)b->m, (long long)b->k, (long long)b->n, dt, b->W, tpmm_bench_algo_name(algo), comm_turn,
           ms[R_COMM], b->es == 2 ? ms[R_COMM16] : NAN, ms[R_GEMM], ms[R_SEQ], ms[R_FUSED], eff, eq);
  }
  fflush(stdout);
}

int bench_reduce(const struct bench_opts *o, int64_t m, int64_t k, int64_t n, int dt, int algo, int comm_turn,
                 int *header_done) {
  rb_t b = {.all = o->op == 2, .dt = dt, .m = m, .k = k, .n = n, .es = tpmm_dtype_size((tpmm_dtype_t)dt)};
  MPI_Comm_rank(MPI_COMM_WORLD, &b.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &b.W);
  b.M = m * b.W;
  b.rows = b.all ? b.M : m;
  const int iters = o->iters, total = o->warmup + o->iters;
  double *times = xmalloc(sizeof(double) * R_COUNT * (size_t)iters), *tmax = xmalloc(sizeof(double) * R_COUNT * iters);
  char msg[512] = "";
  int failed = setup(&b, o, algo, comm_turn, msg, sizeof msg);
  for (int it = 0; it < total && !failed; it++)
    for (int j = 0; j < R_COUNT && !failed; j++) {
      const int which = (j + it) % R_COUNT;
      const double e = measure(&b, which);
      if (!all_ok(e >= 0)) { /* tpmm agrees on its status; the standalone GEMM is local */
        snprintf(msg, sizeof msg, "a call failed on some rank: %s", tpmm_last_error());
        failed = 1;
      }
      if (it >= o->warmup) times[which * iters + (it - o->warmup)] = e;
    }
  if (!failed) {
    double t[R_COUNT];
    MPI_Allreduce(times, tmax, R_COUNT * iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    const double paired = median_ratio(tmax + R_FUSED * iters, tmax + R_SEQ * iters, iters);
    const double eff_paired = median_efficiency(tmax + R_SEQ * iters, tmax + R_FUSED * iters, tmax + R_COMM * iters,
                                                tmax + R_GEMM * iters, iters);
    for (int j = 0; j < R_COUNT; j++) t[j] = median(tmax + j * iters, iters);
    long long d = o->check ? count_diff(b.out, b.ref, (size_t)(b.rows * b.n), b.es) : 0, sum = 0;
    MPI_Allreduce(&d, &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (b.rank == 0) print(o, &b, algo, comm_turn, t, paired, eff_paired, o->check, sum, header_done);
    failed = sum != 0;
  } else if (b.rank == 0) {
    fprintf(stderr, "tpmm-bench: skipped: %s\n", msg);
  }
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
  if (!b.plan) tpi_gemm_destroy(b.g);
  tpmm_plan_destroy(b.plan);
  free(b.in), free(b.x2), free(b.out), free(b.ref), free(b.seq), free(b.part), free(b.red);
  free(times), free(tmax);
  return failed;
}
