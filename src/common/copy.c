/*
 * copy.c — strided matrix copy into dense rows, the one routine behind
 * packing an input shard and copying a strided or transposed x2.
 */
#include <string.h>

#include "common.h"

void tpi_copy_dense(void *dst, const void *src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, size_t es) {
  char *d = dst;
  const char *s = src;
  if (cs == 1) {
    for (int64_t i = 0; i < rows; i++)
      memcpy(d + (size_t)(i * cols) * es, s + (size_t)(i * rs) * es, (size_t)cols * es);
    return;
  }
  /* transposing: 32x32 blocks keep both sides in cache */
  for (int64_t i0 = 0; i0 < rows; i0 += 32)
    for (int64_t j0 = 0; j0 < cols; j0 += 32)
      for (int64_t i = i0; i < i0 + 32 && i < rows; i++)
        for (int64_t j = j0; j < j0 + 32 && j < cols; j++) {
          if (es == 2)
            ((uint16_t *)dst)[i * cols + j] = ((const uint16_t *)src)[i * rs + j * cs];
          else
            ((uint32_t *)dst)[i * cols + j] = ((const uint32_t *)src)[i * rs + j * cs];
        }
}
