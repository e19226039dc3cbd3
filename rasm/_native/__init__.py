"""Thin wrapper over the cffi module: the only importer of cffi in rasm.

Nothing here imports the rest of rasm; callers translate the negative errno
values these functions return (see rasm.errors.raise_for_errno).
"""

from ._rasm_native import ffi, lib

__all__ = ["ffi", "lib"]
