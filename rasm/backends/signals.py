"""Signals on the process backend: one guest, several host processes.

Signals addressed to the guest (its pid, its timers, its process group) land
on the identity process P.  While a table exists P is parked, so each one is
forwarded to the holder running the guest, with its original siginfo put
back at delivery (PTRACE_SETSIGINFO).  A signal sent to the process group
reaches P *and* every holder; the copies are matched up so the guest sees it
once: the running holder's own copy is the one delivered, P's is dropped,
and copies queued on parked holders are suppressed when those run again.
"""

from __future__ import annotations

import os
import signal
import struct
import time
from collections import Counter, defaultdict, deque
from typing import TYPE_CHECKING

from .. import procfs
from ..events import Event
from ..inject import RemoteProcess, wait

if TYPE_CHECKING:
    from .process import ProcessGuest

SI_USER, SI_KERNEL = 0, 0x80
GROUP_CODES = (SI_USER, SI_KERNEL)  # the codes a process-group signal carries
PAIRING_WINDOW = 0.5  # seconds within which P's copy pairs with a holder's
HANDOVER_WAIT = 0.002  # how long a running holder may take to stop for its copy


def si_code(info: bytes) -> int:
    return struct.unpack_from("<i", info, 8)[0]


def si_pid(info: bytes) -> int:
    return struct.unpack_from("<i", info, 16)[0]


class SignalRouter:
    def __init__(self, guest: ProcessGuest):
        self.guest = guest
        self.reported: tuple[RemoteProcess, int, bytes] | None = None
        self.deferred: list[tuple[int, bytes]] = []
        self.forwarded: dict[int, dict[int, deque[bytes]]] = defaultdict(lambda: defaultdict(deque))
        self.stale: dict[int, Counter] = defaultdict(Counter)
        self.native_recent: dict[int, float] = {}
        self.native_claimed: Counter = Counter()
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
            if self.guest.finished is None:
                self.route(sig, info)

    def route(self, sig: int, info: bytes) -> None:
        running = self.guest.running
        if si_code(info) in GROUP_CODES:
            for holder in self.guest.holders:
                if holder is not running and sig in procfs.pending_signals(holder.pid):
                    self.stale[holder.pid][sig] += 1
            if self._running_has_copy(running, sig):
                return
        self.forward(running, sig, info)

    def _running_has_copy(self, running: RemoteProcess, sig: int) -> bool:
        """Whether the running holder got its own copy of a group signal.

        Its copy is pending, or it stopped with it (maybe not reported to us
        yet), or it is between the two for a moment while it runs."""
        deadline = time.monotonic() + HANDOVER_WAIT
        while True:
            if not running.stopped:
                pid, status = wait(running.pid, os.WNOHANG)
                if pid:
                    self.guest.session.route(pid, status)
            seen = self.native_recent.pop(sig, None)
            if seen is not None and time.monotonic() - seen < PAIRING_WINDOW:
                return True  # delivered there already
            if sig in procfs.pending_signals(running.pid):
                self.native_claimed[sig] += 1
                return True  # about to be delivered there
            if running.stopped or procfs.state(running.pid) != "R" or time.monotonic() > deadline:
                return False
            time.sleep(0.0001)

    def forward(self, proc: RemoteProcess, sig: int, info: bytes | None) -> None:
        """Queue ``sig`` on ``proc``; ``info`` replaces ours at delivery."""
        os.kill(proc.pid, sig)
        if info is not None:
            self.forwarded[proc.pid][sig].append(info)

    # -- the running holder stopped with a signal ----------------------------------
    def at_running(self, proc: RemoteProcess) -> None:
        sig = proc.stop_signal
        if self.stale[proc.pid][sig]:
            self.stale[proc.pid][sig] -= 1
            proc.resume(0)
            return
        info = proc.siginfo()
        queue = self.forwarded[proc.pid][sig]
        if queue and si_code(info) == SI_USER and si_pid(info) == os.getpid():
            info = queue.popleft()
            proc.set_siginfo(info)
        elif self.guest.table and si_code(info) in GROUP_CODES:
            if self.native_claimed[sig]:
                self.native_claimed[sig] -= 1
            else:
                self.native_recent[sig] = time.monotonic()
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
            # to another holder, or the signal was changed): queue it.
            self.forward(proc, sig, info)
        proc.resume(0)

    # -- a holder died on its own ---------------------------------------------------
    def die_with(self, sig: int) -> None:
        """Make P die of ``sig`` too, so the guest's parent sees that."""
        p = self.guest.identity
        self.dying = sig
        if not p.alive:
            return
        if sig != signal.SIGKILL:
            from ..arch import current as arch

            with self.guest.identity_stopped():
                p.write(arch.SCRATCH_ADDR, bytes(32))  # SIG_DFL, no flags
                p.inject(arch.syscall_number("rt_sigaction"), sig, arch.SCRATCH_ADDR, 0, 8)
        os.kill(p.pid, sig)
