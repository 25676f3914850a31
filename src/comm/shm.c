/*
 * shm.c — the group's shared-memory windows (see shm.h).
 */
#include "shm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "wait.h"

/* Free the group's windows and symmetric buffers: the group's shm_release,
 * called when it is destroyed (collective over the node). */
static void release(tpi_group_t *g) {
  tpi_shm_t *s = g->shm;
  if (!s) return;
  while (s->bufs) {
    tpi_symbuf_t *b = s->bufs;
    s->bufs = b->next;
    tpi_win_free(&b->win);
    free(b->peer);
    free(b);
  }
  tpi_win_free(&s->win);
  free(s->peer);
  free(s);
  g->shm = NULL;
}

static tpmm_status_t get_shm(tpi_group_t *g, const char *op) {
  if (g->shm) return TPMM_SUCCESS;
  g->shm = calloc(1, sizeof *g->shm);
  if (!g->shm) return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory", op);
  g->shm->win = MPI_WIN_NULL;
  g->shm_release = release;
  return TPMM_SUCCESS;
}

/* Allocate one shared window of bytes per rank on the node and map every
 * peer's part. */
static tpmm_status_t new_window(tpi_group_t *g, const char *op, size_t bytes, MPI_Win *win, char ***peer) {
  MPI_Info info;
  MPI_Info_create(&info);
  /* each rank's segment on its own pages (NUMA-local to its owner) */
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  char *base;
  int rc = MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, g->node_comm, &base, win);
  MPI_Info_free(&info);
  if (rc == MPI_SUCCESS) rc = tpi_win_own(win);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Win_allocate_shared");
  *peer = calloc((size_t)g->node_size, sizeof(char *));
  if (!*peer) {
    tpi_win_free(win);
    return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory", op);
  }
  for (int j = 0; j < g->node_size; j++) {
    MPI_Aint sz;
    int du;
    rc = MPI_Win_shared_query(*win, j, &sz, &du, &(*peer)[j]);
    if (rc != MPI_SUCCESS) {
      free(*peer);
      tpi_win_free(win);
      return tpi_mpi_fail(rc, op, "MPI_Win_shared_query");
    }
  }
  return TPMM_SUCCESS;
}

/* new_window under the MPI lock: a blocking collective (there is no
 * nonblocking window allocation), so the lock is held across it. */
static tpmm_status_t alloc_window(tpi_group_t *g, const char *op, size_t bytes, MPI_Win *win, char ***peer) {
  tpi_mpi_lock();
  tpmm_status_t st = new_window(g, op, bytes, win, peer);
  tpi_mpi_unlock();
  return st;
}

/* Install a freshly allocated window, this rank's header zeroed; the
 * agreement that follows tells every rank that every header is. */
static void install(tpi_group_t *g, MPI_Win win, char **peer, size_t hdr, size_t data, int chunks) {
  tpi_shm_t *s = g->shm;
  s->win = win, s->peer = peer;
  s->hdr_bytes = hdr, s->data_bytes = data, s->chunks = chunks;
  s->seq = 0;
  memset(s->peer[g->node_rank], 0, hdr);
}

tpmm_status_t tpi_shm_reserve(tpi_group_t *g, const char *op, size_t data_bytes, int chunks) {
  tpmm_status_t local = get_shm(g, op);
  tpi_shm_t *s = g->shm;
  if (s && s->win != MPI_WIN_NULL && s->data_bytes >= data_bytes && s->chunks >= chunks) return TPMM_SUCCESS;
  /* (re)allocation: the same decision on every rank (same calls, same sizes); never smaller than the window it
   * replaces in either size, or calls alternating more chunks and more bytes reallocate every time (RELIABILITY.md) */
  if (s && s->win != MPI_WIN_NULL) {
    if (data_bytes < s->data_bytes) data_bytes = s->data_bytes;
    if (chunks < s->chunks) chunks = s->chunks;
    tpi_win_free(&s->win);
    free(s->peer);
    s->peer = NULL;
  }
  size_t hdr = sizeof(tpi_shm_hdr_t) + (size_t)chunks * sizeof(uint64_t);
  hdr = (hdr + 4095) & ~(size_t)4095;
  data_bytes = (data_bytes + 4095) & ~(size_t)4095;
  if (local == TPMM_SUCCESS && tpi_debug_fail("the shared window"))
    local = tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for the shared window (TPMM_DEBUG_FAIL)", op);
  /* every rank of the node takes part in the allocation, one that has
   * failed already with 0 bytes, so that no peer waits in it alone */
  MPI_Win win = MPI_WIN_NULL;
  char **peer = NULL, why[512];
  snprintf(why, sizeof why, "%s", tpi_error_message());
  tpmm_status_t st = alloc_window(g, op, local == TPMM_SUCCESS ? hdr + data_bytes : 0, &win, &peer);
  if (local != TPMM_SUCCESS) st = tpi_fail(local, "%s", why);
  if (st == TPMM_SUCCESS) install(g, win, peer, hdr, data_bytes, chunks);
  /* the outcome, agreed over the whole group: a rank without its window
   * must not leave its peers in the data phase; then all free it together */
  st = tpi_agree(g, op, st, NULL, 0, NULL, NULL, 0);
  if (st != TPMM_SUCCESS && win != MPI_WIN_NULL) {
    tpi_win_free(&win);
    free(peer);
    if (s) s->win = MPI_WIN_NULL, s->peer = NULL;
  }
  return st;
}

tpmm_status_t tpi_shm_wait(tpi_group_t *g, const char *op, const uint64_t *flag, uint64_t want, const char *what,
                           int peer, double deadline, tpmm_status_t (*poll)(void *ctx), void *ctx) {
  if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) >= want) return TPMM_SUCCESS;
  char awaited[160];
  snprintf(awaited, sizeof awaited, "%s of rank %d", what, peer);
  tpi_spin_t s = {deadline, tpi_group_crowded(g)};
  while (__atomic_load_n(flag, __ATOMIC_ACQUIRE) < want) {
    if (poll) TPI_CHECK(poll(ctx));
    TPI_CHECK(tpi_spin(g, op, awaited, &s));
  }
  return TPMM_SUCCESS;
}

tpi_symbuf_t *tpi_shm_find_symbuf(tpi_group_t *g, const void *p, size_t bytes) {
  if (!g->shm) return NULL;
  for (tpi_symbuf_t *b = g->shm->bufs; b; b = b->next) {
    const char *lo = b->peer[g->node_rank];
    if ((const char *)p >= lo && (const char *)p + bytes <= lo + b->bytes) return b;
  }
  return NULL;
}

tpi_symbuf_t *tpi_shm_symbuf_by_id(tpi_group_t *g, uint64_t id) {
  for (tpi_symbuf_t *b = g->shm ? g->shm->bufs : NULL; b; b = b->next)
    if (b->id == id) return b;
  return NULL;
}

static tpmm_status_t alloc_shared(const char *op, const char *group, size_t bytes, void **ptr) {
  tpi_group_t *g;
  TPI_CHECK(tpi_group_get(op, group, &g));
  if (!ptr) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: ptr is NULL", op);
  *ptr = NULL;
  TPI_CHECK(get_shm(g, op));
  tpi_symbuf_t *b = calloc(1, sizeof *b);
  if (!b) return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory", op);
  tpmm_status_t st = alloc_window(g, op, bytes ? bytes : 1, &b->win, &b->peer);
  if (st != TPMM_SUCCESS) {
    free(b);
    return st;
  }
  b->bytes = bytes;
  b->id = ++g->shm->next_id; /* same on every rank: allocations are collective */
  b->next = g->shm->bufs;
  g->shm->bufs = b;
  *ptr = b->peer[g->node_rank];
  return TPMM_SUCCESS;
}

tpmm_status_t tpmm_alloc_shared(const char *group, size_t bytes, void **ptr) {
  tpi_clear_error();
  tpi_mpi_lock();
  tpmm_status_t st = alloc_shared("tpmm_alloc_shared", group, bytes, ptr);
  tpi_mpi_unlock();
  return st;
}

/* The symmetric buffer of g that tpmm_alloc_shared returned as ptr, or NULL. */
static tpi_symbuf_t **symbuf_at(tpi_group_t *g, const void *ptr) {
  for (tpi_symbuf_t **pb = g->shm ? &g->shm->bufs : NULL; pb && *pb; pb = &(*pb)->next)
    if ((*pb)->peer[g->node_rank] == ptr) return pb;
  return NULL;
}

static bool holds(tpi_group_t *g, void *ptr) { return symbuf_at(g, ptr) != NULL; }

static tpmm_status_t free_shared(const char *op, void *ptr) {
  if (!ptr) return TPMM_SUCCESS;
  if (!tpi_initialized()) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm is not initialized", op);
  tpi_group_t *g = tpi_group_find_if(holds, ptr);
  if (!g) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: ptr=%p was not returned by tpmm_alloc_shared", op, ptr);
  tpi_symbuf_t **pb = symbuf_at(g, ptr), *b = *pb;
  *pb = b->next;
  int rc = tpi_win_free(&b->win);
  free(b->peer);
  free(b);
  return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, op, "MPI_Win_free");
}

tpmm_status_t tpmm_free_shared(void *ptr) {
  tpi_clear_error();
  tpi_mpi_lock();
  tpmm_status_t st = free_shared("tpmm_free_shared", ptr);
  tpi_mpi_unlock();
  return st;
}
