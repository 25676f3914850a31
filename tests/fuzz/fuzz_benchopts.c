/*
 * fuzz_benchopts.c — libFuzzer harness over tpmm-bench's option parser,
 * tpmm_bench_parse() (tools/benchopts.c).
 *
 * The fuzz bytes are split at NUL bytes into argv[1..] (at most 64
 * arguments; argv[0] = "tpmm-bench"); the first byte picks the length of
 * the error buffer (0..255, so that truncation and errlen == 0 are covered).
 * Each argument is copied to its own exact-size heap block so that
 * AddressSanitizer sees any read past its end, and argv is checked to be
 * unchanged afterwards (the parser promises never to modify it).
 *
 * Properties checked besides crashes:
 *   - the return value is OK, HELP or ERROR; ERROR leaves a NUL-terminated
 *     non-empty message in err (when errlen > 1), OK and HELP leave err "";
 *   - on OK every list is non-empty and within its bounds (m, k, n in
 *     [1, BENCH_MAX_DIM], dtype 1..3, algo 0..4, comm_turn >= 0), iters >= 1,
 *     warmup >= 0, peak finite, and the configuration count is at most
 *     BENCH_MAX_CONFIGS.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchopts.h"

#define MAX_ARGS 64

#define REQUIRE(cond)                                                                      \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "fuzz_benchopts: property failed: %s (line %d)\n", #cond, __LINE__); \
      abort();                                                                             \
    }                                                                                      \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  size_t errlen = data[0];
  data++, size--;
  char *argv[MAX_ARGS + 2], *copy[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = "tpmm-bench";
  size_t start = 0;
  for (size_t i = 0; i <= size && argc <= MAX_ARGS; i++) {
    if (i == size || data[i] == 0) {
      size_t len = i - start;
      char *a = malloc(len + 1);
      memcpy(a, data + start, len);
      a[len] = '\0';
      argv[argc++] = a;
      start = i + 1;
    }
  }
  argv[argc] = NULL;
  for (int i = 1; i < argc; i++) copy[i] = strdup(argv[i]);

  char *err = errlen ? malloc(errlen) : NULL;
  if (err) memset(err, 'x', errlen);
  struct bench_opts o;
  int rc = tpmm_bench_parse(argc, argv, &o, err, errlen);
  REQUIRE(rc == BENCH_PARSE_OK || rc == BENCH_PARSE_HELP || rc == BENCH_PARSE_ERROR);
  if (errlen) {
    REQUIRE(memchr(err, '\0', errlen) != NULL);
    if (rc == BENCH_PARSE_ERROR && errlen > 1) REQUIRE(err[0] != '\0');
    if (rc != BENCH_PARSE_ERROR) REQUIRE(err[0] == '\0');
  }
  if (rc == BENCH_PARSE_OK) {
    REQUIRE(o.nm >= 1 && o.nm <= BENCH_MAX_VALUES && o.nk >= 1 && o.nk <= BENCH_MAX_VALUES);
    REQUIRE(o.nn >= 1 && o.nn <= BENCH_MAX_VALUES && o.ndtype >= 1 && o.ndtype <= BENCH_MAX_VALUES);
    REQUIRE(o.nalgo >= 1 && o.nalgo <= BENCH_MAX_VALUES && o.ncomm_turn >= 1 && o.ncomm_turn <= BENCH_MAX_VALUES);
    for (int i = 0; i < o.nm; i++) REQUIRE(o.m[i] >= 1 && o.m[i] <= BENCH_MAX_DIM);
    for (int i = 0; i < o.nk; i++) REQUIRE(o.k[i] >= 1 && o.k[i] <= BENCH_MAX_DIM);
    for (int i = 0; i < o.nn; i++) REQUIRE(o.n[i] >= 1 && o.n[i] <= BENCH_MAX_DIM);
    for (int i = 0; i < o.ndtype; i++) REQUIRE(o.dtype[i] >= 1 && o.dtype[i] <= 3);
    for (int i = 0; i < o.nalgo; i++) REQUIRE(o.algo[i] >= 0 && o.algo[i] <= 5);
    REQUIRE(o.nb >= 1 && o.nb <= 16 && (o.gather_index == 0 || o.gather_index == 1));
    REQUIRE(o.ncounts >= 0 && o.ncounts <= BENCH_MAX_VALUES && !(o.nb > 1 && (o.ncounts || o.gather_index)));
    for (int i = 0; i < o.ncounts; i++) REQUIRE(o.counts[i] >= 0 && o.counts[i] <= BENCH_MAX_DIM);
    for (int i = 0; i < o.ncomm_turn; i++) REQUIRE(o.comm_turn[i] >= 0);
    REQUIRE(o.iters >= 1 && o.warmup >= 0 && isfinite(o.peak));
    REQUIRE((double)o.nm * o.nk * o.nn * o.ndtype * o.nalgo * o.ncomm_turn <= BENCH_MAX_CONFIGS);
    REQUIRE(strcmp(tpmm_bench_dtype_name(o.dtype[0]), "?") != 0 && strcmp(tpmm_bench_algo_name(o.algo[0]), "?") != 0);
  }
  for (int i = 1; i < argc; i++) {
    REQUIRE(strcmp(copy[i], argv[i]) == 0); /* argv untouched */
    free(copy[i]);
    free(argv[i]);
  }
  free(err);
  return 0;
}
