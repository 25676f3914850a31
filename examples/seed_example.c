/*
 * seed_example.c — MindSpore's all_gather_matmul example, in C with tpmm.
 *
 *   mpirun -n 2 ./seed_example
 *
 * Each rank draws input (128, 256) and x2 (256, 512) in float16 from its own
 * seed (the rank), runs all_gather_matmul on the world group, and prints the
 * shapes of output and gather_out with the largest relative error against an
 * fp64 reference (which regenerates the peers' inputs from their seeds).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpi.h>

#include "tpmm.h"

/* float <-> IEEE half, round-to-nearest-even, enough for this example. */
static uint16_t to_half(float f) {
  union { float f; uint32_t u; } v = {f};
  uint32_t a = v.u & 0x7fffffffu, sign = (v.u >> 16) & 0x8000u;
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
  if (a < 0x38800000u) return (uint16_t)(sign | (uint32_t)nearbyintf(fabsf(f) * 16777216.0f));
  a -= 0x38000000u;
  a += 0xfffu + ((a >> 13) & 1u);
  return (uint16_t)(sign | (a >> 13));
}
static double from_half(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
  return (h & 0x8000) ? -v : v;
}

/* The seed's np.random.seed(rank); randn(): a seeded normal generator. */
static uint64_t state;
static double randn(void) {
  double u[2];
  for (int i = 0; i < 2; i++) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    u[i] = ((double)(state >> 11) + 0.5) * 0x1p-53;
  }
  return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}
static void draw(int rank, uint16_t *input, int64_t ni, uint16_t *x2, int64_t nx) {
  state = 0x9e3779b97f4a7c15ull * (uint64_t)(rank + 1);
  for (int64_t i = 0; i < ni; i++) input[i] = to_half((float)randn());
  for (int64_t i = 0; i < nx; i++) x2[i] = to_half((float)randn());
}

int main(int argc, char **argv) {
  enum { M = 128, K = 256, N = 512 };
  if (tpmm_init(&argc, &argv) != TPMM_SUCCESS) {
    fprintf(stderr, "tpmm_init: %s\n", tpmm_last_error());
    return 1;
  }
  const char *group = TPMM_WORLD_COMM_GROUP;
  int rank, world_size;
  tpmm_get_rank(group, &rank);
  tpmm_get_group_size(group, &world_size);

  uint16_t *in = malloc(sizeof(uint16_t) * M * K), *x2 = malloc(sizeof(uint16_t) * K * N);
  uint16_t *out = malloc(sizeof(uint16_t) * M * world_size * N);
  uint16_t *gout = malloc(sizeof(uint16_t) * M * world_size * K);
  draw(rank, in, M * K, x2, K * N);

  tpmm_tensor_t t_in = {in, TPMM_FLOAT16, 2, {M, K}, 0};
  tpmm_tensor_t t_x2 = {x2, TPMM_FLOAT16, 2, {K, N}, 0};
  tpmm_tensor_t t_out = {out, TPMM_FLOAT16, 2, {(int64_t)M * world_size, N}, 0};
  tpmm_tensor_t t_gout = {gout, TPMM_FLOAT16, 2, {(int64_t)M * world_size, K}, 0};
  tpmm_all_gather_matmul_opts_t opts = TPMM_ALL_GATHER_MATMUL_OPTS_INIT; /* bias None, gather_index 0, ... */
  tpmm_status_t st = tpmm_all_gather_matmul(&t_in, &t_x2, group, world_size, &opts, &t_out, &t_gout);
  if (st != TPMM_SUCCESS) {
    fprintf(stderr, "rank %d: all_gather_matmul: %s: %s\n", rank, tpmm_status_string(st), tpmm_last_error());
    tpmm_finalize();
    return 1;
  }

  /* fp64 reference: regenerate every rank's input from its seed; x2 is ours */
  uint16_t *peer = malloc(sizeof(uint16_t) * M * K), *px2 = malloc(sizeof(uint16_t) * K * N);
  double max_rel = 0.0;
  int gather_exact = 1;
  for (int r = 0; r < world_size; r++) {
    draw(r, peer, M * K, px2, K * N);
    for (int i = 0; i < M; i++) {
      for (int k = 0; k < K; k++) gather_exact &= gout[((int64_t)r * M + i) * K + k] == peer[i * K + k];
      for (int j = 0; j < N; j++) {
        double ref = 0.0, mag = 0.0;
        for (int k = 0; k < K; k++) {
          double p = from_half(peer[i * K + k]) * from_half(x2[k * N + j]);
          ref += p;
          mag += fabs(p);
        }
        double err = fabs(from_half(out[((int64_t)r * M + i) * N + j]) - ref) / (mag > 0 ? mag : 1.0);
        if (err > max_rel) max_rel = err;
      }
    }
  }
  /* combine the checks of all ranks (plain MPI: tpmm does not hide MPI) */
  double worst;
  int all_exact;
  MPI_Allreduce(&max_rel, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(&gather_exact, &all_exact, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("output.shape = (%d, %d)\n", M * world_size, N);
    printf("gather_out.shape = (%d, %d)\n", M * world_size, K);
    printf("max error vs fp64 reference (|out - ref| / sum|a*b|, all ranks) = %.3g\n", worst);
    printf("gather_out bit-exact on all ranks: %s\n", all_exact ? "yes" : "NO");
  }
  int ok = all_exact && worst < 1e-3;
  free(in), free(x2), free(out), free(gout), free(peer), free(px2);
  tpmm_finalize();
  return ok ? 0 : 1;
}
