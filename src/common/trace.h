/*
 * trace.h — Chrome trace events (TPMM_TRACE=file.json): per rank, the
 * waits for chunks, each GEMM tile and each gather_out copy. Events are kept
 * in memory (a fixed ring, the oldest dropped) and written by tpmm_finalize:
 * rank 0 gathers every rank's events and writes one JSON array that opens in
 * Perfetto / chrome://tracing with a track per rank.
 */
#ifndef TPMM_TRACE_H
#define TPMM_TRACE_H

#include <stdint.h>

typedef enum {
  TPI_EV_GEMM,
  TPI_EV_WAIT,
  TPI_EV_COPY,
  TPI_EV_SEND,
  TPI_EV_PUBLISH,
  TPI_EV_CALL,
  TPI_EV_REDUCE,
  TPI_EV_COUNT
} tpi_ev_t;

/* Non-zero when tracing is on (TPMM_TRACE set at tpmm_init). */
extern int tpi_trace_on;
/* Record an event that started at t0 (tpi_now() seconds) and ends now; a and
 * b are two integers shown as arguments (rows, chunk, peer...). */
void tpi_trace_record(tpi_ev_t ev, double t0, int64_t a, int64_t b);
/* Begin recording if TPMM_TRACE is set (called by tpmm_init). */
void tpi_trace_start(void);
#define tpi_trace(ev, t0, a, b)                       \
  do {                                                \
    if (tpi_trace_on) tpi_trace_record(ev, t0, a, b); \
  } while (0)

#endif
