/*
 * test_faults.c — a local failure on one rank must never strand its peers
 * ("nothing lost, nothing hung"). The library's test hook TPMM_DEBUG_FAIL
 * (tpi_debug_set_fail, tpi_debug_fail in src/common/debug.h) makes one
 * event on one rank fail as if out of memory, once. For every algorithm the
 * group can run and every event, rank f (rotating) fails and:
 *
 *   preparation (workspaces, the ring's bookkeeping, the tuning cache, all
 *     before the agreement; the shared window, after it, with its outcome
 *     agreed): every rank returns TPMM_ERR_NO_MEMORY; the peers' message
 *     names rank f and the event;
 *   a GEMM (the first, or one in the middle of the pipeline; or the AMX
 *     kernel's buffers for calls of more than 32 rows): rank f returns
 *     TPMM_ERR_NO_MEMORY, every peer returns TPMM_SUCCESS with its output
 *     checked against the fp64 reference (rank f kept moving data);
 *   the progress thread (cannot start): every rank succeeds (polls instead).
 *
 * TPMM_TIMEOUT_MS is set (T_MS), so a stranded peer shows as
 * TPMM_ERR_TIMEOUT rather than a hang, and every rank must return within
 * T_MS / 2. After each case a valid call on the same group must succeed on
 * every rank (the group is still usable). Written for 2 or more ranks
 * (CTest: 3 and 4 in one node; tests/run_netsim.sh: across simulated hosts,
 * where hier joins). Each case runs on a new group, so the tuning cache's
 * first allocation is part of it.
 */
#include <time.h>

#include "src/common/common.h"
#include "src/gemm/gemm.h"
#include "testutil.h"

#define T_MS 4000

static int W, rank;
static uint64_t seed;

enum { K = 24, N = 16, LD = K + 3 };
static int M = 8; /* input rows per rank: 8, or the fault's own */
static const tpmm_dtype_t DT = TPMM_BFLOAT16;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

typedef enum { PREPARE, GEMM, NONE } outcome_t; /* who fails: everybody, rank f only, nobody */
typedef struct {
  const char *event; /* TPMM_DEBUG_FAIL */
  outcome_t outcome;
  int strided; /* input rows with a stride (needs the packed shard) */
  int gather_output;
  int plan;   /* through a plan (built, then executed twice) */
  int thread; /* TPMM_PARAM_PROGRESS_THREAD */
  int rows;   /* input rows per rank, 0: 8; 100 puts more than 32 rows in each GEMM call (gemm_amx.c's blocked pass) */
} fault_t;

static const fault_t faults[] = {
    {"the packed input shard", PREPARE, 1, 1, 0, 0, 0},
    {"the gathered rows", PREPARE, 0, 0, 0, 0, 0},
    {"the ring's bookkeeping", PREPARE, 0, 1, 0, 0, 0},
    {"the tuning cache", PREPARE, 0, 1, 0, 0, 0},
    {"gemm tile", GEMM, 0, 1, 0, 0, 0},
    {"gemm tile:2", GEMM, 1, 0, 0, 0, 0},
    {"gemm tile", GEMM, 1, 1, 1, 0, 0},
    {"gemm tile:1", GEMM, 0, 1, 1, 0, 0},
    {"gemm tile:1", GEMM, 0, 1, 0, 1, 0},
    {"the progress thread", NONE, 0, 1, 0, 1, 0},
    /* through a plan: a one-shot call may spend the event on its cost model's 64-row calibration GEMM */
    {"gemm amx buffers", GEMM, 0, 1, 1, 0, 100},
    {"the shared window", PREPARE, 0, 1, 0, 0, 0},
    {"the shared window", PREPARE, 0, 0, 1, 0, 0},
};

typedef struct {
  uint16_t *in, *x2, *out, *gout, *all; /* all: every rank's input, dense */
} bufs_t;

/* Input rows of ld elements (ld = K: dense); x2 the same on every rank and
 * in every call (a plan keeps its own). */
static void bufs_init(bufs_t *b, int tag, int ld) {
  rng_t r = {seed ^ ((uint64_t)rank << 40) ^ ((uint64_t)tag << 20)};
  rng_t rx = {seed ^ 0x5bd1e995u};
  b->in = malloc(sizeof(uint16_t) * M * LD);
  b->x2 = malloc(sizeof(uint16_t) * K * N);
  fill_randn(b->in, DT, M, K, ld, &r);
  fill_randn(b->x2, DT, K, N, N, &rx);
  b->out = malloc(sizeof(uint16_t) * (size_t)(M * W * N));
  b->gout = malloc(sizeof(uint16_t) * (size_t)(M * W * K));
  poison(b->out, DT, M * W * N);
  poison(b->gout, DT, M * W * K);
  uint16_t *dense = malloc(sizeof(uint16_t) * M * K);
  for (int i = 0; i < M; i++) memcpy(dense + i * K, b->in + i * ld, sizeof(uint16_t) * K);
  b->all = malloc(sizeof(uint16_t) * (size_t)(M * W * K));
  MPI_Allgather(dense, M * K, MPI_UINT16_T, b->all, M * K, MPI_UINT16_T, MPI_COMM_WORLD);
  free(dense);
}
static void bufs_free(bufs_t *b) { free(b->in), free(b->x2), free(b->out), free(b->gout), free(b->all); }

static void check_result(const char *label, const bufs_t *b, int gather_output) {
  int bad = 0, unwritten = 0;
  for (int64_t i = 0; i < (int64_t)M * W; i++)
    for (int64_t j = 0; j < N; j++) {
      double mag, ref = ref_dot(b->all + i * K, 1, b->x2 + j, N, DT, K, 0.0, &mag);
      unwritten += is_poison(b->out, DT, i * N + j);
      bad += !within_tol(get_el(b->out, DT, i * N + j), ref, mag, DT, K);
    }
  check(bad == 0, "%s: %d output elements (%d unwritten) differ from the fp64 reference (seed %llu)", label, bad,
        unwritten, (unsigned long long)seed);
  if (gather_output)
    check(memcmp(b->all, b->gout, sizeof(uint16_t) * (size_t)(M * W * K)) == 0, "%s: gather_out not bit-exact", label);
}

/* One call (one-shot, or a plan's execute) on group; the fault is armed
 * just before it on rank f. Returns the status; *ms: its duration. */
static tpmm_status_t call(const char *group, const fault_t *ft, bufs_t *b, tpmm_plan_t *plan, double *ms) {
  tpmm_tensor_t ti = {b->in, DT, 2, {M, K}, ft->strided ? LD : 0}, tx = {b->x2, DT, 2, {K, N}, 0};
  tpmm_tensor_t to = {b->out, DT, 2, {M * W, N}, 0}, tg = {b->gout, DT, 2, {M * W, K}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.comm_turn = 3;
  o.gather_output = ft->gather_output;
  double t0 = now_ms();
  tpmm_status_t st = plan ? tpmm_plan_execute(plan, &ti, &to, ft->gather_output ? &tg : NULL)
                          : tpmm_all_gather_matmul(&ti, &tx, group, W, &o, &to, ft->gather_output ? &tg : NULL);
  *ms = now_ms() - t0;
  return st;
}

static void arm(const fault_t *ft, int f) {
  tpmm_status_t st = tpi_debug_set_fail("test_faults", rank == f ? ft->event : NULL);
  check(st == TPMM_SUCCESS, "arming \"%s\": %s", ft->event, tpmm_last_error());
}

static void run_case(const fault_t *ft, tpmm_algo_t algo, int f, int tag) {
  char label[160], group[32];
  snprintf(label, sizeof label, "%s, %s, rank %d fails \"%s\"%s", tpmm_algo_name(algo), ft->plan ? "plan" : "one-shot",
           f, ft->event, ft->thread ? ", progress thread" : "");
  snprintf(group, sizeof group, "faults%d", tag);
  int *ranks = malloc(sizeof(int) * (size_t)W);
  for (int i = 0; i < W; i++) ranks[i] = i;
  tpmm_status_t st = tpmm_create_group(group, W, ranks);
  free(ranks);
  check(st == TPMM_SUCCESS, "%s: create group: %s", label, tpmm_last_error());
  if (st != TPMM_SUCCESS) return;
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  tpmm_set_param(TPMM_PARAM_PROGRESS_THREAD, ft->thread);

  M = ft->rows ? ft->rows : 8;
  bufs_t b;
  bufs_init(&b, tag, ft->strided ? LD : K);
  tpmm_plan_t *plan = NULL;
  double ms = 0;
  if (ft->plan) {
    tpmm_tensor_t ti = {NULL, DT, 2, {M, K}, ft->strided ? LD : 0}, tx = {b.x2, DT, 2, {K, N}, 0};
    tpmm_tensor_t to = {NULL, DT, 2, {M * W, N}, 0}, tg = {NULL, DT, 2, {M * W, K}, 0};
    tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
    o.comm_turn = 3;
    o.gather_output = ft->gather_output;
    st = tpmm_all_gather_matmul_plan_create(&ti, &tx, group, W, &o, &to, ft->gather_output ? &tg : NULL, &plan);
    check(st == TPMM_SUCCESS, "%s: plan_create: %s", label, tpmm_last_error());
  }
  if (!ft->plan || plan) {
    arm(ft, f);
    st = call(group, ft, &b, plan, &ms);
    const char *err = tpmm_last_error();
    const int fails = ft->outcome == PREPARE || (ft->outcome == GEMM && rank == f);
    check(ms < T_MS / 2, "%s: returned after %.0f ms (a peer was stranded?)", label, ms);
    if (fails) {
      check(st == TPMM_ERR_NO_MEMORY, "%s: status %d (want NO_MEMORY): %s", label, st, err);
      const char *ev = ft->event, *colon = strchr(ev, ':');
      char evname[64];
      snprintf(evname, sizeof evname, "%.*s", colon ? (int)(colon - ev) : (int)strlen(ev), ev);
      const char *want = ft->outcome == GEMM ? "gemm" : evname;
      check(st == TPMM_SUCCESS || strstr(err, want) != NULL, "%s: message does not name \"%s\": %s", label, want, err);
      if (ft->outcome == PREPARE && rank != f) {
        char who[32];
        snprintf(who, sizeof who, "rank %d ", f);
        check(strstr(err, who) != NULL, "%s: message does not name %s: %s", label, who, err);
      }
    } else {
      check(st == TPMM_SUCCESS, "%s: status %d: %s", label, st, err);
      if (st == TPMM_SUCCESS) check_result(label, &b, ft->gather_output);
    }
    tpi_debug_set_fail("test_faults", NULL);
    /* the group is still usable: a valid call, fresh data */
    bufs_free(&b);
    bufs_init(&b, tag + 1000, ft->strided ? LD : K);
    st = call(group, ft, &b, plan, &ms);
    check(st == TPMM_SUCCESS, "%s: the next call: status %d: %s", label, st, tpmm_last_error());
    if (st == TPMM_SUCCESS) check_result(label, &b, ft->gather_output);
  }
  tpmm_plan_destroy(plan);
  bufs_free(&b);
  check(tpmm_destroy_group(group) == TPMM_SUCCESS, "%s: destroy group: %s", label, tpmm_last_error());
}

int main(int argc, char **argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  t_rank = rank;
  const char *s = getenv("TPMM_TEST_SEED");
  seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (W < 2) {
    if (rank == 0) printf("test_faults: needs 2 or more ranks\n");
    MPI_Finalize();
    return 1;
  }
  setenv("TPMM_TIMEOUT_MS", "4000", 1);
  unsetenv("TPMM_ALGO");
  unsetenv("TPMM_DEBUG_FAIL");
  tpmm_status_t st = tpmm_init(NULL, NULL);
  check(st == TPMM_SUCCESS, "tpmm_init: %s", tpmm_last_error());
  if (st != TPMM_SUCCESS) {
    MPI_Finalize();
    return 1;
  }
  /* the algorithms this world can run: hier and shm_pull need the topology */
  int nodes = 1, node_size = W;
  {
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &node_size);
    int lead = 0, nr;
    MPI_Comm_rank(node, &nr);
    lead = nr == 0;
    MPI_Allreduce(MPI_IN_PLACE, &lead, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    nodes = lead;
    MPI_Comm_free(&node);
  }
  tpmm_algo_t algos[6];
  int na = 0;
  algos[na++] = TPMM_ALGO_UNFUSED;
  algos[na++] = TPMM_ALGO_RING;
  if (W > 2) algos[na++] = TPMM_ALGO_BIDIR_RING;
  if (nodes == 1) algos[na++] = TPMM_ALGO_SHM_PULL;
  if (nodes > 1 && node_size > 1 && W == nodes * node_size) algos[na++] = TPMM_ALGO_HIER;
  algos[na++] = TPMM_ALGO_AUTO;
  if (rank == 0)
    printf("test_faults: W=%d nodes=%d seed=%llu (TPMM_TEST_SEED reproduces), %d algorithms x %zu faults\n", W, nodes,
           (unsigned long long)seed, na, sizeof faults / sizeof faults[0]);
  fflush(stdout);
  int tag = 0;
  for (int i = 0; i < na; i++)
    for (size_t j = 0; j < sizeof faults / sizeof faults[0]; j++, tag++) {
      const fault_t *ft = &faults[j];
      /* unfused runs one GEMM (and auto may pick unfused): no later one to
       * fail; only rings start a progress thread */
      if (strchr(ft->event, ':') && (algos[i] == TPMM_ALGO_UNFUSED || algos[i] == TPMM_ALGO_AUTO)) continue;
      if (ft->thread && algos[i] != TPMM_ALGO_RING && algos[i] != TPMM_ALGO_BIDIR_RING) continue;
      /* allocated after the agreement, its outcome agreed: only the schedules with windows */
      if (strstr(ft->event, "shared window") && algos[i] != TPMM_ALGO_SHM_PULL && algos[i] != TPMM_ALGO_HIER) continue;
      /* the blocked pass's buffers exist where AMX runs bf16 */
      if (strstr(ft->event, "amx") && !tpi_gemm_amx_usable()) continue;
      test_case(ft->event, 60);
      run_case(ft, algos[i], tag % W, tag);
    }
  check(tpmm_finalize() == TPMM_SUCCESS, "finalize: %s", tpmm_last_error());
  int rc = finish("test_faults");
  MPI_Finalize();
  return rc;
}
