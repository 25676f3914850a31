/*
 * check.h — the argument checks every validator shares (validate.c holds
 * them): each names the argument and its value, prefixed with "op: ".
 */
#ifndef TPMM_CHECK_H
#define TPMM_CHECK_H

#include "tensor.h"

int tpi_dtype_valid(int dt);
/* "float16", "bfloat16", "float32" or "invalid". */
const char *tpi_dtype_name(int dt);
/* ndim 2, dims >= 0, ld >= its columns, byte size within the address space,
 * data (when need_data and the matrix has elements); *ld gets the row stride. */
tpmm_status_t tpi_check_matrix(const char *op, const char *name, const tpmm_tensor_t *t, int need_data, int64_t *ld);
/* An output: dtype dt, a matrix of shape (rows, cols). */
tpmm_status_t tpi_check_output(const char *op, const char *name, const tpmm_tensor_t *t, tpmm_dtype_t dt, int64_t rows,
                               int64_t cols, int need_data, int64_t *ld);
/* Outputs (a->out, a->gout) share no memory with the inputs or each other. */
/* The collective fields every operator shares (the rest stay -1). Never fails. */
void tpi_fields_common(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, int world_size, bool trans_input,
                       bool trans_x2, int comm_turn, const tpmm_tensor_t *bias, int64_t f[TPI_F_COUNT]);
/* A bias (named name): dtype dt or FLOAT32, 1-D of n, data. */
tpmm_status_t tpi_check_bias(const char *op, const char *name, const tpmm_tensor_t *b, tpmm_dtype_t dt, int64_t n);
tpmm_status_t tpi_check_aliasing(const char *op, const tpi_call_t *a);

/* What tpi_check_operands learns of input (m x k, transposed if ti) and x2
 * (k x n, transposed if tx): the dimensions and row strides. */
typedef struct {
  int64_t m, k, n, ld_in, ld_x2;
  bool ti, tx;
} tpi_operands_t;
/* The checks of input @ x2 every single-weight operator makes alike, in the
 * reference's order: dtypes (valid, equal), both matrices, k, then
 * world_size against the group's size. */
tpmm_status_t tpi_check_operands(const char *op, const tpmm_tensor_t *input, const tpmm_tensor_t *x2, bool ti, bool tx,
                                 int group_size, int world_size, int need_data, tpi_operands_t *d);
/* The call's fields of those operands, the bias (or NULL) and comm_turn. */
void tpi_call_operands(tpi_call_t *a, const tpi_operands_t *d, const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                       int world_size, const tpmm_tensor_t *bias, int comm_turn);
/* Whether two stored views share a byte. */
int tpi_overlaps(const tpi_mat_t *a, const tpi_mat_t *b, size_t es);

#endif
