"""Process backend: the multias interface on a stock kernel.

How a guest is laid out (DESIGN.md, "Process backend"):

* The guest's own process P keeps the guest's identity: its pid, its parent,
  the exit status its parent sees, signals sent to its pid, its timers.
  Until the first ``new_as`` it simply runs the guest, with only syscalls
  600-602 trapped.
* The first ``new_as`` clones P into H0, which holds slot 0; the guest's
  registers move to H0 and P parks in ``rt_sigsuspend`` on the stub page,
  where every signal addressed to the guest wakes it and is forwarded to the
  running holder (``signals.py``).
* Every slot k is held by its own process H_k, a clone (no CLONE_VM, shared
  files and fs) of the holder it duplicates: its memory *is* the AS.  A
  switch moves general registers, extended state and signal mask into the
  target holder and resumes it; the others wait in ptrace stops.  Guest
  switches between filled slots are served by ``rasm_serve`` in C.
* Holders carry a second seccomp filter (``emulation.table_filter``) so
  that what must look like one process does: see ``emulation.py``.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Sequence

from ... import procfs, seccomp
from ..._native import ffi, lib
from ...abi import MULTIAS_SYSCALLS, NR_SWITCH_AS
from ...arch import current as arch
from ...errors import (
    BadSlot,
    InjectionError,
    NoFreeSlot,
    RasmError,
    SlotBusy,
    TraceeGone,
    UnsupportedOperation,
)
from ...events import Event, Mapping
from ...inject import (
    EVENT_CLONE,
    EVENT_EXEC,
    EVENT_FORK,
    EVENT_SECCOMP,
    EVENT_STOP,
    EVENT_VFORK,
    PTRACE_DETACH,
    PTRACE_INTERRUPT,
    TRACE_OPTIONS,
    RemoteProcess,
    check,
    event_of,
    install_filter,
    install_stub,
    wait,
)
from ..base import check_mechanism, check_slots
from ..session import SESSION, next_event
from . import emulation
from .signals import SignalRouter

CLONE_FS, CLONE_FILES, CLONE_PARENT, CLONE_SYSVSEM = 0x200, 0x400, 0x8000, 0x40000
# Holders share files and fs (cwd, umask) with the guest, and have no exit
# signal, so that the guest's wait() without __WALL never sees them.  When
# the guest is the controller's child, CLONE_PARENT makes them the
# controller's children too, so that we reap them; otherwise they are the
# guest's, and whoever adopts them when it exits reaps them (`rasm run` is a
# child subreaper for that).
HOLDER_CLONE_FLAGS = CLONE_FS | CLONE_FILES | CLONE_SYSVSEM
SECCOMP_STOP_STATUS = ((signal.SIGTRAP | EVENT_SECCOMP << 8) << 8) | 0x7F


_NR_GETPPID = arch.syscall_number("getppid")
_IDENTITY_CALLS = frozenset({"getpid", "gettid", "getppid", *emulation.IDENTITY_CALLS})


class ProcessGuest:
    """A guest on the process backend (see the module docstring)."""

    backend = "process"
    capabilities: frozenset[str] = frozenset()

    def __init__(self, proc: RemoteProcess, nslots: int, autonomous: bool = False):
        self.session = SESSION
        self.identity = proc
        self.pid = proc.pid
        self.nslots = nslots
        self.slots: list[RemoteProcess | None] = [None] * nslots
        self.current = 0
        self.table = False
        self.threads: dict[int, RemoteProcess] = {}
        self.shares_mm = False  # a CLONE_VM child before its exec
        self.autonomous = autonomous  # forked children run without a user
        self.events: deque[Event] = deque()
        self.finished: Event | None = None
        self.reporting = False
        self.attached = False
        self.parent_pid: int | None = None  # set for children forked by a holder
        self.ours = procfs.parent_of(proc.pid) == os.getpid()  # our child: we can reap
        self.children: list[ProcessGuest] = []  # guests it forked (autonomous)
        self.signals = SignalRouter(self)
        self._ctable = ffi.new("struct rasm_table *")
        self.session.register(self, proc)

    # -- state ----------------------------------------------------------------
    def ppid(self) -> int:
        """The guest's parent as the guest should see it."""
        return self.parent_pid if self.parent_pid is not None else procfs.parent_of(self.pid)

    @property
    def running(self) -> RemoteProcess:
        """The process that runs (or will run) the guest's code."""
        holder = self.slots[self.current] if self.table else None
        return holder or self.identity

    @property
    def holders(self) -> list[RemoteProcess]:
        return [h for h in self.slots if h is not None]

    @property
    def current_as(self) -> int:
        return self.current

    @property
    def address_spaces(self) -> list[int]:
        if not self.table:
            return [0]
        return [i for i, h in enumerate(self.slots) if h is not None]

    def export_table(self):
        t = self._ctable
        t.nslots = self.nslots
        for i in range(self.nslots):
            h = self.slots[i]
            t.pids[i] = h.pid if h is not None else 0
        # Only a running guest with a table can hop in C.
        fast = self.table and not self.reporting and not self.running.stopped
        t.current = self.current if fast else -1
        t.nr_switch = NR_SWITCH_AS
        self._exported_current = t.current
        return t

    def import_table(self) -> None:
        """Take over hops that rasm_serve made in C."""
        new = self._ctable.current
        if new == self._exported_current or new < 0:
            return
        old = self.slots[self.current]
        if old is not None:
            old.note_stop(SECCOMP_STOP_STATUS)  # parked in its switch_as
        self.current = new
        target = self.slots[new]
        target.stopped = False
        target.forget_registers()

    def _stopped_running(self, what: str) -> RemoteProcess:
        if self.finished:
            raise TraceeGone(f"{what}: guest {self.pid} has {self.finished}")
        proc = self.running
        if not proc.stopped:
            raise InjectionError(f"{what}: guest {self.pid} is running; wait() for an event first")
        return proc

    def _slot(self, n: int, what: str) -> RemoteProcess:
        if not isinstance(n, int) or not 0 <= n < self.nslots or not self.table:
            raise BadSlot(f"{what}: no address space {n}")
        holder = self.slots[n]
        if holder is None:
            raise BadSlot(f"{what}: slot {n} is empty")
        return holder

    # -- the multias operations -------------------------------------------------
    def new_as(self) -> int:
        src = self._stopped_running("new_as")
        self._collect_exiting_threads()
        sharing_child = any(c.shares_mm and c.finished is None for c in self.children)
        if self.threads or self.shares_mm or sharing_child:
            raise SlotBusy("new_as: the guest shares its memory with another task")
        if not self.table:
            self._create_table(src)
            src = self.slots[0]
        try:
            n = self.slots.index(None)
        except ValueError:
            raise NoFreeSlot(f"new_as: all {self.nslots} slots are in use") from None
        self.slots[n] = self._clone_holder(src)
        return n

    def _collect_exiting_threads(self) -> None:
        """Take in the exit of threads that are on their way out (a joined
        thread may not have reported its exit yet)."""
        for tid, thread in list(self.threads.items()):
            while thread.alive and procfs.is_exiting(tid):
                _, status = wait(tid)
                thread.note_stop(status)
                if thread.alive:
                    thread.resume(thread.stop_signal)
            if not thread.alive:
                del self.threads[tid]
                self.session.forget(tid)

    def switch_as(self, n: int) -> None:
        src = self._stopped_running("switch_as")
        dst = self._slot(n, "switch_as")
        if n == self.current:
            return
        self._move_context(src, dst)
        self.current = n

    def drop_as(self, n: int) -> None:
        self._stopped_running("drop_as")
        holder = self._slot(n, "drop_as")
        if n == self.current:
            raise SlotBusy(f"drop_as: slot {n} is the current address space")
        self.slots[n] = None
        self._kill_and_reap(holder)

    def process_for(self, space: int | None) -> RemoteProcess:
        """The holder of AS ``space`` (None: the current one)."""
        if self.finished is not None:
            raise TraceeGone(f"guest {self.pid} has {self.finished}")
        if space is None or (space == 0 and not self.table):
            return self.running
        return self._slot(space, "address space")

    def read(self, addr: int, size: int, space: int | None) -> bytes:
        return self.process_for(space).read(addr, size)

    def write(self, addr: int, data: bytes, space: int | None) -> None:
        self.process_for(space).write(addr, data)

    def maps(self, space: int | None) -> list[Mapping]:
        return procfs.maps(self.process_for(space).pid)

    def syscall(self, name: str | int, args: tuple[int, ...], space: int | None) -> int:
        """Tracee.syscall's hot path: the current space needs no lookup.

        The guest's identity is P's in every slot, as for its own calls."""
        if self.table and name in _IDENTITY_CALLS:
            self.process_for(space)  # the slot must exist all the same
            return self.ppid() if name in ("getppid", _NR_GETPPID) else self.pid
        if space is None and self.finished is None:
            return self.running.call_args(name, args)
        return self.process_for(space).call_args(name, args)

    def set_reporting(self, on: bool) -> None:
        self.reporting = bool(on)

    # -- building the table -------------------------------------------------------
    def _create_table(self, p: RemoteProcess) -> None:
        h0 = self._clone_holder(p)
        try:
            install_filter(h0, emulation.table_filter(self.pid))
        except RasmError:
            self._kill_and_reap(h0)
            raise
        self.slots[0] = h0
        self.current = 0
        self.table = True
        self._move_context(p, h0)
        self.park_identity()

    def _clone_holder(self, src: RemoteProcess) -> RemoteProcess:
        flags = HOLDER_CLONE_FLAGS | (CLONE_PARENT if self.ours else 0)
        pid = src.call("clone", flags, 0, 0, 0, 0)
        holder = RemoteProcess(pid, stopped=True, stop_status=self.session.first_stop(pid))
        self.session.register(self, holder)
        try:
            # A session of its own: group and terminal signals then reach
            # only P, which forwards each one once (signals.py).
            holder.call("setsid")
        except RasmError:
            self._kill_and_reap(holder)
            raise
        return holder

    def _move_context(self, src: RemoteProcess, dst: RemoteProcess) -> None:
        """Carry the guest's registers, extended state and signal mask."""
        ctx = self.session.ctx
        check(lib.rasm_save_ctx(src.pid, ctx), "save context")
        regs = src.regs()  # as it stopped, not as injection left it
        arch.canonicalize(regs)
        ctx.regs = regs[0]
        ctx.sigmask = src.guest_sigmask()
        check(lib.rasm_load_ctx(dst.pid, ctx), "load context")
        dst.adopt_regs(regs)
        src.forget_registers()

    def park_identity(self) -> None:
        """Send P to wait for signals in rt_sigsuspend on the stub page."""
        p = self.identity
        regs = p.regs()
        arch.set_park(regs)
        p.set_regs(regs)
        p.drop_saved_state()
        p.resume()

    def identity_stopped(self) -> _IdentityStop:
        """Context manager: P stopped (interrupted if parked) for injection."""
        return _IdentityStop(self)

    # -- ending -----------------------------------------------------------------
    def _kill_and_reap(self, proc: RemoteProcess) -> None:
        self.session.forget(proc.pid)
        self.signals.forget(proc)
        if proc.alive:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while proc.alive:
                try:
                    _, status = wait(proc.pid)
                except TraceeGone:
                    break
                proc.note_stop(status)
        proc.alive = proc.stopped = False
        proc.close()

    def finish(self, event: Event) -> None:
        """The guest is over: kill whatever is left and record ``event``."""
        self.drop_table()
        for proc in [*self.threads.values(), self.identity]:
            self._kill_and_reap(proc)
        self.threads.clear()
        if self.finished is None:
            self.finished = event
            self.report(event)

    def kill(self) -> None:
        """Kill the guest and the traced children it forked (tracing them
        needs us: left alone they would hang in their next trap)."""
        for child in self.children:
            child.kill()
        if self.finished is None:
            self.finish(Event("killed", self.pid, signal=signal.SIGKILL))

    def wait_children(self) -> None:
        """Serve the guest's traced children until every one has exited."""
        while any(c.finished is None for c in self._descendants()):
            try:
                self.session.pump(self, block=True)
            except TraceeGone:
                return  # nothing left to wait for

    def _descendants(self):
        for child in self.children:
            yield child
            yield from child._descendants()

    def detach(self) -> None:
        if self.finished is not None:
            return
        if self.table or self.threads:
            raise UnsupportedOperation(
                "detach: the guest holds address spaces (or threads); only kill() can end it"
            )
        p = self._stopped_running("detach")
        p.restore()
        p.ptrace(PTRACE_DETACH)
        self.session.forget(p.pid)
        p.close()
        self.finished = Event("detached", self.pid)

    def abandon(self) -> None:
        """Attaching failed: put the process back as it was and let it go."""
        from ..spawn import release

        self.session.forget(self.pid)
        self.finished = Event("detached", self.pid)
        release(self.identity)

    def close(self) -> None:
        """End tracing: detach an attached guest when possible, else kill."""
        if self.attached and self.finished is None and not self.table and not self.threads:
            try:
                self.detach()
                return
            except (InjectionError, TraceeGone):
                pass
        self.kill()

    def drop_table(self) -> None:
        """Kill every holder (after an exec, or at the end)."""
        for holder in self.holders:
            self._kill_and_reap(holder)
        self.slots = [None] * self.nslots
        self.table = False
        self.current = 0

    # -- events -----------------------------------------------------------------
    def report(self, event: Event) -> None:
        """Queue ``event`` for wait(); autonomous guests carry on by themselves."""
        if not self.autonomous:
            self.events.append(event)
            return
        if event.kind == "signal":
            self.cont()
        elif not event.finished:
            self.cont(0)
        else:
            self.session.forget(self.pid)

    def on_stop(self, proc: RemoteProcess, status: int) -> None:
        if not proc.alive:
            self._on_death(proc, status)
            return
        event = event_of(status)
        if event == EVENT_SECCOMP:
            emulation.dispatch(self, proc, proc.event_msg())
        elif event in (EVENT_FORK, EVENT_VFORK, EVENT_CLONE):
            self._on_child(proc, proc.event_msg(), event)
        elif event == EVENT_EXEC:
            self.shares_mm = False
            self.drop_table()
            self.report(Event("exec", self.pid))
        elif event == EVENT_STOP or proc in self.threads.values():
            proc.resume(proc.stop_signal if not event else 0)
        elif proc is self.identity and self.table:
            self.signals.at_identity(proc)
        elif proc is self.running:
            self.signals.at_running(proc)
        else:
            proc.resume(proc.stop_signal)

    def _notice_deaths(self) -> None:
        """Handle deaths that an injection saw (and reaped) before the
        session did."""
        for proc in [self.identity, *self.holders, *self.threads.values()]:
            if not proc.alive and proc.pid in self.session.owners:
                self._on_death(proc, proc.status)

    def _on_death(self, proc: RemoteProcess, status: int) -> None:
        self.session.forget(proc.pid)
        self.signals.forget(proc)
        if proc.pid in self.threads:
            del self.threads[proc.pid]
            return
        if proc is self.identity:
            if os.WIFEXITED(status):
                self.finish(Event("exited", self.pid, code=os.WEXITSTATUS(status)))
            else:
                self.finish(Event("killed", self.pid, signal=os.WTERMSIG(status)))
            return
        # A holder died without us killing it: the guest dies the same way.
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else signal.SIGKILL
        self.slots = [h if h is not proc else None for h in self.slots]
        self.signals.die_with(sig)

    def _on_child(self, parent: RemoteProcess, child: int, event: int) -> None:
        status = self.session.first_stop(child)
        proc = RemoteProcess(child, stopped=True, stop_status=status)
        if procfs.tgid(child) == self.pid:
            self.threads[child] = proc
            self.session.register(self, proc)
            proc.resume()
            parent.resume()
            return
        guest = ProcessGuest(proc, self.nslots, autonomous=True)
        self.children.append(guest)
        guest.shares_mm = event == EVENT_VFORK or _same_mm(parent.pid, child)
        if parent is not self.identity:
            guest.parent_pid = self.pid  # forked by a holder: its parent is the guest
        proc.resume()
        if parent is self.running:
            self.report(Event("fork", self.pid, child=child))  # stays stopped
        else:
            parent.resume()

    # -- the public control loop --------------------------------------------------
    def cont(self, sig: int | None = None) -> None:
        proc = self._stopped_running("cont")
        self.signals.resume_running(proc, sig)

    def is_stopped(self) -> bool:
        return self.running.stopped

    def wait(self, timeout: float | None = None) -> Event:
        self._notice_deaths()
        return next_event(self, timeout)


class _IdentityStop:
    """``with guest.identity_stopped():`` P is in a ptrace stop inside.

    A parked P is interrupted (PTRACE_INTERRUPT) and parked again on the way
    out; signals that reach it meanwhile are forwarded afterwards.
    """

    def __init__(self, guest: ProcessGuest):
        self.guest = guest
        self.was_parked = False

    def __enter__(self) -> RemoteProcess:
        p = self.guest.identity
        if p.stopped or not p.alive:
            return p
        self.was_parked = True
        p.ptrace(PTRACE_INTERRUPT)
        while True:
            _, status = wait(p.pid)
            p.note_stop(status)
            if not p.alive:
                self.guest.on_stop(p, status)
                raise TraceeGone(f"guest {self.guest.pid} died")
            if event_of(status) == EVENT_STOP:
                return p
            if p.stop_signal:
                self.guest.signals.defer(p.stop_signal, p.siginfo())
            p.resume()

    def __exit__(self, *exc) -> None:
        p = self.guest.identity
        if self.was_parked and p.alive and p.stopped and not p.exec_happened:
            self.guest.park_identity()
        self.guest.signals.flush_deferred()


def _same_mm(a: int, b: int) -> bool:
    """Whether two processes share one mm; True when it cannot be told."""
    return lib.rasm_same_mm(a, b) != 0


class ProcessBackend:
    """Backend registry entry for the process backend."""

    name = "process"
    mechanisms: tuple[str, ...] = ()

    def available(self) -> str | None:
        return None

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None, slots: int,
              mechanism: str | None = None) -> ProcessGuest:
        from ..spawn import spawn_traced

        check_mechanism(self, mechanism)
        nslots = check_slots(slots)
        proc = spawn_traced(argv, env, seccomp.build(MULTIAS_SYSCALLS))
        guest = ProcessGuest(proc, nslots)
        try:
            install_stub(proc)
        except RasmError:
            guest.kill()
            raise
        return guest

    def attach(self, pid: int, slots: int, mechanism: str | None = None) -> ProcessGuest:
        from ..spawn import seize

        check_mechanism(self, mechanism)
        nslots = check_slots(slots)
        proc, held = seize(pid, TRACE_OPTIONS, pass_signals=False)
        guest = ProcessGuest(proc, nslots)
        guest.attached = True
        for sig, info in held:
            guest.signals.defer(sig, info)
        try:
            install_stub(proc)
            install_filter(proc, seccomp.build(MULTIAS_SYSCALLS))
            # Threads that exist already are not traced: new_as refuses them.
            guest.shares_mm = len(os.listdir(f"/proc/{pid}/task")) > 1
        except BaseException:
            guest.abandon()
            raise
        guest.signals.flush_deferred()
        return guest


__all__ = ["ProcessBackend", "ProcessGuest"]
