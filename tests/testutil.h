/*
 * testutil.h — helpers for tpmm's tests: a seeded RNG, dtype conversions
 * (the library's own, from src/common/half.h), the fp64 reference and the
 * dtype-derived tolerance, NaN poisoning, a watchdog that names the case that
 * hung, a pass/fail tally that ends with the "N passed, N failed" line CI
 * reads, and the integer expressions of table-driven tests (test_errors.c).
 */
#ifndef TPMM_TESTUTIL_H
#define TPMM_TESTUTIL_H

#include <math.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/common/debug.h"
#include "../src/common/half.h"
#include "tpmm.h"

/* ---- RNG: splitmix64 ---- */
typedef struct {
  uint64_t s;
} rng_t;
static inline uint64_t rng_next(rng_t *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline double rng_uniform(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }
static inline double rng_normal(rng_t *r) {
  double u = rng_uniform(r), v = rng_uniform(r);
  if (u < 1e-300) u = 1e-300;
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}
static inline int64_t rng_range(rng_t *r, int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* ---- element access ---- */
static inline double get_el(const void *p, tpmm_dtype_t dt, int64_t i) {
  switch (dt) {
    case TPMM_FLOAT16: return tpi_f16_to_f32(((const uint16_t *)p)[i]);
    case TPMM_BFLOAT16: return tpi_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
  }
}
static inline void set_el(void *p, tpmm_dtype_t dt, int64_t i, double v) {
  switch (dt) {
    case TPMM_FLOAT16: ((uint16_t *)p)[i] = tpi_f32_to_f16((float)v); break;
    case TPMM_BFLOAT16: ((uint16_t *)p)[i] = tpi_f32_to_bf16((float)v); break;
    default: ((float *)p)[i] = (float)v;
  }
}
static inline size_t dt_size(tpmm_dtype_t dt) { return dt == TPMM_FLOAT32 ? 4 : 2; }
static inline const char *dt_name(tpmm_dtype_t dt) {
  return dt == TPMM_FLOAT16 ? "fp16" : dt == TPMM_BFLOAT16 ? "bf16" : "fp32";
}
/* Unit roundoff of the output dtype (half an ulp at 1.0). */
static inline double dt_eps(tpmm_dtype_t dt) {
  return dt == TPMM_FLOAT16 ? 0x1p-11 : dt == TPMM_BFLOAT16 ? 0x1p-8 : 0x1p-24;
}
/* Half the smallest subnormal: absolute slack for results near zero. */
static inline double dt_tiny(tpmm_dtype_t dt) {
  return dt == TPMM_FLOAT16 ? 0x1p-25 : dt == TPMM_BFLOAT16 ? 0x1p-134 : 0x1p-150;
}

/* The dtype-derived tolerance every test uses: one rounding to the output
 * dtype plus the fp32 accumulation error of k terms,
 *   |got - ref| <= eps_out * |ref| + (k + 2) * 2^-24 * mag + tiny_out,
 * where ref is the fp64 result on the same rounded inputs and mag the sum of
 * the absolute values of its terms. NaN never passes. */
static inline int within_tol(double got, double ref, double mag, tpmm_dtype_t dt, int64_t k) {
  return fabs(got - ref) <= dt_eps(dt) * fabs(ref) + (double)(k + 2) * 0x1p-24 * mag + dt_tiny(dt);
}

/* fp64 dot product of k elements of dtype dt, a at stride as and b at stride
 * bs, plus bias; *mag gets the sum of the absolute values of the terms. */
static inline double ref_dot(const void *a, int64_t as, const void *b, int64_t bs, tpmm_dtype_t dt, int64_t k,
                             double bias, double *mag) {
  double ref = bias, m = fabs(bias);
  for (int64_t q = 0; q < k; q++) {
    double p = get_el(a, dt, q * as) * get_el(b, dt, q * bs);
    ref += p;
    m += fabs(p);
  }
  *mag = m;
  return ref;
}

/* Check one rank block of a result: gather_out rows (gout, m x k dense) must
 * equal the block's input bit for bit, and output rows (out, m x n dense)
 * must be within tolerance of the fp64 reference with x2 (k x n dense) and
 * bias (n elements of bias_dt, or NULL). Adds to *bad_g (0/1 per block) and
 * *bad_o (elements), and raises *worst (absolute error; NaN counts). */
static inline void check_block(const void *in, const void *gout, const void *out, const void *x2, const void *bias,
                               tpmm_dtype_t bias_dt, tpmm_dtype_t dt, int64_t m, int64_t k, int64_t n, int *bad_g,
                               int *bad_o, double *worst) {
  const size_t es = dt_size(dt);
  if (memcmp(gout, in, (size_t)(m * k) * es) != 0) (*bad_g)++;
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double mag, ref = ref_dot((const char *)in + (size_t)(i * k) * es, 1, (const char *)x2 + (size_t)j * es, n, dt, k,
                                bias ? get_el(bias, bias_dt, j) : 0.0, &mag);
      double got = get_el(out, dt, i * n + j), err = fabs(got - ref);
      if (!within_tol(got, ref, mag, dt, k)) (*bad_o)++;
      if (err > *worst || isnan(err)) *worst = err;
    }
}

/* Fill a stored (rows x cols, ld) matrix with N(0,1) values rounded to dt. */
static inline void fill_randn(void *p, tpmm_dtype_t dt, int64_t rows, int64_t cols, int64_t ld, rng_t *r) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) set_el(p, dt, i * ld + j, rng_normal(r));
}

/* Poison a whole buffer of n elements with NaN (bit pattern of the dtype). */
static inline void poison(void *p, tpmm_dtype_t dt, int64_t n) {
  if (dt == TPMM_FLOAT32) {
    for (int64_t i = 0; i < n; i++) ((uint32_t *)p)[i] = 0x7fc00001u;
  } else {
    uint16_t v = dt == TPMM_FLOAT16 ? 0x7e01 : 0x7fc1;
    for (int64_t i = 0; i < n; i++) ((uint16_t *)p)[i] = v;
  }
}
static inline int is_poison(const void *p, tpmm_dtype_t dt, int64_t i) {
  if (dt == TPMM_FLOAT32) return ((const uint32_t *)p)[i] == 0x7fc00001u;
  return ((const uint16_t *)p)[i] == (dt == TPMM_FLOAT16 ? 0x7e01 : 0x7fc1);
}

/* ---- tally ---- */
static int t_pass, t_fail, t_rank;

/* ---- watchdog: a hang fails the test, naming the case it hung in ---- */
static char t_case[160] = "setup";
static inline void test_on_alarm(int sig) {
  (void)sig;
  char buf[256];
  int n = snprintf(buf, sizeof buf, "[rank %d] FAIL: HANG in case \"%s\" (watchdog)\n", t_rank, t_case);
  if (n > 0) (void)!write(2, buf, (size_t)n);
  _exit(3);
}
/* Name the case now running and give it `seconds` before the watchdog
 * fires (install test_on_alarm for SIGALRM first). */
static inline void test_case(const char *name, unsigned seconds) {
  snprintf(t_case, sizeof t_case, "%s", name);
  alarm(seconds);
}
static inline void check(int ok, const char *fmt, ...) {
  if (ok) {
    t_pass++;
    return;
  }
  t_fail++;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "[rank %d] FAIL: ", t_rank);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}
/* A call's status must be want, and its message contain sub (if not NULL). */
static inline void expect_status(tpmm_status_t got, tpmm_status_t want, const char *what, const char *sub) {
  check(got == want, "%s: status %d (%s), expected %d (%s); message \"%s\"", what, got, tpmm_status_string(got), want,
        tpmm_status_string(want), tpmm_last_error());
  if (sub)
    check(strstr(tpmm_last_error(), sub) != NULL, "%s: message \"%s\" lacks \"%s\"", what, tpmm_last_error(), sub);
}

/* Collective over the world: 1 on every rank if every rank's v equals want
 * (e.g. all ranks returned the same status), else 0 on every rank. */
static inline int all_ranks_equal(int v, int want) {
  int mine = v == want, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return all;
}

/* Whether the world group's topology lets TPMM_ALGO=algo run: shm_pull in
 * one node, hier across several nodes with the same number (> 1) of ranks
 * on each (MPI's shared-memory split, as tpmm's topology; MPICH's
 * MPIR_CVAR_NUM_CLIQUES=2 makes one machine two nodes). Collective. */
static inline int world_can_run(tpmm_algo_t algo) {
  MPI_Comm node;
  int size, nrank, lead, nodes, lo, hi;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &size);
  MPI_Comm_rank(node, &nrank);
  MPI_Comm_free(&node);
  lead = nrank == 0;
  MPI_Allreduce(&lead, &nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&size, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&size, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (algo == TPMM_ALGO_SHM_PULL) return nodes == 1;
  if (algo == TPMM_ALGO_HIER) return nodes > 1 && lo == hi && lo > 1;
  return 1;
}

/* ---- integer expressions for table-driven tests ----
 * A table row names its values and expected messages by expressions over the
 * test's symbols ("M-1", "2^62", "a_in + 2"), so that one static row holds a
 * case whose numbers depend on the world size or the rank. Grammar: sums of
 * products of powers; operands are decimal numbers, symbols ([A-Za-z_&] then
 * [A-Za-z0-9_]), unary minus and parentheses; ^ is the power and binds
 * tightest. Overflow and unknown symbols are errors, never UB. */
typedef struct {
  const char *name;
  int64_t value;
} tsym_t;
typedef struct {
  const char *p; /* next character */
  const tsym_t *syms;
  int nsyms;
  const char *err; /* first error, NULL if none */
} texpr_t;

static inline void texpr_space(texpr_t *e) {
  while (*e->p == ' ') e->p++;
}
static inline int64_t texpr_sum(texpr_t *e);
static inline int64_t texpr_operand(texpr_t *e) {
  texpr_space(e);
  const char *s = e->p;
  if (*s == '-') {
    e->p++;
    int64_t v = texpr_operand(e), r = 0;
    if (__builtin_sub_overflow((int64_t)0, v, &r)) e->err = e->err ? e->err : "overflow";
    return r;
  }
  if (*s == '(') {
    e->p++;
    int64_t v = texpr_sum(e);
    texpr_space(e);
    if (*e->p != ')')
      e->err = e->err ? e->err : "missing )";
    else
      e->p++;
    return v;
  }
  if (*s >= '0' && *s <= '9') {
    int64_t v = 0;
    for (; *e->p >= '0' && *e->p <= '9'; e->p++)
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *e->p - '0', &v))
        e->err = e->err ? e->err : "overflow";
    return v;
  }
  size_t n = 0;
  if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' || *s == '&')
    for (n = 1;
         (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_';
         n++) {
    }
  for (int i = 0; n && i < e->nsyms; i++)
    if (strlen(e->syms[i].name) == n && strncmp(e->syms[i].name, s, n) == 0) {
      e->p += n;
      return e->syms[i].value;
    }
  e->err = e->err ? e->err : n ? "unknown symbol" : "operand expected";
  return 0;
}
static inline int64_t texpr_power(texpr_t *e) {
  int64_t b = texpr_operand(e), r = 1;
  texpr_space(e);
  if (*e->p != '^') return b;
  e->p++;
  int64_t x = texpr_operand(e);
  if (x < 0) e->err = e->err ? e->err : "negative exponent";
  for (int64_t i = 0; i < x && !e->err; i++)
    if (__builtin_mul_overflow(r, b, &r)) e->err = "overflow";
  return r;
}
static inline int64_t texpr_product(texpr_t *e) {
  int64_t v = texpr_power(e);
  for (texpr_space(e); *e->p == '*'; texpr_space(e)) {
    e->p++;
    if (__builtin_mul_overflow(v, texpr_power(e), &v)) e->err = e->err ? e->err : "overflow";
  }
  return v;
}
static inline int64_t texpr_sum(texpr_t *e) {
  int64_t v = texpr_product(e);
  for (texpr_space(e); *e->p == '+' || *e->p == '-'; texpr_space(e)) {
    int minus = *e->p++ == '-';
    int64_t w = texpr_product(e);
    if (minus ? __builtin_sub_overflow(v, w, &v) : __builtin_add_overflow(v, w, &v))
      e->err = e->err ? e->err : "overflow";
  }
  return v;
}
/* Evaluate expression s over syms into *v. Returns 1, or 0 with a failed
 * check naming what (the row) and the error. */
static inline int texpr_eval(const char *what, const char *s, const tsym_t *syms, int nsyms, int64_t *v) {
  texpr_t e = {s, syms, nsyms, NULL};
  *v = texpr_sum(&e);
  texpr_space(&e);
  if (!e.err && *e.p) e.err = "trailing characters";
  if (e.err) check(0, "%s: expression \"%s\": %s at \"%s\"", what, s, e.err, e.p);
  return !e.err;
}
/* Copy template tmpl into buf, replacing each {expression} by its decimal
 * value (templates cannot contain a literal brace). Returns 1, or 0 with a
 * failed check. Checks count only failures, so a table's tally is its cases'. */
static inline int texpr_expand(const char *what, const char *tmpl, const tsym_t *syms, int nsyms, char *buf,
                               size_t len) {
  size_t o = 0;
  int ok = 1;
  buf[0] = '\0';
  for (const char *p = tmpl; *p && ok; p++) {
    char tmp[32];
    if (*p != '{') {
      tmp[0] = *p, tmp[1] = '\0';
    } else {
      const char *end = strchr(p, '}');
      char expr[160];
      int64_t v = 0;
      if (!end || (size_t)(end - p) >= sizeof expr) {
        check(0, "%s: template \"%s\": unterminated or long {expression}", what, tmpl);
        return 0;
      }
      snprintf(expr, sizeof expr, "%.*s", (int)(end - p - 1), p + 1);
      ok = texpr_eval(what, expr, syms, nsyms, &v);
      snprintf(tmp, sizeof tmp, "%lld", (long long)v);
      p = end;
    }
    size_t n = strlen(tmp);
    if (o + n >= len) {
      check(0, "%s: template \"%s\" expands beyond %zu bytes", what, tmpl, len - 1);
      return 0;
    }
    memcpy(buf + o, tmp, n + 1), o += n;
  }
  return ok;
}

/* Data any rank can regenerate for any peer: n values of dtype dt for world
 * rank wrank and a tag, from the run's seed. */
static inline void gen_for(void *p, tpmm_dtype_t dt, int64_t n, uint64_t seed, int wrank, int tag) {
  rng_t r = {seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(wrank + 1)) ^ ((uint64_t)tag << 56)};
  for (int64_t i = 0; i < n; i++) set_el(p, dt, i, rng_normal(&r));
}

/* A small valid all_gather_matmul on group (fp32: 4 x 8 rows per rank times
 * 8 x 4, no gather_out): its status. Collective. */
static inline tpmm_status_t small_call(const char *group, int W) {
  enum { M = 4, K = 8, N = 4 };
  float in[M * K], x2[K * N], *out = calloc((size_t)(W * M * N), sizeof(float));
  for (int i = 0; i < M * K; i++) in[i] = (float)(i % 7);
  for (int i = 0; i < K * N; i++) x2[i] = (float)(i % 5);
  tpmm_tensor_t ti = {in, TPMM_FLOAT32, 2, {M, K}, 0}, tx = {x2, TPMM_FLOAT32, 2, {K, N}, 0};
  tpmm_tensor_t to = {out, TPMM_FLOAT32, 2, {(int64_t)W * M, N}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.gather_output = false;
  tpmm_status_t st = tpmm_all_gather_matmul(&ti, &tx, group, W, &o, &to, NULL);
  free(out);
  return st;
}

/* ---- the algorithm-matrix tests (test_agmm_v.c, _x2.c, _multi.c): seed, options ---- */

/* The run's seed: TPMM_TEST_SEED or the clock, rank 0's on every rank,
 * printed by rank 0 under the test's name. Collective. */
static inline uint64_t test_seed(const char *name, int W) {
  const char *es = getenv("TPMM_TEST_SEED");
  uint64_t seed = es ? strtoull(es, NULL, 10) : (uint64_t)time(NULL);
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (t_rank == 0) printf("%s: W=%d seed=%llu (TPMM_TEST_SEED reproduces)\n", name, W, (unsigned long long)seed);
  return seed;
}

/* The options --quick (returned: 1 if given) and --algos a,b,c (default:
 * every algorithm). algos[0] is always unfused, the reference the others
 * must match bit for bit; then the listed ones, at most 8 in all. */
static inline int test_algo_args(int argc, char **argv, int algos[8], int *n_algos) {
  int quick = 0;
  const char *list = "unfused,ring,bidir_ring,shm_pull,hier,auto";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) quick = 1;
    if (strcmp(argv[i], "--algos") == 0 && i + 1 < argc) list = argv[++i];
  }
  *n_algos = 0;
  algos[(*n_algos)++] = TPMM_ALGO_UNFUSED;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *tok = strtok(buf, ","); tok && *n_algos < 8; tok = strtok(NULL, ","))
    for (int a = TPMM_ALGO_AUTO; a <= TPMM_ALGO_HIER; a++)
      if (strcmp(tok, tpmm_algo_name((tpmm_algo_t)a)) == 0 && a != TPMM_ALGO_UNFUSED) algos[(*n_algos)++] = a;
  return quick;
}

/* tpmm_init and the world rank and size; a failed init ends the test. */
static inline void test_init(int *argc, char ***argv, int *rank, int *size) {
  if (tpmm_init(argc, argv) != TPMM_SUCCESS) {
    fprintf(stderr, "tpmm_init: %s\n", tpmm_last_error());
    exit(1);
  }
  tpmm_get_rank(TPMM_WORLD_COMM_GROUP, rank);
  tpmm_get_group_size(TPMM_WORLD_COMM_GROUP, size);
  t_rank = *rank;
}

/* Sum the tallies over the world, print the closing line on rank 0 and
 * return the process exit code. */
static inline int finish(const char *name) {
  int l[2] = {t_pass, t_fail}, g[2];
  MPI_Allreduce(l, g, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (t_rank == 0) printf("%s: %d passed, %d failed\n", name, g[0], g[1]);
  return g[1] ? 1 : 0;
}

/* TPMM_DEBUG_FAIL event on group rank 0 alone while every rank creates group
 * (n members): the creation must fail on every rank, none left waiting, and
 * the next creation succeed. Both groups are destroyed again. */
static inline void creation_fails_everywhere(const char *event, const char *group, int n, const int *members,
                                             int rank) {
  if (rank == 0) tpi_debug_set_fail("TPMM_DEBUG_FAIL", event);
  const tpmm_status_t st = tpmm_create_group(group, n, members);
  tpi_debug_set_fail("TPMM_DEBUG_FAIL", NULL);
  check(st != TPMM_SUCCESS, "rank %d: tpmm_create_group with rank 0's %s failing returned %s", rank, event,
        tpmm_status_string(st));
  if (st == TPMM_SUCCESS) tpmm_destroy_group(group);
  const tpmm_status_t again = tpmm_create_group(group, n, members);
  check(again == TPMM_SUCCESS, "rank %d: tpmm_create_group after %s failed: %s", rank, event, tpmm_last_error());
  if (again == TPMM_SUCCESS) tpmm_destroy_group(group);
}

#endif
