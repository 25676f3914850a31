"""all_gather_matmul on this rank, in each of its forms: one weight or a list
of them (tpmm_all_gather_matmul_multi), even shards or counts
(tpmm_all_gather_matmul_v), gather_index 0 (gather input) or 1 (gather x2):
the argument kinds, the output shapes and the C call.

What this rank cannot pass to C (counts that are not world_size ints, a bias
list of another length than x2's, counts with a list of x2) makes it a
failing rank (tpmm._call.Call): it still takes part in the call, so that its
peers raise tpmm.Error instead of waiting, and then raises its own error.
"""
from . import _call, _errors, _plan, _tpmm

_I64_MIN, _I64_MAX = -(2 ** 63), 2 ** 63 - 1


def read_counts(counts, world_size):
    """(counts for C, this rank's error or None): a list of ints clamped to
    int64, or [] for counts C cannot take (the library rejects it)."""
    if counts is None:
        return None, None
    if isinstance(counts, (str, bytes)) or not hasattr(counts, "__len__"):
        return [], TypeError(f"counts must be None or a sequence of int, got {type(counts).__name__}")
    try:
        vals = list(counts)
    except TypeError as e:  # e.g. a 0-d numpy array: has __len__, is not iterable
        return [], TypeError(f"counts must be None or a sequence of int: {e}")
    for i, v in enumerate(vals):
        if not _call.is_int(v):
            return [], TypeError(f"counts[{i}] must be an int, got {type(v).__name__}")
    if len(vals) != world_size:
        return [], ValueError(f"counts has {len(vals)} entries, expected world_size={world_size}")
    return [max(_I64_MIN, min(_I64_MAX, int(v))) for v in vals], None


def _dim(a, i):
    return int(a.shape[i]) if a.ndim == 2 else 0


def call(input, x2, group, world_size, bias, gather_index, gather_output, comm_turn, trans_input, trans_x2, bf16_bits,
         counts, plan):
    """Check the kinds, make the C call (plan: create the C plan); returns
    (kind, Call, C result, output shapes, pack) where pack turns the outputs
    into what the caller returns."""
    kind = _call.check_kinds(input, x2, group, world_size, bias, bf16_bits,
                             ints=(("gather_index", gather_index), ("comm_turn", comm_turn)),
                             bools=(("gather_output", gather_output), ("trans_input", trans_input),
                                    ("trans_x2", trans_x2)), lists=True)
    ti, tx, gather_output = bool(trans_input), bool(trans_x2), bool(gather_output)
    multi = _call.is_list(x2)
    weights = list(x2) if multi else [x2]
    biases = list(bias) if multi and bias is not None else [bias] * (not multi)
    c_counts, failure = read_counts(counts, world_size)
    if multi and counts is not None:
        c_counts, failure = None, _errors.error(_tpmm.ERR_UNSUPPORTED, "all_gather_matmul: counts with a list of x2 "
                                                                       "is not supported (uneven shards take one x2)")
    elif biases and len(biases) != len(weights):
        failure = ValueError(f"bias has {len(biases)} entries for {len(weights)} weights in x2")
        biases = []
    m, k = _dim(input, 1 if ti else 0), _dim(input, 0 if ti else 1)
    ns = [_dim(w, 0 if tx else 1) for w in weights]
    gi1 = gather_index == 1 and not multi  # gathers x2 (the library rejects 1 with several weights)
    local = _dim(weights[0], 1 if tx else 0) if gi1 else m
    # clamped like every dimension C gets: counts summing past int64 fail in C, on every rank
    total = min(_I64_MAX, sum(max(c, 0) for c in c_counts) if c_counts else local * _call.group_size(group))
    if gi1:
        outs = [((m, ns[0]), True), ((total, ns[0]) if gather_output else (0,), gather_output)]
    else:
        outs = [((total, n), True) for n in ns] + [((total, k) if gather_output else (0,), gather_output)]
    names = [name for name, _ in _call.named(x2, "x2")] if multi else ["x2"]
    bnames = [name for name, _ in _call.named(biases, "bias")] if multi else ["bias"]
    ins = [("input", input, 2)] + [(n, w, 2) for n, w in zip(names, weights)] + \
        [(n, b, 1) for n, b in zip(bnames, biases)]
    c = _call.Call("all_gather_matmul", kind, ins, bf16_bits, plan, outs, failure=failure)
    fn = _tpmm.plan_all_gather_matmul if plan else _tpmm.all_gather_matmul
    nb = len(weights)

    def c_call(d):
        xs, bs, os = d[1:1 + nb], d[1 + nb:1 + nb + len(biases)], d[len(ins):len(ins) + nb]
        if not multi:  # descriptors for one weight, lists for several
            xs, bs, os = xs[0], bs[0], os[0]
        return fn(d[0], xs, group, c.clamp("world_size", world_size), bs or None,
                  c.clamp("gather_index", gather_index), gather_output, c.clamp("comm_turn", comm_turn), ti, tx, os,
                  d[-1], c_counts)

    r = c.run(c_call)
    pack = _plan.weights_pair if multi else _plan.pair
    return kind, c, r, [s for s, _ in outs], pack
