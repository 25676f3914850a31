"""Shared setup for the tpmm Python tests, run by pytest on every MPI rank.

Every rank collects the same files in the same order and runs every test,
so the collective calls line up. Rules for tests here: decide skips from
things every rank sees alike (an import, the world size), never from local
state; raise a TypeError-type local failure on every rank or on none.

Outputs are poisoned: tpmm allocates them through tpmm._empty, which the
autouse fixture below replaces with an allocator that fills NaN (bf16 and
fp16 NaN bits for uint16), so a result the library forgot to write fails.
"""
import os
import sys

import numpy as np
import pytest

import tpmm

tpmm.init()  # finalize runs at exit (registered by init)
RANK = tpmm.get_rank()
SIZE = tpmm.get_group_size()
SEED = int(os.environ.get("TPMM_TEST_SEED", "20240601"))


def pytest_report_header(config):
    return f"tpmm {tpmm.version()} rank {RANK} of {SIZE}, seed {SEED} (TPMM_TEST_SEED)"


@pytest.fixture(autouse=True)
def poison_outputs(monkeypatch):
    real = tpmm._empty

    def poisoned(kind, shape, like):
        out = real(kind, shape, like)
        if kind == "numpy":
            out[...] = 0xFFFF if out.dtype == np.uint16 else np.nan
        else:
            out.fill_(float("nan"))
        return out

    monkeypatch.setattr(tpmm, "_empty", poisoned)


@pytest.fixture
def rank():
    return RANK


@pytest.fixture
def size():
    return SIZE


def bcast_str(text, maxlen=512):
    """Rank 0's string on every rank, carried by tpmm itself (gather_out of a
    float32 all_gather_matmul, one byte per element, exact): the tests need no
    second MPI binding. (Debian's mpi4py is built for Open MPI; loading it in
    an MPICH process would load two MPI libraries.) Collective."""
    data = text.encode() if RANK == 0 else b""
    assert len(data) < maxlen
    row = np.zeros((1, maxlen), np.float32)
    row[0, :len(data)] = np.frombuffer(data, np.uint8)
    _, g = tpmm.all_gather_matmul(row, np.zeros((maxlen, 1), np.float32), tpmm.WORLD_COMM_GROUP, SIZE)
    b = g[0].astype(np.uint8).tobytes()
    return b.rstrip(b"\0").decode()


def pytest_terminal_summary(terminalreporter):
    st = terminalreporter.stats
    n = {k: len(st.get(k, [])) for k in ("passed", "failed", "error", "skipped")}
    terminalreporter.write_line(f"py rank {RANK}/{SIZE}: {n['passed']} passed, {n['failed'] + n['error']} failed, "
                                f"{n['skipped']} skipped (seed {SEED})")
    sys.stdout.flush()
