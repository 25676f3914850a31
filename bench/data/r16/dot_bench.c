/* One rank, bf16, the GEMM layer alone: x2 (K x N) stored row major (trans 0) or transposed
 * (trans 1); "oneshot": a cached setup rebound to x2 and run on R rows, as a one-shot call does;
 * "plan": a setup made once (x2 packed or copied), then run. Median of 9. Built and run by
 * commands.sh (micro section) against a build's libtpmm.a:  dot_bench K N trans oneshot|plan */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "src/gemm/gemm.h"
#include "tpmm.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec*1e-6;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  int64_t K=atoll(argv[1]),N=atoll(argv[2]); int trans=atoi(argv[3]); const char*mode=argv[4]; /* oneshot|plan */
  uint16_t *x2=malloc(K*N*2),*a=malloc(64*K*2),*c=malloc(64*N*2);
  for(int64_t i=0;i<K*N;i++)x2[i]=0x3f80+(rand()&0x3f);
  for(int64_t i=0;i<64*K;i++)a[i]=0x3f80+(rand()&0x3f);
  tpi_mat_t b = trans ? (tpi_mat_t){(char*)x2,K,N,1,K} : (tpi_mat_t){(char*)x2,K,N,N,1};
  int Rs[]={1,2,4,8,16,32};
  for(int ri=0;ri<6;ri++){int R=Rs[ri]; double t[9];
    tpi_gemm_t*g=NULL; int plan=!strcmp(mode,"plan");
#ifdef NO_CALL_ROWS /* the tree before call_rows */
    if(tpi_gemm_create(&g,TPMM_BFLOAT16,&b,NULL,TPMM_BFLOAT16,R,plan?INT64_MAX:R))
#else
    if(tpi_gemm_create(&g,TPMM_BFLOAT16,&b,NULL,TPMM_BFLOAT16,R,R,plan?INT64_MAX:R))
#endif
      {printf("fail %s\n",tpmm_last_error());return 1;}
    for(int it=0;it<9;it++){double t0=now(); if(!plan) tpi_gemm_rebind(g,&b,NULL,TPMM_BFLOAT16); tpi_gemm_run(g,R,a,K,c,N); t[it]=now()-t0;}
    qsort(t,9,sizeof*t,cmp); printf("K=%lld N=%lld trans=%d %s R=%2d be=%s %.2f ms\n",(long long)K,(long long)N,trans,mode,R,g->be->name,t[4]);
    tpi_gemm_destroy(g);}
  return 0;}
