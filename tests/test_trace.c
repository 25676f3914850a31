/*
 * test_trace.c — the trace (TPMM_TRACE) at its edges (issue 12, items c, d).
 *
 *   mpirun -n W test_trace counter | symlink
 *
 * counter: the event counter past 2^31 and 2^32 (set through the test hook
 *   tpi_trace_set_offered, then events recorded): no out-of-bounds store, the
 *   count keeps growing; a full trace keeps its first events and drops the
 *   newest. tpmm_finalize then writes the file: every rank's first two events,
 *   the last slot's event once per rank, the dropped ones nowhere, each
 *   track labelled with the 2 events it dropped.
 * symlink: TPMM_TRACE names a symbolic link to a file: tpmm_finalize returns
 *   TPMM_ERR_INVALID_ARGUMENT naming the path on every rank and the file the
 *   link points to is untouched.
 * The application initialises MPI (it must outlive tpmm_finalize here).
 */
#include <signal.h>
#include <unistd.h>

#include "src/common/trace.h"
#include "testutil.h"

static int count_in(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[512];
  int n = 0;
  while (fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

static void record(int64_t a) { tpi_trace_record(TPI_EV_GEMM, tpi_now(), a, 0); }

static void counter_case(int rank, int W, const char *path) {
  test_case("trace counter", 30);
  check(tpi_trace_on, "tracing is off with TPMM_TRACE=%s", path);
  if (!tpi_trace_on) return;
  record(100 + rank);
  record(200);
  check(tpi_trace_offered() == 2, "offered %llu after 2 events", (unsigned long long)tpi_trace_offered());
  tpi_trace_set_offered((uint64_t)INT32_MAX - 1); /* an int counter overflows on the 2nd of these */
  for (int i = 0; i < 4; i++) record(300);
  check(tpi_trace_offered() == (uint64_t)INT32_MAX + 3, "offered %llu, expected 2^31 + 2",
        (unsigned long long)tpi_trace_offered());
  tpi_trace_set_offered((uint64_t)UINT32_MAX); /* a 32-bit unsigned counter wraps to 0 here */
  for (int i = 0; i < 2; i++) record(400);
  check(tpi_trace_offered() == (uint64_t)UINT32_MAX + 2, "offered %llu, expected 2^32 + 1",
        (unsigned long long)tpi_trace_offered());
  /* the last free slot, then two that do not fit */
  tpi_trace_set_offered(TPI_TRACE_CAP - 1);
  record(777);
  record(778);
  record(779);
  test_case("trace file", 60);
  expect_status(tpmm_finalize(), TPMM_SUCCESS, "tpmm_finalize", NULL);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank != 0) return;
  char want[64];
  check(count_in(path, "\"a\":777,") == W, "the last slot's event: %d lines, expected %d", count_in(path, "\"a\":777,"),
        W);
  check(count_in(path, "\"a\":778,") == 0 && count_in(path, "\"a\":779,") == 0, "dropped events were written");
  check(count_in(path, "\"a\":300,") == 0 && count_in(path, "\"a\":400,") == 0, "events past the end were written");
  check(count_in(path, "\"a\":200,") == W, "second events: %d, expected %d", count_in(path, "\"a\":200,"), W);
  for (int r = 0; r < W; r++) {
    snprintf(want, sizeof want, "\"pid\":%d,\"tid\":0,\"args\":{\"a\":%d,", r, 100 + r);
    check(count_in(path, want) == 1, "rank %d's first event is not in its track", r);
  }
  check(count_in(path, "\"2 events dropped: the trace was full\"") == W, "%d tracks say they dropped 2 events",
        count_in(path, "\"2 events dropped"));
}

static void symlink_case(int rank, const char *path, const char *target) {
  test_case("trace through a symbolic link", 60);
  record(1);
  tpmm_status_t st = tpmm_finalize();
  expect_status(st, TPMM_ERR_INVALID_ARGUMENT, "tpmm_finalize with TPMM_TRACE a symbolic link", path);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank != 0) return;
  FILE *f = fopen(target, "r");
  char buf[64] = "";
  if (f) {
    if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
    fclose(f);
  }
  check(strcmp(buf, "precious\n") == 0, "the link's target was changed: \"%s\"", buf);
}

int main(int argc, char **argv) {
  const int symlink_mode = argc > 1 && strcmp(argv[1], "symlink") == 0;
  if (argc < 2 || (!symlink_mode && strcmp(argv[1], "counter") != 0)) {
    fprintf(stderr, "usage: test_trace counter|symlink\n");
    return 2;
  }
  signal(SIGALRM, test_on_alarm);
  int provided, rank, W;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int id = (int)getpid();
  MPI_Bcast(&id, 1, MPI_INT, 0, MPI_COMM_WORLD);
  char path[128], target[128];
  snprintf(path, sizeof path, "/tmp/tpmm_test_trace_%d.json", id);
  snprintf(target, sizeof target, "/tmp/tpmm_test_trace_%d.target", id);
  if (rank == 0 && symlink_mode) {
    FILE *f = fopen(target, "w");
    if (f) fputs("precious\n", f), fclose(f);
    if (symlink(target, path) != 0) perror("symlink");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  setenv("TPMM_TRACE", path, 1);
  test_init(&argc, &argv, &rank, &W);
  if (symlink_mode)
    symlink_case(rank, path, target);
  else
    counter_case(rank, W, path);
  test_case("finish", 30);
  int rc = finish("test_trace");
  if (rank == 0) unlink(path), unlink(target);
  MPI_Finalize();
  return rc;
}
