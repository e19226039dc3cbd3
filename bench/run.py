"""Benchmarks for the core, each a ratio measured side by side in one run.

    python bench/run.py [--rounds R] [--cpu K | --no-pin]

1. injected syscall round trip: ``Tracee.syscall("getppid")`` from Python
   against floor_inject.c: the plain C loop (SETREGS, CONT, waitpid,
   GETREGS), and the same protocol rasm uses for a repeated call (POKEUSER
   of the number only, the stub jumping back to its syscall);
2. process-backend switch_as: a guest hopping between two ASes under
   ``rasm run`` (served by rasm_serve) against floor_hop.c, the register
   hop written in C, for an AS of 1 page and of 65,536 touched pages;
3. a guest making 10^6 getppid calls under ``rasm run`` against its native
   run (time measured inside the guest, and whole-command wall time).

Controller and tracee are pinned to one CPU (halves a ptrace round trip on
this kind of machine).  Rounds alternate A/B and the medians are compared,
since the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "build" / "bench"
sys.path.insert(0, str(ROOT))

import rasm  # noqa: E402

INJECT_N = 20000
HOPS = 200000
GETPPID_N = 1_000_000


def build() -> None:
    subprocess.run(["make", "-s", "-C", str(ROOT / "bench"), f"OUT={BIN}"], check=True)


def run_value(argv: list[str], key: str) -> float:
    """Run a program and return the number after ``key`` in its output."""
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()
    return float(out[out.index(key) + 1])


def rasm_run(*argv: str) -> list[str]:
    return [sys.executable, "-m", "rasm.cli", "run", "--backend", "process", "--", *argv]


def python_inject_ns(n: int) -> float:
    with rasm.spawn([str(BIN / "guest_getppid"), "0"], backend="process") as t:
        syscall = t.syscall
        syscall("getppid")
        start = time.perf_counter()
        for _ in range(n):
            syscall("getppid")
        return (time.perf_counter() - start) / n * 1e9


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def compare(name: str, rounds: int, ours, floor, unit: str, goal: float) -> dict:
    a, b = [], []
    for _ in range(rounds):
        a.append(ours())
        b.append(floor())
    mine, base = statistics.median(a), statistics.median(b)
    ratio = mine / base
    verdict = "ok" if ratio <= goal else "ABOVE GOAL"
    print(f"{name:<44} rasm {mine:10.1f} {unit}  floor {base:10.1f} {unit}  "
          f"ratio {ratio:5.2f}  (goal <= {goal:.2f}: {verdict})")
    return {"name": name, "ratio": ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    build()
    if not args.no_pin:
        os.sched_setaffinity(0, {args.cpu})  # children inherit it
    print(f"pinned to CPU {args.cpu}" if not args.no_pin else "not pinned",
          f"| {args.rounds} alternating rounds, medians | kernel {os.uname().release}")
    r = args.rounds
    floor = [str(BIN / "floor_inject"), str(INJECT_N)]
    compare("injected getppid (Tracee.syscall) vs C SETREGS loop", r,
            lambda: python_inject_ns(INJECT_N),
            lambda: run_value(floor, "inject_roundtrip_ns"), "ns", 1.25)
    compare("injected getppid (Tracee.syscall) vs C same protocol", r,
            lambda: python_inject_ns(INJECT_N),
            lambda: run_value([*floor, "--again"], "inject_roundtrip_ns"), "ns", 1.25)
    for pages in (1, 65536):
        compare(f"switch_as hop, {pages} touched pages", r,
                lambda p=pages: run_value(rasm_run(str(BIN / "guest_switch"), str(HOPS), str(p)),
                                          "ns_per_switch"),
                lambda p=pages: run_value([str(BIN / "floor_hop"), "--pages", str(p), str(HOPS)],
                                          "hop_ns"),
                "ns", 1.25)
    guest = [str(BIN / "guest_getppid"), str(GETPPID_N), "time"]
    compare("10^6 getppid, time inside the guest", r,
            lambda: run_value(rasm_run(*guest), "getppid_ns") * GETPPID_N / 1e6,
            lambda: run_value(guest, "getppid_ns") * GETPPID_N / 1e6,
            "ms", 1.10)
    compare("10^6 getppid, whole command wall time", r,
            lambda: wall(rasm_run(*guest)) * 1e3, lambda: wall(guest) * 1e3, "ms", 1.10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
