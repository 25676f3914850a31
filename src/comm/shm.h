/*
 * shm.h — shared-memory windows of a group's node (MPI-3 shared windows):
 * the transport of shm_pull, and the symmetric buffers of tpmm_alloc_shared.
 *
 * Each rank of the node owns one segment of the group's window:
 *
 *   [ header: done_seq | source | ready[chunks] ][ shard rows (m x k) ]
 *
 * A call has a sequence number seq (the same on every rank: calls on a group
 * are collective and ordered). A rank publishes chunk c by writing its rows,
 * then ready[c] = seq (release); a reader spins until ready[c] == seq
 * (acquire) and reads the rows in place. done_seq = seq says a rank has
 * finished reading its peers for that call, so a writer overwrites its rows
 * only once every peer's done_seq has reached the previous call.
 */
#ifndef TPMM_SHM_H
#define TPMM_SHM_H

#include "comm.h"

typedef struct tpi_shm_hdr {
  uint64_t done_seq; /* this rank has read all peers' data of call done_seq */
  uint64_t by_ref;   /* rows are in symmetric buffer sym_id at sym_off, not below */
  uint64_t sym_id, sym_off;
  uint64_t pad[4];  /* keep ready[] on its own cache line */
  uint64_t ready[]; /* per chunk: seq of the call that published it */
} tpi_shm_hdr_t;

typedef struct tpi_symbuf {
  MPI_Win win;
  uint64_t id;
  size_t bytes;
  char **peer; /* [node_size] base of each node rank's buffer */
  struct tpi_symbuf *next;
} tpi_symbuf_t;

typedef struct tpi_shm {
  MPI_Win win;       /* MPI_WIN_NULL until the first shm_pull call */
  size_t data_bytes; /* capacity for rows per segment */
  int chunks;        /* capacity of ready[] */
  size_t hdr_bytes;
  char **peer; /* [node_size] segment base of each node rank */
  uint64_t seq;
  tpi_symbuf_t *bufs;
  uint64_t next_id;
} tpi_shm_t;

/* Make sure the group's window holds data_bytes of rows and `chunks` flags
 * per rank; (re)allocates collectively over the node when it does not. All
 * ranks call it with the same values (they agreed on the shapes). */
tpmm_status_t tpi_shm_reserve(tpi_group_t *g, const char *op, size_t data_bytes, int chunks);
/* Header and rows of node rank j's segment. */
static inline tpi_shm_hdr_t *tpi_shm_hdr(tpi_shm_t *s, int j) { return (tpi_shm_hdr_t *)s->peer[j]; }
static inline char *tpi_shm_rows(tpi_shm_t *s, int j) { return s->peer[j] + s->hdr_bytes; }
/* The symmetric buffer holding [p, p+bytes) on this rank, or NULL. */
tpi_symbuf_t *tpi_shm_find_symbuf(tpi_group_t *g, const void *p, size_t bytes);
tpi_symbuf_t *tpi_shm_symbuf_by_id(tpi_group_t *g, uint64_t id);
/* tpmm_free_shared's search: free the symmetric buffer at ptr in g (sets
 * *found), or in any group (group.c owns the list of groups). */
tpmm_status_t tpi_shm_free_in_group(tpi_group_t *g, void *ptr, int *found);
tpmm_status_t tpi_shm_free_ptr(void *ptr, int *found);
/* Spin until *word >= at_least (acquire), yielding the CPU every 64 polls.
 * Past deadline (tpi_now() seconds; 0: none) the group is marked broken and
 * TPMM_ERR_TIMEOUT names what was awaited of which peer. */
tpmm_status_t tpi_shm_spin(tpi_group_t *g, const char *op, const uint64_t *word, uint64_t at_least, double deadline,
                           const char *what, int peer);
/* Free the group's windows and symmetric buffers (collective over the node). */
void tpi_shm_release(tpi_group_t *g);

#endif
