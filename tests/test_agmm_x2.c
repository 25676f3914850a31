/*
 * test_agmm_x2.c — gather_index 1 (x2 gathered: rank q holds k_q rows of it,
 * input is (m, K) with K = sum of k_q) through tpmm_all_gather_matmul (equal
 * shards) and tpmm_all_gather_matmul_v (counts), on whatever world size
 * mpirun gives (CTest: 1 to 4 and 8).
 *
 * For each configuration (dtype, shards: equal, random with zeros, one rank
 * holding all, one long shard of several panels; m, n, transposes, bias,
 * gather_output, comm_turn, strides) every rank draws its own input and x2
 * shard from the run's seed (printed; TPMM_TEST_SEED reproduces), so that it
 * can regenerate every peer's shard for the reference; poisons output and
 * gather_out before every call; runs every algorithm (unfused first), one-shot
 * and as a plan, and checks: output of unfused against an fp64 reference
 * (dtype-derived tolerance over K terms), every algorithm, comm_turn and the
 * plan bit-identical to unfused, gather_out the gathered x2 bit for bit
 * (logical orientation whatever trans_x2), padding untouched.
 * An algorithm a group cannot run returns UNSUPPORTED everywhere: skipped.
 *
 * Options: --quick (fewer configurations), --algos a,b,c.
 */
#include <signal.h>
#include <time.h>

#include "testutil.h"

typedef struct {
  tpmm_dtype_t dt;
  int pattern; /* 0 equal (plain entry), 1 random with zeros, 2 one rank, 3 one long shard, 4 equal via _v */
  int64_t m, n;
  int ti, tx, bias, gout, ct, strided;
} cfg_t;

static int W, rank;
static uint64_t seed;
static int algos[8], n_algos;

static void make_counts(const cfg_t *c, int idx, int64_t *cnt) {
  rng_t r = {seed * 7919 + (uint64_t)idx};
  for (int q = 0; q < W; q++) switch (c->pattern) {
      case 0:
      case 4: cnt[q] = 37; break;
      case 1: cnt[q] = rng_range(&r, 0, 2) == 0 ? 0 : rng_range(&r, 1, 300); break;
      case 2: cnt[q] = q == (int)(seed % (uint64_t)W) ? 70 : 0; break;
      default: cnt[q] = q == W - 1 ? 1100 : rng_range(&r, 0, 40); /* 3 panels of 512 */
    }
  if (c->pattern == 1) cnt[W - 1] += 1; /* K >= 1 */
}

typedef struct {
  const cfg_t *c;
  int64_t *cnt, *row0, K, kr, ld_in, ld_x2, ld_out, ld_g;
  void *in, *x2, *bias, *out, *gout, *out0, *X; /* X: the gathered x2, logical (K x n) */
  tpmm_tensor_t t_in, t_x2, t_out, t_g, t_b;
  tpmm_all_gather_matmul_opts_t o;
} ctx_t;

static void setup(ctx_t *x, const cfg_t *c, int idx) {
  const tpmm_dtype_t dt = c->dt;
  const size_t es = dt_size(dt);
  const int64_t pad = c->strided ? 3 : 0, m = c->m, n = c->n;
  memset(x, 0, sizeof *x);
  x->c = c;
  x->cnt = malloc(sizeof(int64_t) * (size_t)W), x->row0 = malloc(sizeof(int64_t) * (size_t)(W + 1));
  make_counts(c, idx, x->cnt);
  x->row0[0] = 0;
  for (int q = 0; q < W; q++) x->row0[q + 1] = x->row0[q] + x->cnt[q];
  x->K = x->row0[W], x->kr = x->cnt[rank];
  x->X = malloc((size_t)(x->K * n + 1) * es);
  for (int q = 0; q < W; q++)
    gen_for((char *)x->X + (size_t)(x->row0[q] * n) * es, dt, x->cnt[q] * n, seed, q, 1 + idx % 50);
  /* this rank's shard in its stored layout */
  const int64_t x2_r = c->tx ? n : x->kr, x2_c = c->tx ? x->kr : n;
  x->ld_x2 = x2_c + pad;
  x->x2 = calloc((size_t)(x2_r * x->ld_x2 + 1), es);
  const char *mine = (char *)x->X + (size_t)(x->row0[rank] * n) * es;
  for (int64_t i = 0; i < x->kr; i++)
    for (int64_t j = 0; j < n; j++)
      memcpy((char *)x->x2 + (size_t)(c->tx ? j * x->ld_x2 + i : i * x->ld_x2 + j) * es,
             mine + (size_t)(i * n + j) * es, es);
  rng_t r = {seed ^ (0x100000001b3ull * (uint64_t)(idx + 1)) ^ ((uint64_t)rank << 48)};
  const int64_t in_r = c->ti ? x->K : m, in_c = c->ti ? m : x->K;
  x->ld_in = in_c + pad, x->ld_out = n + pad, x->ld_g = n + pad;
  x->in = calloc((size_t)(in_r * x->ld_in + 1), es);
  fill_randn(x->in, dt, in_r, in_c, x->ld_in, &r);
  const tpmm_dtype_t bdt = c->bias == 2 ? TPMM_FLOAT32 : dt;
  x->bias = c->bias ? malloc((size_t)(n + 1) * 4) : NULL;
  if (x->bias) fill_randn(x->bias, bdt, 1, n, n, &r);
  x->out = malloc((size_t)(m * x->ld_out + 1) * es), x->out0 = malloc((size_t)(m * x->ld_out + 1) * es);
  x->gout = malloc((size_t)(x->K * x->ld_g + 1) * es);
  x->t_in = (tpmm_tensor_t){x->in, dt, 2, {in_r, in_c}, x->ld_in};
  x->t_x2 = (tpmm_tensor_t){x->x2, dt, 2, {x2_r, x2_c}, x->ld_x2};
  x->t_out = (tpmm_tensor_t){x->out, dt, 2, {m, n}, x->ld_out};
  x->t_g = (tpmm_tensor_t){x->gout, dt, 2, {x->K, n}, x->ld_g};
  x->t_b = (tpmm_tensor_t){x->bias, bdt, 1, {n, 0}, 0};
  x->o = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  x->o.bias = x->bias ? &x->t_b : NULL, x->o.gather_index = 1;
  x->o.gather_output = c->gout, x->o.comm_turn = c->ct, x->o.trans_input = c->ti, x->o.trans_x2 = c->tx;
  int64_t most = 1; /* comm_turn up to the largest shard */
  for (int q = 0; q < W; q++) most = x->cnt[q] > most ? x->cnt[q] : most;
  if (x->o.comm_turn > most) x->o.comm_turn = (int)most;
}

static void teardown(ctx_t *x) {
  free(x->cnt), free(x->row0), free(x->X), free(x->in), free(x->x2), free(x->bias);
  free(x->out), free(x->out0), free(x->gout);
}

static void poison_all(ctx_t *x) {
  poison(x->out, x->c->dt, x->c->m * x->ld_out + 1);
  poison(x->gout, x->c->dt, x->K * x->ld_g + 1);
}

static tpmm_status_t call(ctx_t *x) {
  if (x->c->pattern == 0)
    return tpmm_all_gather_matmul(&x->t_in, &x->t_x2, TPMM_WORLD_COMM_GROUP, W, &x->o, &x->t_out, &x->t_g);
  return tpmm_all_gather_matmul_v(&x->t_in, &x->t_x2, TPMM_WORLD_COMM_GROUP, W, x->cnt, &x->o, &x->t_out, &x->t_g);
}

static tpmm_status_t run_plan(ctx_t *x, int reps) {
  tpmm_plan_t *plan = NULL;
  tpmm_tensor_t p_in = x->t_in, p_out = x->t_out, p_g = x->t_g;
  p_in.data = p_out.data = p_g.data = NULL;
  tpmm_tensor_t *pg = x->c->gout ? &p_g : NULL;
  tpmm_status_t st = x->c->pattern == 0 ? tpmm_all_gather_matmul_plan_create(&p_in, &x->t_x2, TPMM_WORLD_COMM_GROUP, W,
                                                                             &x->o, &p_out, pg, &plan)
                                        : tpmm_all_gather_matmul_v_plan_create(&p_in, &x->t_x2, TPMM_WORLD_COMM_GROUP,
                                                                               W, x->cnt, &x->o, &p_out, pg, &plan);
  for (int rep = 0; rep < reps && st == TPMM_SUCCESS; rep++) {
    poison_all(x);
    st = tpmm_plan_execute(plan, &x->t_in, &x->t_out, &x->t_g);
  }
  tpmm_plan_destroy(plan);
  return st;
}

static int check_reference(const ctx_t *x) {
  const cfg_t *c = x->c;
  const tpmm_dtype_t dt = c->dt, bdt = c->bias == 2 ? TPMM_FLOAT32 : dt;
  const size_t es = dt_size(dt);
  int bad = 0;
  for (int64_t i = 0; i < c->m; i++)
    for (int64_t j = 0; j < c->n; j++) {
      double mag;
      const int64_t as = c->ti ? x->ld_in : 1, a0 = c->ti ? i : i * x->ld_in;
      double ref = ref_dot((char *)x->in + (size_t)a0 * es, as, (char *)x->X + (size_t)j * es, c->n, dt, x->K,
                           x->bias ? get_el(x->bias, bdt, j) : 0.0, &mag);
      double got = get_el(x->out, dt, i * x->ld_out + j);
      if (!within_tol(got, ref, mag, dt, x->K) && bad++ < 3)
        fprintf(stderr, "[rank %d] out[%lld,%lld] = %.9g, ref %.9g\n", rank, (long long)i, (long long)j, got, ref);
    }
  return bad;
}

static int check_layout(const ctx_t *x) {
  const cfg_t *c = x->c;
  const size_t es = dt_size(c->dt);
  int ok = is_poison(x->out, c->dt, c->m * x->ld_out);
  for (int64_t i = 0; i < c->m; i++)
    for (int64_t j = c->n; j < x->ld_out; j++) ok &= is_poison(x->out, c->dt, i * x->ld_out + j);
  for (int64_t i = 0; i < x->K * x->ld_g + 1 && !c->gout; i++) ok &= is_poison(x->gout, c->dt, i);
  for (int64_t i = 0; i < x->K && c->gout; i++) {
    ok &= memcmp((char *)x->gout + (size_t)(i * x->ld_g) * es, (char *)x->X + (size_t)(i * c->n) * es,
                 (size_t)c->n * es) == 0;
    for (int64_t j = c->n; j < x->ld_g; j++) ok &= is_poison(x->gout, c->dt, i * x->ld_g + j);
  }
  return ok;
}

static void run_cfg(const cfg_t *c, int idx) {
  char desc[150];
  snprintf(desc, sizeof desc, "%s pattern=%d m=%lld n=%lld W=%d ti=%d tx=%d bias=%d gout=%d ct=%d strided=%d",
           dt_name(c->dt), c->pattern, (long long)c->m, (long long)c->n, W, c->ti, c->tx, c->bias, c->gout, c->ct,
           c->strided);
  test_case(desc, 180);
  ctx_t x;
  setup(&x, c, idx);
  const size_t out_bytes = (size_t)(c->m * x.ld_out + 1) * dt_size(c->dt);
  for (int ai = 0; ai < n_algos; ai++) {
    const char *an = tpmm_algo_name((tpmm_algo_t)algos[ai]);
    tpmm_set_param(TPMM_PARAM_ALGO, algos[ai]);
    poison_all(&x);
    tpmm_status_t st = call(&x);
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
    check(check_layout(&x), "[%s] %s: gather_out not the gathered x2, or padding written", an, desc);
  }
  const int algo = algos[idx % n_algos];
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  tpmm_status_t st = run_plan(&x, 2);
  if (!(st == TPMM_ERR_UNSUPPORTED && algo != TPMM_ALGO_UNFUSED)) {
    const char *an = tpmm_algo_name((tpmm_algo_t)algo);
    check(st == TPMM_SUCCESS, "[plan %s] %s: status %d: %s", an, desc, st, tpmm_last_error());
    check(st != TPMM_SUCCESS || memcmp(x.out0, x.out, out_bytes) == 0, "[plan %s] %s: not bit-identical to unfused", an,
          desc);
    check(st != TPMM_SUCCESS || check_layout(&x), "[plan %s] %s: gather_out or padding wrong", an, desc);
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
  if (rank == 0) printf("test_agmm_x2: W=%d seed=%llu (TPMM_TEST_SEED reproduces)\n", W, (unsigned long long)seed);

  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  rng_t pick = {seed * 41 + 3};
  int idx = 0;
  for (int d = 0; d < 3; d++)
    for (int pattern = 0; pattern < 5; pattern++)
      for (int v = 0; v < (quick ? 1 : 2); v++) {
        cfg_t c = {dts[d], pattern, v ? 1 : 9, v ? 33 : 5, 0, 0, 0, 1, 0, 0};
        if (pattern == 2 && v) c.m = 0; /* no output rows: gather_out still filled */
        c.ti = (int)rng_range(&pick, 0, 1), c.tx = (int)rng_range(&pick, 0, 1);
        c.bias = (int)rng_range(&pick, 0, 2), c.gout = (int)rng_range(&pick, 0, 1);
        c.strided = (int)rng_range(&pick, 0, 1);
        static const int turns[] = {0, 1, 2, 3};
        c.ct = turns[rng_range(&pick, 0, 3)];
        run_cfg(&c, idx++);
      }
  int rc = finish("test_agmm_x2");
  tpmm_finalize();
  return rc;
}
