/*
 * _tpmm.c — the CPython extension under the `tpmm` package.
 *
 * Deliberately raw: it takes data pointers, dtype codes, shapes and row
 * strides (everything numpy/torch-specific lives in tpmm/__init__.py), calls
 * the C library and turns a failed status into tpmm.Error (a RuntimeError)
 * carrying .status (the tpmm_status_t value) and the library's message.
 *
 * The operation runs with the GIL released: it is a collective that may wait
 * for peers, and Python threads (a progress bar, a data loader) must keep
 * running meanwhile. tpmm_last_error() is per OS thread, and the call stays
 * on this thread, so reading it after re-acquiring the GIL is safe.
 *
 * Group management runs with the GIL held on purpose: the library says it
 * must not run concurrently with any other tpmm call, and holding the GIL
 * serialises it against every other call made through this module.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "tpmm.h"

static PyObject *Error; /* tpmm.Error, subclass of RuntimeError */

/* Raise tpmm.Error for status st with the calling thread's detail message. */
static PyObject *raise_status(tpmm_status_t st) {
  const char *msg = tpmm_last_error();
  if (!msg || !*msg) msg = tpmm_status_string(st);
  PyObject *exc = PyObject_CallFunction(Error, "s", msg);
  if (!exc) return NULL;
  PyObject *code = PyLong_FromLong((long)st);
  PyObject *name = PyUnicode_FromString(tpmm_status_string(st));
  PyObject *text = PyUnicode_FromString(msg);
  int ok = code && name && text && PyObject_SetAttrString(exc, "status", code) == 0 &&
           PyObject_SetAttrString(exc, "status_string", name) == 0 && PyObject_SetAttrString(exc, "message", text) == 0;
  Py_XDECREF(code);
  Py_XDECREF(name);
  Py_XDECREF(text);
  if (!ok) {
    Py_DECREF(exc);
    return NULL;
  }
  PyErr_SetObject(Error, exc);
  Py_DECREF(exc);
  return NULL;
}

static PyObject *py_init(PyObject *self, PyObject *args) {
  (void)self;
  (void)args;
  tpmm_status_t st = tpmm_init(NULL, NULL);
  if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

static PyObject *py_finalize(PyObject *self, PyObject *args) {
  (void)self;
  (void)args;
  tpmm_status_t st = tpmm_finalize();
  if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

static PyObject *py_get_rank(PyObject *self, PyObject *args) {
  (void)self;
  const char *group;
  int v = -1;
  if (!PyArg_ParseTuple(args, "s:get_rank", &group)) return NULL;
  tpmm_status_t st = tpmm_get_rank(group, &v);
  if (st != TPMM_SUCCESS) return raise_status(st);
  return PyLong_FromLong(v);
}

static PyObject *py_get_group_size(PyObject *self, PyObject *args) {
  (void)self;
  const char *group;
  int v = -1;
  if (!PyArg_ParseTuple(args, "s:get_group_size", &group)) return NULL;
  tpmm_status_t st = tpmm_get_group_size(group, &v);
  if (st != TPMM_SUCCESS) return raise_status(st);
  return PyLong_FromLong(v);
}

/* create_group(name, ranks): ranks is a sequence of ints (checked by the
 * Python layer; checked again here because this is the boundary to C). */
static PyObject *py_create_group(PyObject *self, PyObject *args) {
  (void)self;
  const char *group;
  PyObject *seq;
  if (!PyArg_ParseTuple(args, "sO:create_group", &group, &seq)) return NULL;
  PyObject *fast = PySequence_Fast(seq, "create_group: rank_ids must be a sequence of int");
  if (!fast) return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  if (n > INT_MAX) {
    Py_DECREF(fast);
    return PyErr_Format(PyExc_ValueError, "create_group: %zd ranks is too many", n);
  }
  int *ranks = PyMem_Malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
  if (!ranks) {
    Py_DECREF(fast);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    long r = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
    if (r == -1 && PyErr_Occurred()) {
      PyMem_Free(ranks);
      Py_DECREF(fast);
      return NULL;
    }
    /* out of int range: pass -1, which the library reports as out of range */
    ranks[i] = (r < INT_MIN || r > INT_MAX) ? -1 : (int)r;
  }
  Py_DECREF(fast);
  tpmm_status_t st = tpmm_create_group(group, (int)n, ranks);
  PyMem_Free(ranks);
  if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

static PyObject *py_destroy_group(PyObject *self, PyObject *args) {
  (void)self;
  const char *group;
  if (!PyArg_ParseTuple(args, "s:destroy_group", &group)) return NULL;
  tpmm_status_t st = tpmm_destroy_group(group);
  if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

/* A tensor from the Python layer: (data_ptr, dtype, ndim, shape0, shape1, ld). */
static int parse_tensor(PyObject *o, tpmm_tensor_t *t, const char *name) {
  unsigned long long ptr;
  int dtype, ndim;
  long long s0, s1, ld;
  if (!PyTuple_Check(o)) {
    PyErr_Format(PyExc_TypeError, "all_gather_matmul: %s must be a (ptr, dtype, ndim, s0, s1, ld) tuple", name);
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

/* all_gather_matmul(input, x2, group, world_size, bias, gather_index,
 *                   gather_output, comm_turn, trans_input, trans_x2,
 *                   output, gather_out)
 * Tensors are tuples (see parse_tensor); bias and gather_out may be None. */
static PyObject *py_all_gather_matmul(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *o_in, *o_x2, *o_bias, *o_out, *o_gout;
  const char *group;
  int world_size, gather_index, gather_output, comm_turn, trans_input, trans_x2;
  if (!PyArg_ParseTuple(args, "OOsiOipippOO:all_gather_matmul", &o_in, &o_x2, &group, &world_size, &o_bias,
                        &gather_index, &gather_output, &comm_turn, &trans_input, &trans_x2, &o_out, &o_gout))
    return NULL;
  tpmm_tensor_t in, x2, bias, out, gout;
  if (!parse_tensor(o_in, &in, "input") || !parse_tensor(o_x2, &x2, "x2") || !parse_tensor(o_out, &out, "output"))
    return NULL;
  tpmm_all_gather_matmul_opts_t opts = TPMM_ALL_GATHER_MATMUL_OPTS_INIT;
  if (o_bias != Py_None) {
    if (!parse_tensor(o_bias, &bias, "bias")) return NULL;
    opts.bias = &bias;
  }
  tpmm_tensor_t *gp = NULL;
  if (o_gout != Py_None) {
    if (!parse_tensor(o_gout, &gout, "gather_out")) return NULL;
    gp = &gout;
  }
  opts.gather_index = gather_index;
  opts.gather_output = gather_output != 0;
  opts.comm_turn = comm_turn;
  opts.trans_input = trans_input != 0;
  opts.trans_x2 = trans_x2 != 0;

  tpmm_status_t st;
  Py_BEGIN_ALLOW_THREADS st = tpmm_all_gather_matmul(&in, &x2, group, world_size, &opts, &out, gp);
  Py_END_ALLOW_THREADS if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

static PyObject *py_set_param(PyObject *self, PyObject *args) {
  (void)self;
  int p;
  long long v;
  if (!PyArg_ParseTuple(args, "iL:set_param", &p, &v)) return NULL;
  tpmm_status_t st = tpmm_set_param((tpmm_param_t)p, (int64_t)v);
  if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

static PyObject *py_get_param(PyObject *self, PyObject *args) {
  (void)self;
  int p;
  int64_t v = 0;
  if (!PyArg_ParseTuple(args, "i:get_param", &p)) return NULL;
  tpmm_status_t st = tpmm_get_param((tpmm_param_t)p, &v);
  if (st != TPMM_SUCCESS) return raise_status(st);
  return PyLong_FromLongLong((long long)v);
}

static PyObject *py_version(PyObject *self, PyObject *args) {
  (void)self;
  (void)args;
  return PyUnicode_FromString(tpmm_version());
}

static PyObject *py_status_string(PyObject *self, PyObject *args) {
  (void)self;
  int s;
  if (!PyArg_ParseTuple(args, "i:status_string", &s)) return NULL;
  return PyUnicode_FromString(tpmm_status_string((tpmm_status_t)s));
}

static PyMethodDef methods[] = {
    {"init", py_init, METH_NOARGS, "tpmm_init(NULL, NULL). Collective over the world."},
    {"finalize", py_finalize, METH_NOARGS, "tpmm_finalize(). Collective over the world."},
    {"get_rank", py_get_rank, METH_VARARGS, "get_rank(group) -> int"},
    {"get_group_size", py_get_group_size, METH_VARARGS, "get_group_size(group) -> int"},
    {"create_group", py_create_group, METH_VARARGS, "create_group(name, ranks). Collective over ranks."},
    {"destroy_group", py_destroy_group, METH_VARARGS, "destroy_group(name). Collective over the group."},
    {"all_gather_matmul", py_all_gather_matmul, METH_VARARGS,
     "all_gather_matmul(input, x2, group, world_size, bias, gather_index, gather_output, comm_turn, "
     "trans_input, trans_x2, output, gather_out); tensors are (ptr, dtype, ndim, s0, s1, ld) tuples. "
     "Releases the GIL while the operation runs."},
    {"set_param", py_set_param, METH_VARARGS, "set_param(param, value)"},
    {"get_param", py_get_param, METH_VARARGS, "get_param(param) -> int"},
    {"version", py_version, METH_NOARGS, "version of the linked library"},
    {"status_string", py_status_string, METH_VARARGS, "status_string(status) -> str"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT,
                                    "_tpmm",
                                    "Raw binding of libtpmm (use the tpmm package).",
                                    -1,
                                    methods,
                                    NULL,
                                    NULL,
                                    NULL,
                                    NULL};

PyMODINIT_FUNC PyInit__tpmm(void) {
  PyObject *m = PyModule_Create(&module);
  if (!m) return NULL;
  Error = PyErr_NewExceptionWithDoc("tpmm.Error",
                                    "A tpmm call failed. .status is the C tpmm_status_t value, .status_string its "
                                    "short name, str(e) the library's message.",
                                    PyExc_RuntimeError, NULL);
  if (!Error || PyModule_AddObjectRef(m, "Error", Error) < 0) {
    Py_XDECREF(Error);
    Py_DECREF(m);
    return NULL;
  }
  static const struct {
    const char *name;
    long value;
  } consts[] = {
      {"FLOAT16", TPMM_FLOAT16},
      {"BFLOAT16", TPMM_BFLOAT16},
      {"FLOAT32", TPMM_FLOAT32},
      {"SUCCESS", TPMM_SUCCESS},
      {"ERR_INVALID_ARGUMENT", TPMM_ERR_INVALID_ARGUMENT},
      {"ERR_DTYPE", TPMM_ERR_DTYPE},
      {"ERR_SHAPE", TPMM_ERR_SHAPE},
      {"ERR_UNSUPPORTED", TPMM_ERR_UNSUPPORTED},
      {"ERR_GROUP", TPMM_ERR_GROUP},
      {"ERR_WORLD_SIZE", TPMM_ERR_WORLD_SIZE},
      {"ERR_MISMATCH", TPMM_ERR_MISMATCH},
      {"ERR_NOT_INITIALIZED", TPMM_ERR_NOT_INITIALIZED},
      {"ERR_COMM", TPMM_ERR_COMM},
      {"ERR_NO_MEMORY", TPMM_ERR_NO_MEMORY},
      {"ERR_TIMEOUT", TPMM_ERR_TIMEOUT},
      {"ERR_INTERNAL", TPMM_ERR_INTERNAL},
      {"PARAM_ALGO", TPMM_PARAM_ALGO},
      {"PARAM_NUM_THREADS", TPMM_PARAM_NUM_THREADS},
      {"PARAM_TIMEOUT_MS", TPMM_PARAM_TIMEOUT_MS},
      {"PARAM_PROGRESS_THREAD", TPMM_PARAM_PROGRESS_THREAD},
      {"PARAM_SEND_WINDOW", TPMM_PARAM_SEND_WINDOW},
      {"PARAM_SEGMENT_BYTES", TPMM_PARAM_SEGMENT_BYTES},
      {"PARAM_PROGRESS_NAP_US", TPMM_PARAM_PROGRESS_NAP_US},
  };
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
    if (PyModule_AddIntConstant(m, consts[i].name, consts[i].value) < 0) {
      Py_DECREF(m);
      return NULL;
    }
  if (PyModule_AddStringConstant(m, "WORLD_COMM_GROUP", TPMM_WORLD_COMM_GROUP) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
