/*
 * wait.c — waits for peers that honour TPMM_TIMEOUT_MS.
 */
#include "wait.h"

#include <sched.h>

double tpi_deadline(void) { return tpi_params.timeout_ms > 0 ? tpi_now() + 1e-3 * (double)tpi_params.timeout_ms : 0.0; }

tpmm_status_t tpi_test(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p,
                       double deadline, int *done) {
  int rc = MPI_Testall(n, reqs, done, MPI_STATUSES_IGNORE);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, what);
  if (*done || deadline <= 0.0 || tpi_now() < deadline) return TPMM_SUCCESS;
  /* Timed out: cancel what can be cancelled; the group can no longer be trusted
   * (a collective in flight cannot be cancelled in MPI). */
  for (int i = 0; p2p && i < n; i++)
    if (reqs[i] != MPI_REQUEST_NULL) {
      MPI_Cancel(&reqs[i]);
      MPI_Request_free(&reqs[i]);
    }
  g->broken = true;
  return tpi_fail(TPMM_ERR_TIMEOUT, "%s: timed out after %lld ms waiting for %s on group \"%s\"", op,
                  (long long)tpi_params.timeout_ms, what, g->name);
}

tpmm_status_t tpi_wait(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p) {
  double deadline = tpi_deadline();
  if (deadline <= 0.0) {
    int rc = MPI_Waitall(n, reqs, MPI_STATUSES_IGNORE);
    return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, op, what);
  }
  for (;;) {
    int done;
    TPI_CHECK(tpi_test(g, op, what, n, reqs, p2p, deadline, &done));
    if (done) return TPMM_SUCCESS;
    sched_yield();
  }
}
