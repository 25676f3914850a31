/*
 * test_mixed_ranks.c — ranks that differ in what the arguments do not say
 * (issue 12): a local tunable that changes the wire, plans executed in
 * different orders, a plan on one rank and a one-shot call on another.
 * Every such call either succeeds with the right bits on every rank or
 * fails with TPMM_ERR_MISMATCH on every rank, and the group stays usable.
 * Any number of ranks >= 2 (CTest: 2 and 3); a hang fails by watchdog.
 * Seed: TPMM_TEST_SEED or the clock, printed by rank 0.
 */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static int W, rank;
static uint64_t seed;
static const tpmm_dtype_t DT = TPMM_BFLOAT16;

/* One layer: its tensors and a plan of it. */
typedef struct {
  int64_t m, k, n;
  uint16_t *in, *x2, *out, *ref, *gout;
  tpmm_tensor_t t_in, t_x2, t_out, t_gout;
  tpmm_plan_t *plan;
} layer_t;

static void layer_init(layer_t *L, int64_t m, int64_t k, int64_t n, int tag) {
  L->m = m, L->k = k, L->n = n;
  L->in = malloc((size_t)(m * k) * 2);
  L->x2 = malloc((size_t)(k * n) * 2);
  L->out = malloc((size_t)(m * W * n) * 2);
  L->ref = malloc((size_t)(m * W * n) * 2);
  L->gout = malloc((size_t)(m * W * k) * 2);
  gen_for(L->in, DT, m * k, seed, rank, tag);
  gen_for(L->x2, DT, k * n, seed, rank, tag + 1);
  L->t_in = (tpmm_tensor_t){L->in, DT, 2, {m, k}, 0};
  L->t_x2 = (tpmm_tensor_t){L->x2, DT, 2, {k, n}, 0};
  L->t_out = (tpmm_tensor_t){L->out, DT, 2, {m * W, n}, 0};
  L->t_gout = (tpmm_tensor_t){L->gout, DT, 2, {m * W, k}, 0};
  L->plan = NULL;
}

static void layer_free(layer_t *L) {
  tpmm_plan_destroy(L->plan);
  free(L->in), free(L->x2), free(L->out), free(L->ref), free(L->gout);
}

/* The unfused one-shot result every schedule must reproduce bit for bit. */
static void layer_reference(layer_t *L) {
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_UNFUSED);
  expect_status(tpmm_all_gather_matmul(&L->t_in, &L->t_x2, TPMM_WORLD_COMM_GROUP, W, NULL, &L->t_out, &L->t_gout),
                TPMM_SUCCESS, "reference call", NULL);
  memcpy(L->ref, L->out, (size_t)(L->m * W * L->n) * 2);
}

static void expect_ref(layer_t *L, const char *what) {
  check(memcmp(L->out, L->ref, (size_t)(L->m * W * L->n) * 2) == 0, "%s: output is not bit-identical to unfused", what);
}

static tpmm_status_t execute(layer_t *L) {
  poison(L->out, DT, L->m * W * L->n);
  return tpmm_plan_execute(L->plan, &L->t_in, &L->t_out, &L->t_gout);
}

/* (1) rank 0 alone has a timeout: a valid call must not hang (MPI does not
 * match the blocking collective of a rank without a timeout with the
 * non-blocking one of a rank with one). */
static void one_rank_timeout(layer_t *L, int algo) {
  char name[96];
  snprintf(name, sizeof name, "timeout on rank 0 only, %s, m=%lld", tpmm_algo_name((tpmm_algo_t)algo), (long long)L->m);
  test_case(name, 60);
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  tpmm_set_param(TPMM_PARAM_TIMEOUT_MS, rank == 0 ? 20000 : 0);
  for (int i = 0; i < 3; i++) {
    poison(L->out, DT, L->m * W * L->n);
    expect_status(tpmm_all_gather_matmul(&L->t_in, &L->t_x2, TPMM_WORLD_COMM_GROUP, W, NULL, &L->t_out, &L->t_gout),
                  TPMM_SUCCESS, name, NULL);
    expect_ref(L, name);
  }
  expect_status(tpmm_all_gather_matmul_plan_create(&L->t_in, &L->t_x2, TPMM_WORLD_COMM_GROUP, W, NULL, &L->t_out,
                                                   &L->t_gout, &L->plan),
                TPMM_SUCCESS, name, NULL);
  for (int i = 0; i < 3; i++) {
    expect_status(execute(L), TPMM_SUCCESS, name, NULL);
    expect_ref(L, name);
  }
  tpmm_plan_destroy(L->plan);
  L->plan = NULL;
  tpmm_set_param(TPMM_PARAM_TIMEOUT_MS, 0);
}

/* (2) plans A and B executed A,B on even ranks and B,A on odd ranks: both
 * calls fail with MISMATCH everywhere; then in the same order they work. */
static void plans_out_of_order(layer_t *A, layer_t *B, int algo) {
  char name[128];
  snprintf(name, sizeof name, "plans out of order, %s, m=%lld/%lld", tpmm_algo_name((tpmm_algo_t)algo), (long long)A->m,
           (long long)B->m);
  test_case(name, 60);
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  layer_t *L[2] = {A, B};
  for (int i = 0; i < 2; i++)
    expect_status(tpmm_all_gather_matmul_plan_create(&L[i]->t_in, &L[i]->t_x2, TPMM_WORLD_COMM_GROUP, W, NULL,
                                                     &L[i]->t_out, &L[i]->t_gout, &L[i]->plan),
                  TPMM_SUCCESS, name, NULL);
  for (int round = 0; round < 2; round++) { /* the second round: after the tuner's first calls */
    for (int i = 0; i < 2; i++) {
      layer_t *mine = L[(i + rank) % 2];
      expect_status(execute(mine), TPMM_ERR_MISMATCH, name, "plan");
      check(is_poison(mine->out, DT, 0), "%s: output written on a mismatch", name);
    }
    for (int i = 0; i < 2; i++) {
      expect_status(execute(L[i]), TPMM_SUCCESS, name, NULL);
      expect_ref(L[i], name);
    }
  }
  /* a plan on one rank, a one-shot call of the same shapes on the others */
  for (int i = 0; i < 2; i++) {
    tpmm_status_t st = rank == 0 ? execute(L[i])
                                 : tpmm_all_gather_matmul(&L[i]->t_in, &L[i]->t_x2, TPMM_WORLD_COMM_GROUP, W, NULL,
                                                          &L[i]->t_out, &L[i]->t_gout);
    expect_status(st, TPMM_ERR_MISMATCH, name, NULL);
  }
  for (int i = 0; i < 2; i++) {
    tpmm_plan_destroy(L[i]->plan);
    L[i]->plan = NULL;
  }
}

int main(int argc, char **argv) {
  test_init(&argc, &argv, &rank, &W);
  signal(SIGALRM, test_on_alarm);
  const char *s = getenv("TPMM_TEST_SEED");
  seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (rank == 0) printf("test_mixed_ranks: W=%d seed=%llu\n", W, (unsigned long long)seed);
  /* small shards (plans fold the agreement into the allgather), two sizes
   * of them, and a large one (plans agree first) */
  layer_t tiny, small, big;
  layer_init(&tiny, 2, 8, 8, 10);
  layer_init(&small, 4, 24, 16, 20);
  layer_init(&big, 96, 512, 32, 30);
  layer_t *all[3] = {&tiny, &small, &big};
  for (int i = 0; i < 3; i++) layer_reference(all[i]);
  const int algos[] = {TPMM_ALGO_UNFUSED, TPMM_ALGO_RING, TPMM_ALGO_BIDIR_RING, TPMM_ALGO_SHM_PULL, TPMM_ALGO_AUTO};
  for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
    for (int i = 0; i < 3; i++) one_rank_timeout(all[i], algos[a]);
    plans_out_of_order(&tiny, &small, algos[a]);
    plans_out_of_order(&small, &big, algos[a]);
  }
  alarm(0);
  for (int i = 0; i < 3; i++) layer_free(all[i]);
  const int rc = finish("test_mixed_ranks");
  tpmm_finalize();
  return rc;
}
