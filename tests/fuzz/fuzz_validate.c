/*
 * fuzz_validate.c — libFuzzer harness over all_gather_matmul's argument
 * validator (src/tensor/validate.c): tpi_agmm_fields, tpi_agmm_validate and,
 * when validation succeeds, tpi_agmm_rebind (a plan's execute-time check).
 *
 * The fuzz bytes are decoded into up to five tensors (input, x2, output,
 * gather_out, bias), each possibly NULL, with arbitrary dtype, ndim, shape,
 * ld and a data pointer that is NULL or lies in a small fake address range
 * (the validator never dereferences data, so overlapping and dangling fake
 * pointers are exactly what it must reason about), plus the options,
 * group size, world_size and need_data. Dimensions are drawn from small
 * values and from the edges (0, -1, INT32/INT64 limits, powers of two) so
 * that overflow paths are reached.
 *
 * Besides crashes and sanitizer reports, the harness aborts when a property
 * of the contract fails:
 *   - the status is a tpmm_status_t; a failure has a message starting with
 *     the op name; a success leaves no message;
 *   - on success the canonical description is consistent with the tensors:
 *     m, k, n >= 0, k >= 1, W == world_size == group size, output (m*W, n),
 *     gather_out (m*W, k) when wanted, every byte extent computable without
 *     int64 overflow, outputs overlapping neither each other nor the inputs
 *     (checked here independently, in 128-bit arithmetic);
 *   - tpi_agmm_rebind of the same tensors onto the result succeeds.
 *
 * Build: see tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/common.h"
#include "../../src/tensor/tensor.h"

typedef struct {
  const uint8_t *p;
  size_t n;
} src_t;

static uint64_t take(src_t *s, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) {
    v = (v << 8) | (s->n ? *s->p : 0);
    if (s->n) s->p++, s->n--;
  }
  return v;
}

/* Dimensions: mostly small, sometimes an edge value, sometimes raw bits. */
static int64_t dim(src_t *s) {
  static const int64_t edges[] = {0,
                                  1,
                                  2,
                                  -1,
                                  -2,
                                  3,
                                  INT32_MAX,
                                  (int64_t)INT32_MAX + 1,
                                  INT64_MAX,
                                  INT64_MIN,
                                  INT64_MAX / 2,
                                  INT64_MAX / 3,
                                  (int64_t)1 << 31,
                                  (int64_t)1 << 32,
                                  (int64_t)1 << 40,
                                  (int64_t)1 << 61,
                                  (int64_t)1 << 62,
                                  4096,
                                  65535,
                                  3037000500LL};
  uint8_t sel = (uint8_t)take(s, 1);
  if (sel < 160) return sel % 17;
  if (sel < 240) return edges[sel % (sizeof edges / sizeof edges[0])];
  return (int64_t)take(s, 8);
}

static int small_int(src_t *s, int lo, int hi) {
  uint8_t v = (uint8_t)take(s, 1);
  if (v == 255) return (int)take(s, 4);
  return lo + v % (hi - lo + 1);
}

/* v - 1 when asked to (reaches -1), without overflowing at INT_MIN. */
static int minus(int v, int yes) { return yes && v > INT32_MIN ? v - 1 : v; }

/* Data pointers in [BASE, BASE + 1 MiB), 64-byte granules, or NULL. */
#define BASE ((uintptr_t)0x100000000ull)
static void *fake_ptr(src_t *s) {
  uint16_t v = (uint16_t)take(s, 2);
  if (v % 8 == 0) return NULL;
  return (void *)(BASE + (uintptr_t)(v >> 3) * 64u);
}

static void tensor(src_t *s, tpmm_tensor_t *t) {
  t->data = fake_ptr(s);
  t->dtype = (tpmm_dtype_t)small_int(s, 0, 4);
  t->ndim = small_int(s, 0, 3);
  t->shape[0] = dim(s);
  t->shape[1] = dim(s);
  uint8_t ldsel = (uint8_t)take(s, 1);
  /* shape[1] - 1 .. shape[1] + 3, wrapping like the raw bits it may be */
  t->ld = ldsel < 128 ? 0 : ldsel < 224 ? (int64_t)((uint64_t)t->shape[1] + (uint64_t)(ldsel % 5) - 1u) : dim(s);
}

#define REQUIRE(cond)                                                                                    \
  do {                                                                                                   \
    if (!(cond)) {                                                                                       \
      fprintf(stderr, "fuzz_validate: property failed: %s (line %d), message \"%s\"\n", #cond, __LINE__, \
              tpmm_last_error());                                                                        \
      abort();                                                                                           \
    }                                                                                                    \
  } while (0)

typedef __int128 i128;

/* Byte range of a logical view, in 128-bit arithmetic (never overflows). */
static void extent128(const tpi_mat_t *v, size_t es, i128 *lo, i128 *hi) {
  *lo = *hi = 0;
  if (v->rows == 0 || v->cols == 0 || !v->data) return;
  i128 last = (i128)(v->rows - 1) * v->rs + (i128)(v->cols - 1) * v->cs;
  *lo = (i128)(uintptr_t)v->data;
  *hi = *lo + (last + 1) * (i128)es;
}
static int overlap128(const tpi_mat_t *a, const tpi_mat_t *b, size_t es) {
  i128 alo, ahi, blo, bhi;
  extent128(a, es, &alo, &ahi);
  extent128(b, es, &blo, &bhi);
  return alo < ahi && blo < bhi && alo < bhi && blo < ahi;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  src_t s = {data, size};
  uint8_t present = (uint8_t)take(&s, 1); /* bit i: tensor i given */
  tpmm_tensor_t t[5];
  memset(t, 0, sizeof t);
  for (int i = 0; i < 5; i++) tensor(&s, &t[i]);
  t[4].ndim = (present & 0x40) ? t[4].ndim : 1; /* bias: usually 1-D */
  tpmm_all_gather_matmul_opts_t o = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  uint8_t flags = (uint8_t)take(&s, 1);
  o.gather_output = flags & 1;
  o.trans_input = (flags >> 1) & 1;
  o.trans_x2 = (flags >> 2) & 1;
  o.bias = (flags & 8) && (present & 16) ? &t[4] : NULL;
  o.gather_index = minus(small_int(&s, 0, 2), flags & 16);
  o.comm_turn = minus(small_int(&s, 0, 20), flags & 32);
  int group_size = small_int(&s, 1, 9);
  int world_size = (flags & 64) ? minus(small_int(&s, 0, 9), 1) : group_size;
  int need_data = !(flags & 128);
  const tpmm_tensor_t *in = (present & 1) ? &t[0] : NULL, *x2 = (present & 2) ? &t[1] : NULL;
  const tpmm_tensor_t *out = (present & 4) ? &t[2] : NULL, *gout = (present & 8) ? &t[3] : NULL;
  const tpmm_all_gather_matmul_opts_t *op = (present & 32) ? NULL : &o;

  int64_t f[TPI_F_COUNT];
  tpi_agmm_fields(in, x2, world_size, op, f);

  tpi_call_t a;
  tpi_clear_error();
  tpmm_status_t st = tpi_agmm_validate("fuzz", in, x2, group_size, world_size, op, out, gout, need_data, &a);
  REQUIRE(st >= TPMM_SUCCESS && st <= TPMM_ERR_INTERNAL);
  static int verbose = -1; /* FUZZ_VERBOSE=1 ./fuzz_validate FILE...: what each input got */
  if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
  if (verbose) fprintf(stderr, "status %d: %s\n", st, tpmm_last_error());
  if (st != TPMM_SUCCESS) {
    REQUIRE(strncmp(tpmm_last_error(), "fuzz: ", 6) == 0);
    return 0;
  }
  REQUIRE(tpmm_last_error()[0] == '\0');
  const tpmm_all_gather_matmul_opts_t *oo = op ? op : &o; /* o still holds the defaults' values when op is NULL */
  if (!op) {
    REQUIRE(a.gather_output && !a.trans_input && !a.trans_x2 && !a.bias && a.comm_turn == 0);
  } else {
    REQUIRE(a.gather_output == oo->gather_output && a.trans_input == oo->trans_input && a.trans_x2 == oo->trans_x2);
  }
  REQUIRE(in && x2 && out);
  REQUIRE(a.m >= 0 && a.k >= 1 && a.n >= 0);
  REQUIRE(a.W == world_size && world_size == group_size);
  REQUIRE(a.dt == in->dtype && a.dt == x2->dtype && a.dt == out->dtype);
  REQUIRE(a.esize == tpmm_dtype_size(a.dt) && a.esize > 0);
  REQUIRE(f[TPI_F_M] == a.m && f[TPI_F_K] == a.k && f[TPI_F_N] == a.n && f[TPI_F_DTYPE] == a.dt);
  REQUIRE(out->ndim == 2 && out->shape[0] == a.m * a.W && out->shape[1] == a.n);
  REQUIRE(a.out.rows == a.m * a.W && a.out.cols == a.n && a.out.cs == 1 && a.out.rs >= a.n);
  if (a.gather_output) {
    REQUIRE(gout && gout->dtype == a.dt && gout->shape[0] == a.m * a.W && gout->shape[1] == a.k);
    REQUIRE(a.gout.rows == a.m * a.W && a.gout.cols == a.k && a.gout.rs >= a.k);
  }
  /* every view's extent must be computable in int64 (the pipeline does) */
  const tpi_mat_t *views[4] = {&a.in, &a.x2, &a.out, &a.gout};
  for (int i = 0; i < 4; i++) {
    i128 lo, hi;
    tpi_mat_t v = *views[i];
    if (!v.data) v.data = (char *)BASE;
    extent128(&v, a.esize, &lo, &hi);
    REQUIRE(hi - lo <= (i128)INT64_MAX);
  }
  /* outputs overlap neither each other nor any input */
  tpi_mat_t bias_v = {(char *)a.bias, a.bias ? 1 : 0, a.bias ? (int64_t)(a.n * (int64_t)tpmm_dtype_size(a.bias_dt)) : 0,
                      0, 1};
  const tpi_mat_t *outs[2] = {&a.out, &a.gout};
  for (int o2 = 0; o2 < 2; o2++) {
    REQUIRE(!overlap128(outs[o2], &a.in, a.esize) && !overlap128(outs[o2], &a.x2, a.esize));
    REQUIRE(!overlap128(outs[o2], &bias_v, 1));
  }
  REQUIRE(!overlap128(&a.out, &a.gout, a.esize));
  /* a plan made from this call accepts the same tensors at execute time */
  if (need_data) {
    tpi_call_t b = a;
    b.x2.data = NULL;
    b.bias = NULL;
    tpi_clear_error();
    tpmm_status_t rs = tpi_agmm_rebind("fuzz", &b, in, out, a.gather_output ? gout : NULL);
    REQUIRE(rs == TPMM_SUCCESS);
  }
  return 0;
}
