/*
 * test_pack.c — x2 packed by gemm_dnnl_pack.c is byte for byte what
 * oneDNN's reorder writes into the layout its bf16 matmul asks for (padding
 * included), at shapes around the block edges and the M the layout is
 * chosen at, from dense, transposed and strided x2; the fast path is taken
 * where it should be.
 *
 *   mpirun -n 1 test_pack
 */
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "src/gemm/gemm_dnnl.h"
#include "testutil.h"

/* The weights layout oneDNN's matmul picks for bf16 M x k x n; *brg: its
 * implementation is a brgemm (the layout the packer writes). */
static int weights_md(dnnl_engine_t e, int64_t M, int64_t k, int64_t n, dnnl_memory_desc_t *out, int *brg) {
  dnnl_memory_desc_t a, b, c;
  dnnl_dims_t ad = {M, k}, bd = {k, n}, cd = {M, n};
  dnnl_matmul_desc_t md;
  dnnl_primitive_desc_t pd;
  if (dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_bf16, dnnl_ab) ||
      dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_bf16, dnnl_ab) ||
      dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_bf16, dnnl_format_tag_any) ||
      dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) || dnnl_primitive_desc_create(&pd, &md, NULL, e, NULL))
    return 0;
  *out = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  const char *impl = NULL;
  *brg = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
         strstr(impl, "brg") != NULL;
  dnnl_primitive_desc_destroy(pd);
  return 1;
}

/* oneDNN's reorder of the dense k x n rows at src into to (layout md). */
static int onednn_reorder(dnnl_engine_t e, dnnl_stream_t st, const dnnl_memory_desc_t *md, void *src, int64_t k,
                          int64_t n, void *to) {
  dnnl_memory_desc_t fmd;
  dnnl_dims_t dims = {k, n};
  dnnl_primitive_desc_t rpd;
  dnnl_primitive_t r = NULL;
  dnnl_memory_t from = NULL, dst = NULL;
  if (dnnl_memory_desc_init_by_tag(&fmd, 2, dims, dnnl_bf16, dnnl_ab) ||
      dnnl_reorder_primitive_desc_create(&rpd, &fmd, e, md, e, NULL))
    return 0;
  int ok = dnnl_primitive_create(&r, rpd) == dnnl_success;
  dnnl_primitive_desc_destroy(rpd);
  ok = ok && dnnl_memory_create(&from, &fmd, e, src) == dnnl_success &&
       dnnl_memory_create(&dst, md, e, to) == dnnl_success;
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, dst}};
  ok = ok && dnnl_primitive_execute(r, st, 2, args) == dnnl_success && dnnl_stream_wait(st) == dnnl_success;
  dnnl_primitive_destroy(r), dnnl_memory_destroy(from), dnnl_memory_destroy(dst);
  return ok;
}

/* The same B packed from other strides gives the same bytes: transposed
 * (n x ld, ld = k as a contiguous torch Linear weight, or more: the fast
 * path for full blocks) and every other element (the scalar path); and rows
 * from kvalid on come out zero. */
static void other_strides(const dnnl_memory_desc_t *md, const uint16_t *src, int64_t k, int64_t n,
                          const unsigned char *want, unsigned char *got, size_t bytes) {
  for (int64_t ld = k; ld <= k + 3; ld += 3) {
    uint16_t *t = malloc((size_t)(n * ld) * 2);
    for (int64_t r = 0; r < k; r++)
      for (int64_t c = 0; c < n; c++) t[c * ld + r] = src[r * n + c];
    memset(got, 0xab, bytes);
    check(tpi_dn_pack(md, t, 1, ld, k, got) && memcmp(want, got, bytes) == 0,
          "k=%lld n=%lld ld=%lld: packed from the transpose, bytes differ", (long long)k, (long long)n, (long long)ld);
    free(t);
  }
  const int64_t ld = k + 3;
  uint16_t *t = malloc((size_t)(n * ld) * 2), *w = malloc((size_t)(k * n * 2) * 2);
  for (int64_t r = 0; r < k; r++)
    for (int64_t c = 0; c < n; c++) t[c * ld + r] = src[r * n + c], w[r * 2 * n + 2 * c] = src[r * n + c];
  memset(got, 0xab, bytes);
  check(tpi_dn_pack(md, w, 2 * n, 2, k, got) && memcmp(want, got, bytes) == 0,
        "k=%lld n=%lld: packed from a strided copy, bytes differ", (long long)k, (long long)n);
  /* kvalid < k equals a source whose rows from kvalid on are zero: pack that densely */
  uint16_t *z = malloc((size_t)(k * n) * 2);
  unsigned char *zwant = malloc(bytes);
  for (int64_t kv = k - 1; kv >= 0; kv = kv > k / 2 ? k / 2 : -1) {
    memcpy(z, src, (size_t)(k * n) * 2);
    memset(z + kv * n, 0, (size_t)((k - kv) * n) * 2);
    memset(got, 0xab, bytes), memset(zwant, 0xcd, bytes);
    check(tpi_dn_pack(md, z, n, 1, k, zwant) && tpi_dn_pack(md, t, 1, ld, kv, got) && memcmp(zwant, got, bytes) == 0,
          "k=%lld n=%lld: rows from kvalid %lld on are not zero", (long long)k, (long long)n, (long long)kv);
  }
  free(t), free(w), free(z), free(zwant);
}

int main(int argc, char **argv) {
  int rank, W;
  test_init(&argc, &argv, &rank, &W);
  if (rank == 0) {
    dnnl_engine_t e;
    dnnl_stream_t st;
    check(dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success &&
              dnnl_stream_create(&st, e, dnnl_stream_default_flags) == dnnl_success,
          "oneDNN engine");
    rng_t r = {20261129};
    const int64_t ks[] = {1, 2, 31, 32, 33, 64, 100, 512, 513, 1024};
    const int64_t ns[] = {1, 63, 64, 65, 100, 1000, 1024};
    const int64_t Ms[] = {1, 64, 1024};
    int fast = 0, cases = 0, brg = 0;
    test_case("every (M, k, n): the packer's bytes are oneDNN's reorder's", 120);
    for (size_t im = 0; im < 3; im++)
      for (size_t ik = 0; ik < sizeof ks / sizeof *ks; ik++)
        for (size_t in = 0; in < sizeof ns / sizeof *ns; in++) {
          const int64_t M = Ms[im], k = ks[ik], n = ns[in];
          dnnl_memory_desc_t md;
          int is_brg = 0;
          if (!weights_md(e, M, k, n, &md, &is_brg)) continue;
          brg += is_brg;
          const size_t bytes = dnnl_memory_desc_get_size(&md);
          uint16_t *src = malloc((size_t)(k * n) * 2);
          unsigned char *want = malloc(bytes), *got = malloc(bytes);
          for (int64_t i = 0; i < k * n; i++) src[i] = (uint16_t)rng_next(&r);
          memset(want, 0xcd, bytes), memset(got, 0xab, bytes); /* unwritten bytes differ */
          cases++;
          if (tpi_dn_pack(&md, src, n, 1, k, got)) {
            fast++;
            check(onednn_reorder(e, st, &md, src, k, n, want), "M=%lld k=%lld n=%lld: oneDNN's reorder failed",
                  (long long)M, (long long)k, (long long)n);
            check(memcmp(want, got, bytes) == 0, "M=%lld k=%lld n=%lld: packed bytes differ from oneDNN's reorder",
                  (long long)M, (long long)k, (long long)n);
            other_strides(&md, src, k, n, want, got, bytes);
          }
          free(src), free(want), free(got);
        }
    /* where oneDNN's bf16 matmul runs brgemm (AMX or avx512_core_bf16) the packer must take it */
    check(fast >= brg / 2, "the packer took %d of %d layouts (%d brgemm)", fast, cases, brg);
    check(brg == 0 || fast > 0, "oneDNN runs brgemm here but the packer took no layout");
    dnnl_stream_destroy(st), dnnl_engine_destroy(e);
  }
  const int rc = finish("test_pack");
  tpmm_finalize();
  return rc;
}
