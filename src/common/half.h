/*
 * half.h — float16 / bfloat16 <-> float32 conversions. Scalar versions are
 * exact software implementations (round-to-nearest-even, NaN kept quiet, inf
 * and subnormals handled); bulk versions use F16C / AVX-512 when the CPU has
 * them and give the same bits as the scalar ones.
 */
#ifndef TPMM_HALF_H
#define TPMM_HALF_H

#include <stddef.h>
#include <stdint.h>

/* Whether the bulk paths run on AVX-512 (F, BW, VL), from cpuid once; also
 * what other vector kernels of the library dispatch on. */
int tpi_have_avx512(void);

float tpi_bf16_to_f32(uint16_t h);
uint16_t tpi_f32_to_bf16(float f);
float tpi_f16_to_f32(uint16_t h);
uint16_t tpi_f32_to_f16(float f);

void tpi_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void tpi_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);
void tpi_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void tpi_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n);
/* dst[i] = bf16(src[i] + add[i]) (the sum in fp32, one rounding); add may be NULL */
void tpi_f32_add_to_bf16_n(const float *src, const float *add, uint16_t *dst, size_t n);

#endif
