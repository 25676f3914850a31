"""tpmm.matmul_reduce_scatter and tpmm.matmul_all_reduce (issue 14), numpy and
torch: values against an fp64 reference for every dtype, sum and avg, bias of
the input's dtype and float32, transposes, layouts, m = 0, groups; the same
bits for every comm_turn and through plans; plans reused on fresh inputs;
the error rules (a bad reduce_op name on every rank or on one rank only is a
tpmm.Error everywhere, a reduce_op that is not a str a TypeError; a rank
that cannot prepare its call takes part as a failing rank)."""
import itertools

import numpy as np
import pytest

import tpmm
from conftest import RANK, SEED, SIZE, guarded_group
from refutil import case_data, check_close, to_f64, to_storage

W = tpmm.WORLD_COMM_GROUP
DTYPES = ["float16", "bfloat16", "float32"]
OPS = ["matmul_reduce_scatter", "matmul_all_reduce"]
_case_ids = itertools.count(7000)  # case ids distinct from the other files'


def common_bias(case, n, dtype, bias_dtype=None):
    """The bias of a case: the same on every rank (added once, after the reduction)."""
    rng = np.random.default_rng([SEED, case, 999])
    return to_storage(rng.standard_normal(n), bias_dtype or dtype)


def reference(case, ranks, m, k, n, dtype, *, avg=False, bias=None, bias_dtype=None, rows_of=None):
    """fp64 (ref, sum |terms|) of sum over the group's ranks q of input_q @
    x2_q (/ W) (+ bias); rows_of=(r, W): only group rank r's block of rows."""
    S = np.zeros((m, n))
    mag = np.zeros((m, n))
    for q in ranks:
        a, b, _ = case_data(SEED, case, q, m, k, n, dtype)
        A, B = to_f64(a, dtype), to_f64(b, dtype)
        S += A @ B
        mag += np.abs(A) @ np.abs(B)
    if avg:
        S, mag = S / len(ranks), mag / len(ranks)
    if bias is not None:
        c = to_f64(bias, bias_dtype or dtype)[None, :]
        S, mag = S + c, mag + np.abs(c)
    if rows_of is not None:
        r, w = rows_of
        S, mag = S[r * m // w:(r + 1) * m // w], mag[r * m // w:(r + 1) * m // w]
    return S, mag


def run_case(op, dtype, m, k, n, *, avg=False, bias=False, bias_dtype=None, trans_input=False, trans_x2=False,
             comm_turn=0, layout=None, group=W, ranks=None):
    """One call of op on every rank of group, checked against fp64; returns the output."""
    case = next(_case_ids)
    ranks = list(range(SIZE)) if ranks is None else ranks
    me = ranks.index(RANK)
    a, b, _ = case_data(SEED, case, RANK, m, k, n, dtype)
    c = common_bias(case, n, dtype, bias_dtype) if bias else None
    a_arg = a.T.copy() if trans_input else a
    b_arg = b.T.copy() if trans_x2 else b
    if layout is not None:
        a_arg, b_arg = layout(a_arg), layout(b_arg)
    out = getattr(tpmm, op)(a_arg, b_arg, group, len(ranks), reduce_op="avg" if avg else "sum", bias=c,
                            comm_turn=comm_turn, trans_input=trans_input, trans_x2=trans_x2,
                            bf16_bits=(dtype == "bfloat16"))
    assert isinstance(out, np.ndarray) and out.dtype == a.dtype
    rows_of = None if op == "matmul_all_reduce" else (me, len(ranks))
    ref, mag = reference(case, ranks, m, k, n, dtype, avg=avg, bias=c, bias_dtype=bias_dtype, rows_of=rows_of)
    # k products per partial and W - 1 additions across ranks in fp32
    check_close(out, ref, mag, k + len(ranks), dtype)
    return out


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mr,k,n", [(1, 1, 1), (3, 33, 5), (16, 128, 48)])
def test_values(op, dtype, mr, k, n):
    run_case(op, dtype, mr * SIZE, k, n)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_bias_transposes(op, dtype):
    run_case(op, dtype, 4 * SIZE, 40, 17, avg=True, bias=True, trans_input=True, trans_x2=True)
    run_case(op, dtype, 2 * SIZE, 24, 9, bias=True, trans_x2=True)
    run_case(op, dtype, 2 * SIZE, 24, 9, avg=True, trans_input=True)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_bias_float32(op, dtype):
    run_case(op, dtype, 3 * SIZE, 32, 6, bias=True, bias_dtype="float32")


def test_all_reduce_m_not_a_multiple_of_world_size():
    run_case("matmul_all_reduce", "float32", 2 * SIZE + 1, 16, 5)


def padded_rows(x):
    big = np.zeros((x.shape[0], x.shape[1] + 7), x.dtype)  # ld > cols: passed as is
    big[:, :x.shape[1]] = x
    return big[:, :x.shape[1]]


def fortran(x):
    return np.asfortranarray(x)  # column-major: copied by tpmm


def every_other_column(x):
    big = np.zeros((x.shape[0], 2 * x.shape[1]), x.dtype)
    big[:, ::2] = x
    return big[:, ::2]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("layout", [padded_rows, fortran, every_other_column], ids=lambda f: f.__name__)
def test_layouts(op, layout):
    run_case(op, "float16", 2 * SIZE, 24, 12, layout=layout)
    run_case(op, "bfloat16", 2 * SIZE, 24, 12, trans_input=True, trans_x2=True, layout=layout)


@pytest.mark.parametrize("op", OPS)
def test_empty_m(op):
    out = getattr(tpmm, op)(np.zeros((0, 8), np.float32), np.ones((8, 3), np.float32), W, SIZE)
    assert out.shape == (0, 3) and out.dtype == np.float32


@pytest.mark.parametrize("op", OPS)
def test_same_bits_for_every_comm_turn(op):
    # every schedule and chunking sums the partials in fp32 in rank order: one rounding, the same bits
    m = 6 * SIZE
    rows = m if op == "matmul_all_reduce" else m // SIZE
    outs = [run_case_fixed(op, m, 48, 20, comm_turn=t) for t in sorted({0, 1, 2, min(3, rows)})]
    for o in outs[1:]:
        np.testing.assert_array_equal(o.view(np.uint16), outs[0].view(np.uint16))


_fixed_case = 7999


def run_case_fixed(op, m, k, n, comm_turn=0, dtype="bfloat16"):
    a, b, _ = case_data(SEED, _fixed_case, RANK, m, k, n, dtype)
    c = common_bias(_fixed_case, n, dtype)
    return getattr(tpmm, op)(a, b, W, SIZE, bias=c, comm_turn=comm_turn, bf16_bits=True)


def test_reversed_group():
    ranks = list(reversed(range(SIZE)))
    tpmm.create_group("py_red_reversed", ranks)
    try:
        for op in OPS:  # reduce_scatter's blocks in group-rank order
            run_case(op, "float32", 2 * SIZE, 16, 5, group="py_red_reversed", ranks=ranks)
    finally:
        tpmm.destroy_group("py_red_reversed")


def test_self_group():
    tpmm.create_group("py_red_self", [RANK])
    try:
        for op in OPS:
            run_case(op, "float16", 3, 16, 5, avg=True, group="py_red_self", ranks=[RANK])
    finally:
        tpmm.destroy_group("py_red_self")


# ---- torch ----
def torch_of(a, dtype):
    torch = pytest.importorskip("torch")
    if dtype == "bfloat16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(a.copy())


def storage_of(t, dtype):
    import torch
    return t.view(torch.int16).numpy().view(np.uint16) if dtype == "bfloat16" else t.numpy()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch(op, dtype):
    torch = pytest.importorskip("torch")
    tdt = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]
    m, k, n = 4 * SIZE, 40, 9
    for avg, trans_x2 in ((False, False), (True, True)):
        case = next(_case_ids)
        a, b, _ = case_data(SEED, case, RANK, m, k, n, dtype)
        c = common_bias(case, n, dtype)
        tb = torch_of(b, dtype)
        if trans_x2:
            tb = tb.t().contiguous()
        out = getattr(tpmm, op)(torch_of(a, dtype), tb, W, SIZE, reduce_op="avg" if avg else "sum",
                                bias=torch_of(c, dtype), trans_x2=trans_x2)
        rows = m if op == "matmul_all_reduce" else m // SIZE
        assert isinstance(out, torch.Tensor) and out.dtype == tdt and out.device.type == "cpu"
        assert tuple(out.shape) == (rows, n)
        ref, mag = reference(case, range(SIZE), m, k, n, dtype, avg=avg, bias=c,
                             rows_of=None if op == "matmul_all_reduce" else (RANK, SIZE))
        check_close(storage_of(out, dtype), ref, mag, k + SIZE, dtype)


def test_torch_noncontiguous_and_requires_grad():
    torch = pytest.importorskip("torch")
    dtype, m, k, n = "float32", 2 * SIZE, 24, 7
    case = next(_case_ids)
    a, b, _ = case_data(SEED, case, RANK, m, k, n, dtype)
    ta = torch_of(a, dtype).t().contiguous().t().requires_grad_()  # column-major: copied
    tb = torch.zeros(k, 2 * n)[:, ::2]  # strided columns: copied
    tb.copy_(torch_of(b, dtype))
    out = tpmm.matmul_reduce_scatter(ta, tb, W, SIZE)
    ref, mag = reference(case, range(SIZE), m, k, n, dtype, rows_of=(RANK, SIZE))
    check_close(out.numpy(), ref, mag, k + SIZE, dtype)


# ---- plans ----
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_plan_reused_on_fresh_inputs(op, dtype):
    m, k, n = 3 * SIZE, 40, 11
    cases = [next(_case_ids) for _ in range(3)]
    a0, b, _ = case_data(SEED, cases[0], RANK, m, k, n, dtype)
    c = common_bias(cases[0], n, dtype)
    b_arg, c_arg = b.T.copy(), c.copy()
    kw = dict(reduce_op="avg", bias=c_arg, trans_x2=True, comm_turn=2, bf16_bits=(dtype == "bfloat16"))
    with getattr(tpmm, "plan_" + op)(a0, b_arg, W, SIZE, **kw) as plan:
        assert isinstance(plan, tpmm.Plan) and not plan.closed and plan.group == W and op in repr(plan)
        b_arg[...] = 0  # x2 and bias were copied at creation
        c_arg[...] = 0
        seen = []
        for case in cases:
            # fresh inputs with the creation's x2 (cases differ only in the input)
            a = case_data(SEED, case, RANK, m, k, n, dtype)[0]
            out = plan(a)
            assert isinstance(out, np.ndarray) and out.dtype == a.dtype
            assert all(not np.shares_memory(out, o) for o in seen)
            seen.append(out)
            # the same bits as the one-shot call on the same arguments
            one = getattr(tpmm, op)(a, b.T.copy(), W, SIZE, **dict(kw, bias=c))
            np.testing.assert_array_equal(out.view(np.uint8), one.view(np.uint8))
            # and the values: sum over ranks of that rank's input of this case @ its x2 of case 0
            ref = np.zeros((m, n))
            mag = np.zeros((m, n))
            for q in range(SIZE):
                Aq = to_f64(case_data(SEED, case, q, m, k, n, dtype)[0], dtype)
                Bq = to_f64(case_data(SEED, cases[0], q, m, k, n, dtype)[1], dtype)
                ref += Aq @ Bq
                mag += np.abs(Aq) @ np.abs(Bq)
            ref, mag = ref / SIZE + to_f64(c, dtype)[None, :], mag / SIZE + np.abs(to_f64(c, dtype))[None, :]
            if op == "matmul_reduce_scatter":
                ref, mag = ref[RANK * m // SIZE:(RANK + 1) * m // SIZE], mag[RANK * m // SIZE:(RANK + 1) * m // SIZE]
            check_close(out, ref, mag, k + SIZE, dtype)
    assert plan.closed


@pytest.mark.parametrize("op", OPS)
def test_plan_torch(op):
    torch = pytest.importorskip("torch")
    x, w = torch.ones(2 * SIZE, 8, dtype=torch.bfloat16), torch.ones(8, 3, dtype=torch.bfloat16)
    rows = 2 * SIZE if op == "matmul_all_reduce" else 2
    with getattr(tpmm, "plan_" + op)(x, w, W, SIZE, reduce_op="sum") as plan:
        w.zero_()  # copied at creation
        for v in (1.0, 2.0):
            out = plan(torch.full((2 * SIZE, 8), v, dtype=torch.bfloat16).t().contiguous().t())  # copied to dense
            assert isinstance(out, torch.Tensor) and out.dtype == torch.bfloat16
            assert torch.equal(out, torch.full((rows, 3), 8.0 * v * SIZE, dtype=torch.bfloat16))


@pytest.mark.parametrize("op", OPS)
def test_closed_plan_raises(op):
    x = np.ones((SIZE, 4), np.float32)
    plan = getattr(tpmm, "plan_" + op)(x, np.ones((4, 3), np.float32), W, SIZE)
    plan.close()
    plan.close()
    assert plan.closed
    with pytest.raises(tpmm.Error) as e:
        plan(x)
    assert e.value.status == tpmm.ERR_INVALID_ARGUMENT and "closed" in str(e.value)


@pytest.mark.parametrize("op", OPS)
def test_plan_wrong_input_on_every_rank(op):
    x = np.ones((2 * SIZE, 16), np.float16)
    with getattr(tpmm, "plan_" + op)(x, np.ones((16, 8), np.float16), W, SIZE) as plan:
        for arg, status in ((np.ones((2 * SIZE + 1, 16), np.float16), tpmm.ERR_SHAPE),
                            (np.ones((2 * SIZE, 16), np.float32), tpmm.ERR_DTYPE)):
            with pytest.raises(tpmm.Error) as e:
                plan(arg)
            assert e.value.status == status, str(e.value)
        assert (plan(x) == 16 * SIZE).all()  # still usable


# ---- errors ----
A = np.ones((2 * SIZE, 16), np.float16)
B = np.ones((16, 8), np.float16)


def call(op, *args, plan=False, **kw):
    fn = getattr(tpmm, ("plan_" if plan else "") + op)
    r = fn(*args, **kw)
    if plan:
        r.close()
    return r


@pytest.mark.parametrize("plan", [False, True], ids=["call", "plan"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("args,kw,word", [
    ((A, B, W, SIZE), {"reduce_op": None}, "reduce_op"),
    ((A, B, W, SIZE), {"reduce_op": 0}, "reduce_op"),
    ((A, B, W, SIZE), {"reduce_op": b"sum"}, "reduce_op"),
    ((A.tolist(), B, W, SIZE), {}, "input"),
    ((A, B.tolist(), W, SIZE), {}, "x2"),
    ((A, B, 0, SIZE), {}, "group"),
    ((A, B, W, float(SIZE)), {}, "world_size"),
    ((A, B, W, SIZE), {"bias": [1.0] * 8}, "bias"),
    ((A, B, W, SIZE), {"comm_turn": "0"}, "comm_turn"),
    ((A, B, W, SIZE), {"trans_input": 0}, "trans_input"),
    ((A, B, W, SIZE), {"trans_x2": None}, "trans_x2"),
    ((A, B, W, SIZE), {"bf16_bits": 1}, "bf16_bits"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_type_errors(op, plan, args, kw, word):
    with pytest.raises(TypeError, match=word):
        call(op, *args, plan=plan, **kw)


def test_keywords_only():
    with pytest.raises(TypeError):
        tpmm.matmul_reduce_scatter(A, B, W, SIZE, "sum")  # reduce_op is keyword-only
    with pytest.raises(TypeError):
        tpmm.matmul_all_reduce(A, B, W, SIZE, gather_output=False)


@pytest.mark.parametrize("plan", [False, True], ids=["call", "plan"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", ["max", "SUM", "", "mean"])
def test_bad_reduce_op_on_every_rank(op, plan, name):
    with pytest.raises(tpmm.Error) as e:
        call(op, A, B, W, SIZE, reduce_op=name, plan=plan)
    assert e.value.status == tpmm.ERR_INVALID_ARGUMENT, str(e.value)
    assert f"reduce_op={name!r}" in str(e.value) and "'sum' or 'avg'" in str(e.value)


@pytest.mark.skipif(SIZE < 2, reason="needs 2 ranks")
@pytest.mark.parametrize("plan", [False, True], ids=["call", "plan"])
@pytest.mark.parametrize("op", OPS)
def test_bad_reduce_op_on_one_rank(op, plan):
    # only the last rank misspells it: every rank raises tpmm.Error, nobody hangs
    bad = SIZE - 1
    with guarded_group("py_red_op") as g:
        with pytest.raises(tpmm.Error) as e:
            call(op, A, B, g, SIZE, reduce_op="max" if RANK == bad else "sum", plan=plan)
        assert e.value.status != tpmm.ERR_TIMEOUT, str(e.value)
        assert e.value.status in (tpmm.ERR_INVALID_ARGUMENT, tpmm.ERR_MISMATCH), str(e.value)
        assert "reduce_op" in str(e.value)
        if RANK == bad:
            assert "reduce_op='max'" in str(e.value)
        else:
            assert "'sum' or 'avg'" in str(e.value)
        out = call(op, A, B, g, SIZE)  # the group is fine afterwards
        assert (out == 16 * SIZE).all()


def test_value_errors():
    for op in OPS:
        for kw, status in (({"world_size": SIZE + 1}, tpmm.ERR_WORLD_SIZE), ({"group": "py_no_such"}, tpmm.ERR_GROUP),
                           ({"x2": np.ones((17, 8), np.float16)}, tpmm.ERR_SHAPE),
                           ({"x2": B.astype(np.float32)}, tpmm.ERR_DTYPE),
                           ({"input": A.astype(np.float64), "x2": B.astype(np.float64)}, tpmm.ERR_DTYPE),
                           ({"bias": np.ones(7, np.float16)}, tpmm.ERR_SHAPE),
                           ({"comm_turn": -1}, tpmm.ERR_INVALID_ARGUMENT),
                           ({"comm_turn": 2 * SIZE + 1}, tpmm.ERR_INVALID_ARGUMENT)):
            args = {"input": A, "x2": B, "group": W, "world_size": SIZE}
            extra = {key: kw.pop(key) for key in list(kw) if key in ("bias", "comm_turn")}
            args.update(kw)
            for plan in (False, True):
                with pytest.raises(tpmm.Error) as e:
                    call(op, args["input"], args["x2"], args["group"], args["world_size"], plan=plan, **extra)
                assert e.value.status == status, f"{op} {kw} {extra}: {e.value}"


@pytest.mark.skipif(SIZE < 2, reason="m is a multiple of 1")
def test_reduce_scatter_m_not_a_multiple():
    with pytest.raises(tpmm.Error) as e:
        tpmm.matmul_reduce_scatter(np.ones((2 * SIZE + 1, 16), np.float16), B, W, SIZE)
    assert e.value.status == tpmm.ERR_SHAPE and "multiple" in str(e.value)


@pytest.mark.skipif(SIZE < 2, reason="needs 2 ranks")
def test_ranks_disagree():
    a = np.ones((4 * SIZE if RANK == 1 else 2 * SIZE, 16), np.float16)
    for op in OPS:
        with pytest.raises(tpmm.Error) as e:
            getattr(tpmm, op)(a, B, W, SIZE)
        assert e.value.status == tpmm.ERR_MISMATCH, str(e.value)


def test_output_allocation_fails_on_one_rank(monkeypatch):
    bad = SIZE - 1
    real = tpmm._empty

    def empty(kind, shape, like):
        if RANK == bad:
            raise MemoryError("test: no memory for the output")
        return real(kind, shape, like)

    with guarded_group("py_red_nomem") as g:
        for op in OPS:
            monkeypatch.setattr(tpmm, "_empty", empty)
            if RANK == bad:
                with pytest.raises(MemoryError):
                    getattr(tpmm, op)(A, B, g, SIZE)
            else:
                with pytest.raises(tpmm.Error) as e:
                    getattr(tpmm, op)(A, B, g, SIZE)
                assert e.value.status != tpmm.ERR_TIMEOUT and f"rank {bad}" in str(e.value), str(e.value)
            monkeypatch.setattr(tpmm, "_empty", real)
            with getattr(tpmm, "plan_" + op)(A, B, g, SIZE) as plan:
                monkeypatch.setattr(tpmm, "_empty", empty)
                if RANK == bad:
                    with pytest.raises(MemoryError):
                        plan(A)
                else:
                    with pytest.raises(tpmm.Error) as e:
                        plan(A)
                    assert f"rank {bad}" in str(e.value), str(e.value)
                monkeypatch.setattr(tpmm, "_empty", real)
                assert (plan(A) == 16 * SIZE).all()  # usable afterwards
