/*
 * benchopts.c — tpmm-bench's option parser (see benchopts.h for the contract).
 *
 * Pure: reads argv, writes *o and err, nothing else. Values are copied into
 * small local buffers before conversion so that argv is never modified and
 * an arbitrarily long or odd string cannot make strtoll/strtod read past it.
 */
#include "benchopts.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char tpmm_bench_usage[] =
    "usage: mpirun -n W tpmm-bench --m M --k K --n N [options]\n"
    "\n"
    "Measures, side by side and interleaved per iteration (MPI_Barrier between):\n"
    "  T_AG     MPI_Allgather of the shards alone\n"
    "  T_GEMM   the whole gathered GEMM (m*W x k) @ (k x n) alone, tpmm's own GEMM backend\n"
    "  T_seq    MPI_Allgather, then that GEMM\n"
    "  T_fused  tpmm_all_gather_matmul (or tpmm_plan_execute with --plan)\n"
    "Each time is the median over iterations of the slowest rank's time.\n"
    "E = (T_seq - T_fused) / min(T_AG, T_GEMM) from those medians; JSON also has\n"
    "efficiency_paired, the median of each iteration's own E (robust when the\n"
    "machine's speed changes between iterations), and fused_over_seq likewise.\n"
    "\n"
    "  --m LIST          rows per rank, e.g. 1,64,512 (required)\n"
    "  --k LIST          inner dimension (required)\n"
    "  --n LIST          columns of x2 (required)\n"
    "  --dtype LIST      bf16, fp16, fp32 (default bf16)\n"
    "  --algo LIST       auto, unfused, ring, bidir_ring, shm_pull (default auto)\n"
    "  --comm-turn LIST  chunks per shard, 0 = automatic (default 0)\n"
    "  --plan            create a plan once and time tpmm_plan_execute\n"
    "  --iters I         timed iterations (default 10)\n"
    "  --warmup J        untimed iterations before them (default 2)\n"
    "  --peak GFLOPS     core peak for '% of peak'; 0 = do not report; default:\n"
    "                    measured once on rank 0 (512x4096x4096 GEMM, 1 thread)\n"
    "  --no-check        skip the bit-for-bit comparison with the unfused algorithm\n"
    "  --seed S          seed of the random inputs (default 1)\n"
    "  --json            one JSON object per configuration on stdout\n"
    "  --gather-index G  1: gather x2 (rank r holds k rows of it, input is m x W*k)\n"
    "  --counts LIST     uneven shards, one extent per rank (rows of input, or of x2\n"
    "                    with --gather-index 1; --m or --k is then ignored): times\n"
    "                    tpmm_all_gather_matmul_v, and T_even, the even split of the\n"
    "                    same total when W divides it\n"
    "  --nb N            N weights of n columns in one gather (all_gather_matmul_multi);\n"
    "                    also times T_sep, N separate calls (plans with --plan)\n"
    "  --op OP           all_gather_matmul (default), matmul_reduce_scatter or\n"
    "                    matmul_all_reduce: T_AG is then T_comm, MPI_Reduce_scatter_block /\n"
    "                    MPI_Allreduce of the fp32 partials, and --m the rows of each\n"
    "                    rank's output block (the input has m*W rows)\n"
    "  --predict         also print what the cost model predicts for T_seq and T_fused\n"
    "                    and the schedule auto would pick (JSON: pred_* fields; with\n"
    "                    --plan also pred_paired_*, predicted again before each iteration)\n"
    "  -h, --help        this text\n"
    "\n"
    "Lists are comma-separated; every combination is run. Progress goes to stderr.\n"
    "Environment: TPMM_NUM_THREADS (GEMM threads per rank, default 1), TPMM_GEMM,\n"
    "TPMM_TRACE; OMP_NUM_THREADS should be 1.\n"
    "Exit status: 0 success, 1 a run failed, 2 invalid options.\n";

static const char *const dtype_names[] = {NULL, "fp16", "bf16", "fp32"};
static const char *const algo_names[] = {"auto", "unfused", "ring", "bidir_ring", "shm_pull", "hier"};
#define N_DTYPES 4
#define N_ALGOS 6

const char *tpmm_bench_dtype_name(int d) { return d >= 1 && d < N_DTYPES ? dtype_names[d] : "?"; }
const char *tpmm_bench_algo_name(int a) { return a >= 0 && a < N_ALGOS ? algo_names[a] : "?"; }

static const char *const op_names[] = {"all_gather_matmul", "matmul_reduce_scatter", "matmul_all_reduce"};
const char *tpmm_bench_op_name(int op) { return op >= 0 && op < 3 ? op_names[op] : "?"; }

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return BENCH_PARSE_ERROR;
}

/* Copy item [s, s+len) into buf (NUL-terminated); 0 if it does not fit. */
static int take(char *buf, size_t cap, const char *s, size_t len) {
  if (len >= cap) return 0;
  memcpy(buf, s, len);
  buf[len] = '\0';
  return 1;
}

/* Decimal integer in [lo, hi]: digits only, no sign, no spaces. */
static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  if (!s[0]) return 0;
  for (const char *p = s; *p; p++)
    if (*p < '0' || *p > '9') return 0;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

/* One list item as an integer, a dtype name or an algorithm name. */
enum kind { K_INT, K_DTYPE, K_ALGO };

static int parse_item(enum kind kd, const char *s, int64_t lo, int64_t hi, int64_t *out) {
  if (kd == K_INT) return parse_int(s, lo, hi, out);
  const char *const *names = kd == K_DTYPE ? dtype_names : algo_names;
  int n = kd == K_DTYPE ? N_DTYPES : N_ALGOS;
  for (int i = 0; i < n; i++)
    if (names[i] && strcmp(s, names[i]) == 0) {
      *out = i;
      return 1;
    }
  /* common aliases, so "bfloat16" or "float32" does not surprise anyone */
  if (kd == K_DTYPE) {
    static const char *const alias[] = {NULL, "float16", "bfloat16", "float32"};
    for (int i = 1; i < N_DTYPES; i++)
      if (strcmp(s, alias[i]) == 0) {
        *out = i;
        return 1;
      }
  }
  return 0;
}

/* Parse a comma-separated list into out[]; *count set on success. */
static int parse_list(const char *opt, const char *val, enum kind kd, int64_t lo, int64_t hi, int64_t *out, int *count,
                      char *err, size_t errlen) {
  static const char *const what[] = {"an integer", "one of bf16, fp16, fp32",
                                     "one of auto, unfused, ring, bidir_ring, shm_pull, hier"};
  int n = 0;
  const char *s = val;
  for (;;) {
    const char *c = strchr(s, ',');
    size_t len = c ? (size_t)(c - s) : strlen(s);
    char buf[32];
    int64_t v;
    if (n == BENCH_MAX_VALUES)
      return fail(err, errlen, "%s: more than %d values in \"%.40s\"", opt, BENCH_MAX_VALUES, val);
    if (len == 0) return fail(err, errlen, "%s: empty value in \"%.40s\"", opt, val);
    if (!take(buf, sizeof buf, s, len) || !parse_item(kd, buf, lo, hi, &v)) {
      if (kd == K_INT)
        return fail(err, errlen, "%s: \"%.*s\" is not an integer in [%lld, %lld]", opt, (int)(len < 40 ? len : 40), s,
                    (long long)lo, (long long)hi);
      return fail(err, errlen, "%s: \"%.*s\" is not %s", opt, (int)(len < 40 ? len : 40), s, what[kd]);
    }
    out[n++] = v;
    if (!c) break;
    s = c + 1;
  }
  *count = n;
  return BENCH_PARSE_OK;
}

static void defaults(struct bench_opts *o) {
  memset(o, 0, sizeof *o);
  o->dtype[0] = 2; /* bf16 */
  o->ndtype = 1;
  o->algo[0] = 0; /* auto */
  o->nalgo = 1;
  o->comm_turn[0] = 0;
  o->ncomm_turn = 1;
  o->iters = 10;
  o->warmup = 2;
  o->check = 1;
  o->peak = -1.0;
  o->seed = 1;
  o->nb = 1;
}

int tpmm_bench_parse(int argc, char **argv, struct bench_opts *o, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  if (!o) return fail(err, errlen, "internal: no options struct");
  defaults(o);
  if (argc > 0 && !argv) return fail(err, errlen, "internal: argv is NULL");

  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!arg) return fail(err, errlen, "argument %d is NULL", i);
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) return BENCH_PARSE_HELP;

    /* split "--name=value"; a bare "--name" takes the next argument if it needs one */
    char name[24];
    const char *eq = strchr(arg, '=');
    const char *val = NULL;
    if (strncmp(arg, "--", 2) != 0) return fail(err, errlen, "unexpected argument \"%.40s\" (see --help)", arg);
    if (!take(name, sizeof name, arg, eq ? (size_t)(eq - arg) : strlen(arg)))
      return fail(err, errlen, "unknown option \"%.40s\" (see --help)", arg);
    if (eq) val = eq + 1;

    /* flags */
    int *flag = NULL, flag_value = 1;
    if (strcmp(name, "--plan") == 0)
      flag = &o->plan;
    else if (strcmp(name, "--json") == 0)
      flag = &o->json;
    else if (strcmp(name, "--predict") == 0)
      flag = &o->predict;
    else if (strcmp(name, "--no-check") == 0)
      flag = &o->check, flag_value = 0;
    if (flag) {
      if (val) return fail(err, errlen, "%s takes no value (got \"%.40s\")", name, val);
      *flag = flag_value;
      continue;
    }

    static const char *const valued[] = {"--m",     "--k",      "--n",    "--dtype", "--algo",         "--comm-turn",
                                         "--iters", "--warmup", "--peak", "--seed",  "--gather-index", "--counts",
                                         "--nb",    "--op"};
    int known = 0;
    for (size_t j = 0; j < sizeof valued / sizeof valued[0]; j++) known |= strcmp(name, valued[j]) == 0;
    if (!known) return fail(err, errlen, "unknown option \"%.40s\" (see --help)", name);
    if (!val) {
      if (i + 1 >= argc || !argv[i + 1]) return fail(err, errlen, "%s needs a value", name);
      val = argv[++i];
    }

    int st = BENCH_PARSE_OK;
    int64_t tmp[BENCH_MAX_VALUES];
    int cnt = 0;
    if (strcmp(name, "--m") == 0) {
      st = parse_list(name, val, K_INT, 1, BENCH_MAX_DIM, o->m, &o->nm, err, errlen);
    } else if (strcmp(name, "--k") == 0) {
      st = parse_list(name, val, K_INT, 1, BENCH_MAX_DIM, o->k, &o->nk, err, errlen);
    } else if (strcmp(name, "--n") == 0) {
      st = parse_list(name, val, K_INT, 1, BENCH_MAX_DIM, o->n, &o->nn, err, errlen);
    } else if (strcmp(name, "--dtype") == 0 || strcmp(name, "--algo") == 0 || strcmp(name, "--comm-turn") == 0) {
      int is_dt = strcmp(name, "--dtype") == 0, is_algo = strcmp(name, "--algo") == 0;
      st = parse_list(name, val, is_dt ? K_DTYPE : is_algo ? K_ALGO : K_INT, 0, 1 << 16, tmp, &cnt, err, errlen);
      if (st == BENCH_PARSE_OK) {
        int *dst = is_dt ? o->dtype : is_algo ? o->algo : o->comm_turn;
        for (int j = 0; j < cnt; j++) dst[j] = (int)tmp[j];
        *(is_dt ? &o->ndtype : is_algo ? &o->nalgo : &o->ncomm_turn) = cnt;
      }
    } else if (strcmp(name, "--iters") == 0 || strcmp(name, "--warmup") == 0) {
      int is_iters = strcmp(name, "--iters") == 0;
      int64_t v;
      if (!parse_int(val, is_iters ? 1 : 0, 1000000, &v))
        return fail(err, errlen, "%s: \"%.40s\" is not an integer in [%d, 1000000]", name, val, is_iters ? 1 : 0);
      *(is_iters ? &o->iters : &o->warmup) = (int)v;
    } else if (strcmp(name, "--counts") == 0) {
      st = parse_list(name, val, K_INT, 0, BENCH_MAX_DIM, o->counts, &o->ncounts, err, errlen);
    } else if (strcmp(name, "--gather-index") == 0 || strcmp(name, "--nb") == 0) {
      const int gi = strcmp(name, "--gather-index") == 0;
      int64_t v;
      if (!parse_int(val, gi ? 0 : 1, gi ? 1 : 16, &v))
        return fail(err, errlen, "%s: \"%.40s\" is not an integer in [%d, %d]", name, val, gi ? 0 : 1, gi ? 1 : 16);
      *(gi ? &o->gather_index : &o->nb) = (int)v;
    } else if (strcmp(name, "--op") == 0) {
      o->op = -1;
      for (int j = 0; j < 3; j++)
        if (strcmp(val, op_names[j]) == 0) o->op = j;
      if (o->op < 0)
        return fail(err, errlen, "--op: \"%.40s\" is not all_gather_matmul, matmul_reduce_scatter or matmul_all_reduce",
                    val);
    } else if (strcmp(name, "--seed") == 0) {
      int64_t v;
      if (!parse_int(val, 0, INT64_MAX, &v))
        return fail(err, errlen, "--seed: \"%.40s\" is not a non-negative integer", val);
      o->seed = (uint64_t)v;
    } else { /* --peak */
      char buf[32];
      char *end;
      double v = 0;
      int ok = take(buf, sizeof buf, val, strlen(val)) && buf[0] >= '0' && buf[0] <= '9';
      if (ok) {
        errno = 0;
        v = strtod(buf, &end);
        ok = !errno && !*end && isfinite(v) && v >= 0 && v <= 1e9;
      }
      if (!ok) return fail(err, errlen, "--peak: \"%.40s\" is not a number of GFLOP/s in [0, 1e9]", val);
      o->peak = v;
    }
    if (st != BENCH_PARSE_OK) return st;
  }

  if (o->ncounts && !o->nm) o->m[0] = 1, o->nm = 1; /* the counts give the extents */
  if (o->ncounts && !o->nk && o->gather_index) o->k[0] = 1, o->nk = 1;
  if (!o->nm) return fail(err, errlen, "missing --m (rows per rank; see --help)");
  if (!o->nk) return fail(err, errlen, "missing --k (see --help)");
  if (o->nb > 1 && o->gather_index) return fail(err, errlen, "--nb %d with --gather-index 1: not supported", o->nb);
  if (o->nb > 1 && o->ncounts) return fail(err, errlen, "--nb %d with --counts: not supported", o->nb);
  if (o->op != 0 && (o->gather_index || o->ncounts || o->nb > 1))
    return fail(err, errlen, "--op %s with --gather-index, --counts or --nb: not supported", op_names[o->op]);
  if (!o->nn) return fail(err, errlen, "missing --n (see --help)");
  double configs = (double)o->nm * o->nk * o->nn * o->ndtype * o->nalgo * o->ncomm_turn;
  if (configs > BENCH_MAX_CONFIGS)
    return fail(err, errlen, "%.0f configurations requested; at most %d", configs, BENCH_MAX_CONFIGS);
  return BENCH_PARSE_OK;
}
