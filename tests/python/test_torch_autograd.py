"""tpmm.torch: the autograd functions of a sequence-parallel layer, against
the gradients of the same unsharded block computed by plain torch in fp64 on
one rank (every rank regenerates every rank's shards from the seed).

Tolerances derive from the dtype. A single operator's forward and gradients
are each one product rounded once, so they are checked element by element
as the other tests are: |got - ref| <= u*|ref| + (K + 2)*2^-24 * sum|terms|
with K the number of fp32 additions (tpmm's reduce adds W - 1 more). The
composed block (all_gather_matmul -> GELU -> matmul_reduce_scatter) rounds
its intermediates to the dtype too, so it is checked normwise:
||got - ref|| <= (4u + K*2^-24) * ||ref||.

The weight gradients are checked at a small size, where tpmm computes them,
and at a large one, where bfloat16 goes to torch.matmul if torch accumulates
such products in fp32 (tpmm.torch probes it).

Also: `import tpmm` never imports torch, `import tpmm.torch` without torch
is an ImportError naming torch.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import tpmm
from conftest import RANK, SEED, SIZE
from refutil import UNIT, check_close

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
W = tpmm.WORLD_COMM_GROUP
DTYPES = ["float32", "bfloat16"]  # torch's CPU matmul (the weight gradients) has no float16
CASE_BASE = 9000


def tdt(dtype):
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def rand(case, r, tag, shape, dtype, scale=1.0):
    """Rank r's tensor `tag` of a case, rounded to dtype: any rank can make any rank's."""
    rng = np.random.default_rng([SEED, case, r, tag])
    return (torch.from_numpy(rng.standard_normal(shape)) * scale).to(tdt(dtype))


def bits(t, dtype):
    """A tensor as refutil takes it (uint16 bits for bfloat16)."""
    t = t.detach().contiguous()
    return t.view(torch.int16).numpy().view(np.uint16) if dtype == "bfloat16" else t.numpy()


def check(got, ref, mag, terms, dtype, what):
    assert got.dtype == tdt(dtype), f"{what}: dtype {got.dtype}"
    check_close(bits(got, dtype), ref.numpy(), mag.numpy(), terms, dtype, what)


def leaf(t, grad):
    return t.clone().requires_grad_(grad)


# ---- all_gather_matmul: y = allgather(x) @ w ----
# (grads, shapes): the weight gradient's product is small (tpmm computes it) or large (torch.matmul may, for bf16)
GRADS = [("both", "small"), ("x", "small"), ("w", "small"), ("both", "large")]


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grads,size", GRADS)
def test_all_gather_matmul(dtype, grads, size):
    case = CASE_BASE + DTYPES.index(dtype) * 10 + GRADS.index((grads, size))
    # tokens per rank, input width, this rank's output columns
    s, k, nl = (5, 24, 7) if size == "small" else (24, 64, 48)
    xs = [rand(case, r, 0, (s, k), dtype) for r in range(SIZE)]
    ws = [rand(case, r, 1, (k, nl), dtype) for r in range(SIZE)]
    gs = [rand(case, r, 2, (s * SIZE, nl), dtype) for r in range(SIZE)]  # upstream gradient of each rank's output
    x, w = leaf(xs[RANK], grads != "w"), leaf(ws[RANK], grads != "x")
    y = tpmm.torch.all_gather_matmul(x, w, W, SIZE)
    assert tuple(y.shape) == (s * SIZE, nl) and y.dtype == tdt(dtype)
    y.backward(gs[RANK])

    # the unsharded block: X (sW, k) @ Wf (k, n), n = nl*W, this rank's columns
    X = torch.cat(xs).double().requires_grad_()
    Wf = torch.cat(ws, dim=1).double().requires_grad_()
    G = torch.cat(gs, dim=1).double()
    Y = X @ Wf
    Y.backward(G)
    cols = slice(RANK * nl, (RANK + 1) * nl)
    rows = slice(RANK * s, (RANK + 1) * s)
    check(y, Y[:, cols].detach(), X.detach().abs() @ Wf.detach().abs()[:, cols], k, dtype, "output")
    if grads != "w":
        # dX = G @ Wf^T: nl products per rank in fp32, summed over the ranks
        check(x.grad, X.grad[rows], (G.abs() @ Wf.detach().abs().t())[rows], nl + SIZE, dtype, "grad x")
    else:
        assert x.grad is None
    if grads != "x":
        check(w.grad, Wf.grad[:, cols], X.detach().abs().t() @ G.abs()[:, cols], s * SIZE, dtype, "grad w")
    else:
        assert w.grad is None


# ---- matmul_reduce_scatter: y = reduce_scatter(x @ w) ----
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grads,size", GRADS)
def test_matmul_reduce_scatter(dtype, grads, size):
    case = CASE_BASE + 100 + DTYPES.index(dtype) * 10 + GRADS.index((grads, size))
    # tokens per rank, this rank's input columns, output width
    s, kl, n = (4, 9, 11) if size == "small" else (24, 48, 64)
    xs = [rand(case, r, 0, (s * SIZE, kl), dtype) for r in range(SIZE)]
    ws = [rand(case, r, 1, (kl, n), dtype) for r in range(SIZE)]
    gs = [rand(case, r, 2, (s, n), dtype) for r in range(SIZE)]
    x, w = leaf(xs[RANK], grads != "w"), leaf(ws[RANK], grads != "x")
    y = tpmm.torch.matmul_reduce_scatter(x, w, W, SIZE)
    assert tuple(y.shape) == (s, n) and y.dtype == tdt(dtype)
    y.backward(gs[RANK])

    # the unsharded block: X (sW, kl*W) @ Wf (kl*W, n), this rank's rows of the output
    X = torch.cat(xs, dim=1).double().requires_grad_()
    Wf = torch.cat(ws).double().requires_grad_()
    G = torch.cat(gs).double()
    Y = X @ Wf
    Y.backward(G)
    cols = slice(RANK * kl, (RANK + 1) * kl)
    rows = slice(RANK * s, (RANK + 1) * s)
    check(y, Y[rows].detach(), (X.detach().abs() @ Wf.detach().abs())[rows], kl + SIZE, dtype, "output")
    if grads != "w":
        check(x.grad, X.grad[:, cols], G.abs() @ Wf.detach().abs()[cols].t(), n, dtype, "grad x")
    else:
        assert x.grad is None
    if grads != "x":
        check(w.grad, Wf.grad[cols], X.detach().abs()[:, cols].t() @ G.abs(), s * SIZE, dtype, "grad w")
    else:
        assert w.grad is None


# ---- the sequence-parallel MLP block ----
def normwise(got, ref, terms, dtype, what):
    got, ref = got.detach().double(), ref.detach()
    err = (got - ref).norm().item()
    tol = (4 * UNIT[dtype] + terms * 2.0 ** -24) * ref.norm().item()
    assert err <= tol, f"{what} {dtype}: ||err|| {err:.3e} > {tol:.3e} (||ref|| {ref.norm().item():.3e})"


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_sequence_parallel_mlp(dtype):
    case = CASE_BASE + 200 + DTYPES.index(dtype)
    s, h, fl = 8, 32, 16  # tokens per rank, model width, this rank's hidden columns (f = fl*W)
    xs = [rand(case, r, 0, (s, h), dtype) for r in range(SIZE)]
    w1s = [rand(case, r, 1, (h, fl), dtype, h ** -0.5) for r in range(SIZE)]
    w2s = [rand(case, r, 2, (fl, h), dtype, (fl * SIZE) ** -0.5) for r in range(SIZE)]
    gs = [rand(case, r, 3, (s, h), dtype) for r in range(SIZE)]
    x, w1, w2 = leaf(xs[RANK], True), leaf(w1s[RANK], True), leaf(w2s[RANK], True)
    a = torch.nn.functional.gelu(tpmm.torch.all_gather_matmul(x, w1, W, SIZE))
    y = tpmm.torch.matmul_reduce_scatter(a, w2, W, SIZE)
    y.backward(gs[RANK])

    X = torch.cat(xs).double().requires_grad_()
    W1 = torch.cat(w1s, dim=1).double().requires_grad_()
    W2 = torch.cat(w2s).double().requires_grad_()
    Y = torch.nn.functional.gelu(X @ W1) @ W2
    Y.backward(torch.cat(gs).double())
    rows, cols = slice(RANK * s, (RANK + 1) * s), slice(RANK * fl, (RANK + 1) * fl)
    terms = max(h, fl * SIZE, s * SIZE)
    normwise(y, Y[rows], terms, dtype, "output")
    normwise(x.grad, X.grad[rows], terms, dtype, "grad x")
    normwise(w1.grad, W1.grad[:, cols], terms, dtype, "grad w1")
    normwise(w2.grad, W2.grad[cols], terms, dtype, "grad w2")


@needs_torch
def test_torch_bf16_probe():
    # this torch sends large bf16 products to oneDNN (fp32 sums); a torch that does not makes tpmm.torch use tpmm
    import tpmm.torch as tt
    assert tt._torch_accumulates_bf16_in_fp32() in (True, False)
    a = torch.ones(4, 8, dtype=torch.bfloat16)
    b = torch.full((4, 5), 2.0 ** -8, dtype=torch.bfloat16)
    assert torch.equal(tt._tn(a, b), torch.full((8, 5), 2.0 ** -6, dtype=torch.bfloat16))


@needs_torch
def test_errors_reach_every_rank():
    # a wrong world_size is the library's error on every rank, in the forward as in any call
    x, w = torch.ones(2, 4, requires_grad=True), torch.ones(4, 3, requires_grad=True)
    for fn in (tpmm.torch.all_gather_matmul, tpmm.torch.matmul_reduce_scatter):
        with pytest.raises(tpmm.Error) as e:
            fn(x if fn is tpmm.torch.all_gather_matmul else torch.ones(2 * SIZE, 4), w, W, SIZE + 1)
        assert e.value.status == tpmm.ERR_WORLD_SIZE


@needs_torch
@pytest.mark.skipif(SIZE < 2, reason="needs 2 ranks")
def test_requires_grad_differs_names_the_cause():
    # what the forward gathers follows w.requires_grad: ranks that differ disagree, and the message says why
    x, w = torch.ones(2, 4), torch.ones(4, 3, requires_grad=RANK == 0)
    with pytest.raises(tpmm.Error) as e:
        tpmm.torch.all_gather_matmul(x, w, W, SIZE)
    assert e.value.status == tpmm.ERR_MISMATCH and "disagree on gather_output" in str(e.value), str(e.value)
    assert "same requires_grad on every rank" in str(e.value), str(e.value)
    out = tpmm.torch.all_gather_matmul(x, torch.ones(4, 3), W, SIZE)  # the group stays usable
    assert torch.equal(out, torch.full((2 * SIZE, 3), 4.0))


@needs_torch
@pytest.mark.skipif(SIZE < 2, reason="needs 2 ranks")
def test_x_requires_grad_differs_fails_every_rank():
    # w needs its gradient everywhere, x only on the last rank: the backward's dx call of that rank meets the
    # others' call with no columns, a mismatch on every rank (before: rank 0 skipped it and the last rank waited
    # for ever); a wait would show as a timeout here
    tpmm.set_param(tpmm.PARAM_TIMEOUT_MS, 20000)
    try:
        x = torch.ones(2, 4, requires_grad=RANK == SIZE - 1)
        w = torch.ones(4, 3, requires_grad=True)
        y = tpmm.torch.all_gather_matmul(x, w, W, SIZE)
        with pytest.raises(tpmm.Error) as e:
            y.sum().backward()
        assert e.value.status == tpmm.ERR_MISMATCH and "same requires_grad on every rank" in str(e.value), str(e.value)
        x = torch.ones(2, 4)  # x needs no gradient anywhere: dw alone, the same on every rank
        tpmm.torch.all_gather_matmul(x, w, W, SIZE).sum().backward()
        assert torch.equal(w.grad, torch.full((4, 3), 2.0 * SIZE))
    finally:
        tpmm.set_param(tpmm.PARAM_TIMEOUT_MS, 0)


# ---- importing ----
def python(code, hide_torch=False):
    """Run code in a fresh interpreter (no MPI: tpmm is not initialised)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "HYDRA", "MPI", "OMPI"))}
    pre = "import sys\nsys.modules['torch'] = None\n" if hide_torch else ""  # `import torch` fails
    return subprocess.run([sys.executable, "-c", pre + code], capture_output=True, text=True, env=env, timeout=120)


def test_import_without_torch():
    if RANK != 0:
        return  # local, and the same on every rank: one is enough
    r = python("import tpmm\nprint(sys.modules.get('torch') is not None, hasattr(tpmm, 'torch'))\n"
               "try:\n    import tpmm.torch\nexcept ImportError as e:\n    print('ImportError', e)\n",
               hide_torch=True)
    out = r.stdout + r.stderr
    assert "False False" in out and "ImportError tpmm.torch needs PyTorch" in out and "import torch" in out, out


@needs_torch
def test_import_tpmm_does_not_import_torch():
    if RANK != 0:
        return
    r = python("import sys, tpmm\nprint('before', 'torch' in sys.modules)\n"
               "f = tpmm.torch.all_gather_matmul\nprint('after', 'torch' in sys.modules, f.__module__)\n")
    out = r.stdout + r.stderr
    assert "before False" in out and "after True tpmm.torch" in out, out
