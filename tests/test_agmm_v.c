/*
 * test_agmm_v.c — tpmm_all_gather_matmul_v (uneven shards, gather_index 0)
 * on whatever world size mpirun gives (CTest: 1, 2, 3, 4 and 8 ranks).
 *
 * For each configuration (dtype, counts, k, n, transposes, bias,
 * gather_output, comm_turn, strides) every rank:
 *   - draws its own rows and its own x2 from the run's seed (printed;
 *     TPMM_TEST_SEED reproduces), so that it can regenerate any peer's rows
 *     for the reference without communication;
 *   - poisons output and gather_out (and their padding) before every call;
 *   - runs every algorithm (unfused first), one-shot and as a plan, and checks
 *     output against an fp64 reference with the dtype-derived tolerance
 *     (testutil.h), gather_out bit for bit, padding untouched, and every
 *     algorithm and the plan bit-identical to unfused; even counts also
 *     against tpmm_all_gather_matmul.
 * Counts: even, random with zeros, one rank holding everything, all zero,
 * one large shard; every rank computes the same counts from the seed.
 * An algorithm a group cannot run (shm_pull across nodes, hier in one)
 * returns UNSUPPORTED on every rank and is skipped.
 *
 * Options: --quick (fewer shapes), --algos a,b,c.
 */
#include <signal.h>
#include <time.h>

#include "testutil.h"

typedef struct {
  tpmm_dtype_t dt;
  int pattern; /* counts: 0 even, 1 random with zeros, 2 one rank, 3 all zero, 4 one large */
  int64_t k, n;
  int ti, tx, bias, gout, ct, strided;
} cfg_t;

static int W, rank;
static uint64_t seed;
static int algos[8], n_algos;

static void make_counts(const cfg_t *c, int idx, int64_t *cnt) {
  rng_t r = {seed * 7919 + (uint64_t)idx};
  for (int q = 0; q < W; q++) {
    switch (c->pattern) {
      case 0: cnt[q] = 5; break;
      case 1: cnt[q] = rng_range(&r, 0, 2) == 0 ? 0 : rng_range(&r, 1, 9); break;
      case 2: cnt[q] = q == (int)(seed % (uint64_t)W) ? 13 : 0; break;
      case 3: cnt[q] = 0; break;
      default: cnt[q] = q == W - 1 ? 37 : rng_range(&r, 0, 3);
    }
  }
}

typedef struct {
  const cfg_t *c;
  int64_t *cnt, *row0, total, m, ld_in, ld_x2, ld_out, ld_g, in_r, in_c, x2_r, x2_c;
  void *in, *x2, *bias, *out, *gout, *out0, *rows; /* rows: every rank's logical (total x k) input */
  tpmm_tensor_t t_in, t_x2, t_out, t_g, t_b;
  tpmm_all_gather_matmul_opts_t o;
} ctx_t;

static void setup(ctx_t *x, const cfg_t *c, int idx) {
  const tpmm_dtype_t dt = c->dt;
  const size_t es = dt_size(dt);
  const int64_t pad = c->strided ? 3 : 0, k = c->k, n = c->n;
  x->c = c;
  x->cnt = malloc(sizeof(int64_t) * (size_t)W), x->row0 = malloc(sizeof(int64_t) * (size_t)(W + 1));
  make_counts(c, idx, x->cnt);
  x->row0[0] = 0;
  for (int q = 0; q < W; q++) x->row0[q + 1] = x->row0[q] + x->cnt[q];
  x->total = x->row0[W], x->m = x->cnt[rank];
  x->rows = malloc((size_t)(x->total * k + 1) * es);
  for (int q = 0; q < W; q++) /* tag 1 + idx: fresh rows per configuration */
    gen_for((char *)x->rows + (size_t)(x->row0[q] * k) * es, dt, x->cnt[q] * k, seed, q, 1 + idx % 50);
  x->in_r = c->ti ? k : x->m, x->in_c = c->ti ? x->m : k;
  x->x2_r = c->tx ? n : k, x->x2_c = c->tx ? k : n;
  x->ld_in = x->in_c + pad, x->ld_x2 = x->x2_c + pad, x->ld_out = n + pad, x->ld_g = k + pad;
  x->in = calloc((size_t)(x->in_r * x->ld_in + 1), es);
  const char *mine = (char *)x->rows + (size_t)(x->row0[rank] * k) * es;
  for (int64_t i = 0; i < x->m; i++)
    for (int64_t j = 0; j < k; j++)
      memcpy((char *)x->in + (size_t)(c->ti ? j * x->ld_in + i : i * x->ld_in + j) * es,
             mine + (size_t)(i * k + j) * es, es);
  rng_t r = {seed ^ (0x100000001b3ull * (uint64_t)(idx + 1)) ^ ((uint64_t)rank << 48)};
  x->x2 = calloc((size_t)(x->x2_r * x->ld_x2 + 1), es);
  fill_randn(x->x2, dt, x->x2_r, x->x2_c, x->ld_x2, &r);
  const tpmm_dtype_t bdt = c->bias == 2 ? TPMM_FLOAT32 : dt;
  x->bias = c->bias ? malloc((size_t)(n + 1) * 4) : NULL;
  if (x->bias) fill_randn(x->bias, bdt, 1, n, n, &r);
  x->out = malloc((size_t)(x->total * x->ld_out + 1) * es), x->out0 = malloc((size_t)(x->total * x->ld_out + 1) * es);
  x->gout = malloc((size_t)(x->total * x->ld_g + 1) * es);
  x->t_in = (tpmm_tensor_t){x->in, dt, 2, {x->in_r, x->in_c}, x->ld_in};
  x->t_x2 = (tpmm_tensor_t){x->x2, dt, 2, {x->x2_r, x->x2_c}, x->ld_x2};
  x->t_out = (tpmm_tensor_t){x->out, dt, 2, {x->total, n}, x->ld_out};
  x->t_g = (tpmm_tensor_t){x->gout, dt, 2, {x->total, k}, x->ld_g};
  x->t_b = (tpmm_tensor_t){x->bias, bdt, 1, {n, 0}, 0};
  x->o = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  x->o.bias = x->bias ? &x->t_b : NULL;
  x->o.gather_output = c->gout, x->o.comm_turn = c->ct, x->o.trans_input = c->ti, x->o.trans_x2 = c->tx;
}

static void teardown(ctx_t *x) {
  free(x->cnt), free(x->row0), free(x->rows), free(x->in), free(x->x2), free(x->bias);
  free(x->out), free(x->out0), free(x->gout);
}

static void poison_all(ctx_t *x) {
  poison(x->out, x->c->dt, x->total * x->ld_out + 1);
  poison(x->gout, x->c->dt, x->total * x->ld_g + 1);
}

/* output against fp64; returns the number of bad elements */
static int check_reference(const ctx_t *x) {
  const cfg_t *c = x->c;
  const tpmm_dtype_t dt = c->dt, bdt = c->bias == 2 ? TPMM_FLOAT32 : dt;
  const size_t es = dt_size(dt);
  int bad = 0;
  for (int64_t i = 0; i < x->total; i++)
    for (int64_t j = 0; j < c->n; j++) {
      double mag;
      const int64_t bs = c->tx ? 1 : x->ld_x2, b0 = c->tx ? j * x->ld_x2 : j;
      double ref = ref_dot((char *)x->rows + (size_t)(i * c->k) * es, 1, (char *)x->x2 + (size_t)b0 * es, bs, dt, c->k,
                           x->bias ? get_el(x->bias, bdt, j) : 0.0, &mag);
      double got = get_el(x->out, dt, i * x->ld_out + j);
      if (!within_tol(got, ref, mag, dt, c->k) && bad++ < 3)
        fprintf(stderr, "[rank %d] out[%lld,%lld] = %.9g, ref %.9g\n", rank, (long long)i, (long long)j, got, ref);
    }
  return bad;
}

/* gather_out rows bit-exact (or untouched), padding of both untouched */
static int check_layout(const ctx_t *x) {
  const cfg_t *c = x->c;
  const size_t es = dt_size(c->dt);
  int ok = is_poison(x->out, c->dt, x->total * x->ld_out);
  for (int64_t i = 0; i < x->total; i++)
    for (int64_t j = c->n; j < x->ld_out; j++) ok &= is_poison(x->out, c->dt, i * x->ld_out + j);
  for (int64_t i = 0; i < x->total * x->ld_g + 1 && !c->gout; i++) ok &= is_poison(x->gout, c->dt, i);
  for (int64_t i = 0; i < x->total && c->gout; i++) {
    ok &= memcmp((char *)x->gout + (size_t)(i * x->ld_g) * es, (char *)x->rows + (size_t)(i * c->k) * es,
                 (size_t)c->k * es) == 0;
    for (int64_t j = c->k; j < x->ld_g; j++) ok &= is_poison(x->gout, c->dt, i * x->ld_g + j);
  }
  return ok;
}

static tpmm_status_t run_plan(ctx_t *x, int reps) {
  tpmm_plan_t *plan = NULL;
  tpmm_tensor_t p_in = x->t_in, p_out = x->t_out, p_g = x->t_g;
  p_in.data = p_out.data = p_g.data = NULL;
  tpmm_status_t st = tpmm_all_gather_matmul_v_plan_create(&p_in, &x->t_x2, TPMM_WORLD_COMM_GROUP, W, x->cnt, &x->o,
                                                          &p_out, x->c->gout ? &p_g : NULL, &plan);
  for (int rep = 0; rep < reps && st == TPMM_SUCCESS; rep++) {
    poison_all(x);
    st = tpmm_plan_execute(plan, &x->t_in, &x->t_out, &x->t_g);
  }
  tpmm_plan_destroy(plan);
  return st;
}

static void run_cfg(const cfg_t *c, int idx) {
  char desc[150];
  snprintf(desc, sizeof desc, "%s pattern=%d k=%lld n=%lld W=%d ti=%d tx=%d bias=%d gout=%d ct=%d strided=%d",
           dt_name(c->dt), c->pattern, (long long)c->k, (long long)c->n, W, c->ti, c->tx, c->bias, c->gout, c->ct,
           c->strided);
  test_case(desc, 120);
  ctx_t x;
  setup(&x, c, idx);
  const size_t out_bytes = (size_t)(x.total * x.ld_out + 1) * dt_size(c->dt);
  for (int ai = 0; ai < n_algos; ai++) {
    const char *an = tpmm_algo_name((tpmm_algo_t)algos[ai]);
    tpmm_set_param(TPMM_PARAM_ALGO, algos[ai]);
    poison_all(&x);
    tpmm_status_t st =
        tpmm_all_gather_matmul_v(&x.t_in, &x.t_x2, TPMM_WORLD_COMM_GROUP, W, x.cnt, &x.o, &x.t_out, &x.t_g);
    if (st == TPMM_ERR_UNSUPPORTED && ai > 0) continue; /* this group cannot run it (every rank) */
    check(st == TPMM_SUCCESS, "[%s] %s: status %d: %s", an, desc, st, tpmm_last_error());
    if (st != TPMM_SUCCESS) break;
    if (ai == 0) {
      const int bad = check_reference(&x);
      check(bad == 0, "[%s] %s: %d output elements differ from the fp64 reference (seed %llu)", an, desc, bad,
            (unsigned long long)seed);
      memcpy(x.out0, x.out, out_bytes);
    } else {
      check(memcmp(x.out0, x.out, out_bytes) == 0, "[%s] %s: output is not bit-identical to unfused", an, desc);
    }
    check(check_layout(&x), "[%s] %s: gather_out not the gathered rows, or padding written", an, desc);
  }
  /* a plan with one of the algorithms, executed twice */
  const int algo = algos[idx % n_algos];
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  tpmm_status_t st = run_plan(&x, 2);
  if (!(st == TPMM_ERR_UNSUPPORTED && algo != TPMM_ALGO_UNFUSED)) {
    check(st == TPMM_SUCCESS, "[plan %s] %s: status %d: %s", tpmm_algo_name((tpmm_algo_t)algo), desc, st,
          tpmm_last_error());
    check(st != TPMM_SUCCESS || memcmp(x.out0, x.out, out_bytes) == 0,
          "[plan %s] %s: output is not bit-identical to unfused", tpmm_algo_name((tpmm_algo_t)algo), desc);
    check(st != TPMM_SUCCESS || check_layout(&x), "[plan %s] %s: gather_out or padding wrong",
          tpmm_algo_name((tpmm_algo_t)algo), desc);
  }
  /* even counts: the same bits as tpmm_all_gather_matmul */
  if (c->pattern == 0) {
    tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
    poison_all(&x);
    st = tpmm_all_gather_matmul(&x.t_in, &x.t_x2, TPMM_WORLD_COMM_GROUP, W, &x.o, &x.t_out, &x.t_g);
    check(st == TPMM_SUCCESS && memcmp(x.out0, x.out, out_bytes) == 0,
          "%s: even counts differ from tpmm_all_gather_matmul (status %d)", desc, st);
  }
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
  teardown(&x);
}

int main(int argc, char **argv) {
  test_init(&argc, &argv, &rank, &W);
  signal(SIGALRM, test_on_alarm);
  int quick = 0;
  const char *list = "unfused,ring,bidir_ring,shm_pull,hier,auto";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) quick = 1;
    if (strcmp(argv[i], "--algos") == 0 && i + 1 < argc) list = argv[++i];
  }
  algos[n_algos++] = TPMM_ALGO_UNFUSED;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *tok = strtok(buf, ","); tok && n_algos < 8; tok = strtok(NULL, ","))
    for (int a = TPMM_ALGO_AUTO; a <= TPMM_ALGO_HIER; a++)
      if (strcmp(tok, tpmm_algo_name((tpmm_algo_t)a)) == 0 && a != TPMM_ALGO_UNFUSED) algos[n_algos++] = a;
  const char *es = getenv("TPMM_TEST_SEED");
  seed = es ? strtoull(es, NULL, 10) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (rank == 0) printf("test_agmm_v: W=%d seed=%llu (TPMM_TEST_SEED reproduces)\n", W, (unsigned long long)seed);

  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  rng_t pick = {seed * 31 + 11};
  int idx = 0;
  for (int d = 0; d < 3; d++)
    for (int pattern = 0; pattern < 5; pattern++)
      for (int v = 0; v < (quick ? 1 : 3); v++) {
        cfg_t c = {dts[d], pattern, v == 2 ? 257 : 33, v == 1 ? 1 : 17, 0, 0, 0, 1, 0, 0};
        c.ti = (int)rng_range(&pick, 0, 1), c.tx = (int)rng_range(&pick, 0, 1);
        c.bias = (int)rng_range(&pick, 0, 2), c.gout = (int)rng_range(&pick, 0, 1);
        c.strided = (int)rng_range(&pick, 0, 1);
        static const int turns[] = {0, 1, 2, 5};
        c.ct = turns[rng_range(&pick, 0, 3)];
        if (pattern == 3) c.ct = c.ct > 1 ? 1 : c.ct; /* no shard: comm_turn <= 1 */
        if (pattern == 1 && c.ct > 1) c.ct = 1;       /* the largest random shard may be 1 row */
        run_cfg(&c, idx++);
      }
  int rc = finish("test_agmm_v");
  tpmm_finalize();
  return rc;
}
