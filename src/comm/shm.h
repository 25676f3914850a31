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

#include "group.h"

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
 * per rank; (re)allocates collectively over the node when it does not, and
 * then agrees on the outcome over the group (a rank that failed makes every
 * rank fail, with no window). Every rank of the group calls it with the same
 * values (they agreed on the shapes). */
tpmm_status_t tpi_shm_reserve(tpi_group_t *g, const char *op, size_t data_bytes, int chunks);
/* Header and rows of node rank j's segment. */
static inline tpi_shm_hdr_t *tpi_shm_hdr(tpi_shm_t *s, int j) { return (tpi_shm_hdr_t *)s->peer[j]; }
static inline char *tpi_shm_rows(tpi_shm_t *s, int j) { return s->peer[j] + s->hdr_bytes; }
/* Wait until *flag >= want (acquire): a word of the node's shared window
 * that group rank peer raises. what names it for the timeout message
 * ("waiting for WHAT of rank PEER"); poll(ctx), if not NULL, runs between
 * looks (hier drives its rail ring meanwhile). Honours deadline (absolute,
 * 0 = none); yields between looks when the machine is crowded. */
tpmm_status_t tpi_shm_wait(tpi_group_t *g, const char *op, const uint64_t *flag, uint64_t want, const char *what,
                           int peer, double deadline, tpmm_status_t (*poll)(void *ctx), void *ctx);
/* The symmetric buffer holding [p, p+bytes) on this rank, or NULL. */
tpi_symbuf_t *tpi_shm_find_symbuf(tpi_group_t *g, const void *p, size_t bytes);
tpi_symbuf_t *tpi_shm_symbuf_by_id(tpi_group_t *g, uint64_t id);

#endif
