/*
 * test_agmm_multi.c — tpmm_all_gather_matmul_multi (one gather, nb weights)
 * and its plans, on whatever world size mpirun gives (CTest: 1 to 4 and 8).
 *
 * For each configuration (dtype, m, k, nb weights of different n, a bias per
 * weight that is absent, of the input's dtype or float32, transposes,
 * strides, gather_output, comm_turn) every rank draws its own input and
 * weights from the run's seed (printed; TPMM_TEST_SEED reproduces), then:
 *   - computes every weight alone with tpmm_all_gather_matmul (unfused), and
 *     checks those outputs against an fp64 reference (dtype-derived
 *     tolerance, testutil.h);
 *   - runs the multi call under every algorithm, one-shot and as a plan
 *     (tpmm_plan_execute_multi), outputs and gather_out poisoned before each
 *     call, and checks every output[i] bit-identical to its single call,
 *     gather_out bit-exact, padding untouched.
 * Options: --quick (fewer shapes), --algos a,b,c.
 */
#include <signal.h>

#include "src/gemm/gemm.h"
#include "src/pipeline/pipeline.h"
#include "testutil.h"

enum { MAXNB = 16 };

typedef struct {
  tpmm_dtype_t dt;
  int64_t m, k;
  int nb, ti, tx, gout, ct, strided;
} cfg_t;

static int W, rank;
static uint64_t seed;
static int algos[8], n_algos;

typedef struct {
  int64_t n[MAXNB], ld_out[MAXNB], ld_x2[MAXNB];
  int bias[MAXNB]; /* 0 none, 1 input dtype, 2 float32 */
  void *x2[MAXNB], *b[MAXNB], *out[MAXNB], *ref[MAXNB];
  tpmm_tensor_t tx[MAXNB], tb[MAXNB], to[MAXNB];
  const tpmm_tensor_t *px2[MAXNB], *pb[MAXNB];
  tpmm_tensor_t *po[MAXNB];
  void *in, *gout;
  int64_t ld_in, ld_g, mw;
  tpmm_tensor_t t_in, t_g;
  tpmm_all_gather_matmul_opts_t o;
} ctx_t;

static size_t out_bytes(const ctx_t *x, int i, tpmm_dtype_t dt) {
  return (size_t)(x->mw * x->ld_out[i] + 1) * dt_size(dt);
}

static void setup(ctx_t *x, const cfg_t *c, int idx) {
  const tpmm_dtype_t dt = c->dt;
  const size_t es = dt_size(dt);
  const int64_t pad = c->strided ? 2 : 0, m = c->m, k = c->k;
  rng_t r = {seed ^ (0x100000001b3ull * (uint64_t)(idx + 1)) ^ ((uint64_t)rank << 48)};
  rng_t shared = {seed * 131 + (uint64_t)idx}; /* the same on every rank: n and bias kinds */
  memset(x, 0, sizeof *x);
  x->mw = m * W;
  const int64_t in_r = c->ti ? k : m, in_c = c->ti ? m : k;
  x->ld_in = in_c + pad, x->ld_g = k + pad;
  x->in = calloc((size_t)(in_r * x->ld_in + 1), es);
  fill_randn(x->in, dt, in_r, in_c, x->ld_in, &r);
  x->gout = malloc((size_t)(x->mw * x->ld_g + 1) * es);
  x->t_in = (tpmm_tensor_t){x->in, dt, 2, {in_r, in_c}, x->ld_in};
  x->t_g = (tpmm_tensor_t){x->gout, dt, 2, {x->mw, k}, x->ld_g};
  for (int i = 0; i < c->nb; i++) {
    const int64_t n = rng_range(&shared, 1, 40), x2_r = c->tx ? n : k, x2_c = c->tx ? k : n;
    x->n[i] = n, x->bias[i] = (int)rng_range(&shared, 0, 2);
    x->ld_x2[i] = x2_c + pad, x->ld_out[i] = n + pad;
    x->x2[i] = calloc((size_t)(x2_r * x->ld_x2[i] + 1), es);
    fill_randn(x->x2[i], dt, x2_r, x2_c, x->ld_x2[i], &r);
    const tpmm_dtype_t bdt = x->bias[i] == 2 ? TPMM_FLOAT32 : dt;
    x->b[i] = x->bias[i] ? malloc((size_t)(n + 1) * 4) : NULL;
    if (x->b[i]) fill_randn(x->b[i], bdt, 1, n, n, &r);
    x->out[i] = malloc(out_bytes(x, i, dt)), x->ref[i] = malloc(out_bytes(x, i, dt));
    x->tx[i] = (tpmm_tensor_t){x->x2[i], dt, 2, {x2_r, x2_c}, x->ld_x2[i]};
    x->tb[i] = (tpmm_tensor_t){x->b[i], bdt, 1, {n, 0}, 0};
    x->to[i] = (tpmm_tensor_t){x->out[i], dt, 2, {x->mw, n}, x->ld_out[i]};
    x->px2[i] = &x->tx[i], x->pb[i] = x->b[i] ? &x->tb[i] : NULL, x->po[i] = &x->to[i];
  }
  x->o = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  x->o.gather_output = c->gout, x->o.comm_turn = c->ct, x->o.trans_input = c->ti, x->o.trans_x2 = c->tx;
}

static void teardown(ctx_t *x, int nb) {
  for (int i = 0; i < nb; i++) free(x->x2[i]), free(x->b[i]), free(x->out[i]), free(x->ref[i]);
  free(x->in), free(x->gout);
}

static void poison_all(ctx_t *x, const cfg_t *c) {
  for (int i = 0; i < c->nb; i++) poison(x->out[i], c->dt, x->mw * x->ld_out[i] + 1);
  poison(x->gout, c->dt, x->mw * x->ld_g + 1);
}

/* The single call of weight i (unfused) into ref[i], checked against fp64
 * with every rank's input gathered by hand (all: mw x k logical, dense). */
static void singles(ctx_t *x, const cfg_t *c, const double *all, const char *desc) {
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
  for (int i = 0; i < c->nb; i++) {
    tpmm_all_gather_matmul_opts_t o = x->o;
    o.bias = x->pb[i];
    tpmm_tensor_t to = x->to[i];
    to.data = x->ref[i];
    poison(x->ref[i], c->dt, x->mw * x->ld_out[i] + 1);
    tpmm_status_t st = tpmm_all_gather_matmul(&x->t_in, &x->tx[i], TPMM_WORLD_COMM_GROUP, W, &o, &to, &x->t_g);
    check(st == TPMM_SUCCESS, "%s: single call of weight %d: %s", desc, i, tpmm_last_error());
    int bad = 0;
    for (int64_t r = 0; r < x->mw && st == TPMM_SUCCESS; r++)
      for (int64_t j = 0; j < x->n[i]; j++) {
        double ref = x->b[i] ? get_el(x->b[i], x->tb[i].dtype, j) : 0.0, mag = fabs(ref);
        for (int64_t q = 0; q < c->k; q++) {
          const double p =
              all[r * c->k + q] * get_el(x->x2[i], c->dt, c->tx ? j * x->ld_x2[i] + q : q * x->ld_x2[i] + j);
          ref += p, mag += fabs(p);
        }
        bad += !within_tol(get_el(x->ref[i], c->dt, r * x->ld_out[i] + j), ref, mag, c->dt, c->k);
      }
    check(bad == 0, "%s: weight %d alone: %d elements outside the fp64 tolerance (seed %llu)", desc, i, bad,
          (unsigned long long)seed);
  }
}

/* Every output bit-identical to its single call; gather_out the gathered rows. */
static void compare(ctx_t *x, const cfg_t *c, const void *gbits, const char *what, const char *desc) {
  const size_t es = dt_size(c->dt);
  for (int i = 0; i < c->nb; i++)
    check(memcmp(x->out[i], x->ref[i], out_bytes(x, i, c->dt)) == 0,
          "[%s] %s: output[%d] is not bit-identical to the single call", what, desc, i);
  int ok = 1;
  for (int64_t r = 0; r < x->mw; r++) {
    if (c->gout)
      ok &= memcmp((char *)x->gout + (size_t)(r * x->ld_g) * es, (const char *)gbits + (size_t)(r * c->k) * es,
                   (size_t)c->k * es) == 0;
    for (int64_t j = c->gout ? c->k : 0; j < x->ld_g; j++) ok &= is_poison(x->gout, c->dt, r * x->ld_g + j);
  }
  check(ok, "[%s] %s: gather_out is not the gathered rows (or written with gather_output false)", what, desc);
}

static void run_cfg(const cfg_t *c, int idx) {
  char desc[150];
  snprintf(desc, sizeof desc, "%s m=%lld k=%lld nb=%d W=%d ti=%d tx=%d gout=%d ct=%d strided=%d", dt_name(c->dt),
           (long long)c->m, (long long)c->k, c->nb, W, c->ti, c->tx, c->gout, c->ct, c->strided);
  test_case(desc, 120);
  ctx_t x;
  setup(&x, c, idx);
  const size_t es = dt_size(c->dt);
  /* everyone's input, logical and dense: fp64 values and bits */
  double *mine = malloc(sizeof(double) * (size_t)(c->m * c->k + 1)),
         *all = malloc(sizeof(double) * (size_t)(x.mw * c->k + 1));
  char *mbits = malloc((size_t)(c->m * c->k + 1) * es), *gbits = malloc((size_t)(x.mw * c->k + 1) * es);
  for (int64_t i = 0; i < c->m; i++)
    for (int64_t j = 0; j < c->k; j++) {
      const int64_t off = c->ti ? j * x.ld_in + i : i * x.ld_in + j;
      mine[i * c->k + j] = get_el(x.in, c->dt, off);
      memcpy(mbits + (size_t)(i * c->k + j) * es, (char *)x.in + (size_t)off * es, es);
    }
  MPI_Allgather(mine, (int)(c->m * c->k), MPI_DOUBLE, all, (int)(c->m * c->k), MPI_DOUBLE, MPI_COMM_WORLD);
  MPI_Allgather(mbits, (int)((size_t)(c->m * c->k) * es), MPI_BYTE, gbits, (int)((size_t)(c->m * c->k) * es), MPI_BYTE,
                MPI_COMM_WORLD);
  singles(&x, c, all, desc);
  for (int ai = 0; ai < n_algos; ai++) {
    const char *an = tpmm_algo_name((tpmm_algo_t)algos[ai]);
    tpmm_set_param(TPMM_PARAM_ALGO, algos[ai]);
    poison_all(&x, c);
    tpmm_status_t st =
        tpmm_all_gather_matmul_multi(&x.t_in, c->nb, x.px2, x.pb, TPMM_WORLD_COMM_GROUP, W, &x.o, x.po, &x.t_g);
    if (st == TPMM_ERR_UNSUPPORTED && algos[ai] != TPMM_ALGO_UNFUSED) continue; /* not on this group */
    check(st == TPMM_SUCCESS, "[%s] %s: status %d: %s", an, desc, st, tpmm_last_error());
    if (st == TPMM_SUCCESS) compare(&x, c, gbits, an, desc);
  }
  /* a plan with one of the algorithms, executed twice */
  const int algo = algos[idx % n_algos];
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  tpmm_plan_t *plan = NULL;
  tpmm_status_t st = tpmm_all_gather_matmul_multi_plan_create(&x.t_in, c->nb, x.px2, x.pb, TPMM_WORLD_COMM_GROUP, W,
                                                              &x.o, x.po, &x.t_g, &plan);
  /* bf16 outputs rarely show a sum order, so the backend (tpmm's own kernels or oneDNN) is
   * checked itself: every weight's is the one a single call of its shape gets (gemm.c) */
  const tpi_mat_t v = c->tx ? (tpi_mat_t){NULL, 1, 1, 1, 2} : (tpi_mat_t){NULL, 1, 1, 2, 1}; /* strides: layout */
  const tpi_gemm_backend_t *own = tpi_gemm_own_kernel(c->dt, &v, x.mw);
  for (int i = 0; i < c->nb && st == TPMM_SUCCESS; i++) {
    const tpi_gemm_backend_t *be = tpi_plan_gemm_w(plan, i)->be;
    check(own ? be == own : be != &tpi_gemm_dot && be != &tpi_gemm_amx,
          "[plan] %s: weight %d's GEMM on %s, expected %s", desc, i, be->name, own ? own->name : "oneDNN or ref");
  }
  for (int rep = 0; rep < 2 && st == TPMM_SUCCESS; rep++) {
    poison_all(&x, c);
    st = tpmm_plan_execute_multi(plan, &x.t_in, x.po, &x.t_g);
    if (st == TPMM_SUCCESS) compare(&x, c, gbits, "plan", desc);
  }
  check(st == TPMM_SUCCESS || (st == TPMM_ERR_UNSUPPORTED && algo != TPMM_ALGO_UNFUSED), "[plan %s] %s: %d %s",
        tpmm_algo_name((tpmm_algo_t)algo), desc, st, tpmm_last_error());
  tpmm_plan_destroy(plan);
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
  free(mine), free(all), free(mbits), free(gbits);
  teardown(&x, c->nb);
}

int main(int argc, char **argv) {
  test_init(&argc, &argv, &rank, &W);
  signal(SIGALRM, test_on_alarm);
  const int quick = test_algo_args(argc, argv, algos, &n_algos);
  seed = test_seed("test_agmm_multi", W);

  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  static const int64_t ms[] = {0, 1, 7, 33};
  static const int nbs[] = {1, 2, 3, 16};
  rng_t pick = {seed * 37 + 5};
  int idx = 0;
  for (int d = 0; d < 3; d++)
    for (int mi = 0; mi < 4; mi++)
      for (int bi = 0; bi < 4; bi++) {
        if (quick && (mi + bi + d) % 3) continue;
        cfg_t c = {dts[d], ms[mi], bi == 3 ? 9 : (mi % 2 ? 65 : 256), nbs[bi], 0, 0, 1, 0, 0};
        c.ti = (int)rng_range(&pick, 0, 1), c.tx = (int)rng_range(&pick, 0, 1);
        c.gout = (int)rng_range(&pick, 0, 1), c.strided = (int)rng_range(&pick, 0, 1);
        static const int turns[] = {0, 1, 3};
        c.ct = turns[rng_range(&pick, 0, 2)];
        if (c.ct > (c.m > 1 ? c.m : 1)) c.ct = 1;
        run_cfg(&c, idx++);
      }
  /* bf16 with a few gathered rows, x2 either way: tpmm's own kernels (src/gemm/gemm_amx.c,
   * gemm_dot.c) for every weight, as for the single calls it must equal */
  for (int64_t m = 1; m <= 2; m++)
    for (int nb = 2; nb <= 3; nb++)
      for (int tx = 0; tx < 2; tx++) run_cfg(&(cfg_t){TPMM_BFLOAT16, m, 65, nb, 0, tx, 1, 0, 0}, idx++);
  int rc = finish("test_agmm_multi");
  tpmm_finalize();
  return rc;
}
