/*
 * debug.h — test hooks, kept apart from the tunables: fault injection
 * (TPMM_DEBUG_FAIL) and a stall (TPMM_DEBUG_STALL_MS). Tests only: they make
 * a rank fail or wait on purpose. Read by tpmm_init with checks (debug.c).
 */
#ifndef TPMM_DEBUG_H
#define TPMM_DEBUG_H

#include <stdint.h>

#include "tpmm.h"

typedef struct tpi_debug {
  char fail[64];    /* TPMM_DEBUG_FAIL=what[:n]: the (n+1)-th event on this rank whose
                       name contains `what` fails as if out of memory (once); "" = off */
  int fail_skip;    /* n */
  int64_t stall_ms; /* TPMM_DEBUG_STALL_MS: the next operation on this rank sleeps this long after
                       its agreement, once */
} tpi_debug_t;

extern tpi_debug_t tpi_debug;

/* Read TPMM_DEBUG_FAIL and TPMM_DEBUG_STALL_MS (tpmm_init); a malformed
 * value fails with TPMM_ERR_INVALID_ARGUMENT naming the variable and value. */
tpmm_status_t tpi_debug_from_env(void);

/* Arm fault injection with spec "what[:n]" (NULL or "" disarms); checked as
 * TPMM_DEBUG_FAIL is, var naming the source in the message. */
tpmm_status_t tpi_debug_set_fail(const char *var, const char *spec);

/* Fault injection: true, once, when the armed spec names this event. Events:
 * every workspace allocation by its description ("the ring's bookkeeping",
 * "the gathered rows", ...), "the tuning cache", "gemm tile" (each GEMM call
 * of a pipeline), "the progress thread", "the shared window" (allocating the
 * node's shared window of a group, src/comm/shm.c). tests/test_faults.c checks
 * that no injected failure strands a peer. */
int tpi_debug_fail(const char *event);

/* The stall hook: if TPMM_DEBUG_STALL_MS is set, sleep that long, once (the
 * pipeline calls it right after the agreement: a rank that stalls mid-call). */
void tpi_debug_stall(void);

#endif
