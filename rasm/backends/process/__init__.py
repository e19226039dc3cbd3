"""Process backend: the multias interface on a stock kernel, one host
process per address space (see ``guest.py`` for the layout)."""

from .guest import ProcessBackend, ProcessGuest

__all__ = ["ProcessBackend", "ProcessGuest"]
