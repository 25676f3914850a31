/*
 * bench_ext.h — tpmm-bench's measurements of issue 15 (bench_ext.c): gather
 * x2 (--gather-index 1), uneven shards (--counts), several weights (--nb).
 */
#ifndef TPMM_BENCH_EXT_H
#define TPMM_BENCH_EXT_H

#include <stddef.h>
#include <stdint.h>

#include "benchopts.h"

/* One configuration of the extended modes (the lists' current values). */
typedef struct {
  int64_t m, k, n;
  int dt, algo, comm_turn;
} bench_ext_cfg_t;

/* Whether the options ask for an extended mode. */
int bench_ext_wanted(const struct bench_opts *o);
/* Measure and print one configuration (collective). Returns 0, or 1 if it
 * failed or its outputs differ from the unfused algorithm's. */
int bench_ext_run(const struct bench_opts *o, const bench_ext_cfg_t *c, double peak, int *header_done);

#endif
