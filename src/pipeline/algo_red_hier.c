/*
 * algo_red_hier.c — "hier" of the reduce operators: groups spanning several
 * nodes with the same number (> 1) of ranks on each. A rank's partials for a
 * node cross the network once, in one message per chunk over its rail;
 * within a node they are read in place from the shared window.
 *
 * Description: rail l is the ranks with node rank l on every node
 *   (topology.c). Each rank multiplies into its segment of the node's window
 *   (fp32 partials at their output rows), chunk by chunk, remote nodes'
 *   units first; once the L units node b owns in chunk c are multiplied they
 *   leave in one MPI_Isend (an hindexed datatype over the partials, no copy)
 *   to node b's rank on the own rail, which receives them into a slot of its
 *   segment and flags them. An owner then finds all W partials of its unit
 *   in its node's segments and sums them in group-rank order (tpi_red_sum).
 *   Nothing is added before that sum: a node's ranks need not be consecutive
 *   in rank order, and fp32 addition is not associative. Owners sum a chunk
 *   once its partials are in, while later chunks are multiplied; MPI is
 *   polled between GEMM tiles and in every wait. matmul_all_reduce: the
 *   owner rounds its unit into its segment and sends it over its rail, whose
 *   ranks receive it at the same rows of theirs; each node then holds every
 *   rounded row in its segments, and every rank copies them out.
 * Steps (rank r on node b with node rank l; N nodes, L ranks per node):
 *   1. Wait until the node peers have finished reading the previous call.
 *   2. Post the rail's receives: each other node's partials for this node's
 *      owners (tag c), all_reduce its rounded unit of this rail (tag C + c).
 *   3. Chunk c: GEMM the units of each other node, send them; then the own
 *      node's (own last), flagged. Sum every own unit whose partials are in,
 *      in chunk order (all_reduce: flag and send the rounded rows).
 *   4. Sum the rest as their partials arrive; all_reduce: copy every rounded
 *      unit from the segment of its rail to the output.
 *   5. Wait for the rail's messages; done_seq = seq. Every wait honours
 *      TPMM_TIMEOUT_MS (then the group is marked broken).
 * Memory: per rank in the window (layout: red_hier.h), m*n fp32 partials,
 *   N-1 slots of this node's rows (m*n/N fp32 each), all_reduce m*n
 *   rounded elements; (L + 2N)*C flags; 4*N*C requests in the plan's
 *   request workspace. The rail's messages: red_hier_rail.c.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "../common/trace.h"
#include "red_hier.h"

/* Step 3's GEMM of chunk c: remote nodes' units, each node's sent at once,
 * then the own node's, flagged. */
static tpmm_status_t multiply(hier_t *H, const char *A, int c) {
  tpi_plan_t *p = H->p;
  const int64_t n = p->a.n;
  int64_t lo, hi;
  const int once = tpi_red_chunk_once(p, H->C, c, &lo, &hi);
  if (once) TPI_CHECK(tpi_red_gemm(p, A, lo, hi, part(H, H->l) + lo * n, tpi_hier_drive, H));
  for (int t = 1; t <= H->N; t++) {
    const int node = (H->b + t) % H->N;
    for (int u = 1; u <= H->L; u++) {
      const int lr = node == H->b ? (H->l + u) % H->L : u - 1; /* own unit last */
      const int64_t rows = rows_of(H, who(H, node, lr), c, &lo);
      if (!once) TPI_CHECK(tpi_red_gemm(p, A, lo, lo + rows, part(H, H->l) + lo * n, tpi_hier_drive, H));
      if (node == H->b) raise_flag(H, pflag(H, H->l, lr, c));
    }
    if (node != H->b) TPI_CHECK(tpi_hier_send_partials(H, node, c));
  }
  return tpi_hier_drive(H);
}

/* The W partials of the own unit of chunk c in rank order. wait 0: 0 if one
 * is not in yet; else wait for each (polling the rail). */
static tpmm_status_t partials(hier_t *H, int c, int wait, const float **parts, int *ready) {
  const int64_t n = H->p->a.n;
  int64_t lo;
  rows_of(H, H->p->g->rank, c, &lo);
  *ready = 1;
  for (int a = 0; a < H->N; a++)
    for (int j = 0; j < H->L; j++) {
      const uint64_t *f = a == H->b ? pflag(H, j, H->l, c) : rflag(H, j, a, c);
      if (!wait && __atomic_load_n(f, __ATOMIC_ACQUIRE) < H->seq) {
        *ready = 0;
        return TPMM_SUCCESS;
      }
      if (wait)
        TPI_CHECK(
            tpi_shm_wait(H->g, H->op, f, H->seq, "a partial product", who(H, H->b, j), H->deadline, tpi_hier_drive, H));
      parts[who(H, a, j)] = a == H->b ? part(H, j) + lo * n : slot(H, j, a) + slot_row(H, H->b, H->l, c) * n;
    }
  return TPMM_SUCCESS;
}

/* Sum the own unit of chunk c if its partials are in (wait: once they are);
 * all_reduce: flag the rounded rows and send them over the rail. */
static tpmm_status_t sum_own(hier_t *H, int c, int wait, int *summed) {
  tpi_plan_t *p = H->p;
  const tpi_call_t *a = &p->a;
  int64_t lo;
  const int64_t rows = rows_of(H, p->g->rank, c, &lo);
  const float *parts[a->W];
  int ready = 1;
  const double t0 = tpi_now();
  if (rows > 0) TPI_CHECK(partials(H, c, wait, parts, &ready));
  if (!ready) return TPMM_SUCCESS;
  if (wait) tpi_trace(TPI_EV_WAIT, t0, p->g->rank, c);
  ++*summed;
  if (!H->all) {
    tpi_red_sum(p, parts, rows, a->out.data + (size_t)(tpi_red_out_row(p, lo) * a->out.rs) * a->esize, a->out.rs);
    return TPMM_SUCCESS;
  }
  char *dst = rounded(H, H->l) + (size_t)(lo * a->n) * a->esize;
  tpi_red_sum(p, parts, rows, dst, a->n);
  raise_flag(H, dflag(H, H->l, H->b, c));
  return tpi_hier_send_rounded(H, dst, rows, c);
}

/* all_reduce, step 4: every rounded unit from the segment of its rail. */
static tpmm_status_t gather(hier_t *H) {
  for (int c = 0; c < H->C; c++)
    for (int j = 0; j < H->L; j++)
      for (int a = 0; a < H->N; a++) {
        int64_t lo;
        const int64_t rows = rows_of(H, who(H, a, j), c, &lo);
        if (rows == 0) continue;
        TPI_CHECK(tpi_shm_wait(H->g, H->op, dflag(H, j, a, c), H->seq, "a reduced block", who(H, H->b, j), H->deadline,
                               tpi_hier_drive, H));
        tpi_red_put(H->p, rounded(H, j) + (size_t)(lo * H->p->a.n) * H->p->a.esize, rows, lo);
      }
  return TPMM_SUCCESS;
}

/* Steps 3-5 once the receives are posted. */
static tpmm_status_t compute(hier_t *H, const char *A) {
  int summed = 0;
  for (int c = 0; c < H->C; c++) {
    TPI_CHECK(multiply(H, A, c));
    for (int more = 1; more && summed <= c;) {
      const int before = summed;
      TPI_CHECK(sum_own(H, summed, 0, &summed));
      more = summed > before;
    }
  }
  while (summed < H->C) TPI_CHECK(sum_own(H, summed, 1, &summed));
  if (H->all) TPI_CHECK(gather(H));
  return tpi_hier_drain(H);
}

/* The window: partials, N-1 slots, rounded rows; and the flags. */
static tpmm_status_t reserve(hier_t *H) {
  const tpi_call_t *a = &H->p->a;
  H->slot = 0;
  for (int node = 0; node < H->N; node++) { /* the same size on every rank */
    const int64_t rows = slot_row(H, node, 0, H->C);
    if (rows > H->slot) H->slot = rows;
  }
  const size_t f32 = (size_t)(a->m + (H->N - 1) * H->slot) * (size_t)a->n * sizeof(float);
  TPI_CHECK(tpi_shm_reserve(H->g, H->op, f32 + (H->all ? (size_t)(a->m * a->n) * a->esize : 0),
                            (H->L + H->N * (1 + H->all)) * H->C));
  H->s = H->g->shm;
  H->seq = ++H->s->seq;
  return TPMM_SUCCESS;
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  tpi_group_t *g = p->g;
  if (a->m == 0 || a->n == 0) return TPMM_SUCCESS;
  hier_t H = {.p = p, .op = op, .g = g, .C = tpi_red_chunks(p), .all = tpi_red_all(p), .deadline = tpi_deadline()};
  H.N = g->n_nodes, H.L = g->node_size, H.b = g->node_index, H.l = g->node_rank;
  H.req = p->red.reqs, H.done = (int *)(H.req + 4 * H.N * H.C);
  for (int i = 0; i < 4 * H.N * H.C; i++) H.req[i] = MPI_REQUEST_NULL;
  const char *A;
  TPI_CHECK(tpi_local_shard(p, op, &A));
  TPI_CHECK(reserve(&H));
  /* 1. the node peers are done reading this segment */
  const double t0 = tpi_now();
  for (int j = 0; j < H.L; j++)
    if (j != H.l)
      TPI_CHECK(tpi_shm_wait(g, op, &tpi_shm_hdr(H.s, j)->done_seq, H.seq - 1, "the end of the previous call",
                             who(&H, H.b, j), H.deadline, NULL, NULL));
  tpi_trace(TPI_EV_WAIT, t0, -1, -1);
  tpmm_status_t st = tpi_hier_post_receives(&H);
  if (st == TPMM_SUCCESS) st = compute(&H, A);
  if (st != TPMM_SUCCESS) { /* nothing may still write into the window */
    tpi_hier_cancel(&H);
    return st;
  }
  __atomic_store_n(&tpi_shm_hdr(H.s, H.l)->done_seq, H.seq, __ATOMIC_RELEASE);
  return TPMM_SUCCESS;
}

static int usable(const tpi_plan_t *p, char *why, size_t len) {
  const tpi_call_t *a = &p->a;
  const int64_t block = (a->m + a->W - 1) / a->W + 1; /* a unit's rows, at most */
  if (p->g->rail == MPI_COMM_NULL) {
    if (len)
      snprintf(why, len, "hier needs the group to span several nodes with the same number (> 1) of ranks on each");
    return TPI_UNUSABLE;
  }
  if (block * a->n * p->g->node_size > INT_MAX || block * a->n * (int64_t)a->esize > INT_MAX) {
    if (len)
      snprintf(why, len, "%d units of %lld rows of n=%lld exceed MPI's int count", p->g->node_size, (long long)block,
               (long long)a->n);
    return TPI_UNUSABLE;
  }
  return 40; /* partials cross the network once per node, in fewer messages than ring's */
}

/* A rank's messages leave one after another on its rail, one per other node
 * and chunk once that node's units are multiplied and a poll has answered
 * (half a GEMM tile, paid when the rail waits for the message, as in
 * ring's simulation; rails do not share a link here, as ring's ranks do
 * not); node peers' partials cost nothing. The CPU does every GEMM and sum
 * and pays m->cpu_byte for each byte its rail sends or receives (partials
 * for every rank of the other nodes out, for every rank of its own in;
 * all_reduce: its own rounded rows out and in); the last sum
 * (all_reduce: and the copy out) follows the last message. */
static double simulate(const tpi_plan_t *p, const tpi_model_t *m, int C) {
  const tpi_call_t *a = &p->a;
  const tpi_group_t *g = p->g;
  const int N = g->n_nodes, L = g->node_size, all = tpi_red_all(p);
  const double lag = tpi_model_gemm(m, (double)m->tile) / 2, row = (double)a->n * 4.0 / m->beta;
  double cpu = 0, link = 0;
  int64_t lo, hi, own = 0, mine = 0; /* mine: this node's rows of a chunk, which each other node's rail sends */
  for (int c = 0; c < C; c++) {
    const int once = tpi_red_chunk_once(p, C, c, &lo, &hi);
    if (once) cpu += tpi_red_gemm_time(p, m, hi - lo);
    for (int t = 1; t <= N; t++) {
      const int node = (g->node_index + t) % N;
      int64_t rows = 0;
      for (int j = 0; j < L; j++) {
        tpi_red_unit(p, C, g->grank_of[node * L + j], c, &lo, &hi);
        if (!once) cpu += tpi_red_gemm_time(p, m, hi - lo);
        rows += hi - lo;
      }
      if (node == g->node_index) mine = rows;
      if (node != g->node_index && rows > 0) {
        cpu += (double)rows * (double)a->n * 4.0 * m->cpu_byte;
        link = fmax(link, cpu + lag) + m->alpha + (double)rows * row;
      }
    }
    tpi_red_unit(p, C, g->rank, c, &lo, &hi);
    own = hi - lo;
    cpu += tpi_red_sum_time(p, own) + (double)(N - 1) * (double)a->n *
                                          (4.0 * (double)mine + (all ? 2.0 * a->esize * (double)own : 0)) * m->cpu_byte;
    if (all && own > 0) link += lag + (N - 1) * (m->alpha + (double)(own * a->n) * (double)a->esize / m->beta);
  }
  const double copy = all ? (double)(a->m * a->n) * (double)a->esize / 8e9 : 0;
  return fmax(cpu, link + tpi_red_sum_time(p, own)) + copy;
}

static double predict(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  return tpi_red_best_chunks(p, m, chunks, simulate);
}

const tpi_algo_t tpi_algo_red_hier = {TPMM_ALGO_HIER, true, usable, predict, run};
