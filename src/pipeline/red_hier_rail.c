/*
 * red_hier_rail.c — hier's rail (red_hier.h): the messages of the reduce
 * operators' hierarchical schedule between the ranks with the same node
 * rank, and the flags that tell the node peers what has arrived.
 */
#include "../common/trace.h"
#include "red_hier.h"

tpmm_status_t tpi_hier_drive(void *ctx) {
  hier_t *H = ctx;
  if (H->pending == 0) return TPMM_SUCCESS;
  int n = 0;
  int rc = MPI_Testsome(4 * H->N * H->C, H->req, &n, H->done, MPI_STATUSES_IGNORE);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, H->op, "MPI_Testsome on the rail's messages");
  for (int i = 0; i < (n == MPI_UNDEFINED ? 0 : n); i++) {
    const int kind = H->done[i] / (H->N * H->C), c = H->done[i] / H->N % H->C, a = H->done[i] % H->N;
    if (kind == PRECV) raise_flag(H, rflag(H, H->l, a, c));
    if (kind == RRECV) raise_flag(H, dflag(H, H->l, a, c));
    H->pending--;
  }
  return TPMM_SUCCESS;
}

/* Count request i as pending once MPI has taken it. */
static tpmm_status_t post(hier_t *H, int rc, int i, const char *what) {
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, H->op, what);
  H->pending += H->req[i] != MPI_REQUEST_NULL;
  return TPMM_SUCCESS;
}

/* Receive count elements from node src into buf; none: raise f now. */
static tpmm_status_t recv(hier_t *H, int i, void *buf, int64_t count, MPI_Datatype type, int src, int tag,
                          uint64_t *f) {
  if (count == 0) return raise_flag(H, f), TPMM_SUCCESS;
  return post(H, MPI_Irecv(buf, (int)count, type, src, tag, H->g->rail, &H->req[i]), i, "MPI_Irecv over the rail");
}

tpmm_status_t tpi_hier_post_receives(hier_t *H) {
  const tpi_call_t *a = &H->p->a;
  for (int c = 0; c < H->C; c++)
    for (int t = 1; t < H->N; t++) {
      const int src = (H->b + t) % H->N;
      const int64_t r0 = slot_row(H, H->b, 0, c), rows = slot_row(H, H->b, 0, c + 1) - r0;
      TPI_CHECK(recv(H, ri(H, PRECV, c, src), slot(H, H->l, src) + r0 * a->n, rows * a->n, MPI_FLOAT, src, c,
                     rflag(H, H->l, src, c)));
      int64_t lo;
      const int64_t own = rows_of(H, who(H, src, H->l), c, &lo);
      if (H->all)
        TPI_CHECK(recv(H, ri(H, RRECV, c, src), rounded(H, H->l) + (size_t)(lo * a->n) * a->esize,
                       own * a->n * (int64_t)a->esize, MPI_BYTE, src, H->C + c, dflag(H, H->l, src, c)));
    }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_hier_send_partials(hier_t *H, int to, int c) {
  const int64_t n = H->p->a.n;
  int len[H->L];
  MPI_Aint disp[H->L];
  int64_t total = 0, lo;
  for (int j = 0; j < H->L; j++) {
    const int64_t rows = rows_of(H, who(H, to, j), c, &lo);
    len[j] = (int)(rows * n), disp[j] = (MPI_Aint)(lo * n) * (MPI_Aint)sizeof(float), total += rows;
  }
  if (total == 0) return TPMM_SUCCESS;
  MPI_Datatype type;
  const double t0 = tpi_now();
  int rc = MPI_Type_create_hindexed(H->L, len, disp, MPI_FLOAT, &type);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, H->op, "MPI_Type_create_hindexed (a node's units)");
  TPI_LIVE(TPI_LIVE_TYPE, 1);
  rc = MPI_Type_commit(&type);
  const int i = ri(H, PSEND, c, to);
  if (rc == MPI_SUCCESS) rc = MPI_Isend(part(H, H->l), 1, type, to, c, H->g->rail, &H->req[i]);
  MPI_Type_free(&type), TPI_LIVE(TPI_LIVE_TYPE, -1); /* a pending send keeps what it needs */
  tpi_trace(TPI_EV_SEND, t0, who(H, to, H->l), c);
  return post(H, rc, i, "MPI_Isend of partial products");
}

tpmm_status_t tpi_hier_send_rounded(hier_t *H, const char *dst, int64_t rows, int c) {
  const tpi_call_t *a = &H->p->a;
  for (int t = 1; t < H->N && rows > 0; t++) {
    const int to = (H->b + t) % H->N, i = ri(H, RSEND, c, to);
    TPI_CHECK(post(H, MPI_Isend(dst, (int)(rows * a->n * a->esize), MPI_BYTE, to, H->C + c, H->g->rail, &H->req[i]), i,
                   "MPI_Isend of reduced rows"));
  }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_hier_drain(hier_t *H) {
  tpi_spin_t spin = {H->deadline, tpi_group_link_yields(H->g)};
  TPI_CHECK(tpi_hier_drive(H));
  while (H->pending > 0) {
    TPI_CHECK(tpi_spin(H->g, H->op, "the rail's messages", &spin));
    TPI_CHECK(tpi_hier_drive(H));
  }
  return TPMM_SUCCESS;
}

void tpi_hier_cancel(hier_t *H) {
  for (int i = 0; i < 4 * H->N * H->C; i++)
    if (H->req[i] != MPI_REQUEST_NULL) MPI_Cancel(&H->req[i]), MPI_Request_free(&H->req[i]);
}
