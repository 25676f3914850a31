"""Data and fp64 reference for the tpmm Python tests.

Every rank can regenerate every other rank's input from (seed, case, rank),
so the reference of allgather(input) @ x2 needs no communication.
"""
import numpy as np

import tpmm

# Unit roundoff of the output dtype (one rounding to nearest even).
UNIT = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8, "float32": 2.0 ** -24}
STORAGE = {"float16": np.float16, "bfloat16": np.uint16, "float32": np.float32}


def to_storage(x, dtype):
    """fp64/fp32 values -> numpy array as tpmm takes it (uint16 bits for bf16)."""
    if dtype == "bfloat16":
        return tpmm.float32_to_bf16(np.asarray(x, np.float32))
    return np.asarray(x).astype(STORAGE[dtype])


def to_f64(a, dtype):
    a = np.asarray(a)
    if dtype == "bfloat16":
        return tpmm.bf16_to_float32(a).astype(np.float64)
    return a.astype(np.float64)


def case_data(seed, case, r, m, k, n, dtype, bias=False):
    """Rank r's (input (m, k), x2 (k, n), bias (n,) or None), logical layout, storage dtype."""
    rng = np.random.default_rng([seed, case, r])
    a = to_storage(rng.standard_normal((m, k)), dtype)
    b = to_storage(rng.standard_normal((k, n)), dtype)
    c = to_storage(rng.standard_normal(n), dtype) if bias else None
    return a, b, c


def reference(seed, case, ranks, me, m, k, n, dtype, bias=False):
    """fp64 (output, sum |a*b|, gathered input bits) for the group whose ranks
    (world ranks, in group order) are `ranks`; `me` is this rank's world rank."""
    inputs = [case_data(seed, case, r, m, k, n, dtype)[0] for r in ranks]
    _, b, c = case_data(seed, case, me, m, k, n, dtype, bias)
    A = np.vstack([to_f64(x, dtype) for x in inputs]) if inputs else np.zeros((0, k))
    B = to_f64(b, dtype)
    ref = A @ B
    if c is not None:
        ref = ref + to_f64(c, dtype)[None, :]
    return ref, np.abs(A) @ np.abs(B), np.vstack(inputs)


def check_close(out, ref, absab, k, dtype, what="output"):
    """|out - ref| <= u*|ref| + (k+2)*2^-24*sum|a*b| (+ fp16's subnormal half-unit)."""
    got = to_f64(out, dtype)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    assert not np.isnan(got).any(), f"{what}: NaN in result (poisoned element not written?)"
    tol = UNIT[dtype] * np.abs(ref) * 1.0001 + (k + 2) * 2.0 ** -24 * absab + 2.0 ** -25
    err = np.abs(got - ref)
    bad = err > tol
    if bad.any():
        i = np.unravel_index(np.argmax(err - tol), err.shape)
        raise AssertionError(f"{what} {dtype}: {int(bad.sum())} elements beyond tolerance; worst at {i}: "
                             f"got {got[i]!r}, ref {ref[i]!r}, tol {tol[i]!r}")
