/*
 * model.c — the cost model's inputs and the ring's simulation.
 *
 *   GEMM time for M rows of the call's (k, n):  G(M) = max(F, g0 + M * g1).
 *     Both are measured on the prepared x2, with operands of data, not zeros
 *     (which multiply faster), the first time a (dtype, k, n, threads, x2
 *     packed or in place, backend, span) is seen in the process (best of two
 *     runs at M = 1 and 64; 1 and 8, 16 or 32, for calls of up to 32 rows; 64
 *     and the call's rows, 128, 256 or 512, for calls of more rows; or 1
 *     and gemm_dot.c's bound: the slope is taken where the call runs) and
 *     cached. F, the least a call costs: x2's
 *     bytes / STREAM_BW (a call cannot finish before it has read x2; its
 *     arithmetic overlaps the loads), or where a 1-row call was timed that
 *     time, which the fit through it already starts at (F then sets only
 *     the tile).
 *     Crowded (more busy threads than CPUs): calibration calls are timed in
 *     the thread's CPU time (tpi_model_clock), the time with a CPU to
 *     themselves, and G is scaled by busy threads / CPUs.
 *   Link: alpha, beta measured per group when it spans nodes (topology),
 *     and cpu_byte, what each byte a rank sends or receives there takes
 *     from a GEMM beside it (the kernel's TCP work runs on the ranks' CPUs):
 *     a fused schedule's GEMM pays it, the baseline's transfer already
 *     holds it.
 *     Within a node: BETA_SHM for a copy (bench/RESULTS.md §1), half of it
 *     for an MPI transfer (into MPI's shared cells and out); alpha, where
 *     crowded, a small MPI_Allgather's measured wait over its W - 1 steps.
 *   X = alpha + m*k*es / beta: one shard over one link.
 * Each algorithm predicts its own time from these (its predict()); the ring
 * family shares the event simulation below.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half.h"
#include "ring.h"
#include "x2g.h"

#define BETA_SHM 6e9
#define ALPHA_SHM 2e-6
#define TILE_SECONDS 1e-3
#define THREAD_TILE_SECONDS 2e-3
#define RED_THREAD_XFER 0.25   /* the reduce operators' transfer / GEMM from which the thread drives MPI */
#define RED_THREAD_GEMM 20e-3  /* ... and their least GEMM: 10x the thread's start, join and two naps */
#define STREAM_BW 10e9         /* bytes/s one core streams x2 at, with a busy neighbour */
#define MPI_SHM_COPIES 2       /* an MPI transfer within a node: into a shared cell, out of it */
#define NAP_COMM_BOUND_US 300  /* the progress thread's nap when the transfer is longer */
#define NAP_GEMM_BOUND_US 1000 /* ... and when the GEMM is (bench/RESULTS.md §9) */

/* ---- GEMM calibration cache ---- */
typedef struct {
  tpmm_dtype_t dt;
  int64_t k, n;
  int nthreads;
  int pack;                     /* a packed x2 runs at another rate than one used in place */
  const tpi_gemm_backend_t *be; /* ... and tpmm's own kernels apart from oneDNN */
  int64_t span;                 /* rows of the longest calibration call: g1 holds up to there */
  double g0, g1, floor;         /* floor: a 1-row call's time, 0 where none was timed */
} rate_t;
enum { N_RATES = 64 };
static rate_t rates[N_RATES]; /* full: the oldest makes room (a process of many shapes recalibrates, never stops) */
static int n_rates, next_rate;
int tpi_model_calibrations; /* GEMM shapes calibrated so far, gather_index 0 (tests read it) */
int64_t tpi_model_span;     /* rows of the latest calibration's longer GEMM (tests read it) */
static pthread_mutex_t rates_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- GEMM times seen on one-shot calls (the baseline's, timed where it runs) ---- */
/* A one-shot call whose transfer is under OBSERVE_SHARE of the GEMM's floor
 * runs the baseline uncalibrated for SEEN_RUNS calls and times its GEMM; the
 * choice then weighs the transfer against that time. Those calls lose at most
 * the transfer each (no schedule gains more), a tenth of a GEMM, where a
 * calibration costs six GEMM runs: at decode shapes the floor (x2 at
 * STREAM_BW) is a third of what the call's GEMM takes, and a transfer of 2-10 %
 * of the floor is 1-3 % of the GEMM (bench/RESULTS.md §30). */
#define OBSERVE_SHARE 0.10
enum { N_SEEN = 16, SEEN_RUNS = 2 };
typedef struct {
  tpi_seen_key_t key;
  int runs;    /* 0: free */
  double best; /* seconds, the least of runs */
} seen_t;
static seen_t seen[N_SEEN];
static int next_seen;
int tpi_model_observe_first = 1;
double tpi_model_seen_share; /* the latest transfer weighed against a GEMM time seen, over it (tests read it) */

static int cached(const tpi_plan_t *p, const tpi_gemm_t *gm, int64_t span, double *g0, double *g1, double *floor) {
  const tpi_call_t *a = &p->a;
  int found = 0;
  pthread_mutex_lock(&rates_lock);
  for (int i = 0; i < n_rates && !found; i++)
    if (rates[i].dt == a->dt && rates[i].k == gm->K && rates[i].n == gm->N && rates[i].nthreads == gm->nthreads &&
        rates[i].pack == gm->pack && rates[i].be == gm->be && rates[i].span == span) {
      *g0 = rates[i].g0, *g1 = rates[i].g1, *floor = rates[i].floor;
      found = 1;
    }
  pthread_mutex_unlock(&rates_lock);
  return found;
}

void tpi_model_forget(void) {
  pthread_mutex_lock(&rates_lock);
  n_rates = next_rate = 0;
  memset(seen, 0, sizeof seen);
  next_seen = 0;
  pthread_mutex_unlock(&rates_lock);
  tpi_x2g_forget();
}

double tpi_model_clock(const tpi_group_t *g) { return tpi_group_crowded(g) ? tpi_cpu_now() : tpi_now(); }

/* The best of two timed runs of r0 rows and of r1 rows, in turns after a
 * run of each that warms primitives and caches: both see the same load (the
 * other ranks calibrate beside this one, but nothing lines them up). */
static tpmm_status_t time_rows(const tpi_group_t *g, tpi_gemm_t *gm, const int64_t r[2], const void *A, void *C,
                               double t[2]) {
  for (int i = 0; i < 2; i++) TPI_CHECK(tpi_gemm_run(gm, r[i], A, gm->K, C, gm->N));
  t[0] = t[1] = 1e30;
  for (int rep = 0; rep < 2; rep++)
    for (int i = 0; i < 2; i++) {
      const double t0 = tpi_model_clock(g);
      TPI_CHECK(tpi_gemm_run(gm, r[i], A, gm->K, C, gm->N));
      t[i] = fmin(t[i], tpi_model_clock(g) - t0);
    }
  return TPMM_SUCCESS;
}

/* A setup that reads x2 in place (one-shot calls) of an x2 larger than a last-level cache here reads
 * all of it from memory on every call, so a run over a slice of its rows (k) costs about the slice's
 * share: timed on distinct slices, each as cold as a call's read, the median of three scaled by
 * k / slice, the calibration costs a sixth of time_rows' (bench/RESULTS.md §28). The call's fixed
 * costs are scaled too (a few per cent at 64 MiB). *sliced: 0 where it does not apply (a copied or
 * packed x2, a smaller one, or a slice's setup unlike the call's), and t is not set. */
enum { SLICES = 8, SLICE_MIN_BYTES = 64 << 20, SLICE_MIN_K = 256 };
int tpi_model_sliced;    /* slices the latest calibration ran on, 0: whole x2 (tests read it) */
double tpi_model_fit[2]; /* the latest calibration's g0 and g1, in seconds (tests read it) */
static tpmm_status_t time_slices(const tpi_group_t *g, tpi_gemm_t *gm, const tpi_mat_t *x2, size_t es,
                                 const int64_t r[2], const void *A, void *C, double t[2], int *sliced) {
  *sliced = 0;
  if (!tpi_gemm_reads_in_place(gm) || !x2 || x2->rows != gm->K || x2->cols != gm->N || gm->K < SLICES * SLICE_MIN_K ||
      (double)gm->K * (double)gm->N * (double)es < SLICE_MIN_BYTES)
    return TPMM_SUCCESS;
  const int64_t ks = gm->K / SLICES;
  tpi_mat_t v = {x2->data, ks, x2->cols, x2->rs, x2->cs};
  tpi_gemm_t *sg = NULL;
  if (tpi_gemm_create(&sg, gm->dt, &v, NULL, gm->dt, gm->m_hint, r[1], 1) != TPMM_SUCCESS) {
    tpi_clear_error(); /* no slice: the whole x2 instead */
    return TPMM_SUCCESS;
  }
  if (!tpi_gemm_reads_in_place(sg) || sg->be != gm->be || sg->nthreads != gm->nthreads) {
    tpi_gemm_destroy(sg); /* a setup unlike the call's would time something else: the whole x2 instead */
    return TPMM_SUCCESS;
  }
  /* slices 1-6, none read before; x2's last rows, the latest written, may still be cached: each count's
   * median comes from two of the first five */
  static const int slice[2][3] = {{1, 2, 5}, {3, 4, 6}};
  double s[2][3];
  tpmm_status_t st = TPMM_SUCCESS;
  for (int i = 0; i < 2 && st == TPMM_SUCCESS; i++) st = tpi_gemm_run(sg, r[i], A, gm->K, C, gm->N); /* warm */
  for (int rep = 0; rep < 3 && st == TPMM_SUCCESS; rep++)
    for (int i = 0; i < 2 && st == TPMM_SUCCESS; i++) {
      v.data = x2->data + (size_t)(slice[i][rep] * ks * x2->rs) * es;
      st = tpi_gemm_rebind(sg, &v, NULL, gm->dt);
      const double t0 = tpi_model_clock(g);
      if (st == TPMM_SUCCESS) st = tpi_gemm_run(sg, r[i], A, gm->K, C, gm->N);
      s[i][rep] = tpi_model_clock(g) - t0;
    }
  tpi_gemm_destroy(sg);
  TPI_CHECK(st);
  for (int i = 0; i < 2; i++) t[i] = tpi_median_of(s[i], 3) * (double)gm->K / (double)ks;
  *sliced = SLICES;
  return TPMM_SUCCESS;
}

/* One prepared GEMM (k x n): g0 + M g1 for M rows, fitted where the call's
 * GEMMs run: through 1 and 64 rows (gemm_dot.c: 1 and its bound), through 1
 * and the power of two at or above the call's rows (at least 8) when it
 * multiplies fewer than 64 (no GEMM of the call is longer, and the 64-row
 * runs cost a decode call several times its own GEMM), or
 * through 64 and about the call's rows (gemm_rows, the whole call's, not a
 * chunk's: 128 up to 255 of them, 256 up to 511, else 512) when it
 * multiplies more than 64: a lever four times longer than 64-128 for
 * large calls, whose slope between two calls of a few ms is mostly this
 * machine's noise.
 * On oneDNN a bf16 call of fewer than ~64 rows costs about what 64 cost
 * (small shapes run padded), so the slope from 1 to 64 can be near zero;
 * chunks of fewer than 64 rows in a large call are charged less than they
 * cost. */
static tpmm_status_t calibrate_one(tpi_plan_t *p, const char *op, tpi_gemm_t *gm, const tpi_mat_t *x2,
                                   int64_t gemm_rows, double *g0, double *g1, double *floor) {
  enum { LO = 64, SPAN_MIN = 128, SPAN_MAX = 512, SMALL_MIN = 8 };
  const tpi_call_t *a = &p->a;
  /* gemm_dot.c never runs more than its bound a call (64 rows would cost 4-16x that) */
  const int64_t bound = tpi_gemm_row_bound(gm);
  const int64_t lo = bound ? bound : LO;
  int64_t span = lo;
  /* a power of two, so that a shape calibrates at most seven times (8 ... 512) */
  if (!bound && gemm_rows > lo)
    for (span = SPAN_MIN; span < SPAN_MAX && 2 * span <= gemm_rows;) span *= 2;
  else if (!bound && gemm_rows < lo)
    for (span = SMALL_MIN; span < gemm_rows;) span *= 2;
  if (cached(p, gm, span, g0, g1, floor)) return TPMM_SUCCESS;
  const int64_t k = gm->K, n = gm->N;
  char *A = malloc((size_t)(span * (k ? k : 1)) * a->esize), *C = malloc((size_t)(span * (n ? n : 1)) * a->esize);
  if (!A || !C) {
    free(A), free(C);
    return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory calibrating the GEMM", op);
  }
  tpi_model_fill(A, (size_t)(span * k), a->dt);
  const int64_t rows[2] = {span > lo ? lo : 1, span};
  double t[2];
  int sliced;
  tpmm_status_t st = time_slices(p->g, gm, x2, a->esize, rows, A, C, t, &sliced);
  if (st == TPMM_SUCCESS && !sliced) st = time_rows(p->g, gm, rows, A, C, t);
  free(A), free(C);
  TPI_CHECK(st);
  const double dr = (double)(rows[1] - rows[0]);
  /* no slope measured: from 1 row, a call that reads x2 more than it multiplies (flat: t[1] is no slower);
   * from 64, a row's share of t[1] */
  const int flat = t[1] <= t[0] && rows[0] == 1;
  *g1 = flat ? 0 : t[1] > t[0] ? (t[1] - t[0]) / dr : t[1] / (double)rows[1];
  *g0 = flat ? fmin(t[0], t[1]) : fmax(t[0] - (double)rows[0] * *g1, 0);
  /* a 1-row call is x2's read and the call's fixed cost: no call is shorter */
  *floor = rows[0] == 1 ? t[0] : 0;
  pthread_mutex_lock(&rates_lock);
  tpi_model_calibrations++;
  tpi_model_span = span;
  tpi_model_sliced = sliced;
  tpi_model_fit[0] = *g0, tpi_model_fit[1] = *g1;
  rates[next_rate] = (rate_t){a->dt, k, n, gm->nthreads, gm->pack, gm->be, span, *g0, *g1, *floor};
  next_rate = (next_rate + 1) % N_RATES;
  if (n_rates < N_RATES) n_rates++;
  pthread_mutex_unlock(&rates_lock);
  return TPMM_SUCCESS;
}

/* The least time the call's GEMM can take, where no 1-row call was timed:
 * every weight's x2 streamed once from memory (fp16 as its fp32 widening);
 * 0 for gather_index 1, whose panels stream B in pieces. */
static double gemm_floor(const tpi_call_t *a) {
  if (a->gather_index) return 0;
  double cols = (double)a->n;
  for (int i = 1; i < a->nb; i++) cols += (double)a->w[i].x2.cols;
  return (double)a->k * cols * (a->dt == TPMM_FLOAT16 ? 4.0 : (double)a->esize) / STREAM_BW;
}

/* The call's GEMM per row: every weight's (multi), each row multiplied by
 * all. The floor is the 1-row calls' sum where every weight timed one
 * (calls of up to 127 rows, where it matters: a chunk of few rows), else
 * x2's stream at STREAM_BW. */
static tpmm_status_t calibrate(tpi_plan_t *p, const char *op, double *g0, double *g1, double *floor) {
  if (p->a.gather_index) {
    *floor = 0;
    return tpi_x2g_calibrate(p, op, g0, g1); /* per x2 row of a panel */
  }
  double shard_bytes;
  int64_t rows;
  p->op->sizes(p, &shard_bytes, &rows);
  TPI_CHECK(calibrate_one(p, op, p->gemm, &p->a.x2, rows, g0, g1, floor));
  int timed = *floor > 0;
  for (int i = 1; i < p->a.nb; i++) {
    double h0, h1, f;
    TPI_CHECK(calibrate_one(p, op, p->wgemm[i], &p->a.w[i].x2, rows, &h0, &h1, &f));
    *g0 += h0, *g1 += h1, *floor += f;
    timed = timed && f > 0;
  }
  if (!timed) *floor = gemm_floor(&p->a);
  return TPMM_SUCCESS;
}

void tpi_model_fill(void *dst, size_t n, tpmm_dtype_t dt) {
  enum { PERIOD = 4093 }; /* prime: rows of a power-of-two k do not repeat */
  float v[PERIOD];
  uint32_t x = 12345;
  for (int i = 0; i < PERIOD; i++) {
    x = x * 1664525u + 1013904223u;
    v[i] = (float)(x >> 8) / 8388608.0f - 1.0f;
  }
  for (size_t i = 0; i < n; i += PERIOD) {
    const size_t c = n - i < PERIOD ? n - i : PERIOD;
    if (dt == TPMM_FLOAT32)
      memcpy((float *)dst + i, v, c * sizeof(float));
    else if (dt == TPMM_BFLOAT16)
      tpi_f32_to_bf16_n(v, (uint16_t *)dst + i, c);
    else
      tpi_f32_to_f16_n(v, (uint16_t *)dst + i, c);
  }
}

/* Within a node, or across nodes whose link was not measured. */
static bool one_node(const tpi_group_t *g) { return g->n_nodes == 1 || g->net_beta <= 0; }

int tpi_model_auto_thread(int op_kind, int gather_index, int n_nodes, double tile_s, double t_xfer, double t_gemm) {
  /* a rendezvous needs both sides to answer: polls answer once a tile, the
   * thread within a nap but at the cost of a start, a join and core time.
   * gather_index 1 also sums shards' fp32 products and copies shards between
   * its tiles, with no poll: where the transfer is about the longer part the
   * thread kept it fed, where the GEMM is it cost the GEMM more than the link
   * gained (bench/RESULTS.md §21) */
  const int x2g_fed = op_kind == TPI_OP_ALL_GATHER_MATMUL && gather_index && t_xfer >= 0.75 * t_gemm;
  /* the reduce operators send what their GEMM has just made: each message's rendezvous waited for a poll on
   * both sides, and polls left 10-20 ms of a 1 Gbit transfer exposed where the thread left half that
   * (bench/RESULTS.md §25); where the transfer is a small part (10 Gbit, 5-15 % predicted) the thread's
   * core time cost the GEMM 7 % and polls between long tiles kept up (§32), so long tiles count only
   * where the transfer is long too */
  const int red = op_kind == TPI_OP_MATMUL_REDUCE_SCATTER || op_kind == TPI_OP_MATMUL_ALL_REDUCE;
  const int red_fed =
      red && t_xfer >= RED_THREAD_XFER * t_gemm && (t_gemm >= RED_THREAD_GEMM || tile_s > THREAD_TILE_SECONDS);
  return n_nodes > 1 && ((!red && tile_s > THREAD_TILE_SECONDS) || x2g_fed || red_fed);
}

/* Who drives MPI in a ring, how long GEMM tiles between polls are, and how
 * long the progress thread naps. */
static void progress(const tpi_plan_t *p, tpi_model_t *m) {
  const tpi_call_t *a = &p->a;
  /* ~1 ms of work per tile, and arithmetic at least 4x the larger of a
   * call's fixed cost and its read of x2, so that tiling costs at most ~25 % */
  m->tile = m->g1 > 0 ? (int64_t)ceil(fmax(TILE_SECONDS, 4 * fmax(m->g0, m->floor)) / m->g1) : 64;
  /* whole blocks of the kernel's rows, rounded up so that the bound above holds: a 19-row tile ran as 24 on
   * gemm_avx2.c's 6-row blocks of then (bench/RESULTS.md §25). gather_index 1's tile counts x2 rows. */
  const int64_t blk = a->gather_index ? 1 : tpi_gemm_row_block(p->gemm);
  m->tile = (m->tile + blk - 1) / blk * blk;
  /* polls come at least once a GEMM call: a gather's calls are at most a shard */
  const int64_t shard = p->op == &tpi_op_all_gather_matmul && !a->gather_index ? tpi_rows_max(a) : m->tile;
  const double tile_s = tpi_model_gemm(m, (double)(shard < m->tile ? shard : m->tile));
  double shard_bytes;
  int64_t gemm_rows;
  p->op->sizes(p, &shard_bytes, &gemm_rows);
  m->t_xfer = (a->W - 1) * (m->alpha + shard_bytes / m->beta);
  m->t_gemm = tpi_model_gemm(m, (double)gemm_rows);
  m->thread = tpi_params.progress_thread == 2
                  ? tpi_model_auto_thread(p->op->kind, a->gather_index, p->g->n_nodes, tile_s, m->t_xfer, m->t_gemm)
                  : tpi_params.progress_thread;
  /* short naps keep a busy link fed; long ones leave the GEMM its core */
  m->nap_us = tpi_params.progress_nap_us >= 0 ? tpi_params.progress_nap_us
              : m->t_gemm > m->t_xfer         ? NAP_GEMM_BOUND_US
                                              : NAP_COMM_BOUND_US;
  m->tile_s = tile_s;
  tpi_model_set_thread(m, m->thread);
}

void tpi_model_set_thread(tpi_model_t *m, int thread) {
  const double nap = 1e-6 * m->nap_us;
  m->thread = thread;
  m->lag = thread ? nap : m->tile_s / 2;
  m->fixed = thread ? 100e-6 + 2 * nap : 0;
}

static void link_model(const tpi_plan_t *p, tpi_model_t *m) {
  const tpi_group_t *g = p->g;
  /* crowded: the W - 1 steps of a collective share its measured wait for CPUs */
  m->alpha = one_node(g) ? fmax(ALPHA_SHM, g->sync_s / (g->size > 1 ? g->size - 1 : 1)) : g->net_alpha;
  m->beta = one_node(g) ? BETA_SHM / MPI_SHM_COPIES : g->net_beta;
  m->beta_copy = BETA_SHM;
  m->cpu_byte = one_node(g) ? 0 : g->net_cpu;
}

void tpi_model_seen_key(const tpi_plan_t *p, tpi_seen_key_t *k) {
  const tpi_gemm_t *gm = p->gemm;
  *k = (tpi_seen_key_t){p->a.dt, gm->K, gm->N, tpi_rows_total(&p->a), gm->nthreads, gm->pack, gm->be};
}

static int seen_match(const seen_t *s, const tpi_seen_key_t *k) {
  return s->runs > 0 && s->key.dt == k->dt && s->key.k == k->k && s->key.n == k->n && s->key.rows == k->rows &&
         s->key.nthreads == k->nthreads && s->key.pack == k->pack && s->key.be == k->be;
}

/* Runs seen of p's GEMM (0: none), the least time in *best. */
static int seen_runs(const tpi_plan_t *p, double *best) {
  tpi_seen_key_t k;
  tpi_model_seen_key(p, &k);
  int runs = 0;
  pthread_mutex_lock(&rates_lock);
  for (int i = 0; i < N_SEEN && !runs; i++)
    if (seen_match(&seen[i], &k)) runs = seen[i].runs, *best = seen[i].best;
  pthread_mutex_unlock(&rates_lock);
  return runs;
}

void tpi_model_seen(const tpi_seen_key_t *k, double t) {
  pthread_mutex_lock(&rates_lock);
  int i = 0;
  while (i < N_SEEN && !seen_match(&seen[i], k)) i++;
  if (i == N_SEEN) { /* the oldest makes room */
    i = next_seen;
    next_seen = (next_seen + 1) % N_SEEN;
    seen[i] = (seen_t){*k, 0, t};
  }
  seen[i].best = fmin(seen[i].best, t);
  seen[i].runs++;
  pthread_mutex_unlock(&rates_lock);
}

tpi_comm_share_t tpi_model_comm_share(const tpi_plan_t *p, double *t_gemm_seen) {
  tpi_model_t m;
  link_model(p, &m);
  double shard_bytes;
  int64_t gemm_rows;
  p->op->sizes(p, &shard_bytes, &gemm_rows);
  const double t_xfer = (p->a.W - 1) * (m.alpha + shard_bytes / m.beta);
  /* STREAM_BW is one core's rate: with more GEMM threads the floor drops */
  const int threads = tpi_params.num_threads > 1 ? tpi_params.num_threads : 1;
  const double floor = gemm_floor(&p->a) / threads;
  *t_gemm_seen = 0;
  if (t_xfer < TPI_NEGLIGIBLE_COMM * floor) return TPI_COMM_NEGLIGIBLE;
  /* all_gather_matmul's baseline times its GEMM (algo_unfused.c); the reduce operators' do not */
  if (!p->oneshot || !tpi_model_observe_first || p->op->kind != TPI_OP_ALL_GATHER_MATMUL || p->a.gather_index ||
      p->a.nb > 1 || !p->gemm || t_xfer >= OBSERVE_SHARE * floor)
    return TPI_COMM_WEIGHED;
  double best = 0;
  if (seen_runs(p, &best) < SEEN_RUNS) return TPI_COMM_OBSERVE;
  *t_gemm_seen = best;
  pthread_mutex_lock(&rates_lock);
  tpi_model_seen_share = t_xfer / best;
  pthread_mutex_unlock(&rates_lock);
  return t_xfer < TPI_NEGLIGIBLE_COMM * best ? TPI_COMM_NEGLIGIBLE : TPI_COMM_WEIGHED;
}

/* The ring's largest message (TPMM_SEGMENT_BYTES) where the engine
 * multiplies each as it arrives (ring_run.c wait_rows): gather_index 0;
 * gather_index 1 multiplies whole panels (0). Rank 0's value, which
 * predicts: ranks that set different values agree on the largest, and a
 * rank's 0 (whole chunks) wins. */
static int64_t message_bytes(const tpi_call_t *a) {
  return a->gather_index || tpi_params.segment_bytes <= 0 ? 0 : tpi_params.segment_bytes;
}

/* Rows of chunk-of-C's messages as the engine cuts them (ring.c), 0 where
 * chunks travel whole. */
static int64_t message_rows(const tpi_plan_t *p, const tpi_model_t *m, int C) {
  const tpi_call_t *a = &p->a;
  if (m->msg_bytes <= 0) return 0;
  const int64_t limit = p->g && p->g->tag_ub > 0 ? p->g->tag_ub : 32767 - TPI_AGREE_TAGS; /* MPI's least */
  int64_t rows = 0, per_chunk = 0;
  tpi_ring_segments(tpi_chunk_rows_max(a, C) * C, C, (int64_t)tpi_row_bytes(a), m->msg_bytes, a->W, limit, &rows,
                    &per_chunk);
  return rows;
}

tpmm_status_t tpi_model_build(tpi_plan_t *p, const char *op, tpi_model_t *m) {
  TPI_CHECK(calibrate(p, op, &m->g0, &m->g1, &m->floor));
  const double f = tpi_group_crowding(p->g); /* above 1: each rank gets that share of the CPUs */
  if (f > 1) m->g0 *= f, m->g1 *= f, m->floor *= f;
  link_model(p, m);
  progress(p, m);
  m->msg_bytes = message_bytes(&p->a);
  return TPMM_SUCCESS;
}

/* Each link direction carries its chunks back to back in the order the
 * engine sends them (own shard, then forwarded ones), so the i-th chunk into
 * a rank on a direction arrives at (i+1)*x, x = alpha + chunk bytes / beta.
 * The rank multiplies its own C chunks first, then each arrived chunk in the
 * engine's order as soon as it is there and the previous GEMM is done.
 * Uneven shards: each direction into rank r is busy for each chunk's own
 * bytes, a chunk s hops away comes no sooner than s of its own transfers,
 * and empty chunks cost nothing (the engine marks them arrived). Each chunk
 * the rank sends (its own, and arrived ones it forwards) or receives takes
 * m->cpu_byte a byte from its GEMM. Where the engine cuts chunks into
 * messages (m->msg_bytes), each hop forwards a message as it arrives, so a
 * chunk s hops away comes (s - 1) messages after its own transfer, and the
 * rank multiplies messages as they arrive: the chunk's GEMM starts with its
 * first message and, where the link is the slower, ends one message's GEMM
 * after its last. Without the progress thread's fixed cost (m->fixed). */
static double ring_view(const tpi_plan_t *p, const tpi_model_t *m, int bidir, int C, int r) {
  const tpi_call_t *a = &p->a;
  const int W = a->W, uneven = a->row0 != NULL;
  const int c_cw = bidir ? (C + 1) / 2 : C; /* chunks c < c_cw go clockwise */
  const double alpha = m->alpha + m->lag, rb = (double)tpi_row_bytes(a), cpu = rb * m->cpu_byte;
  const int64_t msg = message_rows(p, m, C);
  double t = 0, link[2] = {0, 0}; /* when each direction into r has carried its chunks so far */
  for (int c = 0; c < C; c++) {
    const int64_t rows = tpi_shard_chunk_lo(a, r, C, c + 1) - tpi_shard_chunk_lo(a, r, C, c);
    if (rows > 0 || !uneven) t += tpi_model_gemm(m, (double)rows) + (W > 1 ? (double)rows * cpu : 0);
  }
  for (int s = 1; s < W; s++)
    for (int c = 0; c < C; c++) {
      const int cw = c < c_cw, j = cw ? (r - s + W) % W : (r + s) % W; /* the shard at step s */
      const int64_t rows = tpi_shard_chunk_lo(a, j, C, c + 1) - tpi_shard_chunk_lo(a, j, C, c);
      if (rows == 0 && uneven) continue;
      const double x = alpha + (double)rows * rb / m->beta;
      link[cw] += x;
      const int fwd = s < W - 1; /* a chunk goes W - 1 hops either way round */
      const double per_row = (1 + fwd) * cpu, work = tpi_model_gemm(m, (double)rows) + (double)rows * per_row;
      if (msg > 0 && rows > msg) {
        const int64_t last = rows - (rows - 1) / msg * msg; /* the last message's rows */
        const double xm = alpha + (double)msg * rb / m->beta, here = fmax(link[cw], x + (s - 1) * xm);
        const double first = fmax(link[cw] - x, (s - 1) * xm) + xm;
        t = fmax(fmax(t, first) + work, here + tpi_model_gemm(m, (double)last) + (double)last * per_row);
      } else {
        t = fmax(t, fmax(link[cw], s * x)) + work;
      }
    }
  return t;
}

/* The slowest rank's time: where shards are uneven, a rank with few rows of
 * its own waits for its first chunk. Every rank's view up to 16 ranks; past
 * that (W^2 chunks a view), rank 0's and that of the rank with the fewest
 * rows, the likeliest to wait. Rank 0 predicts; the agreement carries its
 * choice. */
double tpi_model_ring(const tpi_plan_t *p, const tpi_model_t *m, int bidir, int C) {
  const tpi_call_t *a = &p->a;
  double t = ring_view(p, m, bidir, C, 0); /* even shards: every rank's view is rank 0's */
  if (!a->row0) return t;
  int fewest = 0;
  for (int r = 1; r < a->W; r++)
    if (tpi_shard_rows(a, r) < tpi_shard_rows(a, fewest)) fewest = r;
  for (int r = 1; r < a->W; r++)
    if (a->W <= 16 || r == fewest) t = fmax(t, ring_view(p, m, bidir, C, r));
  return t;
}

/* gather_index 0: more chunks only for a clear gain (each costs a GEMM call). gather_index 1: chunks are
 * whole panels, which are the GEMM calls whatever the chunking, and a chunk is multiplied only once its
 * last byte is in; where the model cannot tell counts apart (it sees the own shard's GEMM outlast the
 * transfer) the finer count is taken: it costs a message, and saves the wait for a whole shard when the
 * link or the GEMM runs otherwise than calibrated (bench/RESULTS.md §36.4: one chunk E 0.25-0.39, two
 * 0.5-0.9 at the same point). */
double tpi_model_ring_best(const tpi_plan_t *p, const tpi_model_t *m, int bidir, int *chunks) {
  static const int ladder[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
  const int gi1 = p->a.gather_index;
  const int64_t most = gi1 ? (tpi_rows_max(&p->a) + TPI_X2_PANEL - 1) / TPI_X2_PANEL : tpi_rows_max(&p->a);
  const int64_t cmax = most < TPI_MAX_AUTO_CHUNKS ? most : TPI_MAX_AUTO_CHUNKS;
  double best = INFINITY, picked = INFINITY; /* the least time, and the picked count's */
  *chunks = 1;
  for (size_t i = 0; i < sizeof ladder / sizeof ladder[0] && ladder[i] <= (cmax > 0 ? cmax : 1); i++) {
    const double t = tpi_model_ring(p, m, bidir, ladder[i]);
    if (gi1 ? t <= best * 1.001 : t < best * 0.98) picked = t, *chunks = ladder[i];
    best = gi1 ? fmin(best, t) : picked;
  }
  return picked;
}
