"""The public API's contract, on every available backend."""

from __future__ import annotations

import errno

import pytest

import rasm

PAGE = 4096
PROT_RW, PROT_R = 3, 1
MAP_PRIVATE_ANON = 0x22


@pytest.fixture
def tracee(backend, ops):
    with rasm.spawn([ops], backend=backend) as t:
        yield t


def scratch_page(t: rasm.Tracee) -> int:
    return t.mmap(0, PAGE, PROT_RW, MAP_PRIVATE_ANON)


def test_spawn_is_stopped_with_one_space(tracee, backend):
    assert tracee.backend == backend
    assert tracee.current_as == 0
    assert tracee.address_spaces == [0]
    assert tracee.syscall("getpid") == tracee.pid


def test_identity_is_the_guests_in_every_space(tracee):
    parent = tracee.syscall("getppid")
    tracee.new_as()
    for space in (None, 0, 1):
        assert tracee.syscall("getpid", space=space) == tracee.pid
        assert tracee.syscall("gettid", space=space) == tracee.pid
        assert tracee.syscall("getppid", space=space) == parent


def test_slots_fill_then_no_free_slot(tracee):
    assert [tracee.new_as() for _ in range(rasm.N_MM - 1)] == list(range(1, rasm.N_MM))
    assert tracee.address_spaces == list(range(rasm.N_MM))
    with pytest.raises(rasm.NoFreeSlot):
        tracee.new_as()


def test_lowest_free_slot_is_reused(tracee):
    for _ in range(4):
        tracee.new_as()
    tracee.drop_as(2)
    tracee.drop_as(1)
    assert tracee.address_spaces == [0, 3, 4]
    assert tracee.new_as() == 1
    assert tracee.new_as() == 2


def test_slot_errors(tracee):
    with pytest.raises(rasm.BadSlot):
        tracee.switch_as(1)  # no table yet
    tracee.new_as()
    for bad in (-1, 2, rasm.N_MM, 99, "1", None):
        with pytest.raises(rasm.BadSlot):
            tracee.switch_as(bad)
        with pytest.raises(rasm.BadSlot):
            tracee.drop_as(bad)
    with pytest.raises(rasm.SlotBusy):
        tracee.drop_as(0)
    tracee.switch_as(1)
    tracee.drop_as(0)
    with pytest.raises(rasm.BadSlot):
        tracee.read(0x1000, 1, space=0)


def test_spaces_are_private_copies(tracee):
    addr = scratch_page(tracee)
    tracee.write(addr, b"original")
    n = tracee.new_as()
    tracee.write(addr, b"in slot1", space=n)
    assert tracee.read(addr, 8) == b"original"
    assert tracee.read(addr, 8, space=0) == b"original"
    assert tracee.read(addr, 8, space=n) == b"in slot1"
    tracee.switch_as(n)
    assert tracee.current_as == n
    assert tracee.read(addr, 8) == b"in slot1"


def test_mmap_munmap_mprotect_in_another_space(tracee):
    n = tracee.new_as()
    addr = tracee.mmap(0, 2 * PAGE, PROT_RW, MAP_PRIVATE_ANON, space=n)
    in_n = [m for m in tracee.maps(space=n) if m.start <= addr < m.end]
    assert in_n and in_n[0].perms.startswith("rw")
    assert not [m for m in tracee.maps(space=0) if m.start <= addr < m.end]
    tracee.mprotect(addr, PAGE, PROT_R, space=n)
    perms = {m.start: m.perms for m in tracee.maps(space=n)}
    assert perms[addr].startswith("r--")
    tracee.munmap(addr, 2 * PAGE, space=n)
    assert not [m for m in tracee.maps(space=n) if m.start <= addr < m.end]
    assert tracee.current_as == 0  # nothing switched


def test_write_reaches_read_only_pages(tracee):
    addr = scratch_page(tracee)
    tracee.mprotect(addr, PAGE, PROT_R)
    tracee.write(addr, b"forced")
    assert tracee.read(addr, 6) == b"forced"


def test_share_makes_memory_common_to_later_spaces(tracee):
    addr = scratch_page(tracee)
    tracee.write(addr, b"kept")
    tracee.share(addr, PAGE)
    assert tracee.read(addr, 4) == b"kept"
    assert [m.perms for m in tracee.maps() if m.start == addr] == ["rw-s"]
    n = tracee.new_as()
    tracee.write(addr, b"seen", space=n)
    assert tracee.read(addr, 4, space=0) == b"seen"


def test_share_rejects_bad_ranges(tracee):
    with pytest.raises(rasm.InvalidArgument):
        tracee.share(0x1001, PAGE)
    with pytest.raises(rasm.RemoteSyscallError):
        tracee.share(0x1000, PAGE)  # not mapped


def test_remote_syscall_errors(tracee):
    with pytest.raises(rasm.RemoteSyscallError) as info:
        tracee.syscall("close", 9999)
    assert info.value.errno == errno.EBADF and info.value.syscall == "close"
    with pytest.raises(rasm.InvalidArgument):
        tracee.syscall("no_such_syscall")
    with pytest.raises(rasm.RemoteSyscallError):
        tracee.read(0, 8)
    with pytest.raises(rasm.InvalidArgument):
        tracee.read(0x1000, -1)
    with pytest.raises(rasm.InvalidArgument):
        tracee.write(-4096, b"x")


def test_guest_runs_on_in_the_space_it_was_switched_to(backend, ops):
    with rasm.spawn([ops, "get"], backend=backend) as t:
        n = t.new_as()
        t.switch_as(n)
        event = t.run()
    assert event.kind == "exited" and event.code == 0


def test_operations_need_a_stopped_tracee(backend, ops):
    with rasm.spawn([ops, "sleep:2000"], backend=backend) as t:
        t.cont()
        with pytest.raises(rasm.InjectionError):
            t.new_as()
        with pytest.raises(rasm.InjectionError):
            t.syscall("getpid")
        with pytest.raises(rasm.WaitTimeout):
            t.wait(timeout=0.05)


def test_finished_tracee_raises_gone(backend, ops):
    t = rasm.spawn([ops, "exit:4"], backend=backend)
    assert t.run().code == 4
    with pytest.raises(rasm.TraceeGone):
        t.new_as()
    with pytest.raises(rasm.TraceeGone):
        t.wait()
    t.close()
    t.close()


def test_killed_tracee_is_reported(backend, ops):
    import os
    import signal

    with rasm.spawn([ops, "sleep:5000"], backend=backend) as t:
        t.new_as()
        t.cont()
        os.kill(t.pid, signal.SIGKILL)
        event = t.wait(timeout=10)
        assert event.kind == "killed" and event.signal == signal.SIGKILL
        with pytest.raises(rasm.TraceeGone):
            t.syscall("getpid")


def test_bad_arguments(backend, ops):
    with pytest.raises(rasm.SpawnError):
        rasm.spawn(["/nonexistent/program"], backend=backend)
    with pytest.raises(rasm.SpawnError):
        rasm.spawn([], backend=backend)
    with pytest.raises(rasm.InvalidArgument):
        rasm.spawn([ops], backend=backend, slots=0)
    with pytest.raises(rasm.BackendUnavailable):
        rasm.spawn([ops], backend="nonsense")
    with pytest.raises(rasm.InvalidArgument):
        rasm.attach(-5, backend=backend)
    with pytest.raises(rasm.TraceeGone):
        rasm.attach(2**22 + 12345, backend=backend)


def test_fewer_slots(backend, ops):
    with rasm.spawn([ops], backend=backend, slots=3) as t:
        assert t.new_as() == 1 and t.new_as() == 2
        with pytest.raises(rasm.NoFreeSlot):
            t.new_as()


def test_wait_on_a_stopped_guest_needs_cont_or_timeout(backend, ops):
    with rasm.spawn([ops], backend=backend) as t:
        with pytest.raises(rasm.RasmError):
            t.wait()
        with pytest.raises(rasm.WaitTimeout):
            t.wait(timeout=0.05)


def test_failed_attach_leaves_the_process_untraced_and_running(backend):
    """The stub address is taken in the target: attach fails cleanly."""
    import subprocess
    import sys

    from rasm.arch import current as arch

    code = (
        "import ctypes, sys, time\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.mmap.restype = ctypes.c_void_p\n"
        "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,"
        " ctypes.c_int, ctypes.c_long]\n"
        f"assert libc.mmap({arch.STUB_ADDR}, 4096, 3, 0x32, -1, 0) == {arch.STUB_ADDR}\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "print('still alive', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        with pytest.raises(rasm.InjectionError):
            rasm.attach(proc.pid, backend=backend)
        with open(f"/proc/{proc.pid}/status") as f:
            assert "TracerPid:\t0\n" in f.read()
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"still alive\n"
    finally:
        proc.kill()
        proc.wait()
