/*
 * param.c — process-wide tunables: an enum + setter with queryable bounds
 * (zstd's habit), so new knobs never change the ABI. Defaults come from the
 * TPMM_* environment variables, read once by tpmm_init.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

tpi_params_t tpi_params = {.algo = TPMM_ALGO_AUTO,
                           .num_threads = 1,
                           .timeout_ms = 0,
                           .progress_thread = 2,
                           .progress_nap_us = -1,
                           .send_window = 2,
                           .segment_bytes = 256 << 10,
                           .gemm = TPMM_GEMM_DNNL};

static const char *const algo_names[] = {"auto", "unfused", "ring", "bidir_ring", "shm_pull", "hier"};
#define N_ALGOS ((int)(sizeof algo_names / sizeof algo_names[0]))

const char *tpmm_algo_name(tpmm_algo_t a) {
  if ((int)a < 0 || (int)a >= N_ALGOS) return NULL;
  return algo_names[a];
}

static const char *const gemm_names[] = {[TPMM_GEMM_DNNL] = "dnnl", [TPMM_GEMM_REF] = "ref"};
#define N_GEMMS ((int)(sizeof gemm_names / sizeof gemm_names[0]))

const char *tpmm_gemm_name(tpmm_gemm_t g) {
  if ((int)g < 0 || (int)g >= N_GEMMS) return NULL;
  return gemm_names[g];
}

typedef struct {
  tpmm_param_t id;
  const char *name;
  int64_t lo, hi;
} param_info_t;

static const param_info_t params[] = {
    {TPMM_PARAM_ALGO, "TPMM_PARAM_ALGO", 0, N_ALGOS - 1},
    {TPMM_PARAM_NUM_THREADS, "TPMM_PARAM_NUM_THREADS", 1, 1024},
    {TPMM_PARAM_TIMEOUT_MS, "TPMM_PARAM_TIMEOUT_MS", 0, INT64_C(1) << 40},
    {TPMM_PARAM_PROGRESS_THREAD, "TPMM_PARAM_PROGRESS_THREAD", 0, 2},
    {TPMM_PARAM_SEND_WINDOW, "TPMM_PARAM_SEND_WINDOW", 0, 1 << 20},
    {TPMM_PARAM_SEGMENT_BYTES, "TPMM_PARAM_SEGMENT_BYTES", 0, INT32_MAX},
    {TPMM_PARAM_PROGRESS_NAP_US, "TPMM_PARAM_PROGRESS_NAP_US", -1, 1000000},
    {TPMM_PARAM_GEMM, "TPMM_PARAM_GEMM", 0, N_GEMMS - 1},
};

static const param_info_t *find_param(tpmm_param_t p) {
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
    if (params[i].id == p) return &params[i];
  return NULL;
}

tpmm_status_t tpmm_param_bounds(tpmm_param_t p, int64_t *lo, int64_t *hi) {
  tpi_clear_error();
  const param_info_t *pi = find_param(p);
  if (!pi) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_param_bounds: p=%d is not a tpmm_param_t", (int)p);
  if (!lo || !hi) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_param_bounds: lo/hi is NULL");
  *lo = pi->lo;
  *hi = pi->hi;
  return TPMM_SUCCESS;
}

tpmm_status_t tpmm_set_param(tpmm_param_t p, int64_t value) {
  tpi_clear_error();
  const param_info_t *pi = find_param(p);
  if (!pi) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_set_param: p=%d is not a tpmm_param_t", (int)p);
  if (value < pi->lo || value > pi->hi)
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_set_param: %s=%lld outside [%lld, %lld]", pi->name,
                    (long long)value, (long long)pi->lo, (long long)pi->hi);
  switch (p) {
    case TPMM_PARAM_ALGO: tpi_params.algo = (int)value; break;
    case TPMM_PARAM_NUM_THREADS: tpi_params.num_threads = (int)value; break;
    case TPMM_PARAM_TIMEOUT_MS: tpi_params.timeout_ms = value; break;
    case TPMM_PARAM_PROGRESS_THREAD: tpi_params.progress_thread = (int)value; break;
    case TPMM_PARAM_SEND_WINDOW: tpi_params.send_window = (int)value; break;
    case TPMM_PARAM_SEGMENT_BYTES: tpi_params.segment_bytes = value; break;
    case TPMM_PARAM_PROGRESS_NAP_US: tpi_params.progress_nap_us = (int)value; break;
    case TPMM_PARAM_GEMM: tpi_params.gemm = (int)value; break;
  }
  return TPMM_SUCCESS;
}

tpmm_status_t tpmm_get_param(tpmm_param_t p, int64_t *value) {
  tpi_clear_error();
  if (!find_param(p)) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_get_param: p=%d is not a tpmm_param_t", (int)p);
  if (!value) return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "tpmm_get_param: value is NULL");
  switch (p) {
    case TPMM_PARAM_ALGO: *value = tpi_params.algo; break;
    case TPMM_PARAM_NUM_THREADS: *value = tpi_params.num_threads; break;
    case TPMM_PARAM_TIMEOUT_MS: *value = tpi_params.timeout_ms; break;
    case TPMM_PARAM_PROGRESS_THREAD: *value = tpi_params.progress_thread; break;
    case TPMM_PARAM_SEND_WINDOW: *value = tpi_params.send_window; break;
    case TPMM_PARAM_SEGMENT_BYTES: *value = tpi_params.segment_bytes; break;
    case TPMM_PARAM_PROGRESS_NAP_US: *value = tpi_params.progress_nap_us; break;
    case TPMM_PARAM_GEMM: *value = tpi_params.gemm; break;
  }
  return TPMM_SUCCESS;
}

/* Parse an integer environment variable within the parameter's bounds. */
static tpmm_status_t env_int(const char *var, tpmm_param_t p) {
  const char *s = getenv(var);
  if (!s || !*s) return TPMM_SUCCESS;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end != '\0')
    return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "environment: %s=\"%s\" is not an integer", var, s);
  tpmm_status_t st = tpmm_set_param(p, v);
  if (st != TPMM_SUCCESS) return tpi_fail(st, "environment: %s=%lld is out of range", var, v);
  return TPMM_SUCCESS;
}

/* Parse an environment variable holding one of n names; *out gets its index. */
static tpmm_status_t env_name(const char *var, const char *const *names, int n, int *out) {
  const char *s = getenv(var);
  if (!s || !*s) return TPMM_SUCCESS;
  for (int i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return TPMM_SUCCESS;
    }
  char list[128] = "";
  size_t len = 0;
  for (int i = 0; i < n && len < sizeof list; i++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
  return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "environment: %s=\"%s\" is not one of %s", var, s, list);
}

tpmm_status_t tpi_params_from_env(void) {
  TPI_CHECK(env_name("TPMM_ALGO", algo_names, N_ALGOS, &tpi_params.algo));
  TPI_CHECK(env_name("TPMM_GEMM", gemm_names, N_GEMMS, &tpi_params.gemm));
  TPI_CHECK(env_int("TPMM_NUM_THREADS", TPMM_PARAM_NUM_THREADS));
  TPI_CHECK(env_int("TPMM_TIMEOUT_MS", TPMM_PARAM_TIMEOUT_MS));
  TPI_CHECK(env_int("TPMM_PROGRESS_THREAD", TPMM_PARAM_PROGRESS_THREAD));
  TPI_CHECK(env_int("TPMM_SEND_WINDOW", TPMM_PARAM_SEND_WINDOW));
  TPI_CHECK(env_int("TPMM_SEGMENT_BYTES", TPMM_PARAM_SEGMENT_BYTES));
  TPI_CHECK(env_int("TPMM_PROGRESS_NAP_US", TPMM_PARAM_PROGRESS_NAP_US));
  const char *vb = getenv("TPMM_VERBOSE");
  tpi_params.verbose = vb && *vb && strcmp(vb, "0") != 0;
  const char *t = getenv("TPMM_TRACE");
  if (t && *t) {
    if (strlen(t) >= sizeof tpi_params.trace_path)
      return tpi_fail(TPMM_ERR_INVALID_ARGUMENT, "environment: TPMM_TRACE path longer than %zu bytes",
                      sizeof tpi_params.trace_path - 1);
    strcpy(tpi_params.trace_path, t);
  } else {
    tpi_params.trace_path[0] = '\0';
  }
  return TPMM_SUCCESS;
}
