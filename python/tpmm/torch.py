"""tpmm.torch — autograd functions for a sequence-parallel layer.

A sequence-parallel transformer block keeps activations sharded by rows
(tokens) between blocks and weights sharded by columns (first matmul) and by
rows (second matmul). Its two collective matmuls, and the gradients of each:

    y = all_gather_matmul(x, w, group, W)      x (s, k) this rank's tokens, w (k, n/W) its columns
        forward   y = allgather(x) @ w                                   (s*W, n/W)
        backward  dx = reduce_scatter(dy @ w^T)    tpmm.matmul_reduce_scatter(dy, w, trans_x2=True)
                  dw = allgather(x)^T @ dy         the gathered x kept from the forward (gather_out)

    y = matmul_reduce_scatter(x, w, group, W)  x (s*W, k/W) every token, w (k/W, n) its rows
        forward   y = reduce_scatter(x @ w)                              (s, n)
        backward  dx = allgather(dy) @ w^T         tpmm.all_gather_matmul(dy, w, trans_x2=True)
                  dw = x^T @ allgather(dy)         the gathered dy of that same call (gather_out)

Every collective of the backward is fused by tpmm like the forward's. The
weight gradients are local products, accumulated in fp32 and rounded once:
by torch.matmul where torch does that (large bfloat16 products, which it
sends to oneDNN; checked once by a probe), else by tpmm on a one-rank group
of this process, "tpmm.torch.local", made on first use. torch 1.13's CPU
matmul accumulates small bfloat16 products in bfloat16 (errors of 30-500
units of bf16's rounding at 24 x 10 x 7), has no float16, and Debian's
build runs float32 through a reference BLAS (about 1.5 GFLOP/s here).

Tensors: CPU float16, bfloat16 or float32 (as tpmm's operators take them);
gradients come back in the input's dtype. Each function is collective over group in the forward
and in the backward: every rank must run backward through the same graph
(autograd runs the CPU backward on the calling thread, in the same order on
every rank for the same graph). Where ranks differ in which of x and w need
a gradient, the forward or the backward fails on every rank with
ERR_MISMATCH, except where a rank needs none of a function's gradients
while another needs one: that rank's backward never runs, and the others
wait for it (up to TPMM_TIMEOUT_MS if set).

Importing this module imports torch; ``import tpmm`` alone never does
(``tpmm.torch`` imports this module on first access when torch is
installed).
"""
try:
    import torch
except ImportError as _e:
    raise ImportError(f"tpmm.torch needs PyTorch, but 'import torch' failed ({_e}); install torch "
                      "(Debian: python3-torch), or use tpmm's numpy API") from _e

import tpmm
from tpmm import _errors

__all__ = ["all_gather_matmul", "matmul_reduce_scatter"]

LOCAL_GROUP = "tpmm.torch.local"  # this process alone: the weight gradients' local products
_torch_bf16_exact = None  # does torch.matmul accumulate large bfloat16 products in fp32? (probed once)
_TORCH_MIN_PRODUCT = 1 << 16  # m*k*n above which torch 1.13 sends bf16 to oneDNN (its own bound: 4096)


def _same_graph(call, *args, **kwargs):
    """A collective call of the graph; a disagreement between ranks gets the
    likely cause: what these functions gather follows requires_grad."""
    try:
        return call(*args, **kwargs)
    except tpmm.Error as e:
        if e.status != tpmm.ERR_MISMATCH:
            raise
        raise _errors.error(e.status, f"{e.message} (tpmm.torch: every rank must run the same graph, with x and w "
                                 "of the same shapes and the same requires_grad on every rank: what the forward "
                                 "gathers for the gradients follows them; ranks whose backward makes different "
                                 "calls wait for each other, up to TPMM_TIMEOUT_MS if set)") from e


def _local_group():
    """The one-rank group of this process (made again after a finalize/init)."""
    try:
        tpmm.get_group_size(LOCAL_GROUP)
    except tpmm.Error:
        tpmm.create_group(LOCAL_GROUP, [tpmm.get_rank()])
    return LOCAL_GROUP


def _torch_accumulates_bf16_in_fp32():
    """1 + 511 * 2^-8 is 3 with fp32 sums, but stays 1 when every partial sum
    is rounded to bfloat16 (1 + 2^-8 ties back to 1): one product of a size
    torch would send to oneDNN tells which kernel torch uses."""
    global _torch_bf16_exact
    if _torch_bf16_exact is None:
        a = torch.ones(16, 512, dtype=torch.bfloat16)
        b = torch.full((512, 16), 2.0 ** -8, dtype=torch.bfloat16)
        b[0] = 1.0
        _torch_bf16_exact = bool((torch.matmul(a, b) == 3.0).all())
    return _torch_bf16_exact


def _tn(a, b):
    """a^T @ b for a (t, k), b (t, n): the weight gradient (k, n) in a's
    dtype, accumulated in fp32 and rounded once. Local.

    torch.matmul when it does exactly that (large bfloat16 products, through
    oneDNN; probed), as it is the faster one there; else tpmm on this
    process's one-rank group (an all-gather over one rank is the plain
    product): small bfloat16 products, which torch accumulates in bfloat16,
    float16, which torch's CPU matmul lacks, float32, which Debian's torch
    runs through a reference BLAS."""
    t, k, n = a.shape[0], a.shape[1], b.shape[1]
    if t == 0:
        return torch.zeros((k, n), dtype=a.dtype)
    if a.dtype == torch.bfloat16 and k * t * n > _TORCH_MIN_PRODUCT and _torch_accumulates_bf16_in_fp32():
        return torch.matmul(a.t(), b)
    out, _ = tpmm.all_gather_matmul(a, b, _local_group(), 1, trans_input=True, gather_output=False)
    return out


class AllGatherMatmul(torch.autograd.Function):
    """output = allgather(x) @ w; see all_gather_matmul."""

    @staticmethod
    def forward(ctx, x, w, group, world_size):
        need_w = ctx.needs_input_grad[1]
        out, gathered = _same_graph(tpmm.all_gather_matmul, x, w, group, world_size, gather_output=need_w)
        ctx.group, ctx.world_size = group, world_size
        ctx.save_for_backward(gathered if need_w else None, w)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        gathered, w = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            # (s*W, n/W) @ (n/W, k) summed over ranks, this rank's s rows; w is stored (k, n/W) = x2 transposed
            grad_x = _same_graph(tpmm.matmul_reduce_scatter, grad_out, w, ctx.group, ctx.world_size, trans_x2=True)
        else:
            # the same call with no columns (no GEMM, no data): a rank whose x needs a gradient, in the same
            # backward, then gets a mismatch on every rank instead of waiting for ever for this one
            _same_graph(tpmm.matmul_reduce_scatter, grad_out, w[:0], ctx.group, ctx.world_size, trans_x2=True)
        if ctx.needs_input_grad[1]:
            grad_w = _tn(gathered, grad_out)
        return grad_x, grad_w, None, None


class MatmulReduceScatter(torch.autograd.Function):
    """output = reduce_scatter(x @ w); see matmul_reduce_scatter."""

    @staticmethod
    def forward(ctx, x, w, group, world_size):
        out = _same_graph(tpmm.matmul_reduce_scatter, x, w, group, world_size)
        ctx.group, ctx.world_size = group, world_size
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, w)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = grad_w = None
        if need_x:
            # (s*W, n) @ (n, k/W); w is stored (k/W, n) = x2 transposed
            grad_x, gathered = _same_graph(tpmm.all_gather_matmul, grad_out, w, ctx.group, ctx.world_size,
                                           trans_x2=True, gather_output=need_w)
        elif need_w:
            # only the gathered dy is needed: a product with no columns costs no GEMM
            empty = torch.empty((w.shape[1], 0), dtype=grad_out.dtype)
            _, gathered = _same_graph(tpmm.all_gather_matmul, grad_out, empty, ctx.group, ctx.world_size)
        if need_w:
            grad_w = _tn(x, gathered)
        return grad_x, grad_w, None, None


def all_gather_matmul(x, w, group, world_size):
    """allgather(x) @ w with autograd: x (s, k) this rank's rows, w (k, n_local)
    this rank's weight columns; returns (s*world_size, n_local). Backward: dx
    by tpmm.matmul_reduce_scatter(dy, w^T), dw = allgather(x)^T @ dy from the
    gathered x the forward kept. Collective over group (forward and
    backward)."""
    return AllGatherMatmul.apply(x, w, group, world_size)


def matmul_reduce_scatter(x, w, group, world_size):
    """reduce_scatter(x @ w) with autograd: x (s*world_size, k_local), w
    (k_local, n) this rank's weight rows; returns this rank's (s, n) block of
    the sum over ranks. Backward: dx by tpmm.all_gather_matmul(dy, w^T), dw =
    x^T @ allgather(dy) from that call's gather_out. Collective over group
    (forward and backward)."""
    return MatmulReduceScatter.apply(x, w, group, world_size)
