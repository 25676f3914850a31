/*
 * lib.c — the library's lifetime and its contract with MPI: tpmm_init and
 * tpmm_finalize (MPI initialised and finalised only when tpmm did it), the
 * initialised flag, the thread level MPI granted and the lock below
 * MPI_THREAD_MULTIPLE, MPI's error strings, and the communicators and
 * windows tpmm owns (errors return, counted).
 */
#include "lib.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../common/trace.h"
#include "group.h"

int64_t tpi_live[TPI_LIVE_COUNT];

static bool initialized;
static bool we_initialized_mpi;
static int thread_level = MPI_THREAD_SINGLE;
static pthread_mutex_t mpi_lock;
static pthread_once_t mpi_lock_once = PTHREAD_ONCE_INIT;

bool tpi_initialized(void) { return initialized; }

int tpi_mpi_thread_level(void) { return thread_level; }

/* recursive: group management holds it and waits inside take it per poll */
static void mpi_lock_init(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&mpi_lock, &a);
  pthread_mutexattr_destroy(&a);
}

void tpi_mpi_lock(void) {
  if (thread_level >= MPI_THREAD_MULTIPLE) return;
  pthread_once(&mpi_lock_once, mpi_lock_init);
  pthread_mutex_lock(&mpi_lock);
}

void tpi_mpi_unlock(void) {
  if (thread_level < MPI_THREAD_MULTIPLE) pthread_mutex_unlock(&mpi_lock);
}

tpmm_status_t tpi_mpi_fail(int rc, const char *op, const char *what) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) strcpy(s, "unknown MPI error");
  return tpi_fail(TPMM_ERR_COMM, "%s: %s failed: %s", op, what, s);
}

int tpi_comm_own(MPI_Comm *c) {
  if (*c == MPI_COMM_NULL) return MPI_SUCCESS;
  TPI_LIVE(TPI_LIVE_COMM, 1);
  tpi_mpi_lock();
  int rc = MPI_Comm_set_errhandler(*c, MPI_ERRORS_RETURN);
  tpi_mpi_unlock();
  if (rc != MPI_SUCCESS) tpi_comm_free(c);
  return rc;
}

int tpi_comm_free(MPI_Comm *c) {
  if (*c == MPI_COMM_NULL) return MPI_SUCCESS;
  TPI_LIVE(TPI_LIVE_COMM, -1);
  tpi_mpi_lock();
  int rc = MPI_Comm_free(c);
  tpi_mpi_unlock();
  return rc;
}

int tpi_win_own(MPI_Win *w) {
  if (*w == MPI_WIN_NULL) return MPI_SUCCESS;
  TPI_LIVE(TPI_LIVE_WIN, 1);
  tpi_mpi_lock();
  int rc = MPI_Win_set_errhandler(*w, MPI_ERRORS_RETURN);
  tpi_mpi_unlock();
  if (rc != MPI_SUCCESS) tpi_win_free(w);
  return rc;
}

/* MPI_Win_free synchronises the window's ranks: like window allocation it is
 * a blocking collective held under the lock. */
int tpi_win_free(MPI_Win *w) {
  if (*w == MPI_WIN_NULL) return MPI_SUCCESS;
  TPI_LIVE(TPI_LIVE_WIN, -1);
  tpi_mpi_lock();
  int rc = MPI_Win_free(w);
  tpi_mpi_unlock();
  return rc;
}

/* The MPI this process runs against the one tpmm was compiled for: their
 * handles are compile-time constants of one (MPICH's MPI_COMM_WORLD an int,
 * Open MPI's a pointer), which the other's library crashes on. A program
 * built with one MPI's mpicc and linked with a tpmm of the other ends up so.
 * MPICH's ABI family (Intel MPI, MVAPICH, Cray MPICH) is accepted. */
static tpmm_status_t check_mpi_library(const char *op) {
#if defined(MPICH_VERSION) || defined(OMPI_MAJOR_VERSION)
  char v[8192] = ""; /* the larger MPI's bound: the other MPI's library writes its own length */
  int len = 0;
  if (MPI_Get_library_version(v, &len) != MPI_SUCCESS) return TPMM_SUCCESS; /* no handle involved: nothing to tell */
  const int runs_ompi = strstr(v, "Open MPI") != NULL;
#if defined(MPICH_VERSION)
  const char *built = "MPICH " MPICH_VERSION;
  const int ok = !runs_ompi;
#else
  const char *built = "Open MPI";
  const int ok = runs_ompi || !(strstr(v, "MPICH") || strstr(v, "Intel(R) MPI") || strstr(v, "MVAPICH"));
#endif
  if (!ok) {
    const char *nl = strchr(v, '\n');
    return tpi_fail(
        TPMM_ERR_UNSUPPORTED,
        "%s: tpmm was built against %s, but this process runs \"%.*s\": build the program with the same "
        "MPI (its mpicc, or `pkg-config --cflags --libs tpmm`, which names it) and start it with that MPI's "
        "mpirun",
        op, built, (int)(nl ? nl - v : (int)strnlen(v, sizeof v)), v);
  }
#else
  (void)op;
#endif
  return TPMM_SUCCESS;
}

tpmm_status_t tpmm_init(int *argc, char ***argv) {
  static const char op[] = "tpmm_init";
  tpi_clear_error();
  if (initialized) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "%s: tpmm is already initialized", op);
  TPI_CHECK(check_mpi_library(op));
  TPI_CHECK(tpi_params_from_env());
  TPI_CHECK(tpi_debug_from_env());
  int flag = 0, rc;
  MPI_Initialized(&flag);
  if (!flag) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) return tpi_fail(TPMM_ERR_COMM, "%s: MPI was already finalized; it cannot be initialized again", op);
    rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &thread_level);
    if (rc != MPI_SUCCESS) return tpi_fail(TPMM_ERR_COMM, "%s: MPI_Init_thread failed (code %d)", op, rc);
    we_initialized_mpi = true;
  } else {
    MPI_Query_thread(&thread_level);
  }
  TPI_CHECK(tpi_group_open_world(op));
  initialized = true;
  tpi_trace_start();
  return TPMM_SUCCESS;
}

tpmm_status_t tpmm_finalize(void) {
  tpi_clear_error();
  if (!initialized) return tpi_fail(TPMM_ERR_NOT_INITIALIZED, "tpmm_finalize: tpmm is not initialized");
  tpmm_status_t trace_st = tpi_trace_flush(tpi_group_world()->comm);
  tpi_group_close_all();
  initialized = false;
  if (we_initialized_mpi) {
    we_initialized_mpi = false;
    int rc = MPI_Finalize();
    if (rc != MPI_SUCCESS) return tpi_mpi_fail(rc, "tpmm_finalize", "MPI_Finalize");
  }
  return trace_st;
}
