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
 *   schedule). matmul_all_reduce then gathers the rounded blocks
 *   (MPI_Allgatherv). Every fused schedule must match it bit for bit
 *   (TPMM_ALGO=unfused forces it).
 * Steps:
 *   1. Pack the input to dense rows if needed (pack.c).
 *   2. One GEMM: partials (m, n) fp32 = input @ x2.
 *   3. MPI_Alltoallv: block q (reduce_scatter: rows q*m/W.. of m/W; all_reduce:
 *      the W parts of the m rows) to rank q; the non-blocking MPI_Ialltoallv
 *      polled against the deadline when any rank has a timeout (agreed).
 *   4. Sum the W received blocks in rank order, AVG, bias, one rounding: the
 *      output (reduce_scatter), or this rank's rows of it (all_reduce).
 *   5. all_reduce: MPI_Allgatherv of the rounded blocks (in place), straight
 *      into a dense output, else into a staging copy that is then copied.
 * Memory: m*n fp32 partials, W blocks of m/W rows of fp32 received; all_reduce
 *   into a strided output, m*n elements of staging; m*k if the input needs
 *   packing. The collectives' count arrays live in the ring's request
 *   workspace (4*W ints fit), not on the stack.
 */
#include <limits.h>

#include "reduce.h"

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
  const int per_row = type == MPI_FLOAT ? (int)a->n : 1;
  for (int j = 0; j < W; j++) rc[j] = (int)own * per_row, rd[j] = j * rc[j];
  MPI_Request req = MPI_REQUEST_NULL;
  int e = p->nonblocking ? MPI_Ialltoallv(p->red.part, sc, sd, type, p->red.recv, rc, rd, type, p->g->comm, &req)
                         : MPI_Alltoallv(p->red.part, sc, sd, type, p->red.recv, rc, rd, type, p->g->comm);
  free_type(&type, MPI_FLOAT);
  if (e != MPI_SUCCESS) return tpi_mpi_fail(e, op, "MPI_Alltoallv of the partial products");
  if (req != MPI_REQUEST_NULL) TPI_CHECK(tpi_wait(p->g, op, "MPI_Ialltoallv of the partial products", 1, &req, 0));
  return TPMM_SUCCESS;
}

/* Step 5: every rank's rounded block, in place in dst (dense rows). */
static tpmm_status_t gather(tpi_plan_t *p, const char *op, char *dst) {
  const tpi_call_t *a = &p->a;
  int *count = p->red.reqs, *displ = count + a->W; /* as in exchange() */
  MPI_Datatype type;
  TPI_CHECK(blocks(p, op, a->n * (int64_t)a->esize, MPI_BYTE, 1, count, displ, &type));
  MPI_Request req = MPI_REQUEST_NULL;
  int e = p->nonblocking ? MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_BYTE, dst, count, displ, type, p->g->comm, &req)
                         : MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, dst, count, displ, type, p->g->comm);
  free_type(&type, MPI_BYTE);
  if (e != MPI_SUCCESS) return tpi_mpi_fail(e, op, "MPI_Allgatherv of the reduced rows");
  if (req != MPI_REQUEST_NULL) TPI_CHECK(tpi_wait(p->g, op, "MPI_Iallgatherv of the reduced rows", 1, &req, 0));
  return TPMM_SUCCESS;
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  const int W = a->W, r = p->g->rank, all = tpi_red_all(p);
  if (a->m == 0 || a->n == 0) return TPMM_SUCCESS;
  const char *A;
  TPI_CHECK(tpi_local_shard(p, op, &A));
  TPI_CHECK(tpi_red_gemm(p, A, 0, a->m, p->red.part, NULL, NULL));
  int64_t lo, hi;
  tpi_red_unit(p, 1, r, 0, &lo, &hi);
  if (W > 1) TPI_CHECK(exchange(p, op, hi - lo));
  const float *parts[W];
  for (int q = 0; q < W; q++) parts[q] = W > 1 ? p->red.recv + (size_t)(q * (hi - lo) * a->n) : p->red.part;
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
  if (*chunks <= 0) *chunks = 1;
  return tpi_red_gemm_time(p, m, p->a.m) + m->t_xfer + tpi_red_sum_time(p, (p->a.m + p->a.W - 1) / p->a.W);
}

const tpi_algo_t tpi_algo_red_unfused = {TPMM_ALGO_UNFUSED, false, usable, predict, run};
