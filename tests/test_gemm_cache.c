/*
 * test_gemm_cache.c — one-shot calls reuse their GEMM setup (src/pipeline/
 * gemm_cache.c) and still multiply the x2 and bias they are given.
 *
 * Per backend (dnnl, ref), dtype and x2 layout (dense, odd k, strided rows,
 * transposed, k past oneDNN's AMX slice; and, with enough rows that x2 is
 * packed, transposed and odd k), R one-shot calls of one shape with
 * fresh x2 and bias each time: a new buffer while the old one is still alive
 * (a new pointer), or the old buffer rewritten in place (the same pointer,
 * new contents: copies must be redone), with the bias rotating between none,
 * the input's dtype and fp32 (three cache entries in turn). Each output must
 * be bit-identical to a fresh plan's on the same tensors (plans build their
 * own GEMM) and, for all_gather_matmul, within tolerance of fp64. The reduce
 * operators (fp32 partials, no bias in the GEMM) are checked against plans
 * the same way.
 *
 *   mpirun -n 2 test_gemm_cache [seed]
 */
#include <signal.h>

#include "src/gemm/gemm.h"
#include "src/pipeline/pipeline.h"
#include "testutil.h"

enum { R = 6, N = 24 };

typedef struct {
  const char *name;
  int64_t k;
  int strided, trans;
  int64_t rows; /* per rank: the input's rows (all_gather_matmul), a W-th of them (reduce) */
} layout_t;

/* bf16 calls of a few rows (W = 2 x 2) run on tpmm's own kernels, x2 read in
 * place (gemm_amx.c, either layout; without AMX gemm_dot.c, transposed only);
 * with AMX the larger ones pack x2 per call inside gemm_amx.c; without it, on
 * oneDNN, the larger transposed ones pack x2 (tpi_gemm_packs: below 512 rows
 * where the backend packs straight from x2's strides), as do 2048 rows at two
 * ranks: every call packs its x2 again. */
static const layout_t layouts[] = {{"dense", 64, 0, 0, 2},
                                   {"odd k", 33, 0, 0, 2},
                                   {"strided", 40, 1, 0, 2},
                                   {"trans", 48, 0, 1, 2},
                                   {"k 1101", 1101, 0, 0, 2},
                                   {"trans, 256 rows", 48, 0, 1, 256},
                                   {"trans k 1101, 600 rows", 1101, 0, 1, 600},
                                   {"odd k, 2048 rows", 33, 0, 0, 2048}};

typedef struct {
  tpmm_dtype_t dt;
  int64_t k;
  tpmm_tensor_t x2, bias;
  float *x2d; /* dense (k x n) values of x2 for the fp64 check */
  int has_bias;
} call_t;

/* New values into x2 (from r, this rank's) and bias (from rb, the same on every rank, as
 * matmul_all_reduce requires): in a new buffer (the old freed afterwards) or in place. */
static void refill(call_t *c, const layout_t *l, rng_t *r, rng_t *rb, int fresh, int bias_kind) {
  const size_t es = dt_size(c->dt);
  const int64_t rows = l->trans ? N : c->k, cols = l->trans ? c->k : N, ld = l->strided ? cols + 3 : cols;
  void *old = c->x2.data, *oldb = c->bias.data;
  if (fresh || !old) c->x2.data = malloc((size_t)(rows * ld) * es);
  if (fresh || !oldb) c->bias.data = malloc((size_t)N * 4);
  c->x2 = (tpmm_tensor_t){c->x2.data, c->dt, 2, {rows, cols}, l->strided ? ld : 0};
  fill_randn(c->x2.data, c->dt, rows, cols, ld, r);
  for (int64_t i = 0; i < c->k; i++)
    for (int64_t j = 0; j < N; j++)
      c->x2d[i * N + j] = (float)get_el(c->x2.data, c->dt, l->trans ? j * ld + i : i * ld + j);
  c->has_bias = bias_kind > 0;
  const tpmm_dtype_t bdt = bias_kind == 2 ? TPMM_FLOAT32 : c->dt;
  c->bias = (tpmm_tensor_t){c->bias.data, bdt, 1, {N, 0}, 0};
  fill_randn(c->bias.data, bdt, 1, N, N, rb);
  if (fresh && old) free(old);
  if (fresh && oldb) free(oldb);
}

/* A plan's GEMM runs on tpmm's own kernels exactly where gemm.c says for
 * this test's own count of a call's rows (the one-shot call's must then too:
 * its bits are compared with the plan's). */
static void check_backend(tpmm_plan_t *p, const call_t *c, const layout_t *l, int64_t call_rows, const char *desc) {
  if (!p) return;
  const int64_t ld = l->strided ? 7 : 2; /* only which stride is 1 matters */
  const tpi_mat_t v = l->trans ? (tpi_mat_t){NULL, c->k, N, 1, ld} : (tpi_mat_t){NULL, c->k, N, ld, 1};
  const tpi_gemm_backend_t *want = tpi_gemm_own_kernel(c->dt, &v, call_rows);
  const tpi_gemm_t *g = tpi_plan_gemm(p);
  check(want ? g->be == want : g->be != &tpi_gemm_dot && g->be != &tpi_gemm_amx,
        "%s: the plan's GEMM runs on %s, expected %s", desc, g->be->name, want ? want->name : "oneDNN or ref");
}

static void check_agmm(call_t *c, const layout_t *l, rng_t *r, int W, const char *desc) {
  const size_t es = dt_size(c->dt);
  const int64_t M = l->rows;
  void *in = malloc((size_t)(M * c->k) * es), *out = malloc((size_t)(M * W * N) * es);
  void *out2 = malloc((size_t)(M * W * N) * es), *gout = malloc((size_t)(M * W * c->k) * es);
  tpmm_tensor_t ti = {in, c->dt, 2, {M, c->k}, 0}, to = {out, c->dt, 2, {M * W, N}, 0};
  tpmm_tensor_t to2 = {out2, c->dt, 2, {M * W, N}, 0}, tg = {gout, c->dt, 2, {M * W, c->k}, 0};
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  o.bias = c->has_bias ? &c->bias : NULL;
  o.trans_x2 = l->trans;
  fill_randn(in, c->dt, M, c->k, c->k, r);
  tpmm_status_t st = tpmm_all_gather_matmul(&ti, &c->x2, TPMM_WORLD_COMM_GROUP, W, &o, &to, &tg);
  check(st == TPMM_SUCCESS, "%s: one-shot: %s", desc, tpmm_last_error());
  tpmm_plan_t *p = NULL;
  st = tpmm_all_gather_matmul_plan_create(&ti, &c->x2, TPMM_WORLD_COMM_GROUP, W, &o, &to2, &tg, &p);
  check_backend(p, c, l, M * W, desc);
  if (st == TPMM_SUCCESS) st = tpmm_plan_execute(p, &ti, &to2, &tg);
  tpmm_plan_destroy(p);
  check(st == TPMM_SUCCESS, "%s: plan: %s", desc, tpmm_last_error());
  check(memcmp(out, out2, (size_t)(M * W * N) * es) == 0, "%s: one-shot output differs from a fresh plan's", desc);
  int bad = 0; /* fp64 from the gathered rows and the dense fp32 values of x2 */
  float *a32 = malloc((size_t)c->k * sizeof(float));
  for (int64_t i = 0; i < M * W; i++) {
    for (int64_t q = 0; q < c->k; q++) a32[q] = (float)get_el(gout, c->dt, i * c->k + q);
    for (int64_t j = 0; j < N; j++) {
      double mag, ref = ref_dot(a32, 1, c->x2d + j, N, TPMM_FLOAT32, c->k,
                                c->has_bias ? get_el(c->bias.data, c->bias.dtype, j) : 0.0, &mag);
      bad += !within_tol(get_el(out, c->dt, i * N + j), ref, mag, c->dt, c->k);
    }
  }
  check(bad == 0, "%s: %d elements off fp64", desc, bad);
  free(a32), free(in), free(out), free(out2), free(gout);
}

static void check_reduce(call_t *c, const layout_t *l, rng_t *r, int W, int all, const char *desc) {
  const size_t es = dt_size(c->dt);
  const int64_t m = l->rows * W, mo = all ? m : m / W;
  void *in = malloc((size_t)(m * c->k) * es), *out = malloc((size_t)(mo * N) * es),
       *out2 = malloc((size_t)(mo * N) * es);
  tpmm_tensor_t ti = {in, c->dt, 2, {m, c->k}, 0}, to = {out, c->dt, 2, {mo, N}, 0}, to2 = {out2, c->dt, 2, {mo, N}, 0};
  tpmm_matmul_reduce_opts_t o = TPMM_MATMUL_REDUCE_OPTS_INIT;
  o.bias = c->has_bias ? &c->bias : NULL;
  o.trans_x2 = l->trans;
  fill_randn(in, c->dt, m, c->k, c->k, r);
  tpmm_plan_t *p = NULL;
  tpmm_status_t st = all ? tpmm_matmul_all_reduce(&ti, &c->x2, TPMM_WORLD_COMM_GROUP, W, &o, &to)
                         : tpmm_matmul_reduce_scatter(&ti, &c->x2, TPMM_WORLD_COMM_GROUP, W, &o, &to);
  check(st == TPMM_SUCCESS, "%s: one-shot: %s", desc, tpmm_last_error());
  st = all ? tpmm_matmul_all_reduce_plan_create(&ti, &c->x2, TPMM_WORLD_COMM_GROUP, W, &o, &to2, &p)
           : tpmm_matmul_reduce_scatter_plan_create(&ti, &c->x2, TPMM_WORLD_COMM_GROUP, W, &o, &to2, &p);
  check_backend(p, c, l, m, desc);
  if (st == TPMM_SUCCESS) st = tpmm_plan_execute(p, &ti, &to2, NULL);
  tpmm_plan_destroy(p);
  check(st == TPMM_SUCCESS, "%s: plan: %s", desc, tpmm_last_error());
  check(memcmp(out, out2, (size_t)(mo * N) * es) == 0, "%s: one-shot output differs from a fresh plan's", desc);
  free(in), free(out), free(out2);
}

int main(int argc, char **argv) {
  int rank, W;
  test_init(&argc, &argv, &rank, &W);
  signal(SIGALRM, test_on_alarm);
  const uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x5eedcac4eull;
  if (rank == 0) printf("test_gemm_cache: seed 0x%llx\n", (unsigned long long)seed);
  const tpmm_dtype_t dts[] = {TPMM_FLOAT32, TPMM_BFLOAT16, TPMM_FLOAT16};
  const int gemms[] = {TPMM_GEMM_DNNL, TPMM_GEMM_REF};
  for (int b = 0; b < 2; b++)
    for (int d = 0; d < 3; d++)
      for (size_t li = 0; li < sizeof layouts / sizeof *layouts; li++) {
        const layout_t *l = &layouts[li];
        call_t c = {.dt = dts[d], .k = l->k};
        c.x2d = malloc((size_t)(c.k * N) * sizeof(float));
        rng_t r = {seed ^ (uint64_t)(rank + 1) * 0x9e3779b97f4a7c15ull ^ (li << 40) ^ ((uint64_t)d << 48)};
        rng_t rb = {seed ^ 0xb1a5b1a5u ^ (li << 40) ^ ((uint64_t)d << 48)};
        tpmm_set_param(TPMM_PARAM_GEMM, gemms[b]);
        for (int it = 0; it < R; it++) {
          char desc[160];
          snprintf(desc, sizeof desc, "%s %s %s call %d (bias %d)", b ? "ref" : "dnnl", dt_name(c.dt), l->name, it,
                   it % 3);
          test_case(desc, 120);
          refill(&c, l, &r, &rb, it % 2 == 0, it % 3);
          check_agmm(&c, l, &r, W, desc);
          check_reduce(&c, l, &r, W, 0, desc);
          check_reduce(&c, l, &r, W, 1, desc);
        }
        free(c.x2.data), free(c.bias.data), free(c.x2d);
      }
  alarm(0);
  int rc = finish("test_gemm_cache");
  tpmm_finalize();
  return rc;
}
