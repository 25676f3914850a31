"""numpy and torch arrays as the C binding takes them.

A tensor goes to C as a descriptor (ptr, dtype code, ndim, s0, s1, ld): the
stored shape, the row stride in elements (ld) and the data pointer. Shared
by the one-shot calls and the plans.
"""
import sys

import numpy as np

from . import _tpmm

INVALID = 0  # a dtype code outside tpmm_dtype_t: the C validator rejects it collectively
NP_CODES = {np.dtype(np.float16): _tpmm.FLOAT16, np.dtype(np.float32): _tpmm.FLOAT32}


def torch_module():
    # torch is used only if the caller already imported it: importing it here
    # would cost seconds for numpy users.
    return sys.modules.get("torch")


def kind(x):
    """'numpy', 'torch' or None."""
    if isinstance(x, np.ndarray):
        return "numpy"
    torch = torch_module()
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    return None


def kind_name(k):
    return "numpy.ndarray" if k == "numpy" else "torch.Tensor"


def supported(k):
    if k == "numpy":
        return "numpy float16, float32, or uint16 bfloat16 bits with bf16_bits=True"
    return "torch.float16, torch.bfloat16, torch.float32"


def code(x, k, bf16_bits):
    """tpmm_dtype_t code of x's dtype, INVALID if tpmm has none."""
    if k == "numpy":
        if x.dtype == np.uint16 and bf16_bits:
            return _tpmm.BFLOAT16
        return NP_CODES.get(x.dtype, INVALID)
    torch = torch_module()
    return {torch.float16: _tpmm.FLOAT16, torch.bfloat16: _tpmm.BFLOAT16,
            torch.float32: _tpmm.FLOAT32}.get(x.dtype, INVALID)


def check_cpu(name, t):
    """A torch tensor tpmm can read: on the CPU, strided. TypeError otherwise."""
    torch = torch_module()
    if t.device.type != "cpu" or t.layout != torch.strided:
        raise TypeError(f"{name} must be a dense CPU tensor, got device {t.device}, layout {t.layout}")


def shape_desc(x, c, want_ndim):
    """The descriptor of x without data: what a rank that could not prepare x
    passes, so that the collective fields (dtype, shapes) still agree."""
    shape = tuple(int(s) for s in x.shape[:2]) + (0,) * (2 - min(2, x.ndim))
    if x.ndim != want_ndim:
        return (0, c, x.ndim, shape[0], shape[1], 0)
    return (0, c, want_ndim, shape[0], shape[1] if want_ndim == 2 else 0, 0)


def describe(x, k, c, want_ndim, dense=False):
    """Return (keepalive, descriptor) for the C call.

    Row-major views with unit column stride pass through with their row
    stride as ld (unless dense is asked, as plans do: their layout is fixed
    at creation); anything else (column-major, negative or zero strides,
    misaligned) is copied to a dense row-major array first. A dtype tpmm does
    not take or a wrong ndim goes as is, without data: C rejects it."""
    if c == INVALID or x.ndim != want_ndim:
        return x, shape_desc(x, c, want_ndim)
    if k == "numpy":
        es = x.itemsize
        if want_ndim == 2:
            rows, cols = x.shape
            s0, s1 = x.strides
            if dense:
                ok = x.flags.c_contiguous and x.flags.aligned
            else:
                ok = x.flags.aligned and (cols <= 1 or s1 == es) and s0 % es == 0 and (rows <= 1 or s0 // es >= cols)
            if not ok:
                x = np.ascontiguousarray(x)
                s0 = x.strides[0]
            ld = cols if rows <= 1 or dense else s0 // es
        else:
            if not (x.flags.c_contiguous and x.flags.aligned):
                x = np.ascontiguousarray(x)
            rows, cols, ld = x.shape[0], 0, 0
        ptr = x.__array_interface__["data"][0]
    else:
        if want_ndim == 2:
            rows, cols = x.shape
            s0, s1 = x.stride()
            ok = x.is_contiguous() if dense else (cols <= 1 or s1 == 1) and (rows <= 1 or s0 >= cols)
            if not ok:
                x = x.contiguous()
                s0 = x.stride()[0]
            ld = cols if rows <= 1 or dense else s0
        else:
            x = x.contiguous()
            rows, cols, ld = x.shape[0], 0, 0
        ptr = x.data_ptr()
    return x, (ptr, c, want_ndim, int(rows), int(cols), int(ld))


def empty(k, shape, like):
    """A new output of kind k with like's dtype. torch outputs are always
    CPU tensors, whatever torch's default device or tensor type."""
    if k == "numpy":
        return np.empty(shape, dtype=like.dtype)
    return torch_module().empty(shape, dtype=like.dtype, device="cpu")


def elements(d):
    """Number of elements a descriptor covers."""
    return d[3] * (d[4] if d[2] == 2 else 1)
