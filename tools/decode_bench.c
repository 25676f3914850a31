/*
 * decode_bench.c — decode-shaped calls as a user meets them: tpmm against
 * what the user would write by hand, from the first call on.
 *
 *   mpirun -n W decode_bench [--shapes MxKxN,...] [--rounds R] [--first F]
 *                            [--iters I] [--order tpmm|hand] [--dtype bf16|fp32]
 *
 * Three variants, bf16 (or fp32: CPUs without AVX-512, where oneDNN has no
 * bf16 matmul), gather_out wanted (dense), one GEMM thread per rank:
 *   hand   MPI_Allgather of the shards (bytes) on a fresh MPI_Comm_dup, then
 *          a oneDNN matmul primitive created beforehand (untimed) for
 *          (m*W x k) @ (k x n), x2 in its plain row-major layout as the
 *          user holds it: what ten lines of user code do
 *   tpmm   tpmm_all_gather_matmul on a fresh group (tpmm_create_group)
 *   plan   tpmm_plan_execute on a plan created (untimed) on a fresh group
 * Each call is timed alone (MPI_Barrier before it; the slowest rank's time).
 *
 * First calls: per round, each variant in turn gets its fresh communicator
 * or group and its first F calls are timed (their sum is reported); the
 * order of the variants rotates from round to round. Round 0 of a process
 * is the only one where tpmm meets a shape for the first time in the
 * process (GEMM calibration, oneDNN's JIT and primitive cache): it is
 * reported on its own ("cold"), the later rounds as "fresh group" (median
 * over rounds). --order says which variant comes first in round 0; run the
 * program twice with both orders to alternate that too.
 *
 * Settled: then all three variants run I more calls each, interleaved
 * (order rotating per iteration), on the groups of the last round; medians.
 *
 * Correctness: the last outputs of tpmm and plan must equal hand's bit for
 * bit (same oneDNN kernel and summation order); printed per shape. fp32 is
 * compared within a tolerance instead (same_out): tpmm's own kernel on CPUs
 * without AVX-512 sums in another order; the plan's must still equal the
 * one-shot call's bit for bit.
 */
#include <math.h>
#include <mpi.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "tpmm.h"

enum { V_HAND, V_TPMM, V_PLAN, NV };
static const char *const vname[NV] = {"hand", "tpmm", "plan"};
enum { MAX_SHAPES = 32, MAX_ROUNDS = 64 };

static int rank, W;
static tpmm_dtype_t dt = TPMM_BFLOAT16; /* --dtype */
static size_t es = 2;

static void die(const char *what, const char *why) {
  fprintf(stderr, "decode_bench (rank %d): %s: %s\n", rank, what, why);
  MPI_Abort(MPI_COMM_WORLD, 1);
}
#define DN(call)                                              \
  do {                                                        \
    dnnl_status_t s_ = (call);                                \
    if (s_ != dnnl_success) die(#call, "oneDNN call failed"); \
  } while (0)
#define TP(call)                                           \
  do {                                                     \
    tpmm_status_t s_ = (call);                             \
    if (s_ != TPMM_SUCCESS) die(#call, tpmm_last_error()); \
  } while (0)

/* tpmm's output against hand's: bf16 bit for bit; fp32 within k 2^-20 (inputs in [-1, 1): a sum's
 * rounding errors are some 1e-4, one product left out is some 0.25), since tpmm's own kernel
 * (gemm_avx2.c, CPUs without AVX-512) does not add in oneDNN's order. */
static int same_out(const char *got, const char *want, size_t count, int64_t k) {
  if (dt != TPMM_FLOAT32) return !memcmp(got, want, count * es);
  const float *g = (const float *)got, *w = (const float *)want, tol = (float)k * 0x1p-20f;
  for (size_t i = 0; i < count; i++)
    if (!(fabsf(g[i] - w[i]) <= tol)) return 0;
  return 1;
}

/* The user's side: a matmul primitive made once, executed per call. */
typedef struct {
  dnnl_engine_t eng;
  dnnl_stream_t stream;
  dnnl_primitive_t prim;
  dnnl_memory_t a, b, c;
  MPI_Comm comm;
} hand_t;

static void hand_create(hand_t *h, int64_t m, int64_t k, int64_t n, void *gath, void *x2, void *out) {
  dnnl_memory_desc_t amd, bmd, cmd;
  dnnl_dims_t ad = {m * W, k}, bd = {k, n}, cd = {m * W, n};
  DN(dnnl_engine_create(&h->eng, dnnl_cpu, 0));
  DN(dnnl_stream_create(&h->stream, h->eng, dnnl_stream_default_flags));
  DN(dnnl_memory_desc_init_by_tag(&amd, 2, ad, dt == TPMM_FLOAT32 ? dnnl_f32 : dnnl_bf16, dnnl_ab));
  DN(dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dt == TPMM_FLOAT32 ? dnnl_f32 : dnnl_bf16, dnnl_ab));
  DN(dnnl_memory_desc_init_by_tag(&cmd, 2, cd, dt == TPMM_FLOAT32 ? dnnl_f32 : dnnl_bf16, dnnl_ab));
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd;
  DN(dnnl_matmul_desc_init(&desc, &amd, &bmd, NULL, &cmd));
  DN(dnnl_primitive_desc_create(&pd, &desc, NULL, h->eng, NULL));
  DN(dnnl_primitive_create(&h->prim, pd));
  dnnl_primitive_desc_destroy(pd);
  DN(dnnl_memory_create(&h->a, &amd, h->eng, gath));
  DN(dnnl_memory_create(&h->b, &bmd, h->eng, x2));
  DN(dnnl_memory_create(&h->c, &cmd, h->eng, out));
  MPI_Comm_dup(MPI_COMM_WORLD, &h->comm);
}

static void hand_call(hand_t *h, const void *in, int bytes, void *gath) {
  MPI_Allgather(in, bytes, MPI_BYTE, gath, bytes, MPI_BYTE, h->comm);
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, h->a}, {DNNL_ARG_WEIGHTS, h->b}, {DNNL_ARG_DST, h->c}};
  DN(dnnl_primitive_execute(h->prim, h->stream, 3, args));
  DN(dnnl_stream_wait(h->stream));
}

static void hand_destroy(hand_t *h) {
  if (!h->prim) return;
  dnnl_primitive_destroy(h->prim);
  dnnl_memory_destroy(h->a), dnnl_memory_destroy(h->b), dnnl_memory_destroy(h->c);
  dnnl_stream_destroy(h->stream);
  dnnl_engine_destroy(h->eng);
  MPI_Comm_free(&h->comm);
  memset(h, 0, sizeof *h);
}

typedef struct {
  int64_t m, k, n;
  char *in, *x2, *gath, *out[NV], *gout[NV];
  tpmm_tensor_t t_in, t_x2, t_out[NV], t_gout[NV];
  hand_t hand;
  char group[64]; /* [0, 32): tpmm's group, [32, 64): the plan's */
  tpmm_plan_t *plan;
  int ngroups;
} shape_t;

/* A fresh communicator / group (and plan) for variant v; untimed. */
static void fresh(shape_t *s, int v) {
  if (v == V_HAND) {
    hand_destroy(&s->hand);
    hand_create(&s->hand, s->m, s->k, s->n, s->gath, s->x2, s->out[V_HAND]);
    return;
  }
  /* the variant's previous group (and plan) go; a new one with a new name */
  char *slot = v == V_TPMM ? s->group : s->group + 32;
  if (v == V_PLAN && s->plan) tpmm_plan_destroy(s->plan), s->plan = NULL;
  if (slot[0]) TP(tpmm_destroy_group(slot));
  snprintf(slot, 32, "decode_%s_%d", vname[v], s->ngroups++);
  int *ranks = malloc(sizeof(int) * (size_t)W);
  for (int i = 0; i < W; i++) ranks[i] = i;
  TP(tpmm_create_group(slot, W, ranks));
  free(ranks);
  if (v == V_PLAN) {
    tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
    TP(tpmm_all_gather_matmul_plan_create(&s->t_in, &s->t_x2, slot, W, &o, &s->t_out[v], &s->t_gout[v], &s->plan));
  }
}

static void call(shape_t *s, int v) {
  if (v == V_HAND) {
    hand_call(&s->hand, s->in, (int)((size_t)(s->m * s->k) * es), s->gath);
  } else if (v == V_TPMM) {
    tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
    TP(tpmm_all_gather_matmul(&s->t_in, &s->t_x2, s->group, W, &o, &s->t_out[v], &s->t_gout[v]));
  } else {
    TP(tpmm_plan_execute(s->plan, &s->t_in, &s->t_out[v], &s->t_gout[v]));
  }
}

/* One call, timed: barrier, call, the slowest rank's time. */
static double timed(shape_t *s, int v) {
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  call(s, v);
  double t = MPI_Wtime() - t0;
  MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return t;
}

static int parse_shapes(const char *arg, int64_t sh[][3]) {
  int n = 0;
  const char *p = arg;
  while (*p && n < MAX_SHAPES) {
    long long a, b, c;
    int used = 0;
    if (sscanf(p, "%lldx%lldx%lld%n", &a, &b, &c, &used) != 3 || a < 1 || b < 1 || c < 1) return -1;
    sh[n][0] = a, sh[n][1] = b, sh[n][2] = c, n++;
    p += used;
    if (*p == ',') p++;
  }
  return n;
}

int main(int argc, char **argv) {
  setenv("OMP_NUM_THREADS", "1", 0);
  if (tpmm_init(&argc, &argv) != TPMM_SUCCESS) return 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  const char *shapes_arg = "1x4096x4096,4x4096x4096,16x4096x4096";
  int rounds = 5, first = 10, iters = 200, hand_first = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--shapes"))
      shapes_arg = argv[i + 1];
    else if (!strcmp(argv[i], "--rounds"))
      rounds = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--first"))
      first = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--iters"))
      iters = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--dtype")) {
      if (strcmp(argv[i + 1], "bf16") && strcmp(argv[i + 1], "fp32")) {
        if (rank == 0) fprintf(stderr, "decode_bench: --dtype bf16 or fp32 (got %s)\n", argv[i + 1]);
        tpmm_finalize();
        return 2;
      }
      dt = strcmp(argv[i + 1], "fp32") ? TPMM_BFLOAT16 : TPMM_FLOAT32, es = dt == TPMM_FLOAT32 ? 4 : 2;
    } else if (!strcmp(argv[i], "--order")) {
      hand_first = !strcmp(argv[i + 1], "hand");
    } else {
      if (rank == 0) fprintf(stderr, "decode_bench: unknown option %s\n", argv[i]);
      tpmm_finalize();
      return 2;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS || first < 1 || iters < 1) {
    if (rank == 0) fprintf(stderr, "decode_bench: rounds in [1, %d], first and iters >= 1\n", MAX_ROUNDS);
    tpmm_finalize();
    return 2;
  }
  int64_t sh[MAX_SHAPES][3];
  const int nsh = parse_shapes(shapes_arg, sh);
  if (nsh <= 0) {
    if (rank == 0) fprintf(stderr, "decode_bench: --shapes MxKxN,... (got %s)\n", shapes_arg);
    tpmm_finalize();
    return 2;
  }
  /* MPI itself warmed up (connections, the first collective), as in any
   * program that has run a while: only tpmm's and oneDNN's first calls count */
  for (int i = 0; i < 3; i++) MPI_Barrier(MPI_COMM_WORLD);
  {
    char b[64 * 1024], *g = malloc(sizeof b * (size_t)W);
    MPI_Allgather(b, (int)sizeof b, MPI_BYTE, g, (int)sizeof b, MPI_BYTE, MPI_COMM_WORLD);
    free(g);
  }
  if (rank == 0)
    printf(
        "decode_bench W=%d %s, tpmm %s, first %d calls x %d rounds (round 0 %s first), %d settled calls, "
        "load %.2f\n",
        W, dt == TPMM_FLOAT32 ? "fp32" : "bf16", tpmm_version(), first, rounds, hand_first ? "hand" : "tpmm", iters,
        loadavg());

  for (int si = 0; si < nsh; si++) {
    shape_t s;
    memset(&s, 0, sizeof s);
    s.m = sh[si][0], s.k = sh[si][1], s.n = sh[si][2];
    const int64_t m = s.m, k = s.k, n = s.n, mW = m * W;
    s.in = malloc((size_t)(m * k) * es), s.x2 = malloc((size_t)(k * n) * es), s.gath = malloc((size_t)(mW * k) * es);
    rng_state = 1000 + (uint64_t)rank;
    fill(s.in, dt, (size_t)(m * k));
    rng_state = 7;
    fill(s.x2, dt, (size_t)(k * n));
    s.t_in = (tpmm_tensor_t){s.in, dt, 2, {m, k}, 0};
    s.t_x2 = (tpmm_tensor_t){s.x2, dt, 2, {k, n}, 0};
    for (int v = 0; v < NV; v++) {
      s.out[v] = calloc((size_t)(mW * n), es), s.gout[v] = calloc((size_t)(mW * k), es);
      s.t_out[v] = (tpmm_tensor_t){s.out[v], dt, 2, {mW, n}, 0};
      s.t_gout[v] = (tpmm_tensor_t){s.gout[v], dt, 2, {mW, k}, 0};
    }
    double sums[MAX_ROUNDS][NV], t_first[NV] = {0};
    double firsts[NV][16] = {{0}}; /* round 0's per-call times, for the printout */
    for (int r = 0; r < rounds; r++)
      for (int j = 0; j < NV; j++) {
        const int v = (j + r + (hand_first ? 0 : 1)) % NV; /* round 0: hand or tpmm first */
        fresh(&s, v);
        double sum = 0;
        for (int c = 0; c < first; c++) {
          const double t = timed(&s, v);
          if (r == 0 && c < 16) firsts[v][c] = t;
          sum += t;
        }
        sums[r][v] = sum;
      }
    double *st[NV];
    for (int v = 0; v < NV; v++) st[v] = malloc(sizeof(double) * (size_t)iters);
    for (int it = 0; it < iters; it++)
      for (int j = 0; j < NV; j++) {
        const int v = (j + it) % NV;
        st[v][it] = timed(&s, v);
      }
    double settled[NV], fresh_med[NV];
    for (int v = 0; v < NV; v++) {
      settled[v] = median(st[v], iters);
      double col[MAX_ROUNDS];
      for (int r = 1; r < rounds; r++) col[r - 1] = sums[r][v];
      fresh_med[v] = rounds > 1 ? median(col, rounds - 1) : NAN;
      t_first[v] = sums[0][v];
    }
    int same[NV] = {1, 0, 0};
    for (int v = 1; v < NV; v++)
      same[v] = same_out(s.out[v], s.out[V_HAND], (size_t)(mW * n), k) &&
                !memcmp(s.gout[v], s.gath, (size_t)(mW * k) * es) &&
                !memcmp(s.out[v], s.out[V_TPMM], (size_t)(mW * n) * es);
    int all_same[NV];
    MPI_Allreduce(same, all_same, NV, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (rank == 0) {
      printf("shape m=%lld k=%lld n=%lld (per rank; GEMM %lld x %lld x %lld), load %.2f\n", (long long)m, (long long)k,
             (long long)n, (long long)mW, (long long)k, (long long)n, loadavg());
      printf("  %-5s %14s %14s %14s %16s   %s\n", "", "first sum cold", "first sum fresh", "settled med",
             "ratio cold/fresh/settled", "round-0 calls, us");
      for (int v = 0; v < NV; v++) {
        printf("  %-5s %11.1f us %11.1f us %11.2f us", vname[v], 1e6 * t_first[v], 1e6 * fresh_med[v],
               1e6 * settled[v]);
        if (v != V_HAND)
          printf("  %5.3f %5.3f %5.3f (%+.2f us)", t_first[v] / t_first[V_HAND], fresh_med[v] / fresh_med[V_HAND],
                 settled[v] / settled[V_HAND], 1e6 * (settled[v] - settled[V_HAND]));
        else
          printf("  %27s", "");
        printf("  ");
        for (int c = 0; c < first && c < 16; c++) printf(" %.0f", 1e6 * firsts[v][c]);
        printf("%s\n", v != V_HAND && !all_same[v] ? "  OUTPUT DIFFERS FROM hand" : "");
      }
      printf(
          "JSON {\"m\":%lld,\"k\":%lld,\"n\":%lld,\"W\":%d,\"first\":%d,\"rounds\":%d,\"iters\":%d,"
          "\"order\":\"%s\",\"loadavg\":%.2f",
          (long long)m, (long long)k, (long long)n, W, first, rounds, iters, hand_first ? "hand" : "tpmm", loadavg());
      for (int v = 0; v < NV; v++)
        printf(",\"%s_first_cold_us\":%.2f,\"%s_first_fresh_us\":%.2f,\"%s_settled_us\":%.3f", vname[v],
               1e6 * t_first[v], vname[v], 1e6 * fresh_med[v], vname[v], 1e6 * settled[v]);
      printf(",\"%s\":%s}\n", dt == TPMM_FLOAT32 ? "within_tol" : "bitwise_equal",
             all_same[V_TPMM] && all_same[V_PLAN] ? "true" : "false");
      fflush(stdout);
    }
    for (int v = 0; v < NV; v++) free(st[v]), free(s.out[v]), free(s.gout[v]);
    if (s.plan) tpmm_plan_destroy(s.plan);
    for (int i = 0; i < 2; i++)
      if (s.group[32 * i]) TP(tpmm_destroy_group(s.group + 32 * i));
    hand_destroy(&s.hand);
    free(s.in), free(s.x2), free(s.gath);
  }
  tpmm_finalize();
  return 0;
}
