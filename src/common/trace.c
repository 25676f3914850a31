/*
 * trace.c — Chrome trace events (see trace.h). Recording is an atomic 64-bit
 * increment and a store into a fixed array (no allocation, no I/O on the hot
 * path); when the array is full the newest events are dropped and counted.
 * tpi_trace_flush, called by tpmm_finalize, has rank 0 open the file (never
 * through a symbolic link), tell every rank whether it could, then receive
 * each rank's events in turn (at most TPI_TRACE_CAP per message, so no count
 * or offset grows with the number of ranks) and write them.
 */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../comm/lib.h"

enum { TAG = 0x7ace }; /* the trace's messages on the world communicator */

typedef struct {
  double t0, t1;
  int64_t a, b;
  int32_t ev, tid;
} event_t;
_Static_assert(TPI_TRACE_CAP * sizeof(event_t) <= 0x7fffffff, "a rank's events must fit one MPI message");

int tpi_trace_on;
static event_t *events;
static uint64_t offered; /* events recorded or dropped since start */
static double epoch;
static const char *const names[TPI_EV_COUNT] = {"gemm", "wait", "copy", "send", "publish", "call", "reduce", "pack"};

void tpi_trace_start(void) {
  tpi_trace_on = tpi_params.trace_path[0] != '\0';
  offered = 0;
  epoch = tpi_now();
  /* zeroed: a slot claimed but never written still names a valid event */
  if (tpi_trace_on && !events) events = calloc(TPI_TRACE_CAP, sizeof *events);
  if (!events) tpi_trace_on = 0;
}

void tpi_trace_record(tpi_ev_t ev, double t0, int64_t a, int64_t b) {
  const uint64_t i = __atomic_fetch_add(&offered, 1, __ATOMIC_RELAXED);
  if (i >= TPI_TRACE_CAP) return; /* full: the newest are dropped, the count says how many */
  events[i] = (event_t){t0, tpi_now(), a, b, (int32_t)ev, 0};
}

uint64_t tpi_trace_offered(void) { return __atomic_load_n(&offered, __ATOMIC_RELAXED); }
void tpi_trace_set_offered(uint64_t n) { __atomic_store_n(&offered, n, __ATOMIC_RELAXED); }

/* What rank 0 tells every rank before any event moves. */
typedef struct {
  int32_t status;
  char msg[500];
} verdict_t;

/* Rank 0: create or truncate the file without following a symbolic link
 * (a link planted at the path would otherwise redirect the write). */
static FILE *open_trace(verdict_t *v) {
  const char *path = tpi_params.trace_path;
  if (!path[0]) {
    v->status = TPMM_ERR_INVALID_ARGUMENT;
    snprintf(v->msg, sizeof v->msg,
             "tpmm_finalize: TPMM_TRACE is set on some ranks but not on rank 0, which writes it");
    return NULL;
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    const int e = errno;
    if (fd >= 0) close(fd);
    v->status = TPMM_ERR_INVALID_ARGUMENT;
    snprintf(v->msg, sizeof v->msg, "tpmm_finalize: cannot write TPMM_TRACE=%s: %s%s", path, strerror(e),
             e == ELOOP ? " (a symbolic link; tpmm does not follow one)" : "");
  } else if (!events && !(events = calloc(TPI_TRACE_CAP, sizeof *events))) {
    fclose(f);
    f = NULL;
    v->status = TPMM_ERR_NO_MEMORY;
    snprintf(v->msg, sizeof v->msg, "tpmm_finalize: out of memory for the trace");
  }
  return f;
}

/* Rank r's events and its track's label. */
static void write_rank(FILE *f, int r, const event_t *e, int64_t n, uint64_t dropped, double base, int *seen) {
  for (int64_t i = 0; i < n; i++)
    fprintf(f,
            "%s{\"name\":\"%s\",\"cat\":\"tpmm\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%d,\"tid\":%d,"
            "\"args\":{\"a\":%lld,\"b\":%lld}}\n",
            (*seen)++ ? "," : "", names[e[i].ev < TPI_EV_COUNT ? e[i].ev : 0], (e[i].t0 - base) * 1e6,
            (e[i].t1 - e[i].t0) * 1e6, r, e[i].tid, (long long)e[i].a, (long long)e[i].b);
  fprintf(f, "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"rank %d\"}}\n",
          (*seen)++ ? "," : "", r, r);
  if (dropped)
    fprintf(f,
            ",{\"name\":\"process_labels\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"labels\":\"%llu events dropped: "
            "the trace was full\"}}\n",
            r, (unsigned long long)dropped);
}

/* This rank's kept events and how many it dropped. */
static void own_counts(int64_t head[2]) {
  const uint64_t n = tpi_trace_offered();
  head[0] = events ? (int64_t)(n < TPI_TRACE_CAP ? n : TPI_TRACE_CAP) : 0;
  head[1] = (int64_t)(n - (uint64_t)head[0]);
}

/* Rank 0: its own events, then each rank's, received into the same array.
 * Times are relative to rank 0's start (clocks are monotonic per host; on
 * one host they agree). */
static tpmm_status_t write_all(FILE *f, MPI_Comm world, int size) {
  const double base = epoch;
  int64_t head[2];
  own_counts(head);
  int seen = 0, rc = MPI_SUCCESS;
  fprintf(f, "[\n");
  write_rank(f, 0, events, head[0], (uint64_t)head[1], base, &seen);
  for (int r = 1; r < size && rc == MPI_SUCCESS; r++) {
    rc = MPI_Recv(head, 2, MPI_INT64_T, r, TAG, world, MPI_STATUS_IGNORE);
    if (rc == MPI_SUCCESS)
      rc = MPI_Recv(events, (int)(head[0] * (int64_t)sizeof(event_t)), MPI_BYTE, r, TAG, world, MPI_STATUS_IGNORE);
    if (rc == MPI_SUCCESS) write_rank(f, r, events, head[0], (uint64_t)head[1], base, &seen);
  }
  fprintf(f, "]\n");
  const int io = ferror(f);
  if (fclose(f) != 0 || io)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_finalize: writing TPMM_TRACE=%s failed: %s", tpi_params.trace_path,
                    strerror(errno));
  return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, "tpmm_finalize", "receiving the trace");
}

static tpmm_status_t send_own(MPI_Comm world) {
  int64_t head[2];
  own_counts(head);
  int rc = MPI_Send(head, 2, MPI_INT64_T, 0, TAG, world);
  if (rc == MPI_SUCCESS) rc = MPI_Send(events, (int)(head[0] * (int64_t)sizeof(event_t)), MPI_BYTE, 0, TAG, world);
  return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, "tpmm_finalize", "sending the trace");
}

static tpmm_status_t flush(MPI_Comm world) {
  int rank, size;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &size);
  verdict_t v = {TPMM_SUCCESS, ""};
  FILE *f = rank == 0 ? open_trace(&v) : NULL;
  int rc = MPI_Bcast(&v, (int)sizeof v, MPI_BYTE, 0, world);
  if (rc != MPI_SUCCESS) {
    if (f) fclose(f);
    return tpi_mpi_fail(rc, "tpmm_finalize", "MPI_Bcast (trace)");
  }
  if (v.status != TPMM_SUCCESS) {
    v.msg[sizeof v.msg - 1] = '\0';
    return tpi_fail((tpmm_status_t)v.status, "%s", v.msg);
  }
  return rank == 0 ? write_all(f, world, size) : send_own(world);
}

tpmm_status_t tpi_trace_flush(MPI_Comm world) {
  /* every rank takes part if any traces: one whose TPMM_TRACE differs, or
   * that could not allocate, must not leave the others waiting */
  int want = tpi_params.trace_path[0] != '\0', any = 0;
  int rc = MPI_Allreduce(&want, &any, 1, MPI_INT, MPI_MAX, world);
  tpmm_status_t st = TPMM_SUCCESS;
  if (rc != MPI_SUCCESS)
    st = tpi_mpi_fail(rc, "tpmm_finalize", "MPI_Allreduce (trace)");
  else if (any)
    st = flush(world);
  free(events);
  events = NULL;
  tpi_trace_on = 0;
  return st;
}
