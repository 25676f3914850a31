/*
 * test_soak.c — many random calls of every operator on 4 ranks, every
 * result checked, no growth (issue 4 "Tools in CI": the soak).
 *
 *   mpirun -n 4 test_soak [N]        N calls (default 10000)
 *   mpirun -n 4 test_soak --known-bug-testsome 200
 *                                    ring chunk counts past the known bug
 *                                    (see draw_cfg; the regression test of a
 *                                    fixed crash)
 *
 * Every call draws, from a seed shared by all ranks: the operator
 * (all_gather_matmul with gather_index 0 or 1, its _v form with uneven
 * counts (zeros included), its _multi form with 1-3 weights,
 * matmul_reduce_scatter, matmul_all_reduce, with SUM or AVG), how it runs
 * (one-shot call 80%; 2-3 persistent plans created, then executed 3-6 times
 * in a random order all ranks draw alike, and destroyed 10%; a call whose
 * input lives in a tpmm_alloc_shared buffer, freed afterwards 10%), the
 * group (the world, or a sub-group of all ranks in reverse order), dtype,
 * shapes (rows 0..40, k 1..100, n 0..60), transposes, bias (none, input
 * dtype, fp32), gather_output, comm_turn and the algorithm (auto, unfused,
 * ring, bidir_ring, shm_pull; the reduce operators have no bidir_ring).
 * Each rank draws its own input and weights, and its own local tunables (a
 * timeout or none, segment size, send window, progress mode), which must
 * not matter once the ranks have agreed.
 * Checks, on every call: status SUCCESS; every output within the
 * dtype-derived tolerance of an fp64 reference built from all ranks'
 * operands (as in test_agmm.c and test_reduce.c); gather_out a bit-exact
 * copy of the gathered rows; outputs poisoned beforehand so unwritten
 * elements show up.
 * Growth, between call min(1000, N/2) and the end, on every rank:
 *   - the heap's bytes in use (mallinfo2: allocated and not freed, whatever
 *     the allocator keeps cached), sampled with the groups' one-shot caches
 *     emptied (8 GEMM setups and stashed workspaces, bounded by design;
 *     with random shapes they moved it by 1-2 MiB between samples), by less
 *     than 1 MiB: a leak of 3 KiB per call fails at N = 1000 (a window of
 *     500 calls); MPI's pools grow by a few hundred KiB in steps;
 *   - memory mappings, by at most 16 (a leaked window, stack or mmap'd
 *     block adds one; they were steady within 6 over 9000 calls);
 *   - resident memory (/proc/self/statm), by less than 3 MiB, with glibc's
 *     mmap threshold fixed (see main: its default, moving threshold lets
 *     random shapes fragment the heap, which is not a leak): MPI's pools and
 *     the fragmentation left moved it by 0.4-2.1 MiB in 10 000 calls.
 * The live MPI objects tpmm created (tpi_live: communicators, windows,
 * datatypes, counted at every create and free) must be steady at every
 * 1000th call (no datatype alive between calls, communicators unchanged, at
 * most one cached shared window per group) and back to their value right
 * after tpmm_init once the sub-group is destroyed.
 * Seed: TPMM_TEST_SEED or the clock, printed by rank 0. Progress every 1000
 * calls on rank 0 (every rank with SOAK_ALL=1), with resident memory and
 * the heap in use.
 */
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include "src/comm/comm.h"
#include "testutil.h"

enum { MAXW = 16, MAXNB = 3 };
enum { OP_AGMM, OP_AGMM_X2, OP_AGMM_V, OP_MULTI, OP_RS, OP_AR };
static const char *const op_names[] = {"all_gather_matmul",     "all_gather_matmul(gather_index=1)",
                                       "all_gather_matmul_v",   "all_gather_matmul_multi",
                                       "matmul_reduce_scatter", "matmul_all_reduce"};

static int W, rank;
static uint64_t seed;
static const char *const REV = "soak_rev";
static int known_bug_testsome;

/* One call's configuration, drawn alike on every rank. cnt[g] is group rank
 * g's gathered extent: input rows (gather_index 0, and m for the reduce
 * operators) or x2 rows (gather_index 1). */
typedef struct {
  int op, gi, nb, reduce_op;
  uint64_t bias_seed; /* the reduce operators' bias, the same on every rank (README) */
  tpmm_dtype_t dt;
  int64_t m, k, n[MAXNB], cnt[MAXW], total, cmax;
  int trans_in, trans_x2, bias[MAXNB], gather_output, comm_turn, rev, shared;
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

/* Empty a group's one-shot caches: its GEMM setups and stashed workspaces
 * (bounded by design: 8 setups, buffers up to 1 MiB), whose random shapes
 * move the heap in use by 1-2 MiB from one sample to the next. Local. */
static bool empty_caches(tpi_group_t *g, void *ctx) {
  (void)ctx;
  if (g->gemm_cache_release && g->gemm_cache) g->gemm_cache_release(g);
  if (g->ws_stash_release && g->ws_stash) g->ws_stash_release(g);
  return false;
}

/* Bytes the program holds from malloc (small blocks and mmap'd ones), with
 * every group's one-shot caches emptied first. */
static long heap_kib(void) {
  tpi_group_find_if(empty_caches, NULL);
  struct mallinfo2 mi = mallinfo2();
  return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

/* Memory mappings of the process (/proc/self/maps lines): a window, a
 * thread's stack or an mmap'd block left behind adds one. */
static int nmaps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  int n = 0, c;
  while (f && (c = fgetc(f)) != EOF) n += c == '\n';
  if (f) fclose(f);
  return n;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int group_rank(const cfg_t *c, int wr) { return c->rev ? W - 1 - wr : wr; }
static int is_reduce(const cfg_t *c) { return c->op == OP_RS || c->op == OP_AR; }
/* Logical rows and columns of group rank g's input and x2. */
static int64_t in_rows(const cfg_t *c, int g) { return c->gi ? c->m : c->cnt[g]; }
static int64_t in_cols(const cfg_t *c) { return c->gi ? c->total : c->k; }
static int64_t x2_rows(const cfg_t *c, int g) { return c->gi ? c->cnt[g] : c->k; }
/* Output rows: the gathered rows, m (gather_index 1, all_reduce) or m/W. */
static int64_t out_rows(const cfg_t *c) {
  return c->op == OP_RS ? c->m / W : c->gi || c->op == OP_AR ? c->m : c->total;
}

/* Buffers of one call; the input may be in a symmetric buffer. The
 * reference operands are logical row-major matrices of every group rank,
 * stacked in group order: ins (input rows), x2s (x2 rows, weight 0 only;
 * the multi operator needs only this rank's weights, in x2d). */
typedef struct {
  void *in, *x2[MAXNB], *out[MAXNB], *gout, *bias[MAXNB];
  uint8_t *in_bits, *x2_bits;
  double *ins, *x2s, *x2d[MAXNB], *biasd[MAXNB];
} bufs_t;

/* Stack every rank's logical rows x cols matrix (raw elements) in group
 * order into dst; rows[g] for group rank g. Collective over the world. */
static void gather_group(const cfg_t *c, const void *mine, const int64_t *rows, int64_t cols, uint8_t *dst) {
  const size_t es = dt_size(c->dt);
  int counts[MAXW], displs[MAXW];
  int64_t off[MAXW + 1] = {0};
  for (int g = 0; g < W; g++) off[g + 1] = off[g] + rows[g] * cols * (int64_t)es;
  for (int wr = 0; wr < W; wr++) {
    int g = group_rank(c, wr);
    counts[wr] = (int)(rows[g] * cols * (int64_t)es), displs[wr] = (int)off[g];
  }
  MPI_Allgatherv(mine, counts[rank], MPI_BYTE, dst, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
}

/* The logical (row-major) copy of a stored matrix, raw elements. */
static uint8_t *logical(const void *p, tpmm_dtype_t dt, int64_t rows, int64_t cols, int trans) {
  const size_t es = dt_size(dt);
  uint8_t *d = malloc((size_t)(rows * cols + 1) * es);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++)
      memcpy(d + (size_t)(i * cols + j) * es, (const char *)p + (size_t)(trans ? j * rows + i : i * cols + j) * es, es);
  return d;
}

static double *to_double(const uint8_t *bits, tpmm_dtype_t dt, int64_t n) {
  double *d = malloc(sizeof(double) * (size_t)(n + 1));
  for (int64_t i = 0; i < n; i++) d[i] = get_el(bits, dt, i);
  return d;
}

/* Draw this rank's input (stored layout) and gather everyone's logical
 * input for the reference. Collective over the world. */
static void draw_input(const cfg_t *c, bufs_t *b, rng_t *r) {
  const int me = group_rank(c, rank);
  const int64_t rows = in_rows(c, me), cols = in_cols(c);
  fill_randn(b->in, c->dt, c->trans_in ? cols : rows, c->trans_in ? rows : cols, c->trans_in ? rows : cols, r);
  int64_t rg[MAXW];
  for (int g = 0; g < W; g++) rg[g] = in_rows(c, g);
  uint8_t *mine = logical(b->in, c->dt, rows, cols, c->trans_in);
  gather_group(c, mine, rg, cols, b->in_bits);
  free(mine);
  free(b->ins);
  int64_t all = 0;
  for (int g = 0; g < W; g++) all += rg[g];
  b->ins = to_double(b->in_bits, c->dt, all * cols);
}

/* a[0..K) . column j of the K x n row-major x; adds |terms| to *mag. */
static double dot_col(const double *a, const double *x, int64_t n, int64_t j, int64_t K, double *mag) {
  double d = 0;
  for (int64_t q = 0; q < K; q++) d += a[q] * x[q * n + j], *mag += fabs(a[q] * x[q * n + j]);
  return d;
}

/* Reference of output i's element (row r of the output, column j). */
static double reference(const cfg_t *c, const bufs_t *b, int i, int64_t r, int64_t j, double *mag, int64_t *terms) {
  const int64_t n = c->n[i];
  double ref = 0, g_mag = 0;
  if (is_reduce(c)) {
    const int64_t row = c->op == OP_RS ? (int64_t)group_rank(c, rank) * (c->m / W) + r : r;
    for (int g = 0; g < W; g++)
      ref += dot_col(b->ins + ((int64_t)g * c->m + row) * c->k, b->x2s + (int64_t)g * c->k * n, n, j, c->k, &g_mag);
    if (c->reduce_op == TPMM_REDUCE_AVG) ref /= W, g_mag /= W;
    *terms = c->k + W;
  } else if (c->gi) {
    ref = dot_col(b->ins + ((int64_t)group_rank(c, rank) * c->m + r) * c->total, b->x2s, n, j, c->total, &g_mag);
    *terms = c->total;
  } else {
    ref = dot_col(b->ins + r * c->k, b->x2d[i], n, j, c->k, &g_mag);
    *terms = c->k;
  }
  if (c->bias[i]) ref += b->biasd[i][j], g_mag += fabs(b->biasd[i][j]);
  *mag = g_mag;
  return ref;
}

static int check_call(const cfg_t *c, const bufs_t *b, const char *what, long it) {
  const size_t es = dt_size(c->dt);
  const int64_t rows = out_rows(c);
  int bad = 0, gbad = 0;
  char first[128] = "";
  for (int i = 0; i < c->nb; i++)
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < c->n[i]; j++) {
        double mag;
        int64_t terms;
        double ref = reference(c, b, i, r, j, &mag, &terms);
        double got = get_el(b->out[i], c->dt, r * c->n[i] + j);
        if (!within_tol(got, ref, mag, c->dt, terms) && !bad++)
          snprintf(first, sizeof first, "; first: output %d [%lld, %lld] = %g, reference %g", i, (long long)r,
                   (long long)j, got, ref);
      }
  if (c->gather_output && !is_reduce(c)) {
    const void *want = c->gi ? b->x2_bits : b->in_bits;
    gbad = memcmp(b->gout, want, (size_t)(c->total * (c->gi ? c->n[0] : c->k)) * es) != 0;
  }
  if (bad || gbad)
    fprintf(stderr,
            "[rank %d] call %ld (%s): %s %s m=%lld k=%lld n=%lld total=%lld nb=%d trans=%d,%d bias=%d "
            "reduce_op=%d gather_output=%d comm_turn=%d algo=%s group=%s shared=%d: %d output elements off, "
            "gather_out %s (seed %llu)%s\n",
            rank, it, what, op_names[c->op], dt_name(c->dt), (long long)c->m, (long long)c->k, (long long)c->n[0],
            (long long)c->total, c->nb, c->trans_in, c->trans_x2, c->bias[0], c->reduce_op, c->gather_output,
            c->comm_turn, tpmm_algo_name(c->algo), c->rev ? REV : "world", c->shared, bad, gbad ? "WRONG" : "ok",
            (unsigned long long)seed, first);
  return !bad && !gbad;
}

/* One drawn call: its configuration, buffers, tensors and options. */
typedef struct {
  cfg_t c;
  bufs_t b;
  tpmm_tensor_t ti, tx[MAXNB], to[MAXNB], tg, tb[MAXNB];
  const tpmm_tensor_t *px[MAXNB], *pb[MAXNB];
  tpmm_tensor_t *po[MAXNB];
  tpmm_all_gather_matmul_opts_t o;
  tpmm_matmul_reduce_opts_t ro;
  tpmm_plan_t *plan;
} call_t;

static const tpmm_algo_t algos[] = {TPMM_ALGO_AUTO, TPMM_ALGO_UNFUSED, TPMM_ALGO_RING, TPMM_ALGO_SHM_PULL,
                                    TPMM_ALGO_BIDIR_RING};

static void draw_cfg(cfg_t *c, rng_t *s, int kind) {
  static const tpmm_dtype_t dts[] = {TPMM_FLOAT16, TPMM_BFLOAT16, TPMM_FLOAT32};
  static const int ops[] = {OP_AGMM, OP_AGMM, OP_AGMM, OP_AGMM_X2, OP_AGMM_V, OP_MULTI, OP_RS, OP_AR};
  memset(c, 0, sizeof *c);
  c->op = ops[rng_range(s, 0, 7)];
  c->dt = dts[rng_range(s, 0, 2)];
  c->m = c->op == OP_RS ? W * rng_range(s, 0, 40 / W) : rng_range(s, 0, 40);
  c->k = rng_range(s, 1, 100);
  c->nb = c->op == OP_MULTI ? (int)rng_range(s, 1, MAXNB) : 1;
  for (int i = 0; i < c->nb; i++) c->n[i] = rng_range(s, 0, 60), c->bias[i] = (int)rng_range(s, 0, 2);
  c->gi = c->op == OP_AGMM_X2 || (c->op == OP_AGMM_V && rng_range(s, 0, 1));
  /* the gathered extents: equal, or any of 0..40 (rows) / 0..100 (x2 rows) */
  c->total = c->cmax = 0;
  for (int g = 0; g < W; g++) {
    c->cnt[g] = c->op == OP_AGMM_V ? rng_range(s, 0, c->gi ? 100 : 40) : c->gi ? c->k : c->m;
    c->total += c->cnt[g];
    if (c->cnt[g] > c->cmax) c->cmax = c->cnt[g];
  }
  if (c->gi) c->k = c->cnt[0]; /* unused for gather_index 1 but printed */
  c->reduce_op = (int)rng_range(s, 0, 1);
  c->bias_seed = rng_next(s);
  c->trans_in = (int)rng_range(s, 0, 1);
  c->trans_x2 = (int)rng_range(s, 0, 1);
  c->gather_output = !is_reduce(c) && rng_range(s, 0, 3) != 0;
  c->rev = (int)rng_range(s, 0, 1);
  c->algo = algos[rng_range(s, 0, is_reduce(c) ? 3 : 4)];
  /* comm_turn up to the largest shard (the rows of each destination for
   * reduce_scatter, all rows for all_reduce); rings keep W*C <= 64 chunk
   * receives here; --known-bug-testsome lets them all finish at once, the
   * regression test of a fixed bug (MPI_Testsome's output array;
   * docs/RELIABILITY.md) */
  int64_t lim = c->op == OP_RS ? c->m / W : c->op == OP_AR ? c->m : c->cmax;
  if (lim < 1) lim = 1;
  c->comm_turn = rng_range(s, 0, 1) ? 0 : (int)rng_range(s, 1, lim);
  if (c->algo == TPMM_ALGO_RING || c->algo == TPMM_ALGO_BIDIR_RING) {
    int cap = (int)(lim < 64 / W ? lim : 64 / W);
    c->comm_turn = known_bug_testsome ? (int)lim : (int)rng_range(s, 1, cap > 1 ? cap : 1);
  }
  c->shared = kind == 1;
  if (c->shared) c->trans_in = 0; /* a dense input is what shm_pull publishes by reference */
}

/* Buffers, this rank's x2 and bias (everyone's x2 for the reference),
 * tensors and options of call x. */
static int call_setup(call_t *x, long it, rng_t *own) {
  const cfg_t *c = &x->c;
  const char *group = c->rev ? REV : TPMM_WORLD_COMM_GROUP;
  const size_t es = dt_size(c->dt);
  const int me = group_rank(c, rank);
  const int64_t irows = in_rows(c, me), icols = in_cols(c), xrows = x2_rows(c, me), orows = out_rows(c);
  int64_t all_in = 0;
  for (int g = 0; g < W; g++) all_in += in_rows(c, g);
  bufs_t *b = &x->b;
  memset(b, 0, sizeof *b);
  size_t in_bytes = (size_t)(irows * icols) * es;
  if (c->shared) {
    tpmm_status_t st = tpmm_alloc_shared(group, in_bytes, &b->in);
    check(st == TPMM_SUCCESS, "call %ld: tpmm_alloc_shared(%zu): %s", it, in_bytes, tpmm_last_error());
    if (st != TPMM_SUCCESS) return 0;
  } else {
    b->in = malloc(in_bytes + es);
  }
  b->in_bits = malloc((size_t)(all_in * icols + 1) * es);
  b->gout = malloc((size_t)(c->total * (c->gi ? c->n[0] : c->k) + 1) * es);
  for (int i = 0; i < c->nb; i++) {
    const int64_t n = c->n[i];
    const tpmm_dtype_t bdt = c->bias[i] == 2 ? TPMM_FLOAT32 : c->dt;
    b->x2[i] = malloc((size_t)(xrows * n + 1) * es);
    b->out[i] = malloc((size_t)(orows * n + 1) * es);
    b->bias[i] = malloc((size_t)(n + 1) * 4);
    fill_randn(b->x2[i], c->dt, c->trans_x2 ? n : xrows, c->trans_x2 ? xrows : n, c->trans_x2 ? xrows : n, own);
    uint8_t *lx = logical(b->x2[i], c->dt, xrows, n, c->trans_x2);
    b->x2d[i] = to_double(lx, c->dt, xrows * n);
    if (i == 0 && c->op != OP_MULTI) { /* everyone's x2: gather_index 1 and the reduce operators */
      int64_t rg[MAXW], all_x2 = 0;
      for (int g = 0; g < W; g++) rg[g] = x2_rows(c, g), all_x2 += rg[g];
      b->x2_bits = malloc((size_t)(all_x2 * n + 1) * es);
      gather_group(c, lx, rg, n, b->x2_bits);
      b->x2s = to_double(b->x2_bits, c->dt, all_x2 * n);
    }
    free(lx);
    rng_t same = {c->bias_seed};
    fill_randn(b->bias[i], bdt, 1, n, n, is_reduce(c) ? &same : own);
    b->biasd[i] = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t j = 0; j < n; j++) b->biasd[i][j] = get_el(b->bias[i], bdt, j);
    x->tx[i] = (tpmm_tensor_t){b->x2[i], c->dt, 2, {c->trans_x2 ? n : xrows, c->trans_x2 ? xrows : n}, 0};
    x->to[i] = (tpmm_tensor_t){b->out[i], c->dt, 2, {orows, n}, 0};
    x->tb[i] = (tpmm_tensor_t){b->bias[i], bdt, 1, {n, 0}, 0};
    x->px[i] = &x->tx[i], x->po[i] = &x->to[i], x->pb[i] = c->bias[i] ? &x->tb[i] : NULL;
  }
  x->ti = (tpmm_tensor_t){b->in, c->dt, 2, {c->trans_in ? icols : irows, c->trans_in ? irows : icols}, 0};
  x->tg = (tpmm_tensor_t){b->gout, c->dt, 2, {c->total, c->gi ? c->n[0] : c->k}, 0};
  x->o = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  x->o.bias = c->op == OP_MULTI ? NULL : x->pb[0];
  x->o.trans_input = c->trans_in;
  x->o.trans_x2 = c->trans_x2;
  x->o.gather_output = c->gather_output;
  x->o.comm_turn = c->comm_turn;
  x->o.gather_index = c->gi;
  x->ro = (tpmm_matmul_reduce_opts_t)TPMM_MATMUL_REDUCE_OPTS_INIT;
  x->ro.bias = x->pb[0];
  x->ro.reduce_op = (tpmm_reduce_op_t)c->reduce_op;
  x->ro.comm_turn = c->comm_turn;
  x->ro.trans_input = c->trans_in;
  x->ro.trans_x2 = c->trans_x2;
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
  for (int i = 0; i < x->c.nb; i++)
    free(b->x2[i]), free(b->out[i]), free(b->bias[i]), free(b->x2d[i]), free(b->biasd[i]);
  free(b->gout), free(b->in_bits), free(b->x2_bits), free(b->ins), free(b->x2s);
}

/* The one-shot call of x's operator. */
static tpmm_status_t one_shot(call_t *x, tpmm_tensor_t *tg) {
  const cfg_t *c = &x->c;
  const char *group = c->rev ? REV : TPMM_WORLD_COMM_GROUP;
  switch (c->op) {
    case OP_AGMM_V: return tpmm_all_gather_matmul_v(&x->ti, x->px[0], group, W, c->cnt, &x->o, x->po[0], tg);
    case OP_MULTI: return tpmm_all_gather_matmul_multi(&x->ti, c->nb, x->px, x->pb, group, W, &x->o, x->po, tg);
    case OP_RS: return tpmm_matmul_reduce_scatter(&x->ti, x->px[0], group, W, &x->ro, x->po[0]);
    case OP_AR: return tpmm_matmul_all_reduce(&x->ti, x->px[0], group, W, &x->ro, x->po[0]);
    default: return tpmm_all_gather_matmul(&x->ti, x->px[0], group, W, &x->o, x->po[0], tg);
  }
}

/* x's plan, made from tensors without data (shapes only) but x2 and bias. */
static tpmm_status_t plan_create(call_t *x) {
  const cfg_t *c = &x->c;
  const char *group = c->rev ? REV : TPMM_WORLD_COMM_GROUP;
  tpmm_tensor_t pi = x->ti, pg = x->tg, po[MAXNB], *ppo[MAXNB];
  pi.data = pg.data = NULL;
  for (int i = 0; i < c->nb; i++) po[i] = x->to[i], po[i].data = NULL, ppo[i] = &po[i];
  tpmm_tensor_t *tg = c->gather_output ? &pg : NULL;
  switch (c->op) {
    case OP_AGMM_V:
      return tpmm_all_gather_matmul_v_plan_create(&pi, x->px[0], group, W, c->cnt, &x->o, ppo[0], tg, &x->plan);
    case OP_MULTI:
      return tpmm_all_gather_matmul_multi_plan_create(&pi, c->nb, x->px, x->pb, group, W, &x->o, ppo, tg, &x->plan);
    case OP_RS: return tpmm_matmul_reduce_scatter_plan_create(&pi, x->px[0], group, W, &x->ro, ppo[0], &x->plan);
    case OP_AR: return tpmm_matmul_all_reduce_plan_create(&pi, x->px[0], group, W, &x->ro, ppo[0], &x->plan);
    default: return tpmm_all_gather_matmul_plan_create(&pi, x->px[0], group, W, &x->o, ppo[0], tg, &x->plan);
  }
}

/* Run x once (one-shot, or its plan's execute) on a fresh input and check it. */
static long call_run(call_t *x, long it, rng_t *own) {
  const cfg_t *c = &x->c;
  tpmm_set_param(TPMM_PARAM_ALGO, c->algo);
  draw_input(c, &x->b, own);
  for (int i = 0; i < c->nb; i++) poison(x->b.out[i], c->dt, out_rows(c) * c->n[i] + 1);
  poison(x->b.gout, c->dt, c->total * (c->gi ? c->n[0] : c->k) + 1);
  tpmm_tensor_t *tg = c->gather_output ? &x->tg : NULL;
  tpmm_status_t st = !x->plan            ? one_shot(x, tg)
                     : c->op == OP_MULTI ? tpmm_plan_execute_multi(x->plan, &x->ti, x->po, tg)
                                         : tpmm_plan_execute(x->plan, &x->ti, x->po[0], tg);
  const char *what = x->plan ? "plan" : c->shared ? "shared input" : "call";
  check(st == TPMM_SUCCESS, "call %ld (%s, %s): %s", it, what, op_names[c->op], tpmm_last_error());
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
    tpmm_set_param(TPMM_PARAM_ALGO, x[i].c.algo);
    tpmm_status_t st = plan_create(&x[i]);
    check(st == TPMM_SUCCESS, "call %ld: plan_create (%s): %s", it, op_names[x[i].c.op], tpmm_last_error());
    if (st != TPMM_SUCCESS) break;
    /* the plan copied x2 and bias: scribbling on them must not matter */
    for (int j = 0; j < x[i].c.nb; j++) {
      memset(x[i].b.x2[j], 0x55,
             (size_t)(x2_rows(&x[i].c, group_rank(&x[i].c, rank)) * x[i].c.n[j]) * dt_size(x[i].c.dt));
      memset(x[i].b.bias[j], 0x55, (size_t)x[i].c.n[j] * 4);
    }
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
  /* glibc raises its mmap threshold to the largest block freed so far, so
   * later big blocks (random shapes: new GEMM setups and references every
   * call) come from the heap, where the small ones left between them hold
   * its top: 3000 calls grew the heap to 33-40 MiB with 3.5 MiB in use, and
   * resident memory 3 MiB. A fixed threshold gives big blocks back on free,
   * so that resident memory tracks what is held (the heap check is exact). */
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
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
  if (W > MAXW) {
    if (rank == 0) fprintf(stderr, "test_soak: at most %d ranks, not %d\n", MAXW, W);
    MPI_Finalize();
    return 2;
  }
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
  long rss_mark = 0, heap_mark = 0, calls = 0;
  int maps_mark = 0;
  double t0 = now(), t_mark = 0;
  for (long it = 1; it <= N && st == TPMM_SUCCESS; it++) {
    calls += soak_call(it, &shared, &own);
    if (it == mark) {
      rss_mark = rss_kib();
      heap_mark = heap_kib();
      maps_mark = nmaps();
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
      if ((rank == 0 || getenv("SOAK_ALL")) && it % 1000 == 0) {
        printf("test_soak: %ld/%ld calls, %.1f s, rss %ld KiB, heap %ld KiB, %d mappings\n", it, N, now() - t0,
               rss_kib(), heap_kib(), nmaps());
        fflush(stdout);
      }
    }
  }
  double t_end = now();
  long rss_end = rss_kib();
  long heap_end = heap_kib(), maps_end = nmaps();
  long grow[3] = {rss_end - rss_mark, heap_end - heap_mark, maps_end - maps_mark}, grow_max[3];
  MPI_Allreduce(grow, grow_max, 3, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
  check(grow[0] < 3072, "resident memory grew by %ld KiB between call %ld (%ld KiB) and call %ld (%ld KiB)", grow[0],
        mark, rss_mark, N, rss_end);
  check(grow[1] < 1024, "the heap in use grew by %ld KiB between call %ld (%ld KiB) and call %ld (%ld KiB)", grow[1],
        mark, heap_mark, N, heap_end);
  check(grow[2] <= 16, "%ld more memory mappings at call %ld (%ld) than at call %ld", grow[2], N, maps_end, mark);
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
        "test_soak: %ld calls (%ld operations) in %.1f s (%.2f ms per call after call %ld); growth after call "
        "%ld, at most over the ranks: rss %ld KiB, heap in use %ld KiB, mappings %ld; live MPI objects after destroy: "
        "%lld comm, "
        "%lld win, %lld type (after init: %lld, %lld, %lld)\n",
        N, calls, t_end - t0, 1e3 * (t_end - t_mark) / (double)(N - mark > 0 ? N - mark : 1), mark, mark, grow_max[0],
        grow_max[1], grow_max[2], (long long)tpi_live[0], (long long)tpi_live[1], (long long)tpi_live[2],
        (long long)live0[0], (long long)live0[1], (long long)live0[2]);
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
