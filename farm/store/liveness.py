"""Whether the process that started a run is still there: host, pid and process start.

A pid alone is not enough: the kernel hands it to another process once the first is
gone. On Linux a process is named by a start token, ``<boot id>:<pid namespace>:<start
ticks>`` (``/proc/<pid>/stat`` field 22, clock ticks since boot), which tells the same
process from a later one that got its pid, a process of an earlier boot from one of this
boot, and a pid of this container's namespace from one of another container with the same
host name. Elsewhere only the pid is checked.

:func:`process_gone` is conservative: it says "gone" only when it can tell.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, named so that it can be found again: host, pid and start token."""

    host: str
    pid: int
    start: str | None  # "<boot id>:<pid namespace>:<start ticks>" on Linux; None where it cannot be read


def this_host() -> str:
    return socket.gethostname()


def _boot_and_namespace() -> tuple[str, str] | None:
    """This kernel's boot id and the inode of this process's pid namespace."""
    try:
        boot = _BOOT_ID.read_text().strip()
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return None
    return boot, link[link.find("[") + 1:link.rfind("]")]


def process_start(pid: int) -> str | None:
    """The start token of process ``pid`` as this process sees it, or None if unknown or gone."""
    where = _boot_and_namespace()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 2 (comm) is in parentheses and may hold spaces and ")": the fields after the last ")"
    fields = stat[stat.rfind(")") + 2:].split()
    if where is None or len(fields) < 20:
        return None
    return f"{where[0]}:{where[1]}:{fields[19]}"  # field 22 is the 20th after comm


def this_process() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(this_host(), pid, process_start(pid))


def pid_alive(pid: int) -> bool:
    """Whether some process has ``pid`` here (one of another user counts as alive)."""
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
    """True only when the process is known to be gone: it ran on this host and its pid is free,
    it ran before the last boot, or its pid now belongs to a process that started at another
    time. Another host's process, one of another pid namespace (a container with the same host
    name), or one recorded without host and pid, is never declared gone."""
    if host is None or pid is None or host != this_host():
        return False
    parts = start.split(":") if start else []
    if len(parts) != 3:  # no start token (not Linux): the pid is all there is
        return not pid_alive(pid)
    where = _boot_and_namespace()
    if where is None:
        return not pid_alive(pid)
    boot, namespace, _ticks = parts
    if namespace != where[1]:
        return False  # its pids are not ours to look up
    if boot != where[0]:
        return True  # the machine was rebooted since
    return process_start(pid) != start
