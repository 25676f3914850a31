/*
 * test_errors.c — every error of tpmm_all_gather_matmul and of the group /
 * library functions (issue 2 "Errors", issue 4 "Bad input"), under mpirun
 * with 2 or more ranks (CTest runs 2 and 3).
 *
 * The cases are one table, `cases` below: a row per bad call, naming the
 * operator, the ranks that misbehave, the status every rank must get, the
 * substrings the message must contain and the fields the misbehaving ranks
 * set on a valid default call. Adding a case is adding a row. For each row
 * every rank checks:
 *   - the status it got is the expected one, and all ranks got the same;
 *   - tpmm_last_error() names the argument (and its value where it has one);
 *     on a rank that was not the lowest failing one the message carries the
 *     "rank R of group ... rejected its arguments: " prefix of the agreement;
 *   - output and gather_out (whole allocations, poisoned with a pattern) and
 *     the inputs are byte-for-byte unchanged;
 *   - a valid call right afterwards succeeds and matches an fp64 reference
 *     (gather_out bit-exact), so the library is still usable.
 * Rows where only ONE rank passes a bad or different argument check that
 * every rank returns (nobody hangs: a SIGALRM watchdog names the row that
 * hung and exits non-zero). Rows with a function of their own (valid edges,
 * groups, tunables, plans, threads) are in the same table.
 *
 * Cases named "regression" caught library bugs (docs/RELIABILITY.md).
 *
 * Seed: TPMM_TEST_SEED or the clock, printed by rank 0. TPMM_TEST_VERBOSE=1
 * prints every row's status and rank 0's message.
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
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

/* ---- buffers: every pointer a row uses lies in one of these ------------- */
/* Base valid configuration of every row: fp16, small odd dims. */
enum { BM = 3, BK = 5, BN = 4 };
#define ARENA 65536 /* bytes per buffer: room for every shape a row uses */
static char *a_in, *a_x2, *a_out, *a_gout, *a_bias, *a_spare;
static char *s_in, *s_x2, *s_bias, *s_poison; /* saved copies / pattern */

static void reset_buffers(void) {
  memcpy(a_in, s_in, ARENA);
  memcpy(a_x2, s_x2, ARENA);
  memcpy(a_bias, s_bias, ARENA);
  memcpy(a_out, s_poison, ARENA);
  memcpy(a_gout, s_poison, ARENA);
  memcpy(a_spare, s_poison, ARENA);
}

/* ---- the call under test ------------------------------------------------ */
/* Every argument of an operator call, as the rows' setters address them
 * (BAD(in.shape[0], "-1")). A new operator adds its options to the union and
 * any argument the others lack as a field, an op_t, and its rows. */
typedef struct {
  tpmm_tensor_t in, x2, out, gout, bias;
  const tpmm_tensor_t *pin, *px2;
  tpmm_tensor_t *pout, *pgout;
  const char *group;
  int world_size;
  union {
    tpmm_all_gather_matmul_opts_t opts;
  };
  const void *popts;
} call_t;

/* An operator: its name (how its messages start), a valid default call, the
 * call itself, and a valid call checked against fp64 afterwards. */
typedef struct {
  const char *name;
  void (*init)(call_t *c);
  tpmm_status_t (*call)(const call_t *c);
  void (*valid)(const char *label);
} op_t;

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
static tpmm_status_t agmm_call(const call_t *c) {
  return tpmm_all_gather_matmul(c->pin, c->px2, c->group, c->world_size, c->popts, c->pout, c->pgout);
}
static void agmm_valid(const char *label) { valid_call(label, TPMM_FLOAT16, BM, BK, BN, 0, 0); }
static const op_t agmm = {"tpmm_all_gather_matmul", base_call, agmm_call, agmm_valid};

/* ---- rows --------------------------------------------------------------- */
/* A setter: the field of call_t it writes (by offset and size: 1 = bool,
 * 4 = int or dtype, 8 = int64 or pointer), on which ranks, and the value: an
 * expression (testutil.h) over the symbols of row_symbols(), or a string. */
enum { ON_ALL = -1, ON_BAD = -2 };
typedef struct {
  const char *field;
  size_t off, size;
  int on; /* ON_ALL: every rank (the row's context); ON_BAD: the misbehaving ranks; >= 0: that rank */
  const char *expr, *str;
} set_t;
/* clang-format off */
#define FIELD_(f) #f, offsetof(call_t, f), sizeof(((call_t *)0)->f)
#define CTX(f, v) {FIELD_(f), ON_ALL, v, NULL}     /* every rank: the row's context */
#define BAD(f, v) {FIELD_(f), ON_BAD, v, NULL}     /* the misbehaving ranks */
#define ON(r, f, v) {FIELD_(f), r, v, NULL}        /* world rank r only */
#define BAD_STR(f, s) {FIELD_(f), ON_BAD, NULL, s} /* a string value */
#define CTX_SHAPE(t, r, c) CTX(t.shape[0], r), CTX(t.shape[1], c)
#define BAD_SHAPE(t, r, c) BAD(t.shape[0], r), BAD(t.shape[1], c)
#define WITH_BIAS CTX(opts.bias, "&bias")
/* Tensors of many GiB for the rows that must fail before touching data:
 * distinct, never-dereferenced addresses 1 TiB apart (so the overlap check
 * does not fire first); a library that touched them would crash. */
#define FAKE_POINTERS \
  BAD(in.data, "2^40"), BAD(x2.data, "2 * 2^40"), BAD(out.data, "3 * 2^40"), BAD(gout.data, "4 * 2^40")
/* clang-format on */

/* Which ranks misbehave: every rank, the last one, or a world rank (>= 0). */
enum { ALL = -1, LAST = -2 };
enum {
  LOCAL = 1,   /* found before the agreement (group lookup): the message has no rank prefix */
  LAST_RUN = 2 /* run after every other row: an undefined-behaviour regression aborts under sanitizers */
};
#define MAX_SET 14
typedef struct {
  const char *name;     /* unique: the watchdog and every failure name it */
  const op_t *op;       /* the operator called; NULL for a custom row */
  int who;              /* ALL, LAST or a world rank: the ranks that apply BAD setters */
  tpmm_status_t status; /* what every rank must return */
  const char *msg[3];   /* templates ({expression}) every rank's message contains */
  const char *own;      /* template only the misbehaving ranks' message contains */
  int min_w;            /* skip below this world size (raised to what who and ON need) */
  unsigned flags;       /* LOCAL, LAST_RUN */
  set_t set[MAX_SET];   /* applied in order to op->init's valid call */
  void (*run)(void);    /* a custom row: its own calls and checks instead of the above */
} err_case_t;

/* the custom rows, defined after the table */
static void edge_successes(void);
static void group_functions(void);
static void param_functions(void);
static void plan_functions(void);
static void thread_messages(void);
static void named_values(void);

/* The table, in run order. Columns: name, operator, misbehaving ranks,
 * status, message substrings; then, named: the setters, own, min_w, flags.
 * Symbols: W (world size), M = BM*W, BM BK BN (base m, k, n), R (this rank),
 * the arenas a_in ... a_spare, &in ... &bias (the call's tensors), NULL,
 * true/false, FLOAT16/BFLOAT16/FLOAT32, INT_MAX, INT64_MIN. */
/* clang-format off */
static const err_case_t cases[] = {
    /* every rank passes the same bad argument */
    {"input tensor NULL", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"input is NULL"},
     .set = {BAD(pin, "NULL")}},
    {"x2 tensor NULL", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"x2 is NULL"},
     .set = {BAD(px2, "NULL")}},
    {"output tensor NULL", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"output is NULL"},
     .set = {BAD(pout, "NULL")}},
    {"gather_out NULL with gather_output", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"gather_out is NULL"},
     .set = {BAD(pgout, "NULL")}},
    {"input data NULL", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"input: data is NULL", "({BM}, {BK})"},
     .set = {BAD(in.data, "NULL")}},
    {"x2 data NULL", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"x2: data is NULL"},
     .set = {BAD(x2.data, "NULL")}},
    {"output data NULL", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"output: data is NULL"},
     .set = {BAD(out.data, "NULL")}},
    {"gather_out data NULL", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"gather_out: data is NULL"},
     .set = {BAD(gout.data, "NULL")}},
    {"bias data NULL", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"bias: data is NULL", "n={BN}"},
     .set = {WITH_BIAS, BAD(bias.data, "NULL")}},
    {"input dtype 0", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"input: dtype=0"},
     .set = {BAD(in.dtype, "0")}},
    {"input dtype 99", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"input: dtype=99"},
     .set = {BAD(in.dtype, "99")}},
    {"x2 dtype 99", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"x2: dtype=99"},
     .set = {BAD(x2.dtype, "99")}},
    {"output dtype 99", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"output: dtype=99"},
     .set = {BAD(out.dtype, "99")}},
    {"gather_out dtype 0", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"gather_out: dtype=0"},
     .set = {BAD(gout.dtype, "0")}},
    {"bias dtype 99", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"bias: dtype=99"},
     .set = {WITH_BIAS, BAD(bias.dtype, "99")}},
    {"x2 dtype differs from input", &agmm, ALL, TPMM_ERR_DTYPE, {"x2: dtype float32", "input dtype float16"},
     .set = {BAD(x2.dtype, "FLOAT32")}},
    {"output dtype differs", &agmm, ALL, TPMM_ERR_DTYPE, {"output: dtype bfloat16"},
     .set = {BAD(out.dtype, "BFLOAT16")}},
    {"gather_out dtype differs", &agmm, ALL, TPMM_ERR_DTYPE, {"gather_out: dtype float32"},
     .set = {BAD(gout.dtype, "FLOAT32")}},
    {"bias bf16 with fp16 input", &agmm, ALL, TPMM_ERR_DTYPE, {"bias: dtype bfloat16"},
     .set = {WITH_BIAS, BAD(bias.dtype, "BFLOAT16")}},
    {"input ndim 0", &agmm, ALL, TPMM_ERR_SHAPE, {"input: ndim=0"},
     .set = {BAD(in.ndim, "0")}},
    {"input ndim 1", &agmm, ALL, TPMM_ERR_SHAPE, {"input: ndim=1"},
     .set = {BAD(in.ndim, "1")}},
    {"input ndim 3", &agmm, ALL, TPMM_ERR_SHAPE, {"input: ndim=3"},
     .set = {BAD(in.ndim, "3")}},
    {"x2 ndim 1", &agmm, ALL, TPMM_ERR_SHAPE, {"x2: ndim=1"},
     .set = {BAD(x2.ndim, "1")}},
    {"x2 ndim 3", &agmm, ALL, TPMM_ERR_SHAPE, {"x2: ndim=3"},
     .set = {BAD(x2.ndim, "3")}},
    {"output ndim 3", &agmm, ALL, TPMM_ERR_SHAPE, {"output: ndim=3"},
     .set = {BAD(out.ndim, "3")}},
    {"gather_out ndim 1", &agmm, ALL, TPMM_ERR_SHAPE, {"gather_out: ndim=1"},
     .set = {BAD(gout.ndim, "1")}},
    {"bias ndim 2", &agmm, ALL, TPMM_ERR_SHAPE, {"bias: ndim=2"},
     .set = {WITH_BIAS, BAD(bias.ndim, "2")}},
    {"input negative m", &agmm, ALL, TPMM_ERR_SHAPE, {"input: shape (-1, {BK})"},
     .set = {BAD(in.shape[0], "-1")}},
    {"input negative k", &agmm, ALL, TPMM_ERR_SHAPE, {"input: shape ({BM}, -5)"},
     .set = {BAD(in.shape[1], "-5")}},
    {"x2 negative n", &agmm, ALL, TPMM_ERR_SHAPE, {"x2: shape ({BK}, -2)"},
     .set = {BAD(x2.shape[1], "-2")}},
    /* INT64_MIN once tripped signed-overflow UB in agree.c (fixed); under
     * -fno-sanitize-recover a regression aborts the process, so it runs last */
    {"input m = INT64_MIN", &agmm, ALL, TPMM_ERR_SHAPE, {"input: shape ({INT64_MIN},"},
     .set = {BAD(in.shape[0], "INT64_MIN")}, .flags = LAST_RUN},
    {"output negative dim", &agmm, ALL, TPMM_ERR_SHAPE, {"output: shape ({M}, -4)"},
     .set = {BAD(out.shape[1], "-4")}},
    {"input ld < columns", &agmm, ALL, TPMM_ERR_SHAPE, {"input: ld={BK-1}"},
     .set = {BAD(in.ld, "BK-1")}},
    {"x2 ld negative", &agmm, ALL, TPMM_ERR_SHAPE, {"x2: ld=-1"},
     .set = {BAD(x2.ld, "-1")}},
    {"output ld < n", &agmm, ALL, TPMM_ERR_SHAPE, {"output: ld={BN-1}"},
     .set = {BAD(out.ld, "BN-1")}},
    {"gather_out ld < k", &agmm, ALL, TPMM_ERR_SHAPE, {"gather_out: ld=1"},
     .set = {BAD(gout.ld, "1")}},
    {"transposed input ld < m", &agmm, ALL, TPMM_ERR_SHAPE, {"input: ld={BM-1}"},
     .set = {CTX(opts.trans_input, "true"), CTX_SHAPE(in, "BK", "BM"), BAD(in.ld, "BM-1")}},
    {"x2 k differs from input k", &agmm, ALL, TPMM_ERR_SHAPE, {"x2: k={BK+1} does not match input k={BK}"},
     .set = {BAD(x2.shape[0], "BK+1")}},
    {"x2 k differs (trans_x2)", &agmm, ALL, TPMM_ERR_SHAPE, {"x2: k={BK-1} does not match input k={BK}", "transposed"},
     .set = {CTX(opts.trans_x2, "true"), CTX(x2.shape[0], "BN"), BAD(x2.shape[1], "BK-1")}},
    {"k = 0", &agmm, ALL, TPMM_ERR_SHAPE, {"k=0"},
     .set = {BAD(in.shape[1], "0"), BAD(x2.shape[0], "0"), BAD(gout.shape[1], "0")}},
    {"output rows wrong", &agmm, ALL, TPMM_ERR_SHAPE, {"output: shape ({M-1}, {BN}), expected ({M}, {BN})"},
     .set = {BAD(out.shape[0], "M-1")}},
    {"output cols wrong", &agmm, ALL, TPMM_ERR_SHAPE, {"output: shape ({M}, {BN+1}), expected ({M}, {BN})"},
     .set = {BAD(out.shape[1], "BN+1")}},
    {"gather_out rows wrong (m, not m*W)", &agmm, ALL, TPMM_ERR_SHAPE,
     {"gather_out: shape ({BM}, {BK}), expected ({M}, {BK})"},
     .set = {BAD(gout.shape[0], "BM")}, .min_w = 2},
    {"gather_out cols wrong", &agmm, ALL, TPMM_ERR_SHAPE, {"gather_out: shape ({M}, {BN}), expected ({M}, {BK})"},
     .set = {BAD(gout.shape[1], "BN")}},
    {"bias too short", &agmm, ALL, TPMM_ERR_SHAPE, {"bias: length {BN-1} does not match n={BN}"},
     .set = {WITH_BIAS, BAD(bias.shape[0], "BN-1")}},
    {"bias too long", &agmm, ALL, TPMM_ERR_SHAPE, {"bias: length {BN+1} does not match n={BN}"},
     .set = {WITH_BIAS, BAD(bias.shape[0], "BN+1")}},
    {"bias negative length", &agmm, ALL, TPMM_ERR_SHAPE, {"bias: length -1"},
     .set = {WITH_BIAS, BAD(bias.shape[0], "-1")}},
    {"world_size = W+1", &agmm, ALL, TPMM_ERR_WORLD_SIZE, {"world_size={W+1}", "group has {W} ranks"},
     .set = {BAD(world_size, "W+1")}},
    {"world_size 0", &agmm, ALL, TPMM_ERR_WORLD_SIZE, {"world_size=0"},
     .set = {BAD(world_size, "0")}},
    {"world_size negative", &agmm, ALL, TPMM_ERR_WORLD_SIZE, {"world_size=-2"},
     .set = {BAD(world_size, "-2")}},
    {"world_size = W-1", &agmm, ALL, TPMM_ERR_WORLD_SIZE, {"world_size={W-1}"},
     .set = {BAD(world_size, "W-1")}},
    /* gather_index 1 gathers x2 (issue 15): W x 5 rows of x2 do not add up to input's k=5 */
    {"gather_index 1: x2's shards do not add up to input's k", &agmm, ALL, TPMM_ERR_SHAPE, {"but input has k=5"},
     .set = {BAD(opts.gather_index, "1")}},
    {"gather_index -1", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"gather_index=-1"},
     .set = {BAD(opts.gather_index, "-1")}},
    {"gather_index 2", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"gather_index=2"},
     .set = {BAD(opts.gather_index, "2")}},
    {"comm_turn negative", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"comm_turn=-1"},
     .set = {BAD(opts.comm_turn, "-1")}},
    {"comm_turn > m", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"comm_turn={BM+1}", "m={BM}"},
     .set = {BAD(opts.comm_turn, "BM+1")}},
    {"comm_turn 2 with m = 0", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"comm_turn=2"},
     .set = {CTX(in.shape[0], "0"), CTX(out.shape[0], "0"), CTX(gout.shape[0], "0"), BAD(opts.comm_turn, "2")}},
    /* overflow: data pointers are the small arenas; a correct library fails
     * before touching them (a wrong one would crash here) */
    {"input byte size overflows int64", &agmm, ALL, TPMM_ERR_SHAPE, {"input: shape ({2^62}, {BK})", "overflows"},
     .set = {BAD(in.shape[0], "2^62")}},
    {"x2 ld*rows overflows", &agmm, ALL, TPMM_ERR_SHAPE, {"x2: shape ({BK}, {BN}) with ld={2^61}", "overflows"},
     .set = {BAD(x2.ld, "2^61")}},
    /* each tensor alone fits */
    {"m*W*n overflows", &agmm, ALL, TPMM_ERR_SHAPE, {"m*world_size={2^40}*{W}", "overflows"},
     .set = {BAD_SHAPE(in, "2^40", "1"), BAD_SHAPE(x2, "1", "2^30"), BAD_SHAPE(out, "2^40 * W", "2^30"),
             BAD_SHAPE(gout, "2^40 * W", "1")}},
    {"m*W*k overflows", &agmm, ALL, TPMM_ERR_SHAPE, {"m*world_size={2^59}*{W} with k=2, n=0", "overflows"},
     .set = {BAD_SHAPE(in, "2^59", "2"), BAD_SHAPE(x2, "2", "0"), BAD(out.shape[1], "0")}, .min_w = 2},
    {"output ld*rows overflows", &agmm, ALL, TPMM_ERR_SHAPE, {"output: shape ({M}, {BN}) with ld={2^62}"},
     .set = {BAD(out.ld, "2^62")}},
    {"m > INT_MAX (MPI int counts)", &agmm, ALL, TPMM_ERR_UNSUPPORTED, {"m={INT_MAX+1}"},
     .set = {BAD_SHAPE(in, "INT_MAX+1", "1"), BAD_SHAPE(x2, "1", "1"), BAD_SHAPE(out, "(INT_MAX+1) * W", "1"),
             BAD_SHAPE(gout, "(INT_MAX+1) * W", "1"), FAKE_POINTERS}},
    {"k rows > INT_MAX bytes (MPI int counts)", &agmm, ALL, TPMM_ERR_UNSUPPORTED, {"{2^31 * 2} bytes"},
     .set = {BAD_SHAPE(in, "1", "2^31"), BAD_SHAPE(x2, "2^31", "1"), BAD_SHAPE(out, "W", "1"),
             BAD_SHAPE(gout, "W", "2^31"), FAKE_POINTERS}},
    {"output == input", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"output overlaps input"},
     .set = {BAD(out.data, "a_in")}},
    {"output starts on input's last element", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"output overlaps input"},
     .set = {BAD(out.data, "a_in + (BM*BK - 1) * 2")}},
    /* x2 moves into the spare arena so that output's range stays inside it;
     * output's last element is x2's first */
    {"output ends inside x2", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"output overlaps x2"},
     .set = {CTX(x2.data, "a_spare + 4096"), BAD(out.data, "a_spare + 4096 - (M*BN - 1) * 2")}},
    {"gather_out == input", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"gather_out overlaps input"},
     .set = {BAD(gout.data, "a_in")}},
    {"gather_out overlaps x2", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"gather_out overlaps x2"},
     .set = {BAD(gout.data, "a_x2 + 2")}},
    {"output overlaps gather_out", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"output overlaps gather_out"},
     .set = {BAD(out.data, "a_gout + (M*BK - 1) * 2")}},
    {"output overlaps bias", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"output overlaps bias"},
     .set = {WITH_BIAS, BAD(out.data, "a_bias + 2")}},
    {"input is this rank's block of gather_out (in-place gather)", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT,
     {"gather_out overlaps input"},
     .set = {BAD(in.data, "a_gout + R*BM*BK * 2")}},
    {"group NULL", &agmm, ALL, TPMM_ERR_INVALID_ARGUMENT, {"group is NULL"},
     .set = {BAD(group, "NULL")}, .flags = LOCAL},
    {"group \"\"", &agmm, ALL, TPMM_ERR_GROUP, {"group \"\" does not exist"},
     .set = {BAD_STR(group, "")}, .flags = LOCAL},
    {"unknown group", &agmm, ALL, TPMM_ERR_GROUP, {"group \"no_such_group\" does not exist"},
     .set = {BAD_STR(group, "no_such_group")}, .flags = LOCAL},

    /* only one rank differs: every rank must return MISMATCH */
    {"rank 1 passes a different k", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on k"},
     .set = {BAD(in.shape[1], "BK+2"), BAD(x2.shape[0], "BK+2"), BAD(gout.shape[1], "BK+2")}},
    {"last rank passes a different n", &agmm, LAST, TPMM_ERR_MISMATCH, {"disagree on n"},
     .set = {BAD(x2.shape[1], "BN+1"), BAD(out.shape[1], "BN+1")}},
    {"rank 1 passes a different m", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on m"},
     .set = {BAD(in.shape[0], "BM+1"), BAD(out.shape[0], "(BM+1) * W"), BAD(gout.shape[0], "(BM+1) * W")}},
    {"rank 1 passes float32 everywhere", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on dtype"},
     .set = {BAD(in.dtype, "FLOAT32"), BAD(x2.dtype, "FLOAT32"), BAD(out.dtype, "FLOAT32"),
             BAD(gout.dtype, "FLOAT32")}},
    {"rank 1 passes comm_turn 1", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on comm_turn"},
     .set = {BAD(opts.comm_turn, "1")}},
    {"rank 1 passes trans_input", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on trans_input"},
     .set = {BAD(opts.trans_input, "true"), BAD_SHAPE(in, "BK", "BM")}},
    {"last rank passes trans_x2", &agmm, LAST, TPMM_ERR_MISMATCH, {"disagree on trans_x2"},
     .set = {BAD(opts.trans_x2, "true"), BAD_SHAPE(x2, "BN", "BK")}},
    {"rank 1 passes gather_output false", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on gather_output"},
     .set = {BAD(opts.gather_output, "false")}},
    {"rank 1 passes world_size W+1", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on world_size"},
     .set = {BAD(world_size, "W+1")}},
    {"only rank 1 passes a bias", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on bias (present)"},
     .set = {BAD(opts.bias, "&bias")}},
    {"rank 1 bias float32, others float16", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on bias dtype"},
     .set = {WITH_BIAS, BAD(bias.dtype, "FLOAT32")}},
    {"rank 1 passes gather_index 1", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on gather_index"},
     .set = {BAD(opts.gather_index, "1")}, .own = "x2: equal shards of {BK} rows"},
    {"rank 1: different k and x2 k inconsistent", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on k"},
     .set = {BAD(in.shape[1], "BK+2")}, .own = "does not match input k"},
    /* what a rank cannot read (its dtype, m, k) is not compared: its own error reaches every rank */
    {"rank 1 passes a NULL input tensor", &agmm, 1, TPMM_ERR_INVALID_ARGUMENT, {"input is NULL"},
     .set = {BAD(pin, "NULL")}},
    {"rank 1 passes input ndim 3", &agmm, 1, TPMM_ERR_SHAPE, {"input: ndim=3"}, .set = {BAD(in.ndim, "3")}},
    {"rank 1 passes a NULL input tensor and comm_turn 1", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on comm_turn"},
     .set = {BAD(pin, "NULL"), BAD(opts.comm_turn, "1")}, .own = "input is NULL"},
    {"rank 1 opts NULL, others trans_x2", &agmm, 1, TPMM_ERR_MISMATCH, {"disagree on trans_x2"},
     .set = {CTX(opts.trans_x2, "true"), CTX_SHAPE(x2, "BN", "BK"), BAD(popts, "NULL"), BAD_SHAPE(x2, "BK", "BN")}},
    {"rank 1 passes m = INT64_MIN + 1 (regression: agree.c negated fields)", &agmm, 1, TPMM_ERR_MISMATCH,
     {"disagree on m"}, .set = {BAD(in.shape[0], "INT64_MIN+1")}, .own = "negative dimension", .flags = LAST_RUN},
    {"rank 1 passes m = INT64_MIN", &agmm, 1, TPMM_ERR_SHAPE, {"negative dimension"},
     .set = {BAD(in.shape[0], "INT64_MIN")}, .flags = LAST_RUN},

    /* only one rank's arguments are invalid, fields agree: its status everywhere */
    {"rank 1 passes NULL input data", &agmm, 1, TPMM_ERR_INVALID_ARGUMENT, {"input: data is NULL"},
     .set = {BAD(in.data, "NULL")}},
    {"rank 1 passes a too small output", &agmm, 1, TPMM_ERR_SHAPE, {"output: shape ({BM}, {BN}), expected ({M}, {BN})"},
     .set = {BAD(out.shape[0], "BM")}},
    {"rank 1 output overlaps its input", &agmm, 1, TPMM_ERR_INVALID_ARGUMENT, {"output overlaps input"},
     .set = {BAD(out.data, "a_in + 2")}},
    {"rank 1 bias of wrong length", &agmm, 1, TPMM_ERR_SHAPE, {"bias: length {BN+3} does not match n={BN}"},
     .set = {WITH_BIAS, BAD(bias.shape[0], "BN+3")}},
    {"rank 1 input ld < columns", &agmm, 1, TPMM_ERR_SHAPE, {"input: ld=2"},
     .set = {BAD(in.ld, "2")}},
    {"last rank output dtype 99", &agmm, LAST, TPMM_ERR_INVALID_ARGUMENT, {"output: dtype=99"},
     .set = {BAD(out.dtype, "99")}},
    {"rank 0 x2 k inconsistent", &agmm, 0, TPMM_ERR_SHAPE, {"x2: k={BK-1} does not match input k={BK}"},
     .set = {BAD(x2.shape[0], "BK-1")}},
    {"rank 1 SHAPE and rank 2 INVALID: lowest wins", &agmm, 1, TPMM_ERR_SHAPE, {"gather_out: shape"},
     .set = {BAD(gout.shape[1], "BK+1"), ON(2, x2.data, "NULL")}, .min_w = 3},
    {"rank 2 SHAPE and rank 1 INVALID: lowest wins", &agmm, 1, TPMM_ERR_INVALID_ARGUMENT, {"x2: data is NULL"},
     .set = {ON(2, gout.shape[1], "BK+1"), BAD(x2.data, "NULL")}, .min_w = 3},
    {"rank 1 gather_out float32", &agmm, 1, TPMM_ERR_DTYPE, {"gather_out: dtype float32"},
     .set = {BAD(gout.dtype, "FLOAT32")}},

    /* custom rows */
    {"edge successes", .run = edge_successes},
    {"group functions", .run = group_functions},
    {"tunables", .run = param_functions},
    {"plans", .run = plan_functions},
    {"per-thread message", .run = thread_messages},
    {"a disagreement names this rank's value and a differing rank's", .run = named_values},
};
/* clang-format on */
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* ---- the runner ---------------------------------------------------------- */
static int who_rank(int who) { return who == LAST ? W - 1 : who; }

static int row_min_w(const err_case_t *k) {
  int w = k->min_w > 1 ? k->min_w : 1;
  if (k->who >= 1 && w < k->who + 1) w = k->who + 1;
  if (k->who == LAST && k->status == TPMM_ERR_MISMATCH && w < 2) w = 2; /* a rank that differs needs another */
  for (int i = 0; i < MAX_SET && k->set[i].field; i++)
    if (k->set[i].on >= 0 && w < k->set[i].on + 1) w = k->set[i].on + 1;
  return w;
}

/* The symbols of the rows' expressions, for call c on this rank. */
enum { MAX_SYMS = 40 };
static int row_symbols(const call_t *c, tsym_t *s) {
#define P(p) (int64_t)(uintptr_t)(p)
  const tsym_t t[] = {{"W", W},
                      {"M", (int64_t)BM * W},
                      {"BM", BM},
                      {"BK", BK},
                      {"BN", BN},
                      {"R", t_rank},
                      {"INT_MAX", INT_MAX},
                      {"INT64_MIN", INT64_MIN},
                      {"NULL", 0},
                      {"true", 1},
                      {"false", 0},
                      {"FLOAT16", TPMM_FLOAT16},
                      {"BFLOAT16", TPMM_BFLOAT16},
                      {"FLOAT32", TPMM_FLOAT32},
                      {"a_in", P(a_in)},
                      {"a_x2", P(a_x2)},
                      {"a_out", P(a_out)},
                      {"a_gout", P(a_gout)},
                      {"a_bias", P(a_bias)},
                      {"a_spare", P(a_spare)},
                      {"&in", P(&c->in)},
                      {"&x2", P(&c->x2)},
                      {"&out", P(&c->out)},
                      {"&gout", P(&c->gout)},
                      {"&bias", P(&c->bias)}};
#undef P
  _Static_assert(sizeof t / sizeof t[0] <= MAX_SYMS, "raise MAX_SYMS");
  memcpy(s, t, sizeof t);
  return (int)(sizeof t / sizeof t[0]);
}

/* Write setter st's value into c. Returns 1, or 0 with a failed check. */
static int apply(const char *row, call_t *c, const set_t *st, const tsym_t *syms, int nsyms) {
  int64_t v = 0;
  char *dst = (char *)c + st->off;
  if (st->str) {
    if (st->size != sizeof st->str) {
      check(0, "%s: %s is not a pointer", row, st->field);
      return 0;
    }
    memcpy(dst, &st->str, sizeof st->str);
    return 1;
  }
  if (!texpr_eval(row, st->expr, syms, nsyms, &v)) return 0;
  if (st->size == 1 && (v == 0 || v == 1)) {
    bool b = v;
    memcpy(dst, &b, 1);
  } else if (st->size == 4 && v >= INT32_MIN && v <= INT32_MAX) {
    int32_t i = (int32_t)v;
    memcpy(dst, &i, 4);
  } else if (st->size == 8) {
    memcpy(dst, &v, 8); /* int64_t, or a pointer (uintptr_t value) */
  } else {
    check(0, "%s: %s = %s = %lld does not fit its %zu bytes", row, st->field, st->expr, (long long)v, st->size);
    return 0;
  }
  return 1;
}

static int n_run, n_skipped;

static void run_row(const err_case_t *k) {
  const char *name = k->name;
  if (k->run) {
    set_case(name);
    k->run();
    n_run++;
    return;
  }
  if (W < row_min_w(k)) {
    n_skipped++;
    return;
  }
  set_case(name);
  n_run++;
  const op_t *op = k->op;
  call_t c;
  op->init(&c);
  reset_buffers();
  tsym_t syms[MAX_SYMS];
  const int nsyms = row_symbols(&c, syms);
  const bool mutating = k->who == ALL || who_rank(k->who) == t_rank;
  int ok = 1;
  for (int i = 0; i < MAX_SET && k->set[i].field; i++) {
    const set_t *st = &k->set[i];
    if (st->on == ON_ALL || (st->on == ON_BAD && mutating) || st->on == t_rank) ok &= apply(name, &c, st, syms, nsyms);
  }
  char sub[3][256] = {{0}}, own[256] = {0};
  for (int i = 0; i < 3; i++)
    if (k->msg[i]) ok &= texpr_expand(name, k->msg[i], syms, nsyms, sub[i], sizeof sub[i]);
  if (k->own) ok &= texpr_expand(name, k->own, syms, nsyms, own, sizeof own);
  if (!all_ranks_equal(ok, 1)) return; /* a broken row (reported): no rank calls */

  tpmm_status_t st = op->call(&c);
  char msg[1100];
  snprintf(msg, sizeof msg, "%s", tpmm_last_error());

  /* every rank: same, expected status */
  const int same = all_ranks_equal((int)st, (int)k->status);
  check(st == k->status, "%s: status %d (%s), expected %d (%s); message \"%s\"", name, st, tpmm_status_string(st),
        k->status, tpmm_status_string(k->status), msg);
  check(same, "%s: not every rank returned %s", name, tpmm_status_string(k->status));
  check(msg[0] != '\0', "%s: empty message", name);
  for (int i = 0; i < 3; i++)
    if (sub[i][0]) check(strstr(msg, sub[i]) != NULL, "%s: message \"%s\" lacks \"%s\"", name, msg, sub[i]);
  if (own[0] && mutating) check(strstr(msg, own) != NULL, "%s: own message \"%s\" lacks \"%s\"", name, msg, own);
  char pre[300];
  if (k->status != TPMM_ERR_MISMATCH && !(k->flags & LOCAL)) {
    const int lowest = k->who == ALL ? 0 : who_rank(k->who);
    if (t_rank == lowest)
      snprintf(pre, sizeof pre, "%s: ", op->name);
    else
      snprintf(pre, sizeof pre, "rank %d of group \"%s\" rejected its arguments: %s: ", lowest, WG, op->name);
    check(strncmp(msg, pre, strlen(pre)) == 0, "%s: message \"%s\" does not start with \"%s\"", name, msg, pre);
  } else if (!(k->flags & LOCAL)) {
    snprintf(pre, sizeof pre, "%s: ranks of group \"%s\" disagree on ", op->name, WG);
    check(strstr(msg, pre) == msg, "%s: mismatch message \"%s\" has the wrong form", name, msg);
    /* a misbehaving rank that also failed locally: the others carry its report */
    const int lowest = k->who == ALL ? 0 : who_rank(k->who);
    snprintf(pre, sizeof pre, "; rank %d also rejected its arguments: %s: ", lowest, op->name);
    if (own[0] && !mutating)
      check(strstr(msg, pre) && strstr(strstr(msg, pre), own), "%s: message \"%s\" lacks \"%s...%s\"", name, msg, pre,
            own);
    if (own[0] && mutating)
      check(strstr(msg, "; this rank also reported: ") != NULL, "%s: message \"%s\" lacks its own report", name, msg);
  } else {
    snprintf(pre, sizeof pre, "%s: ", op->name);
    check(strncmp(msg, pre, strlen(pre)) == 0, "%s: message \"%s\" lacks the op prefix", name, msg);
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
  op->valid(lbl);
  if (t_rank == 0 && getenv("TPMM_TEST_VERBOSE")) printf("  case %-60s -> %s: %s\n", name, tpmm_status_string(st), msg);
}

/* A row that cannot test anything is a mistake in the table: names must be
 * unique (failures and the watchdog name the row), an operator row needs an
 * error status, a message and a misbehaviour; a custom row only its function. */
static void check_table(void) {
  for (int i = 0; i < N_CASES; i++) {
    const err_case_t *k = &cases[i];
    bool has_bad = false;
    for (int j = 0; j < MAX_SET && k->set[j].field; j++) has_bad |= k->set[j].on != ON_ALL;
    for (int j = 0; j < i; j++)
      if (strcmp(cases[j].name, k->name) == 0) check(0, "table: row %d repeats the name \"%s\"", i, k->name);
    if (k->run && (k->op || k->set[0].field)) check(0, "table: custom row \"%s\" has operator fields", k->name);
    if (!k->run && !(k->op && k->status != TPMM_SUCCESS && k->msg[0] && has_bad))
      check(0, "table: row \"%s\" lacks an operator, an error status, a message or a BAD/ON setter", k->name);
  }
}

/* ---- custom rows ------------------------------------------------------- */

/* valid edge calls: the boundary on the good side of each error */
static void edge_successes(void) {
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
/* The last rank passes float32 everywhere: each rank names its own dtype and the lowest rank whose
 * dtype differs from it (the last rank, or rank 0 on the last rank), with W = 3 a rank in between. */
static void named_values(void) {
  call_t c;
  base_call(&c);
  reset_buffers();
  const int last = W - 1;
  if (t_rank == last) c.in.dtype = c.x2.dtype = c.out.dtype = c.gout.dtype = TPMM_FLOAT32;
  const tpmm_status_t st = tpmm_all_gather_matmul(&c.in, &c.x2, WG, W, &c.opts, &c.out, &c.gout);
  char want[128];
  snprintf(want, sizeof want, "disagree on dtype (this rank %s, rank %d %s)", t_rank == last ? "float32" : "float16",
           t_rank == last ? 0 : last, t_rank == last ? "float16" : "float32");
  check(st == TPMM_ERR_MISMATCH && strstr(tpmm_last_error(), want), "named values: %d \"%s\", expected \"%s\"", st,
        tpmm_last_error(), want);
  check(memcmp(a_out, s_poison, ARENA) == 0, "named values: output written");
  /* two failing ranks that also disagree (W >= 3): ranks 1 and 2 pass comm_turn -1 and -2; every rank
   * carries rank 1's report, and rank 2 its own as well */
  if (W < 3) return;
  base_call(&c);
  reset_buffers();
  c.opts.comm_turn = t_rank == 1 ? -1 : t_rank == 2 ? -2 : 0;
  const tpmm_status_t st2 = tpmm_all_gather_matmul(&c.in, &c.x2, WG, W, &c.opts, &c.out, &c.gout);
  const char *m = tpmm_last_error();
  const char *r1 = t_rank == 1
                       ? "; this rank also reported: tpmm_all_gather_matmul: comm_turn=-1 is negative"
                       : "; rank 1 also rejected its arguments: tpmm_all_gather_matmul: comm_turn=-1 is negative";
  check(st2 == TPMM_ERR_MISMATCH && strstr(m, "disagree on comm_turn") && strstr(m, r1) &&
            (t_rank != 2 || strstr(m, "; this rank also reported: tpmm_all_gather_matmul: comm_turn=-2 is negative")),
        "two failing ranks: %d \"%s\"", st2, m);
}

static void thread_messages(void) {
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
  check_table();
  for (int i = 0; i < N_CASES; i++)
    if (!(cases[i].flags & LAST_RUN)) run_row(&cases[i]);
  for (int i = 0; i < N_CASES; i++)
    if (cases[i].flags & LAST_RUN) run_row(&cases[i]);
  if (t_rank == 0) printf("test_errors: %d of %d rows run, %d need more ranks\n", n_run, N_CASES, n_skipped);

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
