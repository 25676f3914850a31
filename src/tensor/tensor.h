/*
 * tensor.h — the argument validator of all_gather_matmul and the validated,
 * canonical description of one call that everything downstream consumes.
 *
 * After validation nothing below src/tensor looks at tpmm_tensor_t again:
 * matrices are (pointer, row stride, column stride) in logical orientation.
 */
#ifndef TPMM_TENSOR_H
#define TPMM_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "tpmm.h"

/* One strided matrix view in logical orientation: element (i, j) is at
 * data + (i * rs + j * cs) * esize. */
typedef struct tpi_mat {
  char *data;
  int64_t rows, cols, rs, cs;
} tpi_mat_t;

/* Most weights one gather multiplies (tpmm_all_gather_matmul_multi). */
enum { TPI_MAX_NB = 16 };

/* Weight i >= 1 of a multi call (weight 0 is tpi_call_t's x2, out, bias). */
typedef struct tpi_weight {
  tpi_mat_t x2;     /* (k, n_i) logical view */
  tpi_mat_t out;    /* (rows, n_i), cs == 1 */
  const void *bias; /* NULL or n_i elements of bias_dt */
  tpmm_dtype_t bias_dt;
} tpi_weight_t;

/* A validated call: everything downstream reads this, never the tensors. */
typedef struct tpi_call {
  tpmm_dtype_t dt;
  size_t esize;
  int64_t m, k, n;  /* per-rank rows, inner dim, columns */
  int W;            /* group size */
  tpi_mat_t in;     /* (m, k) logical view of the local input */
  tpi_mat_t x2;     /* (k, n) logical view of x2 */
  tpi_mat_t out;    /* (m*W, n), cs == 1 */
  tpi_mat_t gout;   /* (m*W, k), cs == 1; data NULL when !gather_output */
  const void *bias; /* NULL or n elements of bias_dt */
  tpmm_dtype_t bias_dt;
  int comm_turn;
  bool gather_output, trans_input, trans_x2;
  /* Uneven shards and gather_index 1 (issue 15). row0 NULL: every shard has
   * m rows (of input). Else group rank j's shard is rows [row0[j], row0[j+1])
   * of the gathered matrix (input's rows for gather_index 0, x2's for 1);
   * W+1 entries, owned by the plan (tpi_plan_free); m_max is the largest. */
  int gather_index;
  int64_t *row0;
  int64_t m_max;
  int nb;                     /* weights: x2/out/bias, then w[1..nb-1] (multi) */
  bool multi;                 /* made by a _multi entry (tpmm_plan_execute_multi runs it) */
  tpi_weight_t w[TPI_MAX_NB]; /* w[0] unused: weight 0 is x2/out/bias */
  tpmm_reduce_op_t reduce_op; /* the reduce operators: SUM or AVG */
} tpi_call_t;

/* Rows of group rank j's shard, its first row in the gathered matrix, the
 * largest shard and all of them. */
static inline int64_t tpi_shard_rows(const tpi_call_t *a, int j) {
  return a->row0 ? a->row0[j + 1] - a->row0[j] : a->m;
}
static inline int64_t tpi_shard_row0(const tpi_call_t *a, int j) { return a->row0 ? a->row0[j] : (int64_t)j * a->m; }
static inline int64_t tpi_rows_max(const tpi_call_t *a) { return a->row0 ? a->m_max : a->m; }
static inline int64_t tpi_rows_total(const tpi_call_t *a) { return a->row0 ? a->row0[a->W] : a->m * a->W; }

/* Fields every rank of the group must agree on; the agreement step compares
 * them across ranks (src/comm/agree.c) in this order, and names the first
 * that differs: what the call is (operator, plan, gather_index, weights,
 * counts) before the shapes it makes differ too. -1: does not apply to this
 * call; TPI_AGREE_UNKNOWN: this rank could not read it (a NULL tensor, counts
 * it cannot sum), which its own validation reports. */
enum {
  TPI_F_OP,   /* the operator (tpi_opdesc_t.kind): two different calls never run as one */
  TPI_F_PLAN, /* the plan's number in its group (0: a one-shot call): plans run in the same order */
  TPI_F_GATHER_INDEX,
  TPI_F_NB,     /* weights of a multi call (1 for all_gather_matmul's others, -1 for the reduce operators) */
  TPI_F_COUNTS, /* uneven shards: a hash of counts (-1 unset) */
  TPI_F_WORLD_SIZE,
  TPI_F_TRANS_INPUT,
  TPI_F_TRANS_X2,
  TPI_F_DTYPE,
  TPI_F_M,
  TPI_F_K,
  TPI_F_N,
  TPI_F_GATHER_OUTPUT,
  TPI_F_COMM_TURN,
  TPI_F_BIAS,
  TPI_F_BIAS_DTYPE,
  TPI_F_REDUCE_OP,   /* the reduce operators' reduce_op (-1 for the others) */
  TPI_F_WEIGHTS,     /* multi: a hash of every weight's n, bias and bias dtype (-1 unset) */
  TPI_F_BIAS_VALUES, /* matmul_all_reduce: a hash of the bias's bytes (-1 unset): every rank sums every row
                        when small partials fold, so each would add its own bias */
  TPI_F_COUNT
};
/* A name starting with '#' is a hash of several values: messages name it without numbers. */
extern const char *const tpi_field_names[TPI_F_COUNT];
/* Field i's value v as the caller wrote it ("float16", "true", "a one-shot call") in buf, or NULL where
 * the number says it (the agreement's tpi_agree_fmt_t; the operator's name is the registry's, plan.c). */
const char *tpi_field_value(int i, int64_t v, char *buf, size_t len);

/* The public arguments of one call, whichever the operator; the operator's
 * validator and field reader take them (src/pipeline/op_*.c fill them). */
typedef struct tpi_args {
  const tpmm_tensor_t *input;
  const tpmm_tensor_t *const *x2;   /* nb weights */
  const tpmm_tensor_t *const *bias; /* nb biases (multi), or NULL: the options' bias */
  int nb;
  int world_size;
  const int64_t *counts;                     /* uneven shards, or NULL */
  const tpmm_all_gather_matmul_opts_t *agmm; /* the gather operators' options */
  const tpmm_matmul_reduce_opts_t *mmr;      /* the reduce operators' options */
  const tpmm_tensor_t *const *output;        /* nb outputs */
  const tpmm_tensor_t *gather_out;
  bool uneven; /* tpmm_all_gather_matmul_v: counts required */
  bool multi;  /* tpmm_all_gather_matmul_multi (nb weights, bias[] instead of the options' bias) */
} tpi_args_t;

/* Read the collective fields of a call as far as the arguments allow. Never
 * fails; used even when validation fails so that disagreement is still seen. */
void tpi_agmm_fields(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int world_size,
                     const tpmm_all_gather_matmul_opts_t *opts, int64_t f[TPI_F_COUNT]);

/* Check every argument of one rank's call (no communication). On success
 * fills *a. On failure returns the status with a message naming the argument
 * and value, prefixed with "op: ". */
tpmm_status_t tpi_agmm_validate(const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int group_size,
                                int world_size, const tpmm_all_gather_matmul_opts_t *opts, const tpmm_tensor_t *output,
                                const tpmm_tensor_t *gather_out, int need_data, tpi_call_t *a);

/* For a plan's execute: check that input/output/gather_out have exactly the
 * plan's dtypes, shapes and strides, and point a's views at their data.
 * a->x2 must have its data pointer cleared (the plan keeps a packed copy). */
tpmm_status_t tpi_agmm_rebind(const char *op, tpi_call_t *a, const tpmm_tensor_t *input, const tpmm_tensor_t *output,
                              const tpmm_tensor_t *gather_out);

/* ---- all_gather_matmul's uneven shards, several weights, gather_index 1
 * (validate_ext.c) ---- */
/* Whether a call needs the extended checks (counts, multi, gather_index 1). */
int tpi_agmm_is_ext(const tpi_args_t *args);
/* As tpi_agmm_validate for those calls; allocates a->row0 (freed with the plan). */
tpmm_status_t tpi_agmm_validate_ext(const char *op, const tpi_args_t *args, int group_size, int need_data,
                                    tpi_call_t *a);
/* As tpi_agmm_fields: counts, weights and the extents of those calls. */
void tpi_agmm_fields_ext(const tpi_args_t *args, int64_t f[TPI_F_COUNT]);
/* A plan's execute, as tpi_agmm_rebind: multi (tpmm_plan_execute_multi)
 * passes a->nb outputs and must match how the plan was made. */
tpmm_status_t tpi_agmm_rebind_ext(const char *op, tpi_call_t *a, const tpmm_tensor_t *input,
                                  const tpmm_tensor_t *const *output, bool multi, const tpmm_tensor_t *gather_out);

/* The reduce operators (validate_reduce.c). all_reduce: output is (m, n) on
 * every rank, else (m/W, n) (matmul_reduce_scatter). Views as for
 * all_gather_matmul: in (m, k), x2 (k, n), out the output; m is the input's
 * rows. */
void tpi_mmr_fields(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int world_size,
                    const tpmm_matmul_reduce_opts_t *opts, int64_t f[TPI_F_COUNT]);
/* The same, with matmul_all_reduce's TPI_F_BIAS_VALUES: a hash of the bias's n elements where it is one of
 * n (as x2's n says) of a bias dtype; else TPI_AGREE_UNKNOWN, which that rank's validation reports. */
void tpi_mmr_fields_ar(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int world_size,
                       const tpmm_matmul_reduce_opts_t *opts, int64_t f[TPI_F_COUNT]);
tpmm_status_t tpi_mmr_validate(const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int group_size,
                               int world_size, const tpmm_matmul_reduce_opts_t *opts, const tpmm_tensor_t *output,
                               int all_reduce, int need_data, tpi_call_t *a);

#endif
