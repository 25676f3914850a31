/* §30.7: which blocking oneDNN 2.6 sums bf16 in on this CPU: its one-shot setup against vdpbf16ps in k order in
 * KB-deep blocks (env KB), the block sums added with MODE 0-3 operand orders, with BIAS=1 and NAN=1 (commands.sh
 * `blocking`). Prints how many outputs differ. */
/* Does oneDNN's pinned bf16 kernel (one-shot, plain x2) equal in-order vdpbf16ps accumulation, bit for bit? */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/gemm/gemm.h"
#include "tpmm.h"
/* a + b with a as the first source: its NaN wins when both are NaN (the compiler may not swap them) */
__attribute__((target("avx512f"))) static inline __m512 add1(__m512 a, __m512 b) {
  __m512 r;
  __asm__("vaddps %2, %1, %0" : "=v"(r) : "v"(a), "v"(b));
  return r;
}
static uint16_t f2bf(float f) { uint32_t u; memcpy(&u, &f, 4); u += 0x7fff + ((u >> 16) & 1); return (uint16_t)(u >> 16); }
int main(int argc, char **argv) {
  tpmm_init(&argc, &argv);
  const int64_t K = argc > 1 ? atoll(argv[1]) : 4096, N = argc > 2 ? atoll(argv[2]) : 256, M = argc > 3 ? atoll(argv[3]) : 4;
  uint16_t *A = malloc(M * K * 2), *B = malloc(K * N * 2), *C = malloc(M * N * 2), *R = malloc(M * N * 2);
  srand(1);
  for (int64_t i = 0; i < M * K; i++) A[i] = f2bf((float)rand() / RAND_MAX * 2 - 1);
  for (int64_t i = 0; i < K * N; i++) B[i] = f2bf((float)rand() / RAND_MAX * 2 - 1);
  tpi_mat_t x2 = {(char *)B, K, N, N, 1};
  float *bias = malloc(N * 4);
  for (int64_t j = 0; j < N; j++) bias[j] = (float)rand() / RAND_MAX * 8 - 4;
  const int nan = getenv("NAN") != NULL, mode = getenv("MODE") ? atoi(getenv("MODE")) : 0;
  if (nan) { /* NaNs of distinct payloads in A, in two K blocks of row 0, and an Inf in B */
    A[5] = 0x7fc1; A[1500] = 0xffa3; A[2100] = 0x7f80; B[3 * N + 7] = 0xff80; A[3000] = 0x7fd7;
  }
  tpi_gemm_t *g = NULL;
  if (tpi_gemm_create_on(&g, &tpi_gemm_dnnl, &x2, getenv("BIAS") ? bias : NULL, M) != TPMM_SUCCESS) { printf("create: %s\n", tpmm_last_error()); return 1; }
  tpi_gemm_run(g, M, A, K, C, N);
  /* in-order vdpbf16ps: pairs (k, k+1), one accumulator per output */
  for (int64_t i = 0; i < M; i++)
    for (int64_t j0 = 0; j0 < N; j0 += 16) {
      __m512 acc = _mm512_setzero_ps(), blk = _mm512_setzero_ps();
      const int64_t KB = getenv("KB") ? atoll(getenv("KB")) : K;
      for (int64_t k = 0; k < K; k += 2) {
        if (k % KB == 0 && k) acc = mode >= 2 ? add1(blk, acc) : add1(acc, blk), blk = _mm512_setzero_ps();
        uint32_t ap = A[i * K + k] | (uint32_t)(k + 1 < K ? A[i * K + k + 1] : 0) << 16;
        __m512i a = _mm512_set1_epi32((int)ap);
        uint32_t bp[16];
        for (int j = 0; j < 16; j++) bp[j] = B[k * N + j0 + j] | (uint32_t)(k + 1 < K ? B[(k + 1) * N + j0 + j] : 0) << 16;
        blk = _mm512_dpbf16_ps(blk, (__m512bh)a, (__m512bh)_mm512_loadu_si512(bp));
      }
      const __m512 bb = getenv("BIAS") ? _mm512_loadu_ps(bias + j0) : _mm512_setzero_ps();
      __m512 r;
      if (mode == 0) r = add1(add1(acc, blk), bb);      /* (acc + blk) + bias */
      else if (mode == 1) r = add1(acc, add1(blk, bb)); /* acc + (blk + bias) */
      else if (mode == 2) r = add1(bb, add1(blk, acc)); /* operands swapped */
      else r = add1(add1(blk, acc), bb);
      if (!getenv("BIAS")) r = mode >= 2 ? add1(blk, acc) : add1(acc, blk);
      __m256bh o = _mm512_cvtneps_pbh(r);
      memcpy(R + i * N + j0, &o, 32);
    }
  int64_t diff = 0;
  for (int64_t i = 0; i < M * N; i++) diff += C[i] != R[i];
  if (getenv("SHOW")) for (int j = 0; j < 8; j++) printf("col %d: dnnl %04x mine %04x\n", j, C[j], R[j]);
  printf("K=%lld N=%lld M=%lld: %lld of %lld outputs differ; backend %s\n", (long long)K, (long long)N, (long long)M, (long long)diff, (long long)(M * N), g->be->name);
  tpmm_finalize();
  return 0;
}
