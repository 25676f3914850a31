/* bench/data/r32/gemm_rows.c K N M... (DT=fp32 for fp32): one rank's packed bf16 GEMM (a plan's setup) on M rows in one call against
 * the same rows in calls of 256 and of 512 (S1, S2 in the environment), alternated; the median of 9 timed runs each, ms, and rows per ms.
 * Run one copy alone, or two at once (mpirun -n 2: two ranks' GEMMs on two vCPUs). Build against a tree:
 *   gcc -O2 -Isrc -Iinclude bench/data/r32/gemm_rows.c build-mpich/libtpmm.a -lmpich -ldnnl -lgomp -lm -lpthread */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gemm/gemm.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
  const int f32 = getenv("DT") && !strcmp(getenv("DT"), "fp32");
  const size_t es = f32 ? 4 : 2;
  int64_t K = atoll(argv[1]), N = atoll(argv[2]), Mmax = 0;
  for (int i = 3; i < argc; i++) if (atoll(argv[i]) > Mmax) Mmax = atoll(argv[i]);
  char *A = malloc(Mmax * K * es), *B = malloc(K * N * es), *C = malloc(Mmax * N * es);
  srand(1);
  for (int64_t i = 0; i < Mmax * K; i++) if (f32) ((float *)A)[i] = rand() % 64 / 64.f; else ((uint16_t *)A)[i] = 0x3f80 + (rand() % 64);
  for (int64_t i = 0; i < K * N; i++) if (f32) ((float *)B)[i] = rand() % 64 / 64.f; else ((uint16_t *)B)[i] = 0x3f00 + (rand() % 64);
  tpi_mat_t b = {(char *)B, K, N, N, 1};
  tpi_gemm_t *g;
  if (tpi_gemm_create(&g, f32 ? TPMM_FLOAT32 : TPMM_BFLOAT16, &b, NULL, TPMM_BFLOAT16, Mmax, Mmax, INT64_MAX)) return 1;
  for (int i = 3; i < argc; i++) {
    int64_t M = atoll(argv[i]), steps[3] = {M, getenv("S1") ? atoll(getenv("S1")) : 256, getenv("S2") ? atoll(getenv("S2")) : 512};
    double ts[3][11];
    for (int rep = 0; rep < 11; rep++)
      for (int s = 0; s < 3; s++) {
        double t0 = now();
        for (int64_t r = 0; r < M; r += steps[s])
          tpi_gemm_run(g, M - r < steps[s] ? M - r : steps[s], A + r * K * es, K, C + r * N * es, N);
        ts[s][rep] = now() - t0;
      }
    printf("K %ld N %ld M %5ld:", (long)K, (long)N, (long)M);
    for (int s = 0; s < 3; s++) {
      qsort(ts[s] + 2, 9, sizeof(double), cmp);
      printf("  by %4ld %7.2f ms (%5.2f rows/ms)", (long)steps[s], ts[s][6] * 1e3, M / (ts[s][6] * 1e3));
    }
    printf("\n");
    fflush(stdout);
  }
  return 0;
}
