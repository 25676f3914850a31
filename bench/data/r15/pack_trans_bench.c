/* One x2 stored transposed (n x k, trans_x2), bf16, into oneDNN's packed layout: the dense
 * transposed copy tpmm made before (tpi_copy_dense) then the dense pack, against the pack
 * straight from the transpose; best of 5 each, alternated. See commands.sh "micro". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <oneapi/dnnl/dnnl.h>
int tpi_dn_pack(const dnnl_memory_desc_t *md, const void *src, int64_t rs, int64_t cs, int64_t kvalid, void *dst);
void tpi_copy_dense(void *dst, const void *src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, size_t es);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
  int64_t k = atol(argv[1]), n = atol(argv[2]);
  dnnl_engine_t e; dnnl_engine_create(&e, dnnl_cpu, 0);
  dnnl_memory_desc_t a, b, c; dnnl_dims_t ad = {64, k}, bd = {k, n}, cd = {64, n};
  dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_bf16, dnnl_ab); dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_bf16, dnnl_format_tag_any);
  dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_bf16, dnnl_ab);
  dnnl_matmul_desc_t md; dnnl_matmul_desc_init(&md, &a, &b, NULL, &c);
  dnnl_primitive_desc_t pd; dnnl_primitive_desc_create(&pd, &md, NULL, e, NULL);
  const dnnl_memory_desc_t *w = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  size_t bytes = dnnl_memory_desc_get_size(w);
  unsigned short *t = malloc(k * n * 2), *dense = malloc(k * n * 2); char *d1 = malloc(bytes), *d2 = malloc(bytes);
  for (int64_t i = 0; i < k * n; i++) t[i] = (unsigned short)(i * 2654435761u >> 16);
  memset(d1, 0, bytes); memset(d2, 0, bytes); memset(dense, 0, k * n * 2);
  double best[2] = {1e9, 1e9};
  for (int r = 0; r < 5; r++) {
    double t0 = now(); tpi_copy_dense(dense, t, k, n, 1, k, 2); tpi_dn_pack(w, dense, n, 1, k, d1); double t1 = now();
    tpi_dn_pack(w, t, 1, k, k, d2); double t2 = now();
    if (t1 - t0 < best[0]) best[0] = t1 - t0;
    if (t2 - t1 < best[1]) best[1] = t2 - t1;
  }
  printf("k=%ld n=%ld  copy+pack %.2f ms  pack from the transpose %.2f ms  same bytes %d\n", (long)k, (long)n,
         best[0] * 1e3, best[1] * 1e3, memcmp(d1, d2, bytes) == 0);
  return 0;
}
