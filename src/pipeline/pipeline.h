/*
 * pipeline.h — plans and the fused schedules of all_gather_matmul.
 *
 * Data flows one way: public entry (op.c) -> validate (src/tensor) ->
 * agree (src/comm/agree.c) -> plan (plan.c: algorithm and chunking) ->
 * execute (algo_*.c: transport <-> GEMM) -> outputs.
 *
 * Every algorithm is a plain function with one signature (Open MPI coll's
 * habit) and a header block: Description / Steps / Memory.
 */
#ifndef TPMM_PIPELINE_H
#define TPMM_PIPELINE_H

#include "../comm/comm.h"
#include "../gemm/gemm.h"

/* The prepared GEMM (packed x2) of a plan: tools/tpmm-bench times its
 * standalone GEMM on the very same copy, so that no variant finds the other's
 * x2 in cache. Not part of the public API. */
tpi_gemm_t *tpi_plan_gemm(tpmm_plan_t *plan);
/* What a plan runs now (its autotuner may have switched): algorithm and
 * chunks per shard, for tpmm-bench's report. Not part of the public API. */
void tpi_plan_schedule(const tpmm_plan_t *plan, int *algo, int *chunks, int *thread);

/* A schedule: algorithm, chunks per shard, progress thread (0/1). */
typedef struct {
  int algo, chunks, thread;
} tpi_cand_t;

/* TPI_TUNE_CALLS: calls after which a tuner has decided (2 warm-ups, the
 * samples, and the call that hears of the last one) */
enum { TPI_TUNE = 10, TPI_TUNE_SAMPLES = 3, TPI_TUNE_CALLS = 2 * TPI_TUNE_SAMPLES + 3 };

/* An autotuner over two candidate schedules (tune.c). */
typedef struct {
  tpi_cand_t cand[2];
  int ncand, decided, winner;
  int64_t runs;        /* calls that used it */
  int last;            /* candidate of the previous call if it is to be recorded, else -1 */
  double last_elapsed; /* this rank's time of that call, s */
  double samples[2][TPI_TUNE_SAMPLES];
  int nsamples[2];
  int64_t m, k, n; /* the call's shape, for TPMM_VERBOSE */
} tpi_tuner_t;

typedef struct tpi_plan {
  tpi_group_t *g;
  tpi_agmm_t a;          /* the validated call; data pointers refreshed per execute */
  tpi_gemm_t *gemm;      /* x2 (+ bias) prepared once */
  int algo;              /* tpmm_algo_t actually used */
  int chunks;            /* chunks per rank's shard */
  int64_t tile;          /* GEMM rows between two progress polls (ring) */
  int progress_thread;   /* ring: a thread drives MPI instead of polls */
  int nap_us;            /* ring: the progress thread's sleep between polls (rank 0's choice) */
  int64_t segment_bytes; /* ring: largest message (the largest TPMM_SEGMENT_BYTES of the ranks: it
                            shapes the messages, so every rank must use the same) */
  /* the tuner that holds the model's schedule and its runner-up and picks
   * between them (tune.c): a plan's own, or a one-shot call's entry in its
   * group's cache; cur: the candidate in use */
  int cur;
  int thread_level; /* MPI_Query_thread, once at build */
  tpi_tuner_t own;
  tpi_tuner_t *tuner;
  /* workspaces, owned by the plan, grown on demand */
  void *send; /* the local shard packed dense (m x k), if input is not */
  size_t send_bytes;
  void *gbuf; /* gathered rows when gather_out cannot hold them */
  size_t gbuf_bytes;
  char *fold; /* unfused with the agreement folded in: staging, (W+1) blocks */
  size_t fold_bytes;
  void *ring_ws; /* the ring's bookkeeping (ring.h), sized by reserve() */
  size_t ring_ws_bytes;
  /* A GEMM that fails inside a pipeline does not stop the data movement:
   * this rank's peers still need its shard and its forwarding, so it moves
   * data to the end, skips its remaining GEMMs and reports the failure
   * (tpi_plan_run). Reset per call. */
  tpmm_status_t gemm_status;
  char gemm_msg[256];
} tpi_plan_t;

typedef tpmm_status_t (*tpi_algo_fn)(tpi_plan_t *p, const char *op);

tpmm_status_t tpi_algo_unfused(tpi_plan_t *p, const char *op);
tpmm_status_t tpi_algo_ring(tpi_plan_t *p, const char *op);
tpmm_status_t tpi_algo_bidir_ring(tpi_plan_t *p, const char *op);
tpmm_status_t tpi_algo_shm_pull(tpi_plan_t *p, const char *op);
tpmm_status_t tpi_algo_hier(tpi_plan_t *p, const char *op);

/* Plan executions of small shards with the unfused schedule carry the
 * agreement in the allgather (algo_unfused.c): header bytes per block, and
 * the largest shard (bytes) that does it. */
enum { TPI_FOLD_HDR = 16, TPI_FOLD_MAX_BYTES = 64 << 10 };
/* Whether plan p's candidate cand runs folded (the same on every rank). */
int tpi_plan_folds(const tpi_plan_t *p, int cand);
/* local: this rank's status (rebind), its message current; *prev_us: this
 * rank's tuner report in, the maximum over ranks out. *agreed = 1 once every
 * rank is known to have succeeded (then the return is the run's status,
 * a GEMM failure in p->gemm_status); else the return is the failing rank's
 * status on every rank, or a communication failure. */
tpmm_status_t tpi_unfused_folded(tpi_plan_t *p, const char *op, tpmm_status_t local, int64_t *prev_us, int *agreed);

/* Validate, prepare (x2 packed, workspaces, schedule) and agree: collective
 * over the group. need_data = 0 for plans (tensors' data may be NULL). pre:
 * a failure the caller already had (its message set), which this rank then
 * reports through the agreement instead of building. On failure *p is left
 * empty. (plan.c) */
tpmm_status_t tpi_plan_build(tpi_plan_t *p, const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                             const char *group, int world_size, const tpmm_all_gather_matmul_opts_t *opts,
                             const tpmm_tensor_t *output, const tpmm_tensor_t *gather_out, int need_data,
                             tpmm_status_t pre);
/* Switch the plan to its tuner's candidate i (clamps chunks, checks the thread level). */
void tpi_plan_use(tpi_plan_t *p, int i);

/* ---- autotuning (tune.c) ---- */
void tpi_tuner_init(tpi_tuner_t *t, const tpi_cand_t *cand, int ncand, const tpi_agmm_t *a);
/* This rank's time of the previous call to send in the agreement (us + 1; 0: none). */
int64_t tpi_tuner_report(const tpi_tuner_t *t);
/* Record the agreed (slowest rank's) time of the previous call; decide once
 * both candidates have their samples. */
void tpi_tuner_record(tpi_tuner_t *t, int64_t prev_us, const tpi_group_t *g);
/* The candidate the next call runs. */
int tpi_tuner_pick(const tpi_tuner_t *t);
/* After a call: remember what ran and how long it took here. */
void tpi_tuner_ran(tpi_tuner_t *t, int cand, int ok, double elapsed);
/* One-shot calls: make sure group g has its cache (a local failure, to be
 * agreed); the report of its previous one-shot call; and, after the
 * agreement, the tuner for this call (recording prev_us for the previous
 * one). key: the agreed fields, with the candidates. */
tpmm_status_t tpi_tune_cache_ready(tpi_group_t *g, const char *op);
int64_t tpi_tune_cache_report(const tpi_group_t *g);
tpi_tuner_t *tpi_tune_cache_get(tpi_group_t *g, const tpi_agmm_t *a, int64_t prev_us, const int64_t *key, int nkey,
                                const tpi_cand_t *cand, int ncand);
/* Run the chosen algorithm on the data currently bound in p->a. */
tpmm_status_t tpi_plan_run(tpi_plan_t *p, const char *op);
void tpi_plan_free(tpi_plan_t *p);

/* First row of chunk c when m rows are cut into C chunks (as even as can be). */
static inline int64_t tpi_chunk_lo(int64_t m, int C, int c) { return m * c / C; }

/* ---- helpers shared by the algorithms (pack.c) ---- */

/* Grow a plan workspace to at least bytes. */
tpmm_status_t tpi_ws_reserve(void **buf, size_t *cap, size_t bytes, const char *op, const char *what);
/* The local shard as dense row-major (m x k): the input itself when it
 * already is, else a packed copy in p->send (transposing if trans_input). */
tpmm_status_t tpi_local_shard(tpi_plan_t *p, const char *op, const char **shard);
/* Copy rows [r0, r0+rows) of a dense (.. x k) block into gather_out at
 * global row g0 (row stride ldg). */
void tpi_copy_rows(const tpi_agmm_t *a, const char *src, int64_t rows, int64_t g0);

/* Progress hook called between GEMM tiles; returns non-success to stop. */
typedef tpmm_status_t (*tpi_poll_fn)(void *ctx);
/* output rows [g0, g0+rows) = A (dense rows of k, stride k) @ x2 + bias, in
 * tiles of p->tile rows with poll(ctx) between tiles (poll may be NULL).
 * Returns poll's failure; a GEMM failure goes to p->gemm_status instead
 * (and makes later calls in the same run skip their GEMMs), so that the
 * algorithm keeps moving data for its peers. */
tpmm_status_t tpi_gemm_rows(tpi_plan_t *p, const char *A, int64_t rows, int64_t g0, tpi_poll_fn poll, void *ctx);

#endif
