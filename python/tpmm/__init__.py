"""tpmm — MindSpore's ``all_gather_matmul`` on CPUs, one MPI rank per process.

    output     = allgather(input) @ x2 (+ bias)    shape (m * world_size, n)
    gather_out = allgather(input)                   shape (m * world_size, k)

The API follows ``mindspore.ops.all_gather_matmul`` and
``mindspore.communication`` nearly verbatim::

    import numpy as np, tpmm
    tpmm.init()
    rank = tpmm.get_rank()
    np.random.seed(rank)
    input = np.random.randn(128, 256).astype(np.float16)
    x2 = np.random.randn(256, 512).astype(np.float16)
    output, gather_out = tpmm.all_gather_matmul(
        input, x2, tpmm.WORLD_COMM_GROUP, tpmm.get_group_size())

Arrays: numpy float16 / float32 arrays give numpy results; torch
float16 / bfloat16 / float32 CPU tensors give torch results. numpy has no
bfloat16: pass uint16 arrays holding bfloat16 bits with ``bf16_bits=True``
(results are uint16 bits too); ``float32_to_bf16`` / ``bf16_to_float32``
convert (round to nearest even).

Plans: ``plan = tpmm.plan_all_gather_matmul(input, x2, group, world_size,
...)`` fixes everything but the input's values (x2 and bias are copied);
``output, gather_out = plan(input)`` runs it; ``plan.close()`` frees it.

Errors: TypeError for arguments of the wrong Python kind (checked here,
before any communication, so the same call raises it on every rank);
``tpmm.Error`` (a RuntimeError) for everything the C library rejects, with
``.status`` (the C ``tpmm_status_t``), ``.status_string`` and the library's
message. The C library agrees on the arguments across ranks first, so a bad
value on one rank makes every rank raise instead of hanging. A rank whose
own preparation fails after the kinds were accepted (a copy or an output
that cannot be allocated, a tensor not on the CPU) still takes part in the
call as a failing rank and then raises its own exception; its peers raise
tpmm.Error naming it.

Threads: operations release the GIL. destroy_group waits for the group's
operations running in other threads, finalize for all of them; both close
the plans of what they remove.
"""

import atexit
import numbers

import numpy as np

from . import _arrays, _errors, _plan, _tpmm
from ._plan import Plan
from ._tpmm import Error

__all__ = [
    "Error", "WORLD_COMM_GROUP", "init", "finalize", "is_initialized", "get_rank", "get_group_size",
    "create_group", "destroy_group", "all_gather_matmul", "plan_all_gather_matmul", "Plan", "float32_to_bf16",
    "bf16_to_float32",
    "set_param", "get_param", "version",
]

WORLD_COMM_GROUP = _tpmm.WORLD_COMM_GROUP  # "tpmm_world_group"

# C status codes (tpmm_status_t; pinned values), for comparing with Error.status.
SUCCESS = _tpmm.SUCCESS
ERR_INVALID_ARGUMENT = _tpmm.ERR_INVALID_ARGUMENT
ERR_DTYPE = _tpmm.ERR_DTYPE
ERR_SHAPE = _tpmm.ERR_SHAPE
ERR_UNSUPPORTED = _tpmm.ERR_UNSUPPORTED
ERR_GROUP = _tpmm.ERR_GROUP
ERR_WORLD_SIZE = _tpmm.ERR_WORLD_SIZE
ERR_MISMATCH = _tpmm.ERR_MISMATCH
ERR_NOT_INITIALIZED = _tpmm.ERR_NOT_INITIALIZED
ERR_COMM = _tpmm.ERR_COMM
ERR_NO_MEMORY = _tpmm.ERR_NO_MEMORY
ERR_TIMEOUT = _tpmm.ERR_TIMEOUT
ERR_INTERNAL = _tpmm.ERR_INTERNAL

# Tunables (tpmm_param_t), algorithms (tpmm_algo_t) and GEMM backends (tpmm_gemm_t) for set_param/get_param.
PARAM_ALGO = _tpmm.PARAM_ALGO
PARAM_NUM_THREADS = _tpmm.PARAM_NUM_THREADS
PARAM_TIMEOUT_MS = _tpmm.PARAM_TIMEOUT_MS
PARAM_PROGRESS_THREAD = _tpmm.PARAM_PROGRESS_THREAD
PARAM_SEND_WINDOW = _tpmm.PARAM_SEND_WINDOW
PARAM_SEGMENT_BYTES = _tpmm.PARAM_SEGMENT_BYTES
PARAM_PROGRESS_NAP_US = _tpmm.PARAM_PROGRESS_NAP_US
PARAM_GEMM = _tpmm.PARAM_GEMM
ALGO_AUTO, ALGO_UNFUSED, ALGO_RING = _tpmm.ALGO_AUTO, _tpmm.ALGO_UNFUSED, _tpmm.ALGO_RING
ALGO_BIDIR_RING, ALGO_SHM_PULL, ALGO_HIER = _tpmm.ALGO_BIDIR_RING, _tpmm.ALGO_SHM_PULL, _tpmm.ALGO_HIER
GEMM_DNNL, GEMM_REF = _tpmm.GEMM_DNNL, _tpmm.GEMM_REF

_INT_MIN, _INT_MAX = -(2 ** 31), 2 ** 31 - 1
_EXIT_WAIT_S = 10.0  # how long the exit hook waits for operations still running in other threads

_initialized = False
_atexit_registered = False


def version():
    """Version string of the linked C library ("MAJOR.MINOR.PATCH")."""
    return _tpmm.version()


# ---- library and groups -------------------------------------------------------------------------

def init():
    """Initialise tpmm (and MPI unless the application, e.g. mpi4py, already did).

    Collective over all ranks. ``finalize`` is registered to run at exit."""
    global _initialized, _atexit_registered
    _tpmm.init()
    _initialized = True
    if not _atexit_registered:
        atexit.register(_finalize_at_exit)
        _atexit_registered = True


def finalize():
    """Destroy every group; finalize MPI if tpmm initialised it. Collective.

    Waits for operations running in other threads of this process (each ends
    when its peers take part, or after TPMM_TIMEOUT_MS) and closes every plan."""
    global _initialized
    _tpmm.finalize(-1.0)
    _initialized = False


def is_initialized():
    """True between init() and finalize() (as seen through this module)."""
    return _initialized


def _finalize_at_exit():
    # Daemon threads may still be inside an operation: wait a while for them,
    # and leave tpmm (and MPI) as they are if they do not finish, rather than
    # free what they use or hang the exit.
    global _initialized
    if _initialized:
        try:
            _tpmm.finalize(_EXIT_WAIT_S)
            _initialized = False
        except Error:
            pass  # nothing sensible to do at interpreter exit


def _check_group(group, what="group"):
    if not isinstance(group, str):
        raise TypeError(f"{what} must be a str, got {type(group).__name__}")


def get_rank(group=WORLD_COMM_GROUP):
    """Rank of the caller within ``group``. Local."""
    _check_group(group)
    return _tpmm.get_rank(group)


def get_group_size(group=WORLD_COMM_GROUP):
    """Number of ranks in ``group``. Local."""
    _check_group(group)
    return _tpmm.get_group_size(group)


def create_group(group, rank_ids):
    """Create the named group of the world ranks ``rank_ids`` (group rank i is
    rank_ids[i]). Collective over the listed ranks only; others must not call."""
    _check_group(group, "group name")
    if isinstance(rank_ids, (str, bytes)) or not hasattr(rank_ids, "__len__"):
        raise TypeError(f"rank_ids must be a list of int, got {type(rank_ids).__name__}")
    ids = list(rank_ids)
    for r in ids:
        if not _is_int(r):
            raise TypeError(f"rank_ids must be a list of int, found {type(r).__name__}")
    _tpmm.create_group(group, [int(r) for r in ids])


def destroy_group(group):
    """Destroy a group made by create_group. Collective over the group.

    Waits for the group's operations running in other threads of this
    process, and closes the group's plans (calling them raises tpmm.Error)."""
    _check_group(group)
    _tpmm.destroy_group(group)


def set_param(param, value):
    """Set a process-wide tunable (PARAM_ALGO, PARAM_NUM_THREADS, ...). Local."""
    if not _is_int(param) or not _is_int(value):
        raise TypeError("set_param(param, value) takes two ints")
    _tpmm.set_param(int(param), int(value))


def get_param(param):
    """Read a tunable. Local."""
    if not _is_int(param):
        raise TypeError("get_param(param) takes an int")
    return _tpmm.get_param(int(param))


# ---- bfloat16 bits for numpy --------------------------------------------------------------------

def float32_to_bf16(x):
    """float32 values -> uint16 array of bfloat16 bits, round to nearest even
    (NaN stays a quiet NaN, overflow rounds to inf), as the C library does."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    r = ((u.astype(np.uint64) + np.uint64(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint64(16))
    out = r.astype(np.uint16)
    out[nan] = ((u[nan] >> np.uint32(16)) | np.uint32(0x0040)).astype(np.uint16)
    return out


def bf16_to_float32(b):
    """uint16 array of bfloat16 bits -> float32 (exact)."""
    b = np.asarray(b)
    if b.dtype != np.uint16:
        raise TypeError(f"bf16_to_float32 takes a uint16 array of bfloat16 bits, got dtype {b.dtype}")
    return (b.astype(np.uint32) << np.uint32(16)).view(np.float32)


# ---- all_gather_matmul ---------------------------------------------------------------------------

def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _is_bool(x):
    return isinstance(x, (bool, np.bool_))


def _clamp_int(x):
    # Out-of-range ints still go to C (clamped), so every rank takes part in
    # the agreement and the library reports the value as invalid collectively.
    return max(_INT_MIN, min(_INT_MAX, int(x)))


def _empty(kind, shape, like):
    """Allocate an output of the input's kind and dtype (torch: on the CPU).
    (Tests replace this to poison outputs with NaN before the call.)"""
    return _arrays.empty(kind, shape, like)


_plan.default_empty = _empty


def _agmm_kinds(input, x2, group, world_size, bias, gather_index, gather_output, comm_turn, trans_input, trans_x2,
                bf16_bits):
    """The argument kinds (Python types): TypeError, raised locally. The same
    call raises the same TypeError on every rank. Returns the array kind."""
    kind = _arrays.kind(input)
    if kind is None:
        raise TypeError(f"input must be a numpy.ndarray or torch.Tensor, got {type(input).__name__}")
    if _arrays.kind(x2) != kind:
        raise TypeError(f"x2 must be a {_arrays.kind_name(kind)} like input, got {type(x2).__name__}")
    _check_group(group)
    if not _is_int(world_size):
        raise TypeError(f"world_size must be an int, got {type(world_size).__name__}")
    if bias is not None and _arrays.kind(bias) != kind:
        raise TypeError(f"bias must be None or a {_arrays.kind_name(kind)} like input, got {type(bias).__name__}")
    if not _is_int(gather_index):
        raise TypeError(f"gather_index must be an int, got {type(gather_index).__name__}")
    if not _is_int(comm_turn):
        raise TypeError(f"comm_turn must be an int, got {type(comm_turn).__name__}")
    for name, v in (("gather_output", gather_output), ("trans_input", trans_input), ("trans_x2", trans_x2),
                    ("bf16_bits", bf16_bits)):
        if not _is_bool(v):
            raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
    if kind == "torch" and bf16_bits:
        raise TypeError("bf16_bits=True is for numpy uint16 arrays; use torch.bfloat16 tensors with torch")
    return kind


class _AgmmCall:
    """One all_gather_matmul call (or plan creation) on this rank: codes,
    logical shapes, the descriptors for C and the outputs.

    Preparing (copies, output allocation, the CPU check of torch tensors) may
    fail after the kinds were accepted. The failure is kept, not raised: the
    rank must still take part in the collective call, with the tensors it
    could not prepare passed without data, so that the library rejects them
    and its agreement gives every rank an error naming this rank. Then the
    failure is raised here (see run)."""

    def __init__(self, kind, input, x2, group, bias, gather_output, trans_input, trans_x2, bf16_bits, plan):
        self.kind = kind
        self.arrays = (input, x2, bias)
        self.codes = (_arrays.code(input, kind, bf16_bits), _arrays.code(x2, kind, bf16_bits),
                      _arrays.code(bias, kind, bf16_bits) if bias is not None else None)
        c_in = self.codes[0]
        self.m = input.shape[1 if trans_input else 0] if input.ndim == 2 else 0
        self.k = input.shape[0 if trans_input else 1] if input.ndim == 2 else 0
        self.n = x2.shape[0 if trans_x2 else 1] if x2.ndim == 2 else 0
        # The group's size (not world_size) sizes the outputs, so that a wrong
        # world_size reaches the library and is reported there.
        try:
            gsize = _tpmm.get_group_size(group)
        except Error:
            gsize = 0  # the operation reports the unknown group itself
        self.out_shape = (self.m * gsize, self.n)
        self.gout_shape = (self.m * gsize, self.k) if gather_output else (0,)
        # Without data first: what goes to C for what is not prepared.
        d = [_arrays.shape_desc(input, c_in, 2), _arrays.shape_desc(x2, self.codes[1], 2),
             _arrays.shape_desc(bias, self.codes[2], 1) if bias is not None else None,
             (0, c_in, 2) + self.out_shape + (0,), (0, c_in, 2) + self.gout_shape + (0,) if gather_output else None]
        done = [plan, False, bias is None, plan or c_in == _arrays.INVALID, plan or not gather_output]
        self.keep = []
        self.outputs = None
        self.failure = None
        try:
            if kind == "torch":
                for name, t in zip(("input", "x2", "bias"), self.arrays):
                    if t is not None:
                        _arrays.check_cpu(name, t)
            for i, x in enumerate(self.arrays):
                if not done[i]:
                    keep, d[i] = _arrays.describe(x, kind, self.codes[i], 2 if i < 2 else 1)
                    self.keep.append(keep)
                    done[i] = True
            if not plan:
                if c_in == _arrays.INVALID:
                    # the library rejects the dtype before it looks at outputs
                    self.outputs = (None, None)
                else:
                    out = _empty(kind, self.out_shape, input)
                    gout = _empty(kind, self.gout_shape, input)
                    self.outputs = (out, gout)
                    d[3], done[3] = _arrays.describe(out, kind, c_in, 2)[1], True
                    if gather_output:
                        d[4], done[4] = _arrays.describe(gout, kind, c_in, 2)[1], True
        except Exception as e:  # noqa: BLE001 - raised by run() after the collective call
            self.failure = e
            undone = [i for i in range(5) if not done[i] and d[i] is not None]
            for i in undone:
                d[i] = (0,) + tuple(d[i][1:])
            if not any(_arrays.elements(d[i]) for i in undone):
                # nothing with elements lacks data: an invalid output dtype is what the library rejects
                d[3] = (d[3][0], _arrays.INVALID) + tuple(d[3][2:])
        self.descs = d

    def run(self, fn, group, world_size, gather_index, gather_output, comm_turn, trans_input, trans_x2):
        d = self.descs
        try:
            r = fn(d[0], d[1], group, _clamp_int(world_size), d[2], _clamp_int(gather_index), gather_output,
                   _clamp_int(comm_turn), trans_input, trans_x2, d[3], d[4])
        except Error as e:
            if self.failure is not None:
                self._raise_failure()
            raise self._explain(e) from None
        if self.failure is not None:
            self._raise_failure()
        return r

    def _raise_failure(self):
        exc = self.failure
        if hasattr(exc, "add_note"):
            exc.add_note("tpmm: this rank took part in the collective call as a failing rank; its peers raised "
                         "tpmm.Error")
        raise exc

    def _explain(self, e):
        """A clearer error than the library's for what only Python knows."""
        bad = [(name, a) for name, a, c in zip(("input", "x2", "bias"), self.arrays, self.codes)
               if c == _arrays.INVALID]
        if bad and e.status == ERR_INVALID_ARGUMENT:
            name, a = bad[0]
            return _errors.error(ERR_DTYPE, f"all_gather_matmul: {name}: dtype {a.dtype} is not supported "
                                            f"({_arrays.supported(self.kind)}) [{e.message}]")
        return _errors.with_peer_hint(e)


def all_gather_matmul(input, x2, group, world_size, *, bias=None, gather_index=0, gather_output=True,
                      comm_turn=0, trans_input=False, trans_x2=False, bf16_bits=False):
    """output = allgather(input) @ x2 (+ bias); gather_out = allgather(input).

    Collective over ``group``. input (m, k) — (k, m) stored when
    trans_input — and x2 (k, n) — (n, k) when trans_x2 — with the same dtype:
    numpy float16/float32 (or uint16 bfloat16 bits with bf16_bits=True), or
    torch float16/bfloat16/float32 CPU tensors. bias: None or a 1-D (n,)
    array of the same kind, input's dtype or float32. Returns (output
    (m*world_size, n), gather_out (m*world_size, k) or shape (0,) when
    gather_output is False), new arrays of the input's kind and dtype.
    The GIL is released while the operation runs."""
    kind = _agmm_kinds(input, x2, group, world_size, bias, gather_index, gather_output, comm_turn, trans_input,
                       trans_x2, bf16_bits)
    trans_input, trans_x2, gather_output = bool(trans_input), bool(trans_x2), bool(gather_output)
    call = _AgmmCall(kind, input, x2, group, bias, gather_output, trans_input, trans_x2, bf16_bits, plan=False)
    call.run(_tpmm.all_gather_matmul, group, world_size, gather_index, gather_output, comm_turn, trans_input,
             trans_x2)
    return call.outputs


# ---- plans ---------------------------------------------------------------------------------------

def plan_all_gather_matmul(input, x2, group, world_size, *, bias=None, gather_index=0, gather_output=True,
                           comm_turn=0, trans_input=False, trans_x2=False, bf16_bits=False):
    """A persistent plan of all_gather_matmul for a layer called every step.

    Arguments as all_gather_matmul; ``input`` only gives the shape, dtype and
    kind of later inputs. x2 and bias are copied (packed) by the C plan now:
    changing them later does not change the plan. Collective over group.

        plan = tpmm.plan_all_gather_matmul(input, x2, group, world_size)
        output, gather_out = plan(new_input)      # collective; new arrays
        plan.close()                              # local; or use `with`

    ``plan(input)`` takes any array of the example's kind, shape and dtype
    (other layouts are copied to a dense one first); another shape or dtype
    raises tpmm.Error on every rank. Returns (output, gather_out) like
    all_gather_matmul (gather_out of shape (0,) when gather_output is
    False)."""
    kind = _agmm_kinds(input, x2, group, world_size, bias, gather_index, gather_output, comm_turn, trans_input,
                       trans_x2, bf16_bits)
    trans_input, trans_x2, gather_output = bool(trans_input), bool(trans_x2), bool(gather_output)
    call = _AgmmCall(kind, input, x2, group, bias, gather_output, trans_input, trans_x2, bf16_bits, plan=True)
    c_plan = call.run(_tpmm.plan_all_gather_matmul, group, world_size, gather_index, gather_output, comm_turn,
                      trans_input, trans_x2)
    return _plan.make(c_plan, "all_gather_matmul", kind, input.dtype, call.codes[0], input.shape,
                      (call.out_shape, call.gout_shape), _plan.pair, bf16_bits)
