"""The seccomp filters, run in a small BPF interpreter."""

from __future__ import annotations

import struct

from rasm import seccomp
from rasm.arch import current as arch
from rasm.backends.process.emulation import HANDLERS, table_filter

OUTSIDE_IP = 0x401000
ARCH_OFF, NR_OFF = 4, 0


def run(prog: bytes, nr: int, ip: int = OUTSIDE_IP, arg0: int = 0, audit=arch.AUDIT_ARCH):
    """Return (action, set of seccomp_data offsets the filter loaded)."""
    insns = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    data = struct.pack("<iIQQ", nr, audit, ip, arg0) + bytes(40)
    pc, acc, loaded = 0, 0, set()
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
            loaded.add(k)
            pc += 1
        elif code == 0x15:
            pc += 1 + (jt if acc == k else jf)
        else:
            assert code == 0x06
            return k, loaded


def test_traced_syscalls_carry_their_number():
    prog = table_filter(4321)
    for nr in HANDLERS:
        if nr not in (62, 200, 234):  # the kill family is conditional
            assert run(prog, nr)[0] == seccomp.SECCOMP_RET_TRACE | nr


def test_the_stub_is_never_traced():
    prog = table_filter(4321)
    for nr in HANDLERS:
        assert run(prog, nr, ip=arch.STUB_SYSCALL_RETURN_IP)[0] == seccomp.SECCOMP_RET_ALLOW


def test_kill_is_traced_only_when_aimed_at_the_guest():
    prog = table_filter(4321)
    for nr in (62, 200, 234):  # kill, tkill, tgkill
        assert run(prog, nr, arg0=4321)[0] == seccomp.SECCOMP_RET_TRACE | nr
        assert run(prog, nr, arg0=4322)[0] == seccomp.SECCOMP_RET_ALLOW
        assert run(prog, nr, arg0=(-4321) & 0xFFFFFFFF)[0] == seccomp.SECCOMP_RET_ALLOW


def test_kill_of_the_own_group_is_traced():
    """kill(0, sig) from a holder would reach only the holder's session."""
    prog = table_filter(4321)
    assert run(prog, 62, arg0=0)[0] == seccomp.SECCOMP_RET_TRACE | 62
    for nr in (200, 234):  # tkill(0) and tgkill(0) are EINVAL natively
        assert run(prog, nr, arg0=0)[0] == seccomp.SECCOMP_RET_ALLOW


def test_several_values_of_the_first_argument():
    prog = seccomp.build([], {7: (3, 5, 9)})
    for arg0, traced in ((3, True), (5, True), (9, True), (4, False), (0, False)):
        want = seccomp.SECCOMP_RET_TRACE | 7 if traced else seccomp.SECCOMP_RET_ALLOW
        assert run(prog, 7, arg0=arg0)[0] == want


def test_other_syscalls_are_constant_allow():
    """Untraced syscalls must not look at ip or arguments: the kernel then
    caches ALLOW for them and never runs the filter (native speed)."""
    cases = [(seccomp.build([600, 601, 602]), (0, 1, 39, 110, 603, 1000)),
             (table_filter(4321), (0, 1, 9, 603, 1000))]
    for prog, numbers in cases:
        for nr in numbers:
            action, loaded = run(prog, nr)
            assert action == seccomp.SECCOMP_RET_ALLOW
            assert loaded <= {ARCH_OFF, NR_OFF}


def test_foreign_arch_is_allowed():
    assert run(seccomp.build([600]), 600, audit=0x40000003)[0] == seccomp.SECCOMP_RET_ALLOW
