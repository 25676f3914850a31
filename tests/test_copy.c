/*
 * test_copy.c — tpi_copy_dense (src/common/copy.c) against the definition,
 * element (i, j) from i*rs + j*cs, for 2- and 4-byte elements: transposed
 * sources (rs == 1, the register-tile path) at every size around the tile
 * and block edges, general strides, dense rows; nothing written past
 * rows*cols.
 *
 *   mpirun -n 1 test_copy
 */
#include <stdlib.h>
#include <string.h>

#include "src/common/common.h"
#include "testutil.h"

/* One copy against the definition; 0 if right. */
static int one(rng_t *r, int64_t rows, int64_t cols, int64_t rs, int64_t cs, size_t es) {
  const int64_t span = (rows - 1) * rs + (cols - 1) * cs + 1, n = rows * cols;
  unsigned char *src = malloc((size_t)span * es), *dst = malloc((size_t)(n + 8) * es);
  for (int64_t b = 0; b < span * (int64_t)es; b++) src[b] = (unsigned char)rng_next(r);
  memset(dst, 0xab, (size_t)(n + 8) * es);
  tpi_copy_dense(dst, src, rows, cols, rs, cs, es);
  int bad = 0;
  for (int64_t i = 0; i < rows && !bad; i++)
    for (int64_t j = 0; j < cols && !bad; j++)
      bad = memcmp(dst + (size_t)(i * cols + j) * es, src + (size_t)(i * rs + j * cs) * es, es) != 0;
  for (int64_t b = n * (int64_t)es; b < (n + 8) * (int64_t)es; b++) bad |= dst[b] != 0xab;
  check(!bad, "%lldx%lld, rs %lld cs %lld, %zu-byte elements: wrong element or a write past the end", (long long)rows,
        (long long)cols, (long long)rs, (long long)cs, es);
  free(src), free(dst);
  return bad;
}

int main(int argc, char **argv) {
  int rank, W;
  test_init(&argc, &argv, &rank, &W);
  if (rank == 0) {
    rng_t r = {20261129};
    const int64_t sizes[] = {1, 3, 4, 7, 8, 9, 31, 32, 33, 40, 67, 96};
    const size_t ns = sizeof sizes / sizeof *sizes;
    int bad = 0;
    test_case("transposed sources (rs 1), every size pair, padded and tight", 60);
    for (size_t es = 2; es <= 4; es += 2)
      for (size_t a = 0; a < ns && bad < 3; a++)
        for (size_t b = 0; b < ns && bad < 3; b++)
          for (int64_t pad = 0; pad <= 5; pad += 5) bad += one(&r, sizes[a], sizes[b], 1, sizes[a] + pad, es);
    test_case("general strides and dense rows", 60);
    for (size_t es = 2; es <= 4; es += 2)
      for (size_t a = 0; a < ns && bad < 3; a++) {
        bad += one(&r, sizes[a], 37, 2, 2 * sizes[a] + 1, es); /* neither stride 1 */
        bad += one(&r, sizes[a], 37, 40, 1, es);               /* padded rows */
        bad += one(&r, 37, sizes[a], 1, 3 * 37, es);           /* transposed, wide pad */
      }
  }
  const int rc = finish("test_copy");
  tpmm_finalize();
  return rc;
}
