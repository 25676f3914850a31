/*
 * topology.c — where a group's ranks are: which node each is on (MPI's
 * shared-memory split), the rank map and rail communicator of groups with
 * the same number of ranks on every node, how many ranks share this
 * machine's kernel (crowded machines) and how long a collective waits for
 * CPUs there, and the neighbour link's latency, bandwidth and CPU cost a
 * byte for the cost model (pipeline/plan.c).
 */
#include "topology.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* What the link's transfers cost a rank that computes beside them: the
 * kernel's TCP work runs on the ranks' CPUs, so a GEMM that overlaps a
 * transfer loses that time (bench/RESULTS.md §9, §32, §33). Each rank sums
 * an L2-sized buffer in slices of about CPU_SLICE, alone and then while it
 * exchanges CPU_XFER_SECONDS' worth of the link with its neighbours, polling
 * MPI between slices as a ring polls between GEMM tiles, until both are done;
 * the slices' extra time over the bytes it sent or received across nodes is
 * its cost a byte. Five such pairs, the median; then the mean over the ranks
 * with a neighbour on another node, rank 0's value on every rank (one rank's
 * median swings widely on a busy machine, §33.2). Seconds a byte, >= 0. */
#define CPU_SLICE 1e-3         /* as a ring's GEMM tile between polls */
#define CPU_XFER_SECONDS 10e-3 /* the exchange's length at the measured bandwidth */
static float cpu_slice(const float *buf, int len, int passes) {
  float acc[16] = {0};
  for (int p = 0; p < passes; p++)
    for (int i = 0; i < len; i += 16)
      for (int j = 0; j < 16; j++) acc[j] += buf[i + j];
  float s = 0;
  for (int j = 0; j < 16; j++) s += acc[j];
  return s;
}

static int measure_cpu(tpi_group_t *g) {
  enum { REPS = 5, LEN = 32768 /* 128 KiB of floats */, MIN_SLICES = 8 };
  const double want = g->net_beta * CPU_XFER_SECONDS;
  const size_t bytes = want < 65536 ? 65536 : want > 8e6 ? 8000000 : (size_t)want;
  float *buf = tpi_debug_fail("the link's CPU probe") ? NULL : calloc(LEN, sizeof(float));
  char *xb = buf ? malloc(2 * bytes) : NULL;
  int rc = all_have(g, xb != NULL);
  if (rc != MPI_SUCCESS) {
    free(xb), free(buf);
    return rc;
  }
  memset(xb, 1, 2 * bytes);
  volatile float sink = 0;         /* keeps the sums the compiler would otherwise drop */
  sink += cpu_slice(buf, LEN, 16); /* warm */
  const double t16 = tpi_now();
  sink += cpu_slice(buf, LEN, 16);
  const double per = (tpi_now() - t16) / 16;
  const int passes = per > 0 && CPU_SLICE / per < (1 << 20) ? (int)ceil(CPU_SLICE / per) : 1 << 20; /* a slice's */
  const int right = (g->rank + 1) % g->size, left = (g->rank + g->size - 1) % g->size;
  int node[2] = {-1, -1}; /* the neighbours' nodes: left's, right's */
  rc = MPI_Sendrecv(&g->node_index, 1, MPI_INT, right, 8, &node[0], 1, MPI_INT, left, 8, g->comm, MPI_STATUS_IGNORE);
  if (rc == MPI_SUCCESS)
    rc = MPI_Sendrecv(&g->node_index, 1, MPI_INT, left, 8, &node[1], 1, MPI_INT, right, 8, g->comm, MPI_STATUS_IGNORE);
  const double across = (double)bytes * ((node[0] != g->node_index) + (node[1] != g->node_index));
  double cost[REPS];
  int in_flight = 0;
  for (int r = 0; r < REPS && rc == MPI_SUCCESS; r++) {
    rc = MPI_Barrier(g->comm);
    double t0 = tpi_now();
    for (int i = 0; i < MIN_SLICES; i++) sink += cpu_slice(buf, LEN, passes);
    const double alone = (tpi_now() - t0) / MIN_SLICES;
    if (rc == MPI_SUCCESS) rc = MPI_Barrier(g->comm);
    MPI_Request req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    if (rc == MPI_SUCCESS) rc = MPI_Irecv(xb + bytes, (int)bytes, MPI_BYTE, left, 8, g->comm, &req[0]);
    if (rc == MPI_SUCCESS) rc = MPI_Isend(xb, (int)bytes, MPI_BYTE, right, 8, g->comm, &req[1]);
    int done = 0, n = 0;
    t0 = tpi_now();
    while (rc == MPI_SUCCESS && (!done || n < MIN_SLICES)) {
      sink += cpu_slice(buf, LEN, passes), n++;
      if (!done) rc = MPI_Testall(2, req, &done, MPI_STATUSES_IGNORE);
    }
    const double extra = tpi_now() - t0 - n * alone;
    cost[r] = extra > 0 && across > 0 ? extra / across : 0;
    in_flight = req[0] != MPI_REQUEST_NULL || req[1] != MPI_REQUEST_NULL;
    for (int i = 0; i < 2 && rc != MPI_SUCCESS; i++) /* a matched receive may still write: xb is not freed below */
      if (req[i] != MPI_REQUEST_NULL) MPI_Request_free(&req[i]);
  }
  double mine[2] = {rc == MPI_SUCCESS && across > 0 ? tpi_median_of(cost, REPS) : 0, across > 0}, all[2] = {0, 0};
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(mine, all, 2, MPI_DOUBLE, MPI_SUM, g->comm);
  double cpu = all[1] > 0 ? all[0] / all[1] : 0; /* a ring over two nodes or more has an edge across */
  if (rc == MPI_SUCCESS) rc = MPI_Bcast(&cpu, 1, MPI_DOUBLE, 0, g->comm); /* the same bits on every rank */
  if (rc == MPI_SUCCESS) g->net_cpu = cpu;
  if (rc == MPI_SUCCESS || !in_flight) free(xb);
  free(buf);
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
  if (rc == MPI_SUCCESS && g->n_nodes > 1) rc = measure_cpu(g);
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
