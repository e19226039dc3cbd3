"""The exceptions rasm raises, and the one place errno values become them."""

from __future__ import annotations

import errno as _errno
import os


class RasmError(Exception):
    """Base of every error rasm raises on purpose."""


class InvalidArgument(RasmError, ValueError):
    """An argument is malformed (a bad size, an unknown syscall name, ...)."""


class TraceeGone(RasmError):
    """The traced process (or one of its address-space holders) has exited."""


class InjectionError(RasmError):
    """Running code in the tracee failed; the tracee is left as it was."""


class RemoteSyscallError(RasmError):
    """A syscall ran in the tracee and returned an error.

    ``errno`` is the positive error number, ``syscall`` the syscall's name.
    """

    def __init__(self, syscall: str, err: int):
        self.syscall = syscall
        self.errno = err
        super().__init__(f"{syscall}: {_errno.errorcode.get(err, err)} ({os.strerror(err)})")


class NoFreeSlot(RasmError):
    """new_as: every address-space slot is in use (ENOENT)."""


class BadSlot(RasmError):
    """The slot index is out of range or the slot is empty (ENOENT)."""


class SlotBusy(RasmError):
    """The operation is refused in this state (EBUSY): the slot is current,
    or the tracee shares its memory with another task."""


class UnsupportedOperation(RasmError):
    """This backend cannot do the requested operation."""


class WaitTimeout(RasmError, TimeoutError):
    """wait(timeout) ran out before the tracee had an event."""


class SpawnError(RasmError):
    """The program could not be started; ``errno`` says why (ENOENT: not found)."""

    def __init__(self, message: str, err: int = 0):
        super().__init__(message)
        self.errno = err


class BackendUnavailable(RasmError):
    """The requested backend does not work on this machine."""


def raise_for_errno(err: int, what: str) -> None:
    """Raise the rasm exception for a failed ptrace/wait call (``err`` > 0).

    ESRCH and ECHILD mean the process is gone; anything else is an injection
    or tracing failure.
    """
    if err in (_errno.ESRCH, _errno.ECHILD):
        raise TraceeGone(f"{what}: tracee is gone ({os.strerror(err)})")
    raise InjectionError(f"{what}: {os.strerror(err)}")
