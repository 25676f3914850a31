/*
 * test_errors.c — every error of tpmm_all_gather_matmul and of the group /
 * library functions (issue 2 "Errors", issue 4 "Bad input"), under mpirun
 * with 2 or more ranks (CTest runs 2 and 3).
 *
 * For each bad call every rank checks:
 *   - the status it got is the expected one, and all ranks got the same;
 *   - tpmm_last_error() names the argument (and its value where it has one);
 *     on a rank that was not the lowest failing one the message carries the
 *     "rank R of group ... rejected its arguments: " prefix of the agreement;
 *   - output and gather_out (whole allocations, poisoned with a pattern) and
 *     the inputs are byte-for-byte unchanged;
 *   - a valid call right afterwards succeeds and matches an fp64 reference
 *     (gather_out bit-exact), so the library is still usable.
 * Cases where only ONE rank passes a bad or different argument check that
 * every rank returns (nobody hangs: a SIGALRM watchdog names the case that
 * hung and exits non-zero).
 *
 * Cases named "regression" caught library bugs (docs/RELIABILITY.md).
 *
 * Seed: TPMM_TEST_SEED or the clock, printed by rank 0.
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "tpmm_mpi.h"

static int W;
static uint64_t seed;
static const char *const WG = TPMM_WORLD_COMM_GROUP;

static void set_case(const char *name) { test_case(name, 30); }

/* ---- data: any rank can regenerate any peer's tensors from the seed ----- */
static void gen(void *p, tpmm_dtype_t dt, int64_t n, int wrank, int tag) { gen_for(p, dt, n, seed, wrank, tag); }

/* A valid dense call on the world group (group rank == world rank), checked
 * against an fp64 reference: output within the dtype's tolerance, gather_out
 * bit-exact, the message empty. bias_dt 0 = no bias. Returns 1 if all good. */
static int valid_call(const char *label, tpmm_dtype_t dt, int64_t m, int64_t k, int64_t n, int bias_dt, int comm_turn) {
  const size_t es = dt_size(dt);
  const int64_t M = m * W;
  void *in = malloc((size_t)(m * k) * es + 1), *x2 = malloc((size_t)(k * n) * es + 1);
  void *out = malloc((size_t)(M * n) * es + 1), *gout = malloc((size_t)(M * k) * es + 1);
  void *peer = malloc((size_t)(m * k) * es + 1);
  void *bias = bias_dt ? malloc((size_t)n * dt_size((tpmm_dtype_t)bias_dt) + 1) : NULL;
  gen(in, dt, m * k, t_rank, 1);
  gen(x2, dt, k * n, t_rank, 2);
  if (bias) gen(bias, (tpmm_dtype_t)bias_dt, n, t_rank, 3);
  poison(out, dt, M * n);
  poison(gout, dt, M * k);
  tpmm_tensor_t ti = {in, dt, 2, {m, k}, 0}, tx = {x2, dt, 2, {k, n}, 0};
  tpmm_tensor_t to = {out, dt, 2, {M, n}, 0}, tg = {gout, dt, 2, {M, k}, 0};
  tpmm_tensor_t tb = {bias, (tpmm_dtype_t)bias_dt, 1, {n, 0}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.bias = bias ? &tb : NULL;
  o.comm_turn = comm_turn;
  tpmm_status_t st = tpmm_all_gather_matmul(&ti, &tx, WG, W, &o, &to, &tg);
  int ok = st == TPMM_SUCCESS;
  check(ok, "%s: valid call returned %d (%s)", label, st, tpmm_last_error());
  check(tpmm_last_error()[0] == '\0', "%s: message not cleared after success: \"%s\"", label, tpmm_last_error());
  int bad_g = 0, bad_o = 0;
  double worst = 0;
  for (int r = 0; ok && r < W; r++) {
    gen(peer, dt, m * k, r, 1);
    check_block(peer, (char *)gout + (size_t)(r * m * k) * es, (char *)out + (size_t)(r * m * n) * es, x2, bias,
                (tpmm_dtype_t)bias_dt, dt, m, k, n, &bad_g, &bad_o, &worst);
  }
  check(bad_g == 0, "%s: gather_out differs from the gathered inputs in %d rank blocks", label, bad_g);
  check(bad_o == 0, "%s: %d output elements outside tolerance (worst abs err %g)", label, bad_o, worst);
  free(in), free(x2), free(out), free(gout), free(peer), free(bias);
  return ok && !bad_g && !bad_o;
}

/* ---- the bad-call machinery --------------------------------------------- */
/* Base valid configuration of every case: fp16, small odd dims. */
enum { BM = 3, BK = 5, BN = 4 };
#define ARENA 65536 /* bytes per buffer: room for every shape a case uses */
static char *a_in, *a_x2, *a_out, *a_gout, *a_bias, *a_spare;
static char *s_in, *s_x2, *s_bias, *s_poison; /* saved copies / pattern */

typedef struct {
  tpmm_tensor_t in, x2, out, gout, bias;
  const tpmm_tensor_t *pin, *px2;
  tpmm_tensor_t *pout, *pgout;
  const char *group;
  int world_size;
  tpmm_all_gather_matmul_opts_t opts;
  const tpmm_all_gather_matmul_opts_t *popts;
} call_t;

static void base_call(call_t *c) {
  memset(c, 0, sizeof *c);
  const int64_t M = (int64_t)BM * W;
  c->in = (tpmm_tensor_t){a_in, TPMM_FLOAT16, 2, {BM, BK}, 0};
  c->x2 = (tpmm_tensor_t){a_x2, TPMM_FLOAT16, 2, {BK, BN}, 0};
  c->out = (tpmm_tensor_t){a_out, TPMM_FLOAT16, 2, {M, BN}, 0};
  c->gout = (tpmm_tensor_t){a_gout, TPMM_FLOAT16, 2, {M, BK}, 0};
  c->bias = (tpmm_tensor_t){a_bias, TPMM_FLOAT16, 1, {BN, 0}, 0};
  c->pin = &c->in;
  c->px2 = &c->x2;
  c->pout = &c->out;
  c->pgout = &c->gout;
  c->group = WG;
  c->world_size = W;
  c->opts = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  c->popts = &c->opts;
}

/* What a case expects. who: the ranks that apply the mutation. */
enum { WHO_ALL = -1, WHO_LAST = -2, WHO_NONE = -3 };
typedef struct {
  int who;
  tpmm_status_t status;
  char sub[3][128]; /* substrings every rank's message must contain */
  char own[128];    /* substring only the mutating rank(s) must show */
  bool local;       /* error found before the agreement (group lookup): no prefix */
  int lowest;       /* lowest failing rank (prefix check); -1 = derive from who */
  int min_w;        /* skip below this world size */
} expect_t;

static int who_rank(int who) { return who == WHO_LAST ? W - 1 : who; }
static bool applies(int who) { return who == WHO_ALL || who_rank(who) == t_rank; }

static void expect(expect_t *e, int who, tpmm_status_t st, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void expect(expect_t *e, int who, tpmm_status_t st, const char *fmt, ...) {
  e->who = who;
  e->status = st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->sub[0], sizeof e->sub[0], fmt, ap);
  va_end(ap);
}

/* Case ids. Each is one switch branch in mutate(). */
enum {
  /* every rank passes the same bad argument */
  C_INPUT_NULL,
  C_X2_NULL,
  C_OUTPUT_NULL,
  C_GOUT_NULL,
  C_INPUT_DATA_NULL,
  C_X2_DATA_NULL,
  C_OUTPUT_DATA_NULL,
  C_GOUT_DATA_NULL,
  C_BIAS_DATA_NULL,
  C_INPUT_DTYPE0,
  C_INPUT_DTYPE99,
  C_X2_DTYPE99,
  C_OUTPUT_DTYPE99,
  C_GOUT_DTYPE0,
  C_BIAS_DTYPE99,
  C_X2_DTYPE_DIFF,
  C_OUTPUT_DTYPE_DIFF,
  C_GOUT_DTYPE_DIFF,
  C_BIAS_DTYPE_WRONG,
  C_INPUT_NDIM0,
  C_INPUT_NDIM1,
  C_INPUT_NDIM3,
  C_X2_NDIM1,
  C_X2_NDIM3,
  C_OUTPUT_NDIM3,
  C_GOUT_NDIM1,
  C_BIAS_NDIM2,
  C_INPUT_NEG_M,
  C_INPUT_NEG_K,
  C_X2_NEG_N,
  C_INPUT_MIN_DIM,
  C_OUTPUT_NEG,
  C_INPUT_LD_SMALL,
  C_X2_LD_NEG,
  C_OUTPUT_LD_SMALL,
  C_GOUT_LD_SMALL,
  C_INPUT_T_LD_SMALL,
  C_K_DIFF,
  C_K_DIFF_T,
  C_K_ZERO,
  C_OUTPUT_ROWS,
  C_OUTPUT_COLS,
  C_GOUT_ROWS,
  C_GOUT_COLS,
  C_BIAS_LEN_SHORT,
  C_BIAS_LEN_LONG,
  C_BIAS_LEN_NEG,
  C_WS_PLUS1,
  C_WS_ZERO,
  C_WS_NEG,
  C_WS_MINUS1,
  C_GI_1,
  C_GI_NEG1,
  C_GI_2,
  C_CT_NEG,
  C_CT_BIG,
  C_CT_BIG_M0,
  C_OVF_INPUT_BYTES,
  C_OVF_X2_LD,
  C_OVF_MWN,
  C_OVF_MWK,
  C_OVF_OUTPUT_BYTES,
  C_MPI_M,
  C_MPI_K,
  C_OVL_OUT_IN,
  C_OVL_OUT_IN_TAIL,
  C_OVL_OUT_X2,
  C_OVL_GOUT_IN,
  C_OVL_GOUT_X2,
  C_OVL_OUT_GOUT,
  C_OVL_OUT_BIAS,
  C_OVL_IN_INSIDE_GOUT,
  C_GROUP_NULL,
  C_GROUP_EMPTY,
  C_GROUP_UNKNOWN,
  /* only one rank differs: every rank must return MISMATCH */
  M_K,
  M_N,
  M_M,
  M_DTYPE,
  M_COMM_TURN,
  M_TRANS_INPUT,
  M_TRANS_X2,
  M_GATHER_OUTPUT,
  M_WORLD_SIZE,
  M_BIAS_PRESENT,
  M_BIAS_DTYPE,
  M_GI_1,
  M_K_AND_LOCAL_BAD,
  M_INPUT_NULL,
  M_INPUT_NDIM3,
  M_OPTS_NULL_VS_TRANS,
  M_INT64_MIN,
  /* only one rank's arguments are invalid, fields agree: its status everywhere */
  L_R1_INPUT_DATA_NULL,
  L_R1_OUTPUT_ROWS,
  L_R1_OVERLAP,
  L_R1_BIAS_LEN,
  L_R1_LD,
  L_LAST_OUTPUT_DTYPE99,
  L_R0_X2_KDIFF,
  L_R1_AND_R2,
  L_R2_AND_R1,
  L_R1_GOUT_DTYPE,
  N_CASES
};

/* Tensors of many GiB for the cases that must fail before touching data:
 * distinct, never-dereferenced addresses 1 TiB apart (so the overlap check
 * does not fire first); a library that touched them would crash. */
static void fake_pointers(call_t *c) {
  c->in.data = (void *)(uintptr_t)(UINT64_C(1) << 40);
  c->x2.data = (void *)(uintptr_t)(UINT64_C(2) << 40);
  c->out.data = (void *)(uintptr_t)(UINT64_C(3) << 40);
  c->gout.data = (void *)(uintptr_t)(UINT64_C(4) << 40);
}

/* Apply case id to c on the ranks it concerns; fill the expectation.
 * Returns false if the case does not apply to this world size. */
static bool mutate(call_t *c, int id, expect_t *e, char *name, size_t name_len) {
  memset(e, 0, sizeof *e);
  e->lowest = -1;
  bool me;
  const int64_t M = (int64_t)BM * W;
  const char *nm = "?";
#define EXPECT(who, st, ...) (expect(e, who, st, __VA_ARGS__), me = applies(who))
#define NAME(s) nm = s
  switch (id) {
    case C_INPUT_NULL:
      NAME("input tensor NULL");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "input is NULL");
      if (me) c->pin = NULL;
      break;
    case C_X2_NULL:
      NAME("x2 tensor NULL");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "x2 is NULL");
      if (me) c->px2 = NULL;
      break;
    case C_OUTPUT_NULL:
      NAME("output tensor NULL");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "output is NULL");
      if (me) c->pout = NULL;
      break;
    case C_GOUT_NULL:
      NAME("gather_out NULL with gather_output");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "gather_out is NULL");
      if (me) c->pgout = NULL;
      break;
    case C_INPUT_DATA_NULL:
      NAME("input data NULL");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "input: data is NULL");
      snprintf(e->sub[1], sizeof e->sub[1], "(%d, %d)", BM, BK);
      if (me) c->in.data = NULL;
      break;
    case C_X2_DATA_NULL:
      NAME("x2 data NULL");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "x2: data is NULL");
      if (me) c->x2.data = NULL;
      break;
    case C_OUTPUT_DATA_NULL:
      NAME("output data NULL");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "output: data is NULL");
      if (me) c->out.data = NULL;
      break;
    case C_GOUT_DATA_NULL:
      NAME("gather_out data NULL");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "gather_out: data is NULL");
      if (me) c->gout.data = NULL;
      break;
    case C_BIAS_DATA_NULL:
      NAME("bias data NULL");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "bias: data is NULL");
      snprintf(e->sub[1], sizeof e->sub[1], "n=%d", BN);
      c->opts.bias = &c->bias;
      if (me) c->bias.data = NULL;
      break;
    case C_INPUT_DTYPE0:
      NAME("input dtype 0");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "input: dtype=0");
      if (me) c->in.dtype = (tpmm_dtype_t)0;
      break;
    case C_INPUT_DTYPE99:
      NAME("input dtype 99");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "input: dtype=99");
      if (me) c->in.dtype = (tpmm_dtype_t)99;
      break;
    case C_X2_DTYPE99:
      NAME("x2 dtype 99");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "x2: dtype=99");
      if (me) c->x2.dtype = (tpmm_dtype_t)99;
      break;
    case C_OUTPUT_DTYPE99:
      NAME("output dtype 99");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "output: dtype=99");
      if (me) c->out.dtype = (tpmm_dtype_t)99;
      break;
    case C_GOUT_DTYPE0:
      NAME("gather_out dtype 0");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "gather_out: dtype=0");
      if (me) c->gout.dtype = (tpmm_dtype_t)0;
      break;
    case C_BIAS_DTYPE99:
      NAME("bias dtype 99");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "bias: dtype=99");
      c->opts.bias = &c->bias;
      if (me) c->bias.dtype = (tpmm_dtype_t)99;
      break;
    case C_X2_DTYPE_DIFF:
      NAME("x2 dtype differs from input");
      EXPECT(WHO_ALL, TPMM_ERR_DTYPE, "x2: dtype float32");
      strcpy(e->sub[1], "input dtype float16");
      if (me) c->x2.dtype = TPMM_FLOAT32;
      break;
    case C_OUTPUT_DTYPE_DIFF:
      NAME("output dtype differs");
      EXPECT(WHO_ALL, TPMM_ERR_DTYPE, "output: dtype bfloat16");
      if (me) c->out.dtype = TPMM_BFLOAT16;
      break;
    case C_GOUT_DTYPE_DIFF:
      NAME("gather_out dtype differs");
      EXPECT(WHO_ALL, TPMM_ERR_DTYPE, "gather_out: dtype float32");
      if (me) c->gout.dtype = TPMM_FLOAT32;
      break;
    case C_BIAS_DTYPE_WRONG:
      NAME("bias bf16 with fp16 input");
      EXPECT(WHO_ALL, TPMM_ERR_DTYPE, "bias: dtype bfloat16");
      c->opts.bias = &c->bias;
      if (me) c->bias.dtype = TPMM_BFLOAT16;
      break;
    case C_INPUT_NDIM0:
      NAME("input ndim 0");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "input: ndim=0");
      if (me) c->in.ndim = 0;
      break;
    case C_INPUT_NDIM1:
      NAME("input ndim 1");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "input: ndim=1");
      if (me) c->in.ndim = 1;
      break;
    case C_INPUT_NDIM3:
      NAME("input ndim 3");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "input: ndim=3");
      if (me) c->in.ndim = 3;
      break;
    case C_X2_NDIM1:
      NAME("x2 ndim 1");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "x2: ndim=1");
      if (me) c->x2.ndim = 1;
      break;
    case C_X2_NDIM3:
      NAME("x2 ndim 3");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "x2: ndim=3");
      if (me) c->x2.ndim = 3;
      break;
    case C_OUTPUT_NDIM3:
      NAME("output ndim 3");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "output: ndim=3");
      if (me) c->out.ndim = 3;
      break;
    case C_GOUT_NDIM1:
      NAME("gather_out ndim 1");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "gather_out: ndim=1");
      if (me) c->gout.ndim = 1;
      break;
    case C_BIAS_NDIM2:
      NAME("bias ndim 2");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "bias: ndim=2");
      c->opts.bias = &c->bias;
      if (me) c->bias.ndim = 2;
      break;
    case C_INPUT_NEG_M:
      NAME("input negative m");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "input: shape (-1, %d)", BK);
      if (me) c->in.shape[0] = -1;
      break;
    case C_INPUT_NEG_K:
      NAME("input negative k");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "input: shape (%d, -5)", BM);
      if (me) c->in.shape[1] = -5;
      break;
    case C_X2_NEG_N:
      NAME("x2 negative n");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "x2: shape (%d, -2)", BK);
      if (me) c->x2.shape[1] = -2;
      break;
    case C_INPUT_MIN_DIM:
      NAME("input m = INT64_MIN");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "input: shape (%lld,", (long long)INT64_MIN);
      if (me) c->in.shape[0] = INT64_MIN;
      break;
    case C_OUTPUT_NEG:
      NAME("output negative dim");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "output: shape (%lld, -4)", (long long)M);
      if (me) c->out.shape[1] = -4;
      break;
    case C_INPUT_LD_SMALL:
      NAME("input ld < columns");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "input: ld=%d", BK - 1);
      if (me) c->in.ld = BK - 1;
      break;
    case C_X2_LD_NEG:
      NAME("x2 ld negative");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "x2: ld=-1");
      if (me) c->x2.ld = -1;
      break;
    case C_OUTPUT_LD_SMALL:
      NAME("output ld < n");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "output: ld=%d", BN - 1);
      if (me) c->out.ld = BN - 1;
      break;
    case C_GOUT_LD_SMALL:
      NAME("gather_out ld < k");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "gather_out: ld=1");
      if (me) c->gout.ld = 1;
      break;
    case C_INPUT_T_LD_SMALL:
      NAME("transposed input ld < m");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "input: ld=%d", BM - 1);
      c->opts.trans_input = true;
      c->in.shape[0] = BK, c->in.shape[1] = BM;
      if (me) c->in.ld = BM - 1;
      break;
    case C_K_DIFF:
      NAME("x2 k differs from input k");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "x2: k=%d does not match input k=%d", BK + 1, BK);
      if (me) c->x2.shape[0] = BK + 1;
      break;
    case C_K_DIFF_T:
      NAME("x2 k differs (trans_x2)");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "x2: k=%d does not match input k=%d", BK - 1, BK);
      strcpy(e->sub[1], "transposed");
      c->opts.trans_x2 = true;
      c->x2.shape[0] = BN;
      if (me) c->x2.shape[1] = BK - 1;
      break;
    case C_K_ZERO:
      NAME("k = 0");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "k=0");
      if (me) c->in.shape[1] = 0, c->x2.shape[0] = 0, c->gout.shape[1] = 0;
      break;
    case C_OUTPUT_ROWS:
      NAME("output rows wrong");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "output: shape (%lld, %d), expected (%lld, %d)", (long long)M - 1, BN,
             (long long)M, BN);
      if (me) c->out.shape[0] = M - 1;
      break;
    case C_OUTPUT_COLS:
      NAME("output cols wrong");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "output: shape (%lld, %d), expected (%lld, %d)", (long long)M, BN + 1,
             (long long)M, BN);
      if (me) c->out.shape[1] = BN + 1;
      break;
    case C_GOUT_ROWS:
      NAME("gather_out rows wrong (m, not m*W)");
      e->min_w = 2;
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "gather_out: shape (%d, %d), expected (%lld, %d)", BM, BK, (long long)M, BK);
      if (me) c->gout.shape[0] = BM;
      break;
    case C_GOUT_COLS:
      NAME("gather_out cols wrong");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "gather_out: shape (%lld, %d), expected (%lld, %d)", (long long)M, BN,
             (long long)M, BK);
      if (me) c->gout.shape[1] = BN;
      break;
    case C_BIAS_LEN_SHORT:
      NAME("bias too short");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "bias: length %d does not match n=%d", BN - 1, BN);
      c->opts.bias = &c->bias;
      if (me) c->bias.shape[0] = BN - 1;
      break;
    case C_BIAS_LEN_LONG:
      NAME("bias too long");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "bias: length %d does not match n=%d", BN + 1, BN);
      c->opts.bias = &c->bias;
      if (me) c->bias.shape[0] = BN + 1;
      break;
    case C_BIAS_LEN_NEG:
      NAME("bias negative length");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "bias: length -1");
      c->opts.bias = &c->bias;
      if (me) c->bias.shape[0] = -1;
      break;
    case C_WS_PLUS1:
      NAME("world_size = W+1");
      EXPECT(WHO_ALL, TPMM_ERR_WORLD_SIZE, "world_size=%d", W + 1);
      snprintf(e->sub[1], sizeof e->sub[1], "group has %d ranks", W);
      if (me) c->world_size = W + 1;
      break;
    case C_WS_MINUS1:
      NAME("world_size = W-1");
      EXPECT(WHO_ALL, TPMM_ERR_WORLD_SIZE, "world_size=%d", W - 1);
      if (me) c->world_size = W - 1;
      break;
    case C_WS_ZERO:
      NAME("world_size 0");
      EXPECT(WHO_ALL, TPMM_ERR_WORLD_SIZE, "world_size=0");
      if (me) c->world_size = 0;
      break;
    case C_WS_NEG:
      NAME("world_size negative");
      EXPECT(WHO_ALL, TPMM_ERR_WORLD_SIZE, "world_size=-2");
      if (me) c->world_size = -2;
      break;
    case C_GI_1:
      NAME("gather_index 1: x2's shards do not add up to input's k"); /* W x 5 rows of x2, input k=5 */
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "but input has k=5");
      if (me) c->opts.gather_index = 1;
      break;
    case C_GI_NEG1:
      NAME("gather_index -1");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "gather_index=-1");
      if (me) c->opts.gather_index = -1;
      break;
    case C_GI_2:
      NAME("gather_index 2");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "gather_index=2");
      if (me) c->opts.gather_index = 2;
      break;
    case C_CT_NEG:
      NAME("comm_turn negative");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "comm_turn=-1");
      if (me) c->opts.comm_turn = -1;
      break;
    case C_CT_BIG:
      NAME("comm_turn > m");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "comm_turn=%d", BM + 1);
      snprintf(e->sub[1], sizeof e->sub[1], "m=%d", BM);
      if (me) c->opts.comm_turn = BM + 1;
      break;
    case C_CT_BIG_M0:
      NAME("comm_turn 2 with m = 0");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "comm_turn=2");
      c->in.shape[0] = 0, c->out.shape[0] = 0, c->gout.shape[0] = 0;
      if (me) c->opts.comm_turn = 2;
      break;
    /* Overflow: data pointers are the small arenas; a correct library fails
     * before touching them (a wrong one would crash here). */
    case C_OVF_INPUT_BYTES:
      NAME("input byte size overflows int64");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "input: shape (%lld, %d)", (long long)(INT64_C(1) << 62), BK);
      strcpy(e->sub[1], "overflows");
      if (me) c->in.shape[0] = INT64_C(1) << 62;
      break;
    case C_OVF_X2_LD:
      NAME("x2 ld*rows overflows");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "x2: shape (%d, %d) with ld=%lld", BK, BN, (long long)(INT64_C(1) << 61));
      strcpy(e->sub[1], "overflows");
      if (me) c->x2.ld = INT64_C(1) << 61;
      break;
    case C_OVF_MWN:
      NAME("m*W*n overflows"); /* each tensor alone fits */
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "m*world_size=%lld*%d", (long long)(INT64_C(1) << 40), W);
      strcpy(e->sub[1], "overflows");
      c->in.shape[0] = INT64_C(1) << 40, c->in.shape[1] = 1;
      c->x2.shape[0] = 1, c->x2.shape[1] = INT64_C(1) << 30;
      c->out.shape[0] = (INT64_C(1) << 40) * W, c->out.shape[1] = INT64_C(1) << 30;
      c->gout.shape[0] = (INT64_C(1) << 40) * W, c->gout.shape[1] = 1;
      me = true;
      break;
    case C_OVF_MWK:
      NAME("m*W*k overflows");
      e->min_w = 2;
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "m*world_size=%lld*%d with k=2, n=0", (long long)(INT64_C(1) << 59), W);
      strcpy(e->sub[1], "overflows");
      c->in.shape[0] = INT64_C(1) << 59, c->in.shape[1] = 2;
      c->x2.shape[0] = 2, c->x2.shape[1] = 0;
      c->out.shape[1] = 0;
      me = true;
      break;
    case C_OVF_OUTPUT_BYTES:
      NAME("output ld*rows overflows");
      EXPECT(WHO_ALL, TPMM_ERR_SHAPE, "output: shape (%lld, %d) with ld=%lld", (long long)M, BN,
             (long long)(INT64_C(1) << 62));
      if (me) c->out.ld = INT64_C(1) << 62;
      break;
    case C_MPI_M:
      NAME("m > INT_MAX (MPI int counts)");
      EXPECT(WHO_ALL, TPMM_ERR_UNSUPPORTED, "m=%lld", (long long)INT_MAX + 1);
      c->in.shape[0] = (int64_t)INT_MAX + 1, c->in.shape[1] = 1;
      c->x2.shape[0] = 1, c->x2.shape[1] = 1;
      c->out.shape[0] = ((int64_t)INT_MAX + 1) * W, c->out.shape[1] = 1;
      c->gout.shape[0] = ((int64_t)INT_MAX + 1) * W, c->gout.shape[1] = 1;
      fake_pointers(c);
      me = true;
      break;
    case C_MPI_K:
      NAME("k rows > INT_MAX bytes (MPI int counts)");
      EXPECT(WHO_ALL, TPMM_ERR_UNSUPPORTED, "%lld bytes", (long long)(INT64_C(1) << 31) * 2);
      c->in.shape[0] = 1, c->in.shape[1] = INT64_C(1) << 31;
      c->x2.shape[0] = INT64_C(1) << 31, c->x2.shape[1] = 1;
      c->out.shape[0] = W, c->out.shape[1] = 1;
      c->gout.shape[0] = W, c->gout.shape[1] = INT64_C(1) << 31;
      fake_pointers(c);
      me = true;
      break;
    case C_OVL_OUT_IN:
      NAME("output == input");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "output overlaps input");
      if (me) c->out.data = a_in;
      break;
    case C_OVL_OUT_IN_TAIL:
      NAME("output starts on input's last element");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "output overlaps input");
      if (me) c->out.data = a_in + (BM * BK - 1) * 2;
      break;
    case C_OVL_OUT_X2:
      NAME("output ends inside x2");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "output overlaps x2");
      /* x2 moves into the spare arena so that output's range stays inside it */
      c->x2.data = a_spare + 4096;
      if (me) c->out.data = a_spare + 4096 - (M * BN - 1) * 2; /* output's last element = x2's first */
      break;
    case C_OVL_GOUT_IN:
      NAME("gather_out == input");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "gather_out overlaps input");
      if (me) c->gout.data = a_in;
      break;
    case C_OVL_GOUT_X2:
      NAME("gather_out overlaps x2");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "gather_out overlaps x2");
      if (me) c->gout.data = a_x2 + 2;
      break;
    case C_OVL_OUT_GOUT:
      NAME("output overlaps gather_out");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "output overlaps gather_out");
      if (me) c->out.data = a_gout + (M * BK - 1) * 2;
      break;
    case C_OVL_OUT_BIAS:
      NAME("output overlaps bias");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "output overlaps bias");
      c->opts.bias = &c->bias;
      if (me) c->out.data = a_bias + 2;
      break;
    case C_OVL_IN_INSIDE_GOUT:
      NAME("input is this rank's block of gather_out (in-place gather)");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "gather_out overlaps input");
      if (me) c->in.data = a_gout + (size_t)(t_rank * BM * BK) * 2;
      break;
    case C_GROUP_NULL:
      NAME("group NULL");
      EXPECT(WHO_ALL, TPMM_ERR_INVALID_ARGUMENT, "group is NULL");
      e->local = true;
      if (me) c->group = NULL;
      break;
    case C_GROUP_EMPTY:
      NAME("group \"\"");
      EXPECT(WHO_ALL, TPMM_ERR_GROUP, "group \"\" does not exist");
      e->local = true;
      if (me) c->group = "";
      break;
    case C_GROUP_UNKNOWN:
      NAME("unknown group");
      EXPECT(WHO_ALL, TPMM_ERR_GROUP, "group \"no_such_group\" does not exist");
      e->local = true;
      if (me) c->group = "no_such_group";
      break;

    case M_K:
      NAME("rank 1 passes a different k");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on k");
      if (me) c->in.shape[1] = BK + 2, c->x2.shape[0] = BK + 2, c->gout.shape[1] = BK + 2;
      break;
    case M_N:
      NAME("last rank passes a different n");
      EXPECT(WHO_LAST, TPMM_ERR_MISMATCH, "disagree on n");
      if (me) c->x2.shape[1] = BN + 1, c->out.shape[1] = BN + 1;
      break;
    case M_M:
      NAME("rank 1 passes a different m");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on m");
      if (me) c->in.shape[0] = BM + 1, c->out.shape[0] = (BM + 1) * W, c->gout.shape[0] = (BM + 1) * W;
      break;
    case M_DTYPE:
      NAME("rank 1 passes float32 everywhere");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on dtype");
      if (me) c->in.dtype = c->x2.dtype = c->out.dtype = c->gout.dtype = TPMM_FLOAT32;
      break;
    case M_COMM_TURN:
      NAME("rank 1 passes comm_turn 1");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on comm_turn");
      if (me) c->opts.comm_turn = 1;
      break;
    case M_TRANS_INPUT:
      NAME("rank 1 passes trans_input");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on trans_input");
      if (me) c->opts.trans_input = true, c->in.shape[0] = BK, c->in.shape[1] = BM;
      break;
    case M_TRANS_X2:
      NAME("last rank passes trans_x2");
      EXPECT(WHO_LAST, TPMM_ERR_MISMATCH, "disagree on trans_x2");
      if (me) c->opts.trans_x2 = true, c->x2.shape[0] = BN, c->x2.shape[1] = BK;
      break;
    case M_GATHER_OUTPUT:
      NAME("rank 1 passes gather_output false");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on gather_output");
      if (me) c->opts.gather_output = false;
      break;
    case M_WORLD_SIZE:
      NAME("rank 1 passes world_size W+1");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on world_size");
      if (me) c->world_size = W + 1;
      break;
    case M_BIAS_PRESENT:
      NAME("only rank 1 passes a bias");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on bias (present)");
      if (me) c->opts.bias = &c->bias;
      break;
    case M_BIAS_DTYPE:
      NAME("rank 1 bias float32, others float16");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on bias dtype");
      c->opts.bias = &c->bias;
      if (me) c->bias.dtype = TPMM_FLOAT32;
      break;
    case M_GI_1:
      NAME("rank 1 passes gather_index 1");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on gather_index");
      strcpy(e->own, "this rank also reported");
      if (me) c->opts.gather_index = 1;
      break;
    case M_K_AND_LOCAL_BAD:
      NAME("rank 1: different k and x2 k inconsistent");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on k");
      strcpy(e->own, "does not match input k");
      if (me) c->in.shape[1] = BK + 2;
      break;
    case M_INPUT_NULL:
      NAME("rank 1 passes a NULL input tensor");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on");
      strcpy(e->own, "input is NULL");
      if (me) c->pin = NULL;
      break;
    case M_INPUT_NDIM3:
      NAME("rank 1 passes input ndim 3");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on m");
      strcpy(e->own, "input: ndim=3");
      if (me) c->in.ndim = 3;
      break;
    case M_OPTS_NULL_VS_TRANS:
      NAME("rank 1 opts NULL, others trans_x2");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on trans_x2");
      c->opts.trans_x2 = true, c->x2.shape[0] = BN, c->x2.shape[1] = BK;
      if (me) c->popts = NULL, c->x2.shape[0] = BK, c->x2.shape[1] = BN;
      break;
    case M_INT64_MIN:
      NAME("rank 1 passes m = INT64_MIN (regression: agree.c negated fields)");
      EXPECT(1, TPMM_ERR_MISMATCH, "disagree on m");
      if (me) c->in.shape[0] = INT64_MIN;
      break;

    case L_R1_INPUT_DATA_NULL:
      NAME("rank 1 passes NULL input data");
      EXPECT(1, TPMM_ERR_INVALID_ARGUMENT, "input: data is NULL");
      if (me) c->in.data = NULL;
      break;
    case L_R1_OUTPUT_ROWS:
      NAME("rank 1 passes a too small output");
      EXPECT(1, TPMM_ERR_SHAPE, "output: shape (%d, %d), expected (%lld, %d)", BM, BN, (long long)M, BN);
      if (me) c->out.shape[0] = BM;
      break;
    case L_R1_OVERLAP:
      NAME("rank 1 output overlaps its input");
      EXPECT(1, TPMM_ERR_INVALID_ARGUMENT, "output overlaps input");
      if (me) c->out.data = a_in + 2;
      break;
    case L_R1_BIAS_LEN:
      NAME("rank 1 bias of wrong length");
      EXPECT(1, TPMM_ERR_SHAPE, "bias: length %d does not match n=%d", BN + 3, BN);
      c->opts.bias = &c->bias;
      if (me) c->bias.shape[0] = BN + 3;
      break;
    case L_R1_LD:
      NAME("rank 1 input ld < columns");
      EXPECT(1, TPMM_ERR_SHAPE, "input: ld=2");
      if (me) c->in.ld = 2;
      break;
    case L_LAST_OUTPUT_DTYPE99:
      NAME("last rank output dtype 99");
      EXPECT(WHO_LAST, TPMM_ERR_INVALID_ARGUMENT, "output: dtype=99");
      if (me) c->out.dtype = (tpmm_dtype_t)99;
      break;
    case L_R0_X2_KDIFF:
      NAME("rank 0 x2 k inconsistent");
      EXPECT(0, TPMM_ERR_SHAPE, "x2: k=%d does not match input k=%d", BK - 1, BK);
      if (me) c->x2.shape[0] = BK - 1;
      break;
    case L_R1_GOUT_DTYPE:
      NAME("rank 1 gather_out float32");
      EXPECT(1, TPMM_ERR_DTYPE, "gather_out: dtype float32");
      if (me) c->gout.dtype = TPMM_FLOAT32;
      break;
    case L_R1_AND_R2:
      NAME("rank 1 SHAPE and rank 2 INVALID: lowest wins");
      e->min_w = 3;
      EXPECT(1, TPMM_ERR_SHAPE, "gather_out: shape");
      e->lowest = 1;
      if (t_rank == 1) c->gout.shape[1] = BK + 1;
      if (t_rank == 2) c->x2.data = NULL;
      break;
    case L_R2_AND_R1:
      NAME("rank 2 SHAPE and rank 1 INVALID: lowest wins");
      e->min_w = 3;
      EXPECT(1, TPMM_ERR_INVALID_ARGUMENT, "x2: data is NULL");
      e->lowest = 1;
      if (t_rank == 2) c->gout.shape[1] = BK + 1;
      if (t_rank == 1) c->x2.data = NULL;
      break;
    default: return false;
  }
#undef EXPECT
#undef NAME
  (void)me;
  snprintf(name, name_len, "%s", nm);
  /* a case where one rank differs needs a second rank */
  if (e->who == 1 || e->lowest >= 1 || (e->who == WHO_LAST && e->status == TPMM_ERR_MISMATCH))
    e->min_w = e->min_w > 2 ? e->min_w : 2;
  return W >= (e->min_w ? e->min_w : 1);
}

static void reset_buffers(void) {
  memcpy(a_in, s_in, ARENA);
  memcpy(a_x2, s_x2, ARENA);
  memcpy(a_bias, s_bias, ARENA);
  memcpy(a_out, s_poison, ARENA);
  memcpy(a_gout, s_poison, ARENA);
  memcpy(a_spare, s_poison, ARENA);
}

static void run_case(int id) {
  call_t c;
  expect_t e;
  char name[128];
  base_call(&c);
  reset_buffers();
  if (!mutate(&c, id, &e, name, sizeof name)) return;
  set_case(name);
  tpmm_status_t st = tpmm_all_gather_matmul(c.pin, c.px2, c.group, c.world_size, c.popts, c.pout, c.pgout);
  char msg[1100];
  snprintf(msg, sizeof msg, "%s", tpmm_last_error());

  /* every rank: same, expected status */
  int *all = malloc(sizeof(int) * (size_t)W);
  int sti = (int)st;
  MPI_Allgather(&sti, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
  int same = 1;
  for (int r = 0; r < W; r++) same &= all[r] == (int)e.status;
  free(all);
  check(st == e.status, "%s: status %d (%s), expected %d (%s); message \"%s\"", name, st, tpmm_status_string(st),
        e.status, tpmm_status_string(e.status), msg);
  check(same, "%s: not every rank returned %s", name, tpmm_status_string(e.status));
  check(msg[0] != '\0', "%s: empty message", name);
  for (int i = 0; i < 3; i++)
    if (e.sub[i][0]) check(strstr(msg, e.sub[i]) != NULL, "%s: message \"%s\" lacks \"%s\"", name, msg, e.sub[i]);
  bool mutating = e.who == WHO_ALL || who_rank(e.who) == t_rank;
  if (e.own[0] && mutating) check(strstr(msg, e.own) != NULL, "%s: own message \"%s\" lacks \"%s\"", name, msg, e.own);
  if (e.status != TPMM_ERR_MISMATCH && !e.local) {
    int lowest = e.lowest >= 0 ? e.lowest : e.who == WHO_ALL ? 0 : who_rank(e.who);
    char pre[200];
    if (t_rank == lowest)
      snprintf(pre, sizeof pre, "tpmm_all_gather_matmul: ");
    else
      snprintf(pre, sizeof pre, "rank %d of group \"%s\" rejected its arguments: tpmm_all_gather_matmul: ", lowest, WG);
    check(strncmp(msg, pre, strlen(pre)) == 0, "%s: message \"%s\" does not start with \"%s\"", name, msg, pre);
  } else if (!e.local) {
    check(strstr(msg, "tpmm_all_gather_matmul: ranks of group \"tpmm_world_group\" disagree on ") == msg,
          "%s: mismatch message \"%s\" has the wrong form", name, msg);
  } else {
    check(strncmp(msg, "tpmm_all_gather_matmul: ", 24) == 0, "%s: message \"%s\" lacks the op prefix", name, msg);
  }
  /* nothing written: outputs keep the poison, inputs keep their values */
  check(memcmp(a_out, s_poison, ARENA) == 0, "%s: output buffer was written", name);
  check(memcmp(a_gout, s_poison, ARENA) == 0, "%s: gather_out buffer was written", name);
  check(memcmp(a_in, s_in, ARENA) == 0, "%s: input buffer was modified", name);
  check(memcmp(a_x2, s_x2, ARENA) == 0, "%s: x2 buffer was modified", name);
  check(memcmp(a_bias, s_bias, ARENA) == 0, "%s: bias buffer was modified", name);
  check(memcmp(a_spare, s_poison, ARENA) == 0, "%s: spare buffer was modified", name);
  /* still usable */
  char lbl[200];
  snprintf(lbl, sizeof lbl, "valid call after \"%s\"", name);
  valid_call(lbl, TPMM_FLOAT16, BM, BK, BN, 0, 0);
  if (t_rank == 0 && getenv("TPMM_TEST_VERBOSE")) printf("  case %-60s -> %s: %s\n", name, tpmm_status_string(st), msg);
}

/* ---- valid edge calls: the boundary on the good side of each error ------ */
static void edge_successes(void) {
  set_case("edge successes");
  const int64_t M = (int64_t)BM * W;
  /* opts NULL means the defaults */
  {
    call_t c;
    base_call(&c);
    reset_buffers();
    gen(a_in, TPMM_FLOAT16, BM * BK, t_rank, 1);
    gen(a_x2, TPMM_FLOAT16, BK * BN, t_rank, 2);
    tpmm_status_t st = tpmm_all_gather_matmul(&c.in, &c.x2, WG, W, NULL, &c.out, &c.gout);
    check(st == TPMM_SUCCESS, "opts NULL: %d (%s)", st, tpmm_last_error());
    check(!is_poison(a_out, TPMM_FLOAT16, 0) && !is_poison(a_gout, TPMM_FLOAT16, M * BK - 1),
          "opts NULL: outputs not written");
  }
  /* gather_output false: gather_out NULL, or garbage that must not be read */
  for (int garbage = 0; garbage < 2; garbage++) {
    call_t c;
    base_call(&c);
    reset_buffers();
    c.opts.gather_output = false;
    tpmm_tensor_t junk = {a_gout, (tpmm_dtype_t)99, 7, {-3, -3}, -9};
    tpmm_status_t st = tpmm_all_gather_matmul(&c.in, &c.x2, WG, W, &c.opts, &c.out, garbage ? &junk : NULL);
    check(st == TPMM_SUCCESS, "gather_output false, gather_out %s: %d (%s)", garbage ? "garbage" : "NULL", st,
          tpmm_last_error());
    check(memcmp(a_gout, s_poison, ARENA) == 0, "gather_output false: gather_out buffer written");
    int ok = 1;
    for (int64_t i = 0; i < M * BN; i++) ok &= !is_poison(a_out, TPMM_FLOAT16, i);
    check(ok, "gather_output false: output not fully written");
  }
  /* m = 0 with NULL data everywhere: nothing to do, success */
  {
    tpmm_tensor_t ti = {NULL, TPMM_FLOAT16, 2, {0, BK}, 0}, tx = {a_x2, TPMM_FLOAT16, 2, {BK, BN}, 0};
    tpmm_tensor_t to = {NULL, TPMM_FLOAT16, 2, {0, BN}, 0}, tg = {NULL, TPMM_FLOAT16, 2, {0, BK}, 0};
    tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
    o.comm_turn = 1; /* comm_turn <= max(m, 1) */
    tpmm_status_t st = tpmm_all_gather_matmul(&ti, &tx, WG, W, &o, &to, &tg);
    check(st == TPMM_SUCCESS, "m=0 with NULL data: %d (%s)", st, tpmm_last_error());
  }
  /* n = 0: x2 and output data NULL, gather_out still written bit-exact */
  {
    reset_buffers();
    gen(a_in, TPMM_FLOAT16, BM * BK, t_rank, 1);
    tpmm_tensor_t ti = {a_in, TPMM_FLOAT16, 2, {BM, BK}, 0}, tx = {NULL, TPMM_FLOAT16, 2, {BK, 0}, 0};
    tpmm_tensor_t to = {NULL, TPMM_FLOAT16, 2, {M, 0}, 0}, tg = {a_gout, TPMM_FLOAT16, 2, {M, BK}, 0};
    tpmm_status_t st = tpmm_all_gather_matmul(&ti, &tx, WG, W, NULL, &to, &tg);
    check(st == TPMM_SUCCESS, "n=0 with NULL x2/output data: %d (%s)", st, tpmm_last_error());
    char *peer = malloc(BM * BK * 2);
    int ok = 1;
    for (int r = 0; r < W; r++) {
      gen(peer, TPMM_FLOAT16, BM * BK, r, 1);
      ok &= memcmp(a_gout + (size_t)r * BM * BK * 2, peer, BM * BK * 2) == 0;
    }
    free(peer);
    check(st != TPMM_SUCCESS || ok, "n=0: gather_out not the gathered input");
  }
  /* boundaries: comm_turn == m, bias fp32 with fp16 input, bias of input dtype */
  valid_call("comm_turn == m", TPMM_FLOAT16, BM, BK, BN, 0, BM);
  valid_call("bias float32 on float16", TPMM_FLOAT16, BM, BK, BN, TPMM_FLOAT32, 0);
  valid_call("bias bfloat16 on bfloat16", TPMM_BFLOAT16, BM, BK, BN, TPMM_BFLOAT16, 1);
  valid_call("float32, k=1", TPMM_FLOAT32, 2, 1, 3, 0, 2);
  /* output right after input in one allocation: adjacent, not overlapping */
  {
    char *blk = malloc((size_t)(BM * BK + M * BN) * 2);
    gen(blk, TPMM_FLOAT16, BM * BK, t_rank, 1);
    gen(a_x2, TPMM_FLOAT16, BK * BN, t_rank, 2);
    char *outp = blk + BM * BK * 2;
    poison(outp, TPMM_FLOAT16, M * BN);
    tpmm_tensor_t ti = {blk, TPMM_FLOAT16, 2, {BM, BK}, 0}, tx = {a_x2, TPMM_FLOAT16, 2, {BK, BN}, 0};
    tpmm_tensor_t to = {outp, TPMM_FLOAT16, 2, {M, BN}, 0}, tg = {a_gout, TPMM_FLOAT16, 2, {M, BK}, 0};
    tpmm_status_t st = tpmm_all_gather_matmul(&ti, &tx, WG, W, NULL, &to, &tg);
    check(st == TPMM_SUCCESS, "output adjacent to input (no overlap): %d (%s)", st, tpmm_last_error());
    int ok = 1;
    for (int64_t i = 0; i < M * BN; i++) ok &= !is_poison(outp, TPMM_FLOAT16, i);
    check(ok, "output adjacent to input: output not fully written");
    free(blk);
  }
}

/* ---- library, group and tunable functions ------------------------------- */

/* Everything that needs tpmm_init but no agreement. */
static void not_initialized_calls(const char *when) {
  char what[128];
  int v = -7;
  call_t c;
  base_call(&c);
  reset_buffers();
#define NI(call, label)                                               \
  do {                                                                \
    snprintf(what, sizeof what, "%s %s", label, when);                \
    expect_status(call, TPMM_ERR_NOT_INITIALIZED, what, "tpmm_init"); \
  } while (0)
  NI(tpmm_all_gather_matmul(&c.in, &c.x2, WG, W, NULL, &c.out, &c.gout), "tpmm_all_gather_matmul");
  NI(tpmm_get_rank(WG, &v), "tpmm_get_rank");
  NI(tpmm_get_group_size(WG, &v), "tpmm_get_group_size");
  int ranks[1] = {0};
  NI(tpmm_create_group("g", 1, ranks), "tpmm_create_group");
  NI(tpmm_destroy_group("g"), "tpmm_destroy_group");
  NI(tpmm_group_from_comm("g", MPI_COMM_WORLD), "tpmm_group_from_comm");
#undef NI
  snprintf(what, sizeof what, "tpmm_finalize %s", when);
  expect_status(tpmm_finalize(), TPMM_ERR_NOT_INITIALIZED, what, "not initialized");
  check(v == -7, "output argument written by a failed call %s", when);
  check(memcmp(a_out, s_poison, ARENA) == 0 && memcmp(a_gout, s_poison, ARENA) == 0,
        "outputs written by tpmm_all_gather_matmul %s", when);
}

static void group_functions(void) {
  set_case("group functions");
  int v = -7;
  /* lookups */
  expect_status(tpmm_get_rank(NULL, &v), TPMM_ERR_INVALID_ARGUMENT, "get_rank(NULL group)", "group is NULL");
  expect_status(tpmm_get_rank("nope", &v), TPMM_ERR_GROUP, "get_rank(unknown)", "\"nope\"");
  expect_status(tpmm_get_rank(WG, NULL), TPMM_ERR_INVALID_ARGUMENT, "get_rank(NULL out)", "rank is NULL");
  expect_status(tpmm_get_group_size("", &v), TPMM_ERR_GROUP, "get_group_size(\"\")", "\"\"");
  expect_status(tpmm_get_group_size(WG, NULL), TPMM_ERR_INVALID_ARGUMENT, "get_group_size(NULL out)", "size is NULL");
  check(v == -7, "failed lookups wrote their output");
  expect_status(tpmm_get_rank(WG, &v), TPMM_SUCCESS, "get_rank(world)", NULL);
  check(v == t_rank, "get_rank(world) = %d, expected %d", v, t_rank);
  check(tpmm_last_error()[0] == '\0', "message not cleared by a successful get_rank");

  /* create_group: every rank passes the same bad list, so all fail locally */
  int all[16], dup[2] = {0, 0}, oor[2] = {0, W}, neg[2] = {-1, 0};
  for (int i = 0; i < W; i++) all[i] = i;
  char longname[TPMM_GROUP_NAME_MAX + 2], maxname[TPMM_GROUP_NAME_MAX + 1];
  memset(longname, 'x', sizeof longname - 1), longname[sizeof longname - 1] = '\0';
  memset(maxname, 'y', sizeof maxname - 1), maxname[sizeof maxname - 1] = '\0';
  expect_status(tpmm_create_group(NULL, W, all), TPMM_ERR_INVALID_ARGUMENT, "create_group(NULL name)", "group is NULL");
  expect_status(tpmm_create_group("", W, all), TPMM_ERR_INVALID_ARGUMENT, "create_group(\"\")", "empty");
  expect_status(tpmm_create_group(longname, W, all), TPMM_ERR_INVALID_ARGUMENT, "create_group(128-byte name)",
                "longer than 127");
  expect_status(tpmm_create_group(WG, W, all), TPMM_ERR_GROUP, "create_group(world name)", "already exists");
  expect_status(tpmm_create_group("g0", 0, all), TPMM_ERR_INVALID_ARGUMENT, "create_group(n=0)", "n=0");
  expect_status(tpmm_create_group("g0", -1, all), TPMM_ERR_INVALID_ARGUMENT, "create_group(n=-1)", "n=-1");
  char sub[64];
  snprintf(sub, sizeof sub, "n=%d", W + 1);
  expect_status(tpmm_create_group("g0", W + 1, all), TPMM_ERR_INVALID_ARGUMENT, "create_group(n=W+1)", sub);
  expect_status(tpmm_create_group("g0", W, NULL), TPMM_ERR_INVALID_ARGUMENT, "create_group(NULL ranks)",
                "world_ranks is NULL");
  expect_status(tpmm_create_group("g0", 2, dup), TPMM_ERR_INVALID_ARGUMENT, "create_group(duplicate)",
                "world_ranks[1]=0 duplicates world_ranks[0]");
  snprintf(sub, sizeof sub, "world_ranks[1]=%d is outside [0, %d)", W, W);
  expect_status(tpmm_create_group("g0", 2, oor), TPMM_ERR_INVALID_ARGUMENT, "create_group(out of range)", sub);
  expect_status(tpmm_create_group("g0", 2, neg), TPMM_ERR_INVALID_ARGUMENT, "create_group(negative rank)",
                "world_ranks[0]=-1");
  expect_status(tpmm_get_rank("g0", &v), TPMM_ERR_GROUP, "g0 after failed creates", "g0");

  /* a 127-byte name is fine; then it is taken */
  expect_status(tpmm_create_group(maxname, W, all), TPMM_SUCCESS, "create_group(127-byte name)", NULL);
  expect_status(tpmm_create_group(maxname, W, all), TPMM_ERR_GROUP, "create_group(name taken)", "already exists");
  expect_status(tpmm_group_from_comm(maxname, MPI_COMM_WORLD), TPMM_ERR_GROUP, "group_from_comm(name taken)",
                "already exists");
  expect_status(tpmm_destroy_group(maxname), TPMM_SUCCESS, "destroy 127-byte group", NULL);

  /* caller not listed: only rank 0 is in "solo"; the others get GROUP and
   * must not block rank 0 (creation is collective over the listed ranks) */
  int zero[1] = {0};
  expect_status(tpmm_create_group("solo", 1, zero), t_rank == 0 ? TPMM_SUCCESS : TPMM_ERR_GROUP, "create_group(solo)",
                t_rank == 0 ? NULL : "not in the list");
  if (t_rank == 0) {
    check(tpmm_get_group_size("solo", &v) == TPMM_SUCCESS && v == 1, "solo group size %d", v);
    expect_status(tpmm_destroy_group("solo"), TPMM_SUCCESS, "destroy solo", NULL);
  } else {
    expect_status(tpmm_destroy_group("solo"), TPMM_ERR_GROUP, "destroy a group this rank is not in", "\"solo\"");
  }

  /* destroy */
  expect_status(tpmm_destroy_group(WG), TPMM_ERR_INVALID_ARGUMENT, "destroy world group", "cannot be destroyed");
  expect_status(tpmm_destroy_group(NULL), TPMM_ERR_INVALID_ARGUMENT, "destroy NULL", "group is NULL");
  expect_status(tpmm_destroy_group("never"), TPMM_ERR_GROUP, "destroy unknown", "\"never\"");
  expect_status(tpmm_get_rank(WG, &v), TPMM_SUCCESS, "world group alive after destroy attempt", NULL);

  /* group_from_comm */
  expect_status(tpmm_group_from_comm("fc", MPI_COMM_NULL), TPMM_ERR_INVALID_ARGUMENT, "group_from_comm(MPI_COMM_NULL)",
                "MPI_COMM_NULL");
  expect_status(tpmm_group_from_comm(NULL, MPI_COMM_WORLD), TPMM_ERR_INVALID_ARGUMENT, "group_from_comm(NULL)",
                "group is NULL");
  expect_status(tpmm_group_from_comm("", MPI_COMM_WORLD), TPMM_ERR_INVALID_ARGUMENT, "group_from_comm(\"\")", "empty");
  expect_status(tpmm_group_from_comm(WG, MPI_COMM_WORLD), TPMM_ERR_GROUP, "group_from_comm(world name)",
                "already exists");

  /* tpmm_init twice: refused, nothing changes */
  expect_status(tpmm_init(NULL, NULL), TPMM_ERR_INVALID_ARGUMENT, "tpmm_init twice", "already initialized");
  valid_call("valid call after a second tpmm_init", TPMM_FLOAT16, BM, BK, BN, 0, 0);
}

static void param_functions(void) {
  set_case("tunables");
  static const struct {
    tpmm_param_t p;
    const char *name;
    int64_t lo, hi;
  } ps[] = {{TPMM_PARAM_ALGO, "TPMM_PARAM_ALGO", 0, TPMM_ALGO_HIER},
            {TPMM_PARAM_NUM_THREADS, "TPMM_PARAM_NUM_THREADS", 1, 1024},
            {TPMM_PARAM_TIMEOUT_MS, "TPMM_PARAM_TIMEOUT_MS", 0, INT64_C(1) << 40},
            {TPMM_PARAM_PROGRESS_THREAD, "TPMM_PARAM_PROGRESS_THREAD", 0, 2},
            {TPMM_PARAM_SEND_WINDOW, "TPMM_PARAM_SEND_WINDOW", 0, 1 << 20},
            {TPMM_PARAM_SEGMENT_BYTES, "TPMM_PARAM_SEGMENT_BYTES", 0, INT32_MAX},
            {TPMM_PARAM_PROGRESS_NAP_US, "TPMM_PARAM_PROGRESS_NAP_US", -1, 1000000}};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
    int64_t lo = -9, hi = -9, old = -9, v = -9;
    expect_status(tpmm_param_bounds(ps[i].p, &lo, &hi), TPMM_SUCCESS, ps[i].name, NULL);
    check(lo == ps[i].lo && hi == ps[i].hi, "%s bounds [%lld, %lld]", ps[i].name, (long long)lo, (long long)hi);
    expect_status(tpmm_get_param(ps[i].p, &old), TPMM_SUCCESS, ps[i].name, NULL);
    char sub[160], what[160];
    int64_t bad[2] = {lo - 1, hi == INT64_MAX ? INT64_MIN : hi + 1};
    for (int b = 0; b < 2; b++) {
      snprintf(sub, sizeof sub, "%s=%lld outside [%lld, %lld]", ps[i].name, (long long)bad[b], (long long)lo,
               (long long)hi);
      snprintf(what, sizeof what, "set_param(%s, %lld)", ps[i].name, (long long)bad[b]);
      expect_status(tpmm_set_param(ps[i].p, bad[b]), TPMM_ERR_INVALID_ARGUMENT, what, sub);
      tpmm_get_param(ps[i].p, &v);
      check(v == old, "%s changed to %lld by a rejected set", ps[i].name, (long long)v);
    }
    expect_status(tpmm_set_param(ps[i].p, INT64_MIN), TPMM_ERR_INVALID_ARGUMENT, ps[i].name, "outside");
    /* both bounds are accepted (then restored) */
    expect_status(tpmm_set_param(ps[i].p, lo), TPMM_SUCCESS, ps[i].name, NULL);
    expect_status(tpmm_set_param(ps[i].p, hi), TPMM_SUCCESS, ps[i].name, NULL);
    tpmm_get_param(ps[i].p, &v);
    check(v == hi, "%s = %lld after setting %lld", ps[i].name, (long long)v, (long long)hi);
    expect_status(tpmm_set_param(ps[i].p, old), TPMM_SUCCESS, ps[i].name, NULL);
  }
  int64_t v = -9, lo, hi;
  expect_status(tpmm_set_param((tpmm_param_t)0, 1), TPMM_ERR_INVALID_ARGUMENT, "set_param(p=0)", "p=0");
  expect_status(tpmm_set_param((tpmm_param_t)99, 1), TPMM_ERR_INVALID_ARGUMENT, "set_param(p=99)", "p=99");
  expect_status(tpmm_get_param((tpmm_param_t)99, &v), TPMM_ERR_INVALID_ARGUMENT, "get_param(p=99)", "p=99");
  expect_status(tpmm_get_param(TPMM_PARAM_ALGO, NULL), TPMM_ERR_INVALID_ARGUMENT, "get_param(NULL)", "value is NULL");
  expect_status(tpmm_param_bounds((tpmm_param_t)-1, &lo, &hi), TPMM_ERR_INVALID_ARGUMENT, "param_bounds(p=-1)", "p=-1");
  expect_status(tpmm_param_bounds(TPMM_PARAM_ALGO, NULL, &hi), TPMM_ERR_INVALID_ARGUMENT, "param_bounds(NULL lo)",
                "NULL");
  check(v == -9, "get_param wrote on failure");
  /* small pure functions */
  check(tpmm_algo_name((tpmm_algo_t)-1) == NULL && tpmm_algo_name((tpmm_algo_t)(TPMM_ALGO_HIER + 1)) == NULL &&
            tpmm_algo_name(TPMM_ALGO_HIER) && strcmp(tpmm_algo_name(TPMM_ALGO_HIER), "hier") == 0,
        "algo_name out of range");
  check(tpmm_algo_name(TPMM_ALGO_RING) && strcmp(tpmm_algo_name(TPMM_ALGO_RING), "ring") == 0, "algo_name(ring)");
  check(tpmm_dtype_size((tpmm_dtype_t)0) == 0 && tpmm_dtype_size((tpmm_dtype_t)99) == 0, "dtype_size invalid != 0");
  check(tpmm_dtype_size(TPMM_FLOAT16) == 2 && tpmm_dtype_size(TPMM_BFLOAT16) == 2 && tpmm_dtype_size(TPMM_FLOAT32) == 4,
        "dtype sizes");
  for (int s = 0; s <= TPMM_ERR_INTERNAL; s++)
    for (int q = 0; q < s; q++)
      check(strcmp(tpmm_status_string((tpmm_status_t)s), tpmm_status_string((tpmm_status_t)q)) != 0,
            "status strings %d and %d are equal", s, q);
  check(tpmm_status_string((tpmm_status_t)99) != NULL && tpmm_status_string((tpmm_status_t)-1) != NULL,
        "status_string out of range is NULL");
}

/* A plan whose execution gets a different input shape on the last rank:
 * SHAPE there, the same error on every rank naming it, no output written;
 * then a valid execution is correct. */
static void plan_execute_errors(const char *algo, float *in, float *x2, float *in2, float *out, float *gout) {
  enum { M = 3, K = 5, N = 4 };
  tpmm_tensor_t ti = {in, TPMM_FLOAT32, 2, {M, K}, 0}, tx = {x2, TPMM_FLOAT32, 2, {K, N}, 0};
  tpmm_tensor_t to = {out, TPMM_FLOAT32, 2, {(int64_t)M * W, N}, 0},
                tg = {gout, TPMM_FLOAT32, 2, {(int64_t)M * W, K}, 0};
  tpmm_plan_t *p = NULL;
  tpmm_status_t st = tpmm_all_gather_matmul_plan_create(&ti, &tx, WG, W, NULL, &to, &tg, &p);
  expect_status(st, TPMM_SUCCESS, "plan_create (valid)", NULL);
  if (st != TPMM_SUCCESS) return;
  for (int rep = 0; rep < 3; rep++) { /* the autotuner switches candidates between executions */
    /* the last rank executes with one more row: SHAPE there, an error everywhere */
    tpmm_tensor_t ti2 = {in2, TPMM_FLOAT32, 2, {M + 1, K}, 0};
    memset(in2, 0, sizeof(float) * (M + 1) * K);
    for (int i = 0; i < 8 * M * N; i++) out[i] = -1.0f;
    for (int i = 0; i < 8 * M * K; i++) gout[i] = -1.0f;
    st = tpmm_plan_execute(p, t_rank == W - 1 ? &ti2 : &ti, &to, &tg);
    check(st == TPMM_ERR_SHAPE, "%s: plan_execute with a different input shape on rank %d: status %d (%s)", algo, W - 1,
          st, tpmm_last_error());
    check(strstr(tpmm_last_error(), "input") != NULL, "%s: plan_execute message names input: \"%s\"", algo,
          tpmm_last_error());
    char who[32];
    snprintf(who, sizeof who, "rank %d ", W - 1);
    if (t_rank != W - 1)
      check(strstr(tpmm_last_error(), who) != NULL, "%s: plan_execute message names %s: \"%s\"", algo, who,
            tpmm_last_error());
    int untouched = 1;
    for (int i = 0; i < W * M * N; i++) untouched &= out[i] == -1.0f;
    for (int i = 0; i < W * M * K; i++) untouched &= gout[i] == -1.0f;
    check(untouched, "%s: plan_execute wrote output or gather_out although a rank's input was wrong", algo);
    /* and the plan still works */
    expect_status(tpmm_plan_execute(p, &ti, &to, &tg), TPMM_SUCCESS, "plan_execute (valid) after an error", NULL);
    int ok = 1;
    for (int r = 0; r < W; r++)
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
          double ref = 0.0; /* every rank's input is the same here */
          for (int q = 0; q < K; q++) ref += (double)in[i * K + q] * x2[q * N + j];
          ok &= out[(r * M + i) * N + j] == (float)ref;
        }
    for (int i = 0; i < W * M * K; i++) ok &= gout[i] == in[i % (M * K)];
    check(ok, "%s: plan_execute after an error: wrong output or gather_out", algo);
  }
  tpmm_plan_destroy(p);
}

/* The message is per thread: a failure in another thread leaves ours alone. */
/* Plans: a NULL plan pointer (on every rank, then on one rank only) and an
 * execute with a different shape on one rank give every rank an error and
 * nobody a plan or a hang; a valid plan still works afterwards. */
static void plan_functions(void) {
  set_case("plans");
  enum { M = 3, K = 5, N = 4 };
  float in[M * K], x2[K * N], out[8 * M * N], gout[8 * M * K], in2[(M + 1) * K];
  for (int i = 0; i < M * K; i++) in[i] = (float)(i % 7) - 3.0f;
  for (int i = 0; i < K * N; i++) x2[i] = (float)(i % 5) - 2.0f;
  tpmm_tensor_t ti = {in, TPMM_FLOAT32, 2, {M, K}, 0}, tx = {x2, TPMM_FLOAT32, 2, {K, N}, 0};
  tpmm_tensor_t to = {out, TPMM_FLOAT32, 2, {(int64_t)M * W, N}, 0},
                tg = {gout, TPMM_FLOAT32, 2, {(int64_t)M * W, K}, 0};
  tpmm_status_t st = tpmm_all_gather_matmul_plan_create(&ti, &tx, WG, W, NULL, &to, &tg, NULL);
  expect_status(st, TPMM_ERR_INVALID_ARGUMENT, "plan_create(plan=NULL) on every rank", "plan is NULL");
  tpmm_plan_t *p = (tpmm_plan_t *)&st; /* must be reset to NULL on failure */
  st = tpmm_all_gather_matmul_plan_create(&ti, &tx, WG, W, NULL, &to, &tg, t_rank == W - 1 ? NULL : &p);
  check(st == TPMM_ERR_INVALID_ARGUMENT, "plan_create(plan=NULL on rank %d only): status %d (%s)", W - 1, st,
        tpmm_last_error());
  if (t_rank != W - 1) check(p == NULL, "plan_create failed but left *plan set");
  /* execution errors: auto; unfused, whose small shards carry the
   * agreement in the allgather (algo_unfused.c, folded); ring, which agrees
   * first */
  const tpmm_algo_t algos[] = {TPMM_ALGO_AUTO, TPMM_ALGO_UNFUSED, TPMM_ALGO_RING};
  for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++) {
    tpmm_set_param(TPMM_PARAM_ALGO, algos[i]);
    plan_execute_errors(tpmm_algo_name(algos[i]), in, x2, in2, out, gout);
  }
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
}

static void *other_thread(void *arg) {
  int v;
  tpmm_status_t st = tpmm_get_rank("thread_group_x", &v);
  *(int *)arg = st == TPMM_ERR_GROUP && strstr(tpmm_last_error(), "thread_group_x") != NULL;
  return NULL;
}
static void thread_messages(void) {
  set_case("per-thread message");
  int v, ok = 0;
  tpmm_get_rank("main_group_y", &v);
  pthread_t th;
  pthread_create(&th, NULL, other_thread, &ok);
  pthread_join(th, NULL);
  check(ok, "other thread did not see its own message");
  check(strstr(tpmm_last_error(), "main_group_y") != NULL, "main thread's message was replaced: \"%s\"",
        tpmm_last_error());
}

int main(int argc, char **argv) {
  int provided;
  /* The test owns MPI so that it can check calls after tpmm_finalize and
   * re-initialise (tpmm then must not finalize MPI itself). */
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &t_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  signal(SIGALRM, test_on_alarm);
  const char *s = getenv("TPMM_TEST_SEED");
  seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (t_rank == 0)
    printf("test_errors: %d ranks, seed %llu (TPMM_TEST_SEED reproduces)\n", W, (unsigned long long)seed);

  char **arenas[] = {&a_in, &a_x2, &a_out, &a_gout, &a_bias, &a_spare, &s_in, &s_x2, &s_bias, &s_poison};
  for (size_t i = 0; i < sizeof arenas / sizeof arenas[0]; i++) *arenas[i] = malloc(ARENA);
  gen(s_in, TPMM_FLOAT16, ARENA / 2, t_rank, 11);
  gen(s_x2, TPMM_FLOAT16, ARENA / 2, t_rank, 12);
  gen(s_bias, TPMM_FLOAT16, ARENA / 2, t_rank, 13);
  poison(s_poison, TPMM_FLOAT16, ARENA / 2);
  reset_buffers();

  set_case("before tpmm_init");
  not_initialized_calls("before tpmm_init");
  set_case("tpmm_init");
  tpmm_status_t st = tpmm_init(&argc, &argv);
  check(st == TPMM_SUCCESS, "tpmm_init: %d (%s)", st, tpmm_last_error());
  if (st != TPMM_SUCCESS) return finish("test_errors");

  valid_call("first valid call", TPMM_FLOAT16, BM, BK, BN, 0, 0);
  /* The INT64_MIN cases once tripped signed-overflow UB in agree.c (fixed);
   * under -fno-sanitize-recover a regression aborts the process, so they run
   * after everything else that does not need finalize. */
  for (int id = 0; id < N_CASES; id++)
    if (id != C_INPUT_MIN_DIM && id != M_INT64_MIN) run_case(id);
  edge_successes();
  group_functions();
  param_functions();
  plan_functions();
  thread_messages();
  run_case(C_INPUT_MIN_DIM);
  run_case(M_INT64_MIN);

  set_case("tpmm_finalize");
  /* a created group disappears at finalize */
  int all[16];
  for (int i = 0; i < W; i++) all[i] = i;
  check(tpmm_create_group("lives_until_finalize", W, all) == TPMM_SUCCESS, "create before finalize: %s",
        tpmm_last_error());
  st = tpmm_finalize();
  check(st == TPMM_SUCCESS, "tpmm_finalize: %d (%s)", st, tpmm_last_error());
  int fin = 1;
  MPI_Finalized(&fin);
  check(!fin, "tpmm_finalize finalized MPI although the application initialised it");
  not_initialized_calls("after tpmm_finalize");

  /* re-initialise (the application owns MPI): works, old groups are gone */
  set_case("re-init");
  st = tpmm_init(NULL, NULL);
  check(st == TPMM_SUCCESS, "tpmm_init after finalize: %d (%s)", st, tpmm_last_error());
  if (st == TPMM_SUCCESS) {
    int v;
    expect_status(tpmm_get_rank("lives_until_finalize", &v), TPMM_ERR_GROUP, "group after re-init",
                  "lives_until_finalize");
    valid_call("valid call after re-init", TPMM_BFLOAT16, 4, 3, 2, TPMM_FLOAT32, 0);
    check(tpmm_finalize() == TPMM_SUCCESS, "second tpmm_finalize: %s", tpmm_last_error());
  }
  alarm(0);
  for (size_t i = 0; i < sizeof arenas / sizeof arenas[0]; i++) free(*arenas[i]);
  int rc = finish("test_errors");
  MPI_Finalize();
  return rc;
}
