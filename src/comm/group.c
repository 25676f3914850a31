/*
 * group.c — the named-group registry: create, adopt, look up and destroy
 * groups, and keep what a timed-out group leaves behind until finalize.
 *
 * Each group owns a duplicate communicator with MPI_ERRORS_RETURN (so MPI
 * failures come back as TPMM_ERR_COMM instead of killing the job); its
 * topology is learnt by topology.c. The registry is a short list; lookups
 * take a mutex so operations on different groups may run from different
 * threads.
 */
#include "group.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "topology.h"
#include "tpmm_mpi.h"
#include "wait.h"

static tpi_group_t *groups;
/* Destroyed groups that were broken (a timeout): their communicators and
 * buffers are kept until finalize, because an abandoned call may still use
 * them, and MPI would hand a freed context id to the next communicator,
 * whose receives could match stale messages (agreements also change tags
 * from group to group: topology.c). */
static tpi_group_t *graveyard;
static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;

static tpi_group_t *find(const char *name) {
  for (tpi_group_t *g = groups; g; g = g->next)
    if (strcmp(g->name, name) == 0) return g;
  return NULL;
}

static tpi_group_t *find_locked(const char *name) {
  pthread_mutex_lock(&groups_lock);
  tpi_group_t *g = find(name);
  pthread_mutex_unlock(&groups_lock);
  return g;
}

tpmm_status_t tpi_group_get(const char *op, const char *name, tpi_group_t **out) {
  if (!tpi_initialized())
    return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm_init has not been called (or tpmm_finalize has)", op);
  if (!name) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: group is NULL", op);
  tpi_group_t *g = find_locked(name);
  if (!g)
    return tpi_fail(TPMM_ERR_GROUP, "%s: group \"%.*s\" does not exist on this rank", op, TPMM_GROUP_NAME_MAX, name);
  if (g->broken)
    return tpi_fail(TPMM_ERR_COMM, "%s: group \"%s\" is unusable after an earlier timeout; destroy and recreate it", op,
                    name);
  *out = g;
  return TPMM_SUCCESS;
}

tpi_group_t *tpi_group_find_if(bool (*pred)(tpi_group_t *g, void *ctx), void *ctx) {
  pthread_mutex_lock(&groups_lock);
  tpi_group_t *g = groups;
  while (g && !pred(g, ctx)) g = g->next;
  pthread_mutex_unlock(&groups_lock);
  return g;
}

/* Free g, or, when it is broken and keep_broken is set, keep it in the
 * graveyard until finalize. Collective over the group (its windows: every
 * rank must destroy it, broken or not, since a rank cannot know whether its
 * peers saw the timeout too). */
static void group_free(tpi_group_t *g, bool keep_broken) {
  if (g->shm_release) g->shm_release(g);
  if (g->broken && keep_broken) {
    g->next = graveyard;
    graveyard = g;
    return;
  }
  tpi_comm_free(&g->vote_comm);
  tpi_comm_free(&g->rail);
  tpi_comm_free(&g->node_comm);
  tpi_comm_free(&g->comm);
  for (int i = 0; i < g->n_orphans; i++) free(g->orphans[i]);
  free(g->orphans);
  free(g->grank_of);
  free(g->tune);
  if (g->gemm_cache_release) g->gemm_cache_release(g);
  if (g->ws_stash_release) g->ws_stash_release(g);
  free(g->agree_buf);
  free(g->agree_stage);
  free(g);
}

/* Build a group around comm (owned: tpi_comm_own; the group takes it over). */
static tpmm_status_t group_new(const char *op, const char *name, MPI_Comm comm, tpi_group_t **out) {
  tpi_group_t *g = calloc(1, sizeof *g);
  if (!g) {
    tpi_comm_free(&comm);
    return tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for group \"%s\"", op, name);
  }
  strcpy(g->name, name);
  g->comm = comm;
  g->node_comm = MPI_COMM_NULL;
  g->rail = MPI_COMM_NULL;
  g->vote_comm = MPI_COMM_NULL;
  int rc = MPI_Comm_rank(comm, &g->rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(comm, &g->size);
  if (rc == MPI_SUCCESS) rc = tpi_topology_learn(g);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(comm, &g->vote_comm);
  if (rc == MPI_SUCCESS) rc = tpi_comm_own(&g->vote_comm);
  if (rc != MPI_SUCCESS) {
    tpmm_status_t st = tpi_mpi_fail(rc, op, "setting up the group communicator");
    group_free(g, false);
    return st;
  }
  *out = g;
  return TPMM_SUCCESS;
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

tpmm_status_t tpi_group_open_world(const char *op) {
  MPI_Comm world;
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &world);
  if (rc == MPI_SUCCESS) rc = tpi_comm_own(&world);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Comm_dup(MPI_COMM_WORLD)");
  tpi_group_t *g;
  TPI_CHECK(group_new(op, TPMM_WORLD_COMM_GROUP, world, &g));
  registry_add(g);
  return TPMM_SUCCESS;
}

tpi_group_t *tpi_group_world(void) { return find_locked(TPMM_WORLD_COMM_GROUP); }

void tpi_group_close_all(void) {
  /* Free in creation order reversed (the list is LIFO), world last. */
  while (groups) {
    tpi_group_t *g = groups;
    groups = g->next;
    group_free(g, true);
  }
  while (graveyard) {
    tpi_group_t *g = graveyard;
    graveyard = g->next;
    group_free(g, false);
  }
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
  if (find_locked(name)) return tpi_fail(TPMM_ERR_GROUP, "%s: group \"%s\" already exists", op, name);
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
    group_free(g, true);
    return st;
  }
  registry_add(g);
  return TPMM_SUCCESS;
}

static tpmm_status_t create_group(const char *op, const char *group, int n, const int *world_ranks) {
  if (!tpi_initialized()) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm_init has not been called", op);
  if (!group) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: group is NULL", op);
  /* checks that depend only on the arguments, the same on every listed rank */
  tpi_group_t *world = tpi_group_world();
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
  if (rc == MPI_SUCCESS) rc = tpi_comm_own(&comm);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Comm_create_group");
  return register_agreed(op, local == TPMM_SUCCESS ? group : "(rejected)", comm, local);
}

tpmm_status_t tpmm_create_group(const char *group, int n, const int *world_ranks) {
  tpi_clear_error();
  tpi_mpi_lock();
  tpmm_status_t st = create_group("tpmm_create_group", group, n, world_ranks);
  tpi_mpi_unlock();
  return st;
}

static tpmm_status_t destroy_group(const char *op, const char *group) {
  if (!tpi_initialized()) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm_init has not been called", op);
  if (!group) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: group is NULL", op);
  if (strcmp(group, TPMM_WORLD_COMM_GROUP) == 0)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: the world group \"%s\" cannot be destroyed (tpmm_finalize does)",
                    op, group);
  tpi_group_t *g = find_locked(group);
  if (!g)
    return tpi_fail(TPMM_ERR_GROUP, "%s: group \"%.*s\" does not exist on this rank", op, TPMM_GROUP_NAME_MAX, group);
  registry_remove(g);
  /* The windows are freed collectively, so only if every rank is here and
   * none saw the group break (a rank that returned from an abandoned call
   * would otherwise wait in MPI_Win_free for peers that left them behind).
   * On a communicator of its own: a rank that never joined an abandoned
   * call would match its peers' stale messages or collectives on g->comm. */
  tpmm_status_t st = TPMM_SUCCESS;
  if (g->shm) {
    MPI_Request r;
    g->broken_any = g->broken;
    const int rc = MPI_Iallreduce(MPI_IN_PLACE, &g->broken_any, 1, MPI_INT, MPI_MAX, g->vote_comm, &r);
    st = rc == MPI_SUCCESS ? tpi_wait(g, op, "every rank's destruction of the group", 1, &r, 0)
                           : tpi_mpi_fail(rc, op, "MPI_Iallreduce");
    if (st != TPMM_SUCCESS || g->broken_any) g->broken = true, g->shm_release = NULL; /* kept, never freed */
  }
  group_free(g, true);
  return st;
}

tpmm_status_t tpmm_destroy_group(const char *group) {
  tpi_clear_error();
  tpi_mpi_lock();
  tpmm_status_t st = destroy_group("tpmm_destroy_group", group);
  tpi_mpi_unlock();
  return st;
}

static tpmm_status_t adopt(const char *op, const char *name, MPI_Comm comm) {
  if (!tpi_initialized()) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "%s: tpmm_init has not been called", op);
  if (comm == MPI_COMM_NULL) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: comm is MPI_COMM_NULL", op);
  tpmm_status_t local = check_new_name(op, name);
  MPI_Comm dup;
  int rc = MPI_Comm_dup(comm, &dup);
  if (rc == MPI_SUCCESS) rc = tpi_comm_own(&dup);
  if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, op, "MPI_Comm_dup");
  return register_agreed(op, local == TPMM_SUCCESS ? name : "(rejected)", dup, local);
}

tpmm_status_t tpi_group_adopt(const char *op, const char *name, MPI_Comm comm) {
  tpi_mpi_lock();
  tpmm_status_t st = adopt(op, name, comm);
  tpi_mpi_unlock();
  return st;
}

tpmm_status_t tpmm_group_from_comm(const char *group, MPI_Comm comm) {
  tpi_clear_error();
  return tpi_group_adopt("tpmm_group_from_comm", group, comm);
}
