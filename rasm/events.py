"""Value types the public API returns: Event and Mapping."""

from __future__ import annotations

from dataclasses import dataclass

from ptrace.signames import signalName as signal_name


@dataclass(frozen=True)
class Event:
    """Something that happened to a tracee, returned by ``Tracee.wait``.

    kind:
      ``exited``    the guest exited; ``code`` is its exit status
      ``killed``    the guest was killed by ``signal``
      ``detached``  tracing ended with the guest still running
      ``signal``    the guest is stopped about to receive ``signal``;
                    ``cont()`` delivers it, ``cont(0)`` suppresses it
      ``fork``      the guest created ``child`` (a new traced guest that runs
                    on its own and can use multias too)
      ``exec``      the guest ran execve; its address-space table is gone
      ``new_as``    the guest created slot ``to_as``   (when reporting is on)
      ``as_switch`` the guest switched ``from_as`` -> ``to_as`` (reporting on)
      ``drop_as``   the guest dropped slot ``to_as``   (when reporting is on)
    """

    kind: str
    pid: int
    code: int | None = None
    signal: int | None = None
    child: int | None = None
    from_as: int | None = None
    to_as: int | None = None

    @property
    def finished(self) -> bool:
        return self.kind in ("exited", "killed")

    @property
    def exit_status(self) -> int | None:
        """Shell-style status: the code, or 128 + signal when killed."""
        if self.kind == "exited":
            return self.code
        if self.kind == "killed":
            return 128 + (self.signal or 0)
        return None

    def __str__(self) -> str:
        if self.kind == "exited":
            return f"exited with status {self.code}"
        if self.kind == "killed":
            return f"killed by {signal_name(self.signal or 0)}"
        if self.kind == "signal":
            return f"received {signal_name(self.signal or 0)}"
        if self.kind == "fork":
            return f"forked child {self.child}"
        if self.kind == "as_switch":
            return f"switched AS {self.from_as} -> {self.to_as}"
        if self.kind in ("new_as", "drop_as"):
            return f"{self.kind} {self.to_as}"
        return self.kind


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/<pid>/maps for one address space."""

    start: int
    end: int
    perms: str
    offset: int
    inode: int
    path: str

    @property
    def size(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        return f"{self.start:012x}-{self.end:012x} {self.perms} {self.path}"
