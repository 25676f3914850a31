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

Errors: TypeError for arguments of the wrong Python type (checked here,
before any communication); ``tpmm.Error`` (a RuntimeError) for everything the
C library rejects, with ``.status`` (the C ``tpmm_status_t``),
``.status_string`` and the library's message. The C library agrees on the
arguments across ranks first, so a bad value on one rank makes every rank
raise instead of hanging. A TypeError is local: raise it on every rank or
the peers wait in the collective (set TPMM_TIMEOUT_MS to bound the wait).
"""

import atexit
import numbers
import sys

import numpy as np

from . import _tpmm
from ._tpmm import Error

__all__ = [
    "Error", "WORLD_COMM_GROUP", "init", "finalize", "is_initialized", "get_rank", "get_group_size",
    "create_group", "destroy_group", "all_gather_matmul", "float32_to_bf16", "bf16_to_float32",
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

# Tunables (tpmm_param_t) and algorithms (tpmm_algo_t) for set_param/get_param.
PARAM_ALGO = _tpmm.PARAM_ALGO
PARAM_NUM_THREADS = _tpmm.PARAM_NUM_THREADS
PARAM_TIMEOUT_MS = _tpmm.PARAM_TIMEOUT_MS
PARAM_PROGRESS_THREAD = _tpmm.PARAM_PROGRESS_THREAD
PARAM_SEND_WINDOW = _tpmm.PARAM_SEND_WINDOW
PARAM_SEGMENT_BYTES = _tpmm.PARAM_SEGMENT_BYTES
PARAM_PROGRESS_NAP_US = _tpmm.PARAM_PROGRESS_NAP_US
ALGO_AUTO, ALGO_UNFUSED, ALGO_RING, ALGO_BIDIR_RING, ALGO_SHM_PULL = 0, 1, 2, 3, 4

_INVALID = 0  # a dtype code outside tpmm_dtype_t: the C validator rejects it collectively
_INT_MIN, _INT_MAX = -(2 ** 31), 2 ** 31 - 1

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
    """Destroy every group; finalize MPI if tpmm initialised it. Collective."""
    global _initialized
    _tpmm.finalize()
    _initialized = False


def is_initialized():
    """True between init() and finalize() (as seen through this module)."""
    return _initialized


def _finalize_at_exit():
    if _initialized:
        try:
            finalize()
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
    """Destroy a group made by create_group. Collective over the group."""
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


# ---- all_gather_matmul --------------------------------------------------------------------------

def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _is_bool(x):
    return isinstance(x, (bool, np.bool_))


def _clamp_int(x):
    # Out-of-range ints still go to C (clamped), so every rank takes part in
    # the agreement and the library reports the value as invalid collectively.
    return max(_INT_MIN, min(_INT_MAX, int(x)))


def _torch_module():
    # torch is used only if the caller already imported it: importing it here
    # would cost seconds for numpy users.
    return sys.modules.get("torch")


def _kind(x):
    if isinstance(x, np.ndarray):
        return "numpy"
    torch = _torch_module()
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    return None


_NP_CODES = {np.dtype(np.float16): _tpmm.FLOAT16, np.dtype(np.float32): _tpmm.FLOAT32}


def _np_code(a, bf16_bits):
    if a.dtype == np.uint16 and bf16_bits:
        return _tpmm.BFLOAT16
    return _NP_CODES.get(a.dtype, _INVALID)


def _torch_code(t):
    torch = _torch_module()
    return {torch.float16: _tpmm.FLOAT16, torch.bfloat16: _tpmm.BFLOAT16,
            torch.float32: _tpmm.FLOAT32}.get(t.dtype, _INVALID)


def _describe(x, kind, code, want_ndim):
    """Return (keepalive, (ptr, dtype, ndim, s0, s1, ld)) for the C call.

    Row-major views with unit column stride pass through with their row
    stride as ld; anything else (column-major, negative or zero strides,
    misaligned) is copied to a dense row-major array first."""
    if code == _INVALID or x.ndim != want_ndim:
        # C rejects it (dtype / ndim) before touching data: pass what we know.
        shape = tuple(x.shape[:2]) + (0,) * (2 - min(2, x.ndim))
        return x, (0, code, x.ndim, int(shape[0]), int(shape[1]), 0)
    if kind == "numpy":
        es = x.itemsize
        if want_ndim == 2:
            rows, cols = x.shape
            s0, s1 = x.strides
            ok = x.flags.aligned and (cols <= 1 or s1 == es) and s0 % es == 0 and \
                (rows <= 1 or s0 // es >= cols)
            if not ok:
                x = np.ascontiguousarray(x)
                s0 = x.strides[0]
            ld = cols if rows <= 1 else s0 // es
        else:
            if not (x.flags.c_contiguous and x.flags.aligned):
                x = np.ascontiguousarray(x)
            rows, cols, ld = x.shape[0], 0, 0
        ptr = x.__array_interface__["data"][0]
    else:
        if want_ndim == 2:
            rows, cols = x.shape
            s0, s1 = x.stride()
            if not ((cols <= 1 or s1 == 1) and (rows <= 1 or s0 >= cols)):
                x = x.contiguous()
                s0 = x.stride()[0]
            ld = cols if rows <= 1 else s0
        else:
            x = x.contiguous()
            rows, cols, ld = x.shape[0], 0, 0
        ptr = x.data_ptr()
    return x, (ptr, code, want_ndim, int(rows), int(cols), int(ld))


def _empty(kind, shape, like):
    """Allocate an output of the input's kind and dtype. (Tests replace this
    to poison outputs with NaN before the call.)"""
    if kind == "numpy":
        return np.empty(shape, dtype=like.dtype)
    return _torch_module().empty(shape, dtype=like.dtype)


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
    kind = _kind(input)
    if kind is None:
        raise TypeError(f"input must be a numpy.ndarray or torch.Tensor, got {type(input).__name__}")
    if _kind(x2) != kind:
        raise TypeError(f"x2 must be a {_kind_name(kind)} like input, got {type(x2).__name__}")
    _check_group(group)
    if not _is_int(world_size):
        raise TypeError(f"world_size must be an int, got {type(world_size).__name__}")
    if bias is not None and _kind(bias) != kind:
        raise TypeError(f"bias must be None or a {_kind_name(kind)} like input, got {type(bias).__name__}")
    if not _is_int(gather_index):
        raise TypeError(f"gather_index must be an int, got {type(gather_index).__name__}")
    if not _is_int(comm_turn):
        raise TypeError(f"comm_turn must be an int, got {type(comm_turn).__name__}")
    for name, v in (("gather_output", gather_output), ("trans_input", trans_input), ("trans_x2", trans_x2),
                    ("bf16_bits", bf16_bits)):
        if not _is_bool(v):
            raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
    if kind == "torch":
        for name, t in (("input", input), ("x2", x2), ("bias", bias)):
            if t is not None and (t.device.type != "cpu" or t.layout != _torch_module().strided):
                raise TypeError(f"{name} must be a dense CPU tensor, got device {t.device}, layout {t.layout}")
        if bf16_bits:
            raise TypeError("bf16_bits=True is for numpy uint16 arrays; use torch.bfloat16 tensors with torch")
        code_of = _torch_code
    else:
        def code_of(a):
            return _np_code(a, bf16_bits)

    trans_input, trans_x2, gather_output = bool(trans_input), bool(trans_x2), bool(gather_output)
    c_in, c_x2 = code_of(input), code_of(x2)
    c_bias = code_of(bias) if bias is not None else None
    keep_in, d_in = _describe(input, kind, c_in, 2)
    keep_x2, d_x2 = _describe(x2, kind, c_x2, 2)
    keep_b, d_b = _describe(bias, kind, c_bias, 1) if bias is not None else (None, None)

    # Output shapes. The group's size (not world_size) sizes them, so that a
    # wrong world_size reaches the library and is reported there.
    m = input.shape[1 if trans_input else 0] if input.ndim == 2 else 0
    k = input.shape[0 if trans_input else 1] if input.ndim == 2 else 0
    n = x2.shape[0 if trans_x2 else 1] if x2.ndim == 2 else 0
    try:
        gsize = _tpmm.get_group_size(group)
    except Error:
        gsize = 0  # the operation reports the unknown group itself
    if c_in == _INVALID:
        # The library rejects the dtype before looking at the outputs: 0x0 placeholders.
        output = gather_out = np.empty((0, 0), np.float32)
    else:
        output = _empty(kind, (m * gsize, n), input)
        gather_out = _empty(kind, (m * gsize, k) if gather_output else (0,), input)
    _, d_out = _describe(output, "numpy" if c_in == _INVALID else kind, c_in, 2)
    d_gout = _describe(gather_out, "numpy" if c_in == _INVALID else kind, c_in, 2)[1] if gather_output else None

    try:
        _tpmm.all_gather_matmul(d_in, d_x2, group, _clamp_int(world_size), d_b, _clamp_int(gather_index),
                                gather_output, _clamp_int(comm_turn), trans_input, trans_x2, d_out, d_gout)
    except Error as e:
        bad = [(nm, a) for nm, a, c in (("input", input, c_in), ("x2", x2, c_x2), ("bias", bias, c_bias))
               if c == _INVALID]
        if bad and e.status == ERR_INVALID_ARGUMENT:
            nm, a = bad[0]
            raise _error(ERR_DTYPE, f"all_gather_matmul: {nm}: dtype {a.dtype} is not supported "
                         f"({_supported(kind)}) [{e.message}]") from e
        raise
    finally:
        del keep_in, keep_x2, keep_b
    return output, gather_out


def _kind_name(kind):
    return "numpy.ndarray" if kind == "numpy" else "torch.Tensor"


def _supported(kind):
    if kind == "numpy":
        return "numpy float16, float32, or uint16 bfloat16 bits with bf16_bits=True"
    return "torch.float16, torch.bfloat16, torch.float32"


def _error(status, message):
    e = Error(message)
    e.status = status
    e.status_string = _tpmm.status_string(status)
    e.message = message
    return e
