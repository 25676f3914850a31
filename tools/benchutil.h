/*
 * benchutil.h — helpers the measuring programs share (benchutil.c:
 * tpmm-bench, its reduce operators' part bench_reduce.c, decode_bench):
 * inputs, medians, comparisons, the collective checks every rank takes part
 * in, and printing.
 */
#ifndef TPMM_BENCHUTIL_H
#define TPMM_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "benchopts.h"

extern uint64_t rng_state;                                        /* the inputs' generator: set it, then fill */
void fill(void *p, int dt, size_t count);                         /* uniform [-1, 1) rounded to dtype dt */
double median(double *v, int n);                                  /* sorts v */
double median_ratio(const double *num, const double *den, int n); /* of num[i] / den[i] */
/* The median over iterations of E_i = (seq[i] - fused[i]) / min(comm[i], gemm[i]), four times of one iteration. */
double median_efficiency(const double *seq, const double *fused, const double *comm, const double *gemm, int n);
long long count_diff(const void *a, const void *b, size_t count, size_t esize);
void *xmalloc(size_t bytes);                    /* malloc, never of 0 bytes */
int all_ok(int ok);                             /* collective over the world: every rank's ok */
double max_all(double v);                       /* collective: the maximum over the world */
double loadavg(void);                           /* the 1-minute load average, or -1 */
const char *mpi_name(void);                     /* "mpich-4.0.2" */
void jnum(const char *key, double v, int last); /* a JSON number, null if not finite */

/* One configuration of --op matmul_reduce_scatter / matmul_all_reduce: runs,
 * prints (rank 0) and returns the number of failures (0 or 1). Collective. */
int bench_reduce(const struct bench_opts *o, int64_t m, int64_t k, int64_t n, int dt, int algo, int comm_turn,
                 int *header_done);

#endif
