/*
 * test_errhandlers.c — every communicator and window tpmm creates or adopts
 * returns MPI errors instead of aborting the job (issue 12, item a).
 *
 * Objects: of the world group, a created group and an adopted one (from a
 * duplicate of MPI_COMM_WORLD with MPI_ERRORS_ARE_FATAL, as applications
 * leave it): the group communicator, the node communicator and the rail
 * (only where the group spans nodes with several ranks on each: run with
 * MPIR_CVAR_NUM_CLIQUES=2 under MPICH, which splits one machine into two
 * nodes); the shm_pull window (tpi_shm_reserve) and a symmetric buffer's
 * window (tpmm_alloc_shared).
 * For each: its error handler is MPI_ERRORS_RETURN, and an erroneous call on
 * it (a rank that does not exist) returns an error code, which tpi_mpi_fail
 * turns into TPMM_ERR_COMM carrying MPI's text. Without the handler MPI
 * aborts the job on that call. Afterwards a call on every group still works.
 *
 *   mpirun -n W test_errhandlers      (any W >= 1)
 */
#include <signal.h>

#include "src/comm/comm.h"
#include "src/comm/shm.h"
#include "testutil.h"
#include "tpmm_mpi.h"

static int n_rails;

static void expect_comm_fail(int rc, const char *label) {
  check(rc != MPI_SUCCESS, "%s: an erroneous call returned MPI_SUCCESS", label);
  tpmm_status_t st = tpi_mpi_fail(rc, "test_errhandlers", label);
  expect_status(st, TPMM_ERR_COMM, label, "failed: ");
}

static void check_comm(const char *group, const char *kind, MPI_Comm c) {
  char label[160];
  snprintf(label, sizeof label, "group \"%s\" %s", group, kind);
  test_case(label, 30);
  MPI_Errhandler eh;
  check(MPI_Comm_get_errhandler(c, &eh) == MPI_SUCCESS && eh == MPI_ERRORS_RETURN,
        "%s: error handler is not MPI_ERRORS_RETURN", label);
  int size = 0;
  MPI_Comm_size(c, &size);
  char byte = 0;
  expect_comm_fail(MPI_Send(&byte, 1, MPI_BYTE, size + 3, 0, c), label); /* no such rank */
}

static void check_win(const char *kind, MPI_Win w, int node_size) {
  test_case(kind, 30);
  MPI_Errhandler eh;
  check(MPI_Win_get_errhandler(w, &eh) == MPI_SUCCESS && eh == MPI_ERRORS_RETURN,
        "%s: error handler is not MPI_ERRORS_RETURN", kind);
  MPI_Aint sz;
  int du;
  void *base;
  expect_comm_fail(MPI_Win_shared_query(w, node_size + 3, &sz, &du, &base), kind); /* no such rank */
}

static void check_group(const char *name) {
  tpi_group_t *g = NULL;
  tpmm_status_t st = tpi_group_get("test_errhandlers", name, &g);
  check(st == TPMM_SUCCESS && g, "tpi_group_get(%s): %s", name, tpmm_last_error());
  if (!g) return;
  check_comm(name, "communicator", g->comm);
  check_comm(name, "node communicator", g->node_comm);
  if (g->rail != MPI_COMM_NULL) {
    check_comm(name, "rail", g->rail);
    n_rails++;
  }
}

/* A small valid call on group: the objects still work after their errors. */
static void still_works(const char *group, int W) {
  char label[160];
  snprintf(label, sizeof label, "group \"%s\": a call after the errors", group);
  test_case(label, 60);
  expect_status(small_call(group, W), TPMM_SUCCESS, label, NULL);
}

int main(int argc, char **argv) {
  int rank, W;
  signal(SIGALRM, test_on_alarm);
  test_init(&argc, &argv, &rank, &W);
  int *rev = malloc(sizeof(int) * (size_t)W);
  for (int i = 0; i < W; i++) rev[i] = W - 1 - i;
  test_case("create and adopt", 60);
  expect_status(tpmm_create_group("eh_created", W, rev), TPMM_SUCCESS, "tpmm_create_group", NULL);
  MPI_Comm app;
  MPI_Comm_dup(MPI_COMM_WORLD, &app);
  MPI_Comm_set_errhandler(app, MPI_ERRORS_ARE_FATAL);
  expect_status(tpmm_group_from_comm("eh_adopted", app), TPMM_SUCCESS, "tpmm_group_from_comm", NULL);

  check_group(TPMM_WORLD_COMM_GROUP);
  check_group("eh_created");
  check_group("eh_adopted");

  tpi_group_t *g = NULL;
  tpi_group_get("test_errhandlers", TPMM_WORLD_COMM_GROUP, &g);
  test_case("the shm_pull window", 60);
  expect_status(tpi_shm_reserve(g, "test_errhandlers", 4096, 2), TPMM_SUCCESS, "tpi_shm_reserve", NULL);
  check_win("the shm_pull window", g->shm->win, g->node_size);
  void *p = NULL;
  test_case("a symmetric buffer's window", 60);
  expect_status(tpmm_alloc_shared(TPMM_WORLD_COMM_GROUP, 4096, &p), TPMM_SUCCESS, "tpmm_alloc_shared", NULL);
  tpi_symbuf_t *b = p ? tpi_shm_find_symbuf(g, p, 1) : NULL;
  check(b != NULL, "tpmm_alloc_shared's buffer is not a symmetric buffer of the world group");
  if (b) check_win("a symmetric buffer's window", b->win, g->node_size);

  still_works(TPMM_WORLD_COMM_GROUP, W);
  still_works("eh_created", W);
  still_works("eh_adopted", W);

  test_case("teardown", 60);
  expect_status(tpmm_free_shared(p), TPMM_SUCCESS, "tpmm_free_shared", NULL);
  expect_status(tpmm_destroy_group("eh_created"), TPMM_SUCCESS, "tpmm_destroy_group", NULL);
  expect_status(tpmm_destroy_group("eh_adopted"), TPMM_SUCCESS, "tpmm_destroy_group", NULL);
  MPI_Comm_free(&app);
  free(rev);
  if (rank == 0) printf("test_errhandlers: W=%d, rails checked on this rank: %d\n", W, n_rails);
  int rc = finish("test_errhandlers");
  tpmm_finalize();
  return rc;
}
