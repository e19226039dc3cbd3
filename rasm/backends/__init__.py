"""Backend registry: ``get(name)`` returns a ready backend or raises
BackendUnavailable with the reason."""

from __future__ import annotations

from ..errors import BackendUnavailable
from .base import Backend, Guest

NAMES = ("kernel", "process")


def _load(name: str) -> Backend:
    if name == "process":
        from .process import ProcessBackend

        return ProcessBackend()
    if name == "kernel":
        from .kernel import KernelBackend

        return KernelBackend()
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
