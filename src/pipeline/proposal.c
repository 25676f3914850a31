/*
 * proposal.c — the proposal's wire form: what a rank proposes to the
 * agreement, as int64 words combined by their maximum over the ranks
 * (src/comm/agree.c). The only place that knows the word order.
 */
#include "pipeline.h"

enum {
  W_CAND0 = 0, /* algo, chunks, thread */
  W_CAND1 = 3, /* algo, chunks, thread */
  W_TILE = 6,
  W_NAP = 7, /* nap_us + 1: 0 is a valid nap, and zero words mean "no proposal" */
  W_SEGMENT = 8,
  W_NONBLOCKING = 9,
  W_PREV_US = 10,
  W_PRIOR = 11,
  W_SEEN_NS = 12,
  W_COUNT = 13
};
_Static_assert((int)W_COUNT == (int)TPI_PROPOSAL_WORDS, "proposal words");

void tpi_proposal_encode(const tpi_proposal_t *pr, int64_t w[TPI_PROPOSAL_WORDS]) {
  for (int i = 0; i < 2; i++) {
    w[W_CAND0 + 3 * i] = pr->cand[i].algo;
    w[W_CAND0 + 3 * i + 1] = pr->cand[i].chunks;
    w[W_CAND0 + 3 * i + 2] = pr->cand[i].thread;
  }
  w[W_TILE] = pr->tile;
  w[W_NAP] = pr->nap_us + 1;
  w[W_SEGMENT] = pr->segment_bytes;
  w[W_NONBLOCKING] = pr->nonblocking;
  w[W_PREV_US] = pr->prev_us;
  w[W_PRIOR] = pr->prior_pm;
  w[W_SEEN_NS] = pr->seen_ns;
}

void tpi_proposal_decode(const int64_t w[TPI_PROPOSAL_WORDS], tpi_proposal_t *pr) {
  for (int i = 0; i < 2; i++)
    pr->cand[i] = (tpi_cand_t){(int)w[W_CAND0 + 3 * i], (int)w[W_CAND0 + 3 * i + 1], (int)w[W_CAND0 + 3 * i + 2]};
  pr->tile = w[W_TILE];
  pr->nap_us = w[W_NAP] > 0 ? w[W_NAP] - 1 : 0;
  pr->segment_bytes = w[W_SEGMENT];
  pr->nonblocking = w[W_NONBLOCKING];
  pr->prev_us = w[W_PREV_US];
  pr->prior_pm = w[W_PRIOR];
  pr->seen_ns = w[W_SEEN_NS];
}
