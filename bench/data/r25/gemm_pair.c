/* One rank, one thread: tpmm's GEMM as a one-shot call runs it (x2 in place, setup made and freed per call) and
 * as a plan runs it (packed), beside a oneDNN fp32 matmul primitive made once; medians of `it` calls.
 * Build (commands.sh gemm): gcc -O2 -fopenmp -Isrc -Iinclude bench/data/r25/gemm_pair.c build-mpich/libtpmm.a
 *   -ldnnl -lm $(mpicc.mpich -show | sed 's/^gcc//')
 * Run: OMP_NUM_THREADS=1 ./gemm_pair M K N [it] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dnnl.h>
#include "gemm/gemm.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  int64_t M=atoi(argv[1]),K=atoi(argv[2]),N=atoi(argv[3]); int it=argc>4?atoi(argv[4]):15;
  float*A=malloc(M*K*4),*B=malloc(K*N*4),*C=malloc(M*N*4),*C2=malloc(M*N*4);
  for(int64_t i=0;i<M*K;i++)A[i]=(rand()%100)/50.f-1; for(int64_t i=0;i<K*N;i++)B[i]=(rand()%100)/50.f-1;
  dnnl_engine_t eng; dnnl_engine_create(&eng,dnnl_cpu,0); dnnl_stream_t s; dnnl_stream_create(&s,eng,0);
  dnnl_memory_desc_t ad,bd,cd; dnnl_dims_t da={M,K},db={K,N},dc={M,N};
  dnnl_memory_desc_init_by_tag(&ad,2,da,dnnl_f32,dnnl_ab);dnnl_memory_desc_init_by_tag(&bd,2,db,dnnl_f32,dnnl_ab);dnnl_memory_desc_init_by_tag(&cd,2,dc,dnnl_f32,dnnl_ab);
  dnnl_matmul_desc_t md; dnnl_matmul_desc_init(&md,&ad,&bd,NULL,&cd); dnnl_primitive_desc_t pd; dnnl_primitive_desc_create(&pd,&md,NULL,eng,NULL);
  dnnl_primitive_t p; dnnl_primitive_create(&p,pd);
  dnnl_memory_t ma,mbm,mc; dnnl_memory_create(&ma,&ad,eng,A);dnnl_memory_create(&mbm,&bd,eng,B);dnnl_memory_create(&mc,&cd,eng,C2);
  dnnl_exec_arg_t args[3]={{DNNL_ARG_SRC,ma},{DNNL_ARG_WEIGHTS,mbm},{DNNL_ARG_DST,mc}};
  tpi_mat_t x2={(char*)B,K,N,N,1};
  double td[64],tt[64],tp[64]; tpi_gemm_t*gp; tpi_gemm_create(&gp,TPMM_FLOAT32,&x2,NULL,TPMM_FLOAT32,M,M,INT64_MAX);
  for(int r=0;r<it;r++){
    double t0=now(); dnnl_primitive_execute(p,s,3,args); dnnl_stream_wait(s); td[r]=now()-t0;
    t0=now(); tpi_gemm_t*g; tpi_gemm_create(&g,TPMM_FLOAT32,&x2,NULL,TPMM_FLOAT32,M,M,1); tpi_gemm_run(g,M,A,K,C,N); tpi_gemm_destroy(g); tt[r]=now()-t0; t0=now(); tpi_gemm_run(gp,M,A,K,C,N); tp[r]=now()-t0;
  }
  qsort(td,it,8,cmp);qsort(tt,it,8,cmp);qsort(tp,it,8,cmp);
  double md2=0; for(int64_t i=0;i<M*N;i++){double d=C[i]-C2[i]; if(d<0)d=-d; if(d>md2)md2=d;}
  printf("%ldx%ldx%ld dnnl %.2f ms tpmm %.2f ms ratio %.3f packed %.2f maxdiff %g\n",M,K,N,td[it/2]*1e3,tt[it/2]*1e3,tt[it/2]/td[it/2],tp[it/2]*1e3,md2);
}
