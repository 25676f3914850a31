/*
 * test_topology.c — what a group learns about where its ranks are
 * (src/comm/topology.c), checked against an independent count:
 *   - nodes: MPI's shared-memory split (hostnames), as every algorithm uses;
 *   - ranks on this machine: ranks whose kernel boot id string equals this
 *     rank's, read and compared here as strings. Ranks in separate network
 *     namespaces (tests/run_netsim.sh) are separate nodes to MPI but share
 *     one machine's CPUs, and must count together;
 *   - crowded: those ranks x TPMM_NUM_THREADS > online CPUs, for the thread
 *     counts 1 and CPUs + 1 (always crowded); link waits yield: crowded, or
 *     several nodes and those ranks x threads >= online CPUs;
 * for the world group and for a named group of every other rank (counts only
 * its members). The link's CPU cost a byte (net_cpu): 0 within a node; where
 * the group spans nodes, the same finite value on every rank, and above 0
 * where ranks of several nodes share this machine's kernel (simulated hosts,
 * whose TCP runs on the ranks' CPUs). Where the world spans nodes: the link
 * probe's buffers failing on rank 0 alone (TPMM_DEBUG_FAIL "the link probe",
 * "the link's CPU probe") fail the group's creation on every rank, none left
 * waiting, and the next creation succeeds.
 *
 *   mpirun -n W test_topology        (any W >= 1; also across simulated hosts)
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/comm/comm.h"
#include "src/common/debug.h"
#include "testutil.h"

#define ID_LEN 64

static void read_boot_id(char id[ID_LEN]) {
  memset(id, 0, ID_LEN);
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
  if (!f) return;
  if (!fgets(id, ID_LEN, f)) id[0] = '\0';
  fclose(f);
  id[strcspn(id, "\n")] = '\0';
}

/* Check one group; members[] are the world ranks in it (n of them). */
static void check_group(const char *name, int n, const int *members, int wrank, const char *ids, int node_of_me,
                        const int *node_of) {
  int in = 0;
  for (int i = 0; i < n; i++) in |= members[i] == wrank;
  if (!in) return;
  tpi_group_t *g = NULL;
  tpmm_status_t st = tpi_group_get("test_topology", name, &g);
  check(st == TPMM_SUCCESS && g, "%s: tpi_group_get: %s", name, tpmm_last_error());
  if (!g) return;
  const char *mine = ids + (size_t)wrank * ID_LEN;
  int same_machine = 0, same_node = 0, nodes = 0;
  for (int i = 0; i < n; i++) {
    const int j = members[i];
    same_machine += mine[0] && strcmp(ids + (size_t)j * ID_LEN, mine) == 0;
    same_node += node_of[j] == node_of_me;
    int first = 1; /* count distinct nodes among the members */
    for (int q = 0; q < i; q++) first &= node_of[members[q]] != node_of[j];
    nodes += first;
  }
  const int want = same_machine > same_node ? same_machine : same_node;
  check(g->n_nodes == nodes, "%s: n_nodes %d, expected %d", name, g->n_nodes, nodes);
  check(g->node_size == same_node, "%s: node_size %d, expected %d", name, g->node_size, same_node);
  check(g->kernel_ranks == want, "%s: ranks on this machine %d, expected %d (same boot id %d, same node %d)", name,
        g->kernel_ranks, want, same_machine, same_node);
  double cpu[2] = {-g->net_cpu, g->net_cpu}; /* -min, max over the group */
  MPI_Allreduce(MPI_IN_PLACE, cpu, 2, MPI_DOUBLE, MPI_MAX, g->comm);
  if (nodes == 1) {
    check(g->net_cpu == 0, "%s: one node, the link's CPU cost %g s/B, expected 0", name, g->net_cpu);
  } else {
    check(-cpu[0] == cpu[1] && isfinite(cpu[1]) && cpu[1] >= 0, "%s: the link's CPU cost %g-%g s/B across ranks", name,
          -cpu[0], cpu[1]);
    check(want == same_node || g->net_cpu > 0,
          "%s: %d nodes on %d ranks of one machine, the link's CPU cost measured %g s/B, expected above 0", name, nodes,
          want, g->net_cpu);
    if (wrank == members[0]) printf("test_topology: %s: the link's CPU cost %.3f ns a byte\n", name, g->net_cpu * 1e9);
  }
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int64_t saved = 0;
  tpmm_get_param(TPMM_PARAM_NUM_THREADS, &saved);
  tpmm_set_param(TPMM_PARAM_NUM_THREADS, 1);
  check(tpi_group_crowded(g) == (want > cpus), "%s: crowded %d with 1 thread, %d ranks here, %ld CPUs", name,
        (int)tpi_group_crowded(g), want, cpus);
  const int yields = want > cpus || (nodes > 1 && want >= cpus);
  check(tpi_group_link_yields(g) == yields, "%s: link waits yield %d with 1 thread, %d ranks here, %d nodes, %ld CPUs",
        name, (int)tpi_group_link_yields(g), want, nodes, cpus);
  if (cpus + 1 <= 1024) {
    tpmm_set_param(TPMM_PARAM_NUM_THREADS, cpus + 1);
    check(tpi_group_crowded(g), "%s: not crowded with %ld threads per rank on %ld CPUs", name, cpus + 1, cpus);
  }
  tpmm_set_param(TPMM_PARAM_NUM_THREADS, saved);
  if (wrank == members[0])
    printf("test_topology: %s: %d ranks, %d nodes, %d on rank %d's machine (%d on its node), %ld CPUs\n", name, n,
           g->n_nodes, g->kernel_ranks, wrank, g->node_size, cpus);
}

int main(int argc, char **argv) {
  int rank, W;
  test_init(&argc, &argv, &rank, &W);
  test_case("topology", 60);
  char id[ID_LEN];
  read_boot_id(id);
  char *ids = calloc((size_t)W, ID_LEN);
  int *node_of = calloc((size_t)W, sizeof(int)), *members = calloc((size_t)W, sizeof(int));
  if (!ids || !node_of || !members) {
    fprintf(stderr, "test_topology: out of memory\n");
    return 1;
  }
  MPI_Allgather(id, ID_LEN, MPI_CHAR, ids, ID_LEN, MPI_CHAR, MPI_COMM_WORLD);
  /* a node is named by its lowest world rank, from MPI's own split */
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int lead = rank;
  MPI_Allreduce(MPI_IN_PLACE, &lead, 1, MPI_INT, MPI_MIN, node);
  MPI_Comm_free(&node);
  MPI_Allgather(&lead, 1, MPI_INT, node_of, 1, MPI_INT, MPI_COMM_WORLD);

  for (int j = 0; j < W; j++) members[j] = j;
  check_group(TPMM_WORLD_COMM_GROUP, W, members, rank, ids, lead, node_of);

  int n = 0;
  for (int j = 0; j < W; j += 2) members[n++] = j;
  if (rank % 2 == 0) { /* only the listed ranks call */
    tpmm_status_t st = tpmm_create_group("evens", n, members);
    check(st == TPMM_SUCCESS, "tpmm_create_group(evens): %s", tpmm_last_error());
    if (st == TPMM_SUCCESS) {
      check_group("evens", n, members, rank, ids, lead, node_of);
      tpmm_destroy_group("evens");
    }
  }
  /* the first agreement of a group (its registration) without memory for its buffers on rank 0: every rank
   * returns NO_MEMORY, the peers naming rank 0 and the cause; the next creation succeeds */
  test_case("the agreement's buffers failing on rank 0", 60);
  for (int j = 0; j < W; j++) members[j] = j;
  if (rank == 0) tpi_debug_set_fail("TPMM_DEBUG_FAIL", "the agreement's buffers");
  tpmm_status_t st = tpmm_create_group("agree_oom", W, members);
  tpi_debug_set_fail("TPMM_DEBUG_FAIL", NULL);
  check(st == TPMM_ERR_NO_MEMORY && strstr(tpmm_last_error(), "out of memory for the agreement's buffers") &&
            (rank == 0 || strstr(tpmm_last_error(), "rank 0 of group \"agree_oom\" could not prepare the call: ")),
        "rank %d: the agreement's buffers failing on rank 0: %s \"%s\"", rank, tpmm_status_string(st),
        tpmm_last_error());
  if (st == TPMM_SUCCESS) tpmm_destroy_group("agree_oom");
  st = tpmm_create_group("agree_oom", W, members);
  check(st == TPMM_SUCCESS, "rank %d: the group after the agreement's buffers failed: %s", rank, tpmm_last_error());
  if (st == TPMM_SUCCESS) tpmm_destroy_group("agree_oom");
  /* ... and on the last rank while rank 0 also fails (its group name is taken: a local failure): every rank
   * returns rank 0's status, the last rank too, though it read only the start of each peer's block */
  if (W >= 2) {
    test_case("the agreement's buffers failing on the last rank, rank 0 failing too", 60);
    const char *name = rank == 0 ? TPMM_WORLD_COMM_GROUP : "agree_oom2";
    if (rank == W - 1) tpi_debug_set_fail("TPMM_DEBUG_FAIL", "the agreement's buffers");
    st = tpmm_create_group(name, W, members);
    tpi_debug_set_fail("TPMM_DEBUG_FAIL", NULL);
    int sts[64] = {0}, mine = (int)st;
    MPI_Allgather(&mine, 1, MPI_INT, sts, 1, MPI_INT, MPI_COMM_WORLD);
    int same = 1;
    for (int j = 0; j < W && j < 64; j++) same &= sts[j] == sts[0];
    check(same && st != TPMM_SUCCESS, "rank %d: statuses differ between ranks or success: %s \"%s\"", rank,
          tpmm_status_string(st), tpmm_last_error());
    if (st == TPMM_SUCCESS) tpmm_destroy_group(name);
  }
  int spans = 0;
  for (int j = 0; j < W; j++) spans |= node_of[j] != node_of[0];
  if (spans) {
    test_case("the link probe failing on rank 0", 60);
    for (int j = 0; j < W; j++) members[j] = j;
    creation_fails_everywhere("the link probe", "probe", W, members, rank);
    test_case("the link's CPU probe failing on rank 0", 60);
    creation_fails_everywhere("the link's CPU probe", "probe", W, members, rank);
  }
  free(ids);
  free(node_of);
  free(members);
  const int rc = finish("test_topology");
  tpmm_finalize(); /* finalizes MPI: tpmm_init initialised it */
  return rc;
}
