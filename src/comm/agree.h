/*
 * agree.h — the agreement step that starts every collective call (agree.c).
 */
#ifndef TPMM_AGREE_H
#define TPMM_AGREE_H

#include "group.h"

/* Field i's value v as the caller wrote it, in buf or a constant; NULL: the number says it. */
typedef const char *(*tpi_agree_fmt_t)(int i, int64_t v, char *buf, size_t len);

/* Every rank of g passes its local validation status (with its message
 * current), its collective fields and its proposal words. Returns on every
 * rank: TPMM_ERR_MISMATCH naming the first field (in their order) that
 * differs, with the lowest failing rank's report (also when ranks are in
 * different calls); a field that a failing rank passes as TPI_AGREE_UNKNOWN
 * is not compared. Else the status of the lowest-numbered failing rank with
 * its message; else TPMM_SUCCESS, tune[ntune] replaced by their maximum over
 * ranks. One message each way per peer. Collective over g. */
tpmm_status_t tpi_agree(tpi_group_t *g, const char *op, tpmm_status_t local, const int64_t *fields, int nfields,
                        const char *const *names, int64_t *tune, int ntune);

/* A payload carried by the agreement (small data: the agreement and the
 * collective in one round trip). `bytes` is at most tpi_agree_fold_cap. The
 * caller either packs them at tpi_agree_payload(g, nfields + ntune) first,
 * with the counts it then passes to tpi_agree_fold (src NULL: every
 * peer gets the same), or names a source per peer: peer j is sent the bytes
 * at src + j * stride (a reduce-scatter's blocks; stride 0: one source for
 * all). On success peer[j] points at what rank j sent this rank (valid until
 * the group's next agreement; peer[own rank]: what it would send itself) and
 * all says whether every rank sent `bytes`. */
typedef struct tpi_fold {
  size_t bytes;
  const char **peer; /* [W], filled */
  int all;
  const char *src; /* NULL: the payload packed at tpi_agree_payload */
  size_t stride;
} tpi_fold_t;
tpmm_status_t tpi_agree_fold(tpi_group_t *g, const char *op, tpmm_status_t local, const int64_t *fields, int nfields,
                             const char *const *names, tpi_agree_fmt_t fmt, int64_t *tune, int ntune, tpi_fold_t *fold);
/* Where this rank's payload goes in an agreement of `words` fields and
 * proposal words (allocating the group's agreement buffers on first use);
 * NULL when out of memory. Local. */
void *tpi_agree_payload(tpi_group_t *g, int words);
/* The largest payload a group carries: 64 KiB, less on large groups (the
 * group keeps a block of it per rank). */
size_t tpi_agree_fold_cap(const tpi_group_t *g);

#endif
