/*
 * test_debug_hooks.c — the test hooks' environment variables are checked
 * (issue 12, item e), and the shared window has a fault-injection point.
 *
 *   mpirun -n W test_debug_hooks
 *
 * One row per value of TPMM_DEBUG_STALL_MS / TPMM_DEBUG_FAIL /
 * TPMM_DEBUG_NO_FOLD: a malformed one
 * makes tpmm_init fail with TPMM_ERR_INVALID_ARGUMENT naming the variable
 * and the value (it used to be read as 0, or cut at the colon, silently); a
 * good one is taken as written. Then "the shared window", armed on every
 * rank, fails a shm_pull call with TPMM_ERR_NO_MEMORY on every rank, and the
 * next call succeeds. The application initialises MPI, so that tpmm_init
 * can be tried again after a failure.
 */
#include <signal.h>

#include "src/common/common.h"
#include "src/common/debug.h"
#include "testutil.h"

typedef struct {
  const char *var, *value;
  int ok;           /* tpmm_init succeeds */
  const char *fail; /* ok: the armed event */
  int skip;         /* ok: its skip count */
  int64_t stall;    /* ok: the stall */
  int no_fold;      /* ok: the fold switched off */
} row_t;

static const char long_name[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 64 bytes */

static const row_t rows[] = {
    {"TPMM_DEBUG_STALL_MS", "abc", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_STALL_MS", "-5", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_STALL_MS", "10ms", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_STALL_MS", "99999999999", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_STALL_MS", "250", 1, "", 0, 250, 0},
    {"TPMM_DEBUG_STALL_MS", "", 1, "", 0, 0, 0},
    {"TPMM_DEBUG_FAIL", ":3", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_FAIL", "gemm tile:x", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_FAIL", "gemm tile:-1", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_FAIL", "gemm tile:1:2", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_FAIL", "gemm tile:", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_FAIL", long_name, 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_FAIL", "gemm tile:2", 1, "gemm tile", 2, 0, 0},
    {"TPMM_DEBUG_FAIL", "the shared window", 1, "the shared window", 0, 0, 0},
    {"TPMM_DEBUG_NO_FOLD", "2", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_NO_FOLD", "yes", 0, NULL, 0, 0, 0},
    {"TPMM_DEBUG_NO_FOLD", "1", 1, "", 0, 0, 1},
    {"TPMM_DEBUG_NO_FOLD", "0", 1, "", 0, 0, 0},
};

static void run_row(const row_t *r) {
  char label[120];
  snprintf(label, sizeof label, "%s=\"%.20s\"", r->var, r->value);
  test_case(label, 60);
  setenv(r->var, r->value, 1);
  tpmm_status_t st = tpmm_init(NULL, NULL);
  unsetenv(r->var);
  if (!r->ok) {
    char want[160];
    snprintf(want, sizeof want, "%s=\"%s\"", r->var, r->value);
    expect_status(st, TPMM_ERR_INVALID_ARGUMENT, label, want);
    if (st == TPMM_SUCCESS) tpmm_finalize();
    return;
  }
  expect_status(st, TPMM_SUCCESS, label, NULL);
  check(strcmp(tpi_debug.fail, r->fail) == 0 && tpi_debug.fail_skip == r->skip, "%s: armed \"%s\":%d", label,
        tpi_debug.fail, tpi_debug.fail_skip);
  check(tpi_debug.stall_ms == r->stall, "%s: stall %lld ms", label, (long long)tpi_debug.stall_ms);
  check(tpi_debug.no_fold == r->no_fold, "%s: no_fold %d", label, tpi_debug.no_fold);
  tpi_debug_set_fail("test", NULL);
  tpi_debug.stall_ms = 0;
  tpi_debug.no_fold = 0;
  if (st == TPMM_SUCCESS) tpmm_finalize();
}

static void shared_window_fault(void) {
  int rank, W;
  test_init(NULL, NULL, &rank, &W);
  test_case("\"the shared window\" armed on every rank", 60);
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_SHM_PULL);
  tpi_debug_set_fail("test", "the shared window");
  expect_status(small_call(TPMM_WORLD_COMM_GROUP, W), TPMM_ERR_NO_MEMORY, "shm_pull with the shared window failing",
                "the shared window");
  test_case("the next call", 60);
  expect_status(small_call(TPMM_WORLD_COMM_GROUP, W), TPMM_SUCCESS, "shm_pull after the fault", NULL);
  tpmm_set_param(TPMM_PARAM_ALGO, TPMM_ALGO_AUTO);
}

int main(int argc, char **argv) {
  signal(SIGALRM, test_on_alarm);
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &t_rank);
  unsetenv("TPMM_DEBUG_STALL_MS");
  unsetenv("TPMM_DEBUG_FAIL");
  unsetenv("TPMM_DEBUG_NO_FOLD");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) run_row(&rows[i]);
  shared_window_fault();
  test_case("finish", 30);
  int rc = finish("test_debug_hooks");
  tpmm_finalize();
  MPI_Finalize();
  return rc;
}
