"""Facts about processes read from /proc (all tolerate a vanished pid,
except ``maps``, whose caller needs to know)."""

from __future__ import annotations

from .errors import TraceeGone
from .events import Mapping

PF_EXITING = 0x4


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def state(pid: int) -> str:
    """One-letter scheduler state ("R", "S", "t", ...); "X" when gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else "X"


def parent_of(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def is_exiting(tid: int) -> bool:
    """Gone, a zombie, or past the point of no return in exit."""
    fields = _stat_fields(tid)
    return fields is None or fields[0] in "ZX" or int(fields[6]) & PF_EXITING != 0


def _status_fields(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return {}


def tgid(pid: int) -> int:
    return int(_status_fields(pid).get("Tgid", pid))



def maps(pid: int) -> list[Mapping]:
    """/proc/<pid>/maps: the mappings of the address space ``pid`` runs on."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        raise TraceeGone(f"process {pid} is gone") from None
    out = []
    for line in lines:
        fields = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in fields[0].split("-"))
        path = fields[5] if len(fields) > 5 else ""
        out.append(Mapping(start, end, fields[1], int(fields[2], 16), int(fields[4]), path))
    return out
