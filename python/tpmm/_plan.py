"""Persistent plans: one Python class for every operator's plan.

An operator's plan differs from another's only in what the C plan was made
by and in its outputs: their shapes (fixed at creation) and how they are
returned (all_gather_matmul: the pair (output, gather_out); an operator
with one output: that output). The array kind decides how an input is read
and outputs are made (numpy: buffers read by C; torch: data pointers), so
there is one subclass per kind and none per operator.

The call path is the hot path (a layer called every step): everything fixed
at creation (dtype, shape, output shapes, the dtype code) is computed once;
a call checks the input against it, allocates the outputs and makes one C
call. Anything that fails before that C call (the input is of another kind,
a copy or an allocation fails) still takes part in the collective, as a
failing rank (Plan.fail in C), and then raises here: the peers get a
tpmm.Error naming this rank instead of waiting for it.
"""
import sys

import numpy as np

from . import _arrays, _errors
from ._tpmm import Error

_pkg = sys.modules[__package__]  # tpmm: its _empty is the (test-replaceable) output allocator
default_empty = None  # tpmm._empty as tpmm defines it (set by tpmm): then numpy outputs come from np.empty directly


def pair(outs):
    """all_gather_matmul's result: (output, gather_out)."""
    return outs[0], outs[1]


def weights_pair(outs):
    """all_gather_matmul's result with a list of weights: ([output, ...], gather_out)."""
    return list(outs[:-1]), outs[-1]


def first(outs):
    """The result of an operator with one output."""
    return outs[0]


class Plan:
    """A persistent plan: ``plan(input)`` runs the planned operator on a new
    input of the shape and dtype given at creation and returns new outputs.
    Collective over the plan's group, like the one-shot call. ``close()``
    frees it (local, idempotent; also ``with`` and garbage collection).

    A call on another shape or dtype raises tpmm.Error on every rank (the
    library agrees on it); a call on a closed plan raises tpmm.Error (locally:
    closing is local, so close a plan on every rank or on none). Destroying
    the plan's group or finalizing tpmm closes it."""

    __slots__ = ("_c", "_kind", "_dtype", "_code", "_shape", "_ld", "_out_shapes", "_like", "_pack", "_bf16_bits",
                 "_op", "__weakref__")

    def __init__(self, c_plan, op, kind, dtype, code, shape, out_shapes, pack, bf16_bits=False):
        self._c = c_plan              # _tpmm.Plan
        self._op = op                 # "all_gather_matmul", for messages
        self._kind = kind
        self._dtype = dtype           # numpy dtype / torch dtype of every input and output
        self._code = code             # its tpmm_dtype_t
        self._shape = tuple(shape)    # the input's stored shape
        self._ld = int(shape[1])      # plans take dense inputs: ld = columns
        self._out_shapes = tuple(tuple(s) for s in out_shapes)
        self._like = _DtypeOf(dtype)  # what the output allocator reads the dtype from
        self._pack = pack
        self._bf16_bits = bf16_bits

    # -- the call --
    def __call__(self, input):
        raise NotImplementedError  # per kind, below

    def _input_slow(self, input):
        """(keepalive, ptr, code, ndim, s0, s1) for an input off the fast
        path: another layout (copied to dense), or another shape or dtype
        (passed without data: the library rejects it on every rank)."""
        k = _arrays.kind(input)
        if k != self._kind:
            raise TypeError(f"{self._op} plan: input must be a {_arrays.kind_name(self._kind)} like the plan's, "
                            f"got {type(input).__name__}")
        if k == "torch":
            _arrays.check_cpu("input", input)
        c = _arrays.code(input, k, self._bf16_bits)
        if c != self._code or input.ndim != 2 or tuple(input.shape) != self._shape:
            d = _arrays.shape_desc(input, c, 2)
            return input, 0, d[1], d[2], d[3], d[4]
        keep, d = _arrays.describe(input, k, c, 2, dense=True)
        return keep, d[0], d[1], d[2], d[3], d[4]

    def _failed(self, exc):
        """This rank could not prepare its call: take part as a failing rank
        (raises tpmm.Error instead if the plan is closed), then raise exc."""
        self._c.fail()
        if hasattr(exc, "add_note"):
            exc.add_note(f"tpmm: this rank took part in the {self._op} call as a failing rank; its peers raised "
                         "tpmm.Error")
        raise exc

    def _execute(self, src, c, nd, s0, s1, bufs, outs):
        """The C call on the prepared input and output buffers (arrays or
        data pointers), then the result packed from outs."""
        try:
            self._c.execute(src, c, nd, s0, s1, self._ld, *bufs)
        except Error as e:
            raise _errors.with_peer_hint(e) from None
        return self._pack(outs)

    # -- lifetime --
    def close(self):
        """Free the C plan. Local; idempotent; waits for a call of this plan
        running in another thread."""
        self._c.close()

    @property
    def closed(self):
        return self._c.closed

    @property
    def group(self):
        return self._c.group

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        c = getattr(self, "_c", None)
        if c is not None:
            c.close()

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return (f"<tpmm plan {self._op} {self._kind} {self._dtype} input {self._shape} group {self.group!r} "
                f"{state}>")


class _DtypeOf:
    """An object with .dtype, as the output allocator takes (``like``)."""
    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype


np_empty = np.empty


class NumpyPlan(Plan):
    __slots__ = ()

    def __call__(self, input):
        try:
            if type(input) is np.ndarray and input.dtype is self._dtype and input.shape == self._shape and \
                    input.flags.carray:
                keep, src, c, nd, s0, s1 = input, input, self._code, 2, self._shape[0], self._shape[1]
            else:
                keep, src, c, nd, s0, s1 = self._input_slow(input)
            empty = _pkg._empty
            if empty is default_empty:
                dt = self._dtype
                outs = [np_empty(s, dt) for s in self._out_shapes]
            else:
                kind, like = self._kind, self._like
                outs = [empty(kind, s, like) for s in self._out_shapes]
        except Exception as exc:  # noqa: BLE001 - re-raised by _failed after the collective
            self._failed(exc)
        return self._execute(src, c, nd, s0, s1, outs, outs)


class TorchPlan(Plan):
    __slots__ = ("_tensor", "_strided")

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        torch = _arrays.torch_module()  # imported: the example input is a tensor
        self._tensor, self._strided = torch.Tensor, torch.strided

    def __call__(self, input):
        try:
            if isinstance(input, self._tensor) and input.dtype is self._dtype and input.shape == self._shape and \
                    input.layout is self._strided and input.is_cpu and input.is_contiguous():
                keep, src, c, nd, s0, s1 = input, input.data_ptr(), self._code, 2, self._shape[0], self._shape[1]
            else:
                keep, src, c, nd, s0, s1 = self._input_slow(input)
            empty, kind, like = _pkg._empty, self._kind, self._like
            outs = [empty(kind, s, like) for s in self._out_shapes]
            ptrs = [o.data_ptr() for o in outs]
        except Exception as exc:  # noqa: BLE001 - re-raised by _failed after the collective
            self._failed(exc)
        return self._execute(src, c, nd, s0, s1, ptrs, outs)  # keep: the input alive meanwhile


def make(c_plan, op, kind, dtype, code, shape, out_shapes, pack, bf16_bits=False):
    """The Plan for a C plan of operator op, input (kind, dtype, stored shape)."""
    cls = NumpyPlan if kind == "numpy" else TorchPlan
    return cls(c_plan, op, kind, dtype, code, shape, out_shapes, pack, bf16_bits)
