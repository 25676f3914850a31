/*
 * test_agmm_x2.c — gather_index 1 (x2 gathered: rank q holds k_q rows of it,
 * input is (m, K) with K = sum of k_q) through tpmm_all_gather_matmul (equal
 * shards) and tpmm_all_gather_matmul_v (counts), on whatever world size
 * mpirun gives (CTest: 1 to 4 and 8).
 *
 * For each configuration (dtype, shards: equal, random with zeros, one rank
 * holding all, one long shard of several panels; m, n, transposes, bias,
 * gather_output, comm_turn, strides; and 70 rows of output, where the panels'
 * GEMMs keep a copy of each panel) every rank draws its own input and x2
 * shard from the run's seed (printed; TPMM_TEST_SEED reproduces), so that it
 * can regenerate every peer's shard for the reference; poisons output and
 * gather_out before every call; runs every algorithm (unfused first), one-shot
 * and as a plan, and checks: output of unfused against an fp64 reference
 * (dtype-derived tolerance over K terms), every algorithm, comm_turn and the
 * plan bit-identical to unfused, gather_out the gathered x2 bit for bit
 * (logical orientation whatever trans_x2), padding untouched.
 * An algorithm a group cannot run returns UNSUPPORTED everywhere: skipped.
 *
 * The call is built and checked by agmm_case.h.
 *
 * Options: --quick (fewer configurations), --algos a,b,c.
 */
#include <signal.h>

#include "agmm_case.h"
#include "src/common/debug.h"

static int W, rank;
static uint64_t seed;
static int algos[8], n_algos;

/* pattern: 0 equal (plain entry), 1 random with zeros, 2 one rank, 3 one long shard, 4 equal via _v */
static void make_counts(const agmm_cfg_t *c, int idx, int64_t *cnt) {
  rng_t r = {seed * 7919 + (uint64_t)idx};
  for (int q = 0; q < W; q++) switch (c->pattern) {
      case 0:
      case 4: cnt[q] = 37; break;
      case 1: cnt[q] = rng_range(&r, 0, 2) == 0 ? 0 : rng_range(&r, 1, 300); break;
      case 2: cnt[q] = q == (int)(seed % (uint64_t)W) ? 70 : 0; break;
      default: cnt[q] = q == W - 1 ? 2100 : rng_range(&r, 0, 40); /* 3 panels of 1024, the last of 52 */
    }
  if (c->pattern == 1) cnt[W - 1] += 1; /* K >= 1 */
}

/* A plan whose own shard's panels cannot be packed on one rank (TPMM_DEBUG_FAIL "the own panels"): every rank
 * returns TPMM_ERR_NO_MEMORY naming the event's rank, none waits; a plan made next succeeds and matches unfused. */
static void own_panels_fail(int idx) {
  const agmm_cfg_t c = {TPMM_BFLOAT16, 3, 70, 40, 0, 0, 0, 1, 0, 0};
  test_case("a plan's own panels not packed on one rank", 60);
  int64_t cnt[W];
  make_counts(&c, idx, cnt);
  agmm_case_t x;
  agmm_setup(&x, &c, 1, cnt, W, seed, idx);
  int f = (int)(seed % (uint64_t)W);
  while (cnt[f] == 0) f = (f + 1) % W; /* a rank with panels of its own (pattern 3 gives some ranks none) */
  agmm_poison(&x);                     /* the same poison as below: padding compares too */
  tpmm_status_t st = agmm_call(&x);
  check(st == TPMM_SUCCESS, "the unfused reference: %s", tpmm_last_error());
  memcpy(x.out0, x.out.data, agmm_bytes(&x.out));
  tpi_debug_set_fail("test_agmm_x2", rank == f ? "the own panels" : NULL);
  tpmm_plan_t *plan = NULL;
  st = agmm_plan_create(&x, &plan);
  char want[32];
  snprintf(want, sizeof want, "rank %d", f);
  check(st == TPMM_ERR_NO_MEMORY && plan == NULL && (rank == f || strstr(tpmm_last_error(), want)),
        "rank %d of %d failing: status %d, plan %p: %s", f, W, st, (void *)plan, tpmm_last_error());
  tpi_debug_set_fail("test_agmm_x2", NULL);
  tpmm_plan_destroy(plan);
  plan = NULL;
  st = agmm_plan_create(&x, &plan);
  agmm_poison(&x);
  if (st == TPMM_SUCCESS) st = tpmm_plan_execute(plan, &x.in, &x.out, &x.gout);
  check(st == TPMM_SUCCESS && memcmp(x.out0, x.out.data, agmm_bytes(&x.out)) == 0,
        "the plan after the failure: status %d (%s), or its output differs from unfused", st, tpmm_last_error());
  tpmm_plan_destroy(plan);
  agmm_teardown(&x);
}

static void run_cfg(const agmm_cfg_t *c, int idx) {
  char desc[150];
  snprintf(desc, sizeof desc, "%s pattern=%d m=%lld n=%lld W=%d ti=%d tx=%d bias=%d gout=%d ct=%d strided=%d",
           dt_name(c->dt), c->pattern, (long long)c->d, (long long)c->n, W, c->ti, c->tx, c->bias, c->gout, c->ct,
           c->strided);
  test_case(desc, 180);
  int64_t cnt[W], most = 1;
  make_counts(c, idx, cnt);
  agmm_case_t x;
  agmm_setup(&x, c, 1, cnt, W, seed, idx);
  x.plain = c->pattern == 0;
  for (int q = 0; q < W; q++) most = cnt[q] > most ? cnt[q] : most; /* comm_turn up to the largest shard */
  if (x.o.comm_turn > most) x.o.comm_turn = (int)most;
  agmm_sweep(&x, desc, algos, n_algos, idx, seed);
  agmm_teardown(&x);
}

int main(int argc, char **argv) {
  test_init(&argc, &argv, &rank, &W);
  signal(SIGALRM, test_on_alarm);
  const int quick = test_algo_args(argc, argv, algos, &n_algos);
  seed = test_seed("test_agmm_x2", W);

  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  rng_t pick = {seed * 41 + 3};
  int idx = 0;
  for (int d = 0; d < 3; d++)
    for (int pattern = 0; pattern < 5; pattern++)
      for (int v = 0; v < (quick ? 1 : 2); v++) {
        agmm_cfg_t c = {dts[d], pattern, v ? 1 : 9, v ? 33 : 5, 0, 0, 0, 1, 0, 0};
        if (pattern == 2 && v) c.d = 0; /* no output rows: gather_out still filled */
        c.ti = (int)rng_range(&pick, 0, 1), c.tx = (int)rng_range(&pick, 0, 1);
        c.bias = (int)rng_range(&pick, 0, 2), c.gout = (int)rng_range(&pick, 0, 1);
        c.strided = (int)rng_range(&pick, 0, 1);
        static const int turns[] = {0, 1, 2, 3};
        c.ct = turns[rng_range(&pick, 0, 3)];
        run_cfg(&c, idx++);
      }
  /* more than 32 rows of output: the panels' GEMMs keep a copy of each panel laid out for the kernel
   * (x2g.c), bf16 and fp32, one long shard of several panels and random ones, every comm_turn */
  for (int d = 1; d < 3; d++)
    for (int pattern = 1; pattern < 4; pattern += 2)
      for (int ct = 0; ct < (quick ? 2 : 4); ct++) {
        agmm_cfg_t c = {dts[d], pattern, 70, 40, 0, 0, 1, 1, ct, 0};
        c.ti = (int)rng_range(&pick, 0, 1), c.tx = (int)rng_range(&pick, 0, 1);
        run_cfg(&c, idx++);
      }
  own_panels_fail(idx++);
  int rc = finish("test_agmm_x2");
  tpmm_finalize();
  return rc;
}
