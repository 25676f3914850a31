/* Development probe of one gemm_bf16r.c setup: best of reps calls (SPLIT=1: in calls of 8 rows), x2 at row stride ld.
 * Usage: kb M K N reps [ld]. Built as commands.sh builds gemm_bf16r.c. */
#include <stdio.h>
#include <stdlib.h>
#include "src/common/common.h"
#include "src/gemm/gemm.h"
#include "tpmm.h"
int main(int argc, char **argv) {
  tpmm_init(&argc, &argv);
  const int64_t M = atoll(argv[1]), K = atoll(argv[2]), N = atoll(argv[3]); int reps = atoi(argv[4]); int64_t ld = argc > 5 ? atoll(argv[5]) : N;
  uint16_t *A = calloc(M * K, 2), *B = malloc(K * ld * 2), *C = calloc(M * N, 2);
  for (int64_t i = 0; i < K * ld; i++) B[i] = 0x3c00 + (i % 97);
  for (int64_t i = 0; i < M * K; i++) A[i] = 0x3c00 + (i % 89);
  tpi_mat_t x2 = {(char *)B, K, N, ld, 1};
  tpi_gemm_t *g = 0;
  tpi_gemm_create_on(&g, &tpi_gemm_bf16r, &x2, NULL, M);
  double best = 1e9;
  for (int r = 0; r < reps; r++) { double t0 = tpi_now(); if (getenv("SPLIT")) { for (int64_t r0 = 0; r0 < M; r0 += 8) tpi_gemm_run(g, M - r0 < 8 ? M - r0 : 8, A + r0 * K, K, C + r0 * N, N); } else tpi_gemm_run(g, M, A, K, C, N); double t = tpi_now() - t0; if (t < best) best = t; }
  printf("%.3f ms %.1f GMAC/s\n", best * 1e3, M * K * N / best / 1e9);
  tpmm_finalize();
}
