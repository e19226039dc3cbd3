"""x86_64: registers, calling convention, stub code and syscall numbers."""

from __future__ import annotations

from ptrace.syscall.linux.x86_64 import SYSCALL_NAMES as _NAMES

from ..errors import InvalidArgument

AUDIT_ARCH = 0xC000003E  # AUDIT_ARCH_X86_64

# python-ptrace's table also lists the x32 variants (512 and up) under the
# same names; the x86_64 number is the lower one.
SYSCALL_NUMBERS: dict[str, int] = {}
for _nr, _name in sorted(_NAMES.items(), reverse=True):
    SYSCALL_NUMBERS[_name] = _nr

# The stub page: mapped at the same address in every AS (it is created
# before the first new_as, so every duplicate has it).  Layout:
#   +0  syscall; int3; jmp +0   injected syscalls land here and trap back;
#                               resuming from the int3 runs the syscall again
#   +8  syscall; int3           parking: rt_sigsuspend(&EMPTY_SET), restarted
#   +16 8 zero bytes            the empty signal set parking waits with
STUB_ADDR = 0x3A5D_0000_0000
STUB_SIZE = 0x1000
STUB_SYSCALL = STUB_ADDR
STUB_INT3_RETURN_IP = STUB_ADDR + 3  # where a tracee stops after an injection
STUB_PARK = STUB_ADDR + 8
STUB_EMPTY_SET = STUB_ADDR + 16
STUB_CODE = bytes.fromhex("0f05cc ebfb 909090" "0f05cc 9090909090") + bytes(8)
# The address seccomp reports for a syscall made at STUB_SYSCALL.
STUB_SYSCALL_RETURN_IP = STUB_SYSCALL + 2
SCRATCH_ADDR = STUB_ADDR + STUB_SIZE  # private RW scratch for marshalled arguments
SCRATCH_SIZE = 0x10000

SYSCALL_INSN = b"\x0f\x05"
SYSCALL_INSN_LEN = 2

ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8", "r9")

# Restart codes a syscall interrupted by a signal leaves in the return register.
ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK = 512, 513, 514, 516


def syscall_number(name: str | int) -> int:
    """Map a syscall name ("getpid") or number to its number.

    InvalidArgument (a ValueError) for an unknown name."""
    if isinstance(name, int):
        return name
    try:
        return SYSCALL_NUMBERS[name]
    except KeyError:
        raise InvalidArgument(f"unknown syscall {name!r}") from None


def syscall_name(nr: int) -> str:
    return _NAMES.get(nr, f"syscall_{nr}")


def signed(value: int) -> int:
    """A 64-bit register value as a signed integer."""
    return value - (1 << 64) if value >= 1 << 63 else value


def errno_of(ret: int) -> int:
    """The positive errno a raw syscall return value encodes, or 0."""
    ret = signed(ret)
    return -ret if -4095 <= ret < 0 else 0


def syscall_args(regs) -> tuple[int, ...]:
    return tuple(getattr(regs, r) for r in ARG_REGS)


def syscall_nr(regs) -> int:
    return signed(regs.orig_rax)


def set_return(regs, value: int) -> None:
    """Make a stopped syscall return ``value`` without running (skip it)."""
    regs.rax = value & (2**64 - 1)
    regs.orig_rax = 2**64 - 1


def set_park(regs) -> None:
    """Point ``regs`` at the parking loop: rt_sigsuspend(empty set), restarted forever."""
    regs.rip = STUB_PARK
    regs.rax = SYSCALL_NUMBERS["rt_sigsuspend"]
    regs.orig_rax = 2**64 - 1
    regs.rdi = STUB_EMPTY_SET
    regs.rsi = 8


def set_call(regs, nr: int, args) -> None:
    regs.rip = STUB_SYSCALL
    regs.rax = nr
    regs.orig_rax = 2**64 - 1
    for name, value in zip(ARG_REGS, args, strict=False):
        setattr(regs, name, value & (2**64 - 1))


def canonicalize(regs) -> None:
    """Turn a context stopped inside an interrupted syscall into a plain user
    context (orig_rax = -1) that resumes correctly in another process.

    Restartable syscalls are rewound to run again.  ERESTART_RESTARTBLOCK's
    restart state (a sleep's remaining time) lives in the old task, so that
    syscall is issued again with its original arguments: a sleep may last
    longer, but never returns EINTR with its "remaining" output unwritten.
    """
    if signed(regs.orig_rax) < 0:
        return
    if -signed(regs.rax) in (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND,
                             ERESTART_RESTARTBLOCK):
        regs.rax = regs.orig_rax
        regs.rip -= SYSCALL_INSN_LEN
    regs.orig_rax = 2**64 - 1


def rewind_to_syscall(regs) -> None:
    """Make a context stopped at syscall entry execute that syscall again."""
    regs.rax = regs.orig_rax
    regs.rip -= SYSCALL_INSN_LEN
    regs.orig_rax = 2**64 - 1
