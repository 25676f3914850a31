/*
 * x2g.h — gather_index 1 (x2g.c): the plan's state, and the accumulation
 * every schedule feeds with the panels of x2 it has (x2g_run.c: unfused and
 * shm_pull; x2g_ring.c: ring and bidir_ring).
 *
 * Use, per call: tpi_x2g_begin(order) -> tpi_x2g_rows for each shard's
 * chunks in panel order -> tpi_x2g_shard_done(j) for every shard (empty
 * ones too) -> tpi_x2g_finish.
 */
#ifndef TPMM_X2G_H
#define TPMM_X2G_H

#include "pipeline.h"

typedef struct tpi_x2g {
  char *shard;   /* the local shard of x2, dense (k_r x n), logical orientation */
  float *bias32; /* n floats, or NULL */
  float *sum;    /* m x n: the sum of the shards added so far; then `nslots` slots of m x n */
  size_t sum_bytes, mn;
  int nslots, j0; /* j0: the first non-empty shard (summed in place) */
  int *order;     /* the ring's shard order on this rank */
  /* the panels' GEMMs, made once and rebound to each panel (tpi_gemm_set_b) */
  tpi_gemm_t **pg; /* full panels, by position in a chunk */
  int npg;
  tpi_gemm_t **tail; /* shorter panels, by height tail_rows[] */
  int64_t *tail_rows;
  int ntail;
  /* a plan's own shard never changes: its panels packed once, at creation (NULL: one-shot calls) */
  tpi_gemm_t **own;
  int nown;
  /* per call */
  int *slot_of; /* [W] the slot of a shard being summed or waiting, -1: none */
  int *free;    /* free slots (a stack) */
  int nfree, next;
  char *done; /* [W] */
} tpi_x2g_t;

/* A call's start. order: the order in which the schedule completes the
 * shards (slots are reserved for it; on failure the GEMMs are skipped). */
tpmm_status_t tpi_x2g_begin(tpi_plan_t *p, const char *op, const int *order);
/* Rows [lo, hi) of shard j (lo a panel's first row; hi a panel's end or the
 * shard's), dense at B, multiplied with A (the input, dense m x K) into the
 * shard's partial sum. poll(ctx) between blocks; returns its failure. */
tpmm_status_t tpi_x2g_rows(tpi_plan_t *p, const char *A, int j, int64_t lo, int64_t hi, const char *B, tpi_poll_fn poll,
                           void *ctx);
/* Chunk c of shard j (its rows from the shard's first row at `rows`, dense):
 * tpi_x2g_rows, then copied to gather_out when wanted and `copy`. */
tpmm_status_t tpi_x2g_chunk(tpi_plan_t *p, const char *A, int j, int c, const char *rows, int copy, tpi_poll_fn poll,
                            void *ctx);
/* Where the gathered shards land: gather_out when it is wanted and dense,
 * else the plan's workspace of K x n elements. */
tpmm_status_t tpi_x2g_landing(tpi_plan_t *p, const char *op, char **G);
/* Shard j is complete: add it to the sum when its turn comes (rank order). */
void tpi_x2g_shard_done(tpi_plan_t *p, int j);
/* output = round(sum + bias). */
void tpi_x2g_finish(tpi_plan_t *p);
/* The cost model's GEMM for gather_index 1: rows * g1 for `rows` x2 rows
 * over all m output rows (g0 = 0: chunks do not add GEMM calls). g1 holds
 * a panel's packing, which a plan's own panels no longer pay (bench/RESULTS.md
 * §34.5). */
tpmm_status_t tpi_x2g_calibrate(tpi_plan_t *p, const char *op, double *g0, double *g1);
/* Drop the cached panel rates (tpi_model_forget). */
void tpi_x2g_forget(void);

/* The schedules (x2g_run.c, x2g_ring.c) */
tpmm_status_t tpi_x2g_unfused(tpi_plan_t *p, const char *op);
tpmm_status_t tpi_x2g_shm_pull(tpi_plan_t *p, const char *op);
tpmm_status_t tpi_x2g_ring(tpi_plan_t *p, const char *op, int bidir);

#endif
