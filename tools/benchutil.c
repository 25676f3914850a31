/*
 * benchutil.c — the helpers the measuring programs share (benchutil.h):
 * tpmm-bench (and its reduce part, bench_reduce.c) and decode_bench.
 */
#include "benchutil.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/common/half.h"
#include "tpmm.h"

uint64_t rng_state;
static double rnd(void) { /* splitmix64 -> uniform [-1, 1) */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1p-52 - 1.0;
}

void fill(void *p, int dt, size_t count) {
  for (size_t i = 0; i < count; i++) {
    float v = (float)rnd();
    if (dt == TPMM_FLOAT32)
      ((float *)p)[i] = v;
    else if (dt == TPMM_BFLOAT16)
      ((uint16_t *)p)[i] = tpi_f32_to_bf16(v);
    else
      ((uint16_t *)p)[i] = tpi_f32_to_f16(v);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The median of num[i] / den[i]: the ratio of two times measured in the same
 * iteration, robust to the machine changing speed between iterations. NAN if
 * no den[i] is positive. */
double median_ratio(const double *num, const double *den, int n) {
  double *r = xmalloc(sizeof(double) * (size_t)n);
  int k = 0;
  for (int i = 0; i < n; i++)
    if (den[i] > 0 && isfinite(num[i])) r[k++] = num[i] / den[i];
  const double v = k ? median(r, k) : NAN;
  free(r);
  return v;
}

/* The efficiency of each iteration from its own four times, then the median:
 * where the machine's GEMM speed moves between iterations, the medians of
 * the four times taken apart can come from different speeds (a T_GEMM of
 * the slow mode beside a T_fused of the fast one gives E above 1). NAN if
 * no iteration has a positive min(comm, gemm). */
double median_efficiency(const double *seq, const double *fused, const double *comm, const double *gemm, int n) {
  double *e = xmalloc(sizeof(double) * (size_t)n);
  int k = 0;
  for (int i = 0; i < n; i++) {
    const double lo = comm[i] < gemm[i] ? comm[i] : gemm[i];
    if (lo > 0) e[k++] = (seq[i] - fused[i]) / lo;
  }
  const double v = k ? median(e, k) : NAN;
  free(e);
  return v;
}

/* Elements (of esize bytes) that differ between a and b. */
long long count_diff(const void *a, const void *b, size_t count, size_t esize) {
  if (memcmp(a, b, count * esize) == 0) return 0;
  long long d = 0;
  for (size_t i = 0; i < count; i++) d += memcmp((const char *)a + i * esize, (const char *)b + i * esize, esize) != 0;
  return d;
}

void *xmalloc(size_t bytes) { return malloc(bytes ? bytes : 1); }

int all_ok(int ok) {
  int all;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return all;
}

double max_all(double v) {
  double m;
  MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return m;
}

/* The 1-minute load average (Linux), or -1: printed so that a number taken
 * on a busy machine can be recognised as such afterwards. */
double loadavg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

const char *mpi_name(void) {
#if defined(MPICH_VERSION)
  return "mpich-" MPICH_VERSION;
#elif defined(OMPI_MAJOR_VERSION)
#define STR2(x) #x
#define STR(x) STR2(x)
  return "openmpi-" STR(OMPI_MAJOR_VERSION) "." STR(OMPI_MINOR_VERSION) "." STR(OMPI_RELEASE_VERSION);
#else
  return "mpi";
#endif
}

/* JSON number, or null for values that have none (NaN/inf are not JSON). */
void jnum(const char *key, double v, int last) {
  if (isfinite(v))
    printf("\"%s\":%.6g%s", key, v, last ? "" : ",");
  else
    printf("\"%s\":null%s", key, last ? "" : ",");
}
