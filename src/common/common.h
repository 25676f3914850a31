/*
 * common.h — internal helpers shared by every part of libtpmm: the per-thread
 * error message, CHECK macros, overflow-safe arithmetic and the tunables.
 * Internal cross-file symbols and types are prefixed tpi_ (macros TPI_) and
 * hidden (-fvisibility=hidden); file-local ones are static and unprefixed.
 */
#ifndef TPMM_COMMON_H
#define TPMM_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "debug.h"
#include "tpmm.h"

#if defined(__GNUC__)
#define TPI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TPI_PRINTF(f, a)
#endif

/* Record the calling thread's detail message and return s. Every failing
 * path in the library goes through here, so the message always matches the
 * returned status. */
tpmm_status_t tpi_fail(tpmm_status_t s, const char *fmt, ...) TPI_PRINTF(2, 3);
/* Forget the thread's last message (called on entry of every public call). */
void tpi_clear_error(void);
/* Copy of the current message, for code that must keep it across calls. */
const char *tpi_error_message(void);

/* Propagate a failure that already set its message. */
#define TPI_CHECK(expr)                        \
  do {                                         \
    tpmm_status_t tpi_s_ = (expr);             \
    if (tpi_s_ != TPMM_SUCCESS) return tpi_s_; \
  } while (0)
/* Same, but jump to a cleanup label with st set. */
#define TPI_CHECK_GOTO(expr, st, label)   \
  do {                                    \
    (st) = (expr);                        \
    if ((st) != TPMM_SUCCESS) goto label; \
  } while (0)

/* An agreement field this rank could not read (a NULL tensor, counts it
 * cannot sum): left out of the comparison when the rank also failed locally,
 * so that its own error, not a disagreement, reaches every rank (agree.c). */
#define TPI_AGREE_UNKNOWN INT64_MIN

/* a*b, false on int64 overflow or negative operands. */
static inline int tpi_mul_ok(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0) return 0;
  return !__builtin_mul_overflow(a, b, out);
}

/* A 64-bit hash of `bytes` bytes at p, from h: eight bytes at a time (the
 * last ones zero-padded), then splitmix64's finaliser (byte-wise FNV was a
 * tenth of a one-shot call's own time). */
static inline uint64_t tpi_hash_bytes(const void *p, size_t bytes, uint64_t h) {
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t w = 0;
    memcpy(&w, (const char *)p + i, bytes - i < 8 ? bytes - i : 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9u;
    h ^= h >> 29;
  }
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebu;
  return h ^ (h >> 31);
}

/* The median of v[0..n), n >= 1, sorting v in place (insertion: for the few
 * samples the library takes of its own timings). */
static inline double tpi_median_of(double *v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      const double x = v[j];
      v[j] = v[j - 1], v[j - 1] = x;
    }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- tunables (src/common/param.c) ---- */
typedef struct tpi_params {
  int algo;              /* tpmm_algo_t */
  int num_threads;       /* GEMM threads per rank */
  int64_t timeout_ms;    /* 0 = forever */
  int progress_thread;   /* 0 polls, 1 thread, 2 thread across nodes */
  int progress_nap_us;   /* progress thread's sleep between polls; -1: by the plan */
  int send_window;       /* ring sends in flight per direction, 0 = unlimited */
  int64_t segment_bytes; /* largest ring message, 0 = a whole chunk */
  int gemm;              /* tpmm_gemm_t: the GEMM backend */
  char trace_path[256];  /* TPMM_TRACE; "" = off */
  int verbose;           /* TPMM_VERBOSE=1: rank 0 prints each plan's decision to stderr */
} tpi_params_t;

extern tpi_params_t tpi_params;
/* Read TPMM_* environment variables into tpi_params; bad values fail naming
 * the variable. */
tpmm_status_t tpi_params_from_env(void);

/* Copy a strided (rows x cols) matrix (element (i,j) at i*rs + j*cs) into
 * dense rows of cols elements; es is 2 or 4 bytes. (copy.c) */
void tpi_copy_dense(void *dst, const void *src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, size_t es);
/* One tile of 64-byte rows transposed: dst[r * ds + c] = src[c * ss + r] for r, c < 64 / es (es 2 or 4;
 * strides in elements). With AVX-512 where the CPU has it (callers check tpi_have_avx512). */
void tpi_copy_tile64(void *dst, int64_t ds, const void *src, int64_t ss, size_t es);

/* Monotonic clock in seconds. */
double tpi_now(void);
/* CPU seconds the calling thread has run. */
double tpi_cpu_now(void);

#endif
