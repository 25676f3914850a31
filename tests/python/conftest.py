"""Shared setup for the tpmm Python tests, run by pytest on every MPI rank.

Every rank collects the same files in the same order and runs every test,
so the collective calls line up. Rules for tests here: decide skips from
things every rank sees alike (an import, the world size), never from local
state; raise a TypeError-type local failure on every rank or on none.

Outputs are poisoned: tpmm allocates them through tpmm._empty, which the
autouse fixture below replaces with an allocator that fills NaN (bf16 and
fp16 NaN bits for uint16), so a result the library forgot to write fails.

A test that hangs fails: a watchdog (faulthandler) dumps every thread's stack
and ends the rank after TPMM_TEST_WATCHDOG_S seconds (mpiexec then ends the
others), instead of blocking until CTest's timeout.
"""
import contextlib
import faulthandler
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tpmm

tpmm.init()  # finalize runs at exit (registered by init)
RANK = tpmm.get_rank()
SIZE = tpmm.get_group_size()
SEED = int(os.environ.get("TPMM_TEST_SEED", "20240601"))
WATCHDOG_S = float(os.environ.get("TPMM_TEST_WATCHDOG_S", "300"))
# The launcher for separate jobs: CTest passes the build's; by hand, the one
# of the MPI this job runs under.
MPIEXEC = os.environ.get("TPMM_TEST_MPIEXEC") or shutil.which(
    "mpiexec.openmpi" if any(k.startswith("OMPI_") for k in os.environ) else "mpiexec.mpich") or "mpiexec"


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


@pytest.fixture(autouse=True)
def watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@contextlib.contextmanager
def guarded_group(name, timeout_ms=20000):
    """A group of every rank for tests where a rank might not enter a
    collective: with TPMM_TIMEOUT_MS set, a peer that waits for a missing rank
    fails with ERR_TIMEOUT (which such tests treat as a failure) instead of
    hanging, and only this group, not the world, is left unusable. Collective."""
    old = tpmm.get_param(tpmm.PARAM_TIMEOUT_MS)
    tpmm.create_group(name, list(range(SIZE)))
    tpmm.set_param(tpmm.PARAM_TIMEOUT_MS, timeout_ms)
    try:
        yield name
    finally:
        tpmm.set_param(tpmm.PARAM_TIMEOUT_MS, old)
        tpmm.destroy_group(name)


# What identifies this job to a launcher started from inside it; kept: the
# settings a user gives Open MPI (run as root, oversubscribe).
_JOB_VARS = ("PMI", "PMIX", "HYDRA", "MPI_", "OMPI")
_KEEP_VARS = ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "OMPI_MCA_rmaps_base_oversubscribe")


def run_job(code, n, timeout=120):
    """Run `code` as a separate n-rank MPI job (mpiexec started from this
    process, without the variables that tie it to this job) and return the
    CompletedProcess. For tests that finalize tpmm or exit, which the test
    processes cannot do. Local: call it from one rank."""
    env = {k: v for k, v in os.environ.items() if k in _KEEP_VARS or not k.startswith(_JOB_VARS)}
    cmd = [MPIEXEC, "-n", str(n)] + os.environ.get("TPMM_TEST_MPIEXEC_PREFLAGS", "").split()
    return subprocess.run(cmd + [sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout)


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
