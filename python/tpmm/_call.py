"""One operator call (or plan creation) on this rank, for every operator.

The operators differ in their options and their outputs' shapes; what is
common lives here: the argument kinds (TypeError, raised locally, the same on
every rank), the descriptors for C, the outputs, and the rule that a rank
which cannot prepare its call still takes part in it as a failing rank.
"""
import numbers
import re
import sys

import numpy as np

from . import _arrays, _errors, _tpmm
from ._tpmm import Error

_pkg = sys.modules[__package__]  # tpmm: its _empty is the (test-replaceable) output allocator

_INT_MIN, _INT_MAX = -(2 ** 31), 2 ** 31 - 1

# reduce_op names; any other string goes to C as REDUCE_UNKNOWN, which the
# library rejects on every rank (its agreement), so that a name only one rank
# gets wrong cannot leave the others waiting.
REDUCE_OPS = {"sum": _tpmm.REDUCE_SUM, "avg": _tpmm.REDUCE_AVG}
REDUCE_UNKNOWN = -1
# where another report starts in the library's message (kept by split)
_REPORTS = re.compile(r"(; (?=rank \d+ also |this rank also reported: ))")
# a rank's reduce_op of -1 (a name it did not know), as a disagreement or its report shows it
_PEER_BAD_REDUCE_OP = re.compile(r"disagree on reduce_op \([^)]*?(?<![\d-])-1(?!\d)|reduce_op=-1(?!\d)")


def is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def is_bool(x):
    return isinstance(x, (bool, np.bool_))


def clamp_int(x):
    # Out-of-range ints still go to C (clamped), so every rank takes part in
    # the agreement and the library reports the value as invalid collectively.
    return max(_INT_MIN, min(_INT_MAX, int(x)))


def check_group(group, what="group"):
    if not isinstance(group, str):
        raise TypeError(f"{what} must be a str, got {type(group).__name__}")


def is_list(x):
    return isinstance(x, (list, tuple))


def named(x, name):
    """(name, entry) of a list or tuple x ("x2[0]", ...), else [(name, x)]."""
    return [(f"{name}[{i}]", e) for i, e in enumerate(x)] if is_list(x) else [(name, x)]


def check_kinds(input, x2, group, world_size, bias, bf16_bits, ints=(), bools=(), lists=False):
    """The argument kinds (Python types) every operator shares, plus its own
    ints and bools as (name, value) pairs: TypeError, raised locally. The same
    call raises the same TypeError on every rank. With lists, x2 may be a
    list or tuple of arrays, and then bias None or a list or tuple of None or
    arrays. Returns the array kind."""
    kind = _arrays.kind(input)
    if kind is None:
        raise TypeError(f"input must be a numpy.ndarray or torch.Tensor, got {type(input).__name__}")
    multi = lists and is_list(x2)
    for name, w in named(x2, "x2") if multi else [("x2", x2)]:
        if _arrays.kind(w) != kind:
            raise TypeError(f"{name} must be a {_arrays.kind_name(kind)} like input, got {type(w).__name__}")
    check_group(group)
    if not is_int(world_size):
        raise TypeError(f"world_size must be an int, got {type(world_size).__name__}")
    if multi and bias is not None and not is_list(bias):
        raise TypeError(f"bias must be None or a list like x2, got {type(bias).__name__}")
    for name, b in named(bias, "bias") if multi else [("bias", bias)]:
        if b is not None and _arrays.kind(b) != kind:
            raise TypeError(f"{name} must be None or a {_arrays.kind_name(kind)} like input, got {type(b).__name__}")
    for name, v in ints:
        if not is_int(v):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    for name, v in tuple(bools) + (("bf16_bits", bf16_bits),):
        if not is_bool(v):
            raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
    if kind == "torch" and bf16_bits:
        raise TypeError("bf16_bits=True is for numpy uint16 arrays; use torch.bfloat16 tensors with torch")
    return kind


def reduce_op_code(reduce_op):
    """tpmm_reduce_op_t of a reduce_op name; TypeError (local) if it is not a
    str; REDUCE_UNKNOWN for another string (the library rejects it on every
    rank)."""
    if not isinstance(reduce_op, str):
        raise TypeError(f"reduce_op must be a str ('sum' or 'avg'), got {type(reduce_op).__name__}")
    return REDUCE_OPS.get(reduce_op, REDUCE_UNKNOWN)


def shapes(input, x2, trans_input, trans_x2):
    """Logical (m, k, n) of input and x2 (0 for what is not 2-D: the library
    reports the ndim)."""
    m = input.shape[1 if trans_input else 0] if input.ndim == 2 else 0
    k = input.shape[0 if trans_input else 1] if input.ndim == 2 else 0
    n = x2.shape[0 if trans_x2 else 1] if x2.ndim == 2 else 0
    return int(m), int(k), int(n)


def group_size(group):
    """The group's size, which (not world_size) sizes the outputs, so that a
    wrong world_size reaches the library and is reported there; 0 for a group
    that does not exist (the operation reports it itself)."""
    try:
        return _tpmm.get_group_size(group)
    except Error:
        return 0


class Call:
    """One call (or plan creation) of operator op on this rank: codes, the
    descriptors for C and the outputs.

    ins lists the input tensors as (name, array or None, ndim), input first;
    outs the outputs as (shape, to_c): each is allocated (one-shot calls) and
    returned; to_c False means C gets None for it (gather_out when
    gather_output is False). descs holds the descriptors of ins, then outs.

    Preparing (copies, output allocation, the CPU check of torch tensors) may
    fail after the kinds were accepted, and an argument may be known bad
    already (failure: what the caller could not pass to C). The failure is
    kept, not raised: the rank must still take part in the collective call,
    with the tensors it could not prepare passed without data, so that the
    library rejects them and its agreement gives every rank an error naming
    this rank. Then the failure is raised here (see run)."""

    def __init__(self, op, kind, ins, bf16_bits, plan, outs, reduce_op=None, failure=None):
        self.op = op
        self.kind = kind
        self.reduce_op = reduce_op  # the name given, for messages (reduce operators)
        self.names = [name for name, _, _ in ins]
        self.arrays = [x for _, x, _ in ins]
        self.codes = [_arrays.code(x, kind, bf16_bits) if x is not None else None for x in self.arrays]
        c_in = self.codes[0]
        # Without data first: what goes to C for what is not prepared.
        d = [_arrays.shape_desc(x, c, nd) if x is not None else None for (_, x, nd), c in zip(ins, self.codes)]
        n_in = len(d)
        d += [(0, c_in, len(s)) + tuple(s) + (0,) * (3 - len(s)) if to_c else None for s, to_c in outs]
        done = [plan] + [x is None for x in self.arrays[1:]] + \
            [plan or c_in == _arrays.INVALID or not to_c for _, to_c in outs]
        self.keep = []
        self.outputs = None
        self.failure = None
        self.clamped = {}  # name: (the int given, what C got)
        try:
            if failure is not None:
                raise failure
            if kind == "torch":
                for name, t in zip(self.names, self.arrays):
                    if t is not None:
                        _arrays.check_cpu(name, t)
            for i, (x, (_, _, nd)) in enumerate(zip(self.arrays, ins)):
                if not done[i]:
                    keep, d[i] = _arrays.describe(x, kind, self.codes[i], nd)
                    self.keep.append(keep)
                    done[i] = True
            if not plan:
                if c_in == _arrays.INVALID:
                    # the library rejects the dtype before it looks at outputs
                    self.outputs = [None] * len(outs)
                else:
                    self.outputs = []
                    for j, (s, to_c) in enumerate(outs, n_in):
                        o = _pkg._empty(kind, s, self.arrays[0])
                        self.outputs.append(o)
                        if to_c:
                            d[j], done[j] = _arrays.describe(o, kind, c_in, 2)[1], True
        except Exception as e:  # noqa: BLE001 - raised by run() after the collective call
            self.failure = e
            undone = [i for i in range(len(d)) if not done[i] and d[i] is not None]
            for i in undone:
                d[i] = (0,) + tuple(d[i][1:])
            if d[n_in] is not None and not any(_arrays.elements(d[i]) for i in undone):
                # nothing with elements lacks data: an invalid output dtype is what the library rejects
                d[n_in] = (d[n_in][0], _arrays.INVALID) + tuple(d[n_in][2:])
        self.descs = d

    def clamp(self, name, x):
        """x for a C int argument: clamped (see clamp_int), remembered for the message."""
        c = clamp_int(x)
        if c != int(x):
            self.clamped[name] = (int(x), c)
        return c

    def run(self, call):
        """call(descs) makes the C call; its result, or this rank's own
        failure raised after it, or the library's error (explained)."""
        try:
            r = call(self.descs)
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
        """A clearer error than the library's for what only Python knows: a
        dtype tpmm has no code for, a reduce_op name it does not know. The
        status stays the library's, the same on every rank."""
        msg = e.message or ""
        if "reduce_op" in msg and self.reduce_op is not None:
            if self.reduce_op not in REDUCE_OPS:
                return _errors.error(e.status, f"{self.op}: reduce_op={self.reduce_op!r} is not 'sum' or 'avg' "
                                               f"[{msg}]")
            if _PEER_BAD_REDUCE_OP.search(msg):
                msg += " (reduce_op -1: a rank passed a reduce_op name other than 'sum' or 'avg')"
        bad = [(name, a) for name, a, c in zip(self.names, self.arrays, self.codes) if c == _arrays.INVALID]
        if bad and e.status == _tpmm.ERR_INVALID_ARGUMENT:
            name, a = bad[0]
            return _errors.error(_tpmm.ERR_DTYPE, f"{self.op}: {name}: dtype {a.dtype} is not supported "
                                                  f"({_arrays.supported(self.kind)}) [{msg}]")
        # the library saw the nearest C int: say what was given, in this rank's own reports only (a message led
        # by "rank R of group" and a report after "; rank R also" are another rank's)
        parts = _REPORTS.split(msg)
        for i, part in enumerate(parts):
            for name, (given, c) in self.clamped.items() if not part.startswith("rank ") else ():
                parts[i] = part = re.sub(rf"\b{name}={c}(?![0-9])",
                                         f"{name}={given} (passed on as {c}, the nearest C int)", part, 1)
        msg = "".join(parts)
        if msg != (e.message or ""):
            e = _errors.error(e.status, msg)
        return _errors.with_peer_hint(e)
