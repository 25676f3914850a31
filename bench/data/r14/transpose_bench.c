/* Transposed copy (tpi_copy_dense, rs == 1) against row copies; see commands.sh "micro". */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
void tpi_copy_dense(void *dst, const void *src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, size_t es);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int c, char**v){ int64_t K=atoi(v[1]), N=atoi(v[2]);
 uint16_t *s=malloc(K*N*2), *d=malloc(K*N*2); for(int64_t i=0;i<K*N;i++) s[i]=i, d[i]=0;
 for(int r=0;r<3;r++){ double t=now(); for(int it=0;it<10;it++) tpi_copy_dense(d,s,K,N,1,K,2); double tt=(now()-t)/10;
 double t2=now(); for(int it=0;it<10;it++) tpi_copy_dense(d,s,K,N,K*0+N,1,2); double t3=(now()-t2)/10;
 printf("K=%ld N=%ld transpose %.3f ms (%.1f GB/s)  memcpy-rows %.3f ms\n",K,N,tt*1e3,K*N*4/tt/1e9,t3*1e3);} }
