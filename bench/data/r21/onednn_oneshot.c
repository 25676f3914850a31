#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){dnnl_engine_t eng; dnnl_stream_t st; dnnl_engine_create(&eng,dnnl_cpu,0); dnnl_stream_create(&st,eng,dnnl_stream_default_flags);
 int64_t Ms[]={2,8,32}; int64_t K=4096,N=4096;
 float*A=calloc(64*K,4),*B=malloc(K*N*4),*C=calloc(64*N,4); for(int64_t i=0;i<K*N;i++)B[i]=(i%7)*0.1f; for(int i=0;i<64*K;i++)A[i]=(i%5)*0.1f;
 for(int mi=0;mi<3;mi++){int64_t M=Ms[mi];
  dnnl_memory_desc_t a,b,c; dnnl_dims_t da={M,K},db={K,N},dc={M,N};
  dnnl_memory_desc_init_by_tag(&a,2,da,dnnl_f32,dnnl_ab);dnnl_memory_desc_init_by_tag(&b,2,db,dnnl_f32,dnnl_ab);dnnl_memory_desc_init_by_tag(&c,2,dc,dnnl_f32,dnnl_ab);
  dnnl_matmul_desc_t d; dnnl_matmul_desc_init(&d,&a,&b,NULL,&c); dnnl_primitive_desc_t pd; dnnl_primitive_desc_create(&pd,&d,NULL,eng,NULL);
  dnnl_primitive_t p; dnnl_primitive_create(&p,pd); dnnl_memory_t ma,mb,mc; dnnl_memory_create(&ma,&a,eng,A);dnnl_memory_create(&mb,&b,eng,B);dnnl_memory_create(&mc,&c,eng,C);
  dnnl_exec_arg_t args[3]={{DNNL_ARG_SRC,ma},{DNNL_ARG_WEIGHTS,mb},{DNNL_ARG_DST,mc}};
  double best=1e9, tt[9]; for(int it=0;it<9;it++){double t0=now(); dnnl_primitive_execute(p,st,3,args); dnnl_stream_wait(st); tt[it]=now()-t0;}
  for(int i=0;i<9;i++)for(int j=i+1;j<9;j++)if(tt[j]<tt[i]){double x=tt[i];tt[i]=tt[j];tt[j]=x;}
  printf("oneDNN fp32 plain B M=%ld K=4096 N=4096: median %.2f ms\n",M,tt[4]*1e3); (void)best;}
}
