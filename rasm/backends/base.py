"""What every backend provides.

A backend turns "a program" into a ``Guest``: the object behind a
``rasm.Tracee`` that implements the multias operations on it.  Backends are
registered by name in ``rasm.backends`` and chosen once per tracee.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..abi import N_MM
from ..errors import InvalidArgument
from ..events import Event, Mapping


class Guest(Protocol):
    """One traced program with its address-space table.

    Unless said otherwise, operations need the guest stopped (after spawn,
    attach or an event from ``wait``) and raise ``InjectionError`` if it is
    running, ``TraceeGone`` once it has exited.
    """

    pid: int
    backend: str

    def new_as(self) -> int:
        """Duplicate the current AS into the lowest free slot; return it.

        NoFreeSlot when all slots are used; SlotBusy when the guest shares
        its memory with another task (threads, a vfork child)."""

    def switch_as(self, n: int) -> None:
        """Make slot ``n`` current (BadSlot if empty or out of range)."""

    def drop_as(self, n: int) -> None:
        """Free slot ``n`` (SlotBusy if current, BadSlot if empty)."""

    @property
    def current_as(self) -> int: ...

    @property
    def address_spaces(self) -> list[int]: ...

    capabilities: frozenset[str]
    """What this guest can do beyond the common contract:

    ``native-multias``     the guest's own new_as/switch_as/drop_as run in
                           the kernel, untrapped unless reporting is on
    ``detach-with-table``  ``detach`` works while address spaces exist
    """

    def read(self, addr: int, size: int, space: int | None) -> bytes:
        """``size`` bytes at ``addr`` of AS ``space`` (None: current).  Works
        while the guest runs when ``space`` is None."""

    def write(self, addr: int, data: bytes, space: int | None) -> None:
        """Write ``data`` at ``addr`` of AS ``space`` (read-only pages too)."""

    def maps(self, space: int | None) -> list[Mapping]:
        """The mappings of AS ``space``."""

    def syscall(self, name: str | int, args: tuple[int, ...], space: int | None) -> int:
        """Run a syscall in AS ``space`` (None: current) and return its
        result, raising RemoteSyscallError for -errno; see Tracee.syscall.
        Never leaves the guest in another AS than it was in."""

    def cont(self, sig: int | None = None) -> None:
        """Resume the guest; ``sig`` None passes on the signal it stopped with."""

    def wait(self, timeout: float | None = None) -> Event:
        """Block until the guest's next event; the guest is then stopped
        (or finished)."""

    def set_reporting(self, on: bool) -> None:
        """Whether new_as/switch_as/drop_as made by the guest stop it with an event."""

    def kill(self) -> None:
        """Kill the guest, every process it holds and its traced children;
        reap them all."""

    def wait_children(self) -> None:
        """After the guest finished: serve its traced children (which may use
        multias too) until they have all exited."""

    def detach(self) -> None:
        """Let the guest go on untraced (UnsupportedOperation if impossible)."""

    def close(self) -> None:
        """End tracing: detach an attached guest when it can be, else kill."""


class Backend(Protocol):
    name: str
    mechanisms: tuple[str, ...]
    """How it can change a guest's table, the default first (may be empty:
    then ``mechanism`` must be None)."""

    def available(self) -> str | None:
        """None when usable here, else the reason it is not."""

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None, slots: int,
              mechanism: str | None = None) -> Guest: ...

    def attach(self, pid: int, slots: int, mechanism: str | None = None) -> Guest: ...


def check_slots(slots: int) -> int:
    if not isinstance(slots, int) or not 1 <= slots <= N_MM:
        raise InvalidArgument(f"slots must be between 1 and {N_MM}, not {slots!r}")
    return slots


def check_mechanism(backend: Backend, mechanism: str | None) -> str | None:
    """``mechanism``, or the backend's default for None."""
    if mechanism is None:
        return backend.mechanisms[0] if backend.mechanisms else None
    if mechanism not in backend.mechanisms:
        offered = ", ".join(backend.mechanisms) or "none"
        raise InvalidArgument(
            f"backend {backend.name!r} has no mechanism {mechanism!r} (it offers: {offered})")
    return mechanism
