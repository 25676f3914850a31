/*
 * reduce_transport_accuracy.c — what the reduce operators' choice of fp32 partials buys (issue 14: "measure
 * both"): for W ranks' partial products of random N(0,1) inputs rounded to the dtype (x2 scaled by
 * 1/sqrt(k)), the output with partials that travel as fp32 (summed in fp32 in rank order, rounded once:
 * what tpmm does) against partials rounded to the input dtype before they travel (then the same sum and
 * rounding). Errors against fp64, relative to the mean |reference|. Serial, no MPI; the time side of the
 * trade-off is tpmm-bench's t_comm_ms / t_comm16_ms.
 *
 *   build/tools/reduce_transport_accuracy
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/common/half.h"
static unsigned long long s = 88172645463325252ull;
static double nrm(void) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  double u = ((s >> 11) + 0.5) * 0x1p-53;
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  double v = ((s >> 11) + 0.5) * 0x1p-53;
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}
static float rnd(int bf, float x) {
  return bf ? tpi_bf16_to_f32(tpi_f32_to_bf16(x)) : tpi_f16_to_f32(tpi_f32_to_f16(x));
}
int main(void) {
  const int m = 32, k = 4096, n = 128;
  for (int bf = 1; bf >= 0; bf--)
    for (int W = 2; W <= 8; W *= 2) {
      float *A = malloc(sizeof(float) * W * m * k), *B = malloc(sizeof(float) * W * k * n);
      for (long i = 0; i < (long)W * m * k; i++) A[i] = rnd(bf, (float)nrm());
      for (long i = 0; i < (long)W * k * n; i++) B[i] = rnd(bf, (float)(nrm() / sqrt(k)));
      double e32 = 0, elo = 0, mx32 = 0, mxlo = 0, mag = 0;
      long diff = 0;
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
          float s32 = 0, slo = 0;
          double ref = 0;
          for (int q = 0; q < W; q++) {
            float p = 0;
            double pd = 0;
            for (int t = 0; t < k; t++) {
              p += A[((long)q * m + i) * k + t] * B[((long)q * k + t) * n + j];
              pd += (double)A[((long)q * m + i) * k + t] * B[((long)q * k + t) * n + j];
            }
            s32 = q ? s32 + p : p;
            slo = q ? slo + rnd(bf, p) : rnd(bf, p);
            ref += pd;
          }
          float o32 = rnd(bf, s32), olo = rnd(bf, slo);
          e32 += fabs(o32 - ref);
          elo += fabs(olo - ref);
          mag += fabs(ref);
          mx32 = fmax(mx32, fabs(o32 - ref));
          mxlo = fmax(mxlo, fabs(olo - ref));
          diff += o32 != olo;
        }
      mag /= m * n;
      printf(
          "%s W=%d: |error| / mean|ref|: fp32 transport mean %.2e max %.2e; %s transport mean %.2e max %.2e (x%.2f "
          "mean); outputs that differ %.0f %%\n",
          bf ? "bf16" : "fp16", W, e32 / (m * n) / mag, mx32 / mag, bf ? "bf16" : "fp16", elo / (m * n) / mag,
          mxlo / mag, elo / e32, 100.0 * diff / (m * n));
      free(A), free(B);
    }
  return 0;
}
