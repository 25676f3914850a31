/*
 * red_hier.h — where hier's partials and rounded rows are in the node's
 * shared window, its flags and its rail's requests (shared by
 * algo_red_hier.c, the schedule, and red_hier_rail.c, the rail's messages;
 * private to src/pipeline).
 *
 * Node rank j's segment: [ m*n fp32 partials at their rows | N-1 slots, one
 * per other node a, of a's partials for this node's owners | all_reduce:
 * m*n rounded elements at their rows ]. Flags, C each: per owner's node
 * rank (its partials are in j's rows), per source node (j's slot is in),
 * per node (its rounded unit of rail j is in j's rows).
 */
#ifndef TPMM_RED_HIER_H
#define TPMM_RED_HIER_H

#include "../comm/shm.h"
#include "reduce.h"

typedef struct hier {
  tpi_plan_t *p;
  const char *op;
  tpi_group_t *g;
  tpi_shm_t *s;
  int N, L, b, l, C, all;
  uint64_t seq;
  double deadline;
  int64_t slot;     /* rows of one receive slot: a node's partials for this node's owners */
  MPI_Request *req; /* [partial recv | rounded recv | partial send | rounded send], each [c*N + node] */
  int *done;        /* MPI_Testsome's indices */
  int pending;      /* requests not complete */
} hier_t;

enum { PRECV, RRECV, PSEND, RSEND };
static inline int ri(const hier_t *H, int kind, int c, int a) { return (kind * H->C + c) * H->N + a; }
static inline int who(const hier_t *H, int node, int lr) { return H->g->grank_of[node * H->L + lr]; }

static inline int64_t rows_of(const hier_t *H, int q, int c, int64_t *lo) {
  int64_t hi;
  tpi_red_unit(H->p, H->C, q, c, lo, &hi);
  return hi - *lo;
}

/* Rows before unit (who(node, lr), c) in a slot of partials for node's
 * owners: the slot holds them chunk by chunk, each chunk by node rank. */
static inline int64_t slot_row(const hier_t *H, int node, int lr, int c) {
  int64_t n = 0, lo;
  for (int i = 0; i < c * H->L + lr; i++) n += rows_of(H, who(H, node, i % H->L), i / H->L, &lo);
  return n;
}

/* Node rank j's segment: its partials, its slot for node a's, its rounded rows. */
static inline float *part(const hier_t *H, int j) { return (float *)tpi_shm_rows(H->s, j); }
static inline float *slot(const hier_t *H, int j, int a) {
  const int64_t i = (a - H->b + H->N) % H->N - 1;
  return part(H, j) + (H->p->a.m + i * H->slot) * H->p->a.n;
}
static inline char *rounded(const hier_t *H, int j) {
  return (char *)(part(H, j) + (H->p->a.m + (H->N - 1) * H->slot) * H->p->a.n);
}
/* Flags: per owner's node rank, per source node, per node of rounded rows. */
static inline uint64_t *pflag(const hier_t *H, int j, int lr, int c) {
  return &tpi_shm_hdr(H->s, j)->ready[lr * H->C + c];
}
static inline uint64_t *rflag(const hier_t *H, int j, int a, int c) {
  return &tpi_shm_hdr(H->s, j)->ready[(H->L + a) * H->C + c];
}
static inline uint64_t *dflag(const hier_t *H, int j, int a, int c) {
  return &tpi_shm_hdr(H->s, j)->ready[(H->L + H->N + a) * H->C + c];
}
static inline void raise_flag(const hier_t *H, uint64_t *f) { __atomic_store_n(f, H->seq, __ATOMIC_RELEASE); }

/* ---- the rail's messages (red_hier_rail.c) ---- */

/* Complete what has arrived or left; flag arrivals for the node peers (a
 * poll: tpi_red_gemm calls it between tiles, tpi_shm_wait between looks). */
tpmm_status_t tpi_hier_drive(void *H);
/* From each other node, chunk by chunk: its partials for this node's owners
 * and, all_reduce, its rounded unit of this rail. */
tpmm_status_t tpi_hier_post_receives(hier_t *H);
/* The units node `to` owns in chunk c, from the own partials, in one message. */
tpmm_status_t tpi_hier_send_partials(hier_t *H, int to, int c);
/* all_reduce: the own rounded unit of chunk c (rows at dst) to every other node. */
tpmm_status_t tpi_hier_send_rounded(hier_t *H, const char *dst, int64_t rows, int c);
/* Drive until every message has arrived or left, against the deadline. */
tpmm_status_t tpi_hier_drain(hier_t *H);
/* After a failure: cancel every request still pending. */
void tpi_hier_cancel(hier_t *H);

#endif
