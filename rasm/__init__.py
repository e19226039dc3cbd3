"""rasm: several address spaces for one traced process.

    import rasm
    with rasm.spawn(["./guest"]) as t:      # stopped after exec
        n = t.new_as()
        t.switch_as(n)
        t.cont(); event = t.wait()

See README.md and DESIGN.md for the model; rasm.errors for what can go wrong.
"""

from .abi import N_MM
from .errors import (
    BackendUnavailable,
    BadSlot,
    InjectionError,
    InvalidArgument,
    NoFreeSlot,
    RasmError,
    RemoteSyscallError,
    SlotBusy,
    SpawnError,
    TraceeGone,
    UnsupportedOperation,
    WaitTimeout,
)
from .events import Event, Mapping
from .tracee import Tracee, attach, spawn

__version__ = "0.1.0"

__all__ = [
    "N_MM",
    "BackendUnavailable",
    "BadSlot",
    "Event",
    "InjectionError",
    "InvalidArgument",
    "Mapping",
    "NoFreeSlot",
    "RasmError",
    "RemoteSyscallError",
    "SlotBusy",
    "SpawnError",
    "Tracee",
    "TraceeGone",
    "UnsupportedOperation",
    "WaitTimeout",
    "attach",
    "spawn",
]
