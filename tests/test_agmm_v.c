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
 * The call is built and checked by agmm_case.h.
 *
 * Options: --quick (fewer shapes), --algos a,b,c.
 */
#include <signal.h>

#include "agmm_case.h"

static int W, rank;
static uint64_t seed;
static int algos[8], n_algos;

/* pattern: 0 even, 1 random with zeros, 2 one rank, 3 all zero, 4 one large */
static void make_counts(const agmm_cfg_t *c, int idx, int64_t *cnt) {
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

static void run_cfg(const agmm_cfg_t *c, int idx) {
  char desc[150];
  snprintf(desc, sizeof desc, "%s pattern=%d k=%lld n=%lld W=%d ti=%d tx=%d bias=%d gout=%d ct=%d strided=%d",
           dt_name(c->dt), c->pattern, (long long)c->d, (long long)c->n, W, c->ti, c->tx, c->bias, c->gout, c->ct,
           c->strided);
  test_case(desc, 120);
  int64_t cnt[W];
  make_counts(c, idx, cnt);
  agmm_case_t x;
  agmm_setup(&x, c, 0, cnt, W, seed, idx);
  agmm_sweep(&x, desc, algos, n_algos, idx, seed);
  /* even counts: the same bits as tpmm_all_gather_matmul */
  if (c->pattern == 0) {
    tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
    agmm_poison(&x);
    x.plain = 1;
    tpmm_status_t st = agmm_call(&x);
    check(st == TPMM_SUCCESS && memcmp(x.out0, x.out.data, agmm_bytes(&x.out)) == 0,
          "%s: even counts differ from tpmm_all_gather_matmul (status %d)", desc, st);
    tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
  }
  agmm_teardown(&x);
}

int main(int argc, char **argv) {
  test_init(&argc, &argv, &rank, &W);
  signal(SIGALRM, test_on_alarm);
  const int quick = test_algo_args(argc, argv, algos, &n_algos);
  seed = test_seed("test_agmm_v", W);

  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  rng_t pick = {seed * 31 + 11};
  int idx = 0;
  for (int d = 0; d < 3; d++)
    for (int pattern = 0; pattern < 5; pattern++)
      for (int v = 0; v < (quick ? 1 : 3); v++) {
        agmm_cfg_t c = {dts[d], pattern, v == 2 ? 257 : 33, v == 1 ? 1 : 17, 0, 0, 0, 1, 0, 0};
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
