/*
 * reduce.h — what the reduce operators (matmul_reduce_scatter,
 * matmul_all_reduce) and their schedules share: the operators' hooks, how
 * rows are cut into units, the partial GEMM, and the one fixed-order sum.
 *
 * Numerics, the same in every schedule: each rank's partial product of a
 * row is fp32 (tpi_gemm_run_f32, whose row bits do not depend on how rows
 * are grouped); the owner of a row sums the W partials in group-rank order
 * (rank 0 first, the first term copied), AVG divides by W, the bias (fp32)
 * is added, and the result is rounded once to the output dtype
 * (tpi_red_sum). Partials travel as fp32: rounding them to the input dtype
 * would add W roundings of the partial's size to an error the contract
 * bounds by one rounding of the sum (bytes and time of both in
 * bench/RESULTS.md).
 *
 * Units: with C chunks, unit (q, c) is the rows owned by rank q in chunk c.
 *   reduce_scatter: rank q owns block q of m/W rows; chunk c of it is
 *     rows q*m/W + [c*mb/C, (c+1)*mb/C), mb = m/W.
 *   all_reduce: chunk c is rows [c*m/C, (c+1)*m/C); rank q owns part q of
 *     each chunk (the chunk's rows cut into W as even as can be), so every
 *     chunk is a small reduce-scatter + allgather.
 * A schedule produces the units of chunk c (every owner's) before those of
 * chunk c+1, so owners can sum chunk c while chunk c+1 is multiplied (the
 * ring's reduce_scatter holds its own units back: tpi_red_own_last).
 */
#ifndef TPMM_REDUCE_H
#define TPMM_REDUCE_H

#include "pipeline.h"

/* ---- the operators' hooks (op_matmul_reduce.c) ---- */
tpmm_status_t tpi_mmr_validate_rs(const char *op, const tpi_args_t *args, int group_size, int need_data, tpi_call_t *a);
tpmm_status_t tpi_mmr_validate_ar(const char *op, const tpi_args_t *args, int group_size, int need_data, tpi_call_t *a);
void tpi_mmr_fields_args(const tpi_args_t *args, int64_t f[TPI_F_COUNT]);
void tpi_mmr_fields_args_ar(const tpi_args_t *args, int64_t f[TPI_F_COUNT]);
tpmm_status_t tpi_mmr_prepare(tpi_plan_t *p, const char *op, int need_data);
void tpi_mmr_sizes(const tpi_plan_t *p, double *shard_bytes, int64_t *gemm_rows);

/* ---- shared by the schedules (reduce.c) ---- */

/* matmul_all_reduce (every rank gets every row) rather than reduce_scatter. */
static inline int tpi_red_all(const tpi_plan_t *p) { return p->op->kind == TPI_OP_MATMUL_ALL_REDUCE; }
/* Every workspace the schedules need, before the agreement. */
tpmm_status_t tpi_red_reserve(tpi_plan_t *p, const char *op);
/* The ring's bookkeeping with C chunks (algo_red_ring.c); the unfused
 * schedule's count arrays (4*W ints) fit in it too. */
size_t tpi_red_reqs_bytes(const tpi_call_t *a, int C);
/* The chunk count a schedule runs: p->chunks within what the rows allow. */
int tpi_red_chunks(const tpi_plan_t *p);
/* Rows [*lo, *hi) of the m rows that unit (q, c) holds, with C chunks. */
void tpi_red_unit(const tpi_plan_t *p, int C, int q, int c, int64_t *lo, int64_t *hi);
/* Rows of all units (q, c') with c' < c: where unit (q, c) starts in a
 * compact buffer of q's rows. */
int64_t tpi_red_unit_offset(const tpi_plan_t *p, int C, int q, int c);
/* The output row of global row i (reduce_scatter: within the own block). */
static inline int64_t tpi_red_out_row(const tpi_plan_t *p, int64_t i) {
  return tpi_red_all(p) ? i : i - (int64_t)p->g->rank * (p->a.m / p->a.W);
}
/* Whether chunk c is multiplied in one call rather than unit by unit: its
 * rows are contiguous (all_reduce, or one chunk) and its units smaller than
 * a GEMM call multiplies anyway (TPI_GEMM_F32_ROWS); [*lo, *hi): its rows.
 * Rows do not depend on how they are grouped: the bits are the same. */
int tpi_red_chunk_once(const tpi_plan_t *p, int C, int c, int64_t *lo, int64_t *hi);
/* Whether the ring multiplies the own block last, in one call, after every
 * remote unit of every chunk: reduce_scatter with C > 1. The own rows never
 * travel, so sending the remote ones sooner shortens the link's tail (with
 * polls the call still runs in tiles); all_reduce keeps chunk order, as its
 * owners' rounded rows leave between chunks. */
static inline int tpi_red_own_last(const tpi_plan_t *p, int C) { return !tpi_red_all(p) && C > 1; }
/* The model's time of one GEMM call of `rows` (tpi_model_gemm: x2 read
 * again, or the arithmetic), rows counted as tpi_gemm_cost_rows does (bf16 on oneDNN: whole AMX tiles). */
double tpi_red_gemm_time(const tpi_plan_t *p, const tpi_model_t *m, int64_t rows);
/* P (rows [lo, hi), row stride n) = A rows [lo, hi) @ x2 in fp32, in tiles
 * of p->tile rows with poll(ctx) between them (poll may be NULL). A GEMM
 * failure goes to p->gemm_status and the rows become NaN (they still travel,
 * so that peers finish; the failure shows in every sum it enters). */
tpmm_status_t tpi_red_gemm(tpi_plan_t *p, const char *A, int64_t lo, int64_t hi, float *P, tpi_poll_fn poll, void *ctx);
/* dst (rows of the output dtype, row stride ldd) = round(sum over q in rank
 * order of part[q] (rows of n floats, stride n) [/ W] [+ bias]). */
void tpi_red_sum(tpi_plan_t *p, const float *const *part, int64_t rows, void *dst, int64_t ldd);
/* Copy dense rounded rows to output rows [o0, o0 + rows). */
void tpi_red_put(const tpi_plan_t *p, const char *src, int64_t rows, int64_t o0);
/* The cost model's time to sum rows of W partials (memory-bound). */
double tpi_red_sum_time(const tpi_plan_t *p, int64_t rows);
/* time(p, m, *chunks) when *chunks > 0; else, of the chunk counts up to the
 * automatic limit, the most whose time is within TPI_RED_CHUNK_MARGIN of the
 * least, in *chunks, and its time. The link schedules' predict(). */
#define TPI_RED_CHUNK_MARGIN 0.03
double tpi_red_best_chunks(const tpi_plan_t *p, const tpi_model_t *m, int *chunks,
                           double (*time)(const tpi_plan_t *p, const tpi_model_t *m, int C));

/* ---- the fold: small partials travel with the agreement (algo_red_unfused.c) ---- */

/* Whether a call of p sends its partials with the agreement, decided when it
 * is prepared: more than one rank, rows and columns, TPMM_ALGO auto or
 * unfused on this rank, and the bytes one peer gets within
 * tpi_agree_fold_cap. Local. */
int tpi_red_folds(const tpi_plan_t *p);
/* Before a call's agreement (tpi_plan_agree; st: this rank's status so
 * far, data: a call, not a plan's creation): if the call folds, multiply
 * this rank's partials into p->red.part and describe what each peer gets in
 * f (reduce_scatter: the peer's block; all_reduce: all of them). Returns st,
 * or the GEMM's failure, for the agreement to report. Never writes output. */
tpmm_status_t tpi_red_fold(tpi_plan_t *p, const char *op, tpmm_status_t st, int data, tpi_fold_t *f);

#endif
