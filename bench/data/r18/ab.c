/* Two builds of libtpmm.so in one process, called in turns: the A/B that the machine's GEMM speed
 * (two modes about 2x apart, switching every few seconds) allows. Each iteration runs A's call and B's
 * call back to back after a barrier, the order alternating; a call's time is the slowest rank's.
 * Prints per row count the median and best of each and the median of the per-iteration ratios B / A.
 *   mpirun -n W ab libA.so libB.so K N trans oneshot|plan iters R1,R2,...
 * all_gather_matmul, bf16, m = R rows per rank (W*R gathered), x2 (K, N) or (N, K) with trans 1, no
 * bias, gather_output false. Built by commands.sh (ab). */
#include <dlfcn.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpmm.h"

typedef struct {
  tpmm_status_t (*init)(int *, char ***);
  tpmm_status_t (*finalize)(void);
  tpmm_status_t (*agmm)(const tpmm_tensor_t *, const tpmm_tensor_t *, const char *, int,
                        const tpmm_all_gather_matmul_opts_t *, tpmm_tensor_t *, tpmm_tensor_t *);
  tpmm_status_t (*create)(const tpmm_tensor_t *, const tpmm_tensor_t *, const char *, int,
                          const tpmm_all_gather_matmul_opts_t *, const tpmm_tensor_t *, const tpmm_tensor_t *,
                          tpmm_plan_t **);
  tpmm_status_t (*execute)(tpmm_plan_t *, const tpmm_tensor_t *, tpmm_tensor_t *, tpmm_tensor_t *);
  void (*destroy)(tpmm_plan_t *);
  const char *(*last_error)(void);
} lib_t;

static void load(const char *path, lib_t *l) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) fprintf(stderr, "ab: %s\n", dlerror()), exit(2);
  *(void **)&l->init = dlsym(h, "tpmm_init");
  *(void **)&l->finalize = dlsym(h, "tpmm_finalize");
  *(void **)&l->agmm = dlsym(h, "tpmm_all_gather_matmul");
  *(void **)&l->create = dlsym(h, "tpmm_all_gather_matmul_plan_create");
  *(void **)&l->execute = dlsym(h, "tpmm_plan_execute");
  *(void **)&l->destroy = dlsym(h, "tpmm_plan_destroy");
  *(void **)&l->last_error = dlsym(h, "tpmm_last_error");
  if (!l->init || !l->agmm || !l->create || !l->execute) fprintf(stderr, "ab: %s: symbols missing\n", path), exit(2);
}

static int cmp(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return v[n / 2];
}

int main(int argc, char **argv) {
  if (argc < 8) return fprintf(stderr, "usage: ab libA.so libB.so K N trans oneshot|plan iters R1,R2,...\n"), 2;
  int provided, rank, W;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  lib_t lib[2];
  load(argv[1], &lib[0]);
  load(argv[2], &lib[1]);
  for (int v = 0; v < 2; v++)
    if (lib[v].init(NULL, NULL) != TPMM_SUCCESS) fprintf(stderr, "ab: init %d failed\n", v), exit(2);
  const int64_t K = atoll(argv[3]), N = atoll(argv[4]);
  const int trans = atoi(argv[5]), plan = !strcmp(argv[6], "plan"), iters = atoi(argv[7]);
  uint16_t *x2 = malloc((size_t)(K * N) * 2);
  srand(1 + rank);
  for (int64_t i = 0; i < K * N; i++) x2[i] = (uint16_t)(0x3c00 + (rand() & 0x3ff)); /* bf16 in [2^-7, 2^-6) */
  tpmm_tensor_t tx = {x2, TPMM_BFLOAT16, 2, {trans ? N : K, trans ? K : N}, 0};
  tpmm_all_gather_matmul_opts_t opts = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  opts.gather_output = false, opts.trans_x2 = trans;
  for (char *s = strtok(argv[8], ","); s; s = strtok(NULL, ",")) {
    const int64_t R = atoll(s);
    uint16_t *a = malloc((size_t)(R * K) * 2), *c = malloc((size_t)(W * R * N) * 2);
    for (int64_t i = 0; i < R * K; i++) a[i] = (uint16_t)(0x3c00 + (rand() & 0x3ff));
    tpmm_tensor_t ti = {a, TPMM_BFLOAT16, 2, {R, K}, 0}, to = {c, TPMM_BFLOAT16, 2, {W * R, N}, 0};
    tpmm_plan_t *p[2] = {NULL, NULL};
    double *t[2] = {malloc(sizeof(double) * iters), malloc(sizeof(double) * iters)};
    double *ratio = malloc(sizeof(double) * iters);
    for (int v = 0; v < 2; v++)
      if (plan && lib[v].create(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, &opts, &to, NULL, &p[v]) != TPMM_SUCCESS)
        fprintf(stderr, "ab: plan %d: %s\n", v, lib[v].last_error()), exit(2);
    for (int it = -3; it < iters; it++)
      for (int j = 0; j < 2; j++) {
        const int v = (it + j) & 1; /* A first on even iterations */
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = MPI_Wtime();
        tpmm_status_t st = plan ? lib[v].execute(p[v], &ti, &to, NULL)
                                : lib[v].agmm(&ti, &tx, TPMM_WORLD_COMM_GROUP, W, &opts, &to, NULL);
        double dt = MPI_Wtime() - t0;
        if (st != TPMM_SUCCESS) fprintf(stderr, "ab: call %d: %s\n", v, lib[v].last_error()), exit(2);
        MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (it >= 0) t[v][it] = dt * 1e3;
      }
    for (int it = 0; it < iters; it++) ratio[it] = t[1][it] / t[0][it];
    double best[2];
    for (int v = 0; v < 2; v++) {
      best[v] = t[v][0];
      for (int it = 1; it < iters; it++) best[v] = t[v][it] < best[v] ? t[v][it] : best[v];
    }
    const double mr = median(ratio, iters), m0 = median(t[0], iters), m1 = median(t[1], iters);
    if (rank == 0)
      printf("W=%d K=%lld N=%lld trans=%d %s R=%lld A median %.3f best %.3f B median %.3f best %.3f B/A median %.3f\n",
             W, (long long)K, (long long)N, trans, plan ? "plan" : "oneshot", (long long)R, m0, best[0], m1, best[1], mr);
    fflush(stdout);
    for (int v = 0; v < 2; v++)
      if (p[v]) lib[v].destroy(p[v]);
    free(a), free(c), free(t[0]), free(t[1]), free(ratio);
  }
  for (int v = 0; v < 2; v++) lib[v].finalize();
  MPI_Finalize();
  return 0;
}
