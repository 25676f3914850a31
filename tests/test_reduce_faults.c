/*
 * test_reduce_faults.c — a local failure on one rank must never strand its
 * peers, for matmul_reduce_scatter and matmul_all_reduce (test_faults.c's
 * rules, with the reduce operators' own events). TPMM_DEBUG_FAIL's hook
 * (tpi_debug_set_fail) makes one event on rank f fail as if out of
 * memory, once. For every algorithm, operator and event:
 *
 *   preparation (every workspace, the tuning cache; all before the
 *     agreement) and shm_pull's and hier's shared window (agreed when it is
 *     reserved): every rank returns TPMM_ERR_NO_MEMORY, the peers' message
 *     naming rank f and the event, and no output is written;
 *   the GEMM of unfused (and auto, which keeps it) at these small sizes: its
 *     partials fold into the agreement, so it runs before it: as
 *     preparation, the message naming the GEMM;
 *   the progress thread (cannot start): every rank succeeds (polls instead);
 *   the agreement's staging blocks (reduce_scatter's folded partials, one
 *     block per peer): every rank succeeds (rank f's first peer is sent a
 *     two-block datatype instead);
 *   a GEMM (the first, or a later one): rank f returns TPMM_ERR_NO_MEMORY
 *     naming the GEMM; it kept moving data, so every peer returns
 *     TPMM_SUCCESS, and every element of every output is either within the
 *     fp64 reference's tolerance or NaN (rank f's partials are NaN: a sum
 *     they enter shows it, never a plausible wrong number).
 *
 * TPMM_TIMEOUT_MS is set, so a stranded peer shows as TPMM_ERR_TIMEOUT, and
 * every rank must return within half of it. After each case a valid call on
 * the same group succeeds and matches the reference on every rank. Each case
 * runs on a new group (the tuning cache's allocation is part of it).
 * The algorithms: unfused, ring, and shm_pull or hier where the world's
 * topology lets them run (CTest runs hier under MPICH's cliques); --quick
 * leaves out auto (it runs one of the others).
 */
#include <signal.h>
#include <time.h>

#include "src/common/common.h"
#include "src/common/debug.h"
#include "testutil.h"

#define T_MS 4000

static int W, rank;
static uint64_t seed;

enum { MB = 4, K = 24, N = 16, LD = K + 3 };
static const tpmm_dtype_t DT = TPMM_BFLOAT16;

typedef enum { PREPARE, GEMM, NONE } outcome_t; /* who fails: everybody, rank f only, nobody */
typedef struct {
  const char *event; /* TPMM_DEBUG_FAIL */
  outcome_t outcome;
  int strided; /* input rows with a stride (needs the packed input) */
  int plan;    /* through a plan (built, then executed) */
  int thread;  /* TPMM_PARAM_PROGRESS_THREAD */
} fault_t;

static const fault_t faults[] = {
    {"the packed input", PREPARE, 1, 0, 0},
    {"the partial products", PREPARE, 0, 0, 0},
    {"the peers' partials", PREPARE, 0, 0, 0},
    {"the ring's requests", PREPARE, 0, 0, 0},
    {"a row of sums", PREPARE, 0, 0, 0},
    {"the tuning cache", PREPARE, 0, 0, 0},
    {"the folded partials' table", PREPARE, 0, 0, 0},
    {"gemm tile", GEMM, 0, 0, 0},
    {"gemm tile:1", GEMM, 1, 0, 0},
    {"gemm tile", GEMM, 0, 1, 0},
    {"gemm tile:1", GEMM, 0, 0, 1},
    {"the progress thread", NONE, 0, 0, 1},
    {"the agreement's staging", NONE, 0, 0, 0}, /* the folded partials go as a datatype instead */
    {"the shared window", PREPARE, 0, 0, 0},    /* shm_pull and hier: agreed when reserved */
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

/* This rank's output rows against fp64: elements outside tolerance that are
 * not NaN (*bad), NaN ones (*nan). */
static void check_out(int all, const uint16_t *out, int tag, int xtag, int *bad, int *nan) {
  const int64_t m = (int64_t)MB * W, rows = all ? m : MB, row0 = all ? 0 : (int64_t)rank * MB;
  uint16_t in[MB * 8 * LD], x2[K * N];
  double ref[MB * 8 * N] = {0}, mag[MB * 8 * N] = {0};
  for (int q = 0; q < W; q++) {
    gen_for(in, DT, m * LD, seed, q, tag);
    gen_for(x2, DT, K * N, seed, q, xtag);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < N; j++)
        for (int64_t p = 0; p < K; p++) {
          const double v = get_el(in, DT, (row0 + i) * LD + p) * get_el(x2, DT, p * N + j);
          ref[i * N + j] += v, mag[i * N + j] += fabs(v);
        }
  }
  *bad = *nan = 0;
  for (int64_t i = 0; i < rows * N; i++) {
    const double got = get_el(out, DT, i);
    if (isnan(got))
      ++*nan;
    else if (!within_tol(got, ref[i], mag[i], DT, K + W))
      ++*bad;
  }
}

/* One call on group with input `tag` (rows of LD elements when strided,
 * else of K) and x2 `xtag` (a plan keeps the one it was made with). */
static tpmm_status_t call(int all, const char *group, const fault_t *ft, tpmm_plan_t *plan, int tag, int xtag,
                          uint16_t *out, double *ms) {
  const int64_t m = (int64_t)MB * W;
  uint16_t in[MB * 8 * LD], x2[K * N];
  gen_for(in, DT, m * LD, seed, rank, tag);
  gen_for(x2, DT, K * N, seed, rank, xtag);
  if (!ft->strided) /* the same rows, dense */
    for (int64_t i = 0; i < m; i++) memmove(in + i * K, in + i * LD, sizeof(uint16_t) * K);
  tpmm_tensor_t ti = {in, DT, 2, {m, K}, ft->strided ? LD : 0}, tx = {x2, DT, 2, {K, N}, 0};
  tpmm_tensor_t to = {out, DT, 2, {all ? m : MB, N}, 0};
  tpmm_matmul_reduce_opts_t o = TPMM_MATMUL_REDUCE_OPTS_INIT;
  o.comm_turn = 2;
  const double t0 = now_ms();
  tpmm_status_t st = plan  ? tpmm_plan_execute(plan, &ti, &to, NULL)
                     : all ? tpmm_matmul_all_reduce(&ti, &tx, group, W, &o, &to)
                           : tpmm_matmul_reduce_scatter(&ti, &tx, group, W, &o, &to);
  *ms = now_ms() - t0;
  return st;
}

static void arm(const fault_t *ft, int f) {
  tpmm_status_t st = tpi_debug_set_fail("test_reduce_faults", rank == f ? ft->event : NULL);
  check(st == TPMM_SUCCESS, "arming \"%s\": %s", ft->event, tpmm_last_error());
}

static tpmm_status_t make_plan(int all, const char *group, const fault_t *ft, int tag, tpmm_plan_t **plan) {
  const int64_t m = (int64_t)MB * W;
  uint16_t x2[K * N];
  gen_for(x2, DT, K * N, seed, rank, tag + 1);
  tpmm_tensor_t ti = {NULL, DT, 2, {m, K}, ft->strided ? LD : 0}, tx = {x2, DT, 2, {K, N}, 0};
  tpmm_tensor_t to = {NULL, DT, 2, {all ? m : MB, N}, 0};
  tpmm_matmul_reduce_opts_t o = TPMM_MATMUL_REDUCE_OPTS_INIT;
  o.comm_turn = 2;
  return all ? tpmm_matmul_all_reduce_plan_create(&ti, &tx, group, W, &o, &to, plan)
             : tpmm_matmul_reduce_scatter_plan_create(&ti, &tx, group, W, &o, &to, plan);
}

/* oc: PREPARE (every rank fails) or GEMM (rank f alone). */
static void expect_fail(const char *label, const fault_t *ft, outcome_t oc, int f, tpmm_status_t st) {
  const char *err = tpmm_last_error(), *colon = strchr(ft->event, ':');
  char ev[64], who[32];
  snprintf(ev, sizeof ev, "%.*s", colon ? (int)(colon - ft->event) : (int)strlen(ft->event), ft->event);
  check(st == TPMM_ERR_NO_MEMORY, "%s: status %d (want NO_MEMORY): %s", label, st, err);
  check(strstr(err, ft->outcome == GEMM ? "gemm" : ev) != NULL, "%s: message does not name the event: %s", label, err);
  snprintf(who, sizeof who, "rank %d ", f);
  check(oc == GEMM || rank == f || strstr(err, who), "%s: message does not name %s: %s", label, who, err);
}

static void run_case(int all, const fault_t *ft, tpmm_algo_t algo, int f, int tag) {
  char label[160], group[32];
  snprintf(label, sizeof label, "%s %s, %s, rank %d fails \"%s\"", all ? "all_reduce" : "reduce_scatter",
           tpmm_algo_name(algo), ft->plan ? "plan" : "one-shot", f, ft->event);
  snprintf(group, sizeof group, "rfaults%d", tag);
  int ranks[64];
  for (int i = 0; i < W; i++) ranks[i] = i;
  tpmm_status_t st = tpmm_create_group(group, W, ranks);
  check(st == TPMM_SUCCESS, "%s: create group: %s", label, tpmm_last_error());
  if (st != TPMM_SUCCESS) return;
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  tpmm_set_param(TPMM_PARAM_PROGRESS_THREAD, ft->thread ? 1 : 2);
  uint16_t out[MB * 8 * N];
  tpmm_plan_t *plan = NULL;
  double ms = 0;
  if (ft->plan) check(make_plan(all, group, ft, tag, &plan) == TPMM_SUCCESS, "%s: plan: %s", label, tpmm_last_error());
  if (!ft->plan || plan) {
    poison(out, DT, MB * 8 * N);
    arm(ft, f);
    st = call(all, group, ft, plan, tag, tag + 1, out, &ms);
    check(ms < T_MS / 2, "%s: returned after %.0f ms (a peer was stranded?)", label, ms);
    /* a failure nobody sees must still have happened */
    check(rank != f || tpi_debug.fail[0] == '\0', "%s: the event never came on rank %d", label, f);
    int bad, nan;
    const outcome_t oc =
        ft->outcome == GEMM && (algo == TPMM_ALGO_UNFUSED || algo == TPMM_ALGO_AUTO) ? PREPARE : ft->outcome;
    if (oc == PREPARE || (oc == GEMM && rank == f)) {
      expect_fail(label, ft, oc, f, st);
      int untouched = 1;
      for (int64_t i = 0; oc == PREPARE && i < (all ? MB * W : MB) * N; i++) untouched &= is_poison(out, DT, i);
      check(untouched, "%s: output written on error", label);
    } else {
      check(st == TPMM_SUCCESS, "%s: status %d: %s", label, st, tpmm_last_error());
      check_out(all, out, tag, tag + 1, &bad, &nan);
      check(bad == 0 && (ft->outcome != NONE || nan == 0), "%s: %d elements wrong and not NaN, %d NaN", label, bad,
            nan);
    }
    tpi_debug_set_fail("test_reduce_faults", NULL);
    st = call(all, group, ft, plan, tag + 2, tag + 1, out, &ms); /* the group is still usable */
    check(st == TPMM_SUCCESS, "%s: the next call: status %d: %s", label, st, tpmm_last_error());
    check_out(all, out, tag + 2, tag + 1, &bad, &nan);
    check(st != TPMM_SUCCESS || (bad == 0 && nan == 0), "%s: the next call: %d wrong, %d NaN", label, bad, nan);
  }
  tpmm_plan_destroy(plan);
  check(tpmm_destroy_group(group) == TPMM_SUCCESS, "%s: destroy group: %s", label, tpmm_last_error());
}

int main(int argc, char **argv) {
  setenv("TPMM_TIMEOUT_MS", "4000", 1);
  unsetenv("TPMM_ALGO");
  unsetenv("TPMM_DEBUG_FAIL");
  signal(SIGALRM, test_on_alarm);
  test_init(&argc, &argv, &rank, &W);
  const char *s = getenv("TPMM_TEST_SEED");
  seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (W < 2 || W > 8) {
    if (rank == 0) printf("test_reduce_faults: needs 2 to 8 ranks\n");
    tpmm_finalize();
    return 1;
  }
  /* --quick: not auto (which runs one of the others); shm_pull and hier where the topology lets them run */
  const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  tpmm_algo_t algos[5] = {TPMM_ALGO_UNFUSED, TPMM_ALGO_RING};
  int na = 2;
  if (world_can_run(TPMM_ALGO_SHM_PULL)) algos[na++] = TPMM_ALGO_SHM_PULL;
  if (world_can_run(TPMM_ALGO_HIER)) algos[na++] = TPMM_ALGO_HIER;
  if (!quick) algos[na++] = TPMM_ALGO_AUTO;
  if (rank == 0)
    printf("test_reduce_faults: W=%d seed=%llu (TPMM_TEST_SEED reproduces)\n", W, (unsigned long long)seed);
  int tag = 0;
  for (int all = 0; all < 2; all++)
    for (int i = 0; i < na; i++)
      for (size_t j = 0; j < sizeof faults / sizeof faults[0]; j++, tag += 4) {
        const fault_t *ft = &faults[j];
        /* unfused runs one GEMM (and auto may pick unfused): no later one to fail */
        if (strchr(ft->event, ':') && (algos[i] == TPMM_ALGO_UNFUSED || algos[i] == TPMM_ALGO_AUTO)) continue;
        if (ft->thread && algos[i] != TPMM_ALGO_RING) continue; /* the one with a progress thread */
        if (strstr(ft->event, "shared window") && algos[i] != TPMM_ALGO_SHM_PULL && algos[i] != TPMM_ALGO_HIER)
          continue;
        /* only a call that folds has the table and the staging blocks; all_reduce's folded partials are the
         * same for every peer (no staging) */
        if ((strstr(ft->event, "folded") || strstr(ft->event, "staging")) && algos[i] != TPMM_ALGO_UNFUSED &&
            algos[i] != TPMM_ALGO_AUTO)
          continue;
        if (strstr(ft->event, "staging") && all) continue;
        test_case(ft->event, 60);
        run_case(all, ft, algos[i], (tag / 4) % W, tag);
      }
  alarm(0);
  int rc = finish("test_reduce_faults");
  tpmm_finalize();
  return rc;
}
