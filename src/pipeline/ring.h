/*
 * ring.h — the chunked ring engine of algo_ring.c, shared with the
 * hierarchical schedule (algo_hier.c), which runs it over the inter-node
 * "rail" communicator and publishes arriving chunks to its node peers.
 *
 * Use: tpi_ring_init -> tpi_ring_start (post receives and the local sends)
 *      -> tpi_ring_compute, or polls (hier's rail ring)
 *      -> tpi_ring_finish (wait for the sends; cancel on error) -> tpi_ring_free.
 */
#ifndef TPMM_RING_H
#define TPMM_RING_H

#include <pthread.h>

#include "pipeline.h"

typedef struct ring {
  tpi_plan_t *p;
  const char *op;
  MPI_Comm comm;       /* the ring's communicator (group or rail) */
  int W, r, C, bidir;  /* ring size, this rank's position, chunks per shard */
  char *G;             /* gathered rows: member j's shard at row j*m */
  const char *local;   /* local shard rows */
  const int *out_rank; /* group rank of member j (output row block); NULL: j */
  int64_t slot_rows;   /* 0: member j's shard at its gathered row in G; else at j * slot_rows */
  /* called by the polling thread when chunk (j, c) has arrived in G */
  void (*on_arrive)(void *ctx, int j, int c);
  void *arrive_ctx;
  MPI_Request *recv; /* [nmsg], NULL request for the local shard */
  MPI_Request *send; /* [nmsg] one send per message at most (local or forward) */
  /* Sends wait in a FIFO per direction (0: to the right, 1: to the left) and
   * at most `window` of them are in flight per direction (0: no limit). With
   * every chunk posted at once, MPI interleaves them on the link and they all
   * complete at the end (measured: MPICH/UCX tcp, 1 Gbit), which degrades
   * the pipeline to "GEMM the local shard, wait for everything". */
  int window;
  int S, seg_rows; /* a chunk travels as up to S messages of seg_rows rows */
  int nmsg;        /* W*C*S: message index (j*C + c)*S + s is also its tag */
  int *seg_left;   /* [W*C] segments of a chunk still to arrive */
  int *seg_in;     /* [nmsg] set (atomically) when that message is in G */
  int *sendq;      /* [2][nmsg] message indices waiting to be sent */
  int qhead[2], qtail[2], inflight[2];
  int *arrived;  /* [W*C] set (atomically) when chunk is in G */
  int *done_idx; /* [nmsg] MPI_Testsome's output */
  int pending_recv;
  double deadline;
  /* progress thread */
  pthread_t thread;
  int thread_started;
  int stop;     /* main asks the thread to stop (error) */
  int idle;     /* the compute thread waits: the thread polls without napping */
  bool crowded; /* tpi_group_link_yields: waits yield between polls */
  int finished; /* the thread has returned */
  tpmm_status_t thread_status;
  char thread_msg[512];
} ring_t;

tpmm_status_t tpi_ring_init(ring_t *R, tpi_plan_t *p, const char *op, MPI_Comm comm, int W, int r, int bidir, char *G,
                            const char *local);
tpmm_status_t tpi_ring_start(ring_t *R);
/* GEMM the local shard, then every arriving chunk (polling between tiles). */
tpmm_status_t tpi_ring_compute(ring_t *R);
/* Drive MPI once: forward arrived chunks, progress sends, post queued ones. */
tpmm_status_t tpi_ring_poll(void *R);
/* Wait until every row of chunk (j, c) is in G (polling or the thread). */
tpmm_status_t tpi_ring_wait_chunk(ring_t *R, int j, int c);
/* Wait for the sends (if st is success), cancel everything on error. */
tpmm_status_t tpi_ring_finish(ring_t *R, tpmm_status_t st);
void tpi_ring_cancel(ring_t *R);
void tpi_ring_free(ring_t *R);
/* How a chunk of ceil(m/C) rows of row_bytes travels: *seg_rows per message
 * (segment_bytes worth, every message's byte count within an int) and
 * *per_chunk messages, grown until W*C*per_chunk tags fit tag_limit.
 * Returns 0 if they cannot. The same on every rank for the same arguments. */
int tpi_ring_segments(int64_t m, int C, int64_t row_bytes, int64_t segment_bytes, int W, int64_t tag_limit,
                      int64_t *seg_rows, int64_t *per_chunk);
/* Upper bound of the bookkeeping bytes (tpi_plan_t.ring_ws) of any ring of at
 * most W members over shards of m rows of row_bytes, with at most max_chunks
 * chunks per shard and messages no smaller than segment_bytes (0: whole
 * chunks) allow. */
size_t tpi_ring_ws_bound(int64_t m, int64_t row_bytes, int W, int64_t max_chunks, int64_t segment_bytes);

/* Rows of the largest chunk of any shard cut into C chunks. */
static inline int64_t tpi_chunk_rows_max(const tpi_call_t *a, int C) {
  const int64_t most = tpi_rows_max(a);
  if (!a->gather_index) return (most + C - 1) / C;
  const int64_t panels = (most + TPI_X2_PANEL - 1) / TPI_X2_PANEL, rows = (panels + C - 1) / C * TPI_X2_PANEL;
  return rows < most ? rows : most;
}
/* The m for tpi_ring_ws_bound: ceil(m / C) >= tpi_chunk_rows_max(a, C) for
 * every C up to the automatic limit or comm_turn. */
static inline int64_t tpi_ring_rows_bound(const tpi_call_t *a) {
  if (!a->gather_index) return tpi_rows_max(a);
  const int64_t cmax = a->comm_turn > 0 ? a->comm_turn : TPI_MAX_AUTO_CHUNKS;
  return ((tpi_rows_max(a) + TPI_X2_PANEL - 1) / TPI_X2_PANEL + cmax) * TPI_X2_PANEL;
}

#endif
