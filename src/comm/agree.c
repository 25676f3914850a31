/*
 * agree.c — the agreement step that starts every collective operation.
 *
 * Description: before any data moves, the ranks of a group check that they
 *   were called with the same collective arguments and that every rank's own
 *   arguments were valid. Without it, a rank with a different k (or a NULL
 *   pointer) would leave its peers waiting forever in the data phase.
 * Steps:
 *   1. One MPI_Iallreduce(MAX) over [lowest-failing-rank key, f..., ~f...,
 *      tune...]: max and min of every field at once, which rank failed
 *      first, and the maximum of each tuning value (how the plan's choices,
 *      made from one rank's measurements, reach every rank for free).
 *   2. If any field differs: TPMM_ERR_MISMATCH on every rank, naming the field
 *      and its range (this wins over local errors: the ranks disagree).
 *   3. Else if a rank failed validation: that rank broadcasts its status and
 *      message (MPI_Ibcast, error path only); every rank returns them.
 * Memory: buffers live in the group (see group.h), 2*(n+1) int64 and 1 KiB.
 * Cost: one allreduce of (2n+1)*8 bytes on the success path (measured in
 *   bench/RESULTS.md).
 */
#include "agree.h"

#include <stdio.h>
#include <string.h>

#include "wait.h"

tpmm_status_t tpi_agree(tpi_group_t *g, const char *op, tpmm_status_t local, const int64_t *f, int nf,
                        const char *const *names, int64_t *tune, int nt) {
  if (2 * nf + 1 + nt > (int)(sizeof g->agree_send / sizeof g->agree_send[0]))
    return tpi_fail(TPMM_ERR_INTERNAL, "%s: too many agreement fields (%d)", op, nf);
  /* Keep this rank's own message: the collective below may overwrite it. */
  char own[sizeof g->agree_msg.msg];
  snprintf(own, sizeof own, "%s", tpi_error_message());

  int64_t *s = g->agree_send, *r = g->agree_recv;
  s[0] = local != TPMM_SUCCESS ? INT64_MAX - g->rank : 0;
  for (int i = 0; i < nf; i++) {
    s[1 + i] = f[i];
    s[1 + nf + i] = ~f[i]; /* min(f) = ~max(~f); unlike -f, cannot overflow */
  }
  for (int i = 0; i < nt; i++) s[1 + 2 * nf + i] = tune[i];
  MPI_Request req;
  tpi_mpi_lock();
  int rc = MPI_Iallreduce(s, r, 2 * nf + 1 + nt, MPI_INT64_T, MPI_MAX, g->comm, &req);
  tpi_mpi_unlock();
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Iallreduce (argument agreement)");
  TPI_CHECK(tpi_wait(g, op, "the argument agreement of all ranks", 1, &req, 0));

  for (int i = 0; i < nf; i++) {
    int64_t hi = r[1 + i], lo = ~r[1 + nf + i];
    if (hi != lo) {
      if (local != TPMM_SUCCESS)
        return tpi_fail(
            TPMM_ERR_MISMATCH,
            "%s: ranks of group \"%s\" disagree on %s (values from %lld to %lld); this rank also reported: %s", op,
            g->name, names[i], (long long)lo, (long long)hi, own);
      return tpi_fail(TPMM_ERR_MISMATCH,
                      "%s: ranks of group \"%s\" disagree on %s (this rank %lld, others from %lld to %lld)", op,
                      g->name, names[i], (long long)f[i], (long long)lo, (long long)hi);
    }
  }
  if (r[0] == 0) {
    for (int i = 0; i < nt; i++) tune[i] = r[1 + 2 * nf + i];
    return TPMM_SUCCESS;
  }

  return tpi_agree_error(g, op, (int)(INT64_MAX - r[0]), local, own);
}

tpmm_status_t tpi_agree_error(tpi_group_t *g, const char *op, int root, tpmm_status_t local, const char *own) {
  if (root == g->rank) {
    g->agree_msg.status = (int32_t)local;
    snprintf(g->agree_msg.msg, sizeof g->agree_msg.msg, "%s", own);
  }
  MPI_Request req;
  tpi_mpi_lock();
  int rc = MPI_Ibcast(&g->agree_msg, (int)sizeof g->agree_msg, MPI_BYTE, root, g->comm, &req);
  tpi_mpi_unlock();
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Ibcast (error report)");
  TPI_CHECK(tpi_wait(g, op, "the error report of a failing rank", 1, &req, 0));
  if (root == g->rank) return tpi_fail(local, "%s", own);
  g->agree_msg.msg[sizeof g->agree_msg.msg - 1] = '\0';
  /* bad arguments, or a resource (memory) the rank could not get ready */
  const tpmm_status_t rs = (tpmm_status_t)g->agree_msg.status;
  const char *what =
      rs == TPMM_ERR_NO_MEMORY || rs == TPMM_ERR_INTERNAL ? "could not prepare the call" : "rejected its arguments";
  return tpi_fail(rs, "rank %d of group \"%s\" %s: %s", root, g->name, what, g->agree_msg.msg);
}
