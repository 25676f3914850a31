/*
 * test_groups.c — named sub-groups of a world of 4 ranks (issue 2 "two named
 * sub-groups running at the same time"; issue 4 group errors).
 *
 * Each group is used for all_gather_matmul while the other groups run their
 * own calls at the same time; every result is checked against an fp64
 * reference built from the members' inputs *in group-rank order* (which is
 * the order of the list given to tpmm_create_group, not world order), and
 * gather_out must be bit-exact. Groups: pairs {0,1},{2,3}; interleaved
 * {0,2},{1,3}; reversed {3,2,1,0}; a trio {3,1,2} that rank 0 is not in;
 * one-rank groups; groups adopted from MPI_Comm_split with reversed keys;
 * destroy and recreate under the same name with different members; a name
 * taken on one listed rank only (every listed rank must get GROUP; this
 * used to hang the others, and a watchdog turns a hang into a failure).
 *
 * Seed: TPMM_TEST_SEED or the clock, printed by rank 0.
 */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "tpmm_mpi.h"

static int W;
static uint64_t seed;

static void set_case(const char *name, unsigned seconds) { test_case(name, seconds); }

static void gen(void *p, tpmm_dtype_t dt, int64_t n, int wrank, int tag) { gen_for(p, dt, n, seed, wrank, tag); }

/* One all_gather_matmul on `group`, whose group rank g is world rank wr[g].
 * Inputs of world rank r are gen(seed, r, tag): any member can rebuild its
 * peers' inputs, so the reference needs no communication outside tpmm.
 * bias_dt 0 = no bias. Returns 1 if status and results are right. */
static int group_call(const char *label, const char *group, int gw, const int *wr, tpmm_dtype_t dt, int64_t m,
                      int64_t k, int64_t n, int bias_dt, int tag) {
  int grank = -1, gsize = -1, want = -1;
  for (int g = 0; g < gw; g++)
    if (wr[g] == t_rank) want = g;
  expect_status(tpmm_get_rank(group, &grank), TPMM_SUCCESS, label, NULL);
  expect_status(tpmm_get_group_size(group, &gsize), TPMM_SUCCESS, label, NULL);
  check(grank == want && gsize == gw, "%s: group rank %d size %d, expected %d and %d", label, grank, gsize, want, gw);

  const size_t es = dt_size(dt);
  const int64_t M = m * gw;
  void *in = malloc((size_t)(m * k) * es + 1), *x2 = malloc((size_t)(k * n) * es + 1);
  void *out = malloc((size_t)(M * n) * es + 1), *gout = malloc((size_t)(M * k) * es + 1);
  void *peer = malloc((size_t)(m * k) * es + 1);
  void *bias = bias_dt ? malloc((size_t)n * dt_size((tpmm_dtype_t)bias_dt) + 1) : NULL;
  gen(in, dt, m * k, t_rank, tag);
  gen(x2, dt, k * n, t_rank, tag + 1);
  if (bias) gen(bias, (tpmm_dtype_t)bias_dt, n, t_rank, tag + 2);
  poison(out, dt, M * n);
  poison(gout, dt, M * k);
  tpmm_tensor_t ti = {in, dt, 2, {m, k}, 0}, tx = {x2, dt, 2, {k, n}, 0};
  tpmm_tensor_t to = {out, dt, 2, {M, n}, 0}, tg = {gout, dt, 2, {M, k}, 0};
  tpmm_tensor_t tb = {bias, (tpmm_dtype_t)bias_dt, 1, {n, 0}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.bias = bias ? &tb : NULL;
  tpmm_status_t st = tpmm_all_gather_matmul(&ti, &tx, group, gw, &o, &to, &tg);
  int ok = st == TPMM_SUCCESS;
  check(ok, "%s: all_gather_matmul on \"%s\" returned %d (%s)", label, group, st, tpmm_last_error());
  int bad_g = 0, bad_o = 0;
  double worst = 0;
  for (int g = 0; ok && g < gw; g++) {
    gen(peer, dt, m * k, wr[g], tag); /* block g of the result comes from group rank g */
    check_block(peer, (char *)gout + (size_t)(g * m * k) * es, (char *)out + (size_t)(g * m * n) * es, x2, bias,
                (tpmm_dtype_t)bias_dt, dt, m, k, n, &bad_g, &bad_o, &worst);
  }
  check(bad_g == 0, "%s: gather_out: %d of %d row blocks are not the members' inputs in group-rank order", label, bad_g,
        gw);
  check(bad_o == 0, "%s: %d output elements outside tolerance (worst abs err %g)", label, bad_o, worst);
  free(in), free(x2), free(out), free(gout), free(peer), free(bias);
  return ok && !bad_g && !bad_o;
}

/* A call on a group this rank is not in: GROUP, nothing written, no wait. */
static void not_member_call(const char *group) {
  char what[200];
  snprintf(what, sizeof what, "all_gather_matmul on \"%s\" from world rank %d (not a member)", group, t_rank);
  uint16_t in[6] = {0}, x2[6] = {0}, out[64], gout[64], pat[64];
  poison(out, TPMM_FLOAT16, 64), poison(gout, TPMM_FLOAT16, 64), poison(pat, TPMM_FLOAT16, 64);
  tpmm_tensor_t ti = {in, TPMM_FLOAT16, 2, {2, 3}, 0}, tx = {x2, TPMM_FLOAT16, 2, {3, 2}, 0};
  tpmm_tensor_t to = {out, TPMM_FLOAT16, 2, {4, 2}, 0}, tg = {gout, TPMM_FLOAT16, 2, {4, 3}, 0};
  char sub[200];
  snprintf(sub, sizeof sub, "group \"%s\" does not exist on this rank", group);
  expect_status(tpmm_all_gather_matmul(&ti, &tx, group, 2, NULL, &to, &tg), TPMM_ERR_GROUP, what, sub);
  check(memcmp(out, pat, sizeof out) == 0 && memcmp(gout, pat, sizeof gout) == 0, "%s: outputs written", what);
  int v = -7;
  expect_status(tpmm_get_rank(group, &v), TPMM_ERR_GROUP, what, group);
  check(v == -7, "%s: get_rank wrote its output", what);
}

static void create(const char *name, int n, const int *wr) {
  char what[200];
  snprintf(what, sizeof what, "create_group(\"%s\")", name);
  expect_status(tpmm_create_group(name, n, wr), TPMM_SUCCESS, what, NULL);
}
static void destroy(const char *name) {
  char what[200];
  snprintf(what, sizeof what, "destroy_group(\"%s\")", name);
  expect_status(tpmm_destroy_group(name), TPMM_SUCCESS, what, NULL);
}
static int member(int n, const int *wr) {
  for (int i = 0; i < n; i++)
    if (wr[i] == t_rank) return 1;
  return 0;
}

static void pairs(void) {
  set_case("pairs {0,1} {2,3} at the same time", 60);
  const int A[2] = {0, 1}, B[2] = {2, 3};
  const int inA = t_rank < 2;
  create(inA ? "pair_a" : "pair_b", 2, inA ? A : B);
  /* different shapes and dtypes per group: they run concurrently */
  for (int rep = 0; rep < 3; rep++) {
    if (inA)
      group_call("pair_a fp16 + fp32 bias", "pair_a", 2, A, TPMM_FLOAT16, 5, 7, 3, TPMM_FLOAT32, 10);
    else
      group_call("pair_b bf16", "pair_b", 2, B, TPMM_BFLOAT16, 4, 9, 6, 0, 20);
    if (inA)
      group_call("pair_a fp32", "pair_a", 2, A, TPMM_FLOAT32, 3, 2, 5, 0, 30);
    else
      group_call("pair_b fp16 m=33", "pair_b", 2, B, TPMM_FLOAT16, 33, 17, 9, TPMM_FLOAT16, 40);
  }
  /* a group this rank is not in */
  not_member_call(inA ? "pair_b" : "pair_a");

  /* an error inside pair_a (rank 1 passes another k) leaves pair_b alone */
  set_case("mismatch inside pair_a while pair_b runs", 60);
  if (inA) {
    int64_t k = t_rank == 1 ? 8 : 7;
    uint16_t in[5 * 8], x2[8 * 3], out[10 * 3], gout[10 * 8], pat[10 * 8];
    gen(in, TPMM_FLOAT16, 5 * k, t_rank, 50), gen(x2, TPMM_FLOAT16, k * 3, t_rank, 51);
    poison(out, TPMM_FLOAT16, 30), poison(gout, TPMM_FLOAT16, 80), poison(pat, TPMM_FLOAT16, 80);
    tpmm_tensor_t ti = {in, TPMM_FLOAT16, 2, {5, k}, 0}, tx = {x2, TPMM_FLOAT16, 2, {k, 3}, 0};
    tpmm_tensor_t to = {out, TPMM_FLOAT16, 2, {10, 3}, 0}, tg = {gout, TPMM_FLOAT16, 2, {10, k}, 0};
    expect_status(tpmm_all_gather_matmul(&ti, &tx, "pair_a", 2, NULL, &to, &tg), TPMM_ERR_MISMATCH,
                  "pair_a with k 7 / 8", "ranks of group \"pair_a\" disagree on k");
    check(memcmp(out, pat, sizeof out) == 0 && memcmp(gout, pat, sizeof gout) == 0, "pair_a mismatch: outputs written");
    group_call("pair_a after its mismatch", "pair_a", 2, A, TPMM_FLOAT16, 5, 7, 3, 0, 60);
  } else {
    group_call("pair_b during pair_a's mismatch", "pair_b", 2, B, TPMM_BFLOAT16, 4, 9, 6, TPMM_FLOAT32, 70);
  }
}

static void interleaved_and_reversed(void) {
  set_case("interleaved {0,2} {1,3}", 60);
  const int EVEN[2] = {0, 2}, ODD[2] = {1, 3};
  const int even = t_rank % 2 == 0;
  create(even ? "even" : "odd", 2, even ? EVEN : ODD);
  group_call(even ? "even" : "odd", even ? "even" : "odd", 2, even ? EVEN : ODD, even ? TPMM_FLOAT16 : TPMM_FLOAT32, 6,
             11, 4, 0, 80);
  not_member_call(even ? "odd" : "even");

  set_case("reversed {3,2,1,0}", 60);
  const int REV[4] = {3, 2, 1, 0};
  create("rev", 4, REV);
  group_call("rev bf16 + bias", "rev", 4, REV, TPMM_BFLOAT16, 3, 5, 7, TPMM_BFLOAT16, 90);
  group_call("rev fp16", "rev", 4, REV, TPMM_FLOAT16, 1, 64, 8, 0, 100);
  /* the world group, the pairs and rev all alive together */
  group_call("world after sub-groups", TPMM_WORLD_COMM_GROUP, 4, (const int[]){0, 1, 2, 3}, TPMM_FLOAT16, 2, 3, 4, 0,
             110);
}

static void trio_and_singles(void) {
  /* a trio in arbitrary order that rank 0 is not in: rank 0 must not call
   * create, and its calls on "trio" fail locally while the trio works */
  set_case("trio {3,1,2} without rank 0", 60);
  const int TRIO[3] = {3, 1, 2};
  if (member(3, TRIO)) {
    create("trio", 3, TRIO);
    group_call("trio", "trio", 3, TRIO, TPMM_FLOAT16, 4, 6, 5, TPMM_FLOAT32, 120);
  } else {
    not_member_call("trio");
    /* meanwhile rank 0 works alone in a one-rank group */
    const int SELF[1] = {0};
    create("solo0", 1, SELF);
    group_call("solo0 (W=1)", "solo0", 1, SELF, TPMM_BFLOAT16, 7, 3, 2, 0, 130);
    destroy("solo0");
  }
  /* every rank creates its own one-rank group, under the same local name */
  set_case("one-rank groups", 60);
  const int me[1] = {t_rank};
  create("self", 1, me);
  group_call("self (W=1)", "self", 1, me, TPMM_FLOAT32, 3, 4, 5, 0, 140);
  destroy("self");
}

static void from_comm(void) {
  /* MPI_Comm_split with reversed keys: group rank order is the comm's order */
  set_case("group_from_comm(split, reversed keys)", 60);
  MPI_Comm c;
  MPI_Comm_split(MPI_COMM_WORLD, t_rank / 2, -t_rank, &c);
  const int wr[2] = {2 * (t_rank / 2) + 1, 2 * (t_rank / 2)};
  expect_status(tpmm_group_from_comm("split", c), TPMM_SUCCESS, "group_from_comm(split)", NULL);
  MPI_Comm_free(&c); /* tpmm keeps its own duplicate */
  group_call("split (reversed pair)", "split", 2, wr, TPMM_FLOAT16, 3, 8, 2, TPMM_FLOAT16, 150);
  destroy("split");
  int v;
  expect_status(tpmm_get_rank("split", &v), TPMM_ERR_GROUP, "split after destroy", "split");
}

static void recreate(void) {
  /* destroy the pairs, recreate the same names with other members */
  set_case("destroy and recreate pair_a / pair_b", 60);
  const int inA = t_rank < 2;
  destroy(inA ? "pair_a" : "pair_b");
  int v;
  expect_status(tpmm_get_rank(inA ? "pair_a" : "pair_b", &v), TPMM_ERR_GROUP, "pair after destroy", "pair_");
  const int A2[2] = {3, 0}, B2[2] = {1, 2};
  const int inA2 = member(2, A2);
  create(inA2 ? "pair_a" : "pair_b", 2, inA2 ? A2 : B2);
  group_call("recreated pair_a {3,0}", inA2 ? "pair_a" : "pair_b", 2, inA2 ? A2 : B2, TPMM_FLOAT16, 2, 5, 3, 0, 160);
  not_member_call(inA2 ? "pair_b" : "pair_a");
  destroy(inA2 ? "pair_a" : "pair_b");

  /* the same name over and over with rotating membership order */
  for (int cyc = 0; cyc < 6; cyc++) {
    char lbl[64];
    snprintf(lbl, sizeof lbl, "cycle %d", cyc);
    set_case(lbl, 60);
    int wr[4];
    for (int i = 0; i < 4; i++) wr[i] = (i + cyc) % 4;
    create("cycle", 4, wr);
    group_call(lbl, "cycle", 4, wr, cyc % 2 ? TPMM_BFLOAT16 : TPMM_FLOAT16, 2, 3, 2, 0, 170 + cyc);
    destroy("cycle");
  }
  destroy(t_rank % 2 == 0 ? "even" : "odd");
  destroy("rev");
  if (t_rank != 0) destroy("trio");
}

/* Regression (group.c): the name check is rank-local. When the name is taken
 * on one listed rank only, that rank used to return GROUP while the other
 * listed ranks waited in MPI_Comm_create_group (or MPI_Comm_dup for
 * group_from_comm) forever. Now every listed rank returns GROUP, naming the
 * rank that refused, and nothing is registered. */
static void partial_names(void) {
  set_case("create_group with the name taken on rank 0 only (regression: hang)", 15);
  const int SELF[1] = {0};
  if (t_rank == 0) create("taken", 1, SELF);
  const int ALL[4] = {0, 1, 2, 3};
  tpmm_status_t st = tpmm_create_group("taken", 4, ALL);
  expect_status(st, TPMM_ERR_GROUP, "create_group(\"taken\") taken on rank 0 only",
                t_rank == 0 ? "group \"taken\" already exists" : "rank 0 of group");
  check(strstr(tpmm_last_error(), "already exists") != NULL, "partial name: message \"%s\" lacks the cause",
        tpmm_last_error());
  int v = -7;
  if (t_rank != 0)
    expect_status(tpmm_get_rank("taken", &v), TPMM_ERR_GROUP, "\"taken\" after the refused create", "taken");
  else
    check(tpmm_get_group_size("taken", &v) == TPMM_SUCCESS && v == 1, "rank 0's own \"taken\" changed: size %d", v);

  set_case("group_from_comm with the name taken on rank 3 only (regression: hang)", 15);
  const int SELF3[1] = {3};
  if (t_rank == 3) create("taken3", 1, SELF3);
  st = tpmm_group_from_comm("taken3", MPI_COMM_WORLD);
  expect_status(st, TPMM_ERR_GROUP, "group_from_comm(\"taken3\") taken on rank 3 only",
                t_rank == 3 ? "group \"taken3\" already exists" : "rank 3 of group");
  if (t_rank != 3) expect_status(tpmm_get_rank("taken3", &v), TPMM_ERR_GROUP, "\"taken3\" after refusal", "taken3");

  /* nothing half-made: a fresh group over everyone works, then clean up */
  set_case("after the refused creates", 30);
  const int REV[4] = {3, 2, 1, 0};
  create("after_refusal", 4, REV);
  group_call("after refused creates", "after_refusal", 4, REV, TPMM_FLOAT16, 2, 3, 2, 0, 190);
  destroy("after_refusal");
  if (t_rank == 0) destroy("taken");
  if (t_rank == 3) destroy("taken3");
}

int main(int argc, char **argv) {
  signal(SIGALRM, test_on_alarm);
  set_case("tpmm_init", 60);
  tpmm_status_t st = tpmm_init(&argc, &argv);
  if (st != TPMM_SUCCESS) {
    fprintf(stderr, "tpmm_init: %s\n", tpmm_last_error());
    return 1;
  }
  tpmm_get_rank(TPMM_WORLD_COMM_GROUP, &t_rank);
  tpmm_get_group_size(TPMM_WORLD_COMM_GROUP, &W);
  const char *s = getenv("TPMM_TEST_SEED");
  seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (t_rank == 0)
    printf("test_groups: %d ranks, seed %llu (TPMM_TEST_SEED reproduces)\n", W, (unsigned long long)seed);
  if (W != 4) {
    if (t_rank == 0) fprintf(stderr, "test_groups needs exactly 4 ranks, got %d\n", W);
    check(0, "world size %d != 4", W);
    int rc = finish("test_groups");
    tpmm_finalize();
    return rc;
  }
  pairs();
  interleaved_and_reversed();
  trio_and_singles();
  from_comm();
  recreate();
  partial_names();
  set_case("world group at the end", 60);
  group_call("world at the end", TPMM_WORLD_COMM_GROUP, 4, (const int[]){0, 1, 2, 3}, TPMM_BFLOAT16, 3, 3, 3,
             TPMM_FLOAT32, 200);
  alarm(0);
  int rc = finish("test_groups");
  tpmm_finalize();
  return rc;
}
