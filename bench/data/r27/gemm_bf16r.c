/* One rank's bf16 GEMM at decode rows: oneDNN with x2 as stored (a one-shot call before gemm_bf16r.c), tpmm's
 * gemm_bf16r.c, oneDNN with x2 packed (a plan); best of 15 runs each, interleaved; whether the three outputs
 * are equal bit for bit. commands.sh `kernel`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/common/common.h"
#include "src/gemm/gemm.h"
#include "tpmm.h"
int main(int argc, char **argv) {
  tpmm_init(&argc, &argv);
  const int64_t M = atoll(argv[1]), K = atoll(argv[2]), N = atoll(argv[3]);
  uint16_t *A = calloc(M * K, 2), *B = malloc(K * N * 2), *C[3] = {calloc(M * N, 2), calloc(M * N, 2), calloc(M * N, 2)};
  for (int64_t i = 0; i < K * N; i++) B[i] = 0x3c00 + (i % 97);
  for (int64_t i = 0; i < M * K; i++) A[i] = 0x3c00 + (i % 89);
  tpi_mat_t x2 = {(char *)B, K, N, N, 1};
  tpi_gemm_t *g[3] = {0};
  tpi_gemm_create_on(&g[0], &tpi_gemm_dnnl, &x2, NULL, M);
  tpi_gemm_create_on(&g[1], &tpi_gemm_bf16r, &x2, NULL, M);
  tpi_gemm_create(&g[2], TPMM_BFLOAT16, &x2, NULL, TPMM_FLOAT32, M, M, INT64_MAX); /* plan: oneDNN packed */
  const char *nm[3] = {"dnnl plain", "bf16r", "dnnl packed"};
  double best[3] = {1e9, 1e9, 1e9};
  for (int rep = 0; rep < 15; rep++)
    for (int v = 0; v < 3; v++) {
      double t0 = tpi_now();
      tpi_gemm_run(g[v], M, A, K, C[v], N);
      double t = tpi_now() - t0;
      if (t < best[v]) best[v] = t;
    }
  for (int v = 0; v < 3; v++) printf("%dx%dx%d %s (%s): %.3f ms\n", (int)M, (int)K, (int)N, nm[v], g[v]->be->name, best[v] * 1e3);
  printf("%dx%dx%d bits equal: %s\n", (int)M, (int)K, (int)N,
         !memcmp(C[0], C[1], M * N * 2) && !memcmp(C[0], C[2], M * N * 2) ? "yes" : "NO");
  tpmm_finalize();
  return 0;
}
