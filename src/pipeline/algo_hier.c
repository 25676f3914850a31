/*
 * algo_hier.c — "hier": groups spanning several nodes with several ranks on
 * each (the same number per node): a ring across nodes per "rail", shared
 * windows within the node.
 *
 * Description: the ranks with the same node rank l on every node form rail l
 *   (topology.c builds it). Each rank runs the chunked ring (ring.h) over its
 *   rail, receiving the shards of its rail peers straight into its own
 *   segment of the node's shared window, one slot per node, and raising a
 *   ready flag per chunk as it lands. Node peers read those slots in place,
 *   so every shard crosses the network once per node (not once per rank) and
 *   all node_size rails carry traffic at the same time.
 * Steps (rank on node a with node rank l; N nodes, L ranks per node):
 *   1. Wait until the node peers have finished reading the previous call.
 *   2. Copy the local shard into slot a of the segment; flag its chunks.
 *   3. Start the rail ring (receives into slots b != a, flagged on arrival).
 *   4. GEMM the local shard, then the rail's shards as they arrive.
 *   5. For each node peer l' and node b: spin on its flag for (b, c) while
 *      polling the own rail, GEMM the rows in place, copy to gather_out.
 *   6. Wait for the rail sends; done_seq = seq.
 * Memory: N*m*k elements per rank in the shared window (one slot per node of
 *   the largest shard's m rows) plus N*C flags.
 */
#include <stdio.h>
#include <string.h>

#include "../comm/shm.h"
#include "../common/trace.h"
#include "ring.h"

typedef struct {
  tpi_shm_hdr_t *me;
  int C;
  uint64_t seq;
} flag_ctx_t;

static void on_arrive(void *ctx, int b, int c) {
  flag_ctx_t *f = ctx;
  __atomic_store_n(&f->me->ready[b * f->C + c], f->seq, __ATOMIC_RELEASE);
}

static tpmm_status_t node_peers(ring_t *R, tpi_shm_t *s, uint64_t seq) {
  tpi_plan_t *p = R->p;
  const tpi_call_t *a = &p->a;
  tpi_group_t *g = p->g;
  const int L = g->node_size, N = g->n_nodes, C = p->chunks, l = g->node_rank;
  const size_t rb = (size_t)a->k * a->esize;
  for (int t = 1; t < L; t++) {
    const int lp = (l + t) % L;
    tpi_shm_hdr_t *h = tpi_shm_hdr(s, lp);
    for (int u = 0; u < N; u++) {
      const int b = (g->node_index + N - u) % N; /* own node first, then as the ring delivers */
      const int grank = g->grank_of[b * L + lp];
      for (int c = 0; c < C; c++) {
        double t0 = tpi_now();
        TPI_CHECK(tpi_shm_wait(g, R->op, &h->ready[b * C + c], seq, "a published chunk",
                               g->grank_of[g->node_index * L + lp], R->deadline, tpi_ring_poll, R));
        tpi_trace(TPI_EV_WAIT, t0, grank, c);
        int64_t lo = tpi_shard_chunk_lo(a, grank, C, c), hi = tpi_shard_chunk_lo(a, grank, C, c + 1);
        const char *src = tpi_shm_rows(s, lp) + rb * (size_t)(b * tpi_rows_max(a) + lo);
        TPI_CHECK(tpi_gemm_chunk(p, src, grank, lo, hi, c, tpi_ring_poll, R));
      }
    }
  }
  return TPMM_SUCCESS;
}

static tpmm_status_t run(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  tpi_group_t *g = p->g;
  if (tpi_rows_total(a) == 0) return TPMM_SUCCESS;
  const int N = g->n_nodes, L = g->node_size, C = p->chunks, l = g->node_rank;
  /* one slot per node, of the largest shard's rows */
  const size_t rb = (size_t)a->k * a->esize, shard = rb * (size_t)tpi_rows_max(a);
  const char *local;
  TPI_CHECK(tpi_local_shard(p, op, &local));
  TPI_CHECK(tpi_shm_reserve(g, op, shard * (size_t)N, N * C));
  tpi_shm_t *s = g->shm;
  const uint64_t seq = ++s->seq;
  tpi_shm_hdr_t *me = tpi_shm_hdr(s, l);
  const double deadline = tpi_deadline();

  /* 1. peers done with the previous call (they read our slots) */
  double t0 = tpi_now();
  for (int j = 0; j < L; j++)
    if (j != l)
      TPI_CHECK(tpi_shm_wait(g, op, &tpi_shm_hdr(s, j)->done_seq, seq - 1, "the end of the previous call",
                             g->grank_of[g->node_index * L + j], deadline, NULL, NULL));
  tpi_trace(TPI_EV_WAIT, t0, -1, -1);
  /* 2. publish the local shard in slot node_index */
  char *G = tpi_shm_rows(s, l);
  char *mine = G + shard * (size_t)g->node_index;
  me->by_ref = 0;
  for (int c = 0; c < C; c++) {
    int64_t lo = tpi_shard_chunk_lo(a, g->rank, C, c), hi = tpi_shard_chunk_lo(a, g->rank, C, c + 1);
    memcpy(mine + rb * (size_t)lo, local + rb * (size_t)lo, rb * (size_t)(hi - lo));
    __atomic_store_n(&me->ready[g->node_index * C + c], seq, __ATOMIC_RELEASE);
  }
  /* 3-6. the rail ring, then the node peers */
  int out_rank[N];
  for (int b = 0; b < N; b++) out_rank[b] = g->grank_of[b * L + l];
  flag_ctx_t fc = {me, C, seq};
  ring_t R;
  TPI_CHECK(tpi_ring_init(&R, p, op, g->rail, N, g->node_index, N > 2, G, mine));
  R.out_rank = out_rank;
  R.slot_rows = tpi_rows_max(a);
  R.on_arrive = on_arrive;
  R.arrive_ctx = &fc;
  tpmm_status_t st = tpi_ring_start(&R);
  if (st == TPMM_SUCCESS) st = tpi_ring_compute(&R);
  if (st == TPMM_SUCCESS) st = node_peers(&R, s, seq);
  st = tpi_ring_finish(&R, st);
  tpi_ring_free(&R);
  if (st == TPMM_SUCCESS) __atomic_store_n(&me->done_seq, seq, __ATOMIC_RELEASE);
  return st;
}

static int usable(const tpi_plan_t *p, char *why, size_t len) {
  if (p->a.gather_index) {
    if (len) snprintf(why, len, "hier does not gather x2 (gather_index 1); ring does");
    return TPI_UNUSABLE;
  }
  if (p->g->rail != MPI_COMM_NULL) return 40; /* each shard crosses the network once per node */
  if (len) snprintf(why, len, "hier needs the group to span several nodes with the same number (> 1) of ranks on each");
  return TPI_UNUSABLE;
}

/* The ring model over every rank's own rail: an upper bound, since node
 * peers' shards are read at memory speed. The link's CPU cost is the rail's:
 * N - 1 shards in and N - 2 forwarded where the ring's would be W - 1, W - 2. */
static double predict(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  tpi_model_t rail = *m;
  if (p->a.W > 1) rail.cpu_byte *= (double)(p->g->n_nodes - 1) / (double)(p->a.W - 1);
  /* the rail's own chunks are multiplied message by message, node peers' whole on their flags: whole chunks
   * keep the bound */
  rail.msg_bytes = 0;
  const double t = *chunks > 0 ? tpi_model_ring(p, &rail, 0, *chunks) : tpi_model_ring_best(p, &rail, 0, chunks);
  return t + m->fixed;
}

const tpi_algo_t tpi_algo_hier = {TPMM_ALGO_HIER, true, usable, predict, run};
