"""Seccomp-BPF filters that hand chosen syscalls to the tracer.

Every filter lets syscalls made from the injection stub through untouched
(the controller's own injected calls) and answers SECCOMP_RET_TRACE with the
syscall number as data, so the tracer learns the number from
PTRACE_GETEVENTMSG without reading registers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from .arch import current as arch

# BPF opcodes (linux/filter.h) and seccomp return values.
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_TRACE = 0x7FF00000

# struct seccomp_data offsets.
_NR, _ARCH, _IP_LO, _IP_HI, _ARG0_LO = 0, 4, 8, 12, 16


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def build(traced: Iterable[int], traced_if_arg0: dict[int, Iterable[int]] | None = None) -> bytes:
    """Assemble a filter that traces ``traced`` always, and each syscall in
    ``traced_if_arg0`` only when its first argument (as a 32-bit value) is
    one of the given values.

    The syscall number is tested first and every other syscall is allowed
    without looking at anything else, so the kernel's per-syscall cache
    (seccomp "constant action" bitmap) lets them through without running the
    filter at all.  Returns the raw ``struct sock_filter`` array.
    """
    body: list[bytes] = []
    for nr in sorted(set(traced)):
        body += [_insn(_JEQ_K, nr, 0, len(_STUB_CHECK) + 1), *_STUB_CHECK,
                 _insn(_RET_K, SECCOMP_RET_TRACE | nr)]
    for nr, values in sorted((traced_if_arg0 or {}).items()):
        values = sorted({v & 0xFFFFFFFF for v in values})
        n = len(values)
        body += [
            _insn(_JEQ_K, nr, 0, len(_STUB_CHECK) + n + 3),  # not this one: next block
            *_STUB_CHECK,
            _insn(_LD_W_ABS, _ARG0_LO),
            *(_insn(_JEQ_K, v, n - i, 0) for i, v in enumerate(values)),  # -> RET TRACE
            _ALLOW,
            _insn(_RET_K, SECCOMP_RET_TRACE | nr),
        ]
    head = [
        _insn(_LD_W_ABS, _ARCH),
        _insn(_JEQ_K, arch.AUDIT_ARCH, 1, 0),
        _ALLOW,  # another ABI (i386 via int 0x80): not ours
        _insn(_LD_W_ABS, _NR),
    ]
    return b"".join([*head, *body, _ALLOW])


_ALLOW = _insn(_RET_K, SECCOMP_RET_ALLOW)
_IP = arch.STUB_SYSCALL_RETURN_IP
# Inside a matched syscall's block: made by the injection stub -> ALLOW,
# otherwise fall through to the block's RET TRACE.
_STUB_CHECK = [
    _insn(_LD_W_ABS, _IP_LO),
    _insn(_JEQ_K, _IP & 0xFFFFFFFF, 0, 3),
    _insn(_LD_W_ABS, _IP_HI),
    _insn(_JEQ_K, _IP >> 32, 0, 1),
    _ALLOW,
]
