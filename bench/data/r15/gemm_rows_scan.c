/* One rank: tpi_gemm_run_f32 (fp32 result, as the reduce rings call it) and tpi_gemm_run at M = lo..hi
 * rows, x2 (k x n, bf16) packed; best of three after one warm run. See commands.sh "scan". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "tpmm.h"
#include "src/gemm/gemm.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
  int64_t K = atol(argv[1]), N = atol(argv[2]), lo = atol(argv[3]), hi = atol(argv[4]), step = argc > 5 ? atol(argv[5]) : 1;
  int pack = argc > 6 ? atoi(argv[6]) : 1;
  tpmm_init(NULL, NULL);
  uint16_t *x2 = calloc(K * N, 2), *A = calloc(hi * K, 2); float *C = calloc(hi * N, 4);
  for (int64_t i = 0; i < K * N; i++) x2[i] = 0x3f80;
  for (int64_t i = 0; i < hi * K; i++) A[i] = 0x3f80;
  tpi_mat_t b = {(char *)x2, K, N, N, 1};
  tpi_gemm_t *g;
  if (tpi_gemm_create(&g, TPMM_BFLOAT16, &b, NULL, TPMM_BFLOAT16, 64, pack ? 1 << 20 : 1)) { printf("create failed\n"); return 1; }
  for (int64_t M = lo; M <= hi; M += step) {
    double best = 1e9;
    for (int r = 0; r < 4; r++) { double t = now(); tpi_gemm_run_f32(g, M, A, K, C, N, 0); t = now() - t; if (r && t < best) best = t; }
    double best2 = 1e9;
    for (int r = 0; r < 4; r++) { double t = now(); tpi_gemm_run(g, M, A, K, C, N); t = now() - t; if (r && t < best2) best2 = t; }
    printf("M=%3ld f32 %6.3f ms (%5.1f us/row)  bf16 %6.3f ms\n", (long)M, best * 1e3, best * 1e6 / M, best2 * 1e3);
  }
  tpmm_finalize();
}
