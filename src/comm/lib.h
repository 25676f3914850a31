/*
 * lib.h — the library's state and its contract with MPI: whether tpmm is
 * initialised, the thread level MPI granted and the lock that serialises
 * tpmm's MPI calls below MPI_THREAD_MULTIPLE, MPI's error strings, and the
 * MPI objects tpmm owns. The lowest header of src/comm: it includes nothing
 * of src/comm.
 * Only src/comm, src/pipeline and the trace writer include <mpi.h>.
 */
#ifndef TPMM_LIB_H
#define TPMM_LIB_H

#include <mpi.h>
#include <stdbool.h>

/* GCC 12 misreads MPICH's MPI_STATUSES_IGNORE sentinel ((MPI_Status *)1) as a
 * zero-sized buffer in MPI_Testall/Waitall/Testsome; the calls are correct. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

#include "../common/common.h"

/* Live MPI objects created by tpmm, for leak accounting (the soak test checks
 * they return to their baseline). Adjusted at every create and free. */
enum { TPI_LIVE_COMM, TPI_LIVE_WIN, TPI_LIVE_TYPE, TPI_LIVE_COUNT };
extern int64_t tpi_live[TPI_LIVE_COUNT];
#define TPI_LIVE(kind, delta) __atomic_add_fetch(&tpi_live[kind], (delta), __ATOMIC_RELAXED)

/* Every communicator and window tpmm creates (or duplicates from the
 * application's) goes through tpi_comm_own / tpi_win_own right after its
 * creation: errors on it then return (TPMM_ERR_COMM) instead of aborting
 * the job, and it is counted in tpi_live. On failure the object is freed.
 * tpi_comm_free / tpi_win_free free and uncount one (NULL handles: no-op).
 * All return an MPI error code. */
int tpi_comm_own(MPI_Comm *c);
int tpi_comm_free(MPI_Comm *c);
int tpi_win_own(MPI_Win *w);
int tpi_win_free(MPI_Win *w);

/* Whether tpmm_init has run (and finalize has not). */
bool tpi_initialized(void);

/* The thread level MPI granted: what MPI_Init_thread provided when tpmm
 * initialised MPI (asking for MPI_THREAD_MULTIPLE), else MPI_Query_thread,
 * both at tpmm_init. */
int tpi_mpi_thread_level(void);

/* Below MPI_THREAD_MULTIPLE no two threads may be inside MPI at once:
 * tpi_mpi_lock / tpi_mpi_unlock are a process-wide recursive mutex around
 * tpmm's MPI calls, and no-ops at MPI_THREAD_MULTIPLE. The contract:
 *  - Hold it around MPI calls that complete locally (starting a nonblocking
 *    operation, tests, cancels, frees, queries). Group management
 *    (tpmm_create_group, tpmm_destroy_group, adopting a communicator), which
 *    by the API's contract runs alone in its process, holds it throughout;
 *    so do tpmm_alloc_shared / tpmm_free_shared.
 *  - Never across a wait for a peer: tpi_wait and tpi_test take it per poll.
 *    Held across a collective, two ranks whose threads entered collectives
 *    on two groups in opposite orders would each hold their lock while
 *    waiting for the other's other thread: a deadlock. Blocking collectives
 *    that have no nonblocking form (window allocation) are the exception and
 *    carry that risk when two groups allocate windows at once.
 *  - Below MPI_THREAD_SERIALIZED only the thread that initialised MPI may
 *    call MPI at all; the lock does not make other threads legal, so no
 *    progress thread, and operations from that thread only.
 *  - The application's own MPI calls are not covered: below
 *    MPI_THREAD_MULTIPLE it must not call MPI while tpmm does. */
void tpi_mpi_lock(void);
void tpi_mpi_unlock(void);

/* TPMM_ERR_COMM with MPI's own error string for rc. */
tpmm_status_t tpi_mpi_fail(int rc, const char *op, const char *what);

#endif
