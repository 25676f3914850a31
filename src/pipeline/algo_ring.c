/*
 * algo_ring.c — "ring" and "bidir_ring": the chunked ring allgather with the
 * GEMM of chunk i running while chunk i+1 travels (the engine: ring.h,
 * ring_run.c), and gather_index 1's ring of x2 panels (x2g_ring.c). Made for
 * groups that span nodes; runs everywhere.
 */
#include "ring.h"
#include "x2g.h"

static tpmm_status_t ring_common(tpi_plan_t *p, const char *op, int bidir) {
  const tpi_call_t *a = &p->a;
  if (a->gather_index) return tpi_x2g_ring(p, op, bidir); /* x2 travels (x2g_ring.c) */
  if (tpi_rows_total(a) == 0) return TPMM_SUCCESS;
  const char *local;
  TPI_CHECK(tpi_local_shard(p, op, &local));
  char *G = a->gather_output && a->gout.rs == a->k ? a->gout.data : p->gbuf;
  ring_t R;
  TPI_CHECK(tpi_ring_init(&R, p, op, p->g->comm, a->W, p->g->rank, bidir, G, local));
  tpmm_status_t st = tpi_ring_start(&R);
  if (st == TPMM_SUCCESS) st = tpi_ring_compute(&R);
  st = tpi_ring_finish(&R, st);
  tpi_ring_free(&R);
  return st;
}

static tpmm_status_t run_ring(tpi_plan_t *p, const char *op) { return ring_common(p, op, 0); }
static tpmm_status_t run_bidir(tpi_plan_t *p, const char *op) { return ring_common(p, op, 1); }

static int usable_ring(const tpi_plan_t *p, char *why, size_t len) {
  (void)p, (void)why, (void)len;
  return 10; /* runs anywhere; across nodes unless a better-suited schedule can run */
}

/* bidir_ring pays off when every link has a rank at each end and a shard
 * has more than one hop to go; elsewhere it runs, below ring. */
static int usable_bidir(const tpi_plan_t *p, char *why, size_t len) {
  (void)why, (void)len;
  return p->g->n_nodes > 1 && p->g->node_size == 1 && p->a.W > 2 ? 20 : 5;
}

static double predict_ring(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  const double t = *chunks > 0 ? tpi_model_ring(p, m, 0, *chunks) : tpi_model_ring_best(p, m, 0, chunks);
  return t + m->fixed;
}

static double predict_bidir(const tpi_plan_t *p, const tpi_model_t *m, int *chunks) {
  const double t = *chunks > 0 ? tpi_model_ring(p, m, 1, *chunks) : tpi_model_ring_best(p, m, 1, chunks);
  if (*chunks < 2 && tpi_rows_max(&p->a) >= 2) *chunks = 2; /* one chunk cannot go both ways */
  return t + m->fixed;
}

const tpi_algo_t tpi_algo_ring = {TPMM_ALGO_RING, true, usable_ring, predict_ring, run_ring};
const tpi_algo_t tpi_algo_bidir_ring = {TPMM_ALGO_BIDIR_RING, true, usable_bidir, predict_bidir, run_bidir};
