/*
 * debug.c — the test hooks of debug.h: parsing TPMM_DEBUG_FAIL,
 * TPMM_DEBUG_STALL_MS and TPMM_DEBUG_NO_FOLD with checks, fault injection and
 * the stall.
 */
#include "debug.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

tpi_debug_t tpi_debug;

/* A whole decimal integer in [lo, hi]. */
static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  errno = 0;
  const long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

tpmm_status_t tpi_debug_set_fail(const char *var, const char *spec) {
  tpi_debug.fail[0] = '\0';
  tpi_debug.fail_skip = 0;
  if (!spec || !*spec) return TPMM_SUCCESS;
  const char *colon = strchr(spec, ':');
  const size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
  int64_t skip = 0;
  if (len == 0 || len >= sizeof tpi_debug.fail || (colon && !parse_int(colon + 1, 0, INT32_MAX, &skip)))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT,
                    "environment: %s=\"%s\" is not what[:n] (what: 1 to %zu bytes of an event name, n: a count >= 0)",
                    var, spec, sizeof tpi_debug.fail - 1);
  memcpy(tpi_debug.fail, spec, len);
  tpi_debug.fail[len] = '\0';
  tpi_debug.fail_skip = (int)skip;
  return TPMM_SUCCESS;
}

tpmm_status_t tpi_debug_from_env(void) {
  TPI_CHECK(tpi_debug_set_fail("TPMM_DEBUG_FAIL", getenv("TPMM_DEBUG_FAIL")));
  const char *ds = getenv("TPMM_DEBUG_STALL_MS");
  int64_t ms = 0;
  if (ds && *ds && !parse_int(ds, 0, 3600 * 1000, &ms))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT,
                    "environment: TPMM_DEBUG_STALL_MS=\"%s\" is not a whole number of milliseconds in [0, 3600000]",
                    ds);
  tpi_debug.stall_ms = ms;
  const char *nf = getenv("TPMM_DEBUG_NO_FOLD");
  int64_t off = 0;
  if (nf && *nf && !parse_int(nf, 0, 1, &off))
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "environment: TPMM_DEBUG_NO_FOLD=\"%s\" is not 0 or 1", nf);
  tpi_debug.no_fold = (int)off;
  return TPMM_SUCCESS;
}

int tpi_debug_fail(const char *event) {
  if (__builtin_expect(tpi_debug.fail[0] == '\0', 1) || !strstr(event, tpi_debug.fail)) return 0;
  if (tpi_debug.fail_skip-- > 0) return 0;
  tpi_debug.fail[0] = '\0';
  return 1;
}

void tpi_debug_stall(void) {
  const int64_t ms = tpi_debug.stall_ms;
  if (ms <= 0) return;
  tpi_debug.stall_ms = 0;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}
