"""What only the kernel backend has: the kernel's own table, native calls,
the two mechanisms, and the tracer's exclusivity.  Runs in the VM."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys

import pytest

import rasm
from rasm.abi import PTRACE_SWITCH_AS
from rasm.backends.kernel import MECHANISMS, table_state

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not os.path.exists("/proc/self/address_spaces"),
                       reason="needs the multias kernel (kernel-patch/vm.sh)"),
]
PAGE = 4096


@pytest.fixture(params=MECHANISMS)
def mechanism(request) -> str:
    return request.param


def spawn(ops: str, mechanism: str, *args: str) -> rasm.Tracee:
    return rasm.spawn([ops, *args], backend="kernel", mechanism=mechanism)


def test_table_is_the_kernels(ops, mechanism):
    with spawn(ops, mechanism) as t:
        for _ in range(3):
            t.new_as()
        t.drop_as(2)
        t.switch_as(3)
        assert table_state(t.pid) == (3, [0, 1, 3])
        assert (t.current_as, t.address_spaces) == (3, [0, 1, 3])


def test_other_space_io_leaves_the_guest_where_it_was(ops, mechanism):
    with spawn(ops, mechanism) as t:
        addr = t.mmap(0, PAGE, 3, 0x22)
        t.new_as()
        t.write(addr, b"slot one", space=1)
        assert t.read(addr, 8, space=1) == b"slot one"
        assert t.read(addr, 8, space=0) == bytes(8)
        assert t.syscall("getpid", space=1) == t.pid
        assert [m.start for m in t.maps(space=1)] == [m.start for m in t.maps(space=0)]
        assert table_state(t.pid)[0] == 0


def test_a_refilled_slot_is_read_afresh(ops, mechanism):
    """The descriptor kept for a slot goes with the slot."""
    with spawn(ops, mechanism) as t:
        addr = t.mmap(0, PAGE, 3, 0x22)
        t.new_as()
        t.write(addr, b"old one", space=1)
        t.drop_as(1)
        assert t.new_as() == 1
        assert t.read(addr, 7, space=1) == bytes(7)


def test_guest_calls_run_natively_with_the_native_result(seed_demo, mechanism):
    native = subprocess.run([seed_demo], capture_output=True, timeout=60)
    under = subprocess.run([sys.executable, "-m", "rasm.cli", "run", "--backend", "kernel",
                            "--mechanism", mechanism, "--", seed_demo],
                           capture_output=True, timeout=60)
    assert native.returncode == 0
    assert (under.returncode, _no_aslr(under.stdout)) == (0, _no_aslr(native.stdout))


def _no_aslr(output: bytes) -> bytes:
    """The demo prints where its data lives, which ASLR moves every run."""
    return re.sub(rb"0x[0-9a-f]{12}", b"ADDR", output)


def test_trace_as_reports_the_guests_calls(ops, mechanism):
    result = subprocess.run([sys.executable, "-m", "rasm.cli", "run", "--backend", "kernel",
                             "--mechanism", mechanism, "--trace-as", "--", ops, "new", "sw:1",
                             "sw:7", "drop:0"], capture_output=True, timeout=60)
    assert result.stdout.decode().splitlines() == ["new 1", "sw 0", "sw -2", "drop 0"]
    events = [line.split("] ", 1)[1] for line in result.stderr.decode().splitlines()]
    assert events == ["new_as 1", "switched AS 0 -> 1", "drop_as 0"]


def test_attach_to_a_guest_with_its_own_slots(ops, mechanism):
    """Slots the guest made natively get the stub too; detach keeps them."""
    proc = subprocess.Popen([ops, "new", "sw:1", "line", "get"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"new 1\n"
        assert proc.stdout.readline() == b"sw 0\n"
        t = rasm.attach(proc.pid, backend="kernel", mechanism=mechanism)
        assert "detach-with-table" in t.capabilities
        assert (t.current_as, t.address_spaces) == (1, [0, 1])
        assert t.syscall("getpid", space=0) == proc.pid
        t.detach()
        proc.stdin.write(b"bye\n")
        proc.stdin.flush()
        assert proc.stdout.read() == b"line bye\nget 0\n"
    finally:
        proc.kill()
        proc.wait()


def test_a_second_tracer_cannot_touch_the_table(ops):
    with spawn(ops, "ptrace") as t:
        t.new_as()
        code = ("import ctypes, sys\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                f"r = libc.ptrace({PTRACE_SWITCH_AS}, {t.pid}, 0, 1)\n"
                "print(r, ctypes.get_errno())\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
        assert out.stdout.split() == [b"-1", str(3).encode()]  # ESRCH: not its tracee
        assert t.current_as == 0


def test_a_dead_controller_leaves_no_tracee(ops):
    """PTRACE_O_EXITKILL: the guest dies with its controller."""
    code = ("import os, sys, rasm\n"
            f"t = rasm.spawn([{ops!r}, 'sleep:60000'], backend='kernel')\n"
            "t.new_as()\n"
            "print(t.pid, flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    controller = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    guest = int(controller.stdout.readline())
    pidfd = os.pidfd_open(guest)
    try:
        controller.wait(timeout=30)
        readable, _, _ = select.select([pidfd], [], [], 30)
        assert readable, "the guest outlived its controller"
    finally:
        os.close(pidfd)
    # It was the controller's child: orphaned to us (the suite is a subreaper).
    _, status = os.waitpid(guest, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_killed_during_operations_is_tracee_gone(ops, mechanism):
    with spawn(ops, mechanism) as t:
        t.new_as()
        os.kill(t.pid, signal.SIGKILL)
        with pytest.raises(rasm.TraceeGone):
            t.switch_as(1)
        with pytest.raises(rasm.TraceeGone):
            t.new_as()


def test_mechanism_errors(ops):
    with pytest.raises(rasm.InvalidArgument):
        rasm.spawn([ops], backend="kernel", mechanism="telepathy")
    with pytest.raises(rasm.InvalidArgument):
        rasm.spawn([ops], backend="process", mechanism="ptrace")
