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

import numpy as np

from . import _agmm, _arrays, _call, _plan, _tpmm
from ._plan import Plan
from ._tpmm import Error

_is_int, _check_group = _call.is_int, _call.check_group

__all__ = [
    "Error", "WORLD_COMM_GROUP", "init", "finalize", "is_initialized", "get_rank", "get_group_size",
    "create_group", "destroy_group", "all_gather_matmul", "plan_all_gather_matmul", "matmul_reduce_scatter",
    "matmul_all_reduce", "plan_matmul_reduce_scatter", "plan_matmul_all_reduce", "Plan", "float32_to_bf16",
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

_EXIT_WAIT_S = 10.0  # how long the exit hook waits for operations still running in other threads

_initialized = False
_atexit_registered = False


def __getattr__(name):
    # tpmm.torch (the autograd functions) is imported on first access, so that
    # `import tpmm` never imports torch; without torch it is absent.
    if name == "torch":
        import importlib
        try:
            return importlib.import_module(".torch", __name__)
        except ImportError as e:
            raise AttributeError(f"module 'tpmm' has no attribute 'torch': {e}") from e
    raise AttributeError(f"module 'tpmm' has no attribute {name!r}")


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

def _empty(kind, shape, like):
    """Allocate an output of the input's kind and dtype (torch: on the CPU).
    (Tests replace this to poison outputs with NaN before the call.)"""
    return _arrays.empty(kind, shape, like)


_plan.default_empty = _empty


def all_gather_matmul(input, x2, group, world_size, *, bias=None, gather_index=0, gather_output=True,
                      comm_turn=0, trans_input=False, trans_x2=False, counts=None, bf16_bits=False):
    """output = allgather(input) @ x2 (+ bias); gather_out = allgather(input).

    Collective over ``group``. input (m, k) — (k, m) stored when
    trans_input — and x2 (k, n) — (n, k) when trans_x2 — with the same dtype:
    numpy float16/float32 (or uint16 bfloat16 bits with bf16_bits=True), or
    torch float16/bfloat16/float32 CPU tensors. bias: None or a 1-D (n,)
    array of the same kind, input's dtype or float32. Returns (output
    (m*world_size, n), gather_out (m*world_size, k) or shape (0,) when
    gather_output is False), new arrays of the input's kind and dtype.

    counts: None (every rank has m rows), or world_size ints, the same on
    every rank: counts[q] rows of input on group rank q (0 allowed;
    counts[own rank] must be m); output and gather_out then have sum(counts)
    rows, rank blocks in group-rank order.

    gather_index=1 gathers x2 instead: x2 is this rank's shard (k_r, n)
    ((n, k_r) with trans_x2), input (m, K) ((K, m) with trans_input), K =
    world_size*k_r, or sum(counts) with counts[q] the k_q of group rank q;
    returns output (m, n) = input @ gathered x2 (+ bias) and gather_out
    (K, n), the gathered x2.

    x2 may be a list or tuple of 1 to 16 weights (k, n_i), one gather for
    all of them (gather_index 0, no counts): output is then the list of
    allgather(input) @ x2[i] (+ bias[i]), each with the bits of a call with
    x2[i] alone, and bias None or a list as long as x2 (entries None or
    (n_i,)). gather_out is returned once.

    comm_turn: 0 (automatic) or N chunks of each shard, N at most the largest
    shard's rows (m, or k_r with gather_index=1), 1 when every shard is
    empty; more is tpmm.Error (ERR_INVALID_ARGUMENT) on every rank.

    The GIL is released while the operation runs."""
    _, call, _, _, pack = _agmm.call(input, x2, group, world_size, bias, gather_index, gather_output, comm_turn,
                                     trans_input, trans_x2, bf16_bits, counts, plan=False)
    return pack(call.outputs)


# ---- matmul_reduce_scatter, matmul_all_reduce ----------------------------------------------------

def _mmr_call(op, input, x2, group, world_size, reduce_op, bias, comm_turn, trans_input, trans_x2, bf16_bits, plan):
    kind = _call.check_kinds(input, x2, group, world_size, bias, bf16_bits, ints=(("comm_turn", comm_turn),),
                             bools=(("trans_input", trans_input), ("trans_x2", trans_x2)))
    code = _call.reduce_op_code(reduce_op)
    trans_input, trans_x2 = bool(trans_input), bool(trans_x2)
    m, _, n = _call.shapes(input, x2, trans_input, trans_x2)
    gsize = _call.group_size(group)
    rows = m if op == "matmul_all_reduce" else (m // gsize if gsize > 0 else 0)  # m % W != 0: C reports it
    outs = [((rows, n), True)]
    call = _call.Call(op, kind, [("input", input, 2), ("x2", x2, 2), ("bias", bias, 1)], bf16_bits, plan, outs,
                      reduce_op=reduce_op)
    fn = getattr(_tpmm, "plan_" + op if plan else op)
    r = call.run(lambda d: fn(d[0], d[1], group, call.clamp("world_size", world_size), d[2], code,
                              call.clamp("comm_turn", comm_turn),
                              trans_input, trans_x2, d[3]))
    return kind, call, r, [s for s, _ in outs]


def matmul_reduce_scatter(input, x2, group, world_size, *, reduce_op="sum", bias=None, comm_turn=0,
                          trans_input=False, trans_x2=False, bf16_bits=False):
    """output = this rank's block of rows of  sum over ranks q of input_q @ x2_q  (+ bias).

    Collective over ``group``: every rank passes its own input (m, k) — (k,
    m) stored when trans_input — and x2 (k, n) — (n, k) when trans_x2 — of
    the same shapes and dtype (as all_gather_matmul's); m must be a multiple
    of world_size. reduce_op: "sum", or "avg" (the sum divided by
    world_size); another string raises tpmm.Error on every rank. bias: None
    or (n,), input's dtype or float32, added once after the reduction.
    Partials are accumulated and summed in fp32 in group-rank order, rounded
    once. Returns output (m/world_size, n): rows [r*m/W, (r+1)*m/W) for group
    rank r, a new array of the input's kind and dtype. comm_turn: 0
    (automatic) or N chunks of each rank's block of rows, N at most
    max(m/world_size, 1) (matmul_all_reduce: max(m, 1)); more is
    tpmm.Error (ERR_INVALID_ARGUMENT) on every rank. The GIL is released
    while the operation runs."""
    _, call, _, _ = _mmr_call("matmul_reduce_scatter", input, x2, group, world_size, reduce_op, bias, comm_turn,
                              trans_input, trans_x2, bf16_bits, plan=False)
    return call.outputs[0]


def matmul_all_reduce(input, x2, group, world_size, *, reduce_op="sum", bias=None, comm_turn=0, trans_input=False,
                      trans_x2=False, bf16_bits=False):
    """output = sum over ranks q of input_q @ x2_q (+ bias), on every rank.

    As matmul_reduce_scatter, with every rank receiving the whole (m, n)
    result (m need not be a multiple of world_size); every rank must pass the
    same bias values (else Error ERR_MISMATCH). Collective over group."""
    _, call, _, _ = _mmr_call("matmul_all_reduce", input, x2, group, world_size, reduce_op, bias, comm_turn,
                              trans_input, trans_x2, bf16_bits, plan=False)
    return call.outputs[0]


# ---- plans ---------------------------------------------------------------------------------------

def plan_all_gather_matmul(input, x2, group, world_size, *, bias=None, gather_index=0, gather_output=True,
                           comm_turn=0, trans_input=False, trans_x2=False, counts=None, bf16_bits=False):
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
    False; output a list when x2 was a list)."""
    kind, call, c_plan, out_shapes, pack = _agmm.call(input, x2, group, world_size, bias, gather_index,
                                                      gather_output, comm_turn, trans_input, trans_x2, bf16_bits,
                                                      counts, plan=True)
    return _plan.make(c_plan, "all_gather_matmul", kind, input.dtype, call.codes[0], input.shape, out_shapes, pack,
                      bf16_bits)


def plan_matmul_reduce_scatter(input, x2, group, world_size, *, reduce_op="sum", bias=None, comm_turn=0,
                               trans_input=False, trans_x2=False, bf16_bits=False):
    """A persistent plan of matmul_reduce_scatter: arguments as the one-shot
    call, ``input`` giving the shape, dtype and kind of later inputs; x2 and
    bias are copied (packed) now. ``output = plan(input)``; plans as
    plan_all_gather_matmul's (close(), ``with``). Collective over group."""
    kind, call, c_plan, out_shapes = _mmr_call("matmul_reduce_scatter", input, x2, group, world_size, reduce_op,
                                               bias, comm_turn, trans_input, trans_x2, bf16_bits, plan=True)
    return _plan.make(c_plan, "matmul_reduce_scatter", kind, input.dtype, call.codes[0], input.shape, out_shapes,
                      _plan.first, bf16_bits)


def plan_matmul_all_reduce(input, x2, group, world_size, *, reduce_op="sum", bias=None, comm_turn=0,
                           trans_input=False, trans_x2=False, bf16_bits=False):
    """A persistent plan of matmul_all_reduce (see plan_matmul_reduce_scatter).
    ``output = plan(input)``. Collective over group."""
    kind, call, c_plan, out_shapes = _mmr_call("matmul_all_reduce", input, x2, group, world_size, reduce_op, bias,
                                               comm_turn, trans_input, trans_x2, bf16_bits, plan=True)
    return _plan.make(c_plan, "matmul_all_reduce", kind, input.dtype, call.codes[0], input.shape, out_shapes,
                      _plan.first, bf16_bits)
