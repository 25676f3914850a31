"""tpmm.plan_all_gather_matmul: results vs an fp64 reference over repeated
calls with fresh inputs (numpy and torch, every dtype), x2 copied at
creation, the plan's life cycle, and errors at call time on every rank."""
import gc
import itertools

import numpy as np
import pytest

import tpmm
from conftest import RANK, SEED, SIZE, guarded_group
from refutil import case_data, check_close, to_f64

W = tpmm.WORLD_COMM_GROUP
DTYPES = ["float16", "bfloat16", "float32"]
_case_ids = itertools.count(5000)  # case ids distinct from the other files'


def gathered_inputs(case, m, k, n, dtype):
    """Every rank's input of this case (group = world, in rank order)."""
    return [case_data(SEED, case, r, m, k, n, dtype)[0] for r in range(SIZE)]


def check_call(out, gout, inputs, b, c, k, dtype, gather_output=True):
    """out/gout of one call against fp64 (allgather(inputs) @ b + c)."""
    A = np.vstack([to_f64(x, dtype) for x in inputs])
    B = to_f64(b, dtype)
    ref = A @ B + (to_f64(c, dtype)[None, :] if c is not None else 0.0)
    check_close(out, ref, np.abs(A) @ np.abs(B), k, dtype)
    if gather_output:
        np.testing.assert_array_equal(gout.view(np.uint8), np.vstack(inputs).view(np.uint8))
    else:
        assert gout.shape == (0,)


def run_plan(dtype, m, k, n, *, bias=False, trans_input=False, trans_x2=False, gather_output=True, comm_turn=0,
             calls=3, mutate_x2=False):
    """Make a plan from call 0's data, then call it `calls` times on fresh
    inputs; x2 (and bias) stay those of creation."""
    cases = [next(_case_ids) for _ in range(calls)]
    a0, b, c = case_data(SEED, cases[0], RANK, m, k, n, dtype, bias)
    b_arg = b.T.copy() if trans_x2 else b.copy()
    c_arg = c.copy() if c is not None else None
    kw = dict(bias=c_arg, gather_output=gather_output, comm_turn=comm_turn, trans_input=trans_input,
              trans_x2=trans_x2, bf16_bits=(dtype == "bfloat16"))
    example = a0.T.copy() if trans_input else a0
    with tpmm.plan_all_gather_matmul(example, b_arg, W, SIZE, **kw) as plan:
        assert isinstance(plan, tpmm.Plan) and not plan.closed and plan.group == W
        if mutate_x2:  # the plan packed its own copy at creation
            b_arg[...] = 0
            if c_arg is not None:
                c_arg[...] = 0
        seen = []
        for case in cases:
            inputs = gathered_inputs(case, m, k, n, dtype)
            x = inputs[RANK].T.copy() if trans_input else inputs[RANK]
            out, gout = plan(x)
            assert isinstance(out, np.ndarray) and out.dtype == x.dtype and out.shape == (m * SIZE, n)
            check_call(out, gout, inputs, b, c, k, dtype, gather_output)
            assert all(not np.shares_memory(out, o) for o in seen)  # new arrays every call
            seen.append(out)
    assert plan.closed


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 33, 5), (64, 256, 96)])
def test_values(dtype, m, k, n):
    run_plan(dtype, m, k, n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_options(dtype):
    run_plan(dtype, 9, 40, 17, bias=True, trans_input=True, trans_x2=True, comm_turn=3)
    run_plan(dtype, 6, 20, 8, gather_output=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_x2_and_bias_copied_at_creation(dtype):
    run_plan(dtype, 5, 24, 7, bias=True, mutate_x2=True, calls=2)


def test_input_layouts():
    m, k, n, dtype = 8, 24, 12, "float32"
    case = next(_case_ids)
    a, b, _ = case_data(SEED, case, RANK, m, k, n, dtype)
    inputs = gathered_inputs(case, m, k, n, dtype)
    padded = np.zeros((m, k + 5), np.float32)
    padded[:, :k] = a
    views = [np.asfortranarray(a), padded[:, :k], a[::-1].copy()[::-1], a.copy(order="C")]
    ro = a.copy()
    ro.flags.writeable = False
    views.append(ro)
    with tpmm.plan_all_gather_matmul(a, b, W, SIZE) as plan:
        for v in views:  # any layout with the example's shape and dtype: copied to dense if needed
            out, gout = plan(v)
            check_call(out, gout, inputs, b, None, k, dtype)
        assert (a == inputs[RANK]).all()  # inputs are not modified


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch(dtype):
    torch = pytest.importorskip("torch")
    tdt = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]

    def t(a):
        if dtype == "bfloat16":
            return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
        return torch.from_numpy(a.copy())

    def bits(x):
        return x.view(torch.int16).numpy().view(np.uint16) if dtype == "bfloat16" else x.numpy()

    m, k, n = 6, 40, 9
    cases = [next(_case_ids) for _ in range(3)]
    a0, b, c = case_data(SEED, cases[0], RANK, m, k, n, dtype, bias=True)
    tb, tc = t(b), t(c)
    with tpmm.plan_all_gather_matmul(t(a0), tb, W, SIZE, bias=tc) as plan:
        tb.zero_()  # copied at creation
        for case in cases:
            inputs = gathered_inputs(case, m, k, n, dtype)
            x = t(inputs[RANK])
            if case == cases[1]:
                x = x.t().contiguous().t()  # column-major: copied
            out, gout = plan(x)
            assert isinstance(out, torch.Tensor) and out.dtype == tdt and out.device.type == "cpu"
            assert tuple(out.shape) == (m * SIZE, n) and tuple(gout.shape) == (m * SIZE, k)
            check_call(bits(out), bits(gout), inputs, b, c, k, dtype)


def test_torch_no_gather_output():
    torch = pytest.importorskip("torch")
    with tpmm.plan_all_gather_matmul(torch.ones(3, 8), torch.ones(8, 2), W, SIZE, gather_output=False) as plan:
        out, gout = plan(torch.ones(3, 8))
    assert torch.equal(out, torch.full((3 * SIZE, 2), 8.0))
    assert tuple(gout.shape) == (0,) and gout.dtype == torch.float32


# ---- life cycle ----
def test_close_is_idempotent_and_closed_plans_raise():
    x = np.ones((2, 4), np.float32)
    plan = tpmm.plan_all_gather_matmul(x, np.ones((4, 3), np.float32), W, SIZE)
    plan.close()
    plan.close()
    assert plan.closed and "closed" in repr(plan)
    for arg in (x, None, np.ones((9, 9))):  # closed wins over any argument (closing is local)
        with pytest.raises(tpmm.Error) as e:
            plan(arg)
        assert e.value.status == tpmm.ERR_INVALID_ARGUMENT and "closed" in str(e.value)


def test_context_manager_closes():
    x = np.ones((2, 4), np.float32)
    with tpmm.plan_all_gather_matmul(x, np.ones((4, 3), np.float32), W, SIZE) as plan:
        assert (plan(x)[0] == 4).all()
    assert plan.closed
    with pytest.raises(tpmm.Error):
        plan(x)


def test_garbage_collection_closes():
    x = np.ones((2, 4), np.float32)
    plan = tpmm.plan_all_gather_matmul(x, np.ones((4, 3), np.float32), W, SIZE)
    c = plan._c
    del plan
    gc.collect()
    assert c.closed


# ---- errors ----
@pytest.mark.parametrize("bad", ["shape", "dtype", "ndim", "transposed"])
def test_wrong_input_on_every_rank(bad):
    x = np.ones((4, 16), np.float16)
    arg = {"shape": np.ones((5, 16), np.float16), "dtype": np.ones((4, 16), np.float32),
           "ndim": np.ones(64, np.float16), "transposed": np.ones((16, 4), np.float16)}[bad]
    with tpmm.plan_all_gather_matmul(x, np.ones((16, 8), np.float16), W, SIZE) as plan:
        with pytest.raises(tpmm.Error) as e:
            plan(arg)
        assert e.value.status == (tpmm.ERR_DTYPE if bad == "dtype" else tpmm.ERR_SHAPE), str(e.value)
        assert (plan(x)[0] == 16).all()  # still usable


@pytest.mark.parametrize("bad", ["shape", "dtype"])
def test_wrong_input_on_one_rank(bad):
    # only the last rank passes a wrong input: every rank raises, nobody hangs
    x = np.ones((4, 16), np.float16)
    wrong = np.ones((5, 16), np.float16) if bad == "shape" else np.ones((4, 16), np.float32)
    with guarded_group("py_plan_wrong") as g:
        with tpmm.plan_all_gather_matmul(x, np.ones((16, 8), np.float16), g, SIZE) as plan:
            with pytest.raises(tpmm.Error) as e:
                plan(wrong if RANK == SIZE - 1 else x)
            assert e.value.status in (tpmm.ERR_SHAPE, tpmm.ERR_DTYPE), str(e.value)
            if RANK != SIZE - 1:
                assert f"rank {SIZE - 1}" in str(e.value)
            assert (plan(x)[0] == 16).all()


def test_creation_errors():
    x, b = np.ones((4, 16), np.float16), np.ones((16, 8), np.float16)
    for kw, status in (({"world_size": SIZE + 1}, tpmm.ERR_WORLD_SIZE), ({"group": "py_no_such"}, tpmm.ERR_GROUP),
                       ({"x2": np.ones((17, 8), np.float16)}, tpmm.ERR_SHAPE),
                       ({"input": x.view(np.uint16), "x2": b.view(np.uint16)}, tpmm.ERR_DTYPE),
                       # gather_index 1 gathers x2: input must then have W*17 columns
                       ({"gather_index": 1, "x2": np.ones((17, 8), np.float16)}, tpmm.ERR_SHAPE)):
        args = {"input": x, "x2": b, "group": W, "world_size": SIZE}
        args.update(kw)
        extra = {"gather_index": args.pop("gather_index")} if "gather_index" in args else {}
        with pytest.raises(tpmm.Error) as e:
            tpmm.plan_all_gather_matmul(args["input"], args["x2"], args["group"], args["world_size"], **extra)
        assert e.value.status == status, str(e.value)
    with pytest.raises(TypeError):
        tpmm.plan_all_gather_matmul(x, b.tolist(), W, SIZE)
    with pytest.raises(TypeError):
        tpmm.plan_all_gather_matmul(x, b, W, SIZE, trans_x2=1)


def test_wrong_kind_on_every_rank():
    x = np.ones((4, 16), np.float32)
    with tpmm.plan_all_gather_matmul(x, np.ones((16, 8), np.float32), W, SIZE) as plan:
        with pytest.raises(TypeError):
            plan(x.tolist())
        assert (plan(x)[0] == 16).all()
