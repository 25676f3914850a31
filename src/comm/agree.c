/*
 * agree.c — the agreement step that starts every collective operation.
 *
 * Description: before any data moves, the ranks of a group check that they
 *   were called with the same collective arguments and that every rank's own
 *   arguments were valid. Without it, a rank with a different k (or a NULL
 *   pointer) would leave its peers waiting forever in the data phase.
 * Steps:
 *   1. Every rank sends one block to every peer and receives one from each:
 *      [header | fields | proposal words | its error message if it failed,
 *      or an optional payload (the fold: small shards, small partials) at
 *      the next 64 bytes], point to point with one tag. A payload may
 *      differ per peer (each peer's block of partials): the header part
 *      and that peer's bytes are then copied to a staging block per peer
 *      and go as one message, so
 *      receivers see the same block (one source for all, stride 0: copied
 *      once, into this rank's own block).
 *      Receives are as large as any block can be, so ranks in different
 *      calls (another plan, another operator, payloads of other sizes or
 *      none) still match each other and the group stays usable; a
 *      collective would not.
 *   2. Every rank now holds the same W blocks and reaches the same verdict:
 *      a field that differs: TPMM_ERR_MISMATCH naming the first (in the
 *      caller's order) and its values (this wins over local errors: the
 *      ranks disagree), with the lowest failing rank's report appended; a
 *      field a failing rank could not read (TPI_AGREE_UNKNOWN) is not
 *      compared. Else the lowest failing rank's status and message; else
 *      success, each proposal word replaced by its maximum over the ranks.
 * Memory: W blocks per group (agree_buf), allocated at the group's first
 *   agreement and kept; the payload part is tpi_agree_fold_cap(g) bytes.
 *   W more (agree_stage) from the first payload that differs per peer.
 * Cost: one message each way per peer; the error report rides along; a
 *   payload follows the words sent, not the room the largest block needs.
 */
#include "agree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wait.h"

#define MAGIC INT64_C(0x74706d6d61677231) /* "tpmmagr1" */
enum { MAX_WORDS = 96, MSG_CAP = 1024 };

typedef struct {
  int64_t magic, status, nf, nt, msg_len, payload;
} hdr_t;

static size_t head_bytes(void) { return sizeof(hdr_t) + MAX_WORDS * sizeof(int64_t) + MSG_CAP; }

/* Where a block of `words` words carries its payload: after the words and
 * the empty message of a rank that passed (a payload comes only from one). */
static size_t payload_at(int words) { return (sizeof(hdr_t) + (size_t)words * sizeof(int64_t) + 1 + 63) & ~(size_t)63; }

size_t tpi_agree_fold_cap(const tpi_group_t *g) {
  const size_t total = (size_t)2 << 20; /* per rank, over all peers */
  size_t cap = total / (size_t)(g->size > 0 ? g->size : 1);
  return cap > (64u << 10) ? 64u << 10 : cap < 4096 ? 4096 : cap;
}

static size_t slot_bytes(const tpi_group_t *g) { return (head_bytes() + tpi_agree_fold_cap(g) + 63) & ~(size_t)63; }

static char *slot(const tpi_group_t *g, int j) { return g->agree_buf + slot_bytes(g) * (size_t)j; }

void *tpi_agree_payload(tpi_group_t *g, int words) {
  if (!g->agree_buf) {
    void *b = NULL;
    const size_t reqs = sizeof(MPI_Request) * 2 * (size_t)g->size;
    if (!tpi_debug_fail("the agreement's buffers") &&
        posix_memalign(&b, 64, slot_bytes(g) * (size_t)g->size + reqs) == 0)
      g->agree_buf = b;
  }
  return g->agree_buf ? slot(g, g->rank) + payload_at(words) : NULL;
}

/* This rank's block into its own slot; its length in bytes. */
static size_t pack(tpi_group_t *g, tpmm_status_t local, const int64_t *f, int nf, const int64_t *tune, int nt,
                   size_t payload) {
  char *b = slot(g, g->rank);
  const char *msg = local != TPMM_SUCCESS ? tpi_error_message() : "";
  hdr_t h = {MAGIC, local, nf, nt, (int64_t)strnlen(msg, MSG_CAP - 1), (int64_t)payload};
  memcpy(b, &h, sizeof h);
  int64_t *w = (int64_t *)(b + sizeof h);
  if (nf) memcpy(w, f, sizeof(int64_t) * (size_t)nf); /* f and tune may be NULL when empty */
  if (nt) memcpy(w + nf, tune, sizeof(int64_t) * (size_t)nt);
  char *m = (char *)(w + nf + nt);
  memcpy(m, msg, (size_t)h.msg_len);
  m[h.msg_len] = '\0';
  /* the payload sits where tpi_agree_payload said, so the caller can pack it in place */
  return payload ? payload_at(nf + nt) + payload : (size_t)(m - b) + (size_t)h.msg_len + 1;
}

/* How a failure of status st reads on another rank: bad arguments, or a
 * resource (memory) the rank could not get ready. */
static const char *failure_kind(int64_t st) {
  return st == TPMM_ERR_NO_MEMORY || st == TPMM_ERR_INTERNAL ? "could not prepare the call" : "rejected its arguments";
}

/* A field value v of a rank of status st takes part in the comparison: not
 * one a failing rank could not read. */
static int known_value(int64_t v, int64_t st) { return v != TPI_AGREE_UNKNOWN || st == TPMM_SUCCESS; }

/* Widen the range [lo, hi] of the values seen so far (*any: one was) by v. */
static void widen(int64_t v, char *any, int64_t *lo, int64_t *hi) {
  *lo = !*any || v < *lo ? v : *lo, *hi = !*any || v > *hi ? v : *hi, *any = 1;
}

/* Out of memory for the group's buffers: take part with this rank's failure
 * and message in a block on the stack, reading the peers' blocks one at a
 * time into another (cut to their header, fields and the start of their
 * message: MPI reports the truncation, which is expected here), and reach
 * the verdict the peers reach from the whole blocks: the first field that
 * differs (with this rank's report), else the lowest failing rank's status,
 * which may be a peer's. */
static tpmm_status_t agree_oom(tpi_group_t *g, const char *op, const int64_t *f, int nf, int nt,
                               const char *const *names) {
  enum { CUT = 256 }; /* bytes of a peer's message this rank can show */
  char b[sizeof(hdr_t) + MAX_WORDS * sizeof(int64_t) + CUT], in[sizeof b], msg[CUT] = "";
  const tpmm_status_t st = tpi_fail(TPMM_ERR_NO_MEMORY, "%s: out of memory for the agreement's buffers", op);
  char mine[CUT]; /* this rank's message: the waits below may replace the thread's */
  snprintf(mine, sizeof mine, "%s", tpi_error_message());
  const char *own = mine;
  hdr_t h = {MAGIC, st, nf, nt, (int64_t)strnlen(own, CUT - 1), 0};
  memset(b, 0, sizeof b);
  memcpy(b, &h, sizeof h);
  if (nf) memcpy(b + sizeof h, f, sizeof(int64_t) * (size_t)nf);
  memcpy(b + sizeof h + sizeof(int64_t) * (size_t)(nf + nt), own, (size_t)h.msg_len); /* tune words: zeros */
  int64_t lo[MAX_WORDS], hi[MAX_WORDS];
  char any[MAX_WORDS] = {0};
  int kind = -1, bad = g->rank; /* a peer in another call; the lowest failing rank */
  tpmm_status_t bad_st = st;
  for (int j = 0; j < g->size; j++) {
    if (j == g->rank) continue;
    MPI_Request r[2];
    memset(in, 0, sizeof in);
    tpi_mpi_lock();
    MPI_Isend(b, (int)sizeof b, MPI_BYTE, j, g->agree_tag, g->comm, &r[0]);
    MPI_Irecv(in, (int)sizeof in, MPI_BYTE, j, g->agree_tag, g->comm, &r[1]);
    tpi_mpi_unlock();
    tpi_wait(g, op, "a peer's agreement block", 1, &r[1], 1);              /* truncated: an error, and complete */
    tpi_wait(g, op, "this rank's agreement block to a peer", 1, &r[0], 1); /* b lives on this stack */
    hdr_t p;
    memcpy(&p, in, sizeof p);
    if (p.magic != MAGIC || p.nf != nf || p.nt != nt) {
      if (kind < 0) kind = j;
      continue;
    }
    const int64_t *w = (const int64_t *)(in + sizeof p);
    for (int i = 0; i < nf; i++)
      if (known_value(w[i], p.status)) widen(w[i], &any[i], &lo[i], &hi[i]);
    if (p.status != TPMM_SUCCESS && j < bad) {
      bad = j, bad_st = (tpmm_status_t)p.status;
      const size_t len = p.msg_len < 0 ? 0 : p.msg_len > CUT - 1 ? CUT - 1 : (size_t)p.msg_len;
      snprintf(msg, sizeof msg, "%.*s", (int)len, (const char *)(w + nf + nt));
    }
  }
  for (int i = 0; i < nf; i++) /* this rank's own, where it could read them */
    if (known_value(f[i], st)) widen(f[i], &any[i], &lo[i], &hi[i]);
  if (kind >= 0)
    return tpi_fail(TPMM_ERR_MISMATCH, "%s: ranks of group \"%s\" disagree on the kind of call (rank %d)", op, g->name,
                    kind);
  for (int i = 0; i < nf; i++)
    if (any[i] && lo[i] != hi[i] && names[i][0] == '#') /* a hash: its numbers mean nothing */
      return tpi_fail(TPMM_ERR_MISMATCH, "%s: ranks of group \"%s\" disagree on %s; this rank also reported: %s", op,
                      g->name, names[i] + 1, mine);
    else if (any[i] && lo[i] != hi[i])
      return tpi_fail(TPMM_ERR_MISMATCH,
                      "%s: ranks of group \"%s\" disagree on %s (values from %lld to %lld); this rank also "
                      "reported: %s",
                      op, g->name, names[i], (long long)lo[i], (long long)hi[i], mine);
  if (bad != g->rank)
    return tpi_fail(bad_st, "rank %d of group \"%s\" %s: %s", bad, g->name, failure_kind(bad_st), msg);
  return tpi_fail(st, "%s", mine);
}

/* Peer j's block when the payload has a source per peer: this rank's header
 * part, then src + j * stride, copied to peer j's staging block and sent as
 * bytes; a derived datatype per call, the fallback without staging blocks,
 * leaks inside MPICH with UCX (docs/RELIABILITY.md, the soak). */
static int isend_from(tpi_group_t *g, const tpi_fold_t *f, size_t hb, int j, MPI_Request *r) {
  if (!g->agree_stage && !tpi_debug_fail("the agreement's staging"))
    g->agree_stage = malloc(slot_bytes(g) * (size_t)g->size); /* kept with agree_buf: a pending send reads it */
  if (g->agree_stage) {
    char *b = g->agree_stage + slot_bytes(g) * (size_t)j;
    memcpy(b, slot(g, g->rank), hb);
    memcpy(b + hb, f->src + f->stride * (size_t)j, f->bytes);
    return MPI_Isend(b, (int)(hb + f->bytes), MPI_BYTE, j, g->agree_tag, g->comm, r);
  }
  int len[2] = {(int)hb, (int)f->bytes};
  MPI_Aint at[2];
  MPI_Datatype t;
  MPI_Get_address(slot(g, g->rank), &at[0]);
  MPI_Get_address(f->src + f->stride * (size_t)j, &at[1]);
  int rc = MPI_Type_create_hindexed(2, len, at, MPI_BYTE, &t);
  if (rc != MPI_SUCCESS) return rc;
  TPI_LIVE(TPI_LIVE_TYPE, 1);
  rc = MPI_Type_commit(&t);
  if (rc == MPI_SUCCESS) rc = MPI_Isend(MPI_BOTTOM, 1, t, j, g->agree_tag, g->comm, r);
  MPI_Type_free(&t); /* the pending send keeps what it needs */
  TPI_LIVE(TPI_LIVE_TYPE, -1);
  return rc;
}

/* from: the fold when its payload has a source per peer (after hb bytes of
 * this rank's block), else NULL. */
static tpmm_status_t exchange(tpi_group_t *g, const char *op, size_t len, const tpi_fold_t *from, size_t hb) {
  MPI_Request *req = (MPI_Request *)(g->agree_buf + slot_bytes(g) * (size_t)g->size);
  int n = 0, rc = MPI_SUCCESS;
  tpi_mpi_lock();
  for (int j = 0; j < g->size && rc == MPI_SUCCESS; j++) {
    if (j == g->rank) continue;
    rc = MPI_Irecv(slot(g, j), (int)slot_bytes(g), MPI_BYTE, j, g->agree_tag, g->comm, &req[n++]);
    if (rc == MPI_SUCCESS)
      rc = from ? isend_from(g, from, hb, j, &req[n++])
                : MPI_Isend(slot(g, g->rank), (int)len, MPI_BYTE, j, g->agree_tag, g->comm, &req[n++]);
  }
  tpi_mpi_unlock();
  if (rc != MPI_SUCCESS) {
    g->broken = true; /* messages may be in flight that no later call expects */
    return tpi_mpi_fail(rc, op, "posting the argument agreement");
  }
  const tpmm_status_t st = tpi_wait(g, op, "the argument agreement of all ranks", n, req, 1);
  if (st == TPMM_ERR_COMM) g->broken = true; /* as a timeout: sends may still read the blocks the next call fills */
  return st;
}

static const hdr_t *hdr_of(const tpi_group_t *g, int j) { return (const hdr_t *)slot(g, j); }
static const int64_t *words_of(const tpi_group_t *g, int j) { return (const int64_t *)(slot(g, j) + sizeof(hdr_t)); }

/* The lowest rank that failed locally, or -1. */
static int first_failing(const tpi_group_t *g) {
  for (int j = 0; j < g->size; j++)
    if (hdr_of(g, j)->status != TPMM_SUCCESS) return j;
  return -1;
}

/* Field i of rank j takes part in the comparison. */
static int known(const tpi_group_t *g, int j, int i) { return known_value(words_of(g, j)[i], hdr_of(g, j)->status); }

/* The first field (or the call's kind) that differs between ranks. */
static tpmm_status_t mismatch(const tpi_group_t *g, const char *op, const char *own, int nf, int nt,
                              const char *const *names, tpi_agree_fmt_t fmt) {
  for (int j = 0; j < g->size; j++) {
    const hdr_t *h = hdr_of(g, j);
    if (h->magic != MAGIC || h->nf != nf || h->nt != nt)
      return tpi_fail(TPMM_ERR_MISMATCH, "%s: ranks of group \"%s\" disagree on the kind of call (rank %d)", op,
                      g->name, j);
  }
  /* the lowest failing rank's report rides along, on every rank; a failing rank keeps its own too */
  char also[2 * MSG_CAP + 96] = "";
  const int bad = first_failing(g);
  if (bad >= 0 && bad != g->rank)
    snprintf(also, sizeof also, "; rank %d also %s: %.*s", bad, failure_kind(hdr_of(g, bad)->status),
             (int)hdr_of(g, bad)->msg_len, (const char *)(words_of(g, bad) + nf + nt));
  if (hdr_of(g, g->rank)->status != TPMM_SUCCESS) {
    const size_t used = strlen(also);
    snprintf(also + used, sizeof also - used, "; this rank also reported: %s", own);
  }
  const int me = g->rank;
  for (int i = 0; i < nf; i++) {
    char any = 0;
    int64_t lo = 0, hi = 0;
    for (int j = 0; j < g->size; j++)
      if (known(g, j, i)) widen(words_of(g, j)[i], &any, &lo, &hi);
    if (lo == hi) continue; /* also when no rank could read it */
    if (names[i][0] == '#') /* a hash: its numbers mean nothing to the caller */
      return tpi_fail(TPMM_ERR_MISMATCH, "%s: ranks of group \"%s\" disagree on %s%s", op, g->name, names[i] + 1, also);
    const int64_t v = words_of(g, me)[i];
    if (!known(g, me, i))
      return tpi_fail(TPMM_ERR_MISMATCH, "%s: ranks of group \"%s\" disagree on %s (values from %lld to %lld)%s", op,
                      g->name, names[i], (long long)lo, (long long)hi, also);
    int q = 0; /* the lowest rank whose value differs from this rank's (there is one) */
    while (q < g->size && !(known(g, q, i) && words_of(g, q)[i] != v)) q++;
    char b1[64], b2[64];
    const char *n1 = fmt ? fmt(i, v, b1, sizeof b1) : NULL;
    const char *n2 = fmt && q < g->size ? fmt(i, words_of(g, q)[i], b2, sizeof b2) : NULL;
    if (n1 && n2) /* values with names: this rank's and one that differs */
      return tpi_fail(TPMM_ERR_MISMATCH, "%s: ranks of group \"%s\" disagree on %s (this rank %s, rank %d %s)%s", op,
                      g->name, names[i], n1, q, n2, also);
    return tpi_fail(TPMM_ERR_MISMATCH,
                    "%s: ranks of group \"%s\" disagree on %s (this rank %lld, others from %lld to %lld)%s", op,
                    g->name, names[i], (long long)v, (long long)lo, (long long)hi, also);
  }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_agree_fold(tpi_group_t *g, const char *op, tpmm_status_t local, const int64_t *f, int nf,
                             const char *const *names, tpi_agree_fmt_t fmt, int64_t *tune, int nt, tpi_fold_t *fold) {
  if (nf + nt > MAX_WORDS) return tpi_fail(TPMM_ERR_INTERNAL, "%s: too many agreement words (%d)", op, nf + nt);
  if (!tpi_agree_payload(g, nf + nt)) return agree_oom(g, op, f, nf, nt, names);
  const size_t at = payload_at(nf + nt);
  char own[MSG_CAP]; /* this rank's message, before the checks below overwrite it */
  own[0] = '\0';
  if (local != TPMM_SUCCESS) snprintf(own, sizeof own, "%s", tpi_error_message());
  const size_t payload = fold && local == TPMM_SUCCESS ? fold->bytes : 0;
  const int from_src = payload && fold->src; /* else packed at tpi_agree_payload already */
  if (from_src && !fold->stride) memcpy(slot(g, g->rank) + at, fold->src, payload);
  TPI_CHECK(exchange(g, op, pack(g, local, f, nf, tune, nt, payload), from_src && fold->stride ? fold : NULL, at));
  TPI_CHECK(mismatch(g, op, own, nf, nt, names, fmt));
  const int bad = first_failing(g);
  if (bad == g->rank) return tpi_fail(local, "%s", own);
  if (bad >= 0)
    return tpi_fail((tpmm_status_t)hdr_of(g, bad)->status, "rank %d of group \"%s\" %s: %.*s", bad, g->name,
                    failure_kind(hdr_of(g, bad)->status), (int)hdr_of(g, bad)->msg_len,
                    (const char *)(words_of(g, bad) + nf + nt));
  for (int i = 0; i < nt; i++)
    for (int j = 0; j < g->size; j++) tune[i] = words_of(g, j)[nf + i] > tune[i] ? words_of(g, j)[nf + i] : tune[i];
  if (fold) {
    fold->all = 1;
    for (int j = 0; j < g->size; j++) {
      fold->all &= (size_t)hdr_of(g, j)->payload == fold->bytes;
      fold->peer[j] = slot(g, j) + at;
    }
    if (fold->src) fold->peer[g->rank] = fold->src + fold->stride * (size_t)g->rank;
  }
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_agree(tpi_group_t *g, const char *op, tpmm_status_t local, const int64_t *f, int nf,
                        const char *const *names, int64_t *tune, int nt) {
  return tpi_agree_fold(g, op, local, f, nf, names, NULL, tune, nt, NULL);
}
