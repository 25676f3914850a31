/*
 * plan.c — where chunks are scheduled: algorithm choice, chunk count and
 * GEMM tile height, from the topology and a cost model; plan build and run.
 *
 * Cost model (comm_turn = 0; in the spirit of MindSpore MC2's tiling):
 *   GEMM time for M rows of the call's (k, n):  G(M) = g0 + M * g1
 *     g0: fixed cost of a call (mostly streaming the packed x2 once),
 *     g1: per-row cost. Both are measured on the prepared x2 the first time a
 *     (dtype, k, n) is seen in the process (two timed runs, M = 1 and M = 64)
 *     and cached; g0 is raised to x2's bytes / STREAM_BW, since inside a
 *     pipeline x2 comes from memory, not from the cache the calibration
 *     warmed.
 *   Link: alpha (latency) and beta (bytes/s), measured per group when it
 *     spans nodes (group.c); within a node beta_shm = 6 GB/s (MPI.md: an
 *     8 MiB/rank allgather took 1.0-1.75 ms).
 *   X = alpha + m*k*es / beta: one shard over one link.
 *   unfused:    T_u = (W-1)*X + G(m*W)
 *   shm_pull:   T_s = W*C*g0 + m*W*g1 (reads in place; publish hidden by the
 *               local GEMM)
 *   ring (C chunks per shard, each going W-1 hops; bidir: half of them each
 *               way): simulated (ring_sim): chunks arrive back to back on
 *               each link direction, x = alpha + X/C apart; the local shard
 *               is multiplied while the first ones travel, then each chunk
 *               as soon as it is there. Roughly
 *               T_r ~ max(W*G(m/C)*C, (W-1)*X + G(m/C)) with G(m/C) = g0 + m/C*g1:
 *               more chunks shorten the tail but pay g0 (streaming x2) and
 *               alpha each.
 *   auto picks the cheapest of unfused and the fused schedule the topology
 *   allows (shm_pull on one node, ring/bidir_ring across), and C in
 *   [1, min(m, 64)] minimising its time; "do not split" (C = 1) falls out
 *   when communication is negligible. comm_turn = N forces C = N.
 * The decision is rank 0's (the only rank that calibrates) and reaches the
 * others through the agreement step's tuning values, so every rank runs the
 * same schedule. With it goes the runner-up (the other of fused / unfused):
 * tune.c times both on real calls and keeps the faster, because the model
 * cannot see everything (the network stack's CPU, a token bucket's burst).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../comm/shm.h"
#include "pipeline.h"
#include "ring.h"

#define BETA_SHM 6e9
#define MAX_AUTO_CHUNKS 64
#define TILE_SECONDS 1e-3
#define THREAD_TILE_SECONDS 2e-3
#define STREAM_BW 10e9         /* bytes/s one core streams x2 at, with a busy neighbour */
#define NAP_COMM_BOUND_US 300  /* progress thread's nap when the transfer is longer */
#define NAP_GEMM_BOUND_US 1000 /* ... and when the GEMM is (RESULTS.md §9) */

/* ---- GEMM calibration cache ---- */
typedef struct {
  tpmm_dtype_t dt;
  int64_t k, n;
  int nthreads;
  double g0, g1;
} rate_t;
static rate_t rates[32];
static int n_rates;
static pthread_mutex_t rates_lock = PTHREAD_MUTEX_INITIALIZER;

static tpmm_status_t calibrate(tpi_plan_t *p, const char *op, double *g0, double *g1) {
  const tpi_agmm_t *a = &p->a;
  pthread_mutex_lock(&rates_lock);
  for (int i = 0; i < n_rates; i++)
    if (rates[i].dt == a->dt && rates[i].k == a->k && rates[i].n == a->n && rates[i].nthreads == p->gemm->nthreads) {
      *g0 = rates[i].g0;
      *g1 = rates[i].g1;
      pthread_mutex_unlock(&rates_lock);
      return TPMM_SUCCESS;
    }
  pthread_mutex_unlock(&rates_lock);
  enum { ROWS = 64 };
  char *A = calloc((size_t)(ROWS * a->k), a->esize), *C = malloc((size_t)(ROWS * (a->n ? a->n : 1)) * a->esize);
  if (!A || !C) {
    free(A), free(C);
    return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory calibrating the GEMM", op);
  }
  double t[2] = {0, 0};
  const int64_t rows[2] = {1, ROWS};
  tpmm_status_t st = TPMM_SUCCESS;
  for (int i = 0; i < 2 && st == TPMM_SUCCESS; i++) {
    st = tpi_gemm_run(p->gemm, rows[i], A, a->k, C, a->n); /* warm: primitive, caches */
    double best = 1e30;
    for (int rep = 0; rep < 2 && st == TPMM_SUCCESS; rep++) {
      double t0 = tpi_now();
      st = tpi_gemm_run(p->gemm, rows[i], A, a->k, C, a->n);
      double dt = tpi_now() - t0;
      if (dt < best) best = dt;
    }
    t[i] = best;
  }
  free(A), free(C);
  TPI_CHECK(st);
  *g1 = t[1] > t[0] ? (t[1] - t[0]) / (ROWS - 1) : t[1] / ROWS;
  *g0 = t[0] - *g1 > 0 ? t[0] - *g1 : 0;
  pthread_mutex_lock(&rates_lock);
  if (n_rates < (int)(sizeof rates / sizeof rates[0]))
    rates[n_rates++] = (rate_t){a->dt, a->k, a->n, p->gemm->nthreads, *g0, *g1};
  pthread_mutex_unlock(&rates_lock);
  return TPMM_SUCCESS;
}

/* Predicted time of a ring schedule with C chunks per shard: a small event
 * simulation. Each link direction carries its chunks back to back, in the
 * order the engine sends them (own shard, then forwarded ones: no bubbles
 * after the first hop, since a forwarded chunk has arrived before the link
 * is free), so the i-th chunk into a rank on a direction arrives at
 * (i+1)*x, x = alpha + chunk bytes / beta. The rank multiplies its own C
 * chunks first, then each arrived chunk in the engine's order as soon as it
 * is there and the previous GEMM is done. */
static double ring_sim(const tpi_plan_t *p, int bidir, int C, double g0, double g1, double alpha, double beta) {
  const tpi_agmm_t *a = &p->a;
  const int W = a->W;
  const int c_cw = bidir ? (C + 1) / 2 : C; /* chunks c < c_cw go clockwise */
  double t = 0;
  for (int c = 0; c < C; c++) t += g0 + (double)(tpi_chunk_lo(a->m, C, c + 1) - tpi_chunk_lo(a->m, C, c)) * g1;
  for (int s = 1; s < W; s++)
    for (int c = 0; c < C; c++) {
      const int64_t rows = tpi_chunk_lo(a->m, C, c + 1) - tpi_chunk_lo(a->m, C, c);
      const double x = alpha + (double)(rows * a->k * (int64_t)a->esize) / beta;
      /* position of this chunk in its direction's arrival sequence */
      const int per_dir = c < c_cw ? c_cw : C - c_cw, pos = c < c_cw ? c : c - c_cw;
      const double arrive = ((double)(s - 1) * per_dir + pos + 1) * x;
      t = fmax(t, arrive) + g0 + (double)rows * g1;
    }
  return t;
}

/* Best chunk count for a ring schedule (C from a geometric ladder up to
 * min(m, 64)) and its predicted time. */
static double ring_time(const tpi_plan_t *p, int bidir, double g0, double g1, double alpha, double beta, int *best_c) {
  static const int ladder[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
  const int64_t cmax = p->a.m < MAX_AUTO_CHUNKS ? p->a.m : MAX_AUTO_CHUNKS;
  double best = INFINITY;
  *best_c = 1;
  for (size_t i = 0; i < sizeof ladder / sizeof ladder[0] && ladder[i] <= (cmax > 0 ? cmax : 1); i++) {
    double t = ring_sim(p, bidir, ladder[i], g0, g1, alpha, beta);
    if (t < best * 0.98) best = t, *best_c = ladder[i]; /* more chunks only for a clear gain */
  }
  return best;
}

/* Rank 0's proposal (tune[TPI_TUNE]): [0] algorithm + 1, [1] chunks, [2] tile
 * rows, [3] progress thread, [4..6] the runner-up (algorithm + 1, chunks,
 * thread; zeros if none) that the autotuner measures against it, [7] the
 * previous one-shot call's time (set by the caller, every rank), [8] the
 * ring's message size (set by the caller, every rank: the largest wins),
 * [9] the progress thread's nap in us + 1.
 * Other ranks propose zeros; the agreement hands every rank the maximum. */
static tpmm_status_t choose(tpi_plan_t *p, const char *op, int64_t tune[TPI_TUNE]) {
  const tpi_agmm_t *a = &p->a;
  tpi_group_t *g = p->g;
  memset(tune, 0, TPI_TUNE * sizeof tune[0]);
  if (g->rank != 0) return TPMM_SUCCESS;
  int algo = tpi_params.algo, chunks = a->comm_turn;
  double g0 = 0, g1 = 0, t_pred[2] = {0, 0};
  const bool one_node = g->n_nodes == 1;
  const double alpha = one_node ? 2e-6 : g->net_alpha, beta = one_node ? BETA_SHM : g->net_beta;
  TPI_CHECK(calibrate(p, op, &g0, &g1)); /* cached after the first call per shape */
  /* Calibration runs with x2 hot in cache; inside a pipeline, with the peer
   * ranks and the network stack sharing the cache, every GEMM call streams
   * x2 from memory (fp16 multiplies a fp32 copy). Measured: 16-row chunk
   * GEMMs of n = 1024 bf16 took 0.45-1.65 ms against a calibrated 0.34. */
  g0 = fmax(g0, (double)a->k * (double)a->n * (a->dt == TPMM_FLOAT16 ? 4.0 : (double)a->esize) / STREAM_BW);
  /* Rows per GEMM tile between two MPI polls: ~1 ms of work, but at least 4x
   * the fixed cost of a call (g0: streaming or copying x2), so that tiling
   * costs at most ~25 % even with an unpacked x2. */
  const int64_t tile = g1 > 0 ? (int64_t)ceil(fmax(TILE_SECONDS, 4 * g0) / g1) : 64;
  const double tile_s = g0 + (double)tile * g1;
  /* Who drives MPI in a ring. Polls come once per tile; a rendezvous
   * message needs both sides to answer, so each chunk waits ~half a tile
   * for them. The thread answers within a nap but costs a start, a join and
   * core time. Auto (2): the thread across nodes when tiles are long
   * (a large x2, or fp16's wider one), polls otherwise (RESULTS.md §7). */
  const int thread =
      tpi_params.progress_thread == 2 ? !one_node && tile_s > THREAD_TILE_SECONDS : tpi_params.progress_thread;
  /* The thread's nap. When the transfer is the longer part, the link must
   * not wait for the thread (short nap); when the GEMM is, every wake-up
   * takes time and cache from it (the two vCPUs here are one core's
   * hyperthreads), and a longer nap still answers each 256 KiB message in
   * time. Measured at 1 Gbit, W = 2 (RESULTS.md §9): bf16 n = 1024 (transfer
   * longer) E 0.63-0.90 at 300 us, 0.33-0.84 at 1000; fp16 n = 1024 m = 2048
   * and bf16 n = 4096 (GEMM longer) 5-7 % faster at 1000. */
  const double t_xfer = (a->W - 1) * (alpha + (double)(a->m * a->k * (int64_t)a->esize) / beta),
               t_gemm = g0 + (double)(a->m * a->W) * g1;
  const int nap_us = tpi_params.progress_nap_us >= 0 ? tpi_params.progress_nap_us
                     : t_gemm > t_xfer               ? NAP_GEMM_BOUND_US
                                                     : NAP_COMM_BOUND_US;
  const double nap = 1e-6 * nap_us;
  const double lag = thread ? nap : tile_s / 2, fixed = thread ? 100e-6 + 2 * nap : 0;
  if (algo == TPMM_ALGO_AUTO) {
    if (a->W == 1 || a->m == 0 || a->n == 0) {
      algo = TPMM_ALGO_UNFUSED;
    } else {
      const double t_unfused = t_xfer + t_gemm;
      double t_fused;
      int c = 1, fused_algo;
      t_pred[0] = t_unfused;
      if (one_node) {
        algo = TPMM_ALGO_SHM_PULL;
        c = chunks > 0 ? chunks : 1;
        t_fused = a->W * c * g0 + (double)(a->m * a->W) * g1;
      } else {
        const int bidir = a->W > 2 && g->node_size == 1;
        algo = g->rail != MPI_COMM_NULL ? TPMM_ALGO_HIER : bidir ? TPMM_ALGO_BIDIR_RING : TPMM_ALGO_RING;
        /* hier: the ring model with every rank's own rail (an upper bound:
         * node peers' shards are read at memory speed) */
        t_fused = ring_time(p, bidir, g0, g1, alpha + lag, beta, &c) + fixed;
        if (chunks > 0) c = chunks;
      }
      if (chunks == 0) chunks = c;
      t_pred[1] = t_fused;
      fused_algo = algo;
      if (t_fused > t_unfused) algo = TPMM_ALGO_UNFUSED;
      /* the runner-up, for the plan's autotuner (only when nothing is forced) */
      if (a->comm_turn == 0) {
        const int alt_fused = algo == TPMM_ALGO_UNFUSED;
        tune[4] = (alt_fused ? fused_algo : TPMM_ALGO_UNFUSED) + 1;
        tune[5] = alt_fused ? c : 1;
        tune[6] = alt_fused && fused_algo != TPMM_ALGO_SHM_PULL ? thread : 0;
      }
    }
  }
  if (chunks == 0) {
    if (algo == TPMM_ALGO_RING || algo == TPMM_ALGO_BIDIR_RING || algo == TPMM_ALGO_HIER)
      ring_time(p, algo == TPMM_ALGO_BIDIR_RING, g0, g1, (alpha > 0 ? alpha : 2e-6) + lag, beta > 0 ? beta : BETA_SHM,
                &chunks);
    else
      chunks = 1;
  }
  if (algo == TPMM_ALGO_BIDIR_RING && chunks < 2 && a->m >= 2) chunks = 2;
  tune[0] = algo + 1;
  tune[1] = chunks;
  tune[2] = tile;
  tune[3] = thread;
  tune[9] = nap_us + 1;
  if (tpi_params.verbose) {
    char model[96] = "";
    if (t_pred[1] > 0)
      snprintf(model, sizeof model, "predicted unfused %.3f ms, fused %.3f ms; ", t_pred[0] * 1e3, t_pred[1] * 1e3);
    fprintf(
        stderr,
        "tpmm: %s on \"%s\": m=%lld k=%lld n=%lld W=%d nodes=%d (%d on this machine%s) -> algo=%s chunks=%d "
        "tile=%lld rows (%.2f ms) progress=%s nap=%d us (%sg0=%.1f us g1=%.3f us/row alpha=%.1f us beta=%.3g GB/s)\n",
        op, g->name, (long long)a->m, (long long)a->k, (long long)a->n, a->W, g->n_nodes, g->kernel_ranks,
        tpi_group_crowded(g) ? ", crowded: waits yield" : "", tpmm_algo_name(algo), chunks, (long long)tile,
        tile_s * 1e3, thread ? "thread" : "polls", nap_us, model, g0 * 1e6, g1 * 1e6, alpha * 1e6, beta * 1e-9);
  }
  return TPMM_SUCCESS;
}

/* Workspaces the algorithm will need, allocated before the agreement so that
 * no rank runs out of memory once data moves. */
static tpmm_status_t reserve(tpi_plan_t *p, const char *op, int plan) {
  const tpi_agmm_t *a = &p->a;
  const tpi_mat_t *in = &a->in;
  if (!(in->cs == 1 && (in->rs == a->k || a->m <= 1)))
    TPI_CHECK(tpi_ws_reserve(&p->send, &p->send_bytes, (size_t)(a->m * a->k) * a->esize, op, "the packed input shard"));
  if (!(a->gather_output && a->gout.rs == a->k))
    TPI_CHECK(
        tpi_ws_reserve(&p->gbuf, &p->gbuf_bytes, (size_t)(a->m * a->W * a->k) * a->esize, op, "the gathered rows"));
  /* plans of small shards: the staging of the folded unfused schedule */
  const size_t shard = (size_t)(a->m * a->k) * a->esize;
  if (plan && a->W > 1 && shard <= TPI_FOLD_MAX_BYTES) {
    TPI_CHECK(tpi_ws_reserve((void **)&p->fold, &p->fold_bytes, (size_t)(a->W + 1) * (TPI_FOLD_HDR + shard), op,
                             "the folded allgather's staging"));
    memset(p->fold, 0, p->fold_bytes); /* a failing rank sends its block unfilled */
  }
  /* The ring's bookkeeping, for any schedule rank 0 may pick (at most
   * comm_turn or MAX_AUTO_CHUNKS chunks) and any message size the ranks may
   * agree on (the largest rank's, so no smaller than ours). Every rank
   * reserves it, whatever it would pick itself: the choice is rank 0's. */
  if (a->W > 1 && a->m > 0)
    TPI_CHECK(
        tpi_ws_reserve(&p->ring_ws, &p->ring_ws_bytes,
                       tpi_ring_ws_bound(a->m, a->k * (int64_t)a->esize, a->W,
                                         a->comm_turn > 0 ? a->comm_turn : MAX_AUTO_CHUNKS, tpi_params.segment_bytes),
                       op, "the ring's bookkeeping"));
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_plan_build(tpi_plan_t *p, const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                             const char *group, int world_size, const tpmm_all_gather_matmul_opts_t *opts,
                             const tpmm_tensor_t *output, const tpmm_tensor_t *gather_out, int need_data,
                             tpmm_status_t pre) {
  memset(p, 0, sizeof *p);
  TPI_CHECK(tpi_group_get(op, group, &p->g));
  tpi_group_t *g = p->g;
  /* Everything that can fail locally happens before the agreement, so that
   * no rank enters the data phase while a peer has already given up. */
  tpmm_status_t st = pre;
  if (st == TPMM_SUCCESS)
    st = tpi_agmm_validate(op, input, x2, g->size, world_size, opts, output, gather_out, need_data, &p->a);
  const tpi_agmm_t *a = &p->a;
  if (st == TPMM_SUCCESS && (a->k * (int64_t)a->esize > INT32_MAX || a->m > INT32_MAX))
    st = tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: input rows of %lld bytes or m=%lld exceed MPI's int counts", op,
                  (long long)(a->k * (int64_t)a->esize), (long long)a->m);
  if (st == TPMM_SUCCESS && tpi_params.algo == TPMM_ALGO_HIER && g->rail == MPI_COMM_NULL)
    st = tpi_fail(
        TPMM_ERR_UNSUPPORTED,
        "%s: TPMM_ALGO=hier needs group \"%s\" to span several nodes with the same number (> 1) of ranks on each", op,
        g->name);
  if (st == TPMM_SUCCESS && tpi_params.algo == TPMM_ALGO_SHM_PULL && g->n_nodes > 1)
    st = tpi_fail(TPMM_ERR_UNSUPPORTED,
                  "%s: TPMM_ALGO=shm_pull needs every rank of group \"%s\" on one node (it spans %d)", op, g->name,
                  g->n_nodes);
  if (st == TPMM_SUCCESS)
    st = tpi_gemm_create(&p->gemm, a->dt, &a->x2, a->bias, a->bias_dt, a->m > 0 ? a->m : 1,
                         need_data ? a->m * a->W : INT64_MAX);
  int64_t tune[TPI_TUNE] = {0};
  if (st == TPMM_SUCCESS) st = choose(p, op, tune);
  /* the ring's message size shapes its tags, so it must be the same on
   * every rank: the largest rank's (0, whole chunks, counts as largest) */
  tune[8] = tpi_params.segment_bytes > 0 ? tpi_params.segment_bytes : INT64_MAX;
  if (st == TPMM_SUCCESS) st = reserve(p, op, !need_data);
  /* one-shot calls: the group's tuning cache, and the time of the previous
   * one-shot call on this group riding on this agreement (tune.c) */
  if (st == TPMM_SUCCESS && need_data) st = tpi_tune_cache_ready(g, op);
  tune[7] = need_data ? tpi_tune_cache_report(g) : 0;
  int64_t f[TPI_F_COUNT];
  tpi_agmm_fields(input, x2, world_size, opts, f);
  st = tpi_agree(g, op, st, f, TPI_F_COUNT, tpi_field_names, tune, TPI_TUNE);
  if (st != TPMM_SUCCESS) {
    tpi_plan_free(p);
    return st;
  }
  p->tile = tune[2] > 8 ? tune[2] : 8;
  p->segment_bytes = tune[8] == INT64_MAX ? 0 : tune[8];
  p->nap_us = tune[9] > 0 ? (int)(tune[9] - 1) : NAP_COMM_BOUND_US;
  const tpi_cand_t cand[2] = {{(int)tune[0] - 1, (int)tune[1], (int)tune[3]},
                              {(int)tune[4] - 1, (int)tune[5], (int)tune[6]}};
  const int ncand = tune[4] > 0 ? 2 : 1;
  MPI_Query_thread(&p->thread_level);
  if (need_data) {
    int64_t key[TPI_F_COUNT + 6];
    memcpy(key, f, sizeof f);
    memcpy(key + TPI_F_COUNT, tune, 6 * sizeof tune[0]); /* the candidates are part of the key */
    p->tuner = tpi_tune_cache_get(g, &p->a, tune[7], key, TPI_F_COUNT + 6, cand, ncand);
  } else {
    tpi_tuner_init(&p->own, cand, ncand, &p->a);
    p->tuner = &p->own;
  }
  tpi_plan_use(p, tpi_tuner_pick(p->tuner));
  /* the plan keeps its own copies of x2 and bias (inside the GEMM) */
  p->a.x2.data = NULL;
  p->a.bias = NULL;
  return TPMM_SUCCESS;
}

int tpi_plan_folds(const tpi_plan_t *p, int cand) { return p->fold && p->tuner->cand[cand].algo == TPMM_ALGO_UNFUSED; }

void tpi_plan_use(tpi_plan_t *p, int i) {
  const tpi_agmm_t *a = &p->a;
  const tpi_group_t *g = p->g;
  const tpi_cand_t *c = &p->tuner->cand[i];
  p->cur = i;
  p->algo = c->algo;
  p->chunks = c->chunks;
  /* unique tags per chunk: W * C must stay within MPI's tag range */
  if (p->chunks > g->tag_ub / a->W) p->chunks = g->tag_ub / a->W;
  if (p->chunks > a->m) p->chunks = a->m > 0 ? (int)a->m : 1;
  if (p->chunks < 1) p->chunks = 1;
  /* hier polls its rail itself while it waits for node peers */
  p->progress_thread = c->thread && p->thread_level >= MPI_THREAD_SERIALIZED && p->algo != TPMM_ALGO_HIER;
}

static const tpi_algo_fn algos[] = {
    [TPMM_ALGO_UNFUSED] = tpi_algo_unfused,
    [TPMM_ALGO_RING] = tpi_algo_ring,
    [TPMM_ALGO_BIDIR_RING] = tpi_algo_bidir_ring,
    [TPMM_ALGO_SHM_PULL] = tpi_algo_shm_pull,
    [TPMM_ALGO_HIER] = tpi_algo_hier,
};

tpmm_status_t tpi_plan_run(tpi_plan_t *p, const char *op) {
  if (p->algo < 1 || p->algo > TPMM_ALGO_HIER)
    return tpi_fail(TPMM_ERR_INTERNAL, "%s: plan has no algorithm (%d)", op, p->algo);
  if (tpi_params.debug_stall_ms > 0) { /* test hook: a rank that stalls mid-call */
    struct timespec ts = {tpi_params.debug_stall_ms / 1000, (tpi_params.debug_stall_ms % 1000) * 1000000};
    tpi_params.debug_stall_ms = 0;
    nanosleep(&ts, NULL);
  }
  p->gemm_status = TPMM_SUCCESS;
  tpmm_status_t st = algos[p->algo](p, op);
  /* a communication failure (timeout, MPI error) outranks a GEMM failure */
  if (st == TPMM_SUCCESS && p->gemm_status != TPMM_SUCCESS) st = tpi_fail(p->gemm_status, "%s", p->gemm_msg);
  return st;
}

void tpi_plan_free(tpi_plan_t *p) {
  tpi_gemm_destroy(p->gemm);
  if (p->g && p->g->broken) {
    /* a timed-out operation may still use them: the group keeps them */
    tpi_group_orphan(p->g, p->send);
    tpi_group_orphan(p->g, p->gbuf);
    tpi_group_orphan(p->g, p->fold);
  } else {
    free(p->send);
    free(p->gbuf);
    free(p->fold);
  }
  free(p->ring_ws); /* MPI holds no reference: requests are done or freed */
  memset(p, 0, sizeof *p);
}
