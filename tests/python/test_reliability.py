"""Reliability of the binding (issue 12), one section per item:

1. threads: destroy_group / finalize (also at exit) while an operation or a
   plan of the group runs in another thread, or while a plan exists;
2. torch outputs are CPU tensors whatever torch's default device, and a
   non-CPU input fails on every rank instead of stranding the others;
3. a message cut inside a multibyte character is still a tpmm.Error;
4. a rank whose Python-side preparation fails (MemoryError, a failed copy)
   still takes part in the collective as a failing rank: it raises its own
   exception, its peers raise tpmm.Error naming it, nobody hangs.

Tests where a rank might miss a collective run on a guarded group (conftest):
a missing rank then shows up as ERR_TIMEOUT, which these tests reject.
"""
import threading
import time

import numpy as np
import pytest

import tpmm
from conftest import RANK, SIZE, guarded_group, run_job

W = tpmm.WORLD_COMM_GROUP
BAD = SIZE - 1  # the rank that fails in the one-rank-fails tests (rank 0 when alone)
LATE_S = 0.5  # the last rank enters the operation this late: the others wait inside it meanwhile


def wait_until_running(thread, limit_s=60):
    """Return once an operation of this process is inside the C library (or
    the thread that runs it has already finished: on the last rank, the
    others are waiting, so its operation can be over within a poll). A
    binding without the counter gets a fixed pause instead."""
    running = getattr(tpmm._tpmm, "_ops_running", None)
    if running is None:
        time.sleep(0.3)
        return
    end = time.monotonic() + limit_s
    while running() == 0 and thread.is_alive():
        assert time.monotonic() < end, "the operation did not start"
        time.sleep(0.001)


class OpThread(threading.Thread):
    """Runs fn in a thread; the last rank starts it LATE_S late, so that the
    other ranks' operations are in flight (waiting for it) for that long."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None

    def run(self):
        if RANK == SIZE - 1:
            time.sleep(LATE_S)
        try:
            self.result = self.fn()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def expect_one_rank_failed(call, bad_exc, match=None):
    """call() on every rank: rank BAD raises bad_exc, the others tpmm.Error
    naming rank BAD (not a timeout: nobody was left waiting)."""
    if RANK == BAD:
        with pytest.raises(bad_exc) as e:
            call()
        assert not isinstance(e.value, tpmm.Error) or bad_exc is tpmm.Error
        return e.value
    with pytest.raises(tpmm.Error) as e:
        call()
    assert e.value.status != tpmm.ERR_TIMEOUT, f"peers were left waiting: {e.value}"
    assert f"rank {BAD}" in str(e.value), str(e.value)
    if match:
        assert match in str(e.value), str(e.value)
    return e.value


def fails_on_bad(real, what):
    """real, except that on rank BAD it raises MemoryError("test: no memory for <what>")."""
    def wrapper(*args, **kw):
        if RANK == BAD:
            raise MemoryError(f"test: no memory for {what}")
        return real(*args, **kw)
    return wrapper


# ---- 1. threads against group management ----
def test_destroy_group_while_operation_runs():
    a, b = np.ones((4, 64), np.float32), np.ones((64, 8), np.float32)
    tpmm.create_group("py_busy", list(range(SIZE)))
    t = OpThread(lambda: tpmm.all_gather_matmul(a, b, "py_busy", SIZE)[0])
    t.start()
    wait_until_running(t)
    try:
        tpmm.destroy_group("py_busy")  # waits for the operation (it must not free the group under it)
    except tpmm.Error:
        t.join()  # the other accepted answer: refuse while it runs
        tpmm.destroy_group("py_busy")
    t.join()
    assert t.error is None, repr(t.error)
    assert t.result.shape == (4 * SIZE, 8) and (t.result == 64).all()
    with pytest.raises(tpmm.Error):
        tpmm.get_rank("py_busy")


def test_destroy_group_while_plan_runs():
    a, b = np.ones((4, 64), np.float32), np.ones((64, 8), np.float32)
    tpmm.create_group("py_busy_plan", list(range(SIZE)))
    plan = tpmm.plan_all_gather_matmul(a, b, "py_busy_plan", SIZE, gather_output=False)
    t = OpThread(lambda: plan(a)[0])
    t.start()
    wait_until_running(t)
    tpmm.destroy_group("py_busy_plan")
    t.join()
    assert t.error is None, repr(t.error)
    assert (t.result == 64).all()
    # the plan went with its group: calls raise, close stays safe
    with pytest.raises(tpmm.Error) as e:
        plan(a)
    assert e.value.status == tpmm.ERR_GROUP and "py_busy_plan" in str(e.value)
    plan.close()
    plan.close()


def test_plan_after_its_group_is_destroyed():
    x = np.ones((2, 8), np.float32)
    tpmm.create_group("py_gone", list(range(SIZE)))
    plan = tpmm.plan_all_gather_matmul(x, np.ones((8, 3), np.float32), "py_gone", SIZE)
    plan2 = tpmm.plan_all_gather_matmul(x, np.ones((8, 3), np.float32), W, SIZE)
    tpmm.destroy_group("py_gone")
    with pytest.raises(tpmm.Error):
        plan(x)
    out, _ = plan2(x)  # a plan of another group is untouched
    assert (out == 8).all()
    plan.close()
    plan2.close()
    del plan


# Scripts for a separate 2-rank job (tests that finalize or exit). The last
# rank enters the operation 1 s late, so the others' operation is in flight.
JOB_PRELUDE = """
import threading, time, numpy as np, tpmm
tpmm.init()
r, S = tpmm.get_rank(), tpmm.get_group_size()
a, b = np.ones((4, 64), np.float32), np.ones((64, 8), np.float32)
plan = tpmm.plan_all_gather_matmul(a, b, tpmm.WORLD_COMM_GROUP, S)
res = {}
def op():
    if r == S - 1:
        time.sleep(1.0)
    try:
        out = tpmm.all_gather_matmul(a, b, tpmm.WORLD_COMM_GROUP, S)[0]
        res["out"] = "ok" if (out == 64).all() else "wrong"
    except BaseException as e:
        res["out"] = repr(e)
    print(f"rank {r} op {res['out']}", flush=True)
t = threading.Thread(target=op, daemon=True)
t.start()
running = getattr(tpmm._tpmm, "_ops_running", None)
while running and running() == 0 and t.is_alive():
    time.sleep(0.001)
if not running:
    time.sleep(0.3)
"""

FINALIZE_WHILE_RUNNING = JOB_PRELUDE + """
tpmm.finalize()
t.join()
try:
    plan(a)
    print(f"rank {r} plan call: no error", flush=True)
except tpmm.Error as e:
    print(f"rank {r} plan call: tpmm.Error {e.status}", flush=True)
plan.close(); plan.close(); del plan
print(f"rank {r} done", flush=True)
"""

EXIT_WHILE_RUNNING = JOB_PRELUDE + """
print(f"rank {r} exiting", flush=True)
# the interpreter exits here: tpmm's exit hook finalizes while the daemon
# thread is inside the operation, and the plan is still open
"""


@pytest.mark.skipif(RANK != 0, reason="one separate job is enough")
def test_finalize_while_operation_runs():
    r = run_job(FINALIZE_WHILE_RUNNING, 2)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for k in range(2):
        assert f"rank {k} op ok" in r.stdout, out
        assert f"rank {k} plan call: tpmm.Error {tpmm.ERR_NOT_INITIALIZED}" in r.stdout, out
        assert f"rank {k} done" in r.stdout, out


@pytest.mark.skipif(RANK != 0, reason="one separate job is enough")
def test_exit_while_operation_runs():
    # The exit hook waits for the operation, then finalizes. Whether the
    # daemon thread gets to print its result before the process ends is up
    # to the interpreter: only a clean exit and no wrong result are required.
    r = run_job(EXIT_WHILE_RUNNING, 2)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "rank 0 exiting" in r.stdout and "rank 1 exiting" in r.stdout, out
    assert "wrong" not in r.stdout and "Error" not in r.stdout, out
    assert not any(w in r.stderr for w in ("Abort", "Fatal", "Segmentation", "Traceback")), out


# ---- 2. torch: CPU outputs whatever the default device; non-CPU inputs ----
def _default_device_mode(torch, device):
    """What torch >= 2.0's set_default_device does (a TorchFunctionMode that
    fills in device= for factories); torch 1.13 has the mode machinery but
    not the function. 'meta' stands in for cuda on a CPU-only machine."""
    from torch.overrides import TorchFunctionMode

    factories = {torch.empty, torch.zeros, torch.ones, torch.full, torch.empty_strided, torch.tensor}

    class DefaultDevice(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in factories and kwargs.get("device") is None:
                kwargs["device"] = device
            return func(*args, **kwargs)

    return DefaultDevice()


def test_torch_outputs_on_cpu_under_another_default_device():
    torch = pytest.importorskip("torch")
    a, b = torch.ones(3, 8, dtype=torch.bfloat16), torch.ones(8, 5, dtype=torch.bfloat16)
    with _default_device_mode(torch, "meta"):
        assert torch.empty(1).device.type == "meta"  # the mode is in force
        out, gout = tpmm.all_gather_matmul(a, b, W, SIZE)
    for t in (out, gout):
        assert t.device.type == "cpu" and t.dtype == torch.bfloat16
    assert torch.equal(out, torch.full((3 * SIZE, 5), 8.0, dtype=torch.bfloat16))
    assert torch.equal(gout, torch.ones(3 * SIZE, 8, dtype=torch.bfloat16))


def test_torch_plan_outputs_on_cpu_under_another_default_device():
    torch = pytest.importorskip("torch")
    a, b = torch.ones(3, 8, dtype=torch.bfloat16), torch.ones(8, 5, dtype=torch.bfloat16)
    with _default_device_mode(torch, "meta"):
        with tpmm.plan_all_gather_matmul(a, b, W, SIZE) as plan:
            out, gout = plan(a)
    for t in (out, gout):
        assert t.device.type == "cpu" and t.dtype == torch.bfloat16
    assert torch.equal(out, torch.full((3 * SIZE, 5), 8.0, dtype=torch.bfloat16))


def test_torch_non_cpu_input_on_one_rank():
    torch = pytest.importorskip("torch")
    a = torch.ones(3, 8, device="meta" if RANK == BAD else "cpu")
    b = torch.ones(8, 5)
    with guarded_group("py_meta") as g:
        e = expect_one_rank_failed(lambda: tpmm.all_gather_matmul(a, b, g, SIZE), (TypeError, ValueError))
        if RANK == BAD:
            assert "cpu" in str(e).lower()
        # the group still works afterwards
        out, _ = tpmm.all_gather_matmul(torch.ones(3, 8), b, g, SIZE)
        assert torch.equal(out, torch.full((3 * SIZE, 5), 8.0))


# ---- 3. messages cut inside a multibyte character ----
def test_message_cut_in_a_multibyte_character():
    # The library quotes at most 127 bytes of a group name: 100 x "é" (200
    # bytes) is cut inside the 64th character.
    name = "é" * 100
    for call in (lambda: tpmm.get_rank(name), lambda: tpmm.get_group_size(name),
                 lambda: tpmm.all_gather_matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), name, SIZE),
                 lambda: tpmm.destroy_group(name)):
        with pytest.raises(tpmm.Error) as e:
            call()
        assert e.value.status == tpmm.ERR_GROUP, str(e.value)
        assert "é" * 63 in str(e.value) and str(e.value) == e.value.message


# ---- 4. a rank whose preparation fails still takes part ----
def test_output_allocation_fails_on_one_rank(monkeypatch):
    real = tpmm._empty
    empty = fails_on_bad(real, "the output")
    a, b = np.ones((4, 16), np.float16), np.ones((16, 8), np.float16)
    with guarded_group("py_nomem") as g:
        monkeypatch.setattr(tpmm, "_empty", empty)
        e = expect_one_rank_failed(lambda: tpmm.all_gather_matmul(a, b, g, SIZE), MemoryError)
        if RANK == BAD:
            assert "test: no memory" in str(e)
        monkeypatch.setattr(tpmm, "_empty", real)
        out, _ = tpmm.all_gather_matmul(a, b, g, SIZE)  # the group is fine afterwards
        assert (out == 16).all()


def test_input_copy_fails_on_one_rank(monkeypatch):
    real = np.ascontiguousarray
    boom = fails_on_bad(real, "the copy")
    a = np.asfortranarray(np.ones((4, 16), np.float32))  # column-major: tpmm copies it
    b = np.ones((16, 8), np.float32)
    with guarded_group("py_nocopy") as g:
        monkeypatch.setattr(np, "ascontiguousarray", boom)
        expect_one_rank_failed(lambda: tpmm.all_gather_matmul(a, b, g, SIZE), MemoryError)
        monkeypatch.setattr(np, "ascontiguousarray", real)


def test_plan_output_allocation_fails_on_one_rank(monkeypatch):
    real = tpmm._empty
    empty = fails_on_bad(real, "the output")
    a, b = np.ones((4, 16), np.float32), np.ones((16, 8), np.float32)
    with guarded_group("py_plan_nomem") as g:
        with tpmm.plan_all_gather_matmul(a, b, g, SIZE) as plan:
            monkeypatch.setattr(tpmm, "_empty", empty)
            expect_one_rank_failed(lambda: plan(a), MemoryError)
            monkeypatch.setattr(tpmm, "_empty", real)
            out, gout = plan(a)  # the plan is reusable after the failed call
            assert (out == 16).all() and (gout == 1).all()


def test_plan_called_with_a_wrong_kind_on_one_rank():
    a, b = np.ones((4, 16), np.float32), np.ones((16, 8), np.float32)
    with guarded_group("py_plan_kind") as g:
        with tpmm.plan_all_gather_matmul(a, b, g, SIZE) as plan:
            arg = a.tolist() if RANK == BAD else a
            expect_one_rank_failed(lambda: plan(arg), TypeError)
            out, _ = plan(a)
            assert (out == 16).all()
