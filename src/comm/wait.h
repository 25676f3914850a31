/*
 * wait.h — waits that honour TPMM_TIMEOUT_MS (wait.c).
 */
#ifndef TPMM_WAIT_H
#define TPMM_WAIT_H

#include "group.h"

/* Absolute deadline for a call starting now (0 when no timeout is set). */
double tpi_deadline(void);

/* Wait for n requests, honouring tpi_params.timeout_ms. On timeout the
 * group is marked broken, point-to-point requests (p2p != 0) are cancelled
 * (collective ones cannot be, in MPI), and TPMM_ERR_TIMEOUT is returned
 * naming what was awaited. */
tpmm_status_t tpi_wait(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p);

/* Deadline-aware test: sets *done; fails like tpi_wait once the deadline
 * (absolute, tpi_now() seconds; 0 = none) has passed. */
tpmm_status_t tpi_test(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p,
                       double deadline, int *done);

#endif
