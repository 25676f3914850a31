/* AMX peak on this machine: TDPBF16PS into four accumulators, no loads (gcc -O2 peak.c; run one and two at once). */
#include <immintrin.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef struct { uint8_t palette, start; uint8_t r[14]; uint16_t colsb[16]; uint8_t rows[16]; } __attribute__((packed)) cfg_t;
__attribute__((target("amx-tile,amx-bf16"))) int main(){
  syscall(SYS_arch_prctl, 0x1023, 18);
  cfg_t c; memset(&c,0,sizeof c); c.palette=1;
  for(int i=0;i<8;i++){c.colsb[i]=64;c.rows[i]=16;}
  _tile_loadconfig(&c);
  static char buf[8][1024] __attribute__((aligned(64)));
  memset(buf,0,sizeof buf);
  _tile_loadd(4,buf[4],64);_tile_loadd(5,buf[5],64);_tile_loadd(6,buf[6],64);_tile_loadd(7,buf[7],64);
  _tile_zero(0);_tile_zero(1);_tile_zero(2);_tile_zero(3);
  long N=20000000; double t0=now();
  for(long i=0;i<N;i++){
    _tile_dpbf16ps(0,4,6);_tile_dpbf16ps(1,4,7);_tile_dpbf16ps(2,5,6);_tile_dpbf16ps(3,5,7);
  }
  double t=now()-t0;
  printf("TDP/s %.3g  GFLOP/s %.1f\n", 4.0*N/t, 4.0*N*16*16*32*2/t/1e9);
  _tile_release();
}
