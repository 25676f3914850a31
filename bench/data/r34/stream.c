/* steady-stream cost: blocks of R back-to-back calls of plan A (unfused) and B (argv algo), barrier around each block */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include "tpmm.h"
static double med(double *v, int n){ for(int i=0;i<n;i++)for(int j=i+1;j<n;j++) if(v[j]<v[i]){double t=v[i];v[i]=v[j];v[j]=t;} return n%2?v[n/2]:(v[n/2-1]+v[n/2])/2; }
int main(int argc,char**argv){
  tpmm_init(&argc,&argv);
  int W,r; MPI_Comm_size(MPI_COMM_WORLD,&W); MPI_Comm_rank(MPI_COMM_WORLD,&r);
  int all=atoi(argv[1]); int64_t m=atoll(argv[2]), k=4096, n=atoll(argv[3]); int algoB=atoi(argv[4]); int R=atoi(argv[5]); int blocks=atoi(argv[6]);
  int64_t M=m*W, rows= all? M : m;
  uint16_t *in=malloc(M*k*2), *x2=malloc(k*n*2), *out=malloc(rows*n*2);
  srand(r+1); for(int64_t i=0;i<M*k;i++) in[i]=0x3f80+(rand()&63); for(int64_t i=0;i<k*n;i++) x2[i]=0x3c00+(rand()&63);
  tpmm_tensor_t ti={in,TPMM_BFLOAT16,2,{M,k},0}, tx={x2,TPMM_BFLOAT16,2,{k,n},0}, to={out,TPMM_BFLOAT16,2,{rows,n},0};
  tpmm_matmul_reduce_opts_t o=TPMM_MATMUL_REDUCE_OPTS_INIT; tpmm_plan_t *P[2];
  for(int c=0;c<2;c++){ tpmm_set_param(TPMM_PARAM_ALGO, c?algoB:TPMM_ALGO_UNFUSED);
    tpmm_status_t st= all? tpmm_matmul_all_reduce_plan_create(&ti,&tx,TPMM_WORLD_COMM_GROUP,W,&o,&to,&P[c]) : tpmm_matmul_reduce_scatter_plan_create(&ti,&tx,TPMM_WORLD_COMM_GROUP,W,&o,&to,&P[c]);
    if(st){ if(!r) fprintf(stderr,"%s\n",tpmm_last_error()); MPI_Abort(MPI_COMM_WORLD,1);} }
  for(int i=0;i<4;i++){ tpmm_plan_execute(P[0],&ti,&to,NULL); tpmm_plan_execute(P[1],&ti,&to,NULL);}
  double ta[blocks], tb[blocks], ra[blocks];
  for(int b=0;b<blocks;b++) for(int c=0;c<2;c++){ MPI_Barrier(MPI_COMM_WORLD); double s=MPI_Wtime(); for(int i=0;i<R;i++) tpmm_plan_execute(P[c],&ti,&to,NULL); MPI_Barrier(MPI_COMM_WORLD); double e=(MPI_Wtime()-s)/R; if(c) tb[b]=e; else ta[b]=e; }
  for(int b=0;b<blocks;b++) ra[b]=tb[b]/ta[b];
  if(!r) printf("stream all=%d m=%lld n=%lld B=%d R=%d: A %.3f B %.3f ms/call, B/A %.3f\n",all,(long long)m,(long long)n,algoB,R,med(ta,blocks)*1e3,med(tb,blocks)*1e3,med(ra,blocks));
  tpmm_plan_destroy(P[0]); tpmm_plan_destroy(P[1]); tpmm_finalize(); }
