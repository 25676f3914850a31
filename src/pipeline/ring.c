/*
 * ring.c — setting a ring up (ring.h): how chunks are cut into messages
 * within MPI's int counts and tag range, and the bookkeeping the plan
 * reserves for them before the agreement. ring_run.c runs it.
 */
#include <limits.h>
#include <string.h>

#include "ring_geom.h"

tpmm_status_t tpi_ring_init(ring_t *R, tpi_plan_t *p, const char *op, MPI_Comm comm, int W, int r, int bidir, char *G,
                            const char *local) {
  memset(R, 0, sizeof *R);
  R->p = p;
  R->op = op;
  R->comm = comm;
  R->W = W;
  R->r = r;
  R->C = p->chunks;
  R->bidir = bidir && W > 2 && R->C >= 2;
  R->deadline = tpi_deadline();
  R->crowded = tpi_group_link_yields(p->g);
  R->G = G;
  R->local = local;
  R->window = tpi_params.send_window;
  int *tag_ub = NULL, flag = 0;
  MPI_Comm_get_attr(comm, MPI_TAG_UB, &tag_ub, &flag);
  /* the top tags of the group's communicator carry its agreements */
  const int64_t limit = (flag && tag_ub ? *tag_ub : 32767) - TPI_AGREE_TAGS;
  int64_t seg, S;
  /* chunks of at most tpi_chunk_rows_max rows (uneven shards, x2's panels): ceil(m / C) of m = that times C */
  const int64_t m_seg = tpi_chunk_rows_max(&p->a, R->C) * R->C;
  if (!tpi_ring_segments(m_seg, R->C, (int64_t)tpi_row_bytes(&p->a), p->segment_bytes, W, limit, &seg, &S))
    return tpi_fail(TPMM_ERR_UNSUPPORTED, "%s: %d ranks x %d chunks exceed MPI_TAG_UB=%lld", op, W, R->C,
                    (long long)limit);
  R->seg_rows = (int)seg;
  R->S = (int)S;
  size_t n = (size_t)W * (size_t)R->C;
  R->nmsg = (int)(n * (size_t)R->S);
  /* the arrays live in the plan's ring workspace, sized by reserve() before
   * the agreement for any schedule the ranks can agree on; growing it here
   * cannot happen by construction, and is still handled */
  const size_t need = ring_ws_need((size_t)R->nmsg, n);
  TPI_CHECK(tpi_ws_reserve(&p->ring_ws, &p->ring_ws_bytes, need, op, "the ring's bookkeeping"));
  char *ws = p->ring_ws;
  R->recv = (MPI_Request *)ws;
  R->send = R->recv + R->nmsg;
  R->done_idx = (int *)(R->send + R->nmsg);
  R->sendq = R->done_idx + R->nmsg;
  R->arrived = R->sendq + 2 * (size_t)R->nmsg;
  R->seg_left = R->arrived + n;
  R->seg_in = R->seg_left + n;
  memset(R->arrived, 0, (2 * n + (size_t)R->nmsg) * sizeof(int));
  for (int i = 0; i < R->nmsg; i++) R->recv[i] = R->send[i] = MPI_REQUEST_NULL;
  return TPMM_SUCCESS;
}

static int64_t seg_cap(int64_t row_bytes) { return row_bytes > 0 && row_bytes < INT_MAX ? INT_MAX / row_bytes : 1; }

int tpi_ring_segments(int64_t m, int C, int64_t row_bytes, int64_t segment_bytes, int W, int64_t tag_limit,
                      int64_t *seg_rows, int64_t *per_chunk) {
  const int64_t max_rows = (m + C - 1) / C, cap = seg_cap(row_bytes);
  int64_t seg = row_bytes > 0 && segment_bytes > 0 ? segment_bytes / row_bytes : max_rows;
  seg = seg < 1 ? 1 : seg > max_rows ? (max_rows > 0 ? max_rows : 1) : seg;
  if (seg > cap) seg = cap;
  for (;;) { /* fewer, larger messages until their tags fit */
    int64_t S = (max_rows + seg - 1) / seg;
    if (S < 1) S = 1;
    if ((int64_t)W * C * S <= tag_limit || seg >= max_rows || seg >= cap) {
      *seg_rows = seg, *per_chunk = S;
      return (int64_t)W * C * S <= tag_limit;
    }
    seg = seg * 2 > max_rows ? max_rows : seg * 2;
    if (seg > cap) seg = cap;
  }
}

size_t tpi_ring_ws_bound(int64_t m, int64_t row_bytes, int W, int64_t max_chunks, int64_t segment_bytes) {
  if (m < 1 || W < 1) return 0;
  const int64_t C = max_chunks < 1 ? 1 : max_chunks > m ? m : max_chunks;
  /* S(C) = ceil(ceil(m/C) / seg) messages per chunk with seg >= this rank's
   * segment rows (the agreed size is the largest of the ranks'), so
   * W*C*S <= W*(ceil((m + C) / seg) + C), and C <= max_chunks */
  int64_t seg = segment_bytes > 0 && row_bytes > 0 ? segment_bytes / row_bytes : m;
  if (seg < 1) seg = 1;
  if (seg > seg_cap(row_bytes)) seg = seg_cap(row_bytes);
  const int64_t nmsg = (int64_t)W * ((m + C + seg - 1) / seg + C);
  return ring_ws_need((size_t)nmsg, (size_t)W * (size_t)C);
}

void tpi_ring_free(ring_t *R) {
  /* the arrays belong to the plan's workspace */
  R->recv = R->send = NULL;
  R->arrived = R->done_idx = R->sendq = R->seg_left = R->seg_in = NULL;
}
