/*
 * comm.h — communicators: the library state, named groups, the agreement
 * step and waits that honour TPMM_TIMEOUT_MS. Only src/comm and
 * src/pipeline include <mpi.h>.
 */
#ifndef TPMM_COMM_H
#define TPMM_COMM_H

#include <mpi.h>
#include <stdbool.h>

/* GCC 12 misreads MPICH's MPI_STATUSES_IGNORE sentinel ((MPI_Status *)1) as a
 * zero-sized buffer in MPI_Testall/Waitall/Testsome; the calls are correct. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

#include "../common/common.h"
#include "../tensor/tensor.h"

struct tpi_shm;

/* Live MPI objects created by tpmm, for leak accounting (the soak test checks
 * they return to their baseline). Adjusted at every create and free. */
enum { TPI_LIVE_COMM, TPI_LIVE_WIN, TPI_LIVE_TYPE, TPI_LIVE_COUNT };
extern int64_t tpi_live[TPI_LIVE_COUNT];
#define TPI_LIVE(kind, delta) __atomic_add_fetch(&tpi_live[kind], (delta), __ATOMIC_RELAXED)

typedef struct tpi_group {
  char name[TPMM_GROUP_NAME_MAX + 1];
  MPI_Comm comm; /* tpmm's own duplicate, MPI_ERRORS_RETURN */
  int rank, size;
  MPI_Comm node_comm; /* ranks of this group on this node (MPI_COMM_TYPE_SHARED) */
  int node_rank, node_size;
  int n_nodes; /* number of distinct nodes the group spans */
  int tag_ub;  /* largest usable MPI tag */
  /* topology: nodes are numbered 0..n_nodes-1 by their lowest group rank */
  int node_index;             /* this rank's node */
  bool uniform;               /* every node holds node_size ranks of the group */
  int *grank_of;              /* uniform: [node * node_size + node_rank] -> group rank */
  MPI_Comm rail;              /* uniform, n_nodes > 1, node_size > 1: the ranks with this
                                 node_rank on every node, ordered by node (hier) */
  int kernel_ranks;           /* ranks of this group on this machine's kernel (same boot_id; at
                                 least node_size): simulated hosts in namespaces share one */
  double net_alpha, net_beta; /* measured neighbour latency (s), bandwidth (B/s); 0 = not measured */
  bool broken;                /* a timeout left requests in flight: unusable */
  void **orphans;             /* buffers MPI may still write after a timeout, freed at finalize */
  int n_orphans;
  struct tpi_shm *shm;         /* cached shared-memory windows (shm_pull), or NULL */
  struct tpi_tune_cache *tune; /* one-shot calls' autotuners (pipeline/tune.c), or NULL */
  int64_t plans;               /* plans created on the group: every rank counts the same */
  /* Buffers of the agreement step. They live in the group, not on the stack,
   * because after a timeout MPI may still write into them. */
  int64_t agree_send[64], agree_recv[64];
  struct {
    int32_t status;
    char msg[1020];
  } agree_msg;
  struct tpi_group *next;
} tpi_group_t;

/* Whether this machine's CPUs are oversubscribed by the group: the group's
 * ranks on this kernel times the GEMM threads per rank exceed the online
 * CPUs. Then a rank that waits must give its CPU away instead of spinning. */
bool tpi_group_crowded(const tpi_group_t *g);

/* Whether tpmm_init has run (and finalize has not). */
bool tpi_initialized(void);

/* Find a group by name for an operation: fails with NOT_INITIALIZED,
 * INVALID_ARGUMENT (NULL name), GROUP (unknown) or COMM (broken), each
 * message prefixed with op. */
tpmm_status_t tpi_group_get(const char *op, const char *name, tpi_group_t **g);

/* Keep buf (malloc'd) alive until tpmm_finalize: after a timeout an
 * abandoned MPI operation may still read or write it. */
void tpi_group_orphan(tpi_group_t *g, void *buf);

/* Register an existing communicator (duplicated) as a named group. */
tpmm_status_t tpi_group_adopt(const char *op, const char *name, MPI_Comm comm);

/* TPMM_ERR_COMM with MPI's own error string for rc. */
tpmm_status_t tpi_mpi_fail(int rc, const char *op, const char *what);

/* Wait for n requests, honouring tpi_params.timeout_ms. On timeout the
 * group is marked broken, point-to-point requests (p2p != 0) are cancelled
 * (collective ones cannot be, in MPI), and TPMM_ERR_TIMEOUT is returned
 * naming what was awaited. */
tpmm_status_t tpi_wait(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p);

/* Deadline-aware test: sets *done; fails like tpi_wait once the deadline
 * (absolute, tpi_now() seconds; 0 = none) has passed. */
tpmm_status_t tpi_test(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p,
                       double deadline, int *done);

/* Absolute deadline for a call starting now (0 when no timeout is set). */
double tpi_deadline(void);

/* The agreement step of a collective call (agree.c). Every rank of g passes
 * its local validation status (with its message current) and its collective
 * fields. Returns on every rank: TPMM_ERR_MISMATCH naming the first field
 * that differs; else the status of the lowest-numbered failing rank with its
 * message; else TPMM_SUCCESS. One small allreduce when all is well.
 * tune[ntune] (in/out): on success replaced by their maximum over ranks. */
tpmm_status_t tpi_agree(tpi_group_t *g, const char *op, tpmm_status_t local, const int64_t *fields, int nfields,
                        const char *const *names, int64_t *tune, int ntune);
/* Once every rank knows that rank root failed (local: root's status, own:
 * its message): root broadcasts them and every rank returns them, peers
 * naming root. Collective; the error path of tpi_agree and of the unfused
 * plan execution that carries the agreement in its allgather. */
tpmm_status_t tpi_agree_error(tpi_group_t *g, const char *op, int root, tpmm_status_t local, const char *own);

/* Write the trace (TPMM_TRACE): collective over world (trace.c). */
tpmm_status_t tpi_trace_flush(MPI_Comm world);

#endif
