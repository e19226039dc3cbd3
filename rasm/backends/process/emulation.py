"""Guest syscalls the process backend traps and what it does with them.

Syscalls 600-602 are trapped in every guest (the base filter).  Once a
table exists, the holders carry a second filter (``table_filter``) so that
the guest stays one process to itself and to the world:

* identity: getpid/gettid/getppid answer P's ids; process group and
  session calls run in P (holders are in sessions of their own, see
  ``signals.py``); kill/tkill/tgkill aimed at P, and kill(0), run in P and
  P's copy of the signal goes to the running holder at once, so that
  raise() is synchronous.
* per-process state changed in one slot holds in all: sigaction, sigaltstack,
  rlimits and credentials run in the running holder, then in every other
  holder and in P ("replicated").
* timers (alarm, itimers, POSIX timers) live in P ("redirected"): they fire
  at P, whose signals are forwarded to whichever slot runs.
* threads are refused (EBUSY); fork runs natively; execve and exit run in P,
  so the guest's parent sees its pid exec and exit.

A handler returns the value the guest's syscall returns, ``PASS`` to let the
syscall run natively, or ``None`` when it has resumed the guest itself.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from ... import seccomp
from ...abi import NR_DROP_AS, NR_NEW_AS, NR_SWITCH_AS
from ...arch import current as arch
from ...errors import BadSlot, InjectionError, NoFreeSlot, RemoteSyscallError, SlotBusy, TraceeGone
from ...events import Event
from ...inject import RemoteProcess

if TYPE_CHECKING:
    from .guest import ProcessGuest

PASS = object()
NR = arch.syscall_number
CLONE_THREAD = 0x10000
Handler = Callable[["ProcessGuest", RemoteProcess, tuple[int, ...]], object]


# -- marshalling -----------------------------------------------------------------
def run_marshalled(
    target: RemoteProcess, nr: int, args, ins: dict[int, bytes], outs: dict[int, int]
) -> tuple[int, dict[int, bytes]]:
    """Run ``nr(args)`` in ``target`` with pointer arguments rebuilt in its
    scratch area: ``ins`` maps an argument index to the bytes it points to,
    ``outs`` to the size of what the call writes back (returned)."""
    args = list(args)
    offset = 0
    for index, data in ins.items():
        args[index] = arch.SCRATCH_ADDR + offset
        target.write(args[index], data)
        offset += (len(data) + 15) & ~15
    for index, size in outs.items():
        args[index] = arch.SCRATCH_ADDR + offset
        offset += (size + 15) & ~15
    ret = target.inject(nr, *args)
    if arch.errno_of(ret):
        return ret, {}
    return ret, {index: target.read(args[index], size) for index, size in outs.items()}


def _read_args(proc: RemoteProcess, args, sizes: dict[int, int]) -> dict[int, bytes]:
    return {i: proc.read(args[i], size) for i, size in sizes.items() if args[i]}


def _identity_and_others(guest: ProcessGuest, proc: RemoteProcess, run) -> None:
    for holder in guest.holders:
        if holder is not proc:
            run(holder)
    with guest.identity_stopped() as p:
        run(p)


def redirect(ins: dict[int, int] | None = None, outs: dict[int, int] | None = None) -> Handler:
    """Run the syscall in P (timers live there), copying pointed-to data."""

    def handler(guest: ProcessGuest, proc: RemoteProcess, args):
        nr = arch.syscall_nr(proc.regs())
        data_in = _read_args(proc, args, ins or {})
        wanted = {i: size for i, size in (outs or {}).items() if args[i]}
        with guest.identity_stopped() as p:
            ret, data_out = run_marshalled(p, nr, args, data_in, wanted)
        for index, data in data_out.items():
            proc.write(args[index], data)
        return ret

    return handler


Sizes = dict[int, int] | Callable[[tuple[int, ...]], dict[int, int]]


def replicate(ins: Sizes | None = None, outs: tuple[int, ...] = (),
              rewrite: Callable[[tuple[int, ...], ProcessGuest], object] | None = None) -> Handler:
    """Run the syscall in the running holder, then (if it worked) in every
    other holder and in P with the same input and no output pointers.

    ``ins`` gives the size of what each pointer argument points to (or
    computes it from the arguments)."""

    def handler(guest: ProcessGuest, proc: RemoteProcess, args):
        if rewrite is not None:
            args = rewrite(args, guest)
            if args is PASS:
                return PASS
        nr = arch.syscall_nr(proc.regs())
        sizes = ins(args) if callable(ins) else (ins or {})
        data_in = _read_args(proc, args, sizes)  # before the call may change it
        ret = proc.inject(nr, *args)
        if arch.errno_of(ret):
            return ret
        margs = [0 if i in outs else a for i, a in enumerate(args)]
        _identity_and_others(guest, proc, lambda t: run_marshalled(t, nr, margs, data_in, {}))
        return ret

    return handler


# -- handlers ----------------------------------------------------------------------
def _refuse_threads(guest, proc, args):
    return -errno.EBUSY if args[0] & CLONE_THREAD else PASS


def _refuse_threads_clone3(guest, proc, args):
    if args[1] < 8:
        return PASS  # let the kernel answer EINVAL
    (flags,) = struct.unpack("<Q", proc.read(args[0], 8))
    return -errno.EBUSY if flags & CLONE_THREAD else PASS


def _getpid(guest, proc, args):
    return guest.pid


def _getppid(guest, proc, args):
    return guest.ppid()


def _kill_self(guest, proc, args):
    """kill/tkill/tgkill aimed at the guest (or kill(0) at its group).

    The call runs in P, so every recipient sees the guest's pid as sender
    and kill(0) reaches the guest's group (a holder's is its own).  P's own
    copy is taken off its queue at once and forwarded to the running
    holder, which is stopped here: the signal is pending there when the
    guest's call returns, so it is delivered before kill returns, as
    natively.  SIGKILL ends the guest; SIGSTOP cannot be dequeued and
    reaches the guest through P's park instead."""
    nr = arch.syscall_nr(proc.regs())
    if nr == NR("tgkill") and args[1] != guest.pid:
        return PASS  # a tid that is not the guest's: let the kernel answer
    sig = args[2] if nr == NR("tgkill") else args[1]
    p = guest.identity
    try:
        with guest.identity_stopped():
            ret = p.inject(nr, *args[:3])
            info = None if ret or not sig else _dequeue(p, sig)
    except TraceeGone:
        if p.alive:
            raise
        if guest.finished is None:  # kill(SIGKILL): the guest is over
            guest.on_stop(p, p.status)
        return None
    if info is not None:
        guest.signals.forward(proc, sig, info)
    return ret


def _dequeue(p: RemoteProcess, sig: int) -> bytes | None:
    """Take ``sig`` off stopped P's queue (rt_sigtimedwait with no wait):
    its siginfo, or None if it is not there to take (SIGSTOP)."""
    sigset, no_wait, info = arch.SCRATCH_ADDR, arch.SCRATCH_ADDR + 16, arch.SCRATCH_ADDR + 32
    p.write(sigset, struct.pack("<Q16x", 1 << (sig - 1)))
    if p.inject(NR("rt_sigtimedwait"), sigset, info, no_wait, 8) != sig:
        return None
    return p.read(info, 128)


def _setpgid(guest, proc, args):
    """setpgid on the guest itself runs in P; holders keep their sessions."""
    return _in_identity(guest, proc, args) if args[0] in (0, guest.pid) else PASS


def _read_cstring(proc: RemoteProcess, addr: int, limit: int = 1 << 20) -> bytes:
    out = b""
    while b"\0" not in out:
        if len(out) > limit:
            raise RemoteSyscallError("execve", errno.E2BIG)
        step = 256 - (addr + len(out)) % 256  # never read across a page needlessly
        out += proc.read(addr + len(out), step)
    return out[: out.index(b"\0") + 1]


def _read_vector(proc: RemoteProcess, addr: int) -> list[bytes]:
    items = []
    while addr:
        (ptr,) = struct.unpack("<Q", proc.read(addr + 8 * len(items), 8))
        if not ptr:
            break
        items.append(_read_cstring(proc, ptr))
        if len(items) > 1 << 16:
            raise RemoteSyscallError("execve", errno.E2BIG)
    return items


def _exec(path_arg: int, argv_arg: int, envp_arg: int) -> Handler:
    """execve/execveat run in P: the guest's pid is the one that execs."""

    def handler(guest: ProcessGuest, proc: RemoteProcess, args):
        nr = arch.syscall_nr(proc.regs())
        try:
            path = _read_cstring(proc, args[path_arg])
            argv = _read_vector(proc, args[argv_arg])
            envp = _read_vector(proc, args[envp_arg])
        except RemoteSyscallError as e:
            return -e.errno
        mask = proc.guest_sigmask()
        with guest.identity_stopped() as p:
            ret = _exec_in(p, nr, args, (path_arg, argv_arg, envp_arg), path, argv, envp, mask)
            execed = p.exec_happened
        if not execed:
            return ret
        p.exec_happened = False
        guest.drop_table()
        guest.report(Event("exec", guest.pid))
        return None

    return handler


def _exec_in(p: RemoteProcess, nr, args, where, path, argv, envp, mask) -> int:
    blob = bytearray(path)
    vectors = []
    for strings in (argv, envp):
        offsets = []
        for s in strings:
            offsets.append(len(blob))
            blob += s
        vectors.append(offsets)
    blob += bytes(-len(blob) % 8)
    size = len(blob) + 8 * (len(argv) + len(envp) + 2)
    size = (size + 4095) & ~4095
    base = p.call("mmap", 0, size, 3, 0x22, -1, 0)
    pointers = bytearray()
    vector_addrs = []
    for offsets in vectors:
        vector_addrs.append(base + len(blob) + len(pointers))
        pointers += b"".join(struct.pack("<Q", base + o) for o in offsets) + bytes(8)
    p.write(base, bytes(blob) + bytes(pointers))
    call_args = list(args)
    call_args[where[0]] = base
    call_args[where[1]], call_args[where[2]] = vector_addrs
    ret = p.inject_with_mask(mask, nr, *call_args)  # the new image gets the guest's mask
    if not p.exec_happened:
        p.inject(NR("munmap"), base, size)
    return ret


def _exit(guest: ProcessGuest, proc: RemoteProcess, args):
    """exit/exit_group: P exits with the status, so the guest's parent sees it."""
    with guest.identity_stopped() as p:
        try:
            p.inject(NR("exit_group"), args[0])
        except TraceeGone:
            pass
    if p.alive:  # could not make P exit: end the guest anyway
        guest.kill()
    else:
        guest.on_stop(p, p.status)
    return None


_in_identity = redirect()


def _prlimit_self(args, guest):
    if args[0] not in (0, guest.pid):
        return PASS
    return (0, *args[1:])


HANDLERS: dict[int, Handler] = {
    NR("clone"): _refuse_threads,
    NR("clone3"): _refuse_threads_clone3,
    NR("execve"): _exec(0, 1, 2),
    NR("execveat"): _exec(1, 2, 3),
    NR("exit"): _exit,
    NR("exit_group"): _exit,
    NR("getpid"): _getpid,
    NR("gettid"): _getpid,
    NR("getppid"): _getppid,
    NR("rt_sigaction"): replicate(ins={1: 32}, outs=(2,)),
    NR("sigaltstack"): replicate(ins={0: 24}, outs=(1,)),
    NR("setrlimit"): replicate(ins={1: 16}),
    NR("prlimit64"): replicate(ins={2: 16}, outs=(3,), rewrite=_prlimit_self),
    NR("setgroups"): replicate(ins=lambda args: {1: 4 * (args[0] & 0xFFFF)}),
    NR("capset"): replicate(ins={0: 8, 1: 24}),
    NR("alarm"): redirect(),
    NR("setitimer"): redirect(ins={1: 32}, outs={2: 32}),
    NR("getitimer"): redirect(outs={1: 32}),
    NR("timer_create"): redirect(ins={1: 64}, outs={2: 4}),
    NR("timer_settime"): redirect(ins={2: 32}, outs={3: 32}),
    NR("timer_gettime"): redirect(outs={1: 32}),
    NR("timer_getoverrun"): redirect(),
    NR("timer_delete"): redirect(),
    NR("getpgrp"): _in_identity,
    NR("getpgid"): _in_identity,
    NR("getsid"): _in_identity,
    NR("setsid"): _in_identity,
    NR("setpgid"): _setpgid,
    NR("kill"): _kill_self,
    NR("tkill"): _kill_self,
    NR("tgkill"): _kill_self,
}
for _name in ("setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
              "setfsuid", "setfsgid"):
    HANDLERS[NR(_name)] = replicate()

KILL_FAMILY = (NR("kill"), NR("tkill"), NR("tgkill"))
IDENTITY_CALLS = (NR("getpid"), NR("gettid"), NR("getppid"))


def table_filter(identity_pid: int) -> bytes:
    """The filter holders carry: everything in HANDLERS (kills only at P)."""
    always = [nr for nr in HANDLERS if nr not in KILL_FAMILY]
    aimed_at_guest = {nr: (identity_pid,) for nr in KILL_FAMILY}
    aimed_at_guest[NR("kill")] = (identity_pid, 0)  # 0: the caller's group
    return seccomp.build(always, aimed_at_guest)


# -- dispatch -----------------------------------------------------------------------
def _multias(guest: ProcessGuest, proc: RemoteProcess, nr: int) -> None:
    arg = proc.regs().rdi & 0xFFFFFFFF  # the syscalls take an int
    n = arg - (1 << 32) if arg >= 1 << 31 else arg
    kind = {NR_NEW_AS: "new_as", NR_SWITCH_AS: "as_switch", NR_DROP_AS: "drop_as"}[nr]
    before = guest.current
    if proc is not guest.running:
        # A thread or a vfork child sharing the guest's memory.
        finish(guest, proc, -errno.EBUSY if nr == NR_NEW_AS else -errno.ENOENT)
        return
    try:
        if nr == NR_NEW_AS:
            ret = n = guest.new_as()
        elif nr == NR_SWITCH_AS:
            guest.switch_as(n)
            ret = 0
        else:
            guest.drop_as(n)
            ret = 0
    except (NoFreeSlot, BadSlot):
        ret = -errno.ENOENT
    except SlotBusy:
        ret = -errno.EBUSY
    except RemoteSyscallError as e:
        ret = -e.errno
    except InjectionError:
        ret = -errno.ENOMEM
    if guest.reporting and ret >= 0:
        set_result(guest.running, ret)
        guest.report(Event(kind, guest.pid, from_as=before, to_as=n))
        return
    finish(guest, guest.running, ret)


def set_result(proc: RemoteProcess, value: int) -> None:
    regs = proc.regs()
    arch.set_return(regs, value)
    proc.set_regs(regs)


def finish(guest: ProcessGuest, proc: RemoteProcess, value: int) -> None:
    """The guest's trapped syscall returns ``value``; the guest runs on."""
    set_result(proc, value)
    proc.resume()


def dispatch(guest: ProcessGuest, proc: RemoteProcess, nr: int) -> None:
    """Handle a seccomp stop of ``proc`` for syscall ``nr``."""
    if nr in (NR_NEW_AS, NR_SWITCH_AS, NR_DROP_AS):
        _multias(guest, proc, nr)
        return
    handler = HANDLERS.get(nr)
    applies = guest.table or nr in IDENTITY_CALLS  # a holder's fork child has no table
    if handler is None or not applies or proc is not guest.running:
        proc.resume()  # nothing to emulate here: the syscall runs natively
        return
    try:
        ret = handler(guest, proc, arch.syscall_args(proc.regs()))
    except RemoteSyscallError as e:
        ret = -e.errno
    if ret is PASS:
        proc.resume()
    elif ret is not None and guest.finished is None:
        finish(guest, guest.running, ret)
