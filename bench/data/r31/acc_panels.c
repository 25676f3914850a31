/* bench/data/r31/acc_panels.c M N T [P]: gather_index 1 accumulating panel GEMMs alone (x2g.c panels(): T panels of P (default 512; P: since §36)
 * x2 rows, m rows, n columns, A strided), one rank, the median and min of 15 timed runs. Build against a tree:
 *   gcc -O2 -Isrc -Iinclude bench/data/r31/acc_panels.c build-mpich/libtpmm.a -lmpich -ldnnl -lgomp -lm -lpthread */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gemm/gemm.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  int64_t m=atoll(argv[1]), n=atoll(argv[2]), T=atoll(argv[3]), P=argc>4?atoll(argv[4]):512, K=T*P;
  uint16_t *A=malloc(m*K*2), *B=malloc(K*n*2); float *C=malloc(m*n*4);
  srand(1); for(int64_t i=0;i<m*K;i++)A[i]=0x3f80+(rand()%64); for(int64_t i=0;i<K*n;i++)B[i]=0x3f00+(rand()%64);
  tpi_gemm_t *pg[64];
  for(int t=0;t<T;t++){tpi_mat_t b={(char*)(B+t*P*n),P,n,n,1}; if(tpi_gemm_create(&pg[t],TPMM_BFLOAT16,&b,NULL,TPMM_BFLOAT16,m,m,INT64_MAX)) return 1;}
  double ts[15];
  for(int rep=0;rep<17;rep++){
    double t0=now(); for(int t=0;t<T;t++) tpi_gemm_run_f32(pg[t],m,A+t*P,K,C,n,t>0);
    if(rep>=2) ts[rep-2]=now()-t0;
  }
  qsort(ts,15,sizeof*ts,cmp);
  printf("m %ld n %ld T %ld P %ld: median %.2f min %.2f ms\n",(long)m,(long)n,(long)T,(long)P,ts[7]*1e3,ts[0]*1e3);
  return 0;
}
