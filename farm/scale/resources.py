"""Boards as Dask worker resources: the resource name of a board, and which boards a worker advertises.

A board is the resource ``board:<name>`` with capacity 1 on exactly one worker; a job
that touches the board asks for ``{"board:<name>": 1}``, so the scheduler runs one job
per board at a time. Host-only work (model conversion, code generation, builds) asks
for no resource and runs on any worker.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from typing import Any

RESOURCE_PREFIX = "board:"


def board_resource(name: str) -> str:
    """The worker resource that stands for the board ``name``."""
    return f"{RESOURCE_PREFIX}{name}"


def board_of_resource(resource: str) -> str | None:
    """The board a resource name stands for (None for a resource that is not a board)."""
    return resource[len(RESOURCE_PREFIX):] if resource.startswith(RESOURCE_PREFIX) else None


def resources_for(boards: Iterable[str]) -> dict[str, float]:
    """The resources a worker advertises for ``boards``: one unit of each."""
    return {board_resource(name): 1.0 for name in boards}


def boards_of_worker(resources: dict[str, Any]) -> list[str]:
    """The boards a worker advertises, from its resources (the scheduler's worker info)."""
    return sorted(b for b in (board_of_resource(r) for r, amount in resources.items() if amount) if b)


def this_host() -> str:
    """This machine's short host name (what ``serial.host`` names a bench host by)."""
    return socket.gethostname().split(".")[0]


def boards_for_host(devices: Sequence[Any], host: str, claimed: Sequence[str] = ()) -> list[str]:
    """The boards a worker on ``host`` advertises: the devices whose ``serial.host`` is
    ``host``, plus those it claims by name (``claimed``: emulated or local boards)."""
    names = [d.name for d in devices if getattr(d, "host", None) == host]
    return names + [n for n in claimed if n not in names]


def split_boards(boards: Sequence[str], workers: int) -> list[list[str]]:
    """``boards`` dealt round-robin over ``workers`` local workers: each board on exactly one."""
    groups: list[list[str]] = [[] for _ in range(max(1, workers))]
    for i, name in enumerate(boards):
        groups[i % len(groups)].append(name)
    return groups
