/*
 * kill_victim.c — the program tests/kill_test.sh kills a rank of.
 *
 * Every rank runs shm_pull on the world group (so the group's MPI shared
 * windows, and tpmm_alloc_shared's symmetric buffer, exist in /dev/shm),
 * checked against an fp64 reference. Then:
 *   no argument:   one more round, and the tally line (CTest runs it this
 *                  way: it builds the program and checks the normal path);
 *   --kill ALGO:   rank 1 raise(SIGKILL)s itself 300 ms after the others
 *                  have entered tpmm_all_gather_matmul with ALGO, no
 *                  TPMM_TIMEOUT_MS: without MPI's fail-stop the others would
 *                  wait forever. kill_test.sh checks that the launcher ends
 *                  the whole job within seconds and that /dev/shm is clean.
 */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

enum { M = 64, K = 96, N = 48 };

static int W, rank;

static void round_checked(tpmm_algo_t algo, void *in, int tag) {
  rng_t r = {0x5eedull ^ ((uint64_t)rank << 32) ^ (uint64_t)tag};
  float *x2 = malloc(sizeof(float) * K * N), *out = malloc(sizeof(float) * (size_t)(M * W * N));
  float *gout = malloc(sizeof(float) * (size_t)(M * W * K)), *all = malloc(sizeof(float) * (size_t)(M * W * K));
  fill_randn(in, TPMM_FLOAT32, M, K, K, &r);
  fill_randn(x2, TPMM_FLOAT32, K, N, N, &r);
  poison(out, TPMM_FLOAT32, M * W * N);
  MPI_Allgather(in, M * K, MPI_FLOAT, all, M * K, MPI_FLOAT, MPI_COMM_WORLD);
  tpmm_tensor_t ti = {in, TPMM_FLOAT32, 2, {M, K}, 0}, tx = {x2, TPMM_FLOAT32, 2, {K, N}, 0};
  tpmm_tensor_t to = {out, TPMM_FLOAT32, 2, {M * W, N}, 0}, tg = {gout, TPMM_FLOAT32, 2, {M * W, K}, 0};
  tpmm_set_param(TPMM_PARAM_ALGO, algo);
  tpmm_status_t st = tpmm_all_gather_matmul(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, NULL, &to, &tg);
  check(st == TPMM_SUCCESS, "%s: %s", tpmm_algo_name(algo), tpmm_last_error());
  int bad = 0;
  for (int64_t i = 0; i < (int64_t)M * W && st == TPMM_SUCCESS; i++)
    for (int64_t j = 0; j < N; j++) {
      double ref = 0, mag = 0;
      for (int64_t q = 0; q < K; q++) {
        double p = (double)all[i * K + q] * x2[q * N + j];
        ref += p, mag += fabs(p);
      }
      bad += !within_tol(out[i * N + j], ref, mag, TPMM_FLOAT32, K);
    }
  check(bad == 0, "%s: %d elements differ from the fp64 reference", tpmm_algo_name(algo), bad);
  check(st != TPMM_SUCCESS || memcmp(all, gout, sizeof(float) * (size_t)(M * W * K)) == 0,
        "%s: gather_out not bit-exact", tpmm_algo_name(algo));
  free(x2), free(out), free(gout), free(all);
}

int main(int argc, char **argv) {
  test_init(&argc, &argv, &rank, &W);
  tpmm_algo_t kill_algo = TPMM_ALGO_AUTO;
  int kill = 0;
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--kill") == 0) {
      kill = 1;
      for (int a = 1; a <= TPMM_ALGO_SHM_PULL; a++)
        if (strcmp(argv[i + 1], tpmm_algo_name((tpmm_algo_t)a)) == 0) kill_algo = (tpmm_algo_t)a;
    }
  /* input in a symmetric buffer: shm_pull publishes it by reference */
  void *in = NULL;
  tpmm_status_t st = tpmm_alloc_shared(TPMM_WORLD_COMM_GROUP, sizeof(float) * M * K, &in);
  check(st == TPMM_SUCCESS, "tpmm_alloc_shared: %s", tpmm_last_error());
  if (st != TPMM_SUCCESS) return finish("kill_victim");
  round_checked(TPMM_ALGO_SHM_PULL, in, 1);
  if (!kill) {
    round_checked(TPMM_ALGO_SHM_PULL, in, 2);
    round_checked(TPMM_ALGO_UNFUSED, in, 3);
    tpmm_free_shared(in);
    int rc = finish("kill_victim");
    tpmm_finalize();
    return rc;
  }
  /* the kill: everyone has the windows; rank 1 dies mid-call of the others */
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) printf("kill_victim: rank 1 dies while the others are in %s\n", tpmm_algo_name(kill_algo));
  fflush(stdout);
  if (rank == 1) {
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    raise(SIGKILL);
  }
  /* no reference gather here: it would wait in MPI_Allgather, not in tpmm */
  float *x2 = calloc(K * N, sizeof(float)), *out = malloc(sizeof(float) * (size_t)(M * W * N));
  tpmm_tensor_t ti = {in, TPMM_FLOAT32, 2, {M, K}, 0}, tx = {x2, TPMM_FLOAT32, 2, {K, N}, 0};
  tpmm_tensor_t to = {out, TPMM_FLOAT32, 2, {M * W, N}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.gather_output = false;
  tpmm_set_param(TPMM_PARAM_ALGO, kill_algo);
  st = tpmm_all_gather_matmul(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, &o, &to, NULL); /* the launcher kills us here */
  fprintf(stderr, "[rank %d] kill_victim: the call returned %d (%s) although rank 1 was killed\n", rank, st,
          tpmm_last_error());
  return 7;
}
