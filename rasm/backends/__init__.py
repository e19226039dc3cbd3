"""Backend registry: ``get(name)`` returns a ready backend or raises
BackendUnavailable with the reason."""

from __future__ import annotations

import os

from ..abi import PROC_ADDRESS_SPACES
from ..errors import BackendUnavailable
from .base import Backend, Guest

NAMES = ("kernel", "process")


def _load(name: str) -> Backend:
    if name == "process":
        from .process import ProcessBackend

        return ProcessBackend()
    if name == "kernel":
        # The kernel backend is a separate piece of work and not in this
        # release; say so rather than pretend.
        if not os.path.exists(PROC_ADDRESS_SPACES.format(pid="self")):
            raise BackendUnavailable(
                "this kernel has no multias patch (no /proc/self/address_spaces)"
            )
        raise BackendUnavailable("the kernel backend is not part of this rasm release yet")
    raise BackendUnavailable(f"unknown backend {name!r} (choose from auto, {', '.join(NAMES)})")


def get(name: str = "auto") -> Backend:
    """The backend called ``name``; "auto" takes the first available of NAMES."""
    if name == "auto":
        reasons = []
        for candidate in NAMES:
            try:
                backend = _load(candidate)
            except BackendUnavailable as e:
                reasons.append(f"{candidate}: {e}")
                continue
            if backend.available() is None:
                return backend
            reasons.append(f"{candidate}: {backend.available()}")
        raise BackendUnavailable("no backend works here: " + "; ".join(reasons))
    try:
        backend = _load(name)
    except BackendUnavailable as e:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {e}") from None
    reason = backend.available()
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")
    return backend


__all__ = ["NAMES", "Backend", "Guest", "get"]
