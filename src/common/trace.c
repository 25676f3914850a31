/*
 * trace.c — Chrome trace events (see trace.h). Recording is a store into a
 * fixed array (no allocation, no I/O on the hot path); tpi_trace_flush,
 * called by tpmm_finalize, gathers every rank's events on rank 0, which
 * writes the JSON file.
 */
#include "trace.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define CAP 65536

typedef struct {
  double t0, t1;
  int64_t a, b;
  int32_t ev, tid;
} event_t;

int tpi_trace_on;
static event_t *events;
static int n_events;
static double epoch;
static const char *const names[TPI_EV_COUNT] = {"gemm", "wait", "copy", "send", "publish", "call", "reduce"};

void tpi_trace_start(void) {
  tpi_trace_on = tpi_params.trace_path[0] != '\0';
  n_events = 0;
  epoch = tpi_now();
  if (tpi_trace_on && !events) events = malloc(CAP * sizeof *events);
  if (!events) tpi_trace_on = 0;
}

void tpi_trace_record(tpi_ev_t ev, double t0, int64_t a, int64_t b) {
  int i = __atomic_fetch_add(&n_events, 1, __ATOMIC_RELAXED);
  if (i >= CAP) return; /* full: later events are dropped, the count says how many */
  events[i] = (event_t){t0, tpi_now(), a, b, (int32_t)ev, 0};
}

tpmm_status_t tpi_trace_flush(MPI_Comm world) {
  if (!tpi_trace_on) return TPMM_SUCCESS;
  int rank, size;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &size);
  int n = n_events < CAP ? n_events : CAP;
  /* align clocks: every rank's epoch relative to rank 0's (clocks are
   * monotonic per host; on one host they agree) */
  double base = epoch;
  MPI_Bcast(&base, 1, MPI_DOUBLE, 0, world);
  int *counts = rank == 0 ? calloc((size_t)size, sizeof(int)) : NULL, *displs = NULL;
  MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, world);
  event_t *all = NULL;
  int total = 0;
  if (rank == 0) {
    displs = calloc((size_t)size, sizeof(int));
    for (int r = 0; r < size; r++) {
      displs[r] = total * (int)sizeof(event_t);
      total += counts[r];
      counts[r] *= (int)sizeof(event_t);
    }
    all = malloc((size_t)(total > 0 ? total : 1) * sizeof(event_t));
  }
  MPI_Gatherv(events, n * (int)sizeof(event_t), MPI_BYTE, all, counts, displs, MPI_BYTE, 0, world);
  tpmm_status_t st = TPMM_SUCCESS;
  if (rank == 0) {
    FILE *f = fopen(tpi_params.trace_path, "w");
    if (!f) {
      st = tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_finalize: cannot write TPMM_TRACE=%s", tpi_params.trace_path);
    } else {
      fprintf(f, "[\n");
      int r = 0, seen = 0;
      for (int i = 0; i < total; i++) {
        while (r < size - 1 && i >= (displs[r + 1] / (int)sizeof(event_t))) r++;
        const event_t *e = &all[i];
        fprintf(f,
                "%s{\"name\":\"%s\",\"cat\":\"tpmm\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%d,\"tid\":%d,"
                "\"args\":{\"a\":%lld,\"b\":%lld}}\n",
                seen++ ? "," : "", names[e->ev], (e->t0 - base) * 1e6, (e->t1 - e->t0) * 1e6, r, e->tid,
                (long long)e->a, (long long)e->b);
      }
      for (int q = 0; q < size; q++)
        fprintf(f, "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"rank %d\"}}\n",
                seen++ ? "," : "", q, q);
      fprintf(f, "]\n");
      fclose(f);
    }
  }
  free(counts), free(displs), free(all);
  free(events);
  events = NULL;
  tpi_trace_on = 0;
  return st;
}
