/*
 * pipeline.h — plans: one validated call, its schedule, and what its
 * algorithms share.
 *
 * A call runs in this order (op.c):
 *   validate (src/tensor) -> prepare and propose (plan.c, choose.c) ->
 *   agree (src/comm/agree.c) -> run (the registry's algorithm, algo_*.c) ->
 *   record (tune.c).
 * Algorithms are entries of a registry (algo.h, registry.c); each has a
 * header block: Description / Steps / Memory.
 */
#ifndef TPMM_PIPELINE_H
#define TPMM_PIPELINE_H

#include "../comm/comm.h"
#include "../gemm/gemm.h"
#include "algo.h"

/* The prepared GEMM (packed x2) of a plan: tools/tpmm-bench times its
 * standalone GEMM on the very same copy. Not part of the public API. */
tpi_gemm_t *tpi_plan_gemm(tpmm_plan_t *plan);
/* ... of weight i of a multi plan (0: tpi_plan_gemm). */
tpi_gemm_t *tpi_plan_gemm_w(tpmm_plan_t *plan, int i);
/* What a plan runs now (its autotuner may have switched), for tpmm-bench. */
void tpi_plan_schedule(const tpmm_plan_t *plan, int *algo, int *chunks, int *thread);
/* Whether a plan's autotuner has decided (or has nothing to decide). */
int tpi_plan_tuned(const tpmm_plan_t *plan);
/* The plan inside a public plan, for tests of the cost model (NULL for NULL). */
struct tpi_plan *tpi_plan_inner(tpmm_plan_t *plan);

/* A schedule: algorithm, chunks per shard, progress thread (0/1). */
typedef struct tpi_cand {
  int algo, chunks, thread;
} tpi_cand_t;

/* What a rank proposes to the agreement; every field is combined by its
 * maximum over the ranks. Encoded and decoded in one place (proposal.c). */
typedef struct tpi_proposal {
  tpi_cand_t cand[2];    /* rank 0's: the model's schedule, and the runner-up the tuner
                            times against it (algo 0: none); zeros elsewhere */
  int64_t tile;          /* rank 0's: GEMM rows between two progress polls */
  int64_t nap_us;        /* rank 0's: the progress thread's sleep between polls */
  int64_t segment_bytes; /* the ring's message size shapes its tags: the largest
                            rank's (INT64_MAX: whole chunks) */
  int64_t nonblocking;   /* 1 if any rank has a timeout: every rank posts
                            non-blocking collectives (MPI does not match the two) */
  int64_t prior_pm;      /* rank 0's: the runner-up's predicted time over the model's
                            choice's, per mille (the tuner's prior; 1000 for the thread
                            turned over, which the model has no term for); 0: no runner-up */
  int64_t prev_us;       /* the tuner: this rank's time of the previous call + 1 us */
  int64_t seen_ns;       /* this rank's GEMM time in the group's previous one-shot call, if
                            it timed it (model.c, p->observe), in ns; 0: none */
} tpi_proposal_t;

enum { TPI_PROPOSAL_WORDS = 13 };
void tpi_proposal_encode(const tpi_proposal_t *pr, int64_t w[TPI_PROPOSAL_WORDS]);
void tpi_proposal_decode(const int64_t w[TPI_PROPOSAL_WORDS], tpi_proposal_t *pr);

/* TPI_TUNE_CALLS: calls after which a tuner has decided when its runner-up
 * is no slower (2 warm-ups, the samples back to back, and the call that
 * hears of the last one); later where it is slower, its calls spaced so
 * that they cost at most tpi_tune_budget (3 %) of the calls so far (tune.c), at
 * most TPI_TUNE_CALLS_MAX calls in all; a pair before the last where its first
 * TPI_TUNE_CLEAR_PAIRS pairs have it TPI_TUNE_CLEAR times slower; later too
 * where the pairs would replace the choice but one of them went the other way,
 * or where the runner-up was faster in every pair and by 2 % in their median
 * but the prior or a pair won by under 2 % keeps the choice (then confirming
 * pairs of four calls, tune.c): up to TPI_TUNE_SAMPLES_MAX pairs
 * then decide. */
enum {
  TPI_TUNE_SAMPLES = 3,
  TPI_TUNE_SAMPLES_MAX = 5,
  TPI_TUNE_CALLS = 2 * TPI_TUNE_SAMPLES + 3,
  TPI_TUNE_CLEAR_PAIRS = TPI_TUNE_SAMPLES / 2 + 1 /* a majority: the pairs left could not turn the median */
};
#define TPI_TUNE_CLEAR 1.15
#define TPI_TUNE_WIN 0.98 /* a runner-up is kept where it takes less than this share of the choice's time */
/* ... by the geometric mean with the prior, or in every pair where predicted at most this per mille (tune.c) */
enum { TPI_TUNE_EVERY_PM = 1050 };
/* per mille: the budget, and the excess a runner-up's call is charged at most */
enum { TPI_TUNE_BUDGET_PM = 30, TPI_TUNE_EXCESS_MAX_PM = 400 };
/* its warm-up and pairs at EXCESS_MAX each within BUDGET of the calls, the pairs' partners, the call that hears;
 * the pairs past TPI_TUNE_SAMPLES come back to back, four calls at most (a runner-up whose median pair is a win
 * costs no budget; confirming pairs, tune.c) */
enum {
  TPI_TUNE_CALLS_MAX = (TPI_TUNE_SAMPLES + 1) * TPI_TUNE_EXCESS_MAX_PM / TPI_TUNE_BUDGET_PM + 3 +
                       4 * (TPI_TUNE_SAMPLES_MAX - TPI_TUNE_SAMPLES)
};
/* The budget in use (TPI_TUNE_BUDGET_PM / 1000; tests that must see both candidates run raise it). */
extern double tpi_tune_budget;

/* An autotuner over two candidate schedules (tune.c). */
typedef struct tpi_tuner {
  tpi_cand_t cand[2];
  int ncand, decided, winner;
  int64_t runs;                            /* calls that used it */
  int64_t runner_runs;                     /* ... of them the runner-up's */
  int last;                                /* candidate of the previous call if it is to be recorded, else -1 */
  double last_elapsed;                     /* this rank's time of that call, s */
  int last_failed;                         /* that call failed on this rank */
  double pending;                          /* the first call's time in the pair under way, s; 0: none */
  double samples[2][TPI_TUNE_SAMPLES_MAX]; /* pair i: the choice's time, the runner-up's */
  int npairs;                              /* pairs with both times */
  int confirm_at;                          /* pairs from this one on are confirming pairs (tune.c); 0: none */
  int phase;                               /* the next call's place in a confirming pair, 0-3 */
  double prior;                            /* the runner-up's predicted time over the choice's (>= 1) */
  int64_t prior_pm;                        /* the same per mille, compared exactly (>= 1000) */
  int64_t m, k, n;                         /* the call's shape, for TPMM_VERBOSE */
} tpi_tuner_t;

/* Workspaces of the reduce operators (reduce.h), all reserved by their
 * prepare hook before the agreement. */
typedef struct tpi_red_ws {
  float *part; /* this rank's fp32 partial products, (m, n) */
  size_t part_bytes;
  float *recv; /* the peers' partials of this rank's rows, one slot per rank */
  size_t recv_bytes;
  float *bias; /* the plan's bias in fp32 (n), or NULL */
  size_t bias_bytes;
  float *acc; /* one row of sums (n) */
  size_t acc_bytes;
  void *stage; /* all_reduce into a strided output: the rounded rows, dense */
  size_t stage_bytes;
  void *reqs; /* the ring's requests */
  size_t reqs_bytes;
  int multiplied; /* this call's partials are in part already: the fold multiplied them before
                     the agreement (algo_red_unfused.c) */
} tpi_red_ws_t;

/* What a plan sends with a call's agreement (the fold; plan.c). */
enum {
  TPI_FOLD_NONE,
  TPI_FOLD_SHARD,   /* all_gather_matmul: a copy of the small shard; any schedule may run */
  TPI_FOLD_PARTIALS /* the reduce operators: the partial products, multiplied before the agreement,
                       so the schedule is unfused (chosen before agreeing, choose.c) */
};

typedef struct tpi_plan {
  const tpi_opdesc_t *op; /* the operator and its algorithms */
  tpi_group_t *g;
  tpi_call_t a;                  /* the validated call; data pointers refreshed per execute */
  int64_t fields[TPI_F_COUNT];   /* what the ranks agreed on; every execute agrees on it again */
  tpi_gemm_t *gemm;              /* x2 (+ bias) prepared once */
  int gemm_cached;               /* gemm belongs to the group's cache (one-shot calls): not freed */
  int oneshot;                   /* built for a call with data, not a plan */
  int observe;                   /* the baseline times its GEMM for the model (model.c) */
  tpi_gemm_t *wgemm[TPI_MAX_NB]; /* multi: weights 1..nb-1 (wgemm[0] unused) */
  struct tpi_x2g *x2g;           /* gather_index 1: its state (x2g.h) */
  int algo;                      /* tpmm_algo_t running now */
  int chunks;                    /* chunks per rank's shard */
  int64_t tile;                  /* GEMM rows between two progress polls (ring) */
  int progress_thread;           /* ring: a thread drives MPI instead of polls */
  int nap_us;                    /* ring: the progress thread's sleep between polls */
  int64_t segment_bytes;         /* ring: largest message, the same on every rank (0: whole chunks) */
  int nonblocking;               /* collectives are posted non-blocking (agreed: some rank has a timeout) */
  int cur;                       /* the tuner's candidate in use */
  int thread_level;              /* MPI_Query_thread, once at build */
  tpi_tuner_t own;               /* a plan's own tuner; one-shot calls use their group's cache */
  tpi_tuner_t *tuner;
  /* workspaces, owned by the plan, grown on demand (workspace.c) */
  void *send; /* the local shard packed dense (m x k), if input is not */
  size_t send_bytes;
  void *gbuf; /* gathered rows when gather_out cannot hold them */
  size_t gbuf_bytes;
  const char **peer; /* [W] what came with the agreement (the fold) */
  size_t peer_bytes;
  int folds;                   /* TPI_FOLD_*: small data travels with the agreement */
  const char *const *gathered; /* this call's folded shards or partials, if every rank sent them
                                  (unfused uses them) */
  void *ring_ws;               /* the ring's bookkeeping (ring.h) */
  size_t ring_ws_bytes;
  int *vcounts; /* uneven shards, unfused: MPI_Allgatherv's counts and displacements */
  size_t vcounts_bytes;
  int stashed;      /* the workspaces above came from the group's stash (one-shot calls) */
  tpi_red_ws_t red; /* the reduce operators' */
  /* A GEMM that fails inside a pipeline does not stop the data movement: the
   * peers still need this rank's shard and forwarding. Reset per call. */
  tpmm_status_t gemm_status;
  char gemm_msg[256];
} tpi_plan_t;

/* ---- building and running plans (plan.c, choose.c, model.c) ---- */

/* Validate, prepare (x2 packed, workspaces, schedule) and agree: collective
 * over the group. need_data = 0 for plans (tensors' data may be NULL). pre:
 * a failure the caller already had (its message set), which this rank then
 * reports through the agreement instead of building. On failure *p is left
 * empty. */
tpmm_status_t tpi_plan_build(tpi_plan_t *p, const char *op, const tpi_opdesc_t *desc, const char *group,
                             const tpi_args_t *args, int need_data, tpmm_status_t pre);
/* How close (relative) the predictions of the model's choice and the
 * runner-up must be for the tuner to time both (choose.c; tests set it). */
extern double tpi_explore_margin;
/* This rank's proposal: a forced algorithm's usability (every rank), the
 * model's choice (rank 0), local settings that shape messages (every rank). */
tpmm_status_t tpi_choose(tpi_plan_t *p, const char *op, tpi_proposal_t *pr);
/* The runner-up's predicted time over the choice's, per mille, from the two predictions {baseline, fused} with
 * the model m and fused's chunk count (choose.c). */
int64_t tpi_tune_prior(const tpi_plan_t *p, const tpi_model_t *m, const tpi_algo_t *fused, int chunks,
                       const double t_pred[2]);
/* What the cost model predicts for p (tools/tpmm-bench --predict): the
 * baseline's time, the best fused schedule's, and which auto would pick. */
typedef struct tpi_prediction {
  double t_seq, t_fused, t_gemm, t_xfer; /* seconds */
  int algo, chunks;                      /* auto's pick */
  int fused_algo, fused_chunks;          /* the fused schedule weighed (0: none) */
} tpi_prediction_t;
tpmm_status_t tpi_predict(tpi_plan_t *p, const char *op, tpi_prediction_t *out);
/* The same for a public plan (op.c). */
tpmm_status_t tpi_plan_predict(tpmm_plan_t *plan, tpi_prediction_t *out);
/* The cost model's inputs for p (calibrates the GEMM once per shape). */
tpmm_status_t tpi_model_build(tpi_plan_t *p, const char *op, tpi_model_t *m);
/* Whether TPMM_PROGRESS_THREAD=2 (auto) runs the progress thread for a call of operator op_kind
 * (TPI_OP_*) on a group over n_nodes nodes, whose GEMM tile between polls takes tile_s and whose
 * transfer and GEMM take t_xfer and t_gemm (seconds): never within a node; across nodes where
 * all_gather_matmul's tiles would outlast 2 ms, where gather_index 1's transfer is about the longer
 * part, or where a reduce operator's transfer is a quarter of a GEMM of 20 ms or more, or of one whose
 * tiles would outlast 2 ms. */
int tpi_model_auto_thread(int op_kind, int gather_index, int n_nodes, double tile_s, double t_xfer, double t_gemm);
/* With the fused schedule chosen and no runner-up in pr: the reduce operators across nodes get, as the
 * runner-up, the same schedule with the progress thread's choice turned over, at the prior 1.0 (choose.c
 * says where). Returns whether it did. Rank 0's, in tpi_choose. */
int tpi_thread_runner_up(const tpi_plan_t *p, const tpi_model_t *m, const tpi_algo_t *fused, tpi_proposal_t *pr);
/* Who drives MPI in a ring under model m (1: the progress thread, 0: polls between tiles), with the lag and
 * fixed cost that follow; tile and nap stay. */
void tpi_model_set_thread(tpi_model_t *m, int thread);
/* Fill n elements of dtype dt with values in [-1, 1) that repeat every few
 * thousand: a calibration's operands (zeros multiply faster than data,
 * bench/RESULTS.md §22). */
void tpi_model_fill(void *dst, size_t n, tpmm_dtype_t dt);
/* The clock a calibration times a GEMM with: the wall clock, or where the group is crowded the calling
 * thread's CPU time, the time the call takes with a CPU to itself (the model then scales it by the
 * crowding) however many ranks calibrate beside it; other threads of the process (a framework's) do
 * not count. With GEMM threads the calling one runs its share and waits for the rest. */
double tpi_model_clock(const tpi_group_t *g);
/* Forget every cached GEMM rate: the next model calibrates again (tpmm-bench
 * --predict, for rates measured beside its point). Local. */
void tpi_model_forget(void);
/* No schedule can gain more than the transfer over the baseline: below this
 * share of the GEMM's least time the choice needs no calibration. */
#define TPI_NEGLIGIBLE_COMM 0.02
typedef enum {
  TPI_COMM_WEIGHED,    /* the model weighs the schedules (calibrates the GEMM once per shape) */
  TPI_COMM_NEGLIGIBLE, /* under TPI_NEGLIGIBLE_COMM of the GEMM's floor, or of its time seen */
  TPI_COMM_OBSERVE     /* one-shot, near negligible: run the baseline and time its GEMM first */
} tpi_comm_share_t;
/* Where p's transfer stands against its GEMM; *t_gemm_seen: the GEMM time it was weighed
 * against, if one was seen (else 0). */
tpi_comm_share_t tpi_model_comm_share(const tpi_plan_t *p, double *t_gemm_seen);
/* What a GEMM time seen is kept under: the call's GEMM (dtype, k, n, rows, threads, x2 packed, backend). */
typedef struct tpi_seen_key {
  tpmm_dtype_t dt;
  int64_t k, n, rows;
  int nthreads, pack;
  const void *be;
} tpi_seen_key_t;
void tpi_model_seen_key(const tpi_plan_t *p, tpi_seen_key_t *k);
/* A baseline GEMM of key k run in t seconds: the slowest rank's, agreed (tune.c), so every rank
 * weighs the same times. */
void tpi_model_seen(const tpi_seen_key_t *k, double t);
/* 0: one-shot calls never run uncalibrated to time their GEMM first (tests set it). */
extern int tpi_model_observe_first;
extern double tpi_model_seen_share; /* the latest transfer weighed against a GEMM time seen, over that time */
extern int tpi_model_calibrations;
extern int64_t tpi_model_span;
extern int tpi_model_sliced;    /* slices of x2 the latest calibration ran on (0: all of x2) */
extern double tpi_model_fit[2]; /* the latest calibration's g0 and g1 (seconds; g0 + M g1 for M rows) */
/* The agreement of a call (data: 1) or a plan's creation (0), with the shard
 * or the partials folded in when they are small and there is data; on
 * success p->gathered is set if every rank's came. */
tpmm_status_t tpi_plan_agree(tpi_plan_t *p, const char *op, tpmm_status_t st, int64_t w[TPI_PROPOSAL_WORDS], int data);
/* Switch the plan to its tuner's candidate i (clamps chunks, checks the thread level). */
void tpi_plan_use(tpi_plan_t *p, int i);
/* Run the plan's algorithm on the data currently bound in p->a, after asking
 * the registry that it can run here. */
tpmm_status_t tpi_plan_run(tpi_plan_t *p, const char *op);
void tpi_plan_free(tpi_plan_t *p);

/* ---- operators: the public entries' shared drivers (op.c) ---- */

/* A one-shot call of operator desc: build, run, record, free. */
tpmm_status_t tpi_op_run(const char *op, const tpi_opdesc_t *desc, const char *group, const tpi_args_t *args);
/* A plan of operator desc. */
tpmm_status_t tpi_op_plan_create(const char *op, const tpi_opdesc_t *desc, const char *group, const tpi_args_t *args,
                                 tpmm_plan_t **plan);

/* all_gather_matmul's hooks (op_all_gather_matmul.c) */
tpmm_status_t tpi_agmm_validate_args(const char *op, const tpi_args_t *args, int group_size, int need_data,
                                     tpi_call_t *a);
void tpi_agmm_fields_args(const tpi_args_t *args, int64_t f[TPI_F_COUNT]);
tpmm_status_t tpi_agmm_prepare(tpi_plan_t *p, const char *op, int need_data);
void tpi_agmm_sizes(const tpi_plan_t *p, double *shard_bytes, int64_t *gemm_rows);
/* ... for uneven shards, several weights or gather_index 1 (op_all_gather_matmul_ext.c) */
tpmm_status_t tpi_agmm_prepare_ext(tpi_plan_t *p, const char *op, int need_data);

/* ---- workspaces (workspace.c) ---- */

/* Grow a plan workspace to at least bytes. */
tpmm_status_t tpi_ws_reserve(void **buf, size_t *cap, size_t bytes, const char *op, const char *what);
/* Every workspace the plan's algorithms may need, before the agreement, so
 * that no rank runs out of memory once data moves. */
tpmm_status_t tpi_ws_reserve_plan(tpi_plan_t *p, const char *op);
/* Bytes of the padded MPI_Allgather's staging for uneven shards (MPICH,
 * algo_unfused.c), 0 where it gathers with MPI_Allgatherv or shards are even. */
size_t tpi_unfused_staging(const tpi_call_t *a);
/* The gathered rows' workspace: the rows, or that staging if larger. */
size_t tpi_unfused_gbuf_bytes(const tpi_call_t *a);
/* One-shot calls: take the group's last workspaces before reserving, and
 * give them back after the call (before tpi_plan_free). */
void tpi_ws_adopt(tpi_plan_t *p);
void tpi_ws_stash(tpi_plan_t *p);
/* Whether no call holds the group's stash (tests: a failed call gave it back). */
int tpi_ws_stash_idle(const tpi_group_t *g);
/* Free (or, on a broken group, hand to the group) the plan's workspaces. */
void tpi_ws_free_plan(tpi_plan_t *p);
/* The same for the reduce operators' (reduce.c). */
void tpi_red_ws_free(tpi_plan_t *p);

/* ---- autotuning (tune.c) ---- */
/* prior_pm: the runner-up's predicted time over the choice's, per mille (<= 1000: none). */
void tpi_tuner_init(tpi_tuner_t *t, const tpi_cand_t *cand, int ncand, int64_t prior_pm, const tpi_call_t *a);
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
/* A one-shot call that times its baseline GEMM (p->observe): its key, set on every rank before it runs,
 * and this rank's time once it ran; sent with the group's next agreement (ns; 0: none), and the
 * agreed (slowest rank's) time recorded for the model on every rank (tpi_model_seen). */
void tpi_tune_cache_seen_key(tpi_group_t *g, const tpi_plan_t *p);
void tpi_tune_cache_seen_time(tpi_group_t *g, double t);
int64_t tpi_tune_cache_seen_report(const tpi_group_t *g);
void tpi_tune_cache_seen_agreed(tpi_group_t *g, int64_t ns);
tpi_tuner_t *tpi_tune_cache_get(tpi_group_t *g, const tpi_call_t *a, int64_t prev_us, const int64_t *key, int nkey,
                                const tpi_cand_t *cand, int ncand, int64_t prior_pm);

/* ---- the unfused schedule (algo_unfused.c) ---- */

/* MPI_(I)allgather(v) of every rank's shard (dense rows of tpi_row_bytes)
 * into dst at the shards' rows. */
tpmm_status_t tpi_unfused_gather(tpi_plan_t *p, const char *op, const char *shard, char *dst);

/* ---- the one-shot calls' GEMM cache (gemm_cache.c) ---- */
/* p->gemm for x2 and bias, as tpi_gemm_create makes it; unpacked setups come
 * from (and go to) the group's cache, rebound to this x2 and bias, and
 * p->gemm_cached says so. Local. */
tpmm_status_t tpi_gemm_cached(tpi_plan_t *p, const char *op, tpmm_dtype_t dt, const tpi_mat_t *x2, const void *bias,
                              tpmm_dtype_t bias_dt, int64_t m_hint, int64_t call_rows, int64_t lifetime_rows);

/* ---- gather_index 1 (x2g.c) ---- */
/* The plan's copy of the local shard of x2 and of bias, and its GEMM state. */
tpmm_status_t tpi_x2g_prepare(tpi_plan_t *p, const char *op, int need_data);
void tpi_x2g_free(tpi_plan_t *p);

/* ---- helpers shared by the algorithms ---- */

/* First row of chunk c when m rows are cut into C chunks (as even as can be). */
static inline int64_t tpi_chunk_lo(int64_t m, int C, int c) { return m * c / C; }
/* gather_index 1: each shard of x2 is multiplied in panels of this many of
 * its rows (the last one shorter), each an fp32 GEMM added in order, so that
 * every schedule accumulates alike (x2g.c); chunks hold whole panels. 1024:
 * the panels' GEMMs and adds took 0.82-0.96 of 512's time (bench/RESULTS.md
 * §36.3), and a chunk of one panel still leaves a shard of 2048 rows two. */
enum { TPI_X2_PANEL = 1024 };
/* First row of chunk c of group rank j's shard, cut into C chunks. */
static inline int64_t tpi_shard_chunk_lo(const tpi_call_t *a, int j, int C, int c) {
  const int64_t rows = tpi_shard_rows(a, j);
  if (!a->gather_index) return tpi_chunk_lo(rows, C, c);
  const int64_t lo = tpi_chunk_lo((rows + TPI_X2_PANEL - 1) / TPI_X2_PANEL, C, c) * TPI_X2_PANEL;
  return lo < rows ? lo : rows;
}
/* Bytes of one gathered row: input's (gather_index 0) or x2's (1). */
static inline size_t tpi_row_bytes(const tpi_call_t *a) { return (size_t)(a->gather_index ? a->n : a->k) * a->esize; }

/* Whether the input already is dense row-major (m x k) rows, so that no
 * packed copy is needed. */
static inline int tpi_input_dense(const tpi_call_t *a) { return a->in.cs == 1 && (a->in.rs == a->k || a->m <= 1); }
/* The local shard as dense row-major (m x k): the input itself when it
 * already is, else a packed copy in p->send (transposing if trans_input). (pack.c) */
tpmm_status_t tpi_local_shard(tpi_plan_t *p, const char *op, const char **shard);
/* Copy rows [r0, r0+rows) of a dense (.. x k) block into gather_out at
 * global row g0 (row stride ldg). (pack.c) */
void tpi_copy_rows(const tpi_call_t *a, const char *src, int64_t rows, int64_t g0);

/* Progress hook called between GEMM tiles; returns non-success to stop. */
typedef tpmm_status_t (*tpi_poll_fn)(void *ctx);
/* output rows [g0, g0+rows) = A (dense rows of k, stride k) @ x2 + bias, in
 * tiles of p->tile rows with poll(ctx) between tiles (poll may be NULL).
 * Returns poll's failure; a GEMM failure goes to p->gemm_status instead
 * (and makes later calls in the same run skip their GEMMs), so that the
 * algorithm keeps moving data for its peers. (gemm_rows.c) */
tpmm_status_t tpi_gemm_rows(tpi_plan_t *p, const char *A, int64_t rows, int64_t g0, tpi_poll_fn poll, void *ctx);
/* Rows [lo, hi) of shard j (src: its row lo) through tpi_gemm_rows into
 * their output rows, then copied to gather_out when it is wanted (traced as
 * chunk c): the step of the schedules that read shards in place. */
tpmm_status_t tpi_gemm_chunk(tpi_plan_t *p, const char *src, int j, int64_t lo, int64_t hi, int64_t c, tpi_poll_fn poll,
                             void *ctx);

#endif
