/* AMX with tile loads: the 2x2 block of gemm_amx.c (two A tiles, two B tiles, four C tiles) streaming A and B over `span` bytes each: L1, L2 and memory (gcc -O2 peak_loads.c; ./peak_loads SPAN). */
#include <immintrin.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef struct { uint8_t palette, start; uint8_t r[14]; uint16_t colsb[16]; uint8_t rows[16]; } __attribute__((packed)) cfg_t;
__attribute__((target("amx-tile,amx-bf16"))) int main(int argc,char**argv){
  syscall(SYS_arch_prctl, 0x1023, 18);
  cfg_t c; memset(&c,0,sizeof c); c.palette=1;
  for(int i=0;i<8;i++){c.colsb[i]=64;c.rows[i]=16;}
  _tile_loadconfig(&c);
  long span = atol(argv[1]); /* bytes of A and B streamed, each */
  char *A = aligned_alloc(64, span), *B = aligned_alloc(64, span);
  memset(A,0,span); memset(B,0,span);
  _tile_zero(0);_tile_zero(1);_tile_zero(2);_tile_zero(3);
  long N=4000000; double t0=now(); long off=0;
  for(long i=0;i<N;i++){
    _tile_loadd(4,A+off,64);_tile_loadd(7,A+off+1024,64);
    _tile_loadd(5,B+off,64);
    _tile_dpbf16ps(0,4,5);_tile_dpbf16ps(2,7,5);
    _tile_loadd(6,B+off+1024,64);
    _tile_dpbf16ps(1,4,6);_tile_dpbf16ps(3,7,6);
    off += 2048; if (off >= span) off = 0;
  }
  double t=now()-t0;
  printf("span %ld: GFLOP/s %.1f\n", span, 4.0*N*16*16*32*2/t/1e9);
  _tile_release();
}
