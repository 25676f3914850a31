"""tpmm.all_gather_matmul on numpy arrays: results vs an fp64 reference, layouts, groups, the GIL."""
import itertools
import threading
import time

import numpy as np
import pytest

import tpmm
from conftest import RANK, SEED, SIZE
from refutil import case_data, check_close, reference, to_f64

W = tpmm.WORLD_COMM_GROUP
DTYPES = ["float16", "bfloat16", "float32"]
_case_ids = itertools.count(1)


def run_case(dtype, m, k, n, *, bias=False, trans_input=False, trans_x2=False, gather_output=True, comm_turn=0,
             layout=None, group=W, ranks=None):
    """Run one case on every rank of `group` and check this rank's results.
    layout(a) may return any view holding a's values (non-contiguous ...)."""
    case = next(_case_ids)
    ranks = list(range(SIZE)) if ranks is None else ranks
    a, b, c = case_data(SEED, case, RANK, m, k, n, dtype, bias)
    ref, absab, gathered = reference(SEED, case, ranks, RANK, m, k, n, dtype, bias)
    a_arg = a.T.copy() if trans_input else a  # stored (k, m) when trans_input
    b_arg = b.T.copy() if trans_x2 else b
    if layout is not None:
        a_arg, b_arg = layout(a_arg), layout(b_arg)
    out, gout = tpmm.all_gather_matmul(a_arg, b_arg, group, len(ranks), bias=c, gather_output=gather_output,
                                       comm_turn=comm_turn, trans_input=trans_input, trans_x2=trans_x2,
                                       bf16_bits=(dtype == "bfloat16"))
    assert isinstance(out, np.ndarray) and out.dtype == a.dtype
    check_close(out, ref, absab, k, dtype)
    if gather_output:
        assert gout.shape == (m * len(ranks), k) and gout.dtype == a.dtype
        # gather_out is a bit-exact copy of the gathered rows
        np.testing.assert_array_equal(gout.view(np.uint8), gathered.view(np.uint8))
    else:
        assert gout.shape == (0,) and gout.dtype == a.dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 33, 5), (64, 256, 96)])
def test_values(dtype, m, k, n):
    run_case(dtype, m, k, n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_input,trans_x2", [(False, True), (True, False), (True, True)])
def test_transposed(dtype, trans_input, trans_x2):
    run_case(dtype, 9, 40, 17, trans_input=trans_input, trans_x2=trans_x2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias(dtype):
    run_case(dtype, 5, 64, 12, bias=True)


def test_bias_float32_with_fp16_input():
    case = next(_case_ids)
    a, b, _ = case_data(SEED, case, RANK, 4, 32, 6, "float16")
    bias = np.linspace(-1, 1, 6).astype(np.float32)
    ref, absab, _ = reference(SEED, case, range(SIZE), RANK, 4, 32, 6, "float16")
    out, _ = tpmm.all_gather_matmul(a, b, W, SIZE, bias=bias)
    check_close(out, ref + bias.astype(np.float64), absab, 32, "float16")


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_gather_output(dtype):
    run_case(dtype, 6, 20, 8, gather_output=False)


@pytest.mark.parametrize("comm_turn", [1, 3])
def test_comm_turn(comm_turn):
    run_case("float32", 6, 24, 10, comm_turn=comm_turn)


# ---- non-contiguous inputs ----
def fortran(x):
    return np.asfortranarray(x)  # column-major: copied by tpmm


def padded_rows(x):
    big = np.zeros((x.shape[0], x.shape[1] + 7), x.dtype)  # ld > cols: passed as is
    big[:, :x.shape[1]] = x
    return big[:, :x.shape[1]]


def every_other_column(x):
    big = np.zeros((x.shape[0], 2 * x.shape[1]), x.dtype)
    big[:, ::2] = x
    return big[:, ::2]


def reversed_rows(x):
    return x[::-1].copy()[::-1]  # negative row stride


def transposed_view(x):
    return np.ascontiguousarray(x.T).T  # same values, column-major strides


def misaligned(x):
    buf = np.zeros(x.nbytes + 1, np.uint8)
    v = np.ndarray(x.shape, x.dtype, buffer=buf.data, offset=1)  # not aligned to the item size
    v[...] = x
    return v


@pytest.mark.parametrize("layout", [fortran, padded_rows, every_other_column, reversed_rows, transposed_view,
                                    misaligned], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_noncontiguous(layout, dtype):
    run_case(dtype, 8, 24, 12, layout=layout)


def test_noncontiguous_with_trans_flags():
    run_case("bfloat16", 8, 24, 12, trans_input=True, trans_x2=True, layout=every_other_column)


def test_inputs_not_modified():
    a, b, _ = case_data(SEED, next(_case_ids), RANK, 4, 16, 4, "float32")
    a0, b0 = a.copy(), b.copy()
    tpmm.all_gather_matmul(a, b, W, SIZE)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


def test_empty_m():
    out, gout = tpmm.all_gather_matmul(np.zeros((0, 8), np.float32), np.ones((8, 3), np.float32), W, SIZE)
    assert out.shape == (0, 3) and gout.shape == (0, 8)


# ---- groups ----
def test_world_group_queries():
    assert tpmm.WORLD_COMM_GROUP == "tpmm_world_group"
    assert tpmm.get_rank() == tpmm.get_rank(tpmm.WORLD_COMM_GROUP) == RANK
    assert tpmm.get_group_size() == SIZE
    assert 0 <= RANK < SIZE


def test_reversed_group():
    ranks = list(reversed(range(SIZE)))
    tpmm.create_group("py_reversed", ranks)
    try:
        assert tpmm.get_rank("py_reversed") == ranks.index(RANK)
        assert tpmm.get_group_size("py_reversed") == SIZE
        run_case("float16", 3, 16, 5, group="py_reversed", ranks=ranks)  # row blocks in group-rank order
    finally:
        tpmm.destroy_group("py_reversed")


def test_self_group():
    # collective over the listed rank only: each rank makes its own
    tpmm.create_group("py_self", [RANK])
    try:
        run_case("float32", 4, 8, 3, group="py_self", ranks=[RANK])
    finally:
        tpmm.destroy_group("py_self")
    with pytest.raises(tpmm.Error) as e:
        tpmm.get_rank("py_self")
    assert e.value.status == tpmm.ERR_GROUP


@pytest.mark.skipif(SIZE < 4 or SIZE % 2, reason="needs an even world of at least 4 ranks")
def test_pair_groups():
    pair = [RANK - RANK % 2, RANK - RANK % 2 + 1]
    tpmm.create_group("py_pair", pair)
    try:
        run_case("bfloat16", 5, 32, 7, group="py_pair", ranks=pair)
    finally:
        tpmm.destroy_group("py_pair")


# ---- bf16 helpers ----
def test_bf16_round_trip_and_rounding():
    x = np.array([0.0, -0.0, 1.0, -2.5, 2.0 ** 127, np.inf, -np.inf, 2.0 ** -130], np.float32)
    np.testing.assert_array_equal(tpmm.bf16_to_float32(tpmm.float32_to_bf16(x)), x)
    # 1 + 2^-8 is halfway between bf16 1.0 and 1+2^-7: ties to even (1.0);
    # 1 + 3*2^-8 is halfway between 1+2^-7 and 1+2^-6: ties to even (1+2^-6).
    v = np.array([1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 1 + 2.0 ** -8 + 2.0 ** -20, 3.4e38], np.float32)
    got = tpmm.bf16_to_float32(tpmm.float32_to_bf16(v))
    np.testing.assert_array_equal(got[:3], np.array([1.0, 1 + 2.0 ** -6, 1 + 2.0 ** -7], np.float32))
    assert np.isinf(got[3])  # above the largest bf16: rounds to inf
    n = tpmm.float32_to_bf16(np.array([np.nan], np.float32))
    assert np.isnan(tpmm.bf16_to_float32(n))[0]
    with pytest.raises(TypeError):
        tpmm.bf16_to_float32(np.zeros(3, np.float32))


def test_bf16_all_values_match_reference():
    # every bf16 value, widened and narrowed again, is unchanged (NaNs stay NaN)
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    f = tpmm.bf16_to_float32(bits)
    back = tpmm.float32_to_bf16(f)
    finite = ~np.isnan(f)
    np.testing.assert_array_equal(back[finite], bits[finite])
    assert np.isnan(tpmm.bf16_to_float32(back[~finite])).all()


# ---- the GIL is released while the operation runs ----
def test_gil_released():
    m, k, n = max(1, 512 // SIZE), 4096, 4096  # a 17 GFLOP GEMM on every rank: >= 0.1 s here
    a = np.ones((m, k), np.float32)
    b = np.ones((k, n), np.float32)
    span = {}

    def worker():
        if RANK == 0:
            time.sleep(0.2)  # the other ranks wait for rank 0 inside the call
        span["t0"] = time.perf_counter()
        tpmm.all_gather_matmul(a, b, W, SIZE)
        span["t1"] = time.perf_counter()

    t = threading.Thread(target=worker)
    stamps = []
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
        for _ in range(200):
            pass
    t.join()
    # With the GIL held by the C call this thread could not run inside the
    # call at all; the Python prelude is far shorter than the 20 ms margin.
    lo, hi = span["t0"] + 0.02, span["t1"] - 0.002
    inside = sum(lo < s < hi for s in stamps)
    assert span["t1"] - span["t0"] > 0.05, "operation too short to tell"
    assert inside > 10, f"main thread ran {inside} times during a {span['t1'] - span['t0']:.3f}s call"
