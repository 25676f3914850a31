/*
 * test_thread_level.c — the MPI thread level tpmm records and the lock that
 * serialises its MPI calls below MPI_THREAD_MULTIPLE (issue 12, item b).
 *
 *   mpirun -n W test_thread_level MODE
 *     MODE tpmm: tpmm_init initialises MPI (asking for MPI_THREAD_MULTIPLE);
 *     multiple | serialized | funneled: the application initialises MPI at
 *     that level, then calls tpmm_init.
 *
 * Checks, each under the watchdog that names the case:
 *  1. tpi_mpi_thread_level() is the level MPI granted (MPI_Query_thread).
 *  2. tpi_mpi_lock is recursive (one thread takes it twice); below MULTIPLE
 *     a second thread does not get it while the first holds it; at MULTIPLE
 *     it is a no-op (the second thread gets in at once).
 *  3. SERIALIZED and MULTIPLE: two threads run 200 agreement steps each
 *     (tpi_agree: a nonblocking allreduce, then tpi_wait) on two groups at
 *     once; every result is right, and below MULTIPLE no two threads were
 *     ever inside MPI together. The MPI calls on that path are wrapped here
 *     (PMPI) and count how often a thread entered while another was inside.
 *  4. Group management takes the lock: a tpmm_create_group / destroy pair
 *     runs while another thread holds it only after that thread lets go.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "src/comm/comm.h"
#include "testutil.h"

/* ---- PMPI wrappers: how many calls overlapped another thread's ---- */
static int inside, overlaps;
static void enter(void) {
  if (__atomic_add_fetch(&inside, 1, __ATOMIC_SEQ_CST) > 1) __atomic_add_fetch(&overlaps, 1, __ATOMIC_SEQ_CST);
}
static void leave(void) { __atomic_sub_fetch(&inside, 1, __ATOMIC_SEQ_CST); }

int MPI_Iallreduce(const void *sb, void *rb, int n, MPI_Datatype t, MPI_Op o, MPI_Comm c, MPI_Request *r) {
  enter();
  int rc = PMPI_Iallreduce(sb, rb, n, t, o, c, r);
  leave();
  return rc;
}
int MPI_Testall(int n, MPI_Request r[], int *flag, MPI_Status s[]) {
  enter();
  int rc = PMPI_Testall(n, r, flag, s);
  leave();
  return rc;
}
int MPI_Waitall(int n, MPI_Request r[], MPI_Status s[]) {
  enter();
  int rc = PMPI_Waitall(n, r, s);
  leave();
  return rc;
}

static void nap_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* ---- 2. the lock ---- */
static int a_holds, a_leaving, b_got_while_held;
static void *holder(void *arg) {
  (void)arg;
  tpi_mpi_lock();
  __atomic_store_n(&a_holds, 1, __ATOMIC_SEQ_CST);
  nap_ms(200);
  __atomic_store_n(&a_leaving, 1, __ATOMIC_SEQ_CST);
  tpi_mpi_unlock();
  return NULL;
}
static void *taker(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&a_holds, __ATOMIC_SEQ_CST)) nap_ms(1);
  tpi_mpi_lock();
  b_got_while_held = !__atomic_load_n(&a_leaving, __ATOMIC_SEQ_CST);
  tpi_mpi_unlock();
  return NULL;
}

static void check_lock(int level) {
  test_case("the lock is recursive", 10);
  tpi_mpi_lock();
  tpi_mpi_lock();
  tpi_mpi_unlock();
  tpi_mpi_unlock();
  test_case("the lock excludes a second thread below MULTIPLE, not at MULTIPLE", 10);
  pthread_t a, b;
  pthread_create(&a, NULL, holder, NULL);
  pthread_create(&b, NULL, taker, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  if (level >= MPI_THREAD_MULTIPLE)
    check(b_got_while_held, "at MPI_THREAD_MULTIPLE the lock is not a no-op: a second thread waited");
  else
    check(!b_got_while_held, "below MPI_THREAD_MULTIPLE a second thread took the lock while the first held it");
}

/* ---- 3. agreements on two groups from two threads ---- */
typedef struct {
  const char *group;
  int W, bad;
  tpmm_status_t st;
  char msg[256];
} runner_t;

static void *agree_loop(void *arg) {
  runner_t *r = arg;
  tpi_group_t *g = NULL;
  r->st = tpi_group_get("test_thread_level", r->group, &g);
  static const char *const names[] = {"iteration"};
  for (int64_t i = 0; r->st == TPMM_SUCCESS && i < 200; i++) {
    int64_t tune = g->rank;
    r->st = tpi_agree(g, "test_thread_level", TPMM_SUCCESS, &i, 1, names, &tune, 1);
    r->bad += r->st == TPMM_SUCCESS && tune != r->W - 1;
  }
  if (r->st != TPMM_SUCCESS) snprintf(r->msg, sizeof r->msg, "%s", tpmm_last_error());
  return NULL;
}

static void check_concurrent_ops(int level, int W) {
  test_case("create two groups", 60);
  int *ranks = malloc(sizeof(int) * (size_t)W);
  for (int i = 0; i < W; i++) ranks[i] = W - 1 - i;
  expect_status(tpmm_create_group("tl_b", W, ranks), TPMM_SUCCESS, "tpmm_create_group(tl_b)", NULL);
  free(ranks);
  test_case("agreements on two groups from two threads", 120);
  runner_t ra = {TPMM_WORLD_COMM_GROUP, W, 0, TPMM_SUCCESS, ""}, rb = {"tl_b", W, 0, TPMM_SUCCESS, ""};
  __atomic_store_n(&overlaps, 0, __ATOMIC_SEQ_CST);
  pthread_t a, b;
  pthread_create(&a, NULL, agree_loop, &ra);
  pthread_create(&b, NULL, agree_loop, &rb);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  const runner_t *rs[2] = {&ra, &rb};
  for (int i = 0; i < 2; i++) {
    check(rs[i]->st == TPMM_SUCCESS, "group %s: status %d: %s", rs[i]->group, rs[i]->st, rs[i]->msg);
    check(rs[i]->bad == 0, "group %s: %d agreements gave the wrong maximum", rs[i]->group, rs[i]->bad);
  }
  const int n = __atomic_load_n(&overlaps, __ATOMIC_SEQ_CST);
  if (level < MPI_THREAD_MULTIPLE)
    check(n == 0, "%d MPI calls entered while another thread was inside MPI (level %d)", n, level);
  test_case("destroy", 60);
  expect_status(tpmm_destroy_group("tl_b"), TPMM_SUCCESS, "tpmm_destroy_group(tl_b)", NULL);
}

/* ---- 4. group management waits for the lock ---- */
static void *create_destroy(void *arg) {
  int *W = arg, *ranks = malloc(sizeof(int) * (size_t)*W);
  for (int i = 0; i < *W; i++) ranks[i] = i;
  tpmm_status_t st = tpmm_create_group("tl_c", *W, ranks);
  if (st == TPMM_SUCCESS) st = tpmm_destroy_group("tl_c");
  free(ranks);
  check(__atomic_load_n(&a_leaving, __ATOMIC_SEQ_CST), "tpmm_create_group ran while another thread held the lock");
  check(st == TPMM_SUCCESS, "create/destroy from a second thread: %s", tpmm_last_error());
  return NULL;
}

static void check_management_locks(int W) {
  test_case("group management takes the lock", 60);
  a_holds = a_leaving = 0;
  pthread_t a, b;
  pthread_create(&a, NULL, holder, NULL);
  while (!__atomic_load_n(&a_holds, __ATOMIC_SEQ_CST)) nap_ms(1);
  pthread_create(&b, NULL, create_destroy, &W);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
}

int main(int argc, char **argv) {
  static const char *const modes[] = {"tpmm", "multiple", "serialized", "funneled"};
  static const int levels[] = {MPI_THREAD_MULTIPLE, MPI_THREAD_MULTIPLE, MPI_THREAD_SERIALIZED, MPI_THREAD_FUNNELED};
  int mode = -1;
  for (int i = 0; argc > 1 && i < 4; i++)
    if (strcmp(argv[1], modes[i]) == 0) mode = i;
  if (mode < 0) {
    fprintf(stderr, "usage: test_thread_level tpmm|multiple|serialized|funneled\n");
    return 2;
  }
  signal(SIGALRM, test_on_alarm);
  int provided = -1, rank, W;
  if (mode > 0) MPI_Init_thread(&argc, &argv, levels[mode], &provided);
  test_init(&argc, &argv, &rank, &W);
  int level;
  MPI_Query_thread(&level);
  test_case("the recorded thread level", 10);
  check(tpi_mpi_thread_level() == level, "tpi_mpi_thread_level() = %d, MPI_Query_thread = %d", tpi_mpi_thread_level(),
        level);
  if (mode > 0) check(level == provided, "MPI_Query_thread = %d, MPI_Init_thread provided %d", level, provided);
  if (rank == 0) printf("test_thread_level: mode %s, W=%d, MPI granted level %d\n", modes[mode], W, level);
  check_lock(level);
  if (level >= MPI_THREAD_SERIALIZED) {
    check_concurrent_ops(level, W);
    if (level < MPI_THREAD_MULTIPLE) check_management_locks(W);
  }
  test_case("finish", 60);
  int rc = finish("test_thread_level");
  tpmm_finalize();
  if (mode > 0) MPI_Finalize();
  return rc;
}
