/* One rank, bf16, the GEMM layer alone (src/gemm/gemm.h): x2 (K x N) stored row-major (trans 0) or
 * transposed (trans 1), `off` bytes past a 64-byte boundary; for each R in the list, "oneshot": a setup
 * rebound to x2 and run on R rows, as a one-shot call does; "plan": a setup made once (x2 copied or
 * packed), then run. Prints the best and the median of `iters` runs and the backend. Built and run by
 * commands.sh (micro) against a build's libtpmm.a:
 *   gemm_bench K N trans oneshot|plan off iters R1,R2,...                                          */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/gemm/gemm.h"
#include "tpmm.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}
static int cmp(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 8) return fprintf(stderr, "usage: gemm_bench K N trans oneshot|plan off iters R1,R2,...\n"), 2;
  const int64_t K = atoll(argv[1]), N = atoll(argv[2]);
  const int trans = atoi(argv[3]), plan = !strcmp(argv[4], "plan"), off = atoi(argv[5]), iters = atoi(argv[6]);
  int64_t rmax = 64; /* rows of A and C: 64, or the largest R asked (r18's commands.sh runs up to 2048) */
  for (const char *s = argv[7]; *s; s++)
    if ((s == argv[7] || s[-1] == ',') && atoll(s) > rmax) rmax = atoll(s);
  char *raw = aligned_alloc(64, (size_t)(K * N * 2 + 128));
  uint16_t *x2 = (uint16_t *)(raw + off), *a = malloc((size_t)(rmax * K * 2)), *c = malloc((size_t)(rmax * N * 2));
  for (int64_t i = 0; i < K * N; i++) x2[i] = (uint16_t)(0x3f80 + (rand() & 0x3f));
  for (int64_t i = 0; i < rmax * K; i++) a[i] = (uint16_t)(0x3f80 + (rand() & 0x3f));
  const tpi_mat_t b = trans ? (tpi_mat_t){(char *)x2, K, N, 1, K} : (tpi_mat_t){(char *)x2, K, N, N, 1};
  double *t = malloc(sizeof *t * (size_t)iters);
  for (char *s = strtok(argv[7], ","); s; s = strtok(NULL, ",")) {
    const int64_t R = atoll(s);
    tpi_gemm_t *g = NULL;
    if (tpi_gemm_create(&g, TPMM_BFLOAT16, &b, NULL, TPMM_BFLOAT16, R, R, plan ? INT64_MAX : R) != TPMM_SUCCESS)
      return printf("create failed: %s\n", tpmm_last_error()), 1;
    for (int it = 0; it < iters; it++) {
      const double t0 = now_ms();
      if (!plan) tpi_gemm_rebind(g, &b, NULL, TPMM_BFLOAT16);
      tpi_gemm_run(g, R, a, K, c, N);
      t[it] = now_ms() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp);
    printf("K=%lld N=%lld trans=%d %s off=%d R=%lld be=%s best %.3f median %.3f ms\n", (long long)K, (long long)N,
           trans, argv[4], off, (long long)R, g->be->name, t[0], t[iters / 2]);
    tpi_gemm_destroy(g);
  }
  return 0;
}
