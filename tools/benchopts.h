/*
 * benchopts.h — the command line of tpmm-bench, parsed by one pure function.
 *
 * tpmm_bench_parse() touches nothing but its arguments: no MPI, no I/O, no
 * allocation, no exit. Every rank of an MPI job parses the same argv the same
 * way, so every rank takes the same branch (run / help / error) and nobody is
 * left waiting in a collective. It is also the entry point of a libFuzzer
 * harness, which is why it must accept any argc/argv without crashing.
 *
 * Numeric options accept a comma-separated list ("--m 1,64,512"); the tool
 * runs the cartesian product of all lists, one configuration at a time.
 */
#ifndef TPMM_BENCHOPTS_H
#define TPMM_BENCHOPTS_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_VALUES 64     /* longest list per option */
#define BENCH_MAX_DIM (1 << 20) /* largest m, k or n */
#define BENCH_MAX_CONFIGS 100000

/* Return values of tpmm_bench_parse; also the tool's exit codes. */
enum { BENCH_PARSE_OK = 0, BENCH_PARSE_HELP = 1, BENCH_PARSE_ERROR = 2 };

/* Algorithm values are tpmm_algo_t's (0 auto, 1 unfused, 2 ring,
 * 3 bidir_ring, 4 shm_pull, 5 hier); dtypes are tpmm_dtype_t's (1 fp16, 2 bf16,
 * 3 fp32). Plain ints keep this header free of tpmm.h for the fuzzer. */
struct bench_opts {
  int64_t m[BENCH_MAX_VALUES]; /* rows per rank */
  int nm;
  int64_t k[BENCH_MAX_VALUES];
  int nk;
  int64_t n[BENCH_MAX_VALUES];
  int nn;
  int dtype[BENCH_MAX_VALUES];
  int ndtype;
  int algo[BENCH_MAX_VALUES];
  int nalgo;
  int comm_turn[BENCH_MAX_VALUES]; /* 0 = automatic */
  int ncomm_turn;
  int plan;    /* --plan: plan_create once, plan_execute per iteration */
  int iters;   /* timed iterations per measurement */
  int warmup;  /* untimed iterations first */
  int json;    /* one JSON object per configuration on stdout */
  int predict; /* --predict: the cost model's T_seq, T_fused and pick next to each point */
  int check;   /* compare fused output with the unfused algorithm */
  double peak; /* GFLOP/s; < 0: measure it; 0: do not report % of peak */
  uint64_t seed;
  /* issue 15 (tools/bench_ext.c): gather x2 instead of input, uneven shards,
   * several weights per gather */
  int gather_index;                 /* 0 or 1 */
  int64_t counts[BENCH_MAX_VALUES]; /* --counts: one shard extent per rank */
  int ncounts;                      /* 0: even shards (m, or k with --gather-index 1) */
  int nb;                           /* --nb: weights of n columns each (default 1) */
  int op;                           /* --op: 0 all_gather_matmul, 1 matmul_reduce_scatter, 2 matmul_all_reduce */
};

/* Parse argv[1..argc-1] into *o (defaults first). Returns BENCH_PARSE_OK,
 * BENCH_PARSE_HELP (--help / -h), or BENCH_PARSE_ERROR with a one-line
 * message in err naming the option and value (err may be NULL or errlen 0).
 * argv may be NULL when argc <= 0. */
int tpmm_bench_parse(int argc, char **argv, struct bench_opts *o, char *err, size_t errlen);

/* Names for printing; "?" outside the range. */
const char *tpmm_bench_dtype_name(int dtype);
const char *tpmm_bench_op_name(int op);
const char *tpmm_bench_algo_name(int algo);

/* The --help text. */
extern const char tpmm_bench_usage[];

#endif
