/*
 * group.c — library state and named groups.
 *
 * Each group owns a duplicate communicator with MPI_ERRORS_RETURN (so MPI
 * failures come back as TPMM_ERR_COMM instead of killing the job) and a split
 * by node, from which the pipeline learns the topology. The registry is a
 * short list; lookups take a mutex so operations on different groups may run
 * from different threads.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/trace.h"
#include "comm.h"
#include "shm.h"

int64_t tpi_live[TPI_LIVE_COUNT];

static bool initialized;
static bool we_initialized_mpi;
static tpi_group_t *groups;
/* Destroyed groups that had timed out: their communicators are kept (not
 * freed) until finalize, because an abandoned collective or unmatched
 * messages may still be in flight on them, and MPICH would hand a freed
 * context id to the next communicator, whose receives would then match those
 * stale messages. Their orphaned buffers stay allocated for the same reason. */
static tpi_group_t *graveyard;
static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;

bool tpi_initialized(void) { return initialized; }

tpmm_status_t tpi_mpi_fail(int rc, const char *op, const char *what) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) strcpy(s, "unknown MPI error");
  return tpi_fail(TPMM_ERR_COMM, "%s: %s failed: %s", op, what, s);
}

static tpi_group_t *find(const char *name) {
  for (tpi_group_t *g = groups; g; g = g->next)
    if (strcmp(g->name, name) == 0) return g;
  return NULL;
}

tpmm_status_t tpi_group_get(const char *op, const char *name, tpi_group_t **out) {
  if (!initialized)
    return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm_init has not been called (or tpmm_finalize has)", op);
  if (!name) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: group is NULL", op);
  pthread_mutex_lock(&groups_lock);
  tpi_group_t *g = find(name);
  pthread_mutex_unlock(&groups_lock);
  if (!g)
    return tpi_fail(TPMM_ERR_GROUP, "%s: group \"%.*s\" does not exist on this rank", op, TPMM_GROUP_NAME_MAX, name);
  if (g->broken)
    return tpi_fail(TPMM_ERR_COMM, "%s: group \"%s\" is unusable after an earlier timeout; destroy and recreate it", op,
                    name);
  *out = g;
  return TPMM_SUCCESS;
}

/* Measure the neighbour link once per group that spans nodes (collective):
 * every rank sends to its right neighbour while receiving from its left, as
 * the ring does; latency from 8-byte messages, bandwidth from 2 MiB ones;
 * the slowest rank's numbers count. Feeds the ring's cost model (plan.c). */
static int measure_link(tpi_group_t *g) {
  enum { BIG = 2 << 20 };
  char *sb = calloc(2, BIG);
  if (!sb) return MPI_ERR_NO_MEM;
  char *rb = sb + BIG;
  int right = (g->rank + 1) % g->size, left = (g->rank + g->size - 1) % g->size, rc = MPI_SUCCESS;
  double t[2] = {0, 0};
  const int sizes[2] = {8, BIG}, reps[2] = {8, 3};
  for (int s = 0; s < 2 && rc == MPI_SUCCESS; s++) {
    double best = 1e30;
    for (int i = 0; i < reps[s] && rc == MPI_SUCCESS; i++) {
      rc = MPI_Barrier(g->comm);
      double t0 = tpi_now();
      if (rc == MPI_SUCCESS)
        rc =
            MPI_Sendrecv(sb, sizes[s], MPI_BYTE, right, 7, rb, sizes[s], MPI_BYTE, left, 7, g->comm, MPI_STATUS_IGNORE);
      double dt = tpi_now() - t0;
      if (dt < best) best = dt;
    }
    t[s] = best;
  }
  double tmax[2];
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(t, tmax, 2, MPI_DOUBLE, MPI_MAX, g->comm);
  if (rc == MPI_SUCCESS) {
    g->net_alpha = tmax[0];
    g->net_beta = (double)BIG / (tmax[1] > tmax[0] ? tmax[1] - tmax[0] : tmax[1]);
  }
  free(sb);
  return rc;
}

static void group_free(tpi_group_t *g);

/* A hash of this kernel's boot id, the same in every network namespace and
 * container on the machine; -1 if it cannot be read. */
static int kernel_id(void) {
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
  if (!f) return -1;
  char id[64] = "";
  const int ok = fgets(id, sizeof id, f) != NULL;
  fclose(f);
  if (!ok) return -1;
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *c = id; *c && *c != '\n'; c++) h = (h ^ (uint8_t)*c) * 16777619u;
  return (int)(h & 0x7fffffff);
}

/* Learn which node each rank is on; for groups with the same number of ranks
 * on every node, build the rank map and the rail communicator (collective).
 * Also count the ranks that share this rank's kernel: MPI's nodes are
 * hostnames, and ranks in separate namespaces or containers of one machine
 * are separate nodes to MPI while they share its CPUs. */
static int topology(tpi_group_t *g) {
  int leader = g->rank, rc = MPI_Bcast(&leader, 1, MPI_INT, 0, g->node_comm);
  int mine[3] = {leader, g->node_rank, kernel_id()}, *all = malloc(sizeof(int) * 3 * (size_t)g->size);
  if (!all) return MPI_ERR_NO_MEM;
  if (rc == MPI_SUCCESS) rc = MPI_Allgather(mine, 3, MPI_INT, all, 3, MPI_INT, g->comm);
  g->kernel_ranks = g->node_size;
  if (rc == MPI_SUCCESS && mine[2] >= 0) {
    int same = 0;
    for (int j = 0; j < g->size; j++) same += all[3 * j + 2] == mine[2];
    if (same > g->kernel_ranks) g->kernel_ranks = same;
  }
  int lo = g->node_size, hi = g->node_size;
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, g->comm);
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, g->comm);
  if (rc != MPI_SUCCESS) {
    free(all);
    return rc;
  }
  /* node index of rank j = number of distinct leaders below its leader */
  int *node_of = malloc(sizeof(int) * (size_t)g->size);
  if (!node_of) {
    free(all);
    return MPI_ERR_NO_MEM;
  }
  for (int j = 0; j < g->size; j++) {
    node_of[j] = 0;
    for (int q = 0; q < g->size; q++)
      if (all[3 * q + 1] == 0 && all[3 * q] < all[3 * j]) node_of[j]++;
  }
  g->node_index = node_of[g->rank];
  g->uniform = lo == hi;
  g->rail = MPI_COMM_NULL;
  if (g->uniform) {
    g->grank_of = malloc(sizeof(int) * (size_t)g->size);
    if (!g->grank_of) rc = MPI_ERR_NO_MEM;
    for (int j = 0; rc == MPI_SUCCESS && j < g->size; j++) g->grank_of[node_of[j] * g->node_size + all[3 * j + 1]] = j;
    if (rc == MPI_SUCCESS && g->n_nodes > 1 && g->node_size > 1) {
      rc = MPI_Comm_split(g->comm, g->node_rank, g->node_index, &g->rail);
      if (rc == MPI_SUCCESS) TPI_LIVE(TPI_LIVE_COMM, 1), MPI_Comm_set_errhandler(g->rail, MPI_ERRORS_RETURN);
    }
  }
  free(node_of);
  free(all);
  return rc;
}

bool tpi_group_crowded(const tpi_group_t *g) {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return cpus > 0 && (int64_t)g->kernel_ranks * tpi_params.num_threads > cpus;
}

/* Build a group around comm (which it takes ownership of). */
static tpmm_status_t group_new(const char *op, const char *name, MPI_Comm comm, tpi_group_t **out) {
  tpi_group_t *g = calloc(1, sizeof *g);
  if (!g) {
    MPI_Comm_free(&comm);
    TPI_LIVE(TPI_LIVE_COMM, -1);
    return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for group \"%s\"", op, name);
  }
  strcpy(g->name, name);
  g->comm = comm;
  g->node_comm = MPI_COMM_NULL;
  g->rail = MPI_COMM_NULL;
  int rc = MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(comm, &g->rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(comm, &g->size);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, g->rank, MPI_INFO_NULL, &g->node_comm);
  if (rc == MPI_SUCCESS) TPI_LIVE(TPI_LIVE_COMM, 1);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(g->node_comm, MPI_ERRORS_RETURN);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(g->node_comm, &g->node_rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(g->node_comm, &g->node_size);
  if (rc == MPI_SUCCESS) {
    int *ub, flag = 0;
    MPI_Comm_get_attr(comm, MPI_TAG_UB, &ub, &flag);
    g->tag_ub = flag ? *ub : 32767;
    int leader = g->node_rank == 0;
    rc = MPI_Allreduce(&leader, &g->n_nodes, 1, MPI_INT, MPI_SUM, comm);
  }
  if (rc == MPI_SUCCESS) rc = topology(g);
  if (rc == MPI_SUCCESS && g->n_nodes > 1) rc = measure_link(g);
  if (rc != MPI_SUCCESS) {
    tpmm_status_t st = tpi_mpi_fail(rc, op, "setting up the group communicator");
    group_free(g);
    return st;
  }
  *out = g;
  return TPMM_SUCCESS;
}

static void group_free(tpi_group_t *g) {
  tpi_shm_release(g); /* collective over the node: every rank destroys the group */
  if (g->broken && initialized) {
    g->next = graveyard;
    graveyard = g;
    return;
  }
  if (g->rail != MPI_COMM_NULL) MPI_Comm_free(&g->rail), TPI_LIVE(TPI_LIVE_COMM, -1);
  if (g->node_comm != MPI_COMM_NULL) MPI_Comm_free(&g->node_comm), TPI_LIVE(TPI_LIVE_COMM, -1);
  if (g->comm != MPI_COMM_NULL) MPI_Comm_free(&g->comm), TPI_LIVE(TPI_LIVE_COMM, -1);
  for (int i = 0; i < g->n_orphans; i++) free(g->orphans[i]);
  free(g->orphans);
  free(g->grank_of);
  free(g->tune);
  free(g);
}

void tpi_group_orphan(tpi_group_t *g, void *buf) {
  if (!buf) return;
  void **n = realloc(g->orphans, sizeof(void *) * (size_t)(g->n_orphans + 1));
  if (!n) return; /* cannot keep it: leak it rather than free memory MPI may write */
  g->orphans = n;
  g->orphans[g->n_orphans++] = buf;
}

static void registry_add(tpi_group_t *g) {
  pthread_mutex_lock(&groups_lock);
  g->next = groups;
  groups = g;
  pthread_mutex_unlock(&groups_lock);
}

static void registry_remove(tpi_group_t *g) {
  pthread_mutex_lock(&groups_lock);
  for (tpi_group_t **p = &groups; *p; p = &(*p)->next)
    if (*p == g) {
      *p = g->next;
      break;
    }
  pthread_mutex_unlock(&groups_lock);
}

tpmm_status_t tpmm_init(int *argc, char ***argv) {
  static const char op[] = "tpmm_init";
  tpi_clear_error();
  if (initialized) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: tpmm is already initialized", op);
  TPI_CHECK(tpi_params_from_env());
  int flag = 0, rc;
  MPI_Initialized(&flag);
  if (!flag) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) return tpi_fail(TPMM_ERR_COMM, "%s: MPI was already finalized; it cannot be initialized again", op);
    int provided;
    rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) return tpi_fail(TPMM_ERR_COMM, "%s: MPI_Init_thread failed (code %d)", op, rc);
    we_initialized_mpi = true;
  }
  MPI_Comm world;
  rc = MPI_Comm_dup(MPI_COMM_WORLD, &world);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Comm_dup(MPI_COMM_WORLD)");
  TPI_LIVE(TPI_LIVE_COMM, 1);
  tpi_group_t *g;
  TPI_CHECK(group_new(op, TPMM_WORLD_COMM_GROUP, world, &g));
  registry_add(g);
  initialized = true;
  tpi_trace_start();
  return TPMM_SUCCESS;
}

tpmm_status_t tpmm_finalize(void) {
  tpi_clear_error();
  if (!initialized) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "tpmm_finalize: tpmm is not initialized");
  tpi_group_t *world = find(TPMM_WORLD_COMM_GROUP);
  tpmm_status_t trace_st = tpi_trace_flush(world->comm);
  /* Free in creation order reversed (the list is LIFO), world last. */
  while (groups) {
    tpi_group_t *g = groups;
    groups = g->next;
    group_free(g);
  }
  initialized = false; /* from here group_free really frees */
  while (graveyard) {
    tpi_group_t *g = graveyard;
    graveyard = g->next;
    group_free(g);
  }
  if (we_initialized_mpi) {
    we_initialized_mpi = false;
    int rc = MPI_Finalize();
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, "tpmm_finalize", "MPI_Finalize");
  }
  return trace_st;
}

tpmm_status_t tpmm_get_rank(const char *group, int *rank) {
  tpi_clear_error();
  tpi_group_t *g;
  TPI_CHECK(tpi_group_get("tpmm_get_rank", group, &g));
  if (!rank) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_get_rank: rank is NULL");
  *rank = g->rank;
  return TPMM_SUCCESS;
}

tpmm_status_t tpmm_get_group_size(const char *group, int *size) {
  tpi_clear_error();
  tpi_group_t *g;
  TPI_CHECK(tpi_group_get("tpmm_get_group_size", group, &g));
  if (!size) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_get_group_size: size is NULL");
  *size = g->size;
  return TPMM_SUCCESS;
}

static tpmm_status_t check_new_name(const char *op, const char *name) {
  if (!name) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: group is NULL", op);
  size_t len = strnlen(name, TPMM_GROUP_NAME_MAX + 1);
  if (len == 0) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: group name is empty", op);
  if (len > TPMM_GROUP_NAME_MAX)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: group name is longer than %d bytes", op, TPMM_GROUP_NAME_MAX);
  pthread_mutex_lock(&groups_lock);
  bool taken = find(name) != NULL;
  pthread_mutex_unlock(&groups_lock);
  if (taken) return tpi_fail(TPMM_ERR_GROUP, "%s: group \"%s\" already exists", op, name);
  return TPMM_SUCCESS;
}

/* Register a freshly built group, unless some rank of it failed locally
 * (e.g. the name is taken there): the name check is a rank-local fact, so the
 * communicator is built first and the outcome agreed over it; otherwise the
 * other members would wait forever in the collective creation. */
static tpmm_status_t register_agreed(const char *op, const char *name, MPI_Comm comm, tpmm_status_t local) {
  tpi_group_t *g;
  char own[512];
  snprintf(own, sizeof own, "%s", tpi_error_message());
  TPI_CHECK(group_new(op, name, comm, &g));
  tpi_fail(local, "%s", own); /* restore this rank's message for the agreement */
  tpmm_status_t st = tpi_agree(g, op, local, NULL, 0, NULL, NULL, 0);
  if (st != TPMM_SUCCESS) {
    group_free(g);
    return st;
  }
  registry_add(g);
  return TPMM_SUCCESS;
}

tpmm_status_t tpmm_create_group(const char *group, int n, const int *world_ranks) {
  static const char op[] = "tpmm_create_group";
  tpi_clear_error();
  if (!initialized) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm_init has not been called", op);
  if (!group) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: group is NULL", op);
  /* checks that depend only on the arguments, the same on every listed rank */
  tpi_group_t *world = find(TPMM_WORLD_COMM_GROUP);
  if (n < 1 || n > world->size)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: n=%d, expected 1..%d (the world size)", op, n, world->size);
  if (!world_ranks) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: world_ranks is NULL", op);
  bool member = false;
  for (int i = 0; i < n; i++) {
    if (world_ranks[i] < 0 || world_ranks[i] >= world->size)
      return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: world_ranks[%d]=%d is outside [0, %d)", op, i, world_ranks[i],
                      world->size);
    for (int j = 0; j < i; j++)
      if (world_ranks[j] == world_ranks[i])
        return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: world_ranks[%d]=%d duplicates world_ranks[%d]", op, i,
                        world_ranks[i], j);
    if (world_ranks[i] == world->rank) member = true;
  }
  if (!member)
    return tpi_fail(TPMM_ERR_GROUP, "%s: this rank (world rank %d) is not in the list of group \"%.*s\"", op,
                    world->rank, TPMM_GROUP_NAME_MAX, group);
  /* the name: rank-local, agreed below */
  tpmm_status_t local = check_new_name(op, group);
  MPI_Group wg, ng;
  int rc = MPI_Comm_group(world->comm, &wg);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Comm_group");
  rc = MPI_Group_incl(wg, n, world_ranks, &ng);
  MPI_Group_free(&wg);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Group_incl");
  MPI_Comm comm;
  /* collective over the members only */
  rc = MPI_Comm_create_group(world->comm, ng, 0x7a11, &comm);
  MPI_Group_free(&ng);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Comm_create_group");
  TPI_LIVE(TPI_LIVE_COMM, 1);
  return register_agreed(op, local == TPMM_SUCCESS ? group : "(rejected)", comm, local);
}

tpmm_status_t tpmm_destroy_group(const char *group) {
  static const char op[] = "tpmm_destroy_group";
  tpi_clear_error();
  if (!initialized) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm_init has not been called", op);
  if (!group) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: group is NULL", op);
  if (strcmp(group, TPMM_WORLD_COMM_GROUP) == 0)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: the world group \"%s\" cannot be destroyed (tpmm_finalize does)",
                    op, group);
  pthread_mutex_lock(&groups_lock);
  tpi_group_t *g = find(group);
  pthread_mutex_unlock(&groups_lock);
  if (!g)
    return tpi_fail(TPMM_ERR_GROUP, "%s: group \"%.*s\" does not exist on this rank", op, TPMM_GROUP_NAME_MAX, group);
  registry_remove(g);
  group_free(g);
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_group_adopt(const char *op, const char *name, MPI_Comm comm) {
  if (!initialized) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm_init has not been called", op);
  if (comm == MPI_COMM_NULL) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: comm is MPI_COMM_NULL", op);
  tpmm_status_t local = check_new_name(op, name);
  MPI_Comm dup;
  int rc = MPI_Comm_dup(comm, &dup);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Comm_dup");
  TPI_LIVE(TPI_LIVE_COMM, 1);
  return register_agreed(op, local == TPMM_SUCCESS ? name : "(rejected)", dup, local);
}

double tpi_deadline(void) { return tpi_params.timeout_ms > 0 ? tpi_now() + 1e-3 * (double)tpi_params.timeout_ms : 0.0; }

tpmm_status_t tpi_test(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p,
                       double deadline, int *done) {
  int rc = MPI_Testall(n, reqs, done, MPI_STATUSES_IGNORE);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, what);
  if (*done || deadline <= 0.0 || tpi_now() < deadline) return TPMM_SUCCESS;
  /* Timed out: cancel what can be cancelled; the group can no longer be trusted
   * (a collective in flight cannot be cancelled in MPI). */
  for (int i = 0; p2p && i < n; i++)
    if (reqs[i] != MPI_REQUEST_NULL) {
      MPI_Cancel(&reqs[i]);
      MPI_Request_free(&reqs[i]);
    }
  g->broken = true;
  return tpi_fail(TPMM_ERR_TIMEOUT, "%s: timed out after %lld ms waiting for %s on group \"%s\"", op,
                  (long long)tpi_params.timeout_ms, what, g->name);
}

tpmm_status_t tpi_wait(tpi_group_t *g, const char *op, const char *what, int n, MPI_Request *reqs, int p2p) {
  double deadline = tpi_deadline();
  if (deadline <= 0.0) {
    int rc = MPI_Waitall(n, reqs, MPI_STATUSES_IGNORE);
    return rc == MPI_SUCCESS ? TPMM_SUCCESS : tpi_mpi_fail(rc, op, what);
  }
  for (;;) {
    int done;
    TPI_CHECK(tpi_test(g, op, what, n, reqs, p2p, deadline, &done));
    if (done) return TPMM_SUCCESS;
    sched_yield();
  }
}

#include "tpmm_mpi.h"

tpmm_status_t tpmm_group_from_comm(const char *group, MPI_Comm comm) {
  tpi_clear_error();
  return tpi_group_adopt("tpmm_group_from_comm", group, comm);
}

tpmm_status_t tpi_shm_free_ptr(void *ptr, int *found) {
  if (!initialized) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "tpmm_free_shared: tpmm is not initialized");
  for (tpi_group_t *g = groups; g && !*found; g = g->next) TPI_CHECK(tpi_shm_free_in_group(g, ptr, found));
  return TPMM_SUCCESS;
}
