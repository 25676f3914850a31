/*
 * group.h — the group type and the named-group registry (group.c); what a
 * group knows about where its ranks are is filled in by topology.c.
 */
#ifndef TPMM_GROUP_H
#define TPMM_GROUP_H

#include "lib.h"

enum { TPI_AGREE_TAGS = 4096 };

typedef struct tpi_group {
  char name[TPMM_GROUP_NAME_MAX + 1];
  MPI_Comm comm; /* tpmm's own duplicate, MPI_ERRORS_RETURN */
  int rank, size;
  MPI_Comm node_comm; /* ranks of this group on this node (MPI_COMM_TYPE_SHARED) */
  int node_rank, node_size;
  int n_nodes;   /* number of distinct nodes the group spans */
  int tag_ub;    /* largest tag for data (the ones above are the agreement's) */
  int agree_tag; /* the agreement's tag, one of TPI_AGREE_TAGS, changing from group to group */
  /* topology (topology.c): nodes are numbered 0..n_nodes-1 by their lowest group rank */
  int node_index;             /* this rank's node */
  bool uniform;               /* every node holds node_size ranks of the group */
  int *grank_of;              /* uniform: [node * node_size + node_rank] -> group rank */
  MPI_Comm rail;              /* uniform, n_nodes > 1, node_size > 1: the ranks with this
                                 node_rank on every node, ordered by node (hier) */
  int kernel_ranks;           /* ranks of this group on this machine's kernel (same boot_id; at
                                 least node_size): simulated hosts in namespaces share one */
  long online_cpus;           /* this machine's CPUs when the group was built (<= 0: unknown) */
  double net_alpha, net_beta; /* measured neighbour latency (s), bandwidth (B/s); 0 = not measured */
  double net_cpu;             /* measured: what a byte sent or received costs a rank computing beside it (s) */
  double sync_s;              /* crowded: a small MPI_Allgather's time (s), waits for CPUs; else 0 */
  bool broken;                /* a timeout left requests in flight: unusable */
  MPI_Comm vote_comm;         /* destruction's vote only: nothing an abandoned call left can match it */
  int broken_any;             /* destruction's vote, in g: a timed-out MPI_Iallreduce may write it later */
  void **orphans;             /* buffers MPI may still write after a timeout, freed at finalize */
  int n_orphans;
  /* cached shared-memory windows (shm.c), or NULL; shm.c sets shm_release,
   * which destruction calls (collective over the node) */
  struct tpi_shm *shm;
  void (*shm_release)(struct tpi_group *g);
  struct tpi_tune_cache *tune; /* one-shot calls' autotuners (pipeline/tune.c), or NULL */
  /* one-shot calls' GEMM setups (pipeline/gemm_cache.c), or NULL; it sets
   * gemm_cache_release, which destruction calls (src/comm knows no GEMM) */
  struct tpi_gemm_cache *gemm_cache;
  void (*gemm_cache_release)(struct tpi_group *g);
  /* one-shot calls' last workspaces (pipeline/workspace.c), or NULL */
  struct tpi_ws_stash *ws_stash;
  void (*ws_stash_release)(struct tpi_group *g);
  int64_t plans; /* plans created on the group: every rank counts the same */
  /* The agreement's blocks (agree.c); in the group, not on the stack,
   * because after a timeout MPI may still write into them. */
  char *agree_buf;
  char *agree_stage; /* per-peer send blocks of the agreement, or NULL */
  struct tpi_group *next;
} tpi_group_t;

/* Find a group by name for an operation: fails with NOT_INITIALIZED,
 * INVALID_ARGUMENT (NULL name), GROUP (unknown) or COMM (broken), each
 * message prefixed with op. Local, thread-safe. */
tpmm_status_t tpi_group_get(const char *op, const char *name, tpi_group_t **g);

/* The first registered group for which pred(g, ctx) holds, or NULL. pred
 * runs under the registry's lock: it must not call into the registry. */
tpi_group_t *tpi_group_find_if(bool (*pred)(tpi_group_t *g, void *ctx), void *ctx);

/* Keep buf (malloc'd) alive until tpmm_finalize: after a timeout an
 * abandoned MPI operation may still read or write it. */
void tpi_group_orphan(tpi_group_t *g, void *buf);

/* Register an existing communicator (duplicated) as a named group.
 * Collective over comm. */
tpmm_status_t tpi_group_adopt(const char *op, const char *name, MPI_Comm comm);

/* Create TPMM_WORLD_COMM_GROUP over a duplicate of MPI_COMM_WORLD (tpmm_init;
 * collective over the world). */
tpmm_status_t tpi_group_open_world(const char *op);
/* The world group, or NULL before tpi_group_open_world. */
tpi_group_t *tpi_group_world(void);
/* Destroy every group, the world last, then those kept after a timeout
 * (tpmm_finalize; collective over the world). */
void tpi_group_close_all(void);

/* The group's ranks on this kernel times the GEMM threads per rank, over
 * the online CPUs (0 if unknown). Local, cheap (topology.c). */
double tpi_group_crowding(const tpi_group_t *g);
/* Whether that exceeds 1: this machine's CPUs are oversubscribed by the
 * group, and a rank that waits must give its CPU away instead of spinning. */
bool tpi_group_crowded(const tpi_group_t *g);
/* Whether a rank waiting for a link must yield between polls: crowded, or
 * the group spans nodes and its ranks on this kernel fill every CPU, so the
 * kernel's network work (TCP, a NIC's interrupts) finds no idle CPU
 * (bench/RESULTS.md §15). */
bool tpi_group_link_yields(const tpi_group_t *g);

#endif
