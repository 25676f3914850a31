/*
 * shm.c — the group's shared-memory windows (see shm.h).
 */
#include "shm.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

static tpmm_status_t get_shm(tpi_group_t *g, const char *op) {
  if (g->shm) return TPMM_SUCCESS;
  g->shm = calloc(1, sizeof *g->shm);
  if (!g->shm) return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory", op);
  g->shm->win = MPI_WIN_NULL;
  return TPMM_SUCCESS;
}

/* Allocate one shared window of bytes per rank on the node and map every
 * peer's part. */
static tpmm_status_t alloc_window(tpi_group_t *g, const char *op, size_t bytes, MPI_Win *win, char ***peer) {
  MPI_Info info;
  MPI_Info_create(&info);
  /* each rank's segment on its own pages (NUMA-local to its owner) */
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  char *base;
  int rc = MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, g->node_comm, &base, win);
  MPI_Info_free(&info);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Win_allocate_shared");
  TPI_LIVE(TPI_LIVE_WIN, 1);
  MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN);
  *peer = calloc((size_t)g->node_size, sizeof(char *));
  if (!*peer) {
    MPI_Win_free(win), TPI_LIVE(TPI_LIVE_WIN, -1);
    return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory", op);
  }
  for (int j = 0; j < g->node_size; j++) {
    MPI_Aint sz;
    int du;
    rc = MPI_Win_shared_query(*win, j, &sz, &du, &(*peer)[j]);
    if (rc != MPI_SUCCESS) {
      free(*peer);
      MPI_Win_free(win), TPI_LIVE(TPI_LIVE_WIN, -1);
      return tpi_mpi_fail(rc, op, "MPI_Win_shared_query");
    }
  }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_shm_reserve(tpi_group_t *g, const char *op, size_t data_bytes, int chunks) {
  TPI_CHECK(get_shm(g, op));
  tpi_shm_t *s = g->shm;
  if (s->win != MPI_WIN_NULL && s->data_bytes >= data_bytes && s->chunks >= chunks) return TPMM_SUCCESS;
  if (s->win != MPI_WIN_NULL) {
    MPI_Win_free(&s->win), TPI_LIVE(TPI_LIVE_WIN, -1);
    free(s->peer);
    s->peer = NULL;
  }
  size_t hdr = sizeof(tpi_shm_hdr_t) + (size_t)chunks * sizeof(uint64_t);
  hdr = (hdr + 4095) & ~(size_t)4095;
  data_bytes = (data_bytes + 4095) & ~(size_t)4095;
  TPI_CHECK(alloc_window(g, op, hdr + data_bytes, &s->win, &s->peer));
  s->hdr_bytes = hdr;
  s->data_bytes = data_bytes;
  s->chunks = chunks;
  s->seq = 0;
  memset(s->peer[g->node_rank], 0, hdr);
  /* every header is zeroed before anyone looks at a peer's */
  int rc = MPI_Barrier(g->node_comm);
  return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, op, "MPI_Barrier (shared window setup)");
}

tpmm_status_t tpi_shm_spin(tpi_group_t *g, const char *op, const uint64_t *word, uint64_t at_least, double deadline,
                           const char *what, int peer) {
  for (uint64_t spins = 1; __atomic_load_n(word, __ATOMIC_ACQUIRE) < at_least; spins++) {
    if (spins % 64) continue;
    if (deadline > 0 && tpi_now() > deadline) {
      g->broken = true;
      return tpi_fail(TPMM_ERR_TIMEOUT, "%s: timed out after %lld ms waiting for %s of rank %d in group \"%s\"", op,
                      (long long)tpi_params.timeout_ms, what, peer, g->name);
    }
    sched_yield();
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

void tpi_shm_release(tpi_group_t *g) {
  tpi_shm_t *s = g->shm;
  if (!s) return;
  while (s->bufs) {
    tpi_symbuf_t *b = s->bufs;
    s->bufs = b->next;
    MPI_Win_free(&b->win), TPI_LIVE(TPI_LIVE_WIN, -1);
    free(b->peer);
    free(b);
  }
  if (s->win != MPI_WIN_NULL) MPI_Win_free(&s->win), TPI_LIVE(TPI_LIVE_WIN, -1);
  free(s->peer);
  free(s);
  g->shm = NULL;
}

tpmm_status_t tpmm_alloc_shared(const char *group, size_t bytes, void **ptr) {
  static const char op[] = "tpmm_alloc_shared";
  tpi_clear_error();
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

tpmm_status_t tpmm_free_shared(void *ptr) {
  tpi_clear_error();
  if (!ptr) return TPMM_SUCCESS;
  int found = 0;
  tpmm_status_t st = tpi_shm_free_ptr(ptr, &found);
  if (st == TPMM_SUCCESS && !found)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_free_shared: ptr=%p was not returned by tpmm_alloc_shared", ptr);
  return st;
}

/* Called by group.c's iteration over groups. */
tpmm_status_t tpi_shm_free_in_group(tpi_group_t *g, void *ptr, int *found) {
  if (!g->shm) return TPMM_SUCCESS;
  for (tpi_symbuf_t **pb = &g->shm->bufs; *pb; pb = &(*pb)->next) {
    tpi_symbuf_t *b = *pb;
    if (b->peer[g->node_rank] == ptr) {
      *pb = b->next;
      int rc = MPI_Win_free(&b->win);
      TPI_LIVE(TPI_LIVE_WIN, -1);
      free(b->peer);
      free(b);
      *found = 1;
      return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, "tpmm_free_shared", "MPI_Win_free");
    }
  }
  return TPMM_SUCCESS;
}
