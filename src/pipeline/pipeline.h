/*
 * pipeline.h — plans and the fused schedules of all_gather_matmul.
 *
 * Data flows one way: public entry (op.c) -> validate (src/tensor) ->
 * agree (src/comm/agree.c) -> plan (plan.c: algorithm and chunking) ->
 * execute (algo_*.c: transport <-> GEMM) -> outputs.
 *
 * Every algorithm is a plain function with one signature (Open MPI coll's
 * habit) and a header block: Description / Steps / Memory.
 */
#ifndef TPMM_PIPELINE_H
#define TPMM_PIPELINE_H

#include "../comm/comm.h"
#include "../gemm/gemm.h"

typedef struct tpi_plan {
  tpi_group_t *g;
  tpi_agmm_t a;       /* the validated call; data pointers refreshed per execute */
  tpi_gemm_t *gemm;   /* x2 (+ bias) prepared once */
  int algo;           /* tpmm_algo_t actually used */
  int chunks;         /* chunks per rank's shard */
  /* workspaces, owned by the plan, grown on demand */
  void *send;         /* the local shard packed dense (m x k), if input is not */
  size_t send_bytes;
  void *gbuf;         /* gathered rows when gather_out cannot hold them */
  size_t gbuf_bytes;
} tpi_plan_t;

typedef tpmm_status_t (*tpi_algo_fn)(tpi_plan_t *p, const char *op);

tpmm_status_t tpi_algo_unfused(tpi_plan_t *p, const char *op);

/* ---- helpers shared by the algorithms (pack.c) ---- */

/* Grow a plan workspace to at least bytes. */
tpmm_status_t tpi_ws_reserve(void **buf, size_t *cap, size_t bytes, const char *op, const char *what);
/* The local shard as dense row-major (m x k): the input itself when it
 * already is, else a packed copy in p->send (transposing if trans_input). */
tpmm_status_t tpi_local_shard(tpi_plan_t *p, const char *op, const char **shard);
/* Copy rows [r0, r0+rows) of a dense (.. x k) block into gather_out at
 * global row g0 (row stride ldg). */
void tpi_copy_rows(const tpi_agmm_t *a, const char *src, int64_t rows, int64_t g0);

#endif
