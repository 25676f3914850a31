/*
 * ring_geom.h — where a ring's chunks and messages are: rows, pointers,
 * directions and hops (shared by ring.c and ring_run.c; private to
 * src/pipeline).
 */
#ifndef TPMM_RING_GEOM_H
#define TPMM_RING_GEOM_H

#include "ring.h"

/* Bookkeeping bytes for nmsg messages and n chunks: 2 requests and 3 ints
 * per message, 2 ints per chunk (requests first: they are the widest). */
static inline size_t ring_ws_need(size_t nmsg, size_t n) {
  return nmsg * (2 * sizeof(MPI_Request) + 4 * sizeof(int)) + 2 * n * sizeof(int);
}

static inline size_t row_bytes(const ring_t *R) { return tpi_row_bytes(&R->p->a); }
/* Group rank of ring member j; first row of chunk c of its shard (within the shard). */
static inline int grank(const ring_t *R, int j) { return R->out_rank ? R->out_rank[j] : j; }
static inline int64_t chunk_lo(const ring_t *R, int j, int c) {
  return tpi_shard_chunk_lo(&R->p->a, grank(R, j), R->C, c);
}
/* Output (gathered) row of chunk c of ring member j's shard. */
static inline int64_t out_row(const ring_t *R, int j, int c) {
  return tpi_shard_row0(&R->p->a, grank(R, j)) + chunk_lo(R, j, c);
}

/* Direction of chunk c: +1 clockwise (to the right), -1 counter-clockwise. */
static inline int dir_of(const ring_t *R, int c) { return R->bidir && c >= (R->C + 1) / 2 ? -1 : +1; }
static inline int right(const ring_t *R) { return (R->r + 1) % R->W; }
static inline int left(const ring_t *R) { return (R->r + R->W - 1) % R->W; }
/* Hops chunk (j, c) has made when it reaches this rank. */
static inline int hops(const ring_t *R, int j, int c) {
  return dir_of(R, c) > 0 ? (R->r - j + R->W) % R->W : (j - R->r + R->W) % R->W;
}

/* Where chunk (j, c) lands in G: member j's shard at its gathered row, or
 * in slot j of slot_rows rows (hier). */
static inline char *chunk_ptr(const ring_t *R, int j, int c) {
  const int64_t base = R->slot_rows ? j * R->slot_rows : tpi_shard_row0(&R->p->a, grank(R, j));
  return R->G + row_bytes(R) * (size_t)(base + chunk_lo(R, j, c));
}
static inline int chunk_rows(const ring_t *R, int j, int c) { return (int)(chunk_lo(R, j, c + 1) - chunk_lo(R, j, c)); }

/* Segments: chunk (j, c) travels as seg_count(j, c) messages of at most
 * seg_rows rows; message index (j*C + c)*S + s is also its tag. */
static inline int seg_count(const ring_t *R, int j, int c) {
  return (chunk_rows(R, j, c) + R->seg_rows - 1) / R->seg_rows;
}
static inline int seg_rows_of(const ring_t *R, int j, int c, int s) {
  int rows = chunk_rows(R, j, c) - s * R->seg_rows;
  return rows < R->seg_rows ? rows : R->seg_rows;
}
static inline char *seg_ptr(const ring_t *R, int j, int c, int s) {
  const char *base = j == R->r ? R->local + row_bytes(R) * (size_t)chunk_lo(R, j, c) : chunk_ptr(R, j, c);
  return (char *)base + row_bytes(R) * (size_t)s * (size_t)R->seg_rows;
}

#endif
