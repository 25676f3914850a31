/*
 * algo_red_unfused.c — "unfused" of the reduce operators: the reference and
 * the baseline.
 *
 * Description: what a user writes by hand: the whole GEMM into fp32
 *   partials, then the exchange, then the sum. Not MPI_Reduce_scatter_block
 *   or MPI_Allreduce: MPI leaves their order of summation unspecified, and
 *   the contract is group-rank order. So the exchange is an MPI_Alltoallv of
 *   the partial blocks (block q to its owner q), and the owner sums the W
 *   blocks it received in rank order (tpi_red_sum, shared by every
 *   schedule). matmul_all_reduce then gathers the rounded blocks (one
 *   message to and from each peer). Every fused schedule must match it bit for bit
 *   (TPMM_ALGO=unfused forces it).
 *   Small partials fold into the agreement instead (tpi_red_folds: what one
 *   peer gets fits tpi_agree_fold_cap): the GEMM runs before the agreement,
 *   which carries each peer's block (reduce_scatter) or all the partials
 *   (all_reduce), so a call costs one round trip, as a hand-written
 *   MPI_Reduce_scatter_block / MPI_Allreduce. Such a call is committed to
 *   unfused before the ranks agree (choose.c): its GEMM is done.
 * Steps:
 *   0. The fold (tpi_red_fold, before the agreement, only on a rank whose
 *      arguments passed): steps 1 and 2 into the workspace, never the
 *      output; a GEMM failure is then this rank's status in the agreement.
 *      If every rank's partials came: sum the W that came with it in rank
 *      order, AVG, bias, one rounding, straight into the output (all_reduce:
 *      every rank sums every row), and stop.
 *   1. Pack the input to dense rows if needed (pack.c).
 *   2. One GEMM: partials (m, n) fp32 = input @ x2 (unless step 0 did).
 *   3. MPI_Alltoallv: block q (reduce_scatter: rows q*m/W.. of m/W; all_reduce:
 *      the W parts of the m rows) to rank q != r; the non-blocking
 *      MPI_Ialltoallv polled against the deadline when any rank has a
 *      timeout (agreed).
 *   4. Sum the W blocks in rank order (the own one where the GEMM left it),
 *      AVG, bias, one rounding: the output (reduce_scatter), or this rank's
 *      rows of it (all_reduce).
 *   5. all_reduce: the rounded blocks to and from every peer (MPI_Isend /
 *      MPI_Irecv, in place), straight into a dense output, else into a
 *      staging copy that is then copied.
 * Memory: m*n fp32 partials, W blocks of m/W rows of fp32 received (folded:
 *   they stay in the agreement's buffers and are summed there); all_reduce
 *   into a strided output, m*n elements of staging; m*k if the input needs
 *   packing. The count arrays and the gather's 2*(W-1) requests live in
 *   the ring's request workspace (they fit), not on the stack.
 */
#include <limits.h>

#include "reduce.h"

/* What one peer gets with the agreement: its block, or all_reduce's rows. */
static size_t fold_bytes(const tpi_plan_t *p) {
  const tpi_call_t *a = &p->a;
  return (size_t)((tpi_red_all(p) ? a->m : a->m / a->W) * a->n) * sizeof(float);
}

int tpi_red_folds(const tpi_plan_t *p) {
  const tpi_call_t *a = &p->a;
  const int algo = tpi_params.algo;
  return a->W > 1 && a->m > 0 && a->n > 0 && !tpi_debug.no_fold &&
         (algo == TPMM_ALGO_AUTO || algo == TPMM_ALGO_UNFUSED) && fold_bytes(p) <= tpi_agree_fold_cap(p->g);
}

tpmm_status_t tpi_red_fold(tpi_plan_t *p, const char *op, tpmm_status_t st, int data, tpi_fold_t *f) {
  const tpi_call_t *a = &p->a;
  p->red.multiplied = 0;
  /* a plan folds while unfused is its tuner's next pick (the same on every rank; a plan that folds has no
   * runner-up, choose.c, so the pick before the previous call's time is recorded is the one that runs) */
  if (st != TPMM_SUCCESS || !data || (p->tuner && p->tuner->cand[tpi_tuner_pick(p->tuner)].algo != TPMM_ALGO_UNFUSED))
    return st;
  const char *A;
  TPI_CHECK(tpi_local_shard(p, op, &A));
  p->gemm_status = TPMM_SUCCESS;
  TPI_CHECK(tpi_red_gemm(p, A, 0, a->m, p->red.part, NULL, NULL));
  if (p->gemm_status != TPMM_SUCCESS) return tpi_fail(p->gemm_status, "%s", p->gemm_msg);
  p->red.multiplied = 1;
  f->bytes = fold_bytes(p);
  f->src = (const char *)p->red.part;
  f->stride = tpi_red_all(p) ? 0 : f->bytes; /* reduce_scatter: peer q's block starts q blocks in */
  return TPMM_SUCCESS;
}

/* The W row blocks [lo_q, hi_q) of the partials (row_bytes each row) as MPI
 * counts and displacements: in `unit` bytes when every offset fits an int,
 * else in rows of a contiguous datatype (*type to be freed if not unit). */
static tpmm_status_t blocks(const tpi_plan_t *p, const char *op, int64_t row_bytes, MPI_Datatype unit, int unit_bytes,
                            int *count, int *displ, MPI_Datatype *type) {
  const tpi_call_t *a = &p->a;
  const int fits = a->m * row_bytes / unit_bytes <= INT_MAX;
  const int64_t per_row = fits ? row_bytes / unit_bytes : 1;
  *type = unit;
  if (!fits) {
    int rc = MPI_Type_contiguous((int)(row_bytes / unit_bytes), unit, type);
    if (rc == MPI_SUCCESS) TPI_LIVE(TPI_LIVE_TYPE, 1), rc = MPI_Type_commit(type);
    if (rc != MPI_SUCCESS) {
      if (*type != unit) MPI_Type_free(type), TPI_LIVE(TPI_LIVE_TYPE, -1);
      return tpi_mpi_fail(rc, op, "MPI_Type_contiguous (one row)");
    }
  }
  for (int q = 0; q < a->W; q++) {
    int64_t lo, hi;
    tpi_red_unit(p, 1, q, 0, &lo, &hi);
    count[q] = (int)((hi - lo) * per_row);
    displ[q] = (int)(lo * per_row);
  }
  return TPMM_SUCCESS;
}

static void free_type(MPI_Datatype *type, MPI_Datatype unit) {
  if (*type != unit) MPI_Type_free(type), TPI_LIVE(TPI_LIVE_TYPE, -1);
}

/* Step 3: block q of the partials to rank q; slot j of recv from rank j. */
static tpmm_status_t exchange(tpi_plan_t *p, const char *op, int64_t own) {
  const tpi_call_t *a = &p->a;
  const int W = a->W;
  /* in the plan's workspace: a non-blocking collective reads them until it
   * completes, which after a timeout may be after this call has returned */
  int *sc = p->red.reqs, *sd = sc + W, *rc = sd + W, *rd = rc + W;
  MPI_Datatype type;
  TPI_CHECK(blocks(p, op, a->n * 4, MPI_FLOAT, 4, sc, sd, &type));
  const int per_row = type == MPI_FLOAT ? (int)a->n : 1, r = p->g->rank;
  for (int j = 0; j < W; j++) rc[j] = (int)own * per_row, rd[j] = j * rc[j];
  sc[r] = rc[r] = 0; /* this rank's own block is summed where the GEMM left it */
  MPI_Request req = MPI_REQUEST_NULL;
  int e = p->nonblocking ? MPI_Ialltoallv(p->red.part, sc, sd, type, p->red.recv, rc, rd, type, p->g->comm, &req)
                         : MPI_Alltoallv(p->red.part, sc, sd, type, p->red.recv, rc, rd, type, p->g->comm);
  free_type(&type, MPI_FLOAT);
  if (e != MPI_SUCCESS) return tpi_mpi_fail(e, op, "MPI_Alltoallv of the partial products");
  if (req != MPI_REQUEST_NULL) TPI_CHECK(tpi_wait(p->g, op, "MPI_Ialltoallv of the partial products", 1, &req, 0));
  return TPMM_SUCCESS;
}

/* Step 5: every rank's rounded block, in place in dst (dense rows), by one
 * message to and from each peer: MPICH's MPI_Allgatherv took three times as
 * long for the same bytes (bench/RESULTS.md §39). Tag 0 on the group's
 * communicator: a peer's next messages to this rank come after these
 * (MPI does not let them overtake), and a peer's earlier ones were matched
 * within their own call. */
static tpmm_status_t gather(tpi_plan_t *p, const char *op, char *dst) {
  const tpi_call_t *a = &p->a;
  const int W = a->W, r = p->g->rank;
  int *count = p->red.reqs, *displ = count + W; /* as in exchange(); the requests after them */
  MPI_Request *req = (MPI_Request *)((char *)p->red.reqs + ((2 * (size_t)W * sizeof(int) + 15) & ~(size_t)15));
  MPI_Datatype type;
  TPI_CHECK(blocks(p, op, a->n * (int64_t)a->esize, MPI_BYTE, 1, count, displ, &type));
  const int unit = type == MPI_BYTE ? 1 : (int)(a->n * (int64_t)a->esize);
  int n = 0, e = MPI_SUCCESS;
  for (int t = 1; t < W && e == MPI_SUCCESS; t++) { /* receives first: a message finds its buffer */
    const int q = (r + t) % W;
    e = MPI_Irecv(dst + (size_t)displ[q] * (size_t)unit, count[q], type, q, 0, p->g->comm, &req[n]);
    n += e == MPI_SUCCESS;
  }
  for (int t = 1; t < W && e == MPI_SUCCESS; t++) {
    const int q = (r + W - t) % W;
    e = MPI_Isend(dst + (size_t)displ[r] * (size_t)unit, count[r], type, q, 0, p->g->comm, &req[n]);
    n += e == MPI_SUCCESS;
  }
  free_type(&type, MPI_BYTE); /* a datatype in use by pending requests may be freed (MPI 3.1, 4.1) */
  tpmm_status_t st = e == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(e, op, "MPI_Isend / MPI_Irecv of the reduced rows");
  /* what was posted completes (or, after a timeout, is cancelled) before the buffers can go */
  const tpmm_status_t wst = n ? tpi_wait(p->g, op, "the reduced rows of the peers", n, req, 1) : TPMM_SUCCESS;
  return st != TPMM_SUCCESS ? st : wst;
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  const int W = a->W, r = p->g->rank, all = tpi_red_all(p);
  if (a->m == 0 || a->n == 0) return TPMM_SUCCESS;
  if (p->gathered) { /* step 0: what rank q sent this rank is its partials of this rank's rows */
    const float *folded[W];
    for (int q = 0; q < W; q++) folded[q] = (const float *)p->gathered[q];
    tpi_red_sum(p, folded, all ? a->m : a->m / W, a->out.data, a->out.rs);
    __atomic_add_fetch(&tpi_debug.folded, 1, __ATOMIC_RELAXED);
    return TPMM_SUCCESS;
  }
  if (!p->red.multiplied) { /* some rank did not fold: the partials travel below */
    const char *A;
    TPI_CHECK(tpi_local_shard(p, op, &A));
    TPI_CHECK(tpi_red_gemm(p, A, 0, a->m, p->red.part, NULL, NULL));
  }
  int64_t lo, hi;
  tpi_red_unit(p, 1, r, 0, &lo, &hi);
  if (W > 1) TPI_CHECK(exchange(p, op, hi - lo));
  const float *parts[W];
  for (int q = 0; q < W; q++)
    parts[q] = q != r ? p->red.recv + (size_t)(q * (hi - lo) * a->n) : p->red.part + lo * a->n;
  /* all_reduce: the whole output (or its dense staging), own rows first */
  const int staged = all && a->out.rs != a->n;
  char *dst = staged ? p->red.stage : a->out.data;
  const int64_t ld = staged ? a->n : a->out.rs, row0 = all ? lo : 0;
  tpi_red_sum(p, parts, hi - lo, dst + (size_t)(row0 * ld) * a->esize, ld);
  if (all && W > 1) TPI_CHECK(gather(p, op, dst));
  if (staged) tpi_red_put(p, dst, a->m, 0);
  return TPMM_SUCCESS;
}

static int usable(const tpi_plan_t *p, char *why, size_t len) {
  (void)p, (void)why, (void)len;
  return 1; /* runs anywhere; lowest priority: only the fallback of auto */
}

static double predict(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  const tpi_call_t *a = &p->a;
  if (*chunks <= 0) *chunks = 1;
  /* folded partials ride the agreement every call makes: their bytes, no latency of their own */
  if (p->folds == TPI_FOLD_PARTIALS)
    return tpi_red_gemm_time(p, m, a->m) + (a->W - 1) * (double)fold_bytes(p) / m->beta +
           tpi_red_sum_time(p, tpi_red_all(p) ? a->m : a->m / a->W);
  return tpi_red_gemm_time(p, m, a->m) + m->t_xfer + tpi_red_sum_time(p, (a->m + a->W - 1) / a->W);
}

const tpi_algo_t tpi_algo_red_unfused = {TPMM_ALGO_UNFUSED, false, usable, predict, run};
