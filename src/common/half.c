/*
 * half.c — float16 / bfloat16 conversions (see half.h).
 *
 * The bulk fp16 paths are the hot ones: the fp16 GEMM converts every A chunk
 * and every C tile through them (this CPU has F16C but no fp16 arithmetic).
 * So is bf16 rounding: the sliced bf16 GEMM and every reduce round each
 * output element through it. Chosen once at run time from cpuid: AVX-512
 * (F16C for fp16), then scalar; both give the scalar functions' bits.
 */
#include "half.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

static inline uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static inline float u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float tpi_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t tpi_f32_to_bf16(float f) {
  uint32_t u = f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even; overflows to inf correctly */
  return (uint16_t)(u >> 16);
}

float tpi_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return u2f(sign | 0x7f800000u | (man << 13)); /* inf / NaN */
  if (exp == 0) {
    if (man == 0) return u2f(sign);
    /* subnormal: value = man * 2^-24, exact in fp32 */
    float v = (float)man * 0x1p-24f;
    return sign ? -v : v;
  }
  return u2f(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t tpi_f32_to_f16(float f) {
  uint32_t u = f2u(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* quiet NaN */
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                       /* rounds to >= 65520: inf */
  if (a < 0x38800000u) {
    /* result is subnormal or zero: scale so the fp16 subnormal unit is 1.0,
     * then let the FPU's round-to-nearest-even do the rounding. */
    float v = u2f(a) * 0x1p24f;
    uint32_t r = (uint32_t)__builtin_roundevenf(v); /* 0..1024; 1024 = smallest normal */
    return (uint16_t)(sign | r);
  }
  /* normal: rebias the exponent and round the mantissa from 23 to 10 bits */
  uint32_t r = a - 0x38000000u; /* exp - 112 */
  r += 0xfffu + ((r >> 13) & 1u);
  return (uint16_t)(sign | (r >> 13));
}

#ifdef HAVE_X86
__attribute__((target("avx512f,avx512bw,avx512vl,f16c"))) static void f16_to_f32_avx512(const uint16_t *src, float *dst,
                                                                                        size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    __m256i h = _mm256_maskz_loadu_epi16(m, src + i);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(h));
  }
}
__attribute__((target("avx512f,avx512bw,avx512vl,f16c"))) static void f32_to_f16_avx512(const float *src, uint16_t *dst,
                                                                                        size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i *)(dst + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    __m512 v = _mm512_maskz_loadu_ps(m, src + i);
    _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}
/* tpi_f32_to_bf16 sixteen at a time, the same integer steps: NaN quieted,
 * else round to nearest even on the raw bits; add (if any) first, in fp32 */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static __m256i bf16x16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(r);
}
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void f32_to_bf16_avx512(const float *src, const float *add,
                                                                                    uint16_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(src + i);
    if (add) v = _mm512_add_ps(v, _mm512_loadu_ps(add + i));
    _mm256_storeu_si256((__m256i *)(dst + i), bf16x16(v));
  }
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    __m512 v = _mm512_maskz_loadu_ps(m, src + i);
    if (add) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, add + i));
    _mm256_mask_storeu_epi16(dst + i, m, bf16x16(v));
  }
}
#endif

int tpi_have_avx512(void) {
#ifdef HAVE_X86
  static int v = -1; /* threads may race to set it, to the same value: atomics keep that defined */
  int r = __atomic_load_n(&v, __ATOMIC_RELAXED);
  if (r < 0) {
    __builtin_cpu_init();
    r = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    __atomic_store_n(&v, r, __ATOMIC_RELAXED);
  }
  return r;
#else
  return 0;
#endif
}

void tpi_f16_to_f32_n(const uint16_t *src, float *dst, size_t n) {
#ifdef HAVE_X86
  if (tpi_have_avx512()) {
    f16_to_f32_avx512(src, dst, n);
    return;
  }
#endif
  for (size_t i = 0; i < n; i++) dst[i] = tpi_f16_to_f32(src[i]);
}

void tpi_f32_to_f16_n(const float *src, uint16_t *dst, size_t n) {
#ifdef HAVE_X86
  if (tpi_have_avx512()) {
    f32_to_f16_avx512(src, dst, n);
    return;
  }
#endif
  for (size_t i = 0; i < n; i++) dst[i] = tpi_f32_to_f16(src[i]);
}

void tpi_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = tpi_bf16_to_f32(src[i]);
}

void tpi_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n) { tpi_f32_add_to_bf16_n(src, NULL, dst, n); }

void tpi_f32_add_to_bf16_n(const float *src, const float *add, uint16_t *dst, size_t n) {
#ifdef HAVE_X86
  if (tpi_have_avx512()) {
    f32_to_bf16_avx512(src, add, dst, n);
    return;
  }
#endif
  for (size_t i = 0; i < n; i++) dst[i] = tpi_f32_to_bf16(add ? src[i] + add[i] : src[i]);
}
