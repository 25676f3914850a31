/*
 * _tpmm.c — the CPython extension under the `tpmm` package.
 *
 * Deliberately raw: it takes data pointers (or numpy arrays, through the
 * buffer protocol), dtype codes, shapes and row strides (everything
 * numpy/torch-specific lives in the tpmm package), calls the C library and
 * turns a failed status into tpmm.Error (a RuntimeError) carrying .status
 * (the tpmm_status_t value) and the library's message.
 *
 * Operations (one-shot calls, plan creation and execution) run with the GIL
 * released: they are collectives that may wait for peers, and Python threads
 * must keep running meanwhile. tpmm_last_error() is per OS thread, and the
 * call stays on this thread, so reading it after re-acquiring the GIL is safe.
 *
 * Because the GIL is released, another thread could destroy the group (or
 * finalize tpmm) under a running operation. Each operation therefore records
 * itself in a list of operations in flight (ops_enter/ops_leave, with the GIL
 * held); destroy_group waits until no operation of that group is in flight,
 * finalize until none is, a plan's close until none of its executions is.
 * Group management itself runs with the GIL held, so no operation can start
 * while it runs. Plans live in a registry: destroy_group and finalize destroy
 * the plans of what they remove first (the C library requires it) and leave
 * the Python objects closed, so that a later call raises tpmm.Error.
 */
#include "_tpmm.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static PyObject *Error; /* tpmm.Error, subclass of RuntimeError */

/* ---- errors -------------------------------------------------------------- */

/* Raise tpmm.Error(text) with .status, .status_string and .message. Steals
 * the reference to text. */
static PyObject *raise_text(tpmm_status_t st, PyObject *text) {
  if (!text) return NULL;
  PyObject *exc = PyObject_CallOneArg(Error, text);
  PyObject *code = PyLong_FromLong((long)st);
  PyObject *name = PyUnicode_FromString(tpmm_status_string(st));
  int ok = exc && code && name && PyObject_SetAttrString(exc, "status", code) == 0 &&
           PyObject_SetAttrString(exc, "status_string", name) == 0 && PyObject_SetAttrString(exc, "message", text) == 0;
  if (ok) PyErr_SetObject(Error, exc);
  Py_XDECREF(exc);
  Py_XDECREF(code);
  Py_XDECREF(name);
  Py_DECREF(text);
  return NULL;
}

/* Raise tpmm.Error for status st with the calling thread's detail message.
 * The library cuts messages at a fixed size (and quotes at most
 * TPMM_GROUP_NAME_MAX bytes of a name), which can split a UTF-8 character:
 * decode with replacement, so the error is always a tpmm.Error. */
static PyObject *raise_status(tpmm_status_t st) {
  const char *msg = tpmm_last_error();
  if (!msg || !*msg) msg = tpmm_status_string(st);
  return raise_text(st, PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace"));
}

/* ---- operations in flight ------------------------------------------------ */

/* One entry per operation inside the C library, on its caller's stack. The
 * list changes only with the GIL held (and ops_mu, for the waiters that sleep
 * without the GIL). */
typedef struct op {
  const char *group; /* the group it runs on                */
  const void *owner; /* the plan it executes, or NULL       */
  struct op *next;
} op_t;

static op_t *ops;
static pthread_mutex_t ops_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ops_cv = PTHREAD_COND_INITIALIZER;

static void ops_enter(op_t *o, const char *group, const void *owner) {
  o->group = group;
  o->owner = owner;
  pthread_mutex_lock(&ops_mu);
  o->next = ops;
  ops = o;
  pthread_mutex_unlock(&ops_mu);
}

static void ops_leave(op_t *o) {
  pthread_mutex_lock(&ops_mu);
  for (op_t **p = &ops; *p; p = &(*p)->next)
    if (*p == o) {
      *p = o->next;
      break;
    }
  pthread_cond_broadcast(&ops_cv);
  pthread_mutex_unlock(&ops_mu);
}

/* Is an operation of group (NULL: any) / of owner (NULL: any) in flight?
 * Call with ops_mu held. */
static bool ops_busy_locked(const char *group, const void *owner) {
  for (const op_t *o = ops; o; o = o->next)
    if ((!group || strcmp(o->group, group) == 0) && (!owner || o->owner == owner)) return true;
  return false;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Wait, GIL held on entry and return, until no matching operation is in
 * flight: 0. The GIL is released while waiting, and not given up between
 * the last check and the return, so no operation can start before the
 * caller acts. 1: still busy after timeout_s (< 0: no limit). -1: a signal
 * handler raised (Ctrl-C), with the exception set. */
static int ops_wait_idle(const char *group, const void *owner, double timeout_s) {
  const double end = now_s() + timeout_s;
  for (;;) {
    pthread_mutex_lock(&ops_mu);
    bool busy = ops_busy_locked(group, owner);
    pthread_mutex_unlock(&ops_mu);
    if (!busy) return 0;
    if (timeout_s >= 0 && now_s() >= end) return 1;
    Py_BEGIN_ALLOW_THREADS;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000; /* wake up now and then for signals */
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&ops_mu);
    if (ops_busy_locked(group, owner)) pthread_cond_timedwait(&ops_cv, &ops_mu, &ts);
    pthread_mutex_unlock(&ops_mu);
    Py_END_ALLOW_THREADS;
    if (PyErr_CheckSignals() < 0) return -1;
  }
}

static PyObject *py_ops_running(PyObject *self, PyObject *args) {
  (void)self;
  (void)args;
  long n = 0;
  pthread_mutex_lock(&ops_mu);
  for (const op_t *o = ops; o; o = o->next) n++;
  pthread_mutex_unlock(&ops_mu);
  return PyLong_FromLong(n);
}

/* ---- plans: the object and its registry ---------------------------------- */

typedef struct PlanObject {
  PyObject_HEAD tpmm_plan_t *plan;     /* NULL once closed                        */
  tpmm_tensor_t out[TPY_MAX_NB], gout; /* layouts fixed at creation; data per call */
  tpmm_tensor_t in;                    /* the input's layout, for a failing call    */
  int nb;                              /* outputs: weights of a multi plan, else 1  */
  bool multi;                          /* run by tpmm_plan_execute_multi            */
  bool gather;                         /* the plan writes gather_out                */
  tpmm_status_t closed_status;         /* why it is closed (see close_plan)         */
  char group[TPMM_GROUP_NAME_MAX + 1];
  struct PlanObject *prev, *next; /* the registry of open plans                */
} PlanObject;

static PlanObject *plans; /* open plans; changed only with the GIL held */

static void registry_add(PlanObject *p) {
  p->prev = NULL;
  p->next = plans;
  if (plans) plans->prev = p;
  plans = p;
}

static void registry_remove(PlanObject *p) {
  if (p->prev) p->prev->next = p->next;
  if (p->next) p->next->prev = p->prev;
  if (plans == p) plans = p->next;
  p->prev = p->next = NULL;
}

/* Destroy the C plan (local) and remember why: INVALID_ARGUMENT for close(),
 * GROUP when its group went, NOT_INITIALIZED at finalize. */
static void close_plan(PlanObject *p, tpmm_status_t why) {
  if (!p->plan) return;
  registry_remove(p);
  tpmm_plan_destroy(p->plan);
  p->plan = NULL;
  p->closed_status = why;
}

/* Close the open plans of group (NULL: all). */
static void close_plans_of(const char *group, tpmm_status_t why) {
  PlanObject *p = plans;
  while (p) {
    PlanObject *next = p->next;
    if (!group || strcmp(p->group, group) == 0) close_plan(p, why);
    p = next;
  }
}

static PyObject *raise_closed(const PlanObject *p) {
  switch (p->closed_status) {
    case TPMM_ERR_GROUP:
      return raise_text(TPMM_ERR_GROUP, PyUnicode_FromFormat("tpmm plan: its group \"%s\" was destroyed, which closed "
                                                             "the plan",
                                                             p->group));
    case TPMM_ERR_NOT_INITIALIZED:
      return raise_text(TPMM_ERR_NOT_INITIALIZED,
                        PyUnicode_FromString("tpmm plan: tpmm was finalized, which closed the plan"));
    default: return raise_text(TPMM_ERR_INVALID_ARGUMENT, PyUnicode_FromString("tpmm plan: the plan is closed"));
  }
}

/* ---- library and groups -------------------------------------------------- */

static PyObject *py_init(PyObject *self, PyObject *args) {
  (void)self;
  (void)args;
  tpmm_status_t st = tpmm_init(NULL, NULL);
  if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

/* finalize(wait_s): wait up to wait_s seconds (< 0: as long as it takes) for
 * the operations running in other threads, close every plan, finalize. */
static PyObject *py_finalize(PyObject *self, PyObject *args) {
  (void)self;
  double wait_s = -1.0;
  if (!PyArg_ParseTuple(args, "|d:finalize", &wait_s)) return NULL;
  int w = ops_wait_idle(NULL, NULL, wait_s);
  if (w < 0) return NULL;
  if (w > 0)
    return raise_text(TPMM_ERR_TIMEOUT, PyUnicode_FromFormat("tpmm_finalize: operations still running in other "
                                                             "threads after %d s; not finalized",
                                                             (int)wait_s));
  close_plans_of(NULL, TPMM_ERR_NOT_INITIALIZED);
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

/* destroy_group(name): waits for the group's operations in other threads,
 * closes the group's plans, destroys it. */
static PyObject *py_destroy_group(PyObject *self, PyObject *args) {
  (void)self;
  const char *group;
  int size;
  if (!PyArg_ParseTuple(args, "s:destroy_group", &group)) return NULL;
  if (ops_wait_idle(group, NULL, -1.0) < 0) return NULL;
  /* only a group the library would destroy takes its plans along */
  if (strcmp(group, TPMM_WORLD_COMM_GROUP) != 0 && tpmm_get_group_size(group, &size) == TPMM_SUCCESS)
    close_plans_of(group, TPMM_ERR_GROUP);
  tpmm_status_t st = tpmm_destroy_group(group);
  if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

/* ---- tensors -------------------------------------------------------------- */

/* The arguments of matmul_reduce_scatter / matmul_all_reduce and of their
 * plans, parsed from (input, x2, group, world_size, bias, reduce_op,
 * comm_turn, trans_input, trans_x2, output); bias may be None. reduce_op is
 * the tpmm_reduce_op_t value, or -1 for a name the Python layer does not
 * know: the library rejects it on every rank (see tpmm._reduce_op). */
typedef struct {
  tpmm_tensor_t in, x2, bias, out;
  const char *group;
  int world_size;
  tpmm_matmul_reduce_opts_t opts;
} mmr_args_t;

static int parse_mmr(PyObject *args, const char *fmt, mmr_args_t *a) {
  PyObject *o_in, *o_x2, *o_bias, *o_out;
  int reduce_op, comm_turn, trans_input, trans_x2;
  if (!PyArg_ParseTuple(args, fmt, &o_in, &o_x2, &a->group, &a->world_size, &o_bias, &reduce_op, &comm_turn,
                        &trans_input, &trans_x2, &o_out))
    return 0;
  if (!tpy_parse_tensor(o_in, &a->in, "input") || !tpy_parse_tensor(o_x2, &a->x2, "x2") ||
      !tpy_parse_tensor(o_out, &a->out, "output"))
    return 0;
  a->opts = (tpmm_matmul_reduce_opts_t)TPMM_MATMUL_REDUCE_OPTS_INIT;
  if (o_bias != Py_None) {
    if (!tpy_parse_tensor(o_bias, &a->bias, "bias")) return 0;
    a->opts.bias = &a->bias;
  }
  a->opts.reduce_op = (tpmm_reduce_op_t)reduce_op;
  a->opts.comm_turn = comm_turn;
  a->opts.trans_input = trans_input != 0;
  a->opts.trans_x2 = trans_x2 != 0;
  return 1;
}

/* One operator's C entries, behind one signature each, so that one-shot
 * calls and plan creation are written once for every operator. */
typedef tpmm_status_t (*call_fn)(void *args);
typedef tpmm_status_t (*plan_fn)(void *args, tpmm_plan_t **plan);

static tpmm_status_t rs_call(void *v) {
  mmr_args_t *a = v;
  return tpmm_matmul_reduce_scatter(&a->in, &a->x2, a->group, a->world_size, &a->opts, &a->out);
}

static tpmm_status_t rs_plan(void *v, tpmm_plan_t **plan) {
  mmr_args_t *a = v;
  return tpmm_matmul_reduce_scatter_plan_create(&a->in, &a->x2, a->group, a->world_size, &a->opts, &a->out, plan);
}

static tpmm_status_t ar_call(void *v) {
  mmr_args_t *a = v;
  return tpmm_matmul_all_reduce(&a->in, &a->x2, a->group, a->world_size, &a->opts, &a->out);
}

static tpmm_status_t ar_plan(void *v, tpmm_plan_t **plan) {
  mmr_args_t *a = v;
  return tpmm_matmul_all_reduce_plan_create(&a->in, &a->x2, a->group, a->world_size, &a->opts, &a->out, plan);
}

/* Run one operation on group, recorded in flight, GIL released. */
static PyObject *run_call(const char *group, call_fn fn, void *args) {
  op_t op;
  tpmm_status_t st;
  ops_enter(&op, group, NULL);
  Py_BEGIN_ALLOW_THREADS;
  st = fn(args);
  Py_END_ALLOW_THREADS;
  ops_leave(&op);
  if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

/* all_gather_matmul(...): see tpy_agmm_parse. */
static PyObject *py_all_gather_matmul(PyObject *self, PyObject *args) {
  (void)self;
  tpy_agmm_args_t a;
  if (!tpy_agmm_parse(args, "OOsiOipippOOO:all_gather_matmul", &a)) return NULL;
  PyObject *r = run_call(a.group, tpy_agmm_call, &a);
  tpy_agmm_release(&a);
  return r;
}

/* matmul_reduce_scatter(...), matmul_all_reduce(...): see parse_mmr. */
static PyObject *py_matmul_reduce_scatter(PyObject *self, PyObject *args) {
  (void)self;
  mmr_args_t a;
  if (!parse_mmr(args, "OOsiOiippO:matmul_reduce_scatter", &a)) return NULL;
  return run_call(a.group, rs_call, &a);
}

static PyObject *py_matmul_all_reduce(PyObject *self, PyObject *args) {
  (void)self;
  mmr_args_t a;
  if (!parse_mmr(args, "OOsiOiippO:matmul_all_reduce", &a)) return NULL;
  return run_call(a.group, ar_call, &a);
}

/* ---- plans ---------------------------------------------------------------- */

static PyTypeObject PlanType;

/* Create a plan through fn(args) and wrap it: in, out (multi weights of a
 * multi plan, else 0 for one) and gout (NULL when the operator writes none)
 * give the layouts later executions reuse. */
static PyObject *make_plan(const char *group, const tpmm_tensor_t *in, int multi, const tpmm_tensor_t *out,
                           const tpmm_tensor_t *gout, plan_fn fn, void *args) {
  PlanObject *p = PyObject_New(PlanObject, &PlanType);
  if (!p) return NULL;
  p->plan = NULL;
  p->prev = p->next = NULL;
  p->closed_status = TPMM_ERR_INVALID_ARGUMENT;
  snprintf(p->group, sizeof p->group, "%s", group);
  p->multi = multi > 0;
  p->nb = multi > 0 ? (multi < TPY_MAX_NB ? multi : TPY_MAX_NB) : 1;
  p->in = *in;
  memcpy(p->out, out, sizeof *out * (size_t)p->nb);
  p->gather = gout != NULL;
  memset(&p->gout, 0, sizeof p->gout);
  if (gout) p->gout = *gout;
  p->in.data = p->gout.data = NULL;
  for (int i = 0; i < p->nb; i++) p->out[i].data = NULL;

  op_t op;
  tpmm_status_t st;
  tpmm_plan_t *plan = NULL;
  ops_enter(&op, p->group, NULL);
  Py_BEGIN_ALLOW_THREADS;
  st = fn(args, &plan);
  Py_END_ALLOW_THREADS;
  if (st == TPMM_SUCCESS) {
    p->plan = plan;
    registry_add(p); /* before ops_leave: a waiting destroy_group must see it */
  }
  ops_leave(&op);
  if (st != TPMM_SUCCESS) {
    Py_DECREF(p);
    return raise_status(st);
  }
  return (PyObject *)p;
}

/* plan_all_gather_matmul(...): arguments as all_gather_matmul (data
 * pointers of input, output and gather_out may be 0); returns a Plan. */
static PyObject *py_plan_all_gather_matmul(PyObject *self, PyObject *args) {
  (void)self;
  tpy_agmm_args_t a;
  if (!tpy_agmm_parse(args, "OOsiOipippOOO:plan_all_gather_matmul", &a)) return NULL;
  /* the plan writes gather_out only when asked; a (0,) descriptor otherwise */
  PyObject *p = make_plan(a.group, &a.in, a.multi ? a.nb : 0, a.out,
                          a.opts.gather_output && a.has_gout ? &a.gout : NULL, tpy_agmm_plan, &a);
  tpy_agmm_release(&a);
  return p;
}

/* plan_matmul_reduce_scatter(...), plan_matmul_all_reduce(...): arguments
 * as the one-shot calls (data pointers of input and output may be 0). */
static PyObject *py_plan_matmul_reduce_scatter(PyObject *self, PyObject *args) {
  (void)self;
  mmr_args_t a;
  if (!parse_mmr(args, "OOsiOiippO:plan_matmul_reduce_scatter", &a)) return NULL;
  return make_plan(a.group, &a.in, 0, &a.out, NULL, rs_plan, &a);
}

static PyObject *py_plan_matmul_all_reduce(PyObject *self, PyObject *args) {
  (void)self;
  mmr_args_t a;
  if (!parse_mmr(args, "OOsiOiippO:plan_matmul_all_reduce", &a)) return NULL;
  return make_plan(a.group, &a.in, 0, &a.out, NULL, ar_plan, &a);
}

/* Data pointer of an argument: an int, None (NULL) or an object with the
 * buffer protocol (a numpy array: contiguous; writable for outputs). */
static int get_data(PyObject *o, bool writable, Py_buffer *view, bool *held, void **data) {
  *held = false;
  if (PyLong_Check(o)) {
    *data = PyLong_AsVoidPtr(o);
    return !(*data == NULL && PyErr_Occurred());
  }
  if (o == Py_None) {
    *data = NULL;
    return 1;
  }
  if (PyObject_GetBuffer(o, view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) return 0;
  *held = true;
  *data = view->buf;
  return 1;
}

static int as_i64(PyObject *o, int64_t *v) {
  long long x = PyLong_AsLongLong(o);
  if (x == -1 && PyErr_Occurred()) return 0;
  *v = (int64_t)x;
  return 1;
}

/* The arguments of one execute, parsed from (input, dtype, ndim, s0, s1, ld,
 * output, ...[, gather_out]) with one output per weight; input, outputs and
 * gather_out as get_data. */
typedef struct {
  tpmm_tensor_t in, out[TPY_MAX_NB], gout;
  tpmm_tensor_t *outp[TPY_MAX_NB];
  Py_buffer views[TPY_MAX_NB + 2];
  bool held[TPY_MAX_NB + 2];
} exec_args_t;

static void exec_release(exec_args_t *e) {
  for (int i = 0; i < TPY_MAX_NB + 2; i++)
    if (e->held[i]) PyBuffer_Release(&e->views[i]);
}

/* The plan's layouts, without data. */
static void exec_init(PlanObject *self, exec_args_t *e) {
  memset(e->held, 0, sizeof e->held);
  e->in = self->in;
  for (int i = 0; i < self->nb; i++) e->out[i] = self->out[i], e->outp[i] = &e->out[i];
  e->gout = self->gout;
}

static int exec_parse(PlanObject *self, PyObject *const *args, Py_ssize_t nargs, exec_args_t *e) {
  exec_init(self, e);
  const Py_ssize_t nb = self->nb;
  if (nargs != 6 + nb && nargs != 7 + nb) {
    PyErr_Format(PyExc_TypeError, "Plan.execute takes %zd or %zd arguments, got %zd", 6 + nb, 7 + nb, nargs);
    return 0;
  }
  int64_t dt, nd;
  if (!as_i64(args[1], &dt) || !as_i64(args[2], &nd) || !as_i64(args[3], &e->in.shape[0]) ||
      !as_i64(args[4], &e->in.shape[1]) || !as_i64(args[5], &e->in.ld))
    return 0;
  e->in.dtype = (tpmm_dtype_t)(dt < 0 || dt > INT_MAX ? 0 : dt);
  e->in.ndim = nd < 0 || nd > INT_MAX ? -1 : (int)nd;
  int ok = get_data(args[0], false, &e->views[0], &e->held[0], &e->in.data) &&
           get_data(nargs > 6 + nb ? args[6 + nb] : Py_None, true, &e->views[1], &e->held[1], &e->gout.data);
  for (Py_ssize_t i = 0; ok && i < nb; i++)
    ok = get_data(args[6 + i], true, &e->views[2 + i], &e->held[2 + i], &e->out[i].data);
  if (!ok) exec_release(e);
  return ok;
}

/* The plan's C execute on e. */
static tpmm_status_t exec_c(PlanObject *self, tpmm_plan_t *plan, exec_args_t *e) {
  tpmm_tensor_t *g = self->gather ? &e->gout : NULL;
  return self->multi ? tpmm_plan_execute_multi(plan, &e->in, e->outp, g)
                     : tpmm_plan_execute(plan, &e->in, e->outp[0], g);
}

/* Execute on the arguments, GIL released; the status. */
static tpmm_status_t exec_run(PlanObject *self, exec_args_t *e) {
  op_t op;
  tpmm_status_t st;
  tpmm_plan_t *plan = self->plan;
  ops_enter(&op, self->group, self);
  Py_BEGIN_ALLOW_THREADS;
  st = exec_c(self, plan, e);
  Py_END_ALLOW_THREADS;
  ops_leave(&op);
  return st;
}

/* Local refusals, before the collective: the plan is closed (closing is
 * local), or another thread is executing it. */
static int exec_refused(PlanObject *self) {
  if (!self->plan) {
    raise_closed(self);
    return 1;
  }
  pthread_mutex_lock(&ops_mu);
  bool busy = ops_busy_locked(NULL, self);
  pthread_mutex_unlock(&ops_mu);
  if (busy) {
    raise_text(TPMM_ERR_INVALID_ARGUMENT,
               PyUnicode_FromString("tpmm plan: another thread is executing this plan (executions of one plan, "
                                    "like operations on one group, must not overlap)"));
    return 1;
  }
  return 0;
}

/* Take part in the execution as a failing rank: this rank's input has no
 * data (or, when it has no elements, no valid dtype), so the library rejects
 * it and its agreement gives every rank an error naming this rank. */
static void exec_as_failing(PlanObject *self) {
  exec_args_t e;
  exec_init(self, &e);
  if (e.in.shape[0] == 0 || e.in.shape[1] == 0) e.in.dtype = (tpmm_dtype_t)0;
  (void)exec_run(self, &e);
}

/* Plan.execute(input, dtype, ndim, s0, s1, ld, output, ...[, gather_out]): one
 * collective execution. Arguments that cannot be read still lead to a
 * (failing) collective call before the exception is raised. */
static PyObject *plan_execute(PlanObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (exec_refused(self)) return NULL;
  exec_args_t e;
  if (!exec_parse(self, args, nargs, &e)) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    exec_as_failing(self);
    PyErr_Restore(type, value, tb);
    return NULL;
  }
  tpmm_status_t st = exec_run(self, &e);
  exec_release(&e);
  if (st != TPMM_SUCCESS) return raise_status(st);
  Py_RETURN_NONE;
}

/* Plan.fail(): take part in an execution as a failing rank (the Python layer
 * could not prepare this rank's call); returns the error the library gave
 * this rank. Raises tpmm.Error if the plan is closed. */
static PyObject *plan_fail(PlanObject *self, PyObject *unused) {
  (void)unused;
  if (exec_refused(self)) return NULL;
  exec_as_failing(self);
  Py_RETURN_NONE;
}

/* Plan.bench(n, <execute's arguments>): n executions back to back with the
 * GIL released once, no Python in between; the list of their durations in
 * seconds. For bench/py_overhead.py (the binding's cost is a Python call
 * minus this). */
static PyObject *plan_bench(PlanObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs < 1) return PyErr_Format(PyExc_TypeError, "Plan.bench(n, ...) takes n first");
  Py_ssize_t n = PyLong_AsSsize_t(args[0]);
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n < 0) return PyErr_Format(PyExc_ValueError, "Plan.bench: n=%zd is negative", n);
  if (exec_refused(self)) return NULL;
  double *t = PyMem_Malloc(sizeof(double) * (size_t)(n + 1));
  if (!t) return PyErr_NoMemory();
  exec_args_t e;
  if (!exec_parse(self, args + 1, nargs - 1, &e)) {
    PyMem_Free(t);
    return NULL;
  }
  op_t op;
  tpmm_status_t st = TPMM_SUCCESS;
  tpmm_plan_t *plan = self->plan;
  ops_enter(&op, self->group, self);
  Py_BEGIN_ALLOW_THREADS;
  t[0] = now_s();
  for (Py_ssize_t i = 0; i < n && st == TPMM_SUCCESS; i++) {
    st = exec_c(self, plan, &e);
    t[i + 1] = now_s();
  }
  Py_END_ALLOW_THREADS;
  ops_leave(&op);
  exec_release(&e);
  PyObject *list = st == TPMM_SUCCESS ? PyList_New(n) : NULL;
  for (Py_ssize_t i = 0; list && i < n; i++) {
    PyObject *d = PyFloat_FromDouble(t[i + 1] - t[i]);
    if (!d)
      Py_CLEAR(list);
    else
      PyList_SET_ITEM(list, i, d);
  }
  PyMem_Free(t);
  if (st != TPMM_SUCCESS) return raise_status(st);
  return list;
}

/* Plan.close(): destroy the C plan (local); waits for executions of it in
 * other threads. Idempotent. */
static PyObject *plan_close(PlanObject *self, PyObject *unused) {
  (void)unused;
  if (!self->plan) Py_RETURN_NONE;
  if (ops_wait_idle(NULL, self, -1.0) < 0) return NULL;
  close_plan(self, TPMM_ERR_INVALID_ARGUMENT);
  Py_RETURN_NONE;
}

static PyObject *plan_get_closed(PlanObject *self, void *unused) {
  (void)unused;
  return PyBool_FromLong(self->plan == NULL);
}

static PyObject *plan_get_group(PlanObject *self, void *unused) {
  (void)unused;
  return PyUnicode_DecodeUTF8(self->group, (Py_ssize_t)strlen(self->group), "replace");
}

static void plan_dealloc(PlanObject *self) {
  /* no execution can be running: each holds a reference */
  close_plan(self, TPMM_ERR_INVALID_ARGUMENT);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef plan_methods[] = {
    {"execute", (PyCFunction)(void (*)(void))plan_execute, METH_FASTCALL,
     "execute(input, dtype, ndim, s0, s1, ld, output, ...[, gather_out]) with one output per weight: input, outputs "
     "and gather_out are data pointers (int) or contiguous buffers (numpy arrays). Collective; releases the GIL."},
    {"fail", (PyCFunction)plan_fail, METH_NOARGS,
     "Take part in an execution as a failing rank (this rank could not prepare its call). Collective."},
    {"bench", (PyCFunction)(void (*)(void))plan_bench, METH_FASTCALL,
     "bench(n, <execute's arguments>) -> durations (s) of n executions back to back in C. Collective."},
    {"close", (PyCFunction)plan_close, METH_NOARGS, "Destroy the C plan. Local; idempotent."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef plan_getset[] = {{"closed", (getter)plan_get_closed, NULL, "True once closed", NULL},
                                    {"group", (getter)plan_get_group, NULL, "the plan's group", NULL},
                                    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tpmm._tpmm.Plan",
    .tp_basicsize = sizeof(PlanObject),
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A C tpmm_plan_t (made by the plan_* functions; use tpmm.Plan).",
    .tp_methods = plan_methods,
    .tp_getset = plan_getset,
};

/* ---- tunables and diagnostics --------------------------------------------- */

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
    {"finalize", py_finalize, METH_VARARGS,
     "finalize(wait_s=-1): wait up to wait_s s (< 0: no limit) for operations in other threads, close every plan, "
     "tpmm_finalize(). Collective over the world."},
    {"get_rank", py_get_rank, METH_VARARGS, "get_rank(group) -> int"},
    {"get_group_size", py_get_group_size, METH_VARARGS, "get_group_size(group) -> int"},
    {"create_group", py_create_group, METH_VARARGS, "create_group(name, ranks). Collective over ranks."},
    {"destroy_group", py_destroy_group, METH_VARARGS,
     "destroy_group(name): waits for the group's operations in other threads, closes its plans. Collective over the "
     "group."},
    {"all_gather_matmul", py_all_gather_matmul, METH_VARARGS,
     "all_gather_matmul(input, x2, group, world_size, bias, gather_index, gather_output, comm_turn, "
     "trans_input, trans_x2, output, gather_out, counts); tensors are (ptr, dtype, ndim, s0, s1, ld) tuples; x2, "
     "bias and output may be lists (several weights), counts None or a list of int (uneven shards). "
     "Releases the GIL while the operation runs."},
    {"plan_all_gather_matmul", py_plan_all_gather_matmul, METH_VARARGS,
     "plan_all_gather_matmul(<all_gather_matmul's arguments>) -> Plan; input/output/gather_out pointers may be 0. "
     "Collective; releases the GIL."},
    {"matmul_reduce_scatter", py_matmul_reduce_scatter, METH_VARARGS,
     "matmul_reduce_scatter(input, x2, group, world_size, bias, reduce_op, comm_turn, trans_input, trans_x2, "
     "output); tensors are (ptr, dtype, ndim, s0, s1, ld) tuples, reduce_op a tpmm_reduce_op_t (-1: unknown name). "
     "Releases the GIL while the operation runs."},
    {"matmul_all_reduce", py_matmul_all_reduce, METH_VARARGS,
     "matmul_all_reduce(<matmul_reduce_scatter's arguments>). Releases the GIL while the operation runs."},
    {"plan_matmul_reduce_scatter", py_plan_matmul_reduce_scatter, METH_VARARGS,
     "plan_matmul_reduce_scatter(<matmul_reduce_scatter's arguments>) -> Plan; input/output pointers may be 0. "
     "Collective; releases the GIL."},
    {"plan_matmul_all_reduce", py_plan_matmul_all_reduce, METH_VARARGS,
     "plan_matmul_all_reduce(<matmul_all_reduce's arguments>) -> Plan; input/output pointers may be 0. "
     "Collective; releases the GIL."},
    {"set_param", py_set_param, METH_VARARGS, "set_param(param, value)"},
    {"get_param", py_get_param, METH_VARARGS, "get_param(param) -> int"},
    {"version", py_version, METH_NOARGS, "version of the linked library"},
    {"status_string", py_status_string, METH_VARARGS, "status_string(status) -> str"},
    {"_ops_running", py_ops_running, METH_NOARGS, "number of operations inside the C library (tests)"},
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
  if (PyType_Ready(&PlanType) < 0) return NULL;
  PyObject *m = PyModule_Create(&module);
  if (!m) return NULL;
  Error = PyErr_NewExceptionWithDoc("tpmm.Error",
                                    "A tpmm call failed. .status is the C tpmm_status_t value, .status_string its "
                                    "short name, str(e) the library's message.",
                                    PyExc_RuntimeError, NULL);
  if (!Error || PyModule_AddObjectRef(m, "Error", Error) < 0 ||
      PyModule_AddObjectRef(m, "Plan", (PyObject *)&PlanType) < 0) {
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
      {"REDUCE_SUM", TPMM_REDUCE_SUM},
      {"REDUCE_AVG", TPMM_REDUCE_AVG},
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
      {"PARAM_GEMM", TPMM_PARAM_GEMM},
      {"ALGO_AUTO", TPMM_ALGO_AUTO},
      {"ALGO_UNFUSED", TPMM_ALGO_UNFUSED},
      {"ALGO_RING", TPMM_ALGO_RING},
      {"ALGO_BIDIR_RING", TPMM_ALGO_BIDIR_RING},
      {"ALGO_SHM_PULL", TPMM_ALGO_SHM_PULL},
      {"ALGO_HIER", TPMM_ALGO_HIER},
      {"GEMM_DNNL", TPMM_GEMM_DNNL},
      {"GEMM_REF", TPMM_GEMM_REF},
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
