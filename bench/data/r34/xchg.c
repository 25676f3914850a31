/* exchange primitives at W=2 (any W): bytes B fp32 partials (M rows x n) — MPI_Allreduce, MPI_Reduce_scatter_block,
 * Alltoallv(blocks)+Allgatherv(bf16 half), Isend/Irecv pairs; median of iters, slowest rank, interleaved */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static double med(double *v, int n){ for(int i=0;i<n;i++)for(int j=i+1;j<n;j++) if(v[j]<v[i]){double t=v[i];v[i]=v[j];v[j]=t;} return v[n/2]; }
int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int W, r; MPI_Comm_size(MPI_COMM_WORLD, &W); MPI_Comm_rank(MPI_COMM_WORLD, &r);
  long M = atol(argv[1]), n = atol(argv[2]); int iters = atoi(argv[3]);
  long cnt = M * n, blk = cnt / W;
  float *part = calloc(cnt, 4), *red = calloc(cnt, 4), *recv = calloc(cnt, 4); short *g = calloc(cnt, 2);
  int sc[64], sd[64], rc[64], rd[64], gc[64], gd[64];
  for (int q = 0; q < W; q++) { sc[q] = q == r ? 0 : blk; sd[q] = q * blk; rc[q] = q == r ? 0 : blk; rd[q] = q * blk; gc[q] = blk; gd[q] = q * blk; }
  enum { K = 5 }; const char *name[K] = {"Allreduce f32", "Reduce_scatter_block f32", "Alltoallv f32 + Allgatherv bf16", "Alltoallv f32", "Isend/Irecv f32 + bf16"};
  double *t = calloc(K * iters, 8), *tm = calloc(K * iters, 8);
  for (int it = -2; it < iters; it++)
    for (int j = 0; j < K; j++) {
      int w = (j + (it < 0 ? 0 : it)) % K;
      MPI_Barrier(MPI_COMM_WORLD); double s = MPI_Wtime();
      switch (w) {
        case 0: MPI_Allreduce(part, red, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); break;
        case 1: MPI_Reduce_scatter_block(part, red, blk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); break;
        case 2: MPI_Alltoallv(part, sc, sd, MPI_FLOAT, recv, rc, rd, MPI_FLOAT, MPI_COMM_WORLD);
                MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, g, gc, gd, MPI_SHORT, MPI_COMM_WORLD); break;
        case 3: MPI_Alltoallv(part, sc, sd, MPI_FLOAT, recv, rc, rd, MPI_FLOAT, MPI_COMM_WORLD); break;
        case 4: { MPI_Request rq[128]; int k = 0;
          for (int q = 0; q < W; q++) if (q != r) { MPI_Irecv(recv + q * blk, blk, MPI_FLOAT, q, 1, MPI_COMM_WORLD, &rq[k++]); MPI_Isend(part + q * blk, blk, MPI_FLOAT, q, 1, MPI_COMM_WORLD, &rq[k++]); }
          MPI_Waitall(k, rq, MPI_STATUSES_IGNORE); k = 0;
          for (int q = 0; q < W; q++) if (q != r) { MPI_Irecv(g + q * blk, blk, MPI_SHORT, q, 2, MPI_COMM_WORLD, &rq[k++]); MPI_Isend(g + r * blk, blk, MPI_SHORT, q, 2, MPI_COMM_WORLD, &rq[k++]); }
          MPI_Waitall(k, rq, MPI_STATUSES_IGNORE); } break;
      }
      if (it >= 0) t[w * iters + it] = MPI_Wtime() - s;
    }
  MPI_Reduce(t, tm, K * iters, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (!r) for (int j = 0; j < K; j++) printf("M=%ld n=%ld W=%d %-32s %.3f ms\n", M, n, W, name[j], med(tm + j * iters, iters) * 1e3);
  MPI_Finalize();
}
