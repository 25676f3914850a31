/*
 * status.c — status strings and the per-thread detail message.
 *
 * The message lives in thread-local storage (not one global buffer as NCCL
 * has), so concurrent calls on different groups from different threads keep
 * their own diagnostics.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"

#define MSG_CAP 1024
static _Thread_local char last_msg[MSG_CAP];

const char *tpmm_version(void) {
#define STR2(x) #x
#define STR(x) STR2(x)
  return STR(TPMM_VERSION_MAJOR) "." STR(TPMM_VERSION_MINOR) "." STR(TPMM_VERSION_PATCH);
#undef STR
#undef STR2
}

const char *tpmm_status_string(tpmm_status_t s) {
  switch (s) {
    case TPMM_SUCCESS: return "success";
    case TPMM_ERR_INVALID_ARGUMENT: return "invalid argument";
    case TPMM_ERR_DTYPE: return "unsupported or inconsistent dtype";
    case TPMM_ERR_SHAPE: return "invalid or inconsistent shape";
    case TPMM_ERR_UNSUPPORTED: return "unsupported";
    case TPMM_ERR_GROUP: return "invalid group";
    case TPMM_ERR_WORLD_SIZE: return "world_size does not match the group";
    case TPMM_ERR_MISMATCH: return "ranks passed different arguments";
    case TPMM_ERR_NOT_INITIALIZED: return "tpmm is not initialized";
    case TPMM_ERR_COMM: return "communication error";
    case TPMM_ERR_NO_MEMORY: return "out of memory";
    case TPMM_ERR_TIMEOUT: return "timed out waiting for peers";
    case TPMM_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char *tpmm_last_error(void) { return last_msg; }

tpmm_status_t tpi_fail(tpmm_status_t s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_msg, MSG_CAP, fmt, ap);
  va_end(ap);
  return s;
}

void tpi_clear_error(void) { last_msg[0] = '\0'; }

const char *tpi_error_message(void) { return last_msg; }

size_t tpmm_dtype_size(tpmm_dtype_t dt) {
  switch (dt) {
    case TPMM_FLOAT16: return 2;
    case TPMM_BFLOAT16: return 2;
    case TPMM_FLOAT32: return 4;
  }
  return 0;
}

double tpi_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double tpi_cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
