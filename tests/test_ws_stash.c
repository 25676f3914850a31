/*
 * test_ws_stash.c — one-shot calls borrow their group's last workspaces
 * (src/pipeline/workspace.c): whatever the previous call left there, each
 * call's gathered rows and output are right, and a call that fails in the
 * agreement gives the workspaces back.
 *
 * On a created group, one-shot calls alternate between a small shape and one
 * whose gathered rows pass the stash's 1 MiB (freed, not kept), with
 * gather_out dense, strided or not wanted (the gathered rows then go to a
 * workspace); every fourth call the last rank passes a bad world_size, so
 * every rank fails in the agreement. After each call the stash must be idle;
 * outputs are checked against fp64 and gather_out bit for bit. The group is
 * destroyed with a full stash (ASan and valgrind see its buffers freed).
 *
 *   mpirun -n W test_ws_stash [seed]
 */
#include <signal.h>

#include "src/pipeline/pipeline.h"
#include "testutil.h"

static void one_call(int it, int rank, int W, uint64_t seed) {
  const tpmm_dtype_t dt = TPMM_BFLOAT16;
  const int big = it % 2, gmode = it % 3; /* gather_out: 0 dense, 1 strided, 2 not wanted */
  const int64_t m = big ? 300 : 3, k = big ? 1024 : 40, n = 8, ldg = gmode == 1 ? k + 5 : k;
  const int bad = it % 4 == 3 && W > 1;
  char name[96];
  snprintf(name, sizeof name, "stash call %d (m=%lld k=%lld, gather_out %s%s)", it, (long long)m, (long long)k,
           gmode == 0   ? "dense"
           : gmode == 1 ? "strided"
                        : "not wanted",
           bad ? ", last rank bad" : "");
  test_case(name, 120);
  uint16_t *all = malloc((size_t)(m * W * k) * 2), *x2 = malloc((size_t)(k * n) * 2);
  uint16_t *out = malloc((size_t)(m * W * n) * 2), *gout = malloc((size_t)(m * W * ldg) * 2);
  for (int q = 0; q < W; q++) gen_for(all + (size_t)(q * m * k), dt, m * k, seed + (uint64_t)it, q, 1);
  gen_for(x2, dt, k * n, seed + (uint64_t)it, rank, 2);
  poison(out, dt, m * W * n);
  poison(gout, dt, m * W * ldg);
  tpmm_tensor_t ti = {all + (size_t)(rank * m * k), dt, 2, {m, k}, 0}, tx = {x2, dt, 2, {k, n}, 0};
  tpmm_tensor_t to = {out, dt, 2, {m * W, n}, 0}, tg = {gout, dt, 2, {m * W, k}, ldg};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.gather_output = gmode != 2;
  const int ws = bad && rank == W - 1 ? W + 1 : W;
  const tpmm_status_t st = tpmm_all_gather_matmul(&ti, &tx, "stash", ws, &o, &to, o.gather_output ? &tg : NULL);
  check(bad ? st != TPMM_SUCCESS : st == TPMM_SUCCESS, "%s: status %d", name, (int)st);
  tpi_group_t *g = NULL;
  check(tpi_group_get("test", "stash", &g) == TPMM_SUCCESS && tpi_ws_stash_idle(g), "%s: the stash is still held",
        name);
  if (!bad && st == TPMM_SUCCESS) {
    int bad_g = 0, bad_o = 0;
    double worst = 0;
    uint16_t *dense = calloc((size_t)(m * W * k), 2);
    for (int64_t i = 0; i < m * W; i++) memcpy(dense + i * k, gout + i * ldg, (size_t)k * 2);
    check_block(all, o.gather_output ? dense : all, out, x2, NULL, dt, dt, m * W, k, n, &bad_g, &bad_o, &worst);
    check(!bad_g && !bad_o, "%s: gather_out %s, %d outputs off (worst %.3g)", name, bad_g ? "differs" : "exact", bad_o,
          worst);
    free(dense);
  }
  free(all), free(x2), free(out), free(gout);
}

int main(int argc, char **argv) {
  int rank, W;
  test_init(&argc, &argv, &rank, &W);
  const uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 20261129;
  signal(SIGALRM, test_on_alarm);
  int *ranks = malloc(sizeof(int) * (size_t)W);
  for (int q = 0; q < W; q++) ranks[q] = q;
  expect_status(tpmm_create_group("stash", W, ranks), TPMM_SUCCESS, "create the group", NULL);
  for (int it = 0; it < 12; it++) one_call(it, rank, W, seed);
  expect_status(tpmm_destroy_group("stash"), TPMM_SUCCESS, "destroy the group with a full stash", NULL);
  free(ranks);
  alarm(0);
  const int rc = finish("test_ws_stash");
  tpmm_finalize();
  return rc;
}
