/*
 * _tpmm_agmm.c — all_gather_matmul's arguments as the Python layer passes
 * them, and the C entry of each form: one weight (tpmm_all_gather_matmul),
 * uneven shards (_v, counts given), several weights (_multi, x2 a list).
 *
 * What the Python layer could not read goes on as what the library rejects
 * on every rank (a list of more than TPY_MAX_NB weights with its length as
 * nb, counts of the wrong length as NULL), so that no rank leaves the
 * collective alone.
 */
#include <limits.h>
#include <string.h>

#include "_tpmm.h"

int tpy_parse_tensor(PyObject *o, tpmm_tensor_t *t, const char *name) {
  unsigned long long ptr;
  int dtype, ndim;
  long long s0, s1, ld;
  if (!PyTuple_Check(o)) {
    PyErr_Format(PyExc_TypeError, "tpmm: %s must be a (ptr, dtype, ndim, s0, s1, ld) tuple", name);
    return 0;
  }
  if (!PyArg_ParseTuple(o, "KiiLLL", &ptr, &dtype, &ndim, &s0, &s1, &ld)) return 0;
  t->data = (void *)(uintptr_t)ptr;
  t->dtype = (tpmm_dtype_t)dtype;
  t->ndim = ndim;
  t->shape[0] = s0;
  t->shape[1] = s1;
  t->ld = ld;
  return 1;
}

/* One descriptor, or a list of them into t[] (entries past TPY_MAX_NB are
 * not read; None entries set no tensor when none_ok): *n is its length. */
static int parse_list(PyObject *o, tpmm_tensor_t *t, const tpmm_tensor_t **set, bool none_ok, const char *name,
                      Py_ssize_t *n) {
  if (!PyList_Check(o)) {
    *n = 1;
    if (set) set[0] = t;
    return tpy_parse_tensor(o, t, name);
  }
  *n = PyList_GET_SIZE(o);
  for (Py_ssize_t i = 0; i < *n && i < TPY_MAX_NB; i++) {
    PyObject *e = PyList_GET_ITEM(o, i);
    if (none_ok && e == Py_None) {
      set[i] = NULL;
    } else {
      if (!tpy_parse_tensor(e, &t[i], name)) return 0;
      if (set) set[i] = &t[i];
    }
  }
  return 1;
}

/* counts: a list of ints the Python layer clamped to int64; NULL unless it
 * has world_size entries (the library's contract). */
static int parse_counts(PyObject *o, tpy_agmm_args_t *a) {
  if (!PyList_Check(o)) return PyErr_Format(PyExc_TypeError, "tpmm: counts must be None or a list of int"), 0;
  const Py_ssize_t n = PyList_GET_SIZE(o);
  if (n != a->world_size) return 1;
  a->counts = PyMem_Malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  if (!a->counts) return PyErr_NoMemory(), 0;
  for (Py_ssize_t i = 0; i < n; i++) {
    long long c = PyLong_AsLongLong(PyList_GET_ITEM(o, i));
    if (c == -1 && PyErr_Occurred()) return 0;
    a->counts[i] = c;
  }
  return 1;
}

int tpy_agmm_parse(PyObject *args, const char *fmt, tpy_agmm_args_t *a) {
  PyObject *o_in, *o_x2, *o_bias, *o_out, *o_gout, *o_counts;
  int gather_index, gather_output, comm_turn, trans_input, trans_x2;
  memset(a, 0, sizeof *a);
  if (!PyArg_ParseTuple(args, fmt, &o_in, &o_x2, &a->group, &a->world_size, &o_bias, &gather_index, &gather_output,
                        &comm_turn, &trans_input, &trans_x2, &o_out, &o_gout, &o_counts))
    return 0;
  a->multi = PyList_Check(o_x2);
  if (a->multi != PyList_Check(o_out) || (!a->multi && PyList_Check(o_bias)) || (a->multi && o_counts != Py_None))
    return PyErr_Format(PyExc_TypeError, "tpmm: x2 and output must both be lists (then bias too, and no counts)"), 0;
  Py_ssize_t nb, nout, nbias;
  if (!tpy_parse_tensor(o_in, &a->in, "input") || !parse_list(o_x2, a->x2, a->x2p, false, "x2", &nb) ||
      !parse_list(o_out, a->out, NULL, false, "output", &nout))
    return 0;
  if (nout != nb) return PyErr_Format(PyExc_TypeError, "tpmm: %zd outputs for %zd weights", nout, nb), 0;
  a->nb = nb > INT_MAX ? INT_MAX : (int)nb;
  for (int i = 0; i < TPY_MAX_NB; i++) a->outp[i] = &a->out[i];
  a->opts = (tpmm_all_gather_matmul_opts_t)TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  if (o_bias != Py_None) {
    if (!parse_list(o_bias, a->bias, a->biasp, true, "bias", &nbias)) return 0;
    if (a->multi && nbias != nb) return PyErr_Format(PyExc_TypeError, "tpmm: %zd biases for %zd weights", nbias, nb), 0;
    a->has_biases = a->multi;
    if (!a->multi) a->opts.bias = &a->bias[0];
  }
  a->has_gout = o_gout != Py_None;
  if (a->has_gout && !tpy_parse_tensor(o_gout, &a->gout, "gather_out")) return 0;
  a->uneven = o_counts != Py_None;
  if (a->uneven && !parse_counts(o_counts, a)) {
    tpy_agmm_release(a);
    return 0;
  }
  a->opts.gather_index = gather_index;
  a->opts.gather_output = gather_output != 0;
  a->opts.comm_turn = comm_turn;
  a->opts.trans_input = trans_input != 0;
  a->opts.trans_x2 = trans_x2 != 0;
  return 1;
}

void tpy_agmm_release(tpy_agmm_args_t *a) {
  PyMem_Free(a->counts);
  a->counts = NULL;
}

tpmm_status_t tpy_agmm_call(void *v) {
  tpy_agmm_args_t *a = v;
  tpmm_tensor_t *g = a->has_gout ? &a->gout : NULL;
  if (a->multi)
    return tpmm_all_gather_matmul_multi(&a->in, a->nb, a->x2p, a->has_biases ? a->biasp : NULL, a->group, a->world_size,
                                        &a->opts, a->outp, g);
  if (a->uneven)
    return tpmm_all_gather_matmul_v(&a->in, &a->x2[0], a->group, a->world_size, a->counts, &a->opts, &a->out[0], g);
  return tpmm_all_gather_matmul(&a->in, &a->x2[0], a->group, a->world_size, &a->opts, &a->out[0], g);
}

tpmm_status_t tpy_agmm_plan(void *v, tpmm_plan_t **plan) {
  tpy_agmm_args_t *a = v;
  tpmm_tensor_t *g = a->has_gout ? &a->gout : NULL;
  if (a->multi)
    return tpmm_all_gather_matmul_multi_plan_create(&a->in, a->nb, a->x2p, a->has_biases ? a->biasp : NULL, a->group,
                                                    a->world_size, &a->opts, a->outp, g, plan);
  if (a->uneven)
    return tpmm_all_gather_matmul_v_plan_create(&a->in, &a->x2[0], a->group, a->world_size, a->counts, &a->opts,
                                                &a->out[0], g, plan);
  return tpmm_all_gather_matmul_plan_create(&a->in, &a->x2[0], a->group, a->world_size, &a->opts, &a->out[0], g, plan);
}
