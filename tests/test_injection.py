"""Syscall injection: restarts of the syscall the tracee was blocked in,
registers kept, a missing stub, a tracee that dies."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

import rasm
from rasm.arch import current as arch


def _start_blocked(blocker: str, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([blocker, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    time.sleep(0.1)  # let it enter the syscall
    return proc


@pytest.mark.parametrize("mode, expect", [
    ("read", b"read hello\n"),
    ("sleep:600", b"slept 0 ok\n"),
    ("futex:600", b"futex 110 ok\n"),  # ETIMEDOUT after the full timeout
])
def test_blocked_syscall_restarts_after_attach_and_injection(backend, blocker, mode, expect):
    proc = _start_blocked(blocker, mode)
    try:
        t = rasm.attach(proc.pid, backend=backend)
        for _ in range(50):
            assert t.syscall("getpid") == proc.pid
        t.detach()
        if mode == "read":
            proc.stdin.write(b"hello")
            proc.stdin.close()
        assert proc.stdout.read() == expect
    finally:
        proc.kill()
        proc.wait()


def test_syscall_interrupted_by_a_signal_restarts(backend, blocker, capfd):
    with rasm.spawn([blocker, "sleep:500"], backend=backend) as t:
        t.cont()
        time.sleep(0.2)
        os.kill(t.pid, signal.SIGCHLD)  # ignored by default, but ptrace stops for it
        event = t.wait(timeout=10)
        assert event.kind == "signal" and event.signal == signal.SIGCHLD
        assert t.syscall("getppid") == os.getpid()
        t.cont()
        assert t.wait(timeout=10).code == 0
    assert "slept 0 ok" in capfd.readouterr().out


def test_lost_stub_is_an_injection_error_and_the_tracee_survives(backend, ops, capfd):
    with rasm.spawn([ops, "get"], backend=backend) as t:
        with pytest.raises(rasm.InjectionError):
            t.syscall("munmap", arch.STUB_ADDR, arch.STUB_SIZE)  # its int3 is gone too
        with pytest.raises(rasm.InjectionError):
            t.syscall("getpid")
        assert t.run().code == 0
    assert capfd.readouterr().out == "get 0\n"


def test_many_injections_leave_the_guest_intact(backend, ops, capfd):
    with rasm.spawn([ops, "set:9", "get", "ids"], backend=backend) as t:
        for _ in range(200):
            t.syscall("getppid")
        n = t.new_as()
        for _ in range(200):
            t.syscall("getpid", space=n)
        assert t.run().code == 0
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "get 9" and out[1].startswith(f"ids {t.pid} {t.pid}")


def test_tracee_killed_while_stopped(backend, ops):
    t = rasm.spawn([ops], backend=backend)
    t.new_as()
    os.kill(t.pid, signal.SIGKILL)
    time.sleep(0.05)
    with pytest.raises(rasm.TraceeGone):
        for _ in range(3):  # the holder may still answer once
            t.syscall("getpid")
            t.cont()
            t.wait(timeout=10)
    t.close()


def test_holder_killed_kills_the_guest(backend, ops):
    if backend != "process":
        pytest.skip("holders exist on the process backend only")
    t = rasm.spawn([ops, "new", "sw:1", "sleep:5000"], backend=backend)
    t.cont()
    deadline = time.monotonic() + 10
    while t.address_spaces == [0] and time.monotonic() < deadline:
        with pytest.raises(rasm.WaitTimeout):
            t.wait(timeout=0.05)
    holder = t._guest.slots[1].pid
    os.kill(holder, signal.SIGKILL)
    event = t.wait(timeout=10)
    assert event.kind == "killed" and event.signal == signal.SIGKILL
    t.close()


def test_tracee_dying_inside_an_injected_syscall(backend, ops):
    t = rasm.spawn([ops], backend=backend)
    with pytest.raises(rasm.TraceeGone):
        t.syscall("kill", t.pid, signal.SIGKILL)
    event = t.wait(timeout=10)
    assert event.kind == "killed" and event.signal == signal.SIGKILL
    with pytest.raises(rasm.TraceeGone):
        t.syscall("getpid")
    t.close()


def test_attached_process_gets_address_spaces(backend, blocker):
    proc = _start_blocked(blocker, "sleep:300")
    try:
        with rasm.attach(proc.pid, backend=backend) as t:
            addr = t.mmap(0, 4096, 3, 0x22)
            t.write(addr, b"zero")
            n = t.new_as()
            t.write(addr, b"one!", space=n)
            assert t.read(addr, 4) == b"zero" and t.read(addr, 4, space=n) == b"one!"
            t.switch_as(n)
            t.cont()
            event = t.wait(timeout=10)
            assert event.kind == "exited" and event.code == 0
    finally:
        proc.kill()
        proc.wait()
    assert proc.stdout.read() == b"slept 0 ok\n"
