"""The guest's own syscalls 600-602 and what must hold across its slots,
driven end to end through ``rasm run`` (tests/guests/ops.c)."""

from __future__ import annotations

import os
import signal

import pytest
from conftest import lines, run_ops, stock_kernel_only

ENOENT, EBUSY = 2, 16


def test_slots_errors_and_reuse(backend, ops):
    args = ["new"] * 16 + ["sw:16", "sw:-1", "drop:0", "drop:3", "drop:3", "drop:99", "new", "new"]
    out = lines(run_ops(backend, ops, *args))
    assert out[:15] == [f"new {i}" for i in range(1, 16)]
    assert out[15:] == [
        f"new -{ENOENT}",  # 16 slots in all
        f"sw -{ENOENT}", f"sw -{ENOENT}",
        f"drop -{EBUSY}",  # current
        "drop 0", f"drop -{ENOENT}", f"drop -{ENOENT}",
        "new 3",  # lowest free slot again
        f"new -{ENOENT}",
    ]


def test_switch_without_table_fails(backend, ops):
    assert lines(run_ops(backend, ops, "sw:0", "drop:0")) == [f"sw -{ENOENT}", f"drop -{ENOENT}"]


def test_private_memory_per_space(backend, ops):
    out = lines(run_ops(backend, ops, "set:1", "new", "set:2", "sw:1", "get", "set:3",
                        "sw:0", "get", "sw:1", "get"))
    assert out == ["new 1", "sw 0", "get 1", "sw 0", "get 2", "sw 0", "get 3"]


def test_registers_and_extended_state_move(backend, ops):
    out = lines(run_ops(backend, ops, "new", "new", "fpu:1", "fpu:2", "fpu:0"))
    assert out == ["new 1", "new 2", "fpu ok 0", "fpu ok 0", "fpu ok 0"]


def test_signal_mask_moves(backend, ops):
    out = lines(run_ops(backend, ops, "new", "block:10", "mask", "sw:1", "mask", "sw:0", "mask"))
    bit = f"mask {1 << 9:x}"
    assert out == ["new 1", bit, "sw 0", bit, "sw 0", bit]


def test_identity_is_the_same_in_every_slot(backend, ops):
    out = lines(run_ops(backend, ops, "ids", "new", "ids", "sw:1", "ids", "new", "sw:2", "ids"))
    ids = [line for line in out if line.startswith("ids")]
    assert len(set(ids)) == 1
    pid, tid, ppid = map(int, ids[0].split()[1:])
    assert pid == tid and ppid != pid


def test_sigaction_in_one_slot_holds_in_all(backend, ops):
    out = lines(run_ops(backend, ops, "new", "sw:1", "handler:10", "sw:0", "raise:10",
                        "killself:10", "new", "sw:2", "raise:10"))
    assert out == ["new 1", "sw 0", "sw 0", "raised 1", "killed 2", "new 2", "sw 0", "raised 3"]


def test_process_state_is_shared(backend, ops, tmp_path):
    out = lines(run_ops(backend, ops, "new", "sw:1", "umask:027", f"cd:{tmp_path}",
                        "nofile:100", "sw:0", "getumask", "cwd", "getnofile"))
    assert out == ["new 1", "sw 0", "cd 0", "nofile 0", "sw 0", "umask 27",
                   f"cwd {tmp_path}", "getnofile 100"]


def test_timer_armed_in_one_slot_fires_in_another(backend, ops):
    out = lines(run_ops(backend, ops, "handler:14", "new", "new", "sw:1", "alarm:200",
                        "sw:2", "waitsig:5000", "sw:0", "get"))
    assert out == ["new 1", "new 2", "sw 0", "sw 0", "count 1", "sw 0", "get 0"]


def test_signal_to_the_guest_pid_reaches_the_running_slot(backend, ops):
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "rasm.cli", "run", "--backend", backend, "--", ops,
         "handler:12", "new", "new", "sw:2", "ids", "waitsig:10000", "sw:0", "get"],
        stdout=subprocess.PIPE,
    )
    try:
        first = [proc.stdout.readline().decode().strip() for _ in range(4)]
        assert first[:3] == ["new 1", "new 2", "sw 0"]
        pid = int(first[3].split()[1])
        time.sleep(0.05)
        os.kill(pid, signal.SIGUSR2)
        rest = proc.stdout.read().decode().splitlines()
    finally:
        proc.wait(timeout=30)
    assert rest == ["count 1", "sw 0", "get 0"]


def test_fork_child_has_only_its_space(backend, ops):
    out = lines(run_ops(backend, ops, "new", "sw:1", "ids", "fork"))
    ids = next(line for line in out if line.startswith("ids"))
    pid = int(ids.split()[1])
    child = next(line for line in out if line.startswith("child")).split()
    assert child == ["child", str(pid), f"-{ENOENT}", "1"]  # getppid, switch_as(1), new_as()
    assert "reaped 0" in out


def test_fork_without_table_can_use_multias(backend, ops):
    out = lines(run_ops(backend, ops, "fork"))
    child = next(line for line in out if line.startswith("child")).split()
    assert child[2:] == [f"-{ENOENT}", "1"]


def test_exec_drops_the_table(backend, ops, tmp_path):
    script = tmp_path / "after-exec"
    script.write_text("#!/bin/sh\necho exec-ok $$\nexit 7\n")
    script.chmod(0o755)
    result = run_ops(backend, ops, "new", "sw:1", "ids", f"exec:{script}")
    out = lines(result)
    pid = out[2].split()[1]
    assert out[3] == f"exec-ok {pid}"  # the same pid execs
    assert result.returncode == 7


def test_failed_exec_keeps_the_table(backend, ops):
    out = lines(run_ops(backend, ops, "new", "sw:1", "exec:/nonexistent", "get", "sw:0"))
    assert out == ["new 1", "sw 0", f"exec {ENOENT}", "get 0", "sw 0"]


def test_exit_status_from_any_slot(backend, ops):
    assert run_ops(backend, ops, "new", "sw:1", "exit:42").returncode == 42


def test_fatal_signal_in_a_slot_kills_the_guest(backend, ops):
    result = run_ops(backend, ops, "new", "sw:1", "segv")
    assert result.returncode == 128 + signal.SIGSEGV


def test_threads_are_refused_while_a_table_exists(backend, ops):
    out = lines(run_ops(backend, ops, "thread", "new", "thread"))
    assert out == ["thread 0", "new 1", f"thread {EBUSY}"]


def test_new_as_refused_while_a_thread_lives(backend, ops):
    out = lines(run_ops(backend, ops, "bgthread:300", "new", "jointhread", "new"))
    assert out == ["bgthread 0", f"new -{EBUSY}", "jointhread 0", "new 1"]


def test_stdin_passes_through(backend, ops):
    out = lines(run_ops(backend, ops, "new", "sw:1", "line", stdin=b"hello there\n"))
    assert out[-1] == "line hello there"


def test_seed_demo(backend, seed_demo):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "rasm.cli", "run", "--backend", backend,
                             "--", seed_demo], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert b"ok: 160 hops" in result.stdout


@stock_kernel_only
@pytest.mark.parametrize("what", ["new", "sw:0"])
def test_multias_unavailable_natively(ops, what):
    import subprocess

    out = subprocess.run([ops, what], capture_output=True).stdout.decode()
    assert out.strip() == f"{what.split(':')[0]} -38"  # ENOSYS on a stock kernel


def test_posix_timer_armed_in_one_slot_fires_in_another(backend, ops):
    out = lines(run_ops(backend, ops, "handler:14", "new", "new", "sw:1", "ptimer:150",
                        "sw:2", "waitsig:5000"))
    assert out == ["new 1", "new 2", "sw 0", "sw 0", "count 1"]


def test_credentials_and_altstack_hold_in_every_slot(backend, ops):
    out = lines(run_ops(backend, ops, "new", "sw:1", "setgid:7", "altstack", "getaltstack",
                        "sw:0", "gid", "getaltstack"))
    assert out[:4] == ["new 1", "sw 0", "setgid 0", "altstack 0"]
    stack = out[4]
    assert out[5:] == ["sw 0", "gid 7", stack]


@stock_kernel_only
def test_seed_demo_natively_says_unavailable(seed_demo):
    import subprocess

    result = subprocess.run([seed_demo], capture_output=True, check=False)
    assert result.returncode == 77
    assert b"multias unavailable" in result.stdout + result.stderr


def test_controller_death_leaves_nothing(backend, ops):
    """SIGKILL the controller: the guest and every holder die with it."""
    import subprocess
    import sys
    import time

    # conftest made us a child subreaper: the orphans come to us.
    proc = subprocess.Popen([sys.executable, "-m", "rasm.cli", "run", "--backend", backend,
                             "--", ops, "new", "new", "sw:2", "ids", "sleep:30000"],
                            stdout=subprocess.PIPE)
    assert [proc.stdout.readline() for _ in range(3)] == [b"new 1\n", b"new 2\n", b"sw 0\n"]
    guest = int(proc.stdout.readline().split()[1])
    held = [guest] + [int(p) for p in os.listdir("/proc")
                      if p.isdigit() and _ppid(int(p)) == proc.pid]
    assert len(held) >= 3 if backend == "process" else len(held) >= 1
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    for pid in held:
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                if not os.path.exists(f"/proc/{pid}"):
                    break
            time.sleep(0.01)
        assert not os.path.exists(f"/proc/{pid}"), f"{pid} outlived the controller"


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0
