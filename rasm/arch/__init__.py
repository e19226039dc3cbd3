"""Architecture facts. Only this package knows register names."""

import platform

from ..errors import BackendUnavailable

_machine = platform.machine()
if _machine == "x86_64":
    from . import x86_64 as current
else:  # pragma: no cover - aarch64 is future work
    raise BackendUnavailable(f"rasm supports x86_64 only (this is {_machine})")

__all__ = ["current"]
