/* position experiment: plans A (unfused) and B (argv algo), pattern A A B repeated; per-call slowest-rank time */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tpmm.h"
static double med(double *v, int n){ for(int i=0;i<n;i++)for(int j=i+1;j<n;j++) if(v[j]<v[i]){double t=v[i];v[i]=v[j];v[j]=t;} return n%2?v[n/2]:(v[n/2-1]+v[n/2])/2; }
int main(int argc,char**argv){
  tpmm_init(&argc,&argv);
  int W,r; MPI_Comm_size(MPI_COMM_WORLD,&W); MPI_Comm_rank(MPI_COMM_WORLD,&r);
  int all=atoi(argv[1]); int64_t m=atoll(argv[2]), k=4096, n=atoll(argv[3]); int algoB=atoi(argv[4]); int bar=atoi(argv[5]); int reps=atoi(argv[6]);
  int64_t M=m*W, rows= all? M : m;
  uint16_t *in=malloc(M*k*2), *x2=malloc(k*n*2), *out=malloc(rows*n*2);
  srand(r+1); for(int64_t i=0;i<M*k;i++) in[i]=0x3f80+(rand()&63); for(int64_t i=0;i<k*n;i++) x2[i]=0x3c00+(rand()&63);
  tpmm_tensor_t ti={in,TPMM_BFLOAT16,2,{M,k},0}, tx={x2,TPMM_BFLOAT16,2,{k,n},0}, to={out,TPMM_BFLOAT16,2,{rows,n},0};
  tpmm_matmul_reduce_opts_t o=TPMM_MATMUL_REDUCE_OPTS_INIT; tpmm_plan_t *P[2];
  for(int c=0;c<2;c++){ tpmm_set_param(TPMM_PARAM_ALGO, c?algoB:TPMM_ALGO_UNFUSED);
    tpmm_status_t st= all? tpmm_matmul_all_reduce_plan_create(&ti,&tx,TPMM_WORLD_COMM_GROUP,W,&o,&to,&P[c]) : tpmm_matmul_reduce_scatter_plan_create(&ti,&tx,TPMM_WORLD_COMM_GROUP,W,&o,&to,&P[c]);
    if(st){ if(!r) fprintf(stderr,"%s\n",tpmm_last_error()); MPI_Abort(MPI_COMM_WORLD,1);} }
  for(int i=0;i<4;i++){ tpmm_plan_execute(P[0],&ti,&to,NULL); tpmm_plan_execute(P[1],&ti,&to,NULL);} 
  int P_=atoi(argv[7]); int N=reps*3; double *t=calloc(N,8), *tm=calloc(N,8);
  for(int i=0;i<N;i++){ int c= P_==2 ? (i%2)==1 : (i%3)==2; if(bar) MPI_Barrier(MPI_COMM_WORLD); double s=MPI_Wtime(); tpmm_plan_execute(P[c],&ti,&to,NULL); t[i]=MPI_Wtime()-s; }
  MPI_Allreduce(t,tm,N,MPI_DOUBLE,MPI_MAX,MPI_COMM_WORLD);
  if(!r){ double a1[reps],a2[reps],bb[reps],ra[reps],rb[reps],rc[reps]; int na=0;
    if(P_==2) for(int j=0;j<reps;j++){ a1[j]=tm[2*j]; a2[j]=tm[2*j]; bb[j]=tm[2*j+1]; ra[j]=bb[j]/a1[j]; rb[j]=bb[j]/tm[2*j+2]; rc[j]=1; na++; } else for(int j=0;j<reps;j++){ a1[j]=tm[3*j]; a2[j]=tm[3*j+1]; bb[j]=tm[3*j+2]; ra[j]=bb[j]/a2[j]; rb[j]= j+1<reps? bb[j]/tm[3*j+3]:ra[j]; rc[j]=a2[j]/a1[j]; na++; }
    printf("all=%d m=%lld n=%lld B=%d barrier=%d: A1 %.3f A2 %.3f B %.3f ms | B/Abefore %.3f B/Aafter %.3f A2/A1 %.3f\n",all,(long long)m,(long long)n,algoB,bar,
      med(a1,reps)*1e3,med(a2,reps)*1e3,med(bb,reps)*1e3,med(ra,reps),med(rb,reps),med(rc,reps)); }
  tpmm_plan_destroy(P[0]); tpmm_plan_destroy(P[1]); tpmm_finalize(); MPI_Finalize(); }
