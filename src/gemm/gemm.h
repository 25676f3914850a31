/*
 * gemm.h — where the GEMM runs. One prepared right-hand side (x2 packed
 * once, bias) and a run call on row blocks of A:
 *
 *     C[M x N] = round_dt( A[M x K] @ B + bias )   fp32 accumulation
 *
 * Backends sit behind one function table (BLIS's framework/kernel split):
 *   dnnl  oneDNN matmul, bf16 and fp32, B reordered once to its packed layout
 *   ref   portable reference, every dtype; always available
 *   amx   tpmm's own bf16 kernel on AMX, any rows: decode-sized calls read x2 in place, larger ones pack
 *         it per call, plans keep a copy (gemm_amx.c)
 *   dot   tpmm's own for 1-2 rows with x2 transposed, up to 4 without AMX (AVX512-BF16, gemm_dot.c)
 *   avx2  tpmm's own fp32 kernel on CPUs without AVX-512, where oneDNN's sgemm
 *         is not M-independent (gemm_avx2.c); widened bf16 and fp16 run on it
 * fp16 has no native backend on these CPUs, nor bf16 on CPUs without AVX-512
 * (oneDNN 2.6's bf16 kernels need avx512_core): the framework widens them
 * (gemm.c): A panels are converted to fp32, the fp32 backend multiplies, and
 * the fp32 tile is rounded once to the half type.
 *
 * For a given prepared B, the bits of a row of C do not depend on M, on
 * which rows are computed together, on where A sits or its row stride, or on
 * whether x2 was packed: fused schedules can split the GEMM into chunks and
 * still match the unfused path bit for bit (tests/test_gemm.c; gemm_dnnl.c
 * says how oneDNN is kept to it). The backend, and so the bits, follow from
 * the dtype, x2's layout and k, m_hint, call_rows, plan or one-shot and the
 * GEMM threads, which every path of one call shares; where two backends serve one
 * shape (gemm_bf16r.c for one-shot calls, oneDNN for plans) they sum alike.
 */
#ifndef TPMM_GEMM_H
#define TPMM_GEMM_H

#include <stdint.h>

#include "../common/common.h"
#include "../tensor/tensor.h"

typedef struct tpi_gemm tpi_gemm_t;

typedef struct tpi_gemm_backend {
  const char *name;
  int (*supports)(tpmm_dtype_t dt); /* native compute for dt? */
  /* Prepare B (k x n, logical view, dtype g->cdt) and g->bias32; set g->impl. */
  tpmm_status_t (*prepare)(tpi_gemm_t *g, const tpi_mat_t *b);
  /* C = A @ B + bias on M rows; A dense rows with stride lda, C stride ldc. */
  tpmm_status_t (*run)(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc);
  void (*release)(tpi_gemm_t *g);
  /* Point an unpacked g at b (the layout prepare saw, new data): views moved,
   * copies redone. The framework has already refreshed g->bias32. */
  tpmm_status_t (*rebind)(tpi_gemm_t *g, const tpi_mat_t *b);
  /* C32 = A @ B in fp32 on M rows, no bias, no rounding; A dense rows of g->cdt
   * with stride lda, C stride ldc (gemm_f32.c drives it). */
  tpmm_status_t (*run_f32)(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc);
  /* 1: prepare and rebind take a widened g's x2 in g->dt and widen it as they pack, so the
   * framework keeps no fp32 copy of x2 */
  int widens;
} tpi_gemm_backend_t;

struct tpi_gemm {
  const tpi_gemm_backend_t *be;
  tpmm_dtype_t dt;  /* dtype of A and C for the caller */
  tpmm_dtype_t cdt; /* dtype the backend computes in (fp32 when widening a half type) */
  int64_t K, N;
  float *bias32; /* n floats or NULL: bias converted once */
  int nthreads;
  int64_t m_hint; /* typical M, for backends that pick a layout by it */
  int pack;       /* reorder B into the backend's packed layout (pays off
                     only when B is reused for many rows, see TPI_PACK_MIN_ROWS);
                     TPI_PACK_IF_DIRECT until prepare settles it to 0 or 1 */
  float *bwide;   /* widening: the fp32 copy of x2, owned */
  void *impl;     /* backend state */
  /* widening scratch (widened half types only) */
  float *a32, *c32;
  int64_t panel; /* rows per widening panel */
  float *acc32;  /* tpi_gemm_run_f32 with accumulate: one panel of products, on first use */
};

extern const tpi_gemm_backend_t tpi_gemm_dnnl, tpi_gemm_ref, tpi_gemm_dot, tpi_gemm_amx, tpi_gemm_avx2, tpi_gemm_bf16r;
/* Whether this CPU runs gemm_avx2.c's kernel (AVX2, FMA and F16C). */
int tpi_gemm_avx2_usable(void);
/* Whether fp32 setups (and widened bf16 / fp16) go to gemm_avx2.c under TPMM_GEMM=dnnl: where it runs
 * and oneDNN has no AVX-512 kernels (no AVX-512, or oneDNN kept below it), or under the test hook. */
int tpi_gemm_avx2_takes(void);
/* Whether a packed setup of dt can be rebound (tpi_gemm_rebind): not when the framework widened x2
 * through a copy that packing freed (fp16 on oneDNN or ref; bf16 where oneDNN has no bf16 kernel and
 * gemm_avx2.c does not run). */
int tpi_gemm_rebinds_packed(tpmm_dtype_t dt);

/* bf16 setups go to tpmm's own AMX kernel (gemm_amx.c) instead of oneDNN,
 * where the CPU and OS allow AMX (transposed calls within TPI_DOT_FIRST_ROWS
 * excepted): decode-sized calls read x2 in place, row-major or transposed,
 * larger ones pack it once per call (a plan keeps it packed), and no call
 * cuts K into slices the way oneDNN has to be (bench/RESULTS.md §19, §20). */
/* Whether this CPU and OS run gemm_amx.c's kernel (asks Linux for the tile state once). */
int tpi_gemm_amx_usable(void);
/* Whether gemm_amx.c's kernel takes x2 (dtype dt), in place of oneDNN. */
int tpi_gemm_amx_takes(tpmm_dtype_t dt, const tpi_mat_t *x2);

/* Without AMX, bf16 setups with x2 transposed whose calls run at most this
 * many rows go to tpmm's vdpbf16ps kernel (gemm_dot.c) where the CPU has
 * AVX512-BF16; past it the kernel's vdpbf16ps rate falls behind oneDNN's
 * packed x2 (bench/RESULTS.md §18). */
#define TPI_DOT_MAX_ROWS 4
/* With AMX too, those of at most this many rows stay on gemm_dot.c: its
 * 4-column strips read x2 faster than 16-row tiles do there, most when x2 is
 * not 64-byte aligned (bench/RESULTS.md §19). */
#define TPI_DOT_FIRST_ROWS 2
/* Whether this CPU runs gemm_dot.c's kernel. */
int tpi_gemm_dot_usable(void);
/* Whether gemm_dot.c's kernel takes x2 (dtype dt) for calls of at most
 * call_rows rows, in place of oneDNN. */
int tpi_gemm_dot_takes(tpmm_dtype_t dt, const tpi_mat_t *x2, int64_t call_rows);

/* Without AMX, bf16 one-shot setups (not plans) of a row-major x2 whose calls run at most
 * TPI_BF16R_SHORT_K_ROWS rows, or at most TPI_BF16R_MAX_ROWS where k > TPI_BF16R_SHORT_K, on one GEMM thread,
 * go to gemm_bf16r.c, which reads x2 in place and sums as oneDNN does (plans keep oneDNN's packed copy: the
 * same bits). Past 16 rows, and at 9-16 rows with k <= 1024, oneDNN's copy of x2 costs less than the kernel's
 * slower multiply (bench/RESULTS.md §31). */
#define TPI_BF16R_MAX_ROWS 16
#define TPI_BF16R_SHORT_K_ROWS 8
#define TPI_BF16R_SHORT_K 1024
/* Whether calls of call_rows rows at this k are gemm_bf16r.c's by the row rule above. */
int tpi_gemm_bf16r_fits(int64_t call_rows, int64_t k);
/* Whether this CPU runs gemm_bf16r.c's kernel, and it agreed with oneDNN bit for bit on its probe. */
int tpi_gemm_bf16r_usable(void);
/* Whether gemm_bf16r.c takes x2 (dtype dt) for calls of at most call_rows rows of a setup that
 * multiplies lifetime_rows rows (INT64_MAX: a plan). */
int tpi_gemm_bf16r_takes(tpmm_dtype_t dt, const tpi_mat_t *x2, int64_t call_rows, int64_t lifetime_rows);
/* A bf16 setup of x2 (plain, not packed) on backend be, with an fp32 bias or NULL (gemm_bf16r.c's probe). */
tpmm_status_t tpi_gemm_create_on(tpi_gemm_t **out, const tpi_gemm_backend_t *be, const tpi_mat_t *x2, const float *bias,
                                 int64_t rows);

/* The kernel of tpmm's own that tpi_gemm_create gives x2 (dtype dt) for calls of at
 * most call_rows rows under TPMM_GEMM=dnnl: dot within TPI_DOT_FIRST_ROWS, else amx,
 * else dot within TPI_DOT_MAX_ROWS (no AMX), else NULL (oneDNN). */
const tpi_gemm_backend_t *tpi_gemm_own_kernel(tpmm_dtype_t dt, const tpi_mat_t *x2, int64_t call_rows);

/* Element i of the array p of dtype dt, in fp32 (exact). */
float tpi_gemm_elem_f32(const void *p, tpmm_dtype_t dt, int64_t i);
/* n half values (dtype dt, FLOAT16 or BFLOAT16) to fp32, exactly. */
void tpi_gemm_widen_n(tpmm_dtype_t dt, const uint16_t *src, float *dst, size_t n);
/* n fp32 values rounded to dt (FLOAT16 or BFLOAT16), nearest even. */
void tpi_gemm_narrow_n(tpmm_dtype_t dt, const float *src, uint16_t *dst, size_t n);

/* Below this many rows the reorder costs more than the packed GEMM saves (bench/RESULTS.md §1). */
#define TPI_PACK_MIN_ROWS 4096
/* Through oneDNN a transposed bf16 x2 is copied anyway (oneDNN 2.6's AMX
 * kernel takes a transposed B only when dense, and K's 512-column slices of
 * one never are; gemm_dot.c reads it in place); from this many rows packing pays
 * for itself even through the copy and oneDNN's reorder (bench/RESULTS.md §16). */
#define TPI_PACK_TRANS_MIN_ROWS 512
/* Below that, pack only where the backend packs straight from x2's strides,
 * which costs less than the copy (bench/RESULTS.md §17); else copy. */
#define TPI_PACK_IF_DIRECT 2

/* Whether tpi_gemm_create packs x2 (dtype dt) for lifetime_rows rows: 0, 1
 * or TPI_PACK_IF_DIRECT. */
int tpi_gemm_packs(tpmm_dtype_t dt, const tpi_mat_t *x2, int64_t lifetime_rows);

/* Prepare x2 and bias for repeated runs. m_hint: the M most runs will use;
 * call_rows: the rows of the largest run (the unfused GEMM of one call);
 * lifetime_rows: rows x2 will multiply before it is destroyed (INT64_MAX
 * for plans): x2 is packed when tpi_gemm_packs says so, otherwise it is used
 * in place (borrowed: x2 must outlive the tpi_gemm_t) or copied dense.
 * Packed and plain give the same bits (tested). The backend is TPMM_GEMM
 * (dnnl|ref) or dnnl by default, ref if dnnl cannot do the dtype; a dnnl
 * setup of bf16 goes to tpmm's own kernels where they run (tpi_gemm_own_kernel). Local. */
tpmm_status_t tpi_gemm_create(tpi_gemm_t **out, tpmm_dtype_t dt, const tpi_mat_t *x2, const void *bias,
                              tpmm_dtype_t bias_dt, int64_t m_hint, int64_t call_rows, int64_t lifetime_rows);
/* Point g at a new x2 and bias of the layout it was created with (shape,
 * strides, bias present or not; the bias dtype may differ): the same setup
 * multiplies new data, as a fresh tpi_gemm_create on them would, bit for
 * bit. x2 is borrowed, copied or packed again as at creation; a packed fp16
 * g (its fp32 widening is gone) fails (INTERNAL). Local. */
tpmm_status_t tpi_gemm_rebind(tpi_gemm_t *g, const tpi_mat_t *x2, const void *bias, tpmm_dtype_t bias_dt);
/* Multiply by the dense K x N rows (dtype dt) at x2 from now on: tpi_gemm_rebind
 * to that view, no bias (gather_index 1 makes its panel GEMMs unpacked, without
 * bias, and rebinds them panel by panel; x2 must outlive the use). Local. */
tpmm_status_t tpi_gemm_set_b(tpi_gemm_t *g, const void *x2);
/* C = A @ x2 + bias for M rows of A (dense rows, stride lda, dtype dt) into C
 * (stride ldc). Local; one thread at a time per tpi_gemm_t. */
tpmm_status_t tpi_gemm_run(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, void *C, int64_t ldc);
/* bf16 through oneDNN, a call of fewer rows costs about as much as one of
 * this many (AMX tiles; small shapes run on zero rows, gemm_dnnl.c): what the
 * reduce operators' cost model charges a short call. */
enum { TPI_GEMM_F32_ROWS = 64 };
/* The rows a call of M rows on g costs about as much as: bf16 on oneDNN rounded
 * up to whole TPI_GEMM_F32_ROWS; tpmm's own kernels pad at most a tile's 16 or
 * a pass's 32, which the model does not count. */
int64_t tpi_gemm_cost_rows(const tpi_gemm_t *g, int64_t M);
/* The most rows a call on g runs (gemm_dot.c: its bound), 0: no bound. */
int64_t tpi_gemm_row_bound(const tpi_gemm_t *g);
/* Whether every run of g reads x2 where the caller holds it (no copy, no packed panels): gemm_avx2.c's
 * in-place setups; 0 for every other (what other backends copy is theirs to decide). */
int tpi_gemm_reads_in_place(const tpi_gemm_t *g);
/* Rows tpmm's own kernels compute together (gemm_avx2.c's register block, gemm_amx.c's pass of two tiles). */
enum { TPI_GEMM_AVX2_ROWS = 4, TPI_GEMM_AMX_ROWS = 32 };
/* The rows g computes together: a call of a multiple of them pads no rows (1: any count). */
int64_t tpi_gemm_row_block(const tpi_gemm_t *g);

/* C32 (+)= A @ x2 in fp32 for M rows: no bias, no rounding; accumulate 0 overwrites, 1 adds. As for
 * tpi_gemm_run, the bits of a row depend neither on M nor on packing. */
tpmm_status_t tpi_gemm_run_f32(tpi_gemm_t *g, int64_t M, const void *A, int64_t lda, float *C, int64_t ldc,
                               int accumulate);
void tpi_gemm_destroy(tpi_gemm_t *g);

#endif
