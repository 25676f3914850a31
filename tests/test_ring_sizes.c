/*
 * test_ring_sizes.c — the ring's messages always fit MPI's int counts and
 * tags (issue 12): chunks of 2 GiB and more, with TPMM_SEGMENT_BYTES=0 (one
 * message per chunk) and with the tag-limit doubling, are cut into messages
 * whose byte count is an int, and the bookkeeping reserved before the
 * agreement covers them. Pure arithmetic (no data that large is allocated).
 */
#include <limits.h>

#include "src/pipeline/ring.h"
#include "testutil.h"

static void one(int64_t m, int C, int64_t row_bytes, int64_t segment_bytes, int W, int64_t tag_limit) {
  int64_t seg = 0, S = 0;
  const int ok = tpi_ring_segments(m, C, row_bytes, segment_bytes, W, tag_limit, &seg, &S);
  const int64_t max_rows = (m + C - 1) / C;
  check(seg >= 1 && seg * row_bytes <= INT_MAX, "m=%lld C=%d row=%lld seg_bytes=%lld: message of %lld bytes",
        (long long)m, C, (long long)row_bytes, (long long)segment_bytes, (long long)(seg * row_bytes));
  check(S * seg >= max_rows, "m=%lld C=%d: %lld messages of %lld rows miss rows of a %lld-row chunk", (long long)m, C,
        (long long)S, (long long)seg, (long long)max_rows);
  if (ok)
    check((int64_t)W * C * S <= tag_limit, "m=%lld C=%d: %lld tags over %lld", (long long)m, C,
          (long long)((int64_t)W * C * S), (long long)tag_limit);
  /* the bookkeeping reserved before the agreement holds the messages */
  const size_t need = (size_t)W * (size_t)C * (size_t)S;
  const size_t bound = tpi_ring_ws_bound(m, row_bytes, W, C, segment_bytes);
  check(bound >= need * (2 * sizeof(MPI_Request) + 4 * sizeof(int)), "m=%lld C=%d: bound %zu below %zu messages",
        (long long)m, C, bound, need);
}

int main(int argc, char **argv) {
  int rank, W;
  test_init(&argc, &argv, &rank, &W);
  const int64_t MiB = 1 << 20;
  one(4096, 1, MiB, 0, 2, 28000);            /* a 4 GiB chunk as one message: cut */
  one(3000, 1, MiB, 0, 2, 28000);            /* 2.9 GiB */
  one(2048, 1, MiB, 256 << 10, 2, 28000);    /* segments smaller than a row: one row each */
  one(8192, 2, 512 << 10, 256 << 10, 8, 64); /* the tag limit forces doubling past 2 GiB */
  one(1 << 20, 64, 4096, 0, 64, 28000);      /* many chunks, whole-chunk messages */
  one(100, 7, 96, 1000, 3, 28000);           /* ordinary */
  one(1, 1, 8, 0, 2, 28000);
  const int rc = finish("test_ring_sizes");
  tpmm_finalize();
  return rc;
}
