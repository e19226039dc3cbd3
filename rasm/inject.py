"""One traced host process, and running syscalls inside it (injection).

A ``RemoteProcess`` is a process under our ptrace (PTRACE_SEIZE) that is
either running or stopped.  While it is stopped, ``call``/``inject`` run
syscalls in it through the stub page (``syscall; int3`` at a fixed address,
see rasm.arch).  The registers it stopped with are saved on first use and
put back by ``resume``; the signal mask is set to block everything while
injecting (only the stub's SIGTRAP, which is forced, gets through) and put
back too.  A syscall it was blocked in restarts as if never interrupted.

Errors: ``TraceeGone`` when the process dies, ``InjectionError`` when the
injection itself fails (the tracee is left as it was), and
``RemoteSyscallError`` from ``call`` when the syscall ran and failed.
"""

from __future__ import annotations

import os
import signal as _signal
import struct

from ._native import ffi, lib
from .arch import current as arch
from .errors import InjectionError, RemoteSyscallError, TraceeGone, raise_for_errno

# ptrace requests and events (linux/ptrace.h).
PTRACE_CONT = 7
PTRACE_SYSCALL = 24
PTRACE_GETSIGINFO = 0x4202
PTRACE_SETSIGINFO = 0x4203
PTRACE_GETEVENTMSG = 0x4201
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_GETSIGMASK = 0x420A
PTRACE_SETSIGMASK = 0x420B
PTRACE_DETACH = 17
PTRACE_GET_SYSCALL_INFO = 0x420E
SYSCALL_INFO_ENTRY, SYSCALL_INFO_EXIT = 1, 2

EVENT_FORK, EVENT_VFORK, EVENT_CLONE, EVENT_EXEC = 1, 2, 3, 4
EVENT_EXIT, EVENT_SECCOMP, EVENT_STOP = 6, 7, 128

O_TRACESYSGOOD = 1
O_TRACEFORK, O_TRACEVFORK, O_TRACECLONE, O_TRACEEXEC = 2, 4, 8, 0x10
O_TRACESECCOMP = 0x80
O_EXITKILL = 1 << 20
TRACE_OPTIONS = (
    O_TRACESYSGOOD | O_TRACEFORK | O_TRACEVFORK | O_TRACECLONE | O_TRACEEXEC
    | O_TRACESECCOMP | O_EXITKILL
)

PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER = 1

ALL_SIGNALS = (1 << 64) - 1
# Signals the injected code itself raises: the injection failed.
_FAULTS = {_signal.SIGSEGV, _signal.SIGBUS, _signal.SIGILL, _signal.SIGFPE, _signal.SIGTRAP,
           _signal.SIGSYS}
_ZEROS = (0,) * 6
_inject = lib.rasm_inject
_NUMBERS = arch.SYSCALL_NUMBERS
_inject_again = lib.rasm_inject_again
_AGAIN_SLOW = -(2**63)
_STUB = arch.STUB_SYSCALL
SIGINFO_SIZE = 128


def check(ret: int, what: str) -> int:
    """Return ``ret`` or raise for a negative errno from the native layer."""
    if ret < 0:
        raise_for_errno(-ret, what)
    return ret


def wait(pid: int = -1, flags: int = 0) -> tuple[int, int]:
    """waitpid(pid, __WALL|flags), retried on EINTR; (0, 0) for WNOHANG with nothing."""
    status = ffi.new("int *")
    while True:
        r = lib.rasm_wait(pid, status, flags)
        if r == -4:  # EINTR: let Python run its signal handlers, then go on
            continue
        check(r, "waitpid")
        return r, status[0]


def event_of(status: int) -> int:
    return (status >> 16) & 0xFF


def new_regs():
    return ffi.new("struct user_regs_struct *")


def copy_regs(regs):
    out = new_regs()
    ffi.memmove(out, regs, ffi.sizeof("struct user_regs_struct"))
    return out


class RemoteProcess:
    """A seized host process; see the module docstring."""

    def __init__(self, pid: int, stopped: bool = True, stop_status: int = 0):
        self.pid = pid
        self.alive = True
        self.stopped = stopped
        self.status = stop_status  # the wait status of the current stop
        self.exec_happened = False
        self._regs = None  # registers as stopped, fetched on demand
        self._dirty = False  # registers changed by injection since the stop
        self._saved_mask: int | None = None
        self._siginfo: bytes | None = None
        self._mem_fd: int | None = None
        self._prepared = False  # _prepare_injection done for this stop
        self._args = ffi.new("int64_t[6]")
        self._at_stub = False  # stopped at the stub's int3 by our last call
        self._held_signals: list[int] = []  # arrived mid-injection, sent again on resume
        self._last_args: tuple[int, ...] = ()
        self._ret = ffi.new("int64_t *")
        self._status = ffi.new("int *")

    # -- stop bookkeeping -------------------------------------------------
    def note_stop(self, status: int) -> None:
        """Record that a wait reported ``status`` for this process."""
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self.alive = self.stopped = False
            self.status = status
            self.close()
            return
        self.stopped = True
        self.status = status
        self.forget_registers()

    @property
    def stop_signal(self) -> int:
        """The signal of a signal-delivery stop, else 0."""
        if not self.stopped or event_of(self.status):
            return 0
        sig = os.WSTOPSIG(self.status)
        return 0 if sig == (_signal.SIGTRAP | 0x80) else sig

    @property
    def at_seccomp_stop(self) -> bool:
        return self.stopped and event_of(self.status) == EVENT_SECCOMP

    def _need_stopped(self, what: str) -> None:
        if not self.alive:
            raise TraceeGone(f"{what}: process {self.pid} is gone")
        if not self.stopped:
            raise InjectionError(f"{what}: process {self.pid} is running")

    # -- registers ----------------------------------------------------------
    def regs(self):
        """The registers the process stopped with (a copy; see ``set_regs``)."""
        self._need_stopped("getregs")
        if self._regs is None:
            regs = new_regs()
            check(lib.rasm_getregs(self.pid, regs), "getregs")
            self._regs = regs
        return copy_regs(self._regs)

    def set_regs(self, regs) -> None:
        """Replace the stopped registers; ``resume`` continues from ``regs``."""
        self._need_stopped("setregs")
        check(lib.rasm_setregs(self.pid, regs), "setregs")
        self._regs = copy_regs(regs)
        self._dirty = False
        self._at_stub = False

    def ptrace(self, request: int, addr: int = 0, data: int = 0) -> int:
        return check(lib.rasm_ptrace(request, self.pid, addr, data), f"ptrace({request:#x})")

    def event_msg(self) -> int:
        msg = ffi.new("unsigned long *")
        self.ptrace(PTRACE_GETEVENTMSG, 0, int(ffi.cast("uintptr_t", msg)))
        return msg[0]

    def siginfo(self) -> bytes:
        buf = ffi.new("unsigned char[]", SIGINFO_SIZE)
        self.ptrace(PTRACE_GETSIGINFO, 0, int(ffi.cast("uintptr_t", buf)))
        return bytes(ffi.buffer(buf))

    def set_siginfo(self, info: bytes) -> None:
        buf = ffi.from_buffer(bytearray(info))
        self.ptrace(PTRACE_SETSIGINFO, 0, int(ffi.cast("uintptr_t", buf)))

    def sigmask(self) -> int:
        mask = ffi.new("uint64_t *")
        self.ptrace(PTRACE_GETSIGMASK, 8, int(ffi.cast("uintptr_t", mask)))
        return mask[0]

    def guest_sigmask(self) -> int:
        """The signal mask the process had before injection blocked signals."""
        return self.sigmask() if self._saved_mask is None else self._saved_mask

    def set_sigmask(self, value: int) -> None:
        mask = ffi.new("uint64_t *", value)
        self.ptrace(PTRACE_SETSIGMASK, 8, int(ffi.cast("uintptr_t", mask)))

    # -- injection ----------------------------------------------------------
    def _prepare_injection(self) -> None:
        """Once per stop: fetch the registers to restore, block signals and
        keep the siginfo of a signal stop."""
        self._need_stopped("inject")
        if self._regs is None:
            self.regs()
        if self._saved_mask is None:
            self._saved_mask = self.sigmask()
            self.set_sigmask(ALL_SIGNALS)
        if self._siginfo is None and self.stop_signal:
            self._siginfo = self.siginfo()
        self._prepared = True

    def inject(self, nr: int, *args: int) -> int:
        """Run syscall ``nr(args)`` at the stub; return its raw (signed) result.

        The process must be stopped and have the stub mapped.
        """
        return self.call_args(nr, args, check=False)

    def inject_with_mask(self, mask: int, nr: int, *args: int) -> int:
        """``inject`` with ``mask`` as the signal mask instead of all signals
        blocked: an execve passes the mask it runs with to the new image."""
        if not self._prepared:
            self._prepare_injection()
        self.set_sigmask(mask)
        try:
            return self.call_args(nr, args, check=False)
        finally:
            if self.alive and not self.exec_happened:
                self.set_sigmask(ALL_SIGNALS)

    def call(self, name: str | int, *args: int) -> int:
        """Like ``inject`` but by name, raising RemoteSyscallError on -errno."""
        return self.call_args(name, args)

    def call_args(self, name: str | int, args: tuple[int, ...], check: bool = True) -> int:
        """The hot path behind call, inject and Tracee.syscall: reused
        buffers, one C call per injected syscall, no further Python frames
        when the same arguments are still in place at the stub."""
        nr = _NUMBERS.get(name)
        if nr is None:
            nr = arch.syscall_number(name)  # a number, or InvalidArgument
        if not self._prepared:
            self._prepare_injection()
        if self._at_stub and args == self._last_args:
            ret = _inject_again(self.pid, _STUB, nr)
            if ret == _AGAIN_SLOW:
                ret = self._inject_slowly(nr, args, lib.rasm_again_status)
        else:
            ret = self._inject_slowly(nr, args)
        if check and -4096 < ret < 0:
            raise RemoteSyscallError(arch.syscall_name(nr), -ret)
        return ret

    def _inject_slowly(self, nr: int, args: tuple[int, ...], repeat: int | None = None) -> int:
        """Set every register for the call and handle whatever gets in the
        way; ``repeat`` is what a failed repeat left (a negative errno or the
        wait status of an unexpected stop), which is taken over instead."""
        if repeat is not None:
            r = repeat
            if r >= 0:
                self._status[0] = r
                r = 1
        else:
            argv = self._args
            try:
                argv[0:6] = args + _ZEROS[len(args) :]
            except OverflowError:  # an unsigned value with the top bit set
                argv[0:6] = [arch.signed(a & (2**64 - 1)) for a in args + _ZEROS[len(args) :]]
            self._dirty = True
            r = _inject(self.pid, self._regs, _STUB, nr, argv, self._ret, self._status)
        self._last_args = args
        self._at_stub = r == 0
        if r:
            self._finish_injection(r, nr)
            if self.exec_happened:
                return 0
        return self._ret[0]

    def _finish_injection(self, r: int, nr: int) -> None:
        """Handle what got in the way of an injection until it completes
        (or an execve it ran succeeded)."""
        ret, status = self._ret, self._status
        while r == 1 or r == -4:
            if r == 1:
                self._unexpected_stop(status[0])
                if self.exec_happened:
                    return
                self.ptrace(PTRACE_CONT)
            r = lib.rasm_inject_finish(self.pid, arch.STUB_SYSCALL, ret, status)
        if r < 0:
            if r == -3:  # ESRCH: learn how it died
                self._reap_death()
            check(r, f"inject {arch.syscall_name(nr)}")

    def _reap_death(self) -> None:
        pid, status = wait(self.pid, os.WNOHANG)
        if pid:
            self.note_stop(status)
        raise TraceeGone(f"process {self.pid} died during injection")

    def _unexpected_stop(self, status: int) -> None:
        """A stop other than the stub's int3 arrived while injecting."""
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self.note_stop(status)
            raise TraceeGone(f"process {self.pid} died during injection")
        event = event_of(status)
        if event == EVENT_EXEC:
            # An injected execve succeeded: there is nothing left to restore.
            self.exec_happened = True
            self.status = status
            self.forget_registers()
        elif event:
            pass  # the clone we injected, an interrupt, a group stop: go on
        elif os.WSTOPSIG(status) in _FAULTS:
            sig = os.WSTOPSIG(status)
            raise InjectionError(f"process {self.pid} faulted ({sig}) running injected code")
        else:
            # Only what cannot be blocked (SIGSTOP) gets here: hold it back
            # and send it again when the process resumes.
            self._held_signals.append(os.WSTOPSIG(status))

    # -- resuming -------------------------------------------------------------
    def restore(self) -> None:
        """Put back the registers and signal mask the process stopped with."""
        if self._dirty:
            regs = self._regs
            if self.at_seccomp_stop and arch.syscall_nr(regs) >= 0:
                # We left the seccomp stop: issue the pending syscall again.
                regs = copy_regs(regs)
                arch.rewind_to_syscall(regs)
            check(lib.rasm_setregs(self.pid, regs), "restore registers")
            self._dirty = False
            self._at_stub = False
        if self._saved_mask is not None:
            self.set_sigmask(self._saved_mask)
            self._saved_mask = None
            self._prepared = False

    def resume(self, sig: int = 0, request: int = PTRACE_CONT) -> None:
        """Restore what injection changed and let the process run."""
        self._need_stopped("resume")
        self.restore()
        if sig and self._siginfo is not None:
            # The stop we resume from is now the stub's SIGTRAP: give the
            # signal its original siginfo back.
            self.set_siginfo(self._siginfo)
        self.ptrace(request, 0, sig)
        self.stopped = False
        self.forget_registers()
        held, self._held_signals = self._held_signals, []
        for signum in held:
            os.kill(self.pid, signum)

    def adopt_regs(self, regs) -> None:
        """Record registers that were just loaded into the process."""
        self.forget_registers()
        self._regs = copy_regs(regs)

    def drop_saved_state(self) -> None:
        """Forget the stop's registers and mask: the caller set new ones."""
        regs = self._regs
        self.forget_registers()
        self._regs = regs

    def forget_registers(self) -> None:
        """Forget all that was saved at this stop (nothing is restored)."""
        self._regs = None
        self._dirty = False
        self._saved_mask = None
        self._siginfo = None
        self._prepared = False
        self._at_stub = False

    # -- memory ---------------------------------------------------------------
    def _mem(self) -> int:
        if self._mem_fd is None:
            try:
                self._mem_fd = os.open(f"/proc/{self.pid}/mem", os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                raise TraceeGone(f"process {self.pid} is gone") from None
        return self._mem_fd

    def read(self, addr: int, size: int) -> bytes:
        try:
            data = os.pread(self._mem(), size, addr)
        except OSError as e:
            raise RemoteSyscallError("read memory", e.errno) from None
        if len(data) != size:
            raise RemoteSyscallError("read memory", 14)  # EFAULT: ran off a mapping
        return data

    def write(self, addr: int, data: bytes) -> None:
        try:
            n = os.pwrite(self._mem(), data, addr)
        except OSError as e:
            raise RemoteSyscallError("write memory", e.errno) from None
        if n != len(data):
            raise RemoteSyscallError("write memory", 14)

    def close(self) -> None:
        if self._mem_fd is not None:
            os.close(self._mem_fd)
            self._mem_fd = None


def install_stub(proc: RemoteProcess) -> None:
    """Map the stub page and the scratch area in a stopped process.

    The first mmap runs through a ``syscall`` instruction found in the vDSO
    (no text is patched); the stub's bytes are then written through
    /proc/pid/mem, which may write read-only pages.
    """
    prot_rx, prot_rw = 5, 3
    flags = 0x22 | 0x100000  # MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE
    addr = gadget_syscall(proc, arch.syscall_number("mmap"),
                          arch.STUB_ADDR, arch.STUB_SIZE, prot_rx, flags, -1, 0)
    if addr != arch.STUB_ADDR:
        raise InjectionError(
            f"cannot map the stub page at {arch.STUB_ADDR:#x} in {proc.pid} "
            f"(mmap returned {arch.signed(addr)})"
        )
    proc.write(arch.STUB_ADDR, arch.STUB_CODE)
    # From here on the stub works; the scratch area comes through it.
    try:
        proc.call("mmap", arch.SCRATCH_ADDR, arch.SCRATCH_SIZE, prot_rw, flags, -1, 0)
    except RemoteSyscallError as e:
        raise InjectionError(f"cannot map the scratch area in {proc.pid}: {e}") from None


def install_filter(proc: RemoteProcess, prog: bytes) -> None:
    """Give a stopped process (stub installed) the seccomp filter ``prog``,
    setting no_new_privs first as the kernel requires of the unprivileged."""
    proc.call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    fprog = struct.pack("<HxxxxxxQ", len(prog) // 8, arch.SCRATCH_ADDR + 16)
    proc.write(arch.SCRATCH_ADDR, fprog + prog)
    proc.call("seccomp", SECCOMP_SET_MODE_FILTER, 0, arch.SCRATCH_ADDR)


def gadget_syscall(proc: RemoteProcess, nr: int, *args: int) -> int:
    """Run one syscall in a stopped process without the stub, through a
    ``syscall`` instruction of its vDSO; return the raw result."""
    return _gadget_syscall(proc, _vdso_syscall_insn(proc), nr, *args)


def _vdso_syscall_insn(proc: RemoteProcess) -> int:
    with open(f"/proc/{proc.pid}/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("[vdso]"):
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                code = proc.read(start, end - start)
                off = code.find(arch.SYSCALL_INSN)
                if off >= 0:
                    return start + off
    raise InjectionError(f"process {proc.pid} has no vDSO syscall instruction to start from")


def _gadget_syscall(proc: RemoteProcess, gadget: int, nr: int, *args: int) -> int:
    """Run one syscall at ``gadget``, stepping syscall-entry and -exit stops.

    A stop left over from the syscall the tracee was in (the exit of its
    execve, say) may come first and clobber the return register: the call's
    registers are set again there, and only the exit after our entry counts.
    """
    proc._prepare_injection()
    regs = proc.regs()
    arch.set_call(regs, nr, args)
    regs.rip = gadget
    proc._dirty = True
    proc._at_stub = False  # the next call cannot repeat from the stub's int3
    check(lib.rasm_setregs(proc.pid, regs), "setregs")
    info = ffi.new("unsigned char[88]")
    entered = False
    while True:
        proc.ptrace(PTRACE_SYSCALL)
        _, status = wait(proc.pid)
        if not (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == (_signal.SIGTRAP | 0x80)):
            proc._unexpected_stop(status)
            continue
        proc.ptrace(PTRACE_GET_SYSCALL_INFO, 88, int(ffi.cast("uintptr_t", info)))
        op = info[0]
        if op == SYSCALL_INFO_ENTRY:
            entered = True
        elif op == SYSCALL_INFO_EXIT and not entered:
            check(lib.rasm_setregs(proc.pid, regs), "setregs")
        elif op == SYSCALL_INFO_EXIT:
            out = new_regs()
            check(lib.rasm_getregs(proc.pid, out), "getregs")
            return out.rax
