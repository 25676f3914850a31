"""tpmm.all_gather_matmul on torch tensors, and against torch.distributed (gloo).

Skipped as a whole when torch is not importable (the same on every rank).
"""
import os
import shutil
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

import tpmm  # noqa: E402
from conftest import RANK, SEED, SIZE, bcast_str  # noqa: E402
from refutil import case_data, check_close, reference  # noqa: E402

W = tpmm.WORLD_COMM_GROUP
TORCH_DT = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
CASE_BASE = 1000  # case ids distinct from test_numpy's


def to_torch(a, dtype):
    """numpy storage array (uint16 bits for bf16) -> torch tensor of dtype."""
    if dtype == "bfloat16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(a.copy())


def to_numpy_storage(t, dtype):
    if dtype == "bfloat16":
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("trans_x2", [False, True])
def test_torch_in_torch_out(dtype, trans_x2):
    case = CASE_BASE + (1 if trans_x2 else 0) * 10 + ["float16", "bfloat16", "float32"].index(dtype)
    m, k, n = 6, 40, 9
    a, b, c = case_data(SEED, case, RANK, m, k, n, dtype, bias=True)
    ref, absab, gathered = reference(SEED, case, range(SIZE), RANK, m, k, n, dtype, bias=True)
    ta, tb, tc = to_torch(a, dtype), to_torch(b, dtype), to_torch(c, dtype)
    if trans_x2:
        tb = tb.t().contiguous()
    out, gout = tpmm.all_gather_matmul(ta, tb, W, SIZE, bias=tc, trans_x2=trans_x2)
    assert isinstance(out, torch.Tensor) and isinstance(gout, torch.Tensor)
    assert out.dtype == TORCH_DT[dtype] and gout.dtype == TORCH_DT[dtype]
    assert tuple(out.shape) == (m * SIZE, n) and tuple(gout.shape) == (m * SIZE, k)
    check_close(to_numpy_storage(out, dtype), ref, absab, k, dtype)
    np.testing.assert_array_equal(to_numpy_storage(gout, dtype).view(np.uint8), gathered.view(np.uint8))


def test_torch_noncontiguous_and_no_gather():
    dtype, m, k, n = "bfloat16", 5, 24, 7
    case = CASE_BASE + 100
    a, b, _ = case_data(SEED, case, RANK, m, k, n, dtype)
    ref, absab, _ = reference(SEED, case, range(SIZE), RANK, m, k, n, dtype)
    ta = to_torch(a, dtype).t().contiguous().t()           # column-major view: copied
    tb = torch.zeros(k, 2 * n, dtype=torch.bfloat16)[:, ::2]  # strided columns: copied
    tb.copy_(to_torch(b, dtype))
    assert not ta.is_contiguous() and not tb.is_contiguous()
    out, gout = tpmm.all_gather_matmul(ta, tb, W, SIZE, gather_output=False)
    assert tuple(gout.shape) == (0,) and gout.dtype == torch.bfloat16
    check_close(to_numpy_storage(out, dtype), ref, absab, k, dtype)


def test_torch_padded_rows_pass_through():
    dtype, m, k, n = "float32", 4, 16, 6
    case = CASE_BASE + 101
    a, b, _ = case_data(SEED, case, RANK, m, k, n, dtype)
    ref, absab, _ = reference(SEED, case, range(SIZE), RANK, m, k, n, dtype)
    big = torch.zeros(m, k + 5)
    big[:, :k] = torch.from_numpy(a)
    out, _ = tpmm.all_gather_matmul(big[:, :k], torch.from_numpy(b), W, SIZE)
    check_close(out.numpy(), ref, absab, k, dtype)


def test_torch_requires_grad_input():
    a = torch.ones(3, 8, requires_grad=True)
    out, _ = tpmm.all_gather_matmul(a, torch.ones(8, 2), W, SIZE)
    assert torch.equal(out, torch.full((3 * SIZE, 2), 8.0))


def test_torch_errors():
    with pytest.raises(tpmm.Error) as e:
        tpmm.all_gather_matmul(torch.ones(4, 16, dtype=torch.float64), torch.ones(16, 8, dtype=torch.float64),
                               W, SIZE)
    assert e.value.status == tpmm.ERR_DTYPE and "torch.bfloat16" in str(e.value)
    with pytest.raises(tpmm.Error) as e:
        tpmm.all_gather_matmul(torch.ones(4, 16, dtype=torch.bfloat16), torch.ones(16, 8, dtype=torch.float16),
                               W, SIZE)
    assert e.value.status == tpmm.ERR_DTYPE
    with pytest.raises(TypeError):
        tpmm.all_gather_matmul(torch.ones(4, 16), torch.ones(16, 8), W, SIZE, bias=np.ones(8, np.float32))
    with pytest.raises(TypeError):
        tpmm.all_gather_matmul(torch.ones(4, 16), torch.ones(16, 8), W, SIZE, bf16_bits=True)


# ---- the peer a PyTorch user picks today: gloo all-gather, then torch.matmul ----
@pytest.fixture(scope="module")
def gloo():
    """torch.distributed (gloo) over the same ranks, rendezvous through a file
    whose path rank 0 chooses and tpmm broadcasts."""
    tmp = tempfile.mkdtemp(prefix="tpmm_gloo_") if RANK == 0 else ""
    path = bcast_str(os.path.join(tmp, "store") if RANK == 0 else "")
    dist.init_process_group("gloo", init_method="file://" + path, rank=RANK, world_size=SIZE)
    yield
    dist.barrier()
    dist.destroy_process_group()
    if RANK == 0:
        shutil.rmtree(tmp, ignore_errors=True)


def gloo_all_gather_matmul(a, b):
    """allgather(a) @ b the torch.distributed way. This torch's gloo has no
    all_gather_into_tensor and no bfloat16 (nor int16), so bfloat16 travels
    as float16 views of the same bits (an all-gather only copies bytes)."""
    if a.dtype == torch.bfloat16:
        parts = [torch.empty_like(a).view(torch.float16) for _ in range(SIZE)]
        dist.all_gather(parts, a.view(torch.float16))
        g = torch.cat(parts).view(torch.bfloat16)
    else:
        parts = [torch.empty_like(a) for _ in range(SIZE)]
        dist.all_gather(parts, a)
        g = torch.cat(parts)
    return torch.matmul(g, b), g


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_against_gloo(gloo, dtype):
    m, k, n = 32, 256, 48
    case = CASE_BASE + 200 + ["bfloat16", "float32"].index(dtype)
    a, b, _ = case_data(SEED, case, RANK, m, k, n, dtype)
    ref, absab, _ = reference(SEED, case, range(SIZE), RANK, m, k, n, dtype)
    ta, tb = to_torch(a, dtype), to_torch(b, dtype)
    out, gout = tpmm.all_gather_matmul(ta, tb, W, SIZE)
    t_out, t_g = gloo_all_gather_matmul(ta, tb)
    assert torch.equal(gout.view(torch.int16) if dtype == "bfloat16" else gout,
                       t_g.view(torch.int16) if dtype == "bfloat16" else t_g)
    # both within the dtype tolerance of the fp64 reference, so within twice it of each other; torch's
    # own bf16 matmul only where it accumulates in fp32 (Debian's torch 1.13 does not on CPUs without
    # AVX-512: its output is then off by more than bf16's tolerance, whatever tpmm does)
    check_close(to_numpy_storage(out, dtype), ref, absab, k, dtype, "tpmm output")
    from tpmm.torch import _torch_accumulates_bf16_in_fp32  # tpmm.torch's own probe of the same
    if dtype == "float32" or _torch_accumulates_bf16_in_fp32():
        check_close(to_numpy_storage(t_out.contiguous(), dtype), ref, absab, k, dtype, "torch output")
