"""Starting a program under trace, or seizing a running one (both backends)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence

from .._native import ffi, lib
from ..errors import RasmError, SpawnError, TraceeGone, raise_for_errno
from ..inject import (
    EVENT_STOP,
    PTRACE_DETACH,
    PTRACE_INTERRUPT,
    PTRACE_SEIZE,
    TRACE_OPTIONS,
    RemoteProcess,
    event_of,
    wait,
)

_STAGES = {1: "synchronising with the controller", 2: "setting no_new_privs",
           3: "installing the seccomp filter", 4: "execve"}


def resolve(program: str, env: dict[str, str]) -> str:
    """The path execve should get, searching PATH like a shell."""
    if "/" in program:
        return program
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise SpawnError(f"{program}: command not found", errno.ENOENT)
    return found


def spawn_traced(
    argv: Sequence[str], env: dict[str, str] | None, filter_prog: bytes,
    options: int = TRACE_OPTIONS,
) -> RemoteProcess:
    """Fork, seize with ptrace ``options``, install ``filter_prog`` (none if
    empty) and exec ``argv``.

    Returns the process stopped at its exec; SpawnError if it could not start.
    """
    if not argv:
        raise SpawnError("no program given", errno.EINVAL)
    env = dict(os.environ if env is None else env)
    path = resolve(argv[0], env)
    keep = [ffi.new("char[]", os.fsencode(a)) for a in argv]
    keep_env = [ffi.new("char[]", os.fsencode(f"{k}={v}")) for k, v in env.items()]
    c_argv = ffi.new("char *[]", [*keep, ffi.NULL])
    c_envp = ffi.new("char *[]", [*keep_env, ffi.NULL])
    err = ffi.new("int *")
    stage = ffi.new("int *")
    pid = lib.rasm_spawn(os.fsencode(path), c_argv, c_envp, filter_prog, len(filter_prog),
                         options, err, stage)
    if pid < 0:
        what = _STAGES.get(stage[0], "starting")
        raise SpawnError(f"{argv[0]}: {what} failed: {os.strerror(-pid)}", -pid)
    return RemoteProcess(pid, stopped=True, stop_status=_exec_stop_status())


def _exec_stop_status() -> int:
    # The status rasm_spawn consumed: SIGTRAP | PTRACE_EVENT_EXEC << 8, stopped.
    return ((5 | (4 << 8)) << 8) | 0x7F


Held = list[tuple[int, bytes]]  # signals taken while seizing: (signal, siginfo)


def seize(pid: int, options: int, pass_signals: bool) -> tuple[RemoteProcess, Held]:
    """PTRACE_SEIZE ``pid`` and stop it (PTRACE_INTERRUPT).

    Signals it takes on the way are delivered at once (``pass_signals``),
    or held back and returned as (signal, siginfo) for the caller to
    deliver.  Raises TraceeGone if it is gone or exits meanwhile; on any
    failure the process is left untraced."""
    r = lib.rasm_ptrace(PTRACE_SEIZE, pid, 0, options)
    if r < 0:
        raise_for_errno(-r, f"attach to {pid}")
    proc = RemoteProcess(pid, stopped=False)
    held: Held = []
    try:
        proc.ptrace(PTRACE_INTERRUPT)
        while True:
            _, status = wait(pid)
            proc.note_stop(status)
            if not proc.alive:
                raise TraceeGone(f"process {pid} exited while attaching")
            if event_of(status) == EVENT_STOP:
                return proc, held
            if pass_signals:
                proc.resume(proc.stop_signal)  # delivered as if we were not there
            else:
                held.append((proc.stop_signal, proc.siginfo()))
                proc.resume()
    except BaseException:
        release(proc)
        raise


def release(proc: RemoteProcess) -> None:
    """Undo a seize that went wrong: detach, restored, if it still lives."""
    if proc.alive and proc.stopped:
        try:
            proc.restore()
            proc.ptrace(PTRACE_DETACH)
        except RasmError:
            pass
    proc.close()
