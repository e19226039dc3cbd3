"""Signals on the process backend: one guest, several host processes.

Why every signal addressed to the guest is delivered once:

* Holders live in sessions of their own (``ProcessGuest._clone_holder``
  makes each one call ``setsid``), so a signal sent to the guest's process
  group or by its terminal reaches P and no holder.  Signals to the guest's
  pid reach P by definition, and P owns the guest's timers.  So each such
  signal arrives exactly once, at P.
* P is parked with every signal unblocked, and traced, so each one stops
  P (ignored signals too: the kernel does not discard signals for a traced
  process).  ``at_identity`` forwards it once, to the holder running the
  guest, and P goes back to its park without it.
* A forward is ``rt_sigqueueinfo`` with SI_QUEUE and a fresh token in
  ``si_value``; when the holder stops to take it, the token names the
  original siginfo, which is put back (PTRACE_SETSIGINFO) before the guest
  or the user sees it.  Two forwards of one standard signal coalesce in the
  kernel as they would have at P; see ``_Tokens`` for why leftovers are
  recognised exactly.
* Signals the kernel raises for the code that runs (faults, SIGCHLD of its
  children, its own ``raise``, see ``emulation._kill_self``) go to the
  holder that runs it, which is the right one already.

Not yet carried: a signal that is pending (blocked, or in flight when a
switch happens) stays with the holder it was queued on and is delivered when
that slot runs again.
"""

from __future__ import annotations

import os
import signal
import struct
from collections import defaultdict
from typing import TYPE_CHECKING

from ..._native import lib
from ...arch import current as arch
from ...errors import raise_for_errno
from ...events import Event
from ...inject import RemoteProcess

if TYPE_CHECKING:
    from .guest import ProcessGuest

SI_USER, SI_QUEUE = 0, -1
_SIGINFO_SIZE = 128


def si_code(info: bytes) -> int:
    return struct.unpack_from("<i", info, 8)[0]


def si_pid(info: bytes) -> int:
    return struct.unpack_from("<i", info, 16)[0]


def si_value(info: bytes) -> int:
    return struct.unpack_from("<Q", info, 24)[0]


def sent_by(sig: int, code: int, pid: int, uid: int) -> bytes:
    """The siginfo of ``sig`` sent by ``kill``-like calls (SI_USER, SI_TKILL)."""
    return struct.pack("<iii4xii", sig, 0, code, pid, uid).ljust(_SIGINFO_SIZE, b"\0")


class _Tokens:
    """Forwarded signals not yet taken, per (holder, signal), oldest first.

    A forward that coalesces with a pending one (standard signals) never
    stops the holder, so its token stays here.  It is recognised when a
    later token of the same signal is taken: signals of one number leave
    the queue in the order they entered it, and a standard signal is queued
    at most once, so when token T is taken every older token of that signal
    was either taken before or coalesced.  Older ones are dropped then."""

    def __init__(self) -> None:
        self.next = 1
        self.table: dict[tuple[int, int], dict[int, bytes]] = defaultdict(dict)

    def issue(self, pid: int, sig: int, info: bytes) -> int:
        token, self.next = self.next, self.next + 1
        self.table[pid, sig][token] = info
        return token

    def take(self, pid: int, sig: int, token: int) -> bytes | None:
        waiting = self.table.get((pid, sig))
        if not waiting or token not in waiting:
            return None
        info = waiting.pop(token)
        for older in [t for t in waiting if t < token]:
            del waiting[older]
        return info

    def forget(self, pid: int) -> None:
        for key in [k for k in self.table if k[0] == pid]:
            del self.table[key]


class SignalRouter:
    def __init__(self, guest: ProcessGuest):
        self.guest = guest
        self.reported: tuple[RemoteProcess, int, bytes] | None = None
        self.deferred: list[tuple[int, bytes]] = []
        self.tokens = _Tokens()
        self.dying = 0

    # -- P, parked, was woken by a signal ----------------------------------------
    def at_identity(self, p: RemoteProcess) -> None:
        sig = p.stop_signal
        if self.dying:
            p.resume(sig)
            return
        self.route(sig, p.siginfo())
        p.resume(0)  # back into rt_sigsuspend

    def defer(self, sig: int, info: bytes) -> None:
        """A signal P got while we had it stopped: route it afterwards."""
        if sig:
            self.deferred.append((sig, info))

    def flush_deferred(self) -> None:
        pending, self.deferred = self.deferred, []
        for sig, info in pending:
            self.route(sig, info)

    def route(self, sig: int, info: bytes) -> None:
        """Deliver a signal P received to the guest, once."""
        if self.guest.finished is not None:
            return
        if si_code(info) == SI_USER and si_pid(info) in {h.pid for h in self.guest.holders}:
            # kill(-pgid) from the guest itself, made natively by a holder:
            # the guest sent it, so it carries the guest's pid.
            info = info[:16] + struct.pack("<i", self.guest.pid) + info[20:]
        self.forward(self.guest.running, sig, info)

    def forward(self, proc: RemoteProcess, sig: int, info: bytes) -> None:
        """Queue ``sig`` on ``proc``; ``info`` replaces ours at delivery."""
        token = self.tokens.issue(proc.pid, sig, info)
        r = lib.rasm_sigqueue(proc.pid, sig, token)
        if r < 0:
            self.tokens.take(proc.pid, sig, token)
            raise_for_errno(-r, f"forward signal {sig} to {proc.pid}")

    def forget(self, proc: RemoteProcess) -> None:
        """``proc`` is gone: nothing queued on it will be taken."""
        self.tokens.forget(proc.pid)

    # -- the running holder stopped with a signal ----------------------------------
    def at_running(self, proc: RemoteProcess) -> None:
        sig = proc.stop_signal
        info = proc.siginfo()
        if si_code(info) == SI_QUEUE and si_pid(info) == os.getpid():
            original = self.tokens.take(proc.pid, sig, si_value(info))
            if original is not None:
                info = original
                proc.set_siginfo(info)
        self.reported = (proc, sig, info)
        self.guest.report(Event("signal", self.guest.pid, signal=sig))

    def resume_running(self, proc: RemoteProcess, sig: int | None) -> None:
        """cont(): deliver ``sig`` (None: the one reported) to the running guest."""
        reported, self.reported = self.reported, None
        info = None
        if reported is not None:
            if sig is None:
                sig = reported[1]
            if sig == reported[1]:
                info = reported[2]
            if reported[0] is proc and proc.stop_signal == sig:
                proc.resume(sig)
                return
        if sig:
            # The guest is no longer at that signal's stop (its context moved
            # to another holder, or the signal was changed): queue it, with
            # the siginfo ptrace gives a signal its tracer substitutes.
            self.forward(proc, sig, info or sent_by(sig, SI_USER, os.getpid(), os.getuid()))
        proc.resume(0)

    # -- a holder died on its own ---------------------------------------------------
    def die_with(self, sig: int) -> None:
        """Make P die of ``sig`` too, so the guest's parent sees that."""
        p = self.guest.identity
        self.dying = sig
        if not p.alive:
            return
        if sig != signal.SIGKILL:
            with self.guest.identity_stopped():
                p.write(arch.SCRATCH_ADDR, bytes(32))  # SIG_DFL, no flags
                p.inject(arch.syscall_number("rt_sigaction"), sig, arch.SCRATCH_ADDR, 0, 8)
        os.kill(p.pid, sig)
