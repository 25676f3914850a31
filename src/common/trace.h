/*
 * trace.h — Chrome trace events (TPMM_TRACE=file.json): per rank, the
 * waits for chunks, each GEMM tile, each gather_out copy and, with gather_index
 * 1, each x2 panel bound to its GEMM during a call (laid out for the kernel
 * where the GEMM packs). Each rank keeps
 * its first TPI_TRACE_CAP events in memory and counts, but drops, the newer
 * ones (recording is one atomic increment and a store). tpmm_finalize writes
 * them: rank 0 receives every rank's events, one rank at a time, and writes
 * one JSON array that opens in Perfetto / chrome://tracing with a track per
 * rank; a rank that dropped events says how many in its track's label.
 */
#ifndef TPMM_TRACE_H
#define TPMM_TRACE_H

#include <mpi.h>
#include <stdint.h>

#include "common.h"

typedef enum {
  TPI_EV_GEMM,
  TPI_EV_WAIT,
  TPI_EV_COPY,
  TPI_EV_SEND,
  TPI_EV_PUBLISH,
  TPI_EV_CALL,
  TPI_EV_REDUCE,
  TPI_EV_PACK,
  TPI_EV_COUNT
} tpi_ev_t;

/* Events kept per rank. */
#define TPI_TRACE_CAP 65536

/* Non-zero when tracing is on (TPMM_TRACE set at tpmm_init). */
extern int tpi_trace_on;
/* Record an event that started at t0 (tpi_now() seconds) and ends now; a and
 * b are two integers shown as arguments (rows, chunk, peer...). Thread-safe. */
void tpi_trace_record(tpi_ev_t ev, double t0, int64_t a, int64_t b);
/* Begin recording if TPMM_TRACE is set (called by tpmm_init). */
void tpi_trace_start(void);
/* Write the trace (TPMM_TRACE) on rank 0 of world and stop recording (called
 * by tpmm_finalize). Collective over world; every rank returns rank 0's
 * status (the file could not be written: TPMM_ERR_INVALID_ARGUMENT naming
 * it; a symbolic link is refused). */
tpmm_status_t tpi_trace_flush(MPI_Comm world);
/* Events offered since tpi_trace_start, kept or dropped (64 bits: it does
 * not wrap); tests set it to reach the edges without recording them all. */
uint64_t tpi_trace_offered(void);
void tpi_trace_set_offered(uint64_t n);
#define tpi_trace(ev, t0, a, b)                       \
  do {                                                \
    if (tpi_trace_on) tpi_trace_record(ev, t0, a, b); \
  } while (0)

#endif
