/*
 * test_agmm.c — correctness of tpmm_all_gather_matmul on whatever world size
 * mpirun gives (CTest runs 1, 2, 3, 4 and 8 ranks).
 *
 * For each configuration (dtype, m, k, n, transposes, bias, gather_output,
 * comm_turn, strides) every rank:
 *   - draws its own input and its own x2 (TP: weights differ per rank) from
 *     a seeded RNG (seed printed; TPMM_TEST_SEED reproduces a run),
 *   - poisons output and gather_out (and their row padding) with NaN,
 *   - runs every algorithm (unfused first) and checks:
 *       output within the dtype-derived tolerance of an fp64 reference
 *         computed on the same rounded inputs (gathered here with plain MPI),
 *       gather_out a bit-exact copy of the gathered rows,
 *       padding and, with gather_output false, gather_out untouched,
 *       a repeated call bit-identical, every algorithm bit-identical to unfused.
 * Tolerance for element (i, j), ref = sum_k a*b + bias, mag = sum_k |a*b|:
 *     |out - ref| <= eps_out * |ref| + (k + 2) * 2^-24 * mag + tiny_out
 * (one rounding to the output dtype plus fp32 accumulation error).
 *
 * Options: --quick (fewer shapes), --every N (only every N-th configuration:
 * the default suite's reruns under other tunables), --algos a,b,c (default:
 * all algorithms).
 */
#include <time.h>

#include "src/pipeline/pipeline.h"
#include "testutil.h"

typedef struct {
  tpmm_dtype_t dt;
  int64_t m, k, n;
  int trans_in, trans_x2, bias; /* bias: 0 none, 1 input dtype, 2 float32 */
  int gather_output, comm_turn, strided;
} cfg_t;

static int W, rank;
static uint64_t seed;
static int algos[8], n_algos;

static void describe(const cfg_t *c, char *s, size_t len) {
  snprintf(s, len,
           "%s m=%lld k=%lld n=%lld W=%d trans_input=%d trans_x2=%d bias=%d gather_output=%d comm_turn=%d strided=%d",
           dt_name(c->dt), (long long)c->m, (long long)c->k, (long long)c->n, W, c->trans_in, c->trans_x2, c->bias,
           c->gather_output, c->comm_turn, c->strided);
}

static int every = 1; /* --every N: only every N-th configuration */

/* One configuration: returns nothing; tallies checks. */
static void run_cfg(const cfg_t *c, int idx) {
  if (idx % every) return;
  char desc[256];
  describe(c, desc, sizeof desc);
  const tpmm_dtype_t dt = c->dt;
  const size_t es = dt_size(dt);
  const int64_t m = c->m, k = c->k, n = c->n, mw = m * W;
  const int64_t pad = c->strided ? 3 : 0;
  /* stored shapes */
  const int64_t in_r = c->trans_in ? k : m, in_c = c->trans_in ? m : k;
  const int64_t x2_r = c->trans_x2 ? n : k, x2_c = c->trans_x2 ? k : n;
  const int64_t ld_in = in_c + pad, ld_x2 = x2_c + pad, ld_out = n + pad, ld_g = k + pad;
  rng_t r = {seed ^ (0x100000001b3ull * (uint64_t)(idx + 1)) ^ ((uint64_t)rank << 48)};

  void *in = calloc((size_t)(in_r * ld_in + 1), es), *x2 = calloc((size_t)(x2_r * ld_x2 + 1), es);
  void *out = malloc((size_t)(mw * ld_out + 1) * es), *gout = malloc((size_t)(mw * ld_g + 1) * es);
  void *out0 = malloc((size_t)(mw * ld_out + 1) * es);
  void *bias = c->bias ? malloc((size_t)(n + 1) * 4) : NULL;
  tpmm_dtype_t bias_dt = c->bias == 2 ? TPMM_FLOAT32 : dt;
  fill_randn(in, dt, in_r, in_c, ld_in, &r);
  fill_randn(x2, dt, x2_r, x2_c, ld_x2, &r);
  if (bias) fill_randn(bias, bias_dt, 1, n, n, &r);

  /* the reference's copy of everyone's input, logical (m x k) dense, in fp64 */
  double *mine = malloc((size_t)(m * k + 1) * sizeof(double)), *all = malloc((size_t)(mw * k + 1) * sizeof(double));
  uint16_t *mine_bits = malloc((size_t)(m * k + 1) * es), *all_bits = malloc((size_t)(mw * k + 1) * es);
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < k; j++) {
      int64_t off = c->trans_in ? j * ld_in + i : i * ld_in + j;
      mine[i * k + j] = get_el(in, dt, off);
      memcpy((char *)mine_bits + (size_t)(i * k + j) * es, (char *)in + (size_t)off * es, es);
    }
  MPI_Allgather(mine, (int)(m * k), MPI_DOUBLE, all, (int)(m * k), MPI_DOUBLE, MPI_COMM_WORLD);
  MPI_Allgather(mine_bits, (int)(m * k * (int64_t)es), MPI_BYTE, all_bits, (int)(m * k * (int64_t)es), MPI_BYTE,
                MPI_COMM_WORLD);

  tpmm_tensor_t t_in = {in, dt, 2, {in_r, in_c}, ld_in};
  tpmm_tensor_t t_x2 = {x2, dt, 2, {x2_r, x2_c}, ld_x2};
  tpmm_tensor_t t_out = {out, dt, 2, {mw, n}, ld_out};
  tpmm_tensor_t t_g = {gout, dt, 2, {mw, k}, ld_g};
  tpmm_tensor_t t_bias = {bias, bias_dt, 1, {n, 0}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.bias = bias ? &t_bias : NULL;
  o.gather_output = c->gather_output;
  o.comm_turn = c->comm_turn;
  o.trans_input = c->trans_in;
  o.trans_x2 = c->trans_x2;

  for (int ai = 0; ai < n_algos; ai++) {
    const char *an = tpmm_algo_name((tpmm_algo_t)algos[ai]);
    tpmm_set_param(TPMM_PARAM_ALGO, algos[ai]);
    /* auto: 10 calls, so that the group's autotuner warms and times both
     * candidates of this shape and runs its winner (tune.c, TPI_TUNE_CALLS
     * = 9, with the budget raised in main; 4 more where a pair contradicts a
     * replacement, 8 where confirming pairs run); every call must match unfused */
    for (int rep = 0; rep < (algos[ai] == TPMM_ALGO_AUTO ? 10 : 2); rep++) {
      poison(out, dt, mw * ld_out + 1);
      poison(gout, dt, mw * ld_g + 1);
      tpmm_status_t st = tpmm_all_gather_matmul(&t_in, &t_x2, TPMM_WORLD_COMM_GROUP, W, &o, &t_out, &t_g);
      check(st == TPMM_SUCCESS, "[%s] %s: status %d: %s", an, desc, st, tpmm_last_error());
      if (st != TPMM_SUCCESS) goto done;
      if (ai == 0 && rep == 0) {
        /* fp64 reference */
        int bad = 0;
        double worst = 0.0;
        for (int64_t i = 0; i < mw && bad < 3; i++)
          for (int64_t j = 0; j < n; j++) {
            double ref = 0.0, mag = 0.0;
            for (int64_t q = 0; q < k; q++) {
              double b = get_el(x2, dt, c->trans_x2 ? j * ld_x2 + q : q * ld_x2 + j);
              double p = all[i * k + q] * b;
              ref += p;
              mag += fabs(p);
            }
            if (bias) {
              double bv = get_el(bias, bias_dt, j);
              ref += bv;
              mag += fabs(bv);
            }
            double got = get_el(out, dt, i * ld_out + j);
            double tol = dt_eps(dt) * fabs(ref) + (double)(k + 2) * 0x1p-24 * mag + dt_tiny(dt);
            double err = fabs(got - ref);
            if (!within_tol(got, ref, mag, dt, k)) {
              if (bad++ < 3)
                fprintf(stderr, "[rank %d] out[%lld,%lld] = %.9g, ref %.9g, tol %.3g\n", rank, (long long)i,
                        (long long)j, got, ref, tol);
            }
            if (err / (tol > 0 ? tol : 1) > worst) worst = err / tol;
          }
        check(bad == 0, "[%s] %s: output differs from the fp64 reference (seed %llu)", an, desc,
              (unsigned long long)seed);
        memcpy(out0, out, (size_t)(mw * ld_out + 1) * es);
      } else {
        check(memcmp(out0, out, (size_t)(mw * ld_out + 1) * es) == 0, "[%s] %s: output is not bit-identical to %s", an,
              desc, rep ? "the previous call" : "unfused");
      }
      /* padding of output untouched */
      int pad_ok = is_poison(out, dt, mw * ld_out);
      for (int64_t i = 0; i < mw && pad_ok; i++)
        for (int64_t j = n; j < ld_out; j++) pad_ok &= is_poison(out, dt, i * ld_out + j);
      check(pad_ok, "[%s] %s: output written outside its elements", an, desc);
      /* gather_out */
      if (c->gather_output) {
        int g_ok = 1;
        for (int64_t i = 0; i < mw && g_ok; i++) {
          g_ok &= memcmp((char *)gout + (size_t)(i * ld_g) * es, (char *)all_bits + (size_t)(i * k) * es,
                         (size_t)k * es) == 0;
          for (int64_t j = k; j < ld_g; j++) g_ok &= is_poison(gout, dt, i * ld_g + j);
        }
        check(g_ok && is_poison(gout, dt, mw * ld_g), "[%s] %s: gather_out is not the bit-exact gathered input", an,
              desc);
      } else {
        int untouched = 1;
        for (int64_t i = 0; i < mw * ld_g + 1 && untouched; i++) untouched &= is_poison(gout, dt, i);
        check(untouched, "[%s] %s: gather_out written although gather_output is false", an, desc);
      }
    }
  }
  /* a persistent plan (x2 packed, unlike the one-shot call) with one of the
   * algorithms, executed twice (auto: 9 times, so that its autotuner runs
   * both candidates and settles): bit-identical to the one-shot unfused call */
  {
    const int algo = algos[(idx / every) % n_algos]; /* every algorithm in turn, whatever --every */
    const char *an = tpmm_algo_name((tpmm_algo_t)algo);
    tpmm_set_param(TPMM_PARAM_ALGO, algo);
    tpmm_plan_t *plan = NULL;
    tpmm_tensor_t p_in = t_in, p_out = t_out, p_g = t_g;
    p_in.data = p_out.data = p_g.data = NULL; /* shapes only at creation */
    tpmm_status_t st = tpmm_all_gather_matmul_plan_create(&p_in, &t_x2, TPMM_WORLD_COMM_GROUP, W, &o, &p_out,
                                                          c->gather_output ? &p_g : NULL, &plan);
    check(st == TPMM_SUCCESS && plan, "[plan %s] %s: create: status %d: %s", an, desc, st, tpmm_last_error());
    for (int rep = 0; rep < (algo == TPMM_ALGO_AUTO ? 10 : 2) && st == TPMM_SUCCESS; rep++) {
      poison(out, dt, mw * ld_out + 1);
      poison(gout, dt, mw * ld_g + 1);
      st = tpmm_plan_execute(plan, &t_in, &t_out, &t_g);
      check(st == TPMM_SUCCESS, "[plan %s] %s: execute: status %d: %s", an, desc, st, tpmm_last_error());
      check(st != TPMM_SUCCESS || memcmp(out0, out, (size_t)(mw * ld_out + 1) * es) == 0,
            "[plan %s] %s: output is not bit-identical to the one-shot unfused call", an, desc);
      if (c->gather_output && st == TPMM_SUCCESS) {
        int g_ok = 1;
        for (int64_t i = 0; i < mw && g_ok; i++)
          g_ok &= memcmp((char *)gout + (size_t)(i * ld_g) * es, (char *)all_bits + (size_t)(i * k) * es,
                         (size_t)k * es) == 0;
        check(g_ok, "[plan %s] %s: gather_out is not the gathered input", an, desc);
      }
    }
    tpmm_plan_destroy(plan);
  }
done:
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
  free(in), free(x2), free(out), free(gout), free(out0), free(bias);
  free(mine), free(all), free(mine_bits), free(all_bits);
}

int main(int argc, char **argv) {
  test_init(&argc, &argv, &rank, &W);
  tpi_tune_budget = INFINITY; /* auto's runner-up runs in its first calls, however much slower (tune.c) */
  int quick = 0;
  const char *algo_list = "unfused,ring,bidir_ring,shm_pull,auto";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) quick = 1;
    if (strcmp(argv[i], "--algos") == 0 && i + 1 < argc) algo_list = argv[++i];
    if (strcmp(argv[i], "--every") == 0 && i + 1 < argc) every = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
    /* ranks with different local tunables: only rank 0's may shape messages
     * (they reach the others through the agreement); a divergence would hang */
    if (strcmp(argv[i], "--mixed-params") == 0) {
      tpmm_set_param(TPMM_PARAM_SEGMENT_BYTES, rank % 2 ? 1 : 0);
      tpmm_set_param(TPMM_PARAM_SEND_WINDOW, rank % 3);
      tpmm_set_param(TPMM_PARAM_PROGRESS_THREAD, rank % 2);
      tpmm_set_param(TPMM_PARAM_PROGRESS_NAP_US, 100 * rank);
    }
  }
  /* parse the algorithm list (unfused is always first: the others compare to it) */
  algos[n_algos++] = TPMM_ALGO_UNFUSED;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", algo_list);
  for (char *tok = strtok(buf, ","); tok && n_algos < 8; tok = strtok(NULL, ","))
    for (int a = 0; a <= TPMM_ALGO_SHM_PULL; a++)
      if (strcmp(tok, tpmm_algo_name((tpmm_algo_t)a)) == 0 && a != TPMM_ALGO_UNFUSED) algos[n_algos++] = a;

  const char *es = getenv("TPMM_TEST_SEED");
  seed = es ? strtoull(es, NULL, 10) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (rank == 0)
    printf("test_agmm: W=%d seed=%llu (TPMM_TEST_SEED=%llu reproduces)\n", W, (unsigned long long)seed,
           (unsigned long long)seed);

  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  static const int64_t ms[] = {0, 1, 7, 512}, ks[] = {1, 7, 255, 256, 4097}, ns[] = {512, 3, 1};
  rng_t pick = {seed * 31 + 7};
  int idx = 0;
  for (int d = 0; d < 3; d++) {
    /* 1. every (m, k) of the issue, with the largest n of {512, 3, 1} that keeps
     *    the fp64 reference affordable, options drawn at random */
    for (int mi = 0; mi < 4; mi++)
      for (int ki = 0; ki < 5; ki++) {
        if (quick && (mi + ki + d) % 3) continue;
        cfg_t c = {dts[d], ms[mi], ks[ki], 1, 0, 0, 0, 1, 0, 0};
        for (int ni = 0; ni < 3; ni++)
          if (ms[mi] * W * ks[ki] * ns[ni] <= 40000000 || ni == 2) {
            c.n = ns[ni];
            break;
          }
        c.trans_in = (int)rng_range(&pick, 0, 1);
        c.trans_x2 = (int)rng_range(&pick, 0, 1);
        c.bias = (int)rng_range(&pick, 0, 2);
        c.gather_output = (int)rng_range(&pick, 0, 1);
        static const int turns[] = {0, 1, 3};
        c.comm_turn = turns[rng_range(&pick, 0, 2)];
        if (c.comm_turn > (c.m > 1 ? c.m : 1)) c.comm_turn = 1;
        c.strided = (int)rng_range(&pick, 0, 1);
        run_cfg(&c, idx++);
      }
    /* 2. every option combination on a small odd shape */
    for (int opt = 0; opt < 2 * 2 * 3 * 2 * 3 * 2; opt++) {
      if (quick && opt % 7) continue;
      int v = opt;
      cfg_t c = {dts[d], 5, 33, 17, 0, 0, 0, 1, 0, 0};
      c.trans_in = v % 2, v /= 2;
      c.trans_x2 = v % 2, v /= 2;
      c.bias = v % 3, v /= 3;
      c.gather_output = v % 2, v /= 2;
      static const int turns[] = {0, 1, 3};
      c.comm_turn = turns[v % 3], v /= 3;
      c.strided = v % 2;
      run_cfg(&c, idx++);
    }
  }
  int rc = finish("test_agmm");
  tpmm_finalize();
  return rc;
}
