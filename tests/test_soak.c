/*
 * test_soak.c — many random calls on 4 ranks, every result checked, no
 * growth (issue 4 "Tools in CI": the soak).
 *
 *   mpirun -n 4 test_soak [N]        N calls (default 10000)
 *   mpirun -n 4 test_soak --known-bug-testsome 200
 *                                    ring chunk counts past the known bug
 *                                    (see soak_call; crashes until fixed)
 *
 * Every call draws, from a seed shared by all ranks: the operation (one-shot
 * call 80%; 2-3 persistent plans created, then executed 3-6 times in a
 * random order all ranks draw alike, and destroyed 10%; a call whose input
 * lives in a tpmm_alloc_shared buffer, freed afterwards 10%), the group (the world, or a sub-group of all ranks in
 * reverse order), dtype, m 0..40, k 1..100, n 0..60, transposes, bias (none,
 * input dtype, fp32), gather_output, comm_turn and the algorithm (auto,
 * unfused, ring, bidir_ring, shm_pull). Each rank draws its own input and x2,
 * and its own local tunables (a timeout or none, segment size, send window,
 * progress mode), which must not matter once the ranks have agreed.
 * Checks, on every call: status SUCCESS; output within the dtype-derived
 * tolerance of an fp64 reference (as in test_agmm.c); gather_out a bit-exact
 * copy of the gathered rows; outputs poisoned beforehand so unwritten
 * elements show up.
 * Growth: resident memory (/proc/self/statm) at call min(1000, N/2) and at
 * the end must differ by less than 2 MiB on every rank (the GEMM setups a
 * group keeps, 8 LRU entries of oneDNN primitives, move resident memory up
 * and down by about 1 MiB with random shapes and no trend over 4000 calls;
 * a leak of 5 KiB per call fails at N = 1000, whose window is 500 calls); the live MPI objects
 * tpmm created (tpi_live: communicators, windows, datatypes, counted at
 * every create and free) must be steady at every 1000th call (no datatype
 * alive between calls, communicators unchanged, at most one cached shared
 * window per group) and back to their value right after tpmm_init once the
 * sub-group is destroyed.
 * Seed: TPMM_TEST_SEED or the clock, printed by rank 0. Progress every 1000
 * calls on rank 0.
 */
#include <time.h>
#include <unistd.h>

#include "src/comm/comm.h"
#include "testutil.h"

static int W, rank;
static uint64_t seed;
static const char *const REV = "soak_rev";
static int known_bug_testsome;

typedef struct {
  tpmm_dtype_t dt;
  int64_t m, k, n;
  int trans_in, trans_x2, bias, gather_output, comm_turn, rev, shared;
  tpmm_algo_t algo;
} cfg_t;

static long rss_kib(void) {
  long pages = 0, res = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Buffers of one call; the input may be in a symmetric buffer. */
typedef struct {
  void *in, *x2, *out, *gout, *bias;
  double *all, *x2d, *biasd; /* logical gathered input (mW x k) in group order, x2 (k x n), bias */
  uint8_t *all_bits;         /* the same as raw elements, for gather_out */
} bufs_t;

/* Draw this rank's input (stored layout) and gather everyone's, in group
 * order, for the reference. Collective over the world. */
static void draw_input(const cfg_t *c, bufs_t *b, rng_t *r) {
  const size_t es = dt_size(c->dt);
  const int64_t m = c->m, k = c->k, in_c = c->trans_in ? m : k;
  fill_randn(b->in, c->dt, c->trans_in ? k : m, in_c, in_c, r);
  uint8_t *mine = malloc((size_t)(m * k + 1) * es), *allw = malloc((size_t)(m * W * k + 1) * es);
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < k; j++)
      memcpy(mine + (size_t)(i * k + j) * es, (char *)b->in + (size_t)(c->trans_in ? j * m + i : i * k + j) * es, es);
  int bytes = (int)(m * k * (int64_t)es);
  MPI_Allgather(mine, bytes, MPI_BYTE, allw, bytes, MPI_BYTE, MPI_COMM_WORLD);
  /* group rank g is world rank g, or W-1-g in the reversed group */
  for (int g = 0; g < W; g++) {
    int wr = c->rev ? W - 1 - g : g;
    memcpy(b->all_bits + (size_t)g * (size_t)bytes, allw + (size_t)wr * (size_t)bytes, (size_t)bytes);
  }
  for (int64_t i = 0; i < m * W * k; i++) b->all[i] = get_el(b->all_bits, c->dt, i);
  free(mine), free(allw);
}

static int check_call(const cfg_t *c, const bufs_t *b, const char *what, long it) {
  const size_t es = dt_size(c->dt);
  const int64_t mw = c->m * W, k = c->k, n = c->n;
  const tpmm_dtype_t bdt = c->bias == 2 ? TPMM_FLOAT32 : c->dt;
  int bad = 0;
  for (int64_t i = 0; i < mw; i++)
    for (int64_t j = 0; j < n; j++) {
      double ref = 0, mag = 0;
      const double *a = b->all + i * k;
      for (int64_t q = 0; q < k; q++) {
        double p = a[q] * b->x2d[q * n + j];
        ref += p, mag += fabs(p);
      }
      if (c->bias) ref += b->biasd[j], mag += fabs(b->biasd[j]);
      double got = get_el(b->out, c->dt, i * n + j);
      if (!within_tol(got, ref, mag, c->dt, k)) bad++;
    }
  int gbad = c->gather_output && memcmp(b->gout, b->all_bits, (size_t)(mw * k) * es) != 0;
  (void)bdt;
  if (bad || gbad)
    fprintf(stderr,
            "[rank %d] call %ld (%s): %s m=%lld k=%lld n=%lld trans=%d,%d bias=%d gather_output=%d comm_turn=%d "
            "algo=%s group=%s shared=%d: %d output elements off, gather_out %s (seed %llu)\n",
            rank, it, what, dt_name(c->dt), (long long)c->m, (long long)k, (long long)n, c->trans_in, c->trans_x2,
            c->bias, c->gather_output, c->comm_turn, tpmm_algo_name(c->algo), c->rev ? REV : "world", c->shared, bad,
            gbad ? "WRONG" : "ok", (unsigned long long)seed);
  return !bad && !gbad;
}

/* One drawn call: its configuration, buffers, tensors and options. */
typedef struct {
  cfg_t c;
  bufs_t b;
  tpmm_tensor_t ti, tx, to, tg, tb;
  tpmm_all_gather_matmul_opts_t o;
  tpmm_plan_t *plan;
} call_t;

static const tpmm_algo_t algos[] = {TPMM_ALGO_AUTO, TPMM_ALGO_UNFUSED, TPMM_ALGO_RING, TPMM_ALGO_BIDIR_RING,
                                    TPMM_ALGO_SHM_PULL};

static void draw_cfg(cfg_t *c, rng_t *s, int kind) {
  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  c->dt = dts[rng_range(s, 0, 2)];
  c->m = rng_range(s, 0, 40);
  c->k = rng_range(s, 1, 100);
  c->n = rng_range(s, 0, 60);
  c->trans_in = (int)rng_range(s, 0, 1);
  c->trans_x2 = (int)rng_range(s, 0, 1);
  c->bias = (int)rng_range(s, 0, 2);
  c->gather_output = rng_range(s, 0, 3) != 0;
  c->comm_turn = rng_range(s, 0, 1) ? 0 : (int)rng_range(s, 1, c->m > 1 ? c->m : 1);
  c->rev = (int)rng_range(s, 0, 1);
  c->algo = algos[rng_range(s, 0, 4)];
  /* rings keep W*C <= 64 chunk receives here; --known-bug-testsome lets
   * them all finish at once, the regression test of a fixed bug
   * (MPI_Testsome's output array; docs/RELIABILITY.md) */
  if (c->algo == TPMM_ALGO_RING || c->algo == TPMM_ALGO_BIDIR_RING) {
    int cmax = (int)(c->m < 64 / W ? c->m : 64 / W);
    c->comm_turn = known_bug_testsome ? (int)(c->m > 0 ? c->m : 1) : (int)rng_range(s, 1, cmax > 1 ? cmax : 1);
  }
  c->shared = kind == 1;
  if (c->shared) c->trans_in = 0; /* a dense input is what shm_pull publishes by reference */
}

/* Buffers, this rank's x2 and bias, tensors and options of call x. */
static int call_setup(call_t *x, long it, rng_t *own) {
  const cfg_t *c = &x->c;
  const char *group = c->rev ? REV : TPMM_WORLD_COMM_GROUP;
  const size_t es = dt_size(c->dt);
  const int64_t m = c->m, k = c->k, n = c->n, mw = m * W;
  bufs_t *b = &x->b;
  memset(b, 0, sizeof *b);
  size_t in_bytes = (size_t)(m * k) * es;
  if (c->shared) {
    tpmm_status_t st = tpmm_alloc_shared(group, in_bytes, &b->in);
    check(st == TPMM_SUCCESS, "call %ld: tpmm_alloc_shared(%zu): %s", it, in_bytes, tpmm_last_error());
    if (st != TPMM_SUCCESS) return 0;
  } else {
    b->in = malloc(in_bytes + es);
  }
  b->x2 = malloc((size_t)(k * n + 1) * es);
  b->out = malloc((size_t)(mw * n + 1) * es);
  b->gout = malloc((size_t)(mw * k + 1) * es);
  b->bias = malloc((size_t)(n + 1) * 4);
  b->all = malloc(sizeof(double) * (size_t)(mw * k + 1));
  b->x2d = malloc(sizeof(double) * (size_t)(k * n + 1));
  b->biasd = malloc(sizeof(double) * (size_t)(n + 1));
  b->all_bits = malloc((size_t)(mw * k + 1) * es);
  const tpmm_dtype_t bdt = c->bias == 2 ? TPMM_FLOAT32 : c->dt;
  fill_randn(b->x2, c->dt, c->trans_x2 ? n : k, c->trans_x2 ? k : n, c->trans_x2 ? k : n, own);
  for (int64_t q = 0; q < k; q++)
    for (int64_t j = 0; j < n; j++) b->x2d[q * n + j] = get_el(b->x2, c->dt, c->trans_x2 ? j * k + q : q * n + j);
  fill_randn(b->bias, bdt, 1, n, n, own);
  for (int64_t j = 0; j < n; j++) b->biasd[j] = get_el(b->bias, bdt, j);
  x->ti = (tpmm_tensor_t){b->in, c->dt, 2, {c->trans_in ? k : m, c->trans_in ? m : k}, 0};
  x->tx = (tpmm_tensor_t){b->x2, c->dt, 2, {c->trans_x2 ? n : k, c->trans_x2 ? k : n}, 0};
  x->to = (tpmm_tensor_t){b->out, c->dt, 2, {mw, n}, 0};
  x->tg = (tpmm_tensor_t){b->gout, c->dt, 2, {mw, k}, 0};
  x->tb = (tpmm_tensor_t){b->bias, bdt, 1, {n, 0}, 0};
  x->o = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  x->o.bias = c->bias ? &x->tb : NULL;
  x->o.trans_input = c->trans_in;
  x->o.trans_x2 = c->trans_x2;
  x->o.gather_output = c->gather_output;
  x->o.comm_turn = c->comm_turn;
  x->plan = NULL;
  return 1;
}

static void call_free(call_t *x, long it) {
  bufs_t *b = &x->b;
  tpmm_plan_destroy(x->plan);
  if (x->c.shared) {
    tpmm_status_t st = tpmm_free_shared(b->in);
    check(st == TPMM_SUCCESS, "call %ld: tpmm_free_shared: %s", it, tpmm_last_error());
  } else {
    free(b->in);
  }
  free(b->x2), free(b->out), free(b->gout), free(b->bias), free(b->all), free(b->x2d), free(b->biasd);
  free(b->all_bits);
}

/* Run x once (one-shot, or its plan's execute) on a fresh input and check it. */
static long call_run(call_t *x, long it, rng_t *own) {
  const cfg_t *c = &x->c;
  const int64_t mw = c->m * W;
  const char *group = c->rev ? REV : TPMM_WORLD_COMM_GROUP;
  tpmm_set_param(TPMM_PARAM_ALGO, c->algo);
  draw_input(c, &x->b, own);
  poison(x->b.out, c->dt, mw * c->n + 1);
  poison(x->b.gout, c->dt, mw * c->k + 1);
  tpmm_tensor_t *tg = c->gather_output ? &x->tg : NULL;
  tpmm_status_t st = x->plan ? tpmm_plan_execute(x->plan, &x->ti, &x->to, tg)
                             : tpmm_all_gather_matmul(&x->ti, &x->tx, group, W, &x->o, &x->to, tg);
  const char *what = x->plan ? "plan" : c->shared ? "shared input" : "call";
  check(st == TPMM_SUCCESS, "call %ld (%s): %s", it, what, tpmm_last_error());
  if (st == TPMM_SUCCESS) check(check_call(c, &x->b, what, it), "call %ld: %s result wrong", it, what);
  return 1;
}

/* Local tunables that change nothing on the wire once agreed, different on
 * every rank: a timeout on some, segment sizes, send windows, progress. */
static void draw_local_params(rng_t *own) {
  static const int64_t segs[] = {0, 64, 4096, 256 << 10};
  tpmm_set_param(TPMM_PARAM_TIMEOUT_MS, rng_range(own, 0, 3) == 0 ? 120000 : 0);
  tpmm_set_param(TPMM_PARAM_SEGMENT_BYTES, segs[rng_range(own, 0, 3)]);
  tpmm_set_param(TPMM_PARAM_SEND_WINDOW, rng_range(own, 0, 3));
  tpmm_set_param(TPMM_PARAM_PROGRESS_THREAD, rng_range(own, 0, 2));
}

/* Plans of 2..3 calls, created in order, then executed in random orders that
 * all ranks draw alike (a layer skipped here, another twice there). */
static long plans_in_turn(long it, rng_t *s, rng_t *own) {
  call_t x[3];
  const int np = (int)rng_range(s, 2, 3);
  long calls = 0;
  int made = 0;
  for (int i = 0; i < np; i++) {
    draw_cfg(&x[i].c, s, 0);
    if (!call_setup(&x[i], it, own)) break;
    made++;
    tpmm_tensor_t pi = x[i].ti, po = x[i].to, pg = x[i].tg;
    pi.data = po.data = pg.data = NULL;
    tpmm_set_param(TPMM_PARAM_ALGO, x[i].c.algo);
    tpmm_status_t st = tpmm_all_gather_matmul_plan_create(&pi, &x[i].tx, x[i].c.rev ? REV : TPMM_WORLD_COMM_GROUP, W,
                                                          &x[i].o, &po, x[i].c.gather_output ? &pg : NULL, &x[i].plan);
    check(st == TPMM_SUCCESS, "call %ld: plan_create: %s", it, tpmm_last_error());
    if (st != TPMM_SUCCESS) break;
    /* the plan copied x2 and bias: scribbling on them must not matter */
    memset(x[i].b.x2, 0x55, (size_t)(x[i].c.k * x[i].c.n) * dt_size(x[i].c.dt));
    memset(x[i].b.bias, 0x55, (size_t)x[i].c.n * 4);
  }
  const int steps = made == np ? (int)rng_range(s, 3, 6) : 0;
  for (int t = 0; t < steps; t++) calls += call_run(&x[rng_range(s, 0, np - 1)], it, own);
  for (int i = 0; i < made; i++) call_free(&x[i], it);
  return calls;
}

static long soak_call(long it, rng_t *shared_rng, rng_t *own) {
  rng_t *s = shared_rng;
  int kind = (int)rng_range(s, 0, 9); /* 0: plans, 1: shared input, else one-shot */
  draw_local_params(own);
  if (kind == 0) return plans_in_turn(it, s, own);
  call_t x;
  draw_cfg(&x.c, s, kind);
  if (!call_setup(&x, it, own)) return 0;
  long calls = call_run(&x, it, own);
  call_free(&x, it);
  return calls;
}

int main(int argc, char **argv) {
  /* oneDNN keeps up to 1024 JIT-compiled primitives in its cache (by design,
   * LRU): with random shapes that is tens of MiB of growth that is not a
   * leak. A small cache makes the resident-memory check about tpmm. */
  setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8", 0);
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  test_init(&argc, &argv, &rank, &W);
  long N = 10000;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--known-bug-testsome") == 0)
      known_bug_testsome = 1;
    else
      N = strtol(argv[i], NULL, 10);
  }
  if (N < 2) N = 2;
  const char *es = getenv("TPMM_TEST_SEED");
  seed = es ? strtoull(es, NULL, 10) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (rank == 0)
    printf("test_soak: W=%d N=%ld seed=%llu (TPMM_TEST_SEED reproduces)\n", W, N, (unsigned long long)seed);
  fflush(stdout);
  int64_t live0[TPI_LIVE_COUNT], live_mark[TPI_LIVE_COUNT] = {0};
  memcpy(live0, tpi_live, sizeof live0);
  int *ranks = malloc(sizeof(int) * (size_t)W);
  for (int i = 0; i < W; i++) ranks[i] = W - 1 - i;
  tpmm_status_t st = tpmm_create_group(REV, W, ranks);
  free(ranks);
  check(st == TPMM_SUCCESS, "create_group: %s", tpmm_last_error());

  rng_t shared = {seed}, own = {seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(rank + 1))};
  const long mark = N / 2 < 1000 ? N / 2 : 1000;
  long rss_mark = 0, calls = 0;
  double t0 = now(), t_mark = 0;
  for (long it = 1; it <= N && st == TPMM_SUCCESS; it++) {
    calls += soak_call(it, &shared, &own);
    if (it == mark) {
      rss_mark = rss_kib();
      memcpy(live_mark, tpi_live, sizeof live_mark);
      t_mark = now();
    }
    if (it % 1000 == 0 || it == N) {
      /* between calls: no datatype alive, communicators as after the
       * sub-group's creation, at most one cached window per group */
      check(tpi_live[TPI_LIVE_TYPE] == live0[TPI_LIVE_TYPE], "call %ld: %lld MPI datatypes alive between calls", it,
            (long long)tpi_live[TPI_LIVE_TYPE]);
      check(tpi_live[TPI_LIVE_WIN] <= live0[TPI_LIVE_WIN] + 2, "call %ld: %lld MPI windows alive (at most 2 expected)",
            it, (long long)tpi_live[TPI_LIVE_WIN]);
      if (it >= mark)
        check(tpi_live[TPI_LIVE_COMM] == live_mark[TPI_LIVE_COMM], "call %ld: %lld communicators, %lld at call %ld", it,
              (long long)tpi_live[TPI_LIVE_COMM], (long long)live_mark[TPI_LIVE_COMM], mark);
      if (rank == 0 && it % 1000 == 0) {
        printf("test_soak: %ld/%ld calls, %.1f s, rss %ld KiB\n", it, N, now() - t0, rss_kib());
        fflush(stdout);
      }
    }
  }
  double t_end = now();
  long rss_end = rss_kib();
  long grow = rss_end - rss_mark, grow_max;
  MPI_Allreduce(&grow, &grow_max, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
  check(grow < 2048, "resident memory grew by %ld KiB between call %ld (%ld KiB) and call %ld (%ld KiB)", grow, mark,
        rss_mark, N, rss_end);
  st = tpmm_destroy_group(REV);
  check(st == TPMM_SUCCESS, "destroy_group: %s", tpmm_last_error());
  /* the world group keeps its cached shm_pull window until finalize */
  static const char *const kinds[] = {"communicators", "windows", "datatypes"};
  for (int i = 0; i < TPI_LIVE_COUNT; i++)
    check(tpi_live[i] - live0[i] == (i == TPI_LIVE_WIN ? tpi_live[i] > live0[i] : 0),
          "%lld live MPI %s after destroying the sub-group, %lld after tpmm_init", (long long)tpi_live[i], kinds[i],
          (long long)live0[i]);
  if (rank == 0)
    printf(
        "test_soak: %ld calls (%ld operations) in %.1f s (%.2f ms per call after call %ld); rss growth after call "
        "%ld: at most %ld KiB over the ranks; live MPI objects after destroy: %lld comm, %lld win, %lld type "
        "(after init: %lld, %lld, %lld)\n",
        N, calls, t_end - t0, 1e3 * (t_end - t_mark) / (double)(N - mark > 0 ? N - mark : 1), mark, mark, grow_max,
        (long long)tpi_live[0], (long long)tpi_live[1], (long long)tpi_live[2], (long long)live0[0],
        (long long)live0[1], (long long)live0[2]);
  /* every MPI object tpmm created is freed by finalize: all counts 0 (the
   * test owns MPI, so the tally still works afterwards) */
  st = tpmm_finalize();
  check(st == TPMM_SUCCESS, "tpmm_finalize: %s", tpmm_last_error());
  for (int i = 0; i < TPI_LIVE_COUNT; i++)
    check(tpi_live[i] == 0, "%lld live MPI %s after tpmm_finalize", (long long)tpi_live[i], kinds[i]);
  int rc = finish("test_soak");
  MPI_Finalize();
  return rc;
}
