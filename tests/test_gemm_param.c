/*
 * test_gemm_param.c — the GEMM backend is a tunable (issue 11, item 1):
 * TPMM_PARAM_GEMM with bounds, tpmm_gemm_name, TPMM_GEMM parsed by name at
 * tpmm_init, and the backend the GEMM framework picks from it.
 *
 *   mpirun -n 1 test_gemm_param
 *
 * The application initialises MPI, so that tpmm_init can be tried again
 * after a failure.
 */
#include <signal.h>

#include "src/common/half.h"
#include "src/gemm/gemm.h"
#include "testutil.h"

/* The backend tpi_gemm_create picks for dt with TPMM_PARAM_GEMM = gemm, for calls of 64 rows
 * (past gemm_dot.c's bound; which of tpmm's own kernels takes bf16 test_gemm checks). */
static const tpi_gemm_backend_t *picked(tpmm_gemm_t gemm, tpmm_dtype_t dt) {
  static float x2[4 * 4];
  tpi_mat_t b = {(char *)x2, 4, 4, 4, 1};
  tpi_gemm_t *g = NULL;
  expect_status(tpmm_set_param(TPMM_PARAM_GEMM, gemm), TPMM_SUCCESS, "set_param(TPMM_PARAM_GEMM)", NULL);
  if (tpi_gemm_create(&g, dt, &b, NULL, TPMM_FLOAT32, 64, 64, 64) != TPMM_SUCCESS) return NULL;
  const tpi_gemm_backend_t *be = g->be;
  tpi_gemm_destroy(g);
  return be;
}

static void env_case(const char *value, tpmm_status_t want, int64_t gemm, const char *sub) {
  char label[96];
  snprintf(label, sizeof label, "TPMM_GEMM=\"%s\"", value);
  test_case(label, 30);
  setenv("TPMM_GEMM", value, 1);
  tpmm_status_t st = tpmm_init(NULL, NULL);
  unsetenv("TPMM_GEMM");
  expect_status(st, want, label, sub);
  int64_t v = -1;
  tpmm_get_param(TPMM_PARAM_GEMM, &v);
  if (want == TPMM_SUCCESS) check(v == gemm, "%s: TPMM_PARAM_GEMM = %lld", label, (long long)v);
  if (st == TPMM_SUCCESS) tpmm_finalize();
}

int main(int argc, char **argv) {
  signal(SIGALRM, test_on_alarm);
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &t_rank);
  unsetenv("TPMM_GEMM");

  test_case("names and bounds", 30);
  check(tpmm_gemm_name(TPMM_GEMM_DNNL) && strcmp(tpmm_gemm_name(TPMM_GEMM_DNNL), "dnnl") == 0, "name of DNNL");
  check(tpmm_gemm_name(TPMM_GEMM_REF) && strcmp(tpmm_gemm_name(TPMM_GEMM_REF), "ref") == 0, "name of REF");
  check(tpmm_gemm_name((tpmm_gemm_t)2) == NULL && tpmm_gemm_name((tpmm_gemm_t)-1) == NULL, "names outside the enum");
  int64_t lo = -9, hi = -9, v = -9;
  expect_status(tpmm_param_bounds(TPMM_PARAM_GEMM, &lo, &hi), TPMM_SUCCESS, "param_bounds(TPMM_PARAM_GEMM)", NULL);
  check(lo == TPMM_GEMM_DNNL && hi == TPMM_GEMM_REF, "bounds [%lld, %lld]", (long long)lo, (long long)hi);
  expect_status(tpmm_get_param(TPMM_PARAM_GEMM, &v), TPMM_SUCCESS, "get_param(TPMM_PARAM_GEMM)", NULL);
  check(v == TPMM_GEMM_DNNL, "default %lld, expected TPMM_GEMM_DNNL", (long long)v);
  expect_status(tpmm_set_param(TPMM_PARAM_GEMM, 2), TPMM_ERR_INVALID_ARGUMENT, "set_param(GEMM, 2)",
                "TPMM_PARAM_GEMM=2 outside [0, 1]");
  expect_status(tpmm_set_param(TPMM_PARAM_GEMM, -1), TPMM_ERR_INVALID_ARGUMENT, "set_param(GEMM, -1)",
                "TPMM_PARAM_GEMM=-1 outside [0, 1]");

  env_case("bogus", TPMM_ERR_INVALID_ARGUMENT, 0, "TPMM_GEMM=\"bogus\" is not one of dnnl, ref");
  env_case("ref", TPMM_SUCCESS, TPMM_GEMM_REF, NULL);
  env_case("dnnl", TPMM_SUCCESS, TPMM_GEMM_DNNL, NULL);

  test_case("the backend the framework picks", 60);
  tpmm_init(NULL, NULL);
  const tpmm_dtype_t dts[] = {TPMM_BFLOAT16, TPMM_FLOAT32, TPMM_FLOAT16};
  for (int i = 0; i < 3; i++) {
    check(picked(TPMM_GEMM_REF, dts[i]) == &tpi_gemm_ref, "%s with TPMM_GEMM_REF: not the reference backend",
          dt_name(dts[i]));
    /* fp16 is widened to fp32, which oneDNN computes; bf16 goes to tpmm's AMX kernel where it runs;
     * without AVX-512, fp32 and the widened halves run on tpmm's AVX2 kernel */
    const tpi_gemm_backend_t *be = picked(TPMM_GEMM_DNNL, dts[i]);
    const tpi_gemm_backend_t *want = dts[i] == TPMM_BFLOAT16 && tpi_gemm_amx_usable() ? &tpi_gemm_amx
                                     : !tpi_have_avx512() && tpi_gemm_avx2_usable()   ? &tpi_gemm_avx2
                                                                                      : &tpi_gemm_dnnl;
    check(be == want, "%s with TPMM_GEMM_DNNL: backend %s, expected %s", dt_name(dts[i]), be ? be->name : "(none)",
          want->name);
  }
  tpmm_set_param(TPMM_PARAM_GEMM, TPMM_GEMM_DNNL);
  test_case("finish", 30);
  int rc = finish("test_gemm_param");
  tpmm_finalize();
  MPI_Finalize();
  return rc;
}
