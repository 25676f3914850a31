/*
 * agree.h — the agreement step that starts every collective call (agree.c).
 */
#ifndef TPMM_AGREE_H
#define TPMM_AGREE_H

#include "group.h"

/* Every rank of g passes its local validation status (with its message
 * current) and its collective fields. Returns on every rank:
 * TPMM_ERR_MISMATCH naming the first field that differs; else the status of
 * the lowest-numbered failing rank with its message; else TPMM_SUCCESS. One
 * small allreduce when all is well. tune[ntune] (in/out): on success
 * replaced by their maximum over ranks. Collective over g. */
tpmm_status_t tpi_agree(tpi_group_t *g, const char *op, tpmm_status_t local, const int64_t *fields, int nfields,
                        const char *const *names, int64_t *tune, int ntune);
/* Once every rank knows that rank root failed (local: root's status, own:
 * its message): root broadcasts them and every rank returns them, peers
 * naming root. Collective; the error path of tpi_agree and of the unfused
 * plan execution that carries the agreement in its allgather. */
tpmm_status_t tpi_agree_error(tpi_group_t *g, const char *op, int root, tpmm_status_t local, const char *own);

#endif
