/*
 * _tpmm.h — what the files of the extension module _tpmm share: the tensor
 * descriptors from the Python layer, and all_gather_matmul's arguments in
 * each of its forms (_tpmm_agmm.c). Hidden: the module exports only its
 * init function.
 */
#ifndef TPMM_PY_TPMM_H
#define TPMM_PY_TPMM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>

#include "tpmm.h"

enum { TPY_MAX_NB = 16 }; /* the most weights tpmm_all_gather_matmul_multi takes */

/* A tensor from the Python layer: a (data_ptr, dtype, ndim, shape0, shape1,
 * ld) tuple. 0 with a Python exception set if o is not one. */
int tpy_parse_tensor(PyObject *o, tpmm_tensor_t *t, const char *name);

/* all_gather_matmul's arguments: one weight (x2 a descriptor) or a list of
 * them (tpmm_all_gather_matmul_multi), even shards or counts
 * (tpmm_all_gather_matmul_v). */
typedef struct {
  tpmm_tensor_t in, x2[TPY_MAX_NB], bias[TPY_MAX_NB], out[TPY_MAX_NB], gout;
  const tpmm_tensor_t *x2p[TPY_MAX_NB], *biasp[TPY_MAX_NB];
  tpmm_tensor_t *outp[TPY_MAX_NB];
  int nb;          /* weights passed (a list's length; 1 for one weight)  */
  bool multi;      /* x2 was a list                                        */
  bool has_biases; /* multi: a bias list was given                         */
  bool has_gout;   /* gather_out was given                                 */
  bool uneven;     /* counts was given                                     */
  int64_t *counts; /* world_size entries, or NULL (the library rejects it) */
  const char *group;
  int world_size;
  tpmm_all_gather_matmul_opts_t opts;
} tpy_agmm_args_t;

/* Parse (input, x2, group, world_size, bias, gather_index, gather_output,
 * comm_turn, trans_input, trans_x2, output, gather_out, counts) with the
 * PyArg format fmt. x2, bias and output are descriptors, or lists of them
 * (bias entries may be None) for several weights; bias, gather_out and
 * counts may be None; counts is a list of ints. 0 with an exception set on
 * failure; else release with tpy_agmm_release. */
int tpy_agmm_parse(PyObject *args, const char *fmt, tpy_agmm_args_t *a);
void tpy_agmm_release(tpy_agmm_args_t *a);

/* The C entry of a's form: the one-shot call, the plan's creation. */
tpmm_status_t tpy_agmm_call(void *a);
tpmm_status_t tpy_agmm_plan(void *a, tpmm_plan_t **plan);

#endif
