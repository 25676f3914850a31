/*
 * wait.c — waits for peers that honour TPMM_TIMEOUT_MS. Every wait in
 * libtpmm, on MPI requests or on flags in shared memory, checks its deadline
 * and gives up through here, so a timeout always breaks the group and
 * always says what was awaited.
 */
#include "wait.h"

#include <sched.h>

double tpi_deadline(void) { return tpi_params.timeout_ms > 0 ? tpi_now() + 1e-3 * (double)tpi_params.timeout_ms : 0.0; }

static bool expired(double deadline) { return deadline > 0.0 && tpi_now() >= deadline; }

tpmm_status_t tpi_timed_out(tpi_group_t *g, const char *op, const char *what) {
  g->broken = true;
  return tpi_fail(TPMM_ERR_TIMEOUT, "%s: timed out after %lld ms waiting for %s on group \"%s\"", op,
                  (long long)tpi_params.timeout_ms, what, g->name);
}

static void pause_core(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

tpmm_status_t tpi_spin(tpi_group_t *g, const char *op, const char *what, tpi_spin_t *s) {
  if (expired(s->deadline)) return tpi_timed_out(g, op, what);
  if (s->yield)
    sched_yield();
  else
    pause_core();
  return TPMM_SUCCESS;
}

/* Cancel the point-to-point requests left; a collective in flight cannot be
 * cancelled in MPI, which is why a timeout leaves the group unusable. */
static void cancel(int n, MPI_Request *reqs, int p2p) {
  tpi_mpi_lock();
  for (int i = 0; p2p && i < n; i++)
    if (reqs[i] != MPI_REQUEST_NULL) {
      MPI_Cancel(&reqs[i]);
      MPI_Request_free(&reqs[i]);
    }
  tpi_mpi_unlock();
}

tpmm_status_t tpi_test(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p,
                       double deadline, int *done) {
  tpi_mpi_lock();
  int rc = MPI_Testall(n, reqs, done, MPI_STATUSES_IGNORE);
  tpi_mpi_unlock();
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, what);
  if (*done || !expired(deadline)) return TPMM_SUCCESS;
  cancel(n, reqs, p2p);
  return tpi_timed_out(g, op, what);
}

tpmm_status_t tpi_wait(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p) {
  tpi_spin_t s = {tpi_deadline(), true};
  /* below MPI_THREAD_MULTIPLE a blocking wait would keep other threads out
   * of MPI (or overlap their calls): poll instead, the lock taken per poll */
  if (s.deadline <= 0.0 && tpi_mpi_thread_level() >= MPI_THREAD_MULTIPLE) {
    int rc = MPI_Waitall(n, reqs, MPI_STATUSES_IGNORE);
    return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, op, what);
  }
  for (;;) {
    int done;
    TPI_CHECK(tpi_test(g, op, what, n, reqs, p2p, 0.0, &done));
    if (done) return TPMM_SUCCESS;
    tpmm_status_t st = tpi_spin(g, op, what, &s);
    if (st != TPMM_SUCCESS) {
      cancel(n, reqs, p2p);
      return st;
    }
  }
}
