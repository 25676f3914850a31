/*
 * test_half.c — the bulk conversions (src/common/half.c) give the scalar
 * functions' bits: fp32 -> bf16 with and without an added row (the sliced
 * bf16 GEMM's bias and rounding), fp32 <-> fp16; over every 61st fp32 bit
 * pattern, the special values, and every length 0..40 at odd offsets (the
 * vector paths' masked tails).
 *
 *   mpirun -n 1 test_half
 */
#include <string.h>

#include "src/common/half.h"
#include "testutil.h"

enum { BLOCK = 4096 };

static float bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* dst of the bulk call against the scalar function, element by element. */
static int cmp_block(const float *src, const float *add, size_t n, const char *what) {
  uint16_t got[BLOCK + 16], h[BLOCK + 16];
  float back[BLOCK + 16];
  int bad = 0;
  tpi_f32_add_to_bf16_n(src, add, got, n);
  for (size_t i = 0; i < n && bad < 3; i++) {
    const uint16_t want = tpi_f32_to_bf16(add ? src[i] + add[i] : src[i]);
    if (got[i] != want) {
      bad++;
      check(0, "%s: bf16 of %08x%s: %04x, scalar %04x", what, (unsigned)*(const uint32_t *)&src[i], add ? " + add" : "",
            got[i], want);
    }
  }
  if (add) return bad;
  tpi_f32_to_f16_n(src, h, n);
  for (size_t i = 0; i < n && bad < 3; i++)
    if (h[i] != tpi_f32_to_f16(src[i])) bad++, check(0, "%s: fp16 of element %zu differs from scalar", what, i);
  tpi_f16_to_f32_n(h, back, n);
  for (size_t i = 0; i < n && bad < 3; i++) {
    const float want = tpi_f16_to_f32(h[i]);
    if (memcmp(&back[i], &want, 4) != 0) bad++, check(0, "%s: fp16 %04x to fp32 differs from scalar", what, h[i]);
  }
  return bad;
}

int main(int argc, char **argv) {
  int rank, W;
  test_init(&argc, &argv, &rank, &W);
  if (rank == 0) {
    static float src[BLOCK + 16], add[BLOCK + 16];
    rng_t r = {20261129};
    test_case("every 61st fp32 bit pattern, alone and with an added row", 120);
    int bad = 0;
    size_t fill = 0;
    for (uint64_t u = 0; u <= 0xffffffffu && bad < 3; u += 61) {
      src[fill] = bits((uint32_t)u);
      add[fill] = (float)rng_normal(&r) * bits((uint32_t)(rng_next(&r) & 0x7f7fffffu) | 0x3f800000u);
      if (++fill == BLOCK) bad += cmp_block(src, NULL, fill, "sweep") + cmp_block(src, add, fill, "sweep+"), fill = 0;
    }
    bad += cmp_block(src, NULL, fill, "sweep") + cmp_block(src, add, fill, "sweep+");
    check(bad == 0, "bulk conversions differ from the scalar ones");
    test_case("special values", 10);
    const uint32_t special[] = {0,           0x80000000u, 0x00000001u, 0x807fffffu, 0x7f7fffffu, 0xff7fffffu,
                                0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fc00000u, 0xffbfffffu, 0x3f808000u,
                                0x3f818000u, 0x3f807fffu, 0x7f7f8000u, 0x00008000u, 0x00018000u, 0x477ff000u};
    const size_t ns = sizeof special / sizeof special[0];
    for (size_t i = 0; i < ns; i++) src[i] = bits(special[i]), add[i] = bits(special[ns - 1 - i]);
    check(cmp_block(src, NULL, ns, "special") + cmp_block(src, add, ns, "special+") == 0, "special values differ");
    test_case("lengths 0..40 at odd offsets (masked tails)", 10);
    for (size_t i = 0; i < 64; i++) src[i] = (float)rng_normal(&r) * 1e3f, add[i] = (float)rng_normal(&r);
    for (size_t n = 0; n <= 40; n++)
      for (size_t off = 0; off < 3; off++) {
        uint16_t out[64];
        memset(out, 0xab, sizeof out);
        tpi_f32_add_to_bf16_n(src + off, add + off, out + 1, n);
        int ok = out[0] == 0xabab && out[n + 1] == 0xabab;
        for (size_t i = 0; i < n; i++) ok &= out[i + 1] == tpi_f32_to_bf16(src[off + i] + add[off + i]);
        check(ok, "length %zu at offset %zu: wrong bits or a write outside [0, n)", n, off);
      }
  }
  const int rc = finish("test_half");
  tpmm_finalize();
  return rc;
}
