/*
 * workspace.c — a plan's workspaces: all reserved before the agreement (so
 * that no rank runs out of memory once data moves), grown on demand, and
 * handed to the group instead of freed when a timeout may leave MPI writing
 * into them. One-shot calls borrow their group's last workspaces (the stash)
 * instead of allocating their own.
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"
#include "ring.h"

tpmm_status_t tpi_ws_reserve(void **buf, size_t *cap, size_t bytes, const char *op, const char *what) {
  if (bytes <= *cap && *buf) return TPMM_SUCCESS;
  void *n = NULL;
  if (tpi_debug_fail(what) || posix_memalign(&n, 64, bytes ? bytes : 64) != 0)
    return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for %s (%zu bytes)", op, what, bytes);
  free(*buf);
  *buf = n;
  *cap = bytes;
  return TPMM_SUCCESS;
}

/* One-shot calls keep their group's last workspaces: a decode call's own
 * work is microseconds, and allocating and freeing them was a tenth of it.
 * Not buffers over STASH_MAX (memory held between calls), not once the
 * group is broken (MPI may still write into the call's buffers). */
#define STASH_MAX ((size_t)1 << 20)
struct tpi_ws_stash {
  void *send, *gbuf, *ring_ws;
  const char **peer;
  int *vcounts;
  size_t send_bytes, gbuf_bytes, ring_ws_bytes, peer_bytes, vcounts_bytes;
  int busy; /* a call holds the buffers */
};

static void stash_release(tpi_group_t *g) {
  struct tpi_ws_stash *s = g->ws_stash;
  if (!s) return; /* released already (the soak empties caches between calls), then again by group_free */
  free(s->send), free(s->gbuf), free(s->ring_ws), free(s->peer), free(s->vcounts);
  free(s);
  g->ws_stash = NULL;
}

/* Moves a buffer and its size from *from to *to, leaving *from empty. */
static void move(void **to, size_t *to_bytes, void **from, size_t *from_bytes) {
  *to = *from, *to_bytes = *from_bytes;
  *from = NULL, *from_bytes = 0;
}

#define MOVE_ALL(dst, src)                                                                                  \
  do {                                                                                                      \
    move(&(dst)->send, &(dst)->send_bytes, &(src)->send, &(src)->send_bytes);                               \
    move(&(dst)->gbuf, &(dst)->gbuf_bytes, &(src)->gbuf, &(src)->gbuf_bytes);                               \
    move(&(dst)->ring_ws, &(dst)->ring_ws_bytes, &(src)->ring_ws, &(src)->ring_ws_bytes);                   \
    move((void **)&(dst)->peer, &(dst)->peer_bytes, (void **)&(src)->peer, &(src)->peer_bytes);             \
    move((void **)&(dst)->vcounts, &(dst)->vcounts_bytes, (void **)&(src)->vcounts, &(src)->vcounts_bytes); \
  } while (0)

void tpi_ws_adopt(tpi_plan_t *p) {
  tpi_group_t *g = p->g;
  if (!g->ws_stash) {
    if (!(g->ws_stash = calloc(1, sizeof *g->ws_stash))) return; /* then every call allocates its own */
    g->ws_stash_release = stash_release;
  }
  struct tpi_ws_stash *s = g->ws_stash;
  if (__atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE)) return;
  MOVE_ALL(p, s);
  p->stashed = 1;
}

int tpi_ws_stash_idle(const tpi_group_t *g) {
  return !g->ws_stash || !__atomic_load_n(&g->ws_stash->busy, __ATOMIC_ACQUIRE);
}

void tpi_ws_stash(tpi_plan_t *p) {
  if (!p->stashed || !p->g || p->g->broken) return;
  struct tpi_ws_stash *s = p->g->ws_stash;
  MOVE_ALL(s, p);
  /* large buffers go back to the plan, which frees them */
  if (s->send_bytes > STASH_MAX) move(&p->send, &p->send_bytes, &s->send, &s->send_bytes);
  if (s->gbuf_bytes > STASH_MAX) move(&p->gbuf, &p->gbuf_bytes, &s->gbuf, &s->gbuf_bytes);
  if (s->ring_ws_bytes > STASH_MAX) move(&p->ring_ws, &p->ring_ws_bytes, &s->ring_ws, &s->ring_ws_bytes);
  p->stashed = 0;
  __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
}

tpmm_status_t tpi_ws_reserve_plan(tpi_plan_t *p, const char *op) {
  const tpi_call_t *a = &p->a;
  const size_t rb = tpi_row_bytes(a), most = (size_t)tpi_rows_max(a);
  if (!tpi_input_dense(a))
    TPI_CHECK(tpi_ws_reserve(&p->send, &p->send_bytes, (size_t)(a->m * a->k) * a->esize, op, "the packed input shard"));
  /* uneven shards: room for W blocks of the largest (MPICH's staging, algo_unfused.c) */
  if (!(a->gather_output && a->gout.rs * a->esize == rb) || tpi_unfused_staging(a))
    TPI_CHECK(tpi_ws_reserve(&p->gbuf, &p->gbuf_bytes, tpi_unfused_gbuf_bytes(a), op, "the gathered rows"));
  /* small shards travel with the agreement: where their addresses land.
   * Not uneven shards, several weights or gather_index 1: the agreement
   * carries blocks of one size and unfused copies m rows of input per rank,
   * so those gather after it (MPI_Allgatherv, x2g.c) */
  const size_t shard = (size_t)(a->m * a->k) * a->esize;
  p->folds =
      a->W > 1 && !a->row0 && a->nb <= 1 && !a->gather_index && shard <= tpi_agree_fold_cap(p->g) && !tpi_debug.no_fold
          ? TPI_FOLD_SHARD
          : TPI_FOLD_NONE;
  if (p->folds)
    TPI_CHECK(tpi_ws_reserve((void **)&p->peer, &p->peer_bytes, sizeof(char *) * (size_t)a->W, op,
                             "the folded shards' table"));
  if (a->row0) /* MPI_Allgatherv's counts and displacements */
    TPI_CHECK(tpi_ws_reserve((void **)&p->vcounts, &p->vcounts_bytes, 2 * sizeof(int) * (size_t)a->W, op,
                             "the shards' counts"));
  /* The ring's bookkeeping, for any schedule rank 0 may pick and any message
   * size the ranks may agree on (the largest rank's, so no smaller than
   * ours): every rank reserves it, whatever it would pick itself. */
  if (a->W > 1 && most > 0)
    TPI_CHECK(tpi_ws_reserve(
        &p->ring_ws, &p->ring_ws_bytes,
        tpi_ring_ws_bound(tpi_ring_rows_bound(a), (int64_t)rb, a->W,
                          a->comm_turn > 0 ? a->comm_turn : TPI_MAX_AUTO_CHUNKS, tpi_params.segment_bytes),
        op, "the ring's bookkeeping"));
  return TPMM_SUCCESS;
}

void tpi_ws_free_plan(tpi_plan_t *p) {
  if (p->g && p->g->broken) { /* a timed-out operation may still use them: the group keeps them */
    tpi_group_orphan(p->g, p->send);
    tpi_group_orphan(p->g, p->gbuf);
    tpi_group_orphan(p->g, p->vcounts);
  } else {
    free(p->send);
    free(p->gbuf);
    free(p->vcounts);
  }
  tpi_red_ws_free(p);
  free(p->ring_ws); /* MPI holds no reference: requests are done or freed */
  free(p->peer);
  p->send = p->gbuf = p->ring_ws = NULL;
  p->peer = NULL;
  p->vcounts = NULL;
}
