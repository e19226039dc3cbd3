"""Routing wait statuses to the guests that own the traced processes.

One Session serves every guest of the process backend in this controller:
each status from waitpid(-1) goes to the guest owning that pid.  The C loop
``rasm_serve`` waits on the session's behalf and serves a guest's own
switch_as calls without coming back here.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Protocol

from .._native import ffi, lib
from ..errors import RasmError, TraceeGone, WaitTimeout
from ..events import Event
from ..inject import RemoteProcess, check, wait

if TYPE_CHECKING:
    from collections import deque


class Owner(Protocol):
    """What the session needs of a guest (both backends' guests are owners)."""

    pid: int
    events: deque[Event]
    finished: Event | None

    def on_stop(self, proc: RemoteProcess, status: int) -> None:
        """Handle a wait status of one of the guest's processes."""

    def export_table(self):
        """The ``struct rasm_table`` whose switches rasm_serve may serve."""

    def import_table(self) -> None:
        """Take over the hops rasm_serve made."""

    def is_stopped(self) -> bool:
        """Whether the process running the guest's code is stopped."""

ECHILD, EINTR = 10, 4


class Session:
    """Routes wait statuses to the guest that owns each process."""

    def __init__(self) -> None:
        self.owners: dict[int, tuple[Owner, RemoteProcess]] = {}
        self.early: dict[int, int] = {}  # first stops of not-yet-announced children
        self.ctx = ffi.new("struct rasm_ctx *")
        self._status = ffi.new("int *")

    def register(self, guest: Owner, proc: RemoteProcess) -> None:
        self.owners[proc.pid] = (guest, proc)

    def forget(self, pid: int) -> None:
        self.owners.pop(pid, None)
        self.early.pop(pid, None)

    def first_stop(self, pid: int) -> int:
        """The first stop of an auto-attached child (maybe already seen)."""
        if pid in self.early:
            return self.early.pop(pid)
        return wait(pid)[1]

    def pump(self, guest: Owner, block: bool) -> bool:
        """Handle one wait status; False when ``block`` is off and none was ready."""
        table = guest.export_table()
        r = lib.rasm_serve(table, self.ctx, self._status, 0 if block else os.WNOHANG)
        guest.import_table()
        if r == -EINTR or r == 0:
            return r != 0
        if r == -ECHILD:
            raise TraceeGone(f"guest {guest.pid}: no traced process left")
        check(r, "waitpid")
        self.route(r, self._status[0])
        return True

    def route(self, pid: int, status: int) -> None:
        owner = self.owners.get(pid)
        if owner is None:
            if os.WIFSTOPPED(status):
                self.early[pid] = status
            return
        guest, proc = owner
        proc.note_stop(status)
        try:
            guest.on_stop(proc, status)
        except TraceeGone:
            # The guest died while we handled the stop: its final event is
            # queued; anything else is a real error.
            if guest.finished is None:
                raise


SESSION = Session()


def next_event(guest: Owner, timeout: float | None) -> Event:
    """Guest.wait: serve the session until ``guest`` has an event."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not guest.events:
        if guest.finished is not None:
            raise TraceeGone(f"guest {guest.pid} has {guest.finished}")
        if deadline is None and guest.is_stopped():
            raise RasmError(f"wait: guest {guest.pid} is stopped; cont() it first "
                            "(or wait with a timeout)")
        if deadline is None:
            SESSION.pump(guest, block=True)
        elif not SESSION.pump(guest, block=False):
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"guest {guest.pid}: no event within {timeout}s")
            time.sleep(0.0005)
    return guest.events.popleft()
