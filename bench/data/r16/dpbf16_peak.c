/* The rate of VDPBF16PS on one vCPU: 16 independent accumulators, register operands. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
__attribute__((target("avx512f,avx512bf16"))) int main(){
  __m512 a[16]; for(int i=0;i<16;i++)a[i]=_mm512_setzero_ps();
  __m512i x=_mm512_set1_epi16(0x3f80), y=_mm512_set1_epi16(0x3f00);
  struct timespec t0,t1; clock_gettime(CLOCK_MONOTONIC,&t0);
  long n=50000000;
  for(long i=0;i<n;i++){
#pragma GCC unroll 16
    for(int j=0;j<16;j++) a[j]=_mm512_dpbf16_ps(a[j],(__m512bh)x,(__m512bh)y);
    __asm__ volatile(""::"v"(x));
  }
  clock_gettime(CLOCK_MONOTONIC,&t1);
  double s=(t1.tv_sec-t0.tv_sec)+(t1.tv_nsec-t0.tv_nsec)*1e-9;
  float r=0; for(int i=0;i<16;i++) r+=a[i][0];
  printf("%.2f G dp/s (%g)\n", n*16/s*1e-9, r);
}
