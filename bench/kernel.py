"""Kernel-backend benchmarks, run inside the VM (kernel-patch/vm.sh):

    kernel-patch/vm.sh -- .venv/bin/python bench/kernel.py [--rounds R]

Each figure is a median over alternating rounds and a ratio to a reference
measured in the same run: a switch made by rasm with PTRACE_SWITCH_AS, by an
injected switch_as, and by the process backend, against the guest's own
native switch_as and a native getppid; reading 1 MiB from a non-current AS
against the current one.  Controller and tracee are pinned to one CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from run import BIN, build, run_value

import rasm

SWITCHES = 2000
MIB = 1 << 20


def tracee_switch_us(backend: str, mechanism: str | None) -> float:
    """Tracee.switch_as between two ASes of a stopped guest, per switch."""
    kwargs = {"mechanism": mechanism} if mechanism else {}
    with rasm.spawn([str(BIN / "guest_getppid"), "0"], backend=backend, **kwargs) as t:
        t.new_as()
        start = time.perf_counter()
        for i in range(SWITCHES):
            t.switch_as((i + 1) & 1)
        return (time.perf_counter() - start) / SWITCHES * 1e6


def read_mib_us(space: int | None) -> float:
    """Reading 1 MiB of AS ``space`` (None: the current one) on a stopped guest,
    after each stop (a fresh descriptor each time, as a debugger would)."""
    with rasm.spawn([str(BIN / "guest_getppid"), "0"], backend="kernel") as t:
        addr = t.mmap(0, MIB, 3, 0x22)
        t.write(addr, b"\xa5" * MIB)
        t.new_as()
        t.switch_as(0)  # closes rasm's descriptors: time the first read after a change
        start = time.perf_counter()
        t.read(addr, MIB, space=space)
        return (time.perf_counter() - start) * 1e6


def native_us(program: str, *args: str, key: str) -> float:
    return run_value([str(BIN / program), *args], key) / 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    build()
    os.sched_setaffinity(0, {0})
    print(f"pinned to CPU 0 | {args.rounds} alternating rounds, medians | "
          f"kernel {os.uname().release}")
    figures = {
        "PTRACE_SWITCH_AS from Python": lambda: tracee_switch_us("kernel", "ptrace"),
        "injected switch_as from Python": lambda: tracee_switch_us("kernel", "inject"),
        "process backend switch from Python": lambda: tracee_switch_us("process", None),
        "guest's own switch_as (native)":
            lambda: native_us("guest_switch", "20000", key="ns_per_switch"),
        "guest's own getppid (native)":
            lambda: native_us("guest_getppid", "200000", "time", key="getppid_ns"),
        "read 1 MiB, current AS": lambda: read_mib_us(None),
        "read 1 MiB, non-current AS": lambda: read_mib_us(1),
    }
    samples: dict[str, list[float]] = {name: [] for name in figures}
    for _ in range(args.rounds):
        for name, measure in figures.items():
            samples[name].append(measure())
    med = {name: statistics.median(values) for name, values in samples.items()}
    getppid = med["guest's own getppid (native)"]
    for name, value in med.items():
        print(f"{name:<38} {value:10.2f} us  {value / getppid:9.1f}x getppid")
    inject = med["injected switch_as from Python"]
    ratio = med["PTRACE_SWITCH_AS from Python"] / inject
    print(f"PTRACE_SWITCH_AS / injected switch_as: {ratio:.2f} (goal <= 0.5)")
    ratio = med["read 1 MiB, non-current AS"] / med["read 1 MiB, current AS"]
    print(f"1 MiB read, non-current / current AS:  {ratio:.2f} (goal <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
