"""Shared fixtures: backends to run the contract suite on, compiled test
guests, and a check that no test leaves a process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rasm
from rasm import backends

HERE = Path(__file__).parent
ROOT = HERE.parent

# Tests of what a stock kernel does with syscalls 600-602.
stock_kernel_only = pytest.mark.skipif(
    os.path.exists("/proc/self/address_spaces"),
    reason="this kernel has the multias patch: 600-602 work natively",
)


def available_backends() -> list:
    params = []
    for name in backends.NAMES:
        try:
            backends.get(name)
            marks = [pytest.mark.kernel] if name == "kernel" else []
            params.append(pytest.param(name, marks=marks))
        except rasm.BackendUnavailable as e:
            params.append(pytest.param(name, marks=pytest.mark.skip(reason=str(e))))
    return params


@pytest.fixture(params=available_backends())
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("guests")


def _compile(build_dir: Path, source: Path, *flags: str) -> str:
    out = build_dir / source.stem
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(source),
                    *flags], check=True)
    return str(out)


@pytest.fixture(scope="session")
def ops(build_dir) -> str:
    """Path of tests/guests/ops.c, compiled."""
    return _compile(build_dir, HERE / "guests" / "ops.c", "-pthread")


@pytest.fixture(scope="session")
def seed_demo(build_dir) -> str:
    return _compile(build_dir, ROOT / "examples" / "seed_demo.c")


@pytest.fixture(scope="session")
def blocker(build_dir) -> str:
    return _compile(build_dir, HERE / "guests" / "blocker.c", "-pthread")


def run_ops(backend: str, ops: str, *args: str, stdin: bytes | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
    """``rasm run --backend B -- ops ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "rasm.cli", "run", "--backend", backend, "--", ops, *args],
        input=stdin, capture_output=True, timeout=timeout,
    )


def lines(result: subprocess.CompletedProcess) -> list[str]:
    return result.stdout.decode().splitlines()


def _descendants(root: int) -> list[tuple[int, str]]:
    parents: dict[int, int] = {}
    tracers: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        pid = int(entry)
        parents[pid] = int(fields.get("PPid", "0"))
        tracers[pid] = int(fields.get("TracerPid", "0"))
        names[pid] = f"{fields.get('Name', '?').strip()} ({fields.get('State', '?').strip()})"
    found = set()
    frontier = {root}
    while frontier:
        children = {p for p, pp in parents.items() if pp in frontier and p not in found}
        children |= {p for p, t in tracers.items() if t in frontier and p not in found}
        children.discard(root)
        found |= children
        frontier = children
    return sorted((p, names[p]) for p in found)


def pytest_configure(config):
    """Become a child subreaper: processes orphaned by a test's subprocess
    (say, holders a `rasm run` forgot) are reparented to us, where
    no_leaked_processes sees them instead of init."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(autouse=True)
def no_leaked_processes():
    """Fail a test that leaves any child, grandchild or tracee behind."""
    yield
    deadline = time.monotonic() + 2
    left = _descendants(os.getpid())
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = _descendants(os.getpid())
    if left:
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid, _ in left:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        pytest.fail(f"test left processes behind: {left}")
