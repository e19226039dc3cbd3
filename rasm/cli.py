"""The ``rasm`` command.

    rasm run [--backend auto|process|kernel] [--mechanism ptrace|inject]
             [--slots N] [--trace-as] [-v] -- PROG ARGS...
    rasm info

``run`` exits with PROG's exit status (128 + signal if it was killed);
rasm's own failures print one line and exit 125 (126: PROG not executable,
127: PROG not found), like env(1).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys

from . import backends
from .abi import N_MM, PROC_ADDRESS_SPACES
from .arch import current as arch
from .backends.kernel import MECHANISMS
from .errors import RasmError, SpawnError
from .events import Event
from .tracee import spawn

PR_SET_CHILD_SUBREAPER = 36
WALL = 0x40000000
EXIT_RASM_FAILED = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
AS_EVENTS = ("new_as", "as_switch", "drop_as")


def _slots(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= N_MM:
        raise argparse.ArgumentTypeError(f"must be between 1 and {N_MM}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rasm", description="remote address-space manager")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a program with new_as/switch_as/drop_as available")
    run.add_argument("--backend", default="auto", choices=("auto", *backends.NAMES))
    run.add_argument("--mechanism", choices=MECHANISMS,
                     help="kernel backend: how rasm changes the table (default: ptrace)")
    run.add_argument("--slots", type=_slots, default=N_MM, help=f"AS slots (1-{N_MM})")
    run.add_argument("--trace-as", action="store_true",
                     help="print the program's new_as/switch_as/drop_as calls to stderr")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="print every event (address-space calls included) to stderr")
    run.add_argument("program", nargs=argparse.REMAINDER, help="-- PROG ARGS...")
    sub.add_parser("info", help="what this machine offers")
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    argv = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not argv:
        print("rasm run: no program given (rasm run -- PROG ARGS...)", file=sys.stderr)
        return 2
    # Like strace: keyboard signals are for the guest, which shares our
    # terminal; it decides, and we exit with its status.
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    # Holders of address spaces that the guest's children made are the
    # children's; when those exit we adopt and reap them.
    _become_subreaper()
    try:
        with spawn(argv, backend=args.backend, slots=args.slots,
                   mechanism=args.mechanism) as tracee:
            if args.verbose or args.trace_as:
                tracee.report_as_events(True)
            while True:
                tracee.cont()
                event = tracee.wait()
                if args.verbose or (args.trace_as and event.kind in AS_EVENTS):
                    _log(event)
                if event.finished:
                    tracee.wait_children()
                    return event.exit_status or 0
    finally:
        _reap_adopted()


def _become_subreaper() -> None:
    from ._native import lib

    lib.rasm_prctl(PR_SET_CHILD_SUBREAPER, 1)


def _reap_adopted() -> None:
    """Collect the exit of every child that has finished; leave the rest."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG | WALL)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _log(event: Event) -> None:
    print(f"rasm: [{event.pid}] {event}", file=sys.stderr)


def cmd_info(args: argparse.Namespace) -> int:
    print(f"arch: {os.uname().machine}, {N_MM} slots, stub page at {arch.STUB_ADDR:#x}")
    patched = os.path.exists(PROC_ADDRESS_SPACES.format(pid="self"))
    print(f"kernel {os.uname().release}: multias patch {'present' if patched else 'absent'}")
    chosen = None
    for name in backends.NAMES:
        try:
            backend = backends.get(name)
        except RasmError as e:
            print(f"backend {name}: unavailable ({e})")
            continue
        mechanisms = f" (mechanisms: {', '.join(backend.mechanisms)}; default " \
                     f"{backend.mechanisms[0]})" if backend.mechanisms else ""
        print(f"backend {name}: available{mechanisms}")
        chosen = chosen or name
    if chosen:
        why = "the kernel has the patch" if chosen == "kernel" else "the kernel has no patch"
        print(f"backend auto: {chosen} ({why})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        return cmd_info(args)
    except SpawnError as e:
        print(f"rasm: {e}", file=sys.stderr)
        return {errno.ENOENT: EXIT_NOT_FOUND, errno.EACCES: EXIT_NOT_EXECUTABLE}.get(
            e.errno, EXIT_RASM_FAILED)
    except RasmError as e:
        print(f"rasm: {e}", file=sys.stderr)
        return EXIT_RASM_FAILED


if __name__ == "__main__":
    sys.exit(main())
