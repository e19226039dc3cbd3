"""Tracee: the object users hold.  One traced program, several address spaces.

A Tracee is *stopped* after ``spawn``/``attach`` and after each event
``wait`` returns; it *runs* after ``cont``.  Operations that touch the
tracee (everything but ``read``/``write``/``maps``) need it stopped and
raise ``InjectionError`` otherwise; all raise ``TraceeGone`` once it has
finished.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import backends
from .abi import N_MM
from .errors import InvalidArgument, RemoteSyscallError
from .events import Event, Mapping

PAGE = 4096
MAP_SHARED, MAP_ANONYMOUS = 0x01, 0x20
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
PROT_READ, PROT_WRITE = 1, 2


class Tracee:
    """A traced program; create with ``rasm.spawn`` or ``rasm.attach``."""

    def __init__(self, guest: backends.Guest):
        self._guest = guest

    # -- identity -------------------------------------------------------------
    @property
    def pid(self) -> int:
        """The guest's pid (the same in every address space)."""
        return self._guest.pid

    @property
    def backend(self) -> str:
        """``"kernel"`` or ``"process"``."""
        return self._guest.backend

    @property
    def capabilities(self) -> frozenset[str]:
        """What this tracee's backend offers beyond the common contract
        (see rasm.backends.base.Guest.capabilities)."""
        return self._guest.capabilities

    def __repr__(self) -> str:
        return f"<rasm.Tracee pid={self.pid} backend={self.backend} as={self.current_as}>"

    # -- address spaces -----------------------------------------------------------
    def new_as(self) -> int:
        """Duplicate the current AS (copy-on-write) into the lowest free slot.

        Returns the slot.  NoFreeSlot when all are used, SlotBusy when the
        guest shares its memory with another task."""
        return self._guest.new_as()

    def switch_as(self, n: int) -> None:
        """Make slot ``n`` current: the guest continues there on ``cont``.

        Registers, signal mask and extended state move with it.  BadSlot
        for an empty or out-of-range slot."""
        self._guest.switch_as(n)

    def drop_as(self, n: int) -> None:
        """Free slot ``n``.  SlotBusy if it is current, BadSlot if empty."""
        self._guest.drop_as(n)

    @property
    def current_as(self) -> int:
        return self._guest.current_as

    @property
    def address_spaces(self) -> list[int]:
        """The filled slots ([0] before the first new_as)."""
        return self._guest.address_spaces

    # -- memory --------------------------------------------------------------------
    def read(self, addr: int, size: int, space: int | None = None) -> bytes:
        """Read ``size`` bytes at ``addr`` of AS ``space`` (None: current).

        Works while the guest runs.  RemoteSyscallError(EFAULT/EIO) for
        unmapped memory, BadSlot for a bad ``space``, InvalidArgument for a
        negative size or address."""
        if size < 0 or addr < 0:
            raise InvalidArgument(f"read: bad address {addr} or size {size}")
        return self._guest.read(addr, size, space)

    def write(self, addr: int, data: bytes, space: int | None = None) -> None:
        """Write ``data`` at ``addr`` of AS ``space`` (read-only pages too)."""
        if addr < 0:
            raise InvalidArgument(f"write: bad address {addr}")
        self._guest.write(addr, bytes(data), space)

    def maps(self, space: int | None = None) -> list[Mapping]:
        """The mappings of AS ``space`` (None: current)."""
        return self._guest.maps(space)

    # -- injected syscalls ----------------------------------------------------------
    def syscall(self, name: str | int, *args: int, space: int | None = None) -> int:
        """Run syscall ``name(*args)`` in the tracee (in AS ``space``).

        Returns its result; RemoteSyscallError(errno) if it failed,
        InjectionError if it could not be run.  The tracee's registers and
        signal mask are restored before it next runs."""
        return self._guest.syscall(name, args, space)

    def mmap(self, addr: int, length: int, prot: int, flags: int, space: int | None = None,
             fd: int = -1, offset: int = 0) -> int:
        """mmap in the tracee; returns the address."""
        return self.syscall("mmap", addr, length, prot, flags, fd, offset, space=space)

    def munmap(self, addr: int, length: int, space: int | None = None) -> None:
        self.syscall("munmap", addr, length, space=space)

    def mprotect(self, addr: int, length: int, prot: int, space: int | None = None) -> None:
        self.syscall("mprotect", addr, length, prot, space=space)

    def share(self, addr: int, length: int) -> None:
        """Make [addr, addr+length) of the current AS MAP_SHARED, keeping its
        contents: the seed's recipe (mmap shared, copy, mremap FIXED).

        Address spaces created afterwards share that memory.  The range must
        be page aligned and mapped; the new mapping is read-write.
        InvalidArgument for a misaligned range, RemoteSyscallError if a step fails
        (the original mapping is then untouched)."""
        if addr % PAGE or length <= 0 or length % PAGE:
            raise InvalidArgument("share: addr and length must be page aligned and length > 0")
        contents = self.read(addr, length)
        tmp = self.mmap(0, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS)
        try:
            self.write(tmp, contents)
            self.syscall("mremap", tmp, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, addr)
        except RemoteSyscallError:
            self.munmap(tmp, length)
            raise

    # -- running ------------------------------------------------------------------------
    def cont(self, signal: int | None = None) -> None:
        """Resume the guest.  ``signal`` None delivers the signal it stopped
        with (if any), 0 suppresses it, another number delivers that one."""
        self._guest.cont(signal)

    def wait(self, timeout: float | None = None) -> Event:
        """Block until the next event (see rasm.Event); the guest is then
        stopped, or finished.  WaitTimeout when ``timeout`` runs out,
        TraceeGone after the final event was returned."""
        return self._guest.wait(timeout)

    def run(self) -> Event:
        """cont/wait until the guest finishes; returns the final event."""
        while True:
            self.cont()
            event = self.wait()
            if event.finished:
                return event

    def report_as_events(self, on: bool = True) -> None:
        """Stop with new_as/as_switch/drop_as events for the guest's own calls.

        Off by default: switches are then served without leaving C."""
        self._guest.set_reporting(on)

    def kill(self) -> None:
        """Kill the guest, every process holding one of its ASes and the
        children it forked that are still traced; reap them all."""
        self._guest.kill()

    def wait_children(self) -> None:
        """Once the guest has finished: keep serving the children it forked
        (traced, able to use multias) until they have all exited, as
        ``strace -f`` does."""
        self._guest.wait_children()

    def detach(self) -> None:
        """Let an attached guest run on untraced (UnsupportedOperation if it
        holds address spaces)."""
        self._guest.detach()

    def close(self) -> None:
        """End tracing: kill a spawned guest (an attached one is detached if
        it can be).  Safe to call twice."""
        self._guest.close()

    def __enter__(self) -> Tracee:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def spawn(argv: Sequence[str], backend: str = "auto", env: dict[str, str] | None = None,
          slots: int = N_MM, mechanism: str | None = None) -> Tracee:
    """Start ``argv`` traced; it is stopped right after its execve.

    ``mechanism`` (kernel backend: "ptrace" or "inject"; None: the
    backend's default) is how rasm changes the table.  BackendUnavailable
    if ``backend`` cannot work here, InvalidArgument for a mechanism it does
    not have, SpawnError (a RasmError) if the program cannot be started."""
    return Tracee(backends.get(backend).spawn(list(argv), env, slots, mechanism))


def attach(pid: int, backend: str = "auto", slots: int = N_MM,
           mechanism: str | None = None) -> Tracee:
    """Trace the running process ``pid``; it is stopped when this returns.

    A syscall it was blocked in restarts when it is resumed."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        raise InvalidArgument(f"cannot attach to pid {pid!r}")
    return Tracee(backends.get(backend).attach(pid, slots, mechanism))


__all__ = ["Tracee", "attach", "spawn"]
