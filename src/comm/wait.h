/*
 * wait.h — waits for peers that honour TPMM_TIMEOUT_MS (wait.c): the one
 * timeout-then-fail path, the step every wait loop takes, and the waits on
 * MPI requests.
 */
#ifndef TPMM_WAIT_H
#define TPMM_WAIT_H

#include "group.h"

/* Absolute deadline for a call starting now (0 when no timeout is set). */
double tpi_deadline(void);

/* Give up waiting: mark g broken (what was awaited may still arrive, so the
 * group cannot be trusted again) and return TPMM_ERR_TIMEOUT with
 * "op: timed out after N ms waiting for WHAT on group "G"". what names the
 * awaited data and, when known, the peer ("a published chunk of rank 2"). */
tpmm_status_t tpi_timed_out(tpi_group_t *g, const char *op, const char *what);

/* The state of one wait loop. */
typedef struct tpi_spin {
  double deadline; /* absolute, tpi_now() seconds (the call's tpi_deadline()); 0 = none */
  bool yield;      /* give the CPU away between looks: the machine is crowded, or another
                      thread of this rank (the progress thread) needs it */
} tpi_spin_t;

/* One step of a wait loop, called once per iteration after the awaited
 * condition was found false: once s->deadline has passed, tpi_timed_out(g,
 * op, what); otherwise yields the CPU (s->yield) or pauses the core briefly,
 * and returns TPMM_SUCCESS. what is only read on timeout. */
tpmm_status_t tpi_spin(tpi_group_t *g, const char *op, const char *what, tpi_spin_t *s);

/* Wait for n requests, honouring tpi_params.timeout_ms; below
 * MPI_THREAD_MULTIPLE by polls that each take tpi_mpi_lock. On timeout the
 * group is marked broken, point-to-point requests (p2p != 0) are cancelled
 * (collective ones cannot be, in MPI), and TPMM_ERR_TIMEOUT is returned
 * naming what was awaited. */
tpmm_status_t tpi_wait(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p);

/* Deadline-aware test: sets *done; fails like tpi_wait once the deadline
 * (absolute, tpi_now() seconds; 0 = none) has passed. */
tpmm_status_t tpi_test(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p,
                       double deadline, int *done);

#endif
