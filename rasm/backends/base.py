"""What every backend provides.

A backend turns "a program" into a ``Guest``: the object behind a
``rasm.Tracee`` that implements the multias operations on it.  Backends are
registered by name in ``rasm.backends`` and chosen once per tracee.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..events import Event
from ..inject import RemoteProcess


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

    def process_for(self, space: int | None) -> RemoteProcess:
        """The host process whose memory is AS ``space`` (None: current);
        BadSlot for an empty slot."""

    def syscall(self, name: str | int, args: tuple[int, ...], space: int | None) -> int:
        """Run a syscall in AS ``space`` (None: current); see Tracee.syscall."""

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

    def available(self) -> str | None:
        """None when usable here, else the reason it is not."""

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None, slots: int) -> Guest: ...

    def attach(self, pid: int, slots: int) -> Guest: ...
