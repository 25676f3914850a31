"""Every error case of the seed's table (and tpmm's own), through the Python API.

TypeError cases are raised in Python before any communication, identically
on every rank. tpmm.Error cases go through the C library's agreement step:
every rank raises, with the C status and message.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import tpmm
from conftest import RANK, SIZE

W = tpmm.WORLD_COMM_GROUP
A = np.ones((4, 16), np.float16)
B = np.ones((16, 8), np.float16)


def agmm(input=A, x2=B, group=W, world_size=SIZE, **kw):
    return tpmm.all_gather_matmul(input, x2, group, world_size, **kw)


# ---- TypeError: wrong Python types ----
@pytest.mark.parametrize("args,kw,word", [
    ((A.tolist(), B, W, SIZE), {}, "input"),
    ((None, B, W, SIZE), {}, "input"),
    ((A, B.tolist(), W, SIZE), {}, "x2"),
    ((A, B, 0, SIZE), {}, "group"),
    ((A, B, None, SIZE), {}, "group"),
    ((A, B, W, float(SIZE)), {}, "world_size"),
    ((A, B, W, str(SIZE)), {}, "world_size"),
    ((A, B, W, True), {}, "world_size"),
    ((A, B, W, SIZE), {"bias": [1.0] * 8}, "bias"),
    ((A, B, W, SIZE), {"bias": 1.0}, "bias"),
    ((A, B, W, SIZE), {"gather_output": 1}, "gather_output"),
    ((A, B, W, SIZE), {"gather_output": None}, "gather_output"),
    ((A, B, W, SIZE), {"trans_input": 0}, "trans_input"),
    ((A, B, W, SIZE), {"trans_x2": "yes"}, "trans_x2"),
    ((A, B, W, SIZE), {"gather_index": 0.0}, "gather_index"),
    ((A, B, W, SIZE), {"comm_turn": "0"}, "comm_turn"),
    ((A, B, W, SIZE), {"bf16_bits": 1}, "bf16_bits"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_type_errors(args, kw, word):
    with pytest.raises(TypeError, match=word):
        tpmm.all_gather_matmul(*args, **kw)


def test_type_errors_groups():
    for call in (lambda: tpmm.get_rank(0), lambda: tpmm.get_group_size(None), lambda: tpmm.destroy_group(1),
                 lambda: tpmm.create_group(5, [0]), lambda: tpmm.create_group("g", "01"),
                 lambda: tpmm.create_group("g", [0.0]), lambda: tpmm.create_group("g", 0)):
        with pytest.raises(TypeError):
            call()


def test_unexpected_keyword_and_positional():
    with pytest.raises(TypeError):
        tpmm.all_gather_matmul(A, B, W, SIZE, None)  # bias is keyword-only, as in the seed
    with pytest.raises(TypeError):
        tpmm.all_gather_matmul(A, B, W, SIZE, nonsense=1)


def test_numpy_and_torch_not_mixed():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="x2"):
        agmm(x2=torch.ones(16, 8, dtype=torch.float16))
    with pytest.raises(TypeError, match="x2"):
        agmm(input=torch.ones(4, 16, dtype=torch.float16))


# ---- tpmm.Error (RuntimeError) with the C status ----
def raises_status(status, match=None, **kw):
    with pytest.raises(tpmm.Error) as e:
        agmm(**kw)
    err = e.value
    assert isinstance(err, RuntimeError)
    assert err.status == status, f"status {err.status} ({err.status_string}), expected {status}: {err}"
    assert isinstance(err.status_string, str) and err.status_string
    assert str(err) == err.message and err.message
    if match:
        assert match in str(err), f"{match!r} not in {str(err)!r}"
    return err


@pytest.mark.parametrize("dt", [np.float64, np.int32, np.int8, np.complex64, np.bool_])
def test_dtype_unsupported(dt):
    raises_status(tpmm.ERR_DTYPE, "input", input=A.astype(dt), x2=B.astype(dt))


def test_dtype_unsupported_x2_only():
    raises_status(tpmm.ERR_DTYPE, "x2", x2=B.astype(np.float64))


def test_uint16_needs_bf16_bits():
    e = raises_status(tpmm.ERR_DTYPE, "bf16_bits", input=A.view(np.uint16), x2=B.view(np.uint16))
    assert "uint16" in str(e)


def test_dtype_mismatch():
    raises_status(tpmm.ERR_DTYPE, "x2", x2=B.astype(np.float32))
    raises_status(tpmm.ERR_DTYPE, "x2", x2=B.view(np.uint16), bf16_bits=True)


@pytest.mark.parametrize("which,shape", [("input", (64,)), ("input", (2, 2, 16)), ("x2", (16,)),
                                         ("x2", (1, 16, 8)), ("input", ())])
def test_not_2d(which, shape):
    arr = np.ones(shape, np.float16)
    raises_status(tpmm.ERR_SHAPE, f"{which}: ndim", **{which: arr})


def test_k_mismatch():
    raises_status(tpmm.ERR_SHAPE, "k=", x2=np.ones((17, 8), np.float16))
    raises_status(tpmm.ERR_SHAPE, "transposed", x2=B, trans_x2=True)  # (n, k) = (16, 8): k=8 != 16


def test_k_range_not_restricted():
    # The seed requires 256 <= k < 65535 (an Ascend limit); tpmm takes any k >= 1.
    out, _ = agmm(input=np.ones((2, 3), np.float32), x2=np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(out, np.full((2 * SIZE, 2), 3.0, np.float32))
    raises_status(tpmm.ERR_SHAPE, "k=0", input=np.ones((2, 0), np.float32), x2=np.ones((0, 2), np.float32))


def test_bias_errors():
    raises_status(tpmm.ERR_SHAPE, "bias", bias=np.ones(7, np.float16))
    raises_status(tpmm.ERR_SHAPE, "bias: ndim", bias=np.ones((1, 8), np.float16))
    raises_status(tpmm.ERR_DTYPE, "bias", bias=np.ones(8, np.float64))
    raises_status(tpmm.ERR_DTYPE, "bias", input=A.astype(np.float32), x2=B.astype(np.float32),
                  bias=np.ones(8, np.float16))


def test_group_does_not_exist():
    raises_status(tpmm.ERR_GROUP, "no_such_group", group="no_such_group")
    with pytest.raises(tpmm.Error) as e:
        tpmm.get_rank("no_such_group")
    assert e.value.status == tpmm.ERR_GROUP
    with pytest.raises(tpmm.Error):
        tpmm.destroy_group("no_such_group")


@pytest.mark.parametrize("ws", [SIZE + 1, 0, -1, 3 if SIZE != 3 else 5, 2 ** 40])
def test_world_size_wrong(ws):
    raises_status(tpmm.ERR_WORLD_SIZE, "world_size", world_size=ws)  # 2**40 reaches C clamped to INT_MAX


def test_gather_index():
    # gather_index 1 gathers x2: input's k must be world_size times x2's rows (test_agmm_ext.py has the rest)
    raises_status(tpmm.ERR_SHAPE, "k=16", gather_index=1, x2=np.ones((17, 8), np.float16))
    raises_status(tpmm.ERR_INVALID_ARGUMENT, "gather_index", gather_index=2)
    raises_status(tpmm.ERR_INVALID_ARGUMENT, "gather_index", gather_index=-1)


def test_comm_turn():
    raises_status(tpmm.ERR_INVALID_ARGUMENT, "comm_turn", comm_turn=-1)
    raises_status(tpmm.ERR_INVALID_ARGUMENT, "comm_turn", comm_turn=5)  # more chunks than m=4 rows
    # past a C int: the library sees the nearest one; rank 0's own message (the lowest failing rank's) names the
    # value given, the others quote what rank 0 passed on (they cannot know what it was given)
    own = RANK == 0
    raises_status(tpmm.ERR_INVALID_ARGUMENT, f"comm_turn={2 ** 40} (passed on as {2 ** 31 - 1}" if own else
                  f"rank 0 of group \"{W}\" rejected its arguments: tpmm_all_gather_matmul: comm_turn={2 ** 31 - 1} ",
                  comm_turn=2 ** 40)
    raises_status(tpmm.ERR_WORLD_SIZE, f"world_size={-2 ** 40} (passed on as {-2 ** 31}" if own else
                  f"world_size={-2 ** 31},", world_size=-2 ** 40)
    with pytest.raises(tpmm.Error, match=r"comm_turn=1099511627776 \(passed on as 2147483647" if own else
                       r"comm_turn=2147483647 is larger"):
        tpmm.matmul_all_reduce(np.ones((4, 16), np.float32), np.ones((16, 8), np.float32), W, SIZE, comm_turn=2 ** 40)


def test_trans_input_supported():
    # The seed rejects trans_input=True; tpmm supports it (stored (k, m)).
    out, g = agmm(input=np.ones((16, 4), np.float16), trans_input=True)
    assert out.shape == (4 * SIZE, 8) and g.shape == (4 * SIZE, 16)


@pytest.mark.skipif(SIZE < 2, reason="needs 2 ranks")
def test_ranks_disagree():
    # rank 1 passes a different m: every rank raises MISMATCH, nobody hangs
    a = np.ones((5 if RANK == 1 else 4, 16), np.float16)
    raises_status(tpmm.ERR_MISMATCH, "disagree", input=a)


@pytest.mark.skipif(SIZE < 2, reason="needs 2 ranks")
def test_ranks_in_different_calls():
    # the first field that differs is what the call is, by name: the operator, then plan against one-shot
    a, b = np.ones((2 * SIZE, 16), np.float32), np.ones((16, 8), np.float32)
    mine, other = ("tpmm_matmul_all_reduce", "tpmm_matmul_reduce_scatter")[::1 if RANK == 0 else -1]
    with pytest.raises(tpmm.Error) as e:
        (tpmm.matmul_all_reduce if RANK == 0 else tpmm.matmul_reduce_scatter)(a, b, W, SIZE)
    assert e.value.status == tpmm.ERR_MISMATCH, str(e.value)
    assert f"disagree on operation (this rank {mine}, rank {1 if RANK == 0 else 0} {other})" in str(e.value)
    with pytest.raises(tpmm.Error) as e:
        if RANK == 0:
            tpmm.matmul_all_reduce(a, b, W, SIZE)
        else:
            tpmm.plan_matmul_all_reduce(a, b, W, SIZE)
    assert e.value.status == tpmm.ERR_MISMATCH and "disagree on plan (this rank " in str(e.value), str(e.value)
    assert ("a one-shot call" if RANK == 0 else "of the group") in str(e.value).split("rank 1")[0], str(e.value)
    assert tpmm.matmul_all_reduce(a, b, W, SIZE)[0, 0] == 16 * SIZE  # still usable


@pytest.mark.skipif(SIZE < 2, reason="needs 2 ranks")
def test_one_rank_invalid():
    # only rank 1's bias is too short: every rank raises rank 1's error
    bias = np.ones(7 if RANK == 1 else 8, np.float16)
    e = raises_status(tpmm.ERR_SHAPE, "bias", bias=bias)
    if RANK != 1:
        assert "rank 1" in str(e)


@pytest.mark.skipif(SIZE < 2, reason="needs 2 ranks")
def test_one_rank_unsupported_dtype():
    a = A.astype(np.float64) if RANK == 0 else A
    with pytest.raises(tpmm.Error) as e:
        agmm(input=a)
    assert e.value.status in (tpmm.ERR_MISMATCH, tpmm.ERR_DTYPE)


def test_create_group_errors():
    with pytest.raises(tpmm.Error) as e:
        tpmm.create_group("py_bad", [SIZE + 3])  # out of range, caller not listed
    assert e.value.status == tpmm.ERR_INVALID_ARGUMENT or e.value.status == tpmm.ERR_GROUP
    with pytest.raises(tpmm.Error):
        tpmm.create_group(W, [RANK])  # name taken
    with pytest.raises(tpmm.Error):
        tpmm.create_group("", [RANK])
    with pytest.raises(tpmm.Error):
        tpmm.create_group("py_dup", [RANK, RANK])
    with pytest.raises(tpmm.Error):
        tpmm.destroy_group(W)  # the world group cannot be destroyed


def test_error_is_runtime_error_subclass():
    assert issubclass(tpmm.Error, RuntimeError)


def test_not_initialized_in_fresh_process():
    # a process that never called init (no MPI involved): NOT_INITIALIZED
    code = ("import tpmm, numpy as np\n"
            "try:\n"
            "    tpmm.all_gather_matmul(np.ones((2,2),np.float32), np.ones((2,2),np.float32), tpmm.WORLD_COMM_GROUP, 1)\n"
            "except tpmm.Error as e:\n"
            "    print('status', e.status, e)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "HYDRA", "MPI", "OMPI"))}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert f"status {tpmm.ERR_NOT_INITIALIZED}" in r.stdout, r.stdout + r.stderr
