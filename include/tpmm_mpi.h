/*
 * tpmm_mpi.h — the MPI-facing extras of tpmm, for applications that already
 * use MPI themselves. Kept out of tpmm.h so that users who do not need it do
 * not need <mpi.h>.
 */
#ifndef TPMM_MPI_H
#define TPMM_MPI_H

#include <mpi.h>

#include "tpmm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Register an existing communicator as the named group. tpmm duplicates comm
 * (the caller keeps and frees its own). Group rank i is rank i of comm.
 * Collective over comm. Not thread-safe. Destroy with tpmm_destroy_group. */
TPMM_API tpmm_status_t tpmm_group_from_comm(const char *group, MPI_Comm comm);

#ifdef __cplusplus
}
#endif
#endif
