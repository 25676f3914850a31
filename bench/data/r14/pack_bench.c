/* tpmm's bf16 packer against oneDNN's reorder into the same layout, and memcpy; see commands.sh "micro". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <oneapi/dnnl/dnnl.h>
int tpi_dn_pack(const dnnl_memory_desc_t *md, const void *src, int64_t k, int64_t n, void *dst);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){ int64_t k=atol(argv[1]), n=atol(argv[2]);
  dnnl_engine_t e; dnnl_engine_create(&e, dnnl_cpu, 0); dnnl_stream_t st; dnnl_stream_create(&st,e,dnnl_stream_default_flags);
  dnnl_memory_desc_t a,b,c; dnnl_dims_t ad={64,k}, bd={k,n}, cd={64,n};
  dnnl_memory_desc_init_by_tag(&a,2,ad,dnnl_bf16,dnnl_ab); dnnl_memory_desc_init_by_tag(&b,2,bd,dnnl_bf16,dnnl_format_tag_any); dnnl_memory_desc_init_by_tag(&c,2,cd,dnnl_bf16,dnnl_ab);
  dnnl_matmul_desc_t md; dnnl_matmul_desc_init(&md,&a,&b,NULL,&c); dnnl_primitive_desc_t pd; dnnl_primitive_desc_create(&pd,&md,NULL,e,NULL);
  const dnnl_memory_desc_t *w = dnnl_primitive_desc_query_md(pd,dnnl_query_weights_md,0);
  size_t bytes = dnnl_memory_desc_get_size(w);
  unsigned short *src = malloc(k*n*2); char *dst = malloc(bytes); memset(src,1,k*n*2); memset(dst,0,bytes);
  for(int r=0;r<3;r++){ double t=now(); int ok=tpi_dn_pack(w,src,k,n,dst); double t1=now()-t;
    dnnl_memory_desc_t fmd; dnnl_memory_desc_init_by_tag(&fmd,2,bd,dnnl_bf16,dnnl_ab);
    dnnl_primitive_desc_t rpd; dnnl_reorder_primitive_desc_create(&rpd,&fmd,e,w,e,NULL); dnnl_primitive_t rp; dnnl_primitive_create(&rp,rpd);
    dnnl_memory_t mf,mt; dnnl_memory_create(&mf,&fmd,e,src); dnnl_memory_create(&mt,w,e,dst);
    dnnl_exec_arg_t args[2]={{DNNL_ARG_FROM,mf},{DNNL_ARG_TO,mt}};
    double t2=now(); dnnl_primitive_execute(rp,st,2,args); dnnl_stream_wait(st); double t3=now()-t2;
    double t4=now(); memcpy(dst, src, k*n*2); double t5=now()-t4;
    printf("k=%ld n=%ld ok=%d pack %.2f ms  onednn reorder %.2f ms  memcpy %.2f ms\n",k,n,ok,t1*1e3,t3*1e3,t5*1e3);}
}
