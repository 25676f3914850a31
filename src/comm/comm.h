/*
 * comm.h — what src/comm offers the rest of libtpmm, in one include: the
 * library state and MPI contract (lib.h), the group type and the named-group
 * registry (group.h), waits that honour TPMM_TIMEOUT_MS (wait.h) and the
 * agreement step (agree.h). Shared-memory windows are in shm.h, for the
 * algorithms that use them. Files inside src/comm include the header they
 * need, never this one, so that no two of them include each other.
 */
#ifndef TPMM_COMM_H
#define TPMM_COMM_H

#include "agree.h"
#include "group.h"
#include "lib.h"
#include "wait.h"

#endif
