"""all_gather_matmul's forms of issue 15 from Python: uneven shards (counts),
gather_index 1 (x2 gathered), several weights (x2 a list), one-shot and
through plans, numpy and torch bfloat16, against an fp64 reference built
from every rank's regenerated data (fresh inputs each call, outputs poisoned
by conftest); and their errors, raised on every rank.

Cases marked long (larger sizes) run only with TPMM_TEST_LONG=1 (the CTest
test py_agmm_ext_long_np3, label long)."""
import itertools
import os
import sys

import numpy as np
import pytest

import tpmm
from conftest import RANK, SEED, SIZE, guarded_group
from refutil import check_close, to_f64, to_storage

W = tpmm.WORLD_COMM_GROUP
DTYPES = ["float16", "bfloat16", "float32"]
LONG = os.environ.get("TPMM_TEST_LONG", "0") != "0"
long_only = pytest.mark.skipif(not LONG, reason="long case: TPMM_TEST_LONG=1 runs it")
_case_ids = itertools.count(9000)  # case ids distinct from the other files'


def rand(case, r, shape, dtype, salt=0):
    """Rank r's array of this case in numpy storage (any rank regenerates any other's)."""
    return to_storage(np.random.default_rng([SEED, case, r, salt]).standard_normal(shape), dtype)


def uneven(base=(3, 0, 5, 2)):
    """Uneven counts for this world, with a rank of 0 rows when it has 2 ranks or more."""
    return [base[q % len(base)] for q in range(SIZE)]


def to_kind(kind, a):
    """A numpy storage array as an argument of kind (torch: bf16 from uint16 bits)."""
    if kind == "numpy" or a is None:
        return a
    torch = sys.modules["torch"]
    if a.dtype == np.uint16:
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(a.copy())


def storage(x):
    """A result in numpy storage (uint16 bits for torch bf16)."""
    if isinstance(x, np.ndarray):
        return x
    torch = sys.modules["torch"]
    return x.view(torch.int16).numpy().view(np.uint16) if x.dtype == torch.bfloat16 else x.numpy()


def expect(out, A, B, c, dtype, what="output"):
    """out against fp64 A @ B (+ c); A, B, c in numpy storage (c may be float32)."""
    A64, B64 = to_f64(A, dtype), to_f64(B, dtype)
    ref = A64 @ B64
    if c is not None:
        ref = ref + (c.astype(np.float64) if c.dtype == np.float32 else to_f64(c, dtype))
    check_close(storage(out), ref, np.abs(A64) @ np.abs(B64), A.shape[1], dtype, what)


def expect_gathered(gout, rows, gather_output):
    """gather_out: the gathered rows bit for bit, or shape (0,)."""
    g = storage(gout)
    if not gather_output:
        assert g.shape == (0,)
        return
    assert g.shape == rows.shape and g.dtype == rows.dtype
    np.testing.assert_array_equal(g.view(np.uint8), rows.view(np.uint8))


def common_kw(kind, dtype, **kw):
    return dict(kw, bf16_bits=True) if kind == "numpy" and dtype == "bfloat16" else kw


# ---- the forms: (make_input(case), x2, keywords, check(case, output, gather_out)) ----
def form_counts(kind, dtype, *, counts=None, k=24, n=10, bias=True, trans_input=False, trans_x2=False,
                gather_output=True, comm_turn=0):
    """gather_index 0 over uneven shards of input: counts[q] rows on rank q."""
    counts = uneven() if counts is None else counts
    wcase = next(_case_ids)
    b = rand(wcase, RANK, (k, n), dtype)
    c = rand(wcase, RANK, (n,), dtype, salt=1) if bias else None

    def make_input(case):
        a = rand(case, RANK, (counts[RANK], k), dtype)
        return to_kind(kind, a.T.copy() if trans_input else a)

    def check(case, out, gout):
        A = np.vstack([rand(case, q, (counts[q], k), dtype) for q in range(SIZE)])
        expect(out, A, b, c, dtype)
        expect_gathered(gout, A, gather_output)

    kw = common_kw(kind, dtype, bias=to_kind(kind, c), counts=counts, trans_input=trans_input, trans_x2=trans_x2,
                   gather_output=gather_output, comm_turn=comm_turn)
    return make_input, to_kind(kind, b.T.copy() if trans_x2 else b), kw, check


def form_gather_x2(kind, dtype, *, ks=None, m=5, n=7, bias=True, trans_input=False, trans_x2=False,
                   gather_output=True):
    """gather_index 1: rank q holds x2's rows [sum(ks[:q]), sum(ks[:q+1])) (ks None: 6 each, no counts)."""
    ks_ = [6] * SIZE if ks is None else ks
    K = sum(ks_)
    wcase = next(_case_ids)
    shards = [rand(wcase, q, (ks_[q], n), dtype) for q in range(SIZE)]
    c = rand(wcase, RANK, (n,), dtype, salt=1) if bias else None

    def make_input(case):
        a = rand(case, RANK, (m, K), dtype)
        return to_kind(kind, a.T.copy() if trans_input else a)

    def check(case, out, gout):
        expect(out, rand(case, RANK, (m, K), dtype), np.vstack(shards), c, dtype)
        expect_gathered(gout, np.vstack(shards), gather_output)

    kw = common_kw(kind, dtype, bias=to_kind(kind, c), gather_index=1, counts=ks, trans_input=trans_input,
                   trans_x2=trans_x2, gather_output=gather_output)
    x2 = shards[RANK].T.copy() if trans_x2 else shards[RANK]
    return make_input, to_kind(kind, x2), kw, check


def form_list(kind, dtype, *, m=3, k=20, ns=(5, 8, 3), trans_x2=False, gather_output=True, as_tuple=False,
              singles=False):
    """x2 a list of weights (k, n_i), biases [input's dtype, None, float32]; singles: also compare each
    output bit for bit with a call with that weight alone."""
    wcase = next(_case_ids)
    ws = [rand(wcase, RANK, (k, n), dtype, salt=i) for i, n in enumerate(ns)]
    bs = [rand(wcase, RANK, (n,), "float32" if i else dtype, salt=10 + i) if i != 1 else None
          for i, n in enumerate(ns)]
    x2 = [to_kind(kind, w.T.copy() if trans_x2 else w) for w in ws]
    x2 = tuple(x2) if as_tuple else x2
    bias = [to_kind(kind, b) for b in bs]
    kw = common_kw(kind, dtype, bias=bias, trans_x2=trans_x2, gather_output=gather_output)

    def make_input(case):
        return to_kind(kind, rand(case, RANK, (m, k), dtype))

    def check(case, outs, gout):
        assert isinstance(outs, list) and len(outs) == len(ws)
        A = np.vstack([rand(case, q, (m, k), dtype) for q in range(SIZE)])
        for i, (o, w, b) in enumerate(zip(outs, ws, bs)):
            expect(o, A, w, b, dtype, f"output[{i}]")
        expect_gathered(gout, A, gather_output)
        for i in range(len(ws) if singles else 0):
            one, _ = tpmm.all_gather_matmul(make_input(case), x2[i], W, SIZE, bias=bias[i], trans_x2=trans_x2,
                                            gather_output=False, bf16_bits=kw.get("bf16_bits", False))
            np.testing.assert_array_equal(storage(outs[i]).view(np.uint8), storage(one).view(np.uint8))

    return make_input, x2, kw, check


FORMS = {"counts": form_counts, "gather_x2": form_gather_x2, "list": form_list}


def drive(form, plan_calls=0, group=W):
    """One call of form (make_input, x2, kw, check), or a plan made from one
    input and called on plan_calls fresh ones."""
    make_input, x2, kw, check = form
    cases = [next(_case_ids) for _ in range(max(1, plan_calls))]
    if not plan_calls:
        x = make_input(cases[0])
        out, gout = tpmm.all_gather_matmul(x, x2, group, SIZE, **kw)
        assert all(type(o) is type(x) for o in (out if isinstance(out, list) else [out]) + [gout])
        check(cases[0], out, gout)
        return
    with tpmm.plan_all_gather_matmul(make_input(cases[0]), x2, group, SIZE, **kw) as plan:
        for case in cases:
            out, gout = plan(make_input(case))
            check(case, out, gout)
    assert plan.closed


# ---- uneven shards ----
@pytest.mark.parametrize("dtype", DTYPES)
def test_counts(dtype):
    drive(form_counts("numpy", dtype))


def test_counts_options():
    drive(form_counts("numpy", "float32", counts=uneven((2, 4, 0, 1)), trans_input=True, trans_x2=True,
                      comm_turn=2))
    drive(form_counts("numpy", "float16", bias=False, gather_output=False))


def test_counts_all_empty():
    drive(form_counts("numpy", "float32", counts=[0] * SIZE))


# ---- gather_index 1 ----
@pytest.mark.parametrize("trans_input,trans_x2", [(False, False), (False, True), (True, False), (True, True)])
def test_gather_x2(trans_input, trans_x2):
    drive(form_gather_x2("numpy", "float32", trans_input=trans_input, trans_x2=trans_x2))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gather_x2_dtypes(dtype):
    drive(form_gather_x2("numpy", dtype, trans_x2=True))


def test_gather_x2_counts():
    drive(form_gather_x2("numpy", "float32", ks=uneven((4, 0, 7, 1)), trans_input=True))
    drive(form_gather_x2("numpy", "float16", ks=uneven((1, 3)), bias=False, gather_output=False))


# ---- several weights ----
@pytest.mark.parametrize("dtype", DTYPES)
def test_list(dtype):
    drive(form_list("numpy", dtype, singles=True))


def test_list_options():
    drive(form_list("numpy", "float32", trans_x2=True, gather_output=False, as_tuple=True, singles=True))
    drive(form_list("numpy", "float16", ns=(4,)))


# ---- plans of each form ----
PLAN_FORMS = {
    "counts": lambda kind, dt: form_counts(kind, dt),
    "counts_transposed": lambda kind, dt: form_counts(kind, dt, trans_input=True, trans_x2=True, bias=False),
    "gather_x2": lambda kind, dt: form_gather_x2(kind, dt, trans_x2=True),
    "gather_x2_counts": lambda kind, dt: form_gather_x2(kind, dt, ks=uneven((2, 5, 0))),
    "list": lambda kind, dt: form_list(kind, dt),
}


@pytest.mark.parametrize("name", PLAN_FORMS)
def test_plan(name):
    drive(PLAN_FORMS[name]("numpy", "float32"), plan_calls=3)


@pytest.mark.parametrize("name", ["counts", "gather_x2", "list"])
def test_plan_life_cycle(name):
    make_input, x2, kw, check = FORMS[name]("numpy", "float32")
    case = next(_case_ids)
    x = make_input(case)
    with tpmm.plan_all_gather_matmul(x, x2, W, SIZE, **kw) as plan:
        with pytest.raises(tpmm.Error) as e:  # another shape on every rank
            plan(np.ones((x.shape[0] + 1, x.shape[1]), np.float32))
        assert e.value.status == tpmm.ERR_SHAPE, str(e.value)
        check(case, *plan(x))  # still usable
    assert plan.closed
    with pytest.raises(tpmm.Error) as e:
        plan(x)
    assert e.value.status == tpmm.ERR_INVALID_ARGUMENT and "closed" in str(e.value)


def test_plan_wrong_input_on_one_rank():
    with guarded_group("py_agmm_ext_plan") as g:  # one group for every form: making one costs
        for name in FORMS:
            make_input, x2, kw, check = FORMS[name]("numpy", "float32")
            case = next(_case_ids)
            x = make_input(case)
            with tpmm.plan_all_gather_matmul(x, x2, g, SIZE, **kw) as plan:
                with pytest.raises(tpmm.Error) as e:
                    plan(x.astype(np.float16) if RANK == SIZE - 1 else x)
                assert e.value.status in (tpmm.ERR_DTYPE, tpmm.ERR_SHAPE), f"{name}: {e.value}"
                if RANK != SIZE - 1:
                    assert f"rank {SIZE - 1}" in str(e.value), f"{name}: {e.value}"
                check(case, *plan(x))


# ---- torch bfloat16: each form, one-shot and planned ----
@pytest.mark.parametrize("plan_calls", [0, 2])
@pytest.mark.parametrize("name", ["counts", "gather_x2", "list"])
def test_torch_bf16(name, plan_calls):
    pytest.importorskip("torch")
    kw = {"singles": not plan_calls} if name == "list" else {"trans_x2": True}
    drive(FORMS[name]("torch", "bfloat16", **kw), plan_calls=plan_calls)


# ---- errors: every rank passes the same arguments and raises ----
A = np.ones((2, 16), np.float32)  # 2 rows on every rank
B = np.ones((16, 8), np.float32)
ERRORS = [  # (id, keywords over input=A, x2=B; exception, status, words in the message)
    ("counts_length", dict(counts=[2] * (SIZE + 1)), ValueError, None, "counts has"),
    ("counts_not_int", dict(counts=[2.0] * SIZE), TypeError, None, "counts[0]"),
    ("counts_not_sequence", dict(counts=2), TypeError, None, "counts"),
    ("counts_negative", dict(counts=[-1] + [2] * (SIZE - 1)), tpmm.Error, tpmm.ERR_INVALID_ARGUMENT, "negative"),
    ("counts_own_rank", dict(counts=[3] * SIZE), tpmm.Error, tpmm.ERR_SHAPE, "=3, but"),
    ("counts_gather_x2_sum", dict(x2=np.ones((5, 8), np.float32), gather_index=1, counts=[5] * SIZE), tpmm.Error,
     tpmm.ERR_SHAPE, "k=16"),
    ("gather_x2_equal_sum", dict(x2=np.ones((17, 8), np.float32), gather_index=1), tpmm.Error, tpmm.ERR_SHAPE,
     "k=16"),
    ("list_bias_length", dict(x2=[B, B], bias=[None]), ValueError, None, "bias has 1"),
    ("list_gather_index_1", dict(x2=[B, B], gather_index=1), tpmm.Error, tpmm.ERR_UNSUPPORTED, "gather_index"),
    ("list_counts", dict(x2=[B, B], counts=[2] * SIZE), tpmm.Error, tpmm.ERR_UNSUPPORTED, "counts"),
    ("list_empty", dict(x2=[]), tpmm.Error, tpmm.ERR_INVALID_ARGUMENT, "nb=0"),
    ("list_17", dict(x2=[B] * 17), tpmm.Error, tpmm.ERR_INVALID_ARGUMENT, "nb=17"),
    ("list_k", dict(x2=[B, np.ones((17, 8), np.float32)]), tpmm.Error, tpmm.ERR_SHAPE, "x2[1]"),
    ("list_dtype", dict(x2=[B, B.astype(np.float16)]), tpmm.Error, tpmm.ERR_DTYPE, "x2[1]"),
    ("list_bias_shape", dict(x2=[B, B], bias=[None, np.ones(3, np.float32)]), tpmm.Error, tpmm.ERR_SHAPE,
     "bias[1]"),
    ("list_entry_kind", dict(x2=[B, B.tolist()]), TypeError, None, "x2[1]"),
    ("list_bias_not_list", dict(x2=[B, B], bias=np.ones(8, np.float32)), TypeError, None, "bias"),
    ("bias_list_one_weight", dict(bias=[None]), TypeError, None, "bias"),
]


@pytest.mark.parametrize("plan", [False, True])
@pytest.mark.parametrize("kw,exc,status,words", [r[1:] for r in ERRORS], ids=[r[0] for r in ERRORS])
def test_errors_on_every_rank(plan, kw, exc, status, words):
    kw = dict(kw)
    x2 = kw.pop("x2", B)
    fn = tpmm.plan_all_gather_matmul if plan else tpmm.all_gather_matmul
    with pytest.raises(exc) as e:
        fn(A, x2, W, SIZE, **kw)
    assert words in str(e.value), str(e.value)
    if status is not None:
        assert e.value.status == status, str(e.value)


# ---- errors: one rank's arguments differ; every rank raises, nobody waits ----
ONE_RANK = [  # (id, keywords of every rank, of the last rank; the last rank's exception; the others' status and
    # words: a failure to prepare the call in Python is the library's INVALID_ARGUMENT with the binding's hint; a
    # disagreement names the field and carries the last rank's own report)
    ("counts_mismatch", dict(counts=[2] * SIZE), dict(counts=[3] + [2] * (SIZE - 1)), tpmm.Error,
     tpmm.ERR_MISMATCH, "disagree on counts"),
    ("counts_length", dict(counts=[2] * SIZE), dict(counts=[2] * (SIZE + 1)), ValueError,
     tpmm.ERR_INVALID_ARGUMENT, "could not prepare its call in Python"),
    ("counts_not_int", dict(counts=[2] * SIZE), dict(counts=[2.5] * SIZE), TypeError,
     tpmm.ERR_INVALID_ARGUMENT, "could not prepare its call in Python"),
    ("list_bias_length", dict(x2=[B, B], bias=[None, None]), dict(x2=[B, B], bias=[None]), ValueError,
     tpmm.ERR_INVALID_ARGUMENT, "could not prepare its call in Python"),
    ("comm_turn_negative", dict(), dict(comm_turn=-1), tpmm.Error, tpmm.ERR_MISMATCH,
     ("disagree on comm_turn", f"rank {SIZE - 1} also rejected its arguments: ", "comm_turn=-1 is negative")),
    # counts whose sum passes int64 (no output can be allocated), a 0-d array (has __len__, cannot be listed)
    ("counts_huge", dict(counts=[2] * SIZE), dict(counts=[2 ** 62] * SIZE), Exception, None, f"rank {SIZE - 1}"),
    ("counts_0d", dict(counts=[2] * SIZE), dict(counts=np.array(2)), TypeError, tpmm.ERR_INVALID_ARGUMENT,
     "could not prepare its call in Python"),
]


@pytest.mark.skipif(SIZE < 2, reason="needs 2 ranks")
def test_errors_on_one_rank():
    with guarded_group("py_agmm_ext_one") as g:  # one group for every row: making one costs
        for (name, kw, last, exc, status, words), plan in itertools.product(ONE_RANK, (False, True)):
            kw = dict(last if RANK == SIZE - 1 else kw)
            x2 = kw.pop("x2", B)
            fn = tpmm.plan_all_gather_matmul if plan else tpmm.all_gather_matmul
            what = f"{name}, plan={plan}"
            with pytest.raises(tpmm.Error if RANK != SIZE - 1 else exc) as e:
                fn(A, x2, g, SIZE, **kw)
            if RANK != SIZE - 1:
                for word in (words,) if isinstance(words, str) else words:
                    assert word in str(e.value), f"{what}: {e.value}"
                assert status is None or e.value.status == status, f"{what}: {e.value}"
            elif exc is tpmm.Error:
                assert e.value.status == status, f"{what}: {e.value}"
            out, _ = tpmm.all_gather_matmul(A, B, g, SIZE)  # the group stays usable
            assert (out == 16).all(), what


# ---- long: larger sizes, every dtype ----
@long_only
@pytest.mark.parametrize("dtype", DTYPES)
def test_long(dtype):
    drive(form_counts("numpy", dtype, counts=uneven((64, 0, 130, 17)), k=384, n=96, comm_turn=3))
    drive(form_gather_x2("numpy", dtype, ks=uneven((128, 40, 0)), m=70, n=96, trans_x2=True), plan_calls=2)
    drive(form_list("numpy", dtype, m=48, k=256, ns=(96, 200, 31, 64), singles=True))
    drive(form_list("numpy", dtype, m=48, k=256, ns=(96, 200, 31)), plan_calls=2)
