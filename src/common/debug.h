/*
 * debug.h — test hooks, kept apart from the tunables: fault injection
 * (TPMM_DEBUG_FAIL), a stall (TPMM_DEBUG_STALL_MS) and the fold switched off
 * (TPMM_DEBUG_NO_FOLD). Tests only: they make a rank fail, wait or take the
 * other path on purpose. Read by tpmm_init with checks (debug.c).
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
  int no_fold;      /* TPMM_DEBUG_NO_FOLD=1: calls prepared from now on send nothing with the
                       agreement (small shards, small partials), so tests compare both paths */
  int64_t folded;   /* calls that ran on what the agreement carried (tests count them; atomic) */
  int no_amx;       /* set by tests: setups created from now on never pick tpmm's AMX kernel, so
                       that machines with AMX test gemm_dot.c too */
  int pre_avx512;   /* set by tests: setups created from now on run as on a CPU without AVX-512 (bf16
                       widened to fp32, fp32 on gemm_avx2.c), so that every machine tests that path */
} tpi_debug_t;

extern tpi_debug_t tpi_debug;

/* Read TPMM_DEBUG_FAIL, TPMM_DEBUG_STALL_MS and TPMM_DEBUG_NO_FOLD
 * (tpmm_init); a malformed value fails with TPMM_ERR_INVALID_ARGUMENT naming
 * the variable and value. */
tpmm_status_t tpi_debug_from_env(void);

/* Arm fault injection with spec "what[:n]" (NULL or "" disarms); checked as
 * TPMM_DEBUG_FAIL is, var naming the source in the message. */
tpmm_status_t tpi_debug_set_fail(const char *var, const char *spec);

/* Fault injection: true, once, when the armed spec names this event. Events:
 * every workspace allocation by its description ("the ring's bookkeeping",
 * "the gathered rows", ...), "the tuning cache", "gemm tile" (each GEMM call
 * of a pipeline), "the progress thread", "the shared window" (allocating the
 * node's shared window of a group, src/comm/shm.c), "the link probe" (its
 * buffers, when a group spans nodes, src/comm/topology.c), "the crowded wait"
 * (its buffer, when a group is made on a crowded machine, the same file).
 * tests/test_faults.c, tests/test_topology.c and tests/test_model_choice.c
 * check that no injected failure strands a peer. */
int tpi_debug_fail(const char *event);

/* The stall hook: if TPMM_DEBUG_STALL_MS is set, sleep that long, once (the
 * pipeline calls it right after the agreement: a rank that stalls mid-call). */
void tpi_debug_stall(void);

#endif
