"""Kernel backend: the patched kernel's own multias, driven from outside.

The guest is one process and its address spaces are the kernel's slots, so
signals, children, blocked calls and deaths are the kernel's business and
exact by definition.  The guest's own new_as/switch_as/drop_as run natively,
untrapped; only ``set_reporting(True)`` installs a seccomp filter that traps
them so that each one can be reported (it is then performed by rasm, with
the same result the kernel would have given).

rasm changes the table by one of two mechanisms (``MECHANISMS``):

* ``ptrace``: PTRACE_NEW_AS/SWITCH_AS/DROP_AS on the stopped tracee.  No
  code runs in the tracee; the kernel checks that it is stopped and traced
  by us (``ptrace_check_attach``), so it cannot run meanwhile.
* ``inject``: syscalls 600-602 run in the tracee at the injection stub,
  which every slot has at the same address (see ``_install_stubs``).

Memory of a slot that is not current is read and written through a
/proc/<pid>/mem descriptor opened while that slot was current: the
descriptor keeps that slot's mm (kernel-patch/README.md, "Reading and
writing a non-current AS"), so one pair of switches per slot and stop buys
any number of reads.  Switching does not change which mm a slot holds, so
the descriptors survive rasm's switches; a slot's is closed when rasm drops
the slot, and all are closed whenever the guest runs: it may drop a slot
and fill it again with another mm, so a descriptor is only known to name
slot k's mm while the guest stays stopped.
"""

from __future__ import annotations

import errno
import os
import signal
from collections import deque
from collections.abc import Callable, Sequence
from typing import NoReturn

from .. import procfs, seccomp
from .._native import ffi, lib
from ..abi import (
    MULTIAS_SYSCALLS,
    NR_DROP_AS,
    NR_NEW_AS,
    NR_SWITCH_AS,
    PROC_ADDRESS_SPACES,
    PTRACE_DROP_AS,
    PTRACE_NEW_AS,
    PTRACE_SWITCH_AS,
)
from ..arch import current as arch
from ..errors import (
    BadSlot,
    InjectionError,
    NoFreeSlot,
    RasmError,
    RemoteSyscallError,
    SlotBusy,
    TraceeGone,
)
from ..events import Event, Mapping
from ..inject import (
    EVENT_EXEC,
    EVENT_SECCOMP,
    O_EXITKILL,
    O_TRACEEXEC,
    O_TRACESECCOMP,
    O_TRACESYSGOOD,
    PTRACE_DETACH,
    RemoteProcess,
    event_of,
    gadget_syscall,
    install_filter,
    install_stub,
    wait,
)
from .base import check_mechanism, check_slots
from .session import SESSION, next_event

# Children are not traced: they run on the kernel's multias by themselves.
# EXITKILL: if the controller dies, the guest dies with it (nothing is left
# stopped or orphaned with a half-made change).
KERNEL_TRACE_OPTIONS = O_TRACESYSGOOD | O_TRACEEXEC | O_TRACESECCOMP | O_EXITKILL
MECHANISMS = ("ptrace", "inject")
# The default mechanism when none is given; RASM_MECHANISM overrides it (so
# that one unchanged suite runs on both).
MECHANISM_ENV = "RASM_MECHANISM"
_KIND = {NR_NEW_AS: "new_as", NR_SWITCH_AS: "as_switch", NR_DROP_AS: "drop_as"}


def table_state(pid: int) -> tuple[int, list[int]]:
    """(current slot, filled slots) from /proc/<pid>/address_spaces, the
    kernel's own account (lines "<slot>[*]\\t<rss> kB")."""
    try:
        with open(PROC_ADDRESS_SPACES.format(pid=pid)) as f:
            lines = f.read().split("\n")
    except (FileNotFoundError, ProcessLookupError):
        raise TraceeGone(f"process {pid} is gone") from None
    current, filled = 0, []
    for line in filter(None, lines):
        slot = line.split("\t", 1)[0]
        if slot.endswith("*"):
            slot = slot[:-1]
            current = int(slot)
        filled.append(int(slot))
    return current, filled


def _raise_for(op: str, err: int, slot: object = None) -> None:
    """The one place a multias errno becomes an exception."""
    if err == errno.ENOENT:
        if op == "new_as":
            raise NoFreeSlot("new_as: every slot is in use")
        raise BadSlot(f"{op}: no address space {slot}")
    if err == errno.EBUSY:
        if op == "new_as":
            raise SlotBusy("new_as: the guest shares its memory with another task")
        raise SlotBusy(f"{op}: slot {slot} is the current address space")
    if err == errno.ESRCH:
        raise TraceeGone(f"{op}: the guest is gone")
    raise RemoteSyscallError(op, err)


class _Ptrace:
    """The table changed by ptrace requests; nothing runs in the tracee."""

    def __init__(self, proc: RemoteProcess):
        self.proc = proc

    def run(self, nr: int, slot: int) -> int:
        request = {NR_NEW_AS: PTRACE_NEW_AS, NR_SWITCH_AS: PTRACE_SWITCH_AS,
                   NR_DROP_AS: PTRACE_DROP_AS}[nr]
        return lib.rasm_ptrace(request, self.proc.pid, 0, slot)


class _Inject:
    """The table changed by the guest's own syscalls, run at the stub."""

    def __init__(self, proc: RemoteProcess):
        self.proc = proc

    def run(self, nr: int, slot: int) -> int:
        return self.proc.inject(nr, slot)


class KernelGuest:
    """A guest on the kernel backend (see the module docstring)."""

    backend = "kernel"
    capabilities = frozenset({"native-multias", "detach-with-table"})

    def __init__(self, proc: RemoteProcess, nslots: int, mechanism: str, attached: bool):
        self.session = SESSION
        self.proc = proc
        self.pid = proc.pid
        self.nslots = nslots
        self.mechanism = mechanism
        self._mech = _Ptrace(proc) if mechanism == "ptrace" else _Inject(proc)
        self.attached = attached
        self.events: deque[Event] = deque()
        self.finished: Event | None = None
        self.reporting = False
        self._filtered = False  # the reporting filter is installed (for good)
        self._mem_fds: dict[int, int] = {}  # slot -> /proc/pid/mem fd, valid while stopped
        self.session.register(self, proc)

    # -- state ------------------------------------------------------------------
    @property
    def current_as(self) -> int:
        return self._table()[0]

    @property
    def address_spaces(self) -> list[int]:
        current, filled = self._table()
        return filled or [current]

    def _table(self) -> tuple[int, list[int]]:
        self._check_alive("address spaces")
        return table_state(self.pid)

    def _check_alive(self, what: str) -> None:
        if self.finished is not None:
            raise TraceeGone(f"{what}: guest {self.pid} has {self.finished}")

    def _stopped(self, what: str) -> None:
        self._check_alive(what)
        if not self.proc.stopped:
            raise InjectionError(f"{what}: guest {self.pid} is running; wait() for an event first")

    # -- the multias operations -----------------------------------------------------
    def _run(self, nr: int, slot: int) -> int:
        """The mechanism's raw result; a guest that died meanwhile is reaped
        and TraceeGone raised."""
        try:
            ret = self._mech.run(nr, slot)
        except TraceeGone:
            self._reap_death()
        if ret == -errno.ESRCH:
            self._reap_death()
        return ret

    def _do(self, nr: int, slot: int = 0) -> int:
        """Run one table operation through the mechanism; raise on failure."""
        ret = self._run(nr, slot)
        self._table_changed(nr, slot, ret)
        if ret < 0:
            _raise_for({NR_NEW_AS: "new_as", NR_SWITCH_AS: "switch_as"}.get(nr, "drop_as"),
                       -ret, slot)
        return ret

    def new_as(self) -> int:
        self._stopped("new_as")
        filled = self._table()[1]
        if all(k in filled for k in range(self.nslots)):
            raise NoFreeSlot(f"new_as: all {self.nslots} slots are in use")
        return self._do(NR_NEW_AS)

    def switch_as(self, n: int) -> None:
        self._stopped("switch_as")
        self._do(NR_SWITCH_AS, self._slot_arg(n, "switch_as"))

    def drop_as(self, n: int) -> None:
        self._stopped("drop_as")
        self._do(NR_DROP_AS, self._slot_arg(n, "drop_as"))

    @staticmethod
    def _slot_arg(n: object, what: str) -> int:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise BadSlot(f"{what}: no address space {n!r}")
        return n

    # -- working in a slot ---------------------------------------------------------------
    def _in_slot(self, space: int | None, what: str, work: Callable[[], object]):
        """Run ``work`` with slot ``space`` current, then switch back.

        The guest is stopped throughout (checked first, and only we can
        resume it), so it never runs in the wrong AS; the way back runs in
        ``finally`` so a failing ``work`` cannot leave it switched."""
        if space is None:
            return work()
        self._stopped(what)
        current = self._table()[0]
        if space == current:
            return work()
        self._do(NR_SWITCH_AS, self._slot_arg(space, what))
        try:
            return work()
        finally:
            self._do(NR_SWITCH_AS, current)

    def _mem_fd(self, space: int | None) -> tuple[int, bool]:
        """A /proc/pid/mem descriptor for ``space`` and whether the caller
        must close it (the guest runs: it may switch at any time)."""
        if not self.proc.stopped:
            self._check_alive("memory")
            if space is not None:
                raise InjectionError(f"memory of AS {space}: guest {self.pid} is running; "
                                     "wait() for an event first")
            return self._open_mem(), True
        slot = self._table()[0] if space is None else self._slot_arg(space, "memory")
        if slot not in self._mem_fds:
            if slot not in self.address_spaces:
                raise BadSlot(f"address space {slot} is empty")
            self._mem_fds[slot] = self._in_slot(slot, "memory", self._open_mem)
        return self._mem_fds[slot], False

    def _table_changed(self, nr: int, slot: int, ret: int) -> None:
        """Forget the descriptors an operation made stale: the one of a
        dropped slot, and the injection engine's own, which names whatever
        was current (a slot keeps its mm otherwise, so the others stay)."""
        self.proc.close()
        if nr == NR_DROP_AS and ret == 0 and slot in self._mem_fds:
            os.close(self._mem_fds.pop(slot))

    def _open_mem(self) -> int:
        try:
            return os.open(f"/proc/{self.pid}/mem", os.O_RDWR | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError):
            raise TraceeGone(f"guest {self.pid} is gone") from None

    def _close_mem_fds(self) -> None:
        for fd in self._mem_fds.values():
            os.close(fd)
        self._mem_fds.clear()

    def _mem_io(self, what: str, space: int | None, io: Callable[[int], object]):
        fd, temporary = self._mem_fd(space)
        try:
            return io(fd)
        except OSError as e:
            raise RemoteSyscallError(what, e.errno) from None
        finally:
            if temporary:
                os.close(fd)

    def read(self, addr: int, size: int, space: int | None) -> bytes:
        data = self._mem_io("read memory", space, lambda fd: os.pread(fd, size, addr))
        if len(data) != size:
            raise RemoteSyscallError("read memory", errno.EFAULT)  # ran off a mapping
        return data

    def write(self, addr: int, data: bytes, space: int | None) -> None:
        n = self._mem_io("write memory", space, lambda fd: os.pwrite(fd, data, addr))
        if n != len(data):
            raise RemoteSyscallError("write memory", errno.EFAULT)

    def maps(self, space: int | None) -> list[Mapping]:
        self._check_alive("maps")
        return self._in_slot(space, "maps", lambda: procfs.maps(self.pid))

    def syscall(self, name: str | int, args: tuple[int, ...], space: int | None) -> int:
        self._stopped("syscall")
        try:
            return self._in_slot(space, "syscall", lambda: self.proc.call_args(name, args))
        except TraceeGone:
            self._reap_death()

    # -- reporting the guest's own calls ------------------------------------------------
    def set_reporting(self, on: bool) -> None:
        """Trap the guest's 600-602 to report them.  A seccomp filter cannot
        be removed: once installed, turning reporting off leaves a trap per
        call that is resumed at once."""
        if on and not self._filtered:
            self._stopped("report_as_events")
            install_filter(self.proc, seccomp.build(MULTIAS_SYSCALLS))
            self._filtered = True
        self.reporting = bool(on)

    def _at_multias_call(self, nr: int) -> None:
        """The guest trapped in 600-602: perform it as the kernel would and
        report it (the syscall itself is skipped)."""
        if not self.reporting:
            self.proc.resume()  # runs natively
            return
        before = self._table()[0]
        slot = self.proc.regs().rdi & 0xFFFFFFFF
        ret = self._run(nr, slot)
        self._table_changed(nr, slot, ret)
        regs = self.proc.regs()
        arch.set_return(regs, ret)
        self.proc.set_regs(regs)
        if ret < 0:
            self.proc.resume()
            return
        to = ret if nr == NR_NEW_AS else slot
        self.events.append(Event(_KIND[nr], self.pid, from_as=before, to_as=to))

    # -- events ------------------------------------------------------------------------
    def export_table(self):
        """No switch is served in C for this guest: the kernel switches."""
        return _IDLE_TABLE

    def import_table(self) -> None:
        pass

    def is_stopped(self) -> bool:
        return self.proc.stopped

    def on_stop(self, proc: RemoteProcess, status: int) -> None:
        if not proc.alive:
            self._on_death(status)
            return
        event = event_of(status)
        if event == EVENT_SECCOMP:
            self._at_multias_call(proc.event_msg())
        elif event == EVENT_EXEC:
            self._close_mem_fds()
            proc.close()
            install_stub(proc)  # the new image has none; the table is gone too
            self.events.append(Event("exec", self.pid))
        elif event or not proc.stop_signal:
            proc.resume()  # group stops, interrupts: nothing to report
        else:
            self.events.append(Event("signal", self.pid, signal=proc.stop_signal))

    def _on_death(self, status: int) -> None:
        self.session.forget(self.pid)
        self._close_mem_fds()
        if self.finished is not None:
            return
        if os.WIFEXITED(status):
            self.finished = Event("exited", self.pid, code=os.WEXITSTATUS(status))
        else:
            self.finished = Event("killed", self.pid, signal=os.WTERMSIG(status))
        self.events.append(self.finished)

    def _reap_death(self) -> NoReturn:
        """A ptrace request answered ESRCH on a stopped tracee: it has a
        fatal signal pending (SIGKILL from outside), so it is exiting and
        wait() returns its death; stops reported before that are let go."""
        while self.proc.alive:
            try:
                _, status = wait(self.pid)
            except TraceeGone:  # reaped already (by an injection's own wait)
                break
            self.proc.note_stop(status)
            if self.proc.alive:
                lib.rasm_ptrace(7, self.pid, 0, 0)  # PTRACE_CONT
        self._on_death(self.proc.status)
        raise TraceeGone(f"guest {self.pid} has {self.finished}")

    def cont(self, sig: int | None = None) -> None:
        self._stopped("cont")
        self._close_mem_fds()
        self.proc.close()
        stop_signal = self.proc.stop_signal
        if sig is None:
            sig = stop_signal
        if sig and not stop_signal:
            # Not at a signal stop, where ptrace cannot inject one: send it
            # (it comes back as a signal stop, from us, like a changed one).
            os.kill(self.pid, sig)
            sig = 0
        self.proc.resume(sig)

    def wait(self, timeout: float | None = None) -> Event:
        if not self.proc.alive and self.finished is None:
            self._on_death(self.proc.status)  # an injection saw it die
        return next_event(self, timeout)

    # -- ending -------------------------------------------------------------------------
    def kill(self) -> None:
        if self.finished is not None:
            return
        self._close_mem_fds()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while self.proc.alive:
            try:
                _, status = wait(self.pid)
            except TraceeGone:
                break
            self.proc.note_stop(status)
        self.session.forget(self.pid)
        self.proc.close()
        self.finished = Event("killed", self.pid, signal=signal.SIGKILL)
        self.events.append(self.finished)

    def wait_children(self) -> None:
        """Children are not traced on this backend: nothing to serve."""

    def detach(self) -> None:
        if self.finished is not None:
            return
        self._stopped("detach")
        self._close_mem_fds()
        self.proc.restore()
        self.proc.ptrace(PTRACE_DETACH, 0, self.proc.stop_signal)
        self.session.forget(self.pid)
        self.proc.close()
        self.finished = Event("detached", self.pid)

    def close(self) -> None:
        if self.attached and self.finished is None:
            try:
                self.detach()
                return
            except (InjectionError, TraceeGone):
                pass
        self.kill()


_IDLE_TABLE = ffi.new("struct rasm_table *", {"current": -1})


class KernelBackend:
    """Backend registry entry for the kernel backend."""

    name = "kernel"

    @property
    def mechanisms(self) -> tuple[str, ...]:
        preferred = os.environ.get(MECHANISM_ENV)
        if preferred in MECHANISMS:
            return (preferred, *(m for m in MECHANISMS if m != preferred))
        return MECHANISMS

    def available(self) -> str | None:
        """The probe: the patch's /proc file exists (nothing is changed)."""
        if not os.path.exists(PROC_ADDRESS_SPACES.format(pid="self")):
            return "this kernel has no multias patch (no /proc/self/address_spaces)"
        return None

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None, slots: int,
              mechanism: str | None = None) -> KernelGuest:
        from .spawn import spawn_traced

        mechanism = check_mechanism(self, mechanism)
        nslots = check_slots(slots)
        proc = spawn_traced(argv, env, b"", KERNEL_TRACE_OPTIONS)
        guest = KernelGuest(proc, nslots, mechanism, attached=False)
        try:
            install_stub(proc)
        except RasmError:
            guest.kill()
            raise
        return guest

    def attach(self, pid: int, slots: int, mechanism: str | None = None) -> KernelGuest:
        from .spawn import release, seize

        mechanism = check_mechanism(self, mechanism)
        nslots = check_slots(slots)
        proc, _ = seize(pid, KERNEL_TRACE_OPTIONS, pass_signals=True)
        guest = KernelGuest(proc, nslots, mechanism, attached=True)
        try:
            _install_stubs(proc)
        except BaseException:
            guest.session.forget(pid)
            release(proc)
            raise
        return guest


def _install_stubs(proc: RemoteProcess) -> None:
    """Map the stub in every slot the process already has.

    Slots the guest made itself before we came are copies of an mm without
    the stub.  Each is visited by a switch_as run through a syscall
    instruction in the vDSO (mapped at the same address in every copy),
    which works whatever the mechanism; the original slot is current again
    afterwards, also on failure."""
    current, filled = table_state(proc.pid)
    install_stub(proc)
    others = [k for k in filled if k != current]
    try:
        for k in others:
            _gadget_switch(proc, k)
            install_stub(proc)
    finally:
        if others:
            _gadget_switch(proc, current)


def _gadget_switch(proc: RemoteProcess, slot: int) -> None:
    ret = arch.signed(gadget_syscall(proc, NR_SWITCH_AS, slot))
    proc.close()
    if ret < 0:
        _raise_for("switch_as", -ret, slot)


__all__ = ["MECHANISMS", "KernelBackend", "KernelGuest", "table_state"]
