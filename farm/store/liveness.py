"""Whether the process that started a run is still there: host, pid and process start time.

A pid alone is not enough: the kernel hands it to another process once the first is
gone. On Linux the start time of a process (``/proc/<pid>/stat`` field 22, clock ticks
since boot) together with the boot id tells the same process from a later one that got
its pid. Elsewhere only the pid is checked.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, named so that it can be found again: host, pid and a start token."""

    host: str
    pid: int
    start: str | None  # "<boot id>:<start ticks>" on Linux; None where it cannot be read


def this_host() -> str:
    return socket.gethostname()


def process_start(pid: int) -> str | None:
    """The start token of process ``pid`` (``"<boot id>:<ticks>"``), or None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        return None
    # field 2 (comm) is in parentheses and may hold spaces: count the fields after its ")"
    fields = stat[stat.rfind(")") + 2:].split()
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None  # field 22 = 20th after comm


def this_process() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(this_host(), pid, process_start(pid))


def pid_alive(pid: int) -> bool:
    """Whether some process has ``pid`` (one of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_gone(host: str | None, pid: int | None, start: str | None) -> bool:
    """True only when the process is known to be gone: it ran on this host and its pid is
    free, or now belongs to a process that started at another time. Another host's
    process, or a run recorded without host and pid, is never declared gone."""
    if host is None or pid is None or host != this_host():
        return False
    if not pid_alive(pid):
        return True
    if start is None:
        return False
    now = process_start(pid)
    return now is not None and now != start
