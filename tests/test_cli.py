"""The rasm command: exit statuses, errors as one line, stdio passthrough."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

import rasm


def rasm_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rasm.cli", *args], input=stdin,
                          capture_output=True, timeout=60)


def test_exit_status_is_the_programs():
    assert rasm_cli("run", "--", "sh", "-c", "exit 3").returncode == 3
    assert rasm_cli("run", "sh", "-c", "exit 0").returncode == 0  # "--" is optional


def test_killed_program_gives_128_plus_signal():
    result = rasm_cli("run", "--", "sh", "-c", "kill -USR1 $$")
    assert result.returncode == 128 + signal.SIGUSR1


def test_stdio_passes_through():
    result = rasm_cli("run", "--", "sh", "-c", "read x; echo out:$x; echo err:$x >&2",
                      stdin=b"hi\n")
    assert result.stdout == b"out:hi\n" and result.stderr == b"err:hi\n"


@pytest.mark.parametrize("args, status, message", [
    (["run", "--", "/nonexistent/prog"], 127, "No such file or directory"),
    (["run", "--", "no-such-command-xyz"], 127, "command not found"),
    (["run", "--", "/etc/passwd"], 126, "Permission denied"),
    (["run"], 2, "no program given"),
    (["run", "--slots", "0", "--", "true"], 2, "between 1 and 16"),
    (["run", "--slots", "x", "--", "true"], 2, "not a number"),
    (["run", "--backend", "bogus", "--", "true"], 2, "invalid choice"),
])
def test_bad_input_is_one_clear_line(args, status, message):
    result = rasm_cli(*args)
    assert result.returncode == status
    err = result.stderr.decode()
    assert message in err and "Traceback" not in err


def test_kernel_backend_on_a_stock_kernel():
    try:
        rasm.backends.get("kernel")
        pytest.skip("the kernel backend is available here")
    except rasm.BackendUnavailable:
        pass
    result = rasm_cli("run", "--backend", "kernel", "--", "true")
    err = result.stderr.decode().strip()
    assert result.returncode == 125 and len(err.splitlines()) == 1
    assert err.startswith("rasm: backend 'kernel' is unavailable")


def test_verbose_reports_events(ops):
    result = rasm_cli("run", "-v", "--", ops, "new", "sw:1", "sw:0", "drop:1")
    err = result.stderr.decode()
    assert result.returncode == 0
    for text in ("new_as 1", "switched AS 0 -> 1", "switched AS 1 -> 0", "drop_as 1",
                 "exited with status 0"):
        assert text in err


def test_info():
    result = rasm_cli("info")
    assert result.returncode == 0
    assert b"backend process: available" in result.stdout


def test_run_waits_for_the_programs_children(tmp_path):
    marker = tmp_path / "late"
    result = rasm_cli("run", "--", "sh", "-c", f"(sleep 0.3; echo done > {marker}) & exit 5")
    assert result.returncode == 5
    assert marker.read_text() == "done\n"
