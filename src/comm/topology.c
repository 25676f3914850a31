/*
 * topology.c — where a group's ranks are: which node each is on (MPI's
 * shared-memory split), the rank map and rail communicator of groups with
 * the same number of ranks on every node, how many ranks share this
 * machine's kernel (crowded machines) and how long a collective waits for
 * CPUs there, and the neighbour link's latency and
 * bandwidth for the cost model (pipeline/plan.c).
 */
#include "topology.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Whether every rank has its buffer (ok), agreed before any exchange: a rank
 * that returned early would leave its peers waiting. An MPI error code. */
static int all_have(tpi_group_t *g, int ok) {
  const int rc = MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, g->comm);
  return rc != MPI_SUCCESS ? rc : ok ? MPI_SUCCESS : MPI_ERR_NO_MEM;
}

/* Measure the neighbour link once per group that spans nodes (collective):
 * each rank sends right while receiving from the left, as the ring does.
 * Latency: the best of 8-byte exchanges. Bandwidth: the median of the last
 * third of 1 MiB exchanges back to back, the rate a long transfer keeps once
 * a shaped link's burst is spent; about PROBE_SECONDS of them at the first
 * four's pace, so that a fast link's sample is not a hiccup (bench/RESULTS.md
 * §22), the count taken from the slowest rank. The slowest rank's numbers count. */
#define PROBE_SECONDS 0.04
static int measure_link(tpi_group_t *g) {
  enum { BIG = 1 << 20, LAT_REPS = 8, BW_FIRST = 4, BW_MIN = 12, BW_MAX = 48 };
  char *sb = tpi_debug_fail("the link probe") ? NULL : calloc(2, BIG);
  int rc = all_have(g, sb != NULL);
  if (rc != MPI_SUCCESS) {
    free(sb);
    return rc;
  }
  char *rb = sb + BIG;
  const int right = (g->rank + 1) % g->size, left = (g->rank + g->size - 1) % g->size;
  double t[2] = {1e30, 0}, bw[BW_MAX];
  for (int i = 0; i < LAT_REPS && rc == MPI_SUCCESS; i++) {
    rc = MPI_Barrier(g->comm);
    const double t0 = tpi_now();
    if (rc == MPI_SUCCESS)
      rc = MPI_Sendrecv(sb, 8, MPI_BYTE, right, 7, rb, 8, MPI_BYTE, left, 7, g->comm, MPI_STATUS_IGNORE);
    const double dt = tpi_now() - t0;
    if (dt < t[0]) t[0] = dt;
  }
  if (rc == MPI_SUCCESS) rc = MPI_Barrier(g->comm);
  double first = 0;
  int n = BW_FIRST;
  for (int i = 0; i < n && rc == MPI_SUCCESS; i++) {
    const double t0 = tpi_now();
    rc = MPI_Sendrecv(sb, BIG, MPI_BYTE, right, 7, rb, BIG, MPI_BYTE, left, 7, g->comm, MPI_STATUS_IGNORE);
    bw[i] = tpi_now() - t0;
    first += bw[i];
    if (i == BW_FIRST - 1 && rc == MPI_SUCCESS) {
      rc = MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_DOUBLE, MPI_MAX, g->comm);
      const double want = first > 0 ? ceil(BW_FIRST * PROBE_SECONDS / first) : BW_MAX;
      n = want < BW_MIN ? BW_MIN : want > BW_MAX ? BW_MAX : (int)want;
    }
  }
  if (rc == MPI_SUCCESS) t[1] = tpi_median_of(bw + n - n / 3, n / 3);
  double tmax[2];
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(t, tmax, 2, MPI_DOUBLE, MPI_MAX, g->comm);
  if (rc == MPI_SUCCESS) {
    g->net_alpha = tmax[0];
    g->net_beta = (double)BIG / (tmax[1] > tmax[0] ? tmax[1] - tmax[0] : tmax[1]);
  }
  free(sb);
  return rc;
}

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

/* The node split: node_comm, node_rank/size, n_nodes, tag_ub. */
static int node_split(tpi_group_t *g) {
  int rc = MPI_Comm_split_type(g->comm, MPI_COMM_TYPE_SHARED, g->rank, MPI_INFO_NULL, &g->node_comm);
  if (rc == MPI_SUCCESS) rc = tpi_comm_own(&g->node_comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(g->node_comm, &g->node_rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(g->node_comm, &g->node_size);
  if (rc != MPI_SUCCESS) return rc;
  int *ub, flag = 0;
  MPI_Comm_get_attr(g->comm, MPI_TAG_UB, &ub, &flag);
  /* the top tags are the agreement's: one per group in turn, so that a late
   * message of an abandoned call on a freed communicator whose context id
   * MPI reuses never matches a later group's agreement */
  static int64_t epoch; /* groups this process has been part of */
  int64_t e = epoch;
  rc = MPI_Allreduce(MPI_IN_PLACE, &e, 1, MPI_INT64_T, MPI_MAX, g->comm);
  if (rc != MPI_SUCCESS) return rc;
  epoch = e + 1;
  const int top = flag ? *ub : 32767;
  g->agree_tag = top - (int)(e % TPI_AGREE_TAGS);
  g->tag_ub = top - TPI_AGREE_TAGS;
  int leader = g->node_rank == 0;
  return MPI_Allreduce(&leader, &g->n_nodes, 1, MPI_INT, MPI_SUM, g->comm);
}

/* For groups with the same number of ranks on every node: the rank map and
 * the rail communicator. all[] holds every rank's (leader, node_rank, kernel). */
static int rank_map(tpi_group_t *g, const int *all) {
  /* node index of rank j = number of distinct leaders below its leader */
  int *node_of = malloc(sizeof(int) * (size_t)g->size), rc = MPI_SUCCESS;
  if (!node_of) return MPI_ERR_NO_MEM;
  for (int j = 0; j < g->size; j++) {
    node_of[j] = 0;
    for (int q = 0; q < g->size; q++)
      if (all[3 * q + 1] == 0 && all[3 * q] < all[3 * j]) node_of[j]++;
  }
  g->node_index = node_of[g->rank];
  if (g->uniform) {
    g->grank_of = malloc(sizeof(int) * (size_t)g->size);
    if (!g->grank_of) rc = MPI_ERR_NO_MEM;
    for (int j = 0; rc == MPI_SUCCESS && j < g->size; j++) g->grank_of[node_of[j] * g->node_size + all[3 * j + 1]] = j;
    if (rc == MPI_SUCCESS && g->n_nodes > 1 && g->node_size > 1) {
      rc = MPI_Comm_split(g->comm, g->node_rank, g->node_index, &g->rail);
      if (rc == MPI_SUCCESS) rc = tpi_comm_own(&g->rail);
    }
  }
  free(node_of);
  return rc;
}

/* Learn which node each rank is on and build the rank map. Also count the
 * ranks that share this rank's kernel: MPI's nodes are hostnames, and ranks
 * in separate namespaces or containers of one machine are separate nodes to
 * MPI while they share its CPUs. */
static int placement(tpi_group_t *g) {
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
  g->uniform = lo == hi;
  if (rc == MPI_SUCCESS) rc = rank_map(g, all);
  free(all);
  return rc;
}

/* On a crowded machine a collective waits for its ranks to get a CPU,
 * scheduler periods rather than latency (bench/RESULTS.md §21, §22): the
 * median of five small MPI_Allgathers after barriers, the slowest rank's. */
static int measure_sync(tpi_group_t *g) {
  enum { REPS = 5 };
  double t[REPS];
  int *all = tpi_debug_fail("the crowded wait") ? NULL : malloc(sizeof(int) * (size_t)g->size), mine = g->rank;
  int rc = all_have(g, all != NULL);
  for (int i = 0; i < REPS && rc == MPI_SUCCESS; i++) {
    rc = MPI_Barrier(g->comm); /* as a call's collective comes: ranks leave a barrier at different times */
    const double t0 = tpi_now();
    if (rc == MPI_SUCCESS) rc = MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, g->comm);
    t[i] = tpi_now() - t0;
  }
  free(all);
  double med = rc == MPI_SUCCESS ? tpi_median_of(t, REPS) : 0;
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&med, &g->sync_s, 1, MPI_DOUBLE, MPI_MAX, g->comm);
  return rc;
}

int tpi_topology_learn(tpi_group_t *g) {
  g->online_cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int rc = node_split(g);
  if (rc == MPI_SUCCESS) rc = placement(g);
  /* crowded may differ between machines, so it is agreed, with whether a rank failed locally so far (its
   * peers must not wait for it in the next collective); the model reads sync_s within a node only */
  int flags[2] = {rc == MPI_SUCCESS && tpi_group_crowded(g), rc != MPI_SUCCESS};
  const int rc2 = MPI_Allreduce(MPI_IN_PLACE, flags, 2, MPI_INT, MPI_MAX, g->comm);
  if (rc == MPI_SUCCESS) rc = rc2 != MPI_SUCCESS ? rc2 : flags[1] ? MPI_ERR_OTHER : MPI_SUCCESS;
  if (rc == MPI_SUCCESS && flags[0] && g->n_nodes == 1) rc = measure_sync(g);
  if (rc == MPI_SUCCESS && g->n_nodes > 1) rc = measure_link(g);
  return rc;
}

double tpi_group_crowding(const tpi_group_t *g) {
  return g->online_cpus > 0 ? (double)g->kernel_ranks * tpi_params.num_threads / (double)g->online_cpus : 0;
}

bool tpi_group_crowded(const tpi_group_t *g) { return tpi_group_crowding(g) > 1; }

bool tpi_group_link_yields(const tpi_group_t *g) {
  const int64_t busy = (int64_t)g->kernel_ranks * tpi_params.num_threads;
  return tpi_group_crowded(g) || (g->n_nodes > 1 && g->online_cpus > 0 && busy >= g->online_cpus);
}
